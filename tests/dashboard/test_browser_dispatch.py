"""In chromium, the Dispatch page over live dispatch in manual-approval mode: before approval it shows the plan in
force and no writes; a trader signs in and approves in the page; each control step's round appears with its
writes; Suspend in the page releases the setpoints, and the page and the simulator say so.

The app is served in-process over a LiveOperation on a SimulatedField (tests/dashboard/live_park.py); the test
runs the control steps, so each round the page must show is known. Screenshots go to test-artifacts/dashboard/.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from browser_support import ARTIFACTS, ConsoleWatch, browser_page, figure_data
from browser_support import served as served_app
from live_park import BATTERY_SETPOINT, LivePark
from playwright.sync_api import expect

from dashboard.app import create_app
from dashboard.auth import UserStore, add_user
from dashboard.components import format_value
from twin.history import open_history
from twin.live import LiveState

START_UTC = datetime(2026, 7, 1, 4, 0, tzinfo=UTC)  # 12:00 in the park, a flat-price window until 14:00
SCHEDULE_BATTERY_KW = 0.0  # what the plant schedule asks of the battery then
WAIT_MS = 20_000  # the page refreshes every few seconds


@pytest.fixture(scope="module")
def served(demo_park, tmp_path_factory):
    """(base URL, LivePark): the dashboard served on a free port over a manual-approval live park."""
    folder = tmp_path_factory.mktemp("dispatch-page")
    users = folder / "users.yaml"
    add_user(users, "tara", "trader", "tara-password")
    store = open_history(f"sqlite:///{folder / 'h.sqlite'}")
    live = LivePark(demo_park, store, START_UTC, "manual")
    live.operation.step_now()
    live.step()
    app = create_app(demo_park, LiveState(), store, users=UserStore.load(users), now_utc=live.now_utc,
                     plan=live.operation)
    with served_app(app) as base:
        yield base, live
    store.close()


@pytest.fixture(scope="module")
def page(chromium):
    yield from browser_page(chromium, 1440, 1000)


def battery_row(ts_utc: str) -> str:
    return f'#plan-rounds-table tr[data-round="{ts_utc}"][data-point="{BATTERY_SETPOINT}"]'


def test_before_approval_the_page_shows_the_plan_now_and_no_writes(served, page):
    base, live = served
    watch = ConsoleWatch(page)
    page.goto(base + "/dispatch")
    page.wait_for_selector("#plan-chart .js-plotly-plot .scatterlayer .trace", timeout=WAIT_MS)
    plan = live.operation.plan()
    assert plan["id"] in page.inner_text("#plan-in-force")
    assert "awaiting approval" in page.inner_text("#plan-approval")
    traces = {t["name"]: t for t in figure_data(page, "plan-chart")}
    for name, column in (("battery power kW (+ discharge)", "battery.power_setpoint_kw"),
                         ("grid import kW", "grid_import_kw")):
        assert traces[name]["y"] == pytest.approx([s[column] for s in plan["steps"]], abs=1e-9), name
    # the "now" line sits at the twin's clock, in park time
    now_line = page.evaluate("""() => document.querySelector('#plan-chart .js-plotly-plot')
                                      .layout.shapes.find(s => s.name === 'now').x0""")
    assert datetime.fromisoformat(now_line) == live.now_utc()
    # plan against actual: the battery SOC measured so far today is history's 15-minute means
    actual = next(t for t in figure_data(page, "plan-actual-chart") if t["name"] == "actual battery SOC %")
    means = live.store.resample(["plant.battery.soc_pct"], START_UTC, live.now_utc(), interval_s=900)
    assert actual["y"] == pytest.approx(list(means["plant.battery.soc_pct"]), rel=1e-9)
    rows = page.query_selector_all("#plan-rounds-table tbody tr")
    assert len(rows) == 2 and all("nothing written" in r.inner_text() for r in rows)
    assert page.query_selector("#plan-rounds-table tr[data-point]") is None
    page.click("#plan-approve")  # not signed in
    expect(page.locator("#plan-message")).to_be_visible(timeout=WAIT_MS)
    assert "refused (403)" in page.inner_text("#plan-message")
    assert live.operation.plan()["approval"]["approved_by"] is None
    page.screenshot(path=str(ARTIFACTS / "dispatch-before-approval.png"), full_page=True)
    assert watch.errors == []


def test_a_trader_approves_in_the_page_rounds_appear_each_step_and_suspend_releases(served, page):
    base, live = served
    watch = ConsoleWatch(page)
    page.goto(f"{base}/login?next=/dispatch")
    page.fill("#username", "tara")
    page.fill("#password", "tara-password")
    page.click("#sign-in")
    page.wait_for_selector("#signed-in-user", timeout=WAIT_MS)
    page.wait_for_selector("#plan-approve", timeout=WAIT_MS)
    plan_id = live.operation.plan()["id"]
    page.click("#plan-approve")
    expect(page.locator("#plan-message")).to_be_visible(timeout=WAIT_MS)
    assert f"plan {plan_id} approved by tara" in page.inner_text("#plan-message")
    page.wait_for_function("() => document.querySelector('#plan-approval').innerText.includes('approved by tara')",
                           timeout=WAIT_MS)
    assert page.inner_text('#plan-approval-table tr[data-approval="active"] td') == "yes"

    for _ in range(2):
        step = live.step()
        written = step.setpoints[BATTERY_SETPOINT]
        row = page.wait_for_selector(battery_row(step.ts_utc.isoformat()), timeout=WAIT_MS)
        cells = [c.inner_text() for c in row.query_selector_all("td")]
        assert cells[1:] == [step.plan_id, BATTERY_SETPOINT, format_value(written), "ok"]
    assert abs(written - SCHEDULE_BATTERY_KW) > 1.0  # the plan holds the battery away from the schedule
    page.screenshot(path=str(ARTIFACTS / "dispatch-approved.png"), full_page=True)

    suspended_at = live.now_utc()
    page.click("#plan-suspend")
    page.wait_for_function("() => document.querySelector('#plan-message').innerText.includes('suspended by tara')",
                           timeout=WAIT_MS)
    page.wait_for_selector("#plan-suspended", timeout=WAIT_MS)
    assert "released to the plant schedule" in page.inner_text("#plan-suspended")
    assert page.inner_text('#plan-approval-table tr[data-approval="active"] td') == "no"
    released = page.wait_for_selector(battery_row(suspended_at.isoformat()) + ":has-text('released')",
                                      timeout=WAIT_MS)
    assert "suspended by tara" in released.inner_text()
    live.step()
    assert live.read_back(BATTERY_SETPOINT, suspended_at) == pytest.approx([SCHEDULE_BATTERY_KW] * 15)
    page.screenshot(path=str(ARTIFACTS / "dispatch-suspended.png"), full_page=True)
    assert watch.errors == []
