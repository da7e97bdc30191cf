"""Where "the last 7 days" and "today" end: where a history ends when no feed runs, never the wall clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd

from dashboard.context import DashboardContext
from dashboard.providers import Providers
from twin.history import open_history
from twin.live import LiveState

GRID = "plant.grid_meter.power_kw"
LAST_READING = datetime(2026, 7, 3, 15, 59, tzinfo=UTC)


def test_a_history_only_dashboard_ends_its_periods_where_the_history_ends(demo_park, tmp_path):
    with open_history(f"sqlite:///{tmp_path / 'h.sqlite'}") as store:
        store.append_frame(pd.DataFrame({"point_id": GRID, "value": [500.0, 510.0], "quality": 0,
                                         "ts_utc": [LAST_READING - timedelta(minutes=1), LAST_READING]}))
        data_end = LAST_READING + timedelta(seconds=demo_park.simulation.step_s)
        over_history = DashboardContext(demo_park, LiveState(), store)  # parktwin dashboard: the wall clock
        assert over_history.now_utc() > data_end + timedelta(days=30)
        assert over_history.periods_end() == data_end
        # under parktwin run (a feed polls the devices) the twin's clock, ahead of the stored readings, counts
        twin_clock = data_end + timedelta(minutes=3)
        live = DashboardContext(demo_park, LiveState(), store, Providers(devices=object()),
                                now_utc=lambda: twin_clock)
        assert live.periods_end() == twin_clock
