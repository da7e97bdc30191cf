"""Energy command benchmark: wall time of `parktwin kpi` and `parktwin faults` over a week of simulated history.

Run: ``.venv/bin/python benchmarks/energy_commands.py [--history URL] [--repeats N]``

Without ``--history`` it first simulates the demo park for 7 days from
2026-07-01 with examples/demo-park/faults.yaml into a temporary SQLite file
(``parktwin simulate``). Each command runs as a fresh process, as a user
would run it (start-up and imports included). Prints the median wall and CPU
time beside the 5 s target, and the load average; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "examples" / "demo-park"
TARGET_S = 5.0


def parktwin(*args: str) -> tuple[float, float]:
    """Run a parktwin command; its (wall, CPU user + system) time in seconds (raises if it fails).

    CPU time shows what the command costs when other work shares the machine's cores."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    subprocess.run([sys.executable, "-m", "parktwin", *args], check=True, cwd=ROOT,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--history", help="history URL holding 2026-07-01..07 of the demo park")
    parser.add_argument("--repeats", type=int, default=3)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = options.history or f"sqlite:///{Path(folder) / 'week.sqlite'}"
        if options.history is None:
            seconds, _ = parktwin("simulate", str(DEMO / "park.yaml"), "--start", "2026-07-01", "--days", "7",
                               "--history", url, "--faults", str(DEMO / "faults.yaml"))
            print(f"simulated a week of the demo park in {seconds:.1f} s")
        for command in ("kpi", "faults"):
            runs = [parktwin(command, str(DEMO / "park.yaml"), "--from", "2026-07-01", "--to", "2026-07-08",
                             "--history", url, "--json") for _ in range(options.repeats)]
            median = statistics.median(wall for wall, _ in runs)
            cpu = statistics.median(cpu for _, cpu in runs)
            verdict = "PASS" if median <= TARGET_S else "MISS"
            print(f"parktwin {command:6s} over a week: median wall {median:.2f} s (slowest {max(runs)[0]:.2f} s), "
                  f"CPU {cpu:.2f} s (target {TARGET_S:.0f} s wall, ratio {median / TARGET_S:.2f}) {verdict}")
        print(f"load average while measuring: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
