"""A ParkTwin that is killed (SIGKILL: no release, no clean stop) leaves no setpoint in force: the devices fall
back to the plant schedule by themselves within their declared timeouts. `parktwin devices serve --speed 600`
serves the demo park in one process, `parktwin run --devices field --approval auto` controls it from another;
after the kill, tools that are not ParkTwin's adapter check every point it wrote: mbpoll reads the Modbus
fail-safe enable registers (and the setpoint registers), a plain bacpypes3 client the BACnet priority arrays."""

from __future__ import annotations

import asyncio
import re
import shutil
import struct
import subprocess
import time

import pytest
from bacpypes3.ipv4.app import NormalApplication
from bacpypes3.local.device import DeviceObject
from bacpypes3.pdu import Address, IPv4Address
from bacpypes3.primitivedata import ObjectIdentifier

from protocols.pointmap import BacnetDeviceMap, ModbusDeviceMap, load_point_maps
from twin.config import load_park

SPEED = 600
BACK_WITHIN_S = 60.0
"""Wall-clock bound on the fall-back after the kill. The declared timeouts are 3600 simulated s, 6 s of wall
clock at 600x; the bound is generous so that it holds on a loaded machine."""
SCHEDULE_PV_LIMIT_PCT = 100.0
"""The plant schedule's PV power limit: no curtailment."""


def mbpoll(port: int, address: int, count: int) -> list[int]:
    """Holding registers (PDU addressing, unsigned) read by mbpoll, not by ParkTwin's adapter."""
    done = subprocess.run(["mbpoll", "-m", "tcp", "-a", "1", "-0", "-1", "-o", "5", "-t", "4", "-r", str(address),
                           "-c", str(count), "-p", str(port), "127.0.0.1"], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    found = dict(re.findall(r"^\[(\d+)\]:\s+(-?\d+)", done.stdout, flags=re.MULTILINE))
    return [int(found[str(a)]) & 0xFFFF for a in range(address, address + count)]


def modbus_state(device: ModbusDeviceMap, point_id: str) -> tuple[int, float]:
    """(fail-safe enable register, the setpoint register's float32 value) of a written Modbus point."""
    point = device.point(point_id)
    assert point.type == "float32" and point.fail_safe is not None
    (enable,) = mbpoll(device.port, point.fail_safe.enable_address, 1)
    words = mbpoll(device.port, point.address, 2)
    return enable, struct.unpack(">f", struct.pack(">HH", *words))[0]


async def bacnet_states(points: list[tuple[BacnetDeviceMap, str]]) -> dict[str, tuple[list[int], bool]]:
    """Per written BACnet point: the priorities holding a command, and whether the present value is the
    relinquish default; read by a plain bacpypes3 client."""
    tool = NormalApplication(DeviceObject(objectIdentifier=("device", 4000003), objectName="commissioning-tool",
                                          vendorIdentifier=999), IPv4Address("127.0.0.1:0"))
    try:
        states = {}
        for device, point_id in points:
            point = device.point(point_id)
            address, object_id = Address(f"{device.host}:{device.port}"), ObjectIdentifier(point.object_id)
            array = await asyncio.wait_for(tool.read_property(address, object_id, "priority-array"), 10)
            present = await asyncio.wait_for(tool.read_property(address, object_id, "present-value"), 10)
            default = await asyncio.wait_for(tool.read_property(address, object_id, "relinquish-default"), 10)
            states[point_id] = ([i + 1 for i, entry in enumerate(array) if entry.null is None], present == default)
        return states
    finally:
        tool.close()


@pytest.mark.skipif(shutil.which("mbpoll") is None, reason="mbpoll not installed (bash .ci/setup installs it)")
def test_after_sigkill_every_written_point_falls_back_to_the_plant_schedule(demo_park_copy, served_demo_park,
                                                                            field_run):
    park = load_park(demo_park_copy)
    maps = load_point_maps(demo_park_copy.parent / "pointmaps", park)
    device_of = {point_id: device for device in maps for point_id in device.point_ids}
    run = field_run
    run.wait_for(lambda: (live := run.get("/api/live")) and live["points_live"] >= len(device_of) // 2,
                 120, "readings from the field")
    plan = run.plan_with_rounds(1)

    written = sorted({w["point_id"] for r in plan["rounds"] for w in r["writes"]
                      if w["value"] is not None and w["result"] == "ok"})
    modbus = [p for p in written if isinstance(device_of[p], ModbusDeviceMap)]
    bacnet = [p for p in written if isinstance(device_of[p], BacnetDeviceMap)]
    assert modbus and bacnet, written
    assert all(device_of[p].heartbeat is not None for p in bacnet)
    slots = {p: device_of[p].priority_of(device_of[p].point(p)) for p in bacnet}

    run.process.kill()  # SIGKILL: nothing is released, no heartbeat is written again
    killed_at = time.monotonic()
    run.process.wait(timeout=30)

    while True:
        modbus_back = {p: modbus_state(device_of[p], p) for p in modbus}
        bacnet_back = asyncio.run(bacnet_states([(device_of[p], p) for p in bacnet]))
        if all(enable == 0 for enable, _ in modbus_back.values()) and \
                all(slots[p] not in active and at_default for p, (active, at_default) in bacnet_back.items()):
            break
        assert time.monotonic() - killed_at < BACK_WITHIN_S, (modbus_back, bacnet_back)
        time.sleep(0.2)
    took_s = time.monotonic() - killed_at
    assert served_demo_park.poll() is None  # the devices kept serving throughout
    print(f"SIGKILL: {len(modbus)} Modbus and {len(bacnet)} BACnet setpoints back on the plant schedule "
          f"{took_s:.1f} s (wall clock) after the kill")
    # Modbus: fail-safe enable 0, the setpoint register shows the schedule's value (PV: no curtailment)
    for point_id, (enable, value) in modbus_back.items():
        assert enable == 0
        if point_id.endswith("power_limit_pct"):
            assert value == pytest.approx(SCHEDULE_PV_LIMIT_PCT)
    # BACnet: ParkTwin's slot empty, the present value is the relinquish default (the schedule's)
    assert all(at_default for _, at_default in bacnet_back.values())
