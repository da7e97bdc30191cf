"""Stopping `parktwin run` as a user (Ctrl+C) or a service manager (SIGTERM) would: every setpoint the
controller wrote is handed back, every reading polled reaches the history, and the exit code is 0."""

from __future__ import annotations

import signal
import time
from datetime import datetime

import pytest

from twin.history import open_history


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_stop_signal_releases_setpoints_flushes_history_and_exits_0(auto_run_at_120x, stop_signal):
    run = auto_run_at_120x  # a step every 7.5 s of wall clock: the run keeps up on a loaded machine
    plan = run.plan_with_rounds(2)
    live = run.get("/api/live")
    process = run.process
    process.send_signal(stop_signal)
    stopped_at = time.monotonic()
    process.wait(timeout=60)
    stderr = run.output()
    took_s = time.monotonic() - stopped_at
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr
    print(f"{signal.Signals(stop_signal).name}: exited 0 after {took_s:.1f} s")

    # every point written, and every point whose write went unanswered (it may have reached the device)
    written = {w["point_id"] for r in plan["rounds"] for w in r["writes"]
               if w["value"] is not None and (w["result"] == "ok" or w["result"].startswith("failed"))}
    with open_history(run.history_url) as store:
        released = [r for r in store.write_audit() if r.who.startswith("controller:") and r.value is None]
        newest = max(reading.ts_utc for reading in store.latest().values())
    # every point written is handed back: BACnet relinquished, Modbus released by its fail-safe enable register
    assert {r.point_id for r in released} == written
    assert all(r.result == "ok" for r in released), [(r.point_id, r.result) for r in released if r.result != "ok"]
    # the history holds at least what the twin showed live just before the stop (it keeps milliseconds)
    shown = datetime.fromisoformat(live["ts_utc"])
    assert newest >= shown.replace(microsecond=shown.microsecond // 1000 * 1000)
