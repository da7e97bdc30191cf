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
    from energy.fault_detection import LiveFaultDetector
    from twin.history import FaultEpisodeStore
    from twin.live import LiveState
    from twin.runtime import FanOutSink, SimulationClock, SimulatorFeed, TwinSink
    from twin.sim import ParkSimulator

    park = load_park(park_file)
    user_store = _load_users(users)
    url = _history_url(park, history)
    store = _open_history(url)
    live = LiveState()
    now = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    simulator = ParkSimulator(park, ParkEnvironment(park), now)
    clock = SimulationClock(now, speed)
    twin_sink = TwinSink(live, store, flush_every=5)
    episodes = FaultEpisodeStore(store)
    detector = LiveFaultDetector(park, store=episodes)  # fault episodes as the readings arrive
    feed = SimulatorFeed(simulator, clock, FanOutSink([twin_sink, detector]))
    dash_app = create_app(park, live, store, write_point=simulator.write_setpoint, users=user_store,
                          now_utc=clock.now_utc, **_energy_providers(park, store, episodes))
    console.print(f"[bold]{park.name}[/bold]: simulating at {speed:g}x from {now:%Y-%m-%d %H:%M} UTC; "
                  f"history in {url}")
    console.print(f"dashboard: http://{host}:{port}/   (Ctrl+C stops)")
    feed.start()
    try:
        dash_app.run(host=host, port=port, debug=False)
    finally:
        feed.stop()
        twin_sink.flush()
        store.close()


# ---------------------------------------------------------------- energy: forecast, kpi, faults

def _energy_providers(park: Park, store, episodes) -> dict:
    """The dashboard's KPI and fault providers from the energy models (keyword arguments of create_app)."""
    from energy.providers import EnergyKpiProvider, StoredFaultProvider
    from energy.tariff import load_tariff

    tariff = load_tariff(park.tariff) if park.tariff else None
    return {"kpi": EnergyKpiProvider(park, store, tariff), "faults": StoredFaultProvider(episodes)}


JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables")]


def _parse_local_time(text: str, option: str, park: Park) -> datetime:
    """UTC time of YYYY-MM-DD (local midnight) or YYYY-MM-DDTHH:MM (local unless it carries an offset)."""
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise BadInput(f"{option}: {text!r} is not a date YYYY-MM-DD or a time YYYY-MM-DDTHH:MM") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=ZoneInfo(park.site.timezone))
    return parsed.astimezone(timezone.utc)


def _period(park: Park, from_text: str, to_text: str) -> tuple[datetime, datetime]:
    start, end = _parse_local_time(from_text, "--from", park), _parse_local_time(to_text, "--to", park)
    if end <= start:
        raise BadInput(f"--to {to_text} must be after --from {from_text}")
    return start, end


def _print_json(data: object) -> None:
    import json

    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def _local(ts: datetime, park: Park) -> str:
    return ts.astimezone(ZoneInfo(park.site.timezone)).strftime("%Y-%m-%d %H:%M")


@app.command()
def forecast(
    park_file: ParkFile,
    start: Annotated[str, typer.Option(help="First hour, YYYY-MM-DDTHH:MM in the park's time zone")],
    hours: Annotated[int, typer.Option(min=1, max=24 * 31, help="Number of hours")] = 24,
    weather: Annotated[Optional[Path], typer.Option(
        help="Weather CSV (time, ghi[, dni, dhi], temp_air[, wind_speed])")] = None,
    history: HistoryOption = None,
    annual_tmy: Annotated[Optional[Path], typer.Option(
        "--annual-tmy", help="Also report each array's annual AC energy over this TMY3 file's year")] = None,
    json_output: JsonFlag = False,
) -> None:
    """Forecast PV per array and loads per subsystem, hour by hour."""
    import pandas as pd

    from energy.forecast import (LoadForecaster, annual_pv_energy_kwh, forecast_weather, hourly_load_history,
                                 pv_forecast_kw)
    from energy.weather import WeatherFileError, read_weather_csv

    park = load_park(park_file)
    start_utc = _parse_local_time(start, "--start", park)
    notes: list[str] = []
    frame = None
    if weather is not None:
        if not weather.is_file():
            raise BadInput(f"--weather: file not found: {weather}")
        site = park.site
        try:
            frame, notes = read_weather_csv(weather, site.latitude_deg, site.longitude_deg, site.altitude_m,
                                            tz=site.timezone)
        except WeatherFileError as exc:
            raise BadInput(str(exc)) from None
    try:
        horizon_weather = forecast_weather(park, start_utc, hours, frame)
    except ValueError as exc:
        raise BadInput(f"--weather {weather}: {exc}") from None
    index = pd.date_range(start_utc, periods=hours, freq="1h", name="ts_utc")
    pv_kw = pv_forecast_kw(park, horizon_weather, index)
    hourly_weather = horizon_weather.resample("1h").mean().reindex(index)
    with _open_history(_history_url(park, history)) as store:
        try:
            learned = hourly_load_history(store, park, start_utc - timedelta(days=28), start_utc)
        except ValueError as exc:  # no weather station to learn from
            notes.append(f"loads: {exc}; fallback profile used")
            learned = pd.DataFrame()
    model = LoadForecaster.fit(park, learned)
    loads = model.predict(index, hourly_weather["temp_air_c"].to_numpy(), hourly_weather["ghi_wm2"].to_numpy())
    annual = None
    if annual_tmy is not None:
        if not annual_tmy.is_file():
            raise BadInput(f"--annual-tmy: file not found: {annual_tmy}")
        try:
            per_array = annual_pv_energy_kwh(park, annual_tmy)
        except (ValueError, KeyError, IndexError) as exc:
            raise BadInput(f"--annual-tmy {annual_tmy}: not a readable TMY3 file ({exc})") from None
        annual = {"file": str(annual_tmy), "arrays_kwh": per_array, "total_kwh": sum(per_array.values())}
    if json_output:
        _print_json({
            "start_utc": start_utc.isoformat(), "hours": hours, "times_utc": [t.isoformat() for t in index],
            "pv_kw": {a: pv_kw[a].round(3).tolist() for a in pv_kw.columns},
            "pv_energy_kwh": {a: round(float(pv_kw[a].sum()), 3) for a in pv_kw.columns},
            "loads": {name: loads[name].round(3).tolist() for name in loads.columns},
            "load_method": model.method, "load_trained_hours": model.trained_hours,
            "weather": "file " + str(weather) if weather else park.weather.source, "weather_notes": notes,
            "pv_annual_tmy": annual,
        })
        return
    table = Table(title=f"{park.name}: forecast from {_local(start_utc, park)} ({park.site.timezone}), "
                        f"loads by {model.method}")
    for column in ["hour", *pv_kw.columns, "pv total kW", *loads.columns]:
        table.add_column(column, justify="right")
    for ts in index:
        table.add_row(_local(ts, park), *(f"{pv_kw.at[ts, a]:,.1f}" for a in pv_kw.columns),
                      f"{pv_kw.loc[ts].sum():,.1f}", *(f"{loads.at[ts, n]:,.1f}" for n in loads.columns))
    console.print(table)
    for note in notes:
        console.print(f"note: {note}")
    if annual is not None:
        per_array = ", ".join(f"{a} {kwh:,.0f} kWh" for a, kwh in annual["arrays_kwh"].items())
        console.print(f"annual AC energy over {annual_tmy.name}: {per_array}; total {annual['total_kwh']:,.0f} kWh")


@app.command()
def kpi(
    park_file: ParkFile,
    from_: Annotated[str, typer.Option("--from", help="Start, YYYY-MM-DD[THH:MM] in the park's time zone")],
    to: Annotated[str, typer.Option("--to", help="End (exclusive), YYYY-MM-DD[THH:MM]")],
    history: HistoryOption = None,
    prices: Annotated[Optional[Path], typer.Option(
        help="Day-ahead price CSV used instead of the tariff's energy prices")] = None,
    baseline_cost: Annotated[Optional[float], typer.Option(
        help="Baseline cost of the same period, for savings")] = None,
    json_output: JsonFlag = False,
) -> None:
    """Energy KPIs of a period from history: consumption, PV, peak demand, cost, CO2, plant COP, ice."""
    from energy.kpi import energy_kpis
    from energy.prices import load_price_csv
    from energy.tariff import load_tariff

    park = load_park(park_file)
    start, end = _period(park, from_, to)
    tariff = load_tariff(park.tariff) if park.tariff else None
    price_series = load_price_csv(prices, park.site.timezone) if prices else None
    with _open_history(_history_url(park, history)) as store:
        try:
            kpis = energy_kpis(store, park, start, end, tariff, price_series, baseline_cost)
        except ValueError as exc:
            raise BadInput(f"--prices {prices}: {exc}") from None
    if kpis.coverage == 0:
        errors.print(f"[red]error:[/red] no readings in {_history_url(park, history)} from {from_} to {to}")
        raise typer.Exit(EXIT_FAILURE)
    if json_output:
        _print_json(kpis.as_dict())
        return
    table = Table(title=f"{park.name}: energy KPIs {_local(start, park)} to {_local(end, park)} "
                        f"({kpis.coverage:.1%} of readings known)")
    table.add_column("KPI")
    table.add_column("value", justify="right")
    for name, value in kpis.consumption_kwh.items():
        table.add_row(f"consumption {name}", f"{value:,.0f} kWh")
    rows = [("PV production", kpis.pv_kwh, "{:,.0f} kWh"), ("grid import", kpis.grid_import_kwh, "{:,.0f} kWh"),
            ("grid export", kpis.grid_export_kwh, "{:,.0f} kWh"), ("self-consumption", kpis.self_consumption, "{:.1%}"),
            ("self-sufficiency", kpis.self_sufficiency, "{:.1%}"),
            ("peak demand (15 min)", kpis.peak_demand_kw, "{:,.0f} kW"),
            ("load factor", kpis.load_factor, "{:.3f}")]
    rows += [(f"energy cost {p}", c, "{:,.0f} CNY") for p, c in (kpis.energy_cost_by_period_cny or {}).items()]
    rows += [("demand charge", kpis.demand_charge_cny, "{:,.0f} CNY"),
             ("export credit", kpis.export_credit_cny, "{:,.0f} CNY"),
             ("total cost", kpis.total_cost_cny, "{:,.0f} CNY"), ("CO2", kpis.co2_t, "{:,.1f} t"),
             ("plant COP", kpis.plant_cop, "{:.2f}"), ("plant kW/ton", kpis.plant_kw_per_ton, "{:.3f}"),
             ("ice used (melt)", kpis.ice_melt_kwhth, "{:,.0f} kWhth"),
             ("savings vs baseline", kpis.savings_cny, "{:,.0f} CNY")]
    for label, value, fmt in rows:
        table.add_row(label, "—" if value is None else fmt.format(value))
    console.print(table)
    if kpis.peak_demand_start_utc is not None:
        console.print(f"peak demand interval began {_local(kpis.peak_demand_start_utc, park)} ({park.site.timezone})")


@app.command()
def faults(
    park_file: ParkFile,
    from_: Annotated[str, typer.Option("--from", help="Start, YYYY-MM-DD[THH:MM] in the park's time zone")],
    to: Annotated[str, typer.Option("--to", help="End (exclusive), YYYY-MM-DD[THH:MM]")],
    history: HistoryOption = None,
    thresholds: Annotated[Optional[Path], typer.Option(help="YAML file overriding fault-rule thresholds")] = None,
    json_output: JsonFlag = False,
) -> None:
    """Detect faults in a period of history, store the episodes with it, and print them with fault KPIs."""
    from energy.fault_detection import detect_faults
    from energy.fault_kpis import fault_kpis
    from energy.fault_rules import FaultThresholds, load_fault_thresholds
    from twin.history import FaultEpisodeStore

    park = load_park(park_file)
    start, end = _period(park, from_, to)
    limits = load_fault_thresholds(thresholds) if thresholds else FaultThresholds()
    with _open_history(_history_url(park, history)) as store:
        episodes = detect_faults(store, park, start, end, limits, FaultEpisodeStore(store))
    per_asset, per_kind = fault_kpis(park, episodes, start, end)
    if json_output:
        _print_json({
            "from_utc": start.isoformat(), "to_utc": end.isoformat(),
            "episodes": [{"rule_id": e.rule_id, "asset_id": e.asset_id, "point_id": e.point_id or None,
                          "start_utc": e.start_utc.isoformat(), "end_utc": e.end_utc.isoformat() if e.end_utc else None,
                          "severity": e.severity.label, "evidence": e.evidence} for e in episodes],
            "kpis_per_asset": {a: k.as_dict() for a, k in per_asset.items()},
            "kpis_per_kind": {kind: k.as_dict() for kind, k in per_kind.items()},
        })
        return
    table = Table(title=f"{park.name}: {len(episodes)} fault episode(s) {_local(start, park)} to {_local(end, park)}")
    for column in ("rule", "asset", "point", "start", "end", "severity", "evidence"):
        table.add_column(column)
    for e in episodes:
        table.add_row(e.rule_id, e.asset_id, e.point_id, _local(e.start_utc, park),
                      _local(e.end_utc, park) if e.end_utc else "active", e.severity.label,
                      ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in e.evidence.items()))
    console.print(table)
    kpi_table = Table(title="fault KPIs per asset kind")
    for column in ("kind", "faults", "hours in fault", "% time", "MTBF h", "MTTR h", "availability", "comm losses"):
        kpi_table.add_column(column, justify="right")
    for kind, k in per_kind.items():
        kpi_table.add_row(kind, str(k.faults), f"{k.hours_in_fault:.2f}", f"{k.pct_time_in_fault:.2f}",
                          "—" if k.mtbf_h is None else f"{k.mtbf_h:,.1f}",
                          "—" if k.mttr_h is None else f"{k.mttr_h:.2f}",
                          f"{k.availability:.4f}", str(k.comm_losses))
    console.print(kpi_table)


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
    from twin.history import FaultEpisodeStore
    from twin.live import LiveState

    park = load_park(park_file)
    user_store = _load_users(users)
    url = _history_url(park, history)
    store = _open_history(url)
    live = LiveState()
    live.update(store.latest(list(park.points)).values())
    if not live.snapshot():
        errors.print(f"note: {url} holds no readings of {park.name}'s points; pages will be empty")
    dash_app = create_app(park, live, store, users=user_store,
                          **_energy_providers(park, store, FaultEpisodeStore(store)))
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
