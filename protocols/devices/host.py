"""The simulated field: the park simulator stepping on a clock behind every device server.

:class:`DeviceHost` serves each device named by the park's point maps on the
host and port its map gives (the register or object layout is the device's
own, from :mod:`protocols.devices.layout`), steps the simulator to keep up
with the clock, and publishes each step's values to the servers. Writes from
clients reach the simulator through the servers. Devices can be stopped and
started one by one (to test how the twin copes with an outage); a device whose
asset has an injected ``device_offline`` fault is stopped while it lasts.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable
from datetime import datetime

import numpy as np

from protocols.devices.bacnet_server import BacnetDeviceServer
from protocols.devices.layout import ModbusLayout, device_layouts
from protocols.devices.modbus_server import ModbusDeviceServer
from protocols.pointmap import AnyDeviceMap
from twin.readings import Quality
from twin.sim import ParkSimulator

log = logging.getLogger(__name__)


class DeviceHost:
    """Serves the simulated devices and steps the simulator: every ``tick_s`` and, for a Modbus read, before
    the registers are read, so that a device answers with the step in force at the clock's time, as a real
    device's registers hold its present values however busy the host is."""

    def __init__(self, simulator: ParkSimulator, now_utc: Callable[[], datetime], device_maps: list[AnyDeviceMap],
                 tick_s: float = 0.05):
        self.simulator = simulator
        self.now_utc = now_utc
        self.tick_s = tick_s
        self.values: dict[str, float | None] = {}
        self.offline: set[str] = set()
        self._background: set[asyncio.Task[None]] = set()
        park = simulator.park
        self._point_indices: dict[str, list[int]] = {}
        for index, point_id in enumerate(simulator.point_ids):
            self._point_indices.setdefault(park.points[point_id].asset_id, []).append(index)
        limits = {pid: (p.spec.low_limit, p.spec.high_limit) for pid, p in park.points.items()}
        layouts = {layout.name: layout for layout in device_layouts(park)}
        self.servers: dict[str, ModbusDeviceServer | BacnetDeviceServer] = {}
        for device in device_maps:
            layout = layouts.get(device.name)
            if layout is None or layout.protocol != device.protocol:
                log.warning("point map %s names no simulated %s device; not served", device.name, device.protocol)
                continue
            if isinstance(layout, ModbusLayout):
                self.servers[device.name] = ModbusDeviceServer(layout, device.host, device.port, self._present_value,
                                                               simulator.write_setpoint, simulator.release_setpoint,
                                                               now_utc)
            else:
                self.servers[device.name] = BacnetDeviceServer(layout, device.host, device.port, self.values.get,
                                                               simulator.write_setpoint, simulator.release_setpoint,
                                                               limits, now_utc)

    async def start(self) -> None:
        """Take the first step (so every device has values) and start every server."""
        self._step_to_clock(at_least_one=True)
        for name, server in self.servers.items():
            if name not in self.offline:
                await server.start()

    async def stop(self) -> None:
        for server in self.servers.values():
            await server.stop()

    async def stop_device(self, name: str) -> None:
        await self.servers[name].stop()

    async def start_device(self, name: str) -> None:
        await self.servers[name].start()

    async def run(self, stop: asyncio.Event) -> None:
        """Step the simulator to keep up with the clock until ``stop`` is set."""
        while not stop.is_set():
            try:
                self._step_to_clock()
            except Exception:  # the field must go on; the failure is logged with its traceback
                log.exception("simulator step failed at %s", self.simulator.now_utc)
            try:
                await asyncio.wait_for(stop.wait(), self.tick_s)
            except TimeoutError:
                pass

    def _present_value(self, point_id: str) -> float | None:
        """A point's value at the clock's time (the simulator stepped to it first when behind)."""
        if self.simulator.now_utc <= self.now_utc():
            self._step_to_clock()
        return self.values.get(point_id)

    def _step_to_clock(self, at_least_one: bool = False) -> None:
        for server in self.servers.values():
            # setpoints past their revert timeout, or whose heartbeat went silent, go back to the schedule for
            # this step
            if isinstance(server, ModbusDeviceServer):
                server.revert_due()
            else:
                server.watchdog_due()
        output = None
        while (at_least_one and output is None) or self.simulator.now_utc <= self.now_utc():
            output = self.simulator.advance()
            for point_id, value in zip(self.simulator.point_ids, output.values):
                self.values[point_id] = None if math.isnan(value) else float(value)
        if output is None:
            return
        for server in self.servers.values():
            if isinstance(server, BacnetDeviceServer) and server.running:
                server.refresh()
        self._follow_offline_faults(output.qualities)

    def _follow_offline_faults(self, qualities: np.ndarray) -> None:
        """Stop the servers of assets the simulator reports offline (comm_fail), start them again after."""
        for name in self.servers:
            indices = self._point_indices.get(name, [])
            offline = bool(indices) and all(qualities[i] == Quality.COMM_FAIL for i in indices)
            if offline == (name in self.offline):
                continue
            if offline:
                self.offline.add(name)
                task = asyncio.get_running_loop().create_task(self.stop_device(name))
            else:
                self.offline.discard(name)
                task = asyncio.get_running_loop().create_task(self.start_device(name))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
