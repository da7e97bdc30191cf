"""Independent tools against `parktwin devices serve`: mbpoll (Debian) and pysunspec2 (PyPI);
points read/write/discover."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_support import parktwin as cli
from park_copies import copy_demo_park, stop_with_ctrl_c

from protocols.pointmap import load_point_maps
from twin.config import load_park
from twin.history import open_history, write_audit

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The demo park's devices served on free ports; the simulation nearly frozen (speed 0.01) so values hold still."""
    park_file = copy_demo_park(tmp_path_factory.mktemp("served"))
    park = load_park(park_file)
    maps = {m.name: m for m in load_point_maps(park.point_maps, park)}
    process = subprocess.Popen([sys.executable, "-m", "parktwin", "devices", "serve", str(park_file),
                                "--speed", "0.01"],
                               cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while cli("points", "read", str(park_file), "plant.battery.soc_pct").returncode != 0:
            assert process.poll() is None, process.stderr.read()
            assert time.monotonic() < deadline, "devices did not come up"
            time.sleep(0.5)
        yield park_file, maps
    finally:
        stop_with_ctrl_c(process)


def twin_read(park_file: Path, point_id: str) -> tuple[float, str]:
    """The value the twin's adapter reads, and the raw value it shows, through `parktwin points read`."""
    result = cli("points", "read", str(park_file), point_id)
    assert result.returncode == 0, result.stderr
    found = re.search(rf"{re.escape(point_id)} = (\S+) .*; raw ([^)]*\)?)\)", result.stdout)
    return float(found.group(1)), found.group(2)


def twin_value(park_file: Path, point_id: str) -> float:
    return twin_read(park_file, point_id)[0]


@pytest.mark.skipif(shutil.which("mbpoll") is None, reason="mbpoll not installed (bash .ci/setup installs it)")
def test_mbpoll_reads_the_inverter_values_the_twin_shows(served):
    park_file, maps = served
    device = maps["pv_roof_south"]
    by_id = {p.id: p for p in device.points}
    for point_id in ("b1.pv_roof_south.ac_power_kw", "b1.pv_roof_south.cell_temp_c"):
        point = by_id[point_id]
        assert point.scale_factor_register == point.address + 1  # value and scale factor side by side
        # mbpoll counts references from 1: protocol address 40084 is reference 40085
        result = subprocess.run(["mbpoll", "-m", "tcp", "-p", str(device.port), "-a", "1", "-t", "4", "-r",
                                 str(point.address + 1), "-c", "2", "-1", "127.0.0.1"],
                                capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, result.stdout + result.stderr
        registers = dict(re.findall(r"\[(\d+)\]:\s+(-?\d+)", result.stdout))
        raw = int(registers[str(point.address + 1)])
        scale_factor = int(registers[str(point.address + 2)])
        scale_factor = scale_factor - 65536 if scale_factor > 32767 else scale_factor
        expected = raw * 10 ** scale_factor * point.scale  # SunSpec: value x 10^SF, W -> kW
        value, shown_raw = twin_read(park_file, point_id)
        assert value == pytest.approx(expected, abs=1e-6)
        # the raw value the integrator sees is mbpoll's register, as hex and as the signed number it holds
        word = int(registers[str(point.address + 1)]) & 0xFFFF
        assert shown_raw == f"0x{word:04X} = {raw} (sf {scale_factor})"


def test_pysunspec2_scans_the_inverter_and_the_battery(served):
    sunspec_client = pytest.importorskip("sunspec2.modbus.client")
    park_file, maps = served
    park = load_park(park_file)
    found = {}
    for name in ("pv_roof_south", "battery"):
        device = sunspec_client.SunSpecModbusClientDeviceTCP(slave_id=1, ipaddr="127.0.0.1", ipport=maps[name].port,
                                                             timeout=5)
        try:
            device.scan()
            found[name] = device
            assert device.base_addr == 40000
            common = device.common[0]
            assert (common.Mn.value, common.SN.value) == ("ParkTwin", name)
            inverter = device.models[103][0]
            assert inverter.Hz.cvalue == 50.0
            rating_w = 1000 * (park.asset(name).inverter_ac_kw if name.startswith("pv") else 1000)
            assert -rating_w <= inverter.W.cvalue <= rating_w
            twin_kw = twin_value(park_file, f"{park.building_of(name).id}.{name}." +
                                 ("ac_power_kw" if name.startswith("pv") else "power_kw"))
            assert inverter.W.cvalue / 1000 == pytest.approx(twin_kw, abs=0.1)
        finally:
            device.close()
    assert [m for m in found["pv_roof_south"].models if isinstance(m, int)] == [1, 103, 64100]
    assert [m for m in found["battery"].models if isinstance(m, int)] == [1, 103, 124, 64100]
    storage = found["battery"].models[124][0]
    battery = park.asset("battery")
    assert battery.soc_min_pct <= storage.ChaState.cvalue <= battery.soc_max_pct
    assert storage.ChaState.cvalue == pytest.approx(twin_value(park_file, "plant.battery.soc_pct"))
    assert storage.WChaMax.cvalue == 1000 * battery.charge_power_max_kw


def test_points_write_enforces_limits_and_is_audited(served, tmp_path):
    park_file, _ = served
    history = f"sqlite:///{tmp_path / 'audit.sqlite'}"
    ok = cli("points", "write", str(park_file), "plant.chiller2.chw_setpoint_c", "9.5", "--who", "tester",
             "--history", history)
    assert ok.returncode == 0, ok.stderr
    assert twin_value(park_file, "plant.chiller2.chw_setpoint_c") == 9.5
    too_high = cli("points", "write", str(park_file), "plant.chiller2.chw_setpoint_c", "25", "--history", history)
    assert too_high.returncode == 2 and "outside safe limits [5, 12]" in too_high.stderr
    relinquish = cli("points", "write", str(park_file), "plant.chiller2.chw_setpoint_c", "null", "--history", history)
    assert relinquish.returncode == 0, relinquish.stderr
    assert twin_value(park_file, "plant.chiller2.chw_setpoint_c") == 7.0  # the schedule's setpoint again
    negative = cli("points", "write", "--history", history, str(park_file), "plant.battery.power_setpoint_kw",
                   "--", "-250")  # options first: after -- everything is an argument
    assert negative.returncode == 0, negative.stderr
    with open_history(history) as store:
        audit = write_audit(store)
    assert [(r.who, r.point_id, r.value, r.result.split(":")[0]) for r in audit] == [
        ("tester", "plant.chiller2.chw_setpoint_c", 9.5, "ok"),
        ("cli", "plant.chiller2.chw_setpoint_c", 25.0, "refused"),
        ("cli", "plant.chiller2.chw_setpoint_c", None, "ok"),
        ("cli", "plant.battery.power_setpoint_kw", -250.0, "ok"),
    ]


def test_discover_writes_a_skeleton_that_validates_once_bound(served, tmp_path):
    park_file, maps = served
    out = tmp_path / "found.yaml"
    result = cli("points", "discover", "--bacnet", f"127.0.0.1:{maps['elevator1'].port}", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert cli("points", "validate", str(out)).returncode == 0
    unbound = cli("points", "validate", str(out), "--park", str(park_file))
    assert unbound.returncode == 2 and "no twin point 'todo.elevator1.power_kw'" in unbound.stderr
    bound = out.read_text().replace("todo.elevator1.", "b1.elevator1.")
    out.write_text(bound)
    beside = cli("points", "validate", str(out), "--park", str(park_file))  # the park's own map feeds them too
    assert beside.returncode == 2 and "'b1.elevator1.power_kw' is fed by more than one point map" in beside.stderr
    own_map = Path(load_park(park_file).point_maps) / "elevator1.yaml"
    original = own_map.read_text()
    try:
        own_map.write_text(bound)  # the discovered map takes the place of the park's own
        assert cli("points", "validate", str(own_map), "--park", str(park_file)).returncode == 0
    finally:
        own_map.write_text(original)  # the served devices' maps stay as the fixture loaded them


def test_reading_a_device_nobody_serves_fails_with_exit_1(tmp_path):
    park_file = copy_demo_park(tmp_path)  # fresh free ports: nothing listens there
    result = cli("points", "read", str(park_file), "b1.pv_roof_south.ac_power_kw")
    assert result.returncode == 1 and "devices serve" in result.stderr and "Traceback" not in result.stderr


def test_discover_makes_unique_valid_ids_twin_units_and_writable_binaries(tmp_path):
    """A device this project did not lay out (bacpypes3's own objects): clashing and non-ASCII names, BACnet
    units, binary outputs and values. The skeleton validates as written."""
    import asyncio

    from bacpypes3.ipv4.app import NormalApplication
    from bacpypes3.local.analog import AnalogInputObject, AnalogValueObject
    from bacpypes3.local.binary import BinaryOutputObject, BinaryValueObject
    from bacpypes3.local.device import DeviceObject
    from bacpypes3.pdu import IPv4Address
    from park_copies import free_port

    port = free_port()
    out = tmp_path / "chiller.yaml"

    async def scenario():
        device = DeviceObject(objectIdentifier=("device", 2002), objectName="Chiller 2", vendorIdentifier=999,
                              maxApduLengthAccepted=1476, segmentationSupported="segmentedBoth")
        app = NormalApplication(device, IPv4Address(f"127.0.0.1:{port}"))
        for obj in (AnalogInputObject(objectIdentifier=("analog-input", 1), objectName="Power KW",
                                      presentValue=310.0, units="kilowatts", statusFlags=[0, 0, 0, 0]),
                    AnalogInputObject(objectIdentifier=("analog-input", 2), objectName="power_kw",
                                      presentValue=305.0, units="kilowatts", statusFlags=[0, 0, 0, 0]),
                    AnalogInputObject(objectIdentifier=("analog-input", 3), objectName="冷冻水供水温度",
                                      presentValue=7.1, units="degreesCelsius", statusFlags=[0, 0, 0, 0]),
                    AnalogValueObject(objectIdentifier=("analog-value", 4), objectName="CHW Setpoint",
                                      presentValue=7.0, units="degreesCelsius", statusFlags=[0, 0, 0, 0]),
                    BinaryOutputObject(objectIdentifier=("binary-output", 5), objectName="Pump Cmd",
                                       presentValue="inactive", relinquishDefault="inactive",
                                       statusFlags=[0, 0, 0, 0]),
                    BinaryValueObject(objectIdentifier=("binary-value", 6), objectName="Enable",
                                      presentValue="active", statusFlags=[0, 0, 0, 0])):
            app.add_object(obj)
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "parktwin", "points", "discover", "--bacnet", f"127.0.0.1:{port}", "--out",
                str(out), cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
            _, stderr = await asyncio.wait_for(process.communicate(), 120)
            return process.returncode, stderr.decode()
        finally:
            app.close()

    returncode, stderr = asyncio.run(scenario())
    assert returncode == 0, stderr
    validated = cli("points", "validate", str(out))
    assert validated.returncode == 0, validated.stderr
    device = load_point_maps(tmp_path)[0]
    assert device.name == "chiller_2" and device.device_instance == 2002
    points = {p.instance: p for p in device.points}
    assert [points[i].id for i in sorted(points)] == [
        "todo.chiller_2.power_kw", "todo.chiller_2.power_kw_ai2", "todo.chiller_2.ai3",
        "todo.chiller_2.chw_setpoint", "todo.chiller_2.pump_cmd", "todo.chiller_2.enable"]
    assert [points[i].unit for i in sorted(points)] == ["kW", "kW", "degC", "degC", "bool", "bool"]
    assert points[3].description == "冷冻水供水温度"  # the device's own name stays beside the made-up id
    assert [(points[i].writable, points[i].low_limit, points[i].high_limit) for i in (5, 6)] == [(True, 0, 1)] * 2
    assert (points[4].writable, points[4].low_limit, points[4].high_limit) == (True, 7.0, 7.0)
    assert not any(points[i].writable for i in (1, 2, 3))
