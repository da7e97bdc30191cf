"""`parktwin kpi` and `parktwin dashboard` hold readings as long as the speed the history's runs recorded
implies, unless --speed says otherwise."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from cli_support import parktwin

from twin.history import open_history
from twin.history.runs import record_run_speed
from twin.readings import Reading

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "examples" / "demo-park" / "park.yaml"
START = datetime(2026, 7, 1, tzinfo=ZoneInfo("Asia/Shanghai"))  # the demo park's time zone
GRID_KW = 100.0
PERIOD = ("--from", "2026-07-01T00:00", "--to", "2026-07-01T02:00")


@pytest.fixture
def sparse_history(tmp_path) -> str:
    """Two hours of the grid meter importing GRID_KW, a reading every 10 minutes: what its 1 s poll period
    gives at 600x. The demo park's step is 60 s, so at 1x a reading holds a tenth of the time to the next."""
    url = f"sqlite:///{tmp_path / 'h.sqlite'}"
    with open_history(url) as store:
        store.append([Reading("plant.grid_meter.power_kw", START + timedelta(minutes=m), GRID_KW)
                      for m in range(0, 120, 10)])
    return url


def grid_import_coverage(url: str, *options: str) -> tuple[float, str]:
    """(the share of the two hours whose grid import is known, stderr) of `parktwin kpi`."""
    result = parktwin("kpi", DEMO, *PERIOD, "--history", url, "--json", *options)
    assert result.returncode == 0, result.stderr
    kpis = json.loads(result.stdout)
    assert kpis["grid_import_kwh"] == pytest.approx(GRID_KW * 2)  # the known part's mean over the period
    return kpis["coverage"]["grid_import_kwh"], result.stderr


def test_without_a_recorded_speed_readings_hold_as_at_1x(sparse_history):
    assert grid_import_coverage(sparse_history) == (pytest.approx(0.1), "")


def test_the_recorded_speed_holds_readings_until_the_next_and_an_explicit_speed_wins(sparse_history):
    with open_history(sparse_history) as store:
        record_run_speed(store, START, 600.0)
    assert grid_import_coverage(sparse_history) == (pytest.approx(1.0), "")
    assert grid_import_coverage(sparse_history, "--speed", "1")[0] == pytest.approx(0.1)


def test_of_runs_at_several_speeds_the_fastest_holds_and_is_noted(sparse_history):
    with open_history(sparse_history) as store:
        record_run_speed(store, START - timedelta(days=1), 60.0)
        record_run_speed(store, START + timedelta(hours=1), 600.0)
        record_run_speed(store, START + timedelta(hours=2), 1.0)  # after the period: not one of its runs
    coverage, stderr = grid_import_coverage(sparse_history)
    assert coverage == pytest.approx(1.0)
    assert "runs at 60x, 600x wrote this history; readings hold as at 600x" in stderr
