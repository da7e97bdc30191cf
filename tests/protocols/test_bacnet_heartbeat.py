"""The BACnet heartbeat watchdog on a simulated device behind a real simulator, the device clock driven by the
test: ParkTwin's polls write the heartbeat; when they stop, the device relinquishes ParkTwin's priority and
the plant schedule's value (the relinquish default) is in force. The priority array is read by a plain
bacpypes3 client, not ParkTwin's adapter."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from bacpypes3.ipv4.app import NormalApplication
from bacpypes3.local.device import DeviceObject
from bacpypes3.pdu import Address, IPv4Address
from bacpypes3.primitivedata import ObjectIdentifier
from park_copies import free_port
from waiting import eventually

from energy.environment import ParkEnvironment
from protocols.bacnet_client import BacnetAdapter, make_client_application
from protocols.coordinator import DeviceCoordinator
from protocols.devices.host import DeviceHost
from protocols.devices.layout import HEARTBEAT_INSTANCE, HEARTBEAT_TIMEOUT_S, device_layouts
from protocols.pointmap import BacnetDeviceMap, point_map_issues
from twin.config import load_park
from twin.sim import ParkSimulator

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo-park" / "park.yaml"
SETPOINT = "plant.chiller1.chw_setpoint_c"
SETPOINT_OBJECT = "analog-output,1"
START_UTC = datetime(2026, 7, 1, 4, 0, tzinfo=UTC)  # noon in the park
TIMEOUT_S = 5.0
"""Generous request timeout: the tests must hold on a loaded machine."""


def plain_client() -> NormalApplication:
    """A BACnet client that is not ParkTwin's: bacpypes3 as any tool would use it."""
    device = DeviceObject(objectIdentifier=("device", 4000002), objectName="commissioning-tool", vendorIdentifier=999)
    return NormalApplication(device, IPv4Address("127.0.0.1:0"))


def test_heartbeats_keep_parktwins_command_and_silence_hands_the_point_back_to_the_schedule():
    park = load_park(DEMO)
    layout = next(layout for layout in device_layouts(park) if layout.name == "chiller1")
    port = free_port()
    device: BacnetDeviceMap = layout.point_map(port).model_copy(update={"timeout_s": TIMEOUT_S})
    assert device.heartbeat.instance == HEARTBEAT_INSTANCE and device.heartbeat.timeout_s == HEARTBEAT_TIMEOUT_S
    simulator = ParkSimulator(park, ParkEnvironment(park), START_UTC)
    clock = [START_UTC]
    address = Address(f"127.0.0.1:{port}")
    seen: dict = {}

    async def scenario():
        host = DeviceHost(simulator, lambda: clock[0], [device])
        await host.start()
        stop = asyncio.Event()
        stepping = asyncio.create_task(host.run(stop))
        app, tool = make_client_application(), plain_client()
        adapter = BacnetAdapter(device, app)
        coordinator = DeviceCoordinator(adapter)

        async def slots() -> dict[int, float]:
            array = await tool.read_property(address, ObjectIdentifier(SETPOINT_OBJECT), "priority-array")
            return {i + 1: float(getattr(e, e._choice)) for i, e in enumerate(array) if e.null is None}

        async def present_and_default() -> tuple[float, float]:
            present = await tool.read_property(address, ObjectIdentifier(SETPOINT_OBJECT), "present-value")
            default = await tool.read_property(address, ObjectIdentifier(SETPOINT_OBJECT), "relinquish-default")
            return float(present), float(default)

        async def advance_to(when: datetime) -> None:
            clock[0] = when
            await eventually(lambda: _true(simulator.now_utc > when), f"the simulator to reach {when}")

        async def poll() -> None:
            values = await coordinator.poll()
            assert values[SETPOINT].value is not None and coordinator.heartbeat_error == ""

        async def relinquished_to_schedule() -> bool:
            present, default = await present_and_default()
            return 10 not in await slots() and present == pytest.approx(default)

        try:
            await poll()
            seen["schedule"] = (await present_and_default())[1]
            await adapter.write(SETPOINT, 8.0)  # at the map's priority, 10

            # heartbeats every 15 minutes for twice the timeout: ParkTwin's command stays
            for _ in range(4):
                await advance_to(clock[0] + timedelta(minutes=15))
                await poll()
            seen["held"] = await slots()
            last_beat = clock[0]

            # no heartbeat: held until the timeout, relinquished once it has run out
            await advance_to(last_beat + timedelta(seconds=HEARTBEAT_TIMEOUT_S - 120))
            seen["before_timeout"] = await slots()
            await advance_to(last_beat + timedelta(seconds=HEARTBEAT_TIMEOUT_S + 120))
            await eventually(relinquished_to_schedule, "priority 10 relinquished after the timeout")
            seen["after_timeout"] = (await slots(), await present_and_default())
            await advance_to(clock[0] + simulator.step)  # the schedule's value, reported by the plant
            seen["schedule_after"] = await present_and_default()

            # a command without a new heartbeat is not relinquished again (the watchdog waits for both) ...
            answer = await tool.write_property(address, ObjectIdentifier(SETPOINT_OBJECT), "present-value", 9.0,
                                               priority=10)
            assert answer is None, answer
            await advance_to(clock[0] + timedelta(seconds=2 * HEARTBEAT_TIMEOUT_S))
            seen["disarmed"] = await slots()
            # ... a new heartbeat and a new command arm it again
            await poll()
            await adapter.write(SETPOINT, 8.5)
            await advance_to(clock[0] + timedelta(seconds=HEARTBEAT_TIMEOUT_S + 120))
            await eventually(relinquished_to_schedule, "priority 10 relinquished again")
            heartbeat = await tool.read_property(address, ObjectIdentifier(f"analog-value,{HEARTBEAT_INSTANCE}"),
                                                 "priority-array")
            seen["heartbeat_slots"] = [i + 1 for i, e in enumerate(heartbeat) if e.null is None]
        finally:
            stop.set()
            await stepping
            await adapter.close()
            app.close()
            tool.close()
            await host.stop()

    asyncio.run(scenario())
    assert seen["held"] == {10: 8.0}
    assert seen["before_timeout"] == {10: 8.0}
    slots_after, (present, default) = seen["after_timeout"]
    assert slots_after == {} and present == default
    present, default = seen["schedule_after"]
    assert present == default == pytest.approx(seen["schedule"])
    assert seen["disarmed"] == {10: 9.0}
    assert seen["heartbeat_slots"] == []


async def _true(value: bool) -> bool:
    return value


def test_heartbeat_object_must_not_be_a_point_and_outlasts_the_poll_period():
    from pydantic import ValidationError

    points = [{"id": "a.b.setpoint_c", "object_type": "analog-value", "instance": 1, "writable": True,
               "low_limit": 0, "high_limit": 10}]
    device = BacnetDeviceMap(name="d", port=47808, device_instance=1, points=points,
                             heartbeat={"object_type": "analog-value", "instance": 1, "timeout_s": 60})
    assert point_map_issues(device) == [(("heartbeat", "instance"), "analog-value,1 is point 'a.b.setpoint_c'")]
    with pytest.raises(ValidationError, match=r"heartbeat\.timeout_s must be longer than poll_period_s"):
        BacnetDeviceMap(name="d", port=47808, device_instance=1, points=points, poll_period_s=60,
                        heartbeat={"instance": 900, "timeout_s": 60})
