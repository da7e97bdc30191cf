"""Composition root for a running park: history store, live state, the reading feed and its clock.

The feed is the one seam between the field and the twin. :class:`ProtocolFeed`
runs the protocol adapters that poll the devices of the park's point maps and,
for a simulated park, the simulated field too (the park simulator on a
simulation clock behind Modbus TCP and BACnet/IP device servers), on one
asyncio loop in a background thread. The twin only sees what the adapters read
over the real protocols, and the adapters never touch the simulator: in field
mode there is none, and they poll the real devices on the wall clock.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from twin.history import StorageUnavailable, WriteRecord
from twin.live import LiveState
from twin.readings import Reading
from twin.sim import ParkSimulator

if TYPE_CHECKING:
    from protocols.coordinator import AdapterFeed
    from protocols.devices.host import DeviceHost

log = logging.getLogger(__name__)

T = TypeVar("T")


class ReadingSink(Protocol):
    """Where a feed delivers readings."""

    def deliver(self, readings: list[Reading]) -> None: ...


class ReadingStore(Protocol):
    """Where readings and write audit records go: a history store, or the live run's
    ``twin.history.writer.SpooledWriter`` in front of one."""

    def append(self, readings: list[Reading]) -> int: ...

    def record_write(self, record: WriteRecord) -> None: ...


@dataclass
class TwinSink:
    """Delivers readings to live state at once and to history in batches; counts what it was given
    (``received``)."""

    live: LiveState
    history: ReadingStore
    flush_every: int = 1

    def __post_init__(self) -> None:
        self._pending: list[Reading] = []
        self._batches = 0
        self.received = 0

    def deliver(self, readings: list[Reading]) -> None:
        self.live.update(readings)
        self.received += len(readings)
        self._pending.extend(readings)
        self._batches += 1
        if self._batches >= self.flush_every:
            self.flush()

    def flush(self) -> None:
        if self._pending:
            self.history.append(self._pending)
            self._pending = []
        self._batches = 0


@dataclass
class FanOutSink:
    """Delivers the same readings to several sinks in turn; a sink that fails is logged and does not stop
    the others (the twin keeps its state and history when, say, fault detection breaks). A sink failing
    because the history store is unavailable is logged once when that starts and once when it works again
    with the store back (``store_ok``, the history writer's health: a delivery that did not need the store
    says nothing of it)."""

    sinks: list[ReadingSink]
    store_ok: Callable[[], bool] = lambda: True

    def __post_init__(self) -> None:
        self._waiting_for_store: set[int] = set()

    def deliver(self, readings: list[Reading]) -> None:
        for index, sink in enumerate(self.sinks):
            try:
                sink.deliver(readings)
            except StorageUnavailable as exc:
                if index not in self._waiting_for_store:
                    self._waiting_for_store.add(index)
                    log.warning("reading sink %s: history store unavailable (%s); it skips its work until the "
                                "store is back", type(sink).__name__, exc)
            except Exception:
                log.exception("reading sink %s failed", type(sink).__name__)
            else:
                if index in self._waiting_for_store and self.store_ok():
                    self._waiting_for_store.discard(index)
                    log.warning("reading sink %s: history store back", type(sink).__name__)


class SimulationClock:
    """Simulated time running ``speed`` times faster than the wall clock (speed 60: a day in 24 minutes)."""

    def __init__(self, start_utc: datetime, speed: float, monotonic_s: Callable[[], float] = time.monotonic):
        if speed <= 0:
            raise ValueError("speed must be positive")
        if start_utc.tzinfo is None:
            raise ValueError("start_utc must be tz-aware")
        self.start_utc = start_utc
        self.speed = speed
        self._monotonic_s = monotonic_s
        self._wall_start = monotonic_s()

    def now_utc(self) -> datetime:
        elapsed_s = (self._monotonic_s() - self._wall_start) * self.speed
        return datetime.fromtimestamp(self.start_utc.timestamp() + elapsed_s, tz=UTC)


class WallClock:
    """The wall clock, as a clock of the twin (field mode)."""

    speed = 1.0
    """Twin seconds per wall-clock second."""

    @staticmethod
    def now_utc() -> datetime:
        return datetime.now(UTC)


class ProtocolFeed:
    """The adapters polling the park's devices and, given a simulator, the simulated device servers they
    poll, on one event loop in a thread.

    device_maps: the park's point maps; each names a device the adapters poll (and the host serves, when
    simulated). Readings are stamped with the twin's clock; a value outside its twin point's plausible
    range is marked BAD (``points``: the twin's points by id; default the simulator's park's). Writes
    (:meth:`write`) are recorded in ``audit``'s write audit log (a history store, or the live run's
    writer in front of one), stamped with the same clock, so that a simulated run's writes line up with
    its readings and control steps.
    """

    def __init__(self, simulator: ParkSimulator | None, clock: SimulationClock | WallClock, sink: ReadingSink,
                 device_maps: list, audit: ReadingStore, points: dict | None = None, max_backoff_s: float = 4.0):
        self.simulator = simulator
        if points is None:
            if simulator is None:
                raise ValueError("points are needed without a simulator")
            points = simulator.park.points
        self.points = points
        self.audit = audit
        self.clock = clock
        self.sink = sink
        self.device_maps = device_maps
        self.max_backoff_s = max_backoff_s
        self.host: DeviceHost | None = None
        self.adapter_feed: AdapterFeed | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._thread: threading.Thread | None = None

    def start(self, timeout_s: float = 30.0) -> None:
        """Start the servers and the polling; raise if the servers cannot start (e.g. a port in use)."""
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), name="protocol-feed", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout_s):
            raise RuntimeError("device servers did not start in time")
        if self._failure is not None:
            raise self._failure

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout=10)

    def write(self, point_id: str, value: float | None, who: str, timeout_s: float = 30.0) -> WriteRecord:
        """Write a point over its protocol (limits enforced) and record the write in the history's audit log."""
        return self.write_many({point_id: value}, who, timeout_s)[point_id]

    def write_many(self, values: dict[str, float | None], who: str,
                   timeout_s: float = 30.0) -> dict[str, WriteRecord]:
        """Write several points at once (protocols.coordinator.AdapterFeed.write_many) and record each write
        in the history's audit log."""
        feed = self.adapter_feed
        assert feed is not None, "start() first"
        results = self.call(lambda: feed.write_many(values), timeout_s)
        records = {pid: WriteRecord(self.clock.now_utc(), who, pid, values[pid], result)
                   for pid, result in results.items()}
        for record in records.values():
            self.audit.record_write(record)
        return records

    def devices(self) -> list[dict]:
        """Poll statistics of every device, for the dashboard's Points page (empty before start)."""
        return self.adapter_feed.device_status() if self.adapter_feed is not None else []

    def raw_values(self) -> dict[str, dict | None]:
        """Each polled point's raw value from its latest poll as JSON (see protocols.values.RawValue.as_json;
        None: the poll got nothing), for the dashboard's Points page and /api/points (empty before start)."""
        if self.adapter_feed is None:
            return {}
        return {pid: None if raw is None else raw.as_json() for pid, raw in self.adapter_feed.raw_values().items()}

    def overrides(self) -> dict[str, int]:
        """Points a higher command priority than ParkTwin's holds now (an operator at priority 8), as the
        latest polls read their priority arrays: point id -> that priority."""
        if self.adapter_feed is None:
            return {}
        return {pid: raw.override_priority for pid, raw in self.adapter_feed.raw_values().items()
                if raw is not None and raw.override_priority is not None}

    def call(self, coroutine_factory: Callable[[], Coroutine[Any, Any, T]], timeout_s: float = 30.0) -> T:
        """Run ``coroutine_factory()`` on the feed's loop and return its result (e.g. to stop one device)."""
        assert self._loop is not None, "start() first"
        return asyncio.run_coroutine_threadsafe(coroutine_factory(), self._loop).result(timeout_s)

    async def _main(self) -> None:
        from protocols.adapters import open_adapters
        from protocols.coordinator import AdapterFeed
        from protocols.devices.host import DeviceHost

        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        points = self.points
        if self.simulator is not None:
            self.host = DeviceHost(self.simulator, self.clock.now_utc, self.device_maps)
            try:
                await self.host.start()
            except BaseException as exc:  # reported to start() in the caller's thread
                self._failure = exc
                self._ready.set()
                await self.host.stop()
                return
        try:
            async with open_adapters(self.device_maps) as adapters:
                self.adapter_feed = AdapterFeed(
                    adapters, self.sink, self.clock.now_utc, max_backoff_s=self.max_backoff_s,
                    plausible=lambda pid, value: pid not in points or points[pid].within_limits(value))
                self._ready.set()
                running = [self.adapter_feed.run(self._stop)]
                if self.host is not None:
                    running.append(self.host.run(self._stop))
                await asyncio.gather(*running)
        finally:
            if self.host is not None:
                await self.host.stop()
