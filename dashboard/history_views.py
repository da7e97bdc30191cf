"""What the dashboard computes from history alone: periods, subsystem power, energy totals and flows.

Power points are kW; energies are kWh, integrated as the mean power of each
resampled bucket times the part of the bucket inside the period (so the
integral equals sum(value x sample period) when samples are evenly spaced and
complete). Everything here is a plain function of a :class:`History`; the
pages and the JSON API both call these, so they show the same numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from twin.history import History
from twin.park import Park
from twin.subsystems import LOAD_SUBSYSTEMS, power_points, subsystem_power_frame

SCREEN_BUCKETS = 720
"""Buckets a chart asks for: about one per horizontal pixel of a laptop-width chart."""

NICE_INTERVALS_S = (60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)
"""Bucket lengths charts resample to; each divides a day, so buckets align to UTC midnight."""

ENERGY_INTERVAL_S = 900
"""Bucket length for energy totals and flows, and the demand interval of the peak (15 min)."""

LOAD_NAMES = (*LOAD_SUBSYSTEMS, "other")
"""Consumption subsystems, in chart order."""

PERIODS = ("today", "week", "custom")


@dataclass(frozen=True)
class Period:
    """A half-open UTC range [start, end) with the range it is compared with (same length, just before)."""

    label: str
    start: datetime
    end: datetime
    previous_start: datetime
    previous_end: datetime


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
           last_day: date | None = None) -> Period:
    """Today (local midnight to now), this week (Monday to now) or custom days (both inclusive), local time.

    now_utc: where the data ends (exclusive), e.g. :func:`reference_time`.

    The previous period has the same length and ends where this one starts.
    """
    tz = ZoneInfo(park.site.timezone)
    local_now = (now_utc - timedelta(microseconds=1)).astimezone(tz)  # the last instant with data
    if kind == "today":
        start_local = datetime.combine(local_now.date(), time.min, tzinfo=tz)
        start, end, label = start_local.astimezone(timezone.utc), now_utc, f"today, {local_now:%a %d %b}"
    elif kind == "week":
        monday = local_now.date() - timedelta(days=local_now.weekday())
        start = datetime.combine(monday, time.min, tzinfo=tz).astimezone(timezone.utc)
        end, label = now_utc, f"this week, from {monday:%a %d %b}"
    elif kind == "custom":
        if first_day is None or last_day is None or last_day < first_day:
            raise ValueError("a custom period needs a first day on or before its last day")
        start = datetime.combine(first_day, time.min, tzinfo=tz).astimezone(timezone.utc)
        end = datetime.combine(last_day + timedelta(days=1), time.min, tzinfo=tz).astimezone(timezone.utc)
        label = f"{first_day:%d %b %Y} to {last_day:%d %b %Y}"
    else:
        raise ValueError(f"unknown period {kind!r}; expected one of {', '.join(PERIODS)}")
    length = end - start
    return Period(label, start, end, start - length, start)


def last_local_day(park: Park, now_utc: datetime) -> date:
    """The park-local day of the last instant before now_utc (where the data ends)."""
    return (now_utc - timedelta(microseconds=1)).astimezone(ZoneInfo(park.site.timezone)).date()


def subsystem_power(park: Park, history: History, start: datetime, end: datetime,
                    interval_s: int) -> pd.DataFrame:
    """Mean power per subsystem (kW) in buckets of interval_s over [start, end), resampled in the database.

    Columns as :func:`twin.subsystems.subsystem_power_frame`; index: bucket start (UTC).
    """
    groups = power_points(park)
    ids = [pid for name in (*LOAD_SUBSYSTEMS, "building_meters", "pv", "battery", "grid") for pid in groups[name]]
    wide = history.resample(ids, start, end, interval_s=interval_s, agg="mean")
    return subsystem_power_frame(park, wide)


def coarser(power: pd.DataFrame, interval_s: int) -> pd.DataFrame:
    """Buckets of interval_s (a multiple of the frame's, epoch-aligned) as the mean of the finer buckets."""
    return power.resample(f"{interval_s}s", origin="epoch").mean().dropna(how="all")


def _bucket_hours(index: pd.DatetimeIndex, interval_s: int, start: datetime, end: datetime) -> np.ndarray:
    """Hours of each bucket that lie inside [start, end)."""
    bucket_start = index.to_numpy(dtype="datetime64[ms]").astype(np.int64)
    lo = np.maximum(bucket_start, int(start.timestamp() * 1000))
    hi = np.minimum(bucket_start + interval_s * 1000, int(end.timestamp() * 1000))
    return np.clip(hi - lo, 0, None) / 3_600_000


@dataclass(frozen=True)
class EnergySummary:
    """Energy of one period from history (kWh unless named otherwise)."""

    consumption_kwh: float
    load_kwh: dict[str, float]
    pv_kwh: float
    grid_import_kwh: float
    grid_export_kwh: float
    battery_discharge_kwh: float
    battery_charge_kwh: float
    peak_demand_kw: float | None
    peak_demand_at: datetime | None
    flows_kwh: dict[tuple[str, str], float]

    @property
    def self_sufficiency(self) -> float | None:
        """1 - grid import / consumption (DOMAIN.md); None without consumption."""
        return 1 - self.grid_import_kwh / self.consumption_kwh if self.consumption_kwh > 0 else None

    @property
    def self_consumption(self) -> float | None:
        """1 - export / PV production (DOMAIN.md); None without PV production."""
        return 1 - self.grid_export_kwh / self.pv_kwh if self.pv_kwh > 0 else None

    def as_json(self) -> dict:
        return {
            "consumption_kwh": self.consumption_kwh, "load_kwh": self.load_kwh, "pv_kwh": self.pv_kwh,
            "grid_import_kwh": self.grid_import_kwh, "grid_export_kwh": self.grid_export_kwh,
            "battery_discharge_kwh": self.battery_discharge_kwh, "battery_charge_kwh": self.battery_charge_kwh,
            "self_sufficiency": self.self_sufficiency, "self_consumption": self.self_consumption,
            "peak_demand_kw": self.peak_demand_kw,
            "peak_demand_at": self.peak_demand_at.isoformat() if self.peak_demand_at else None,
            "flows_kwh": [{"source": s, "target": t, "kwh": v} for (s, t), v in self.flows_kwh.items()],
        }


FLOW_SOURCES = ("grid", "pv", "battery")
FLOW_SINKS = (*LOAD_NAMES, "battery charge", "export")


def energy_summary(park: Park, history: History, start: datetime, end: datetime) -> EnergySummary:
    """Energy totals, 15-minute peak grid demand and source -> sink flows over [start, end)."""
    return summarise_power(subsystem_power(park, history, start, end, ENERGY_INTERVAL_S), start, end)


def summarise_power(power: pd.DataFrame, start: datetime, end: datetime) -> EnergySummary:
    """:func:`energy_summary` of subsystem power already resampled to ENERGY_INTERVAL_S buckets over [start, end).

    Flows split each bucket's supply (grid import, PV, battery discharge) over
    its uses (each load, battery charging, export) in proportion to their share
    of the bucket's total use; the split is an allocation, not a measurement.
    """
    hours = _bucket_hours(power.index, ENERGY_INTERVAL_S, start, end)
    supply_kw = pd.DataFrame({"grid": power["grid"].clip(lower=0), "pv": power["pv"].clip(lower=0),
                              "battery": power["battery"].clip(lower=0)})
    use_kw = pd.DataFrame({**{name: power[name] for name in LOAD_NAMES},
                           "battery charge": (-power["battery"]).clip(lower=0),
                           "export": (-power["grid"]).clip(lower=0)})
    use_total = use_kw.sum(axis=1).replace(0.0, np.nan)
    share = use_kw.div(use_total, axis=0).fillna(0.0)
    flows = {(source, sink): float((supply_kw[source] * share[sink] * hours).sum())
             for source in FLOW_SOURCES for sink in FLOW_SINKS}
    energy = {name: float((use_kw[name] * hours).sum()) for name in use_kw.columns}
    grid_import = supply_kw["grid"]
    peak_at = grid_import.idxmax() if not grid_import.empty else None
    return EnergySummary(
        consumption_kwh=sum(energy[name] for name in LOAD_NAMES),
        load_kwh={name: energy[name] for name in LOAD_NAMES},
        pv_kwh=float((supply_kw["pv"] * hours).sum()),
        grid_import_kwh=float((grid_import * hours).sum()),
        grid_export_kwh=energy["export"],
        battery_discharge_kwh=float((supply_kw["battery"] * hours).sum()),
        battery_charge_kwh=energy["battery charge"],
        peak_demand_kw=float(grid_import.max()) if peak_at is not None else None,
        peak_demand_at=peak_at.to_pydatetime() if peak_at is not None else None,
        flows_kwh={k: v for k, v in flows.items() if v > 0},
    )


def finite_or_none(value: float | None) -> float | None:
    """JSON has no NaN: NaN and infinities become None."""
    return None if value is None or not math.isfinite(value) else float(value)
