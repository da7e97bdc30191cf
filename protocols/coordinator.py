"""Polling every device concurrently, one coordinator per device, into the twin's reading sink.

A :class:`DeviceCoordinator` owns one device adapter (Modbus or BACnet): it
polls at the device's period, tries a read that got no answer again (the
device map's ``retries``), tracks availability, and backs off after a
failure (poll period doubled per failure, at most ``max_backoff_s``). After
each read that got an answer it writes the device's heartbeat when the
adapter has one (a BACnet map's ``heartbeat``): the polls are what keeps the
device's watchdog from handing ParkTwin's commands back to the plant. An
unreachable device (no answer to any attempt) yields COMM_FAIL readings for all its points, a value the
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
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from protocols.errors import DeviceUnreachable, WriteRefused
from protocols.pointmap import AnyDeviceMap
from protocols.values import PointValue, PointValues, RawValue
from twin.readings import Quality, Reading

log = logging.getLogger(__name__)


class DeviceAdapter(Protocol):
    """A client for one device (see protocols.modbus_client / protocols.bacnet_client)."""

    @property
    def device(self) -> AnyDeviceMap: ...

    @property
    def point_ids(self) -> list[str]: ...

    async def read(self) -> PointValues: ...

    async def write(self, point_id: str, value: float | None) -> None: ...

    async def close(self) -> None: ...

    # optional: ``async def heartbeat(self) -> float | None``, written after every read that got an answer


async def write_result(adapter: DeviceAdapter, point_id: str, value: float | None) -> str:
    """Write through an adapter and say how it went, for the audit log: ``ok``,
    ``refused: <reason>`` (limits, the device said no) or ``failed: <reason>`` (no answer).

    A write that got no answer is sent again, up to the device map's ``retries`` times: a setpoint or a
    relinquish is an absolute value, so sending it twice does no harm."""
    retries: int = getattr(adapter.device, "retries", 0)
    for attempt in range(retries + 1):
        try:
            await adapter.write(point_id, value)
        except WriteRefused as exc:
            return f"refused: {exc}"
        except DeviceUnreachable as exc:
            if attempt == retries:
                return f"failed: {exc}" + (f" (after {retries} retries)" if retries else "")
            log.info("device %s: write of %s got no answer (%s); sending it again", adapter.device.name,
                     point_id, exc)
            continue
        return "ok"
    raise AssertionError("unreachable")


class ReadingSink(Protocol):
    def deliver(self, readings: list[Reading]) -> None: ...


class DeviceCoordinator:
    """Polls one device with retries, backoff and availability tracking.

    A read that gets no answer within ``read_timeout_s`` (seconds) is tried again, up to the device map's
    ``retries`` times; only when every attempt failed are the device's points marked COMM_FAIL, the
    failure counted in ``error_count`` and the next poll backed off. ``retried`` counts attempts that
    failed and were tried again (a slow answer under load, a lost datagram)."""

    def __init__(self, adapter: DeviceAdapter, max_backoff_s: float = 4.0,
                 monotonic_s: Callable[[], float] = time.monotonic):
        self.adapter = adapter
        self.poll_period_s: float = adapter.device.poll_period_s
        self.read_timeout_s: float = 4 * adapter.device.timeout_s
        self.retries: int = getattr(adapter.device, "retries", 0)
        self.max_backoff_s = max(max_backoff_s, self.poll_period_s)
        self.available: bool | None = None
        self.failures = 0
        self.error_count = 0
        self.retried = 0
        self.last_error = ""
        self.last_exception: Exception | None = None
        """What the last failed poll ended with (None after a poll that got an answer)."""
        self.last_success_utc: datetime | None = None
        self.last_latency_ms: float | None = None
        self.heartbeat_error = ""
        """Why the last heartbeat write failed ("" when it went through, or the device has none)."""
        self._monotonic_s = monotonic_s
        self.next_poll_s = monotonic_s()

    @property
    def name(self) -> str:
        return self.adapter.device.name

    def due(self, now_s: float) -> bool:
        return now_s >= self.next_poll_s

    async def poll(self, attempts: int | None = None) -> PointValues:
        """Read the device, trying ``attempts`` times (default: 1 + retries); when none answers return
        COMM_FAIL for every point and schedule a backed-off poll."""
        attempts = self.retries + 1 if attempts is None else attempts
        started = self._monotonic_s()
        error: Exception | None = None
        for attempt in range(attempts):
            values, error = await self.attempt()
            if values is not None:
                return self.succeeded(values, started)
            if attempt + 1 < attempts:
                self.retried += 1
                log.info("device %s: no answer (%s); trying again", self.name, _error_text(error))
        return self.failed(error, started)

    async def attempt(self) -> tuple[PointValues | None, Exception | None]:
        """One read within ``read_timeout_s``: the values, or None and what went wrong (the connection is
        closed then, so that the next attempt starts afresh)."""
        try:
            values = await asyncio.wait_for(self.adapter.read(), self.read_timeout_s)
        except Exception as exc:  # any failure of one device is marked on its points, never raised
            try:
                await self.adapter.close()
            except Exception:  # closing a broken connection may fail too; nothing more to do
                log.debug("closing %s failed", self.name, exc_info=True)
            return None, exc
        await self._heartbeat()
        return values, None

    async def _heartbeat(self) -> None:
        """Write the device's heartbeat, if it has one; a failure is logged when it starts and when it ends,
        and never fails the read (the values are good; the device's watchdog will say the rest)."""
        beat = getattr(self.adapter, "heartbeat", None)
        if beat is None:
            return
        try:
            await asyncio.wait_for(beat(), self.read_timeout_s)
        except Exception as exc:  # a refused or unanswered heartbeat is reported, the poll goes on
            error = _error_text(exc)
            if not self.heartbeat_error:
                log.warning("device %s: heartbeat not written (%s); the device will hand ParkTwin's commands back "
                            "to its schedule when its watchdog runs out", self.name, error)
            self.heartbeat_error = error
            return
        if self.heartbeat_error:
            log.warning("device %s: heartbeat written again", self.name)
        self.heartbeat_error = ""

    def succeeded(self, values: PointValues, started_s: float) -> PointValues:
        """Book a poll that got an answer (``started_s``: monotonic seconds at its first attempt)."""
        if self.available is False:
            log.warning("device %s available again", self.name)
        self.available, self.failures, self.last_error, self.last_exception = True, 0, "", None
        finished = self._monotonic_s()
        self.last_latency_ms = (finished - started_s) * 1000.0
        self.last_success_utc = datetime.now(UTC)
        self.next_poll_s = max(started_s + self.poll_period_s, finished)
        return values

    def failed(self, error: Exception | None, started_s: float) -> PointValues:
        """Book a poll none of whose attempts got an answer: COMM_FAIL for every point, backoff."""
        self.failures += 1
        self.error_count += 1
        backoff_s = min(self.max_backoff_s, self.poll_period_s * 2 ** (self.failures - 1))
        self.next_poll_s = started_s + backoff_s
        self.last_error, self.last_exception = _error_text(error), error
        if self.available is not False:
            log.warning("device %s unavailable (%s); retrying with backoff", self.name, self.last_error)
        self.available = False
        return {pid: PointValue(None, Quality.COMM_FAIL) for pid in self.adapter.point_ids}

    def status(self) -> dict[str, Any]:
        """What an integrator checks during commissioning: address, poll period, last success (wall-clock
        UTC), failed polls in total, latency of the last successful read (ms), availability and last error."""
        device = self.adapter.device
        return {
            "device_id": device.name,
            "protocol": device.protocol,
            "address": f"{device.host}:{device.port}",
            "poll_period_s": device.poll_period_s,
            "available": self.available,
            "last_success": self.last_success_utc.isoformat() if self.last_success_utc else None,
            "error_count": self.error_count,
            "retried": self.retried,
            "latency_ms": round(self.last_latency_ms, 1) if self.last_latency_ms is not None else None,
            "last_error": self.last_error,
            "heartbeat_error": self.heartbeat_error,
        }


class AdapterFeed:
    """Polls every device concurrently and delivers the readings to the twin.

    now_utc: the clock readings are stamped with (wall clock on site, the
    simulation clock for the demo park). plausible(point_id, value): False
    marks a reading BAD (value kept). Devices are read at their own instants,
    as on site: readings of one round may come from slightly different moments.
    """

    def __init__(self, adapters: Sequence[DeviceAdapter], sink: ReadingSink, now_utc: Callable[[], datetime],
                 plausible: Callable[[str, float], bool] | None = None, max_backoff_s: float = 4.0):
        self.coordinators = [DeviceCoordinator(a, max_backoff_s) for a in adapters]
        self.sink = sink
        self.now_utc = now_utc
        self.plausible = plausible
        self.rounds = 0
        self._raw: dict[str, RawValue | None] = {}  # replaced whole each round: other threads read it safely
        self._retrying: dict[DeviceCoordinator, asyncio.Task[None]] = {}  # devices being tried again outside a round

    async def run(self, stop: asyncio.Event) -> None:
        """Poll in rounds until ``stop`` is set, then close every connection."""
        try:
            while not stop.is_set():
                await self.poll_round()
                waiting = [c.next_poll_s for c in self.coordinators if c not in self._retrying]
                next_s = min(waiting, default=time.monotonic() + 1.0)
                delay_s = max(0.02, next_s - time.monotonic())
                try:
                    await asyncio.wait_for(stop.wait(), delay_s)
                except TimeoutError:
                    pass
        finally:
            for task in list(self._retrying.values()):
                task.cancel()
            await asyncio.gather(*self._retrying.values(), return_exceptions=True)
            for coordinator in self.coordinators:
                try:
                    await coordinator.adapter.close()
                except Exception:
                    log.debug("closing %s failed", coordinator.name, exc_info=True)

    async def poll_round(self) -> list[Reading]:
        """Poll every due device at once; deliver and return the readings.

        The round makes one attempt per device. A device that did not answer is tried again outside the
        round (its readings delivered when it answers or runs out of retries), so one silent device holds
        up the others for one request timeout at most, not for all its retries."""
        now_s = time.monotonic()
        due = [c for c in self.coordinators if c.due(now_s) and c not in self._retrying]
        if not due:
            return []
        attempts = await asyncio.gather(*(c.attempt() for c in due))
        results = []
        for coordinator, (values, error) in zip(due, attempts):
            if values is not None:
                results.append(coordinator.succeeded(values, now_s))
            elif coordinator.retries == 0:
                results.append(coordinator.failed(error, now_s))
            else:
                coordinator.retried += 1
                log.info("device %s: no answer (%s); trying again", coordinator.name, _error_text(error))
                self._retrying[coordinator] = asyncio.create_task(self._retry(coordinator, now_s))
        return self._deliver(results)

    async def _retry(self, coordinator: DeviceCoordinator, started_s: float) -> None:
        """The remaining attempts of a device whose attempt in a round got no answer; delivers the outcome."""
        try:
            values, error = None, None
            for attempt in range(coordinator.retries):
                values, error = await coordinator.attempt()
                if values is not None:
                    break
                if attempt + 1 < coordinator.retries:
                    coordinator.retried += 1
            outcome = coordinator.succeeded(values, started_s) if values is not None \
                else coordinator.failed(error, started_s)
            self._deliver([outcome])
        finally:
            self._retrying.pop(coordinator, None)

    def _deliver(self, results: list[PointValues]) -> list[Reading]:
        """Stamp the values of one round (or one retried device) with the feed's clock and hand them over."""
        if not results:
            return []
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

    def device_status(self) -> list[dict[str, Any]]:
        """Poll statistics of every device (see :meth:`DeviceCoordinator.status`)."""
        return [c.status() for c in self.coordinators]

    def raw_values(self) -> dict[str, RawValue | None]:
        """Each polled point's raw value from its latest poll, by point id: None when that poll got nothing
        (the device did not answer); points not polled yet are absent."""
        return dict(self._raw)

    async def write(self, point_id: str, value: float | None) -> str:
        """Write a point through its device's adapter; the result as :func:`write_result` gives it."""
        return (await self.write_many({point_id: value}))[point_id]

    async def write_many(self, values: dict[str, float | None]) -> dict[str, str]:
        """Write several points (a control step's setpoints), each device's in the order given and the
        devices at the same time, so that a round takes about one device's round trips, not the sum of all;
        each result as :func:`write_result` gives it."""
        results = {pid: f"refused: {pid} is in no point map" for pid in values}
        by_device = [(c.adapter, [pid for pid in values if pid in c.adapter.point_ids]) for c in self.coordinators]

        async def write_device(adapter: DeviceAdapter, point_ids: list[str]) -> None:
            for pid in point_ids:
                results[pid] = await write_result(adapter, pid, values[pid])

        await asyncio.gather(*(write_device(adapter, pids) for adapter, pids in by_device if pids))
        return results

    def _reading(self, point_id: str, value: float | None, quality: Quality, ts: datetime) -> Reading:
        if quality == Quality.GOOD and value is not None and self.plausible is not None \
                and not self.plausible(point_id, value):
            quality = Quality.BAD
        return Reading(point_id, ts, value, quality)


def _error_text(error: Exception | None) -> str:
    if error is None:
        return "no answer"
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
