"""Protocol polling benchmark: Modbus full-cycle time and request count, BACnet ReadPropertyMultiple throughput.

Run: ``.venv/bin/python benchmarks/protocol_polling.py [--cycles N]``

Modbus: 100 simulated devices (ParkTwin device servers on 127.0.0.1) with 100
points each, 10,000 points in all, mixing int16 with a scale-factor register,
uint32 and float32 in both word orders. Every device is polled concurrently by
its coordinator (the same code `parktwin run` uses), reads coalesced by
``plan_reads``. Prints seconds per full cycle and requests per cycle against
one request per point. Targets: <= 1.0 s per cycle, >= 20x fewer requests.

BACnet: 20 simulated devices with 100 analog inputs each (2,000 points), read
with ReadPropertyMultiple (80 properties per request) by all coordinators at
once. Target: >= 2,000 points/s. Also printed: the polling process's CPU time per
cycle, which (unlike wall-clock time) does not depend on what else the machine runs.

The device servers run in a second process (as field devices are separate
machines), so the figures measure the polling side: the ParkTwin adapters
and coordinators on one event loop. Prints figures and PASS/MISS; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import time
from datetime import UTC, datetime

from protocols.bacnet_client import BacnetAdapter, make_client_application
from protocols.coordinator import AdapterFeed
from protocols.devices.bacnet_server import BacnetDeviceServer
from protocols.devices.layout import BacnetLayout, ModbusLayout
from protocols.devices.modbus_server import ModbusDeviceServer
from protocols.modbus_client import ModbusAdapter
from protocols.pointmap import BacnetDeviceMap, BacnetPoint, ModbusDeviceMap, ModbusPoint
from twin.readings import Reading

MODBUS_DEVICES, MODBUS_POINTS_PER_DEVICE = 100, 100
BACNET_DEVICES, BACNET_POINTS_PER_DEVICE = 20, 100
MODBUS_BASE_PORT, BACNET_BASE_PORT = 25020, 48810
PROPERTIES_PER_RPM = 80
"""80 present values of analog inputs take about 1,100 bytes: inside the 1,476-byte APDU of BACnet/IP, unsegmented."""
CYCLE_TARGET_S, REQUEST_RATIO_TARGET, BACNET_TARGET_PER_S = 1.0, 20.0, 2000.0


class CountingSink:
    def __init__(self) -> None:
        self.readings = 0
        self.good = 0

    def deliver(self, readings: list[Reading]) -> None:
        self.readings += len(readings)
        self.good += sum(r.quality == 0 for r in readings)


def modbus_points(device: int) -> tuple[list[ModbusPoint], dict[int, int]]:
    """100 points: groups of (int16 + its scale factor, uint32, float32 ABCD, float32 CDAB) in a compact map."""
    points, constants, address = [], {}, 40000
    kinds = [("int16", {}), ("uint32", {}), ("float32", {}), ("float32", {"word_order": "little"})]
    for i in range(MODBUS_POINTS_PER_DEVICE):
        data_type, extra = kinds[i % 4]
        pid = f"d{device}.dev.p{i}"
        if data_type == "int16":
            points.append(ModbusPoint(id=pid, address=address, type="int16", scale_factor_register=address + 1,
                                      **extra))
            constants[address + 1] = 0xFFFF  # scale factor -1
            address += 2
        else:
            points.append(ModbusPoint(id=pid, address=address, type=data_type, **extra))
            address += 2
    for a in range(40000, address):
        constants.setdefault(a, 0)
    return points, constants


def modbus_devices() -> list[tuple[ModbusLayout, ModbusDeviceMap]]:
    devices = []
    for d in range(MODBUS_DEVICES):
        points, constants = modbus_points(d)
        layout = ModbusLayout(f"dev{d}", address=1, points=points, constants=constants)
        devices.append((layout, ModbusDeviceMap(name=f"dev{d}", port=MODBUS_BASE_PORT + d, timeout_s=5, points=points)))
    return devices


def bacnet_devices() -> list[tuple[BacnetLayout, BacnetDeviceMap]]:
    devices = []
    for d in range(BACNET_DEVICES):
        points = [BacnetPoint(id=f"b{d}.dev.p{i}", object_type="analog-input", instance=i + 1, unit="kW")
                  for i in range(BACNET_POINTS_PER_DEVICE)]
        layout = BacnetLayout(f"bdev{d}", address=2000 + d, points=points)
        devices.append((layout, BacnetDeviceMap(name=f"bdev{d}", port=BACNET_BASE_PORT + d, device_instance=2000 + d,
                                                timeout_s=5, max_properties_per_request=PROPERTIES_PER_RPM,
                                                points=points)))
    return devices


def serve_devices(protocol: str, ready, stop) -> None:
    """Server process: every benchmark device of one protocol, values fixed, until ``stop`` is set."""

    async def serve() -> None:
        devices = modbus_devices() if protocol == "modbus" else bacnet_devices()
        values = {p.id: 12.5 + i for layout, _ in devices for i, p in enumerate(layout.points)}
        servers = []
        for layout, device in devices:
            if protocol == "modbus":
                server = ModbusDeviceServer(layout, "127.0.0.1", device.port, values.get, lambda pid, v: None)
            else:
                server = BacnetDeviceServer(layout, "127.0.0.1", device.port, values.get, lambda *a: None,
                                            lambda *a: None, {})
            await server.start()
            servers.append(server)
        ready.set()
        await asyncio.to_thread(stop.wait)
        for server in servers:
            await server.stop()

    asyncio.run(serve())


class ServerProcess:
    def __init__(self, protocol: str):
        self.ready, self.stop = multiprocessing.Event(), multiprocessing.Event()
        self.process = multiprocessing.Process(target=serve_devices, args=(protocol, self.ready, self.stop),
                                               daemon=True)

    def __enter__(self) -> ServerProcess:
        self.process.start()
        if not self.ready.wait(120):
            raise RuntimeError("device servers did not start")
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.process.join(10)


async def timed_cycles(feed: AdapterFeed, cycles: int) -> tuple[list[float], float]:
    """Wall-clock seconds of each full cycle, and the polling process's CPU seconds over all of them."""
    await feed.poll_round()  # connect and warm up
    times = []
    cpu_started = time.process_time()
    for _ in range(cycles):
        for coordinator in feed.coordinators:
            coordinator.next_poll_s = 0
        started = time.perf_counter()
        await feed.poll_round()
        times.append(time.perf_counter() - started)
    return times, time.process_time() - cpu_started


async def bench_modbus(cycles: int) -> None:
    adapters = [ModbusAdapter(device) for _, device in modbus_devices()]
    sink = CountingSink()
    feed = AdapterFeed(adapters, sink, lambda: datetime.now(UTC))
    times, _ = await timed_cycles(feed, cycles)
    requests = sum(a.requests_sent for a in adapters) / (cycles + 1)
    for adapter in adapters:
        await adapter.close()
    points_total = MODBUS_DEVICES * MODBUS_POINTS_PER_DEVICE
    cycle_s = statistics.median(times)
    ratio = points_total / requests
    print(f"Modbus: {points_total:,} points on {MODBUS_DEVICES} devices: {cycle_s:.3f} s per full cycle "
          f"(median of {cycles}; min {min(times):.3f}, max {max(times):.3f})  target <= {CYCLE_TARGET_S} s  "
          f"{'PASS' if cycle_s <= CYCLE_TARGET_S else 'MISS'}")
    print(f"Modbus: {requests:.0f} requests per cycle vs {points_total:,} one-per-point = {ratio:.1f}x fewer  "
          f"target >= {REQUEST_RATIO_TARGET:.0f}x  {'PASS' if ratio >= REQUEST_RATIO_TARGET else 'MISS'}  "
          f"({sink.good / sink.readings:.1%} of readings good)")


async def bench_bacnet(cycles: int) -> None:
    app = make_client_application()
    adapters = [BacnetAdapter(device, app) for _, device in bacnet_devices()]
    sink = CountingSink()
    feed = AdapterFeed(adapters, sink, lambda: datetime.now(UTC))
    times, cpu_s = await timed_cycles(feed, cycles)
    app.close()
    points_total = BACNET_DEVICES * BACNET_POINTS_PER_DEVICE
    rate = points_total * cycles / sum(times)
    requests = sum(len(a.batches) for a in adapters)
    print(f"BACnet: {points_total:,} points on {BACNET_DEVICES} devices, {requests} ReadPropertyMultiple per cycle: "
          f"{rate:,.0f} points/s ({statistics.median(times):.3f} s per cycle, median of {cycles})  "
          f"target >= {BACNET_TARGET_PER_S:,.0f}/s  {'PASS' if rate >= BACNET_TARGET_PER_S else 'MISS'}  "
          f"({sink.good / sink.readings:.1%} of readings good)")
    print(f"BACnet: polling process CPU {cpu_s / cycles:.3f} s per cycle = {points_total * cycles / cpu_s:,.0f} points "
          f"per CPU-second (what one free core would reach; wall-clock figures above depend on machine load)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=10, help="full poll cycles to time")
    args = parser.parse_args()
    with ServerProcess("modbus"):
        asyncio.run(bench_modbus(args.cycles))
    with ServerProcess("bacnet"):
        asyncio.run(bench_bacnet(args.cycles))


if __name__ == "__main__":
    main()
