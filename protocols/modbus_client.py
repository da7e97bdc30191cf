"""Modbus TCP client adapter (pymodbus, async): coalesced reads, decoding, limited and checked writes.

One persistent connection per device, one exchange on it at a time (a poll, or
a write's requests), so that a poll that times out and drops the connection
never cuts a write short, as many devices take one request at a time anyway.
The points of a device are grouped into
as few read requests as possible (:func:`plan_reads`). A Modbus exception
response or an undecodable value marks the points it concerns BAD; each
point keeps the registers it was decoded from (:class:`RawValue`). A lost
connection or a timeout raises :class:`DeviceUnreachable`, which the
coordinator turns into COMM_FAIL for every point of the device; a reply
that is not an answer to the request (garbage, another transaction id, cut
short) raises :class:`BadReply` saying which, logged once per device per
``MISBEHAVIOUR_LOG_INTERVAL_S``. pymodbus's own logging is limited to
errors that are not the device's (:func:`quiet_pymodbus`).

A writable point with ``fail_safe`` (SunSpec-style enable and revert-timeout
registers, see :class:`protocols.pointmap.ModbusFailSafe`) is written as
revert timeout, setpoint, enable = 1, and released (``write(point, None)``)
by writing enable = 0; Modbus has no other relinquish.
"""

from __future__ import annotations

import asyncio
import logging
import math
import struct
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, cast

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException
from pymodbus.pdu import ModbusPDU

from protocols.codec import CodecError, decode, encode
from protocols.errors import BadReply, DeviceUnreachable, WriteRefused
from protocols.pointmap import BIT_TABLES, ModbusDeviceMap, ModbusPoint
from protocols.values import MODBUS_EXCEPTIONS, PointValue, PointValues, RawValue, hex_words
from twin.readings import Quality

READ_FUNCTIONS = {"coil": "read_coils", "discrete_input": "read_discrete_inputs",
                  "input_register": "read_input_registers", "holding_register": "read_holding_registers"}
SCALE_FACTOR_NOT_IMPLEMENTED = -32768
"""SunSpec marks an unimplemented scale-factor register with 0x8000."""
MISBEHAVIOUR_LOG_INTERVAL_S = 60.0
"""At most one log line per device in this many seconds (monotonic) for replies that are no answer."""
MBAP = struct.Struct(">HHHB")
"""Modbus TCP header: transaction id, protocol id, length (unit id + PDU bytes), unit id."""

log = logging.getLogger(__name__)


def quiet_pymodbus() -> None:
    """Limit pymodbus's logger to errors: it logs each frame it cannot use with a dump of the bytes,
    which a misbehaving device turns into a flood; the adapter reports such replies itself."""
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)


def describe_bad_reply(request: bytes, received: bytes) -> str | None:
    """What is wrong with ``received`` as the answer to the Modbus TCP ``request`` (both whole frames
    with their MBAP header), or None when nothing was received."""
    if not received:
        return None
    shown = received[:16].hex(" ") + (" ..." if len(received) > 16 else "")
    if len(received) < MBAP.size + 1:
        return f"short reply: {len(received)} bytes ({shown}), a Modbus TCP frame has at least 8"
    transaction, protocol, length, unit = MBAP.unpack(received[:MBAP.size])
    if protocol != 0 or not 2 <= length <= 254:
        return f"garbage reply, not Modbus TCP ({shown})"
    if len(received) < 6 + length:
        return f"short reply: {len(received)} of the {6 + length} bytes its header announces ({shown})"
    if len(request) >= MBAP.size + 1:
        expected = int.from_bytes(request[:2], "big")
        if transaction != expected:
            return f"reply with transaction id {transaction}, the request had {expected} ({shown})"
        if received[MBAP.size] & 0x7F != request[MBAP.size]:
            return (f"reply of function {received[MBAP.size]} to a request of function "
                    f"{request[MBAP.size]} ({shown})")
        if unit != request[6]:
            return f"reply from unit id {unit} to a request to unit id {request[6]} ({shown})"
    return f"malformed reply ({shown})"


@dataclass
class ReadBlock:
    """One read request: ``count`` registers (or bits) of ``table`` from ``start``."""

    table: str
    start: int
    count: int
    points: list[ModbusPoint] = field(default_factory=list)

    @property
    def end(self) -> int:
        return self.start + self.count


def plan_reads(points: list[ModbusPoint], max_count: int = 125, max_gap: int = 16) -> list[ReadBlock]:
    """Group points into read blocks per table, each at most ``max_count`` long.

    A block grows to take the next point (in address order) while the unused
    registers between them are at most ``max_gap``. A point's scale-factor
    register is read too (as a one-register span), so it is fetched in the same request when near.
    """
    spans: dict[str, list[tuple[int, int, ModbusPoint | None]]] = {}
    for point in points:
        spans.setdefault(point.table, []).append((point.address, point.register_count, point))
        if point.scale_factor_register is not None:
            spans[point.table].append((point.scale_factor_register, 1, None))
    blocks: list[ReadBlock] = []
    for table, items in spans.items():
        limit = max_count if table not in BIT_TABLES else min(2000, max_count * 16)
        current: ReadBlock | None = None
        for start, count, spanned in sorted(items, key=lambda item: item[0]):
            end = start + count
            if (current is not None and start - current.end <= max_gap
                    and max(end, current.end) - current.start <= limit):
                current.count = max(end, current.end) - current.start
            else:
                current = ReadBlock(table, start, count)
                blocks.append(current)
            if spanned is not None:
                current.points.append(spanned)
    return blocks


class ModbusAdapter:
    """Reads and writes one Modbus TCP device described by its point map."""

    def __init__(self, device: ModbusDeviceMap, monotonic_s: Callable[[], float] = time.monotonic):
        quiet_pymodbus()
        self.device = device
        self.blocks = plan_reads(device.points, device.max_registers_per_read, device.max_gap_registers)
        self.requests_sent = 0
        self.bad_replies = 0
        self._client: AsyncModbusTcpClient | None = None
        self._points = {p.id: p for p in device.points}
        self._sent = b""
        self._received = b""
        self._monotonic_s = monotonic_s
        self._last_logged_s: float | None = None
        self._unlogged = 0
        self._exchange = asyncio.Lock()  # one poll or write at a time on the connection

    @property
    def point_ids(self) -> list[str]:
        return self.device.point_ids

    async def read(self) -> PointValues:
        """Every point's value, quality and raw value. Raises DeviceUnreachable when the device does not answer."""
        async with self._exchange:
            return await self._read()

    async def _read(self) -> PointValues:
        client = await self._connected()
        memory: dict[tuple[str, int], int] = {}
        exceptions: dict[str, int] = {}
        for block in self.blocks:
            response = await self._call(getattr(client, READ_FUNCTIONS[block.table]), block.start, count=block.count)
            if response.isError():
                # its points find no registers and are marked BAD, keeping the exception code
                exceptions.update((p.id, int(response.exception_code)) for p in block.points)
                continue
            words = list(response.bits[:block.count]) if block.table in BIT_TABLES else list(response.registers)
            memory.update(((block.table, block.start + i), int(w)) for i, w in enumerate(words))
        return {point.id: self._decode_point(point, memory, exceptions.get(point.id))
                for point in self.device.points}

    async def write(self, point_id: str, value: float | None) -> None:
        """Write an engineering value to a writable point; refuse values outside its safe limits.

        With a ``fail_safe``, the revert timeout is written first and the enable register (1) last;
        ``None`` releases such a point to the device's own schedule (enable register 0)."""
        point = self._points[point_id]
        if not point.writable:
            raise WriteRefused(f"{point_id} is not writable")
        fail_safe = point.fail_safe
        if value is None:
            if fail_safe is None:
                raise WriteRefused(f"{point_id}: cannot be released: Modbus has no relinquish and its point map "
                                   f"declares no fail_safe enable register; write a value")
            async with self._exchange:
                await self._write_register(await self._connected(), point_id, fail_safe.enable_address, 0)
            return
        if point.low_limit is None or point.high_limit is None:  # the point map's validation refuses this
            raise WriteRefused(f"{point_id} has no safe limits")
        if not math.isfinite(value) or not point.low_limit <= value <= point.high_limit:
            raise WriteRefused(f"{value:g} is outside the safe limits of {point_id} "
                               f"[{point.low_limit:g}, {point.high_limit:g}]")
        async with self._exchange:
            await self._write_value(point, value)

    async def _write_value(self, point: ModbusPoint, value: float) -> None:
        """The requests of a write within safe limits: revert timeout, setpoint (scaled by the device's
        current scale factor), enable."""
        point_id, fail_safe = point.id, point.fail_safe
        client = await self._connected()
        if fail_safe is not None and fail_safe.revert_timeout_address is not None:
            await self._write_register(client, point_id, fail_safe.revert_timeout_address, fail_safe.revert_timeout_s)
        scale_factor = 0
        if point.scale_factor_register is not None:
            response = await self._call(client.read_holding_registers, point.scale_factor_register, count=1)
            if response.isError():
                raise WriteRefused(f"{point_id}: cannot read its scale factor (exception {response.exception_code})")
            scale_factor = int(decode(list(response.registers), "int16"))
        if point.table == "coil":
            response = await self._call(client.write_coil, point.address, bool(value))
        else:
            try:
                registers = encode(point.to_raw(value, scale_factor), point.type, point.word_order, point.byte_order)
            except CodecError as exc:
                raise WriteRefused(f"{point_id}: {exc}") from None
            if len(registers) == 1:
                response = await self._call(client.write_register, point.address, registers[0])
            else:
                response = await self._call(client.write_registers, point.address, registers)
        if response.isError():
            raise WriteRefused(f"{point_id}: device answered with {_exception_text(response.exception_code)}")
        if fail_safe is not None:
            await self._write_register(client, point_id, fail_safe.enable_address, 1)

    async def _write_register(self, client: AsyncModbusTcpClient, point_id: str, address: int, word: int) -> None:
        response = await self._call(client.write_register, address, word)
        if response.isError():
            raise WriteRefused(f"{point_id}: device answered the write of {word} to register {address} with "
                               f"{_exception_text(response.exception_code)}")

    async def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    async def _connected(self) -> AsyncModbusTcpClient:
        if self._client is not None and self._client.connected:
            return self._client
        await self.close()
        client = AsyncModbusTcpClient(self.device.host, port=self.device.port, timeout=self.device.timeout_s,
                                      retries=0, reconnect_delay=0, trace_packet=self._trace_packet)
        try:
            connected = await asyncio.wait_for(client.connect(), self.device.timeout_s)
        except (TimeoutError, OSError, ModbusException) as exc:
            client.close()
            raise DeviceUnreachable(f"{self.device.host}:{self.device.port}: {exc or 'timeout'}") from None
        if not connected:
            client.close()
            raise DeviceUnreachable(f"{self.device.host}:{self.device.port}: connection refused")
        self._client = client
        return client

    def _trace_packet(self, sending: bool, data: bytes) -> bytes:
        """Keep the request sent and the bytes received since (pymodbus passes its unread buffer)."""
        if sending:
            self._sent, self._received = data, b""
        elif data:
            self._received = data
        return data

    async def _call(self, method: Callable[..., Awaitable[ModbusPDU]], *args: Any, **kwargs: Any) -> ModbusPDU:
        self.requests_sent += 1
        self._sent = self._received = b""
        try:
            return await asyncio.wait_for(method(*args, device_id=self.device.device_id, **kwargs),
                                          self.device.timeout_s)
        except (TimeoutError, OSError, ModbusException) as exc:
            await self.close()
            where = f"{self.device.name} ({self.device.host}:{self.device.port})"
            problem = describe_bad_reply(self._sent, self._received)
            if problem is not None:
                self._log_misbehaviour(f"{where}: {problem}")
                raise BadReply(f"{where}: {problem}") from None
            if isinstance(exc, asyncio.TimeoutError):
                raise DeviceUnreachable(f"{where}: no answer within {self.device.timeout_s:g} s") from None
            raise DeviceUnreachable(f"{where}: {type(exc).__name__} {exc}") from None

    def _log_misbehaviour(self, message: str) -> None:
        """One warning per device per MISBEHAVIOUR_LOG_INTERVAL_S; the ones in between are counted."""
        self.bad_replies += 1
        now = self._monotonic_s()
        if self._last_logged_s is not None and now - self._last_logged_s < MISBEHAVIOUR_LOG_INTERVAL_S:
            self._unlogged += 1
            return
        more = f" ({self._unlogged} more since the last report)" if self._unlogged else ""
        log.warning("%s%s", message, more)
        self._last_logged_s, self._unlogged = now, 0

    @staticmethod
    def _decode_point(point: ModbusPoint, memory: dict[tuple[str, int], int],
                      exception: int | None = None) -> PointValue:
        """Decode a point's registers once into its engineering value and quality, keeping the raw value
        (or the exception code the device answered its read with)."""
        found = [memory.get((point.table, a)) for a in range(point.address, point.address + point.register_count)]
        if None in found:
            return PointValue(None, Quality.BAD, None if exception is None else RawValue(None, exception=exception))
        registers = cast(list[int], found)  # none is missing
        if point.table in BIT_TABLES:
            bit = int(bool(registers[0]))
            return PointValue(float(bit), Quality.GOOD, RawValue(bit))
        words, scale_factor = hex_words(registers), None
        if point.scale_factor_register is not None:
            sf_word = memory.get((point.table, point.scale_factor_register))
            scale_factor = SCALE_FACTOR_NOT_IMPLEMENTED if sf_word is None else int(decode([sf_word], "int16"))
        try:
            unscaled = decode(registers, point.type, point.word_order, point.byte_order)
        except CodecError:
            return PointValue(None, Quality.BAD, RawValue(None, words, scale_factor))
        raw = RawValue(unscaled, words, scale_factor)
        if isinstance(unscaled, str):
            return PointValue(None, Quality.BAD, raw)  # text is not a number the twin can hold
        if scale_factor is not None and not -10 <= scale_factor <= 10:
            return PointValue(None, Quality.BAD, raw)
        value = point.to_engineering(unscaled, scale_factor or 0)
        if not math.isfinite(value):
            return PointValue(None, Quality.BAD, raw)
        return PointValue(value, Quality.GOOD, raw)


def _exception_text(code: int) -> str:
    return f"Modbus exception {code} ({MODBUS_EXCEPTIONS.get(code, 'unknown')})"
