"""Live state: the latest reading of every point, and subscribers that follow changes.

Thread-safe: the feed (simulator or protocol adapters) updates it from its own
thread or event loop while the dashboard reads it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime

from twin.readings import Quality, Reading

log = logging.getLogger(__name__)

Callback = Callable[[list[Reading]], None]


@dataclass(eq=False)
class Subscription:
    """A subscriber's callback and the points it follows (None: every point)."""

    callback: Callback
    point_ids: frozenset[str] | None
    _owner: LiveState = field(repr=False)

    def cancel(self) -> None:
        self._owner._unsubscribe(self)


class LiveState:
    """Latest reading per point with timestamp and quality."""

    def __init__(self) -> None:
        self._latest: dict[str, Reading] = {}
        self._subscriptions: list[Subscription] = []
        self._lock = threading.Lock()

    def update(self, readings: Iterable[Reading]) -> list[Reading]:
        """Record readings; return (and tell subscribers) those that changed value or quality.

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
            subscriptions = list(self._subscriptions)
        if changed:
            self._notify(subscriptions, changed)
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

    def mark_stale(self, now_utc: datetime, max_age_s: float) -> list[Reading]:
        """Turn GOOD readings older than ``max_age_s`` into STALE ones (value kept); return them."""
        stale = []
        with self._lock:
            for reading in self._latest.values():
                if reading.quality == Quality.GOOD and (now_utc - reading.ts_utc).total_seconds() > max_age_s:
                    stale.append(replace(reading, quality=Quality.STALE))
            for reading in stale:
                self._latest[reading.point_id] = reading
            subscriptions = list(self._subscriptions)
        if stale:
            self._notify(subscriptions, stale)
        return stale

    def subscribe(self, callback: Callback, point_ids: Iterable[str] | None = None) -> Subscription:
        """Call ``callback(changed_readings)`` after every update that changes a followed point."""
        subscription = Subscription(callback, frozenset(point_ids) if point_ids is not None else None, self)
        with self._lock:
            self._subscriptions.append(subscription)
        return subscription

    def _unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            if subscription in self._subscriptions:
                self._subscriptions.remove(subscription)

    @staticmethod
    def _notify(subscriptions: list[Subscription], changed: list[Reading]) -> None:
        for sub in subscriptions:
            relevant = changed if sub.point_ids is None else [r for r in changed if r.point_id in sub.point_ids]
            if not relevant:
                continue
            try:
                sub.callback(relevant)
            except Exception:  # a broken subscriber must not stop the feed
                log.exception("live-state subscriber %r failed", sub.callback)
