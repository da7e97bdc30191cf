"""In chromium, `parktwin dashboard` over a history holding 100,000 fault episodes: the Faults page's alarm console
shows the newest, its filters and pages list what the store selects, and an operator comments on an episode and
shelves its alarm (stored, audited, and taken off the header's alarm count). How fast the page loads is measured
by benchmarks/alarm_console.py (target: within 2 s), not asserted here: a test must hold on a loaded machine.

Screenshots go to test-artifacts/dashboard/.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from browser_support import ARTIFACTS, DEMO, UI_WAIT_MS, ConsoleWatch, new_context, parktwin_server
from playwright.sync_api import expect

from dashboard.auth import add_user
from dashboard.pages.faults import ANY, PAGE_SIZE
from twin.fault_episodes import AlarmFilter, AlarmState, FaultEpisode, Priority
from twin.history import FaultEpisodeStore, open_history

EPISODES = 100_000
FIRST_START_UTC = datetime(2026, 7, 1, 0, 0, tzinfo=UTC)
SPACING = timedelta(seconds=8)
"""100,000 episodes 8 s apart: about 9.3 days of them."""
RULES = ("sensor_stale", "device_comm_lost", "chw_low_delta_t", "battery_overtemp", "elevator_out_of_service")
ASSETS = ("chiller1", "chiller2", "chiller3", "battery", "elevator1", "lighting")


def stored_episode(i: int) -> FaultEpisode:
    """The i-th episode: every rule, asset and priority, one in seven still active, one in thirteen suppressed
    (periods without common factors, so every combination occurs)."""
    start = FIRST_START_UTC + i * SPACING
    return FaultEpisode(RULES[i % len(RULES)], ASSETS[(i // len(RULES)) % len(ASSETS)], start,
                        None if i % 7 == 0 else start + timedelta(minutes=1 + i % 50), Priority(1 + (i // 3) % 4),
                        {"n": i}, suppressed_by=f"device_comm_lost:chiller1::{i}" if i % 13 == 0 else None)


@pytest.fixture(scope="module")
def console_history(tmp_path_factory):
    """(history URL, users file) of a history holding EPISODES fault episodes and an operator olga."""
    folder = tmp_path_factory.mktemp("console")
    url = f"sqlite:///{folder / 'episodes.sqlite'}"
    with open_history(url) as history:
        FaultEpisodeStore(history).save(stored_episode(i) for i in range(EPISODES))
    users = folder / "users.yaml"
    add_user(users, "olga", "operator", "olga-password")
    return url, users


@pytest.fixture(scope="module")
def dashboard_url(console_history):
    url, users = console_history
    with parktwin_server("dashboard", str(DEMO), "--history", url, "--users", str(users)) as base:
        yield base


@pytest.fixture
def store(console_history):
    with open_history(console_history[0]) as history:
        yield FaultEpisodeStore(history)


@pytest.fixture
def page(chromium):
    context = new_context(chromium, viewport={"width": 1440, "height": 1000})
    yield context.new_page()
    context.close()


def listed_ids(page) -> list[str]:
    return page.eval_on_selector_all("#faults-table tr[data-fault]", "rows => rows.map(r => r.dataset.fault)")


def expect_listing(page, store: FaultEpisodeStore, which: AlarmFilter, offset: int) -> None:
    """The console shows the store's page of ``which`` from ``offset``: its rows, in order, and their count."""
    expected = store.page(which, datetime.now(UTC), offset, PAGE_SIZE)
    assert expected.episodes, "a filter that selects nothing would not test the listing"
    expect(page.locator("#faults-page-info")).to_have_text(
        f"episodes {offset + 1:,}–{offset + len(expected.episodes):,} of {expected.total:,}, newest first",
        timeout=UI_WAIT_MS)
    expect(page.locator("#faults-table tr[data-fault]").first).to_have_attribute(
        "data-fault", expected.episodes[0].id, timeout=UI_WAIT_MS)
    assert listed_ids(page) == [e.id for e in expected.episodes]


def test_the_console_over_100000_episodes_shows_the_newest(dashboard_url, page, store):
    watch = ConsoleWatch(page)
    page.goto(dashboard_url + "/faults")
    page.wait_for_selector("#faults-table tr[data-fault]", timeout=UI_WAIT_MS)
    newest = store.page(AlarmFilter(), datetime.now(UTC), 0, PAGE_SIZE)
    assert newest.total == EPISODES
    assert listed_ids(page) == [e.id for e in newest.episodes]
    assert newest.episodes[0].id == stored_episode(EPISODES - 1).id  # the last one made starts last
    page.wait_for_load_state("networkidle")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "faults-console.png"), full_page=True)
    assert watch.errors == []


def test_filters_and_pages_list_what_the_store_selects(dashboard_url, page, store):
    watch = ConsoleWatch(page)
    page.goto(dashboard_url + "/faults")
    page.wait_for_selector("#faults-table tr[data-fault]", timeout=UI_WAIT_MS)
    page.select_option("#faults-priority", "critical")
    critical = AlarmFilter(priorities=frozenset({Priority.CRITICAL}))
    expect_listing(page, store, critical, 0)
    page.click("#faults-next")
    expect_listing(page, store, critical, PAGE_SIZE)
    page.click("#faults-next")
    expect_listing(page, store, critical, 2 * PAGE_SIZE)
    page.click("#faults-prev")
    expect_listing(page, store, critical, PAGE_SIZE)
    page.select_option("#faults-state", "active,unacknowledged")  # a new filter starts again at the newest
    attention = AlarmFilter(priorities=critical.priorities,
                            states=frozenset({AlarmState.ACTIVE, AlarmState.UNACKNOWLEDGED}))
    expect_listing(page, store, attention, 0)
    page.select_option("#faults-asset", "battery")
    page.select_option("#faults-rule", "sensor_stale")
    narrow = AlarmFilter(priorities=critical.priorities, states=attention.states,
                         asset_ids=frozenset({"battery"}), rule_ids=frozenset({"sensor_stale"}))
    expect_listing(page, store, narrow, 0)
    assert {(a.inner_text(), r.inner_text()) for a, r in zip(page.query_selector_all("#faults-table td.asset"),
                                                              page.query_selector_all("#faults-table td.rule"))} \
        == {("battery", "sensor_stale")}
    for control in ("#faults-priority", "#faults-state", "#faults-asset", "#faults-rule"):
        page.select_option(control, ANY)
    page.fill("#faults-from", "2026-07-03")
    page.fill("#faults-to", "2026-07-03")
    page.press("#faults-to", "Enter")  # the day inputs report their value on Enter or leaving the field
    park_day = datetime(2026, 7, 3, tzinfo=timezone(timedelta(hours=8)))  # the demo park is in Asia/Shanghai
    one_day = AlarmFilter(start_utc=park_day, end_utc=park_day + timedelta(days=1))
    expect_listing(page, store, one_day, 0)
    assert watch.errors == []


def test_an_operator_comments_and_shelves_an_alarm_which_leaves_the_alarm_count(dashboard_url, page, store):
    now = datetime.now(UTC)
    before = store.alarm_count(now)
    page.goto(f"{dashboard_url}/login?next=/faults?state=active,unacknowledged")
    page.fill("#username", "olga")
    page.fill("#password", "olga-password")
    page.click("#sign-in")
    expect(page.locator("#alarm-count-badge")).to_have_attribute("data-count", str(before), timeout=UI_WAIT_MS)
    row = page.wait_for_selector("#faults-table tr[data-fault]", timeout=UI_WAIT_MS)
    episode_id = row.get_attribute("data-fault")
    episode = store.episode(episode_id)
    row.query_selector(".details-button").click()
    expect(page.locator("#faults-detail-title")).to_have_attribute("data-fault", episode_id, timeout=UI_WAIT_MS)
    page.fill("#faults-comment-text", "sensor cable loose, maintenance informed")
    page.click("#faults-comment-add")
    expect(page.locator("#action-message")).to_contain_text("comment added by olga", timeout=UI_WAIT_MS)
    expect(page.locator("#faults-comments")).to_contain_text("sensor cable loose", timeout=UI_WAIT_MS)
    (comment,) = store.comments([episode_id])[episode_id]
    assert (comment.who, comment.text) == ("olga", "sensor cable loose, maintenance informed")
    page.select_option("#faults-shelve-minutes", "240")
    page.fill("#faults-shelve-reason", "known, fixed in the morning")
    page.click("#faults-shelve")
    expect(page.locator("#action-message")).to_contain_text(f"shelved {episode.rule_id} on {episode.asset_id}",
                                                            timeout=UI_WAIT_MS)
    (shelf,) = store.shelves(datetime.now(UTC))
    assert (shelf.rule_id, shelf.asset_id, shelf.point_id, shelf.shelved_by, shelf.reason) == (
        episode.rule_id, episode.asset_id, episode.point_id, "olga", "known, fixed in the morning")
    assert shelf.until_utc - shelf.shelved_utc == timedelta(hours=4)
    # the alarm's active, unacknowledged, annunciated episodes leave the count
    same_alarm = AlarmFilter(asset_ids=frozenset({episode.asset_id}), rule_ids=frozenset({episode.rule_id}),
                             states=frozenset({AlarmState.ACTIVE, AlarmState.UNACKNOWLEDGED}))
    hidden = [e for e in store.page(same_alarm, now, 0, EPISODES).episodes
              if e.point_id == episode.point_id and e.suppressed_by is None]
    assert hidden
    page.reload()
    expect(page.locator("#alarm-count-badge")).to_have_attribute("data-count", str(before - len(hidden)),
                                                                 timeout=UI_WAIT_MS)
    expect(page.locator(f'#faults-table tr[data-fault="{episode_id}"] .shelved')).to_be_visible(timeout=UI_WAIT_MS)
    page.screenshot(path=str(ARTIFACTS / "faults-shelved.png"), full_page=True)

