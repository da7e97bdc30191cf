"""`parktwin devices serve`: the simulated field devices of the park's point maps (Modbus TCP and BACnet/IP
servers), values following the simulator."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table

from parktwin.options import ParkFile
from parktwin.park_files import park_point_maps
from parktwin.terminal import EXIT_FAILURE, console, errors
from twin.config import load_park

commands = typer.Typer(no_args_is_help=True, help="Simulated field devices (Modbus TCP and BACnet/IP servers).")


@commands.command("serve")
def devices_serve(
    park_file: ParkFile,
    speed: Annotated[float, typer.Option(min=0.01, max=3600, help="Simulated seconds per wall-clock second")] = 1.0,
    seconds: Annotated[float | None, typer.Option(help="Stop after this many seconds (default: until Ctrl+C)")] = None,
) -> None:
    """Serve every device of the park's point maps, values following the simulator; prints each address."""
    import asyncio

    from energy.environment import ParkEnvironment
    from parktwin.runtime import SimulationClock
    from protocols.devices.host import DeviceHost
    from twin.sim import ParkSimulator

    park = load_park(park_file)
    device_maps = park_point_maps(park, park_file)
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


