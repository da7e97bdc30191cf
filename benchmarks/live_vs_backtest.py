"""Live operation against its backtest: what `parktwin run` realizes on the demo park, next to
`parktwin backtest` of the same simulated days.

Run:  .venv/bin/python benchmarks/live_vs_backtest.py [--days 4] [--speed 600] [--port 8077] [--folder DIR]

Runs, as a user would, on a copy of the demo park in --folder (default: a temporary folder):

1. `parktwin run --speed S --approval auto --start 2026-07-01` for --days simulated days (simulated devices
   over Modbus TCP and BACnet/IP on loopback, the controller re-planning every 15 minutes), then Ctrl+C;
2. `parktwin kpi --json` over those days on the run's history: the realized cost from the energy KPI code;
3. `parktwin backtest --forecast history --warmup-days 0 --replan-min 15` of the same days (the same
   controller on a simulated field, starting, like the run, with no history).

Prints the dispatch rounds (from the write audit log), the re-plans and the RMS deviation of storage from the
plan in force (from the run's /api/plan), each run's cost split and peak, and the ratio live / backtest and
live / storage-priority. Target: live within 3 % of the backtest and below storage priority. The
run is wall-clock bound (4 days at 600x: about 10 minutes) and needs a quiet machine: on a starved one the
devices' heartbeat watchdogs hand the plant back to its schedule.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd

from energy.environment import ParkEnvironment
from energy.tariff import load_tariff
from optimizer.backtest import OPTIMAL, backtest
from twin.config import load_park
from twin.history import open_history

ROOT = Path(__file__).resolve().parents[1]
START_DAY = date(2026, 7, 1)
START_UTC = datetime(2026, 6, 30, 16, tzinfo=UTC)  # 2026-07-01 00:00 Asia/Shanghai
STEP = timedelta(minutes=15)


def parktwin(*args: str) -> list[str]:
    return [sys.executable, "-m", "parktwin", *args]


def api(port: int, path: str) -> dict | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
            return json.loads(response.read().decode())
    except OSError:
        return None


def live_run(park: Path, history: str, end_utc: datetime, speed: float, port: int, log: Path) -> dict:
    """Run live until the twin's clock passes ``end_utc`` (and a quarter hour more, so the last interval's
    meter readings are stored); the last /api/plan answer. The run's output goes to ``log`` (a pipe that
    nobody reads fills up and stalls the run)."""
    with log.open("w") as output:
        process = subprocess.Popen(parktwin("run", str(park), "--history", history, "--speed", str(speed),
                                            "--approval", "auto", "--start", START_DAY.isoformat(),
                                            "--port", str(port)),
                                   cwd=ROOT, stdout=output, stderr=subprocess.STDOUT)
    plan: dict = {}
    try:
        while True:
            time.sleep(1)
            if process.poll() is not None:
                raise SystemExit(f"parktwin run exited early; see {log}")
            plan = api(port, "/api/plan") or plan
            points = api(port, "/api/points")
            if points and datetime.fromisoformat(points["now_utc"]) > end_utc + STEP:
                break
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)
    return plan


def dispatch_rounds(history: str, end_utc: datetime, gap: timedelta = timedelta(seconds=10)) -> list[list]:
    """Dispatch rounds in [START_UTC, end_utc) in the write audit log (stamped, like the readings, with the
    twin's clock): a round's writes go out at once and are stamped together when it is done, rounds are
    minutes apart, so write times less than ``gap`` apart are one round."""
    with open_history(history) as store:
        times = [r.ts_utc for r in store.write_audit()
                 if r.who.startswith("controller") and r.value is not None and START_UTC <= r.ts_utc < end_utc]
    rounds: list[list] = []
    for ts in times:
        if rounds and ts - rounds[-1][-1] < gap:
            rounds[-1].append(ts)
        else:
            rounds.append([ts])
    return rounds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=4)
    parser.add_argument("--speed", type=float, default=600.0)
    parser.add_argument("--port", type=int, default=8077)
    parser.add_argument("--folder", type=Path, default=None)
    args = parser.parse_args()
    folder = args.folder or Path(tempfile.mkdtemp(prefix="live-vs-backtest-"))
    park_folder = folder / "park"
    shutil.rmtree(park_folder, ignore_errors=True)
    shutil.copytree(ROOT / "examples" / "demo-park", park_folder)
    park_file = park_folder / "park.yaml"
    history_file = folder / "run.sqlite"
    history_file.unlink(missing_ok=True)
    history = f"sqlite:///{history_file}"
    end_utc = START_UTC + timedelta(days=args.days)

    started = time.monotonic()
    plan = live_run(park_file, history, end_utc, args.speed, args.port, folder / "run.log")
    live_s = time.monotonic() - started
    kpi = json.loads(subprocess.run(
        parktwin("kpi", str(park_file), "--history", history, "--from", START_DAY.isoformat(),
                 "--to", (START_DAY + timedelta(days=args.days)).isoformat(), "--speed", str(args.speed), "--json"),
        cwd=ROOT, capture_output=True, text=True, check=True).stdout)
    park = load_park(park_file)
    tariff = load_tariff(park_folder / park.tariff)
    result = backtest(park, ParkEnvironment(park), tariff, START_UTC, args.days,
                      (OPTIMAL, "storage_priority", "chiller_priority"), 15, workers=1, forecast="history",
                      warmup_days=0)

    steps = args.days * 96
    print(f"live run: {args.days} simulated days at {args.speed:g}x in {live_s:.0f} s of wall clock; {history}")
    rounds = dispatch_rounds(history, end_utc)
    # when each round's last write went out against the start of the step it is for (the nearest 15-minute
    # boundary), simulated seconds: negative is ahead of the step
    landed_s = sorted((r[-1] - pd.Timestamp(r[-1]).round(STEP)).total_seconds() for r in rounds[1:])
    print(f"  dispatch rounds in the write audit log: {len(rounds)} for {steps} control steps; last write of a "
          f"round against its step's start: median {landed_s[len(landed_s) // 2]:+.0f} s, "
          f"p5 {landed_s[int(0.05 * (len(landed_s) - 1))]:+.0f} s, "
          f"p95 {landed_s[int(0.95 * (len(landed_s) - 1))]:+.0f} s "
          f"(simulated; negative: ahead of the step)")
    print(f"  re-plans listed by /api/plan: {len(plan.get('replans', []))}; RMS deviation from the plan in force: "
          f"{plan.get('tracking_rms')}")
    energy = sum(kpi["energy_cost_by_period_cny"].values())
    live_total = kpi["cost_cny"] + kpi["demand_charge_cny"]
    print(f"live (parktwin kpi)       : energy {energy:10,.0f}  export {kpi['export_revenue_cny']:7,.0f}  demand "
          f"{kpi['demand_charge_cny']:9,.0f}  peak {kpi['billed_demand_kw']:6,.0f} kW  total {live_total:10,.0f}")
    for name, cost in result.costs.items():
        print(f"backtest {name:17s}: energy {cost.energy_cny:10,.0f}  export {cost.export_revenue_cny:7,.0f}  "
              f"demand {cost.demand_charge_cny:9,.0f}  peak {cost.peak_kw:6,.0f} kW  total {cost.total_cny:10,.0f}")
    print(f"live / backtest optimal : {live_total / result.costs[OPTIMAL].total_cny:.4f}  (target <= 1.03)")
    print(f"live / storage priority : {live_total / result.costs['storage_priority'].total_cny:.4f}  (target < 1)")


if __name__ == "__main__":
    main()
