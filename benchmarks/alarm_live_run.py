"""Alarm benchmark: fault episodes of a live `parktwin run` of the demo park, with and without injected faults.

Run:  .venv/bin/python benchmarks/alarm_live_run.py [--days 7] [--speed 600] [--no-faults] [--start 2026-07-01]
                                                   [--replan-min 15]

Starts `parktwin run` of a copy of the demo park (every device on a free port) at --speed from --start,
with examples/demo-park/faults.yaml unless --no-faults (manual approval: the plant keeps its own schedule,
so --replan-min changes only the controller's CPU use, which a shared machine may need), lets it run until
the twin clock has passed --days simulated days, stops it with Ctrl+C, and reads the fault episodes it
stored. Prints, per injected fault, the annunciated episodes of its rule on its asset (target: exactly
one each), the episodes that started after the start-up grace period and no injected fault explains
(target: none), and the alarm-system KPIs of the run (target: at most 6 alarms per operator hour in
normal operation).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from park_copies import copy_demo_park, free_port, stop_with_ctrl_c  # noqa: E402

from energy.alarm_kpis import alarm_system_kpis  # noqa: E402
from energy.fault_rules import RULE_FOR_FAULT_KIND, FaultThresholds, fault_asset_id  # noqa: E402
from twin.config import load_park  # noqa: E402
from twin.faults_file import load_faults  # noqa: E402
from twin.history import FaultEpisodeStore, open_history  # noqa: E402

MATCH_MARGIN = timedelta(hours=1)
"""An episode explains an injected fault on its asset when it overlaps the fault widened by this much."""
STOP_MARGIN_S = 20.0
"""Wall seconds the run goes on after --days of twin time should have passed (its history is not read while
it runs: a reader could hold up its writes)."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--speed", type=float, default=600.0)
    parser.add_argument("--start", default="2026-07-01")
    parser.add_argument("--no-faults", action="store_true")
    parser.add_argument("--replan-min", type=int, default=15)
    parser.add_argument("--keep", type=Path, help="folder to keep the history in (default: a temporary one)")
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="alarm-run-"))
    folder.mkdir(parents=True, exist_ok=True)
    park_file = copy_demo_park(folder)
    history_url = f"sqlite:///{folder / 'run.sqlite'}"
    faults = [] if args.no_faults else ["--faults", str(ROOT / "examples" / "demo-park" / "faults.yaml")]
    command = [sys.executable, "-m", "parktwin", "run", str(park_file), "--speed", str(args.speed), "--start",
               args.start, "--replan-min", str(args.replan_min), "--port", str(free_port()), "--history", history_url,
               *faults]
    with (folder / "run.log").open("w") as log:
        process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, text=True)
    park = load_park(park_file)
    start_utc = datetime.fromisoformat(args.start).replace(tzinfo=ZoneInfo(park.site.timezone))
    end_utc = start_utc + timedelta(days=args.days)
    started = time.monotonic()
    try:  # the twin clock starts before the devices do: the wall time of --days is enough, plus a margin
        time.sleep(args.days * 86400 / args.speed + STOP_MARGIN_S)
        assert process.poll() is None, (folder / "run.log").read_text()
    finally:
        stop_with_ctrl_c(process, timeout_s=60)
    wall_s = time.monotonic() - started
    with open_history(history_url) as history:
        episodes = FaultEpisodeStore(history).overlapping(start_utc, end_utc)
    grace_end = start_utc + timedelta(seconds=FaultThresholds().startup_grace_s * args.speed)
    report(park, episodes, start_utc, end_utc, grace_end, [] if args.no_faults else
           load_faults(ROOT / "examples" / "demo-park" / "faults.yaml", park), wall_s, folder)


def report(park, episodes, start_utc, end_utc, grace_end, injected, wall_s: float, folder: Path) -> None:
    annunciated = [e for e in episodes if e.suppressed_by is None]
    print(f"{len(episodes)} episodes stored ({len(annunciated)} annunciated, "
          f"{len(episodes) - len(annunciated)} suppressed by cause) in {(end_utc - start_utc) / timedelta(days=1):.2f} "
          f"simulated days, {wall_s / 60:.1f} wall minutes; history in {folder}")
    for fault in injected:
        asset = fault_asset_id(fault, park)
        found = [e for e in annunciated if e.rule_id == RULE_FOR_FAULT_KIND[fault.kind] and e.asset_id == asset
                 and e.start_utc < fault.end_utc + MATCH_MARGIN
                 and (e.end_utc is None or e.end_utc > fault.start_utc - MATCH_MARGIN)]
        print(f"  {fault.kind:24} {asset:16} {len(found)} episode(s): " +
              "; ".join(f"{e.start_utc:%m-%d %H:%M}-{e.end_utc:%m-%d %H:%M}" if e.end_utc else
                        f"{e.start_utc:%m-%d %H:%M}-open" for e in found))
    unexplained = [e for e in annunciated if e.start_utc >= grace_end and not any(
        fault_asset_id(f, park) == e.asset_id and e.start_utc < f.end_utc + MATCH_MARGIN
        and (e.end_utc is None or e.end_utc > f.start_utc - MATCH_MARGIN) for f in injected)]
    after_grace = [e for e in episodes if e.start_utc >= grace_end]
    print(f"episodes that started after the grace period ({grace_end.astimezone(UTC):%m-%d %H:%M} UTC): "
          f"{len(after_grace)}, of "
          f"which annunciated and explained by no injected fault: {len(unexplained)}")
    for e in unexplained[:30]:
        print(f"  {e.rule_id} {e.asset_id} {e.point_id} {e.start_utc:%m-%d %H:%M} {e.priority.label}")
    kpis = alarm_system_kpis(episodes, start_utc, end_utc)
    print("alarm-system KPIs of the whole run:", json.dumps(kpis, default=str))
    print("alarm rate in normal operation (annunciated alarms after the grace period that no injected fault "
          f"explains): {alarm_system_kpis(unexplained, start_utc, end_utc)['alarms_per_operator_hour']:.3f} "
          "per operator hour")


if __name__ == "__main__":
    main()
