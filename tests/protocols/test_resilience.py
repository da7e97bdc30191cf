"""The running park over real protocols survives a device outage: marked at once, others unaffected, recovery.

This is the feed `parktwin run` uses (parktwin.runtime.ProtocolFeed): the simulator
behind Modbus and BACnet device servers, adapters polling them into live state.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import pytest
from park_copies import DEMO_PARK_DIR, copy_demo_park
from waiting import wait_for

from energy.environment import ParkEnvironment
from parktwin.runtime import ProtocolFeed, SimulationClock, TwinSink
from protocols.pointmap import load_point_maps
from twin.config import load_park
from twin.history import open_history, write_audit
from twin.live import LiveState
from twin.readings import Quality
from twin.sim import ParkSimulator


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    park_file = copy_demo_park(tmp_path_factory.mktemp("park"))
    park = load_park(park_file)
    maps = {m.name: m for m in load_point_maps(park.point_maps, park)}
    live = LiveState()
    store = open_history(str(tmp_path_factory.mktemp("history") / "h.sqlite"))
    start = datetime(2026, 7, 1, 2, 0, tzinfo=UTC)  # 10:00 in Shenzhen: PV and chillers busy
    feed = ProtocolFeed(ParkSimulator(park, ParkEnvironment(park), start), SimulationClock(start, 60),
                        TwinSink(live, store, flush_every=5), list(maps.values()), audit=store)
    feed.start()
    try:
        wait_for(lambda: len(live.snapshot()) == len(park.points), 30, "first readings of every point")
        yield feed, live, maps, store
    finally:
        feed.stop()
        store.close()


@pytest.mark.parametrize("device, other", [("pv_roof_south", "chiller1"), ("chiller2", "battery")],
                         ids=["modbus", "bacnet"])
def test_stopped_device_is_marked_others_keep_updating_and_it_recovers(running, device, other):
    feed, live, maps, _ = running
    ids, other_ids = maps[device].point_ids, maps[other].point_ids  # other: a device of the other protocol
    period_s = maps[device].poll_period_s
    assert all(live.get(pid).quality == Quality.GOOD for pid in ids if live.get(pid).value is not None)

    feed.call(lambda: feed.host.stop_device(device))
    stopped_at = {pid: r.ts_utc for pid, r in live.snapshot().items() if pid not in ids}

    def all_marked():
        return all(live.get(pid).quality in (Quality.COMM_FAIL, Quality.STALE) for pid in ids)

    def status_of(name: str) -> dict:
        return next(d for d in feed.devices() if d["device_id"] == name)

    # bounds far above what an idle machine needs (a poll period, then every attempt timing out): a loaded
    # machine may be many times slower, and the conditions are polled, not waited for
    attempts_s = (maps[device].retries + 1) * 4 * maps[device].timeout_s
    wait_for(all_marked, 10 * (period_s + attempts_s), f"{device}'s points marked comm_fail/stale after its retries")
    wait_for(lambda: all(live.get(pid).ts_utc > ts for pid, ts in stopped_at.items()), 60,
             "every other device to keep updating")
    assert all(live.get(pid).quality == Quality.GOOD for pid in other_ids)
    wait_for(lambda: status_of(device)["error_count"] >= 2, 60, "the outage to go on: a second failed poll")
    assert all_marked()
    status = {d["device_id"]: d for d in feed.devices()}
    assert status[device]["available"] is False and status[device]["last_error"]
    assert status[device]["retried"] >= 2 * maps[device].retries  # every failed poll was tried again first
    # a slow answer under load is tried again, not counted as an error of a device that kept answering
    assert status[other]["available"] is True and status[other]["error_count"] == 0
    assert status[other]["latency_ms"] >= 0 and status[other]["last_success"] is not None

    feed.call(lambda: feed.host.start_device(device))
    wait_for(lambda: all(live.get(pid).quality != Quality.COMM_FAIL for pid in ids), 60,
             f"{device}'s points to recover by themselves after the restart")
    assert feed._thread.is_alive(), "the run goes on"
    recovered = next(d for d in feed.devices() if d["device_id"] == device)
    assert recovered["available"] is True and recovered["last_error"] == ""


def test_writes_reach_the_plant_over_the_protocol_and_are_audited(running):
    feed, live, _, store = running
    assert feed.write("plant.battery.power_setpoint_kw", -400.0, "optimizer").result == "ok"
    assert feed.write("plant.chiller3.chw_setpoint_c", 9.0, "operator").result == "ok"
    refused = feed.write("plant.chiller3.chw_setpoint_c", 20.0, "operator")
    assert refused.result.startswith("refused:") and "safe limits" in refused.result
    # the simulator takes the setpoints: the twin reads them back, and the battery charges at 400 kW
    wait_for(lambda: live.value("plant.chiller3.chw_setpoint_c") == 9.0, 5, "the chiller setpoint read back")
    wait_for(lambda: live.value("plant.battery.power_setpoint_kw") == -400.0, 5, "the battery setpoint read back")
    wait_for(lambda: abs(live.value("plant.battery.power_kw") + 400.0) < 0.5, 5, "the battery to follow")
    assert feed.write("plant.chiller3.chw_setpoint_c", None, "operator").result == "ok"  # relinquish
    audit = write_audit(store)
    assert [(r.who, r.point_id, r.value, r.result.split(":")[0]) for r in audit] == [
        ("optimizer", "plant.battery.power_setpoint_kw", -400.0, "ok"),
        ("operator", "plant.chiller3.chw_setpoint_c", 9.0, "ok"),
        ("operator", "plant.chiller3.chw_setpoint_c", 20.0, "refused"),
        ("operator", "plant.chiller3.chw_setpoint_c", None, "ok"),
    ]
    # the battery's map declares a fail-safe enable register: null releases it to the plant schedule
    assert feed.write("plant.battery.power_setpoint_kw", None, "optimizer").result == "ok"


def test_injected_device_offline_fault_takes_the_device_off_the_network(tmp_path):
    """The simulator's device_offline fault stops that device's server: the twin sees comm_fail over the wire."""
    from twin.sim import Fault

    park_file = copy_demo_park(tmp_path)
    park = load_park(park_file)
    maps = [m for m in load_point_maps(park.point_maps, park) if m.name in ("ev5", "meter_b1")]
    live = LiveState()
    store = open_history(str(tmp_path / "h.sqlite"))
    start = datetime(2026, 7, 1, 2, 0, tzinfo=UTC)
    simulator = ParkSimulator(park, ParkEnvironment(park), start)
    fault_start = start + (simulator.step * 3)
    # offline for 12 steps (12 s of wall clock at 60x): several of ev5's polls, each timed out and retried, the
    # backoff between them doubling up to the coordinator's longest (4 s)
    simulator.inject_fault(Fault("device_offline", "ev5", fault_start, fault_start + simulator.step * 12))
    feed = ProtocolFeed(simulator, SimulationClock(start, 60), TwinSink(live, store), maps, audit=store)
    feed.start()
    ev_ids = next(m for m in maps if m.name == "ev5").point_ids
    try:
        wait_for(lambda: all(live.get(pid) and live.get(pid).quality == Quality.COMM_FAIL for pid in ev_ids), 30,
                 "ev5 offline during its fault")
        assert live.get("b1.meter_b1.power_kw").quality == Quality.GOOD
        wait_for(lambda: all(live.get(pid).quality == Quality.GOOD for pid in ev_ids), 60, "ev5 back after the fault")
    finally:
        feed.stop()
        store.close()


def test_the_twin_shows_what_the_simulator_computed_to_the_resolution_of_each_register(tmp_path):
    """End to end over both protocols: a nearly frozen clock, then every live value against the simulator's."""
    from protocols.codec import decode
    from protocols.devices.layout import ModbusLayout, device_layouts
    from protocols.pointmap import ModbusPoint

    park_file = copy_demo_park(tmp_path)
    park = load_park(park_file)
    maps = load_point_maps(park.point_maps, park)
    live = LiveState()
    store = open_history(str(tmp_path / "h.sqlite"))
    start = datetime(2026, 7, 1, 4, 0, tzinfo=UTC)  # noon in Shenzhen
    feed = ProtocolFeed(ParkSimulator(park, ParkEnvironment(park), start), SimulationClock(start, 0.01),
                        TwinSink(live, store), maps, audit=store)
    feed.start()
    try:
        wait_for(lambda: len(live.snapshot()) == len(park.points), 30, "every point read")
        # a poll that timed out on a loaded machine reads comm_fail; the clock stands nearly still, so the next
        # poll reads the same values: wait a while for every point's good reading (the checks below name any
        # point still without one)
        deadline = time.monotonic() + 60
        while any(r.quality != Quality.GOOD for r in live.snapshot().values()) and time.monotonic() < deadline:
            time.sleep(0.1)
        simulated = dict(feed.host.values)
        snapshot = live.snapshot()
    finally:
        feed.stop()
        store.close()
    constants = {layout.name: layout.constants for layout in device_layouts(park) if isinstance(layout, ModbusLayout)}
    for device in maps:
        for point in device.points:
            reading, expected = snapshot[point.id], simulated[point.id]
            assert reading.quality == Quality.GOOD, (point.id, reading, expected)
            if isinstance(point, ModbusPoint) and point.type != "float32":
                sf = decode([constants[device.name][point.scale_factor_register]], "int16") \
                    if point.scale_factor_register is not None else 0
                step = 10.0 ** sf * point.scale  # one count of the register
                assert reading.value == pytest.approx(expected, abs=step / 2 + 1e-9), point.id
            else:  # float32 registers and BACnet REAL values
                assert reading.value == pytest.approx(expected, rel=1e-6, abs=1e-6), point.id


class Relay:
    """A TCP relay on 127.0.0.1 in front of a real device at ``target_port``; subclasses say what it passes."""

    def __init__(self, target_port: int):
        self.target_port = target_port
        self.server = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        self.server.close()

    async def _relay(self, reader, writer):
        raise NotImplementedError


class LossyLink(Relay):
    """A relay that loses the first ``lose`` requests: each one is read and never forwarded nor answered
    (the connection stays open, as on a congested link)."""

    def __init__(self, target_port: int, lose: int):
        super().__init__(target_port)
        self.lose, self.lost = lose, 0

    async def _relay(self, reader, writer):
        if self.lost < self.lose:
            self.lost += 1
            while await reader.read(1024):  # swallow until the client gives up on this connection
                pass
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)

        async def pipe(source, sink):
            while data := await source.read(4096):
                sink.write(data)
                await sink.drain()
            sink.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer), return_exceptions=True)


def test_requests_lost_on_the_way_are_tried_again_before_the_device_counts_as_down():
    """A read and a write whose first attempts get no answer: retried within the device map's retries, no
    comm_fail, no error counted; with one retry fewer than requests lost, the read fails as before."""
    from park_copies import free_port

    from protocols.coordinator import DeviceCoordinator, write_result
    from protocols.devices.layout import device_layouts
    from protocols.devices.modbus_server import ModbusDeviceServer
    from protocols.modbus_client import ModbusAdapter

    park = load_park(DEMO_PARK_DIR / "park.yaml")
    layout = next(layout for layout in device_layouts(park) if layout.name == "battery")
    values = {p.id: 10.0 for p in layout.points}
    written: list[tuple[str, float]] = []
    port = free_port()

    async def scenario():
        server = ModbusDeviceServer(layout, "127.0.0.1", port, values.get, lambda pid, v: written.append((pid, v)))
        await server.start()
        links = []
        try:
            outcomes = []
            for lose, retries in ((2, 2), (2, 1)):
                link = LossyLink(port, lose)
                links.append(link)
                device = layout.point_map(await link.start()).model_copy(update={"timeout_s": 0.5, "retries": retries})
                adapter = ModbusAdapter(device)
                coordinator = DeviceCoordinator(adapter)
                polled = await coordinator.poll()
                await adapter.close()
                link.lost = 0  # the same losses again for the write
                wrote = await write_result(adapter, "plant.battery.power_setpoint_kw", -250.0)
                await adapter.close()
                outcomes.append((polled, coordinator.status(), wrote))
            return outcomes
        finally:
            for link in links:
                await link.stop()
            await server.stop()

    (polled, status, wrote), (short_polled, short_status, short_wrote) = asyncio.run(scenario())
    assert all(value.quality == Quality.GOOD for value in polled.values())
    assert polled["plant.battery.soc_pct"].value == pytest.approx(10.0)
    assert (status["available"], status["error_count"], status["retried"]) == (True, 0, 2)
    assert wrote == "ok" and written == [("plant.battery.power_setpoint_kw", -250.0)]
    # one retry for two lost requests: the device counts as unreachable, the write as failed
    assert all(value.quality == Quality.COMM_FAIL for value in short_polled.values())
    assert (short_status["available"], short_status["error_count"]) == (False, 1)
    assert short_wrote.startswith("failed:") and "after 1 retries" in short_wrote


class ReadDroppingLink(Relay):
    """A Modbus TCP relay that never answers reads (function codes 3 and 4: swallowed) and forwards every
    other request ``delay_s`` late, as a congested gateway might."""

    def __init__(self, target_port: int, delay_s: float):
        super().__init__(target_port)
        self.delay_s = delay_s

    async def _relay(self, reader, writer):
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)

        async def answers():
            while data := await up_reader.read(4096):
                writer.write(data)
                await writer.drain()

        answering = asyncio.create_task(answers())
        try:
            while True:
                header = await reader.readexactly(7)  # MBAP: transaction, protocol, length, unit
                body = await reader.readexactly(int.from_bytes(header[4:6], "big") - 1)
                if body[0] in (3, 4):
                    continue
                await asyncio.sleep(self.delay_s)
                up_writer.write(header + body)
                await up_writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            answering.cancel()
            up_writer.close()
            writer.close()


def test_a_poll_that_times_out_does_not_cut_a_write_short():
    """A poll and a write of one device at once: the poll gets no answer and gives up, dropping the
    connection; the write, whose three requests (revert timeout, setpoint, enable) take longer than the
    poll's timeout, is made on a connection of its own after the poll and lands whole."""
    from park_copies import free_port

    from protocols.devices.layout import device_layouts
    from protocols.devices.modbus_server import ModbusDeviceServer
    from protocols.errors import DeviceUnreachable
    from protocols.modbus_client import ModbusAdapter

    park = load_park(DEMO_PARK_DIR / "park.yaml")
    layout = next(layout for layout in device_layouts(park) if layout.name == "battery")
    values = {p.id: 10.0 for p in layout.points}
    written: list[tuple[str, float]] = []
    port = free_port()
    timeout_s = 1.0

    async def scenario():
        server = ModbusDeviceServer(layout, "127.0.0.1", port, values.get, lambda pid, v: written.append((pid, v)))
        await server.start()
        link = ReadDroppingLink(port, delay_s=0.6)  # each request within the timeout, the three 1.8 s
        try:
            device = layout.point_map(await link.start()).model_copy(update={"timeout_s": timeout_s, "retries": 0})
            adapter = ModbusAdapter(device)
            poll = asyncio.create_task(adapter.read())
            await asyncio.sleep(0.05)  # the poll's request is on its way
            write = asyncio.create_task(adapter.write("plant.battery.power_setpoint_kw", -250.0))
            polled, wrote = await asyncio.gather(poll, write, return_exceptions=True)
            await adapter.close()
            return polled, wrote
        finally:
            await link.stop()
            await server.stop()

    polled, wrote = asyncio.run(scenario())
    assert isinstance(polled, DeviceUnreachable) and "no answer" in str(polled)
    assert wrote is None, wrote  # the write returned normally
    assert written == [("plant.battery.power_setpoint_kw", -250.0)]
