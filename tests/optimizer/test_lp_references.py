"""The dispatch LP against independent references: hand calculations, and the same problem assembled
loop by loop as matrices (reference_lp.py) solved by scipy's linprog and milp."""

from __future__ import annotations

import numpy as np
import pulp
import pytest
from optimizer_cases import context, demo_inputs, horizon
from reference_lp import reference_problem, solve_linprog, solve_milp

from optimizer.inputs import InitialState
from optimizer.model import DispatchAssets, PlanOptions, build_lp
from optimizer.plan import make_plan
from optimizer.solve import pulp_problem, solve
from twin.kinds import Battery, Chiller, IceTank


def battery(**overrides) -> Battery:
    fields = {"id": "battery", "energy_capacity_kwh": 100, "charge_power_max_kw": 50, "discharge_power_max_kw": 50,
                  "charge_efficiency": 0.9, "discharge_efficiency": 1.0, "soc_min_pct": 0, "soc_max_pct": 100,
                  "initial_soc_pct": 0}
    return Battery(**(fields | overrides))


def test_battery_arbitrage_by_hand():
    """Two hours at 0.2 then 1.0 CNY/kWh, 100 kW load in hour 2, battery 50 kW / eta_c 0.9, empty.

    By hand: charge 50 kWh (cost 10) -> 45 kWh stored -> discharge 45 kW in hour 2, import 55 kW
    (cost 55). Total 65 CNY; the battery ends empty as it started (no penalty)."""
    inputs = horizon(60, cooling_load_kwth=[0, 0], pv_available_kw=[0, 0], other_load_kw=[0, 100],
                     price_cny_per_kwh=[0.2, 1.0])
    assets = DispatchAssets((battery(),))
    plan = make_plan(inputs, InitialState(), PlanOptions(), context(assets))
    assert plan.status == "optimal"
    assert plan.costs.total_cny == pytest.approx(65.0, abs=1e-6)
    assert plan.table["battery.charge_kw"].tolist() == pytest.approx([50.0, 0.0], abs=1e-6)
    assert plan.table["battery.discharge_kw"].tolist() == pytest.approx([0.0, 45.0], abs=1e-6)
    assert plan.table["grid_import_kw"].tolist() == pytest.approx([50.0, 55.0], abs=1e-6)
    assert plan.baselines["no_storage"].total_cny == pytest.approx(100.0, abs=1e-6)
    assert plan.savings_cny["no_storage"] == pytest.approx(35.0, abs=1e-6)


def test_ice_shift_by_hand():
    """Cooling 400 kWth in hour 2 only; a chiller with direct COP 5 and ice COP 4, a lossless tank with
    effectiveness 1 and melt limit 300 kWth, starting empty; prices 0.2 then 1.0 CNY/kWh.

    By hand: make 300 kWh of ice in hour 1 (75 kW at 0.2 = 15 CNY), melt 300 and make 100 direct in
    hour 2 (20 kW at 1.0 = 20 CNY): 35 CNY, against 80 CNY all direct. Ending empty as it started."""
    inputs = horizon(60, cooling_load_kwth=[0, 400], pv_available_kw=[0, 0], other_load_kw=[0, 0],
                     price_cny_per_kwh=[0.2, 1.0])
    chiller = Chiller(id="chiller", cooling_capacity_kwth=500, cop_rated=5, ice_capacity_kwth=400, ice_cop_rated=4)
    tank = IceTank(id="tank", capacity_kwhth=1000, charge_rate_max_kwth=400, melt_rate_max_kwth=300,
                   standing_loss_pct_per_h=0, melt_effectiveness=1.0, initial_soc_pct=0)
    plan = make_plan(inputs, InitialState(), PlanOptions(), context(DispatchAssets((chiller, tank))))
    assert plan.costs.total_cny == pytest.approx(35.0, abs=1e-6)
    assert plan.table["tank.melt_kwth"].tolist() == pytest.approx([0.0, 300.0], abs=1e-6)
    assert plan.table["chiller.direct_kwth"].tolist() == pytest.approx([0.0, 100.0], abs=1e-6)
    assert plan.baselines["no_storage"].total_cny == pytest.approx(80.0, abs=1e-6)


# ---------------------------------------------------------------- a demo-like case against scipy

CHILLERS = (Chiller(id="dual", cooling_capacity_kwth=2000, cop_rated=5.6, ice_capacity_kwth=1400, ice_cop_rated=4.1),
            Chiller(id="base", cooling_capacity_kwth=1200, cop_rated=5.9))
TANK = IceTank(id="tank", capacity_kwhth=6000, charge_rate_max_kwth=1400, melt_rate_max_kwth=1500,
               standing_loss_pct_per_h=0.15, melt_effectiveness=0.95, initial_soc_pct=30)
BATTERIES = (Battery(id="bat_a", energy_capacity_kwh=800, charge_power_max_kw=400, discharge_power_max_kw=400,
                     initial_soc_pct=50),
             Battery(id="bat_b", energy_capacity_kwh=300, charge_power_max_kw=200, discharge_power_max_kw=150,
                     charge_efficiency=0.93, discharge_efficiency=0.96, soc_min_pct=20, soc_max_pct=95,
                     initial_soc_pct=40))
ASSETS = DispatchAssets((*CHILLERS, TANK, *BATTERIES))
PENALTY_BATTERY, PENALTY_ICE, DEMAND_RATE, PEAK_SO_FAR = 2.5, 0.6, 35.0, 900.0


def day_profile(steps: int, seed: int):
    rng = np.random.default_rng(seed)
    hour = np.arange(steps) * 24 / steps
    load = np.clip(2600 * np.sin((hour - 7) / 13 * np.pi), 150, None) + rng.uniform(0, 100, steps)
    pv = np.clip(700 * np.sin((hour - 6) / 12 * np.pi), 0, None)
    other = 600 + 500 * ((hour > 8) & (hour < 19)) + rng.uniform(0, 50, steps)
    price = np.where(hour < 8, 0.247, np.where((hour >= 10) & (hour < 12) | (hour >= 14) & (hour < 19), 1.105, 0.65))
    return load, pv, other, price


def reference(inputs, binaries: bool, peak_so_far: float = PEAK_SO_FAR, export_limited_to_pv: bool = False):
    chillers = [{"id": c.id, "cap": c.cooling_capacity_kwth, "cop": c.cop_rated, "ice_cap": c.ice_capacity_kwth,
                     "ice_cop": c.ice_cop_rated} for c in CHILLERS]
    tank = {"cap": TANK.capacity_kwhth, "charge_max": TANK.charge_rate_max_kwth, "melt_max": TANK.melt_rate_max_kwth,
                "loss_pct_h": TANK.standing_loss_pct_per_h, "eff": TANK.melt_effectiveness,
                "start": TANK.capacity_kwhth * TANK.initial_soc_pct / 100}
    batteries = [{"id": b.id, "e_min": b.energy_capacity_kwh * b.soc_min_pct / 100,
                      "e_max": b.energy_capacity_kwh * b.soc_max_pct / 100, "p_ch": b.charge_power_max_kw,
                      "p_dis": b.discharge_power_max_kw, "eta_c": b.charge_efficiency, "eta_d": b.discharge_efficiency,
                      "start": b.energy_capacity_kwh * b.initial_soc_pct / 100} for b in BATTERIES]
    return reference_problem(step_h=inputs.step_h, load_kwth=inputs.column("cooling_load_kwth"),
                             other_kw=inputs.column("other_load_kw"), pv_kw=inputs.column("pv_available_kw"),
                             price=inputs.column("price_cny_per_kwh"),
                             export_price=inputs.column("export_price_cny_per_kwh"), chillers=chillers, tank=tank,
                             batteries=batteries, demand_rate=DEMAND_RATE, peak_so_far=peak_so_far,
                             battery_penalty=PENALTY_BATTERY, ice_penalty=PENALTY_ICE, binaries=binaries,
                             export_limited_to_pv=export_limited_to_pv)


def options(**overrides) -> PlanOptions:
    return PlanOptions(demand_charge_cny_per_kw=DEMAND_RATE, battery_terminal_penalty_cny_per_kwh=PENALTY_BATTERY,
                       ice_terminal_penalty_cny_per_kwhth=PENALTY_ICE, **overrides)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_lp_matches_linprog_on_matrices_assembled_independently(seed):
    """The LP alone (no binaries: realizability "never", solved once) against linprog on the same
    problem; and the plan, whose chiller-mode binaries make it cost a little more than that LP."""
    load, pv, other, price = day_profile(96, seed)
    inputs = horizon(15, cooling_load_kwth=load, pv_available_kw=pv, other_load_kw=other, price_cny_per_kwh=price,
                     export_price_cny_per_kwh=np.full(96, 0.2))
    state = InitialState(peak_so_far_kw=PEAK_SO_FAR)
    lp = build_lp(inputs, ASSETS, state, options(realizability="never"))
    assert not lp.has_integers
    expected = solve_linprog(reference(inputs, binaries=False))
    assert solve(lp).objective_cny == pytest.approx(expected, rel=1e-6)
    plan = make_plan(inputs, state, options(), context(ASSETS))
    assert plan.status == "optimal"
    assert expected * (1 - 1e-9) <= plan.solve.objective_cny <= expected * (1 + 1e-4)
    # the cost breakdown adds up to the objective (demand counted above the peak already billed)
    assert plan.costs.total_cny + DEMAND_RATE * PEAK_SO_FAR == pytest.approx(plan.solve.objective_cny, rel=1e-9)


def test_every_solver_path_agrees_with_milp():
    """Every solver path reaches the optimum of the independent MILP (binaries on every step, chiller
    modes among them), which here lies above the LP optimum: the LP would mix a chiller's modes."""
    load, pv, other, price = day_profile(24, 4)
    inputs = horizon(60, cooling_load_kwth=load, pv_available_kw=pv, other_load_kw=other, price_cny_per_kwh=price)
    expected, _, _ = solve_milp(reference(inputs, binaries=True))
    assert solve_linprog(reference(inputs, binaries=False)) < expected * (1 - 1e-6)
    default = make_plan(inputs, InitialState(peak_so_far_kw=PEAK_SO_FAR), options(), context(ASSETS))
    assert default.solve.solver == "pulp-highs"  # HiGHS through PuLP unless asked otherwise
    for solver in ("pulp-highs", "pulp-cbc", "highs"):
        plan = make_plan(inputs, InitialState(peak_so_far_kw=PEAK_SO_FAR), options(), context(ASSETS), solver=solver)
        assert plan.solve.solver == solver
        assert plan.solve.objective_cny == pytest.approx(expected, rel=1e-6)
        assert simultaneous(plan.table, "dual.direct_kwth", "dual.ice_kwth") == 0


def test_pulp_model_is_the_matrix_it_was_made_from():
    """The PuLP model is the matrix: solved by pulp.HiGHS it gives the optimum highspy gives on the
    matrix itself, its variables and constraints carry the model's names (PuLP writes ``_`` for
    ``[]-``), and PuLP's variables carry the solution."""
    load, pv, other, price = day_profile(24, 6)
    inputs = horizon(60, cooling_load_kwth=load, pv_available_kw=pv, other_load_kw=other, price_cny_per_kwh=price)
    lp = build_lp(inputs, ASSETS, InitialState(peak_so_far_kw=PEAK_SO_FAR), options())
    problem, variables = pulp_problem(lp)
    assert variables[lp.blocks["battery_charge_kw"].index[0, 2]].name == "bat_a.charge_kw_2026_06_30T18:00Z_"
    assert problem.get_constraint_by_name("electric_balance_2026_06_30T16:00Z_") is not None
    problem.solve(pulp.HiGHS(msg=False, gapRel=1e-9))
    stock = lp.objective(np.array([v.varValue for v in variables]))
    assert solve(lp, "highs").objective_cny == pytest.approx(stock, rel=1e-6)
    assert pulp.value(problem.objective) == pytest.approx(stock, rel=1e-6)


def test_time_limited_mip_through_pulp_keeps_its_incumbent():
    """The demo day with export paid above the valley price for any export (the battery may sell stored
    grid energy) needs binaries on all 32 valley steps and does not reach gap 1e-6 in a second: PuLP's
    HiGHS run hands back the realizable incumbent with its gap."""
    park, tariff, inputs = demo_inputs(1)
    lp = build_lp(inputs, DispatchAssets.of_park(park), InitialState(),
                  PlanOptions(demand_charge_cny_per_kw=tariff.demand_charge_cny_per_kw_month))
    result = solve(lp, "pulp-highs", 1e-6, mip_time_limit_s=1.0)
    assert lp.has_integers and result.usable
    assert result.status in ("time limit", "optimal")
    assert result.mip_gap is not None and (result.optimal or result.mip_gap > 1e-6)
    assert lp.violation(result.x) < 1e-5
    imports, exports = lp.values(result.x, "grid_import_kw"), lp.values(result.x, "grid_export_kw")
    assert not np.any((imports > 1e-6) & (exports > 1e-6))


def simultaneous(table, first: str, second: str) -> int:
    return int(((table[first] > 1e-6) & (table[second] > 1e-6)).sum())


@pytest.mark.parametrize("case", ["export_above_valley", "negative_prices"])
def test_realizable_plan_matches_milp_reference(case):
    """Export paid above the valley import price, or negative prices in some hours: an LP would loop
    energy (import+export, charge+discharge, make+melt). The plan must not, and cost what an
    independent MILP with binaries on every step costs."""
    load, pv, other, price = day_profile(12, 5)
    export = np.full(12, 0.3)
    if case == "export_above_valley":
        other = 0.2 * other  # small enough for PV and the batteries to cover it, so the park can export
    if case == "negative_prices":
        price = price.copy()
        price[[1, 2, 6]] = [-0.2, -0.35, -0.1]
        export = np.full(12, 0.05)
    inputs = horizon(120, cooling_load_kwth=load, pv_available_kw=pv, other_load_kw=other, price_cny_per_kwh=price,
                     export_price_cny_per_kwh=export)
    plan = make_plan(inputs, InitialState(peak_so_far_kw=PEAK_SO_FAR), options(), context(ASSETS))
    assert plan.status == "optimal"
    assert plan.solve.binaries and any("binaries added" in note for note in plan.notes)
    table = plan.table
    assert simultaneous(table, "grid_import_kw", "grid_export_kw") == 0
    for b in BATTERIES:
        assert simultaneous(table, f"{b.id}.charge_kw", f"{b.id}.discharge_kw") == 0
    assert simultaneous(table, "tank.charge_kwth", "tank.melt_kwth") == 0
    expected, _, _ = solve_milp(reference(inputs, binaries=True))
    assert plan.solve.objective_cny == pytest.approx(expected, rel=1e-6)
    if case == "export_above_valley":
        # the pure LP would indeed have cheated (import+export loop): its optimum is below the realizable one
        assert solve_linprog(reference(inputs, binaries=False)) < expected - 1.0


def test_no_binaries_where_the_park_cannot_export():
    """Export paid above the valley price, but the other loads exceed PV plus every battery discharging
    in full in every step: the park imports all the time, so export is bounded to 0 and the plan is a
    pure LP. It costs what the independent MILP (binaries on every step, no such bound) costs."""
    load, pv, other, price = day_profile(12, 5)
    other = other + 700.0
    assert np.all(other > pv + sum(b.discharge_power_max_kw for b in BATTERIES))
    inputs = horizon(120, cooling_load_kwth=load, pv_available_kw=pv, other_load_kw=other, price_cny_per_kwh=price,
                     export_price_cny_per_kwh=np.full(12, 0.3))
    plan = make_plan(inputs, InitialState(peak_so_far_kw=PEAK_SO_FAR), options(), context(ASSETS))
    assert plan.status == "optimal"
    assert not any("export" in reason for reason in plan.solve.binaries_reasons)  # chiller modes only
    assert simultaneous(plan.table, "grid_import_kw", "grid_export_kw") == 0
    expected, _, _ = solve_milp(reference(inputs, binaries=True))
    assert plan.solve.objective_cny == pytest.approx(expected, rel=1e-6)


def test_export_limited_to_pv_matches_milp_reference():
    """Export paid above every import price, but only for PV surplus: no step exports more than the PV it
    uses, binaries go only on the steps where PV could be exported at a profit, and the plan costs what
    the independent MILP (binaries on every step, the same export limit) costs."""
    load, pv, other, price = day_profile(12, 7)
    other = 0.2 * other  # small enough for the PV, or the batteries, to cover it and export the rest
    export = np.full(12, 1.2)
    inputs = horizon(120, cooling_load_kwth=load, pv_available_kw=pv, other_load_kw=other, price_cny_per_kwh=price,
                     export_price_cny_per_kwh=export)
    plan = make_plan(inputs, InitialState(peak_so_far_kw=PEAK_SO_FAR), options(export_limited_to_pv=True),
                     context(ASSETS))
    assert plan.status == "optimal"
    table = plan.table
    assert (table["grid_export_kw"] <= table["pv_used_kw"] + 1e-6).all()
    assert simultaneous(table, "grid_import_kw", "grid_export_kw") == 0
    loop_steps = int(((export > price) & (pv > 0)).sum())
    assert 0 < loop_steps < 12  # the sunny hours only
    assert any(f"export price above import price in {loop_steps} step(s) where the park can export" in note
               for note in plan.notes)
    expected, _, _ = solve_milp(reference(inputs, binaries=True, export_limited_to_pv=True))
    assert plan.solve.objective_cny == pytest.approx(expected, rel=1e-6)
    # the limit binds: allowed to sell stored energy too, the same park would earn more
    unlimited, _, _ = solve_milp(reference(inputs, binaries=True))
    assert unlimited < expected - 1.0


def test_realizability_search_branches_to_the_milp_optimum():
    """The branch and bound on the realizability binaries (optimizer.branch_and_bound), run on its
    own, with PV surplus paid above every import price: the relaxation imports and exports at once,
    so it must branch; it finishes optimal, realizable, at the cost of the independent MILP
    (scipy.optimize.milp, binaries on every step) within 1e-6 relative."""
    from optimizer.branch_and_bound import pairs_only, search_realizable
    from optimizer.solve import new_highs, pass_matrix

    load, pv, other, price = day_profile(12, 7)
    inputs = horizon(120, cooling_load_kwth=load, pv_available_kw=pv, other_load_kw=0.2 * other,
                     price_cny_per_kwh=price, export_price_cny_per_kwh=np.full(12, 1.2))
    lp = build_lp(inputs, ASSETS, InitialState(peak_so_far_kw=PEAK_SO_FAR), options(export_limited_to_pv=True))
    assert pairs_only(lp)
    highs = new_highs()
    pass_matrix(highs, lp, integrality=False)
    outcome = search_realizable(highs, lp, 1e-6, None)
    assert outcome.status == "optimal" and outcome.mip_gap == 0.0 and outcome.nodes > 1
    x = np.asarray(highs.getSolution().col_value)
    assert lp.violation(x) < 1e-6
    for first, second in lp.binary_pairs.values():
        assert not np.any((x[first] > 1e-6) & (x[second] > 1e-6))
    expected, _, _ = solve_milp(reference(inputs, binaries=True, export_limited_to_pv=True))
    assert lp.objective(x) == pytest.approx(expected, rel=1e-6)


def test_every_column_and_row_has_a_unique_readable_name():
    """Names say asset, quantity and step start (UTC): one per column and row, none twice, binaries
    and pair rows included."""
    load, pv, other, price = day_profile(12, 7)
    inputs = horizon(120, cooling_load_kwth=load, pv_available_kw=pv, other_load_kw=0.2 * other,
                     price_cny_per_kwh=price, export_price_cny_per_kwh=np.full(12, 1.2))
    lp = build_lp(inputs, ASSETS, InitialState(peak_so_far_kw=PEAK_SO_FAR), options(realizability="always"))
    columns, rows = lp.column_names, lp.row_names
    assert len(columns) == lp.a.shape[1] and len(set(columns)) == len(columns)
    assert len(rows) == lp.a.shape[0] and len(set(rows)) == len(rows)
    assert columns[lp.blocks["battery_stored_kwh"].index[1, 12]] == "bat_b.stored_kwh[2026-07-01T16:00Z]"
    assert columns[lp.blocks["u_grid_import"].index[3]] == "u_import[2026-06-30T22:00Z]"
    assert columns[lp.blocks["peak_kw"].index[0]] == "peak_kw"
    assert rows[lp.electric_rows[0]] == "electric_balance[2026-06-30T16:00Z]"
    assert rows[lp.row_groups["battery_terminal"][0]] == "bat_a.terminal"
    assert "dual.u_ice_mode.second[2026-06-30T18:00Z]" in rows
