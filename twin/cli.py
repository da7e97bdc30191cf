"""The ``parktwin`` command line. Exit codes: 0 ok, 1 failure, 2 bad input."""

from __future__ import annotations

import logging
import sys
from collections import Counter
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Annotated, Optional
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from twin.config import ConfigError, load_park
from twin.faults_file import load_faults
from twin.park import Park

EXIT_FAILURE, EXIT_BAD_INPUT = 1, 2
DEFAULT_HISTORY = "sqlite:///parktwin-history.sqlite"

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_show_locals=False,
                  help="ParkTwin: digital twin and energy management for industrial and technology parks.")
console = Console(soft_wrap=True)
errors = Console(stderr=True, soft_wrap=True)

ParkFile = Annotated[Path, typer.Argument(help="Park YAML file", metavar="PARK.yaml")]
HistoryOption = Annotated[Optional[str], typer.Option(
    "--history", help="History store: sqlite:///FILE or postgresql://... "
                      f"(default: the park file's history, else {DEFAULT_HISTORY})")]


class BadInput(Exception):
    """A user-supplied value that cannot be used; printed as is, exit 2."""


def main() -> None:
    """Entry point: usage errors exit 2 (typer), bad files and values exit 2 with a plain message."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        app()
    except (ConfigError, BadInput) as exc:
        errors.print(f"[red]error:[/red] {exc}", markup=True, highlight=False)
        sys.exit(EXIT_BAD_INPUT)


def _history_url(park: Park, option: str | None) -> str:
    return option or park.history or DEFAULT_HISTORY


def _open_history(url: str):
    from twin.history import open_history

    try:
        return open_history(url)
    except ValueError as exc:
        raise BadInput(f"--history: {exc}") from None


@app.command()
def validate(park_file: ParkFile) -> None:
    """Check a park file and print what it describes."""
    park = load_park(park_file)
    kinds = Counter(asset.kind_label for _, asset in park.iter_assets())
    table = Table(title=f"{park.name} — valid", show_header=True)
    table.add_column("building")
    table.add_column("assets")
    for building in park.buildings:
        counts = Counter(a.kind_label for a in building.assets)
        table.add_row(f"{building.id} ({building.name})", ", ".join(f"{n} {k}" for k, n in counts.items()))
    console.print(table)
    console.print(f"{len(park.points)} points; {sum(kinds.values())} assets; "
                  f"PV {park.pv_capacity_kw:,.0f} kWp; battery {park.battery_capacity_kwh:,.0f} kWh; "
                  f"{park.ev_charger_count} EV chargers")


@app.command()
def simulate(
    park_file: ParkFile,
    start: Annotated[str, typer.Option(help="First day, YYYY-MM-DD, midnight in the park's time zone")],
    days: Annotated[int, typer.Option(min=1, max=3660, help="Number of days")] = 1,
    history: HistoryOption = None,
    faults: Annotated[Optional[Path], typer.Option(help="YAML file of faults to inject")] = None,
) -> None:
    """Simulate the park and write every point's readings into the history store."""
    from energy.environment import ParkEnvironment
    from twin.sim import ParkSimulator

    park = load_park(park_file)
    start_local = _parse_day(start, "--start")
    tz = ZoneInfo(park.site.timezone)
    start_utc = datetime.combine(start_local, datetime.min.time(), tzinfo=tz).astimezone(timezone.utc)
    end_utc = start_utc + timedelta(days=days)
    fault_list = load_faults(faults, park) if faults else []
    store = _open_history(_history_url(park, history))
    simulator = ParkSimulator(park, ParkEnvironment(park), start_utc)
    for fault in fault_list:
        simulator.inject_fault(fault)
    total_steps = int((end_utc - start_utc) / simulator.step)
    written = 0
    with store, Progress(TextColumn("[bold]simulating"), BarColumn(), TextColumn("{task.completed}/{task.total} steps"),
                         TimeRemainingColumn(), console=errors) as progress:
        task = progress.add_task("simulate", total=total_steps)
        for frame in simulator.run(end_utc, progress=lambda n: progress.advance(task, n)):
            written += store.append_frame(frame)
    console.print(f"wrote {written:,} readings of {len(park.points)} points, {start_utc:%Y-%m-%d %H:%M} to "
                  f"{end_utc:%Y-%m-%d %H:%M} UTC, into {_history_url(park, history)}")


@app.command()
def run(
    park_file: ParkFile,
    history: HistoryOption = None,
    speed: Annotated[float, typer.Option(min=0.01, max=3600, help="Simulated seconds per wall-clock second")] = 60.0,
    host: Annotated[str, typer.Option(help="Dashboard address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Dashboard port")] = 8050,
) -> None:
    """Run the park live: simulation clock, history store and dashboard."""
    from dashboard.app import create_app
    from energy.environment import ParkEnvironment
    from twin.live import LiveState
    from twin.runtime import SimulationClock, SimulatorFeed, TwinSink
    from twin.sim import ParkSimulator

    park = load_park(park_file)
    url = _history_url(park, history)
    store = _open_history(url)
    live = LiveState()
    now = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    simulator = ParkSimulator(park, ParkEnvironment(park), now)
    feed = SimulatorFeed(simulator, SimulationClock(now, speed), TwinSink(live, store, flush_every=5))
    dash_app = create_app(park, live, store)
    console.print(f"[bold]{park.name}[/bold]: simulating at {speed:g}x from {now:%Y-%m-%d %H:%M} UTC; "
                  f"history in {url}")
    console.print(f"dashboard: http://{host}:{port}/   (Ctrl+C stops)")
    feed.start()
    try:
        dash_app.run(host=host, port=port, debug=False)
    finally:
        feed.stop()
        feed.sink.flush()
        store.close()


# ----------------------------------------------------------------- dispatch optimizer (plan, backtest)

PLAN_MIP_TIME_LIMIT_S = 10.0
"""How long `parktwin plan` lets a MIP (realizability binaries) search before using its incumbent."""

@app.command()
def plan(
    park_file: ParkFile,
    date_: Annotated[str, typer.Option("--date", help="Day to plan, YYYY-MM-DD (96 steps of 15 min, local time)")],
    prices: Annotated[Optional[Path], typer.Option(help="Price CSV (timestamp, price_cny_per_kwh); "
                                                        "default: the park's tariff")] = None,
    inputs: Annotated[Optional[Path], typer.Option(help="Horizon CSV (timestamp, cooling_load_kwth, "
                                                        "pv_available_kw, other_load_kw, price_cny_per_kwh)")] = None,
    out: Annotated[Optional[Path], typer.Option(help="Write the per-step table to this CSV")] = None,
    json_: Annotated[bool, typer.Option("--json", help="Print the whole plan as JSON instead of the summary")] = False,
    solver: Annotated[str, typer.Option(help="highs, pulp-highs or pulp-cbc")] = "highs",
) -> None:
    """Plan one day's dispatch and print its cost, peak and savings against each baseline."""
    from energy.environment import ParkEnvironment
    from energy.prices import load_price_csv
    from optimizer.inputs import InitialState, read_inputs_csv
    from optimizer.mpc import plan_context, plan_options
    from optimizer.park_inputs import park_horizon_inputs, prices_cover, simulated_loads
    from optimizer.plan import make_plan
    from optimizer.solve import SOLVERS

    if solver not in SOLVERS:
        raise BadInput(f"--solver: {solver!r} is not one of {', '.join(SOLVERS)}")
    park = load_park(park_file)
    tariff = _park_tariff(park, park_file)
    day = _parse_day(date_, "--date")
    start_utc = datetime.combine(day, datetime.min.time(), tzinfo=ZoneInfo(park.site.timezone)).astimezone(timezone.utc)
    if inputs is not None:
        horizon = read_inputs_csv(inputs, park.site.timezone, tariff.export_price_cny_per_kwh)
    else:
        loads = simulated_loads(park, ParkEnvironment(park), start_utc, start_utc + timedelta(days=1))
        price_series = load_price_csv(prices, park.site.timezone) if prices else \
            tariff.energy_price_cny_per_kwh(loads.index)
        problems = prices_cover(price_series, loads.index)
        if problems:
            raise BadInput(f"--prices {prices}: " + "; ".join(problems))
        horizon = park_horizon_inputs(loads, price_series, tariff.export_price_cny_per_kwh)
    options = plan_options(tariff, mip_time_limit_s=PLAN_MIP_TIME_LIMIT_S)
    result = make_plan(horizon, InitialState(), options, plan_context(park, tariff), solver=solver)
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


@app.command()
def backtest(
    park_file: ParkFile,
    start: Annotated[str, typer.Option(help="First day, YYYY-MM-DD, midnight in the park's time zone")],
    days: Annotated[int, typer.Option(min=1, max=366, help="Number of days")] = 7,
    replan_min: Annotated[int, typer.Option(min=15, max=1440, help="Minutes between re-plans")] = 60,
) -> None:
    """Run the rolling-horizon optimizer closed-loop on the simulator and compare with each baseline."""
    from energy.environment import ParkEnvironment
    from optimizer.baselines import BASELINES
    from optimizer.mpc import OPTIMAL, backtest as run_backtest

    park = load_park(park_file)
    tariff = _park_tariff(park, park_file)
    start_local = _parse_day(start, "--start")
    start_utc = datetime.combine(start_local, datetime.min.time(),
                                 tzinfo=ZoneInfo(park.site.timezone)).astimezone(timezone.utc)
    strategies = (OPTIMAL,) + BASELINES
    steps_each = days * 96
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeRemainingColumn(), console=errors) as progress:
        tasks = {s: progress.add_task(s, total=steps_each) for s in strategies}
        result = run_backtest(park, ParkEnvironment(park), tariff, start_utc, days, strategies, replan_min,
                              progress=lambda s, n: progress.advance(tasks[s], n))
    table = Table(title=f"{park.name}: {days}-day closed-loop backtest from {start_local} (re-plan every {replan_min} min)")
    for column in ("strategy", f"energy {tariff.currency}", f"export {tariff.currency}", f"demand {tariff.currency}",
                   "peak kW", f"total {tariff.currency}", "optimal saves"):
        table.add_column(column, justify="right" if column != "strategy" else "left")
    for name, cost in result.costs.items():
        saving = "" if name == OPTIMAL else f"{result.savings_cny(name):,.0f} ({result.savings_pct(name):.1f} %)"
        table.add_row(name, f"{cost.energy_cny:,.0f}", f"{cost.export_revenue_cny:,.0f}", f"{cost.demand_charge_cny:,.0f}",
                      f"{cost.peak_kw:,.0f}", f"{cost.total_cny:,.0f}", saving)
    console.print(table)
    if result.solve_times_s:
        console.print(f"{len(result.plans)} plans; build+solve median {1000 * float(_median(result.solve_times_s)):.1f} ms")


def _park_tariff(park: Park, park_file: Path):
    from energy.tariff import load_tariff

    if not park.tariff:
        raise BadInput(f"{park_file}: the park names no tariff file (tariff: ...), which plans need")
    return load_tariff(Path(park_file).parent / park.tariff)


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
        console.print(f"solver {s.solver}: {s.status}, objective {s.objective_cny if s.objective_cny is None else round(s.objective_cny, 2)}, "
                      f"solve {1000 * s.solve_time_s:.1f} ms, gap {s.mip_gap}")
    for note in result.notes:
        console.print(f"note: {note}")


def _parse_day(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise BadInput(f"{option}: {text!r} is not a date of the form YYYY-MM-DD") from None


if __name__ == "__main__":
    main()
