"""Fixtures of the dashboard tests: a park with two simulated days of history in a real SQLite file."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from twin.config import load_park
from twin.history import open_history

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "examples" / "demo-park" / "park.yaml"
SIM_START_UTC = datetime(2026, 6, 30, 16, 0, tzinfo=timezone.utc)  # local midnight, 1 July, Asia/Shanghai
SIM_DAYS = 2


@pytest.fixture(scope="session")
def demo_park():
    return load_park(DEMO)


@dataclass(frozen=True)
class SimulatedHistory:
    url: str
    start_utc: datetime
    days: int


@pytest.fixture(scope="session")
def simulated_history(tmp_path_factory, demo_park) -> SimulatedHistory:
    """A sqlite history holding SIM_DAYS days of the demo park simulated from SIM_START_UTC."""
    from energy.environment import ParkEnvironment
    from twin.sim import ParkSimulator

    url = f"sqlite:///{tmp_path_factory.mktemp('history') / 'demo.sqlite'}"
    simulator = ParkSimulator(demo_park, ParkEnvironment(demo_park), SIM_START_UTC)
    with open_history(url) as store:
        for frame in simulator.run(SIM_START_UTC + timedelta(days=SIM_DAYS)):
            store.append_frame(frame)
    return SimulatedHistory(url, SIM_START_UTC, SIM_DAYS)
