"""A PostgreSQL history server stopped in the middle of a live run, for as long as the store's reconnection
attempts take to reach their longest wait, loses no reading: the run spools what it cannot write, shows the
outage in /api/status (the dashboard's banner reads it), keeps serving live values, and replays the spool in
order once the server is back."""

from __future__ import annotations

import json
import re
import signal
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta

import numpy as np

from twin.history import open_history
from twin.history.postgres import RECONNECT_MAX_S

OUTAGE_S = 2 * RECONNECT_MAX_S
"""How long the server stays down (wall-clock seconds): the waits between the store's reconnection attempts
double from RECONNECT_FIRST_S and reach RECONNECT_MAX_S about half way through it, so the run is in that longest
wait when the server comes back."""

MAX_GAP_TWIN_S = 3600
"""Largest gap allowed between two stored readings of a polled point, in twin time: the demo park polls every
wall-clock second (600 twin seconds at --speed 600); the outage lasts 18,000 twin seconds, so a reading lost
to it would leave a gap five times this size."""


def http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_a_postgres_outage_loses_no_reading_and_shows_while_it_lasts(throwaway_postgres, postgres_run):
    run = postgres_run
    postgres = throwaway_postgres
    run.wait_for(lambda: (s := run.get("/api/status")) and s["storage"]["written_rows"] > 1000, 600,
                 "readings written to PostgreSQL")

    postgres.stop()
    down_at = time.monotonic()
    status = run.wait_for(lambda: (s := run.get("/api/status")) and s["storage"]["state"] == "degraded" and s,
                          60, "the outage shown in /api/status")
    assert status["storage"]["since_utc"] and "127.0.0.1" in status["storage"]["reason"]
    live_before = run.get("/api/live")["ts_utc"]
    readings_url = f"{run.base_url}/api/readings?point=plant.battery.power_kw"
    assert http_status(readings_url) == 503  # not a 500: the reason is given
    spooled = []
    while time.monotonic() - down_at < OUTAGE_S:  # the outage itself, not a wait for a condition
        storage = run.get("/api/status")["storage"]
        assert storage["state"] == "degraded" and storage["lost_rows"] == 0
        spooled.append(storage["spooled_rows"])
        time.sleep(5)
    # the spool grows while the store is away (its first sample may come before the writer's first spooled batch)
    assert spooled[-1] > spooled[0] >= 0
    assert run.get("/api/live")["ts_utc"] > live_before  # live values go on

    postgres.start()
    run.wait_for(lambda: (s := run.get("/api/status")) and s["storage"]["state"] == "ok"
                 and s["storage"]["spooled_rows"] == 0, 120, "the spool replayed")
    assert http_status(readings_url) == 200
    written_after = run.get("/api/status")["storage"]["written_rows"]
    run.wait_for(lambda: run.get("/api/status")["storage"]["written_rows"] > written_after + 100, 300,
                 "readings written directly again")

    run.process.send_signal(signal.SIGINT)
    run.process.wait(timeout=120)
    output = run.output()
    assert run.process.returncode == 0, output
    storage_tracebacks = [block for block in output.split("Traceback (most recent call last)")[1:]
                          if re.search(r"StorageUnavailable|psycopg|twin/history", block.split("\n20")[0])]
    assert not storage_tracebacks, output
    closing = re.search(r"history: ([\d,]+) readings received, ([\d,]+) written, 0 waiting in the spool, 0 lost",
                        output)
    assert closing, output
    received, written = (int(n.replace(",", "")) for n in closing.groups())
    assert received == written
    # one line per state change of the store: from the writer, and at most one from the controller and from
    # each reading sink (fault detection, set-point read-back) that needed the store meanwhile
    for line in (r"twin.history.writer: history store unavailable", r"twin.history.writer: history store back"):
        assert len(re.findall(line, output)) == 1, (line, output)
    for line in (r"control steps skipped while the history store is unavailable", r"control steps go on",
                 r"reading sink LiveFaultDetector: history store unavailable",
                 r"reading sink SetpointReadback: history store unavailable"):
        assert len(re.findall(line, output)) <= 1, (line, output)

    with open_history(run.history_url) as store:
        ids = store.point_ids()
        frame = store.query(ids, datetime(2000, 1, 1, tzinfo=UTC), datetime.now(UTC)
                            + timedelta(days=400))
    assert len(frame) == received  # every reading polled is in the history
    for point_id, group in frame.groupby("point_id"):
        gaps_s = np.diff(group["ts_utc"].to_numpy()).astype("timedelta64[ms]").astype(np.int64) / 1000
        assert gaps_s.max() < MAX_GAP_TWIN_S, (point_id, gaps_s.max())
    print(json.dumps({"received": received, "spooled_at_most": max(spooled)}))
