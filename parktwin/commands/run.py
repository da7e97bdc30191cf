"""`parktwin run`: a park live, and its wiring: the protocol feed (simulated devices or the field's), history
store behind a spool, fault detection, setpoint read-back, alarm notifications, the rolling-horizon controller
and the dashboard."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, cast

import typer

from parktwin.commands.energy import hold_limits
from parktwin.commands.web import energy_providers, load_users, serve_dashboard
from parktwin.options import HistoryOption, ParkFile, WebOptions, local_midnight, parse_day, web_options
from parktwin.park_files import history_url, open_history, park_point_maps, park_tariff
from parktwin.terminal import EXIT_FAILURE, BadInput, console, errors
from twin.config import load_park
from twin.faults_file import load_faults
from twin.park import Park

if TYPE_CHECKING:
    from optimizer.controller import ApprovalMode

commands = typer.Typer()

DEFAULT_SPOOL_ROWS = 5_000_000
"""Readings `parktwin run`'s spool holds unless --spool-max-rows says: about 300 MB on disk, some 8 hours of
the demo park's live run (about 170 readings a second)."""

DEFAULT_SPEED = 60.0
"""Simulated seconds per wall-clock second of `parktwin run` on simulated devices."""


@commands.command()
@web_options
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
    web: WebOptions = WebOptions(),  # the options of @web_options
) -> None:
    """Run the park live: protocol adapters polling its devices (the simulated ones, or the field's), history
    store, the rolling-horizon controller and the dashboard. SIGINT and SIGTERM stop it: setpoints released,
    history flushed, exit 0."""
    from dashboard.app import create_app
    from energy.environment import ParkEnvironment
    from energy.fault_detection import LiveFaultDetector, poll_periods_in_twin_time
    from energy.fault_rules import DEFAULT_PRIORITIES, FaultThresholds, load_fault_thresholds
    from parktwin.resume import close_left_open
    from parktwin.runtime import FanOutSink, ProtocolFeed, SimulationClock, TwinSink, WallClock
    from protocols.readback import SetpointReadback
    from twin.heap import HeapTrimmer
    from twin.history import FaultEpisodeStore
    from twin.live import LiveState
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
    tariff = park_tariff(park, park_file) if park.tariff else None  # no tariff: no plans
    fault_list = load_faults(faults, park) if faults else []
    limits = load_fault_thresholds(thresholds) if thresholds else FaultThresholds()
    user_store = load_users(users)
    device_maps = park_point_maps(park, park_file)
    url = history_url(park, history)
    store = open_history(url)
    episodes = FaultEpisodeStore(store)
    writer = _spooled_writer(store, spool or _default_spool(url, park_file), spool_max_rows)
    writer.replay_spool()  # an earlier run's spooled readings first: they are part of the history it continues
    live = LiveState()
    continued = None  # the end of the history a simulated run continues
    simulator: ParkSimulator | None = None
    clock: SimulationClock | WallClock = WallClock()
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
    twin_sink = TwinSink(live, writer, flush_every=5)
    notifier = _alarm_notifier(park, user_store, episodes)  # before the first episode is saved
    # fault episodes as the readings arrive; the point maps' poll periods and the start-up grace are
    # wall-clock seconds and the twin clock runs `speed` times faster, so in twin time both scale with it
    twin_s_per_wall_s = clock.speed
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
        park, tariff, live, store, episodes, write_setpoints, clock.now_utc, twin_s_per_wall_s,
        cast("ApprovalMode", approval), replan_min, plan_time_limit, readback.written, feed.overrides)
    hold_s = hold_limits(park, device_maps, twin_s_per_wall_s)  # readings hold in twin time
    dash_app = create_app(park, live, store, write_point=write_through_protocols, users=user_store,
                          devices=feed, plan=operation, now_utc=clock.now_utc, **web.app_options(),
                          storage=lambda: writer.health().as_json(), audit=writer.record_write,
                          **energy_providers(park, store, episodes, clock.now_utc, hold_s))
    if notifier is not None:
        notifier.start()
    writer.start()
    run_start_utc = clock.now_utc()  # before the feed starts: no reading of this run is older
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
    _record_speed(store, run_start_utc, clock.speed)
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
        serve_dashboard(dash_app, host, port, web)
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


def _default_spool(url: str, park_file: Path) -> Path:
    """Where a run's spool goes unless ``--spool`` says: beside a SQLite history file (``url``), else beside the
    park file."""
    path = url.removeprefix("sqlite:///")
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


def _record_speed(store, start_utc: datetime, speed: float) -> None:
    """Keep the run's clock speed in the history for `kpi` and `dashboard` over it; a store unavailable now
    (the readings wait in the spool) loses only that, said on stderr."""
    from twin.history import StorageUnavailable
    from twin.history.runs import record_run_speed

    try:
        record_run_speed(store, start_utc, speed)
    except StorageUnavailable as exc:
        errors.print(f"note: this run's speed is not recorded in the history ({exc}); `parktwin kpi` and "
                     f"`parktwin dashboard` over it need --speed {speed:g}", highlight=False)


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
    from parktwin.resume import first_step_after, history_end

    end = history_end(store, episodes)
    if start is None:
        if end is None:
            return datetime.now(UTC).replace(second=0, microsecond=0), None
        return first_step_after(end.last_record_utc, timedelta(seconds=park.simulation.step_s)), end
    start_utc = local_midnight(parse_day(start, "--start"), park)
    if end is not None and start_utc <= end.last_record_utc:
        raise BadInput(f"--start {start} ({start_utc:%Y-%m-%d %H:%M} UTC) is not after the end of the history in "
                       f"{url}: its last stored reading is at {end.last_reading_utc:%Y-%m-%d %H:%M:%S} UTC"
                       + (f" and its last record at {end.last_record_utc:%Y-%m-%d %H:%M:%S} UTC"
                          if end.last_record_utc > end.last_reading_utc else "")
                       + "; leave out --start to continue after it, or give another --history")
    return start_utc, end


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


def _live_operation(park: Park, tariff, live, store, episodes, write, now_utc, speed: float, approval: ApprovalMode,
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


