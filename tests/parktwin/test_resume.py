"""Where a simulated run continues on a history an earlier run left: the same on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from parktwin.resume import close_left_open, first_step_after, history_end
from twin.fault_episodes import FaultEpisode, Priority
from twin.history import FaultEpisodeStore, WriteRecord, open_history
from twin.readings import Quality, Reading

T0 = datetime(2026, 7, 3, 10, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def test_an_empty_history_has_no_end(history_url):
    with open_history(history_url) as store:
        assert history_end(store, FaultEpisodeStore(store)) is None


def test_the_end_is_the_newest_reading_episode_time_or_write_and_the_latest_readings_come_with_it(history_url):
    with open_history(history_url) as store:
        episodes = FaultEpisodeStore(store)
        store.append([Reading("plant.battery.soc_pct", T0, 55.0, Quality.GOOD),
                      Reading("plant.battery.soc_pct", T0 + 4 * MINUTE, 56.5, Quality.GOOD),
                      Reading("plant.grid_meter.power_kw", T0 + 2 * MINUTE, None, Quality.COMM_FAIL)])
        end = history_end(store, episodes)
        assert end.last_reading_utc == end.last_record_utc == T0 + 4 * MINUTE
        assert {pid: r.value for pid, r in end.latest.items()} == {"plant.battery.soc_pct": 56.5,
                                                                    "plant.grid_meter.power_kw": None}
        # a killed run may have saved an episode and a write after its last flushed reading
        episodes.save([FaultEpisode("battery_overtemp", "battery", T0 + 3 * MINUTE, T0 + 6 * MINUTE,
                                    Priority.CRITICAL)])
        assert history_end(store, episodes).last_record_utc == T0 + 6 * MINUTE
        store.record_write(WriteRecord(T0 + 7 * MINUTE + timedelta(seconds=30), "controller:auto",
                                       "plant.battery.power_setpoint_kw", 200.0, "ok"))
        end = history_end(store, episodes)
        assert end.last_record_utc == T0 + 7 * MINUTE + timedelta(seconds=30)
        assert end.last_reading_utc == T0 + 4 * MINUTE
        # an episode open since before the last reading does not move the end
        episodes.save([FaultEpisode("sensor_stale", "ev5", T0 + MINUTE, None, Priority.LOW)])
        assert history_end(store, episodes).last_record_utc == T0 + 7 * MINUTE + timedelta(seconds=30)


def test_the_first_step_after_a_time_is_strictly_after_it():
    assert first_step_after(T0 + timedelta(seconds=27, milliseconds=500), MINUTE) == T0 + MINUTE
    assert first_step_after(T0, MINUTE) == T0 + MINUTE  # on a step: the next one
    assert first_step_after(T0 + timedelta(minutes=7), timedelta(minutes=15)) == T0 + timedelta(minutes=15)


def test_episodes_left_open_are_closed_unless_their_rule_is_continued(history_url):
    with open_history(history_url) as store:
        episodes = FaultEpisodeStore(store)
        overtemp = FaultEpisode("battery_overtemp", "battery", T0, None, Priority.CRITICAL)
        not_followed = FaultEpisode("setpoint_not_followed", "battery", T0 + MINUTE, None, Priority.MEDIUM,
                                    point_id="plant.battery.power_setpoint_kw")
        ended = FaultEpisode("sensor_stale", "ev5", T0, T0 + 2 * MINUTE, Priority.LOW)
        episodes.save([overtemp, not_followed, ended])
        resumed_at = T0 + 10 * MINUTE
        closed = close_left_open(episodes, resumed_at, {"battery_overtemp", "sensor_stale"})
        assert closed == [not_followed.closed_at(resumed_at)]
        assert episodes.open_episodes() == [overtemp]
        assert sorted(episodes.overlapping(T0, T0 + timedelta(days=1)), key=lambda e: e.rule_id) == \
            [overtemp, ended, not_followed.closed_at(resumed_at)]
