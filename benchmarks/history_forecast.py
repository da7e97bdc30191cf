"""HistoryForecaster benchmark: a year of hourly re-plans' forecasts (8,760 calls of 96 quarter-hours) and the
history reads behind them.

Run: ``.venv/bin/python benchmarks/history_forecast.py [--days 365] [--history-days 28]``

1. Forecasts: the demo park's forecaster re-plans hourly over ``--days`` from 2026-01-01 on an in-memory
   history (quarter-hour loads of the fallback profile on the park's own weather, as a backtest's simulated
   field hands them over without a database), so the figure is the forecaster's own cost: weather
   refreshes with their pvlib runs, regression refits, and the per-call averaging.
2. History reads: ``HistoryLoadSource.quarter_hour_loads`` on ``--history-days`` of simulated history in a
   temporary SQLite file (``parktwin simulate``): the first training window, and the 30 hours a
   refresh re-reads.

Prints wall (and CPU) times and the load average; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from energy.environment import ParkEnvironment  # noqa: E402
from energy.forecast import LOAD_HISTORY_COLUMNS, HistoryForecaster, HistoryLoadSource, rated_load_profile  # noqa: E402
from twin.config import load_park  # noqa: E402
from twin.history import open_history  # noqa: E402

DEMO = ROOT / "examples" / "demo-park"
START_UTC = datetime(2025, 12, 31, 16, 0, tzinfo=UTC)  # 2026-01-01 00:00 in Shenzhen


class FrameLoadSource:
    """Quarter-hour loads held in memory (a LoadHistorySource)."""

    def __init__(self, frame: pd.DataFrame):
        self.frame = frame
        self.calls = 0

    def quarter_hour_loads(self, start_utc: datetime, end_utc: datetime) -> pd.DataFrame:
        self.calls += 1
        return self.frame[(self.frame.index >= start_utc) & (self.frame.index < end_utc)]


def in_memory_history(park, days: int) -> pd.DataFrame:
    hours = pd.date_range(START_UTC - timedelta(days=35), START_UTC + timedelta(days=days + 2), freq="15min")
    weather = ParkEnvironment(park).weather(hours + pd.Timedelta(minutes=7.5))
    loads = rated_load_profile(park, hours, weather["temp_air_c"].to_numpy(), weather["ghi_wm2"].to_numpy(),
                               pd.Timedelta(minutes=15))
    frame = pd.DataFrame({"cooling_load_kwth": loads["cooling_load_kwth"].to_numpy(),
                          "other_load_kw": loads["other_load_kw"].to_numpy(), "pv_kw": 0.0,
                          "temp_air_c": weather["temp_air_c"].to_numpy(), "ghi_wm2": weather["ghi_wm2"].to_numpy()},
                         index=hours)
    return frame[list(LOAD_HISTORY_COLUMNS)]


def forecasts(days: int) -> None:
    park = load_park(DEMO / "park.yaml")
    source = FrameLoadSource(in_memory_history(park, days))
    forecaster = HistoryForecaster(park, source)
    step = pd.Timedelta(minutes=15)
    calls = days * 24
    began, cpu_began = time.perf_counter(), time.process_time()
    slowest = 0.0
    for hour in range(calls):
        call_began = time.perf_counter()
        forecaster.forecast(START_UTC + timedelta(hours=hour), 96, step)
        slowest = max(slowest, time.perf_counter() - call_began)
    wall, cpu = time.perf_counter() - began, time.process_time() - cpu_began
    issues = days * 24 // int(forecaster.refresh_every / pd.Timedelta(hours=1))
    print(f"{calls:,} forecasts of 96 x 15 min over {days} days: {wall:.1f} s wall ({cpu:.1f} s CPU), "
          f"{1000 * wall / calls:.2f} ms per call amortised ({1000 * cpu / calls:.2f} ms CPU), "
          f"slowest call {1000 * slowest:.0f} ms; about {issues:,} weather refreshes "
          f"(every {forecaster.refresh_every}), {days} refits, {source.calls:,} history reads")
    began = time.perf_counter()
    for hour in range(min(calls, 24 * 7)):
        forecaster.forecast(START_UTC + timedelta(days=days - 7, hours=hour), 96, step)
    print(f"a forecast within the same refresh window: "
          f"{1000 * (time.perf_counter() - began) / min(calls, 24 * 7):.2f} ms per call (refreshes included)")


def history_reads(history_days: int) -> None:
    park = load_park(DEMO / "park.yaml")
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'history.sqlite'}"
        began = time.perf_counter()
        subprocess.run([sys.executable, "-m", "parktwin", "simulate", str(DEMO / "park.yaml"), "--start",
                        "2026-07-01", "--days", str(history_days), "--history", url], check=True, cwd=ROOT,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        print(f"simulated {history_days} days of the demo park into SQLite in {time.perf_counter() - began:.1f} s")
        start = datetime(2026, 6, 30, 16, 0, tzinfo=UTC)
        end = start + timedelta(days=history_days)
        with open_history(url) as history:
            source = HistoryLoadSource(history, park)
            for label, begin in ((f"{history_days} days", start), ("30 hours", end - timedelta(hours=30))):
                began = time.perf_counter()
                hourly = source.quarter_hour_loads(begin, end)
                print(f"HistoryLoadSource.quarter_hour_loads over {label}: {len(hourly)} quarter hours in "
                      f"{1000 * (time.perf_counter() - began):.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--history-days", type=int, default=28)
    options = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    forecasts(options.days)
    history_reads(options.history_days)


if __name__ == "__main__":
    main()
