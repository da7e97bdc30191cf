"""Alarm management in the fault episode store, on SQLite and PostgreSQL: acknowledging cleared alarms, comments,
shelving with expiry, the alarm count, the console's filtered paging, and the new-episode listener."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from twin.fault_episodes import AlarmFilter, AlarmState, FaultEpisode, Priority
from twin.history import FaultEpisodeStore, open_history

T0 = datetime(2026, 7, 1, 2, 0, tzinfo=UTC)


@pytest.fixture
def store(history_url):
    with open_history(history_url) as history:
        yield FaultEpisodeStore(history)


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def episode(rule: str, asset: str, start_h: float, end_h: float | None, priority: Priority = Priority.HIGH,
            point: str = "", suppressed_by: str | None = None) -> FaultEpisode:
    return FaultEpisode(rule, asset, at(start_h), None if end_h is None else at(end_h), priority, {}, point,
                        suppressed_by)


def ids(episodes) -> list[str]:
    return [e.id for e in episodes]


def test_a_cleared_alarm_never_acknowledged_stays_listed_until_someone_acknowledges_it(store):
    cleared = episode("chw_low_delta_t", "chiller3", 0, 2)
    store.save([cleared])
    needs_ack = AlarmFilter(states=frozenset({AlarmState.UNACKNOWLEDGED}))
    assert ids(store.page(needs_ack, at(5)).episodes) == [cleared.id]
    acked = store.acknowledge(cleared.id, "olga", at(5))
    assert (acked.end_utc, acked.acknowledged_by, acked.acknowledged_utc) == (at(2), "olga", at(5))
    assert store.page(needs_ack, at(6)).episodes == []
    both = AlarmFilter(states=frozenset({AlarmState.CLEARED}))
    assert [e.acknowledged_by for e in store.page(both, at(6)).episodes] == ["olga"]


def test_comments_are_kept_per_episode_in_the_order_written(store):
    first, second = episode("battery_overtemp", "battery", 0, None), episode("battery_overtemp", "battery", 3, 4)
    store.save([first, second])
    store.comment(first.id, "olga", at(1), "fan noisy, vendor called")
    store.comment(second.id, "oscar", at(4), "same again")
    store.comment(first.id, "oscar", at(2), "vendor on site")
    shown = store.comments([first.id, second.id, "unknown:x::5"])
    assert [(c.who, c.at_utc, c.text) for c in shown[first.id]] == [
        ("olga", at(1), "fan noisy, vendor called"), ("oscar", at(2), "vendor on site")]
    assert [c.text for c in shown[second.id]] == ["same again"]
    many = [f"battery_overtemp:battery::{n}" for n in range(5000)]  # the API's largest page, and more
    assert store.comments([*many, second.id]) == {second.id: shown[second.id]}
    assert store.comment("battery_overtemp:battery::1", "olga", at(1), "no such episode") is None
    with pytest.raises(ValueError, match="needs some text"):
        store.comment(first.id, "olga", at(1), "   ")


def test_a_shelved_alarm_is_hidden_from_the_count_until_its_shelving_expires_and_every_shelving_is_audited(store):
    lamp = episode("lighting_after_hours", "lighting", 0, None, Priority.LOW)
    stale = episode("sensor_stale", "chiller1", 0, None, point="plant.chiller1.power_kw")
    other_point = episode("sensor_stale", "chiller1", 0, None, point="plant.chiller1.chw_supply_temp_c")
    store.save([lamp, stale, other_point])
    assert store.alarm_count(at(1)) == 3
    shelf = store.shelve(stale.id, "olga", at(1), at(3), "sensor replaced tomorrow")
    assert (shelf.rule_id, shelf.asset_id, shelf.point_id) == ("sensor_stale", "chiller1", "plant.chiller1.power_kw")
    later = episode("sensor_stale", "chiller1", 2, None, point="plant.chiller1.power_kw")  # same alarm, new episode
    store.save([stale.closed_at(at(1.5)), later])
    shelved = AlarmFilter(states=frozenset({AlarmState.SHELVED}))
    assert set(ids(store.page(shelved, at(2.5)).episodes)) == {stale.id, later.id}  # recorded while shelved
    assert store.alarm_count(at(2.5)) == 2  # lamp and the other point; the shelved alarm's new episode is not counted
    assert store.page(shelved, at(3)).episodes == []  # the shelving has expired: until is exclusive
    assert store.alarm_count(at(3)) == 3
    assert store.shelves(at(2.9)) == [shelf] and store.shelves(at(3)) == []
    assert store.shelves() == [shelf]  # the audit keeps it after expiry
    with pytest.raises(ValueError, match="needs a reason"):
        store.shelve(lamp.id, "olga", at(1), at(2), "")
    with pytest.raises(ValueError, match="ends before it begins"):
        store.shelve(lamp.id, "olga", at(2), at(1), "backwards")
    assert store.shelve("lighting_after_hours:nowhere::1", "olga", at(1), at(2), "no such episode") is None


def test_acknowledged_and_suppressed_alarms_are_not_counted(store):
    comm = episode("device_comm_lost", "chiller1", 0, None)
    explained = episode("sensor_stale", "chiller1", 0, None, point="plant.chiller1.power_kw", suppressed_by=comm.id)
    acked = episode("battery_overtemp", "battery", 0, None)
    cleared = episode("chw_low_delta_t", "chiller3", 0, 1)
    store.save([comm, explained, acked, cleared])
    store.acknowledge(acked.id, "olga", at(1))
    assert store.alarm_count(at(2)) == 1  # the comm loss: active, unacknowledged, annunciated
    suppressed = AlarmFilter(states=frozenset({AlarmState.SUPPRESSED}))
    assert [(e.id, e.suppressed_by) for e in store.page(suppressed, at(2)).episodes] == [(explained.id, comm.id)]


RULES = ("sensor_stale", "device_comm_lost", "chw_low_delta_t", "battery_overtemp")
ASSETS = ("chiller1", "chiller2", "battery", "lighting")


def varied_episodes(count: int) -> list[FaultEpisode]:
    """``count`` episodes over 10 days with every priority, asset, rule, open or ended, some suppressed."""
    draw = random.Random(17)
    made = {}
    while len(made) < count:
        start_h = draw.randrange(0, 240 * 60) / 60
        end_h = None if draw.random() < 0.2 else start_h + draw.randrange(1, 600) / 60
        e = episode(draw.choice(RULES), draw.choice(ASSETS), start_h, end_h, draw.choice(list(Priority)),
                    suppressed_by="device_comm_lost:chiller1::0" if draw.random() < 0.1 else None)
        made[e.key] = e
    return list(made.values())


def matches(e: FaultEpisode, which: AlarmFilter, acked: set[str]) -> bool:
    """The console's filter written out per episode, a second path to the store's SQL."""
    overlaps = ((which.end_utc is None or e.start_utc < which.end_utc)
                and (which.start_utc is None or e.end_utc is None or e.end_utc > which.start_utc))
    states = {AlarmState.ACTIVE: e.end_utc is None, AlarmState.CLEARED: e.end_utc is not None,
              AlarmState.UNACKNOWLEDGED: e.id not in acked, AlarmState.SUPPRESSED: e.suppressed_by is not None}
    return (overlaps and (not which.priorities or e.priority in which.priorities)
            and (not which.asset_ids or e.asset_id in which.asset_ids)
            and (not which.rule_ids or e.rule_id in which.rule_ids) and all(states[s] for s in which.states))


@pytest.mark.parametrize("which", [
    AlarmFilter(),
    AlarmFilter(priorities=frozenset({Priority.HIGH, Priority.CRITICAL})),
    AlarmFilter(asset_ids=frozenset({"battery"}), states=frozenset({AlarmState.ACTIVE, AlarmState.UNACKNOWLEDGED})),
    AlarmFilter(rule_ids=frozenset({"sensor_stale"}), states=frozenset({AlarmState.CLEARED, AlarmState.SUPPRESSED})),
    AlarmFilter(start_utc=at(48), end_utc=at(72), priorities=frozenset({Priority.LOW})),
], ids=["all", "high-and-critical", "battery-needing-attention", "suppressed-cleared-stale", "low-on-day-3"])
def test_filtered_pages_list_what_the_filter_selects_newest_first_without_gaps_or_repeats(store, which):
    episodes = varied_episodes(400)
    store.save(episodes)
    acked = {e.id for e in episodes[::3]}
    for episode_id in acked:
        store.acknowledge(episode_id, "olga", at(300))
    expected = sorted((e for e in episodes if matches(e, which, acked)),
                      key=lambda e: (e.start_utc, e.rule_id, e.asset_id, e.point_id), reverse=True)
    assert expected, "the filter must select something to be a test"
    pages, offset = [], 0
    while True:
        page = store.page(which, at(300), offset, 37)
        assert page.total == len(expected) and page.offset == offset
        pages.extend(page.episodes)
        offset += 37
        if offset >= page.total:
            break
    assert ids(pages) == ids(expected)
    assert store.page(which, at(300), page.total, 37).episodes == []


def test_listeners_hear_each_new_episode_once_not_its_updates(store):
    heard: list[list[str]] = []
    store.listen(lambda new: heard.append(ids(new)))
    first = episode("battery_overtemp", "battery", 0, None)
    store.save([first])
    store.save([first.closed_at(at(1))])  # the same episode ending: not new
    second = episode("battery_overtemp", "battery", 2, None)
    store.save([first.closed_at(at(1)), second])
    assert heard == [[first.id], [second.id]]


def test_a_failing_listener_does_not_undo_the_save(store):
    def broken(_new):
        raise RuntimeError("mail server on fire")

    store.listen(broken)
    alarm = episode("battery_overtemp", "battery", 0, None)
    assert store.save([alarm]) == 1
    assert store.open_episodes() == [alarm]


def test_an_episode_has_the_same_id_before_and_after_it_is_stored(store):
    """A live detector's episode starts at a sub-millisecond time: 987.6 ms is stored as 988 ms."""
    live = FaultEpisode("battery_overtemp", "battery", T0 + timedelta(microseconds=987_600), None, Priority.CRITICAL)
    store.save([live])
    (stored,) = store.open_episodes()
    assert live.id == stored.id and live.id.endswith(f":{int(T0.timestamp() * 1000) + 988}")
    assert store.acknowledge(live.id, "olga", T0 + timedelta(hours=1)).acknowledged_by == "olga"
