"""Simulation-step benchmark: what one step of the park simulator (twin.sim.ParkSimulator.advance) costs.

Run:  .venv/bin/python benchmarks/simulation_step.py [--park examples/demo-park/park.yaml] [--days 3] [--repeats 3]

Simulates --days days of the park from 2026-07-01 (one-minute steps in the example parks), --repeats times,
each from a new simulator, with the environment's conditions computed beforehand so that only the
simulator's own work is timed (every asset's physics, the coupling between them, faults and the output
vector). Prints the best and median of the repeats' mean time per step, in microseconds.
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from energy.environment import ParkEnvironment
from optimizer.backtest import ConditionsMemo
from twin.config import load_park
from twin.sim import ParkSimulator

DEMO = Path(__file__).resolve().parents[1] / "examples" / "demo-park" / "park.yaml"
START_UTC = datetime(2026, 6, 30, 16, tzinfo=UTC)  # 2026-07-01 00:00 Asia/Shanghai


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--park", type=Path, default=DEMO)
    parser.add_argument("--days", type=float, default=3.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    park = load_park(args.park)
    step = timedelta(seconds=park.simulation.step_s)
    end_utc = START_UTC + timedelta(days=args.days)
    environment = ConditionsMemo(ParkEnvironment(park))
    environment.prefetch_days(START_UTC, end_utc, step)
    steps = int((end_utc - START_UTC) / step)
    per_step_us = []
    for _ in range(args.repeats):
        simulator = ParkSimulator(park, environment, START_UTC)
        started = time.perf_counter()
        for _ in range(steps):
            simulator.advance()
        per_step_us.append(1e6 * (time.perf_counter() - started) / steps)
    print(f"{park.name}: {len(park.points)} points, {steps} steps x {args.repeats}: "
          f"best {min(per_step_us):.1f} us/step, median {statistics.median(per_step_us):.1f} us/step")


if __name__ == "__main__":
    main()
