"""Fault episodes stored with the history: the same behaviour on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

from twin.fault_episodes import FaultEpisode, Priority
from twin.history import FaultEpisodeStore, open_history

T0 = datetime(2026, 7, 1, 2, 0, tzinfo=UTC)


def episode(rule: str, asset: str, start_h: float, end_h: float | None, **evidence) -> FaultEpisode:
    end = None if end_h is None else T0 + timedelta(hours=end_h)
    return FaultEpisode(rule, asset, T0 + timedelta(hours=start_h), end, Priority.MEDIUM, evidence)


def test_saved_episodes_come_back_with_every_field_and_overlap_selects_by_time(history_url):
    with open_history(history_url) as history:
        store = FaultEpisodeStore(history)
        closed = episode("chw_low_delta_t", "chiller3", 1, 3, delta_t_k=1.2)
        active = FaultEpisode("sensor_flatline", "chiller2", T0 + timedelta(hours=5), None, Priority.LOW,
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
        FaultEpisode("x", "a", datetime(2026, 7, 1), None, Priority.LOW)  # noqa: DTZ001 -- naive on purpose: it must be refused


def test_an_acknowledgement_records_who_and_when_and_survives_the_detector_saving_the_episode_again(history_url):
    at = T0 + timedelta(hours=1, minutes=7)
    with open_history(history_url) as history:
        store = FaultEpisodeStore(history)
        open_one = episode("battery_overtemp", "battery", 0, None, cell_temp_max_c=50.0)
        other = episode("chw_low_delta_t", "chiller3", 0, None, delta_t_k=1.2)
        store.save([open_one, other])
        acked = store.acknowledge(open_one.id, "olga", at)
        assert (acked.acknowledged_by, acked.acknowledged_utc) == ("olga", at)
        # the first acknowledgement stands
        assert store.acknowledge(open_one.id, "oscar", at + timedelta(hours=1)).acknowledged_by == "olga"
        store.save([open_one.closed_at(T0 + timedelta(hours=4))])  # the detector closes it, knowing nothing of acks
        again = FaultEpisodeStore(history)
        (closed, untouched) = again.overlapping(T0, T0 + timedelta(days=1))
        assert (closed.rule_id, closed.end_utc) == ("battery_overtemp", T0 + timedelta(hours=4))
        assert (closed.acknowledged_by, closed.acknowledged_utc) == ("olga", at)
        assert (untouched.acknowledged_by, untouched.acknowledged_utc) == (None, None)
        assert again.open_episodes() == [untouched]
        assert store.acknowledge("battery_overtemp:battery::1", "olga", at) is None  # no such episode
        assert store.acknowledge("not an id", "olga", at) is None


def test_a_store_made_before_priorities_is_migrated_with_its_episodes_and_acknowledgements(history_url):
    """An episodes table with the old three severities (1 info, 2 warning, 3 critical): opened today, its
    episodes read back as low, medium and critical, not suppressed, acknowledgements kept."""
    start_ms = int(T0.timestamp() * 1000)
    statements = [
        """CREATE TABLE fault_episodes (rule_id text NOT NULL, asset_id text NOT NULL, point_id text NOT NULL,
           start_ms bigint NOT NULL, end_ms bigint, severity smallint NOT NULL, evidence text NOT NULL,
           PRIMARY KEY (rule_id, asset_id, point_id, start_ms))""",
        f"""INSERT INTO fault_episodes VALUES ('lighting_after_hours', 'lighting', '', {start_ms}, NULL, 1, '{{}}'),
           ('chiller_low_cop', 'chiller1', '', {start_ms}, NULL, 2, '{{}}'),
           ('battery_overtemp', 'battery', '', {start_ms}, NULL, 3, '{{}}')""",
        """CREATE TABLE fault_acknowledgements (rule_id text NOT NULL, asset_id text NOT NULL,
           point_id text NOT NULL, start_ms bigint NOT NULL, acknowledged_by text NOT NULL,
           acknowledged_ms bigint NOT NULL, PRIMARY KEY (rule_id, asset_id, point_id, start_ms))""",
        f"""INSERT INTO fault_acknowledgements VALUES ('battery_overtemp', 'battery', '', {start_ms}, 'olga',
           {start_ms + 60_000})"""]
    if history_url.startswith("sqlite"):
        connection = sqlite3.connect(history_url.removeprefix("sqlite:///"))
        for statement in statements:
            connection.execute(statement)
        connection.commit()
    else:
        url = urlsplit(history_url)
        schema = dict(parse_qsl(url.query))["schema"]
        connection = psycopg.connect(urlunsplit(url._replace(query="")), autocommit=True)
        connection.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        connection.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        for statement in statements:
            connection.execute(statement)
    connection.close()

    with open_history(history_url) as history:
        episodes = {e.asset_id: e for e in FaultEpisodeStore(history).open_episodes()}
    assert {asset: e.priority for asset, e in episodes.items()} == {
        "lighting": Priority.LOW, "chiller1": Priority.MEDIUM, "battery": Priority.CRITICAL}
    assert all(e.suppressed_by is None for e in episodes.values())
    assert episodes["battery"].acknowledged_by == "olga"
