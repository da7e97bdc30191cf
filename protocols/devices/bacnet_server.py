"""A simulated BACnet/IP device (bacpypes3) serving one asset's objects on its own UDP port.

Present values follow the simulator (:meth:`BacnetDeviceServer.refresh`, called
after every simulation step). Setpoints are commandable output objects: a
WriteProperty at a priority goes through the priority array; the winning
value is handed to the simulator, and when every priority is relinquished
(null written) the point goes back to the plant schedule
(``release_setpoint``). A value outside the point's safe limits is refused
with the BACnet error property/value-out-of-range.
"""

from __future__ import annotations

import logging
from typing import Callable

from bacpypes3.errors import PropertyError
from bacpypes3.ipv4.app import NormalApplication
from bacpypes3.local.analog import AnalogInputObject, AnalogOutputObject
from bacpypes3.local.binary import BinaryInputObject
from bacpypes3.local.device import DeviceObject
from bacpypes3.local.multistate import MultiStateInputObject, MultiStateOutputObject
from bacpypes3.pdu import IPv4Address
from bacpypes3.primitivedata import Null

from protocols.devices.layout import DeviceLayout
from protocols.pointmap import BacnetPoint

log = logging.getLogger(__name__)

BACNET_UNITS = {"kW": "kilowatts", "kWth": "kilowatts", "degC": "degreesCelsius", "%": "percent",
                "W/m2": "wattsPerSquareMeter", "kWh": "kilowattHours", "kWhth": "kilowattHours", "V": "volts"}
"""Twin units to BACnet engineering units; anything else is noUnits."""

ValueOf = Callable[[str], float | None]


class _CommandedObject:
    """Mixin for commandable objects: check limits, then tell the simulator the winning value."""

    async def write_property(self, attr, value, index=None, priority=None):  # noqa: ANN001 (bacpypes3 signature)
        name = self._property_identifier_class(attr).attr if isinstance(attr, int) else attr
        server: BacnetDeviceServer = self._app.parktwin_server
        point = server.point_of(self.objectIdentifier)
        if name == "presentValue" and not isinstance(value, Null):
            engineering = point.to_engineering(float(value))
            if not point.safe_min <= engineering <= point.safe_max:
                raise PropertyError("valueOutOfRange")
        await super().write_property(attr, value, index, priority)
        if name == "presentValue":
            server.commanded(self, point)


class CommandedAnalogOutput(_CommandedObject, AnalogOutputObject):
    pass


class CommandedMultiStateOutput(_CommandedObject, MultiStateOutputObject):
    pass


class BacnetDeviceServer:
    """Serves ``layout`` as a BACnet device on host:port."""

    def __init__(self, layout: DeviceLayout, host: str, port: int, value_of: ValueOf,
                 write_setpoint: Callable[[str, float], None], release_setpoint: Callable[[str], None],
                 limits: dict[str, tuple[float | None, float | None]]):
        self.layout = layout
        self.host, self.port = host, port
        self.value_of = value_of
        self.write_setpoint = write_setpoint
        self.release_setpoint = release_setpoint
        self.limits = limits
        self.points: list[BacnetPoint] = layout.points
        self._app: NormalApplication | None = None
        self._objects: dict = {}
        self._point_by_object: dict = {}

    @property
    def name(self) -> str:
        return self.layout.name

    @property
    def running(self) -> bool:
        return self._app is not None

    def point_of(self, object_identifier) -> BacnetPoint:
        return self._point_by_object[(str(object_identifier[0]), int(object_identifier[1]))]

    async def start(self) -> None:
        if self._app is not None:
            return
        device = DeviceObject(objectIdentifier=("device", self.layout.address), objectName=self.layout.name,
                              vendorIdentifier=999, vendorName="ParkTwin", modelName="ParkTwin simulated device",
                              maxApduLengthAccepted=1476, segmentationSupported="segmentedBoth")
        try:
            app = NormalApplication(device, IPv4Address(f"{self.host}:{self.port}"))
        except OSError as exc:
            raise OSError(f"BACnet device {self.name} cannot bind {self.host}:{self.port}: {exc}") from None
        app.parktwin_server = self
        self._objects = {}
        for point in self.points:
            obj = self._make_object(point)
            app.add_object(obj)
            self._objects[point.id] = obj
            self._point_by_object[(point.object_type, point.instance)] = point
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

    def commanded(self, obj, point: BacnetPoint) -> None:
        """After a write: the highest-priority value goes to the simulator, or the point is released."""
        if all(entry.null is not None for entry in obj.priorityArray):
            self.release_setpoint(point.id)
            return
        try:
            self.write_setpoint(point.id, point.to_engineering(float(obj.presentValue)))
        except ValueError as exc:  # the simulator's own limits; the device keeps the command, the plant ignores it
            log.info("device %s: simulator refused %s: %s", self.name, point.id, exc)

    @staticmethod
    def _set_present(obj, point: BacnetPoint, raw) -> None:
        if point.writable:
            # the simulator reports the setpoint in force; it is the value shown when nothing is commanded
            obj.relinquishDefault = raw
            obj.recalculating()
        else:
            obj.presentValue = raw

    def _make_object(self, point: BacnetPoint):
        common = dict(objectIdentifier=(point.object_type, point.instance), objectName=point.id.split(".")[-1],
                      description=point.description or point.id, statusFlags=[0, 0, 0, 0], eventState="normal",
                      outOfService=False)
        high = self.limits.get(point.id, (None, None))[1]
        if point.object_type == "binary-input":
            return BinaryInputObject(presentValue="inactive", polarity="normal", **common)
        if point.object_type.startswith("multi-state"):
            states = int(point.to_raw(high)) if high is not None else 16
            if point.writable:
                return CommandedMultiStateOutput(presentValue=1, relinquishDefault=1, numberOfStates=states, **common)
            return MultiStateInputObject(presentValue=1, numberOfStates=states, **common)
        units = BACNET_UNITS.get(point.unit, "noUnits")
        if point.writable:
            return CommandedAnalogOutput(presentValue=0.0, relinquishDefault=0.0, units=units, covIncrement=0.0,
                                         **common)
        return AnalogInputObject(presentValue=0.0, units=units, covIncrement=0.0, **common)
