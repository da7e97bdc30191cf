"""Dispatch plans: solve, check, lay out per step, price, compare with the baselines, export.

A :class:`DispatchPlan` holds the per-step table (every decision and state with
its unit in the column name), the cost breakdown, the baselines' costs on the same
inputs, the solve report, notes (binaries added, ...) and, when the optimum could
not be had, the diagnostic that says why and the safe fallback plan in its place.
Columns are documented in README.md ("Dispatch plans") and stay stable.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from energy.tariff import Tariff
from optimizer.baselines import BASELINES, baseline_dispatch, hold_storage_dispatch
from optimizer.blocks import blocks
from optimizer.diagnostics import infeasibility_diagnostic, input_problems
from optimizer.inputs import HorizonInputs, InitialState
from optimizer.linear_program import LinearProgram
from optimizer.lp_builder import BinarySteps, flowing_together
from optimizer.model import DispatchAssets, PlanOptions, build_lp
from optimizer.solve import DEFAULT_SOLVER, LIMITS, SolveResult, SolverName, solve
from optimizer.warm_start import WarmStart
from twin.kinds import kind_name
from twin.park import Park, PlantSchedule


@dataclass
class CostBreakdown:
    """What a dispatch costs over the horizon, CNY (tariff currency). Demand charge is on the peak above
    the one already billed; total = energy - export revenue + demand + wear + CO2 + penalties."""

    energy_cny_by_period: dict[str, float]
    energy_cny: float
    export_revenue_cny: float
    demand_charge_cny: float
    peak_kw: float
    wear_cny: float
    co2_cny: float
    co2_t: float
    penalty_cny: float
    import_kwh: float
    export_kwh: float
    total_cny: float


@dataclass
class SolveReport:
    status: str
    solver: str
    objective_cny: float | None
    solve_time_s: float
    build_time_s: float
    mip_gap: float | None
    binaries: bool
    binaries_reasons: list[str]


@dataclass
class DispatchPlan:
    """A plan over one horizon. ``status``: "optimal"; "time limit" (realizable MIP incumbent, gap in
    ``solve``); "fallback" (``diagnostic`` says why); or a baseline's name for a baseline plan."""

    status: str
    table: pd.DataFrame
    costs: CostBreakdown
    baselines: dict[str, CostBreakdown]
    solve: SolveReport | None
    notes: list[str] = field(default_factory=list)
    diagnostic: list[str] = field(default_factory=list)

    @property
    def savings_cny(self) -> dict[str, float]:
        """Baseline cost minus plan cost, per baseline (same inputs, same period)."""
        return {name: cost.total_cny - self.costs.total_cny for name, cost in self.baselines.items()}

    def to_csv(self, path: str | Path) -> None:
        self.table.to_csv(path, index=False, float_format="%.6g")

    def to_json(self) -> str:
        """Summary, costs, savings, solve report and the per-step table as records."""
        records = self.table.assign(ts_utc=self.table["ts_utc"].astype(str),
                                    ts_local=self.table["ts_local"].astype(str)).to_dict(orient="records")
        return json.dumps({
            "status": self.status,
            "diagnostic": self.diagnostic,
            "notes": self.notes,
            "solve": asdict(self.solve) if self.solve else None,
            "costs": asdict(self.costs),
            "baselines": {name: asdict(cost) for name, cost in self.baselines.items()},
            "savings_cny": self.savings_cny,
            "steps": records,
        }, indent=1, default=float)


@dataclass(frozen=True)
class PlanContext:
    """What a plan needs beside forecasts and state: assets, plant schedule, tariff periods and time zone."""

    assets: DispatchAssets
    schedule: PlantSchedule
    timezone: str
    period_names: Callable[[pd.DatetimeIndex], pd.Series]
    """Tariff period name at each UTC timestamp (energy.tariff.Tariff.period_names)."""


def make_plan(inputs: HorizonInputs, state: InitialState, options: PlanOptions, context: PlanContext,
              solver: SolverName = DEFAULT_SOLVER, with_baselines: bool = True,
              warm_start: WarmStart | None = None) -> DispatchPlan:
    """Solve the dispatch LP and build the plan; on bad inputs or a failed solve, the fallback plan.
    ``warm_start``: the basis a sequence of plans hands on (optimizer.warm_start; a closed loop's).

    A solution with the flows of a pair together in some steps (import and export, charge and
    discharge, a chiller making ice and chilled water) is re-solved with binaries on those steps,
    and on the steps of every earlier round, until none is left (:func:`realizable_solve`)."""
    problems = input_problems(inputs, context.assets, state)
    lp = build_lp(inputs, context.assets, state, options)
    if problems:
        return _fallback(lp, inputs, state, options, context, problems, None)
    lp, result, notes = realizable_solve(lp, inputs, state, options, context.assets, solver, warm_start)
    report = SolveReport(result.status, result.solver, result.objective_cny, result.solve_time_s,
                         result.build_time_s, result.mip_gap, lp.has_integers, lp.binaries_reasons)
    x = result.x
    if x is None:  # no usable solution
        diagnostic = (limit_diagnostic(result.status, options) if result.status in LIMITS
                      else infeasibility_diagnostic(inputs, context.assets, state, result.status))
        return _fallback(lp, inputs, state, options, context, diagnostic, report)
    if lp.has_integers:
        notes.append("binaries added for realizability: " + "; ".join(lp.binaries_reasons))
    if not result.optimal:
        notes.append(limit_note(result, options))
    table = dispatch_table(lp, x, inputs, context)
    costs = cost_breakdown(lp, x, table, options, state)
    baselines = _baselines(lp, inputs, options, state, context) if with_baselines else {}
    return DispatchPlan("optimal" if result.optimal else result.status, table, costs, baselines, report, notes)


def baseline_plan(name: str, inputs: HorizonInputs, state: InitialState, options: PlanOptions,
                  context: PlanContext) -> DispatchPlan:
    """The plan baseline ``name`` (optimizer.baselines.BASELINES) makes on these inputs."""
    lp, x = _baseline(name, inputs, state, options, context)
    table = dispatch_table(lp, x, inputs, context)
    return DispatchPlan(name, table, cost_breakdown(lp, x, table, options, state), {}, None)


def baseline_columns(name: str, inputs: HorizonInputs, state: InitialState, options: PlanOptions,
                     context: PlanContext) -> dict[str, np.ndarray]:
    """The decision and state columns of :func:`baseline_plan`'s table, not priced and without the
    time and period columns (:func:`dispatch_columns`): what a closed loop needs."""
    return dispatch_columns(*_baseline(name, inputs, state, options, context), inputs)


def _baseline(name: str, inputs: HorizonInputs, state: InitialState, options: PlanOptions,
              context: PlanContext) -> tuple[LinearProgram, np.ndarray]:
    lp = build_lp(inputs, context.assets, state, options)
    return lp, baseline_dispatch(name, lp, inputs, context.assets, context.schedule, context.timezone)


def _fallback(lp: LinearProgram, inputs: HorizonInputs, state: InitialState, options: PlanOptions,
              context: PlanContext, diagnostic: list[str], report: SolveReport | None) -> DispatchPlan:
    """Storage holds, chillers meet the load directly (cooling they cannot meet is shown as unmet)."""
    x = hold_storage_dispatch(lp, inputs, context.assets, context.schedule, context.timezone)
    table = dispatch_table(lp, x, inputs, context)
    notes = ["fallback plan: storage holds, chillers meet the load directly, PV used in full"]
    return DispatchPlan("fallback", table, cost_breakdown(lp, x, table, options, state), {}, report, notes, diagnostic)


def _baselines(lp: LinearProgram, inputs: HorizonInputs, options: PlanOptions, state: InitialState,
               context: PlanContext) -> dict[str, CostBreakdown]:
    out = {}
    for name in BASELINES:
        x = baseline_dispatch(name, lp, inputs, context.assets, context.schedule, context.timezone)
        out[name] = cost_breakdown(lp, x, dispatch_table(lp, x, inputs, context), options, state)
    return out


MAX_REALIZABILITY_ROUNDS = 3
"""Solves of :func:`realizable_solve` with binaries only where earlier solves mixed flows; the round
after them puts binaries on every step, where no solution can mix them."""


def realizable_solve(lp: LinearProgram, inputs: HorizonInputs, state: InitialState, options: PlanOptions,
                     assets: DispatchAssets, solver: SolverName = DEFAULT_SOLVER,
                     warm_start: WarmStart | None = None) -> tuple[LinearProgram, SolveResult, list[str]]:
    """Solve ``lp``; while the solution has the flows of a pair together in some steps
    (:func:`simultaneous_steps`), re-solve with binaries on those steps and the earlier rounds'.

    A restriction of the binaries to some steps is a relaxation of the model with binaries on every
    step, so a solution of it with no mixed step is optimal (to the gap) for that model too. After
    :data:`MAX_REALIZABILITY_ROUNDS` solves the next one has binaries on every step; a solution that
    mixes flows even so is not used (status "unrealizable", no solution). Returns the model solved
    last, its result and notes on the rounds."""
    result = solve(lp, solver, options.mip_rel_gap, options.mip_time_limit_s, warm_start, options.mip_max_nodes)
    found: BinarySteps | None = None
    notes: list[str] = []
    for round_ in range(1, MAX_REALIZABILITY_ROUNDS + 2):
        if result.x is None:  # no usable solution
            break
        mixed = simultaneous_steps(lp, result.x)
        if not mixed.any:
            break
        if round_ > MAX_REALIZABILITY_ROUNDS:
            notes.append(f"solve {round_} had simultaneous flows ({mixed.describe()}) with binaries on every step")
            result = SolveResult("unrealizable", result.solver, None, None, result.solve_time_s,
                                 result.build_time_s, None)
            break
        if round_ == MAX_REALIZABILITY_ROUNDS:
            every = np.ones(inputs.steps, bool)
            found = BinarySteps(every, every, every, ((f"binaries on every step after {round_} solves with "
                                                      f"simultaneous flows"),))
            where = "every step"
        else:
            where = "those steps" + (" and the earlier solves'" if found is not None else "")
            found = mixed if found is None else found.union(mixed)
        notes.append(f"solve {round_} had simultaneous flows ({mixed.describe()}); re-solved with binaries on {where}")
        lp = build_lp(inputs, assets, state, options, extra_binaries=found)
        result = solve(lp, solver, options.mip_rel_gap, options.mip_time_limit_s, None, options.mip_max_nodes)
    return lp, result, notes


def simultaneous_steps(lp: LinearProgram, x: np.ndarray) -> BinarySteps:
    """Steps where import and export, or two flows a block keeps apart (:meth:`KindBlock.simultaneous`: charge
    and discharge, a chiller's ice making and chilled water), are both flowing
    (:data:`optimizer.lp_builder.SIMULTANEOUS_TOLERANCE_KW`)."""
    T = len(lp.blocks["grid_import_kw"].index)
    grid = flowing_together(lp.values(x, "grid_import_kw"), lp.values(x, "grid_export_kw"), T)
    found = BinarySteps(grid, np.zeros(T, bool), np.zeros(T, bool), ())
    for block in lp.kind_blocks:
        found = found.union(block.simultaneous(x, T))
    return BinarySteps(found.grid, found.storage, found.chiller,
                       ("simultaneous flows in a solution",) if found.any else ())


def limit_note(result: SolveResult, options: PlanOptions) -> str:
    """What a plan from a MIP incumbent stopped by its limit says about it."""
    limit = (f"time limit of {options.mip_time_limit_s:g} s" if result.status == "time limit"
             else f"node limit of {options.mip_max_nodes} nodes")
    if result.mip_gap is None:  # CBC reports none
        return f"MIP stopped at its {limit}, the gap it reached unknown; the plan is realizable"
    return (f"MIP stopped at its {limit} with relative gap {result.mip_gap:.2e} (target {options.mip_rel_gap:g}); "
            f"the plan is realizable, its cost within that gap of the optimum")


def limit_diagnostic(status: str, options: PlanOptions) -> list[str]:
    """Why a MIP stopped by its limit without a realizable incumbent gives the fallback plan."""
    limit = (f"time limit ({options.mip_time_limit_s:g} s)" if status == "time limit"
             else f"node limit ({options.mip_max_nodes} nodes)")
    return [f"solver status: {status}",
            (f"the MIP search reached its {limit} before it found a realizable plan; a larger "
            f"mip_max_nodes (or mip_time_limit_s) lets it search further")]


def dispatch_table(lp: LinearProgram, x: np.ndarray, inputs: HorizonInputs, context: PlanContext) -> pd.DataFrame:
    """Per-step table; columns documented in README.md. States (inventory, stored) are at the step's start."""
    return pd.DataFrame({"ts_utc": inputs.index, "ts_local": inputs.index.tz_convert(context.timezone),
                         "period": np.asarray(context.period_names(inputs.index)),
                         **dispatch_columns(lp, x, inputs)})


def dispatch_columns(lp: LinearProgram, x: np.ndarray, inputs: HorizonInputs) -> dict[str, np.ndarray]:
    """The columns of :func:`dispatch_table` after ``ts_utc``, ``ts_local`` and ``period``, in order."""
    T = inputs.steps
    v = functools.partial(lp.values, x)
    columns: dict[str, np.ndarray] = {
        "price_cny_per_kwh": inputs.column("price_cny_per_kwh"),
        "export_price_cny_per_kwh": inputs.column("export_price_cny_per_kwh"),
        "cooling_load_kwth": inputs.column("cooling_load_kwth"),
        "other_load_kw": inputs.column("other_load_kw"),
        "pv_available_kw": inputs.column("pv_available_kw"),
        "pv_used_kw": v("pv_used_kw"),
        "pv_curtailed_kw": inputs.column("pv_available_kw") - v("pv_used_kw"),
        "grid_import_kw": v("grid_import_kw"),
        "grid_export_kw": v("grid_export_kw"),
    }
    for block in lp.kind_blocks:
        columns.update(block.table_columns(x, T))
    columns["step_cost_cny"] = (lp.c[lp.blocks["grid_import_kw"].index] * v("grid_import_kw")
                                + lp.c[lp.blocks["grid_export_kw"].index] * v("grid_export_kw"))
    return columns


def stored_columns(park: Park) -> dict[str, str]:
    """The plan table's column of each storage asset's stored level, ``<asset id>.<name>`` with the name its kind's
    LP block gives those columns (optimizer.blocks.base.KindBlock.stored_column), by asset id in park order; an
    asset of a kind without such a block is left out."""
    names = {each.kind: each.stored_column for each in blocks() if each.stored_column is not None}
    return {asset.id: f"{asset.id}.{names[kind]}" for _, asset in park.iter_assets()
            if (kind := kind_name(type(asset))) in names}


def cost_breakdown(lp: LinearProgram, x: np.ndarray, table: pd.DataFrame, options: PlanOptions,
                   state: InitialState) -> CostBreakdown:
    """Price a dispatch: energy by tariff period, export revenue, demand increment, wear, CO2, penalties."""
    dt = lp.step_h
    import_kwh = table["grid_import_kw"].to_numpy() * dt
    export_kwh = table["grid_export_kw"].to_numpy() * dt
    energy_by_period = (pd.Series(import_kwh * table["price_cny_per_kwh"].to_numpy())
                        .groupby(table["period"].to_numpy()).sum())
    energy = float(energy_by_period.sum())
    revenue = float((export_kwh * table["export_price_cny_per_kwh"].to_numpy()).sum())
    peak = float(x[lp.blocks["peak_kw"].index][0])
    demand = options.demand_charge_cny_per_kw * max(0.0, peak - state.peak_so_far_kw)
    throughput = lp.values(x, "battery_charge_kw").sum() + lp.values(x, "battery_discharge_kw").sum()
    wear = options.battery_wear_cny_per_kwh * float(throughput) * dt
    co2_t = float(import_kwh.sum()) * options.co2_t_per_mwh / 1000.0
    co2 = co2_t * options.co2_price_cny_per_t
    penalty = float(sum(lp.c[slack] @ x[slack] for slack in lp.soft_rows.values()))
    total = energy - revenue + demand + wear + co2 + penalty
    return CostBreakdown({str(k): float(v) for k, v in energy_by_period.items()}, energy, revenue, demand, peak,
                         wear, co2, co2_t, penalty, float(import_kwh.sum()), float(export_kwh.sum()), total)


def plan_options(tariff: Tariff, **overrides: Any) -> PlanOptions:
    """Plan options from the tariff (demand charge, its interval, CO2 factor, export limited to PV);
    ``overrides`` are further fields of :class:`PlanOptions`, each of its own type."""
    return PlanOptions(demand_charge_cny_per_kw=tariff.demand_charge_cny_per_kw_month,
                       demand_interval_min=tariff.demand_interval_min, co2_t_per_mwh=tariff.co2_t_per_mwh,
                       export_limited_to_pv=tariff.export_limited_to_pv, **overrides)


def plan_context(park: Park, tariff: Tariff) -> PlanContext:
    return PlanContext(DispatchAssets.of_park(park), park.plant_schedule, park.site.timezone, tariff.period_names)
