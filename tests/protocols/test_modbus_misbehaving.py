"""The Modbus adapter and `parktwin points read` against devices that misbehave (a small TCP server written
here): garbage, another transaction id or a cut-short reply is reported as what it is, logged once per device;
exception codes and large values are shown in full."""

from __future__ import annotations

import asyncio
import logging
import re
import struct
import sys
from pathlib import Path

import pytest
from park_copies import copy_demo_park, free_port
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from protocols.codec import encode
from protocols.errors import BadReply, DeviceUnreachable
from protocols.modbus_client import ModbusAdapter, describe_bad_reply
from protocols.pointmap import ModbusDeviceMap, ModbusPoint

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 1.0
"""Adapter timeout: the misbehaving server's reply (a few milliseconds away) arrives well within it, even on a
loaded machine. A read answered by something that is no answer lasts this long: the adapter waits out its
timeout for a reply that fits before it says what it got instead."""


def valid_reply(request: bytes) -> bytes:
    """A well-formed answer to a read of holding registers: every register 0x0001."""
    transaction, _, _, unit = struct.unpack(">HHHB", request[:7])
    count = int.from_bytes(request[10:12], "big")
    pdu = bytes([3, 2 * count]) + b"\x00\x01" * count
    return struct.pack(">HHHB", transaction, 0, len(pdu) + 1, unit) + pdu


MISBEHAVIOURS = {
    "garbage": lambda request: b"\xde\xad\xbe\xef\x99\x42\x00\x17\x42\x42\x42\x42",
    "wrong transaction id": lambda request: (
        struct.pack(">H", (int.from_bytes(request[:2], "big") + 1) % 65536) + valid_reply(request)[2:]),
    "short": lambda request: valid_reply(request)[:5],
}


async def misbehaving_server(port: int, kind: str) -> asyncio.Server:
    """Answers every request (one per read) with the misbehaviour ``kind``; keeps the connection open."""
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                header = await reader.readexactly(7)
                request = header + await reader.readexactly(struct.unpack(">H", header[4:6])[0] - 1)
                writer.write(MISBEHAVIOURS[kind](request))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", port)


def device_map(port: int) -> ModbusDeviceMap:
    return ModbusDeviceMap(name="odd", port=port, timeout_s=TIMEOUT_S,
                           points=[ModbusPoint(id="a.b.x", address=0, type="uint16")])


@pytest.mark.parametrize("kind, said", [("garbage", "garbage reply, not Modbus TCP (de ad be ef"),
                                        ("wrong transaction id", "reply with transaction id"),
                                        ("short", "short reply: 5 bytes")])
def test_a_reply_that_is_no_answer_is_reported_as_what_it_is(kind, said):
    port = free_port()

    async def scenario():
        server = await misbehaving_server(port, kind)
        adapter = ModbusAdapter(device_map(port))
        try:
            with pytest.raises(BadReply) as raised:
                await adapter.read()
        finally:
            await adapter.close()
            server.close()
        return str(raised.value)

    message = asyncio.run(scenario())
    assert said in message and f"odd (127.0.0.1:{port})" in message
    assert "Timeout" not in message


def test_describe_bad_reply_names_the_transaction_ids():
    request = struct.pack(">HHHBBHH", 7, 0, 6, 1, 3, 0, 1)
    reply = struct.pack(">HHHBBBH", 8, 0, 5, 1, 3, 2, 1)
    assert describe_bad_reply(request, reply).startswith("reply with transaction id 8, the request had 7")
    assert describe_bad_reply(request, b"") is None  # nothing received: a plain timeout


def test_a_device_that_keeps_misbehaving_is_logged_once_and_pymodbus_stays_quiet(caplog):
    port = free_port()
    caplog.set_level(logging.DEBUG)

    async def scenario():
        server = await misbehaving_server(port, "garbage")
        adapter = ModbusAdapter(device_map(port))
        try:
            for _ in range(3):
                with pytest.raises(BadReply):
                    await adapter.read()
        finally:
            await adapter.close()
            server.close()
        return adapter

    adapter = asyncio.run(scenario())
    assert adapter.bad_replies == 3
    ours = [r for r in caplog.records if r.name == "protocols.modbus_client"]
    assert len(ours) == 1 and ours[0].levelno == logging.WARNING and "garbage reply" in ours[0].getMessage()
    assert [r for r in caplog.records if r.name.startswith("pymodbus")] == []


def test_a_silent_device_is_still_reported_as_not_answering():
    port = free_port()

    async def silent(reader, writer):
        await reader.read(1024)
        await asyncio.sleep(30)

    async def scenario():
        server = await asyncio.start_server(silent, "127.0.0.1", port)
        adapter = ModbusAdapter(ModbusDeviceMap(name="mute", port=port, timeout_s=0.3,
                                                points=[ModbusPoint(id="a.b.x", address=0)]))
        try:
            with pytest.raises(DeviceUnreachable) as raised:
                await adapter.read()
        finally:
            await adapter.close()
            server.close()
        return raised.value

    error = asyncio.run(scenario())
    assert not isinstance(error, BadReply) and "no answer within 0.3 s" in str(error)


# ------------------------------------------------------------------ through `parktwin points read`


def battery_map_to(park_file: Path, port: int, points: str) -> None:
    """Point the copied park's battery map at ``port`` with ``points`` (YAML flow lines) as its only points."""
    (park_file.parent / "pointmaps" / "battery.yaml").write_text(
        f"protocol: modbus\nname: battery\nport: {port}\ntimeout_s: {TIMEOUT_S}\npoints:\n{points}", encoding="utf-8")


async def points_read(park_file: Path, point_id: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "parktwin", "points", "read", str(park_file), point_id, cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 120)
    return process.returncode, out.decode(), err.decode()


def test_points_read_says_garbage_without_the_is_it_running_hint_or_a_traceback(tmp_path):
    park_file = copy_demo_park(tmp_path)
    port = free_port()
    battery_map_to(park_file, port, "  - {id: plant.battery.soc_pct, address: 0}\n")

    async def scenario():
        server = await misbehaving_server(port, "garbage")
        try:
            return await points_read(park_file, "plant.battery.soc_pct")
        finally:
            server.close()

    code, out, err = asyncio.run(scenario())
    assert code == 1, out + err
    assert "garbage reply, not Modbus TCP" in err
    assert "devices serve" not in err and "Traceback" not in err


def test_points_read_shows_every_digit_and_the_exception_code(tmp_path):
    park_file = copy_demo_park(tmp_path)
    port = free_port()
    battery_map_to(park_file, port, "  - {id: plant.battery.stored_energy_kwh, address: 0, type: float64, unit: kWh}\n"
                                    "  - {id: plant.battery.soc_pct, address: 300}\n")  # no register there
    registers = encode(3_000_000_000.0, "float64")

    async def scenario():
        server = ModbusTcpServer(SimDevice(id=1, simdata=[SimData(0, values=registers, datatype=DataType.REGISTERS)]),
                                 address=("127.0.0.1", port))
        await server.serve_forever(background=True)
        try:
            return (await points_read(park_file, "plant.battery.stored_energy_kwh"),
                    await points_read(park_file, "plant.battery.soc_pct"))
        finally:
            await server.shutdown()

    (code, out, err), (soc_code, soc_out, soc_err) = asyncio.run(scenario())
    assert code == 0, err
    assert re.search(r"plant\.battery\.stored_energy_kwh = 3000000000 kWh", out), out
    assert soc_code == 0, soc_err
    assert "= unknown" in soc_out and "raw Modbus exception 2 (illegal data address)" in soc_out, soc_out
