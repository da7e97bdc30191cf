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

import pandas as pd

from twin.config import ConfigError, read_csv_rows

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

    Raises ConfigError naming the file, the line and the reason for any problem.
    """
    path = Path(path)
    rows = read_csv_rows(path)
    header = [h.strip().lower() for h in rows[0]]
    time_col = next((i for i, h in enumerate(header) if h in TIME_COLUMNS), None)
    price_col = next((i for i, h in enumerate(header) if h in PRICE_COLUMNS), None)
    problems = []
    if time_col is None:
        problems.append(f"line 1: no time column (name one of {', '.join(TIME_COLUMNS)})")
    if price_col is None:
        found = [h for h in header if "price" in h]
        unit_hint = f" (found {', '.join(found)}: say the unit in the name)" if found else ""
        problems.append(f"line 1: no price column with a known unit; use one of {', '.join(PRICE_COLUMNS)}{unit_hint}")
    if problems or time_col is None or price_col is None:  # problems names the missing column
        raise ConfigError(path, problems)
    factor = PRICE_COLUMNS[header[price_col]]
    stamps, prices, lines = [], [], []
    for line_no, row in enumerate(rows[1:], start=2):
        if not row or all(not cell.strip() for cell in row):
            continue
        try:
            ts = pd.Timestamp(row[time_col].strip())
        except (ValueError, IndexError):
            problems.append(f"line {line_no}: cannot read the time {row[time_col] if len(row) > time_col else ''!r}")
            continue
        try:
            price = float(row[price_col]) * factor
        except (ValueError, IndexError):
            problems.append(f"line {line_no}: price is not a number")
            continue
        if not abs(price) <= PRICE_LIMIT_CNY_PER_KWH:  # also refuses NaN
            problems.append(f"line {line_no}: {header[price_col]} {row[price_col].strip()} is {price:g} CNY/kWh, "
                            f"beyond the limit of +-{PRICE_LIMIT_CNY_PER_KWH:g} CNY/kWh")
            continue
        if ts.tzinfo is None:
            try:
                ts = ts.tz_localize(timezone, nonexistent="raise", ambiguous="raise")
            except Exception:
                problems.append(f"line {line_no}: {ts} does not exist or is ambiguous in {timezone}")
                continue
        stamps.append(ts.tz_convert("UTC"))
        prices.append(price)
        lines.append(line_no)
    if not stamps and not problems:
        problems.append("no price rows")
    if problems:
        raise ConfigError(path, problems)
    problems = _spacing_problems(stamps, lines)
    if problems:
        raise ConfigError(path, problems)
    return pd.Series(prices, index=pd.DatetimeIndex(stamps, name="ts_utc"), name="price_cny_per_kwh")


def _spacing_problems(stamps: list[pd.Timestamp], lines: list[int]) -> list[str]:
    if len(stamps) < 2:
        return []
    step = stamps[1] - stamps[0]
    if step <= pd.Timedelta(0):
        return [f"line {lines[1]}: time {stamps[1]} is not after the row before"]
    if step not in [pd.Timedelta(minutes=m) for m in RESOLUTIONS_MIN]:
        return [f"line {lines[1]}: rows are {step} apart; use 15-minute or hourly prices"]
    problems = []
    for prev, ts, line in zip(stamps, stamps[1:], lines[1:]):
        gap = ts - prev
        if gap <= pd.Timedelta(0):
            problems.append(f"line {line}: time {ts} is not after the row before (out of order or repeated)")
        elif gap != step:
            problems.append(f"line {line}: gap of {gap} after {prev} (expected {step}; a price is missing)")
    return problems
