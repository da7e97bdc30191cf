"""Control-step benchmark: what one step of the live controller costs for the demo park.

Run:  .venv/bin/python benchmarks/control_step.py [--days 3] [--forecast history] [--replan-min 15]

The demo park's controller (optimizer.controller.Controller, as ``parktwin run`` builds it: history
forecasts, re-plan every --replan-min minutes, baselines priced with each plan) operates a simulated
field (twin.field.SimulatedField) for --days simulated days from 2026-07-01, after a 14-day warm-up
on the plant's own schedule so the forecaster has history. Each control step is timed from the state
read to the last setpoint written (forecast update and re-plan included); the simulation of the step
and device round trips are not. Prints the median, p95 and max, and the same for re-planning steps.
Target: median <= 100 ms, p95 <= 250 ms.
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from energy.environment import ParkEnvironment
from energy.forecast import HistoryForecaster
from energy.tariff import load_tariff
from optimizer.backtest import WARMUP_DAYS, ConditionsMemo
from optimizer.controller import Controller, TariffPrices
from optimizer.park_inputs import PLAN_STEP, PerfectForecaster, hold_storage_run
from optimizer.plan import plan_context, plan_options
from twin.config import load_park
from twin.field import SimulatedField
from twin.sim import ParkSimulator

DEMO = Path(__file__).resolve().parents[1] / "examples" / "demo-park"
START_UTC = datetime(2026, 6, 30, 16, tzinfo=UTC)  # 2026-07-01 00:00 Asia/Shanghai


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=float, default=3.0)
    parser.add_argument("--forecast", choices=("history", "perfect"), default="history")
    parser.add_argument("--replan-min", type=int, default=15)
    args = parser.parse_args()
    park = load_park(DEMO / "park.yaml")
    tariff = load_tariff(DEMO / "tariff.yaml")
    environment = ConditionsMemo(ParkEnvironment(park))
    end = START_UTC + timedelta(days=args.days)
    warmup = SimulatedField(ParkSimulator(park, environment, START_UTC - timedelta(days=WARMUP_DAYS)),
                            tariff.demand_interval_min)
    warmup.advance(START_UTC)
    field = SimulatedField(ParkSimulator(park, environment, START_UTC), tariff.demand_interval_min,
                           history=warmup.quarter_hour_loads(START_UTC - timedelta(days=WARMUP_DAYS), START_UTC))
    if args.forecast == "history":
        forecaster = HistoryForecaster(park, field)
    else:
        forecaster = PerfectForecaster(hold_storage_run(park, environment, START_UTC, end + timedelta(days=1)).loads)
    controller = Controller(park, field, forecaster, TariffPrices(tariff), plan_options(tariff, mip_time_limit_s=10.0),
                            plan_context(park, tariff), replan_min=args.replan_min, with_baselines=True)
    all_ms, replan_ms = [], []
    while field.now_utc() < end:
        started = time.perf_counter()
        record = controller.step()
        elapsed_ms = 1000.0 * (time.perf_counter() - started)
        all_ms.append(elapsed_ms)
        if record.replanned:
            replan_ms.append(elapsed_ms)
        field.advance(field.now_utc() + PLAN_STEP)
    for name, values in (("every step", all_ms), ("re-planning steps", replan_ms)):
        if values:
            print(f"{name:18s} n={len(values):5d}  median {statistics.median(values):7.1f} ms  "
                  f"p95 {np.percentile(values, 95):7.1f} ms  max {max(values):7.1f} ms")
    print(f"targets: median <= 100 ms, p95 <= 250 ms ({args.forecast} forecasts, re-plan every {args.replan_min} min)")


if __name__ == "__main__":
    main()
