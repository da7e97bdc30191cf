"""Simulated histories of the demo park shared by the energy tests (simulated once per test session)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from energy.environment import ParkEnvironment
from twin.config import load_park
from twin.faults_file import load_faults
from twin.history import open_history
from twin.sim import ParkSimulator

DEMO = Path(__file__).parents[2] / "examples" / "demo-park"
START_UTC = datetime(2026, 6, 30, 16, 0, tzinfo=UTC)  # 2026-07-01 00:00 in Shenzhen, a Wednesday


def simulate_into(url: str, days: int, faults_file: Path | None = None, park_file: Path = DEMO / "park.yaml") -> str:
    park = load_park(park_file)
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
def both_storages_day(tmp_path_factory) -> tuple[Path, str]:
    """The demo park with a chilled-water tank beside its ice tank in the energy centre (its file, without the
    demo's tariff and point maps, which its folder does not hold) and the history of one simulated day of it."""
    folder = tmp_path_factory.mktemp("both_storages")
    spec = yaml.safe_load((DEMO / "park.yaml").read_text(encoding="utf-8"))
    del spec["tariff"], spec["point_maps"]
    (plant,) = [building for building in spec["buildings"] if building["id"] == "plant"]
    plant["assets"].append({"kind": "chilled_water_tank", "id": "chw_tank", "capacity_kwhth": 18604,
                            "charge_rate_max_kwth": 2000, "discharge_rate_max_kwth": 2400})
    park_file = folder / "park.yaml"
    park_file.write_text(yaml.safe_dump(spec), encoding="utf-8")
    return park_file, simulate_into(f"sqlite:///{folder / 'day.sqlite'}", 1, park_file=park_file)


@pytest.fixture(scope="session")
def sim_start_utc() -> datetime:
    """Start of every simulated history here: 2026-07-01 00:00 in Shenzhen."""
    return START_UTC


@pytest.fixture(scope="session")
def demo_dir() -> Path:
    return DEMO
