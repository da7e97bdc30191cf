"""`parktwin run`: the live park serves a dashboard whose values move, and keeps history."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from datetime import datetime
from pathlib import Path

import pytest
from park_copies import free_port, stop_with_ctrl_c

from twin.config import load_park
from twin.history import open_history
from twin.history.runs import run_speeds
from twin.kinds import Battery, Meter, PVArray
from twin.points import point_id

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "examples" / "demo-park" / "park.yaml"


def get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, response.read().decode()


def wait_for(predicate, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    last_error = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except OSError as exc:
            last_error = exc
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what} (last error: {last_error})")


@pytest.fixture
def running_park(tmp_path, demo_park_copy):
    # the demo park on free device ports, so that parallel runs do not collide; at 60x a simulated step
    # lasts a second, so a poll answered a little late on a busy machine still reads the step it is stamped with
    port = free_port()
    db = tmp_path / "run.sqlite"
    process = subprocess.Popen(
        [sys.executable, "-m", "parktwin", "run", str(demo_park_copy), "--speed", "60", "--port", str(port),
         "--history", f"sqlite:///{db}"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        yield f"http://127.0.0.1:{port}", db, process
    finally:
        stop_with_ctrl_c(process)


def test_dashboard_serves_live_values_that_move(running_park):
    base, db, process = running_park
    park = load_park(DEMO)

    def live():
        status, body = get(f"{base}/api/live")
        data = json.loads(body)
        return data if status == 200 and data["points_live"] == len(park.points) else None

    first = wait_for(live, 60, "the first readings")
    # a poll of a device that carries no power point moves the time alone; the power figures follow
    second = wait_for(lambda: (d := live()) and d["ts_utc"] != first["ts_utc"] and d["power_kw"] != first["power_kw"]
                      and d, 30, "the time and the power figures to move on")
    assert second["ts_utc"] > first["ts_utc"]
    loads = sum(second["power_kw"][k] for k in ("chillers", "lighting", "elevators", "ev", "other"))
    assert loads > 100  # a park of this size always draws hundreds of kW

    # the grid meter reads the building meters - PV - battery, within meter accuracy and rounding, in
    # readings polled during one simulated step (devices are polled at their own periods, so the live
    # state can hold readings of consecutive steps)
    balance_points = {"grid": [], "buildings": [], "pv": [], "battery": []}
    for building, asset in park.iter_assets():
        if isinstance(asset, Meter):
            balance_points["grid" if asset.measures == "grid" else "buildings"].append(
                point_id(building.id, asset.id, "power_kw"))
        elif isinstance(asset, PVArray):
            balance_points["pv"].append(point_id(building.id, asset.id, "ac_power_kw"))
        elif isinstance(asset, Battery):
            balance_points["battery"].append(point_id(building.id, asset.id, "power_kw"))

    def one_step():
        status, body = get(f"{base}/api/points")
        rows = {row["id"]: row for row in json.loads(body)["points"]} if status == 200 else {}
        wanted = [rows.get(pid) for pids in balance_points.values() for pid in pids]
        steps = {datetime.fromisoformat(row["ts_utc"]).timestamp() // park.simulation.step_s
                 for row in wanted} if all(wanted) else set()
        return {name: sum(rows[pid]["value"] for pid in pids) for name, pids in balance_points.items()} \
            if len(steps) == 1 else None

    meters = wait_for(one_step, 30, "meter, PV and battery readings of one simulated step")
    assert meters["grid"] == pytest.approx(meters["buildings"] - meters["pv"] - meters["battery"], rel=0.01, abs=5)

    status, page = get(base + "/")
    assert status == 200 and "ParkTwin" in page
    status, layout = get(base + "/_dash-layout")
    assert status == 200 and "_pages_content" in layout and "page-nav" in layout  # the multi-page shell
    assert process.poll() is None, "the run must keep going"

    def stored():
        with open_history(f"sqlite:///{db}") as store:
            return len(store.point_ids()) == len(park.points)

    wait_for(stored, 30, "history to hold every point")
    with open_history(f"sqlite:///{db}") as store:
        assert run_speeds(store) == [60.0]  # for `kpi` and `dashboard` over this history
