"""Write audit log in the history store: same behaviour on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from twin.history import WriteRecord, open_history, record_write, write_audit

T0 = datetime(2026, 7, 1, 8, 30, 0, 123000, tzinfo=UTC)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'audit.sqlite'}"
    return request.getfixturevalue("postgres_url")


def test_writes_are_kept_in_order_and_survive_reopening(store_url):
    records = [
        WriteRecord(T0, "cli", "plant.chiller1.chw_setpoint_c", 8.5, "ok"),
        WriteRecord(T0 + timedelta(seconds=1), "optimizer", "plant.battery.power_setpoint_kw", -1500.0,
                    "refused: outside safe limits [-1000, 1000]"),
        WriteRecord(T0 + timedelta(seconds=2), "cli", "plant.chiller1.chw_setpoint_c", None, "ok"),
    ]
    with open_history(store_url) as store:
        for record in records:
            record_write(store, record)
    with open_history(store_url) as store:  # a new connection sees what the first one wrote
        assert write_audit(store) == records
        assert write_audit(store, "plant.chiller1.chw_setpoint_c") == [records[0], records[2]]
        assert write_audit(store, "b1.nothing.here") == []
        assert write_audit(store)[0].ts_utc.tzinfo is not None
