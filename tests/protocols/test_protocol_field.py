"""The protocol field (the controller's port under `parktwin run`) on real simulated devices: it does not
fight an operator's override, and writes again once the operator relinquishes; every write it sends is
in the write audit log."""

from __future__ import annotations

from datetime import datetime, timezone

from bacpypes3.pdu import Address
from bacpypes3.primitivedata import Null, ObjectIdentifier

from energy.environment import ParkEnvironment
from protocols.field import ProtocolField
from protocols.pointmap import load_point_maps
from twin.history import open_history
from twin.live import LiveState
from twin.runtime import ProtocolFeed, SimulationClock, TwinSink
from twin.sim import ParkSimulator

from test_bacnet_commands import SETPOINT, SETPOINT_OBJECT, other_client
from waiting import wait_for

START = datetime(2026, 7, 1, 2, tzinfo=timezone.utc)


def test_an_operator_override_is_not_fought_and_writing_resumes_after_relinquish(tmp_path, demo_park, demo_park_copy):
    maps = [m for m in load_point_maps(demo_park_copy.parent / "pointmaps", demo_park)
            if m.name in ("chiller1", "grid_meter")]
    (chiller_map,) = [m for m in maps if m.name == "chiller1"]
    clock = SimulationClock(START, 60)
    with open_history(f"sqlite:///{tmp_path / 'h.sqlite'}") as store:
        feed = ProtocolFeed(ParkSimulator(demo_park, ParkEnvironment(demo_park), START), clock,
                            TwinSink(LiveState(), store), maps, audit=store)
        field = ProtocolField(demo_park, LiveState(), store, lambda p, v, who: feed.write(p, v, who).result,
                              clock.now_utc, 15, overrides=feed.overrides)
        feed.start()
        operator = None
        address = Address(f"127.0.0.1:{chiller_map.port}")

        async def operator_writes(value):
            nonlocal operator
            operator = operator or other_client()
            await operator.write_property(address, ObjectIdentifier(SETPOINT_OBJECT), "present-value", value,
                                          priority=8)

        try:
            assert field.write_setpoints({SETPOINT: 8.0}, "controller:test") == {SETPOINT: "ok"}
            feed.call(lambda: operator_writes(9.5))
            rounds_at_override = feed.adapter_feed.rounds
            wait_for(lambda: SETPOINT in feed.overrides(), 60, "the override seen")
            overridden_after_rounds = feed.adapter_feed.rounds - rounds_at_override
            assert field.write_setpoints({SETPOINT: 10.0}, "controller:test") == \
                {SETPOINT: "skipped: overridden at priority 8"}
            feed.call(lambda: operator_writes(Null(())))
            wait_for(lambda: SETPOINT not in feed.overrides(), 60, "the override relinquished")
            assert field.write_setpoints({SETPOINT: 10.5}, "controller:test") == {SETPOINT: "ok"}
        finally:
            if operator is not None:
                operator.close()
            feed.stop()
        audited = [(r.point_id, r.value, r.result) for r in store.write_audit() if r.who == "controller:test"]
    assert overridden_after_rounds <= 2 + 1  # seen by the second poll after the write (a round may be under way)
    assert audited == [(SETPOINT, 8.0, "ok"), (SETPOINT, 10.5, "ok")]  # 10.0 was never sent
