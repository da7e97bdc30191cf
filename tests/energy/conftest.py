"""Simulated histories of the demo park shared by the energy tests (simulated once per test session)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from energy.environment import ParkEnvironment
from twin.config import load_park
from twin.faults_file import load_faults
from twin.history import open_history
from twin.sim import ParkSimulator

DEMO = Path(__file__).parents[2] / "examples" / "demo-park"
START_UTC = datetime(2026, 6, 30, 16, 0, tzinfo=UTC)  # 2026-07-01 00:00 in Shenzhen, a Wednesday


def simulate_into(url: str, days: int, faults_file: Path | None = None) -> str:
    park = load_park(DEMO / "park.yaml")
    simulator = ParkSimulator(park, ParkEnvironment(park), START_UTC)
    for fault in load_faults(faults_file, park) if faults_file else []:
        simulator.inject_fault(fault)
    with open_history(url) as store:
        for frame in simulator.run(START_UTC + timedelta(days=days)):
            store.append_frame(frame)
    return url


@pytest.fixture(scope="session")
def faulty_week_url(tmp_path_factory) -> str:
    """History of 7 simulated days with examples/demo-park/faults.yaml injected."""
    return simulate_into(f"sqlite:///{tmp_path_factory.mktemp('faulty') / 'week.sqlite'}", 7, DEMO / "faults.yaml")


@pytest.fixture(scope="session")
def healthy_fortnight_url(tmp_path_factory) -> str:
    """History of 14 simulated fault-free days (the second week is held back by the forecast tests)."""
    return simulate_into(f"sqlite:///{tmp_path_factory.mktemp('healthy') / 'fortnight.sqlite'}", 14)


@pytest.fixture(scope="session")
def healthy_three_weeks_url(tmp_path_factory) -> str:
    """History of 21 simulated fault-free days (14 to learn from, 7 to forecast;
    tests/energy/test_history_forecast.py)."""
    return simulate_into(f"sqlite:///{tmp_path_factory.mktemp('healthy3') / 'three_weeks.sqlite'}", 21)


@pytest.fixture(scope="session")
def sim_start_utc() -> datetime:
    """Start of every simulated history here: 2026-07-01 00:00 in Shenzhen."""
    return START_UTC


@pytest.fixture(scope="session")
def demo_dir() -> Path:
    return DEMO
