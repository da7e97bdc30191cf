"""The park model's commands: `validate` (a park file and the files it names) and `simulate` (the park
simulator into the history store)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import typer
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from parktwin.options import HistoryOption, ParkFile, parse_day
from parktwin.park_files import history_url, open_history
from parktwin.terminal import EXIT_FAILURE, console, errors
from twin.config import load_park
from twin.faults_file import load_faults
from twin.park import Park

commands = typer.Typer()


@commands.command()
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
    console.print(f"{len(park.points)} points; {sum(kinds.values())} assets; {park.summary()}")
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
    if park.weather.source == "tmy3" and park.weather.file:
        read_tmy3_weather(park.weather.file, datetime.now(UTC).year)
        named.append(f"TMY3 weather {park.weather.file}")
    if park.weather_forecast.source == "csv" and park.weather_forecast.file:
        site = park.site
        read_weather_csv(park.weather_forecast.file, site.latitude_deg, site.longitude_deg, site.altitude_m,
                         tz=site.timezone)
        named.append(f"weather forecast {park.weather_forecast.file}")
    return named


@commands.command()
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
    start_local = parse_day(start, "--start")
    tz = ZoneInfo(park.site.timezone)
    start_utc = datetime.combine(start_local, datetime.min.time(), tzinfo=tz).astimezone(UTC)
    end_utc = start_utc + timedelta(days=days)
    fault_list = load_faults(faults, park) if faults else []
    environment = ParkEnvironment(park)
    # read the weather (a TMY3 file) now: a bad file is refused before the history is opened
    environment.weather(pd.DatetimeIndex([start_utc]))
    store = open_history(history_url(park, history))
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
                  f"{end_utc:%Y-%m-%d %H:%M} UTC, into {history_url(park, history)}")
