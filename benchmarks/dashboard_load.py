"""Dashboard benchmark: time from navigation to charts drawn, over a month of 1-minute history.

Run: ``.venv/bin/python benchmarks/dashboard_load.py [--days 30] [--points 200] [--repeats 5] [--keep FILE]``

Builds a SQLite history of ``--points`` points x ``--days`` days of 1-minute
readings (the demo park's points with smooth synthetic values, plus extra
points to reach the count; written with History.append_frame), serves it with
``parktwin dashboard``, and drives Debian's chromium headless (Playwright) to
each view, timing from the navigation until the page's charts have drawn their
traces (and, on Overview, the KPI cards are filled). Prints the median and the
worst of the repeats against the 2 s target; asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from rich.progress import Progress

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests" / "dashboard"), str(ROOT / "tests")]  # browser_support and what it imports

from browser_support import CHROMIUM, CHROMIUM_FLAGS, DEMO, parktwin_server  # noqa: E402

from twin.config import load_park  # noqa: E402
from twin.history import open_history  # noqa: E402

TARGET_S = 2.0
END_UTC = datetime(2026, 7, 31, 16, 0, tzinfo=UTC)  # local midnight, 1 August, Asia/Shanghai
CHART = ".js-plotly-plot .scatterlayer .trace"


def build_history(url: str, days: int, points: int) -> int:
    """Write points x days x 1440 synthetic 1-minute readings; returns the number written."""
    park = load_park(DEMO)
    ids = list(park.points)[:points]
    ids += [f"bench.extra.p{i}_kw" for i in range(points - len(ids))]
    rng = np.random.default_rng(1)
    level = rng.uniform(5, 500, len(ids))
    phase = rng.uniform(0, 2 * np.pi, len(ids))
    start = END_UTC - timedelta(days=days)
    written = 0
    with open_history(url) as store, Progress() as progress:
        task = progress.add_task("writing history", total=days)
        for day in range(days):
            stamps = pd.date_range(start + timedelta(days=day), periods=1440, freq="1min")
            hours = (stamps.hour + stamps.minute / 60).to_numpy()
            values = level[:, None] * (1 + 0.5 * np.sin(2 * np.pi * hours[None, :] / 24 + phase[:, None]))
            frame = pd.DataFrame({
                "point_id": np.repeat(np.array(ids, dtype=object), len(stamps)),
                "ts_utc": np.tile(stamps, len(ids)),
                "value": (values + rng.normal(0, 0.01, values.shape) * level[:, None]).ravel(),
                "quality": 0,
            })
            written += store.append_frame(frame)
            progress.advance(task)
    return written


def timed(page, url: str, ready: list[str], action=None) -> float:
    """Seconds from navigation (or from the action, on an open page) until every ready selector is present."""
    start = time.perf_counter()
    if action is None:
        page.goto(url)
    else:
        action(page)
    for selector in ready:
        page.wait_for_selector(selector, timeout=60_000)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--points", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="SQLite file to build once and reuse on later runs")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as folder:
        db = args.keep or Path(folder) / "bench.sqlite"
        url = f"sqlite:///{db}"
        if not db.exists():
            t0 = time.perf_counter()
            n = build_history(url, args.days, args.points)
            print(f"history: {n:,} readings ({args.points} points x {args.days} days x 1440) "
                  f"written in {time.perf_counter() - t0:.1f} s, {db.stat().st_size / 1e6:,.0f} MB")
        first_day = (END_UTC - timedelta(days=args.days) + timedelta(hours=8)).date()
        last_day = (END_UTC - timedelta(hours=1) + timedelta(hours=8)).date()
        overview_ready = ["#overview-power-chart " + CHART, "#overview-sankey .sankey", "#kpi-consumption"]
        assets_ready = ["#assets-history-chart " + CHART, "#assets-live-points tr[data-point]"]
        month = lambda page: page.click("text=30 days")
        views = [
            ("Overview (today)", "/", overview_ready, None, True),
            ("Assets (chiller1, 24 h)", "/assets?asset=chiller1", assets_ready, None, True),
            ("Overview (custom: whole month)",
             f"/?period=custom&first_day={first_day}&last_day={last_day}", overview_ready, None, False),
            ("Assets (chiller1, click 30 days)", "/assets?asset=chiller1", assets_ready, month, False),
            ("Points (every point's row)", "/points", ['#points-table .ag-cell[col-id="quality"]'], None, False),
        ]
        with parktwin_server("dashboard", str(DEMO), "--history", url) as base, sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            timed(page, base + "/", overview_ready)  # warm-up: first asset downloads, caches
            print(f"\n{'view':38} {'median s':>9} {'worst s':>8}  target {TARGET_S:.1f} s")
            for name, path, ready, action, targeted in views:
                times = []
                for _ in range(args.repeats):
                    if action is None:
                        times.append(timed(page, base + path, ready))
                    else:
                        timed(page, base + path, ready)
                        caption = page.inner_text("#history-caption")
                        times.append(timed(page, "", ready, lambda p, action=action, caption=caption: (
                            action(p), p.wait_for_function(
                            "c => document.querySelector('#history-caption').innerText !== c", arg=caption,
                            timeout=60_000))))
                median, worst = statistics.median(times), max(times)
                verdict = ("PASS" if worst <= TARGET_S else "MISS") if targeted else "(info)"
                print(f"{name:38} {median:9.2f} {worst:8.2f}  {verdict}")
            browser.close()


if __name__ == "__main__":
    main()
