"""Fixtures of the dashboard tests: two simulated days of history in a real SQLite file, servers, chromium."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from browser_support import CHROMIUM, CHROMIUM_FLAGS, UI_WAIT_MS

from twin.history import open_history

SIM_START_UTC = datetime(2026, 6, 30, 16, 0, tzinfo=UTC)  # local midnight, 1 July, Asia/Shanghai
SIM_DAYS = 2


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


@pytest.fixture(scope="module")
def chromium():
    """Debian's chromium, headless, driven by Playwright (skipped without it, except under CI=true); its
    ``expect`` assertions wait up to browser_support.UI_WAIT_MS."""
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} is missing; .ci/setup installs it", pytrace=False)
        pytest.skip(f"{CHROMIUM} is missing; run .ci/setup as root to install it")
    sync_api.expect.set_options(timeout=UI_WAIT_MS)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()
