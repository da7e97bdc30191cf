"""In chromium, a live `parktwin run`: pages load cleanly, a signed-in operator writes a setpoint, others get 403."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest

from browser_support import ARTIFACTS, DEMO, ConsoleWatch, parktwin_server
from dashboard.auth import add_user

SETPOINT = "plant.chiller1.chw_setpoint_c"


@pytest.fixture(scope="module")
def run_url(tmp_path_factory):
    folder = tmp_path_factory.mktemp("run")
    users = folder / "users.yaml"
    add_user(users, "olga", "operator", "olga-password")
    add_user(users, "vic", "viewer", "vic-password")
    with parktwin_server("run", str(DEMO), "--speed", "600", "--history", f"sqlite:///{folder / 'run.sqlite'}",
                         "--users", str(users)) as base:
        yield base


@pytest.fixture
def page(chromium):
    context = chromium.new_context(viewport={"width": 1440, "height": 900})
    yield context.new_page()
    context.close()


def live_value(base: str, point_id: str) -> float | None:
    with urllib.request.urlopen(f"{base}/api/points") as response:
        rows = json.load(response)["points"]
    return next(r["value"] for r in rows if r["id"] == point_id)


def sign_in(page, base: str, user: str) -> None:
    page.goto(f"{base}/login?next=/assets?asset=chiller1")
    page.fill("#username", user)
    page.fill("#password", f"{user}-password")
    page.click("#sign-in")
    page.wait_for_selector("#signed-in-user", timeout=20_000)


def write_through_the_form(page, value: str) -> str:
    """Fill the Assets page's write form, click Write, and return the new result message."""
    page.wait_for_selector("#write-button", timeout=20_000)
    before = page.evaluate("() => document.querySelector('#write-message')?.innerText ?? null")
    page.fill("#write-value", value)
    page.click("#write-button")
    page.wait_for_function("""before => {
        const m = document.querySelector('#write-message'); return m && m.innerText !== before; }""",
                           arg=before, timeout=20_000)
    return page.inner_text("#write-message")


def test_live_pages_load_without_console_errors(run_url, page):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    watch = ConsoleWatch(page)
    page.goto(run_url + "/")
    page.wait_for_selector("#overview-power-chart .js-plotly-plot .scatterlayer .trace", timeout=30_000)
    page.screenshot(path=str(ARTIFACTS / "run-overview.png"), full_page=True)
    for path, drawn in (("/assets?asset=battery", 'tr[data-point="plant.battery.soc_pct"] .quality'),
                        ("/points", "#points-table tr[data-point]")):
        page.goto(run_url + path)
        page.wait_for_selector(drawn, timeout=20_000)
    page.screenshot(path=str(ARTIFACTS / "run-points.png"))
    assert watch.errors == []


def test_signed_in_operator_writes_a_setpoint_and_the_twin_follows(run_url, page):
    sign_in(page, run_url, "olga")
    assert "olga (operator)" in page.inner_text("#signed-in-user")
    message = write_through_the_form(page, "8.5")
    assert message.startswith("wrote 8.5 degC to plant.chiller1.chw_setpoint_c")
    deadline = time.monotonic() + 30
    while live_value(run_url, SETPOINT) != 8.5 and time.monotonic() < deadline:
        time.sleep(0.3)
    assert live_value(run_url, SETPOINT) == 8.5
    page.screenshot(path=str(ARTIFACTS / "run-assets-write.png"), full_page=True)
    refused = write_through_the_form(page, "30")
    assert "refused (400)" in refused and "outside the safe limits" in refused


def test_viewers_and_anonymous_clients_are_refused(run_url, page):
    page.goto(run_url + "/assets?asset=chiller1")
    assert "refused (403)" in write_through_the_form(page, "9")
    sign_in(page, run_url, "vic")
    assert "refused (403)" in write_through_the_form(page, "9")
    request = urllib.request.Request(f"{run_url}/api/points/{SETPOINT}/write", data=b'{"value": 9}',
                                     headers={"Content-Type": "application/json"}, method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request)
    assert refused.value.code == 403
    assert live_value(run_url, SETPOINT) != 9
