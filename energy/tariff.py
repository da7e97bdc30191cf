"""Time-of-use tariffs: periods by season, critical peak, demand charge, export price, CO2 factor.

A tariff file (YAML) gives prices in the tariff's currency per kWh, either
directly (``price_cny_per_kwh``) or as a ratio to ``flat_price_cny_per_kwh``
(DOMAIN.md: peak : flat : valley = 1.7 : 1 : 0.38 in Guangdong). Periods are
in the tariff's local time and must tile each day exactly; seasons must cover
each month exactly once. Top-level ``periods`` is shorthand for one all-year
season.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from pydantic import Field, field_validator, model_validator

from energy.prices import PRICE_LIMIT_CNY_PER_KWH
from twin.config import load_yaml_model
from twin.input_schema import InputModel
from twin.park import FieldPath

MINUTES_PER_DAY = 24 * 60
Price = Annotated[float, Field(ge=-PRICE_LIMIT_CNY_PER_KWH, le=PRICE_LIMIT_CNY_PER_KWH)]
"""An energy price, CNY/kWh (see :data:`energy.prices.PRICE_LIMIT_CNY_PER_KWH`)."""


def _minutes(text: str) -> int:
    """Minutes after midnight of an "HH:MM" time; "24:00" is the end of the day."""
    try:
        hours, minutes = (int(part) for part in text.split(":"))
    except ValueError:
        raise ValueError(f"time {text!r} is not of the form HH:MM") from None
    if not (0 <= hours <= 24 and 0 <= minutes < 60) or (hours == 24 and minutes):
        raise ValueError(f"time {text!r} is outside 00:00-24:00")
    return hours * 60 + minutes


class TimeWindow(InputModel):
    """A window of local clock time [start, end), "HH:MM"; end "24:00" closes the day."""

    start: str
    end: str

    @field_validator("start", "end")
    @classmethod
    def _clock_time(cls, value: str) -> str:
        _minutes(value)
        return value

    @model_validator(mode="after")
    def _ordered(self) -> TimeWindow:
        if _minutes(self.end) <= _minutes(self.start):
            raise ValueError(f"end {self.end} must be after start {self.start} (split windows that cross midnight)")
        return self

    @property
    def start_min(self) -> int:
        return _minutes(self.start)

    @property
    def end_min(self) -> int:
        return _minutes(self.end)


class Period(TimeWindow):
    """A time-of-use period with its price."""

    name: Annotated[str, Field(min_length=1)]
    price_cny_per_kwh: Price | None = None
    price_ratio: Annotated[float, Field(ge=-10, le=100)] | None = None

    @model_validator(mode="after")
    def _one_price(self) -> Period:
        if (self.price_cny_per_kwh is None) == (self.price_ratio is None):
            raise ValueError("give exactly one of price_cny_per_kwh and price_ratio")
        return self


class Season(InputModel):
    name: str
    months: Annotated[list[Annotated[int, Field(ge=1, le=12)]], Field(min_length=1)]
    periods: Annotated[list[Period], Field(min_length=1)]


class CriticalPeak(InputModel):
    """Critical peak: an uplift on the energy price in some windows of some months."""

    months: list[Annotated[int, Field(ge=1, le=12)]]
    windows: list[TimeWindow]
    uplift_pct: Annotated[float, Field(ge=0, le=500)]


class Tariff(InputModel):
    """A time-of-use electricity tariff (prices in the tariff's currency, called CNY in field names)."""

    name: str
    currency: str = "CNY"
    timezone: str
    flat_price_cny_per_kwh: Annotated[float, Field(gt=0, le=PRICE_LIMIT_CNY_PER_KWH)] | None = None
    periods: list[Period] | None = None
    seasons: list[Season] | None = None
    critical_peak: CriticalPeak | None = None
    demand_charge_cny_per_kw_month: Annotated[float, Field(ge=0)] = 0.0
    demand_interval_min: Literal[15, 30, 60] = 15
    """Minutes over which billed demand is averaged: 15 (DOMAIN.md: the month's highest 15-minute demand),
    30 or 60, the intervals utilities bill on; each divides the hour, so intervals start on the clock."""
    export_price_cny_per_kwh: Price = 0.0
    export_limited_to_pv: bool = False
    """Only PV surplus is bought back ("self-consumption, surplus to the grid", the usual rule for
    Chinese commercial and industrial PV): export is paid, and allowed, up to PV production in each
    interval, so a battery cannot sell grid energy it stored. False: any export is paid."""
    co2_t_per_mwh: Annotated[float, Field(ge=0, le=2)] = 0.5703

    @model_validator(mode="after")
    def _one_way_to_give_periods(self) -> Tariff:
        if (self.periods is None) == (self.seasons is None):
            raise ValueError("give either periods (all year) or seasons, not both and not neither")
        try:
            ZoneInfo(self.timezone)
        except Exception:
            raise ValueError(f"unknown time zone {self.timezone!r}") from None
        return self

    @property
    def all_seasons(self) -> list[Season]:
        if self.seasons is not None:
            return self.seasons
        return [Season(name="all year", months=list(range(1, 13)), periods=self.periods or [])]

    def consistency_issues(self) -> list[tuple[FieldPath, str]]:
        """Gaps, overlaps, ratio prices without a flat price, months covered twice or never."""
        issues: list[tuple[FieldPath, str]] = []
        base: FieldPath = ("periods",) if self.seasons is None else ()
        month_owner: dict[int, str] = {}
        for si, season in enumerate(self.all_seasons):
            where = base if self.seasons is None else ("seasons", si)
            for month in season.months:
                if month in month_owner:
                    issues.append((where + ("months",) if self.seasons else where,
                                   f"month {month} is in seasons {month_owner[month]!r} and {season.name!r}"))
                month_owner[month] = season.name
            ordered = sorted(enumerate(season.periods), key=lambda item: item[1].start_min)
            cursor = 0
            for pi, period in ordered:
                loc = where + ((pi,) if self.seasons is None else ("periods", pi))
                if period.start_min > cursor:
                    issues.append((loc, (f"gap from {cursor // 60:02d}:{cursor % 60:02d} to {period.start} "
                                        f"(periods must cover the whole day)")))
                elif period.start_min < cursor:
                    issues.append((loc, f"period {period.name} {period.start}-{period.end} overlaps the one before"))
                cursor = max(cursor, period.end_min)
                if period.price_ratio is not None and self.flat_price_cny_per_kwh is None:
                    issues.append((loc + ("price_ratio",), "price_ratio needs flat_price_cny_per_kwh"))
            if cursor < MINUTES_PER_DAY:
                issues.append((where, (f"gap from {cursor // 60:02d}:{cursor % 60:02d} to 24:00 "
                                      f"(periods must cover the whole day)")))
        missing = sorted(set(range(1, 13)) - set(month_owner))
        if missing:
            issues.append((("seasons",), f"months {missing} are in no season"))
        return issues

    # ------------------------------------------------------------ series

    def _local(self, index_utc: pd.DatetimeIndex) -> pd.DatetimeIndex:
        if index_utc.tz is None:
            raise ValueError("index must be tz-aware")
        return index_utc.tz_convert(self.timezone)

    def _period_table(self, index_utc: pd.DatetimeIndex) -> tuple[np.ndarray, np.ndarray]:
        """Period name and base price (before critical peak) at each timestamp."""
        local = self._local(index_utc)
        minute = local.hour.to_numpy() * 60 + local.minute.to_numpy()  # on numpy arrays: no new Index per operation
        month = local.month.to_numpy()
        names = np.empty(len(index_utc), dtype=object)
        prices = np.full(len(index_utc), np.nan)
        for season in self.all_seasons:
            in_season = np.isin(month, season.months)
            for period in season.periods:
                mask = in_season & (minute >= period.start_min) & (minute < period.end_min)
                names[mask] = period.name
                prices[mask] = self.period_price_cny_per_kwh(period)
        return names, prices

    def period_price_cny_per_kwh(self, period: Period) -> float:
        if period.price_cny_per_kwh is not None:
            return period.price_cny_per_kwh
        if period.price_ratio is None or self.flat_price_cny_per_kwh is None:  # the tariff's validation refuses this
            raise ValueError(f"period {period.name!r} has neither a price nor a ratio to a flat price")
        return period.price_ratio * self.flat_price_cny_per_kwh

    def period_names(self, index_utc: pd.DatetimeIndex) -> pd.Series:
        """Name of the time-of-use period (valley, flat, peak, ...) in force at each timestamp."""
        return pd.Series(self._period_table(index_utc)[0], index=index_utc, name="period")

    def critical_peak_mask(self, index_utc: pd.DatetimeIndex) -> np.ndarray:
        """True where the critical-peak uplift applies."""
        if self.critical_peak is None:
            return np.zeros(len(index_utc), dtype=bool)
        local = self._local(index_utc)
        minute = np.asarray(local.hour * 60 + local.minute)
        mask = np.zeros(len(index_utc), dtype=bool)
        in_month = np.isin(np.asarray(local.month), self.critical_peak.months)
        for window in self.critical_peak.windows:
            mask |= in_month & (minute >= window.start_min) & (minute < window.end_min)
        return mask

    def energy_price_cny_per_kwh(self, index_utc: pd.DatetimeIndex) -> pd.Series:
        """Import energy price at each timestamp, critical-peak uplift included."""
        _, prices = self._period_table(index_utc)
        uplift = 1.0 + (self.critical_peak.uplift_pct / 100.0 if self.critical_peak else 0.0)
        prices = np.where(self.critical_peak_mask(index_utc), prices * uplift, prices)
        return pd.Series(prices, index=index_utc, name="price_cny_per_kwh")

    def export_price_series_cny_per_kwh(self, index_utc: pd.DatetimeIndex) -> pd.Series:
        return pd.Series(self.export_price_cny_per_kwh, index=index_utc, name="export_price_cny_per_kwh")

    def paid_export_kw(self, export_kw: np.ndarray, pv_kw: np.ndarray) -> np.ndarray:
        """The export (kW, per interval) the tariff pays for: all of it, or with
        ``export_limited_to_pv`` no more than the PV production of the same interval."""
        return np.minimum(export_kw, pv_kw) if self.export_limited_to_pv else export_kw

    def demand_charges(self, grid_kw: pd.Series) -> pd.DataFrame:
        """Demand (capacity) charge of each billing month on its highest demand.

        ``grid_kw``: grid power on a tz-aware index, positive for import, each
        value the mean power from its timestamp to the next. Demand is the
        mean import over each ``demand_interval_min`` interval of the local
        clock (00:00-00:15, ...; export counts as 0 import). The billing
        period is the local calendar month of the interval's start; each
        month is charged ``demand_charge_cny_per_kw_month`` on its highest
        interval demand, however few days of it ``grid_kw`` covers.

        Returns one row per month, indexed by "YYYY-MM": ``peak_demand_kw``,
        ``peak_start_utc`` (first reading of the peak interval) and ``charge_cny``.
        """
        if grid_kw.empty:
            return pd.DataFrame(columns=["peak_demand_kw", "peak_start_utc", "charge_cny"])
        local_wall = self._local(pd.DatetimeIndex(grid_kw.index)).tz_localize(None)
        interval_start = local_wall.floor(f"{self.demand_interval_min}min")
        demand_kw = grid_kw.clip(lower=0.0).groupby(interval_start.to_numpy()).mean()
        first_utc = pd.Series(grid_kw.index, index=grid_kw.index).groupby(interval_start.to_numpy()).min()
        months = pd.DatetimeIndex(demand_kw.index).strftime("%Y-%m")
        peak_at = demand_kw.groupby(months).idxmax()
        peaks_kw = demand_kw.loc[peak_at.to_numpy()].to_numpy()
        return pd.DataFrame({
            "peak_demand_kw": peaks_kw,
            "peak_start_utc": first_utc.loc[peak_at.to_numpy()].dt.tz_convert("UTC").to_numpy(),
            "charge_cny": peaks_kw * self.demand_charge_cny_per_kw_month,
        }, index=pd.Index(peak_at.index, name="month"))


def load_tariff(path: str | Path) -> Tariff:
    """Read and validate a tariff file; ConfigError names every problem (exit 2 on the command line)."""
    return load_yaml_model(path, Tariff, Tariff.consistency_issues)
