"""Energy command benchmark: wall time of `parktwin kpi` and `parktwin faults` over a week of simulated history.

Run: ``.venv/bin/python benchmarks/energy_commands.py [--history URL] [--repeats N]``

Without ``--history`` it first simulates the demo park for 7 days from
2026-07-01 with examples/demo-park/faults.yaml into a temporary SQLite file
(``parktwin simulate``). Each command runs as a fresh process, as a user
would run it (start-up and imports included). Prints the median and the
slowest run beside the 5 s target; asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "examples" / "demo-park"
TARGET_S = 5.0


def parktwin(*args: str) -> float:
    """Run a parktwin command; its wall time in seconds (raises if it fails)."""
    began = time.perf_counter()
    subprocess.run([sys.executable, "-m", "twin.cli", *args], check=True, cwd=ROOT,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--history", help="history URL holding 2026-07-01..07 of the demo park")
    parser.add_argument("--repeats", type=int, default=3)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = options.history or f"sqlite:///{Path(folder) / 'week.sqlite'}"
        if options.history is None:
            seconds = parktwin("simulate", str(DEMO / "park.yaml"), "--start", "2026-07-01", "--days", "7",
                               "--history", url, "--faults", str(DEMO / "faults.yaml"))
            print(f"simulated a week of the demo park in {seconds:.1f} s")
        for command in ("kpi", "faults"):
            times = [parktwin(command, str(DEMO / "park.yaml"), "--from", "2026-07-01", "--to", "2026-07-08",
                              "--history", url, "--json") for _ in range(options.repeats)]
            median = statistics.median(times)
            verdict = "PASS" if median <= TARGET_S else "MISS"
            print(f"parktwin {command:6s} over a week: median {median:.2f} s, slowest {max(times):.2f} s "
                  f"(target {TARGET_S:.0f} s, ratio {median / TARGET_S:.2f}) {verdict}")


if __name__ == "__main__":
    main()
