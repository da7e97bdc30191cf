"""Live state: the latest reading of every point.

Thread-safe: the feed (simulator or protocol adapters) updates it from its own
thread or event loop while the dashboard reads it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from twin.readings import Quality, Reading


class LiveState:
    """Latest reading per point with timestamp and quality."""

    def __init__(self) -> None:
        self._latest: dict[str, Reading] = {}
        self._lock = threading.Lock()

    def update(self, readings: Iterable[Reading]) -> list[Reading]:
        """Record readings; return those that changed value or quality.

        A reading older than the one already held for its point is ignored:
        live state only moves forward in time (history keeps every reading).
        """
        changed: list[Reading] = []
        with self._lock:
            for reading in readings:
                previous = self._latest.get(reading.point_id)
                if previous is not None and reading.ts_utc < previous.ts_utc:
                    continue
                self._latest[reading.point_id] = reading
                if previous is None or previous.value != reading.value or previous.quality != reading.quality:
                    changed.append(reading)
        return changed

    def get(self, point_id: str) -> Reading | None:
        with self._lock:
            return self._latest.get(point_id)

    def snapshot(self, point_ids: Iterable[str] | None = None) -> dict[str, Reading]:
        """A copy of the latest readings, for all points or the ones named."""
        with self._lock:
            if point_ids is None:
                return dict(self._latest)
            return {pid: self._latest[pid] for pid in point_ids if pid in self._latest}

    def value(self, point_id: str, default: float | None = None) -> float | None:
        """The latest value when its quality is good, else ``default``."""
        reading = self.get(point_id)
        if reading is None or reading.quality != Quality.GOOD or reading.value is None:
            return default
        return reading.value
