"""Energy KPIs of a simulated week, and of a day with ice and chilled-water storage, against sums done by hand
from the raw readings."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from energy.kpi import energy_kpis
from energy.tariff import load_tariff
from twin.config import load_park
from twin.history import open_history

STEP_H = 1 / 60  # the demo park simulates 1-minute steps; each reading is that minute's mean power


@pytest.fixture(scope="module")
def week(faulty_week_url, demo_park, sim_start_utc):
    """(KPIs from energy.kpi, raw readings wide by point) of the simulated week with faults."""
    start, end = sim_start_utc, sim_start_utc + timedelta(days=7)
    with open_history(faulty_week_url) as history:
        kpis = energy_kpis(history, demo_park, start, end, load_tariff(demo_park.tariff), baseline_cost_cny=300_000.0)
        raw = history.query(list(demo_park.points), start, end)
    return kpis, raw.pivot(index="ts_utc", columns="point_id", values="value")


def kwh(raw: pd.DataFrame, suffix: str, *, kinds: tuple[str, ...]) -> float:
    """Energy of every point named <building>.<asset>.<suffix> whose asset id starts with one of ``kinds``."""
    columns = [c for c in raw.columns if c.endswith("." + suffix) and c.split(".")[1].startswith(kinds)]
    return float(raw[columns].fillna(0.0).to_numpy().sum() * STEP_H)


def hand_price_cny_per_kwh(ts_utc: pd.Timestamp) -> float:
    """The demo tariff read off its file by hand: 0.65 flat, peak x1.7, valley x0.38, +25 % 15-17 h in July."""
    hour = ts_utc.tz_convert("Asia/Shanghai").hour
    if hour < 8:
        return 0.65 * 0.38
    if 10 <= hour < 12 or 14 <= hour < 19:
        return 0.65 * 1.7 * (1.25 if 15 <= hour < 17 else 1.0)
    return 0.65


def test_consumption_per_subsystem_pv_and_grid_equal_hand_sums(week):
    kpis, raw = week
    lights = kwh(raw, "power_kw", kinds=("lighting",))
    lifts = kwh(raw, "power_kw", kinds=("elevator",))
    ev = kwh(raw, "power_kw", kinds=("ev",))
    chillers = kwh(raw, "power_kw", kinds=("chiller",))
    meters = raw[["plant.meter.power_kw", "b1.meter_b1.power_kw", "b2.meter_b2.power_kw"]].fillna(0).sum(axis=1)
    loads = raw[[c for c in raw.columns if c.endswith(".power_kw") and
                 c.split(".")[1].startswith(("lighting", "elevator", "ev", "chiller"))]].fillna(0).sum(axis=1)
    other = float(np.maximum(meters - loads, 0).sum() * STEP_H)
    grid = raw["plant.grid_meter.power_kw"]
    pv = kwh(raw, "ac_power_kw", kinds=("pv",))
    c = kpis.consumption_kwh
    assert (c["chillers"], c["lighting"], c["elevators"], c["ev"], c["other"]) == pytest.approx(
        (chillers, lights, lifts, ev, other), rel=1e-9)
    assert c["total"] == pytest.approx(chillers + lights + lifts + ev + other, rel=1e-9)
    assert kpis.pv_kwh == pytest.approx(pv, rel=1e-9) and pv > 10_000  # about 1 MWp for a week
    assert kpis.grid_import_kwh == pytest.approx(grid.clip(lower=0).sum() * STEP_H, rel=1e-9)
    assert kpis.grid_export_kwh == pytest.approx((-grid).clip(lower=0).sum() * STEP_H, abs=1e-6)
    # PV export: the export of each 15-minute interval up to that interval's PV
    quarter = lambda series: series.fillna(0.0).resample("15min").sum() * STEP_H
    pv_quarters = quarter(raw[[c for c in raw.columns if c.endswith(".ac_power_kw")]].sum(axis=1))
    pv_export = float(np.minimum(quarter((-grid).clip(lower=0)), pv_quarters).sum())
    site_use = kpis.grid_import_kwh + pv - pv_export
    assert kpis.self_sufficiency == pytest.approx(1 - kpis.grid_import_kwh / site_use, rel=1e-9)
    assert kpis.self_consumption == pytest.approx(1 - pv_export / pv, rel=1e-9)
    assert kpis.coverage["grid_import_kwh"] == kpis.coverage["pv_kwh"] == 1.0  # the counters span the week
    ev_hours = 7 * 24 * 10  # ten chargers; ev5 was offline for 3 hours
    assert kpis.coverage["consumption_kwh.ev"] == pytest.approx((ev_hours - 3) / ev_hours, abs=0.002)


def test_peak_demand_load_factor_cost_and_co2_equal_hand_calculations(week):
    kpis, raw = week
    grid = raw["plant.grid_meter.power_kw"]
    quarter_hours = grid.clip(lower=0).resample("15min").mean()  # +08:00: UTC quarters are local quarters
    import_kwh = grid.clip(lower=0).sum() * STEP_H
    assert kpis.peak_demand_kw == pytest.approx(quarter_hours.max(), rel=1e-9)
    assert kpis.peak_demand_start_utc == quarter_hours.idxmax()
    assert kpis.load_factor == pytest.approx(import_kwh / (quarter_hours.max() * 168), rel=1e-9)
    prices = np.array([hand_price_cny_per_kwh(ts) for ts in grid.index])
    energy_cost = float((grid.clip(lower=0).to_numpy() * STEP_H * prices).sum())
    assert sum(kpis.energy_cost_by_period_cny.values()) == pytest.approx(energy_cost, rel=1e-9)
    # one billing month, July, whose history begins with the week: its peak so far is the week's
    assert kpis.billed_demand_kw == pytest.approx(quarter_hours.max(), rel=1e-9)
    assert kpis.demand_charge_cny == pytest.approx(35.0 * quarter_hours.max(), rel=1e-9)
    assert kpis.cost_cny == pytest.approx(energy_cost - kpis.export_revenue_cny, rel=1e-9)  # no demand charge
    assert kpis.co2_t == pytest.approx(import_kwh * 0.5703 / 1000, rel=1e-9)
    assert kpis.savings_cny == pytest.approx(300_000.0 - kpis.cost_cny, rel=1e-12)


def test_plant_cop_kw_per_ton_and_ice_used_equal_hand_calculations(week):
    kpis, raw = week
    cooling = kwh(raw, "cooling_kwth", kinds=("chiller",))
    electric = kwh(raw, "power_kw", kinds=("chiller",))
    assert kpis.plant_cop == pytest.approx(cooling / electric, rel=1e-9)
    assert kpis.plant_kw_per_ton == pytest.approx(3.517 / (cooling / electric), rel=1e-9)
    assert 3.5 < kpis.plant_cop < 6.3  # between ice-mode and direct COP of the demo chillers
    melt_kwhth = raw["plant.ice_tank.melt_kwth"].sum() * STEP_H
    assert kpis.ice_melt_kwhth == pytest.approx(melt_kwhth, rel=1e-9) and melt_kwhth > 0
    assert kpis.ice_cooling_delivered_kwhth == pytest.approx(0.95 * melt_kwhth, rel=1e-9)
    assert kpis.storage_cooling_delivered_kwhth == pytest.approx(0.95 * melt_kwhth, rel=1e-9)  # ice alone


@pytest.fixture(scope="module")
def both_storages_kpis(both_storages_day, sim_start_utc):
    """(KPIs from energy.kpi, raw readings wide by point) of the simulated day with ice and chilled-water storage."""
    park_file, url = both_storages_day
    park = load_park(park_file)
    start, end = sim_start_utc, sim_start_utc + timedelta(days=1)
    with open_history(url) as history:
        kpis = energy_kpis(history, park, start, end)
        raw = history.query(list(park.points), start, end)
    return kpis, raw.pivot(index="ts_utc", columns="point_id", values="value")


def test_storage_cooling_is_ice_and_chilled_water_net_and_ice_used_is_ice_alone(both_storages_kpis):
    kpis, raw = both_storages_kpis
    melt, charge, discharge = (raw[pid] for pid in ("plant.ice_tank.melt_kwth", "plant.chw_tank.charge_kwth",
                                                    "plant.chw_tank.discharge_kwth"))
    assert melt.max() > 0 and charge.max() > 0 and discharge.max() > 0  # both stores worked the day
    melt_kwhth, charge_kwhth, discharge_kwhth = (float(flow.sum() * STEP_H) for flow in (melt, charge, discharge))
    assert kpis.ice_melt_kwhth == pytest.approx(melt_kwhth, rel=1e-9)
    assert kpis.ice_cooling_delivered_kwhth == pytest.approx(0.95 * melt_kwhth, rel=1e-9)  # melt effectiveness
    assert kpis.storage_cooling_delivered_kwhth == pytest.approx(0.95 * melt_kwhth + discharge_kwhth - charge_kwhth,
                                                                 rel=1e-9)
    assert abs(discharge_kwhth - charge_kwhth) > 1000  # so an ice figure that counted the tank would fail
    for figure in ("storage_cooling_delivered_kwhth", "ice_melt_kwhth", "ice_cooling_delivered_kwhth"):
        assert kpis.coverage[figure] == pytest.approx(1.0), figure
