"""Where a simulated run continues on a history store an earlier run left (stopped, or killed mid-run).

A simulated run keeps one timeline per history: it starts after everything the earlier run
recorded (readings, fault episodes, write attempts; a killed run may have saved an episode or a
write stamped after its last flushed reading), on a whole simulation step, with the storage
levels and counters of its last readings (:meth:`twin.sim.ParkSimulator.restore_state`).
Fault episodes the earlier run left open are continued by the fault detector when their rule is
one it evaluates; the others (kept open by a part of the run that remembers them only in memory,
such as the setpoint read-back) are closed where the earlier run's record ends.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from twin.fault_episodes import FaultEpisode
from twin.history import FaultEpisodeStore, History
from twin.readings import Reading

_FAR_FUTURE_UTC = datetime(9999, 1, 1, tzinfo=UTC)
"""End of the open range searched for episodes and write records after the last reading."""


@dataclass(frozen=True)
class HistoryEnd:
    """What an earlier run left in a history store."""

    last_reading_utc: datetime
    """The newest stored reading's time (any point, any quality)."""
    last_record_utc: datetime
    """The newest time of anything the run recorded: the last reading, a fault episode's start or end, or a
    write attempt; never before ``last_reading_utc``."""
    latest: dict[str, Reading]
    """Each point's last stored reading."""


def history_end(store: History, episodes: FaultEpisodeStore) -> HistoryEnd | None:
    """Where the history ends; None when it holds no reading."""
    latest = store.latest()
    if not latest:
        return None
    last_reading = max(reading.ts_utc for reading in latest.values())
    later = [last_reading]
    for episode in episodes.overlapping(last_reading, _FAR_FUTURE_UTC):
        later.extend(t for t in (episode.start_utc, episode.end_utc) if t is not None)
    later.extend(record.ts_utc for record in store.iter_write_records(last_reading, _FAR_FUTURE_UTC))
    return HistoryEnd(last_reading, max(later), latest)


def first_step_after(t_utc: datetime, step: timedelta) -> datetime:
    """The first time after ``t_utc`` that is a whole number of ``step`` since the Unix epoch (UTC)."""
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return epoch + ((t_utc - epoch) // step + 1) * step


def close_left_open(episodes: FaultEpisodeStore, at_utc: datetime,
                    continued_rules: Collection[str]) -> list[FaultEpisode]:
    """Close at ``at_utc`` the episodes left open whose rule is not in ``continued_rules`` (those a
    restarted run takes over); returns them closed. ``at_utc`` must be after every stored episode's start."""
    closed = [episode.closed_at(at_utc) for episode in episodes.open_episodes()
              if episode.rule_id not in continued_rules]
    episodes.save(closed)
    return closed
