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
    """Run the park live: simulated devices, protocol adapters polling them, history store and dashboard."""
    from dashboard.app import create_app
    from energy.environment import ParkEnvironment
    from twin.live import LiveState
    from twin.runtime import ProtocolFeed, SimulationClock, TwinSink
    from twin.sim import ParkSimulator

    park = load_park(park_file)
    user_store = _load_users(users)
    device_maps = _park_point_maps(park, park_file)
    url = _history_url(park, history)
    store = _open_history(url)
    live = LiveState()
    now = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    simulator = ParkSimulator(park, ParkEnvironment(park), now)
    clock = SimulationClock(now, speed)
    feed = ProtocolFeed(simulator, clock, TwinSink(live, store, flush_every=5), device_maps, audit=store)

    def write_through_protocols(point_id: str, value: float, who: str) -> None:
        record = feed.write(point_id, value, who=f"dashboard:{who}")
        if record.result != "ok":
            raise ValueError(f"{point_id}: {record.result}")

    dash_app = create_app(park, live, store, write_point=write_through_protocols, users=user_store,
                          devices=feed, now_utc=clock.now_utc)
    try:
        feed.start()
    except OSError as exc:
        store.close()
        errors.print(f"[red]error:[/red] cannot start the device servers: {exc} (is another `parktwin run` or "
                     "`parktwin devices serve` using the ports of the point maps?)", highlight=False)
        raise typer.Exit(EXIT_FAILURE) from None
    console.print(f"[bold]{park.name}[/bold]: simulating at {speed:g}x from {now:%Y-%m-%d %H:%M} UTC; "
                  f"{len(device_maps)} devices polled over Modbus TCP and BACnet/IP; history in {url}")
    console.print(f"dashboard: http://{host}:{port}/   (Ctrl+C stops)")
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
    seconds: Annotated[Optional[float], typer.Option(help="Stop after this many seconds (default: until Ctrl+C)")] = None,
) -> None:
    """Serve every device of the park's point maps, values following the simulator; prints each address."""
    import asyncio

    from energy.environment import ParkEnvironment
    from protocols.devices.host import DeviceHost
    from twin.runtime import SimulationClock
    from twin.sim import ParkSimulator

    park = load_park(park_file)
    device_maps = _park_point_maps(park, park_file)
    now = datetime.now(timezone.utc).replace(microsecond=0)
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
            unit = f"device id {device.device_id}" if device.protocol == "modbus" else f"device {device.device_instance}"
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
    map_file: MapFile,
    park_file: Annotated[Optional[Path], typer.Option("--park", help="Also check every point binds to this park")] = None,
) -> None:
    """Check a point map file (with --park: that every point feeds a twin point)."""
    from protocols.pointmap import load_point_map

    park = load_park(park_file) if park_file else None
    device = load_point_map(map_file, park)
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
    device_instance: Annotated[Optional[int], typer.Option(help="BACnet device instance")] = None,
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

    from protocols.errors import DeviceUnreachable

    park, device = _device_of(park_file, point_id)
    try:
        values = asyncio.run(_with_adapter(device, lambda adapter: adapter.read()))
    except DeviceUnreachable as exc:
        errors.print(f"[red]error:[/red] {exc} (is `parktwin devices serve` or `parktwin run` going?)")
        raise typer.Exit(EXIT_FAILURE) from None
    value, quality = values[point_id]
    shown = "unknown" if value is None else f"{value:.6g}"
    console.print(f"{point_id} = {shown} {park.points[point_id].unit if point_id in park.points else ''} "
                  f"({quality.label}) from {device.protocol} device {device.name} at {device.host}:{device.port}")


@points_app.command("write")
def points_write(
    park_file: ParkFile,
    point_id: Annotated[str, typer.Argument(metavar="POINT_ID")],
    value: Annotated[str, typer.Argument(metavar="VALUE", help="Engineering value, or 'null' to relinquish (BACnet)")],
    who: Annotated[str, typer.Option(help="Who asks for the write (recorded in the audit log)")] = "cli",
    history: HistoryOption = None,
) -> None:
    """Write one point (limits enforced) and record the write in the history store's audit log."""
    import asyncio
    import math

    from protocols.coordinator import write_result
    from twin.history import WriteRecord

    park, device = _device_of(park_file, point_id)
    point = device.point(point_id)
    if not point.writable:
        raise BadInput(f"{point_id} is not writable")
    number: float | None
    if value.strip().lower() in ("null", "relinquish"):
        if device.protocol != "bacnet":
            raise BadInput("only BACnet points can be relinquished (null)")
        number = None
    else:
        try:
            number = float(value)
        except ValueError:
            raise BadInput(f"VALUE: {value!r} is not a number (or null)") from None
        if not math.isfinite(number) or not point.safe_min <= number <= point.safe_max:
            result = f"refused: outside safe limits [{point.safe_min:g}, {point.safe_max:g}]"
            recorded = number if math.isfinite(number) else None
            _audit(park, history, WriteRecord(datetime.now(timezone.utc), who, point_id, recorded, result))
            raise BadInput(f"{point_id}: {number:g} is {result.removeprefix('refused: ')}")
    result = asyncio.run(_with_adapter(device, lambda adapter: write_result(adapter, point_id, number)))
    exit_code = {"ok": 0, "refused": EXIT_BAD_INPUT}.get(result.split(":")[0], EXIT_FAILURE)
    _audit(park, history, WriteRecord(datetime.now(timezone.utc), who, point_id, number, result))
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
    out: Annotated[Optional[Path], typer.Option(help="Write the point-map skeleton here (default: print it)")] = None,
    timeout: Annotated[float, typer.Option(min=0.1, max=60, help="Seconds to wait for answers")] = 3.0,
) -> None:
    """Who-Is a BACnet device and walk its object list into a point-map skeleton to complete."""
    import asyncio

    from protocols.bacnet_client import discover_point_map, make_client_application
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


if __name__ == "__main__":
    main()
