"""Helpers of the browser and HTTP tests: chromium flags, a `parktwin` server per module, an app served in-process,
console and figure readers."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from park_copies import free_port, stop_with_ctrl_c

from dashboard.serve import dashboard_server

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "examples" / "demo-park" / "park.yaml"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
"""Flags that work on this machine; Playwright gives every launch a fresh temporary profile (user data dir)."""
ARTIFACTS = ROOT / "test-artifacts" / "dashboard"
UI_WAIT_MS = 180_000
"""How long a browser test waits for something to show (Playwright's own defaults: 30 s for actions, 5 s for
expect). Waits end as soon as the thing shows, so this only bounds a failure; a machine loaded with other
processes draws a live run's page many times slower than an idle one."""


def new_context(chromium, **options):
    """A fresh browser context (``options`` as Browser.new_context) whose actions and navigations wait up to
    :data:`UI_WAIT_MS`."""
    context = chromium.new_context(**options)
    context.set_default_timeout(UI_WAIT_MS)
    context.set_default_navigation_timeout(UI_WAIT_MS)
    return context


def wait_until_serving(base: str, process: subprocess.Popen, log: Path, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the server exited with {process.returncode}: {log.read_text()}")
        try:
            with urllib.request.urlopen(f"{base}/api/park", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"{base} did not answer within {timeout_s} s")


@contextmanager
def parktwin_server(*args: str) -> Iterator[str]:
    """Run `parktwin ARGS --port P` and yield its base URL; stopped with Ctrl+C afterwards."""
    with parktwin_process(*args) as (base, _process):
        yield base


@contextmanager
def parktwin_process(*args: str) -> Iterator[tuple[str, subprocess.Popen]]:
    """Run `parktwin ARGS --port P` and yield its base URL and process, which the caller may stop; stopped with
    Ctrl+C afterwards if it still runs. Its log (a line per request) goes to a file: a pipe nobody reads fills up
    and stalls the server."""
    port = free_port()
    with tempfile.TemporaryDirectory() as folder:
        log = Path(folder) / "server.log"
        with log.open("w") as log_file:
            process = subprocess.Popen([sys.executable, "-m", "parktwin", *args, "--port", str(port)], cwd=ROOT,
                                       stdout=subprocess.DEVNULL, stderr=log_file, text=True)
        base = f"http://127.0.0.1:{port}"
        try:
            wait_until_serving(base, process, log)
            yield base, process
        finally:
            if process.poll() is None:
                stop_with_ctrl_c(process)


@contextmanager
def served(app, behind_proxy: bool = False) -> Iterator[str]:
    """A Dash app's server under waitress (as `parktwin run` serves it) on a free port of 127.0.0.1 in this
    process; yields its base URL.

    waitress stops only on KeyboardInterrupt in the thread serving it (closing its socket from another thread
    breaks the select it waits in), so the server thread is a daemon that ends with the test process."""
    server = dashboard_server(app.server, "127.0.0.1", 0, threads=4, behind_proxy=behind_proxy)
    threading.Thread(target=server.run, daemon=True).start()
    yield f"http://127.0.0.1:{server.effective_port}"


def browser_page(chromium, width: int, height: int):
    """A page in a fresh browser context of ``width`` x ``height`` pixels, closed afterwards (a generator for
    fixtures: ``yield from browser_page(chromium, 1440, 900)``)."""
    context = new_context(chromium, viewport={"width": width, "height": height})
    yield context.new_page()
    context.close()


class ConsoleWatch:
    """Collects console errors and uncaught exceptions of a page."""

    def __init__(self, page):
        self.errors: list[str] = []
        page.on("console", lambda m: self.errors.append(f"console: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"exception: {e}"))


def figure_data(page, graph_id: str) -> list[dict]:
    """The traces a dcc.Graph has drawn (name, x, y), read from plotly's own state in the DOM.

    ``_fullData`` holds the arrays plotly decoded from the figure (Dash sends numbers as base64 typed arrays).
    """
    return page.evaluate(
        """id => document.querySelector(`#${id} .js-plotly-plot`)._fullData.map(
               t => ({name: t.name, x: Array.from(t.x || []), y: Array.from(t.y || [])}))""", graph_id)
