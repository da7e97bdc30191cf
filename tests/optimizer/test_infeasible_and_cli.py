"""Infeasible inputs give a diagnostic naming them and a safe fallback plan; `parktwin plan` exit codes;
the minimal pv-battery example park plans and simulates without chillers."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from cli_support import parktwin
from optimizer_cases import UTC_START, context, horizon

from energy.environment import ParkEnvironment
from optimizer.inputs import EVSessionRequest, HorizonInputs, InitialState
from optimizer.model import DispatchAssets, PlanOptions
from optimizer.plan import make_plan
from twin.config import load_park
from twin.kinds import Battery, ChilledWaterTank, Chiller, EVCharger, IceTank
from twin.sim import ParkSimulator

ROOT = Path(__file__).resolve().parents[2]
PV_BATTERY = ROOT / "examples" / "pv-battery" / "park.yaml"

CHILLER = Chiller(id="chiller", cooling_capacity_kwth=1000, cop_rated=5, ice_capacity_kwth=700, ice_cop_rated=4)
TANK = IceTank(id="tank", capacity_kwhth=3000, charge_rate_max_kwth=700, melt_rate_max_kwth=500, initial_soc_pct=50)
BATTERY = Battery(id="battery", energy_capacity_kwh=400, charge_power_max_kw=200, discharge_power_max_kw=200)
ASSETS = DispatchAssets((CHILLER, TANK, BATTERY, EVCharger(id="ev1", power_max_kw=7)))


def day(load_kwth=400.0) -> HorizonInputs:
    n = 24
    load = np.full(n, 400.0)
    load[14] = load_kwth
    return horizon(60, cooling_load_kwth=load, pv_available_kw=np.zeros(n), other_load_kw=np.full(n, 300.0),
                   price_cny_per_kwh=np.where(np.arange(n) < 8, 0.25, 1.0))


def assert_fallback_holds_storage(plan):
    assert plan.status == "fallback"
    table = plan.table
    assert np.allclose(table["battery.charge_kw"], 0) and np.allclose(table["battery.discharge_kw"], 0)
    assert np.allclose(table["tank.charge_kwth"], 0) and np.allclose(table["tank.melt_kwth"], 0)


def test_soc_start_below_minimum():
    state = InitialState(stored={"battery": 0.05 * 400})
    plan = make_plan(day(), state, PlanOptions(), context(ASSETS))
    assert_fallback_holds_storage(plan)
    assert any("battery 'battery'" in line and "below its minimum" in line and "soc_min_pct 10" in line
               for line in plan.diagnostic)


def test_cooling_load_above_chillers_plus_melt():
    plan = make_plan(day(load_kwth=1600.0), InitialState(), PlanOptions(), context(ASSETS))
    assert_fallback_holds_storage(plan)
    line = next(line for line in plan.diagnostic if "cooling_load_kwth" in line)
    # each cooling source's most: the chiller's capacity, 500 kWth melt x 0.95
    assert "1,600 kWth" in line and "1,475 kWth (chiller 1,000 kWth, ice_tank 475 kWth;" in line
    # chillers carry what they can in the fallback
    assert plan.table["chiller.direct_kwth"].max() == pytest.approx(1000.0)


def test_load_above_the_chillers_every_hour_and_beyond_the_stored_cooling_names_each_storage_kind():
    """Two hours of 1,200 then 1,300 kWth on a 1,000 kWth chiller: 500 kWhth must come from storage, which no
    hour can recharge. By hand: an ice tank of 400 kWhth melting at 0.9 effectiveness delivers 360 kWhth and a
    chilled-water tank of 100 kWhth 100 (neither loses any), 460 in all: 40 short, so no plan; with 200 kWhth
    in the chilled-water tank, 560 covers the 500 and the plan is had."""
    inputs = horizon(60, cooling_load_kwth=[1200, 1300], pv_available_kw=[0, 0], other_load_kw=[0, 0],
                     price_cny_per_kwh=[1.0, 1.0])
    assets = DispatchAssets((
        Chiller(id="chiller", cooling_capacity_kwth=1000, cop_rated=5, ice_capacity_kwth=700, ice_cop_rated=4),
        IceTank(id="ice", capacity_kwhth=1000, charge_rate_max_kwth=700, melt_rate_max_kwth=500,
                standing_loss_pct_per_h=0, melt_effectiveness=0.9),
        ChilledWaterTank(id="chw", capacity_kwhth=1000, charge_rate_max_kwth=500, discharge_rate_max_kwth=500,
                         standing_loss_pct_per_h=0)))
    short = make_plan(inputs, InitialState({"ice": 400, "chw": 100}), PlanOptions(), context(assets))
    assert short.status == "fallback"
    assert ("inputs: cooling_load_kwth exceeds the chillers' direct capacity 1,000 kWth by 500 kWhth over the "
            "horizon, more than the cooling storage can deliver (ice_tank 360 kWhth, chilled_water_tank 100 kWhth) "
            "with no step leaving a chiller free to charge it") in short.diagnostic
    enough = make_plan(inputs, InitialState({"ice": 400, "chw": 200}), PlanOptions(), context(assets))
    assert enough.status == "optimal", enough.diagnostic
    delivered = 0.9 * enough.table["ice.melt_kwth"] + enough.table["chw.discharge_kwth"]
    assert (enough.table["chiller.direct_kwth"] + delivered).tolist() == pytest.approx([1200, 1300], abs=1e-6)


def test_ev_session_that_cannot_be_served():
    inputs = day()
    inputs.ev_sessions.append(EVSessionRequest("ev1", UTC_START + pd.Timedelta(hours=8),
                                               UTC_START + pd.Timedelta(hours=10), energy_kwh=30.0))
    plan = make_plan(inputs, InitialState(), PlanOptions(), context(ASSETS))
    assert plan.status == "fallback"
    assert any("EV session on 'ev1' needs 30 kWh" in line and "at most 14 kWh" in line for line in plan.diagnostic)


def test_ev_session_served_by_its_deadline_at_the_cheapest_hours():
    inputs = day()
    inputs.ev_sessions.append(EVSessionRequest("ev1", UTC_START + pd.Timedelta(hours=6),
                                               UTC_START + pd.Timedelta(hours=12), energy_kwh=14.0))
    plan = make_plan(inputs, InitialState(), PlanOptions(), context(ASSETS))
    assert plan.status == "optimal"
    # 14 kWh at 7 kW: the two valley hours 06:00 and 07:00 local (UTC_START is local midnight)
    assert plan.table["ev_kw"].iloc[6:8].tolist() == pytest.approx([7.0, 7.0], abs=1e-6)
    assert plan.table["ev_kw"].sum() == pytest.approx(14.0)


# ---------------------------------------------------------------- command line


def write_inputs(path: Path, other_load_kw: float = 150.0, cooling: float = 0.0, bad_row: bool = False) -> Path:
    index = pd.date_range("2026-07-01", periods=96, freq="15min", tz="Asia/Shanghai")
    hour = np.arange(96) / 4
    frame = pd.DataFrame({
        "timestamp": [ts.isoformat() for ts in index],
        "cooling_load_kwth": cooling,
        "pv_available_kw": np.clip(250 * np.sin((hour - 6) / 12 * np.pi), 0, None).round(3),
        "other_load_kw": other_load_kw,
        "price_cny_per_kwh": np.where(hour < 8, 0.247, np.where((hour >= 14) & (hour < 19), 1.105, 0.65)),
        "export_price_cny_per_kwh": 0.2,
    })
    if bad_row:
        frame["other_load_kw"] = frame["other_load_kw"].astype(object)
        frame.loc[5, "other_load_kw"] = "lots"
    frame.to_csv(path, index=False)
    return path


def test_plan_pv_battery_from_inputs_file_exports_csv_and_json(tmp_path):
    out = tmp_path / "plan.csv"
    result = parktwin("plan", str(PV_BATTERY), "--date", "2026-07-01",
                      "--inputs", str(write_inputs(tmp_path / "in.csv")), "--out", str(out), "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["status"] == "optimal"
    assert set(document["savings_cny"]) == {"chiller_priority", "storage_priority", "no_storage", "battery_idle"}
    table = pd.read_csv(out)
    assert list(table.columns) == [
        "ts_utc", "ts_local", "period", "price_cny_per_kwh", "export_price_cny_per_kwh", "cooling_load_kwth",
        "other_load_kw", "pv_available_kw", "pv_used_kw", "pv_curtailed_kw", "grid_import_kw", "grid_export_kw",
        "chillers_electric_kw", "battery.charge_kw", "battery.discharge_kw", "battery.power_setpoint_kw",
        "battery.stored_kwh", "battery.soc_pct", "ev_kw", "step_cost_cny"]
    assert len(table) == 96 and len(document["steps"]) == 96
    # the electric balance holds in the exported table
    balance = (table["grid_import_kw"] - table["grid_export_kw"] + table["pv_used_kw"]
               + table["battery.discharge_kw"] - table["battery.charge_kw"] - table["other_load_kw"])
    assert np.abs(balance).max() < 1e-3


def test_plan_exits_1_with_the_diagnostic(tmp_path):
    """pv-battery has no chillers: any cooling load is beyond its capacity."""
    result = parktwin("plan", str(PV_BATTERY), "--date", "2026-07-01",
                      "--inputs", str(write_inputs(tmp_path / "in.csv", cooling=50.0)))
    assert result.returncode == 1
    assert "cooling_load_kwth" in result.stderr and "cooling sources deliver, 0 kWth (none" in result.stderr


def test_plan_exits_2_for_malformed_inputs_or_prices(tmp_path):
    result = parktwin("plan", str(PV_BATTERY), "--date", "2026-07-01",
                      "--inputs", str(write_inputs(tmp_path / "in.csv", bad_row=True)))
    assert result.returncode == 2
    assert "line 7, column other_load_kw: not a number: 'lots'" in result.stderr and "Traceback" not in result.stderr
    prices = tmp_path / "prices.csv"
    prices.write_text("timestamp,price\n2026-07-01T00:00,0.3\n")
    result = parktwin("plan", str(PV_BATTERY), "--date", "2026-07-01", "--prices", str(prices))
    assert result.returncode == 2 and "say the unit in the name" in result.stderr


def test_plan_exits_2_when_the_inputs_are_for_another_day(tmp_path):
    """An inputs file for 2026-07-01 asked to plan 2026-07-02 (or one running past the day) is refused
    with both dates named, rather than planning the file's own day."""
    inputs = write_inputs(tmp_path / "in.csv")  # 2026-07-01, local
    result = parktwin("plan", str(PV_BATTERY), "--date", "2026-07-02", "--inputs", str(inputs))
    assert result.returncode == 2
    assert "2026-07-01" in result.stderr and "--date 2026-07-02" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    two_days = tmp_path / "two.csv"
    frame = pd.read_csv(inputs)
    later = frame.assign(timestamp=[(pd.Timestamp(t) + pd.Timedelta(days=1)).isoformat() for t in frame["timestamp"]])
    pd.concat([frame, later]).to_csv(two_days, index=False)
    result = parktwin("plan", str(PV_BATTERY), "--date", "2026-07-01", "--inputs", str(two_days))
    assert result.returncode == 2 and "cover 2026-07-01 00:00 to 2026-07-03 00:00" in result.stderr


def test_pv_battery_park_validates_and_simulates_without_chillers():
    result = parktwin("validate", str(PV_BATTERY))
    assert result.returncode == 0, result.stderr
    park = load_park(PV_BATTERY)
    start = datetime(2026, 6, 30, 16, tzinfo=UTC)
    simulator = ParkSimulator(park, ParkEnvironment(park), start)
    grid = simulator.point_ids.index("office.grid_meter.power_kw")
    pv = simulator.point_ids.index("office.pv_roof.ac_power_kw")
    noon = [simulator.advance() for _ in range(12 * 60)][-1]
    assert np.isfinite(noon.values[grid]) and noon.values[pv] > 50.0


def test_closed_loop_day_on_the_simulator_beats_holding_storage():
    """Rolling horizon on the pv-battery park for a day: realized cost from the simulated meter is
    below the no-storage strategy's on the same simulated day, and every hourly plan is kept."""
    from energy.tariff import load_tariff
    from optimizer.backtest import OPTIMAL, backtest

    park = load_park(PV_BATTERY)
    tariff = load_tariff(PV_BATTERY.parent / "tariff.yaml")
    start = datetime(2026, 6, 30, 16, tzinfo=UTC)
    result = backtest(park, ParkEnvironment(park), tariff, start, 1, (OPTIMAL, "no_storage"), mip_time_limit_s=0.3,
                      forecast="perfect")
    assert len(result.plans) == 24
    assert result.costs[OPTIMAL].total_cny < result.costs["no_storage"].total_cny
    assert result.costs[OPTIMAL].peak_kw < result.costs["no_storage"].peak_kw


def test_backtest_in_worker_processes_matches_the_serial_run():
    """The demo park's strategies in two worker processes realize the same costs, to the last digit, as
    run one after the other here (every re-plan's MIP solves to optimality well within its time
    limit, so no incumbent depends on timing), and progress reaches every plan step of each."""
    from energy.tariff import load_tariff
    from optimizer.backtest import OPTIMAL, backtest

    park = load_park(ROOT / "examples" / "demo-park" / "park.yaml")
    tariff = load_tariff(ROOT / "examples" / "demo-park" / "tariff.yaml")
    start = datetime(2026, 6, 30, 16, tzinfo=UTC)
    results, steps = {}, {}
    for workers in (1, 2):
        done: dict[str, int] = {}
        results[workers] = backtest(park, ParkEnvironment(park), tariff, start, 1, (OPTIMAL, "storage_priority"),
                                    workers=workers, forecast="perfect",
                                    progress=lambda s, n, done=done: done.__setitem__(s, done.get(s, 0) + n))
        steps[workers] = done
    serial, parallel = results[1], results[2]
    assert all(plan.status == "optimal" for _, plan in serial.plans + parallel.plans)
    assert {s: c.total_cny for s, c in parallel.costs.items()} == {s: c.total_cny for s, c in serial.costs.items()}
    assert serial.costs[OPTIMAL].total_cny < serial.costs["storage_priority"].total_cny
    assert steps[1] == steps[2] == {OPTIMAL: 96, "storage_priority": 96}


def test_no_storage_is_realized_by_the_forecast_run():
    """The backtest takes no_storage's realized cost from the hold-storage run its forecasts come from;
    running no_storage's closed loop for real (re-planned every hour, its setpoints written) gives
    the same meter readings, so the same cost to the last digit."""
    from energy.tariff import load_tariff
    from optimizer import backtest as bt
    from optimizer.park_inputs import hold_storage_run
    from optimizer.plan import plan_context, plan_options

    park = load_park(ROOT / "examples" / "demo-park" / "park.yaml")
    tariff = load_tariff(ROOT / "examples" / "demo-park" / "tariff.yaml")
    start = datetime(2026, 6, 30, 16, tzinfo=UTC)
    result = bt.backtest(park, ParkEnvironment(park), tariff, start, 1, ("no_storage",), forecast="perfect")
    environment = bt.ConditionsMemo(ParkEnvironment(park))
    end = start + pd.Timedelta(days=1)
    loads = hold_storage_run(park, environment, start, end + pd.Timedelta(hours=24)).loads
    run = bt._ClosedLoopRun(park, environment, tariff, plan_options(tariff), plan_context(park, tariff),
                            start, end, 60, 24, bt.BACKTEST_SOLVER, "perfect", loads, None)
    outcome = bt._run_closed_loop(run, "no_storage", None)
    meter_kw, pv_kw = outcome.meter_kw, outcome.pv_kw
    realized, _ = bt.realized_cost(meter_kw, pv_kw, tariff, park.site.timezone)
    assert len(meter_kw) == 24 * 60
    assert realized == result.costs["no_storage"]


def test_prefetched_conditions_are_what_the_simulator_would_get_a_day_at_a_time():
    """Conditions worked out 30 days per call for a backtest are, for each UTC day the simulator asks
    for, the frame the environment gives for that day alone, and asking again computes nothing."""
    from datetime import timedelta

    from optimizer.backtest import ConditionsMemo

    park = load_park(PV_BATTERY)
    environment = ParkEnvironment(park)
    memo = ConditionsMemo(environment)
    start = datetime(2026, 1, 28, 16, tzinfo=UTC)
    memo.prefetch_days(start, start + timedelta(days=33), timedelta(minutes=1))
    prefetched = len(memo._frames)
    for day in (pd.Timestamp("2026-01-28", tz="UTC"), pd.Timestamp("2026-01-31", tz="UTC"),
                pd.Timestamp("2026-03-02", tz="UTC")):
        index = pd.date_range(day, day + pd.Timedelta(days=1), freq="1min", inclusive="left")
        pd.testing.assert_frame_equal(memo.conditions(index), environment.conditions(index))
    assert prefetched == 34 and len(memo._frames) == prefetched  # 2026-01-28 to 2026-03-02
