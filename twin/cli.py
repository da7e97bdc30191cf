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
    users: Annotated[Optional[Path], typer.Option(help="Users file for sign-in (see `parktwin users add`)")] = None,
) -> None:
    """Run the park live: simulation clock, history store and dashboard."""
    from dashboard.app import create_app
    from energy.environment import ParkEnvironment
    from twin.live import LiveState
    from twin.runtime import SimulationClock, SimulatorFeed, TwinSink
    from twin.sim import ParkSimulator

    park = load_park(park_file)
    user_store = _load_users(users)
    url = _history_url(park, history)
    store = _open_history(url)
    live = LiveState()
    now = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    simulator = ParkSimulator(park, ParkEnvironment(park), now)
    clock = SimulationClock(now, speed)
    feed = SimulatorFeed(simulator, clock, TwinSink(live, store, flush_every=5))
    dash_app = create_app(park, live, store, write_point=simulator.write_setpoint, users=user_store,
                          now_utc=clock.now_utc)
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


# ----------------------------------------------------------------- dashboard (issue 5)

UsersFileArgument = Annotated[Path, typer.Argument(help="Users YAML file (created when missing)", metavar="FILE")]
users_app = typer.Typer(no_args_is_help=True, help="Manage who may sign in to the dashboard, and with which role.")
app.add_typer(users_app, name="users")


def _load_users(path: Path | None):
    from dashboard.auth import UserStore

    return UserStore.load(path) if path is not None else UserStore()


@app.command()
def dashboard(
    park_file: ParkFile,
    history: HistoryOption = None,
    host: Annotated[str, typer.Option(help="Dashboard address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Dashboard port")] = 8050,
    users: Annotated[Optional[Path], typer.Option(help="Users file for sign-in (see `parktwin users add`)")] = None,
) -> None:
    """Serve the dashboard over an existing history (no feed: nothing is simulated or written)."""
    from dashboard.app import create_app
    from twin.live import LiveState

    park = load_park(park_file)
    user_store = _load_users(users)
    url = _history_url(park, history)
    store = _open_history(url)
    live = LiveState()
    live.update(store.latest(list(park.points)).values())
    if not live.snapshot():
        errors.print(f"note: {url} holds no readings of {park.name}'s points; pages will be empty")
    dash_app = create_app(park, live, store, users=user_store)
    console.print(f"[bold]{park.name}[/bold]: dashboard over {url}")
    console.print(f"dashboard: http://{host}:{port}/   (Ctrl+C stops)")
    try:
        dash_app.run(host=host, port=port, debug=False)
    finally:
        store.close()


@users_app.command("add")
def users_add(
    users_file: UsersFileArgument,
    user: Annotated[str, typer.Argument(help="User name")],
    role: Annotated[str, typer.Option(help="viewer, operator, trader or admin")],
    password: Annotated[Optional[str], typer.Option(
        help="Password (prompted for, hidden, when left out; prefer the prompt: "
             "options show in process lists)")] = None,
) -> None:
    """Add a user to a users file, or change an existing user's role and password."""
    from dashboard.auth import add_user

    if password is None:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    try:
        new = add_user(users_file, user, role, password)
    except ValueError as exc:
        raise BadInput(str(exc)) from None
    console.print(f"{'added' if new else 'updated'} {user} ({role}) in {users_file}")


def _parse_day(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise BadInput(f"{option}: {text!r} is not a date of the form YYYY-MM-DD") from None


if __name__ == "__main__":
    main()
