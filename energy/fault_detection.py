"""Fault detection: rule conditions -> fault episodes, in batch over history or live on new readings.

Both paths run the same :class:`EpisodeTracker`, which remembers, per (rule,
asset, point), when the current run of the condition began and the episode it
opened. An episode starts when its condition *began* to hold (not when the
minimum duration was reached) and ends at the first time it no longer holds.
Episodes are identified by (rule, asset, point, start): the same readings
always give the same episodes, and the store replaces by that identity, so
running detection again, or live after batch, never duplicates an episode.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from energy.fault_rules import (HELD_QUALITY, MISSING_QUALITY, RULE_LOOKBACK, Condition, FaultThresholds, RuleInput,
                                evaluate_rules)
from twin.fault_episodes import FaultEpisode
from twin.history import FaultEpisodeStore, History, query_grid
from twin.park import Park
from twin.readings import Reading

TrackKey = tuple[str, str, str]
"""(rule id, asset id, point id) of a condition."""


class EpisodeTracker:
    """Turns successive stretches of rule conditions into fault episodes.

    ``active``: episodes still open from an earlier run (e.g. from the
    store); their condition is taken to have held since their start.
    """

    def __init__(self, active: Iterable[FaultEpisode] = ()):
        self._run_start: dict[TrackKey, datetime] = {}
        self._open: dict[TrackKey, FaultEpisode] = {}
        for episode in active:
            key = (episode.rule_id, episode.asset_id, episode.point_id)
            self._open[key] = replace(episode, end_utc=None)
            self._run_start[key] = episode.start_utc

    @property
    def open_episodes(self) -> list[FaultEpisode]:
        return sorted(self._open.values(), key=lambda e: (e.start_utc, e.rule_id, e.asset_id))

    def feed(self, conditions: list[Condition], times: pd.DatetimeIndex, step: pd.Timedelta) -> list[FaultEpisode]:
        """Advance over ``times`` (after every time fed before); return every episode opened, still open
        or closed in this stretch, in its latest state. A condition absent from ``conditions`` is taken
        as not holding."""
        if len(times) == 0:
            return []
        changed: dict[tuple, FaultEpisode] = {}
        stamps = [ts.to_pydatetime() for ts in times]
        seen: set[TrackKey] = set()
        for condition in conditions:
            key = (condition.rule_id, condition.asset_id, condition.point_id)
            seen.add(key)
            if condition.active.any() or key in self._run_start:
                self._advance(key, condition, times, stamps, step, changed)
        for key in [k for k in self._run_start if k not in seen]:
            self._stop(key, stamps[0], changed)
        return sorted(changed.values(), key=lambda e: (e.start_utc, e.rule_id, e.asset_id, e.point_id))

    def _advance(self, key: TrackKey, condition: Condition, times: pd.DatetimeIndex, stamps: list[datetime],
                 step: pd.Timedelta, changed: dict) -> None:
        active = np.asarray(condition.active, dtype=bool)
        edges = np.diff(np.concatenate(([0], active.astype(np.int8), [0])))
        run_starts, run_ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        if key in self._run_start and (len(run_starts) == 0 or run_starts[0] != 0):
            self._stop(key, stamps[0], changed)
        n = len(stamps)
        for first, end in zip(run_starts, run_ends):
            continuing = first == 0 and key in self._run_start
            run_start = self._run_start[key] if continuing else stamps[first]
            episode = self._open.get(key) if continuing else None
            if episode is None:
                confirm = first + int(np.searchsorted(times[first:end], run_start + condition.min_duration - step))
                if confirm < end:
                    episode = FaultEpisode(condition.rule_id, condition.asset_id, run_start, None, condition.priority,
                                           _evidence(condition, confirm), condition.point_id)
            if end < n:
                if episode is not None:
                    closed = episode.closed_at(stamps[end])
                    changed[closed.key] = closed
                self._run_start.pop(key, None)
                self._open.pop(key, None)
            else:
                self._run_start[key] = run_start
                if episode is not None:
                    self._open[key] = episode
                    changed[episode.key] = episode

    def _stop(self, key: TrackKey, at: datetime, changed: dict) -> None:
        """The condition stopped holding before ``at``: close its open episode there."""
        episode = self._open.pop(key, None)
        self._run_start.pop(key, None)
        if episode is not None:
            closed = episode.closed_at(at)
            changed[closed.key] = closed


def _evidence(condition: Condition, index: int) -> dict:
    """The condition's metrics at one time, rounded, known values only."""
    evidence = {}
    for name, values in condition.metrics.items():
        value = float(values[index])
        if np.isfinite(value):
            evidence[name] = round(value, 4)
    return evidence


def rule_input_from_frame(park: Park, frame: pd.DataFrame, limits: FaultThresholds) -> RuleInput:
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
    return _rule_input(park, pd.DatetimeIndex(times, name="ts_utc"), list(point_ids), values, quality, limits)


def _rule_input(park: Park, times: pd.DatetimeIndex, point_ids: list[str], values: np.ndarray,
                quality: np.ndarray, limits: FaultThresholds) -> RuleInput:
    """The grid as a :class:`RuleInput`; its step is the median spacing of the grid (the poll period).

    A live feed polls devices in rounds, so the grid holds every round's time, and a device that
    missed a round (a timeout, a slow answer) has no reading there. Its previous reading still
    stands until it would be stale (``stale_poll_periods`` steps): it is carried into those times as
    :data:`~energy.fault_rules.HELD_QUALITY`, so a fault whose condition holds does not end and
    start again at every missed round, while staleness is still judged from the readings alone.
    """
    columns = pd.Index(point_ids, dtype=object)
    step = pd.Series(times).diff().median() if len(times) > 1 else pd.Timedelta(seconds=park.simulation.step_s)
    _hold_last_readings(times, values, quality, step * limits.stale_poll_periods)
    return RuleInput(park, pd.DataFrame(values, index=times, columns=columns),
                     pd.DataFrame(quality, index=times, columns=columns), step)


def _hold_last_readings(times: pd.DatetimeIndex, values: np.ndarray, quality: np.ndarray,
                        hold: pd.Timedelta) -> None:
    """In place: where a point has no reading, its last reading's value if that is at most ``hold`` old."""
    if len(times) == 0:
        return
    present = quality != MISSING_QUALITY
    last = np.maximum.accumulate(np.where(present, np.arange(len(times))[:, None], -1), axis=0)
    stamps_ns = times.as_unit("ns").asi8
    age_ns = stamps_ns[:, None] - stamps_ns[np.maximum(last, 0)]
    rows, cols = np.nonzero(~present & (last >= 0) & (age_ns <= hold.value))
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
    times, values, quality = query_grid(history, list(park.points), read_from, end)
    if len(times) == 0:
        return []
    data = _rule_input(park, times, list(park.points), values, quality, limits)
    carried = store.overlapping(read_from, read_from + timedelta(milliseconds=1)) if store else []
    tracker = EpisodeTracker(carried)
    episodes = [e for e in tracker.feed(evaluate_rules(data, limits), data.times, data.step)
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
    episodes are resumed from it at start and every change is saved.
    """

    def __init__(self, park: Park, limits: FaultThresholds | None = None, store: FaultEpisodeStore | None = None,
                 check_every: timedelta = timedelta(minutes=15)):
        self.park = park
        self.limits = limits or FaultThresholds()
        self.store = store
        self.check_every = check_every
        self._tracker = EpisodeTracker(store.open_episodes() if store else [])
        self._buffer: list[pd.DataFrame] = []
        self._judged_until: pd.Timestamp | None = None
        self._pending: list[Reading] = []

    def deliver(self, readings: list[Reading]) -> None:
        """Reading sink for a live feed: collect readings and run :meth:`update` once they span
        ``check_every`` (each update costs about 0.1 s for the demo park, so not every step)."""
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
        data = rule_input_from_frame(self.park, frame, self.limits)
        due = data.times < newest
        if self._judged_until is not None:
            due &= data.times > self._judged_until
        if not due.any():
            return []
        conditions = [_slice(c, due) for c in evaluate_rules(data, self.limits)]
        changed = self._tracker.feed(conditions, data.times[due], data.step)
        self._judged_until = data.times[due][-1]
        if self.store is not None:
            self.store.save(changed)
        return changed


def _slice(condition: Condition, mask: np.ndarray) -> Condition:
    return replace(condition, active=condition.active[mask],
                   metrics={name: values[mask] for name, values in condition.metrics.items()})
