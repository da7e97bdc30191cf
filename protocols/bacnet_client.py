"""BACnet/IP client adapter (bacpypes3): batched ReadPropertyMultiple, prioritised writes, discovery.

One client application (one UDP port) serves every BACnet device of a
process; each device is addressed directly as host:port. Reads are batched
into ReadPropertyMultiple requests of at most ``max_properties_per_request``
properties (kept inside the device's APDU limit); each point's property is read
with its object's status-flags, and a written point's with its priority array
(see :class:`BacnetAdapter`); an object whose fault flag is set has its
reliability read in a second request. Each point keeps its
present value as received (:class:`RawValue`). A property the device answers
with an error is marked BAD, the error kept as its raw value; no answer
within the timeout raises :class:`DeviceUnreachable` for the coordinator to
mark COMM_FAIL.

Points with ``mode: cov`` are subscribed (SubscribeCOV, unconfirmed
notifications, renewed by bacpypes3 two seconds before ``cov_lifetime_s``
ends) and take their value from the latest notification; a device that
refuses the subscription has those points polled instead. Every poll still
sends at least one ReadPropertyMultiple, so a silent device is noticed
within a poll period even when all its points are COV.

A map with a ``heartbeat`` gets a counter written to the device's watchdog
object at every poll (:meth:`BacnetAdapter.heartbeat`, called by the
polling coordinator, never by single-shot reads): while ParkTwin polls, the
device keeps its commands; once the polls stop, for whatever reason, the
device relinquishes them (see :class:`protocols.pointmap.BacnetHeartbeat`).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable
from typing import Any

from bacpypes3.apdu import ErrorRejectAbortNack
from bacpypes3.basetypes import BinaryPV, ErrorType, PropertyIdentifier, PropertyReference
from bacpypes3.ipv4.app import NormalApplication
from bacpypes3.local.device import DeviceObject
from bacpypes3.pdu import Address, IPv4Address
from bacpypes3.primitivedata import Enumerated, Null, ObjectIdentifier, Real, Unsigned
from bacpypes3.service.cov import SubscriptionContextManager
from bacpypes3.vendor import get_vendor_info

from protocols.errors import DeviceUnreachable, WriteRefused
from protocols.pointmap import COMMANDABLE_TYPES, BacnetDeviceMap, BacnetPoint
from protocols.values import PointValue, PointValues, RawValue
from twin.readings import Quality

CLIENT_DEVICE_INSTANCE = 4194301
ASHRAE = get_vendor_info(0)
BINARY_VALUES = {"active": 1.0, "inactive": 0.0}
STATUS_FLAGS = "status-flags"
RELIABILITY = "reliability"
FAULT_FLAG = 1
"""Index of the fault flag in status-flags, which is set exactly when reliability is not no-fault-detected
(ASHRAE 135 clause 12: status-flags of the object types); so reliability is read only when it is set."""
STATUS_FLAG_NAMES = ("in-alarm", "fault", "overridden", "out-of-service")
PRIORITY_ARRAY = "priority-array"
PRIORITY_HOLDERS = {1: "manual life safety", 2: "automatic life safety", 5: "critical equipment control",
                    6: "minimum on/off", 8: "manual operator"}
"""Who commands at a BACnet priority by convention (ASHRAE 135 clause 19.2.1)."""
Answer = Any
"""A value, or the error, reject or abort, as bacpypes3 decodes a device's answer (bacpypes3 ships no types)."""
ObjectKey = tuple[str, int]
"""(object type, instance)."""
ReadParameters = list[ObjectIdentifier | list[PropertyReference]]
"""ReadPropertyMultiple's arguments: each object identifier followed by its property references."""
HEARTBEAT_WRAP = 65536
"""The heartbeat counter runs 1 .. HEARTBEAT_WRAP - 1 and starts again: exact in a Real, never 0 (the
watchdog object's relinquish default), so every beat differs from the one before."""


def make_client_application(host: str = "127.0.0.1", port: int = 0) -> NormalApplication:
    """The client side's BACnet application, bound to host:port (0: any free port). Call inside a running loop."""
    device = DeviceObject(objectIdentifier=("device", CLIENT_DEVICE_INSTANCE), objectName="parktwin-client",
                          vendorIdentifier=999, maxApduLengthAccepted=1476, segmentationSupported="segmentedBoth")
    return NormalApplication(device, IPv4Address(f"{host}:{port}"))


class BacnetAdapter:
    """Reads and writes one BACnet device described by its point map, through a shared client application.

    Every point is read with its object's status-flags: a value the object
    flags in-alarm, fault or out-of-service is marked BAD (the flags kept in the
    raw value's ``status``, with the reliability of a faulted object, read at
    once in a second request). Writable points of commandable objects are read with their
    priority array: a command active at a priority above ParkTwin's (a smaller
    number, e.g. an operator at 8) is an override (:meth:`overrides`, and the
    raw value's ``override_priority``); ParkTwin does not write such a point
    until the override is relinquished.
    """

    def __init__(self, device: BacnetDeviceMap, app: NormalApplication):
        self.device = device
        self.app = app
        self.address = Address(f"{device.host}:{device.port}")
        self.requests_sent = 0
        self._points = {p.id: p for p in device.points}
        self._cov_points = [p for p in device.points if p.mode == "cov"]
        # point id -> (subscription context, follower task)
        self._subscriptions: dict[str, tuple[SubscriptionContextManager, asyncio.Task[None]]] = {}
        self._cov_latest: dict[str, object] = {}  # point id -> latest notified value of the point's property
        self._cov_flags: dict[str, object] = {}  # point id -> latest notified status-flags
        self._cov_refused: set[str] = set()
        self._overrides: dict[str, int] = {}  # point id -> priority of the override in force
        self._priorities_known: set[str] = set()  # points whose priority array has been read
        self._beats = 0
        self._plan_batches()

    def _commandable(self, point: BacnetPoint) -> bool:
        return point.writable and point.object_type in COMMANDABLE_TYPES and point.property == "present-value"

    def _properties_of(self, point: BacnetPoint) -> list[str]:
        """What one poll reads of a point's object: the point's property and status-flags (both arrive with
        the notification of a subscribed point), the priority array when ParkTwin commands it."""
        properties = [] if point.id in self._subscriptions else [point.property, STATUS_FLAGS]
        if self._commandable(point):
            properties.append(PRIORITY_ARRAY)
        return properties[:self.device.max_properties_per_request]

    def _plan_batches(self) -> None:
        """ReadPropertyMultiple batches of at most ``max_properties_per_request`` properties (a point's
        properties in one batch), of every point with something to poll; at least one point."""
        wanted = [(p, props) for p in self.device.points if (props := self._properties_of(p))]
        if not wanted:
            first = self.device.points[0]
            wanted = [(first, [first.property])]
        limit = self.device.max_properties_per_request
        self.batches: list[list[BacnetPoint]] = []
        # built once: parsing identifiers and property names every poll costs more than the read
        self._parameters: list[ReadParameters] = []
        batch: list[BacnetPoint] = []
        parameters: ReadParameters = []
        count = 0
        for point, properties in wanted:
            if batch and count + len(properties) > limit:
                self.batches.append(batch)
                self._parameters.append(parameters)
                batch, parameters, count = [], [], 0
            batch.append(point)
            parameters.extend([ObjectIdentifier((point.object_type, point.instance)),
                               [PropertyReference(propertyIdentifier=PropertyIdentifier(name))
                                for name in properties]])
            count += len(properties)
        self.batches.append(batch)
        self._parameters.append(parameters)

    @property
    def point_ids(self) -> list[str]:
        return self.device.point_ids

    def overrides(self) -> dict[str, int]:
        """Points commanded at a priority above ParkTwin's, as of the latest poll: point id -> that
        priority (1-16; 8 is the manual operator by convention). ParkTwin refuses to write these."""
        return dict(self._overrides)

    async def read(self) -> PointValues:
        """Every point's value, quality and raw value. Raises DeviceUnreachable when the device does not answer."""
        await self._subscribe_missing()
        answered: dict[tuple[str, int, str], Answer] = {}  # (object type, instance, property) -> value or error
        refusals: dict[str, Answer] = {}  # point id -> the device's answer refusing its whole batch
        for batch, parameters in zip(self.batches, self._parameters):
            try:
                answers = await self._request(self.app.read_property_multiple(self.address, list(parameters),
                                                                               vendor_info=ASHRAE))
            except ErrorRejectAbortNack as exc:
                answers = exc
            if not isinstance(answers, list):  # an error, reject or abort returned as the answer
                refusals.update((point.id, answers) for point in batch)
                continue
            for objid, prop, _index, value in answers:
                answered[(str(objid[0]), int(objid[1]), str(prop))] = value
        reliability_of = await self._reliability_of_faulted(answered)
        results: PointValues = {}
        for point in self.device.points:
            key = (point.object_type, point.instance)
            override = self._note_priorities(point, answered.get((*key, PRIORITY_ARRAY)))
            if point.id in self._subscriptions:
                if point.id not in self._cov_latest:  # subscribed, but no notification yet: read it once
                    results[point.id] = await self._read_one(point, override)
                    continue
                value, flags = self._cov_latest[point.id], self._cov_flags.get(point.id)
            else:
                value = answered.get((*key, point.property), refusals.get(point.id))
                flags = answered.get((*key, STATUS_FLAGS))
            results[point.id] = _decode(point, value, flags, reliability_of.get(key), override)
        return results

    async def _reliability_of_faulted(self, answered: dict[tuple[str, int, str], Answer]) -> dict[ObjectKey, Answer]:
        """The reliability of every polled or subscribed object whose status-flags show a fault, by (object type,
        instance), read in ReadPropertyMultiple batches; an object the device answers with an error is left out."""
        flags_of = {key[:2]: flags for key, flags in answered.items() if key[2] == STATUS_FLAGS}
        for point_id, flags in self._cov_flags.items():
            point = self._points[point_id]
            flags_of[(point.object_type, point.instance)] = flags
        faulted = [key for key, flags in flags_of.items() if _flag_set(flags, FAULT_FLAG)]
        reliability_of: dict[ObjectKey, Answer] = {}
        limit = self.device.max_properties_per_request
        for first in range(0, len(faulted), limit):
            parameters: ReadParameters = []
            for object_type, instance in faulted[first:first + limit]:
                parameters.extend([ObjectIdentifier((object_type, instance)),
                                   [PropertyReference(propertyIdentifier=PropertyIdentifier(RELIABILITY))]])
            try:
                answers = await self._request(self.app.read_property_multiple(self.address, parameters,
                                                                               vendor_info=ASHRAE))
            except ErrorRejectAbortNack:
                continue
            if isinstance(answers, list):
                for objid, _prop, _index, value in answers:
                    reliability_of[(str(objid[0]), int(objid[1]))] = value
        return reliability_of

    def _note_priorities(self, point: BacnetPoint, priority_array: Answer) -> int | None:
        """Record the override a priority array read for ``point`` shows; return it (None: none, or not read)."""
        active = _active_priorities(priority_array)
        if active is None:
            return self._overrides.get(point.id) if point.id in self._priorities_known else None
        self._priorities_known.add(point.id)
        above = [priority for priority in active if priority < self.device.priority_of(point)]
        if above:
            self._overrides[point.id] = above[0]
        else:
            self._overrides.pop(point.id, None)
        return above[0] if above else None

    @property
    def subscribed_point_ids(self) -> list[str]:
        return list(self._subscriptions)

    async def _subscribe_missing(self) -> None:
        changed = False
        for point in self._cov_points:
            if point.id in self._subscriptions or point.id in self._cov_refused:
                continue
            context = self.app.change_of_value(self.address, ObjectIdentifier((point.object_type, point.instance)),
                                               issue_confirmed_notifications=False,
                                               lifetime=self.device.cov_lifetime_s)
            self.requests_sent += 1
            try:
                await asyncio.wait_for(context.__aenter__(), self.device.timeout_s)
            except TimeoutError:
                raise DeviceUnreachable(f"{self.device.name} at {self.address}: no answer to SubscribeCOV") from None
            except (ErrorRejectAbortNack, ValueError):  # refused: fall back to polling this point
                self._cov_refused.add(point.id)
                changed = True
                continue
            self._subscriptions[point.id] = (context, asyncio.create_task(self._follow(point, context)))
            changed = True
        if changed:
            self._plan_batches()

    async def _follow(self, point: BacnetPoint, context: SubscriptionContextManager) -> None:
        while True:
            prop, value = await context.get_value()
            if str(prop) == point.property:
                self._cov_latest[point.id] = value
            elif str(prop) == "status-flags":
                self._cov_flags[point.id] = value

    async def _read_one(self, point: BacnetPoint, override: int | None = None) -> PointValue:
        try:
            value = await self._request(self.app.read_property(
                self.address, ObjectIdentifier((point.object_type, point.instance)), point.property))
        except ErrorRejectAbortNack as exc:
            value = exc
        return _decode(point, value, override=override)

    async def write(self, point_id: str, value: float | None) -> None:
        """Command a point at its write priority; ``None`` relinquishes (writes null).

        Raises WriteRefused when the write is not carried out for a reason the
        device or the point gives (limits, a value the object cannot hold, an
        override above ParkTwin's priority, the device's error), and
        DeviceUnreachable when the device does not answer; nothing else.
        """
        point = self._points.get(point_id)
        if point is None:
            raise WriteRefused(f"{point_id} is not in point map {self.device.name}")
        if not point.writable:
            raise WriteRefused(f"{point_id} is not writable")
        priority = self.device.priority_of(point)
        wire_value = Null(()) if value is None else _wire_value(point, value)
        if value is not None and self._commandable(point):
            override = await self._override_now(point)
            if override is not None:
                raise WriteRefused(f"{point_id} is overridden at priority {override} by the "
                                   f"{priority_holder(override)}; ParkTwin writes at {priority} and waits "
                                   f"until priority {override} is relinquished")
        try:
            answer = await self._request(self.app.write_property(
                self.address, ObjectIdentifier((point.object_type, point.instance)), point.property, wire_value,
                priority=priority), refused=WriteRefused)
        except (WriteRefused, DeviceUnreachable):
            raise
        except OSError as exc:
            raise DeviceUnreachable(f"{self.device.name} at {self.address}: cannot send: {exc}") from None
        except Exception as exc:  # the client stack could not build or send this request: refused, not a crash
            raise WriteRefused(f"{point_id}: the write could not be sent ({type(exc).__name__}: {exc})") from None
        if isinstance(answer, (ErrorRejectAbortNack, ErrorType)):
            raise WriteRefused(f"{point_id}: device refused the write ({_error_text(answer)})")
        if answer is not None:  # bacpypes3 names what it could not look up (object class, property type)
            raise WriteRefused(f"{point_id}: the write could not be sent ({answer})")

    async def heartbeat(self) -> float | None:
        """Write the next counter value to the map's heartbeat object at the map's write priority; the value
        written (None: the map declares no heartbeat). Raises WriteRefused or DeviceUnreachable as
        :meth:`write` does."""
        heartbeat = self.device.heartbeat
        if heartbeat is None:
            return None
        self._beats = self._beats % (HEARTBEAT_WRAP - 1) + 1
        value = float(self._beats)
        try:
            answer = await self._request(self.app.write_property(
                self.address, ObjectIdentifier((heartbeat.object_type, heartbeat.instance)), "present-value",
                Real(value), priority=self.device.write_priority), refused=WriteRefused)
        except (WriteRefused, DeviceUnreachable):
            raise
        except OSError as exc:
            raise DeviceUnreachable(f"{self.device.name} at {self.address}: cannot send: {exc}") from None
        if isinstance(answer, (ErrorRejectAbortNack, ErrorType)):
            raise WriteRefused(f"heartbeat {heartbeat.object_id}: device refused the write ({_error_text(answer)})")
        return value

    async def _override_now(self, point: BacnetPoint) -> int | None:
        """The override of a commandable point from the latest poll, or read now when no poll has read it."""
        if point.id in self._priorities_known:
            return self._overrides.get(point.id)
        try:
            priority_array = await self._request(self.app.read_property(
                self.address, ObjectIdentifier((point.object_type, point.instance)), PRIORITY_ARRAY))
        except ErrorRejectAbortNack:
            return None  # no priority array to read: nothing above ParkTwin's priority to respect
        return self._note_priorities(point, priority_array)

    async def close(self) -> None:
        """Abandon the COV subscriptions (they lapse on the device); the client application is shared."""
        for context, task in self._subscriptions.values():
            task.cancel()
            try:
                await context.__aexit__(ConnectionAbortedError, None, None)  # abandon: no unsubscribe request
            except KeyError:
                pass
        self._subscriptions.clear()
        self._cov_latest.clear()
        self._cov_flags.clear()
        self._plan_batches()

    async def _request(self, awaitable: Awaitable[Answer], refused: type[Exception] | None = None) -> Answer:
        """Await one confirmed request; an error, reject or abort from the device raises ``refused`` when given.

        A request given up on (timed out, or the caller cancelled) is left to the client stack, which ends it
        at the answer or after its own APDU timeout and retries: cancelling it races an answer already on its
        way up the stack, which bacpypes3 then sets on the cancelled request and logs as an error.
        """
        self.requests_sent += 1
        request = asyncio.ensure_future(awaitable)
        try:
            return await asyncio.wait_for(asyncio.shield(request), self.device.timeout_s)
        except TimeoutError:
            raise DeviceUnreachable(f"{self.device.name} at {self.address}: no answer "
                                    f"within {self.device.timeout_s:g} s") from None
        except ErrorRejectAbortNack as exc:
            if refused is None:
                raise
            raise refused(f"{self.device.name} answered {_error_text(exc)}") from None
        finally:
            if not request.done():
                request.add_done_callback(_ignore_outcome)


def _ignore_outcome(request: asyncio.Future[Answer]) -> None:
    """Take the outcome of a request given up on, so that an abort at its end is not reported as unseen."""
    if not request.cancelled():
        request.exception()


def priority_holder(priority: int) -> str:
    """Who commands at a BACnet priority by convention: ``manual operator`` for 8."""
    return PRIORITY_HOLDERS.get(priority, "automation" if priority >= 9 else "another controller")


def _wire_value(point: BacnetPoint, value: float) -> Real | Unsigned | BinaryPV:
    """The value to write for an engineering value: a Real (analog), an Unsigned state number (multi-state,
    a whole number from 1), active/inactive (binary). Raises WriteRefused for a value the object cannot hold."""
    if point.low_limit is None or point.high_limit is None:  # the point map's validation refuses this
        raise WriteRefused(f"{point.id} has no safe limits")
    if not math.isfinite(value) or not point.low_limit <= value <= point.high_limit:
        raise WriteRefused(f"{value:g} is outside the safe limits of {point.id} "
                           f"[{point.low_limit:g}, {point.high_limit:g}]")
    raw = point.to_raw(value)
    if point.object_type.startswith("binary"):
        if raw not in (0.0, 1.0):
            raise WriteRefused(f"{value:g} is not a state of binary point {point.id}: it takes "
                               f"{point.to_engineering(0.0):g} (inactive) or {point.to_engineering(1.0):g} (active)")
        return BinaryPV("active" if raw == 1.0 else "inactive")
    if point.object_type.startswith("multi-state"):
        state = round(raw)
        if abs(raw - state) > 1e-9 or state < 1:
            raise WriteRefused(f"{value:g} is not a state of multi-state point {point.id}: states are whole "
                               f"numbers (state number {raw:g} is not), not rounded")
        return Unsigned(int(state))
    return Real(float(raw))


def _active_priorities(priority_array: Answer) -> list[int] | None:
    """The priorities (1-16, highest first) with a command in a priority array; None when it is not one
    (not read, or the device answered an error)."""
    if priority_array is None or isinstance(priority_array, (ErrorType, ErrorRejectAbortNack)):
        return None
    try:
        return [index + 1 for index, entry in enumerate(priority_array) if getattr(entry, "null", ()) is None]
    except TypeError:
        return None


def _flag_bits(flags: Answer) -> list[int]:
    """The bits of a status-flags value (in-alarm, fault, overridden, out-of-service); empty when it is missing
    or an error (the object has no such property), which says nothing."""
    if flags is None or isinstance(flags, (ErrorType, ErrorRejectAbortNack)):
        return []
    try:
        return [int(bit) for bit in flags]
    except (TypeError, ValueError):
        return []


def _flag_set(flags: Answer, index: int) -> bool:
    bits = _flag_bits(flags)
    return len(bits) > index and bool(bits[index])


def _status(flags: Answer, reliability: Answer) -> tuple[bool, list[str]]:
    """(bad, what is wrong) from an object's status-flags and reliability; either may be missing or an error
    (the object has no such property), which says nothing."""
    bad, notes = False, []
    for bit, name in zip(_flag_bits(flags), STATUS_FLAG_NAMES):
        if bit:
            notes.append(name)
            bad = bad or name != "overridden"  # overridden (hand switch): the value is real
    if reliability is not None and not isinstance(reliability, (ErrorType, ErrorRejectAbortNack)):
        text = str(reliability)
        if text not in ("no-fault-detected", "noFaultDetected"):
            notes.append(f"reliability {text}")
            bad = True
    return bad, notes


def _decode(point: BacnetPoint, value: Answer, flags: Answer = None, reliability: Answer = None,
            override: int | None = None) -> PointValue:
    """Decode a present value once into the engineering value and quality, keeping the value as received
    with the object's status (flags, reliability, an override above ParkTwin's priority)."""
    bad, notes = _status(flags, reliability)
    if override is not None:
        notes.append(f"overridden at priority {override} ({priority_holder(override)})")
    status = ", ".join(notes) or None
    if value is None:
        return PointValue(None, Quality.BAD)  # the answer held nothing for this object
    if isinstance(value, (ErrorType, ErrorRejectAbortNack)):
        return PointValue(None, Quality.BAD, RawValue(_error_text(value)))
    raw = RawValue(_as_received(value), status=status, override_priority=override)
    if point.object_type.startswith("binary"):
        number = BINARY_VALUES.get(str(value))
        if number is None:
            try:
                number = float(int(value))
            except (TypeError, ValueError):
                return PointValue(None, Quality.BAD, raw)
    else:
        try:
            number = float(value)
        except (TypeError, ValueError):
            return PointValue(None, Quality.BAD, raw)
    engineering = point.to_engineering(number)
    if not math.isfinite(engineering):
        return PointValue(None, Quality.BAD, raw)
    return PointValue(engineering, Quality.BAD if bad else Quality.GOOD, raw)


def _as_received(value: Answer) -> float | int | str:
    """A BACnet primitive as plain data: an enumerated state as its text (``active``), numbers as numbers."""
    if isinstance(value, Enumerated):
        return str(value)
    if isinstance(value, float):  # Real, Double
        return float(value)
    if isinstance(value, int):  # Unsigned, Integer, Boolean
        return int(value)
    return str(value)


def _error_text(error: Answer) -> str:
    """What a device answered instead of a value: ``error: object unknown-object``, a reject or an abort."""
    reason = [str(part) for part in (getattr(error, "errorClass", None), getattr(error, "errorCode", None))
              if part is not None]
    if not reason:
        reason = [f"{kind} {text}"
                  for kind, attr in (("reject", "apduRejectReason"), ("abort", "apduAbortRejectReason"))
                  if (text := getattr(error, attr, None)) is not None]
        if reason:
            return reason[0]
    return f"error: {' '.join(reason)}" if reason else f"{type(error).__name__}: {error}"
