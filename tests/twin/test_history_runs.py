"""The clock speeds runs keep in a history, and which of them wrote a period; on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from twin.history import open_history
from twin.history.runs import record_run_speed, run_speeds

T0 = datetime(2026, 7, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)


def test_a_history_no_run_recorded_has_no_speed(history_url):
    with open_history(history_url) as store:
        assert run_speeds(store) == []
        assert run_speeds(store, T0, T0 + HOUR) == []


def test_a_period_has_the_speeds_of_the_run_in_force_at_its_start_and_of_those_started_in_it(history_url):
    with open_history(history_url) as store:
        for start, speed in ((T0, 60.0), (T0 + 2 * HOUR, 600.0), (T0 + 4 * HOUR, 1.0), (T0 + 6 * HOUR, 60.0)):
            record_run_speed(store, start, speed)
    with open_history(history_url) as store:  # kept, not held by the connection that wrote them
        assert run_speeds(store) == [1.0, 60.0, 600.0]
        assert run_speeds(store, T0 - HOUR, T0) == []  # before the first run: the end is exclusive
        assert run_speeds(store, T0, T0 + 2 * HOUR) == [60.0]
        assert run_speeds(store, T0 + 3 * HOUR, T0 + 4 * HOUR) == [600.0]
        assert run_speeds(store, T0 + HOUR, T0 + 5 * HOUR) == [1.0, 60.0, 600.0]
        assert run_speeds(store, T0 + 7 * HOUR, None) == [60.0]
        assert run_speeds(store, None, T0 + 3 * HOUR) == [60.0, 600.0]
