"""What the dashboard reads from history for its charts and periods: subsystem power and the periods shown.

Power points are kW. Energy figures are not computed here: they come from the
KPI engine (:mod:`energy.kpi`, through the KPI provider), the one the CLI uses.
Everything here is a plain function of a :class:`History`; the pages and the
JSON API both call these, so they show the same numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pandas as pd

from twin.history import History
from twin.park import Park
from twin.subsystems import power_points, subsystem_power_frame

SCREEN_BUCKETS = 720
"""Buckets a chart asks for: about one per horizontal pixel of a laptop-width chart."""

NICE_INTERVALS_S = (60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)
"""Bucket lengths charts resample to; each divides a day, so buckets align to UTC midnight."""

ENERGY_INTERVAL_S = 900
"""Bucket length of the power chart's data read once per refresh (the KPI engine's interval, 15 min)."""

PERIODS = ("today", "week", "custom")
COMPARISONS = ("week", "month", "year")


@dataclass(frozen=True)
class Period:
    """A half-open UTC range [start, end) and the range it is compared with, like for like: the same
    weekdays and hours of an earlier week, or the same days of the previous month or year.

    partial: the period ends before its last day does (today or this week, so far); the comparison
    covers the same part of its days.
    """

    label: str
    start: datetime
    end: datetime
    previous_start: datetime
    previous_end: datetime
    previous_label: str
    partial: bool


def screen_interval_s(start: datetime, end: datetime, buckets: int = SCREEN_BUCKETS) -> int:
    """The smallest nice bucket length (s) that draws [start, end) in at most ``buckets`` points."""
    needed = (end - start).total_seconds() / buckets
    return next((s for s in NICE_INTERVALS_S if s >= needed), NICE_INTERVALS_S[-1])


def reference_time(park: Park, history: History) -> datetime | None:
    """The newest reading of the grid meter's power plus one sample period: "now" for the data shown.

    Over a live park this follows the feed; over an old history it is where the data ends.
    """
    grid = power_points(park)["grid"]
    span = history.time_range(grid[0]) if grid else None
    if span is None:
        return None
    return span[1] + timedelta(seconds=park.simulation.step_s)


def choose_period(park: Park, kind: str, now_utc: datetime, first_day: date | None = None,
                  last_day: date | None = None, compare: str = "week") -> Period:
    """Today (local midnight to now), this week (Monday to now) or custom days (both inclusive), local time,
    and what it is compared with (:class:`Period`).

    now_utc: where the data ends (exclusive), e.g. :func:`reference_time`.
    compare: "week": the same weekdays and hours as many whole weeks before as the period needs (one for
    today and this week); "month" / "year": the same days and hours of the previous month / year (a day
    the shorter month lacks falls on its last day).
    """
    tz = ZoneInfo(park.site.timezone)
    local_now = (now_utc - timedelta(microseconds=1)).astimezone(tz)  # the last instant with data
    if kind == "today":
        start_local = datetime.combine(local_now.date(), time.min, tzinfo=tz)
        start, end, label = start_local.astimezone(UTC), now_utc, f"today, {local_now:%a %d %b}"
    elif kind == "week":
        monday = local_now.date() - timedelta(days=local_now.weekday())
        start = datetime.combine(monday, time.min, tzinfo=tz).astimezone(UTC)
        end, label = now_utc, f"this week, from {monday:%a %d %b}"
    elif kind == "custom":
        if first_day is None or last_day is None or last_day < first_day:
            raise ValueError("a custom period needs a first day on or before its last day")
        start = datetime.combine(first_day, time.min, tzinfo=tz).astimezone(UTC)
        end = datetime.combine(last_day + timedelta(days=1), time.min, tzinfo=tz).astimezone(UTC)
        label = f"{first_day:%d %b %Y} to {last_day:%d %b %Y}"
    else:
        raise ValueError(f"unknown period {kind!r}; expected one of {', '.join(PERIODS)}")
    if compare not in COMPARISONS:
        raise ValueError(f"unknown comparison {compare!r}; expected one of {', '.join(COMPARISONS)}")
    day_end = datetime.combine(local_now.date() + timedelta(days=1), time.min, tzinfo=tz).astimezone(UTC)
    partial = end > now_utc or (kind != "custom" and end < day_end)
    if compare == "week":
        weeks = max(1, math.ceil((end - start) / timedelta(days=7)))
        shift = pd.DateOffset(weeks=weeks)
        previous_label = "same weekdays a week before" if weeks == 1 else f"same weekdays {weeks} weeks before"
    else:
        shift = pd.DateOffset(months=1) if compare == "month" else pd.DateOffset(years=1)
        previous_label = f"same days of the previous {compare}"
    previous_start, previous_end = (_local_shift(t, tz, shift) for t in (start, end))
    return Period(label, start, end, previous_start, previous_end, previous_label, partial)


def _local_shift(t: datetime, tz: ZoneInfo, shift: pd.DateOffset) -> datetime:
    """``t`` moved back by ``shift`` on the local calendar (the same wall-clock time), in UTC."""
    return (pd.Timestamp(t).tz_convert(tz).tz_localize(None) - shift).tz_localize(tz).tz_convert("UTC").to_pydatetime()


def last_local_day(park: Park, now_utc: datetime) -> date:
    """The park-local day of the last instant before now_utc (where the data ends)."""
    return (now_utc - timedelta(microseconds=1)).astimezone(ZoneInfo(park.site.timezone)).date()


def subsystem_power(park: Park, history: History, start: datetime, end: datetime,
                    interval_s: int) -> pd.DataFrame:
    """Mean power per subsystem (kW) in buckets of interval_s over [start, end), resampled in the database.

    Columns as :func:`twin.subsystems.subsystem_power_frame`; index: bucket start (UTC).
    """
    ids = [pid for pids in power_points(park).values() for pid in pids]
    wide = history.resample(ids, start, end, interval_s=interval_s, agg="mean")
    return subsystem_power_frame(park, wide)


def coarser(power: pd.DataFrame, interval_s: int) -> pd.DataFrame:
    """Buckets of interval_s (a multiple of the frame's, epoch-aligned) as the mean of the finer buckets."""
    return power.resample(f"{interval_s}s", origin="epoch").mean().dropna(how="all")


def finite_or_none(value: float | None) -> float | None:
    """JSON has no NaN: NaN and infinities become None."""
    return None if value is None or not math.isfinite(value) else float(value)
