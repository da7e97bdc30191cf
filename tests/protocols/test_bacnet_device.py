"""The simulated BACnet device as a tool that is not ParkTwin sees it: relinquish default, read-only
properties, what the device object claims, state texts, answers to malformed and unsupported requests.

Each test serves one simulated device on a free port of 127.0.0.1 and talks to it with plain bacpypes3 or
raw UDP datagrams, never through ParkTwin's adapter.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from pathlib import Path

import pytest
from bacpypes3.apdu import ErrorRejectAbortNack
from bacpypes3.pdu import Address
from bacpypes3.primitivedata import Null, ObjectIdentifier
from park_copies import free_port
from test_bacnet_commands import CHILLER_VALUES, SETPOINT, SETPOINT_OBJECT, Plant, other_client, serve

from twin.config import load_park

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo-park" / "park.yaml"
TIMEOUT_S = 5.0


@pytest.fixture(scope="module")
def park():
    return load_park(DEMO)


def run_with_device(park, scenario, name: str = "chiller1"):
    """Serve ``name`` on a free port and run ``scenario(server, client, address, plant)`` against it."""
    port = free_port()
    plant = Plant(dict(CHILLER_VALUES))

    async def main():
        server = serve(park, name, plant, port)
        await server.start()
        client = other_client()
        try:
            return await asyncio.wait_for(scenario(server, client, Address(f"127.0.0.1:{port}"), plant), 60)
        finally:
            client.close()
            await server.stop()

    return asyncio.run(main())


async def error_of(request) -> str:
    """The error code (or reject/abort reason) a request is answered with; ``ok`` when it succeeds."""
    try:
        answer = await request
    except ErrorRejectAbortNack as exc:
        answer = exc
    if answer is None:
        return "ok"
    return str(getattr(answer, "errorCode", None) or getattr(answer, "apduAbortRejectReason", None) or answer)


def test_relinquish_default_is_the_schedules_value_at_once_after_the_last_relinquish(park):
    """The relinquish default is the plant schedule's value, in force at once after the last relinquish."""

    async def scenario(server, client, address, plant):
        setpoint = ObjectIdentifier(SETPOINT_OBJECT)
        await client.write_property(address, setpoint, "present-value", 8.5, priority=12)
        server.refresh()  # a simulator step: the plant reports the command in force
        commanded = await client.read_property(address, setpoint, "present-value")
        await client.write_property(address, setpoint, "present-value", Null(()), priority=12)
        # no simulator step in between: the device answers from its own relinquish default
        return (commanded, await client.read_property(address, setpoint, "present-value"),
                await client.read_property(address, setpoint, "relinquish-default"), plant.calls)

    commanded, released, default, calls = run_with_device(park, scenario)
    assert commanded == pytest.approx(8.5)
    assert released == pytest.approx(7.0) and default == pytest.approx(7.0)  # the plant schedule's value
    assert calls == [("write", SETPOINT, 8.5), ("release", SETPOINT)]


def test_read_only_properties_and_bad_priorities_are_refused(park):
    """Writes to read-only properties are denied, and a priority outside 1-16 is rejected, as real devices do."""

    async def scenario(server, client, address, plant):
        ai, ao = ObjectIdentifier("analog-input,1"), ObjectIdentifier(SETPOINT_OBJECT)
        results = {
            "input present-value": await error_of(client.write_property(address, ai, "present-value", 1.0)),
            "object-name": await error_of(client.write_property(address, ao, "object-name", "renamed")),
            "object-type": await error_of(client.write_property(address, ai, "object-type", "binary-input")),
            "units": await error_of(client.write_property(address, ai, "units", "percent")),
            "out-of-service": await error_of(client.write_property(address, ai, "out-of-service", True)),
            "device name": await error_of(client.write_property(
                address, ObjectIdentifier(f"device,{server.layout.address}"), "object-name", "renamed")),
            "priority 17": await error_of(client.write_property(address, ao, "present-value", 8.0, priority=17)),
            "priority 6": await error_of(client.write_property(address, ao, "present-value", 8.0, priority=6)),
        }
        array = await client.read_property(address, ao, "priority-array")
        name = await client.read_property(address, ai, "object-type")
        return results, [entry.null is None for entry in array], str(name)

    results, active, object_type = run_with_device(park, scenario)
    assert results == {"input present-value": "write-access-denied", "object-name": "write-access-denied",
                       "object-type": "write-access-denied", "units": "write-access-denied",
                       "out-of-service": "write-access-denied", "device name": "write-access-denied",
                       "priority 17": "value-out-of-range", "priority 6": "write-access-denied"}
    assert not any(active)  # nothing stored, not at 16 either
    assert object_type == "analog-input"


def test_device_object_states_what_it_supports_and_objects_carry_texts(park):
    """The device states the services and object types it supports, a correct property-list, its live COV
    subscriptions, and state texts."""

    async def scenario(server, client, address, plant):
        device = ObjectIdentifier(f"device,{server.layout.address}")
        services = await client.read_property(address, device, "protocol-services-supported")
        types = await client.read_property(address, device, "protocol-object-types-supported")
        property_list = await client.read_property(address, ObjectIdentifier("analog-input,1"), "property-list")
        no_subscriptions = await client.read_property(address, device, "active-cov-subscriptions")
        async with client.change_of_value(address, ObjectIdentifier("analog-input,1"),
                                          issue_confirmed_notifications=False, lifetime=120):
            subscriptions = await client.read_property(address, device, "active-cov-subscriptions")
        mode_texts = await client.read_property(address, ObjectIdentifier("multi-state-input,1"), "state-text")
        command_texts = await client.read_property(address, ObjectIdentifier("multi-state-output,1"),
                                                   "state-text")
        active_text = await client.read_property(address, ObjectIdentifier("binary-input,1"), "active-text")
        return services, types, property_list, no_subscriptions, subscriptions, mode_texts, command_texts, active_text

    services, types, property_list, none, live, mode_texts, command_texts, active_text = run_with_device(park,
                                                                                                          scenario)
    claimed = {name for name in ("whoIs", "iAm", "readProperty", "readPropertyMultiple", "writeProperty",
                                 "subscribeCOV", "acknowledgeAlarm", "confirmedEventNotification",
                                 "atomicWriteFile", "addListElement", "readRange", "writePropertyMultiple")
               if services[getattr(type(services), name)]}
    assert claimed == {"whoIs", "iAm", "readProperty", "readPropertyMultiple", "writeProperty", "subscribeCOV"}
    assert types[type(types).analogInput] and types[type(types).multiStateOutput] and types[type(types).device]
    assert types[type(types).analogValue]  # the heartbeat (watchdog) object
    assert not types[type(types).binaryOutput] and not types[type(types).multiStateValue]
    names = {str(p) for p in property_list}
    assert "present-value" in names and "status-flags" in names
    assert not names & {"object-identifier", "object-name", "object-type", "property-list"}
    assert len(none) == 0
    assert len(live) == 1 and str(live[0].monitoredPropertyReference.objectIdentifier[0]) == "analog-input"
    assert 0 < live[0].timeRemaining <= 120
    assert list(map(str, mode_texts)) == ["off", "chilled water", "ice making"]
    assert list(map(str, command_texts)) == ["automatic", "off", "chilled water", "ice making"]
    assert str(active_text) == "on"


def bacnet_request(apdu: bytes) -> bytes:
    """A BACnet/IP unicast datagram (BVLL original-unicast-NPDU, NPDU expecting a reply) carrying ``apdu``."""
    npdu = bytes([0x01, 0x04]) + apdu
    return bytes([0x81, 0x0A]) + (4 + len(npdu)).to_bytes(2, "big") + npdu


def raw_exchange(port: int, datagrams: list[bytes], timeout_s: float = TIMEOUT_S) -> list[bytes | None]:
    """Send each datagram from one UDP socket; the answer to each (its APDU), None when none came."""
    answers = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(timeout_s)
        for datagram in datagrams:
            sock.sendto(datagram, ("127.0.0.1", port))
            try:
                data, _ = sock.recvfrom(2048)
                answers.append(data[6:])  # after BVLL (4) and NPDU (2)
            except TimeoutError:
                answers.append(None)
    return answers


# confirmed-request header: type 0, max segments/APDU 0x05, invoke id, service choice
READ_PROPERTY_TRUNCATED = bytes([0x00, 0x05, 0x11, 0x0C, 0x0C, 0x00])  # object id tag, 1 of 4 bytes
READ_RANGE = bytes([0x00, 0x05, 0x12, 0x1A, 0x0C, 0x00, 0x00, 0x00, 0x01, 0x19, 0x55])
UNKNOWN_SERVICE = bytes([0x00, 0x05, 0x13, 0x7F, 0x09, 0x01])
READ_PROPERTY_GOOD = bytes([0x00, 0x05, 0x14, 0x0C, 0x0C, 0x00, 0x00, 0x00, 0x01, 0x19, 0x55])  # AI 1 PV


def test_malformed_and_unsupported_confirmed_requests_are_answered_and_logged_once(park, caplog):
    """Defects 7 and 10: no answer at all (clients waited out their retries), a traceback per datagram."""
    caplog.set_level(logging.DEBUG)

    async def scenario(server, client, address, plant):
        loop = asyncio.get_running_loop()
        datagrams = [bacnet_request(READ_PROPERTY_TRUNCATED), bacnet_request(READ_RANGE),
                     bacnet_request(UNKNOWN_SERVICE)] + [bacnet_request(READ_PROPERTY_TRUNCATED)] * 5 \
            + [bacnet_request(READ_PROPERTY_GOOD)]
        return await loop.run_in_executor(None, raw_exchange, server.port, datagrams)

    answers = run_with_device(park, scenario)
    truncated, read_range, unknown, *repeated, good = answers
    # reject PDU (type 6) with the invoke id of the request
    assert truncated is not None and truncated[0] >> 4 == 6 and truncated[1] == 0x11, truncated
    assert read_range is not None and read_range[0] >> 4 == 6 and read_range[1] == 0x12  # unrecognized-service
    assert read_range[2] == 9
    assert unknown is not None and unknown[0] >> 4 == 6 and unknown[2] == 9
    assert all(answer is not None and answer[0] >> 4 == 6 for answer in repeated)
    assert good is not None and good[0] >> 4 == 3  # the device still answers well-formed requests
    assert not [r for r in caplog.records if r.exc_info], "no traceback for garbage from the network"
    malformed = [r for r in caplog.records if r.levelno >= logging.INFO and "malformed" in r.getMessage()]
    assert len(malformed) == 1, [r.getMessage() for r in malformed]  # rate-limited per peer
