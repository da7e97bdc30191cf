"""Day-ahead (or any) price files: a CSV of timestamp and price at hourly or 15-minute resolution.

Format::

    timestamp,price_cny_per_kwh
    2026-07-01T00:00+08:00,0.31
    2026-07-01T01:00+08:00,0.29

The price column's name carries its unit: ``price_cny_per_kwh`` or
``price_cny_per_mwh`` (converted to per kWh). Timestamps with an offset are
taken as given; timestamps without one are in the park's time zone. Each row
is the price from its timestamp until the next row. Rows must be in order,
evenly spaced at 15 or 60 minutes, with no gaps and no repeats, and every price
within +-:data:`PRICE_LIMIT_CNY_PER_KWH`; anything else refuses the whole file
with the line and the reason.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from twin.timeseries_csv import TimeSeriesCsv, csv_problem, read_timeseries_csv

PRICE_COLUMNS = {"price_cny_per_kwh": 1.0, "price_cny_per_mwh": 0.001}
"""Accepted price column names and the factor to CNY per kWh."""

PRICE_LIMIT_CNY_PER_KWH = 100.0
"""Largest energy price, import or export, positive or negative, that any price input may hold (CNY/kWh).
Retail time-of-use peaks are about 1-2 CNY/kWh and the highest wholesale price caps in force are a few
tens of CNY/kWh (ERCOT's 5,000 USD/MWh is about 36 CNY/kWh), so a price beyond it is a typo or a unit
mistake; it also keeps a plan's cost coefficients where the LP solver computes exactly (a 1e308 price
made a plan's objective NaN)."""

TIME_COLUMNS = ("timestamp", "time", "ts")
RESOLUTIONS_MIN = (15, 60)


def load_price_csv(path: str | Path, timezone: str) -> pd.Series:
    """Prices in CNY/kWh on a UTC index (the start of each price interval).

    The file is read by :func:`twin.timeseries_csv.read_timeseries_csv` (other columns ignored); then
    exactly one price column, every price within the limit, and even spacing are checked here. Raises
    :class:`twin.timeseries_csv.TimeSeriesCsvError` naming the file, the line, the column and the reason for
    any problem.
    """
    table = read_timeseries_csv(path, time_names=TIME_COLUMNS, columns={name: (name,) for name in PRICE_COLUMNS},
                                other_columns="ignore", timezone=timezone)
    found = [name for name in PRICE_COLUMNS if name in table.frame]
    if len(found) != 1:
        table.refuse([csv_problem(1, None, _price_column_reason(found, table.ignored_columns))])
    (column,) = found
    prices = table.frame[column].to_numpy() * PRICE_COLUMNS[column]
    table.refuse_if(
        [table.problem(row, column, _beyond_limit_reason(column, table.frame[column].iloc[row], prices[row]))
         for row in np.flatnonzero(np.abs(prices) > PRICE_LIMIT_CNY_PER_KWH).tolist()]
        + _spacing_problems(table))
    return pd.Series(prices, index=table.frame.index, name="price_cny_per_kwh")


def _beyond_limit_reason(column: str, value: float, price_cny_per_kwh: float) -> str:
    in_cny_per_kwh = "" if column == "price_cny_per_kwh" else f" ({price_cny_per_kwh:g} CNY/kWh)"
    return f"{value:g}{in_cny_per_kwh} is beyond the limit of +-{PRICE_LIMIT_CNY_PER_KWH:g} CNY/kWh"


def _price_column_reason(found: list[str], ignored: list[str]) -> str:
    if found:
        return f"columns {' and '.join(found)} both give the price; keep one"
    near = [name for name in ignored if "price" in name.lower()]
    unit_hint = f" (found {', '.join(near)}: say the unit in the name)" if near else ""
    return f"no price column with a known unit; use one of {', '.join(PRICE_COLUMNS)}{unit_hint}"


def _spacing_problems(table: TimeSeriesCsv) -> list[str]:
    """Rows not evenly spaced at one of :data:`RESOLUTIONS_MIN` (the reader has made times increase)."""
    index = table.frame.index
    if len(index) < 2:
        return []
    step = index[1] - index[0]
    if step not in [pd.Timedelta(minutes=m) for m in RESOLUTIONS_MIN]:
        return [table.problem(1, "time", f"rows are {step} apart; use 15-minute or hourly prices")]
    gaps = index[1:] - index[:-1]
    return [table.problem(row + 1, "time", f"gap of {gaps[row]} after {index[row]} (expected {step}; "
                                           "a price is missing)")
            for row in np.flatnonzero(gaps != step).tolist()]
