"""A simulated Modbus TCP device (pymodbus server) serving one asset's SunSpec register map.

Registers are refreshed from the simulator's latest values on every read;
a write to a writable point's registers is decoded and handed to the
simulator, which enforces the point's limits: a refused value is answered
with Modbus exception 3 (illegal data value), a write to any other register
with exception 2 (illegal data address).

Fail-safe setpoints (SunSpec model 123 ``WMaxLim_Ena`` / ``WMaxLimPct_RvrtTms``,
model 124 ``InOutWRte_RvrtTms``): a point with ``fail_safe`` has an enable
register (0 disabled, 1 enabled) and a revert-timeout register (uint16
seconds, 0 = no revert). A write of the setpoint enables it; a write of 1 to
the enable register re-enables the last setpoint (when released); each of these restarts the
revert timer with the timeout then in force. When the timer runs out on the
device's clock, or 0 is written to the enable register, the device hands the
point back to the plant schedule (``release_setpoint``). In one write of
several registers, the timeout is taken first, then setpoints, then enables.

Requests are checked before pymodbus sees them (it answers some malformed
requests wrongly and answers only the first of several requests that arrive
in one TCP segment), per the Modbus application protocol v1.1b3 and the
Modbus TCP implementation guide:
- function codes other than 3 (read holding registers), 6 (write single
  register) and 16 (write multiple registers): exception 1 (illegal function);
- a quantity outside 1-125 (read) or 1-123 (write), a byte count that does
  not match it, or a request of the wrong length: exception 3;
- unit id 255 and the device's own id address this device; unit id 0 is a
  broadcast: a valid write is carried out and not answered, a read is
  refused with exception 1 (a broadcast cannot be read); any other unit id
  is not this device and gets no answer;
- a frame whose MBAP protocol id is not 0, or whose length field is outside
  2-254, is not Modbus TCP: the connection is closed.
Each request of a TCP segment is answered, in order.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from protocols.codec import CodecError, decode, encode
from protocols.devices.layout import NOT_IMPLEMENTED_INT16, NOT_IMPLEMENTED_UINT16, ModbusLayout
from protocols.modbus_client import quiet_pymodbus
from protocols.pointmap import ModbusPoint

log = logging.getLogger(__name__)

ValueOf = Callable[[str], float | None]
WriteSetpoint = Callable[[str, float], None]
ReleaseSetpoint = Callable[[str], None]

READ_HOLDING, WRITE_SINGLE, WRITE_MULTIPLE = 3, 6, 16
ILLEGAL_FUNCTION, ILLEGAL_VALUE, DEVICE_FAILURE = 1, 3, 4
BROADCAST_UNIT, TCP_UNIT = 0, 255
MBAP = struct.Struct(">HHHB")
"""Transaction id, protocol id, length (unit id + PDU bytes), unit id."""
InnerConnection = tuple[asyncio.StreamReader, asyncio.StreamWriter]
"""The front's connection to the pymodbus register server behind it."""


@dataclass
class _Control:
    """The fail-safe state of one setpoint: enabled, its revert timeout (s), when it reverts (device clock)."""

    enabled: bool = False
    timeout_s: int = 0
    value: float | None = None
    revert_at: datetime | None = None


class ModbusDeviceServer:
    """Serves ``layout`` on host:port; values come from ``value_of``, writes go to ``write_setpoint``.

    now_utc: the device's clock (the simulation clock), which runs the revert timers;
    release_setpoint: hands a point back to the plant schedule on revert or release.
    """

    def __init__(self, layout: ModbusLayout, host: str, port: int, value_of: ValueOf, write_setpoint: WriteSetpoint,
                 release_setpoint: ReleaseSetpoint | None = None, now_utc: Callable[[], datetime] | None = None):
        quiet_pymodbus()
        self.layout = layout
        self.host, self.port = host, port
        self.value_of = value_of
        self.write_setpoint = write_setpoint
        self.release_setpoint = release_setpoint or (lambda point_id: None)
        self.now_utc = now_utc
        self.points = layout.points
        self._scale_factors = {p.id: int(decode([layout.constants[p.scale_factor_register]], "int16"))
                               if p.scale_factor_register is not None else 0 for p in self.points}
        self._controls = {p.id: _Control() for p in self.points if p.fail_safe is not None}
        self._enable_registers = {p.fail_safe.enable_address: p for p in self.points if p.fail_safe is not None}
        self._timeout_registers = {p.fail_safe.revert_timeout_address: p for p in self.points
                                   if p.fail_safe is not None and p.fail_safe.revert_timeout_address is not None}
        first, last = min(layout.constants), max(layout.constants)
        self._start = first
        image = [layout.constants.get(a, 0) for a in range(first, last + 1)]
        self._inner: ModbusTcpServer | None = None
        self._inner_port = 0
        self._front: asyncio.Server | None = None
        self._connections: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task[None]] = set()
        self._device = SimDevice(id=layout.address, simdata=[SimData(first, values=image, datatype=DataType.REGISTERS)],
                                 action=self._action)

    @property
    def name(self) -> str:
        return self.layout.name

    async def start(self) -> None:
        """Listen on host:port; pymodbus serves the register map behind the request checks on a loopback port."""
        if self._front is not None:
            return
        inner = await self._start_register_server()
        try:
            self._front = await asyncio.start_server(self._serve_connection, self.host, self.port)
        except OSError as exc:
            await inner.shutdown()  # type: ignore[no-untyped-call]  # pymodbus leaves shutdown unannotated
            raise OSError(f"Modbus device {self.name} cannot listen on {self.host}:{self.port}: "
                          f"{exc.strerror or exc}") from None
        self._inner = inner

    async def _start_register_server(self, attempts: int = 5) -> ModbusTcpServer:
        """pymodbus's server of the register map on a free loopback port (:attr:`_inner_port`). The port is
        found by binding port 0 and handed to pymodbus, which may lose it to another process in between:
        then another is tried."""
        failure: RuntimeError | None = None
        for _ in range(attempts):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                probe.bind(("127.0.0.1", 0))
                port = probe.getsockname()[1]
            inner = ModbusTcpServer(self._device, address=("127.0.0.1", port))
            try:
                await inner.serve_forever(background=True)
            except RuntimeError as exc:  # pymodbus reports a failed listen this way
                failure = exc
                continue
            self._inner_port = port
            return inner
        raise OSError(f"Modbus device {self.name} cannot start its register server: {failure}")

    async def stop(self) -> None:
        """Stop listening and drop every client connection, as a device that goes off the network."""
        if self._front is None:
            return
        self._front.close()
        for writer in list(self._connections):
            writer.close()
        if self._handlers:
            await asyncio.wait(list(self._handlers), timeout=5)
        self._connections.clear()
        await self._front.wait_closed()
        self._front = None
        if self._inner is not None:  # started with the front
            await self._inner.shutdown()  # type: ignore[no-untyped-call]  # pymodbus leaves shutdown unannotated
        self._inner = None

    @property
    def running(self) -> bool:
        return self._front is not None

    def revert_due(self) -> list[str]:
        """Release every enabled setpoint whose revert timeout has run out on the device clock; their ids."""
        if self.now_utc is None:
            return []
        now = self.now_utc()
        reverted = [pid for pid, c in self._controls.items()
                    if c.enabled and c.revert_at is not None and now >= c.revert_at]
        for point_id in reverted:
            self._release(point_id)
        return reverted

    # ------------------------------------------------------------ request checks in front of pymodbus

    async def _serve_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._connections.add(writer)
        self._handlers.add(cast("asyncio.Task[None]", asyncio.current_task()))  # this coroutine's own task
        inner: InnerConnection | None = None
        try:
            while True:
                transaction, protocol, length, unit = MBAP.unpack(await reader.readexactly(MBAP.size))
                if protocol != 0 or not 2 <= length <= 254:
                    log.info("device %s: closing a connection that sent a frame that is not Modbus TCP "
                             "(protocol id %d, length %d)", self.name, protocol, length)
                    return
                pdu = await reader.readexactly(length - 1)
                if unit not in (self.layout.address, BROADCAST_UNIT, TCP_UNIT):
                    continue  # another device's request: not answered
                reply = _check_request(pdu)
                if unit == BROADCAST_UNIT:
                    if pdu[0] == READ_HOLDING:
                        reply = bytes([pdu[0] | 0x80, ILLEGAL_FUNCTION])
                    elif reply is None:
                        inner, _ = await self._forward(inner, pdu)
                        continue  # a broadcast write is carried out, never answered
                    else:
                        continue
                if reply is None:
                    inner, reply = await self._forward(inner, pdu)
                writer.write(MBAP.pack(transaction, 0, len(reply) + 1, unit) + reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client closed the connection, or cut a frame short
        except asyncio.CancelledError:
            pass  # the event loop is shutting down; nobody awaits this connection's task
        finally:
            self._handlers.discard(asyncio.current_task())
            self._connections.discard(writer)
            writer.close()
            if inner is not None:
                inner[1].close()

    async def _forward(self, inner: InnerConnection | None, pdu: bytes) -> tuple[InnerConnection | None, bytes]:
        """Pass a checked request to pymodbus; return the connection to it (None after a failure) and its reply
        PDU."""
        try:
            if inner is None:
                inner = await asyncio.open_connection("127.0.0.1", self._inner_port)
            inner_reader, inner_writer = inner
            inner_writer.write(MBAP.pack(1, 0, len(pdu) + 1, self.layout.address) + pdu)
            await inner_writer.drain()
            _, _, length, _ = MBAP.unpack(await inner_reader.readexactly(MBAP.size))
            reply = await inner_reader.readexactly(length - 1)
        except (OSError, asyncio.IncompleteReadError) as exc:
            log.warning("device %s: register server failed a request: %s", self.name, exc)
            if inner is not None:
                inner[1].close()
            reply, inner = bytes([pdu[0] | 0x80, DEVICE_FAILURE]), None
        return inner, reply

    # ------------------------------------------------------------------- pymodbus's register callbacks

    async def _action(self, function_code: int, start_address: int, address: int, count: int,
                      registers: list[int], set_values: list[int] | list[bool] | None) -> ExcCodes | None:
        self.revert_due()
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
        for register, point in self._enable_registers.items():
            registers[register - start_address] = int(self._controls[point.id].enabled)
        for register, point in self._timeout_registers.items():
            registers[register - start_address] = self._controls[point.id].timeout_s

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
        controls = set(self._enable_registers) | set(self._timeout_registers)
        covered = {a for p in touched for a in range(p.address, p.address + p.register_count)} | controls
        if any(not p.writable or p.address < address or p.address + p.register_count > end for p in touched) \
                or any(a not in covered for a in range(address, end)):
            return ExcCodes.ILLEGAL_ADDRESS
        for register, point in self._timeout_registers.items():
            if address <= register < end:
                self._controls[point.id].timeout_s = values[register - address]
        for point in touched:
            words = values[point.address - address:point.address - address + point.register_count]
            try:
                unscaled = decode(words, point.type, point.word_order, point.byte_order)
                if isinstance(unscaled, str):  # text points are never writable: refused above
                    return ExcCodes.ILLEGAL_ADDRESS
                value = point.to_engineering(unscaled, self._scale_factors[point.id])
                self.write_setpoint(point.id, value)
            except (CodecError, ValueError) as exc:
                log.info("device %s refused a write to %s: %s", self.name, point.id, exc)
                return ExcCodes.ILLEGAL_VALUE
            if point.id in self._controls:
                self._controls[point.id].value = value
                self._enable(point.id)
        for register, point in self._enable_registers.items():
            if not address <= register < end:
                continue
            enable, control = values[register - address], self._controls[point.id]
            if enable == 0:
                self._release(point.id)
            elif enable == 1 and control.value is not None:
                if not control.enabled:
                    try:
                        self.write_setpoint(point.id, control.value)
                    except ValueError:
                        return ExcCodes.ILLEGAL_VALUE
                self._enable(point.id)
            else:
                return ExcCodes.ILLEGAL_VALUE  # not 0 or 1, or nothing written yet to enable
        return None

    def _enable(self, point_id: str) -> None:
        control = self._controls[point_id]
        control.enabled = True
        control.revert_at = None
        if control.timeout_s and self.now_utc is not None:
            control.revert_at = self.now_utc() + timedelta(seconds=control.timeout_s)

    def _release(self, point_id: str) -> None:
        control = self._controls[point_id]
        control.enabled, control.revert_at = False, None
        self.release_setpoint(point_id)


def _check_request(pdu: bytes) -> bytes | None:
    """The exception reply a request PDU gets before reaching the registers, or None when it is well formed."""
    function = pdu[0]
    if function not in (READ_HOLDING, WRITE_SINGLE, WRITE_MULTIPLE):
        return bytes([function | 0x80, ILLEGAL_FUNCTION])
    refused = bytes([function | 0x80, ILLEGAL_VALUE])
    if function == READ_HOLDING:
        return refused if len(pdu) != 5 or not 1 <= int.from_bytes(pdu[3:5], "big") <= 125 else None
    if function == WRITE_SINGLE:
        return refused if len(pdu) != 5 else None
    if len(pdu) < 6:
        return refused
    quantity, byte_count = int.from_bytes(pdu[3:5], "big"), pdu[5]
    return refused if not 1 <= quantity <= 123 or byte_count != 2 * quantity or len(pdu) != 6 + byte_count else None
