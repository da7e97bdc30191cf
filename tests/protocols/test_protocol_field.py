"""The protocol field (the controller's port under `parktwin run`) on real simulated devices: it does not
fight an operator's override, and writes again once the operator relinquishes; every write it sends is
in the write audit log; the storage it reports is brought forward from the time of its readings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from bacpypes3.pdu import Address
from bacpypes3.primitivedata import Null, ObjectIdentifier
from test_bacnet_commands import SETPOINT, SETPOINT_OBJECT, other_client
from waiting import wait_for

from energy.environment import ParkEnvironment
from energy.tariff import load_tariff
from optimizer.controller import Controller, PreparedStep, TariffPrices
from optimizer.park_inputs import PerfectForecaster
from optimizer.plan import plan_context, plan_options
from parktwin.runtime import ProtocolFeed, SimulationClock, TwinSink
from protocols.field import ProtocolField
from protocols.pointmap import load_point_maps
from twin.history import open_history
from twin.kinds import Battery, IceTank
from twin.live import LiveState
from twin.points import point_id
from twin.readings import Reading
from twin.sim import ParkSimulator

START = datetime(2026, 7, 1, 2, tzinfo=UTC)


def test_an_operator_override_is_not_fought_and_writing_resumes_after_relinquish(tmp_path, demo_park, demo_park_copy):
    maps = [m for m in load_point_maps(demo_park_copy.parent / "pointmaps", demo_park)
            if m.name in ("chiller1", "grid_meter")]
    (chiller_map,) = [m for m in maps if m.name == "chiller1"]
    clock = SimulationClock(START, 60)
    with open_history(f"sqlite:///{tmp_path / 'h.sqlite'}") as store:
        feed = ProtocolFeed(ParkSimulator(demo_park, ParkEnvironment(demo_park), START), clock,
                            TwinSink(LiveState(), store), maps, audit=store)
        field = ProtocolField(demo_park, LiveState(), store,
                              lambda values, who: {p: r.result for p, r in feed.write_many(values, who).items()},
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


def test_storage_readings_a_poll_old_are_brought_forward_by_the_flows_read_with_them(tmp_path, demo_park):
    """A plan starts from the storage at the step, not at the last poll: ten minutes after a battery
    reading at 891 kW discharge and an ice reading melting 2,800 kWth, the state is what those flows
    leave (hand calculation), a battery that would pass its SOC floor stops there, and read for the
    coming step boundary (15 minutes after the readings) the flows run on to it."""
    (battery,), (tank,) = demo_park.assets_of(Battery), demo_park.assets_of(IceTank)
    building = next(b.id for b, a in demo_park.iter_assets() if a is battery)
    tank_building = next(b.id for b, a in demo_park.iter_assets() if a is tank)
    read_at, now = START, START + timedelta(minutes=10)
    floor_kwh = battery.energy_capacity_kwh * battery.soc_min_pct / 100
    live = LiveState()

    def state_with(stored_kwh: float, at_utc: datetime | None = None):
        live.update([Reading(point_id(building, battery.id, "stored_energy_kwh"), read_at, stored_kwh),
                     Reading(point_id(building, battery.id, "power_kw"), read_at, 891.0),
                     Reading(point_id(tank_building, tank.id, "inventory_kwhth"), read_at, 6000.0),
                     Reading(point_id(tank_building, tank.id, "charge_kwth"), read_at, 0.0),
                     Reading(point_id(tank_building, tank.id, "melt_kwth"), read_at, 2800.0),
                     Reading(point_id(tank_building, tank.id, "standing_loss_kwth"), read_at, 9.0)])
        with open_history(f"sqlite:///{tmp_path / 'h.sqlite'}") as store:
            return ProtocolField(demo_park, live, store, lambda values, who: {}, lambda: now, 15).read_state(at_utc)

    state = state_with(floor_kwh + 400.0)
    # 891 kW for 1/6 h draws 891 / eta_d / 6 kWh from the cells
    assert state.stored[battery.id] == pytest.approx(
        floor_kwh + 400.0 - 891.0 / battery.discharge_efficiency / 6)
    assert state.stored[tank.id] == pytest.approx(6000.0 - (2800.0 + 9.0) / 6)
    assert state_with(floor_kwh + 50.0).stored[battery.id] == pytest.approx(floor_kwh)

    # a step prepared ahead of its boundary starts from the state the flows leave at the boundary
    boundary = START + timedelta(minutes=15)
    ahead = state_with(floor_kwh + 400.0, boundary)
    assert ahead.now_utc == boundary
    assert ahead.stored[battery.id] == pytest.approx(
        floor_kwh + 400.0 - 891.0 / battery.discharge_efficiency / 4)
    assert ahead.stored[tank.id] == pytest.approx(6000.0 - (2800.0 + 9.0) / 4)


def test_a_write_that_went_unanswered_is_released_too(tmp_path, demo_park):
    """A write that failed for want of an answer may still have reached the device, so release hands it back
    as well; a refused write (limits) never reached it and is not released."""
    sent: list[dict] = []

    def write(values: dict, who: str) -> dict[str, str]:
        sent.append(dict(values))
        if all(value is None for value in values.values()):
            return dict.fromkeys(values, "ok")
        return {"plant.battery.power_setpoint_kw": "ok",
                "plant.ice_tank.charge_setpoint_kwth": "failed: no answer within 3 s",
                "plant.ice_tank.melt_setpoint_kwth": "refused: above its safe maximum"}

    with open_history(f"sqlite:///{tmp_path / 'h.sqlite'}") as store:
        field = ProtocolField(demo_park, LiveState(), store, write, lambda: START, 15)
        field.write_setpoints({"plant.battery.power_setpoint_kw": 100.0, "plant.ice_tank.charge_setpoint_kwth": 50.0,
                               "plant.ice_tank.melt_setpoint_kwth": 1e9}, "controller:test")
        released = field.release_setpoints("controller:test")
    assert set(released) == {"plant.battery.power_setpoint_kw", "plant.ice_tank.charge_setpoint_kwth"}
    assert sent[-1] == {"plant.battery.power_setpoint_kw": None, "plant.ice_tank.charge_setpoint_kwth": None}


def test_a_release_that_went_unanswered_is_tried_again_at_the_next_step(tmp_path, demo_park):
    """Suspending releases every setpoint; the battery's device does not answer that release, so the controller
    releases it again at its next step (no authority), and only it, until the device has taken it."""
    tariff = load_tariff(demo_park.tariff)
    sent: list[dict] = []
    answering = {"plant.battery.power_setpoint_kw": [False, True]}  # the battery answers its second release

    def write(values: dict, who: str) -> dict[str, str]:
        sent.append(dict(values))
        return {point: "ok" if value is not None or answering.get(point, [True]).pop(0) else
                "failed: battery (127.0.0.1:15020): no answer within 0.5 s (after 2 retries)"
                for point, value in values.items()}

    with open_history(f"sqlite:///{tmp_path / 'h.sqlite'}") as store:
        field = ProtocolField(demo_park, LiveState(), store, write, lambda: START, 15)
        controller = Controller(demo_park, field, PerfectForecaster(pd.DataFrame()), TariffPrices(tariff),
                                plan_options(tariff), plan_context(demo_park, tariff))
        field.write_setpoints({"plant.battery.power_setpoint_kw": 100.0,
                               "plant.ice_tank.charge_setpoint_kwth": 50.0}, "controller:test")
        suspended = controller.release("suspended by tara")
        next_steps = [controller.dispatch(PreparedStep(START + timedelta(minutes=15 * n), False, {}))
                      for n in (1, 2)]
    assert suspended == {"plant.battery.power_setpoint_kw": "failed: battery (127.0.0.1:15020): no answer within "
                         "0.5 s (after 2 retries)", "plant.ice_tank.charge_setpoint_kwth": "ok"}
    assert next_steps[0].results == {"plant.battery.power_setpoint_kw": "ok"}
    assert sent[-1] == {"plant.battery.power_setpoint_kw": None}
    assert next_steps[1].results == {} and len(sent) == 3  # all released: nothing more is sent
