"""The live run's history writer: readings the store cannot take wait in a bounded on-disk spool and are replayed
in order when it is back. The store is a PostgreSQL server of the test's own, stopped and started for real."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from throwaway_postgres import ThrowawayPostgres
from waiting import wait_for

from twin.history import PostgresHistory, StorageUnavailable, WriteRecord, open_history, write_audit
from twin.history.spool import ReadingSpool
from twin.history.writer import SpooledWriter
from twin.readings import Quality, Reading

T0 = datetime(2026, 7, 1, tzinfo=UTC)
POINTS = [f"b1.meter{i}.power_kw" for i in range(10)]


def batch(step: int) -> list[Reading]:
    """One poll of every point at T0 + step seconds, value = step (so order can be checked)."""
    return [Reading(pid, T0 + timedelta(seconds=step), float(step), Quality.GOOD) for pid in POINTS]


@pytest.fixture(scope="module")
def server():
    postgres = ThrowawayPostgres()
    try:
        yield postgres
    finally:
        postgres.close()


@pytest.fixture
def store(server):
    """A store in a fresh schema of the test's own server, which runs when the test starts."""
    with open_history(f"{server.url}?schema=t_{uuid.uuid4().hex[:12]}") as history:
        history.append(batch(0))
        yield history
    if not server.running:  # a test that failed while it was stopped
        server.start()


def stored_steps(store: PostgresHistory, point_id: str) -> list[float]:
    frame = store.query([point_id], T0, T0 + timedelta(days=1))
    return frame["value"].tolist()


def test_readings_go_to_the_spool_while_the_server_is_down_and_they_are_replayed_in_order(server, store, tmp_path,
                                                                                          caplog):
    spool = ReadingSpool(tmp_path / "spool.sqlite", max_rows=100_000)
    writer = SpooledWriter(store, spool, retry_s=0.05)
    writer.start()
    server.stop()
    with pytest.raises(StorageUnavailable, match=r"connection lost|cannot connect"):
        store.append(batch(10_000))  # the condition the writer meets
    with caplog.at_level(logging.WARNING, logger="twin.history.writer"):
        for step in range(1, 301):
            writer.append(batch(step))
        wait_for(lambda: len(spool) == 3000, 60, "300 polls spooled")
        health = writer.health()
        assert (health.state, health.spooled_rows, health.lost_rows) == ("degraded", 3000, 0)
        assert health.since_utc is not None and "127.0.0.1" in health.reason
        server.start()
        wait_for(lambda: writer.health().state == "ok", 60, "the spool replayed")
    health = writer.close()
    assert (health.received_rows, health.written_rows, health.spooled_rows, health.lost_rows) == (3000, 3000, 0, 0)
    for pid in POINTS:
        assert stored_steps(store, pid) == [float(step) for step in range(301)]
    outage_lines = [r for r in caplog.records if r.name == "twin.history.writer"]
    assert [r.message.split(" (")[0].split(" after")[0] for r in outage_lines] == [
        "history store unavailable", "history store back"]


def test_when_the_spool_overflows_the_oldest_readings_go_and_are_counted_lost(server, store, tmp_path, caplog):
    spool = ReadingSpool(tmp_path / "spool.sqlite", max_rows=1000)
    writer = SpooledWriter(store, spool, retry_s=0.05)
    writer.start()
    server.stop()
    with caplog.at_level(logging.ERROR, logger="twin.history.writer"):
        for step in range(1, 251):  # 2,500 readings into a spool of 1,000
            writer.append(batch(step))
        wait_for(lambda: writer.health().lost_rows == 1500, 60, "1,500 readings dropped")
    assert len(spool) == 1000
    assert sum("is full" in r.message for r in caplog.records) == 1  # logged once, not per batch
    server.start()
    wait_for(lambda: writer.health().state == "ok", 60, "the spool replayed")
    health = writer.close()
    assert (health.written_rows, health.lost_rows) == (1000, 1500)
    assert stored_steps(store, POINTS[3]) == [0.0] + [float(step) for step in range(151, 251)]  # the newest 100 polls


def test_a_spool_left_by_an_earlier_run_is_written_first(store, tmp_path):
    spool = ReadingSpool(tmp_path / "spool.sqlite", max_rows=100_000)
    spool.push(batch(1))
    spool.push_write(WriteRecord(T0, "controller", "plant.chiller1.chw_setpoint_c", float("nan"),
                                 "refused: not a finite number"))
    spool.close()
    writer = SpooledWriter(store, ReadingSpool(tmp_path / "spool.sqlite", max_rows=100_000), retry_s=0.05)
    assert writer.health().state == "degraded"  # until the earlier run's readings are in
    writer.start()
    writer.append(batch(2))
    wait_for(lambda: writer.health().state == "ok", 60, "the earlier spool replayed")
    writer.close()
    assert stored_steps(store, POINTS[0]) == [0.0, 1.0, 2.0]
    (record,) = write_audit(store)
    assert (record.value, record.requested) == (None, "nan")


def test_write_records_wait_in_the_spool_while_the_server_is_down(server, store, tmp_path):
    spool = ReadingSpool(tmp_path / "spool.sqlite", max_rows=100)
    writer = SpooledWriter(store, spool, retry_s=0.05)
    writer.start()
    server.stop()
    writer.record_write(WriteRecord(T0, "controller", "plant.chiller1.chw_setpoint_c", 7.5, "ok"))
    assert spool.pending_writes() == 1 and writer.health().state == "degraded"
    server.start()
    wait_for(lambda: writer.health().state == "ok", 60, "the write record replayed")
    writer.close()
    assert [(r.value, r.result) for r in write_audit(store)] == [(7.5, "ok")]
