"""The dashboard's commands: `dashboard` (served over an existing history) and `users add` (who may sign
in); and how the dashboard is served, which `run` uses too."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Annotated

import typer

from parktwin.commands.energy import hold_limits, recorded_speed
from parktwin.options import HistoryOption, ParkFile, RecordedSpeedOption, WebOptions, web_options
from parktwin.park_files import history_url, open_history, park_point_maps_if_any
from parktwin.terminal import EXIT_FAILURE, BadInput, console, errors
from twin.config import load_park
from twin.park import Park

commands = typer.Typer()
users_group = typer.Typer(no_args_is_help=True, help="Manage who may sign in to the dashboard, and with which role.")

UsersFileArgument = Annotated[Path, typer.Argument(help="Users YAML file (created when missing)", metavar="FILE")]


def load_users(path: Path | None):
    """The dashboard's users: those of the users file at ``path``, else none."""
    from dashboard.auth import UserStore

    return UserStore.load(path) if path is not None else UserStore()


def energy_providers(park: Park, store, episodes, now_utc=None, hold_s: dict[str, float] | None = None) -> dict:
    """The dashboard's KPI and fault providers from the energy models (keyword arguments of create_app);
    now_utc: the clock acknowledgements are stamped with (default: the wall clock)."""
    from energy.providers import EnergyKpiProvider, StoredFaultProvider
    from energy.tariff import load_tariff

    tariff = load_tariff(park.tariff) if park.tariff else None
    faults = (StoredFaultProvider(episodes, park=park) if now_utc is None
              else StoredFaultProvider(episodes, now_utc, park=park))
    return {"kpi": EnergyKpiProvider(park, store, tariff, hold_s), "faults": faults}


@commands.command()
@web_options
def dashboard(
    park_file: ParkFile,
    history: HistoryOption = None,
    host: Annotated[str, typer.Option(help="Dashboard address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Dashboard port")] = 8050,
    users: Annotated[Path | None, typer.Option(help="Users file for sign-in (see `parktwin users add`)")] = None,
    speed: RecordedSpeedOption = None,
    web: WebOptions = WebOptions(),  # the options of @web_options
) -> None:
    """Serve the dashboard over an existing history (no feed: nothing is simulated or written)."""
    from dashboard.app import create_app
    from twin.history import FaultEpisodeStore
    from twin.live import LiveState

    park = load_park(park_file)
    user_store = load_users(users)
    url = history_url(park, history)
    store = open_history(url)
    live = LiveState()
    live.update(store.latest(list(park.points)).values())
    if not live.snapshot():
        errors.print(f"note: {url} holds no readings of {park.name}'s points; pages will be empty")
    hold_s = hold_limits(park, park_point_maps_if_any(park), recorded_speed(store, speed))
    dash_app = create_app(park, live, store, users=user_store, **web.app_options(),
                          **energy_providers(park, store, FaultEpisodeStore(store), hold_s=hold_s))
    console.print(f"[bold]{park.name}[/bold]: dashboard over {url}")
    console.print(f"dashboard: http://{host}:{port}/   (Ctrl+C stops)")
    try:
        serve_dashboard(dash_app, host, port, web)
    finally:
        store.close()


@users_group.command("add")
def users_add(
    users_file: UsersFileArgument,
    user: Annotated[str, typer.Argument(help="User name")],
    role: Annotated[str, typer.Option(help="viewer, operator, trader or admin")],
    password: Annotated[str | None, typer.Option(
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


def serve_dashboard(dash_app, host: str, port: int, web: WebOptions) -> None:
    """Serve the dashboard with waitress until SIGINT or SIGTERM (what service managers and container runtimes
    send), both handled even when the process was started with SIGINT ignored (nohup, a shell's &)."""
    from dashboard.serve import serve

    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop_signal, _stop_as_on_ctrl_c)
    try:
        serve(dash_app.server, host, port, threads=web.threads, behind_proxy=web.behind_proxy)
    except OSError as exc:
        errors.print(f"[red]error:[/red] cannot serve the dashboard on {host}:{port}: {exc}", highlight=False)
        raise typer.Exit(EXIT_FAILURE) from None


def _stop_as_on_ctrl_c(signum, frame) -> None:
    raise KeyboardInterrupt

