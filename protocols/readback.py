"""Read-back of written setpoints: does the device hold what ParkTwin wrote?

After a write is accepted, the written point's own readings must show the value
within :data:`POLLS` good polls; otherwise the device is not following its
setpoint (left in local or hand mode, a lost write, a device program that
overrides it) and a ``setpoint_not_followed`` fault episode opens on the
point's asset. It ends when a reading shows the value, or when the point is
written again with a value the device then shows, or released.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from twin.fault_episodes import FaultEpisode, Priority
from twin.park import Park
from twin.readings import Quality, Reading

log = logging.getLogger(__name__)

POLLS = 3
"""Good polls of a written point within which its readings must show the value written."""

RULE_ID = "setpoint_not_followed"


def shows(written: float, read: float) -> bool:
    """Whether a reading shows a written value: equal within float32 encoding (relative 1e-6) and the
    last digit a device rounds to (absolute 1e-3)."""
    return math.isclose(read, written, rel_tol=1e-6, abs_tol=1e-3)


@dataclass
class _Pending:
    value: float
    written_utc: datetime
    polls: int = 0
    episode: FaultEpisode | None = None


class SetpointReadback:
    """A reading sink (protocols.coordinator.ReadingSink) that checks written setpoints against the readings.

    ``save``: where episodes go (twin.history.FaultEpisodeStore.save); ``now_utc``: the twin's clock.
    """

    def __init__(self, park: Park, save: Callable[[list[FaultEpisode]], object], now_utc: Callable[[], datetime]):
        self.park, self.save, self.now_utc = park, save, now_utc
        self._pending: dict[str, _Pending] = {}
        self._lock = threading.Lock()

    def written(self, point_id: str, value: float | None) -> None:
        """A write to ``point_id`` was accepted (None: the point was released to its device)."""
        now = self.now_utc()
        with self._lock:
            previous = self._pending.pop(point_id, None)
            if value is not None:
                self._pending[point_id] = _Pending(float(value), now, episode=previous.episode if previous else None)
        if value is None and previous is not None and previous.episode is not None:
            self._end(point_id, previous.episode, now)

    def deliver(self, readings: Iterable[Reading]) -> None:
        opened: list[FaultEpisode] = []
        ended: list[tuple[str, FaultEpisode, datetime]] = []
        with self._lock:
            for reading in readings:
                pending = self._pending.get(reading.point_id)
                if pending is None or reading.quality != Quality.GOOD or reading.value is None \
                        or reading.ts_utc <= pending.written_utc:
                    continue
                if shows(pending.value, reading.value):
                    if pending.episode is not None:
                        ended.append((reading.point_id, pending.episode, reading.ts_utc))
                    del self._pending[reading.point_id]
                    continue
                pending.polls += 1
                if pending.polls >= POLLS and pending.episode is None:
                    pending.episode = FaultEpisode(
                        RULE_ID, self.park.points[reading.point_id].asset_id, reading.ts_utc, None, Priority.MEDIUM,
                        {"written": pending.value, "read": reading.value, "polls": pending.polls,
                         "written_utc": pending.written_utc.isoformat()}, point_id=reading.point_id)
                    opened.append(pending.episode)
        if opened:
            for episode in opened:
                log.warning("%s: wrote %s, the device shows %s after %d polls", episode.point_id,
                            episode.evidence["written"], episode.evidence["read"], POLLS)
            self.save(opened)
        for point_id, episode, at in ended:
            self._end(point_id, episode, at)

    def _end(self, point_id: str, episode: FaultEpisode, at: datetime) -> None:
        end = max(at, episode.start_utc + timedelta(microseconds=1))
        self.save([FaultEpisode(episode.rule_id, episode.asset_id, episode.start_utc, end, episode.priority,
                                episode.evidence, point_id=point_id)])

    def not_followed(self) -> dict[str, dict[str, Any]]:
        """The points whose device does not show what was written: written and read values, since when."""
        with self._lock:
            return {pid: {"written": p.value, "since_utc": p.episode.start_utc.isoformat(), **p.episode.evidence}
                    for pid, p in self._pending.items() if p.episode is not None}
