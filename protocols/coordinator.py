"""Polling every device concurrently, one coordinator per device, into the twin's reading sink.

A :class:`DeviceCoordinator` owns one device adapter (Modbus or BACnet): it
polls at the device's period, tracks availability, and backs off after a
failure (poll period doubled per failure, at most ``max_backoff_s``). An
unreachable device yields COMM_FAIL readings for all its points, a value the
twin point's plausible range does not admit is marked BAD; nothing is raised
to the top, and one device's trouble never stalls the others.

:class:`AdapterFeed` runs the coordinators in rounds: every device that is due
is polled at once (``asyncio.gather``), and the round's readings are
delivered together with one timestamp from the feed's clock. Beside them the
feed keeps each point's latest raw value (what the adapter decoded it from)
for commissioning; raw values are not readings and go to no history.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timezone
from typing import Callable, Protocol

from protocols.errors import DeviceUnreachable, WriteRefused
from protocols.values import PointValue, PointValues, RawValue
from twin.readings import Quality, Reading

log = logging.getLogger(__name__)


class DeviceAdapter(Protocol):
    """A client for one device (see protocols.modbus_client / protocols.bacnet_client)."""

    device: object

    @property
    def point_ids(self) -> list[str]: ...

    async def read(self) -> PointValues: ...

    async def write(self, point_id: str, value: float | None) -> None: ...

    async def close(self) -> None: ...


async def write_result(adapter: DeviceAdapter, point_id: str, value: float | None) -> str:
    """Write through an adapter and say how it went, for the audit log: ``ok``,
    ``refused: <reason>`` (limits, the device said no) or ``failed: <reason>`` (no answer)."""
    try:
        await adapter.write(point_id, value)
    except WriteRefused as exc:
        return f"refused: {exc}"
    except DeviceUnreachable as exc:
        return f"failed: {exc}"
    return "ok"


class ReadingSink(Protocol):
    def deliver(self, readings: list[Reading]) -> None: ...


class DeviceCoordinator:
    """Polls one device with backoff and availability tracking."""

    def __init__(self, adapter: DeviceAdapter, max_backoff_s: float = 4.0,
                 monotonic_s: Callable[[], float] = time.monotonic):
        self.adapter = adapter
        self.poll_period_s: float = adapter.device.poll_period_s  # type: ignore[attr-defined]
        self.read_timeout_s: float = 4 * adapter.device.timeout_s  # type: ignore[attr-defined]
        self.max_backoff_s = max(max_backoff_s, self.poll_period_s)
        self.available: bool | None = None
        self.failures = 0
        self.error_count = 0
        self.last_error = ""
        self.last_success_utc: datetime | None = None
        self.last_latency_ms: float | None = None
        self._monotonic_s = monotonic_s
        self.next_poll_s = monotonic_s()

    @property
    def name(self) -> str:
        return self.adapter.device.name  # type: ignore[attr-defined]

    def due(self, now_s: float) -> bool:
        return now_s >= self.next_poll_s

    async def poll(self) -> PointValues:
        """Read the device once; on failure return COMM_FAIL for every point and schedule a backed-off retry."""
        started = self._monotonic_s()
        try:
            values = await asyncio.wait_for(self.adapter.read(), self.read_timeout_s)
        except Exception as exc:  # any failure of one device is marked on its points, never raised
            self.failures += 1
            self.error_count += 1
            backoff_s = min(self.max_backoff_s, self.poll_period_s * 2 ** (self.failures - 1))
            self.next_poll_s = started + backoff_s
            self.last_error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            if self.available is not False:
                log.warning("device %s unavailable (%s); retrying with backoff", self.name, self.last_error)
            self.available = False
            try:
                await self.adapter.close()
            except Exception:  # closing a broken connection may fail too; nothing more to do
                log.debug("closing %s failed", self.name, exc_info=True)
            return {pid: PointValue(None, Quality.COMM_FAIL) for pid in self.adapter.point_ids}
        if self.available is False:
            log.warning("device %s available again", self.name)
        self.available, self.failures, self.last_error = True, 0, ""
        finished = self._monotonic_s()
        self.last_latency_ms = (finished - started) * 1000.0
        self.last_success_utc = datetime.now(timezone.utc)
        self.next_poll_s = max(started + self.poll_period_s, finished)
        return values

    def status(self) -> dict:
        """What an integrator checks during commissioning: address, poll period, last success (wall-clock
        UTC), failed polls in total, latency of the last successful read (ms), availability and last error."""
        device = self.adapter.device  # type: ignore[attr-defined]
        return {
            "device_id": device.name,
            "protocol": device.protocol,
            "address": f"{device.host}:{device.port}",
            "poll_period_s": device.poll_period_s,
            "available": self.available,
            "last_success": self.last_success_utc.isoformat() if self.last_success_utc else None,
            "error_count": self.error_count,
            "latency_ms": round(self.last_latency_ms, 1) if self.last_latency_ms is not None else None,
            "last_error": self.last_error,
        }


class AdapterFeed:
    """Polls every device concurrently and delivers the readings to the twin.

    now_utc: the clock readings are stamped with (wall clock on site, the
    simulation clock for the demo park). plausible(point_id, value): False
    marks a reading BAD (value kept). round_lock: held while a round is in
    flight, so that a simulated field can step between rounds and every round
    sees one consistent state of the field.
    """

    def __init__(self, adapters: list[DeviceAdapter], sink: ReadingSink, now_utc: Callable[[], datetime],
                 plausible: Callable[[str, float], bool] | None = None, round_lock: asyncio.Lock | None = None,
                 max_backoff_s: float = 4.0):
        self.coordinators = [DeviceCoordinator(a, max_backoff_s) for a in adapters]
        self.sink = sink
        self.now_utc = now_utc
        self.plausible = plausible
        self.round_lock = round_lock
        self.rounds = 0
        self._raw: dict[str, RawValue | None] = {}  # replaced whole each round: other threads read it safely

    async def run(self, stop: asyncio.Event) -> None:
        """Poll in rounds until ``stop`` is set, then close every connection."""
        try:
            while not stop.is_set():
                await self.poll_round()
                next_s = min((c.next_poll_s for c in self.coordinators), default=time.monotonic() + 1.0)
                delay_s = max(0.02, next_s - time.monotonic())
                try:
                    await asyncio.wait_for(stop.wait(), delay_s)
                except asyncio.TimeoutError:
                    pass
        finally:
            for coordinator in self.coordinators:
                try:
                    await coordinator.adapter.close()
                except Exception:
                    log.debug("closing %s failed", coordinator.name, exc_info=True)

    async def poll_round(self) -> list[Reading]:
        """Poll every due device at once; deliver and return the readings."""
        now_s = time.monotonic()
        due = [c for c in self.coordinators if c.due(now_s)]
        if not due:
            return []
        if self.round_lock is not None:
            async with self.round_lock:
                results = await asyncio.gather(*(c.poll() for c in due))
        else:
            results = await asyncio.gather(*(c.poll() for c in due))
        ts = self.now_utc()
        readings, raw = [], dict(self._raw)
        for values in results:
            for pid, point in values.items():
                readings.append(self._reading(pid, point.value, point.quality, ts))
                raw[pid] = point.raw
        self._raw = raw
        self.rounds += 1
        try:
            self.sink.deliver(readings)
        except Exception:  # a failing store must not stop the polling; the error is logged with its traceback
            log.exception("delivering %d readings failed", len(readings))
        return readings

    def device_status(self) -> list[dict]:
        """Poll statistics of every device (see :meth:`DeviceCoordinator.status`)."""
        return [c.status() for c in self.coordinators]

    def raw_values(self) -> dict[str, RawValue | None]:
        """Each polled point's raw value from its latest poll, by point id: None when that poll got nothing
        (the device did not answer); points not polled yet are absent."""
        return dict(self._raw)

    async def write(self, point_id: str, value: float | None) -> str:
        """Write a point through its device's adapter; the result as :func:`write_result` gives it."""
        for coordinator in self.coordinators:
            if point_id in coordinator.adapter.point_ids:
                return await write_result(coordinator.adapter, point_id, value)
        return f"refused: {point_id} is in no point map"

    def _reading(self, point_id: str, value: float | None, quality: Quality, ts: datetime) -> Reading:
        if quality == Quality.GOOD and value is not None and self.plausible is not None \
                and not self.plausible(point_id, value):
            quality = Quality.BAD
        return Reading(point_id, ts, value, quality)
