"""A simulated BACnet/IP device (bacpypes3) serving one asset's objects on its own UDP port.

Present values follow the simulator (:meth:`BacnetDeviceServer.refresh`, called
after every simulation step). Setpoints are commandable output objects: a
WriteProperty at a priority goes through the priority array; the winning
value is handed to the simulator, and when every priority is relinquished
(null written) the point goes back to the plant schedule
(``release_setpoint``) and the present value is the relinquish default at
once: the value the simulator last reported while nothing was commanded,
i.e. the plant schedule's. A value outside the point's safe limits is refused
with the BACnet error property/value-out-of-range.

The device behaves as a real one does towards tools that are not ParkTwin:
only the present value of commandable objects is writable (anything else
answers property/write-access-denied; a priority outside 1-16
property/value-out-of-range; priority 6, minimum on/off, is the device's
own); the device object states the object types and services it really
supports and lists its live COV subscriptions; multi-state objects carry
state texts, binary objects active/inactive texts; a confirmed request for a
service it does not execute is rejected (unrecognized-service), a malformed
one rejected or aborted, and each malformed datagram is logged as one line,
rate-limited per peer.

Watchdog (a layout with a ``heartbeat``, see
:class:`protocols.pointmap.BacnetHeartbeat`): a commandable analog value
the controller writes a changing value to. The priority of the latest
heartbeat is the controller's slot. Once a heartbeat and a command at that
priority have arrived, the watchdog is armed; when the heartbeat's value has
not changed for its timeout on the device's clock (the simulation clock,
checked at every simulation step and before each heartbeat is taken), the
device relinquishes that priority on every commandable object, so the
relinquish defaults (the plant schedule's values) are in force, and waits
for a new heartbeat and a new command before it can do so again.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from bacpypes3.apdu import APDU, APCISequence, ConfirmedRequestPDU, RejectPDU, confirmed_request_types
from bacpypes3.basetypes import (
    COVSubscription,
    DeviceAddress,
    ObjectPropertyReference,
    ObjectTypesSupported,
    PriorityValue,
    Recipient,
    RecipientProcess,
    ServicesSupported,
)
from bacpypes3.constructeddata import ArrayOf
from bacpypes3.errors import InvalidTag, PropertyError
from bacpypes3.ipv4.app import NormalApplication
from bacpypes3.local.analog import AnalogInputObject, AnalogOutputObject, AnalogValueObjectCmd
from bacpypes3.local.binary import BinaryInputObject
from bacpypes3.local.device import DeviceObject
from bacpypes3.local.multistate import MultiStateInputObject, MultiStateOutputObject
from bacpypes3.local.object import Object as _LocalObject
from bacpypes3.pdu import PDU, IPv4Address
from bacpypes3.primitivedata import BitString, Null, ObjectIdentifier, PropertyIdentifier
from bacpypes3.service.cov import Subscription

from protocols.devices.layout import BacnetLayout
from protocols.pointmap import BacnetPoint

log = logging.getLogger(__name__)

BACNET_UNITS = {"kW": "kilowatts", "kWth": "kilowatts", "degC": "degreesCelsius", "%": "percent",
                "W/m2": "wattsPerSquareMeter", "kWh": "kilowattHours", "kWhth": "kilowattHours", "V": "volts"}
"""Twin units to BACnet engineering units; anything else is noUnits."""

ValueOf = Callable[[str], float | None]

NOT_IN_PROPERTY_LIST = ("objectIdentifier", "objectName", "objectType", "propertyList")
"""Properties every object has, which property-list leaves out (ASHRAE 135 clause 12.1.1.4.1)."""
OBJECT_TYPES_SUPPORTED = ("device", "analogInput", "analogOutput", "analogValue", "binaryInput",
                          "multiStateInput", "multiStateOutput")
"""Object types a simulated device serves."""
SERVICES_SUPPORTED = ("readProperty", "readPropertyMultiple", "writeProperty", "subscribeCOV", "whoIs", "iAm",
                      "whoHas", "iHave", "unconfirmedCOVNotification")
"""Services a simulated device executes (Who-Is, Who-Has, the confirmed ones) or initiates (I-Am, I-Have,
unconfirmed COV notifications). Every other confirmed service is rejected."""
MINIMUM_ON_OFF_PRIORITY = 6
"""Reserved to the device's own minimum on/off timing; clients may not write it."""
MALFORMED_LOG_INTERVAL_S = 60.0
"""At most one log line per peer per interval for malformed requests; the rest are counted."""


# bacpypes3 ships no types, so its classes are Any to the checker: each class here that derives from one
# is marked (disallow_subclassing_any). The mixins are, for the checker, bacpypes3 local objects: they are
# only ever mixed into those, and use their attributes and their write_property.
if TYPE_CHECKING:
    from bacpypes3.local.object import Object as _ServedObject
else:
    _ServedObject = object


class _DeviceSide(_ServedObject):  # type: ignore[misc]  # a bacpypes3 object (untyped)
    """Mixin for every object a simulated device serves: what a real device lets clients write, and a
    property list without the properties every object has."""

    _writable: tuple[str, ...] = ()

    async def write_property(self, attr: int | str, value: Any, index: int | None = None,
                             priority: int | None = None) -> None:
        name = self._property_identifier_class(attr).attr if isinstance(attr, int) else attr
        if name not in self._elements:
            raise PropertyError("unknownProperty")
        if name not in self._writable:
            raise PropertyError("writeAccessDenied")
        if priority is not None and not 1 <= priority <= 16:
            raise PropertyError("valueOutOfRange")
        if priority == MINIMUM_ON_OFF_PRIORITY:
            raise PropertyError("writeAccessDenied")
        await super().write_property(attr, value, index, priority)

    @property
    def propertyList(self) -> ArrayOf(PropertyIdentifier):  # type: ignore[valid-type]
        every = _LocalObject.propertyList.fget(self)
        return ArrayOf(PropertyIdentifier)([p for p in every if p.attr not in NOT_IN_PROPERTY_LIST])

    @propertyList.setter
    def propertyList(self, value: object) -> None:
        pass


class _CommandedObject(_ServedObject):  # type: ignore[misc]  # a bacpypes3 object (untyped)
    """Mixin for commandable objects: check limits, then tell the simulator the winning value."""

    async def write_property(self, attr: int | str, value: Any, index: int | None = None,
                             priority: int | None = None) -> None:
        name = self._property_identifier_class(attr).attr if isinstance(attr, int) else attr
        server: BacnetDeviceServer = self._app.parktwin_server
        point = server.point_of(self.objectIdentifier)
        if name == "presentValue" and not isinstance(value, Null):
            engineering = point.to_engineering(float(value))
            # a writable point's map always has both limits
            low, high = point.low_limit, point.high_limit
            if low is None or high is None or not low <= engineering <= high:
                raise PropertyError("valueOutOfRange")
        await super().write_property(attr, value, index, priority)
        if name == "presentValue":
            server.commanded(self, point)
            if not isinstance(value, Null):
                server.watchdog_commanded(16 if priority is None else priority)


class _HeartbeatObject(_ServedObject):  # type: ignore[misc]  # a bacpypes3 object (untyped)
    """Mixin for the watchdog object: every write of its present value goes to the device's watchdog."""

    async def write_property(self, attr: int | str, value: Any, index: int | None = None,
                             priority: int | None = None) -> None:
        name = self._property_identifier_class(attr).attr if isinstance(attr, int) else attr
        server: BacnetDeviceServer = self._app.parktwin_server
        if name == "presentValue":
            server.watchdog_due()  # a heartbeat after the timeout comes too late for the commands before it
        await super().write_property(attr, value, index, priority)
        if name == "presentValue" and not isinstance(value, Null):
            server.heartbeat_written(float(value), 16 if priority is None else priority)


class HeartbeatValue(_DeviceSide, _HeartbeatObject, AnalogValueObjectCmd):  # type: ignore[misc]  # bacpypes3
    _writable = ("presentValue",)


class CommandedAnalogOutput(_DeviceSide, _CommandedObject, AnalogOutputObject):  # type: ignore[misc]  # bacpypes3
    _writable = ("presentValue",)


class CommandedMultiStateOutput(_DeviceSide, _CommandedObject, MultiStateOutputObject):  # type: ignore[misc]  # bacpypes3
    _writable = ("presentValue",)


class SimulatedAnalogInput(_DeviceSide, AnalogInputObject):  # type: ignore[misc]  # bacpypes3
    pass


class SimulatedBinaryInput(_DeviceSide, BinaryInputObject):  # type: ignore[misc]  # bacpypes3
    pass


class SimulatedMultiStateInput(_DeviceSide, MultiStateInputObject):  # type: ignore[misc]  # bacpypes3
    pass


class SimulatedDevice(_DeviceSide, DeviceObject):  # type: ignore[misc]  # bacpypes3
    """The device object: object types and services as served, live COV subscriptions."""

    @property
    def protocolObjectTypesSupported(self) -> ObjectTypesSupported:
        return _bits(ObjectTypesSupported, OBJECT_TYPES_SUPPORTED)

    @protocolObjectTypesSupported.setter
    def protocolObjectTypesSupported(self, value: object) -> None:
        pass

    @property
    def protocolServicesSupported(self) -> ServicesSupported:
        return _bits(ServicesSupported, SERVICES_SUPPORTED)

    @protocolServicesSupported.setter
    def protocolServicesSupported(self, value: object) -> None:
        pass

    @property
    def activeCovSubscriptions(self) -> object:
        """The live COV subscriptions, as a bacpypes3 array of COVSubscription."""
        app = self._app
        subscriptions: list[COVSubscription] = []
        if app is not None:
            for detection in list(getattr(app, "_cov_detections", {}).values()):
                subscriptions.extend(_cov_subscription(sub) for sub in list(detection.cov_subscriptions))
        return self._elements["activeCovSubscriptions"](subscriptions)

    @activeCovSubscriptions.setter
    def activeCovSubscriptions(self, value: object) -> None:
        pass


def _bits(kind: type[BitString], names: tuple[str, ...]) -> BitString:
    """A bacpypes3 bit string of ``kind`` with the bits ``names`` set."""
    bits = kind([])
    for name in names:
        bits[getattr(kind, name)] = 1
    return bits


def _cov_subscription(subscription: Subscription) -> COVSubscription:
    """A live bacpypes3 subscription as the device object's active-cov-subscriptions lists it."""
    handle = subscription.cancel_handle
    remaining_s = max(0, round(handle.when() - asyncio.get_running_loop().time())) if handle else 0
    address = subscription.client_addr
    entry = COVSubscription(
        recipient=RecipientProcess(recipient=Recipient(address=DeviceAddress(networkNumber=0,
                                                                             macAddress=address.addrAddr)),
                                   processIdentifier=subscription.proc_id),
        monitoredPropertyReference=ObjectPropertyReference(objectIdentifier=subscription.obj_id,
                                                           propertyIdentifier="present-value"),
        issueConfirmedNotifications=bool(subscription.confirmed), timeRemaining=remaining_s)
    if subscription.covIncrement is not None:
        entry.covIncrement = float(subscription.covIncrement)
    return entry


class SimulatedDeviceApplication(NormalApplication):  # type: ignore[misc]  # bacpypes3 (untyped)
    """The device's BACnet application: only the services in SERVICES_SUPPORTED; a confirmed request for
    another is rejected with unrecognized-service (bacpypes3 rejects a request it has no handler for)."""

    do_ReadRangeRequest = None
    do_WritePropertyMultipleRequest = None
    do_ConfirmedCOVNotificationRequest = None
    parktwin_server: BacnetDeviceServer
    """The server whose device this is (its objects' writes reach the simulator through it)."""

    def __init__(self, device_object: SimulatedDevice, local_address: IPv4Address, name: str = ""):
        super().__init__(device_object, local_address)
        self.malformed = MalformedLog(name or str(local_address))
        passed_on = self.asap.confirmation

        async def confirmation(pdu: PDU) -> None:
            """Every request coming up the stack: a malformed confirmed one is rejected here (bacpypes3 would
            not answer it), logged as one line; anything else goes on."""
            problem = request_problem(pdu)
            if problem is not None:
                reason, text, invoke_id = problem
                self.malformed.note(pdu.pduSource, text)
                if invoke_id is not None:
                    reject = RejectPDU(reason=reason)
                    reject.apduInvokeID = invoke_id
                    reject.pduDestination = pdu.pduSource
                    await self.asap.request(reject)
                return
            try:
                await passed_on(pdu)
            except Exception as exc:  # garbage the stack did not expect: one line, never a traceback
                self.malformed.note(pdu.pduSource, f"{type(exc).__name__}: {exc}")

        self.asap.confirmation = confirmation

    def get_services_supported(self) -> ServicesSupported:
        return self.device_object.protocolServicesSupported


def request_problem(pdu: PDU) -> tuple[str, str, int | None] | None:
    """What is wrong with a datagram's APDU, if anything: (reject reason, what, invoke id to answer or None).
    Only confirmed requests are judged; the rest is bacpypes3's to handle."""
    try:
        apdu = APDU.decode(PDU(bytes(pdu.pduData), source=pdu.pduSource))
    except Exception as exc:  # not even an APDU header: nothing to answer to
        return "other", f"undecodable APDU header ({exc})", None
    if apdu.apduType != ConfirmedRequestPDU.pduType or apdu.apduSeg:
        return None
    if apdu.apduService not in confirmed_request_types:
        return "unrecognizedService", f"unknown confirmed service {apdu.apduService}", apdu.apduInvokeID
    try:
        APCISequence.decode(apdu)
    except InvalidTag as exc:
        return "invalidTag", f"{confirmed_request_types[apdu.apduService].__name__}: {exc}", apdu.apduInvokeID
    except Exception as exc:
        return "other", f"{confirmed_request_types[apdu.apduService].__name__}: {exc}", apdu.apduInvokeID
    return None


class MalformedLog:
    """One log line per peer per MALFORMED_LOG_INTERVAL_S for malformed requests; the rest are counted."""

    def __init__(self, device: str, monotonic_s: Callable[[], float] = time.monotonic):
        self.device = device
        self.monotonic_s = monotonic_s
        self.count = 0
        self._peers: dict[str, tuple[float, int]] = {}  # peer -> (when its last line was logged, s; since then)

    def note(self, peer: object, what: str) -> None:
        self.count += 1
        key = str(peer)
        now_s = self.monotonic_s()
        logged_s, since = self._peers.get(key, (None, 0))
        if logged_s is not None and now_s - logged_s < MALFORMED_LOG_INTERVAL_S:
            self._peers[key] = (logged_s, since + 1)
            return
        more = f" ({since} more since the last line)" if since else ""
        log.warning("BACnet device %s: malformed request from %s: %s%s", self.device, key, what, more)
        self._peers[key] = (now_s, 0)


@dataclass
class _Watchdog:
    """The state of a device's heartbeat watchdog (module docstring)."""

    timeout_s: int
    value: float | None = None
    """The latest heartbeat value."""
    changed_at: datetime | None = None
    """When the heartbeat last changed (device clock)."""
    priority: int | None = None
    """The priority of the latest heartbeat: the slot the watchdog relinquishes."""
    beat: bool = False
    """A heartbeat changed since the watchdog last ran out (or since start)."""
    commanded: set[int] = field(default_factory=set)
    """Priorities commanded since the watchdog last ran out (or since start)."""

    def due(self, now: datetime) -> bool:
        return (self.beat and self.priority in self.commanded and self.changed_at is not None
                and now >= self.changed_at + timedelta(seconds=self.timeout_s))


class BacnetDeviceServer:
    """Serves ``layout`` as a BACnet device on host:port.

    now_utc: the device's clock (the simulation clock), which runs the heartbeat watchdog of a layout
    with a ``heartbeat``; without it the watchdog never runs out."""

    def __init__(self, layout: BacnetLayout, host: str, port: int, value_of: ValueOf,
                 write_setpoint: Callable[[str, float], None], release_setpoint: Callable[[str], None],
                 limits: dict[str, tuple[float | None, float | None]],
                 now_utc: Callable[[], datetime] | None = None):
        self.layout = layout
        self.host, self.port = host, port
        self.value_of = value_of
        self.write_setpoint = write_setpoint
        self.release_setpoint = release_setpoint
        self.limits = limits
        self.points: list[BacnetPoint] = layout.points
        self._app: NormalApplication | None = None
        self._objects: dict[str, _DeviceSide] = {}
        self._point_by_object: dict[tuple[str, int], BacnetPoint] = {}
        self.now_utc = now_utc
        heartbeat = layout.heartbeat
        self.watchdog = _Watchdog(heartbeat.timeout_s) if heartbeat is not None else None
        self._heartbeat_object: HeartbeatValue | None = None

    @property
    def name(self) -> str:
        return self.layout.name

    @property
    def running(self) -> bool:
        return self._app is not None

    def point_of(self, object_identifier: ObjectIdentifier) -> BacnetPoint:
        return self._point_by_object[(str(object_identifier[0]), int(object_identifier[1]))]

    async def start(self) -> None:
        if self._app is not None:
            return
        device = SimulatedDevice(objectIdentifier=("device", self.layout.address), objectName=self.layout.name,
                                 vendorIdentifier=999, vendorName="ParkTwin", modelName="ParkTwin simulated device",
                                 maxApduLengthAccepted=1476, segmentationSupported="segmentedBoth")
        try:
            app = SimulatedDeviceApplication(device, IPv4Address(f"{self.host}:{self.port}"), self.name)
        except OSError as exc:
            raise OSError(f"BACnet device {self.name} cannot bind {self.host}:{self.port}: {exc}") from None
        app.parktwin_server = self
        self._objects = {}
        for point in self.points:
            obj = self._make_object(point)
            app.add_object(obj)
            self._objects[point.id] = obj
            self._point_by_object[(point.object_type, point.instance)] = point
        heartbeat = self.layout.heartbeat
        if heartbeat is not None:
            self._heartbeat_object = HeartbeatValue(
                objectIdentifier=(heartbeat.object_type, heartbeat.instance), objectName="heartbeat",
                description=f"watchdog: commands at the heartbeat's priority are relinquished when it has not "
                            f"changed for {heartbeat.timeout_s} s",
                statusFlags=[0, 0, 0, 0], eventState="normal", outOfService=False, presentValue=0.0,
                relinquishDefault=0.0, units="noUnits", covIncrement=0.0)
            app.add_object(self._heartbeat_object)
        self._app = app
        self.refresh()

    async def stop(self) -> None:
        if self._app is not None:
            self._app.close()
            self._app = None

    def refresh(self) -> None:
        """Copy the simulator's latest values into the objects."""
        for point in self.points:
            obj = self._objects.get(point.id)
            value = self.value_of(point.id)
            if obj is None or value is None:
                continue
            raw = point.to_raw(value)
            if point.object_type == "binary-input":
                obj.presentValue = "active" if raw >= 0.5 else "inactive"
            elif point.object_type.startswith("multi-state"):
                self._set_present(obj, point, max(1, int(round(raw))))
            else:
                self._set_present(obj, point, float(raw))

    def commanded(self, obj: _DeviceSide, point: BacnetPoint) -> None:
        """After a write: the highest-priority value goes to the simulator, or the point is released."""
        if all(entry.null is not None for entry in obj.priorityArray):
            self.release_setpoint(point.id)
            return
        try:
            self.write_setpoint(point.id, point.to_engineering(float(obj.presentValue)))
        except ValueError as exc:  # the simulator's own limits; the device keeps the command, the plant ignores it
            log.info("device %s: simulator refused %s: %s", self.name, point.id, exc)

    def heartbeat_written(self, value: float, priority: int) -> None:
        """A heartbeat arrived: a changed value restarts the watchdog at the device clock's now."""
        watchdog = self.watchdog
        if watchdog is None or self.now_utc is None:
            return
        watchdog.priority = priority
        if value != watchdog.value:
            watchdog.value, watchdog.changed_at, watchdog.beat = value, self.now_utc(), True

    def watchdog_commanded(self, priority: int) -> None:
        """A command (not a relinquish) arrived at ``priority`` on one of the setpoint objects."""
        if self.watchdog is not None:
            self.watchdog.commanded.add(priority)

    def watchdog_due(self) -> list[str]:
        """When the heartbeat has not changed for its timeout (and the watchdog is armed): relinquish the
        heartbeat's priority on every commandable object, hand every point left without a command back to
        the plant schedule, and disarm until a new heartbeat and a new command; the ids of the points whose
        command at that priority was relinquished."""
        watchdog = self.watchdog
        if (watchdog is None or watchdog.priority is None or self.now_utc is None or self._app is None
                or not watchdog.due(self.now_utc())):
            return []
        slot = watchdog.priority - 1
        relinquished: list[str] = []
        for point in self.points:
            obj = self._objects.get(point.id)
            if obj is None or not point.writable or obj.priorityArray[slot].null is not None:
                continue
            obj.priorityArray[slot] = PriorityValue(null=())  # recalculates the present value
            relinquished.append(point.id)
            self.commanded(obj, point)
        if self._heartbeat_object is not None:
            self._heartbeat_object.priorityArray[slot] = PriorityValue(null=())
        log.warning("device %s: no new heartbeat for %d s; relinquished priority %d of %s", self.name,
                    watchdog.timeout_s, watchdog.priority, ", ".join(relinquished) or "no point")
        watchdog.beat, watchdog.commanded = False, set()
        return relinquished

    @staticmethod
    def _set_present(obj: _DeviceSide, point: BacnetPoint, raw: float) -> None:
        if point.writable:
            # the simulator reports the setpoint in force: while nothing is commanded that is the plant
            # schedule's value, the relinquish default; while commanded, the command, which must not become
            # the default (after the last relinquish the schedule's value is in force at once)
            if all(entry.null is not None for entry in obj.priorityArray):
                obj.relinquishDefault = raw
                obj.recalculating()
        else:
            obj.presentValue = raw

    def _make_object(self, point: BacnetPoint) -> _DeviceSide:
        common = {"objectIdentifier": (point.object_type, point.instance), "objectName": point.id.split(".")[-1],
                      "description": point.description or point.id, "statusFlags": [0, 0, 0, 0], "eventState": "normal",
                      "outOfService": False}
        high = self.limits.get(point.id, (None, None))[1]
        if point.object_type == "binary-input":
            return SimulatedBinaryInput(presentValue="inactive", polarity="normal", activeText="on",
                                        inactiveText="off", **common)
        if point.object_type.startswith("multi-state"):
            states = int(point.to_raw(high)) if high is not None else 16
            texts = state_texts(point, states)
            if point.writable:
                return CommandedMultiStateOutput(presentValue=1, relinquishDefault=1, numberOfStates=states,
                                                 stateText=texts, **common)
            return SimulatedMultiStateInput(presentValue=1, numberOfStates=states, stateText=texts, **common)
        units = BACNET_UNITS.get(point.unit, "noUnits")
        if point.writable:
            return CommandedAnalogOutput(presentValue=0.0, relinquishDefault=0.0, units=units, covIncrement=0.0,
                                         **common)
        return SimulatedAnalogInput(presentValue=0.0, units=units, covIncrement=0.0, **common)


def state_texts(point: BacnetPoint, states: int) -> list[str]:
    """State text of each multi-state value 1..states: from the point's description when it names every
    twin enum value (``0 off, 1 chilled water, 2 ice making``), else ``state N``."""
    named = {int(number): text.strip() for number, text in re.findall(r"(-?\d+)\s+([^,;]+)", point.description)}
    texts = []
    for state in range(1, states + 1):
        text = named.get(int(round(point.to_engineering(state))))
        texts.append(text if text else f"state {state}")
    return texts if len(set(texts)) == states else [f"state {state}" for state in range(1, states + 1)]
