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
from optimizer.diagnostics import input_problems
from optimizer.inputs import InitialState
from optimizer.model import DispatchAssets, PlanOptions, build_lp
from optimizer.solve import solve
from twin.config import load_park
from twin.kinds import ChilledWaterTank, Chiller

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


def test_the_example_park_run_closed_loop_costs_less_with_its_tank_planned_than_held():
    """A simulated day of examples/chilled-water under the controller, its setpoints written to the simulated tank
    each step, against the same day with the tank held idle (the simulator's own meter prices both)."""
    park = load_park(EXAMPLE / "park.yaml")
    start = datetime(2026, 6, 30, 16, tzinfo=UTC)  # 1 July, midnight in the park
    result = backtest(park, ParkEnvironment(park), load_tariff(EXAMPLE / "tariff.yaml"), start, 1,
                      (OPTIMAL, "no_storage"), workers=1, warmup_days=0)
    optimal, held = result.costs[OPTIMAL], result.costs["no_storage"]
    assert optimal.peak_kw < 0.9 * held.peak_kw
    assert optimal.energy_cny < held.energy_cny
    assert optimal.total_cny < 0.9 * held.total_cny
