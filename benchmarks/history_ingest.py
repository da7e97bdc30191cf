"""History store benchmark: ingest rate through append_frame, and one-day query time, for SQLite and PostgreSQL.

Run: ``.venv/bin/python benchmarks/history_ingest.py [--postgres URL] [--readings N] [--points P]``

Data has the simulator's shape: P points x (N / P) one-minute steps, handed
over in long frames of one day each. SQLite writes a file in a temporary
folder; PostgreSQL writes into a throwaway schema on the given server, dropped
afterwards. Prints figures beside their targets; asserts nothing.
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from twin.history import History, PostgresHistory, SQLiteHistory

START_UTC = datetime(2026, 7, 1, tzinfo=UTC)
STEP = timedelta(minutes=1)
STEPS_PER_DAY = 1440
QUERY_POINTS = 100
QUERY_REPEATS = 7
SQLITE_INGEST_TARGET_PER_S = 200_000
POSTGRES_INGEST_TARGET_PER_S = 100_000
QUERY_TARGET_S = 0.200


def day_frames(n_points: int, n_steps: int, seed: int = 0) -> Iterator[pd.DataFrame]:
    """Long frames (point_id, ts_utc, value, quality) of one day each, step-major like the simulator's."""
    rng = np.random.default_rng(seed)
    point_ids = np.array([f"b{i % 8}.asset{i}.power_kw" for i in range(n_points)], dtype=object)
    for first in range(0, n_steps, STEPS_PER_DAY):
        steps = min(STEPS_PER_DAY, n_steps - first)
        times = pd.date_range(START_UTC + first * STEP, periods=steps, freq=STEP)
        n = steps * n_points
        quality = np.where(rng.random(n) < 0.01, 3, 0).astype(np.int16)
        value = np.where(quality == 3, np.nan, rng.normal(250.0, 40.0, n))
        yield pd.DataFrame({"point_id": np.tile(point_ids, steps), "ts_utc": np.repeat(times, n_points),
                            "value": value, "quality": quality})


def median_s(action: Callable[[], object], repeats: int = QUERY_REPEATS) -> tuple[float, object]:
    """Median wall time in seconds of repeated calls (after one warm-up), and the last result."""
    result = action()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        result = action()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def report(label: str, figure: str, target: str = "", met: bool | None = None) -> None:
    """One aligned line: what was measured, the figure, its target and PASS / MISS (or 'information')."""
    outcome = "(information)" if met is None else f"{target:<22} {'PASS' if met else 'MISS'}"
    print(f"  {label:<46} {figure:>20}   {outcome}")


def run(title: str, store: History, ingest_target_per_s: int, n_points: int, n_steps: int) -> None:
    """Ingest the data into a fresh store, then time queries of its second day (or first, if only one)."""
    print(f"{title}:")
    frames = list(day_frames(n_points, n_steps))
    n_readings = sum(len(f) for f in frames)
    started = time.perf_counter()
    for frame in frames:
        store.append_frame(frame)
    rate = n_readings / (time.perf_counter() - started)
    report("ingest, append_frame", f"{rate:,.0f} readings/s", f">= {ingest_target_per_s:,} readings/s",
           rate >= ingest_target_per_s)

    started = time.perf_counter()
    store.append_frame(frames[0])
    rate = len(frames[0]) / (time.perf_counter() - started)
    report("re-ingest of one day (all replaced)", f"{rate:,.0f} readings/s")

    ids = store.point_ids()[:QUERY_POINTS]
    day_start = START_UTC + (timedelta(days=1) if n_steps >= 2 * STEPS_PER_DAY else timedelta(0))
    day_end = day_start + timedelta(days=1)
    for method in ("query", "query_wide"):
        seconds, frame = median_s(functools.partial(getattr(store, method), ids, day_start, day_end))
        report(f"{method}, 1 day x {len(ids)} points ({frame.size if method == 'query_wide' else len(frame):,} "
               f"{'cells' if method == 'query_wide' else 'rows'})", f"{seconds:.3f} s median",
               f"<= {QUERY_TARGET_S:.3f} s", seconds <= QUERY_TARGET_S)
    seconds, _ = median_s(lambda: store.resample(ids, day_start, day_end, interval_s=900, agg="mean"))
    report("resample to 15 min means, same", f"{seconds:.3f} s median")


def postgres_server(url: str) -> str | None:
    """Why the server cannot be used, or None when it answers."""
    try:
        with psycopg.connect(url, connect_timeout=5):
            return None
    except psycopg.OperationalError as exc:
        return " ".join(str(exc).split())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", metavar="URL",
                        default=os.environ.get("PARKTWIN_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"),
                        help="PostgreSQL server (a throwaway schema is used and dropped; default: "
                             "$PARKTWIN_TEST_POSTGRES or the local test database)")
    parser.add_argument("--readings", type=int, default=1_440_000, help="readings to ingest per backend")
    parser.add_argument("--points", type=int, default=QUERY_POINTS,
                        help="points per one-minute step (the query targets are for 100 points)")
    args = parser.parse_args()
    n_steps = max(STEPS_PER_DAY, args.readings // args.points)
    print(f"ParkTwin history benchmark: {args.points} points x {n_steps:,} one-minute steps "
          f"= {args.points * n_steps:,} readings per backend, in frames of one day\n")

    with tempfile.TemporaryDirectory() as folder, SQLiteHistory(Path(folder) / "bench.sqlite") as store:
        run("SQLite (file in a temporary folder)", store, SQLITE_INGEST_TARGET_PER_S, args.points, n_steps)
    print()

    params = conninfo_to_dict(args.postgres)
    where = f"{params.get('host', 'localhost')}:{params.get('port', 5432)}/{params.get('dbname', '')}"
    problem = postgres_server(args.postgres)
    if problem:
        print(f"PostgreSQL at {where} unreachable ({problem}): skipped")
        return
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    separator = "&" if "?" in args.postgres else "?"
    try:
        with PostgresHistory(f"{args.postgres}{separator}schema={schema}") as store:
            run(f"PostgreSQL ({where}, throwaway schema {schema})", store, POSTGRES_INGEST_TARGET_PER_S,
                args.points, n_steps)
    finally:
        with psycopg.connect(args.postgres, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


if __name__ == "__main__":
    main()
