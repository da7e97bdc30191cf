"""Energy totals, flows, peaks and periods from history, against hand calculations on synthetic readings."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pandas as pd
import pytest

from dashboard.history_views import choose_period, energy_summary, screen_interval_s
from twin.history import open_history

T0 = datetime(2026, 7, 1, 0, 0, tzinfo=timezone.utc)
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
    """Two hours of 1-minute readings:

    hour 1: chiller 100 kW, building meter 400 kW (so other 300), PV 100, battery 0, grid 300;
    hour 2: the same loads and PV, battery discharging 50 kW, grid 250.
    """
    store = open_history(f"sqlite:///{tmp_path / 'h.sqlite'}")
    store.append_frame(frame({CHILLER: [100.0] * 120, METER: [400.0] * 120, PV: [100.0] * 120,
                              BATTERY: [0.0] * 60 + [50.0] * 60, GRID: [300.0] * 60 + [250.0] * 60}))
    yield store
    store.close()


def test_energy_totals_and_flows_match_hand_calculation(demo_park, two_hours):
    summary = energy_summary(demo_park, two_hours, T0, T0 + timedelta(hours=2))
    assert summary.load_kwh["chillers"] == pytest.approx(200)
    assert summary.load_kwh["other"] == pytest.approx(600)
    assert summary.load_kwh["lighting"] == 0
    assert summary.consumption_kwh == pytest.approx(800)
    assert summary.pv_kwh == pytest.approx(200)
    assert summary.grid_import_kwh == pytest.approx(550)
    assert summary.battery_discharge_kwh == pytest.approx(50)
    assert summary.grid_export_kwh == 0 and summary.battery_charge_kwh == 0
    assert summary.self_sufficiency == pytest.approx(1 - 550 / 800)
    assert summary.self_consumption == pytest.approx(1.0)
    # supply split in proportion to use (chillers 1/4, other 3/4 in both hours)
    assert summary.flows_kwh[("grid", "chillers")] == pytest.approx(300 / 4 + 250 / 4)
    assert summary.flows_kwh[("grid", "other")] == pytest.approx(300 * 3 / 4 + 250 * 3 / 4)
    assert summary.flows_kwh[("pv", "chillers")] == pytest.approx(50)
    assert summary.flows_kwh[("battery", "other")] == pytest.approx(37.5)
    assert sum(summary.flows_kwh.values()) == pytest.approx(summary.consumption_kwh)


def test_a_range_that_cuts_a_bucket_counts_only_its_part(demo_park, two_hours):
    summary = energy_summary(demo_park, two_hours, T0, T0 + timedelta(minutes=10))
    assert summary.load_kwh["chillers"] == pytest.approx(100 * 10 / 60)
    assert summary.grid_import_kwh == pytest.approx(300 * 10 / 60)


def test_peak_demand_is_the_highest_15_minute_mean_of_grid_import(demo_park, tmp_path):
    grid = [300.0] * 120
    grid[35:50] = [500.0] * 15  # 00:35-00:49 straddles the 00:30 and 00:45 buckets
    with open_history(f"sqlite:///{tmp_path / 'p.sqlite'}") as store:
        store.append_frame(frame({GRID: grid, METER: grid}))
        summary = energy_summary(demo_park, store, T0, T0 + timedelta(hours=2))
    # 00:30 bucket: 5 min at 300 and 10 min at 500 -> 433.3; 00:45 bucket: 5 at 500, 10 at 300 -> 366.7
    assert summary.peak_demand_kw == pytest.approx((5 * 300 + 10 * 500) / 15)
    assert summary.peak_demand_at == T0 + timedelta(minutes=30)


def test_export_and_battery_charging_are_uses_of_supply(demo_park, tmp_path):
    # PV 500 kW, loads 200 kW (meter), battery charging 100 kW, export 200 kW, for one hour
    with open_history(f"sqlite:///{tmp_path / 'x.sqlite'}") as store:
        store.append_frame(frame({METER: [200.0] * 60, PV: [500.0] * 60, BATTERY: [-100.0] * 60,
                                  GRID: [-200.0] * 60}))
        summary = energy_summary(demo_park, store, T0, T0 + timedelta(hours=1))
    assert summary.grid_export_kwh == pytest.approx(200) and summary.battery_charge_kwh == pytest.approx(100)
    assert summary.grid_import_kwh == 0
    assert summary.self_consumption == pytest.approx(1 - 200 / 500)
    assert summary.flows_kwh == pytest.approx({("pv", "other"): 200, ("pv", "battery charge"): 100,
                                               ("pv", "export"): 200})


def test_periods_follow_the_park_time_zone(demo_park):
    # 2026-07-01 is a Wednesday; 10:30 UTC is 18:30 in Shanghai (UTC+8)
    now = datetime(2026, 7, 1, 10, 30, tzinfo=timezone.utc)
    today = choose_period(demo_park, "today", now)
    assert today.start == datetime(2026, 6, 30, 16, 0, tzinfo=timezone.utc) and today.end == now
    assert today.previous_start == datetime(2026, 6, 29, 21, 30, tzinfo=timezone.utc)
    assert today.previous_end == today.start
    week = choose_period(demo_park, "week", now)
    assert week.start == datetime(2026, 6, 28, 16, 0, tzinfo=timezone.utc)  # Monday 29 June, local midnight
    custom = choose_period(demo_park, "custom", now, date(2026, 6, 1), date(2026, 6, 30))
    assert custom.start == datetime(2026, 5, 31, 16, 0, tzinfo=timezone.utc)
    assert custom.end == datetime(2026, 6, 30, 16, 0, tzinfo=timezone.utc)
    assert custom.previous_start == datetime(2026, 5, 1, 16, 0, tzinfo=timezone.utc)
    # data ending exactly at local midnight belongs to the day before
    midnight = datetime(2026, 6, 30, 16, 0, tzinfo=timezone.utc)
    assert choose_period(demo_park, "today", midnight).start == datetime(2026, 6, 29, 16, 0, tzinfo=timezone.utc)
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
