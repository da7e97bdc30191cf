"""Periods and chart buckets from history, against hand calculations on synthetic readings (energy figures
are the KPI engine's: tests/energy/test_kpi_engine.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pytest

from dashboard.history_views import choose_period, screen_interval_s
from twin.history import open_history

T0 = datetime(2026, 7, 1, 0, 0, tzinfo=UTC)
CHILLER, METER, PV, BATTERY, GRID = ("plant.chiller1.power_kw", "plant.meter.power_kw",
                                     "plant.pv_plant_roof.ac_power_kw", "plant.battery.power_kw",
                                     "plant.grid_meter.power_kw")


def minutes(n: int, start: datetime = T0) -> pd.DatetimeIndex:
    return pd.date_range(start, periods=n, freq="1min")


def frame(values: dict[str, list[float]], start: datetime = T0) -> pd.DataFrame:
    parts = [pd.DataFrame({"point_id": pid, "ts_utc": minutes(len(v), start), "value": v, "quality": 0})
             for pid, v in values.items()]
    return pd.concat(parts, ignore_index=True)


@pytest.fixture
def two_hours(tmp_path):
    """Two hours of 1-minute readings: grid 300 kW, then 250 kW; battery 0, then discharging 50 kW."""
    store = open_history(f"sqlite:///{tmp_path / 'h.sqlite'}")
    store.append_frame(frame({CHILLER: [100.0] * 120, METER: [400.0] * 120, PV: [100.0] * 120,
                              BATTERY: [0.0] * 60 + [50.0] * 60, GRID: [300.0] * 60 + [250.0] * 60}))
    yield store
    store.close()


def test_periods_follow_the_park_time_zone(demo_park):
    # 2026-07-01 is a Wednesday; 10:30 UTC is 18:30 in Shanghai (UTC+8)
    now = datetime(2026, 7, 1, 10, 30, tzinfo=UTC)
    today = choose_period(demo_park, "today", now)
    assert today.start == datetime(2026, 6, 30, 16, 0, tzinfo=UTC) and today.end == now
    assert today.partial
    # like for like: Wednesday 24 June from midnight to 18:30 local
    assert today.previous_start == datetime(2026, 6, 23, 16, 0, tzinfo=UTC)
    assert today.previous_end == datetime(2026, 6, 24, 10, 30, tzinfo=UTC)
    week = choose_period(demo_park, "week", now)
    assert week.start == datetime(2026, 6, 28, 16, 0, tzinfo=UTC)  # Monday 29 June, local midnight
    # Monday 22 June to Wednesday 24 June 18:30, not the Saturday and Sunday before this Monday
    assert (week.previous_start, week.previous_end) == (datetime(2026, 6, 21, 16, 0, tzinfo=UTC),
                                                        datetime(2026, 6, 24, 10, 30, tzinfo=UTC))
    custom = choose_period(demo_park, "custom", now, date(2026, 6, 1), date(2026, 6, 30))
    assert custom.start == datetime(2026, 5, 31, 16, 0, tzinfo=UTC)
    assert custom.end == datetime(2026, 6, 30, 16, 0, tzinfo=UTC)
    assert not custom.partial
    # 30 days compared with the 30 days five whole weeks before, so the weekdays match: from Monday 27 April
    assert custom.previous_start == datetime(2026, 4, 26, 16, 0, tzinfo=UTC)
    by_month = choose_period(demo_park, "custom", now, date(2026, 6, 1), date(2026, 6, 30), compare="month")
    assert (by_month.previous_start, by_month.previous_end) == (datetime(2026, 4, 30, 16, 0, tzinfo=UTC),
                                                                datetime(2026, 5, 31, 16, 0, tzinfo=UTC))
    by_year = choose_period(demo_park, "today", now, compare="year")
    assert by_year.previous_start == datetime(2025, 6, 30, 16, 0, tzinfo=UTC)
    # custom days running up to today are partial as well
    assert choose_period(demo_park, "custom", now, date(2026, 6, 30), date(2026, 7, 1)).partial
    # data ending exactly at local midnight belongs to the day before
    midnight = datetime(2026, 6, 30, 16, 0, tzinfo=UTC)
    assert choose_period(demo_park, "today", midnight).start == datetime(2026, 6, 29, 16, 0, tzinfo=UTC)
    with pytest.raises(ValueError, match="first day"):
        choose_period(demo_park, "custom", now, date(2026, 7, 2), date(2026, 7, 1))


def test_screen_interval_keeps_a_month_under_the_screen_budget():
    assert screen_interval_s(T0, T0 + timedelta(days=30)) == 3600  # 720 buckets of an hour
    assert screen_interval_s(T0, T0 + timedelta(days=1)) == 120
    assert screen_interval_s(T0, T0 + timedelta(hours=2)) == 60


def test_coarser_buckets_are_means_of_the_finer_ones(demo_park, two_hours):
    from dashboard.history_views import coarser, subsystem_power

    fine = subsystem_power(demo_park, two_hours, T0, T0 + timedelta(hours=2), 900)
    hourly = coarser(fine, 3600)
    assert list(hourly.index) == [T0, T0 + timedelta(hours=1)]
    assert hourly["grid"].tolist() == pytest.approx([300, 250])
    assert hourly["battery"].tolist() == pytest.approx([0, 50])
