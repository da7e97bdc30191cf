"""Fail-safe Modbus setpoints (SunSpec-style enable and revert timeout) on a simulated device behind a real
simulator, the device clock driven by the test; mbpoll reads the same registers."""

from __future__ import annotations

import asyncio
import re
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from park_copies import free_port
from waiting import eventually

from energy.environment import ParkEnvironment
from protocols.devices.host import DeviceHost
from protocols.devices.layout import REVERT_TIMEOUT_S, device_layouts
from protocols.errors import WriteRefused
from protocols.modbus_client import ModbusAdapter
from protocols.pointmap import ModbusDeviceMap, ModbusPoint
from twin.config import load_park
from twin.sim import ParkSimulator

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo-park" / "park.yaml"
LIMIT = "b1.pv_roof_south.power_limit_pct"
SCHEDULE_LIMIT_PCT = 100.0
"""The plant schedule's PV power limit: no curtailment."""
START_UTC = datetime(2026, 7, 1, 4, 0, tzinfo=UTC)  # noon in the park


async def mbpoll(port: int, address: int, count: int = 1) -> list[int]:
    """Holding registers read by mbpoll (PDU addressing), not by ParkTwin's adapter."""
    process = await asyncio.create_subprocess_exec(
        "mbpoll", "-m", "tcp", "-a", "1", "-0", "-1", "-o", "5", "-t", "4", "-r", str(address), "-c", str(count),
        "-p", str(port), "127.0.0.1", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    found = dict(re.findall(r"^\[(\d+)\]:\s+(-?\d+)", out.decode(), flags=re.MULTILINE))
    return [int(found[str(a)]) for a in range(address, address + count)]


@pytest.mark.skipif(shutil.which("mbpoll") is None, reason="mbpoll not installed (bash .ci/setup installs it)")
def test_setpoint_reverts_to_the_schedule_after_its_timeout_and_a_release_returns_it_at_once():
    park = load_park(DEMO)
    layout = next(layout for layout in device_layouts(park) if layout.name == "pv_roof_south")
    port = free_port()
    device = layout.point_map(port)
    fail_safe = device.point(LIMIT).fail_safe
    assert fail_safe.revert_timeout_s == REVERT_TIMEOUT_S == 3600
    simulator = ParkSimulator(park, ParkEnvironment(park), START_UTC)
    clock = [START_UTC]

    async def scenario():
        host = DeviceHost(simulator, lambda: clock[0], [device])
        await host.start()
        stop = asyncio.Event()
        stepping = asyncio.create_task(host.run(stop))
        adapter = ModbusAdapter(device)

        async def limit_reads(value: float) -> bool:
            return (await adapter.read())[LIMIT].value == pytest.approx(value)

        async def advance_to(when: datetime) -> None:
            clock[0] = when
            await eventually(lambda: _true(simulator.now_utc > when), f"the simulator to reach {when}")

        try:
            await eventually(lambda: limit_reads(SCHEDULE_LIMIT_PCT), "the schedule's limit")
            await adapter.write(LIMIT, 40.0)  # at START_UTC on the device clock; in force from the next step
            await advance_to(clock[0] + simulator.step)
            await eventually(lambda: limit_reads(40.0), "the written limit in force")
            enable_and_timeout = await mbpoll(port, fail_safe.enable_address, 2)
            # no rewrite: still in force just before the timeout ...
            await advance_to(START_UTC + timedelta(seconds=REVERT_TIMEOUT_S - 120))
            before_timeout = (await adapter.read())[LIMIT].value
            # ... and back on the schedule once it has run out, with the enable register cleared
            await advance_to(START_UTC + timedelta(seconds=REVERT_TIMEOUT_S + 120))
            await eventually(lambda: limit_reads(SCHEDULE_LIMIT_PCT), "the schedule's limit after the timeout")
            after_timeout = await mbpoll(port, fail_safe.enable_address, 1)

            # a release (enable register 0) hands the point back at once, long before any timeout
            await adapter.write(LIMIT, 30.0)
            await advance_to(clock[0] + simulator.step)
            await eventually(lambda: limit_reads(30.0), "the second written limit in force")
            enabled_again = await mbpoll(port, fail_safe.enable_address, 1)
            await adapter.write(LIMIT, None)
            released = await mbpoll(port, fail_safe.enable_address, 1)
            await advance_to(clock[0] + simulator.step)
            await eventually(lambda: limit_reads(SCHEDULE_LIMIT_PCT), "the schedule's limit after the release")
        finally:
            stop.set()
            await stepping
            await adapter.close()
            await host.stop()
        return enable_and_timeout, before_timeout, after_timeout, enabled_again, released

    enable_and_timeout, before_timeout, after_timeout, enabled_again, released = asyncio.run(scenario())
    assert enable_and_timeout == [1, REVERT_TIMEOUT_S]  # written by ParkTwin with the setpoint
    assert before_timeout == pytest.approx(40.0)
    assert after_timeout == [0]
    assert enabled_again == [1] and released == [0]


async def _true(value: bool) -> bool:
    return value


def test_a_point_without_fail_safe_cannot_be_released_and_says_why():
    device = ModbusDeviceMap(name="d", port=free_port(), points=[
        ModbusPoint(id="a.b.setpoint_kw", address=0, type="int16", writable=True, low_limit=-10, high_limit=10)])
    with pytest.raises(WriteRefused, match="declares no fail_safe"):
        asyncio.run(ModbusAdapter(device).write("a.b.setpoint_kw", None))


def test_fail_safe_registers_must_not_be_another_points_and_need_a_writable_holding_register():
    from pydantic import ValidationError

    from protocols.pointmap import point_map_issues

    device = ModbusDeviceMap(name="d", port=1502, points=[
        ModbusPoint(id="a.b.setpoint_kw", address=0, type="int16", writable=True, low_limit=-10, high_limit=10,
                    fail_safe={"enable_address": 1, "revert_timeout_s": 60}),
        ModbusPoint(id="a.b.power_kw", address=1, type="int16")])
    assert point_map_issues(device) == [(("points", 0, "fail_safe", "enable_address"),
                                         "holding_register 1 is point 'a.b.power_kw'")]
    with pytest.raises(ValidationError, match="fail_safe applies to writable holding_register points only"):
        ModbusPoint(id="a.b.power_kw", address=1, type="int16", fail_safe={"enable_address": 2, "revert_timeout_s": 60})
