"""A chilled-water tank end to end, on a live `parktwin run` of examples/chilled-water: its device polled over
BACnet/IP, the tank in every plan, its setpoints dispatched to it each control step and followed, its level
tracking the plan, shown on the Dispatch page in chromium, and handed back to the plant schedule at Ctrl+C.

The run starts at midnight in the park (valley prices until 08:00): the plans draw the tank down, then charge it
at the chillers' full spare rate; at 120x a control step is 7.5 s of wall clock."""

from __future__ import annotations

import json
import time
import urllib.request
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from browser_support import ARTIFACTS, UI_WAIT_MS, figure_data, new_context, parktwin_process
from park_copies import copy_example_park, stop_with_ctrl_c

from twin.config import load_park
from twin.history import open_history
from twin.kinds import ChilledWaterTank

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "chilled-water"
TANK = "plant.chw_tank"
SETPOINTS = (f"{TANK}.charge_setpoint_kwth", f"{TANK}.discharge_setpoint_kwth")
ROUNDS_WANTED = 10
"""Dispatch rounds to watch: 2.5 simulated hours, 75 s of wall clock at --speed 120."""


def get_json(url: str) -> dict | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.loads(response.read().decode())
    except OSError:
        return None


@pytest.fixture(scope="module")
def tank_run(tmp_path_factory):
    """(base URL, run process, history URL, park file) of `parktwin run --speed 120 --approval auto` of the example
    park (device servers on free ports) from 1 July, once it has made :data:`ROUNDS_WANTED` dispatch rounds."""
    folder = tmp_path_factory.mktemp("chilled-water")
    park_file = copy_example_park(EXAMPLE, folder)
    history = f"sqlite:///{folder / 'run.sqlite'}"
    with parktwin_process("run", str(park_file), "--history", history, "--speed", "120", "--approval", "auto",
                          "--start", "2026-07-01") as (base, process):
        deadline = time.monotonic() + UI_WAIT_MS / 1000
        while sum(1 for r in (get_json(f"{base}/api/plan") or {}).get("rounds", []) if r["writes"]) < ROUNDS_WANTED:
            assert process.poll() is None and time.monotonic() < deadline, "the run made too few dispatch rounds"
            time.sleep(1)
        yield base, process, history, park_file


def test_every_plan_and_round_carries_the_tank_and_the_park_follows_it(tank_run):
    base, _, _, park_file = tank_run
    plan = get_json(f"{base}/api/plan")
    tank = load_park(park_file).asset("chw_tank")
    assert {"chw_tank.charge_kwth", "chw_tank.discharge_kwth", "chw_tank.stored_kwhth"} <= set(plan["steps"][0])
    rounds = [r for r in plan["rounds"] if r["writes"]]
    assert all({w["point_id"] for w in r["writes"]} >= set(SETPOINTS) for r in rounds)
    assert all(w["result"] == "ok" for r in rounds for w in r["writes"] if w["point_id"] in SETPOINTS)
    charged = [w["value"] for r in rounds for w in r["writes"] if w["point_id"] == SETPOINTS[0]]
    assert max(charged) == pytest.approx(tank.charge_rate_max_kwth)  # valley prices: charged at its full rate
    # the simulated tank's level, polled, stays near what the plan in force expected of it
    assert plan["tracking_rms"]["chw_tank.stored_kwhth"] <= 0.05 * tank.capacity_kwhth


def test_the_dispatch_page_charts_the_tank_as_a_chilled_water_tank(tank_run, chromium):
    base = tank_run[0]
    context = new_context(chromium, viewport={"width": 1440, "height": 1000})
    page = context.new_page()
    page.goto(base + "/dispatch")
    page.wait_for_selector("#plan-chart .js-plotly-plot .scatterlayer .trace", timeout=UI_WAIT_MS)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dispatch-chilled-water.png"), full_page=True)
    names = [t["name"] for t in figure_data(page, "plan-chart") if t["name"].startswith("chw_tank")]
    context.close()
    assert {f"chw_tank {trace.label}" for trace in ChilledWaterTank.plan_traces} < set(names), names
    assert not any("ice" in name for name in names), names


def test_the_polled_readings_keep_the_tanks_energy_balance_and_ctrl_c_hands_it_back(tank_run):
    """Independent of the plan: what the tank's device reported over BACnet, its stored cooling, charge, discharge
    and standing loss, balance over the run (stored(t2) - stored(t1) = sum of (charge - discharge - loss) dt), and
    at Ctrl+C each setpoint ParkTwin wrote is relinquished."""
    _, process, history, _ = tank_run
    stop_with_ctrl_c(process, timeout_s=60)
    assert process.returncode == 0
    with open_history(history) as store:
        records = [r for r in store.write_audit() if r.point_id in SETPOINTS and r.who.startswith("controller:")]
        first, last = records[0].ts_utc, records[-1].ts_utc
        names = ("stored_kwhth", "charge_kwth", "discharge_kwth", "standing_loss_kwth")
        wide = store.query_wide([f"{TANK}.{n}" for n in names], first - timedelta(hours=1), last + timedelta(hours=1))
    assert {r.point_id for r in records if r.value is None} == set(SETPOINTS)
    assert all(r.result == "ok" for r in records)
    wide = wide.dropna()
    stored, charge, discharge, loss = (wide[f"{TANK}.{n}"].to_numpy() for n in names)
    hours = np.diff(wide.index.to_numpy()).astype("timedelta64[ms]").astype(float) / 3_600_000
    # each reading is the mean flow of the simulator step it was taken in; polls land every 2 simulated minutes
    # at 120x (a poll a wall-clock second), so the flows between polls are taken as the earlier poll's
    moved_kwhth = float(np.sum((charge[:-1] - discharge[:-1] - loss[:-1]) * hours))
    throughput_kwhth = float(np.sum((charge[:-1] + discharge[:-1]) * hours))
    assert throughput_kwhth > 2000  # the tank did work during the run
    assert stored[-1] - stored[0] == pytest.approx(moved_kwhth, abs=0.03 * throughput_kwhth)

