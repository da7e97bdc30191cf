"""In chromium: every page shows a banner while the history store is unavailable (readings wait in the spool),
and again once readings have been lost to the spool's limit; none while the store is healthy."""

from __future__ import annotations

import pytest
from browser_support import ConsoleWatch, browser_page
from browser_support import served as served_app

from dashboard.app import PAGES, STORAGE_REFRESH_MS, create_app
from twin.history import open_history
from twin.live import LiveState

WAIT_MS = 30_000
HEALTHY = {"state": "ok", "since_utc": None, "reason": None, "received_rows": 1000, "written_rows": 1000,
           "spooled_rows": 0, "lost_rows": 0, "spool": "/runs/park.history-spool.sqlite"}


@pytest.fixture(scope="module")
def served(demo_park, tmp_path_factory):
    """(base URL, the storage health the dashboard reads, which the test changes)."""
    health = dict(HEALTHY)
    store = open_history(f"sqlite:///{tmp_path_factory.mktemp('banner') / 'h.sqlite'}")
    app = create_app(demo_park, LiveState(), store, storage=lambda: dict(health))
    with served_app(app) as base:
        yield base, health
    store.close()


@pytest.fixture
def page(chromium):
    yield from browser_page(chromium, 1280, 900)


def test_every_page_shows_the_outage_while_it_lasts(served, page):
    base, health = served
    health.update(state="degraded", since_utc="2026-07-01T02:00:00+00:00", spooled_rows=12_345,
                  reason="history postgresql://127.0.0.1:5432/park (schema public): connection lost")
    watch = ConsoleWatch(page)
    for _, module in PAGES:
        page.goto(base + module.PATH)
        banner = page.wait_for_selector("#storage-degraded", timeout=WAIT_MS)
        text = banner.inner_text()
        assert "unavailable since 2026-07-01T02:00:00+00:00" in text and "12,345 readings wait" in text, text
    assert watch.errors == []

    health.update(HEALTHY)  # the store is back: the banner goes at the next refresh
    page.wait_for_selector("#storage-degraded", state="detached", timeout=WAIT_MS + STORAGE_REFRESH_MS)

    health.update(lost_rows=1_500)  # healthy again, but readings were lost to the spool's limit: still shown
    text = page.wait_for_selector("#storage-degraded", timeout=WAIT_MS + STORAGE_REFRESH_MS).inner_text()
    assert "1,500 readings lost" in text, text


def test_no_banner_while_the_store_is_healthy(served, page):
    base, health = served
    health.clear()
    health.update(HEALTHY)
    page.goto(base + "/")
    page.wait_for_selector("#overview-power-chart", timeout=WAIT_MS)
    assert page.query_selector("#storage-banner") is not None
    assert page.query_selector("#storage-degraded") is None
