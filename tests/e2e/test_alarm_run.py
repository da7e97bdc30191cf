"""Alarm handling on a live `parktwin run` of the demo park at --speed 600 (the 7-day version is
benchmarks/alarm_live_run.py): each injected fault raises exactly one annunciated episode, a device that
goes offline raises one alarm with its points' stale episodes suppressed by it, and after the start-up
grace period nothing is raised that no injected fault explains.

33 simulated hours from 6 July 00:00 local: the default 120 s of wall-clock grace are 20 simulated hours
at --speed 600 (until 20:00), and the faults fall on the morning of 7 July, on a plant left to its own
schedule (manual approval, nothing written), where chiller2 makes chilled water from 04:00 to 09:00. Plans
are made once a simulated day: they change nothing here and cost the machine's CPU the polls need.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from park_copies import free_port, stop_with_ctrl_c
from waiting import wait_for

from twin.config import load_park
from twin.faults_file import load_faults

ROOT = Path(__file__).resolve().parents[2]
SPEED = 600
START_LOCAL = datetime(2026, 7, 6, tzinfo=ZoneInfo("Asia/Shanghai"))
END_LOCAL = START_LOCAL + timedelta(hours=33)
GRACE_END_LOCAL = START_LOCAL + timedelta(seconds=120 * SPEED)
FAULTS = """faults:
  - {kind: chw_low_delta_t, target: chiller2, start: 2026-07-07T05:00, end: 2026-07-07T08:00, magnitude: 1.2}
  - {kind: elevator_out_of_service, target: elevator2, start: 2026-07-07T05:00, end: 2026-07-07T07:00}
  - {kind: device_offline, target: ev5, start: 2026-07-07T05:30, end: 2026-07-07T07:30}
  - {kind: battery_overtemp, target: battery, start: 2026-07-07T06:00, end: 2026-07-07T08:00, magnitude: 22}
  - {kind: sensor_flatline, target: plant.weather.outdoor_temp_c, start: 2026-07-07T04:00, end: 2026-07-07T07:00}
"""
RULE_FOR_INJECTED = {"chw_low_delta_t": "chw_low_delta_t", "elevator_out_of_service": "elevator_out_of_service",
                     "device_offline": "device_comm_lost", "battery_overtemp": "battery_overtemp",
                     "sensor_flatline": "sensor_flatline"}
MARGIN = timedelta(hours=1)
"""An episode belongs to an injected fault on its asset when it overlaps the fault widened by this much."""


def twin_clock_passed(base: str, process: subprocess.Popen, log: Path, end: datetime) -> bool:
    """Whether the run's newest reading is at ``end`` or later; asked twice a second at most (each answer
    costs the run time it needs for its polls)."""
    assert process.poll() is None, f"parktwin run exited early: {log.read_text()[-3000:]}"
    live = get_json(f"{base}/live")
    if live and live["ts_utc"] and datetime.fromisoformat(live["ts_utc"]) >= end:
        return True
    time.sleep(0.5)
    return False


def get_json(url: str) -> dict | None:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return json.loads(response.read().decode())
    except OSError:
        return None


def overlaps(episode: dict, fault) -> bool:
    start = datetime.fromisoformat(episode["start_utc"])
    end = datetime.fromisoformat(episode["end_utc"]) if episode["end_utc"] else None
    return start < fault.end_utc + MARGIN and (end is None or end > fault.start_utc - MARGIN)


def test_a_live_run_raises_one_alarm_per_injected_fault_and_none_unexplained_after_the_grace_period(
        tmp_path, demo_park_copy):
    faults_file = tmp_path / "faults.yaml"
    faults_file.write_text(FAULTS)
    park = load_park(demo_park_copy)
    injected = load_faults(faults_file, park)
    port = free_port()
    log = tmp_path / "run.log"  # a file, not a pipe: a loaded run logs many device timeouts
    with log.open("w") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "parktwin", "run", str(demo_park_copy), "--speed", str(SPEED), "--start",
             START_LOCAL.date().isoformat(), "--faults", str(faults_file), "--replan-min", "1440", "--port", str(port),
             "--history", f"sqlite:///{tmp_path / 'run.sqlite'}"],
            cwd=ROOT, stdout=log_file, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}/api"
    try:
        # 33 simulated hours are 198 s at --speed 600; the bound leaves room for a loaded machine
        wait_for(lambda: twin_clock_passed(base, process, log, END_LOCAL), 600, "33 simulated hours")
        window = f"from={START_LOCAL.isoformat()}&to={END_LOCAL.isoformat()}".replace("+", "%2B")
        body = get_json(f"{base}/faults?{window}")
    finally:
        stop_with_ctrl_c(process, timeout_s=60)
    episodes = body["faults"]
    annunciated = [e for e in episodes if e["suppressed_by"] is None]
    for fault in injected:
        asset = park.points[fault.target].asset_id if fault.kind == "sensor_flatline" else fault.target
        found = [e for e in annunciated
                 if e["rule_id"] == RULE_FOR_INJECTED[fault.kind] and e["asset_id"] == asset and overlaps(e, fault)]
        assert len(found) == 1, (fault, found)
    (lost,) = [e for e in annunciated if e["rule_id"] == "device_comm_lost"]
    ev5_stale = [e for e in episodes if e["rule_id"] == "sensor_stale" and e["asset_id"] == "ev5"]
    assert ev5_stale and all(e["suppressed_by"] == lost["id"] for e in ev5_stale)
    unexplained = [e for e in annunciated if datetime.fromisoformat(e["start_utc"]) >= GRACE_END_LOCAL and not any(
        e["asset_id"] == (park.points[f.target].asset_id if f.kind == "sensor_flatline" else f.target)
        and overlaps(e, f) for f in injected)]
    assert unexplained == []
    alarm_system = body["alarm_system"]
    assert alarm_system["alarms"] == len([e for e in annunciated
                                          if START_LOCAL <= datetime.fromisoformat(e["start_utc"]) < END_LOCAL])
    assert alarm_system["suppressed"] >= len(ev5_stale)
