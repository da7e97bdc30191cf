"""Alarm-console benchmark: one page of the Faults console over many stored fault episodes, SQLite and PostgreSQL.

Run:  .venv/bin/python benchmarks/alarm_console.py [--episodes 100000] [--postgres URL]

Stores --episodes episodes (every rule, asset and priority; some active, some suppressed) in a fresh SQLite
file and, when PostgreSQL answers (--postgres, default the test server), in a fresh schema that is dropped
afterwards; then times ``FaultEpisodeStore.page`` (the count and one page of 50, filtered, ordered and paged
in SQL) for a few filters, at the first page and 400 pages in, and the header's alarm count. Prints the
median of 5 runs in milliseconds. Issue 17 bounds the whole page: loaded within 2 s over 100,000 episodes
(``tests/dashboard/test_browser_faults.py``).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg
from psycopg import sql

from twin.fault_episodes import AlarmFilter, AlarmState, FaultEpisode, Priority
from twin.history import FaultEpisodeStore, open_history

START_UTC = datetime(2026, 7, 1, tzinfo=timezone.utc)
RULES = ("sensor_stale", "device_comm_lost", "chw_low_delta_t", "battery_overtemp", "elevator_out_of_service")
ASSETS = ("chiller1", "chiller2", "chiller3", "battery", "elevator1", "lighting")
FILTERS = {
    "everything": AlarmFilter(),
    "critical": AlarmFilter(priorities=frozenset({Priority.CRITICAL})),
    "battery, active and unacknowledged": AlarmFilter(asset_ids=frozenset({"battery"}),
                                                      states=frozenset({AlarmState.ACTIVE, AlarmState.UNACKNOWLEDGED})),
    "one day": AlarmFilter(start_utc=START_UTC + timedelta(days=3), end_utc=START_UTC + timedelta(days=4)),
}


def episodes(count: int) -> list[FaultEpisode]:
    made = []
    for i in range(count):
        start = START_UTC + i * timedelta(seconds=8)
        made.append(FaultEpisode(RULES[i % len(RULES)], ASSETS[(i // len(RULES)) % len(ASSETS)], start,
                                 None if i % 7 == 0 else start + timedelta(minutes=1 + i % 50),
                                 Priority(1 + (i // 3) % 4), {"n": i},
                                 suppressed_by="device_comm_lost:chiller1::0" if i % 13 == 0 else None))
    return made


def median_ms(work) -> float:
    runs = []
    for _ in range(5):
        began = time.perf_counter()
        work()
        runs.append((time.perf_counter() - began) * 1000)
    return statistics.median(runs)


def measure(name: str, url: str, stored: list[FaultEpisode]) -> None:
    with open_history(url) as history:
        store = FaultEpisodeStore(history)
        began = time.perf_counter()
        store.save(stored)
        print(f"{name}: {len(stored):,} episodes saved in {time.perf_counter() - began:.1f} s")
        now = START_UTC + timedelta(days=30)
        for label, which in FILTERS.items():
            first = median_ms(lambda: store.page(which, now, 0, 50))
            deep = median_ms(lambda: store.page(which, now, 20_000, 50))
            total = store.page(which, now, 0, 1).total
            print(f"  {label:<36} {total:>7,} match: page 1 {first:6.1f} ms, page 401 {deep:6.1f} ms")
        print(f"  {'alarm count':<36} {store.alarm_count(now):>7,}: {median_ms(lambda: store.alarm_count(now)):6.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=100_000)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    stored = episodes(args.episodes)
    with tempfile.TemporaryDirectory() as folder:
        measure("SQLite", f"sqlite:///{Path(folder) / 'episodes.sqlite'}", stored)
    try:
        admin = psycopg.connect(args.postgres, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        print(f"PostgreSQL: skipped ({' '.join(str(exc).split())})")
        return
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    try:
        measure("PostgreSQL", f"{args.postgres}?schema={schema}", stored)
    finally:
        admin.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
        admin.close()


if __name__ == "__main__":
    main()
