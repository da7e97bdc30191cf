"""The dispatch optimizer's commands: `plan` (one day) and `backtest` (the rolling-horizon controller
closed-loop on the simulator against each baseline)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, cast

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from parktwin.options import ParkFile, local_midnight, parse_day
from parktwin.park_files import park_tariff
from parktwin.terminal import EXIT_FAILURE, BadInput, console, errors
from twin.config import load_park

if TYPE_CHECKING:
    from optimizer.solve import SolverName

commands = typer.Typer()


@commands.command()
def plan(
    park_file: ParkFile,
    date_: Annotated[str, typer.Option("--date", help="Day to plan, YYYY-MM-DD (96 steps of 15 min, local time)")],
    prices: Annotated[Path | None, typer.Option(help="Price CSV (timestamp, price_cny_per_kwh); "
                                                        "default: the park's tariff")] = None,
    inputs: Annotated[Path | None, typer.Option(help="Horizon CSV (timestamp, cooling_load_kwth, "
                                                        "pv_available_kw, other_load_kw, price_cny_per_kwh)")] = None,
    out: Annotated[Path | None, typer.Option(help="Write the per-step table to this CSV")] = None,
    json_: Annotated[bool, typer.Option("--json", help="Print the whole plan as JSON instead of the summary")] = False,
    solver: Annotated[str, typer.Option(
        help="pulp-highs (HiGHS through PuLP), pulp-cbc, or highs (highspy directly)")] = "pulp-highs",
) -> None:
    """Plan one day's dispatch and print its cost, peak and savings against each baseline."""
    import pandas as pd

    from energy.environment import ParkEnvironment
    from energy.prices import load_price_csv
    from optimizer.inputs import InitialState, horizon_coverage_problem, read_inputs_csv
    from optimizer.park_inputs import park_horizon_inputs, prices_cover, simulated_loads
    from optimizer.plan import make_plan, plan_context, plan_options

    solver_name = _solver_name(solver)
    park = load_park(park_file)
    tariff = park_tariff(park, park_file)
    day = parse_day(date_, "--date")
    start_utc = local_midnight(day, park)
    if inputs is not None:
        horizon = read_inputs_csv(inputs, park.site.timezone, tariff.export_price_cny_per_kwh)
        problem = horizon_coverage_problem(horizon.index, start_utc, local_midnight(day + timedelta(days=1), park),
                                           park.site.timezone)
        if problem:
            raise BadInput(f"--inputs {inputs}: {problem} (--date {day})")
    else:
        loads = simulated_loads(park, ParkEnvironment(park), start_utc, start_utc + timedelta(days=1))
        steps = cast(pd.DatetimeIndex, loads.index)  # the simulator's 15-minute steps
        price_series = load_price_csv(prices, park.site.timezone) if prices else \
            tariff.energy_price_cny_per_kwh(steps)
        problems = prices_cover(price_series, steps)
        if problems:
            source = f"--prices {prices}" if prices else f"tariff {park.tariff}"
            raise BadInput(f"{source}: " + "; ".join(problems))
        horizon = park_horizon_inputs(loads, price_series, tariff.export_price_cny_per_kwh)
    options = plan_options(tariff)  # a MIP's search bounded by nodes: the same plan on any machine
    result = make_plan(horizon, InitialState(), options, plan_context(park, tariff), solver=solver_name)
    if out is not None:
        result.to_csv(out)
    if json_:
        print(result.to_json())
    else:
        _print_plan_summary(result, tariff.currency)
    if result.status == "fallback":
        for line in result.diagnostic:
            errors.print(f"[red]infeasible:[/red] {line}", markup=True, highlight=False)
        raise typer.Exit(EXIT_FAILURE)


@commands.command()
def backtest(
    park_file: ParkFile,
    start: Annotated[str, typer.Option(help="First day, YYYY-MM-DD, midnight in the park's time zone")],
    days: Annotated[int, typer.Option(min=1, max=366, help="Number of days")] = 7,
    replan_min: Annotated[int, typer.Option(min=15, max=1440, help="Minutes between re-plans")] = 60,
    workers: Annotated[int | None, typer.Option(
        min=1, help="Processes to run the strategies in (default: one per strategy, at most one per CPU)")] = None,
    solver: Annotated[str, typer.Option(help="How the re-plans are solved: highs (highspy directly), "
                                             "pulp-highs (HiGHS through PuLP) or pulp-cbc")] = "highs",
    forecast: Annotated[str, typer.Option(help="Loads and PV the plans see: history (learned from the park's "
                                               "measured history, as in operation) or perfect (the simulator's "
                                               "own loads: perfect foresight)")] = "history",
    warmup_days: Annotated[int, typer.Option(min=0, max=60, help="Days the park runs on its own schedule before "
                                                                 "the first day, as history for the forecasts")] = 14,
) -> None:
    """Run the rolling-horizon controller closed-loop on the simulator and compare with each baseline."""
    from energy.environment import ParkEnvironment
    from optimizer.backtest import FORECASTS
    from optimizer.backtest import backtest as run_backtest
    from optimizer.baselines import BASELINES
    from optimizer.controller import OPTIMAL

    solver_name = _solver_name(solver)
    if forecast not in FORECASTS:
        raise BadInput(f"--forecast: {forecast!r} is not one of {', '.join(FORECASTS)}")

    park = load_park(park_file)
    tariff = park_tariff(park, park_file)
    start_local = parse_day(start, "--start")
    start_utc = local_midnight(start_local, park)
    strategies = (OPTIMAL,) + BASELINES
    steps_each = days * 96
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeRemainingColumn(), console=errors) as progress:
        tasks = {s: progress.add_task(s, total=steps_each) for s in strategies}
        result = run_backtest(park, ParkEnvironment(park), tariff, start_utc, days, strategies, replan_min,
                              workers=workers, solver=solver_name, forecast=forecast, warmup_days=warmup_days,
                              progress=lambda s, n: progress.advance(tasks[s], n))
    table = Table(title=f"{park.name}: {days}-day closed-loop backtest from {start_local} (re-plan every {replan_min} "
                        f"min, {forecast} forecasts)")
    for column in ("strategy", f"energy {tariff.currency}", f"export {tariff.currency}", f"demand {tariff.currency}",
                   "peak kW", f"total {tariff.currency}", "optimal saves"):
        table.add_column(column, justify="right" if column != "strategy" else "left")
    for name, cost in result.costs.items():
        saving = "" if name == OPTIMAL else f"{result.savings_cny(name):,.0f} ({result.savings_pct(name):.1f} %)"
        table.add_row(name, f"{cost.energy_cny:,.0f}", f"{cost.export_revenue_cny:,.0f}",
                      f"{cost.demand_charge_cny:,.0f}", f"{cost.peak_kw:,.0f}", f"{cost.total_cny:,.0f}", saving)
    console.print(table)
    months = sorted({m for cost in result.costs.values() for m in cost.monthly_peak_kw})
    peaks = Table(title="Realized billed peak per month, kW (highest demand-interval mean import)")
    peaks.add_column("strategy")
    for month in months:
        peaks.add_column(month, justify="right")
    for name, cost in result.costs.items():
        peaks.add_row(name, *(f"{cost.monthly_peak_kw.get(m, float('nan')):,.0f}" for m in months))
    console.print(peaks)
    if result.solve_times_s:
        median_ms = 1000 * float(_median(result.solve_times_s))
        console.print(f"{len(result.plans)} plans; build+solve median {median_ms:.1f} ms")


def _solver_name(text: str) -> SolverName:
    """The solver ``--solver`` names; bad input when it names none."""
    from optimizer.solve import SOLVERS

    if text not in SOLVERS:
        raise BadInput(f"--solver: {text!r} is not one of {', '.join(SOLVERS)}")
    return cast("SolverName", text)


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else 0.5 * (ordered[middle - 1] + ordered[middle])


def _print_plan_summary(result, currency: str) -> None:
    costs = result.costs
    title = f"Dispatch plan ({result.status}), {result.table['ts_local'].iloc[0]:%Y-%m-%d}"
    table = Table(title=title)
    table.add_column("strategy")
    table.add_column(f"cost {currency}", justify="right")
    table.add_column("peak kW", justify="right")
    table.add_column(f"plan saves {currency}", justify="right")
    table.add_row("plan", f"{costs.total_cny:,.2f}", f"{costs.peak_kw:,.0f}", "")
    for name, cost in result.baselines.items():
        table.add_row(name, f"{cost.total_cny:,.2f}", f"{cost.peak_kw:,.0f}", f"{result.savings_cny[name]:,.2f}")
    console.print(table)
    by_period = ", ".join(f"{k} {v:,.0f}" for k, v in costs.energy_cny_by_period.items())
    console.print(f"energy {costs.energy_cny:,.0f} ({by_period}); export revenue {costs.export_revenue_cny:,.0f}; "
                  f"demand charge {costs.demand_charge_cny:,.0f}; wear {costs.wear_cny:,.0f}; "
                  f"penalties {costs.penalty_cny:,.0f} {currency}")
    if result.solve is not None:
        s = result.solve
        objective = s.objective_cny if s.objective_cny is None else round(s.objective_cny, 2)
        console.print(f"solver {s.solver}: {s.status}, objective {objective}, "
                      f"solve {1000 * s.solve_time_s:.1f} ms, gap {s.mip_gap}")
    for note in result.notes:
        console.print(f"note: {note}")


