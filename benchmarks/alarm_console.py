"""Alarm-console benchmark: one page of the Faults console over many stored fault episodes, SQLite and PostgreSQL.

Run:  .venv/bin/python benchmarks/alarm_console.py [--episodes 100000] [--postgres URL]

Stores --episodes episodes (every rule, asset and priority; some active, some suppressed) in a fresh SQLite
file and, when PostgreSQL answers (--postgres, default the test server), in a fresh schema that is dropped
afterwards; then times ``FaultEpisodeStore.page`` (the count and one page of 50, filtered, ordered and paged
in SQL) for a few filters, at the first page and 400 pages in, and the header's alarm count. Prints the
median of 5 runs in milliseconds.

Then the whole page, against its target (the Faults page loaded within 2 s over 100,000 episodes):
``parktwin dashboard`` over the SQLite file, and headless Chromium timing navigation to the console's rows
drawn, each time in a fresh browser context (its scripts not cached), after one warm-up visit (the
server's first answers are imports and first callbacks, not the page). Median and worst of 5.
"""

from __future__ import annotations

import argparse
import functools
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from playwright.sync_api import sync_playwright
from psycopg import sql

from twin.fault_episodes import AlarmFilter, AlarmState, FaultEpisode, Priority
from twin.history import FaultEpisodeStore, open_history

START_UTC = datetime(2026, 7, 1, tzinfo=UTC)
CHROMIUM = "/usr/bin/chromium"
"""The Debian package's browser (.ci/setup installs it; Playwright's own download is never used)."""
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
            first = median_ms(functools.partial(store.page, which, now, 0, 50))
            deep = median_ms(functools.partial(store.page, which, now, 20_000, 50))
            total = store.page(which, now, 0, 1).total
            print(f"  {label:<36} {total:>7,} match: page 1 {first:6.1f} ms, page 401 {deep:6.1f} ms")
        count_ms = median_ms(lambda: store.alarm_count(now))
        print(f"  {'alarm count':<36} {store.alarm_count(now):>7,}: {count_ms:6.1f} ms")


def page_load_s(url: str, runs: int = 5) -> list[float]:
    """Seconds from navigation to the Faults console's first rows drawn, ``runs`` times in fresh contexts
    of headless Chromium, served by `parktwin dashboard` over the history ``url``."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    demo = Path(__file__).resolve().parents[1] / "examples" / "demo-park" / "park.yaml"
    server = subprocess.Popen([sys.executable, "-m", "parktwin", "dashboard", str(demo), "--history", url,
                               "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(base + "/api/park", timeout=5).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("parktwin dashboard did not start") from None
                time.sleep(0.5)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox"])
            warm = browser.new_context()
            warm.new_page().goto(base + "/faults", wait_until="load")
            warm.close()
            times = []
            for _ in range(runs):
                context = browser.new_context(viewport={"width": 1440, "height": 1000})
                page = context.new_page()
                began = time.perf_counter()
                page.goto(base + "/faults")
                page.wait_for_selector("#faults-table tr[data-fault]", timeout=60_000)
                times.append(time.perf_counter() - began)
                context.close()
            browser.close()
        return times
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=100_000)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    stored = episodes(args.episodes)
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'episodes.sqlite'}"
        measure("SQLite", url, stored)
        loads = page_load_s(url)
        print(f"Faults page over {len(stored):,} episodes (SQLite), navigation to rows drawn: median "
              f"{statistics.median(loads):.2f} s, worst {max(loads):.2f} s of {len(loads)} (target 2 s); "
              f"load average {os.getloadavg()[0]:.1f}")
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
