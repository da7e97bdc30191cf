"""Fault detection: rule conditions -> fault episodes, in batch over history or live on new readings.

Both paths run the same :class:`EpisodeTracker`, which remembers, per (rule,
asset, point), when the current run of the condition began and the episode it
opened, as ISA-18.2 alarm handling asks (DOMAIN.md "Alarm management"):

- on-delay: an episode opens once its condition has held for its
  ``min_duration``, and starts when the condition *began* to hold;
- off-delay: it ends only once the condition has stayed clear for its
  ``off_delay``, at the time it first cleared; a condition that holds again
  sooner continues the same episode (same start, acknowledgement kept);
- where a rule cannot judge (``Condition.judged``), the condition keeps its state;
- suppression by cause: a stale or flatline episode of a point whose device
  has lost communication records that comm-loss episode as ``suppressed_by``.

Episodes are identified by (rule, asset, point, start): the same readings
always give the same episodes, and the store replaces by that identity, so
running detection again, or live after batch, never duplicates an episode.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Protocol

import numpy as np
import pandas as pd

from energy.fault_rules import (
    COMM_LOST_RULE,
    HELD_QUALITY,
    MISSING_QUALITY,
    RULE_LOOKBACK,
    SUPPRESSED_BY_COMM_LOSS,
    Condition,
    FaultThresholds,
    RuleInput,
    evaluate_rules,
)
from twin.fault_episodes import FaultEpisode
from twin.history import FaultEpisodeStore, History
from twin.park import Park
from twin.readings import Reading

TrackKey = tuple[str, str, str]
"""(rule id, asset id, point id) of a condition."""
EpisodeKey = tuple[str, str, str, datetime]
"""FaultEpisode.key: rule id, asset id, point id and start."""


class EpisodeTracker:
    """Turns successive stretches of rule conditions into fault episodes.

    ``active``: episodes still open from an earlier run (e.g. from the
    store); their condition is taken to have held since their start.
    """

    def __init__(self, active: Iterable[FaultEpisode] = ()):
        self._run_start: dict[TrackKey, datetime] = {}
        """Start of the condition's current run, for a condition holding at the last time fed."""
        self._open: dict[TrackKey, FaultEpisode] = {}
        self._cleared_at: dict[TrackKey, datetime] = {}
        """When the condition of an open episode cleared, while its off-delay runs."""
        self._off_delay: dict[TrackKey, timedelta] = {}
        for episode in active:
            key = (episode.rule_id, episode.asset_id, episode.point_id)
            self._open[key] = replace(episode, end_utc=None)
            self._run_start[key] = episode.start_utc

    @property
    def open_episodes(self) -> list[FaultEpisode]:
        return sorted(self._open.values(), key=lambda e: (e.start_utc, e.rule_id, e.asset_id))

    def feed(self, conditions: list[Condition], times: pd.DatetimeIndex) -> list[FaultEpisode]:
        """Advance over ``times`` (after every time fed before); return every episode opened, changed or
        closed in this stretch, in its latest state. A condition absent from ``conditions`` is taken as
        judged and not holding."""
        if len(times) == 0:
            return []
        changed: dict[EpisodeKey, FaultEpisode] = {}
        stamps = [ts.to_pydatetime() for ts in times]
        seen: set[TrackKey] = set()
        for condition in conditions:
            key = (condition.rule_id, condition.asset_id, condition.point_id)
            seen.add(key)
            if key in self._run_start or key in self._open or condition.active.any():
                self._off_delay[key] = condition.off_delay.to_pytimedelta()
                self._advance(key, condition, times, stamps, changed)
        for key in [k for k in self._open.keys() | self._run_start.keys() if k not in seen]:
            if key in self._run_start:
                self._clear(key, stamps[0])
            self._expire(key, stamps[-1], changed)
        self._suppress_by_cause(changed)
        return sorted(changed.values(), key=lambda e: (e.start_utc, e.rule_id, e.asset_id, e.point_id))

    def _advance(self, key: TrackKey, condition: Condition, times: pd.DatetimeIndex, stamps: list[datetime],
                 changed: dict[EpisodeKey, FaultEpisode]) -> None:
        holds = _holding(condition, key in self._run_start)
        edges = np.diff(np.concatenate(([0], holds.astype(np.int8), [0])))
        run_starts, run_ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        if key in self._run_start and (len(run_starts) == 0 or run_starts[0] != 0):
            self._clear(key, stamps[0])
        n = len(stamps)
        for first, end in zip(run_starts, run_ends):
            if key not in self._run_start:
                self._begin(key, stamps[first], changed)
            run_start = self._run_start[key]
            if key not in self._open:
                held_until = stamps[end] if end < n else stamps[-1]
                if held_until - run_start >= condition.min_duration:
                    confirm = first + int(times[first:end].searchsorted(run_start + condition.min_duration))
                    self._open[key] = FaultEpisode(
                        condition.rule_id, condition.asset_id, run_start, None, condition.priority,
                        _evidence(condition, int(min(confirm, end - 1))), condition.point_id)
                    changed[self._open[key].key] = self._open[key]
            if end < n:
                self._clear(key, stamps[end])
        self._expire(key, stamps[-1], changed)

    def _begin(self, key: TrackKey, at: datetime, changed: dict[EpisodeKey, FaultEpisode]) -> None:
        """The condition holds again from ``at``: an open episode within its off-delay goes on, else it
        ends where it cleared and a new run begins."""
        cleared = self._cleared_at.pop(key, None)
        if cleared is not None and at - cleared < self._off_delay[key]:
            self._run_start[key] = self._open[key].start_utc
            return
        if cleared is not None:
            self._close(key, cleared, changed)
        self._run_start[key] = at

    def _clear(self, key: TrackKey, at: datetime) -> None:
        """The condition stopped holding at ``at``: its run ends; an open episode's off-delay starts."""
        self._run_start.pop(key, None)
        if key in self._open:
            self._cleared_at[key] = at

    def _expire(self, key: TrackKey, now: datetime, changed: dict[EpisodeKey, FaultEpisode]) -> None:
        """Close the episode whose condition has been clear for its off-delay by ``now``."""
        cleared = self._cleared_at.get(key)
        if cleared is not None and now - cleared >= self._off_delay.get(key, timedelta(0)):
            del self._cleared_at[key]
            self._close(key, cleared, changed)

    def _close(self, key: TrackKey, at: datetime, changed: dict[EpisodeKey, FaultEpisode]) -> None:
        closed = self._open.pop(key).closed_at(at)
        changed[closed.key] = closed

    def _suppress_by_cause(self, changed: dict[EpisodeKey, FaultEpisode]) -> None:
        """Mark stale and flatline episodes of a device that lost communication meanwhile as suppressed by
        that comm-loss episode (open ones, and those opened or closed in this stretch)."""
        causes: dict[str, list[FaultEpisode]] = {}
        for episode in [*self._open.values(), *changed.values()]:
            if episode.rule_id == COMM_LOST_RULE:
                causes.setdefault(episode.asset_id, []).append(episode)
        if not causes:
            return
        for episode in [*self._open.values(), *changed.values()]:
            if episode.rule_id not in SUPPRESSED_BY_COMM_LOSS or episode.suppressed_by is not None:
                continue
            cause = next((c for c in causes.get(episode.asset_id, []) if _overlap(c, episode)), None)
            if cause is None:
                continue
            suppressed = replace(episode, suppressed_by=cause.id)
            key = (episode.rule_id, episode.asset_id, episode.point_id)
            if self._open.get(key) is not None and self._open[key].key == episode.key:
                self._open[key] = suppressed
            changed[suppressed.key] = suppressed


def _holding(condition: Condition, holding_before: bool) -> np.ndarray:
    """Whether the condition holds at each time, where it was not judged keeping the state before."""
    active = np.asarray(condition.active, dtype=bool)
    if condition.judged is None:
        return active
    judged = np.asarray(condition.judged, dtype=bool)
    last_judged = np.maximum.accumulate(np.where(judged, np.arange(len(active)), -1))
    return np.where(last_judged >= 0, active[np.maximum(last_judged, 0)], holding_before)


def _overlap(a: FaultEpisode, b: FaultEpisode) -> bool:
    return (a.end_utc is None or a.end_utc > b.start_utc) and (b.end_utc is None or b.end_utc > a.start_utc)


def _evidence(condition: Condition, index: int) -> dict[str, Any]:
    """The condition's metrics at one time, rounded, known values only."""
    evidence = {}
    for name, values in condition.metrics.items():
        value = float(values[index])
        if np.isfinite(value):
            evidence[name] = round(value, 4)
    return evidence


def rule_input_from_frame(park: Park, frame: pd.DataFrame, limits: FaultThresholds,
                          poll_periods: Mapping[str, timedelta] | None = None,
                          grace_end_utc: datetime | None = None) -> RuleInput:
    """A :class:`RuleInput` from a long-format history frame (point_id, ts_utc, value, quality).

    The grid is every distinct timestamp of the frame; of two readings of one
    point at one time the later row wins; last readings are held as :func:`_rule_input` says.
    """
    point_codes, point_ids = pd.factorize(frame["point_id"])
    time_codes, times = pd.factorize(pd.DatetimeIndex(frame["ts_utc"]).tz_convert("UTC"), sort=True)
    values = np.full((len(times), len(point_ids)), np.nan)
    quality = np.full((len(times), len(point_ids)), MISSING_QUALITY, dtype=np.int16)
    values[time_codes, point_codes] = frame["value"].to_numpy(dtype=float)
    quality[time_codes, point_codes] = frame["quality"].to_numpy(dtype=np.int16)
    return _rule_input(park, pd.DatetimeIndex(times, name="ts_utc"), list(point_ids), values, quality, limits,
                       poll_periods, grace_end_utc)


def _rule_input(park: Park, times: pd.DatetimeIndex, point_ids: list[str], values: np.ndarray,
                quality: np.ndarray, limits: FaultThresholds, poll_periods: Mapping[str, timedelta] | None = None,
                grace_end_utc: datetime | None = None) -> RuleInput:
    """The grid as a :class:`RuleInput`, each point with its own poll period (twin time).

    ``poll_periods``: each point's poll period from its point map (a live detector's); without
    them (history, whose clock speed is not recorded), each point's own median spacing between
    its readings. The grid holds every reading time of every device, and a point has no reading
    at the other devices' times, nor where its device missed a round (a timeout, a slow answer).
    Its previous reading still stands until it would be stale (``stale_poll_periods`` of its own
    poll period): it is carried into those times as :data:`~energy.fault_rules.HELD_QUALITY`, so a
    fault whose condition holds does not end and start again between polls, while staleness is
    still judged from the readings alone.
    """
    columns = pd.Index(point_ids, dtype=object)
    step = pd.Series(times).diff().median() if len(times) > 1 else pd.Timedelta(seconds=park.simulation.step_s)
    periods = {pid: pd.Timedelta(poll_periods[pid]) for pid in point_ids if pid in poll_periods} \
        if poll_periods is not None else _own_poll_periods(times, point_ids, quality)
    hold = np.array([periods.get(pid, step).value * limits.stale_poll_periods for pid in point_ids], dtype=np.int64)
    _hold_last_readings(times, values, quality, hold)
    return RuleInput(park, pd.DataFrame(values, index=times, columns=columns),
                     pd.DataFrame(quality, index=times, columns=columns), step, periods,
                     None if grace_end_utc is None else pd.Timestamp(grace_end_utc))


def _own_poll_periods(times: pd.DatetimeIndex, point_ids: list[str], quality: np.ndarray) -> dict[str, pd.Timedelta]:
    """Each point's median spacing between its own readings (points with fewer than two: none)."""
    stamps_ns = times.as_unit("ns").asi8
    periods = {}
    for column, pid in enumerate(point_ids):
        own = stamps_ns[quality[:, column] != MISSING_QUALITY]
        if len(own) > 1:
            periods[pid] = pd.Timedelta(int(np.median(np.diff(own))), unit="ns")
    return periods


def _hold_last_readings(times: pd.DatetimeIndex, values: np.ndarray, quality: np.ndarray,
                        hold_ns: np.ndarray) -> None:
    """In place: where a point has no reading, its last reading's value if that is at most its ``hold_ns`` old."""
    if len(times) == 0:
        return
    present = quality != MISSING_QUALITY
    last = np.maximum.accumulate(np.where(present, np.arange(len(times))[:, None], -1), axis=0)
    stamps_ns = times.as_unit("ns").asi8
    age_ns = stamps_ns[:, None] - stamps_ns[np.maximum(last, 0)]
    rows, cols = np.nonzero(~present & (last >= 0) & (age_ns <= hold_ns[None, :]))
    values[rows, cols] = values[last[rows, cols], cols]
    quality[rows, cols] = HELD_QUALITY


def detect_faults(history: History, park: Park, start: datetime, end: datetime,
                  limits: FaultThresholds | None = None, store: FaultEpisodeStore | None = None) -> list[FaultEpisode]:
    """Fault episodes active at some time in [start, end), from the history of every point.

    The rules see :data:`~energy.fault_rules.RULE_LOOKBACK` of history before
    ``start``. With a store, episodes it holds that were active at the start
    of that lookback carry on (same start, no duplicate), and the episodes
    found are saved to it. An episode still active at ``end`` is returned open.
    """
    limits = limits or FaultThresholds()
    read_from = start - RULE_LOOKBACK
    times, values, quality = history.query_grid(list(park.points), read_from, end)
    if len(times) == 0:
        return []
    data = _rule_input(park, times, list(park.points), values, quality, limits)
    carried = store.overlapping(read_from, read_from + timedelta(milliseconds=1)) if store else []
    tracker = EpisodeTracker(carried)
    episodes = [e for e in tracker.feed(evaluate_rules(data, limits), data.times)
                if e.start_utc < end and (e.end_utc is None or e.end_utc > start)]
    if store is not None:
        store.save(episodes)
    return episodes


class LiveFaultDetector:
    """Fault detection on readings as they arrive (the runtime's sink, or any feed).

    Keeps the last :data:`~energy.fault_rules.RULE_LOOKBACK` of readings,
    evaluates the rules over it on every :meth:`update`, and advances the
    episode tracker over the times not yet judged, holding back the newest
    time (the spike rule needs the reading after). With a store, open
    episodes are resumed from it at start and every change is saved (changes
    the store refused while unavailable, with the next update).

    ``poll_periods``: each point's poll period in twin time (see
    :func:`poll_periods_in_twin_time`); None: each point's own spacing between
    its readings. The start-up grace period (``startup_grace``, twin time;
    default the thresholds' ``startup_grace_s`` on a twin clock running at wall
    speed) runs from the first reading delivered.
    """

    def __init__(self, park: Park, limits: FaultThresholds | None = None, store: FaultEpisodeStore | None = None,
                 check_every: timedelta = timedelta(minutes=15), poll_periods: Mapping[str, timedelta] | None = None,
                 startup_grace: timedelta | None = None):
        self.park = park
        self.limits = limits or FaultThresholds()
        self.store = store
        self.check_every = check_every
        self.poll_periods = poll_periods
        self.startup_grace = timedelta(seconds=self.limits.startup_grace_s) if startup_grace is None \
            else startup_grace
        self.grace_end_utc: datetime | None = None
        self._tracker = EpisodeTracker(store.open_episodes() if store else [])
        self._buffer: list[pd.DataFrame] = []
        self._judged_until: pd.Timestamp | None = None
        self._pending: list[Reading] = []
        self._unsaved: dict[str, FaultEpisode] = {}
        """Episode changes the store refused (unavailable), by episode id, latest state: saved with the next."""

    def deliver(self, readings: list[Reading]) -> None:
        """Reading sink for a live feed: collect readings and run :meth:`update` once they span
        ``check_every`` (an update judges every rule over the buffered window: too much work for every step)."""
        self._pending.extend(readings)
        if self._pending and self._pending[-1].ts_utc - self._pending[0].ts_utc >= self.check_every:
            pending, self._pending = self._pending, []
            self.update(pending)

    @property
    def open_episodes(self) -> list[FaultEpisode]:
        return self._tracker.open_episodes

    def update(self, readings: Iterable[Reading]) -> list[FaultEpisode]:
        """Take new readings; return the episodes opened, extended or closed by them."""
        readings = list(readings)
        if not readings:
            return []
        if self.grace_end_utc is None:
            self.grace_end_utc = min(r.ts_utc for r in readings) + self.startup_grace
        self._buffer.append(pd.DataFrame({
            "point_id": [r.point_id for r in readings],
            "ts_utc": pd.DatetimeIndex([r.ts_utc for r in readings]).tz_convert("UTC"),
            "value": np.array([np.nan if r.value is None else r.value for r in readings], dtype=float),
            "quality": [int(r.quality) for r in readings],
        }))
        frame = pd.concat(self._buffer, ignore_index=True)
        newest = frame["ts_utc"].max()
        frame = frame[frame["ts_utc"] > newest - RULE_LOOKBACK]
        self._buffer = [frame]
        data = rule_input_from_frame(self.park, frame, self.limits, self.poll_periods, self.grace_end_utc)
        due = data.times < newest
        if self._judged_until is not None:
            due &= data.times > self._judged_until
        if not due.any():
            return []
        conditions = [_slice(c, due) for c in evaluate_rules(data, self.limits)]
        changed = self._tracker.feed(conditions, data.times[due])
        self._judged_until = data.times[due][-1]
        if self.store is not None:
            self._save(self.store, changed)
        return changed

    def _save(self, store: FaultEpisodeStore, changed: list[FaultEpisode]) -> None:
        """Save the changes with those the store refused before. Judging goes on while the store is down:
        an episode that opens and closes in an outage is saved once the store answers again, not lost.
        Raises StorageUnavailable while it is down (the runtime logs the outage once)."""
        self._unsaved.update((episode.id, episode) for episode in changed)
        if self._unsaved:
            store.save(sorted(self._unsaved.values(), key=lambda e: (e.start_utc, e.rule_id, e.asset_id, e.point_id)))
            self._unsaved.clear()


def _slice(condition: Condition, mask: np.ndarray) -> Condition:
    return replace(condition, active=condition.active[mask],
                   judged=None if condition.judged is None else condition.judged[mask],
                   metrics={name: values[mask] for name, values in condition.metrics.items()})


class PolledDevice(Protocol):
    """What :func:`poll_periods_in_twin_time` needs of a point map's device (protocols.pointmap.DeviceMap)."""

    @property
    def poll_period_s(self) -> float: ...

    @property
    def point_ids(self) -> list[str]: ...


def poll_periods_in_twin_time(device_maps: Iterable[PolledDevice], speed: float) -> dict[str, timedelta]:
    """Each mapped point's poll period on the twin's clock: its point map's ``poll_period_s`` is
    wall-clock seconds, and a simulated twin clock runs ``speed`` times faster (field devices: 1)."""
    return {pid: timedelta(seconds=device.poll_period_s * speed) for device in device_maps for pid in device.point_ids}
