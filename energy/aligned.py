"""The KPI engine's time-aligned grid: every point's readings as time-weighted means per interval.

Devices are polled at their own instants and periods, so readings of different
points never share timestamps. Each reading is taken as the point's value from
its timestamp until the next reading of the same point, but for no longer than
the point's hold limit (its poll period, :func:`hold_limits_s`): past that the
value is unknown. An interval's mean is the time-weighted mean over the part
of it with a known value, and its coverage is that part's share of the interval.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import cast

import numpy as np
import pandas as pd

from twin.history import History
from twin.park import Park
from twin.readings import Quality

COUNTED_QUALITIES = (int(Quality.GOOD), int(Quality.STALE))
"""Readings whose value counts: read normally, or not updated in time but still the device's value."""


def hold_limits_s(park: Park, poll_periods_s: dict[str, float] | None = None,
                  time_scale: float = 1.0) -> dict[str, float]:
    """How long (twin seconds) each point's reading stands for its value: its device's poll period from the
    point maps (``poll_periods_s``, wall seconds by point id) times ``time_scale`` (twin seconds per wall
    second: a ``parktwin run --speed``, 1 for field devices), and never less than the park's simulation step
    (a simulated history holds one reading per point per step). Points no point map polls: the step."""
    step_s = float(park.simulation.step_s)
    polled = poll_periods_s or {}
    return {pid: max(step_s, polled.get(pid, 0.0) * time_scale) for pid in park.points}


def interval_bounds(start: datetime, end: datetime, interval_s: int) -> pd.DatetimeIndex:
    """[start, end) cut at every multiple of ``interval_s`` since the epoch (UTC); the first and last
    intervals may be partial."""
    start_ts, end_ts = pd.Timestamp(start), pd.Timestamp(end)
    inner = pd.date_range(start_ts.ceil(f"{interval_s}s"), end_ts, freq=f"{interval_s}s", inclusive="left")
    edges = pd.DatetimeIndex([start_ts]).append(inner[inner > start_ts]).append(pd.DatetimeIndex([end_ts]))
    return cast(pd.DatetimeIndex, edges)


@dataclass(frozen=True)
class AlignedPoints:
    """Points on one grid of intervals: ``mean`` (the time-weighted mean over the known part of each
    interval, NaN where nothing is known) and ``coverage`` (0-1, the known share of each interval), both
    indexed by interval start with one column per point; ``hours`` the length of each interval."""

    mean: pd.DataFrame
    coverage: pd.DataFrame
    hours: np.ndarray


def held_integrals(times_h: np.ndarray, values: np.ndarray, hold_h: float,
                   at_h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(integral of the held value, hours with a known value) from the first sample to each time of
    ``at_h``; every value held from its sample until the next or for ``hold_h``, whichever is sooner.
    Samples in time order, all values finite; times in hours from any origin."""
    ends = np.minimum(np.append(times_h[1:], np.inf), times_h + hold_h)
    lengths = ends - times_h
    known_h = np.concatenate([[0.0], np.cumsum(lengths)])  # at each sample
    integral = np.concatenate([[0.0], np.cumsum(values * lengths)])
    last = np.searchsorted(times_h, at_h, side="right") - 1  # the sample in force at each time; -1: none yet
    before_any = last < 0
    last = np.clip(last, 0, None)
    inside = np.where(before_any, 0.0, np.clip(at_h - times_h[last], 0.0, lengths[last]))
    integral_at = np.where(before_any, 0.0, integral[last] + values[last] * inside)
    known_at = np.where(before_any, 0.0, known_h[last] + inside)
    return integral_at, known_at


def aligned_points(history: History, point_ids: list[str], bounds: pd.DatetimeIndex,
                   hold_s: dict[str, float]) -> AlignedPoints:
    """Each point's time-weighted mean and coverage in every interval between consecutive ``bounds``
    (module docstring, :func:`interval_bounds`); ``hold_s`` by point id (:func:`hold_limits_s`). Readings
    from up to the longest hold before the first bound count, as they stand for values after it."""
    index = bounds[:-1]
    hours = np.diff(bounds.as_unit("ns").asi8) / 3.6e12
    longest = pd.Timedelta(seconds=max((hold_s[pid] for pid in point_ids), default=0.0))
    readings = history.query(point_ids, bounds[0] - longest, bounds[-1])
    readings = readings[readings["quality"].isin(COUNTED_QUALITIES) & np.isfinite(readings["value"])]
    origin = bounds[0].as_unit("ns").value
    at_h = (bounds.as_unit("ns").asi8 - origin) / 3.6e12
    mean = pd.DataFrame(np.nan, index=index, columns=point_ids)
    coverage = pd.DataFrame(0.0, index=index, columns=point_ids)
    for pid, one in readings.groupby("point_id", sort=False):
        times_h = (pd.DatetimeIndex(one["ts_utc"]).as_unit("ns").asi8 - origin) / 3.6e12
        integral, known = held_integrals(times_h, one["value"].to_numpy(float), hold_s[pid] / 3600.0, at_h)
        known_h = np.diff(known)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean[pid] = np.where(known_h > 0, np.diff(integral) / known_h, np.nan)
        coverage[pid] = np.clip(known_h / hours, 0.0, 1.0)
    return AlignedPoints(mean, coverage, hours)
