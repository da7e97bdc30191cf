"""What a dispatch plan is computed from: the horizon's forecasts and prices, and the state it starts in.

Forecasts and prices are plain pandas series on one evenly spaced UTC index,
so they can come from the energy models, from a trader's CSV
(:func:`read_inputs_csv`) or from the park model (:mod:`optimizer.park_inputs`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol, cast

import numpy as np
import pandas as pd

from energy.prices import PRICE_LIMIT_CNY_PER_KWH
from twin.timeseries_csv import read_timeseries_csv

INPUT_COLUMNS = ("cooling_load_kwth", "pv_available_kw", "other_load_kw", "price_cny_per_kwh")
"""Columns every horizon needs (kWth, kW AC before curtailment, kW, CNY/kWh)."""

OPTIONAL_COLUMNS = ("export_price_cny_per_kwh", "outdoor_temp_c")
"""Columns a horizon may add; without them the tariff's export price and rated COPs are used."""

POWER_COLUMNS = ("cooling_load_kwth", "pv_available_kw", "other_load_kw")
POWER_LIMIT_KW = 1_000_000.0
"""Largest load or PV power a horizon row may hold (kW or kWth): a gigawatt, far above any park's
(the demo park peaks at a few MW), so a value beyond it is a typo or a unit mistake."""
OUTDOOR_TEMP_RANGE_C = (-60.0, 60.0)
"""Outdoor air temperatures a horizon row may hold (degC), about the extremes ever measured on Earth."""


@dataclass(frozen=True)
class EVSessionRequest:
    """An EV session the plan must serve: ``energy_kwh`` delivered by ``charger_id`` in [arrival, departure)."""

    charger_id: str
    arrival_utc: pd.Timestamp
    departure_utc: pd.Timestamp
    energy_kwh: float


@dataclass
class HorizonInputs:
    """Forecasts and prices over the horizon, one row per step, on a UTC index.

    ``frame`` holds the columns of :data:`INPUT_COLUMNS` plus ``export_price_cny_per_kwh``
    (always filled) and optionally ``outdoor_temp_c``. Each row is the mean over
    [timestamp, timestamp + step). The frame is read, never changed, once the inputs exist: a
    column's array is kept after its first :meth:`column` call (a plan reads each one many times).
    """

    frame: pd.DataFrame
    ev_sessions: list[EVSessionRequest] = field(default_factory=list)
    _columns: dict[str, np.ndarray] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        index = self.frame.index
        if not isinstance(index, pd.DatetimeIndex) or index.tz is None:
            raise ValueError("horizon inputs need a tz-aware DatetimeIndex")
        if len(index) < 1:
            raise ValueError("horizon inputs are empty")
        if len(index) > 1 and len(set(np.diff(index.asi8))) != 1:
            raise ValueError("horizon inputs must be evenly spaced")
        missing = [c for c in INPUT_COLUMNS + ("export_price_cny_per_kwh",) if c not in self.frame]
        if missing:
            raise ValueError(f"horizon inputs lack columns {missing}")
        self.frame = self.frame.tz_convert("UTC") if str(index.tz) != "UTC" else self.frame

    @property
    def index(self) -> pd.DatetimeIndex:
        return cast(pd.DatetimeIndex, self.frame.index)

    @property
    def steps(self) -> int:
        return len(self.frame)

    @property
    def step_h(self) -> float:
        if len(self.frame) < 2:
            return 0.25
        return (self.index[1] - self.index[0]).total_seconds() / 3600.0

    def column(self, name: str) -> np.ndarray:
        """The column as a float array (read-only: it is shared by every caller)."""
        if name not in self._columns:
            values = self.frame[name].to_numpy(dtype=float, copy=True)
            values.flags.writeable = False
            self._columns[name] = values
        return self._columns[name]

    @classmethod
    def from_series(cls, cooling_load_kwth: pd.Series, pv_available_kw: pd.Series, other_load_kw: pd.Series,
                    price_cny_per_kwh: pd.Series, export_price_cny_per_kwh: pd.Series | float,
                    outdoor_temp_c: pd.Series | None = None,
                    ev_sessions: list[EVSessionRequest] | None = None) -> HorizonInputs:
        """Inputs from plain series on one UTC index (the forecasts' index)."""
        index = cooling_load_kwth.index
        frame = pd.DataFrame({
            "cooling_load_kwth": cooling_load_kwth.to_numpy(dtype=float),
            "pv_available_kw": pv_available_kw.reindex(index).to_numpy(dtype=float),
            "other_load_kw": other_load_kw.reindex(index).to_numpy(dtype=float),
            "price_cny_per_kwh": price_cny_per_kwh.reindex(index).to_numpy(dtype=float),
        }, index=index)
        if isinstance(export_price_cny_per_kwh, pd.Series):
            frame["export_price_cny_per_kwh"] = export_price_cny_per_kwh.reindex(index).to_numpy(dtype=float)
        else:
            frame["export_price_cny_per_kwh"] = float(export_price_cny_per_kwh)
        if outdoor_temp_c is not None:
            frame["outdoor_temp_c"] = outdoor_temp_c.reindex(index).to_numpy(dtype=float)
        return cls(frame, list(ev_sessions or []))


class StorageAsset(Protocol):
    """What :meth:`InitialState.stored_of` reads of a storage asset (twin.kinds.base.AssetBase)."""

    @property
    def id(self) -> str: ...
    def initial_stored(self) -> float: ...


@dataclass
class InitialState:
    """Where storage and the billing period stand at the start of the horizon.

    stored: what each storage asset stores, by asset id, in the unit of its kind's stored point (kWh, kWhth;
    twin.kinds.base.AssetBase.stored_point); an asset left out starts at its model default.
    peak_so_far_kw is the highest demand-interval import already billed in this month (kW).
    """

    stored: dict[str, float] = field(default_factory=dict)
    peak_so_far_kw: float = 0.0

    def stored_of(self, asset: StorageAsset) -> float:
        """What a storage asset stores at the start: its entry in :attr:`stored`, else its kind's initial
        level (twin.kinds.base.AssetBase.initial_stored)."""
        return self.stored.get(asset.id, asset.initial_stored())


def horizon_coverage_problem(index_utc: pd.DatetimeIndex, start_utc: datetime, end_utc: datetime,
                             timezone: str) -> str | None:
    """Why rows at ``index_utc`` (evenly spaced, each the mean until the next) do not cover exactly
    [start_utc, end_utc), in the park's local time; None when they do."""
    step = index_utc[1] - index_utc[0] if len(index_utc) > 1 else pd.Timedelta(minutes=15)
    first, end = index_utc[0], index_utc[-1] + step
    if first == start_utc and end == end_utc:
        return None
    needed = (pd.Timestamp(end_utc) - pd.Timestamp(start_utc)) / step
    minutes = f"{step / pd.Timedelta(minutes=1):g} min"

    def local(ts: datetime | pd.Timestamp) -> str:
        return f"{pd.Timestamp(ts).tz_convert(timezone):%Y-%m-%d %H:%M}"

    return (f"the file's {len(index_utc)} row(s) of {minutes} cover {local(first)} to {local(end)}; the plan needs "
            f"{local(start_utc)} to {local(end_utc)} ({timezone}): {needed:g} rows of {minutes}")


def read_inputs_csv(path: str | Path, timezone: str, export_price_cny_per_kwh: float) -> HorizonInputs:
    """Read a horizon CSV: ``timestamp`` plus the columns of :data:`INPUT_COLUMNS` (and optional ones).

    The file is read by :func:`twin.timeseries_csv.read_timeseries_csv` (times without an offset in the
    park's ``timezone``, other columns refused); then every value within its limit
    (:data:`POWER_LIMIT_KW`, :data:`OUTDOOR_TEMP_RANGE_C`, ``energy.prices.PRICE_LIMIT_CNY_PER_KWH``) and
    the rows evenly spaced are checked here. Any problem raises
    :class:`twin.timeseries_csv.TimeSeriesCsvError` naming the file, the line, the column and the reason.
    """
    table = read_timeseries_csv(path, time_names=("timestamp",),
                                columns={name: (name,) for name in INPUT_COLUMNS + OPTIONAL_COLUMNS},
                                required=INPUT_COLUMNS, other_columns="refuse", timezone=timezone)
    frame = table.frame
    problems = [table.problem(row, column, reason)
                for row, column, reason in sorted(_value_problems(frame), key=lambda problem: problem[0])]
    if len(frame) > 1:
        step = frame.index[1] - frame.index[0]
        gaps = frame.index[1:] - frame.index[:-1]
        uneven = np.flatnonzero(gaps != step)
        if uneven.size:
            row = int(uneven[0]) + 1
            problems.append(table.problem(row, "time", f"{frame.index[row]} is {gaps[row - 1]} after the row "
                                                       f"before, expected {step} (rows evenly spaced)"))
    table.refuse_if(problems)
    if "export_price_cny_per_kwh" not in frame:
        frame = frame.assign(export_price_cny_per_kwh=export_price_cny_per_kwh)
    return HorizonInputs(frame)


def _value_problems(frame: pd.DataFrame) -> list[tuple[int, str, str]]:
    """(row, column, reason) for each value beyond its limit: a negative or too large power, a price beyond
    the price limit, an outdoor temperature outside the range above (the reader has made every value
    finite)."""
    problems: list[tuple[int, str, str]] = []
    low_c, high_c = OUTDOOR_TEMP_RANGE_C
    for column in frame.columns:
        values = frame[column].to_numpy()
        if column in POWER_COLUMNS:
            bad, limit = (values < 0) | (values > POWER_LIMIT_KW), f"is outside 0 to {POWER_LIMIT_KW:,.0f} kW"
        elif column.startswith(("price_", "export_price_")):
            bad = np.abs(values) > PRICE_LIMIT_CNY_PER_KWH
            limit = f"is beyond the limit of +-{PRICE_LIMIT_CNY_PER_KWH:g} CNY/kWh"
        else:  # outdoor_temp_c, the one column left
            bad, limit = (values < low_c) | (values > high_c), f"is outside {low_c:g} to {high_c:g} degC"
        problems.extend((row, column, f"{values[row]:g} {limit}") for row in np.flatnonzero(bad).tolist())
    return problems
