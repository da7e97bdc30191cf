"""Whole runs of `parktwin run` as users start them, on the demo park at free ports."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from park_copies import free_port
from throwaway_postgres import ThrowawayPostgres

from dashboard.auth import add_user

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Run:
    """A `parktwin run --speed 600 --approval auto` of the demo park: its process, dashboard and history."""

    process: subprocess.Popen
    base_url: str
    history_url: str
    log: Path
    """The run's output (stdout and stderr)."""

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def get(self, path: str) -> dict | None:
        """An API answer as JSON; None while the dashboard does not answer."""
        try:
            with urllib.request.urlopen(self.base_url + path, timeout=5) as response:
                return json.loads(response.read().decode())
        except OSError:
            return None

    def wait_for(self, predicate, timeout_s: float, what: str):
        """Poll ``predicate`` until it gives something true; fail if the run exits or the time runs out."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"parktwin run exited early: {self.output()}"
            value = predicate()
            if value:
                return value
            time.sleep(0.5)
        raise AssertionError(f"timed out waiting for {what}")

    def plan_with_rounds(self, count: int, timeout_s: float = 240) -> dict:
        """/api/plan once ``count`` dispatch rounds with writes have been made."""
        return self.wait_for(lambda: (p := self.get("/api/plan")) and
                             sum(1 for r in p["rounds"] if r["writes"]) >= count and p,
                             timeout_s, f"{count} dispatch rounds")


def started_run(park_file: Path, history_url: str, *options: str):
    """`parktwin run --approval auto` of ``park_file`` with ``options``, on a free dashboard port, its output in
    ``run.log`` beside the park file (a pipe that nobody reads fills up and stalls the run); yields its Run and
    kills it afterwards if it is still going (a generator for the fixtures below)."""
    port = free_port()
    log = Path(park_file).parent / "run.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "parktwin", "run", str(park_file), *options, "--approval", "auto",
             "--port", str(port), "--history", history_url],
            cwd=ROOT, stdout=output, stderr=subprocess.STDOUT, text=True)
    try:
        yield Run(process, f"http://127.0.0.1:{port}", history_url, log)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.fixture
def park_runs():
    """``started_run`` as a context manager, for tests that start runs one after another (a restart)."""
    return contextmanager(started_run)


@pytest.fixture
def auto_run(tmp_path, demo_park_copy):
    yield from started_run(demo_park_copy, f"sqlite:///{tmp_path / 'run.sqlite'}", "--speed", "600")


@pytest.fixture
def auto_run_at_120x(tmp_path, demo_park_copy):
    """:func:`auto_run` at 120x: a control step is 7.5 s of wall clock, which the run keeps up with while
    other processes load the machine (at 600x, 1.5 s, it falls behind: polls and rounds are missed).

    It starts at local midnight of a fixed day, not at the wall clock's minute, so that its first step (the step
    in force when the controller starts, solved cold) begins early in a quarter hour and without the next day's
    plan for review (made at the first step after 14:00 local): it has until the next quarter hour ends before
    a step is skipped, whatever the time of day the suite runs at."""
    yield from started_run(demo_park_copy, f"sqlite:///{tmp_path / 'run.sqlite'}", "--speed", "120",
                           "--start", "2026-07-01")


@pytest.fixture
def served_demo_park(tmp_path, demo_park_copy):
    """`parktwin devices serve --speed 600` of the demo park copy, once it serves; stopped after the test."""
    serve_log = tmp_path / "serve.log"
    with serve_log.open("w") as log:
        process = subprocess.Popen([sys.executable, "-m", "parktwin", "devices", "serve", str(demo_park_copy),
                                    "--speed", "600"], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while "simulating at" not in serve_log.read_text():
            assert process.poll() is None and time.monotonic() < deadline, serve_log.read_text()
            time.sleep(0.2)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def field_run(tmp_path, demo_park_copy, served_demo_park):
    """A `parktwin run --devices field --approval auto` of the demo park copy against `served_demo_park`."""
    yield from started_run(demo_park_copy, f"sqlite:///{tmp_path / 'field.sqlite'}", "--devices", "field")


@pytest.fixture
def notifying_run(tmp_path, demo_park_copy, smtp, hook):
    """A `parktwin run --speed 600` whose battery overheats from before the start on, with a users file
    subscribing olga to every new high and critical alarm by e-mail (``smtp``) and webhook (``hook``)."""
    users = tmp_path / "users.yaml"
    add_user(users, "olga", "operator", "olga-password")
    written = yaml.safe_load(users.read_text())
    written["users"]["olga"]["notify"] = {"email": "olga@park.test", "webhook": hook.url}
    written["notifications"] = {"smtp": {"host": "127.0.0.1", "port": smtp.port, "sender": "parktwin@park.test"},
                                "max_per_hour": 100_000}  # every alarm counted, none held back
    users.write_text(yaml.safe_dump(written))
    now = datetime.now(UTC)
    faults = tmp_path / "faults.yaml"
    faults.write_text("faults:\n  - {kind: battery_overtemp, target: battery, "
                      f"start: {(now - timedelta(hours=1)):%Y-%m-%dT%H:%M}Z, "
                      f"end: {(now + timedelta(days=3)):%Y-%m-%dT%H:%M}Z, magnitude: 25}}\n", encoding="utf-8")
    yield from started_run(demo_park_copy, f"sqlite:///{tmp_path / 'run.sqlite'}", "--speed", "600",
                           "--faults", str(faults), "--users", str(users))


@pytest.fixture
def throwaway_postgres():
    """A PostgreSQL server of the test's own (tests/throwaway_postgres.py), which the test may stop and start."""
    server = ThrowawayPostgres()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def postgres_run(demo_park_copy, throwaway_postgres):
    """A `parktwin run --speed 600 --approval auto` of the demo park copy with its history on ``throwaway_postgres``."""
    yield from started_run(demo_park_copy, f"{throwaway_postgres.url}?schema=run", "--speed", "600")
