"""Fault episodes stored with the history: the same behaviour on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from twin.fault_episodes import FaultEpisode, Severity
from twin.history import FaultEpisodeStore, open_history

T0 = datetime(2026, 7, 1, 2, 0, tzinfo=timezone.utc)


@pytest.fixture(params=["sqlite", "postgres"])
def history_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'h.sqlite'}"
    return request.getfixturevalue("postgres_url")


def episode(rule: str, asset: str, start_h: float, end_h: float | None, **evidence) -> FaultEpisode:
    end = None if end_h is None else T0 + timedelta(hours=end_h)
    return FaultEpisode(rule, asset, T0 + timedelta(hours=start_h), end, Severity.WARNING, evidence)


def test_saved_episodes_come_back_with_every_field_and_overlap_selects_by_time(history_url):
    with open_history(history_url) as history:
        store = FaultEpisodeStore(history)
        closed = episode("chw_low_delta_t", "chiller3", 1, 3, delta_t_k=1.2)
        active = FaultEpisode("sensor_flatline", "chiller2", T0 + timedelta(hours=5), None, Severity.INFO,
                              {"value": 7.01}, point_id="plant.chiller2.chw_supply_temp_c")
        assert store.save([active, closed]) == 2
        assert store.overlapping(T0, T0 + timedelta(days=1)) == [closed, active]
        assert store.overlapping(T0 + timedelta(hours=3), T0 + timedelta(hours=4)) == []  # end is exclusive
        assert store.overlapping(T0 + timedelta(hours=2), T0 + timedelta(hours=2, minutes=1)) == [closed]
        assert store.overlapping(T0 + timedelta(days=30), T0 + timedelta(days=31)) == [active]  # still open
        assert store.open_episodes() == [active]


def test_saving_the_same_episode_again_replaces_it_instead_of_adding_one(history_url):
    with open_history(history_url) as history:
        store = FaultEpisodeStore(history)
        store.save([episode("battery_overtemp", "battery", 0, None, cell_temp_max_c=50.0)])
        store.save([episode("battery_overtemp", "battery", 0, 4, cell_temp_max_c=53.0)])
        again = FaultEpisodeStore(history)  # a second store on the same database sees the same rows
        (stored,) = again.overlapping(T0 - timedelta(days=1), T0 + timedelta(days=1))
        assert stored.end_utc == T0 + timedelta(hours=4)
        assert stored.evidence == {"cell_temp_max_c": 53.0}
        assert again.open_episodes() == []


def test_an_episode_must_end_after_it_starts_and_carry_time_zones():
    with pytest.raises(ValueError, match="not after start"):
        episode("x", "a", 2, 1)
    with pytest.raises(ValueError, match="tz-aware"):
        FaultEpisode("x", "a", datetime(2026, 7, 1), None, Severity.INFO)


def test_an_acknowledgement_records_who_and_when_and_survives_the_detector_saving_the_episode_again(history_url):
    at = T0 + timedelta(hours=1, minutes=7)
    with open_history(history_url) as history:
        store = FaultEpisodeStore(history)
        open_one = episode("battery_overtemp", "battery", 0, None, cell_temp_max_c=50.0)
        other = episode("chw_low_delta_t", "chiller3", 0, None, delta_t_k=1.2)
        store.save([open_one, other])
        acked = store.acknowledge(open_one.id, "olga", at)
        assert (acked.acknowledged_by, acked.acknowledged_utc) == ("olga", at)
        assert store.acknowledge(open_one.id, "oscar", at + timedelta(hours=1)).acknowledged_by == "olga"  # first stands
        store.save([open_one.closed_at(T0 + timedelta(hours=4))])  # the detector closes it, knowing nothing of acks
        again = FaultEpisodeStore(history)
        (closed, untouched) = again.overlapping(T0, T0 + timedelta(days=1))
        assert (closed.rule_id, closed.end_utc) == ("battery_overtemp", T0 + timedelta(hours=4))
        assert (closed.acknowledged_by, closed.acknowledged_utc) == ("olga", at)
        assert (untouched.acknowledged_by, untouched.acknowledged_utc) == (None, None)
        assert again.open_episodes() == [untouched]
        assert store.acknowledge("battery_overtemp:battery::1", "olga", at) is None  # no such episode
        assert store.acknowledge("not an id", "olga", at) is None
