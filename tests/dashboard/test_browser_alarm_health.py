"""In chromium, the Faults page's "Alarm system" card under `parktwin dashboard` shows the alarm-system KPIs of
the stored episodes of the last 7 days, each against its EEMUA 191 benchmark (counted by hand below)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from browser_support import ARTIFACTS, DEMO, ConsoleWatch, new_context, parktwin_server
from playwright.sync_api import expect

from twin.fault_episodes import FaultEpisode, Priority
from twin.history import FaultEpisodeStore, open_history
from twin.readings import Quality, Reading

GRID_POWER = "plant.grid_meter.power_kw"


@pytest.fixture
def history_with_alarms(tmp_path, demo_park):
    """A history whose data ends now (the grid meter's newest reading), with hand-made episodes in its last week:
    11 alarms within one 10-minute period (a flood), one alarm three times in 40 s (chattering), a battery
    overtemperature active for 30 h (standing), and a stale point suppressed by its device's comm loss."""
    assert GRID_POWER in demo_park.points
    newest = datetime.now(UTC).replace(microsecond=0)
    data_end = newest + timedelta(seconds=demo_park.simulation.step_s)
    window_start = data_end - timedelta(days=7)  # where the page's 10-minute periods begin
    url = f"sqlite:///{tmp_path / 'alarms.sqlite'}"
    with open_history(url) as history:
        history.append([Reading(GRID_POWER, window_start, 500.0, Quality.GOOD),
                        Reading(GRID_POWER, newest, 500.0, Quality.GOOD)])
        flood_start = window_start + timedelta(minutes=100)
        chatter_start = data_end - timedelta(hours=24)
        FaultEpisodeStore(history).save(
            [FaultEpisode("sensor_out_of_range", f"meter{i}", flood_start + timedelta(seconds=30 * i),
                          flood_start + timedelta(seconds=30 * i + 60), Priority.LOW) for i in range(11)]
            + [FaultEpisode("sensor_spike", "weather", chatter_start + timedelta(seconds=s),
                            chatter_start + timedelta(seconds=s + 5), Priority.LOW, {},
                            "plant.weather.outdoor_temp_c") for s in (0, 20, 40)]
            + [FaultEpisode("battery_overtemp", "battery", data_end - timedelta(hours=30), None, Priority.CRITICAL),
               FaultEpisode("sensor_stale", "ev5", data_end - timedelta(hours=5), data_end - timedelta(hours=4),
                            Priority.LOW, {}, "b1.ev5.power_kw", "device_comm_lost:ev5::1")])
    return url


def test_the_alarm_system_card_shows_the_weeks_kpis_against_their_benchmarks(chromium, history_with_alarms):
    page = new_context(chromium, viewport={"width": 1440, "height": 900}).new_page()
    watch = ConsoleWatch(page)
    with parktwin_server("dashboard", str(DEMO), "--history", history_with_alarms) as base:
        page.goto(base + "/faults")
        card = page.locator("#alarm-health")
        row = lambda name: card.locator(f'tr[data-kpi="{name}"]')
        # 15 alarms: 11 + 3 + 1; the suppressed stale point is none
        expect(row("alarms").locator(".alarm-kpi-value")).to_have_text("15 (1 suppressed by cause)")
        expect(row("alarms per operator hour").locator(".alarm-kpi-value")).to_have_text("0.09")  # 15 / 168 h
        expect(row("alarms per operator hour")).to_contain_text("within")
        # one 10-minute period of 1,008 in flood: 0.10 %, under the 1 % benchmark
        expect(row("10-minute periods in flood (> 10 alarms)").locator(".alarm-kpi-value")).to_have_text("0.10 %")
        expect(row("chattering alarms (≥ 3 in 1 min)")).to_contain_text(
            "1: sensor_spike:weather:plant.weather.outdoor_temp_c")
        expect(row("chattering alarms (≥ 3 in 1 min)")).to_contain_text("beyond")
        expect(row("standing alarms (active > 24 h)")).to_contain_text("1: battery_overtemp:battery::")
        expect(row("priority distribution").locator(".alarm-kpi-value")).to_have_text(
            "low 93 %, medium 0 %, high 0 %, critical 7 %")  # 14 and 1 of 15
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        card.screenshot(path=str(ARTIFACTS / "faults-alarm-system.png"))
    assert watch.errors == []
