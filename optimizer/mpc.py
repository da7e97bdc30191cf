"""Rolling-horizon control and the closed-loop backtest on the park simulator.

Every ``replan_min`` minutes the controller reads the plant's state (battery
stored energy, ice inventory, the month's peak 15-minute import so far), plans
the next ``horizon_h`` hours from the latest forecasts, and applies the plan's
first steps as setpoints (battery power, ice charge/melt, chiller ice mode, PV
limit) until the next re-plan. Every plan is kept. The same loop runs each
baseline (its rule plan from the current state), so all strategies see the same
simulated park, weather and loads.

Forecasts in the backtest are the loads of a hold-storage run of the same
simulator (optimizer.park_inputs): a perfect forecast of the loads the plant
sees; the meter noise and the plant's own staging are not forecast. EV charging
is left to the chargers (sessions arrive at random and are not forecast).
Realized cost comes from the simulated grid meter: energy at the tariff price
each minute, export at the export price, and the demand charge on each calendar
month's highest 15-minute mean import.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable, Mapping

import numpy as np
import pandas as pd

from energy.tariff import Tariff
from optimizer.inputs import HorizonInputs, InitialState
from optimizer.model import DispatchAssets, PlanOptions
from optimizer.park_inputs import PLAN_STEP, hold_storage_run, park_horizon_inputs
from optimizer.plan import DispatchPlan, PlanContext, baseline_columns, make_plan
from optimizer.solve import SolverName
from optimizer.warm_start import WarmStart
from twin.assets import Battery, Chiller, IceTank, Meter, PVArray
from twin.park import Park
from twin.plant import CMD_AUTO, CMD_ICE
from twin.points import point_id
from twin.sim import Environment, ParkSimulator

OPTIMAL = "optimal"
BACKTEST_SOLVER: SolverName = "highs"
"""The backtest's re-plans go straight to HiGHS (the same matrix, the same search, the same optimum
as through PuLP): thousands of plans are only read for their setpoints, and making each one's PuLP
model would add about a third to its time."""
HOLD_STORAGE = "no_storage"
"""The baseline that holds all storage: the policy of the forecasts' simulator run."""


def plan_options(tariff: Tariff, **overrides) -> PlanOptions:
    """Plan options from the tariff (demand charge, its interval, CO2 factor, export limited to PV)."""
    return PlanOptions(demand_charge_cny_per_kw=tariff.demand_charge_cny_per_kw_month,
                       demand_interval_min=tariff.demand_interval_min, co2_t_per_mwh=tariff.co2_t_per_mwh,
                       export_limited_to_pv=tariff.export_limited_to_pv, **overrides)


def plan_context(park: Park, tariff: Tariff) -> PlanContext:
    return PlanContext(DispatchAssets.of_park(park), park.plant_schedule, park.site.timezone, tariff.period_names)


@dataclass
class RealizedCost:
    """What a strategy cost on the simulated meter, CNY, over the backtest."""

    energy_cny: float
    export_revenue_cny: float
    demand_charge_cny: float
    peak_kw: float
    import_kwh: float
    total_cny: float


@dataclass
class BacktestResult:
    costs: dict[str, RealizedCost]
    daily_cost_cny: dict[str, pd.Series]
    plans: list[tuple[datetime, DispatchPlan]] = field(default_factory=list)
    solve_times_s: list[float] = field(default_factory=list)
    """Build + solve time of each optimal re-plan, s."""
    workers: int = 1
    """Processes the strategies ran in."""

    def savings_cny(self, baseline: str) -> float:
        return self.costs[baseline].total_cny - self.costs[OPTIMAL].total_cny

    def savings_pct(self, baseline: str) -> float:
        """Savings as a share of the baseline's cost (how DOMAIN.md's published figures are put)."""
        return 100.0 * self.savings_cny(baseline) / self.costs[baseline].total_cny


def table_setpoints(park: Park, table: pd.DataFrame | Mapping[str, np.ndarray]) -> list[dict[str, float]]:
    """The setpoints each step of a plan table (or its columns, optimizer.plan.dispatch_columns) asks
    of the park, by point id, clipped to each asset's limits: battery power (kW, + discharge), ice
    charge and melt (kWth), ice-making chillers' mode, PV power limit (%). One dict per step, worked
    out a column at a time."""
    columns: dict[str, np.ndarray] = {}
    pv_arrays = [(b.id, a) for b, a in park.iter_assets() if isinstance(a, PVArray)]
    pv_rating_kw = sum(a.inverter_ac_kw for _, a in pv_arrays)
    column = lambda name: np.asarray(table[name], dtype=float)
    for building, asset in park.iter_assets():
        if isinstance(asset, Battery):
            columns[point_id(building.id, asset.id, "power_setpoint_kw")] = np.clip(
                column(f"{asset.id}.power_setpoint_kw"), -asset.charge_power_max_kw, asset.discharge_power_max_kw)
        elif isinstance(asset, IceTank):
            columns[point_id(building.id, asset.id, "charge_setpoint_kwth")] = np.clip(
                column(f"{asset.id}.charge_kwth"), 0.0, asset.charge_rate_max_kwth)
            columns[point_id(building.id, asset.id, "melt_setpoint_kwth")] = np.clip(
                column(f"{asset.id}.melt_kwth"), 0.0, asset.melt_rate_max_kwth)
        elif isinstance(asset, Chiller) and asset.makes_ice:
            columns[point_id(building.id, asset.id, "mode_cmd")] = np.where(
                column(f"{asset.id}.ice_kwth") > 1e-3, float(CMD_ICE), float(CMD_AUTO))
    curtailed = column("pv_curtailed_kw") > 1e-3
    share_pct = 100.0 * np.minimum(1.0, column("pv_used_kw") / pv_rating_kw) if pv_rating_kw else 100.0
    for building_id, array in pv_arrays:
        columns[point_id(building_id, array.id, "power_limit_pct")] = np.where(curtailed, share_pct, 100.0)
    by_point = {point: values.tolist() for point, values in columns.items()}
    return [{point: values[k] for point, values in by_point.items()} for k in range(len(curtailed))]


class ConditionsMemo:
    """An environment that works out each time index's conditions once and hands out the same frame
    after: a backtest simulates the same days once per strategy and once more for the forecasts,
    and the weather and PV model give the same conditions every time."""

    PREFETCH_DAYS = 30
    """Days of conditions per environment call in :meth:`prefetch_days` (a day alone spends most of
    its time in pvlib's per-call overhead: about 70 ms, against 16 ms a day in a 30-day call)."""

    def __init__(self, environment: Environment):
        self.environment = environment
        self._frames: dict[tuple[pd.Timestamp, pd.Timestamp, int], pd.DataFrame] = {}

    def conditions(self, index_utc: pd.DatetimeIndex) -> pd.DataFrame:
        key = (index_utc[0], index_utc[-1], len(index_utc))
        if key not in self._frames:
            self._frames[key] = self.environment.conditions(index_utc)
        return self._frames[key]

    def prefetch_days(self, start_utc: datetime, end_utc: datetime, step: timedelta) -> None:
        """Work out the conditions of every UTC day touching [start, end) at ``step``, as the
        simulator asks for them (twin.sim.ParkSimulator: a UTC day at a time), in calls of
        :data:`PREFETCH_DAYS` days. Row for row the same as asking a day at a time."""
        if timedelta(days=1) % step:
            return  # days do not split into whole steps: the simulator's day indexes do not line up
        first, last = pd.Timestamp(start_utc).floor("D"), pd.Timestamp(end_utc).ceil("D")
        steps_per_day = timedelta(days=1) // step
        for chunk_start in pd.date_range(first, last, freq=f"{self.PREFETCH_DAYS}D", inclusive="left"):
            chunk_end = min(chunk_start + pd.Timedelta(days=self.PREFETCH_DAYS), last)
            frame = self.environment.conditions(pd.date_range(chunk_start, chunk_end, freq=step, inclusive="left"))
            for day in range(len(frame) // steps_per_day):
                day_frame = frame.iloc[day * steps_per_day:(day + 1) * steps_per_day]
                self._frames[(day_frame.index[0], day_frame.index[-1], len(day_frame))] = day_frame


@dataclass(frozen=True)
class _ClosedLoopRun:
    """What one strategy's closed-loop run needs (sent whole to a worker process)."""

    park: Park
    environment: Environment
    forecasts: HorizonInputs
    options: PlanOptions
    context: PlanContext
    start_utc: datetime
    end_utc: datetime
    replan_min: int
    horizon_h: int
    solver: SolverName


def backtest(park: Park, environment: Environment, tariff: Tariff, start_utc: datetime, days: int,
             strategies: tuple[str, ...], replan_min: int = 60, horizon_h: int = 24,
             mip_time_limit_s: float | None = None, workers: int | None = None,
             solver: SolverName = BACKTEST_SOLVER,
             progress: Callable[[str, int], None] | None = None) -> BacktestResult:
    """Run each strategy closed-loop on the simulator over ``days`` days; realized costs per strategy.

    Each re-plan's MIP is bounded by the plan options' node budget (a realizable incumbent is used if
    it stops early); ``mip_time_limit_s`` adds a wall-clock bound (None: nodes only, so that the
    result does not depend on the machine's load).
    ``solver``: how the optimal re-plans are solved (optimizer.solve.SOLVERS; see :data:`BACKTEST_SOLVER`).
    ``workers``: processes the strategies run in (default: one per strategy, at most one per CPU;
    1 runs them here, one after the other). Each strategy's run is the same either way, except that
    a MIP stopped by a time limit, if one is given, keeps whatever incumbent it had reached by then. ``no_storage``
    is not run again: it holds storage, as the forecasts' run does, so its closed loop would repeat
    that run (same simulator, seed and setpoints, the same meter readings) and that run stands in."""
    end_utc = start_utc + timedelta(days=days)
    environment = ConditionsMemo(environment)
    environment.prefetch_days(start_utc, end_utc + timedelta(hours=horizon_h), timedelta(seconds=park.simulation.step_s))
    forecast_run = hold_storage_run(park, environment, start_utc, end_utc + timedelta(hours=horizon_h))
    prices = tariff.energy_price_cny_per_kwh(forecast_run.loads.index)
    forecasts = park_horizon_inputs(forecast_run.loads, prices, tariff.export_price_cny_per_kwh)
    run = _ClosedLoopRun(park, environment, forecasts, plan_options(tariff, mip_time_limit_s=mip_time_limit_s),
                         plan_context(park, tariff), start_utc, end_utc, replan_min, horizon_h, solver)
    simulated = tuple(s for s in strategies if s != HOLD_STORAGE)
    workers = min(len(simulated), (os.cpu_count() or 1) if workers is None else workers)
    if workers > 1:
        outcomes = _run_in_workers(run, simulated, workers, progress)
    else:
        outcomes = {s: _run_closed_loop(run, s, (lambda n, s=s: progress(s, n)) if progress else None)
                    for s in simulated}
    if HOLD_STORAGE in strategies:
        in_period = forecast_run.grid_kw.index < end_utc
        outcomes[HOLD_STORAGE] = (forecast_run.grid_kw[in_period], forecast_run.pv_kw[in_period], [], [])
        if progress:
            progress(HOLD_STORAGE, int(timedelta(days=days) / PLAN_STEP))
    costs, daily, plans, solve_times = {}, {}, [], []
    for strategy in strategies:
        meter_kw, pv_kw, kept, times = outcomes[strategy]
        if strategy == OPTIMAL:
            plans, solve_times = kept, times
        costs[strategy], daily[strategy] = realized_cost(meter_kw, pv_kw, tariff, park.site.timezone)
    return BacktestResult(costs, daily, plans, solve_times, workers)


def _run_in_worker(run: _ClosedLoopRun, strategy: str, progress_queue) -> tuple[str, tuple]:
    return strategy, _run_closed_loop(run, strategy, lambda n: progress_queue.put((strategy, n)))


def _run_in_workers(run: _ClosedLoopRun, strategies: tuple[str, ...], workers: int,
                    progress: Callable[[str, int], None] | None) -> dict:
    """The strategies' closed-loop runs in ``workers`` processes, progress relayed as they go (each
    run puts (strategy, plan steps done) on a managed queue handed to it). Processes are spawned,
    not forked: a fork would inherit HiGHS's threads in whatever state they are in."""
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager, context.Pool(workers) as pool:
        progress_queue = manager.Queue()
        pending = pool.starmap_async(_run_in_worker, [(run, s, progress_queue) for s in strategies])
        while True:
            finished = pending.ready()  # before the get: every put of a finished run is then on the queue
            try:
                strategy, steps = progress_queue.get(timeout=0.2)
            except queue.Empty:
                if finished:
                    break
                continue
            if progress:
                progress(strategy, steps)
        return dict(pending.get())


def _run_closed_loop(run: _ClosedLoopRun, strategy: str, progress: Callable[[int], None] | None):
    """One strategy on its own simulator: grid meter and PV power each simulator step (kW), the
    plans made (optimal only, with their build + solve times, s)."""
    park, forecasts, options, context = run.park, run.forecasts, run.options, run.context
    start_utc, end_utc, replan_min, horizon_h = run.start_utc, run.end_utc, run.replan_min, run.horizon_h
    simulator = ParkSimulator(park, run.environment, start_utc)
    warm_start = WarmStart()  # each re-plan starts from the last one's basis
    grid = next(point_id(b.id, a.id, "power_kw") for b, a in park.iter_assets()
                if isinstance(a, Meter) and a.measures == "grid")
    grid_col = simulator.point_ids.index(grid)
    pv_cols = [simulator.point_ids.index(point_id(b.id, a.id, "ac_power_kw")) for b, a in park.iter_assets()
               if isinstance(a, PVArray)]
    tank = next(iter(context.assets.ice_tanks), None)
    steps_per_plan_step = int(PLAN_STEP / simulator.step)
    horizon_steps = int(timedelta(hours=horizon_h) / PLAN_STEP)
    replan_steps = max(1, int(timedelta(minutes=replan_min) / PLAN_STEP))
    times, meter, pv = [], [], []
    plans, solve_times = [], []
    month_peak_kw, month = 0.0, None
    t = pd.Timestamp(start_utc)
    while t < end_utc:
        local_month = t.tz_convert(park.site.timezone).month
        if local_month != month:
            month, month_peak_kw = local_month, 0.0
        ice_kwhth, stored = simulator.storage_state()
        state = InitialState(stored, {tank.id: ice_kwhth} if tank else {}, month_peak_kw)
        position = forecasts.index.get_loc(t)
        horizon = HorizonInputs(forecasts.frame.iloc[position:position + horizon_steps])
        if strategy == OPTIMAL:
            plan = make_plan(horizon, state, options, context, solver=run.solver, with_baselines=False,
                             warm_start=warm_start)
            plans.append((t.to_pydatetime(), plan))
            if plan.solve is not None:
                solve_times.append(plan.solve.solve_time_s + plan.solve.build_time_s)
            table = plan.table.iloc[:replan_steps]
        else:
            # the rules are causal (each step follows from the steps before it), so the interval
            # acted on is laid out alone: the same setpoints as the whole horizon's first steps
            acted_on = HorizonInputs(horizon.frame.iloc[:replan_steps])
            table = baseline_columns(strategy, acted_on, state, options, context)
        for setpoints in table_setpoints(park, table):
            for point, value in setpoints.items():  # the protocol write path's place
                simulator.write_setpoint(point, value)
            interval = []
            for _ in range(steps_per_plan_step):
                out = simulator.advance()
                times.append(out.ts_utc)
                interval.append(out.values[grid_col])
                pv.append(sum(out.values[c] for c in pv_cols))
            meter.extend(interval)
            month_peak_kw = max(month_peak_kw, float(np.mean(interval)))
            t += PLAN_STEP
            if t >= end_utc:
                break
        if progress:
            progress(replan_steps)
    index = pd.DatetimeIndex(times)
    return pd.Series(meter, index=index), pd.Series(pv, index=index), plans, solve_times


def realized_cost(meter_kw: pd.Series, pv_kw: pd.Series, tariff: Tariff,
                  timezone: str) -> tuple[RealizedCost, pd.Series]:
    """Cost of a grid-meter power series (kW, + import) under the tariff, with the park's PV production
    (kW, same index) for a tariff that pays export only up to it; and energy cost per local day."""
    step_h = (meter_kw.index[1] - meter_kw.index[0]).total_seconds() / 3600.0
    imported = meter_kw.clip(lower=0.0)
    exported = (-meter_kw).clip(lower=0.0)
    price = tariff.energy_price_cny_per_kwh(meter_kw.index).to_numpy()
    energy = imported.to_numpy() * price * step_h
    paid = tariff.paid_export_kw(exported.to_numpy(), pv_kw.to_numpy())
    revenue = paid * tariff.export_price_cny_per_kwh * step_h
    demand = imported.resample(f"{tariff.demand_interval_min}min").mean()
    local_month = demand.index.tz_convert(timezone).strftime("%Y-%m")
    monthly_peak = demand.groupby(local_month).max()
    demand_cny = float(monthly_peak.sum() * tariff.demand_charge_cny_per_kw_month)
    daily = pd.Series(energy - revenue, index=meter_kw.index).groupby(
        meter_kw.index.tz_convert(timezone).date).sum()
    total = float(energy.sum() - revenue.sum() + demand_cny)
    return RealizedCost(float(energy.sum()), float(revenue.sum()), demand_cny, float(monthly_peak.max()),
                        float(imported.sum() * step_h), total), daily
