"""Read-back of written setpoints on the park simulator: a device that ignores its setpoint (the
simulator's ``setpoint_ignored`` fault, a device left in local mode) raises one "setpoint not followed"
episode within 3 polls, kept while the controller writes the same value again, ended once the
device holds the value; a device that follows raises nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from energy.environment import ParkEnvironment
from protocols.readback import POLLS, RULE_ID, SetpointReadback
from twin.sim import Fault, ParkSimulator

BATTERY_SETPOINT = "plant.battery.power_setpoint_kw"
START = datetime(2026, 7, 1, 1, 0, tzinfo=UTC)  # 09:00 local: the schedule leaves the battery idle


def polls(simulator: ParkSimulator, readback: SetpointReadback, count: int) -> None:
    """``count`` polls: each simulated step's readings delivered to the read-back check (the first step
    after a write is stamped with the write's own time, so it does not count as a poll after it)."""
    for _ in range(count):
        readback.deliver(simulator.readings(simulator.advance()))


def test_an_ignored_setpoint_raises_one_episode_within_three_polls_and_ends_when_followed(demo_park):
    simulator = ParkSimulator(demo_park, ParkEnvironment(demo_park), START)
    simulator.inject_fault(Fault("setpoint_ignored", BATTERY_SETPOINT, START, START + timedelta(minutes=30)))
    saved = []
    readback = SetpointReadback(demo_park, saved.extend, lambda: simulator.now_utc)

    simulator.write_setpoint(BATTERY_SETPOINT, -300.0)  # accepted, and not taken
    readback.written(BATTERY_SETPOINT, -300.0)
    polls(simulator, readback, POLLS)
    assert saved == []  # the write's own step and two polls after it that do not show it: not yet a fault
    polls(simulator, readback, 1)
    (episode,) = saved
    assert (episode.rule_id, episode.asset_id, episode.point_id, episode.end_utc) == \
        (RULE_ID, "battery", BATTERY_SETPOINT, None)
    assert episode.evidence["written"] == -300.0 and episode.evidence["read"] == 0.0  # the schedule's idle
    assert set(readback.not_followed()) == {BATTERY_SETPOINT}

    # the controller writes the same value at its next step: still the same episode, not a new one
    simulator.write_setpoint(BATTERY_SETPOINT, -300.0)
    readback.written(BATTERY_SETPOINT, -300.0)
    polls(simulator, readback, 5)
    assert len(saved) == 1

    # the device is back in remote mode (the fault ended): the next write is held, and the episode ends
    while simulator.now_utc < START + timedelta(minutes=30):
        polls(simulator, readback, 1)
    simulator.write_setpoint(BATTERY_SETPOINT, -300.0)
    readback.written(BATTERY_SETPOINT, -300.0)
    polls(simulator, readback, 2)
    assert len(saved) == 2 and saved[1].id == episode.id and saved[1].end_utc is not None
    assert readback.not_followed() == {}


def test_a_followed_setpoint_raises_nothing(demo_park):
    simulator = ParkSimulator(demo_park, ParkEnvironment(demo_park), START)
    saved = []
    readback = SetpointReadback(demo_park, saved.extend, lambda: simulator.now_utc)
    for value in (-300.0, 250.0, 0.0):
        simulator.write_setpoint(BATTERY_SETPOINT, value)
        readback.written(BATTERY_SETPOINT, value)
        polls(simulator, readback, 10)
    readback.written(BATTERY_SETPOINT, None)  # released
    polls(simulator, readback, 10)
    assert saved == [] and readback.not_followed() == {}
