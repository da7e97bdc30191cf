"""Commanding BACnet points as a supervisory controller must: at its own priority, never over an operator's
override, with values the object can hold, and reading the object's status with its value.

Every test runs a simulated BACnet device (bacpypes3) on a free port of 127.0.0.1; where a second party is
needed (an operator, a commissioning tool) it is a bacpypes3 client of its own, not ParkTwin's adapter.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from bacpypes3.ipv4.app import NormalApplication
from bacpypes3.local.device import DeviceObject
from bacpypes3.pdu import Address, IPv4Address
from bacpypes3.primitivedata import Null, ObjectIdentifier
from park_copies import free_port

from protocols.bacnet_client import BacnetAdapter, make_client_application
from protocols.coordinator import write_result
from protocols.devices.bacnet_server import BacnetDeviceServer
from protocols.devices.layout import device_layouts
from protocols.pointmap import BacnetDeviceMap
from twin.config import load_park
from twin.readings import Quality

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo-park" / "park.yaml"
SETPOINT = "plant.chiller1.chw_setpoint_c"
SETPOINT_OBJECT = "analog-output,1"
TIMEOUT_S = 5.0
"""Generous request timeout: the tests must hold on a loaded machine."""


@pytest.fixture(scope="module")
def park():
    return load_park(DEMO)


class Plant:
    """The simulator's setpoint interface, reduced to what a device asks of it: a setpoint in force per point,
    the schedule's value when released."""

    def __init__(self, values: dict[str, float]):
        self.values = values
        self.schedule = dict(values)
        self.calls: list[tuple] = []

    def write_setpoint(self, pid, value):
        self.calls.append(("write", pid, value))
        self.values[pid] = value

    def release_setpoint(self, pid):
        self.calls.append(("release", pid))
        self.values[pid] = self.schedule[pid]


CHILLER_VALUES = {"plant.chiller1.running": 1.0, "plant.chiller1.mode": 2.0, "plant.chiller1.power_kw": 361.5,
                  "plant.chiller1.chw_supply_temp_c": 6.9, SETPOINT: 7.0, "plant.chiller1.mode_cmd": 0.0}


def serve(park, name: str, plant: Plant, port: int) -> BacnetDeviceServer:
    layout = next(layout for layout in device_layouts(park) if layout.name == name)
    limits = {pid: (p.spec.low_limit, p.spec.high_limit) for pid, p in park.points.items()}
    return BacnetDeviceServer(layout, "127.0.0.1", port, plant.values.get, plant.write_setpoint,
                              plant.release_setpoint, limits)


def other_client(instance: int = 4000001) -> NormalApplication:
    """A BACnet client that is not ParkTwin's: bacpypes3 as any tool would use it."""
    device = DeviceObject(objectIdentifier=("device", instance), objectName="operator-workstation",
                          vendorIdentifier=999)
    return NormalApplication(device, IPv4Address("127.0.0.1:0"))


@asynccontextmanager
async def chiller1_served(park, plant: Plant) -> AsyncIterator[tuple[BacnetDeviceServer, int, NormalApplication]]:
    """The simulated chiller1 on a free port, with ParkTwin's client application: (server, port, app)."""
    port = free_port()
    server = serve(park, "chiller1", plant, port)
    await server.start()
    app = make_client_application()
    try:
        yield server, port, app
    finally:
        app.close()
        await server.stop()


def adapter_for(server: BacnetDeviceServer, port: int, app, **update) -> BacnetAdapter:
    device: BacnetDeviceMap = server.layout.point_map(port).model_copy(update={"timeout_s": TIMEOUT_S, **update})
    return BacnetAdapter(device, app)


async def priority_slots(app, port: int, object_id: str) -> dict[int, float]:
    """The active entries of an object's priority array, read by ``app``: priority -> value."""
    array = await app.read_property(Address(f"127.0.0.1:{port}"), ObjectIdentifier(object_id), "priority-array")
    return {i + 1: getattr(entry, entry._choice) for i, entry in enumerate(array) if entry.null is None}


def test_operator_override_at_priority_8_is_reported_not_fought_and_writing_resumes_after_relinquish(park):
    plant = Plant(dict(CHILLER_VALUES))

    async def scenario():
        seen = {}
        async with chiller1_served(park, plant) as (server, port, app):
            operator = other_client()
            adapter = adapter_for(server, port, app, write_priority=12)
            address = Address(f"127.0.0.1:{port}")
            try:
                before = await adapter.read()
                seen["before"] = (adapter.overrides(), before[SETPOINT])
                seen["ok"] = await write_result(adapter, SETPOINT, 8.0)  # ParkTwin at 12
                answer = await operator.write_property(address, ObjectIdentifier(SETPOINT_OBJECT), "present-value",
                                                       9.5, priority=8)
                assert answer is None, answer
                polls = 0
                while SETPOINT not in adapter.overrides() and polls < 2:
                    overridden = await adapter.read()
                    polls += 1
                seen["overridden"] = (adapter.overrides(), overridden[SETPOINT], polls)
                seen["refused"] = await write_result(adapter, SETPOINT, 10.0)
                seen["slots_while_overridden"] = await priority_slots(operator, port, SETPOINT_OBJECT)
                # relinquishing ParkTwin's own slot is never refused
                seen["relinquish_own"] = await write_result(adapter, SETPOINT, None)
                await operator.write_property(address, ObjectIdentifier(SETPOINT_OBJECT), "present-value", Null(()),
                                              priority=8)
                polls = 0
                while SETPOINT in adapter.overrides() and polls < 2:
                    await adapter.read()
                    polls += 1
                seen["released"] = (adapter.overrides(), polls)
                seen["resumed"] = await write_result(adapter, SETPOINT, 10.0)
                seen["slots_after"] = await priority_slots(operator, port, SETPOINT_OBJECT)
            finally:
                operator.close()
        return seen

    seen = asyncio.run(scenario())
    assert seen["before"][0] == {} and seen["before"][1].raw.override_priority is None
    assert seen["ok"] == "ok"
    overrides, reading, polls = seen["overridden"]
    assert overrides == {SETPOINT: 8} and polls <= 2
    assert reading.value == pytest.approx(9.5) and reading.quality == Quality.GOOD  # the operator's value is real
    assert reading.raw.override_priority == 8 and "overridden at priority 8" in reading.raw.status
    assert reading.raw.as_json()["override_priority"] == 8
    assert seen["refused"].startswith("refused: ") and "priority 8" in seen["refused"] \
        and "manual operator" in seen["refused"]
    assert seen["slots_while_overridden"] == {8: pytest.approx(9.5), 12: pytest.approx(8.0)}  # 10.0 never sent
    assert seen["relinquish_own"] == "ok"
    assert seen["released"] == ({}, seen["released"][1]) and seen["released"][1] <= 2
    assert seen["resumed"] == "ok"
    assert seen["slots_after"] == {12: pytest.approx(10.0)}


def test_single_shot_write_reads_the_priority_array_first(park):
    """No poll before the write (``parktwin points write``): the override is still respected."""
    plant = Plant(dict(CHILLER_VALUES))

    async def scenario():
        async with chiller1_served(park, plant) as (server, port, app):
            operator = other_client()
            try:
                await operator.write_property(Address(f"127.0.0.1:{port}"), ObjectIdentifier(SETPOINT_OBJECT),
                                              "present-value", 9.5, priority=8)
                result = await write_result(adapter_for(server, port, app), SETPOINT, 10.0)
                return result, await priority_slots(operator, port, SETPOINT_OBJECT)
            finally:
                operator.close()

    result, slots = asyncio.run(scenario())
    assert result.startswith("refused: ") and "priority 8" in result
    assert slots == {8: pytest.approx(9.5)}


def test_write_priority_per_map_and_per_point(park):
    layout = next(layout for layout in device_layouts(park) if layout.name == "chiller1")
    device = layout.point_map(47808)
    assert device.priority_of(device.points[0]) == 10  # supervisory control, below the operator's 8
    device = device.model_copy(update={"write_priority": 14})
    assert device.priority_of(device.points[0]) == 14
    assert device.priority_of(device.points[0].model_copy(update={"write_priority": 11})) == 11
    with pytest.raises(ValueError):
        BacnetDeviceMap.model_validate({**device.model_dump(), "write_priority": 17})


def test_fractional_state_is_refused_not_rounded(park):
    """A fractional state (2.5) to a multi-state command is refused with its reason, not rounded."""
    plant = Plant(dict(CHILLER_VALUES))

    async def scenario():
        async with chiller1_served(park, plant) as (server, port, app):
            adapter = adapter_for(server, port, app)
            return (await write_result(adapter, "plant.chiller1.mode_cmd", 2.5),
                    await write_result(adapter, "plant.chiller1.mode_cmd", 2.0))

    fractional, whole = asyncio.run(scenario())
    assert fractional.startswith("refused: ") and "2.5" in fractional and "not rounded" in fractional
    assert whole == "ok"
    assert plant.calls == [("write", "plant.chiller1.mode_cmd", 2.0)]  # 2.5 never reached the device


def binary_value_device(port: int, writable_type: str) -> tuple[BacnetDeviceMap, NormalApplication]:
    """A device ParkTwin did not write: plain bacpypes3 with a commandable binary output or value."""
    from bacpypes3.local.binary import BinaryOutputObject, BinaryValueObject
    from bacpypes3.local.cmd import Commandable

    class CommandableBinaryValue(Commandable, BinaryValueObject):
        pass

    kind = BinaryOutputObject if writable_type == "binary-output" else CommandableBinaryValue
    device = DeviceObject(objectIdentifier=("device", 777), objectName="third-party", vendorIdentifier=999)
    app = NormalApplication(device, IPv4Address(f"127.0.0.1:{port}"))
    extra = {"polarity": "normal"} if writable_type == "binary-output" else {}
    app.add_object(kind(objectIdentifier=(writable_type, 1), objectName="pump_enable", presentValue="inactive",
                        relinquishDefault="inactive", statusFlags=[0, 0, 0, 0], eventState="normal",
                        outOfService=False, **extra))
    point_map = BacnetDeviceMap.model_validate({
        "name": "third_party", "port": port, "device_instance": 777, "timeout_s": TIMEOUT_S,
        "points": [{"id": "b1.pump.enable", "object_type": writable_type, "instance": 1, "writable": True,
                    "low_limit": 0, "high_limit": 1}]})
    return point_map, app


@pytest.mark.parametrize("object_type", ["binary-output", "binary-value"])
def test_binary_points_are_written_as_active_inactive(object_type):
    """Binary objects are written as active/inactive, and any other value gives a result, not a traceback."""
    port = free_port()

    async def scenario():
        point_map, device_app = binary_value_device(port, object_type)
        app = make_client_application()
        adapter = BacnetAdapter(point_map, app)
        try:
            on = await write_result(adapter, "b1.pump.enable", 1.0)
            after_on = await adapter.read()
            half = await write_result(adapter, "b1.pump.enable", 0.5)
            off = await write_result(adapter, "b1.pump.enable", 0.0)
            after_off = await adapter.read()
        finally:
            app.close()
            device_app.close()
        return on, after_on, half, off, after_off

    on, after_on, half, off, after_off = asyncio.run(scenario())
    assert on == "ok" and after_on["b1.pump.enable"][:2] == (1.0, Quality.GOOD)
    assert after_on["b1.pump.enable"].raw.value == "active"
    assert half.startswith("refused: ") and "inactive" in half and "active" in half
    assert off == "ok" and after_off["b1.pump.enable"][:2] == (0.0, Quality.GOOD)


def test_write_errors_of_any_kind_become_a_result(park):
    """A device refusing, an object it does not have, a point not in the map: a result, never a traceback."""
    plant = Plant(dict(CHILLER_VALUES))

    async def scenario():
        async with chiller1_served(park, plant) as (server, port, app):
            adapter = adapter_for(server, port, app)
            missing = adapter.device.model_copy(update={"points": [
                p.model_copy(update={"instance": 99}) if p.id == SETPOINT else p for p in adapter.device.points]})
            return (await write_result(BacnetAdapter(missing, app), SETPOINT, 8.0),
                    await write_result(adapter, "b1.nothing.here", 1.0))

    missing_object, not_mapped = asyncio.run(scenario())
    assert missing_object.startswith("refused: ") and "unknown-object" in missing_object
    assert not_mapped.startswith("refused: ") and "b1.nothing.here" in not_mapped


def test_status_flags_and_reliability_mark_readings_bad(park):
    """Status flags, reliability and out-of-service mark a reading bad, the reason kept in its raw value."""
    plant = Plant(dict(CHILLER_VALUES))

    async def scenario():
        async with chiller1_served(park, plant) as (server, port, app):
            adapter = adapter_for(server, port, app)
            normal = await adapter.read()
            server._objects["plant.chiller1.power_kw"].outOfService = True
            server._objects["plant.chiller1.chw_supply_temp_c"].reliability = "over-range"
            return normal, await adapter.read()

    normal, flagged = asyncio.run(scenario())
    assert normal["plant.chiller1.power_kw"] == (361.5, Quality.GOOD, normal["plant.chiller1.power_kw"].raw)
    assert normal["plant.chiller1.power_kw"].raw.status is None
    power = flagged["plant.chiller1.power_kw"]
    assert power.quality == Quality.BAD and power.value == pytest.approx(361.5)  # the value is kept, marked
    assert power.raw.status == "out-of-service"
    temperature = flagged["plant.chiller1.chw_supply_temp_c"]
    assert temperature.quality == Quality.BAD
    assert temperature.raw.status == "fault, reliability over-range"
    assert flagged["plant.chiller1.mode"].quality == Quality.GOOD
