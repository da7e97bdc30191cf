"""In chromium, a live `parktwin run --approval manual --faults FILE`: a trader approves the plan in force on the
Dispatch page (and only then are setpoints written, audited as controller:<trader>), an approval without sign-in is
refused, an operator acknowledges a fault on the Faults page; the Dispatch chart shows /api/plan's numbers.

`parktwin run` forecasts with energy.forecast.HistoryForecaster; without it these tests skip.
Screenshots go to test-artifacts/dashboard/.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from urllib.parse import quote
from zoneinfo import ZoneInfo

import pytest
from browser_support import ARTIFACTS, DEMO, UI_WAIT_MS, ConsoleWatch, figure_data, new_context, parktwin_server
from park_copies import copy_demo_park
from playwright.sync_api import expect
from waiting import wait_for

from dashboard.auth import add_user
from twin.config import load_park
from twin.history import open_history, write_audit
from twin.kinds import Battery, IceTank

PLAN_TIMEOUT_MS = UI_WAIT_MS
SCREENSHOT_TIMEOUT_MS = 120_000
"""A full-page screenshot of a live run's page on a loaded machine can take more than Playwright's 30 s."""

if not hasattr(pytest.importorskip("energy.forecast"), "HistoryForecaster"):
    pytest.skip("parktwin run needs energy.forecast.HistoryForecaster", allow_module_level=True)


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    """`parktwin run` on a park copy whose battery overheats from before the start on; (base URL, history URL)."""
    folder = tmp_path_factory.mktemp("actions-run")
    users = folder / "users.yaml"
    add_user(users, "tara", "trader", "tara-password")
    add_user(users, "olga", "operator", "olga-password")
    now = datetime.now(UTC)
    faults = folder / "faults.yaml"
    faults.write_text("faults:\n  - {kind: battery_overtemp, target: battery, "
                      f"start: {(now - timedelta(hours=1)):%Y-%m-%dT%H:%M}Z, "
                      f"end: {(now + timedelta(days=3)):%Y-%m-%dT%H:%M}Z, magnitude: 25}}\n", encoding="utf-8")
    history = f"sqlite:///{folder / 'run.sqlite'}"
    park_file = copy_demo_park(folder)
    # one plan a simulated day (--replan-min 1440): the page and the API show the same plan while a test looks;
    # at 60x (a poll a simulated minute) the run keeps up with its clock on a loaded machine, as a park runs
    with parktwin_server("run", str(park_file), "--speed", "60", "--history", history, "--users", str(users),
                         "--approval", "manual", "--faults", str(faults), "--plan-time-limit", "2",
                         "--replan-min", "1440") as base:
        yield base, history


@pytest.fixture
def page(chromium):
    context = new_context(chromium, viewport={"width": 1440, "height": 1000})
    yield context.new_page()
    context.close()


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url) as response:
        return json.load(response)


def plan_writes(history: str) -> list:
    """The controller's writes in the write audit log."""
    with open_history(history) as store:
        return [r for r in write_audit(store) if r.who.startswith("controller:")]


def sign_in(page, base: str, user: str, next_path: str) -> None:
    page.goto(f"{base}/login?next={next_path}")
    page.fill("#username", user)
    page.fill("#password", f"{user}-password")
    page.click("#sign-in")
    page.wait_for_selector("#signed-in-user", timeout=UI_WAIT_MS)


# first in the module: the battery overheats from the start, so its episodes are there early
def test_a_signed_in_operator_acknowledges_a_fault(running, page):
    base, _ = running
    sign_in(page, base, "olga", "/faults")
    deadline = time.monotonic() + 300  # a bound for a loaded machine; the loop ends once the episode shows
    while time.monotonic() < deadline:  # the live detector opens the episode a few simulated minutes in
        page.goto(base + "/faults?asset=battery&rule=battery_overtemp")  # active or cleared: both stay listed
        page.wait_for_selector("#faults-table", timeout=UI_WAIT_MS)
        if page.query_selector('#faults-table tr[data-fault^="battery_overtemp:battery:"] .ack-button'):
            break
        time.sleep(1)
    row = page.wait_for_selector('tr[data-fault^="battery_overtemp:battery:"]:has(.ack-button)', timeout=UI_WAIT_MS)
    episode_id = row.get_attribute("data-fault")
    row.query_selector(".ack-button").click()
    expect(page.locator("#ack-message")).to_contain_text("acknowledged battery_overtemp on battery as olga",
                                                         timeout=UI_WAIT_MS)
    end = datetime.now(UTC) + timedelta(days=2)
    faults = get_json(f"{base}/api/faults?from=2000-01-01T00:00:00Z&to={end:%Y-%m-%dT%H:%M:%S}Z")["faults"]
    (episode,) = [f for f in faults if f["id"] == episode_id]
    assert episode["acknowledged_by"] == "olga"
    # stamped with the twin's (simulation) clock, like the episode: not before the episode began
    assert datetime.fromisoformat(episode["acknowledged_utc"]) >= datetime.fromisoformat(episode["start_utc"])
    assert all(f["acknowledged_by"] is None for f in faults if f["id"] != episode_id)
    page.screenshot(path=str(ARTIFACTS / "run-faults-acknowledged.png"), full_page=True, timeout=SCREENSHOT_TIMEOUT_MS)


def test_an_approval_without_sign_in_is_refused_and_nothing_is_dispatched(running, page):
    base, history = running
    watch = ConsoleWatch(page)
    page.goto(base + "/dispatch")
    page.wait_for_selector("#plan-approve", timeout=PLAN_TIMEOUT_MS)
    plan = get_json(base + "/api/plan")
    request = urllib.request.Request(f"{base}/api/plan/approve", data=json.dumps({"id": plan["id"]}).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request)
    assert refused.value.code == 403
    page.click("#plan-approve")
    expect(page.locator("#plan-message")).to_be_visible(timeout=UI_WAIT_MS)
    message = page.inner_text("#plan-message")
    assert "refused (403)" in message and "Sign in" in message
    assert get_json(base + "/api/plan")["approval"]["approved_by"] is None
    assert plan_writes(history) == []  # manual approval: no plan setpoint reached a device
    assert watch.errors == []


def test_the_dispatch_chart_and_cost_table_show_the_plan_of_the_api(running, page):
    base, _ = running
    for _attempt in range(3):  # a plan made while the page was read (the next day's review): read it again
        page.goto(base + "/dispatch")
        page.wait_for_selector("#plan-chart .js-plotly-plot .scatterlayer .trace", timeout=PLAN_TIMEOUT_MS)
        plan = get_json(base + "/api/plan")
        traces = {t["name"]: t for t in figure_data(page, "plan-chart")}
        totals = {}  # baseline -> the cost table's (plan, baseline, saves) totals
        for baseline in plan["baseline_names"][:2]:  # the first is shown; pick the second in the baseline picker
            if baseline != plan["baseline_names"][0]:
                page.click("#plan-baseline")
                page.click(f'[role="option"] input[value="{baseline}"] >> xpath=ancestor::label')
                page.wait_for_function(f"""() => document.querySelector('#plan-cost-table thead')
                                                  .innerText.includes('{baseline.replace('_', ' ')}')""",
                                       timeout=UI_WAIT_MS)
            cells = page.query_selector_all('#plan-cost-table tr[data-cost="total_cny"] td')
            totals[baseline] = tuple(float(c.inner_text().replace(",", "")) for c in cells[1:])
        if get_json(base + "/api/plan")["id"] == plan["id"]:
            break
    steps = plan["steps"]
    for name, column in (("energy price (CNY/kWh)", "price_cny_per_kwh"),
                         ("battery power kW (+ discharge)", "battery.power_setpoint_kw"),
                         ("ice_tank ice inventory %", "ice_tank.soc_pct"), ("grid import kW", "grid_import_kw"),
                         ("grid export kW", "grid_export_kw")):
        assert traces[name]["y"] == pytest.approx([s[column] for s in steps], abs=1e-9), name
    for baseline, (plan_total, baseline_total, saves) in totals.items():
        assert plan_total == pytest.approx(plan["costs"]["total_cny"], abs=0.5)
        assert baseline_total == pytest.approx(plan["baselines"][baseline]["total_cny"], abs=0.5)
        assert saves == pytest.approx(plan["baselines"][baseline]["total_cny"] - plan["costs"]["total_cny"], abs=1)
    page.screenshot(path=str(ARTIFACTS / "run-dispatch.png"), full_page=True, timeout=SCREENSHOT_TIMEOUT_MS)


def test_a_signed_in_trader_approves_the_plan_and_its_step_is_written(running, page):
    base, history = running
    sign_in(page, base, "tara", "/dispatch")
    page.wait_for_selector("#plan-approve", timeout=PLAN_TIMEOUT_MS)
    page.click("#plan-approve")  # the plan the page shows; one replaced in between is refused (409): try again
    expect(page.locator("#plan-message")).to_be_visible(timeout=UI_WAIT_MS)
    for _ in range(5):
        refused = page.inner_text("#plan-message")
        if "refused (409)" not in refused:
            break
        page.click("#plan-approve")
        page.wait_for_function("old => document.querySelector('#plan-message').innerText !== old", arg=refused,
                               timeout=UI_WAIT_MS)
    assert "approved by tara" in page.inner_text("#plan-message")
    page.wait_for_function("() => document.querySelector('#plan-approval').innerText.includes('approved by tara')",
                           timeout=UI_WAIT_MS)
    page.wait_for_selector('#plan-rounds-table tr[data-point="plant.battery.power_setpoint_kw"]', timeout=UI_WAIT_MS)
    battery = wait_for(lambda: next(
        (w for r in reversed(get_json(base + "/api/plan/rounds")["rounds"]) if r["writes"] and not r["released"]
         for w in r["writes"] if w["point_id"] == "plant.battery.power_setpoint_kw" and w["result"] == "ok"), None),
        PLAN_TIMEOUT_MS / 1000, "a step's battery setpoint written (on a loaded machine a write may go unanswered; "
                                "the next step writes again)")
    audited = [r for r in plan_writes(history) if r.point_id == "plant.battery.power_setpoint_kw"]
    assert audited and {r.who for r in audited} == {"controller:tara"}
    assert any(r.value == pytest.approx(battery["value"], rel=1e-6) and r.result == "ok" for r in audited)
    page.screenshot(path=str(ARTIFACTS / "run-dispatch-approved.png"), full_page=True, timeout=SCREENSHOT_TIMEOUT_MS)


def schedule_value(park, point_id: str, ts_utc: datetime) -> float | None:
    """What the plant's own schedule commands a released setpoint point at ``ts_utc`` (twin.sim: battery
    charge and discharge windows at the schedule's power fraction, the ice tank's charge and melt windows at
    their rated flows); None for a point whose schedule value depends on the load (battery discharge)."""
    schedule, local = park.plant_schedule, ts_utc.astimezone(ZoneInfo(park.site.timezone))
    hour = local.hour + local.minute / 60 + local.second / 3600
    (battery,), (tank,) = park.assets_of(Battery), park.assets_of(IceTank)
    if point_id == "plant.battery.power_setpoint_kw":
        if schedule.battery_charge.contains(hour):
            return -schedule.battery_power_fraction * battery.charge_power_max_kw
        return None if any(w.contains(hour) for w in schedule.battery_discharge) else 0.0
    if point_id == "plant.ice_tank.charge_setpoint_kwth":
        return tank.charge_rate_max_kwth if schedule.ice_charge.contains(hour) else 0.0
    return tank.melt_rate_max_kwth if any(w.contains(hour) for w in schedule.ice_melt) else 0.0


def test_suspend_in_the_page_hands_the_devices_back_to_the_plant_schedule(running, page):
    """After the trader suspends, the devices' own readings show the plant schedule's values by the second
    poll they answer: the BACnet ice tank relinquished, the Modbus battery released through its fail-safe enable."""
    base, history = running
    park = load_park(DEMO)
    sign_in(page, base, "tara", "/dispatch")
    page.wait_for_selector("#plan-suspend", timeout=PLAN_TIMEOUT_MS)
    page.click("#plan-suspend")
    page.wait_for_function("() => (document.querySelector('#plan-message')?.innerText || '')"
                           ".includes('suspended by tara')", timeout=UI_WAIT_MS)
    suspended_at = datetime.fromisoformat(get_json(base + "/api/plan")["approval"]["suspended_at_utc"])
    points = ("plant.battery.power_setpoint_kw", "plant.ice_tank.charge_setpoint_kwth",
              "plant.ice_tank.melt_setpoint_kwth")
    query = (f"{base}/api/readings?point={','.join(points)}&from={quote(suspended_at.isoformat())}"
             f"&to={quote((suspended_at + timedelta(days=1)).isoformat())}")

    def answered(point: str, readings: dict) -> list[tuple[str, float]]:
        """The point's polls that the device answered (a poll that timed out on a loaded machine reads None)."""
        return [(ts, value) for ts, value in zip(readings[point]["ts_utc"], readings[point]["value"])
                if value is not None]

    deadline = time.monotonic() + UI_WAIT_MS / 1000  # polls a loaded machine starves come late, not never
    while time.monotonic() < deadline:
        readings = get_json(query)["points"]
        if all(len(answered(p, readings)) >= 3 for p in points):
            break
        time.sleep(1)
    for point in points:
        polls = answered(point, readings)
        assert len(polls) >= 2, (point, "fewer than two answered polls after the suspend", readings[point])
        # the second poll reads the device's last simulation step, taken after the first poll: where a schedule
        # window opens or closes between the two, either side's value is the schedule's
        first_poll, second_poll = (datetime.fromisoformat(ts) for ts, _ in polls[:2])
        expected = {schedule_value(park, point, first_poll + (second_poll - first_poll) * i / 60) for i in range(61)}
        if None not in expected:
            assert any(polls[1][1] == pytest.approx(value, abs=1e-3) for value in expected), (point, expected,
                                                                                             polls[:3])

    def last_releases() -> dict[str, str] | None:
        """Each released point's last release result, once every one is ok (the audit log is in time order)."""
        last = {r.point_id: r.result for r in plan_writes(history) if r.value is None and r.who == "controller:tara"}
        return last if set(last) >= set(points) and all(result == "ok" for result in last.values()) else None

    wait_for(last_releases, 60, "every setpoint released (one unanswered on a loaded machine is tried again at the "
                                "next step)")
    page.screenshot(path=str(ARTIFACTS / "run-dispatch-suspended.png"), full_page=True, timeout=SCREENSHOT_TIMEOUT_MS)
