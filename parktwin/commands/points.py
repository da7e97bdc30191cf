"""`parktwin points ...`: point map files (validate, generate, import, discover) and single points read and
written on the field devices. `read` and `write` talk to the device servers named in the park's point maps over
the real protocol, so `parktwin devices serve` or `parktwin run` must be serving them."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from parktwin.options import HistoryOption, ParkFile
from parktwin.park_files import history_url, open_history, park_point_maps
from parktwin.terminal import EXIT_BAD_INPUT, EXIT_FAILURE, BadInput, console, errors
from twin.config import ConfigError, load_park
from twin.park import Park

commands = typer.Typer(no_args_is_help=True, help="Point maps and single points on the field devices.")


@commands.command("validate")
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


@commands.command("generate")
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


@commands.command("import")
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
    for device in park_point_maps(park, park_file):
        if point_id in device.point_ids:
            return park, device
    raise BadInput(f"point {point_id!r} is in none of the point maps of {park_file}")


async def _with_adapter(device, action):
    from protocols.adapters import open_adapters

    async with open_adapters([device]) as adapters:
        return await action(adapters[0])


@commands.command("read")
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


@commands.command("write")
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

    with open_history(history_url(park, history)) as store:
        record_write(store, record)


@commands.command("discover")
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



