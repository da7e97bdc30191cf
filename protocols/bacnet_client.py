"""BACnet/IP client adapter (bacpypes3): batched ReadPropertyMultiple, prioritised writes, discovery.

One client application (one UDP port) serves every BACnet device of a
process; each device is addressed directly as host:port. Reads are batched
into ReadPropertyMultiple requests of at most ``max_properties_per_request``
properties (kept inside the device's APDU limit). Each point keeps its
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
"""

from __future__ import annotations

import asyncio
import math

from bacpypes3.apdu import ErrorRejectAbortNack
from bacpypes3.basetypes import ErrorType, PropertyIdentifier, PropertyReference
from bacpypes3.ipv4.app import NormalApplication
from bacpypes3.local.device import DeviceObject
from bacpypes3.pdu import Address, IPv4Address
from bacpypes3.primitivedata import Enumerated, Null, ObjectIdentifier
from bacpypes3.vendor import get_vendor_info

from protocols.errors import DeviceUnreachable, WriteRefused
from protocols.pointmap import BacnetDeviceMap, BacnetPoint
from protocols.values import PointValue, PointValues, RawValue
from twin.readings import Quality

CLIENT_DEVICE_INSTANCE = 4194301
ASHRAE = get_vendor_info(0)
BINARY_VALUES = {"active": 1.0, "inactive": 0.0}


def make_client_application(host: str = "127.0.0.1", port: int = 0) -> NormalApplication:
    """The client side's BACnet application, bound to host:port (0: any free port). Call inside a running loop."""
    device = DeviceObject(objectIdentifier=("device", CLIENT_DEVICE_INSTANCE), objectName="parktwin-client",
                          vendorIdentifier=999, maxApduLengthAccepted=1476, segmentationSupported="segmentedBoth")
    return NormalApplication(device, IPv4Address(f"{host}:{port}"))


class BacnetAdapter:
    """Reads and writes one BACnet device described by its point map, through a shared client application."""

    def __init__(self, device: BacnetDeviceMap, app: NormalApplication):
        self.device = device
        self.app = app
        self.address = Address(f"{device.host}:{device.port}")
        self.requests_sent = 0
        self._points = {p.id: p for p in device.points}
        self._cov_points = [p for p in device.points if p.mode == "cov"]
        self._subscriptions: dict[str, tuple] = {}  # point id -> (subscription context, follower task)
        self._cov_latest: PointValues = {}
        self._cov_refused: set[str] = set()
        self._plan_batches()

    def _plan_batches(self) -> None:
        """ReadPropertyMultiple batches of every point not served by a live subscription (at least one point)."""
        polled = [p for p in self.device.points if p.id not in self._subscriptions] or self.device.points[:1]
        size = self.device.max_properties_per_request
        self.batches = [polled[i:i + size] for i in range(0, len(polled), size)]
        # request parameters built once: parsing identifiers and property names on every poll costs more than the read
        self._parameters = []
        for batch in self.batches:
            parameters: list = []
            for point in batch:
                parameters.extend([ObjectIdentifier((point.object_type, point.instance)),
                                   [PropertyReference(propertyIdentifier=PropertyIdentifier(point.property))]])
            self._parameters.append(parameters)

    @property
    def point_ids(self) -> list[str]:
        return self.device.point_ids

    async def read(self) -> PointValues:
        """Every point's value, quality and raw value. Raises DeviceUnreachable when the device does not answer."""
        await self._subscribe_missing()
        results: PointValues = {pid: self._cov_latest[pid] for pid in self._subscriptions if pid in self._cov_latest}
        for batch, parameters in zip(self.batches, self._parameters):
            refusal = None  # the device's answer refusing the whole batch, if it did
            try:
                answers = await self._request(self.app.read_property_multiple(self.address, list(parameters),
                                                                               vendor_info=ASHRAE))
            except ErrorRejectAbortNack as exc:
                answers, refusal = [], exc
            if not isinstance(answers, list):  # an error, reject or abort returned as the answer
                answers, refusal = [], answers
            by_object = {(str(objid[0]), int(objid[1])): value for objid, _prop, _index, value in answers}
            for point in batch:
                if point.id not in results:
                    results[point.id] = _decode(point, by_object.get((point.object_type, point.instance), refusal))
        for point in self._cov_points:  # subscribed, but no notification yet: read it once
            if point.id not in results:
                results[point.id] = await self._read_one(point)
        return results

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
            except asyncio.TimeoutError:
                raise DeviceUnreachable(f"{self.device.name} at {self.address}: no answer to SubscribeCOV") from None
            except (ErrorRejectAbortNack, ValueError):  # refused: fall back to polling this point
                self._cov_refused.add(point.id)
                changed = True
                continue
            self._subscriptions[point.id] = (context, asyncio.create_task(self._follow(point, context)))
            changed = True
        if changed:
            self._plan_batches()

    async def _follow(self, point: BacnetPoint, context) -> None:
        while True:
            prop, value = await context.get_value()
            if str(prop) == point.property:
                self._cov_latest[point.id] = _decode(point, value)

    async def _read_one(self, point: BacnetPoint) -> PointValue:
        try:
            value = await self._request(self.app.read_property(
                self.address, ObjectIdentifier((point.object_type, point.instance)), point.property))
        except ErrorRejectAbortNack as exc:
            value = exc
        return _decode(point, value)

    async def write(self, point_id: str, value: float | None) -> None:
        """Command a point at its write priority; ``None`` relinquishes (writes null)."""
        point = self._points[point_id]
        if not point.writable:
            raise WriteRefused(f"{point_id} is not writable")
        if value is None:
            wire_value = Null(())
        else:
            if not math.isfinite(value) or not point.safe_min <= value <= point.safe_max:
                raise WriteRefused(f"{value:g} is outside the safe limits of {point_id} "
                                   f"[{point.safe_min:g}, {point.safe_max:g}]")
            raw = point.to_raw(value)
            wire_value = int(round(raw)) if point.object_type.startswith("multi-state") else float(raw)
        answer = await self._request(self.app.write_property(
            self.address, ObjectIdentifier((point.object_type, point.instance)), point.property, wire_value,
            priority=point.write_priority), refused=WriteRefused)
        if isinstance(answer, (ErrorRejectAbortNack, ErrorType)):
            raise WriteRefused(f"{point_id}: device refused the write ({answer})")

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
        self._plan_batches()

    async def _request(self, awaitable, refused: type[Exception] | None = None):
        """Await one confirmed request; an error, reject or abort from the device raises ``refused`` when given."""
        self.requests_sent += 1
        try:
            return await asyncio.wait_for(awaitable, self.device.timeout_s)
        except asyncio.TimeoutError:
            raise DeviceUnreachable(f"{self.device.name} at {self.address}: no answer "
                                    f"within {self.device.timeout_s:g} s") from None
        except ErrorRejectAbortNack as exc:
            if refused is None:
                raise
            raise refused(f"{self.device.name} answered {exc}: {getattr(exc, 'errorCode', '')}") from None


def _decode(point: BacnetPoint, value) -> PointValue:
    """Decode a present value once into the engineering value and quality, keeping the value as received."""
    if value is None:
        return PointValue(None, Quality.BAD)  # the answer held nothing for this object
    if isinstance(value, (ErrorType, ErrorRejectAbortNack)):
        return PointValue(None, Quality.BAD, RawValue(_error_text(value)))
    raw = RawValue(_as_received(value))
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
    return PointValue(engineering, Quality.GOOD, raw) if math.isfinite(engineering) else \
        PointValue(None, Quality.BAD, raw)


def _as_received(value) -> float | int | str:
    """A BACnet primitive as plain data: an enumerated state as its text (``active``), numbers as numbers."""
    if isinstance(value, Enumerated):
        return str(value)
    if isinstance(value, float):  # Real, Double
        return float(value)
    if isinstance(value, int):  # Unsigned, Integer, Boolean
        return int(value)
    return str(value)


def _error_text(error) -> str:
    """What a device answered instead of a value: ``error: object unknown-object``, a reject or an abort."""
    reason = [str(part) for part in (getattr(error, "errorClass", None), getattr(error, "errorCode", None))
              if part is not None]
    return f"error: {' '.join(reason)}" if reason else f"{type(error).__name__}: {error}"


async def discover_point_map(app: NormalApplication, host: str, port: int, timeout_s: float = 3.0) -> BacnetDeviceMap:
    """Who-Is at host:port, then walk the device's object list into a point-map skeleton.

    Every input, output and value object becomes a point with a placeholder id
    ``todo.<device>.<object name>`` for the integrator to replace with the twin
    point it feeds; output and value objects are marked writable with the
    placeholder limits of their present value, to be set by the integrator.
    Raises DeviceUnreachable when nothing answers.
    """
    address = Address(f"{host}:{port}")
    try:
        i_ams = await asyncio.wait_for(app.who_is(address=address, timeout=timeout_s), timeout_s + 1)
    except asyncio.TimeoutError:
        i_ams = []
    if not i_ams:
        raise DeviceUnreachable(f"no I-Am from {host}:{port} within {timeout_s:g} s")
    device_id = i_ams[0].iAmDeviceIdentifier
    device_name = _identifier(str(await _read(app, address, device_id, "object-name", timeout_s)))
    object_list = await _read(app, address, device_id, "object-list", timeout_s)
    points = []
    for object_id in object_list:
        object_type = str(object_id[0])
        if object_type not in BacnetPoint.model_fields["object_type"].annotation.__args__:
            continue
        properties = await asyncio.wait_for(app.read_property_multiple(
            address, [object_id, ["object-name", "units"] if object_type.startswith("analog") else ["object-name"]],
            vendor_info=ASHRAE), timeout_s)
        values = {str(prop): value for _objid, prop, _index, value in properties}
        name = _identifier(str(values.get("object-name", f"{object_type}_{object_id[1]}")))
        unit = values.get("units")
        point = dict(id=f"todo.{device_name}.{name}", object_type=object_type, instance=int(object_id[1]),
                     unit="" if unit is None or isinstance(unit, ErrorType) else str(unit))
        if object_type in ("analog-output", "analog-value", "multi-state-output", "multi-state-value"):
            present = float(await _read(app, address, object_id, "present-value", timeout_s))
            point.update(writable=True, safe_min=present, safe_max=present)
        points.append(point)
    return BacnetDeviceMap(name=device_name, host=host, port=port, device_instance=int(device_id[1]), points=points)


async def _read(app: NormalApplication, address: Address, object_id, prop: str, timeout_s: float):
    try:
        value = await asyncio.wait_for(app.read_property(address, object_id, prop), timeout_s)
    except asyncio.TimeoutError:
        raise DeviceUnreachable(f"{address}: no answer reading {prop} of {object_id}") from None
    if isinstance(value, (ErrorType, ErrorRejectAbortNack)):
        raise DeviceUnreachable(f"{address}: cannot read {prop} of {object_id}: {value}")
    return value


def _identifier(text: str) -> str:
    """A lower-case identifier (letters, digits, underscores) from a BACnet name."""
    cleaned = "".join(c if c.isalnum() else "_" for c in text.lower()).strip("_") or "device"
    return cleaned if cleaned[0].isalpha() else f"x_{cleaned}"
