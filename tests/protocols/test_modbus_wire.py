"""The simulated Modbus device against hand-built frames on a raw socket (Modbus application protocol v1.1b3,
Modbus TCP implementation guide): exception codes, unit ids 0 and 255, pipelined requests."""

from __future__ import annotations

import asyncio
import struct
from pathlib import Path

import pytest
from park_copies import free_port

from protocols.codec import encode
from protocols.devices.layout import device_layouts
from protocols.devices.modbus_server import ModbusDeviceServer
from twin.config import load_park

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo-park" / "park.yaml"
SETPOINT_ADDRESS = 40156
"""The battery's power setpoint (float32) in the simulated device's vendor model."""
SOC_ADDRESS = 40130


def frame(transaction: int, unit: int, pdu: bytes) -> bytes:
    return struct.pack(">HHHB", transaction, 0, len(pdu) + 1, unit) + pdu


def read_pdu(address: int, count: int) -> bytes:
    return struct.pack(">BHH", 3, address, count)


def write_pdu(address: int, registers: list[int]) -> bytes:
    return struct.pack(f">BHHB{len(registers)}H", 16, address, len(registers), 2 * len(registers), *registers)


async def answers(port: int, data: bytes, expected: int) -> list[tuple[int, int, bytes]]:
    """Send ``data`` in one segment; the first ``expected`` replies as (transaction id, unit id, PDU)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        replies = []
        for _ in range(expected):
            transaction, _, length, unit = struct.unpack(">HHHB", await asyncio.wait_for(reader.readexactly(7), 20))
            replies.append((transaction, unit, await asyncio.wait_for(reader.readexactly(length - 1), 20)))
        return replies
    finally:
        writer.close()


@pytest.fixture(scope="module")
def battery():
    park = load_park(DEMO)
    layout = next(layout for layout in device_layouts(park) if layout.name == "battery")
    values = {p.id: 0.0 for p in layout.points} | {"plant.battery.soc_pct": 55.5}
    return layout, values


def serve(battery, exchange):
    """Run ``exchange(port)`` against the simulated battery; return its result and the setpoints written."""
    layout, values = battery
    port = free_port()
    written: list[tuple[str, float]] = []

    async def scenario():
        server = ModbusDeviceServer(layout, "127.0.0.1", port, values.get, lambda p, v: written.append((p, v)))
        await server.start()
        try:
            return await exchange(port)
        finally:
            await server.stop()

    return asyncio.run(scenario()), written


@pytest.mark.parametrize("quantity", [0, 126, 2000])
def test_a_read_of_a_quantity_outside_1_to_125_is_illegal_data_value(battery, quantity):
    replies, _ = serve(battery, lambda port: answers(port, frame(7, 1, read_pdu(SOC_ADDRESS, quantity)), 1))
    assert replies == [(7, 1, bytes([0x83, 0x03]))]


def test_malformed_writes_are_illegal_data_value(battery):
    byte_count_wrong = struct.pack(">BHHB2H", 16, SETPOINT_ADDRESS, 2, 2, 0, 0)  # 2 registers, byte count 2
    too_many = struct.pack(">BHHB", 16, SETPOINT_ADDRESS, 124, 248)  # more than 123 registers, data cut off
    no_registers = write_pdu(SETPOINT_ADDRESS, [])
    short_write = bytes([6, 0x9C])  # function 6 without address and value
    replies, written = serve(battery, lambda port: answers(
        port, frame(1, 1, byte_count_wrong) + frame(2, 1, too_many) + frame(3, 1, short_write)
        + frame(4, 1, no_registers), 4))
    assert replies == [(1, 1, bytes([0x90, 0x03])), (2, 1, bytes([0x90, 0x03])), (3, 1, bytes([0x86, 0x03])),
                       (4, 1, bytes([0x90, 0x03]))]
    assert written == []


def test_an_unknown_function_code_is_illegal_function(battery):
    replies, _ = serve(battery, lambda port: answers(port, frame(9, 1, bytes([0x41, 0, 0])), 1))
    assert replies == [(9, 1, bytes([0xC1, 0x01]))]


def test_pipelined_requests_in_one_segment_each_get_their_answer_in_order(battery):
    segment = b"".join(frame(t, 1, read_pdu(SOC_ADDRESS, 1)) for t in (11, 12, 13))
    replies, _ = serve(battery, lambda port: answers(port, segment, 3))
    # SOC 55.5 % with scale factor -1: register 555
    assert replies == [(t, 1, bytes([0x03, 0x02]) + struct.pack(">H", 555)) for t in (11, 12, 13)]


def test_unit_id_255_addresses_the_device_itself(battery):
    replies, _ = serve(battery, lambda port: answers(port, frame(5, 255, read_pdu(SOC_ADDRESS, 1)), 1))
    assert replies == [(5, 255, bytes([0x03, 0x02]) + struct.pack(">H", 555))]


def test_a_broadcast_write_is_carried_out_unanswered_and_a_broadcast_read_is_refused(battery):
    broadcast_write = frame(21, 0, write_pdu(SETPOINT_ADDRESS, encode(-250.0, "float32")))
    broadcast_read = frame(22, 0, read_pdu(SOC_ADDRESS, 1))
    other_unit = frame(23, 7, read_pdu(SOC_ADDRESS, 1))  # another device's request: no answer either
    follow_up = frame(24, 1, read_pdu(SOC_ADDRESS, 1))
    replies, written = serve(battery, lambda port: answers(port, broadcast_write + broadcast_read + other_unit
                                                           + follow_up, 2))
    assert replies == [(22, 0, bytes([0x83, 0x01])), (24, 1, bytes([0x03, 0x02]) + struct.pack(">H", 555))]
    assert written == [("plant.battery.power_setpoint_kw", -250.0)]


def test_a_frame_that_is_not_modbus_tcp_closes_the_connection(battery):
    async def exchange(port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(struct.pack(">HHHB", 1, 0x1234, 6, 1) + read_pdu(SOC_ADDRESS, 1))  # protocol id 0x1234
        await writer.drain()
        data = await asyncio.wait_for(reader.read(100), 20)
        writer.close()
        return data

    data, _ = serve(battery, exchange)
    assert data == b""  # closed without an answer
