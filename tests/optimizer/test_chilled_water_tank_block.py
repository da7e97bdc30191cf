"""The chilled-water tank in the dispatch LP (optimizer.blocks.chilled_water_tank): its charge is cooling load the
chillers carry at their chilled-water COP, its discharge carries load, its level loses its standing loss; checked
against a hand calculation with two solvers, and closed-loop on the simulated example park against holding it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from optimizer_cases import horizon

from energy.environment import ParkEnvironment
from energy.tariff import load_tariff
from optimizer.backtest import OPTIMAL, backtest
from optimizer.baselines import baseline_dispatch
from optimizer.diagnostics import input_problems
from optimizer.inputs import InitialState
from optimizer.model import DispatchAssets, PlanOptions, build_lp
from optimizer.solve import solve
from twin.config import load_park
from twin.kinds import ChilledWaterTank, Chiller
from twin.park import PlantSchedule

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "chilled-water"


@pytest.mark.parametrize("solver", ["pulp-highs", "pulp-cbc"])
def test_a_tank_charged_in_the_cheap_hour_carries_the_load_of_the_dear_one(solver):
    """Two hours at 0.2 then 1.0 CNY/kWh; cooling load 0 then 1,000 kWth; a 2,000 kWth chiller at COP 5; an empty
    tank of 2,000 kWhth losing 1 %/h, 1,500 kWth each way.

    By hand: charge c in hour 1, of which 0.99 c is left in hour 2; discharging d <= 0.99 c there saves the
    chiller d / 5 kWh at 1.0 CNY and the charge costs c / 5 kWh at 0.2 CNY, so the tank covers the whole load:
    c = 1,000 / 0.99 = 1,010.10 kWth, cost 0.2 x 1,010.10 / 5 = 40.40 CNY (against 200 CNY without it); the grid
    imports 202.02 kW then nothing."""
    inputs = horizon(60, cooling_load_kwth=[0, 1000], pv_available_kw=[0, 0], other_load_kw=[0, 0],
                     price_cny_per_kwh=[0.2, 1.0])
    chiller = Chiller(id="chiller", cooling_capacity_kwth=2000, cop_rated=5.0)
    tank = ChilledWaterTank(id="chw", capacity_kwhth=2000, charge_rate_max_kwth=1500, discharge_rate_max_kwth=1500,
                            standing_loss_pct_per_h=1.0)
    lp = build_lp(inputs, DispatchAssets((chiller, tank)), InitialState({"chw": 0.0}), PlanOptions())
    result = solve(lp, solver)
    assert result.optimal and result.x is not None
    charge = 1000 / 0.99
    assert result.objective_cny == pytest.approx(0.2 * charge / 5, abs=1e-4)
    assert lp.values(result.x, "chilled_water_charge_kwth")[0].tolist() == pytest.approx([charge, 0.0], abs=1e-4)
    assert lp.values(result.x, "chilled_water_discharge_kwth")[0].tolist() == pytest.approx([0.0, 1000.0], abs=1e-4)
    assert lp.values(result.x, "chilled_water_stored_kwhth")[0].tolist() == pytest.approx([0.0, charge, 0.0],
                                                                                          abs=1e-4)
    assert lp.values(result.x, "grid_import_kw").tolist() == pytest.approx([charge / 5, 0.0], abs=1e-4)
    assert "chw.stored_balance[2026-06-30T17:00Z]" in lp.row_names


def test_a_tank_said_to_hold_more_than_its_capacity_is_named_as_the_reason_for_no_plan():
    inputs = horizon(60, cooling_load_kwth=[0, 1000], pv_available_kw=[0, 0], other_load_kw=[0, 0],
                     price_cny_per_kwh=[0.2, 1.0])
    assets = DispatchAssets((Chiller(id="chiller", cooling_capacity_kwth=2000, cop_rated=5.0),
                             ChilledWaterTank(id="chw", capacity_kwhth=2000, charge_rate_max_kwth=1500,
                                              discharge_rate_max_kwth=1500)))
    assert input_problems(inputs, assets, InitialState({"chw": 2500.0})) == [
        "state: chilled-water tank 'chw' starts at 2,500 kWhth, outside [0, capacity_kwhth 2,000]"]
    assert input_problems(inputs, assets, InitialState({"chw": 2000.0})) == []


def test_the_baselines_run_the_tank_on_the_plant_schedule_and_the_chillers_carry_what_it_leaves():
    """Twelve hours from local midnight on the default plant schedule (charge 00-08, discharge 10-12); cooling load
    100 kWth until 08:00, none until 10:00, then 800 kWth; a 1,000 kWth chiller; an empty tank of 3,000 kWhth without
    standing loss, charging at up to 500 kWth and discharging at up to 1,000.

    By hand: it charges 500 kWth for six hours until full (the chiller has 900 to spare), then holds; at 10:00 and
    11:00 it carries the whole 800 kWth; the chiller makes 600, 100, 0 and 0 kWth in those stretches. ``no_storage``
    holds it, and the chiller carries the load."""
    load = [100.0] * 8 + [0.0] * 2 + [800.0] * 2
    inputs = horizon(60, cooling_load_kwth=load, pv_available_kw=[0.0] * 12, other_load_kw=[0.0] * 12,
                     price_cny_per_kwh=[1.0] * 12)
    assets = DispatchAssets((Chiller(id="chiller", cooling_capacity_kwth=1000, cop_rated=5.0),
                             ChilledWaterTank(id="chw", capacity_kwhth=3000, charge_rate_max_kwth=500,
                                              discharge_rate_max_kwth=1000, standing_loss_pct_per_h=0.0)))
    state = InitialState({"chw": 0.0})
    lp = build_lp(inputs, assets, state, PlanOptions())
    for name in ("chiller_priority", "storage_priority", "battery_idle"):
        x = baseline_dispatch(name, lp, inputs, assets, PlantSchedule(), "Asia/Shanghai")
        assert lp.values(x, "chilled_water_charge_kwth")[0].tolist() == [500.0] * 6 + [0.0] * 6, name
        assert lp.values(x, "chilled_water_discharge_kwth")[0].tolist() == [0.0] * 10 + [800.0] * 2, name
        assert lp.values(x, "chilled_water_stored_kwhth")[0].tolist() == pytest.approx(
            [0, 500, 1000, 1500, 2000, 2500, 3000, 3000, 3000, 3000, 3000, 2200, 1400]), name
        assert lp.values(x, "chiller_direct_kwth")[0].tolist() == [600.0] * 6 + [100.0] * 2 + [0.0] * 4, name
        assert lp.violation(x) < 1e-9, name
    held = baseline_dispatch("no_storage", lp, inputs, assets, PlantSchedule(), "Asia/Shanghai")
    assert not lp.values(held, "chilled_water_charge_kwth").any()
    assert not lp.values(held, "chilled_water_discharge_kwth").any()
    assert lp.values(held, "chiller_direct_kwth")[0].tolist() == load


def test_the_example_park_run_closed_loop_costs_less_with_its_tank_planned_than_on_schedule_or_held():
    """A simulated day of examples/chilled-water under the controller, its setpoints written to the simulated tank
    each step, against the same day with the tank on the plant's own schedule and held idle (the simulator's own
    meter prices each)."""
    park = load_park(EXAMPLE / "park.yaml")
    start = datetime(2026, 6, 30, 16, tzinfo=UTC)  # 1 July, midnight in the park
    result = backtest(park, ParkEnvironment(park), load_tariff(EXAMPLE / "tariff.yaml"), start, 1,
                      (OPTIMAL, "storage_priority", "no_storage"), workers=1, warmup_days=0)
    optimal, scheduled, held = (result.costs[name] for name in (OPTIMAL, "storage_priority", "no_storage"))
    assert optimal.peak_kw < scheduled.peak_kw < held.peak_kw
    assert optimal.total_cny < scheduled.total_cny < held.total_cny
    assert optimal.total_cny < 0.9 * held.total_cny
