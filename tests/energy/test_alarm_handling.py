"""Alarm handling to ISA-18.2 on hand-made live readings: on- and off-delays, each point's own stale limit,
suppression by cause, the start-up grace period, configurable priorities, and the alarm-system KPIs.

Readings reach a LiveFaultDetector as a live feed delivers them: each device polled on its own period
(stated to the detector as its point map's, in twin time), devices at different instants.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from energy.alarm_kpis import alarm_system_kpis
from energy.fault_detection import LiveFaultDetector
from energy.fault_rules import FaultThresholds, load_fault_thresholds
from twin.config import ConfigError, load_park
from twin.fault_episodes import FaultEpisode, Priority
from twin.readings import Quality, Reading

PARK = load_park(Path(__file__).parents[2] / "examples" / "demo-park" / "park.yaml")
T0 = datetime(2026, 7, 1, 2, 0, tzinfo=UTC)  # 10:00 in Shenzhen, a Wednesday
POLL = timedelta(minutes=10)  # a 1 s poll period at --speed 600


def lift_values(fault_code: float) -> dict[str, float]:
    return {"b1.elevator2.in_service": 1.0 if fault_code == 0 else 0.0, "b1.elevator2.fault_code": fault_code,
            "b1.elevator2.power_kw": 3.0, "b1.elevator2.trips_count": 100.0}


def feed(detector: LiveFaultDetector, devices: dict[str, tuple[timedelta, timedelta, callable]], hours: float) -> None:
    """Deliver readings for ``hours`` from T0: per device (name -> (poll period, offset, reading at a poll
    time -> {point id: value or (value, quality)})), each device polled from T0 + offset on its period,
    all in time order, as a feed delivers them (the detector judges them every 15 simulated minutes)."""
    polls = []
    for period, offset, reading in devices.values():
        t = T0 + offset
        while t < T0 + timedelta(hours=hours):
            polls.append((t, reading))
            t += period
    for t, reading in sorted(polls, key=lambda p: p[0]):
        batch = []
        for pid, given in reading(t).items():
            value, quality = given if isinstance(given, tuple) else (given, Quality.GOOD)
            batch.append(Reading(pid, t, value, quality))
        detector.deliver(batch)


class Recorder:
    """An episode store stand-in that keeps what the detector saves (the real store is tested elsewhere)."""

    def __init__(self):
        self.saved: dict[tuple, FaultEpisode] = {}

    def open_episodes(self) -> list[FaultEpisode]:
        return []

    def save(self, episodes) -> int:
        for episode in episodes:
            self.saved[episode.key] = episode
        return len(episodes)

    def episodes(self, rule_id: str | None = None) -> list[FaultEpisode]:
        return sorted((e for e in self.saved.values() if rule_id is None or e.rule_id == rule_id),
                      key=lambda e: e.start_utc)


def detector(poll_periods: dict[str, timedelta], limits: FaultThresholds | None = None,
             startup_grace: timedelta = timedelta(0)):
    recorder = Recorder()
    return LiveFaultDetector(PARK, limits, recorder, poll_periods=poll_periods, startup_grace=startup_grace), recorder


def periods(asset_id: str, period: timedelta) -> dict[str, timedelta]:
    return {pid: period for pid, p in PARK.points.items() if p.asset_id == asset_id}


def lift_device(fault_at) -> dict:
    """elevator2 polled every 10 min; ``fault_at(minutes since T0)`` gives its fault code."""
    return {"elevator2": (POLL, timedelta(0), lambda t: lift_values(fault_at((t - T0) / timedelta(minutes=1))))}


# ------------------------------------------------------------------ on- and off-delay

def test_a_fault_seen_at_one_poll_opens_no_episode():
    live, store = detector(periods("elevator2", POLL))
    feed(live, lift_device(lambda m: 17.0 if m == 60 else 0.0), hours=6)
    assert store.episodes() == []


def test_a_fault_that_clears_for_one_poll_stays_one_episode_and_ends_where_it_cleared_for_good():
    live, store = detector(periods("elevator2", POLL))
    # out of service from minute 60, back for the single poll at minute 120, out again until minute 240
    feed(live, lift_device(lambda m: 17.0 if 60 <= m < 240 and m != 120 else 0.0), hours=8)
    (episode,) = store.episodes()
    assert episode.rule_id == "elevator_out_of_service" and episode.priority == Priority.HIGH
    assert (episode.start_utc, episode.end_utc) == (T0 + timedelta(minutes=60), T0 + timedelta(minutes=240))


def test_an_ongoing_fault_keeps_its_start_across_updates_while_it_lasts():
    live, store = detector(periods("elevator2", POLL))
    feed(live, lift_device(lambda m: 17.0 if m >= 30 else 0.0), hours=12)
    (episode,) = store.episodes()
    assert episode.start_utc == T0 + timedelta(minutes=30) and episode.end_utc is None


def test_a_chiller_that_stops_during_a_low_delta_t_neither_ends_nor_restarts_the_fault():
    def chiller3(t):
        m = (t - T0) / timedelta(minutes=1)
        running = not 120 <= m < 200  # stopped for 80 min in the middle of the fault
        delta_t_k = 1.2 if 30 <= m < 300 else 5.0
        supply = 7.0 + 0.05 * np.sin(m) if running else 13.0 + 0.05 * np.sin(m)
        return {"plant.chiller3.mode": 1.0 if running else 0.0, "plant.chiller3.chw_setpoint_c": 7.0,
                "plant.chiller3.chw_supply_temp_c": supply,
                "plant.chiller3.chw_return_temp_c": supply + (delta_t_k if running else 0.0)}

    live, store = detector(periods("chiller3", POLL))
    feed(live, {"chiller3": (POLL, timedelta(0), chiller3)}, hours=8)
    (episode,) = store.episodes("chw_low_delta_t")
    assert (episode.start_utc, episode.end_utc) == (T0 + timedelta(minutes=30), T0 + timedelta(minutes=300))
    assert episode.evidence["delta_t_k"] == pytest.approx(1.2)


# ------------------------------------------------------------------ stale limits per point

def noisy_meter(t) -> dict[str, float]:
    m = (t - T0) / timedelta(minutes=1)
    return {"b2.meter_b2.power_kw": 300.0 + 3.0 * np.sin(m), "b2.meter_b2.import_energy_kwh": 1000.0 + m,
            "b2.meter_b2.export_energy_kwh": 0.0}


def battery(t) -> dict[str, float]:
    m = (t - T0) / timedelta(minutes=1)
    return {"plant.battery.soc_pct": 50.0, "plant.battery.cell_temp_max_c": 30.0 + 0.1 * np.sin(m),
            "plant.battery.cell_voltage_spread_v": 0.05}


def test_each_point_is_stale_after_three_of_its_own_poll_periods_whatever_other_devices_poll():
    """The lift is polled every 20 s, the meter every minute, the battery every 10 minutes: the battery's
    20-minute gaps are within its own 30-minute limit though sixty lift readings fall in each, and the
    meter's import counter, missing from 100 to 105 min while the meter's other points answer, is beyond
    its own 3-minute limit: stale, and no comm loss to suppress it."""
    minute, lift_period = timedelta(minutes=1), timedelta(seconds=20)
    counter = "b2.meter_b2.import_energy_kwh"
    meter_gap = lambda t: {pid: value for pid, value in noisy_meter(t).items() if pid != counter
                           or not T0 + timedelta(minutes=100) <= t < T0 + timedelta(minutes=105)}
    battery_gaps = lambda t: {} if ((t - T0) // POLL) % 3 == 1 else battery(t)  # every third poll missed
    live, store = detector({**periods("meter_b2", minute), **periods("battery", POLL),
                            **periods("elevator2", lift_period)})
    feed(live, {"meter_b2": (minute, timedelta(seconds=7), meter_gap),
                "battery": (POLL, timedelta(seconds=200), battery_gaps),
                "elevator2": (lift_period, timedelta(0), lambda t: lift_values(0.0))}, hours=4)
    (stale,) = store.episodes()
    # last read at 99:07: stale 3 minutes later, at the meter's own poll of 102:07 that missed it
    assert (stale.rule_id, stale.point_id, stale.suppressed_by) == ("sensor_stale", counter, None)
    assert (stale.start_utc, stale.end_utc) == (T0 + timedelta(minutes=102, seconds=7),
                                                T0 + timedelta(minutes=105, seconds=7))


# ------------------------------------------------------------------ suppression and grace

def ev5(lost_from: float, lost_to: float):
    def reading(t):
        m = (t - T0) / timedelta(minutes=1)
        if lost_from <= m < lost_to:
            return dict.fromkeys(periods("ev5", POLL), (None, Quality.COMM_FAIL))
        return {"b1.ev5.power_kw": 7.0, "b1.ev5.connected": 1.0, "b1.ev5.session_energy_kwh": m / 10,
                "b1.ev5.power_limit_kw": 22.0}
    return reading


def test_a_device_that_stops_answering_raises_one_alarm_and_its_points_stale_episodes_are_suppressed_by_it():
    live, store = detector(periods("ev5", POLL))
    feed(live, {"ev5": (POLL, timedelta(0), ev5(300, 480))}, hours=12)
    (lost,) = store.episodes("device_comm_lost")  # last answer at 290 min: lost 3 polls later, until 480
    assert (lost.start_utc, lost.end_utc) == (T0 + timedelta(minutes=320), T0 + timedelta(minutes=480))
    stale = store.episodes("sensor_stale")
    assert {e.point_id for e in stale} == set(periods("ev5", POLL))  # one per point, each once
    assert all(e.suppressed_by == lost.id for e in stale)
    assert [e for e in store.episodes() if e.suppressed_by is None] == [lost]


def test_a_device_not_answering_its_first_polls_raises_nothing_within_the_grace_period_and_an_alarm_after():
    grace = 10 * POLL  # 10 s of wall-clock grace at --speed 600; comm loss after 3 failed polls
    live, store = detector(periods("ev5", POLL), startup_grace=grace)
    feed(live, {"ev5": (POLL, timedelta(0), ev5(0, 60))}, hours=6)  # 6 polls unanswered at start
    assert store.episodes() == []
    live, store = detector(periods("ev5", POLL), startup_grace=grace)
    feed(live, {"ev5": (POLL, timedelta(0), ev5(0, 24 * 60))}, hours=6)  # never answers
    (lost,) = [e for e in store.episodes() if e.suppressed_by is None]
    assert lost.rule_id == "device_comm_lost" and lost.start_utc == T0 + grace


# ------------------------------------------------------------------ configuration

def test_priorities_and_off_delays_come_from_the_thresholds_file(tmp_path):
    path = tmp_path / "thresholds.yaml"
    path.write_text("alarms:\n  elevator_out_of_service: {priority: critical, off_delay_minutes: 60}\n")
    live, store = detector(periods("elevator2", POLL), load_fault_thresholds(path))
    # back in service for 40 min: within the 60-minute off-delay, so one episode
    feed(live, lift_device(lambda m: 17.0 if 60 <= m < 240 and not 120 <= m < 160 else 0.0), hours=8)
    (episode,) = store.episodes()
    assert episode.priority == Priority.CRITICAL and episode.end_utc == T0 + timedelta(minutes=240)
    path.write_text("alarms:\n  elevator_out_of_servic: {priority: high}\n")
    with pytest.raises(ConfigError, match="elevator_out_of_servic"):
        load_fault_thresholds(path)
    path.write_text("alarms:\n  elevator_out_of_service: {priority: urgent}\n")
    with pytest.raises(ConfigError, match="priority"):
        load_fault_thresholds(path)


# ------------------------------------------------------------------ alarm-system KPIs

def episode(rule_id: str, asset_id: str, start_min: float, end_min: float | None, priority=Priority.LOW,
            point_id: str = "", suppressed_by: str | None = None) -> FaultEpisode:
    return FaultEpisode(rule_id, asset_id, T0 + timedelta(minutes=start_min),
                        None if end_min is None else T0 + timedelta(minutes=end_min), priority, {}, point_id,
                        suppressed_by)


def test_alarm_system_kpis_by_hand():
    day = 24 * 60
    flood = [episode("sensor_spike", f"a{i}", 125 + i / 10, 127, point_id="p") for i in range(11)]  # 11 in 10 min
    chatter = [episode("sensor_spike", "weather", 500 + s / 60, 501, point_id="t") for s in (0, 20, 45)]
    slow = [episode("sensor_spike", "chiller1", 700 + 5 * i, 701 + 5 * i, point_id="t") for i in range(3)]  # 10 min
    standing = episode("battery_overtemp", "battery", 60, 60 + 25 * 60, Priority.CRITICAL)
    ended = episode("elevator_out_of_service", "elevator2", 30, 90, Priority.HIGH)
    medium = episode("chw_supply_off_setpoint", "chiller3", 40, None, Priority.MEDIUM)
    suppressed = episode("sensor_stale", "ev5", 200, 300, suppressed_by="device_comm_lost:ev5::1")
    before = episode("lighting_on_unoccupied", "lighting", -10 * 60, -60)  # before the period: not counted
    kpis = alarm_system_kpis([*flood, *chatter, *slow, standing, ended, medium, suppressed, before],
                             T0, T0 + timedelta(minutes=day))
    alarms = 11 + 3 + 3 + 3  # suppressed and earlier episodes are no alarms of the day
    assert kpis["alarms"] == alarms and kpis["suppressed"] == 1
    assert kpis["alarms_per_operator_hour"] == pytest.approx(alarms / 24.0)
    assert kpis["flood_periods_pct"] == pytest.approx(100.0 / 144)  # one 10-minute period of 144
    assert kpis["chattering_alarms"] == ["sensor_spike:weather:t"]
    assert kpis["standing_alarms"] == []  # the overtemperature's 25 h are not over within the day
    assert kpis["priority_counts"] == {"low": 17, "medium": 1, "high": 1, "critical": 1}
    assert kpis["priority_pct"]["low"] == pytest.approx(100.0 * 17 / 20)
    two_days = alarm_system_kpis([standing, ended], T0, T0 + timedelta(days=2))
    assert two_days["standing_alarms"] == [standing.id]


def test_a_frozen_sensor_is_one_flatline_episode_judged_on_its_own_readings_not_on_values_held_between_polls():
    """The weather station, polled every 10 minutes among a lift polled every 20 s: its outdoor temperature
    frozen from 60 to 180 min is one flatline episode (30-minute on-delay), ending at its first reading that
    moves; the held copies between its polls neither raise one before nor keep it open after."""
    lift_period = timedelta(seconds=20)

    def weather(t):
        m = (t - T0) / timedelta(minutes=1)
        frozen = 60 <= m < 180
        return {"plant.weather.outdoor_temp_c": 30.0 if frozen else 30.0 + 0.2 * np.sin(m / 7)}

    live, store = detector({**periods("weather", POLL), **periods("elevator2", lift_period)})
    feed(live, {"weather": (POLL, timedelta(seconds=90), weather),
                "elevator2": (lift_period, timedelta(0), lambda t: lift_values(0.0))}, hours=6)
    (episode,) = store.episodes()
    # polled at 1:30, 11:30, ...: unchanged first at 71:30 (its 61:30 reading froze it), moving again at 181:30
    assert (episode.rule_id, episode.point_id) == ("sensor_flatline", "plant.weather.outdoor_temp_c")
    assert (episode.start_utc, episode.end_utc) == (T0 + timedelta(minutes=71, seconds=30),
                                                    T0 + timedelta(minutes=181, seconds=30))
