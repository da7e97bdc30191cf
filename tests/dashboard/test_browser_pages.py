"""In chromium, `parktwin dashboard` over a simulated history: every page loads cleanly and shows history's values.

Screenshots of every page go to test-artifacts/dashboard/.
"""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from datetime import timedelta

import pandas as pd
import pytest
from browser_support import ARTIFACTS, DEMO, UI_WAIT_MS, ConsoleWatch, browser_page, figure_data, parktwin_server

from twin.history import open_history

PAGES = {  # page -> (path, a selector present once the page has drawn its data or its "not available" state)
    "overview": ("/", "#overview-power-chart .js-plotly-plot .scatterlayer .trace"),
    "assets": ("/assets?asset=chiller1", "#assets-history-chart .js-plotly-plot .scatterlayer .trace"),
    "faults": ("/faults", "#faults-table"),  # the energy models' stored fault episodes (none here)
    "dispatch": ("/dispatch", ".not-available"),
    "points": ("/points", '#points-table .ag-cell[col-id="id"]'),
}
CHILLER_POWER = ["plant.chiller1.power_kw", "plant.chiller2.power_kw", "plant.chiller3.power_kw"]
BUILDING_METERS = ["plant.meter.power_kw", "b1.meter_b1.power_kw", "b2.meter_b2.power_kw"]


@pytest.fixture(scope="module")
def dashboard_url(simulated_history):
    with parktwin_server("dashboard", str(DEMO), "--history", simulated_history.url) as base:
        yield base


@pytest.fixture(scope="module")
def history(simulated_history):
    with open_history(simulated_history.url) as store:
        yield store


@pytest.fixture
def page(chromium):
    yield from browser_page(chromium, 1440, 900)


def test_every_page_loads_without_console_errors(dashboard_url, page):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    watch = ConsoleWatch(page)
    for name, (path, drawn) in PAGES.items():
        page.goto(dashboard_url + path)
        page.wait_for_selector(drawn, timeout=UI_WAIT_MS)
        page.wait_for_load_state("networkidle")
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    assert watch.errors == []
    page.goto(dashboard_url + PAGES["dispatch"][0])
    assert "not available yet" in page.inner_text(".not-available")


def test_overview_chart_and_cards_match_history(dashboard_url, page, history, simulated_history):
    page.goto(dashboard_url + "/")
    page.wait_for_selector(PAGES["overview"][1], timeout=UI_WAIT_MS)
    # "today" is the last simulated day; the chart draws 2-minute means (720 buckets a day)
    day_start = simulated_history.start_utc + timedelta(days=simulated_history.days - 1)
    day_end = day_start + timedelta(days=1)
    raw = history.query_wide(CHILLER_POWER + BUILDING_METERS, day_start, day_end)
    chillers_by_hand = raw[CHILLER_POWER].sum(axis=1).resample("120s").mean()
    traces = {t["name"]: t for t in figure_data(page, "overview-power-chart")}
    assert traces["Chillers"]["y"] == pytest.approx(chillers_by_hand.tolist(), rel=1e-9)
    assert len(traces["Chillers"]["x"]) == 720
    assert pd.Timestamp(traces["Chillers"]["x"][0]) == day_start  # drawn in park time: 00:00+08:00
    consumption_kwh = raw[BUILDING_METERS].sum(axis=1).sum() / 60  # 1-minute samples
    card = page.inner_text("#kpi-consumption_kwh")
    assert float(card.removesuffix(" kWh").replace(",", "")) == pytest.approx(consumption_kwh, abs=0.5)
    assert page.inner_text("#kpi-consumption_kwh-coverage") == "data for 100.0% of the period"
    label = page.inner_text("#overview-period-label")
    assert "compared with the same weekdays a week before" in label and "so far" not in label  # a whole day
    with urllib.request.urlopen(dashboard_url + "/api/energy?period=today") as response:
        api = json.load(response)
    assert api["current"]["consumption_kwh"]["total"] == pytest.approx(consumption_kwh, rel=1e-9)
    query = urllib.parse.urlencode({"from": day_start.isoformat(), "to": day_end.isoformat()})
    with urllib.request.urlopen(f"{dashboard_url}/api/kpi?{query}") as response:
        cost_cny = json.load(response)["kpis"]["cost_cny"]["value"]  # the energy models' KPI provider
    assert page.inner_text("#kpi-cost_cny").startswith(f"{cost_cny:,.0f} CNY")


def test_assets_history_chart_and_live_table_match_history(dashboard_url, page, history, simulated_history):
    page.goto(dashboard_url + "/assets?asset=chiller1")
    page.wait_for_selector(PAGES["assets"][1], timeout=UI_WAIT_MS)
    end = simulated_history.start_utc + timedelta(days=simulated_history.days)
    raw = history.query(["plant.chiller1.power_kw"], end - timedelta(days=1), end)
    by_hand = raw.set_index("ts_utc")["value"].resample("120s").mean().dropna()
    trace = next(t for t in figure_data(page, "assets-history-chart") if t["name"] == "plant.chiller1.power_kw")
    assert trace["y"] == pytest.approx(by_hand.tolist(), rel=1e-9)
    latest = history.latest(["plant.chiller1.cop"])["plant.chiller1.cop"]
    row = page.locator('tr[data-point="plant.chiller1.cop"]')
    assert float(row.get_attribute("data-value")) == pytest.approx(latest.value)
    assert "good" in row.inner_text()
    # a wider range still draws about one point per pixel: 7 days of 1-minute data as 15-minute means
    page.click("text=7 days")
    page.wait_for_function(
        """() => document.querySelector('#history-caption').innerText.includes('15 min')""", timeout=UI_WAIT_MS)
    wide = next(t for t in figure_data(page, "assets-history-chart") if t["name"] == "plant.chiller1.power_kw")
    assert len(wide["y"]) == simulated_history.days * 96
    assert pd.Series(wide["y"]).mean() == pytest.approx(
        history.query(["plant.chiller1.power_kw"], end - timedelta(days=7), end)["value"].mean(), rel=1e-9)
