"""The closed-loop backtest: each strategy's controller operating its own simulated park.

Every strategy runs :class:`optimizer.controller.Controller`, the class that
operates a live park, against a :class:`twin.field.SimulatedField` (the park
simulator), faster than real time: every control step the controller reads the
field's state, re-plans when due and writes the step's setpoints, and the field
simulates the step. All strategies see the same simulated park, weather and
loads.

Forecasts (``forecast``):

- ``history`` (the default, as in operation): energy.forecast.HistoryForecaster,
  learned from the park's own measured loads (a warm-up of
  :data:`WARMUP_DAYS` days on the plant's own schedule before the first day,
  then what the field measured during the backtest) and the park's weather
  forecast source;
- ``perfect``: the loads of a hold-storage run of the same simulator
  (optimizer.park_inputs.PerfectForecaster); the cost gap to ``history`` is the
  value of perfect information.

EV charging is left to the chargers. Realized cost comes from the simulated grid
meter: energy at the tariff price each minute, export at the export price, and
the demand charge on each calendar month's highest demand-interval mean import.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import queue
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import cast

import pandas as pd

from energy.tariff import Tariff
from optimizer.controller import OPTIMAL, Controller, TariffPrices
from optimizer.model import PlanOptions
from optimizer.park_inputs import PLAN_STEP, PerfectForecaster, hold_storage_run
from optimizer.plan import DispatchPlan, PlanContext, plan_context, plan_options
from optimizer.ports import Forecaster
from optimizer.solve import SolverName
from twin.field import SimulatedField
from twin.park import Park
from twin.sim import Environment, ParkSimulator

BACKTEST_SOLVER: SolverName = "highs"
"""The backtest's re-plans go straight to HiGHS (the same matrix, the same search, the same optimum
as through PuLP): thousands of plans are only read for their setpoints, and making each one's PuLP
model would add about a third to its time."""
HOLD_STORAGE = "no_storage"
"""The baseline that holds all storage: the policy of the forecasts' simulator run."""


@dataclass
class RealizedCost:
    """What a strategy cost on the simulated meter, CNY, over the backtest."""

    energy_cny: float
    export_revenue_cny: float
    demand_charge_cny: float
    peak_kw: float
    import_kwh: float
    total_cny: float
    monthly_peak_kw: dict[str, float] = field(default_factory=dict)
    """Billed peak (highest demand-interval mean import, kW) of each local calendar month, "YYYY-MM"."""


@dataclass
class BacktestResult:
    costs: dict[str, RealizedCost]
    daily_cost_cny: dict[str, pd.Series]
    plans: list[tuple[datetime, DispatchPlan]] = field(default_factory=list)
    solve_times_s: list[float] = field(default_factory=list)
    """Build + solve time of each optimal re-plan, s."""
    workers: int = 1
    """Processes the strategies ran in."""
    forecast: str = "history"
    """Where the plans' loads and PV came from (:data:`FORECASTS`)."""

    def savings_cny(self, baseline: str) -> float:
        return self.costs[baseline].total_cny - self.costs[OPTIMAL].total_cny

    def savings_pct(self, baseline: str) -> float:
        """Savings as a share of the baseline's cost (how DOMAIN.md's published figures are put)."""
        return 100.0 * self.savings_cny(baseline) / self.costs[baseline].total_cny


class ConditionsMemo:
    """An environment that works out each time index's conditions once and hands out the same frame
    after: a backtest simulates the same days once per strategy and once more for the forecasts,
    and the weather and PV model give the same conditions every time."""

    PREFETCH_DAYS = 30
    """Days of conditions per environment call in :meth:`prefetch_days`: pvlib's fixed cost per call would
    outweigh the work of a single day, and a 30-day call shares it out."""

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


WARMUP_DAYS = 14
"""Days the park runs on its own schedule before a backtest's first day, so the history forecaster
starts from the history a park in operation would have."""

FORECASTS = ("history", "perfect")


@dataclass(frozen=True)
class _ClosedLoopRun:
    """What one strategy's closed-loop run needs (sent whole to a worker process)."""

    park: Park
    environment: Environment
    tariff: Tariff
    options: PlanOptions
    context: PlanContext
    start_utc: datetime
    end_utc: datetime
    replan_min: int
    horizon_h: int
    solver: SolverName
    forecast: str
    perfect_loads: pd.DataFrame | None
    """The hold-storage run's loads (``perfect`` forecasts)."""
    warmup_history: pd.DataFrame | None
    """Quarter-hour planning loads measured before the first day (``history`` forecasts)."""


def backtest(park: Park, environment: Environment, tariff: Tariff, start_utc: datetime, days: int,
             strategies: tuple[str, ...], replan_min: int = 60, horizon_h: int = 24,
             mip_time_limit_s: float | None = None, workers: int | None = None,
             solver: SolverName = BACKTEST_SOLVER, forecast: str = "history", warmup_days: int = WARMUP_DAYS,
             progress: Callable[[str, int], None] | None = None) -> BacktestResult:
    """Run each strategy closed-loop on the simulator over ``days`` days; realized costs per strategy.

    ``forecast``: "history" or "perfect" (module docstring); ``warmup_days``: days on the plant's own
    schedule before the first day whose measured loads the history forecaster starts from (0: none, as a
    park that has just been connected). Each re-plan's MIP is bounded by the plan options' node budget
    (a realizable incumbent is used if it stops early); ``mip_time_limit_s`` adds a wall-clock bound (None:
    nodes only, so that the result does not depend on the machine's load). ``solver``: how the optimal
    re-plans are solved (optimizer.solve.SOLVERS; see :data:`BACKTEST_SOLVER`). ``workers``: processes the
    strategies run in (default: one per strategy, at most one per CPU; 1 runs them here, one after the other);
    each strategy's run is the same either way. ``no_storage`` is not run again: it holds storage, as the
    hold-storage run does, and that run stands in for it (same simulator, seed and setpoints, the same meter
    readings). ``progress(strategy, control steps done)``."""
    if forecast not in FORECASTS:
        raise ValueError(f"forecast must be one of {', '.join(FORECASTS)}, not {forecast!r}")
    end_utc = start_utc + timedelta(days=days)
    step = timedelta(seconds=park.simulation.step_s)
    environment = ConditionsMemo(environment)
    warmup_start = start_utc - timedelta(days=warmup_days)
    environment.prefetch_days(warmup_start if forecast == "history" else start_utc,
                              end_utc + timedelta(hours=horizon_h), step)
    hold_run = None
    if forecast == "perfect" or HOLD_STORAGE in strategies:
        hold_run = hold_storage_run(park, environment, start_utc,
                                    end_utc + timedelta(hours=horizon_h) if forecast == "perfect" else end_utc)
    warmup = None
    if forecast == "history" and warmup_days > 0:
        warmup_field = SimulatedField(ParkSimulator(park, environment, warmup_start), tariff.demand_interval_min)
        warmup_field.advance(start_utc)
        warmup = warmup_field.quarter_hour_loads(warmup_start, start_utc)
    run = _ClosedLoopRun(park, environment, tariff, plan_options(tariff, mip_time_limit_s=mip_time_limit_s),
                         plan_context(park, tariff), start_utc, end_utc, replan_min, horizon_h, solver, forecast,
                         hold_run.loads if forecast == "perfect" and hold_run is not None else None, warmup)
    simulated = tuple(s for s in strategies if s != HOLD_STORAGE)
    workers = max(1, min(len(simulated), (os.cpu_count() or 1) if workers is None else workers))
    if workers > 1:
        outcomes = _run_in_workers(run, simulated, workers, progress)
    else:
        outcomes = {s: _run_closed_loop(run, s, functools.partial(progress, s) if progress else None)
                    for s in simulated}
    if HOLD_STORAGE in strategies and hold_run is not None:  # it is run whenever HOLD_STORAGE is asked for
        in_period = hold_run.grid_kw.index < end_utc
        outcomes[HOLD_STORAGE] = _Outcome(hold_run.grid_kw[in_period], hold_run.pv_kw[in_period], [], [])
        if progress:
            progress(HOLD_STORAGE, int(timedelta(days=days) / PLAN_STEP))
    costs, daily, plans, solve_times = {}, {}, [], []
    for strategy in strategies:
        outcome = outcomes[strategy]
        if strategy == OPTIMAL:
            plans, solve_times = outcome.plans, outcome.solve_times_s
        costs[strategy], daily[strategy] = realized_cost(outcome.meter_kw, outcome.pv_kw, tariff,
                                                         park.site.timezone)
    return BacktestResult(costs, daily, plans, solve_times, workers, forecast)


@dataclass
class _Outcome:
    """One strategy's run: grid meter and PV power each simulator step (kW); the optimal strategy's
    plans and their build + solve times (s)."""

    meter_kw: pd.Series
    pv_kw: pd.Series
    plans: list[tuple[datetime, DispatchPlan]]
    solve_times_s: list[float]


def _run_in_worker(run: _ClosedLoopRun, strategy: str,
                   progress_queue: queue.Queue[tuple[str, int]]) -> tuple[str, _Outcome]:
    return strategy, _run_closed_loop(run, strategy, lambda n: progress_queue.put((strategy, n)))


def _run_in_workers(run: _ClosedLoopRun, strategies: tuple[str, ...], workers: int,
                    progress: Callable[[str, int], None] | None) -> dict[str, _Outcome]:
    """The strategies' closed-loop runs in ``workers`` processes, progress relayed as they go (each
    run puts (strategy, control steps done) on a managed queue handed to it). Processes are spawned,
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


def _forecaster(run: _ClosedLoopRun, simulated: SimulatedField) -> Forecaster:
    if run.forecast == "perfect":
        if run.perfect_loads is None:  # backtest() gives them whenever the forecast is perfect
            raise ValueError("a perfect forecast needs the hold-storage run's loads")
        return PerfectForecaster(run.perfect_loads)
    from energy.forecast import HistoryForecaster

    return HistoryForecaster(run.park, simulated)


def _run_closed_loop(run: _ClosedLoopRun, strategy: str, progress: Callable[[int], None] | None) -> _Outcome:
    """One strategy's controller on its own simulated field, control step after control step."""
    simulated = SimulatedField(ParkSimulator(run.park, run.environment, run.start_utc), run.tariff.demand_interval_min,
                           history=run.warmup_history)
    controller = Controller(run.park, simulated, _forecaster(run, simulated), TariffPrices(run.tariff), run.options,
                            run.context, strategy=strategy, replan_min=run.replan_min, horizon_h=run.horizon_h,
                            solver=run.solver, who=f"backtest:{strategy}",
                            keep_plans=None if strategy == OPTIMAL else 1)
    steps_done = 0
    while simulated.now_utc() < run.end_utc:
        controller.step()
        simulated.advance(min(run.end_utc, simulated.now_utc() + PLAN_STEP))
        steps_done += 1
        if progress and steps_done % controller.replan_steps == 0:
            progress(controller.replan_steps)
    plans = [(p.made_utc, p.plan) for p in controller.plans if p.plan is not None]
    solve_times = [p.solve.solve_time_s + p.solve.build_time_s for _, p in plans if p.solve is not None]
    meter_kw, pv_kw = simulated.meter_series()
    return _Outcome(meter_kw, pv_kw, plans, solve_times)

def realized_cost(meter_kw: pd.Series, pv_kw: pd.Series, tariff: Tariff,
                  timezone: str) -> tuple[RealizedCost, pd.Series]:
    """Cost of a grid-meter power series (kW, + import) under the tariff, with the park's PV production
    (kW, same index) for a tariff that pays export only up to it; and energy cost per local day."""
    step_h = (meter_kw.index[1] - meter_kw.index[0]).total_seconds() / 3600.0
    imported = meter_kw.clip(lower=0.0)
    exported = (-meter_kw).clip(lower=0.0)
    times = cast(pd.DatetimeIndex, meter_kw.index)
    price = tariff.energy_price_cny_per_kwh(times).to_numpy()
    energy = imported.to_numpy() * price * step_h
    paid = tariff.paid_export_kw(exported.to_numpy(), pv_kw.to_numpy())
    revenue = paid * tariff.export_price_cny_per_kwh * step_h
    demand = imported.resample(f"{tariff.demand_interval_min}min").mean()
    local_month = cast(pd.DatetimeIndex, demand.index).tz_convert(timezone).strftime("%Y-%m")
    monthly_peak = demand.groupby(local_month).max()
    demand_cny = float(monthly_peak.sum() * tariff.demand_charge_cny_per_kw_month)
    daily = pd.Series(energy - revenue, index=meter_kw.index).groupby(
        times.tz_convert(timezone).date).sum()
    total = float(energy.sum() - revenue.sum() + demand_cny)
    return RealizedCost(float(energy.sum()), float(revenue.sum()), demand_cny, float(monthly_peak.max()),
                        float(imported.sum() * step_h), total,
                        {str(month): float(kw) for month, kw in monthly_peak.items()}), daily
