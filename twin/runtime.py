"""Composition root for a running park: history store, live state, the reading feed and its clock.

The feed is the one seam between the field and the twin. Today the only feed
is :class:`SimulatorFeed`, which steps the park simulator on a simulation
clock and hands its readings to the twin directly; the protocol adapters
replace it with a feed that polls device servers.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable, Protocol

from twin.history import History
from twin.live import LiveState
from twin.readings import Reading
from twin.sim import ParkSimulator

log = logging.getLogger(__name__)


class ReadingSink(Protocol):
    """Where a feed delivers readings."""

    def deliver(self, readings: list[Reading]) -> None: ...


@dataclass
class TwinSink:
    """Delivers readings to live state at once and to history in batches."""

    live: LiveState
    history: History
    flush_every: int = 1

    def __post_init__(self) -> None:
        self._pending: list[Reading] = []
        self._batches = 0

    def deliver(self, readings: list[Reading]) -> None:
        self.live.update(readings)
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
    the others (the twin keeps its state and history when, say, fault detection breaks)."""

    sinks: list[ReadingSink]

    def deliver(self, readings: list[Reading]) -> None:
        for sink in self.sinks:
            try:
                sink.deliver(readings)
            except Exception:
                log.exception("reading sink %s failed", type(sink).__name__)


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
        return datetime.fromtimestamp(self.start_utc.timestamp() + elapsed_s, tz=timezone.utc)


class SimulatorFeed:
    """Steps the simulator to keep up with the clock and delivers each step's readings."""

    def __init__(self, simulator: ParkSimulator, clock: SimulationClock, sink: ReadingSink):
        self.simulator = simulator
        self.clock = clock
        self.sink = sink
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="simulator-feed", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        step_wall_s = self.simulator.step.total_seconds() / self.clock.speed
        while not self._stop.is_set():
            try:
                while self.simulator.now_utc <= self.clock.now_utc() and not self._stop.is_set():
                    output = self.simulator.advance()
                    self.sink.deliver(self.simulator.readings(output))
            except Exception:  # the run must go on; the failure is logged with its traceback
                log.exception("simulator step failed at %s", self.simulator.now_utc)
            self._stop.wait(min(1.0, step_wall_s))
