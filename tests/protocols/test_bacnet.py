"""BACnet adapter against real bacpypes3 devices on 127.0.0.1: RPM reads, priority writes, relinquish, discovery."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Callable
from pathlib import Path

import pytest
from bacpypes3.apdu import ErrorRejectAbortNack
from bacpypes3.pdu import Address
from bacpypes3.primitivedata import ObjectIdentifier
from park_copies import free_port

from protocols.bacnet_client import BacnetAdapter, make_client_application
from protocols.devices.bacnet_server import BacnetDeviceServer
from protocols.devices.layout import device_layouts
from protocols.discovery import discover_point_map
from protocols.errors import DeviceUnreachable, WriteRefused
from protocols.values import RawValue
from twin.config import load_park
from twin.readings import Quality

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo-park" / "park.yaml"


@pytest.fixture(scope="module")
def park():
    return load_park(DEMO)


class FakePlant:
    """Stands in for the simulator's setpoint interface and records what the device asked of it."""

    def __init__(self):
        self.calls: list[tuple] = []

    def write_setpoint(self, pid, value):
        self.calls.append(("write", pid, value))

    def release_setpoint(self, pid):
        self.calls.append(("release", pid))


def serve(park, name: str, values: dict, plant: FakePlant, port: int) -> BacnetDeviceServer:
    layout = next(layout for layout in device_layouts(park) if layout.name == name)
    limits = {pid: (p.spec.low_limit, p.spec.high_limit) for pid, p in park.points.items()}
    return BacnetDeviceServer(layout, "127.0.0.1", port, values.get, plant.write_setpoint, plant.release_setpoint,
                              limits)


def test_chiller_reads_writes_relinquishes_and_device_refuses_out_of_range(park):
    port = free_port()
    values = {"plant.chiller1.running": 1.0, "plant.chiller1.mode": 2.0, "plant.chiller1.power_kw": 361.5,
              "plant.chiller1.chw_supply_temp_c": -5.25, "plant.chiller1.chw_setpoint_c": 7.0,
              "plant.chiller1.mode_cmd": 0.0}
    plant = FakePlant()

    async def scenario():
        server = serve(park, "chiller1", values, plant, port)
        await server.start()
        app = make_client_application()
        adapter = BacnetAdapter(server.layout.point_map(port), app)
        try:
            first = await adapter.read()
            await adapter.write("plant.chiller1.chw_setpoint_c", 8.5)
            await adapter.write("plant.chiller1.mode_cmd", 3)  # ice making
            commanded = await adapter.read()
            await adapter.write("plant.chiller1.chw_setpoint_c", None)  # relinquish
            released = await adapter.read()
            # bypass the client's limit check: the device refuses the value itself
            with pytest.raises(ErrorRejectAbortNack) as refusal:
                await app.write_property(Address(f"127.0.0.1:{port}"), ObjectIdentifier("analog-output,1"),
                                         "present-value", 30.0, priority=10)
            answer = refusal.value
            with pytest.raises(WriteRefused):
                await adapter.write("plant.chiller1.chw_setpoint_c", 30.0)
        finally:
            app.close()
            await server.stop()
        return first, commanded, released, answer, adapter.requests_sent

    first, commanded, released, answer, requests = asyncio.run(scenario())
    # each point with its present value as received: the state text of a binary object, numbers as sent
    assert first["plant.chiller1.running"] == (1.0, Quality.GOOD, RawValue("active"))
    assert first["plant.chiller1.mode"] == (2.0, Quality.GOOD, RawValue(3))  # multi-state 3 -> twin enum 2
    assert first["plant.chiller1.power_kw"] == (361.5, Quality.GOOD, RawValue(361.5))
    assert first["plant.chiller1.chw_supply_temp_c"][0] == pytest.approx(-5.25)
    assert first["plant.chiller1.cop"] == (0.0, Quality.GOOD, RawValue(0.0))  # no value yet: the initial 0.0
    assert commanded["plant.chiller1.chw_setpoint_c"][0] == pytest.approx(8.5)
    assert commanded["plant.chiller1.mode_cmd"] == (3.0, Quality.GOOD, RawValue(4))  # state 4: ice making
    assert released["plant.chiller1.chw_setpoint_c"][0] == pytest.approx(7.0)  # back to the schedule's value
    assert plant.calls == [("write", "plant.chiller1.chw_setpoint_c", 8.5), ("write", "plant.chiller1.mode_cmd", 3.0),
                           ("release", "plant.chiller1.chw_setpoint_c")]
    assert str(answer.errorCode) == "value-out-of-range"
    # one ReadPropertyMultiple per read (10 points < 40 per request), one request per write; the
    # out-of-limits write never left the client
    assert requests == 3 + 3


def test_rpm_batches_respect_max_properties_per_request(park):
    layout = next(layout for layout in device_layouts(park) if layout.name == "chiller1")
    device = layout.point_map(47808).model_copy(update={"max_properties_per_request": 7})
    adapter = BacnetAdapter(device, app=None)
    # each point: present value and status-flags; the two setpoints, last in the map, also their priority
    # array: the eight inputs fill 2 + 2 + 2, 2 + 2 + 2, then 2 + 2 with the first setpoint's 3, then 3
    properties = [sum(len(references) for references in parameters[1::2]) for parameters in adapter._parameters]
    assert properties == [6, 6, 7, 3] and max(properties) <= 7
    assert sorted(p.id for batch in adapter.batches for p in batch) == sorted(device.point_ids)


def test_unanswered_device_raises_unreachable(park):
    layout = next(layout for layout in device_layouts(park) if layout.name == "weather")
    device = layout.point_map(free_port()).model_copy(update={"timeout_s": 0.3})

    async def scenario():
        app = make_client_application()
        try:
            await BacnetAdapter(device, app).read()
        finally:
            app.close()

    with pytest.raises(DeviceUnreachable):
        asyncio.run(scenario())


def test_discovery_walks_the_object_list_into_a_skeleton(park):
    port = free_port()

    async def scenario():
        server = serve(park, "ev5", {"b1.ev5.power_limit_kw": 45.0}, FakePlant(), port)
        await server.start()
        app = make_client_application()
        try:
            return await discover_point_map(app, "127.0.0.1", port, timeout_s=2)
        finally:
            app.close()
            await server.stop()

    device = asyncio.run(scenario())
    assert device.device_instance == next(layout for layout in device_layouts(park) if layout.name == "ev5").address
    assert [(p.object_type, p.instance, p.id) for p in device.points] == [
        ("analog-input", 1, "todo.ev5.power_kw"), ("binary-input", 1, "todo.ev5.connected"),
        ("analog-input", 2, "todo.ev5.session_energy_kwh"), ("analog-output", 1, "todo.ev5.power_limit_kw"),
        ("analog-value", 900, "todo.ev5.heartbeat")]  # the watchdog object, for the integrator to map as `heartbeat:`
    limit = device.points[3]
    assert limit.writable and limit.low_limit == limit.high_limit == 45.0


def test_cov_points_follow_notifications_and_fall_back_to_polling(park):
    port = free_port()
    values = {"plant.chiller1.power_kw": 100.0, "plant.chiller1.cop": 5.0}
    plant = FakePlant()

    async def scenario():
        server = serve(park, "chiller1", values, plant, port)
        await server.start()
        app = make_client_application()
        base = server.layout.point_map(port)
        cov = {"plant.chiller1.power_kw": {"mode": "cov"}, "plant.chiller1.cop": {"mode": "cov"},
               # an object the device does not have: the subscription is refused, the point is polled
               "plant.chiller1.cooling_kwth": {"mode": "cov", "instance": 99}}
        points = [p.model_copy(update=cov.get(p.id, {})) for p in base.points]
        device = base.model_copy(update={"points": points, "cov_lifetime_s": 60})
        adapter = BacnetAdapter(device, app)
        try:
            first = await adapter.read()
            subscribed = sorted(adapter.subscribed_point_ids)
            polled = sorted(p.id for batch in adapter.batches for p in batch)
            values["plant.chiller1.power_kw"] = 250.0
            server.refresh()  # the device's value changes: it notifies its subscriber
            for _ in range(500):  # generous: a loaded machine delivers the notification late
                await asyncio.sleep(0.02)
                if float(adapter._cov_latest.get("plant.chiller1.power_kw", 0.0)) == 250.0:
                    break
            second = await adapter.read()
        finally:
            await adapter.close()
            app.close()
            await server.stop()
        return first, second, subscribed, polled

    first, second, subscribed, polled = asyncio.run(scenario())
    assert subscribed == ["plant.chiller1.cop", "plant.chiller1.power_kw"]
    assert "plant.chiller1.power_kw" not in polled and "plant.chiller1.cooling_kwth" in polled
    assert first["plant.chiller1.power_kw"][0] == pytest.approx(100.0)
    assert second["plant.chiller1.power_kw"] == (pytest.approx(250.0), Quality.GOOD, RawValue(250.0))  # notified
    assert second["plant.chiller1.cop"][0] == pytest.approx(5.0)
    # no such object: marked, not raised, and the device's error is kept as the raw value
    assert second["plant.chiller1.cooling_kwth"] == (None, Quality.BAD, RawValue("error: object unknown-object"))


class _Relay(asyncio.DatagramProtocol):
    """A UDP relay on loopback between one client and one BACnet device; ``on_answer`` is called as each
    answer is passed on to the client."""

    def __init__(self, device_port: int):
        self.device_port = device_port
        self.on_answer: Callable[[], None] = lambda: None
        self.client: tuple | None = None
        self.transport: asyncio.DatagramTransport | None = None
        self.upstream: asyncio.DatagramTransport | None = None

    async def open(self, port: int) -> None:
        relay = self

        class Upstream(asyncio.DatagramProtocol):
            def datagram_received(self, data, addr):
                relay.transport.sendto(data, relay.client)
                relay.on_answer()

        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: self, local_addr=("127.0.0.1", port))
        self.upstream, _ = await loop.create_datagram_endpoint(
            Upstream, local_addr=("127.0.0.1", 0), remote_addr=("127.0.0.1", self.device_port))

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        self.client = addr
        self.upstream.sendto(data)

    def close(self) -> None:
        self.transport.close()
        self.upstream.close()


def _cancel_after_turns(task: asyncio.Task, turns: int) -> None:
    """Cancel ``task`` after ``turns`` more turns of the event loop."""
    if turns == 0:
        task.cancel()
    else:
        asyncio.get_running_loop().call_soon(_cancel_after_turns, task, turns - 1)


def test_a_read_cancelled_while_its_answer_comes_up_the_stack_is_quiet(park, caplog):
    """A poll cancelled (the run stopping) while the device's answer is on its way up the client stack, at
    each turn of the event loop in turn: nothing is logged or raised in the event loop (bacpypes3 set the
    result of the request it had just been told to cancel and logged the InvalidStateError with a traceback,
    on stderr at stop), and the adapter reads on normally after."""
    device_port, relay_port = free_port(), free_port()
    values = {"plant.chiller1.running": 1.0, "plant.chiller1.mode": 2.0, "plant.chiller1.power_kw": 361.5,
              "plant.chiller1.chw_supply_temp_c": 6.5, "plant.chiller1.chw_setpoint_c": 7.0,
              "plant.chiller1.mode_cmd": 0.0}

    async def scenario():
        loop_errors: list[dict] = []
        asyncio.get_running_loop().set_exception_handler(lambda loop, context: loop_errors.append(context))
        server = serve(park, "chiller1", values, FakePlant(), device_port)
        await server.start()
        relay = _Relay(device_port)
        await relay.open(relay_port)
        app = make_client_application()
        adapter = BacnetAdapter(server.layout.point_map(relay_port), app)
        outcomes = []
        try:
            await adapter.read()  # subscriptions and priorities known: each read below is one request per batch
            for turns in range(30):
                read = asyncio.create_task(adapter.read())
                relay.on_answer = lambda read=read, turns=turns: _cancel_after_turns(read, turns)
                try:
                    await read
                    outcomes.append("answered")
                except asyncio.CancelledError:
                    outcomes.append("cancelled")
            relay.on_answer = lambda: None
            after = await adapter.read()
            gc.collect()  # a task that failed unseen reports its exception to the event loop when collected
        finally:
            app.close()
            relay.close()
            await server.stop()
        return loop_errors, outcomes, after

    loop_errors, outcomes, after = asyncio.run(scenario())
    assert [context["message"] for context in loop_errors] == []
    assert [record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING] == []
    assert "answered" in outcomes and "cancelled" in outcomes
    assert after["plant.chiller1.power_kw"].value == 361.5
    assert all(reading.quality is Quality.GOOD for reading in after.values())
