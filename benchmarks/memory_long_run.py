"""Memory benchmark: resident memory of a long live `parktwin run` of the demo park, sampled every simulated day.

Run:  .venv/bin/python benchmarks/memory_long_run.py [--days 10] [--speed 600] [--start 2026-07-01]
                                                    [--approval auto] [--replan-min 15] [--history URL]
                                                    [--keep FOLDER]

Starts `parktwin run` of a copy of the demo park (every device on a free port) at --speed from --start with
examples/demo-park/faults.yaml injected and the controller dispatching (--approval auto), and reads the run
process's resident set size (VmRSS in /proc/PID/status) whenever the twin clock (/api/live) passes the end
of a simulated day. Prints each day's RSS and its growth since day 1, then day 1 against the last day and
their ratio (target: the last day at most 10 % above day 1). --days 10 at --speed 600 takes 24 minutes of
wall clock, longer on a loaded machine.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from park_copies import copy_demo_park, free_port, stop_with_ctrl_c  # noqa: E402

from twin.config import load_park  # noqa: E402

TARGET_GROWTH = 0.10
"""The most the last day's RSS may exceed day 1's, as a fraction of day 1's."""


def rss_mb(pid: int) -> float:
    """Resident set size of a process, MB (VmRSS in /proc/PID/status is in kB)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    raise RuntimeError(f"no VmRSS for process {pid}")


def twin_time(base_url: str) -> datetime | None:
    """The newest reading's time of the run (None while the dashboard does not answer or has none)."""
    try:
        with urllib.request.urlopen(f"{base_url}/api/live", timeout=10) as response:
            stamp = json.loads(response.read().decode())["ts_utc"]
    except OSError:
        return None
    return datetime.fromisoformat(stamp) if stamp else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--speed", type=float, default=600.0)
    parser.add_argument("--start", default="2026-07-01")
    parser.add_argument("--approval", default="auto", choices=("auto", "manual"))
    parser.add_argument("--replan-min", type=int, default=15)
    parser.add_argument("--history", help="history URL (default: a SQLite file in the folder)")
    parser.add_argument("--keep", type=Path, help="folder to keep the park copy, log and history in "
                                                  "(default: a temporary one)")
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="memory-run-"))
    folder.mkdir(parents=True, exist_ok=True)
    park_file = copy_demo_park(folder)
    history_url = args.history or f"sqlite:///{folder / 'run.sqlite'}"
    port = free_port()
    command = [sys.executable, "-m", "parktwin", "run", str(park_file), "--speed", str(args.speed), "--start",
               args.start, "--approval", args.approval, "--replan-min", str(args.replan_min),
               "--faults", str(ROOT / "examples" / "demo-park" / "faults.yaml"), "--port", str(port),
               "--history", history_url]
    start = datetime.fromisoformat(args.start).replace(tzinfo=ZoneInfo(load_park(park_file).site.timezone))
    base_url = f"http://127.0.0.1:{port}"
    samples: list[float] = []
    with (folder / "run.log").open("w") as log:
        process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, text=True)
    began = time.monotonic()
    try:
        while len(samples) < args.days:
            if process.poll() is not None:
                sys.exit(f"parktwin run exited with {process.returncode}; see {folder / 'run.log'}")
            now = twin_time(base_url)
            if now is not None and now >= start + timedelta(days=len(samples) + 1):
                samples.append(rss_mb(process.pid))
                day = len(samples)
                print(f"day {day:2d}: RSS {samples[-1]:7.1f} MB ({samples[-1] - samples[0]:+6.1f} MB since day 1), "
                      f"{(time.monotonic() - began) / 60:5.1f} min of wall clock", flush=True)
            time.sleep(1.0)
    finally:
        stop_with_ctrl_c(process, timeout_s=60)
    first, last = samples[0], samples[-1]
    ratio = last / first
    per_day = (last - first) / max(1, len(samples) - 1)
    print(f"day 1: {first:.1f} MB, day {len(samples)}: {last:.1f} MB, ratio {ratio:.3f} "
          f"({(ratio - 1) * 100:+.1f} %, {per_day:+.2f} MB per simulated day; target at most "
          f"+{TARGET_GROWTH * 100:.0f} %: {'met' if ratio <= 1 + TARGET_GROWTH else 'NOT met'})")
    print(f"history, park copy and run log in {folder}")


if __name__ == "__main__":
    main()
