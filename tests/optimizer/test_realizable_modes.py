"""Plans the field can carry out: no chiller planned in ice and chilled-water mode in one step, over
days of every season; MIP searches bounded by nodes, so the same inputs give the same plan, and a
search stopped without an incumbent gives the fallback plan instead of a crash."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import Bounds, LinearConstraint, milp

from energy.environment import ParkEnvironment
from energy.tariff import load_tariff
from optimizer.blocks.chiller import ChillerBlock
from optimizer.inputs import HorizonInputs, InitialState
from optimizer.model import DispatchAssets, build_lp
from optimizer.park_inputs import park_horizon_inputs, simulated_loads
from optimizer.plan import PlanContext, make_plan, plan_context, plan_options
from optimizer.setpoints import table_setpoints
from optimizer.solve import solve
from twin.config import load_park
from twin.kinds import Battery
from twin.plant import CMD_ICE
from twin.points import point_id

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "examples" / "demo-park"
PV_BATTERY_TARIFF = ROOT / "examples" / "pv-battery" / "tariff.yaml"
TOLERANCE_KW = 1e-6
SEASONS = ("2026-01-05", "2026-04-06", "2026-07-01", "2026-10-05")  # 8 days from each, local dates
DAYS_PER_SEASON = 8
TINY_BATTERY = Battery(id="battery", energy_capacity_kwh=40, charge_power_max_kw=20, discharge_power_max_kw=20,
                       initial_soc_pct=50)


def local_midnight_utc(day: str) -> datetime:
    return pd.Timestamp(day, tz="Asia/Shanghai").tz_convert("UTC").to_pydatetime()


@pytest.fixture(scope="module")
def demo():
    park = load_park(DEMO / "park.yaml")
    # the simulator at 5-minute steps: the same load shapes (15-minute means) for a fifth of the work
    coarse = park.model_copy(update={"simulation": park.simulation.model_copy(update={"step_s": 300})})
    environment = ParkEnvironment(park)
    loads = [simulated_loads(coarse, environment, local_midnight_utc(day),
                             local_midnight_utc(day) + timedelta(days=DAYS_PER_SEASON)) for day in SEASONS]
    return park, pd.concat(loads)


def day_inputs(loads: pd.DataFrame, tariff, d: int) -> HorizonInputs:
    day = loads.iloc[96 * d:96 * (d + 1)]
    return park_horizon_inputs(day, tariff.energy_price_cny_per_kwh(day.index), tariff.export_price_cny_per_kwh)


def tiny_battery_context(park, tariff) -> PlanContext:
    context = plan_context(park, tariff)
    others = tuple(asset for asset in context.assets.assets if not isinstance(asset, Battery))
    return replace(context, assets=DispatchAssets((*others, TINY_BATTERY)))


def ice_chillers(assets: DispatchAssets) -> tuple:
    return tuple(c for c in assets.of_kind("chiller") if c.makes_ice)


def mixed_steps(table: pd.DataFrame, chillers) -> int:
    """Steps where some chiller is planned to make ice and chilled water at once."""
    mixed = np.zeros(len(table), bool)
    for chiller in chillers:
        mixed |= (table[f"{chiller.id}.ice_kwth"] > TOLERANCE_KW) & (table[f"{chiller.id}.direct_kwth"] > TOLERANCE_KW)
    return int(mixed.sum())


def test_no_chiller_in_two_modes_over_64_planned_days(demo):
    """32 days (winter, spring, summer, autumn; weekdays and weekends), each planned for the demo park
    with its tariff and, with the pv-battery example's tariff, for the demo park with a 40 kWh
    battery: no step of any plan has a chiller in both modes, and the mode command each step asks
    for (ice where the plan makes ice) leaves the ice-making chillers nothing to do but that ice.
    The same days planned as the LP alone (no binaries) do mix modes, on summer days above all, so
    the check has something to find; the realizable plan costs at least what that LP does."""
    park, loads = demo
    cases = [(load_tariff(DEMO / "tariff.yaml"), None), (load_tariff(PV_BATTERY_TARIFF), TINY_BATTERY)]
    days = len(loads) // 96
    assert days == len(SEASONS) * DAYS_PER_SEASON
    weekdays = {pd.Timestamp(loads.index[96 * d]).tz_convert("Asia/Shanghai").weekday() for d in range(days)}
    assert weekdays == set(range(7))
    planned, lp_mixed_days, plans_with_ice = 0, 0, 0
    for tariff, battery in cases:
        options = plan_options(tariff)
        context = tiny_battery_context(park, tariff) if battery else plan_context(park, tariff)
        chillers = ice_chillers(context.assets)
        for d in range(days):
            inputs = day_inputs(loads, tariff, d)
            plan = make_plan(inputs, InitialState(), options, context, solver="highs", with_baselines=False)
            assert plan.status == "optimal", (inputs.index[0], plan.diagnostic)
            assert mixed_steps(plan.table, chillers) == 0, (inputs.index[0], battery)
            for step, setpoints in enumerate(table_setpoints(park, plan.table)):
                for chiller in chillers:
                    if setpoints[point_id("plant", chiller.id, "mode_cmd")] == CMD_ICE:
                        assert plan.table[f"{chiller.id}.direct_kwth"].iloc[step] == pytest.approx(0.0, abs=1e-6)
            plans_with_ice += bool(sum(plan.table[f"{c.id}.ice_kwth"].sum() for c in chillers) > 1.0)
            lp = build_lp(inputs, context.assets, InitialState(), replace(options, realizability="never"))
            relaxed = solve(lp, "highs")
            assert relaxed.objective_cny <= plan.solve.objective_cny * (1 + 1e-9) + 1e-6
            direct = lp.values(relaxed.x, "chiller_direct_kwth")[lp.kind_block(ChillerBlock).ice_rows]
            ice = lp.values(relaxed.x, "chiller_ice_kwth")
            lp_mixed_days += bool(((direct > TOLERANCE_KW) & (ice > TOLERANCE_KW)).any())
            planned += 1
    assert planned == 64
    assert plans_with_ice >= 20  # ice is made on most days with cooling, not only in summer
    assert lp_mixed_days >= 5


def test_tiny_battery_morning_matches_scipy_milp_on_the_same_matrix(demo):
    """A summer day from 08:00 to 16:00 local (32 steps) of the demo park with the 40 kWh battery: the
    plan's objective is the optimum scipy's MILP finds for the same matrix with binaries on every
    step, and lies above the LP relaxation's (the LP shares a chiller between the modes late in the
    morning, making ice for the afternoon peak)."""
    park, loads = demo
    tariff = load_tariff(PV_BATTERY_TARIFF)
    context = tiny_battery_context(park, tariff)
    options = plan_options(tariff)
    summer = 2 * DAYS_PER_SEASON  # the first day from 2026-07-01
    day = loads.iloc[96 * summer + 32:96 * summer + 64]
    inputs = park_horizon_inputs(day, tariff.energy_price_cny_per_kwh(day.index), tariff.export_price_cny_per_kwh)
    plan = make_plan(inputs, InitialState(), options, context, with_baselines=False)
    assert plan.status == "optimal" and mixed_steps(plan.table, ice_chillers(context.assets)) == 0
    lp = build_lp(inputs, context.assets, InitialState(), replace(options, realizability="always"))
    result = milp(lp.c, constraints=LinearConstraint(lp.a, lp.row_lower, lp.row_upper),
                  integrality=lp.integrality.astype(int), bounds=Bounds(lp.col_lower, lp.col_upper),
                  options={"mip_rel_gap": 1e-9})
    assert result.status == 0, result.message
    assert plan.solve.objective_cny == pytest.approx(result.fun + lp.objective_constant, rel=1e-6)
    relaxed = milp(lp.c, constraints=LinearConstraint(lp.a, lp.row_lower, lp.row_upper),
                   bounds=Bounds(lp.col_lower, lp.col_upper))
    assert relaxed.fun < result.fun - 0.01


# ---------------------------------------------------------------- limits: nodes by default, never a crash

@pytest.fixture(scope="module")
def hard_day(demo):
    """A summer day on which any export is paid 0.40 CNY/kWh, above the valley price (so a battery may
    sell grid energy): binaries on every valley step, a near-symmetric MIP that needs many nodes."""
    park, loads = demo
    tariff = load_tariff(DEMO / "tariff.yaml")
    options = replace(plan_options(tariff), export_limited_to_pv=False)
    return day_inputs(loads, tariff, 2 * DAYS_PER_SEASON), options, plan_context(park, tariff)


@pytest.mark.parametrize("solver, max_nodes", [("highs", 0), ("highs", 1), ("highs", 20), ("pulp-highs", 1),
                                               ("pulp-cbc", 1)])
def test_a_tiny_node_limit_gives_the_fallback_or_a_realizable_incumbent_and_the_same_plan_twice(
        hard_day, solver, max_nodes):
    inputs, options, context = hard_day
    options = replace(options, mip_max_nodes=max_nodes)
    plans = [make_plan(inputs, InitialState(), options, context, solver=solver, with_baselines=False)
             for _ in range(2)]
    first, second = plans
    assert first.status in ("optimal", "node limit", "fallback"), first.status
    assert first.status == second.status
    pd.testing.assert_frame_equal(first.table, second.table)
    if first.status == "fallback":
        assert any("node limit" in line for line in first.diagnostic), first.diagnostic
        assert np.allclose(first.table["ice_tank.charge_kwth"], 0) and np.allclose(first.table["battery.charge_kw"], 0)
        return
    table = first.table
    assert mixed_steps(table, ice_chillers(context.assets)) == 0
    assert not ((table["grid_import_kw"] > TOLERANCE_KW) & (table["grid_export_kw"] > TOLERANCE_KW)).any()
    assert not ((table["battery.charge_kw"] > TOLERANCE_KW) & (table["battery.discharge_kw"] > TOLERANCE_KW)).any()
    if first.status == "node limit":
        assert any("node limit of" in note for note in first.notes), first.notes


def test_the_node_limit_binds_on_the_hard_day(hard_day):
    """Allowed 61 nodes (the realizability search's 60 LPs, then one node of HiGHS's MIP, which starts
    from no incumbent) the hard day stops at the limit with HiGHS's realizable incumbent, its gap
    recorded in the plan (not claimed optimal)."""
    inputs, options, context = hard_day
    plan = make_plan(inputs, InitialState(), replace(options, mip_max_nodes=61), context, solver="highs",
                     with_baselines=False)
    assert plan.status == "node limit"
    assert plan.solve.mip_gap is not None and plan.solve.mip_gap > options.mip_rel_gap


@pytest.mark.parametrize("solver", ["highs", "pulp-cbc"])
def test_a_tiny_time_limit_is_recorded_and_never_crashes(hard_day, solver):
    """The wall-clock limit, where asked for, ends in the fallback plan (no incumbent in time) or a
    realizable incumbent whose gap may be unknown (CBC reports none): the plan says which."""
    inputs, options, context = hard_day
    plan = make_plan(inputs, InitialState(), replace(options, mip_time_limit_s=0.001), context, solver=solver,
                     with_baselines=False)
    assert plan.status in ("optimal", "time limit", "node limit", "fallback")
    if plan.status == "fallback":
        assert plan.solve is not None and plan.solve.status in ("time limit", "node limit")
        assert any("limit" in line for line in plan.diagnostic)
    elif plan.status == "time limit":
        assert any("time limit of 0.001 s" in note for note in plan.notes)
