"""Modbus TCP client adapter (pymodbus, async): coalesced reads, decoding, limited and checked writes.

One persistent connection per device. The points of a device are grouped into
as few read requests as possible (:func:`plan_reads`). A Modbus exception
response or an undecodable value marks the points it concerns BAD; each
point keeps the registers it was decoded from (:class:`RawValue`). A lost
connection or a timeout raises :class:`DeviceUnreachable`, which the
coordinator turns into COMM_FAIL for every point of the device.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, field

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

from protocols.codec import CodecError, decode, encode
from protocols.errors import DeviceUnreachable, WriteRefused
from protocols.pointmap import BIT_TABLES, ModbusDeviceMap, ModbusPoint
from protocols.values import PointValue, PointValues, RawValue, hex_words
from twin.readings import Quality

READ_FUNCTIONS = {"coil": "read_coils", "discrete_input": "read_discrete_inputs",
                  "input_register": "read_input_registers", "holding_register": "read_holding_registers"}
SCALE_FACTOR_NOT_IMPLEMENTED = -32768
"""SunSpec marks an unimplemented scale-factor register with 0x8000."""


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
        for start, count, point in sorted(items, key=lambda item: item[0]):
            end = start + count
            if current is not None and start - current.end <= max_gap and max(end, current.end) - current.start <= limit:
                current.count = max(end, current.end) - current.start
            else:
                current = ReadBlock(table, start, count)
                blocks.append(current)
            if point is not None:
                current.points.append(point)
    return blocks


class ModbusAdapter:
    """Reads and writes one Modbus TCP device described by its point map."""

    def __init__(self, device: ModbusDeviceMap):
        self.device = device
        self.blocks = plan_reads(device.points, device.max_registers_per_read, device.max_gap_registers)
        self.requests_sent = 0
        self._client: AsyncModbusTcpClient | None = None
        self._points = {p.id: p for p in device.points}

    @property
    def point_ids(self) -> list[str]:
        return self.device.point_ids

    async def read(self) -> PointValues:
        """Every point's value, quality and raw value. Raises DeviceUnreachable when the device does not answer."""
        client = await self._connected()
        memory: dict[tuple[str, int], int] = {}
        for block in self.blocks:
            response = await self._call(getattr(client, READ_FUNCTIONS[block.table]), block.start, count=block.count)
            if response.isError():
                continue  # its points find no registers and are marked BAD
            words = list(response.bits[:block.count]) if block.table in BIT_TABLES else list(response.registers)
            memory.update(((block.table, block.start + i), int(w)) for i, w in enumerate(words))
        return {point.id: self._decode_point(point, memory) for point in self.device.points}

    async def write(self, point_id: str, value: float | None) -> None:
        """Write an engineering value to a writable point; refuse values outside its safe limits."""
        point = self._points[point_id]
        if not point.writable:
            raise WriteRefused(f"{point_id} is not writable")
        if value is None:
            raise WriteRefused(f"{point_id}: Modbus has no relinquish; write a value")
        if not math.isfinite(value) or not point.safe_min <= value <= point.safe_max:
            raise WriteRefused(f"{value:g} is outside the safe limits of {point_id} [{point.safe_min:g}, {point.safe_max:g}]")
        client = await self._connected()
        scale_factor = 0
        if point.scale_factor_register is not None:
            response = await self._call(client.read_holding_registers, point.scale_factor_register, count=1)
            if response.isError():
                raise WriteRefused(f"{point_id}: cannot read its scale factor (exception {response.exception_code})")
            scale_factor = decode(response.registers, "int16")
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
            raise WriteRefused(f"{point_id}: device answered with Modbus exception {response.exception_code}")

    async def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    async def _connected(self) -> AsyncModbusTcpClient:
        if self._client is not None and self._client.connected:
            return self._client
        await self.close()
        client = AsyncModbusTcpClient(self.device.host, port=self.device.port, timeout=self.device.timeout_s,
                                      retries=0, reconnect_delay=0)
        try:
            connected = await asyncio.wait_for(client.connect(), self.device.timeout_s)
        except (asyncio.TimeoutError, OSError, ModbusException) as exc:
            client.close()
            raise DeviceUnreachable(f"{self.device.host}:{self.device.port}: {exc or 'timeout'}") from None
        if not connected:
            client.close()
            raise DeviceUnreachable(f"{self.device.host}:{self.device.port}: connection refused")
        self._client = client
        return client

    async def _call(self, method, *args, **kwargs):
        self.requests_sent += 1
        try:
            return await asyncio.wait_for(method(*args, device_id=self.device.device_id, **kwargs),
                                          self.device.timeout_s)
        except (asyncio.TimeoutError, OSError, ModbusException) as exc:
            await self.close()
            raise DeviceUnreachable(f"{self.device.name}: {type(exc).__name__} {exc}") from None

    @staticmethod
    def _decode_point(point: ModbusPoint, memory: dict[tuple[str, int], int]) -> PointValue:
        """Decode a point's registers once into its engineering value and quality, keeping the raw value."""
        registers = [memory.get((point.table, a)) for a in range(point.address, point.address + point.register_count)]
        if None in registers:
            return PointValue(None, Quality.BAD)  # the device answered its request with an exception
        if point.table in BIT_TABLES:
            bit = int(bool(registers[0]))
            return PointValue(float(bit), Quality.GOOD, RawValue(bit))
        words, scale_factor = hex_words(registers), None
        if point.scale_factor_register is not None:
            sf_word = memory.get((point.table, point.scale_factor_register))
            scale_factor = SCALE_FACTOR_NOT_IMPLEMENTED if sf_word is None else decode([sf_word], "int16")
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
