"""Day-ahead price files: local or offset timestamps, hourly or 15-minute, refused whole when broken."""

from __future__ import annotations

import pandas as pd
import pytest

from energy.prices import load_price_csv
from twin.config import ConfigError


def write(tmp_path, text: str):
    path = tmp_path / "prices.csv"
    path.write_text(text)
    return path


def test_a_price_file_in_the_parks_local_time_lands_on_utc(tmp_path):
    path = write(tmp_path, "timestamp,price_cny_per_kwh\n2026-07-01T00:00,0.31\n2026-07-01T01:00,0.29\n")
    prices = load_price_csv(path, "Asia/Shanghai")
    assert list(prices.index) == [pd.Timestamp("2026-06-30T16:00Z"), pd.Timestamp("2026-06-30T17:00Z")]
    assert list(prices) == [0.31, 0.29]


def test_quarter_hour_prices_per_mwh_are_converted_to_per_kwh(tmp_path):
    path = write(tmp_path, "time,price_cny_per_mwh\n2026-07-01T00:00+08:00,310\n2026-07-01T00:15+08:00,290\n")
    prices = load_price_csv(path, "UTC")
    assert prices.index[1] - prices.index[0] == pd.Timedelta(minutes=15)
    assert list(prices) == pytest.approx([0.31, 0.29])


@pytest.mark.parametrize("rows, problem", [
    ("2026-07-01T00:00,0.3\n2026-07-01T01:00,0.3\n2026-07-01T03:00,0.3\n",
     "line 4, column timestamp: gap of 0 days 02:00:00"),
    ("2026-07-01T01:00,0.3\n2026-07-01T02:00,0.3\n2026-07-01T01:00,0.3\n",
     "line 4, column timestamp: time .* is not after the row before"),
    ("2026-07-01T00:00,0.3\n2026-07-01T00:00,0.3\n", "line 3, column timestamp: time .* is not after the row before"),
    ("2026-07-01T00:00,0.3\n2026-07-01T00:05,0.3\n", ("line 3, column timestamp: rows are 0 days 00:05:00 apart; "
                                                     "use 15-minute or hourly prices")),
    ("2026-07-01T00:00,cheap\n", "line 2, column price_cny_per_kwh: not a number: 'cheap'"),
])
def test_a_broken_price_file_is_refused_with_the_line_and_the_reason(tmp_path, rows, problem):
    with pytest.raises(ConfigError, match=problem):
        load_price_csv(write(tmp_path, "timestamp,price_cny_per_kwh\n" + rows), "Asia/Shanghai")


def test_a_price_column_without_a_unit_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"line 1: no price column with a known unit; .* say the unit in the name"):
        load_price_csv(write(tmp_path, "timestamp,price\n2026-07-01T00:00,0.3\n"), "Asia/Shanghai")
