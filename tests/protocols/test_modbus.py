"""Modbus adapter against real pymodbus servers on 127.0.0.1: coalescing, decoding, quality, writes."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import pytest
from park_copies import free_port
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from protocols.codec import encode
from protocols.coordinator import DeviceCoordinator
from protocols.devices.layout import DeviceLayout, device_layouts
from protocols.devices.modbus_server import ModbusDeviceServer
from protocols.errors import DeviceUnreachable, WriteRefused
from protocols.modbus_client import ModbusAdapter, plan_reads
from protocols.pointmap import ModbusDeviceMap, ModbusPoint
from protocols.values import RawValue, raw_text
from twin.config import load_park
from twin.readings import Quality

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo-park" / "park.yaml"


def point(pid: str, address: int, data_type: str = "uint16", **extra) -> ModbusPoint:
    return ModbusPoint(id=pid, address=address, type=data_type, **extra)


def test_plan_reads_coalesces_within_gap_and_limit():
    points = [point("a.b.p1", 0), point("a.b.p2", 5, "float32"), point("a.b.p3", 30),  # gap 23 > 16: new block
              point("a.b.p4", 40, "uint64"), point("a.b.p5", 200, "int16", scale_factor_register=201)]
    blocks = plan_reads(points, max_count=125, max_gap=16)
    # by hand: [0..7), [30..44), [200..202)
    assert [(b.start, b.count) for b in blocks] == [(0, 7), (30, 14), (200, 2)]
    assert [len(b.points) for b in blocks] == [2, 2, 1]
    many = [point(f"a.b.p{i}", i) for i in range(300)]
    assert [(b.start, b.count) for b in plan_reads(many, max_count=125)] == [(0, 125), (125, 125), (250, 50)]


async def _raw_server(port: int, registers: dict[int, int]) -> ModbusTcpServer:
    start = min(registers)
    values = [registers.get(a, 0) for a in range(start, max(registers) + 1)]
    server = ModbusTcpServer(SimDevice(id=1, simdata=[SimData(start, values=values, datatype=DataType.REGISTERS)]),
                             address=("127.0.0.1", port))
    await server.serve_forever(background=True)
    return server


def test_decoding_word_orders_scale_factors_and_marking_garbage_keeps_the_raw_registers():
    port = free_port()
    registers = {100: 0x2000, 101: 0x47F1,          # float32 123456.0 as CDAB (DOMAIN.md)
                 102: 0xFB2E, 103: 0xFFFE,          # int16 -1234 with scale factor -2: -12.34
                 104: 0x7FC0, 105: 0x0000,          # float32 NaN: garbage
                 106: 500, 107: 0x8000,             # scale factor "not implemented"
                 108: 0x47F1, 109: 0x2000,          # float32 123456.0 as ABCD (DOMAIN.md)
                 110: 0xFB2E}                       # int16 -1234, scale 0.1: -123.4
    device = ModbusDeviceMap(name="d", port=port, points=[
        point("a.b.cdab", 100, "float32", word_order="little"),
        point("a.b.sf", 102, "int16", scale_factor_register=103),
        point("a.b.nan", 104, "float32"),
        point("a.b.no_sf", 106, "uint16", scale_factor_register=107),
        point("a.b.abcd", 108, "float32"),
        point("a.b.scaled", 110, "int16", scale=0.1),
        point("a.b.missing", 300, "uint16"),  # the server answers this block with an exception
    ])

    async def scenario():
        server = await _raw_server(port, registers)
        adapter = ModbusAdapter(device)
        try:
            values = await adapter.read()
        finally:
            await adapter.close()
            await server.shutdown()
        return values, adapter

    values, adapter = asyncio.run(scenario())
    assert values["a.b.cdab"] == (123456.0, Quality.GOOD, RawValue(123456.0, "0x2000 0x47F1"))
    assert values["a.b.abcd"] == (123456.0, Quality.GOOD, RawValue(123456.0, "0x47F1 0x2000"))
    assert values["a.b.scaled"] == (pytest.approx(-123.4), Quality.GOOD, RawValue(-1234, "0xFB2E"))
    assert values["a.b.sf"] == (pytest.approx(-12.34), Quality.GOOD, RawValue(-1234, "0xFB2E", -2))
    # bad points keep what they were decoded from: that is why they are bad
    nan = values["a.b.nan"]
    assert nan[:2] == (None, Quality.BAD) and nan.raw.words == "0x7FC0 0x0000" and math.isnan(nan.raw.value)
    assert nan.raw.as_json()["value"] == "nan"  # JSON has no NaN
    assert values["a.b.no_sf"] == (None, Quality.BAD, RawValue(500, "0x01F4", -32768))
    # answered with exception 2 (illegal data address): the code is the raw value
    assert values["a.b.missing"] == (None, Quality.BAD, RawValue(None, exception=2))
    assert raw_text(values["a.b.missing"].raw.as_json()) == "Modbus exception 2 (illegal data address)"
    assert adapter.requests_sent == 2  # 100..107 in one request, 300 in another


def test_silent_device_times_out_into_comm_fail_without_raising():
    port = free_port()
    device = ModbusDeviceMap(name="mute", port=port, timeout_s=0.3, points=[point("a.b.x", 0)])

    async def silent(reader, writer):
        await reader.read(1024)  # swallow the request, never answer
        await asyncio.sleep(5)

    async def scenario():
        server = await asyncio.start_server(silent, "127.0.0.1", port)
        coordinator = DeviceCoordinator(ModbusAdapter(device))
        try:
            values = await coordinator.poll()
        finally:
            server.close()
        return values, coordinator

    values, coordinator = asyncio.run(scenario())
    assert values == {"a.b.x": (None, Quality.COMM_FAIL, None)}  # nothing received: no raw value
    assert coordinator.available is False and coordinator.failures == 1
    assert coordinator.next_poll_s > 0


def test_refused_connection_raises_device_unreachable():
    device = ModbusDeviceMap(name="gone", port=free_port(), points=[point("a.b.x", 0)])
    with pytest.raises(DeviceUnreachable):
        asyncio.run(ModbusAdapter(device).read())


@pytest.fixture(scope="module")
def battery_layout() -> DeviceLayout:
    park = load_park(DEMO)
    return next(layout for layout in device_layouts(park) if layout.name == "battery")


def test_simulated_battery_reads_and_writes_within_limits(battery_layout):
    port = free_port()
    values = {p.id: v for p, v in zip(battery_layout.points, [-437.0, 55.5, 1110.0, 31.25, 0.05, 0.0])}
    written: list[tuple[str, float]] = []

    def write_setpoint(pid: str, value: float) -> None:
        if not -1000 <= value <= 1000:
            raise ValueError("outside limits")
        written.append((pid, value))

    device = battery_layout.point_map(port)

    async def scenario():
        server = ModbusDeviceServer(battery_layout, "127.0.0.1", port, values.get, write_setpoint)
        await server.start()
        adapter = ModbusAdapter(device)
        try:
            read = await adapter.read()
            await adapter.write("plant.battery.power_setpoint_kw", -250.0)
            with pytest.raises(WriteRefused, match="outside the safe limits"):
                await adapter.write("plant.battery.power_setpoint_kw", 1500.0)
            with pytest.raises(WriteRefused, match="not writable"):
                await adapter.write("plant.battery.soc_pct", 50.0)
            # bypass the client's check: the device itself answers exception 3 (illegal value)
            client = await adapter._connected()
            response = await client.write_registers(40156, encode(5000.0, "float32"), device_id=1)
            # a register that is no writable point: exception 2 (illegal address)
            response_ro = await client.write_register(40084, 1, device_id=1)
        finally:
            await adapter.close()
            await server.stop()
        return read, response, response_ro

    read, response, response_ro = asyncio.run(scenario())
    # W register holds power / 100 W (scale factor 2, as 1000 kW needs it), SOC one decimal
    assert read["plant.battery.power_kw"][0] == pytest.approx(-437.0, abs=0.1)
    assert read["plant.battery.power_kw"].raw == RawValue(-4370, "0xEEEE", 2)  # -4370 x 10^2 x 0.001 kW
    assert read["plant.battery.soc_pct"][0] == pytest.approx(55.5)
    assert read["plant.battery.cell_temp_max_c"] == (31.25, Quality.GOOD, RawValue(31.25, "0x41FA 0x0000"))
    assert written == [("plant.battery.power_setpoint_kw", -250.0)]
    assert response.isError() and response.exception_code == 3
    assert response_ro.isError() and response_ro.exception_code == 2


def test_single_and_multiple_register_writes_land_where_the_map_says():
    port = free_port()
    device = ModbusDeviceMap(name="d", port=port, points=[
        point("a.b.limit_pct", 10, "uint16", scale=0.1, writable=True, low_limit=0, high_limit=100),
        point("a.b.setpoint_kw", 20, "int32", word_order="little", writable=True, low_limit=-500, high_limit=500),
    ])

    async def scenario():
        server = await _raw_server(port, dict.fromkeys(range(10, 22), 0))
        adapter = ModbusAdapter(device)
        try:
            await adapter.write("a.b.limit_pct", 23.4)  # one register: function 6
            await adapter.write("a.b.setpoint_kw", -300)  # two registers: function 16
            client = await adapter._connected()
            raw = (await client.read_holding_registers(10, count=12, device_id=1)).registers
            values = await adapter.read()
        finally:
            await adapter.close()
            await server.shutdown()
        return raw, values

    raw, values = asyncio.run(scenario())
    assert raw[0] == 234  # 23.4 % / 0.1
    assert raw[10:12] == [0xFED4, 0xFFFF]  # -300 = 0xFFFFFED4, low word first (CDAB)
    assert values["a.b.limit_pct"] == (pytest.approx(23.4), Quality.GOOD, RawValue(234, "0x00EA"))
    assert values["a.b.setpoint_kw"] == (-300, Quality.GOOD, RawValue(-300, "0xFED4 0xFFFF"))
