"""The KPI engine on synthetic readings, against hand calculations: the time-aligned grid with hold limits,
coverage, flows, self-sufficiency with a cycling battery, and the month-to-date demand charge."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from energy.aligned import aligned_points, hold_limits_s, interval_bounds
from energy.kpi import energy_kpis
from energy.tariff import load_tariff
from twin.history import open_history

T0 = datetime(2026, 7, 1, 0, 0, tzinfo=UTC)  # 08:00 in Shenzhen
CHILLER, METER, PV, BATTERY, GRID = ("plant.chiller1.power_kw", "plant.meter.power_kw",
                                     "plant.pv_plant_roof.ac_power_kw", "plant.battery.power_kw",
                                     "plant.grid_meter.power_kw")


def readings(values: dict[str, list[float]], start: datetime = T0, step: timedelta = timedelta(minutes=1),
             offset: dict[str, timedelta] | None = None) -> pd.DataFrame:
    """Long-format readings, one per ``step`` from ``start`` (plus each point's ``offset``)."""
    parts = [pd.DataFrame({"point_id": pid, "value": v, "quality": 0,
                           "ts_utc": pd.date_range(start + (offset or {}).get(pid, timedelta()), periods=len(v),
                                                   freq=step)})
             for pid, v in values.items()]
    return pd.concat(parts, ignore_index=True)


@pytest.fixture
def store(tmp_path):
    history = open_history(f"sqlite:///{tmp_path / 'h.sqlite'}")
    yield history
    history.close()


def test_each_reading_holds_until_the_next_or_its_hold_limit(store, demo_park):
    store.append_frame(pd.DataFrame({"point_id": GRID, "quality": 0, "value": [100.0, 200.0, 300.0],
                                     "ts_utc": [T0, T0 + timedelta(minutes=5), T0 + timedelta(minutes=40)]}))
    bounds = interval_bounds(T0, T0 + timedelta(hours=1), 900)
    aligned = aligned_points(store, [GRID], bounds, {GRID: 600.0})
    # 00:00-00:15: 100 for 5 min, 200 for 10; 00:15-00:30: 200 held only to 00:15; 00:40-00:50: 300
    assert aligned.mean[GRID].tolist()[0] == pytest.approx((5 * 100 + 10 * 200) / 15)
    assert np.isnan(aligned.mean[GRID].iloc[1])
    assert aligned.mean[GRID].tolist()[2:] == pytest.approx([300.0, 300.0])
    assert aligned.coverage[GRID].tolist() == pytest.approx([1.0, 0.0, 1 / 3, 1 / 3])


def test_hold_limits_come_from_the_poll_periods_scaled_to_twin_time(demo_park):
    holds = hold_limits_s(demo_park, {GRID: 1.0, METER: 5.0}, time_scale=600.0)
    assert holds[GRID] == 600.0 and holds[METER] == 3000.0
    assert holds[CHILLER] == 60.0  # polled by no map given: the simulation step
    assert hold_limits_s(demo_park, {GRID: 1.0})[GRID] == 60.0  # never below the step


def test_devices_polled_at_different_instants_are_not_counted_as_zero(store, demo_park):
    """The grid meter polled on the minute, the building meter 5 minutes later, both every 10 minutes:
    no timestamp has both, and counting the missing one as 0 kW halved both energies."""
    store.append_frame(readings({GRID: [500.0] * 12, METER: [400.0] * 12}, step=timedelta(minutes=10),
                                offset={METER: timedelta(minutes=5)}))
    hold_s = dict.fromkeys(demo_park.points, 600.0)
    kpis = energy_kpis(store, demo_park, T0 + timedelta(minutes=10), T0 + timedelta(hours=2), hold_s=hold_s)
    assert kpis.grid_import_kwh == pytest.approx(500.0 * 110 / 60)
    assert kpis.consumption_kwh["total"] == pytest.approx(400.0 * 110 / 60)
    assert kpis.coverage["grid_import_kwh"] == pytest.approx(1.0)
    assert kpis.coverage["consumption_kwh"] == pytest.approx(1 / 3)  # the park's two other building meters: none


def test_a_gap_longer_than_the_hold_limit_lowers_the_coverage(store, demo_park):
    grid = [500.0] * 120
    store.append_frame(readings({GRID: grid[:30] + grid[60:]}, offset={}).assign(
        ts_utc=list(pd.date_range(T0, periods=30, freq="1min")) +
        list(pd.date_range(T0 + timedelta(hours=1), periods=60, freq="1min"))))
    kpis = energy_kpis(store, demo_park, T0, T0 + timedelta(hours=2))
    # half an hour unknown (the 00:30 and 00:45 intervals): 1.5 h of 500 kW known
    assert kpis.coverage["grid_import_kwh"] == pytest.approx(1.5 / 2)
    assert kpis.grid_import_kwh == pytest.approx(500.0 * 1.5)


@pytest.fixture
def two_hours(store):
    """Two hours of 1-minute readings:

    hour 1: chiller 100 kW, building meter 400 kW (so other 300), PV 100, battery 0, grid 300;
    hour 2: the same loads and PV, battery discharging 50 kW, grid 250.
    """
    store.append_frame(readings({CHILLER: [100.0] * 120, METER: [400.0] * 120, PV: [100.0] * 120,
                                 BATTERY: [0.0] * 60 + [50.0] * 60, GRID: [300.0] * 60 + [250.0] * 60}))
    return store


def test_energy_totals_and_flows_match_hand_calculation(demo_park, two_hours):
    kpis = energy_kpis(two_hours, demo_park, T0, T0 + timedelta(hours=2))
    assert kpis.consumption_kwh["chillers"] == pytest.approx(200)
    assert kpis.consumption_kwh["other"] == pytest.approx(600)
    assert kpis.consumption_kwh["lighting"] == 0
    assert kpis.consumption_kwh["total"] == pytest.approx(800)
    assert kpis.pv_kwh == pytest.approx(200)
    assert kpis.grid_import_kwh == pytest.approx(550)
    assert kpis.battery_discharge_kwh == pytest.approx(50)
    assert kpis.grid_export_kwh == 0 and kpis.battery_charge_kwh == 0
    # the site used import + PV = 750 kWh behind its meter (800 of loads, 50 of them from the battery)
    assert kpis.self_sufficiency == pytest.approx(1 - 550 / 750)
    assert kpis.self_consumption == pytest.approx(1.0)
    # supply split in proportion to use (chillers 1/4, other 3/4 in both hours)
    assert kpis.flows_kwh[("grid", "chillers")] == pytest.approx(300 / 4 + 250 / 4)
    assert kpis.flows_kwh[("grid", "other")] == pytest.approx(300 * 3 / 4 + 250 * 3 / 4)
    assert kpis.flows_kwh[("pv", "chillers")] == pytest.approx(50)
    assert kpis.flows_kwh[("battery", "other")] == pytest.approx(37.5)
    assert sum(kpis.flows_kwh.values()) == pytest.approx(kpis.consumption_kwh["total"])


def test_a_range_that_cuts_an_interval_counts_only_its_part(demo_park, two_hours):
    kpis = energy_kpis(two_hours, demo_park, T0, T0 + timedelta(minutes=10))
    assert kpis.consumption_kwh["chillers"] == pytest.approx(100 * 10 / 60)
    assert kpis.grid_import_kwh == pytest.approx(300 * 10 / 60)


def test_peak_demand_is_the_highest_15_minute_mean_of_grid_import(demo_park, store):
    grid = [300.0] * 120
    grid[35:50] = [500.0] * 15  # 00:35-00:49 straddles the 00:30 and 00:45 intervals
    store.append_frame(readings({GRID: grid, METER: grid}))
    kpis = energy_kpis(store, demo_park, T0, T0 + timedelta(hours=2))
    # 00:30 interval: 5 min at 300 and 10 min at 500 -> 433.3; 00:45 interval: 5 at 500, 10 at 300 -> 366.7
    assert kpis.peak_demand_kw == pytest.approx((5 * 300 + 10 * 500) / 15)
    assert kpis.peak_demand_start_utc == T0 + timedelta(minutes=30)


def test_export_and_battery_charging_are_uses_of_supply(demo_park, store):
    # PV 500 kW, loads 200 kW (meter), battery charging 100 kW, export 200 kW, for one hour
    store.append_frame(readings({METER: [200.0] * 60, PV: [500.0] * 60, BATTERY: [-100.0] * 60,
                                 GRID: [-200.0] * 60}))
    kpis = energy_kpis(store, demo_park, T0, T0 + timedelta(hours=1))
    assert kpis.grid_export_kwh == pytest.approx(200) and kpis.battery_charge_kwh == pytest.approx(100)
    assert kpis.grid_import_kwh == 0
    assert kpis.self_consumption == pytest.approx(1 - 200 / 500)
    assert kpis.self_sufficiency == pytest.approx(1.0)
    assert kpis.flows_kwh == pytest.approx({("pv", "other"): 200, ("pv", "battery charge"): 100,
                                            ("pv", "export"): 200})


def battery_day(pv_kw: float) -> dict[str, list[float]]:
    """One day, hourly values repeated per minute. Loads 100 kW all day. 00-04 h: the battery charges
    1,000 kW from the grid; 08-16 h: PV ``pv_kw``, the surplus exported; 16-24 h: the battery discharges
    450 kW, 100 to the loads and 350 exported."""
    hours = range(24)
    battery = [-1000.0 if h < 4 else 450.0 if h >= 16 else 0.0 for h in hours]
    pv = [pv_kw if 8 <= h < 16 else 0.0 for h in hours]
    grid = [100.0 - p - b for p, b in zip(pv, battery)]
    return {pid: [v for v in hourly for _ in range(60)]
            for pid, hourly in ((METER, [100.0] * 24), (PV, pv), (BATTERY, battery), (GRID, grid))}


def test_a_day_with_the_battery_cycling_keeps_self_sufficiency_within_0_and_100_percent(demo_park, store):
    store.append_frame(readings(battery_day(pv_kw=200.0)))
    kpis = energy_kpis(store, demo_park, T0, T0 + timedelta(days=1))
    # by hand: import 1,100 x 4 h + 100 x 4 h (04-08) = 4,800 kWh; loads 2,400 kWh, so "1 - import /
    # loads" would be -100 %. PV 1,600 kWh, of which 100 x 8 h = 800 exported; the battery's export is not PV.
    assert kpis.grid_import_kwh == pytest.approx(4800.0)
    assert kpis.consumption_kwh["total"] == pytest.approx(2400.0)
    assert kpis.grid_export_kwh == pytest.approx(800.0 + 350.0 * 8)
    assert kpis.pv_export_kwh == pytest.approx(800.0)
    # used behind the grid meter: 4,800 + 1,600 - 800 = 5,600 kWh, of which 800 from PV
    assert kpis.self_sufficiency == pytest.approx(1 - 4800.0 / 5600.0)
    assert kpis.self_consumption == pytest.approx(1 - 800.0 / 1600.0)
    assert kpis.battery_charge_kwh == pytest.approx(4000.0) and kpis.battery_discharge_kwh == pytest.approx(3600.0)


@pytest.mark.parametrize("seed", range(5))
def test_self_sufficiency_and_self_consumption_stay_within_0_and_1_whatever_the_flows(demo_park, store, seed):
    rng = np.random.default_rng(seed)
    minutes = 6 * 60
    loads = rng.uniform(50, 500, minutes)
    pv = np.clip(rng.normal(200, 300, minutes), 0, None)
    battery = rng.uniform(-800, 800, minutes)  # charging from the grid and discharging into it
    store.append_frame(readings({METER: list(loads), PV: list(pv), BATTERY: list(battery),
                                 GRID: list(loads - pv - battery)}))
    kpis = energy_kpis(store, demo_park, T0, T0 + timedelta(hours=6))
    assert 0.0 <= kpis.self_sufficiency <= 1.0
    assert 0.0 <= kpis.self_consumption <= 1.0


def test_the_demand_charge_is_the_month_to_date_billed_peak_not_the_days_own(demo_park, demo_dir, store):
    tariff = load_tariff(demo_dir / "tariff.yaml")
    month_start = datetime(2026, 6, 30, 16, 0, tzinfo=UTC)  # 1 July local
    grid = [300.0] * (2 * 24 * 60)
    grid[600:615] = [900.0] * 15  # 1 July, 02:00-02:15 UTC (a whole demand interval)
    store.append_frame(readings({GRID: grid}, start=month_start))
    day2 = month_start + timedelta(days=1)
    kpis = energy_kpis(store, demo_park, day2, day2 + timedelta(days=1), tariff)
    assert kpis.peak_demand_kw == pytest.approx(300.0)  # the day's own highest interval
    assert kpis.billed_demand_kw == pytest.approx(900.0)  # the month's so far
    assert kpis.billed_demand_start_utc == month_start + timedelta(minutes=600)
    assert kpis.demand_charge_cny == pytest.approx(900.0 * 35.0)
    price = tariff.energy_price_cny_per_kwh(pd.date_range(day2, periods=24 * 60, freq="1min")).to_numpy()
    assert kpis.cost_cny == pytest.approx(float(np.sum(300.0 / 60 * price)))  # energy only
