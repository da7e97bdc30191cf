"""A simulated Modbus TCP device (pymodbus server) serving one asset's SunSpec register map.

Registers are refreshed from the simulator's latest values on every read;
a write to a writable point's registers is decoded and handed to the
simulator, which enforces the point's limits: a refused value is answered
with Modbus exception 3 (illegal data value), a write to any other register
with exception 2 (illegal data address).
"""

from __future__ import annotations

import logging
from typing import Callable

from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from protocols.codec import CodecError, decode, encode
from protocols.devices.layout import NOT_IMPLEMENTED_INT16, NOT_IMPLEMENTED_UINT16, DeviceLayout
from protocols.pointmap import ModbusPoint

log = logging.getLogger(__name__)

ValueOf = Callable[[str], float | None]
WriteSetpoint = Callable[[str, float], None]


class ModbusDeviceServer:
    """Serves ``layout`` on host:port; values come from ``value_of``, writes go to ``write_setpoint``."""

    def __init__(self, layout: DeviceLayout, host: str, port: int, value_of: ValueOf, write_setpoint: WriteSetpoint):
        self.layout = layout
        self.host, self.port = host, port
        self.value_of = value_of
        self.write_setpoint = write_setpoint
        self.points: list[ModbusPoint] = layout.points
        self._scale_factors = {p.id: decode([layout.constants[p.scale_factor_register]], "int16")
                               if p.scale_factor_register is not None else 0 for p in self.points}
        first, last = min(layout.constants), max(layout.constants)
        self._start = first
        image = [layout.constants.get(a, 0) for a in range(first, last + 1)]
        self._server: ModbusTcpServer | None = None
        self._device = SimDevice(id=layout.address, simdata=[SimData(first, values=image, datatype=DataType.REGISTERS)],
                                 action=self._action)

    @property
    def name(self) -> str:
        return self.layout.name

    async def start(self) -> None:
        if self._server is not None:
            return
        server = ModbusTcpServer(self._device, address=(self.host, self.port))
        try:
            await server.serve_forever(background=True)
        except RuntimeError as exc:  # pymodbus reports a failed listen (port in use) this way
            raise OSError(f"Modbus device {self.name} cannot listen on {self.host}:{self.port}: {exc}") from None
        self._server = server

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.shutdown()
            self._server = None

    @property
    def running(self) -> bool:
        return self._server is not None

    async def _action(self, function_code: int, start_address: int, address: int, count: int,
                      registers: list[int], set_values: list[int] | list[bool] | None) -> ExcCodes | None:
        if set_values is None:
            self._refresh(start_address, address, count, registers)
            return None
        return self._write(start_address, address, [int(v) for v in set_values], registers)

    def _refresh(self, start_address: int, address: int, count: int, registers: list[int]) -> None:
        for point in self.points:
            if point.address + point.register_count <= address or point.address >= address + count:
                continue
            offset = point.address - start_address
            registers[offset:offset + point.register_count] = self._encode(point)

    def _encode(self, point: ModbusPoint) -> list[int]:
        value = self.value_of(point.id)
        if value is not None:
            try:
                return encode(point.to_raw(value, self._scale_factors[point.id]), point.type, point.word_order,
                              point.byte_order)
            except CodecError:
                pass  # does not fit the register: report "not implemented", as SunSpec devices do
        if point.type.startswith("float"):
            return encode(float("nan"), point.type, point.word_order, point.byte_order)
        fill = NOT_IMPLEMENTED_INT16 if point.type.startswith("int") else NOT_IMPLEMENTED_UINT16
        return [fill] * point.register_count

    def _write(self, start_address: int, address: int, values: list[int], registers: list[int]) -> ExcCodes | None:
        end = address + len(values)
        touched = [p for p in self.points if p.address < end and p.address + p.register_count > address]
        if not touched or any(not p.writable or p.address < address or p.address + p.register_count > end
                              for p in touched):
            return ExcCodes.ILLEGAL_ADDRESS
        for point in touched:
            words = values[point.address - address:point.address - address + point.register_count]
            try:
                value = point.to_engineering(decode(words, point.type, point.word_order, point.byte_order),
                                             self._scale_factors[point.id])
                self.write_setpoint(point.id, value)
            except (CodecError, ValueError) as exc:
                log.info("device %s refused a write to %s: %s", self.name, point.id, exc)
                return ExcCodes.ILLEGAL_VALUE
        return None
