"""The ``parktwin`` command line. Exit codes: 0 ok, 1 failure, 2 bad input."""

from __future__ import annotations

import functools
import inspect
import logging
import signal
import sys
from collections import Counter
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, get_type_hints
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from twin.config import ConfigError, load_park
from twin.faults_file import load_faults
from twin.input_schema import INPUT_YEARS
from twin.park import Park

EXIT_FAILURE, EXIT_BAD_INPUT = 1, 2
DEFAULT_SPOOL_ROWS = 5_000_000
"""Readings `parktwin run`'s spool holds unless --spool-max-rows says: about 300 MB on disk, some 8 hours of
the demo park's live run (about 170 readings a second)."""
DEFAULT_HISTORY = "sqlite:///parktwin-history.sqlite"

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_show_locals=False,
                  help="ParkTwin: digital twin and energy management for industrial and technology parks.")
console = Console(soft_wrap=True)
errors = Console(stderr=True, soft_wrap=True)

ParkFile = Annotated[Path, typer.Argument(help="Park YAML file", metavar="PARK.yaml")]
HistoryOption = Annotated[str | None, typer.Option(
    "--history", help="History store: sqlite:///FILE or postgresql://... "
                      f"(default: the park file's history, else {DEFAULT_HISTORY})")]

BehindProxyOption = Annotated[bool, typer.Option(
    "--behind-proxy", help="The dashboard is reached through one reverse proxy (TLS): take the client's address "
                           "and scheme from its X-Forwarded-For and X-Forwarded-Proto, trusting that one proxy "
                           "only")]
ThreadsOption = Annotated[int, typer.Option(min=1, max=64, help="Dashboard requests served at once")]
SessionIdleOption = Annotated[float, typer.Option(
    "--session-idle-min", min=1, max=7 * 24 * 60, help="A sign-in ends after this many minutes without a request")]
SessionMaxOption = Annotated[float, typer.Option(
    "--session-max-h", min=0.1, max=30 * 24, help="A sign-in ends this many hours after it began, used or not")]
LoginFailuresOption = Annotated[int, typer.Option(
    "--login-failures", min=1, max=10_000, help="Wrong passwords for one user name within --login-window-min "
                                                "before it is locked (sign-in answers 429)")]
LoginWindowOption = Annotated[float, typer.Option(
    "--login-window-min", min=0.1, max=24 * 60, help="Minutes over which wrong passwords are counted")]
LockoutOption = Annotated[float, typer.Option(
    "--lockout-min", min=0.01, max=24 * 60, help="Minutes a user name (or client address) stays locked")]


@dataclass(frozen=True)
class WebOptions:
    """How the dashboard is served and signed in to: the options :func:`_web_options` gives `run` and
    `dashboard`."""

    behind_proxy: BehindProxyOption = False
    threads: ThreadsOption = 8
    session_idle_min: SessionIdleOption = 30
    session_max_h: SessionMaxOption = 12
    login_failures: LoginFailuresOption = 10
    login_window_min: LoginWindowOption = 15
    lockout_min: LockoutOption = 15

    def app_options(self) -> dict:
        """The keyword arguments of dashboard.app.create_app these options set."""
        from dashboard.sessions import SessionLimits
        from dashboard.throttle import ThrottleLimits

        return {"session_limits": SessionLimits(idle_s=self.session_idle_min * 60,
                                                max_s=self.session_max_h * 3600),
                "throttle_limits": ThrottleLimits(max_failures=self.login_failures,
                                                  window_s=self.login_window_min * 60,
                                                  lockout_s=self.lockout_min * 60)}


def _web_options(command):
    """Give a command the options of :class:`WebOptions` (one per field, as typer reads a signature); the
    command receives them as one ``web`` argument."""
    names = [f.name for f in fields(WebOptions)]
    hints = {**get_type_hints(command, include_extras=True), **get_type_hints(WebOptions, include_extras=True)}
    del hints["web"]
    own = [p.replace(annotation=hints[p.name]) for p in inspect.signature(command).parameters.values()
           if p.name != "web"]
    added = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=getattr(WebOptions, name),
                               annotation=hints[name]) for name in names]

    @functools.wraps(command)
    def with_web_options(*args, **kwargs):
        return command(*args, web=WebOptions(**{name: kwargs.pop(name) for name in names}), **kwargs)

    with_web_options.__signature__ = inspect.Signature([*own, *added], return_annotation=None)
    with_web_options.__annotations__ = hints
    return with_web_options

class BadInput(Exception):
    """A user-supplied value that cannot be used; printed as is, exit 2."""


def main(argv: list[str] | None = None) -> None:
    """Entry point (``argv``: the arguments, default the process's): usage errors exit 2 (typer), bad files
    and values exit 2 with a plain message and no traceback; a history store that cannot be reached or
    written exits 1 with a plain message."""
    from twin.history import StorageUnavailable

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        app(args=argv)
    except (ConfigError, BadInput) as exc:
        # the message is plain text: patterns such as [a-z] in it are not rich markup
        errors.print(f"[red]error:[/red] {escape(str(exc))}", markup=True, highlight=False)
        sys.exit(EXIT_BAD_INPUT)
    except StorageUnavailable as exc:
        errors.print(f"[red]error:[/red] {escape(str(exc))}", markup=True, highlight=False)
        sys.exit(EXIT_FAILURE)


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
    """Check a park file and the files it names (tariff, point maps, weather) and print what it describes."""
    park = load_park(park_file)
    named = _load_named_files(park)
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
    if named:
        console.print("valid too: " + ", ".join(named))


def _load_named_files(park: Park) -> list[str]:
    """Read every file the park names, as the commands that use them will (ConfigError for the first bad
    one); what was read, one phrase each."""
    from energy.tariff import load_tariff
    from energy.weather import read_tmy3_weather, read_weather_csv
    from protocols.pointmap import load_point_maps

    named = []
    if park.tariff:
        named.append(f"tariff {load_tariff(park.tariff).name!r}")
    if park.point_maps:
        named.append(f"{len(load_point_maps(park.point_maps, park))} point maps")
    if park.weather.source == "tmy3":
        read_tmy3_weather(park.weather.file, datetime.now(UTC).year)
        named.append(f"TMY3 weather {park.weather.file}")
    if park.weather_forecast.source == "csv":
        site = park.site
        read_weather_csv(park.weather_forecast.file, site.latitude_deg, site.longitude_deg, site.altitude_m,
                         tz=site.timezone)
        named.append(f"weather forecast {park.weather_forecast.file}")
    return named


@app.command()
def simulate(
    park_file: ParkFile,
    start: Annotated[str, typer.Option(help="First day, YYYY-MM-DD, midnight in the park's time zone")],
    days: Annotated[int, typer.Option(min=1, max=3660, help="Number of days")] = 1,
    history: HistoryOption = None,
    faults: Annotated[Path | None, typer.Option(help="YAML file of faults to inject")] = None,
) -> None:
    """Simulate the park and write every point's readings into the history store."""
    import pandas as pd

    from energy.environment import ParkEnvironment
    from twin.history import StorageFull
    from twin.sim import ParkSimulator

    park = load_park(park_file)
    start_local = _parse_day(start, "--start")
    tz = ZoneInfo(park.site.timezone)
    start_utc = datetime.combine(start_local, datetime.min.time(), tzinfo=tz).astimezone(UTC)
    end_utc = start_utc + timedelta(days=days)
    fault_list = load_faults(faults, park) if faults else []
    environment = ParkEnvironment(park)
    # read the weather (a TMY3 file) now: a bad file is refused before the history is opened
    environment.weather(pd.DatetimeIndex([start_utc]))
    store = _open_history(_history_url(park, history))
    simulator = ParkSimulator(park, environment, start_utc)
    for fault in fault_list:
        simulator.inject_fault(fault)
    total_steps = int((end_utc - start_utc) / simulator.step)
    written, committed_until = 0, start_utc
    with store, Progress(TextColumn("[bold]simulating"), BarColumn(), TextColumn("{task.completed}/{task.total} steps"),
                         TimeRemainingColumn(), console=errors) as progress:
        task = progress.add_task("simulate", total=total_steps)
        try:
            for frame in simulator.run(end_utc, progress=lambda n: progress.advance(task, n)):
                written += store.append_frame(frame)
                committed_until = frame["ts_utc"].max()
        except StorageFull as exc:
            progress.stop()
            errors.print(f"[red]error:[/red] {escape(str(exc))}; {written:,} readings up to "
                         f"{committed_until:%Y-%m-%d %H:%M} UTC were committed, the rest of the period was not "
                         "written", markup=True, highlight=False)
            raise typer.Exit(EXIT_FAILURE) from None
    console.print(f"wrote {written:,} readings of {len(park.points)} points, {start_utc:%Y-%m-%d %H:%M} to "
                  f"{end_utc:%Y-%m-%d %H:%M} UTC, into {_history_url(park, history)}")


@app.command()
@_web_options
def run(
    park_file: ParkFile,
    history: HistoryOption = None,
    devices: Annotated[str | None, typer.Option(
        help="simulated: serve the park simulator's devices and poll them; field: poll the real devices of the "
             "point maps on the wall clock (default: the park file's devices, else simulated)")] = None,
    speed: Annotated[float | None, typer.Option(
        min=0.01, max=3600, help="Simulated seconds per wall-clock second (simulated devices; default 60)")] = None,
    host: Annotated[str, typer.Option(help="Dashboard address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Dashboard port")] = 8050,
    users: Annotated[Path | None, typer.Option(help="Users file for sign-in (see `parktwin users add`)")] = None,
    approval: Annotated[str, typer.Option(help="manual: nothing is written until a trader approves a plan, then "
                                               "every step is dispatched until that plan's end; auto: every step "
                                               "is dispatched")] = "manual",
    replan_min: Annotated[int, typer.Option(min=15, max=1440, help="Minutes between re-plans (the controller "
                                                                   "dispatches every 15-minute step)")] = 15,
    start: Annotated[str | None, typer.Option(help="Day the simulation starts, YYYY-MM-DD, midnight in the "
                                                      "park's time zone; it must begin after the history's last "
                                                      "record (default: continue after that record, on a history "
                                                      "without readings now)")] = None,
    faults: Annotated[Path | None, typer.Option(help="YAML file of faults to inject (as for simulate)")] = None,
    thresholds: Annotated[Path | None, typer.Option(help="YAML file overriding fault-rule thresholds and alarm "
                                                           "settings (as for faults)")] = None,
    plan_time_limit: Annotated[float | None, typer.Option(
        min=0.1, max=600, help="Seconds a plan's MIP may search before its best realizable plan is used (default: "
                               "no wall-clock limit; the node limit alone, so plans do not depend on load)")] = None,
    spool: Annotated[Path | None, typer.Option(
        help="SQLite file where readings wait while the history store is unavailable, replayed in order when it "
             "is back (default: beside a SQLite history, else beside the park file)")] = None,
    spool_max_rows: Annotated[int, typer.Option(
        min=1, help="Most readings the spool holds; beyond it the oldest are dropped and counted as lost")]
        = DEFAULT_SPOOL_ROWS,
    web: WebOptions = WebOptions(),  # the options of @_web_options
) -> None:
    """Run the park live: protocol adapters polling its devices (the simulated ones, or the field's), history
    store, the rolling-horizon controller and the dashboard. SIGINT and SIGTERM stop it: setpoints released,
    history flushed, exit 0."""
    from dashboard.app import create_app
    from energy.environment import ParkEnvironment
    from energy.fault_detection import LiveFaultDetector, poll_periods_in_twin_time
    from energy.fault_rules import DEFAULT_PRIORITIES, FaultThresholds, load_fault_thresholds
    from protocols.readback import SetpointReadback
    from twin.heap import HeapTrimmer
    from twin.history import FaultEpisodeStore
    from twin.live import LiveState
    from twin.resume import close_left_open
    from twin.runtime import FanOutSink, ProtocolFeed, SimulationClock, TwinSink, WallClock
    from twin.sim import ParkSimulator

    if approval not in ("manual", "auto"):
        raise BadInput(f"--approval: {approval!r} is not manual or auto")
    if devices not in (None, "simulated", "field"):
        raise BadInput(f"--devices: {devices!r} is not simulated or field")
    for actions_log in ("dashboard.actions", "optimizer.operation", "optimizer.controller"):  # who did what
        logging.getLogger(actions_log).setLevel(logging.INFO)
    park = load_park(park_file)
    simulated = (devices or park.devices) == "simulated"
    if not simulated:
        for given, option in ((speed, "--speed"), (start, "--start"), (faults, "--faults")):
            if given is not None:
                raise BadInput(f"{option} is for simulated devices; field devices run on the wall clock")
    tariff = _park_tariff(park, park_file) if park.tariff else None  # no tariff: no plans
    fault_list = load_faults(faults, park) if faults else []
    limits = load_fault_thresholds(thresholds) if thresholds else FaultThresholds()
    user_store = _load_users(users)
    device_maps = _park_point_maps(park, park_file)
    url = _history_url(park, history)
    store = _open_history(url)
    episodes = FaultEpisodeStore(store)
    live = LiveState()
    continued = None  # the end of the history a simulated run continues
    simulator, clock = None, WallClock()
    if simulated:
        try:
            now, continued = _simulation_start(park, start, store, episodes, url)
        except BadInput:
            store.close()
            raise
        simulator = ParkSimulator(park, ParkEnvironment(park), now)
        for fault in fault_list:
            simulator.inject_fault(fault)
        if continued is not None:
            simulator.restore_state({pid: reading.value for pid, reading in continued.latest.items()})
            close_left_open(episodes, now, DEFAULT_PRIORITIES)  # the detector continues its rules' episodes
        clock = SimulationClock(now, speed or DEFAULT_SPEED)
    writer = _spooled_writer(store, spool or _default_spool(url, park_file), spool_max_rows)
    twin_sink = TwinSink(live, writer, flush_every=5)
    notifier = _alarm_notifier(park, user_store, episodes)  # before the first episode is saved
    # fault episodes as the readings arrive; the point maps' poll periods and the start-up grace are
    # wall-clock seconds and the twin clock runs `speed` times faster, so in twin time both scale with it
    twin_s_per_wall_s = clock.speed if simulated else 1.0
    detector = LiveFaultDetector(park, limits, episodes,
                                 poll_periods=poll_periods_in_twin_time(device_maps, twin_s_per_wall_s),
                                 startup_grace=timedelta(seconds=limits.startup_grace_s * twin_s_per_wall_s))
    readback = SetpointReadback(park, episodes.save, clock.now_utc)  # do the devices hold what was written?
    sinks = FanOutSink([twin_sink, detector, readback], store_ok=lambda: writer.health().state == "ok")
    feed = ProtocolFeed(simulator, clock, sinks, device_maps, audit=writer, points=park.points)

    def write_through_protocols(point_id: str, value: float, who: str) -> None:
        record = feed.write(point_id, value, who=f"dashboard:{who}")
        if record.result != "ok":
            raise ValueError(f"{point_id}: {record.result}")

    def write_setpoints(values: dict[str, float | None], who: str) -> dict[str, str]:
        return {point: record.result for point, record in feed.write_many(values, who).items()}

    operation = None if tariff is None else _live_operation(
        park, tariff, live, store, episodes, write_setpoints, clock.now_utc, twin_s_per_wall_s, approval, replan_min,
        plan_time_limit, readback.written, feed.overrides)
    hold_s = _hold_limits(park, device_maps, clock.speed if simulated else 1.0)  # readings hold in twin time
    dash_app = create_app(park, live, store, write_point=write_through_protocols, users=user_store,
                          devices=feed, plan=operation, now_utc=clock.now_utc, **web.app_options(),
                          storage=lambda: writer.health().as_json(), audit=writer.record_write,
                          **_energy_providers(park, store, episodes, clock.now_utc, hold_s))
    if notifier is not None:
        notifier.start()
    writer.start()
    try:
        feed.start()
    except OSError as exc:
        if notifier is not None:
            notifier.stop()
        writer.close()
        store.close()
        errors.print(f"[red]error:[/red] cannot start the device servers: {exc} (is another `parktwin run` or "
                     "`parktwin devices serve` using the ports of the point maps?)", highlight=False)
        raise typer.Exit(EXIT_FAILURE) from None
    where = f"simulating at {speed or DEFAULT_SPEED:g}x from {now:%Y-%m-%d %H:%M} UTC" if simulated else \
        "field devices on the wall clock"
    if continued is not None:
        where += (f" (the history's last record is at {continued.last_record_utc:%Y-%m-%d %H:%M:%S} UTC; storage "
                  "levels and counters continue from its last readings)")
    console.print(f"[bold]{park.name}[/bold]: {where}; {len(device_maps)} devices polled over Modbus TCP and "
                  f"BACnet/IP; history in {url}")
    if operation is not None:
        operation.start()  # the first plan is made in the background while the dashboard starts
        console.print(f"controller: re-plans every {replan_min} min, dispatches every 15-min step; {approval} approval"
                      + (" (nothing is written before a trader approves)" if approval == "manual" else ""))
    else:
        console.print("no tariff in the park file: no plans, nothing dispatched")
    console.print(f"dashboard: http://{host}:{port}/   (Ctrl+C stops)")
    trimmer = HeapTrimmer()  # a long run's resident memory stays near what it holds (twin/heap.py)
    trimmer.start()
    try:
        _serve(dash_app, host, port, web)
    finally:
        trimmer.stop()
        if operation is not None:
            operation.stop()  # setpoints released to the plant schedule while the devices still answer
        feed.stop()
        twin_sink.flush()
        if notifier is not None:
            notifier.stop()  # what was queued is still delivered
        _report_history(writer.close(), twin_sink.received)
        store.close()


DEFAULT_SPEED = 60.0
"""Simulated seconds per wall-clock second of `parktwin run` on simulated devices."""


def _default_spool(history_url: str, park_file: Path) -> Path:
    """Where a run's spool goes unless ``--spool`` says: beside a SQLite history file, else beside the park file."""
    path = history_url.removeprefix("sqlite:///")
    if "://" not in path:
        return Path(f"{path}-spool.sqlite")
    return park_file.parent / f"{park_file.stem}.history-spool.sqlite"


def _spooled_writer(store, spool_path: Path, max_rows: int):
    """The live run's writer in front of the history store, through a spool at ``spool_path``; bad input
    (exit 2) when the spool cannot be made there."""
    import sqlite3

    from twin.history.spool import ReadingSpool
    from twin.history.writer import SpooledWriter

    try:
        spool = ReadingSpool(spool_path, max_rows)
    except sqlite3.Error as exc:
        store.close()
        raise BadInput(f"--spool: cannot open {spool_path} ({exc}); does its folder exist and is it writable?") \
            from None
    writer = SpooledWriter(store, spool)
    if len(spool):
        console.print(f"history spool {spool_path}: {len(spool):,} readings of an earlier run wait; they are written "
                      "to the history first")
    return writer


def _report_history(health, received: int) -> None:
    """The run's closing line on its history: readings received, written, waiting in the spool, lost."""
    line = (f"history: {received:,} readings received, {health.written_rows:,} written, "
            f"{health.spooled_rows:,} waiting in the spool, {health.lost_rows:,} lost")
    if health.spooled_rows:
        line += (f" (the store is unavailable: {health.reason}); the next `parktwin run` with the spool "
                 f"{health.spool_path} writes them")
    console.print(line, highlight=False)


def _simulation_start(park: Park, start: str | None, store, episodes, url: str):
    """(start of a simulated run in UTC, the end of the history it continues or None).

    On a history that holds readings the run continues after its last record, on a whole simulation step;
    a ``--start`` day that does not begin after that record is refused (two runs would interleave in one
    history). Without readings: local midnight of ``--start``, else the wall clock's minute."""
    from twin.resume import first_step_after, history_end

    end = history_end(store, episodes)
    if start is None:
        if end is None:
            return datetime.now(UTC).replace(second=0, microsecond=0), None
        return first_step_after(end.last_record_utc, timedelta(seconds=park.simulation.step_s)), end
    start_utc = _local_midnight(_parse_day(start, "--start"), park)
    if end is not None and start_utc <= end.last_record_utc:
        raise BadInput(f"--start {start} ({start_utc:%Y-%m-%d %H:%M} UTC) is not after the end of the history in "
                       f"{url}: its last stored reading is at {end.last_reading_utc:%Y-%m-%d %H:%M:%S} UTC"
                       + (f" and its last record at {end.last_record_utc:%Y-%m-%d %H:%M:%S} UTC"
                          if end.last_record_utc > end.last_reading_utc else "")
                       + "; leave out --start to continue after it, or give another --history")
    return start_utc, end


def _serve(dash_app, host: str, port: int, web: WebOptions) -> None:
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


def _alarm_notifier(park: Park, user_store, episodes):
    """The notifier of new high and critical alarms to the users file's subscribers, listening to the fault
    episode store (so the detector's, the read-back's and the controller's new episodes all reach it); None
    when nobody subscribes."""
    from energy.notifications import AlarmNotifier

    subscribers = user_store.subscriptions()
    if not subscribers:
        return None
    notifier = AlarmNotifier(park.name, user_store.notification_settings, subscribers, episodes.shelves)
    episodes.listen(notifier.submit)
    console.print(f"notifications: new high and critical alarms to {', '.join(sorted(subscribers))}")
    return notifier


def _live_operation(park: Park, tariff, live, store, episodes, write, now_utc, speed: float, approval: str,
                    replan_min: int, mip_time_limit_s: float | None, on_written, overrides):
    """The controller of a live park on the protocol field, with history forecasts; plan expiry raises
    a ``plan_expired`` alarm in the fault episodes while it lasts."""
    from energy.forecast import HistoryForecaster, HistoryLoadSource
    from optimizer.controller import Authority, Controller, TariffPrices
    from optimizer.operation import LiveOperation
    from optimizer.plan import plan_context, plan_options
    from protocols.field import ProtocolField
    from twin.fault_episodes import FaultEpisode, Priority

    field = ProtocolField(park, live, store, write, now_utc, tariff.demand_interval_min, on_written, overrides)
    controller = Controller(park, field, HistoryForecaster(park, HistoryLoadSource(store, park)), TariffPrices(tariff),
                            plan_options(tariff, mip_time_limit_s=mip_time_limit_s), plan_context(park, tariff),
                            authority=Authority(approval), replan_min=replan_min, with_baselines=True,
                            who=f"controller:{approval}", keep_plans=4)
    open_alarm: list[FaultEpisode] = []

    def alarm(rule_id: str, message: str | None) -> None:
        now = now_utc()
        if message is not None and not open_alarm:
            open_alarm.append(FaultEpisode(rule_id, "controller", now, None, Priority.CRITICAL, {"reason": message}))
            episodes.save(open_alarm)
        elif message is None and open_alarm:
            ended = open_alarm.pop()
            episodes.save([FaultEpisode(ended.rule_id, ended.asset_id, ended.start_utc, max(now, ended.start_utc +
                                        timedelta(seconds=1)), ended.priority, ended.evidence)])

    return LiveOperation(controller, now_utc, tariff.currency, on_alarm=alarm,
                         review_time=park.dispatch.review_time_local, speed=speed)


# ---------------------------------------------------------------- energy: forecast, kpi, faults

def _hold_limits(park: Park, device_maps: list, time_scale: float) -> dict[str, float]:
    """How long each point's reading holds in the KPI engine (energy.aligned.hold_limits_s): its point map's
    poll period times ``time_scale`` (simulated seconds per wall second of the run that recorded it)."""
    from energy.aligned import hold_limits_s

    return hold_limits_s(park, {pid: device.poll_period_s for device in device_maps for pid in device.point_ids},
                         time_scale)


def _park_point_maps_if_any(park: Park) -> list:
    from protocols.pointmap import load_point_maps

    return load_point_maps(park.point_maps, park) if park.point_maps else []


def _energy_providers(park: Park, store, episodes, now_utc=None, hold_s: dict[str, float] | None = None) -> dict:
    """The dashboard's KPI and fault providers from the energy models (keyword arguments of create_app);
    now_utc: the clock acknowledgements are stamped with (default: the wall clock)."""
    from energy.providers import EnergyKpiProvider, StoredFaultProvider
    from energy.tariff import load_tariff

    tariff = load_tariff(park.tariff) if park.tariff else None
    faults = (StoredFaultProvider(episodes, park=park) if now_utc is None
              else StoredFaultProvider(episodes, now_utc, park=park))
    return {"kpi": EnergyKpiProvider(park, store, tariff, hold_s), "faults": faults}


JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables")]
FromOption = Annotated[str, typer.Option("--from", help="Start, YYYY-MM-DD[THH:MM] in the park's time zone")]
ToOption = Annotated[str, typer.Option("--to", help="End (exclusive), YYYY-MM-DD[THH:MM]")]


def _parse_local_time(text: str, option: str, park: Park) -> datetime:
    """UTC time of YYYY-MM-DD (local midnight) or YYYY-MM-DDTHH:MM (local unless it carries an offset)."""
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise BadInput(f"{option}: {text!r} is not a date YYYY-MM-DD or a time YYYY-MM-DDTHH:MM") from None
    _check_year(parsed.year, text, option)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=ZoneInfo(park.site.timezone))
    return parsed.astimezone(UTC)


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
    weather: Annotated[Path | None, typer.Option(
        help="Weather CSV (time, ghi[, dni, dhi], temp_air[, wind_speed])")] = None,
    history: HistoryOption = None,
    annual_tmy: Annotated[Path | None, typer.Option(
        "--annual-tmy", help="Also report each array's annual AC energy over this TMY3 file's year")] = None,
    json_output: JsonFlag = False,
) -> None:
    """Forecast PV per array and loads per subsystem, hour by hour."""
    import pandas as pd

    from energy.forecast import (
        FORECAST_COLUMNS,
        HistoryForecaster,
        HistoryLoadSource,
        LoadForecaster,
        annual_pv_energy_kwh,
        forecast_weather,
        hourly_load_history,
        pv_forecast_kw,
    )
    from energy.weather import read_weather_csv
    from energy.weather_forecast import CsvWeatherForecast

    park = load_park(park_file)
    start_utc = _parse_local_time(start, "--start", park)
    notes: list[str] = []
    frame = None
    if weather is not None:
        if not weather.is_file():
            raise BadInput(f"--weather: file not found: {weather}")
        site = park.site
        frame, notes = read_weather_csv(weather, site.latitude_deg, site.longitude_deg, site.altitude_m,
                                        tz=site.timezone)
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
    with _open_history(_history_url(park, history)) as store:
        planner = HistoryForecaster(park, HistoryLoadSource(store, park),
                                    weather=CsvWeatherForecast(park, weather) if weather is not None else None)
        plan_inputs = planner.forecast(start_utc, hours, pd.Timedelta(hours=1))
    plan_source = f"file {weather}" if weather is not None else park.weather_forecast.source
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
            "plan_inputs": {"weather_forecast": plan_source, "load_method": planner.method,
                            **{name: plan_inputs[name].round(3).tolist() for name in FORECAST_COLUMNS}},
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
    console.print(f"plan inputs (weather forecast: {plan_source}, loads by {planner.method}): "
                  f"cooling {plan_inputs['cooling_load_kwth'].sum():,.0f} kWhth, other loads "
                  f"{plan_inputs['other_load_kw'].sum():,.0f} kWh, PV {plan_inputs['pv_available_kw'].sum():,.0f} kWh")
    if annual is not None:
        per_array = ", ".join(f"{a} {kwh:,.0f} kWh" for a, kwh in annual["arrays_kwh"].items())
        console.print(f"annual AC energy over {annual_tmy.name}: {per_array}; total {annual['total_kwh']:,.0f} kWh")


RecordedSpeedOption = Annotated[float, typer.Option(
    "--speed", min=0.01, max=3600, help="Simulated seconds per wall-clock second of the `parktwin run` that "
                                        "recorded the history (its --speed): scales the point maps' poll periods, "
                                        "which limit how long a reading holds in the KPIs. 1 for field devices "
                                        "and simulated history")]


@app.command()
def kpi(
    park_file: ParkFile,
    from_: FromOption,
    to: ToOption,
    history: HistoryOption = None,
    prices: Annotated[Path | None, typer.Option(
        help="Day-ahead price CSV used instead of the tariff's energy prices")] = None,
    baseline_cost: Annotated[float | None, typer.Option(
        help="Baseline cost of the same period, for savings")] = None,
    speed: RecordedSpeedOption = 1.0,
    json_output: JsonFlag = False,
) -> None:
    """Energy KPIs of a period from history (the KPI engine the dashboard uses): consumption, PV, grid,
    self-sufficiency, peak demand, energy cost, month-to-date demand charge, CO2, plant COP, ice; each energy
    figure with its coverage."""
    from energy.kpi import energy_kpis
    from energy.prices import load_price_csv
    from energy.tariff import load_tariff

    park = load_park(park_file)
    start, end = _period(park, from_, to)
    tariff = load_tariff(park.tariff) if park.tariff else None
    price_series = load_price_csv(prices, park.site.timezone) if prices else None
    hold_s = _hold_limits(park, _park_point_maps_if_any(park), speed)
    with _open_history(_history_url(park, history)) as store:
        try:
            kpis = energy_kpis(store, park, start, end, tariff, price_series, baseline_cost, hold_s)
        except ValueError as exc:
            raise BadInput(f"--prices {prices}: {exc}") from None
    if not kpis.known:
        errors.print(f"[red]error:[/red] no readings in {_history_url(park, history)} from {from_} to {to}")
        raise typer.Exit(EXIT_FAILURE)
    if json_output:
        _print_json(kpis.as_dict())
        return
    table = Table(title=f"{park.name}: energy KPIs {_local(start, park)} to {_local(end, park)}")
    table.add_column("KPI")
    table.add_column("value", justify="right")
    table.add_column("coverage", justify="right")
    cover = kpis.coverage
    for name, value in kpis.consumption_kwh.items():
        table.add_row(f"consumption {name}", f"{value:,.0f} kWh",
                      f"{cover['consumption_kwh' if name == 'total' else f'consumption_kwh.{name}']:.1%}")
    rows = [("PV production", kpis.pv_kwh, "{:,.0f} kWh", "pv_kwh"),
            ("grid import", kpis.grid_import_kwh, "{:,.0f} kWh", "grid_import_kwh"),
            ("grid export", kpis.grid_export_kwh, "{:,.0f} kWh", "grid_export_kwh"),
            ("battery charge", kpis.battery_charge_kwh, "{:,.0f} kWh", "battery_kwh"),
            ("battery discharge", kpis.battery_discharge_kwh, "{:,.0f} kWh", "battery_kwh"),
            ("self-consumption", kpis.self_consumption, "{:.1%}", None),
            ("self-sufficiency", kpis.self_sufficiency, "{:.1%}", None),
            ("peak demand (15 min)", kpis.peak_demand_kw, "{:,.0f} kW", "grid_import_kwh"),
            ("load factor", kpis.load_factor, "{:.3f}", None)]
    rows += [(f"energy cost {p}", c, "{:,.0f} CNY", "grid_import_kwh")
             for p, c in (kpis.energy_cost_by_period_cny or {}).items()]
    rows += [("export revenue", kpis.export_revenue_cny, "{:,.0f} CNY", "grid_export_kwh"),
             ("energy cost, net of export", kpis.cost_cny, "{:,.0f} CNY", "grid_import_kwh"),
             ("billed demand, month to date", kpis.billed_demand_kw, "{:,.0f} kW", None),
             ("demand charge, month to date", kpis.demand_charge_cny, "{:,.0f} CNY", None),
             ("CO2", kpis.co2_t, "{:,.1f} t", "grid_import_kwh"),
             ("plant COP", kpis.plant_cop, "{:.2f}", "cooling_kwhth"),
             ("plant kW/ton", kpis.plant_kw_per_ton, "{:.3f}", "cooling_kwhth"),
             ("ice used (melt)", kpis.ice_melt_kwhth, "{:,.0f} kWhth", "ice_melt_kwhth"),
             ("savings vs baseline", kpis.savings_cny, "{:,.0f} CNY", None)]
    for label, value, fmt, covered_by in rows:
        table.add_row(label, "—" if value is None else fmt.format(value),
                      "" if covered_by is None else f"{cover[covered_by]:.1%}")
    console.print(table)
    if kpis.peak_demand_start_utc is not None:
        console.print(f"peak demand interval began {_local(kpis.peak_demand_start_utc, park)} ({park.site.timezone})")
    if kpis.billed_demand_start_utc is not None:
        console.print(f"billed demand interval of the month began {_local(kpis.billed_demand_start_utc, park)}")


@app.command()
def faults(
    park_file: ParkFile,
    from_: FromOption,
    to: ToOption,
    history: HistoryOption = None,
    thresholds: Annotated[Path | None, typer.Option(help="YAML file overriding fault-rule thresholds")] = None,
    json_output: JsonFlag = False,
) -> None:
    """Detect faults in a period of history, store the episodes with it, and print them with fault KPIs and
    alarm-system KPIs."""
    from energy.alarm_kpis import alarm_system_kpis
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
    alarm_system = alarm_system_kpis(episodes, start, end)
    if json_output:
        _print_json({
            "from_utc": start.isoformat(), "to_utc": end.isoformat(),
            "episodes": [{"rule_id": e.rule_id, "asset_id": e.asset_id, "point_id": e.point_id or None,
                          "start_utc": e.start_utc.isoformat(), "end_utc": e.end_utc.isoformat() if e.end_utc else None,
                          "priority": e.priority.label, "suppressed_by": e.suppressed_by, "evidence": e.evidence}
                         for e in episodes],
            "kpis_per_asset": {a: k.as_dict() for a, k in per_asset.items()},
            "kpis_per_kind": {kind: k.as_dict() for kind, k in per_kind.items()},
            "alarm_system": alarm_system,
        })
        return
    table = Table(title=f"{park.name}: {len(episodes)} fault episode(s) {_local(start, park)} to {_local(end, park)}")
    for column in ("rule", "asset", "point", "start", "end", "priority", "suppressed by", "evidence"):
        table.add_column(column)
    for e in episodes:
        table.add_row(e.rule_id, e.asset_id, e.point_id, _local(e.start_utc, park),
                      _local(e.end_utc, park) if e.end_utc else "active", e.priority.label, e.suppressed_by or "",
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
    _print_alarm_system(alarm_system)


def _print_alarm_system(kpis: dict) -> None:
    """The alarm-system KPIs (energy.alarm_kpis) as a table."""
    table = Table(title="alarm system (ISA-18.2 / EEMUA 191)")
    table.add_column("KPI")
    table.add_column("value", justify="right")
    for name, value in (
            ("alarms (annunciated)", f"{kpis['alarms']:,}"), ("suppressed by cause", f"{kpis['suppressed']:,}"),
            ("alarms per operator hour", f"{kpis['alarms_per_operator_hour']:.2f}"),
            ("10-min periods in flood", f"{kpis['flood_periods_pct']:.2f} %"),
            ("chattering alarms", str(len(kpis["chattering_alarms"]))),
            ("standing alarms (> 24 h)", str(len(kpis["standing_alarms"]))),
            ("priorities", ", ".join(f"{label} {count} ({kpis['priority_pct'][label]:.0f} %)"
                                     for label, count in kpis["priority_counts"].items()))):
        table.add_row(name, value)
    console.print(table)


# ----------------------------------------------------------------- dashboard

UsersFileArgument = Annotated[Path, typer.Argument(help="Users YAML file (created when missing)", metavar="FILE")]
users_app = typer.Typer(no_args_is_help=True, help="Manage who may sign in to the dashboard, and with which role.")
app.add_typer(users_app, name="users")


def _load_users(path: Path | None):
    from dashboard.auth import UserStore

    return UserStore.load(path) if path is not None else UserStore()


@app.command()
@_web_options
def dashboard(
    park_file: ParkFile,
    history: HistoryOption = None,
    host: Annotated[str, typer.Option(help="Dashboard address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Dashboard port")] = 8050,
    users: Annotated[Path | None, typer.Option(help="Users file for sign-in (see `parktwin users add`)")] = None,
    speed: RecordedSpeedOption = 1.0,
    web: WebOptions = WebOptions(),  # the options of @_web_options
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
    dash_app = create_app(park, live, store, users=user_store, **web.app_options(),
                          **_energy_providers(park, store, FaultEpisodeStore(store),
                                              hold_s=_hold_limits(park, _park_point_maps_if_any(park), speed)))
    console.print(f"[bold]{park.name}[/bold]: dashboard over {url}")
    console.print(f"dashboard: http://{host}:{port}/   (Ctrl+C stops)")
    try:
        _serve(dash_app, host, port, web)
    finally:
        store.close()


@users_app.command("add")
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


# ----------------------------------------------------------------- dispatch optimizer (plan, backtest)

@app.command()
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
    from energy.environment import ParkEnvironment
    from energy.prices import load_price_csv
    from optimizer.inputs import InitialState, horizon_coverage_problem, read_inputs_csv
    from optimizer.park_inputs import park_horizon_inputs, prices_cover, simulated_loads
    from optimizer.plan import make_plan, plan_context, plan_options
    from optimizer.solve import SOLVERS

    if solver not in SOLVERS:
        raise BadInput(f"--solver: {solver!r} is not one of {', '.join(SOLVERS)}")
    park = load_park(park_file)
    tariff = _park_tariff(park, park_file)
    day = _parse_day(date_, "--date")
    start_utc = _local_midnight(day, park)
    if inputs is not None:
        horizon = read_inputs_csv(inputs, park.site.timezone, tariff.export_price_cny_per_kwh)
        problem = horizon_coverage_problem(horizon.index, start_utc, _local_midnight(day + timedelta(days=1), park),
                                           park.site.timezone)
        if problem:
            raise BadInput(f"--inputs {inputs}: {problem} (--date {day})")
    else:
        loads = simulated_loads(park, ParkEnvironment(park), start_utc, start_utc + timedelta(days=1))
        price_series = load_price_csv(prices, park.site.timezone) if prices else \
            tariff.energy_price_cny_per_kwh(loads.index)
        problems = prices_cover(price_series, loads.index)
        if problems:
            source = f"--prices {prices}" if prices else f"tariff {park.tariff}"
            raise BadInput(f"{source}: " + "; ".join(problems))
        horizon = park_horizon_inputs(loads, price_series, tariff.export_price_cny_per_kwh)
    options = plan_options(tariff)  # a MIP's search bounded by nodes: the same plan on any machine
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
    from optimizer.backtest import FORECASTS, OPTIMAL
    from optimizer.backtest import backtest as run_backtest
    from optimizer.baselines import BASELINES
    from optimizer.solve import SOLVERS

    if solver not in SOLVERS:
        raise BadInput(f"--solver: {solver!r} is not one of {', '.join(SOLVERS)}")
    if forecast not in FORECASTS:
        raise BadInput(f"--forecast: {forecast!r} is not one of {', '.join(FORECASTS)}")

    park = load_park(park_file)
    tariff = _park_tariff(park, park_file)
    start_local = _parse_day(start, "--start")
    start_utc = _local_midnight(start_local, park)
    strategies = (OPTIMAL,) + BASELINES
    steps_each = days * 96
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeRemainingColumn(), console=errors) as progress:
        tasks = {s: progress.add_task(s, total=steps_each) for s in strategies}
        result = run_backtest(park, ParkEnvironment(park), tariff, start_utc, days, strategies, replan_min,
                              workers=workers, solver=solver, forecast=forecast, warmup_days=warmup_days,
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
        objective = s.objective_cny if s.objective_cny is None else round(s.objective_cny, 2)
        console.print(f"solver {s.solver}: {s.status}, objective {objective}, "
                      f"solve {1000 * s.solve_time_s:.1f} ms, gap {s.mip_gap}")
    for note in result.notes:
        console.print(f"note: {note}")


def _local_midnight(day: date, park: Park) -> datetime:
    """The start of a local day of the park, in UTC."""
    return datetime.combine(day, datetime.min.time(), tzinfo=ZoneInfo(park.site.timezone)).astimezone(UTC)


def _parse_day(text: str, option: str) -> date:
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise BadInput(f"{option}: {text!r} is not a date of the form YYYY-MM-DD") from None
    _check_year(day.year, text, option)
    return day


def _check_year(year: int, text: str, option: str) -> None:
    if not INPUT_YEARS[0] <= year <= INPUT_YEARS[1]:
        raise BadInput(f"{option}: {text!r} is outside the years {INPUT_YEARS[0]}-{INPUT_YEARS[1]}")


# ------------------------------------------------------------------ devices and points (protocols)
# `points read/write` talk to the device servers named in the park's point maps over the real
# protocol, so `parktwin devices serve` or `parktwin run` must be serving them.

devices_app = typer.Typer(no_args_is_help=True, help="Simulated field devices (Modbus TCP and BACnet/IP servers).")
points_app = typer.Typer(no_args_is_help=True, help="Point maps and single points on the field devices.")
app.add_typer(devices_app, name="devices")
app.add_typer(points_app, name="points")
MapFile = Annotated[Path, typer.Argument(help="Point map YAML file", metavar="MAP.yaml")]


def _park_point_maps(park: Park, park_file: Path) -> list:
    from protocols.pointmap import load_point_maps

    if not park.point_maps:
        raise BadInput(f"{park_file}: point_maps: the park names no folder of point maps")
    return load_point_maps(park.point_maps, park)


@devices_app.command("serve")
def devices_serve(
    park_file: ParkFile,
    speed: Annotated[float, typer.Option(min=0.01, max=3600, help="Simulated seconds per wall-clock second")] = 1.0,
    seconds: Annotated[float | None, typer.Option(help="Stop after this many seconds (default: until Ctrl+C)")] = None,
) -> None:
    """Serve every device of the park's point maps, values following the simulator; prints each address."""
    import asyncio

    from energy.environment import ParkEnvironment
    from protocols.devices.host import DeviceHost
    from twin.runtime import SimulationClock
    from twin.sim import ParkSimulator

    park = load_park(park_file)
    device_maps = _park_point_maps(park, park_file)
    now = datetime.now(UTC).replace(microsecond=0)
    simulator = ParkSimulator(park, ParkEnvironment(park), now)
    clock = SimulationClock(now, speed)

    async def serve() -> None:
        host = DeviceHost(simulator, clock.now_utc, device_maps)
        try:
            await host.start()
        except OSError as exc:
            await host.stop()
            errors.print(f"[red]error:[/red] cannot start the device servers: {exc} (ports already in use?)",
                         highlight=False)
            raise typer.Exit(EXIT_FAILURE) from None
        table = Table(title=f"{park.name}: {len(host.servers)} devices", show_header=True)
        for column in ("device", "protocol", "address", "id / instance", "points"):
            table.add_column(column)
        for device in device_maps:
            unit = (f"device id {device.device_id}" if device.protocol == "modbus"
                    else f"device {device.device_instance}")
            table.add_row(device.name, device.protocol, f"{device.host}:{device.port}", unit, str(len(device.points)))
        console.print(table)
        console.print(f"simulating at {speed:g}x from {now:%Y-%m-%d %H:%M:%S} UTC (Ctrl+C stops)")
        stop = asyncio.Event()
        if seconds is not None:
            asyncio.get_running_loop().call_later(seconds, stop.set)
        try:
            await host.run(stop)
        finally:
            await host.stop()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        pass


@points_app.command("validate")
def points_validate(
    map_files: Annotated[list[Path], typer.Argument(help="Point map YAML files", metavar="MAP.yaml...")],
    park_file: Annotated[Path | None, typer.Option("--park", help="Also check every point binds to this park")] = None,
) -> None:
    """Check point map files: each on its own, no twin point fed by two of them, and with --park that every
    point feeds a twin point and none is fed by another map of the park's point-map folder too."""
    from protocols.pointmap import load_point_map, shared_point_problems

    park = load_park(park_file) if park_file else None
    devices = [(path, load_point_map(path, park)) for path in map_files]
    others = []
    if park is not None and park.point_maps:
        given = {path.resolve() for path in map_files}
        others = [(path, load_point_map(path)) for path in sorted(Path(park.point_maps).glob("*.yaml"))
                  if path.resolve() not in given]
    problems = shared_point_problems(devices + others)
    if problems:
        raise ConfigError(map_files[0] if len(map_files) == 1 else ", ".join(map(str, map_files)), problems)
    for map_file, device in devices:
        writable = sum(p.writable for p in device.points)
        console.print(f"{map_file}: valid {device.protocol} point map of device {device.name} at "
                      f"{device.host}:{device.port}; {len(device.points)} points ({writable} writable)")


@points_app.command("generate")
def points_generate(
    park_file: ParkFile,
    out: Annotated[Path, typer.Option(help="Folder to write one point map per device into")],
) -> None:
    """Write the point maps of the park's simulated devices (default ports) into a folder."""
    from protocols.devices.layout import render_default_point_maps

    park = load_park(park_file)
    out.mkdir(parents=True, exist_ok=True)
    files = render_default_point_maps(park)
    for name, text in files.items():
        (out / name).write_text(text, encoding="utf-8")
    console.print(f"wrote {len(files)} point maps into {out}")


@points_app.command("import")
def points_import(
    sheet: Annotated[Path, typer.Argument(help="CSV registry sheet, one row per point", metavar="SHEET.csv")],
    out: Annotated[Path, typer.Option(help="Point map YAML file to write")],
    protocol: Annotated[str, typer.Option(help="modbus or bacnet")],
    name: Annotated[str, typer.Option(help="Device name")],
    port: Annotated[int, typer.Option(min=1, max=65535, help="Device port")],
    host: Annotated[str, typer.Option(help="Device address")] = "127.0.0.1",
    device_id: Annotated[int, typer.Option(min=0, max=255, help="Modbus unit id")] = 1,
    device_instance: Annotated[int | None, typer.Option(help="BACnet device instance")] = None,
) -> None:
    """Turn a CSV registry sheet (columns named like point-map fields) into a validated point map."""
    from protocols.pointmap import import_csv, point_map_yaml

    fields: dict = {"protocol": protocol, "name": name, "host": host, "port": port}
    if protocol == "bacnet":
        if device_instance is None:
            raise BadInput("--device-instance: required for a BACnet device")
        fields["device_instance"] = device_instance
    else:
        fields["device_id"] = device_id
    device = import_csv(sheet, fields)
    out.write_text(f"# Point map imported from {sheet.name} by `parktwin points import`.\n" + point_map_yaml(device),
                   encoding="utf-8")
    console.print(f"wrote {len(device.points)} points of device {device.name} into {out}")


def _device_of(park_file: Path, point_id: str):
    park = load_park(park_file)
    for device in _park_point_maps(park, park_file):
        if point_id in device.point_ids:
            return park, device
    raise BadInput(f"point {point_id!r} is in none of the point maps of {park_file}")


async def _with_adapter(device, action):
    from protocols.adapters import open_adapters

    async with open_adapters([device]) as adapters:
        return await action(adapters[0])


@points_app.command("read")
def points_read(park_file: ParkFile, point_id: Annotated[str, typer.Argument(metavar="POINT_ID")]) -> None:
    """Read one point from its device over Modbus TCP or BACnet/IP."""
    import asyncio

    from protocols.coordinator import DeviceCoordinator
    from protocols.errors import BadReply
    from protocols.values import raw_text

    park, device = _device_of(park_file, point_id)

    async def read_with_retries(adapter):  # the map's timeout and retries, as polling uses them
        coordinator = DeviceCoordinator(adapter)
        return await coordinator.poll(), coordinator

    values, coordinator = asyncio.run(_with_adapter(device, read_with_retries))
    if coordinator.last_error:
        tries = f" (after {device.retries} retries)" if device.retries else ""
        hint = "" if isinstance(coordinator.last_exception, BadReply) else \
            " (is `parktwin devices serve` or `parktwin run` going?)"
        errors.print(f"[red]error:[/red] {escape(coordinator.last_error)}{tries}{hint}", highlight=False)
        raise typer.Exit(EXIT_FAILURE) from None
    value, quality, raw = values[point_id]
    shown = "unknown" if value is None else f"{value:.15g}"  # 15 significant digits: all a float64 holds exactly
    console.print(f"{point_id} = {shown} {park.points[point_id].unit if point_id in park.points else ''} "
                  f"({quality.label}; raw {raw_text(None if raw is None else raw.as_json())}) "
                  f"from {device.protocol} device {device.name} at {device.host}:{device.port}", highlight=False)


@points_app.command("write")
def points_write(
    park_file: ParkFile,
    point_id: Annotated[str, typer.Argument(metavar="POINT_ID")],
    value: Annotated[str, typer.Argument(metavar="VALUE", help="Engineering value, or 'null' to relinquish (BACnet)")],
    who: Annotated[str, typer.Option(help="Who asks for the write (recorded in the audit log)")] = "cli",
    history: HistoryOption = None,
) -> None:
    """Write one point (limits enforced) and record the attempt, accepted or refused, in the history store's
    audit log."""
    import asyncio
    import math

    from protocols.coordinator import write_result
    from twin.history import RELINQUISH, WriteRecord

    relinquish = value.strip().lower() in ("null", "relinquish")
    requested = RELINQUISH if relinquish else value.strip()

    def audited(number: float | None, result: str) -> None:
        _audit(park, history, WriteRecord(datetime.now(UTC), who, point_id, number, result, requested))

    def refuse(reason: str, message: str) -> BadInput:
        audited(None, f"refused: {reason}")
        return BadInput(message)

    park = load_park(park_file)
    try:
        park, device = _device_of(park_file, point_id)
    except BadInput as exc:
        raise refuse(f"unknown point: in none of the point maps of {park_file.name}", str(exc)) from None
    point = device.point(point_id)
    if not point.writable:
        raise refuse("not writable", f"{point_id} is not writable")
    number: float | None
    if relinquish:
        if device.protocol != "bacnet" and getattr(point, "fail_safe", None) is None:
            raise refuse("null on a Modbus point without a fail_safe (only BACnet points and Modbus points with "
                         "a fail_safe can be released)",
                         f"{point_id}: only BACnet points and Modbus points with a fail_safe can be released (null)")
        number = None
    else:
        try:
            number = float(value)
        except ValueError:
            raise refuse("not a number", f"VALUE: {value!r} is not a number (or null)") from None
        if not math.isfinite(number) or not point.low_limit <= number <= point.high_limit:
            result = f"refused: outside safe limits [{point.low_limit:g}, {point.high_limit:g}]"
            audited(number if math.isfinite(number) else None, result)
            raise BadInput(f"{point_id}: {number:g} is {result.removeprefix('refused: ')}")
    result = asyncio.run(_with_adapter(device, lambda adapter: write_result(adapter, point_id, number)))
    exit_code = {"ok": 0, "refused": EXIT_BAD_INPUT}.get(result.split(":")[0], EXIT_FAILURE)
    audited(number, result)
    if exit_code:
        errors.print(f"[red]error:[/red] {point_id}: {result}", highlight=False)
        raise typer.Exit(exit_code)
    console.print(f"{point_id} <- {'null (relinquished)' if number is None else f'{number:g}'}: ok "
                  f"({device.protocol} device {device.name} at {device.host}:{device.port})")


def _audit(park: Park, history: str | None, record) -> None:
    from twin.history import record_write

    with _open_history(_history_url(park, history)) as store:
        record_write(store, record)


@points_app.command("discover")
def points_discover(
    bacnet: Annotated[str, typer.Option("--bacnet", metavar="HOST:PORT", help="BACnet/IP device address")],
    out: Annotated[Path | None, typer.Option(help="Write the point-map skeleton here (default: print it)")] = None,
    timeout: Annotated[float, typer.Option(min=0.1, max=60, help="Seconds to wait for answers")] = 3.0,
) -> None:
    """Who-Is a BACnet device and walk its object list into a point-map skeleton to complete."""
    import asyncio

    from protocols.bacnet_client import make_client_application
    from protocols.discovery import discover_point_map
    from protocols.errors import DeviceUnreachable
    from protocols.pointmap import point_map_yaml

    host_part, _, port_part = bacnet.rpartition(":")
    if not host_part or not port_part.isdigit() or not 1 <= int(port_part) <= 65535:
        raise BadInput(f"--bacnet: {bacnet!r} is not HOST:PORT")

    async def discover():
        app = make_client_application()
        try:
            return await discover_point_map(app, host_part, int(port_part), timeout)
        finally:
            app.close()

    try:
        device = asyncio.run(discover())
    except DeviceUnreachable as exc:
        errors.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(EXIT_FAILURE) from None
    text = ("# Point-map skeleton from `parktwin points discover`: replace every todo.* id with the twin point\n"
            "# it feeds, set units, scale and the safe limits of writable points, then `parktwin points validate`.\n"
            + point_map_yaml(device))
    if out is None:
        console.print(text, markup=False, highlight=False)
    else:
        out.write_text(text, encoding="utf-8")
        console.print(f"wrote {len(device.points)} points of device {device.name} into {out}")



# ------------------------------------------------------------------ write audit log

@app.command()
def audit(
    park_file: ParkFile,
    from_: FromOption,
    to: ToOption,
    history: HistoryOption = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON lines, one write per line")] = False,
) -> None:
    """Every write attempt to a device point in a period, accepted or refused, oldest first: time, who, point,
    value (or what was asked for when nothing was written), result."""
    import itertools

    from twin.history import WRITE_PAGE_SIZE

    park = load_park(park_file)
    start, end = _period(park, from_, to)
    zone = ZoneInfo(park.site.timezone)
    period = f"from {_local(start, park)} to {_local(end, park)} ({park.site.timezone})"
    with _open_history(_history_url(park, history)) as store:
        records = store.iter_write_records(start, end)  # page by page: a long range never sits in memory
        first_page = list(itertools.islice(records, WRITE_PAGE_SIZE))
        if not first_page:
            (sys.stderr if json_output else sys.stdout).write(f"no writes {period}\n")  # stdout stays JSON lines
            return
        if json_output:
            for record in itertools.chain(first_page, records):
                sys.stdout.write(_audit_json(record) + "\n")
            return
        header = (f"time ({park.site.timezone})", "who", "point", "value", "result")
        widths = [max(len(cell) for cell in column) for column in
                  zip(header, *(_audit_cells(record, zone) for record in first_page))]
        count = 0
        for cells in itertools.chain([header], (_audit_cells(r, zone) for r in itertools.chain(first_page, records))):
            # columns are as wide as the first page needs, so later pages print as they arrive
            sys.stdout.write("  ".join(cell.ljust(width) for cell, width in zip(cells, widths)).rstrip() + "\n")
            count += 1
    sys.stdout.write(f"{count - 1:,} write(s) {period}\n")


def _audit_cells(record, zone: ZoneInfo) -> tuple[str, str, str, str, str]:
    """Table cells of one write record: local time to the millisecond, who, point, value (the number written,
    else what was asked for: relinquish, nan, inf, a text that is not a number), result."""
    local = record.ts_utc.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    value = record.requested if record.value is None else f"{record.value:g}"
    return local, record.who, record.point_id, value, record.result


def _audit_json(record) -> str:
    """One write record as a JSON line; a value JSON cannot hold (an infinity) becomes null."""
    import json
    import math

    value = record.value if record.value is not None and math.isfinite(record.value) else None
    return json.dumps({"ts_utc": record.ts_utc.isoformat(), "who": record.who, "point_id": record.point_id,
                       "value": value, "requested": record.requested, "result": record.result})


if __name__ == "__main__":
    main()
