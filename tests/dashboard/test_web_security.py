"""The dashboard as an attacker on this host would meet it, over HTTP on 127.0.0.1 (waitress, as `parktwin run`
serves it): cross-site requests refused (a page on another port of the same host, in chromium, with the
operator's session), JSON-only actions, security headers and a Content-Security-Policy the pages run under,
sessions that end at sign-out, sign-in lockout and timing that does not tell known users from unknown ones.
"""

from __future__ import annotations

import base64
import http.server
import re
import statistics
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import pytest
import requests
from browser_support import DEMO, UI_WAIT_MS, ConsoleWatch, new_context, parktwin_server, served

from dashboard.app import create_app
from dashboard.auth import UserStore, add_user
from dashboard.sessions import SessionLimits, SessionRegistry
from dashboard.throttle import ThrottleLimits
from energy.providers import StoredFaultProvider
from twin.fault_episodes import FaultEpisode, Priority
from twin.history import FaultEpisodeStore, open_history
from twin.live import LiveState

FAULT_START_UTC = datetime(2026, 7, 1, 3, 0, tzinfo=UTC)
GENEROUS = ThrottleLimits(max_failures=1000, max_failures_per_address=1000)
"""Limits no test that is not about lockout reaches."""


@pytest.fixture(scope="module")
def users(tmp_path_factory) -> UserStore:
    users_file = tmp_path_factory.mktemp("users") / "users.yaml"
    for name, role in (("olga", "operator"), ("vic", "viewer")):
        add_user(users_file, name, role, f"{name}-password")
    return UserStore.load(users_file)


@pytest.fixture
def park_with_a_fault(demo_park, users, tmp_path):
    """(make(throttle limits) -> app, the fault episode id, the history): a dashboard over a fresh history
    holding one active, unacknowledged fault."""
    store = open_history(f"sqlite:///{tmp_path / 'history.sqlite'}")
    episodes = FaultEpisodeStore(store)
    fault = FaultEpisode("battery_overtemp", "battery", FAULT_START_UTC, None, Priority.CRITICAL,
                         {"cell_temp_max_c": 52.0})
    episodes.save([fault])

    def make(throttle: ThrottleLimits = GENEROUS):
        return create_app(demo_park, LiveState(), store, users=users, throttle_limits=throttle,
                          faults=StoredFaultProvider(episodes))

    yield make, fault.id, store
    store.close()


def acknowledged_by(base: str) -> str | None:
    (fault,) = requests.get(f"{base}/api/faults?from=2026-07-01T00:00:00Z&to=2026-07-02T00:00:00Z",
                            timeout=30).json()["faults"]
    return fault["acknowledged_by"]


def sign_in(base: str, user: str, password: str | None = None) -> requests.Response:
    return requests.post(f"{base}/login", data={"username": user, "password": password or f"{user}-password"},
                         headers={"Origin": base}, allow_redirects=False, timeout=60)


def basic(user: str, password: str | None = None) -> dict:
    token = base64.b64encode(f"{user}:{password or user + '-password'}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


# ------------------------------------------------------------------ cross-site requests

@contextmanager
def page_on_another_port(html: str) -> Iterator[str]:
    """A page served by http.server on another free port of 127.0.0.1: another origin of the same site."""
    body = html.encode()

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("enctype, field, value", [
    ("application/x-www-form-urlencoded", "id", "{episode}"),
    ("text/plain", '{{"id": "{episode}", "x": "', '"}}'),  # posts {"id": "<episode>", "x": "="}
], ids=["form-encoded", "text-plain-json"])
def test_a_form_post_from_another_port_with_the_operators_session_is_refused(park_with_a_fault, chromium,
                                                                              enctype, field, value):
    make, episode, _ = park_with_a_fault
    with served(make()) as base:
        context = new_context(chromium)
        page = context.new_page()
        page.goto(f"{base}/login?next=/faults")
        page.fill("#username", "olga")
        page.fill("#password", "olga-password")
        page.click("#sign-in")
        page.wait_for_selector("#signed-in-user", timeout=UI_WAIT_MS)
        name, posted = field.format(episode=episode), value.format(episode=episode)
        attack = (f'<form id="f" method="post" action="{base}/api/faults/ack" enctype="{enctype}">'
                  f"<input type=\"hidden\" name='{name}' value='{posted}'></form>"
                  '<script>document.getElementById("f").submit()</script>')
        with page_on_another_port(attack) as attacker:
            with page.expect_response(f"{base}/api/faults/ack", timeout=UI_WAIT_MS) as answer:
                page.goto(attacker)
            assert answer.value.status == 403, answer.value.text()
            assert "is not this server's" in answer.value.json()["error"]
        assert acknowledged_by(base) is None  # nothing changed
        # the same action from the app's own page, with the same session, goes through
        page.goto(f"{base}/faults")
        status = page.evaluate("""async ([url, id]) => (await fetch(url, {method: "POST",
            headers: {"Content-Type": "application/json"}, body: JSON.stringify({id})})).status""",
                               [f"{base}/api/faults/ack", episode])
        assert status == 200 and acknowledged_by(base) == "olga"
        context.close()


def test_state_changes_need_this_servers_origin_and_a_json_body(park_with_a_fault):
    make, episode, _ = park_with_a_fault
    with served(make()) as base:
        other_port = base.rsplit(":", 1)[0] + ":1"
        signed_in = sign_in(base, "olga")
        assert signed_in.status_code == 302
        session = requests.Session()
        session.cookies.update(signed_in.cookies)
        ack = f"{base}/api/faults/ack"
        refusals = [
            session.post(ack, json={"id": episode}, headers={"Origin": other_port}, timeout=30),
            session.post(ack, json={"id": episode}, headers={"Origin": "null"}, timeout=30),
            session.post(ack, json={"id": episode}, headers={"Referer": f"{other_port}/faults"}, timeout=30),
            session.post(ack, json={"id": episode}, timeout=30),  # a cookie and neither header
            # the pages' own Dash callbacks change state too (the Faults page's Acknowledge button)
            session.post(f"{base}/_dash-update-component", json={"output": "x", "inputs": []},
                         headers={"Origin": other_port}, timeout=30),
        ]
        assert [r.status_code for r in refusals] == [403] * 5, [r.text for r in refusals]
        own = {"Origin": base}
        not_json = [session.post(ack, data={"id": episode}, headers=own, timeout=30),
                    session.post(ack, data=f'{{"id": "{episode}"}}', timeout=30,
                                 headers={**own, "Content-Type": "text/plain"}),
                    session.post(ack, files={"id": ("id", episode)}, headers=own, timeout=30)]
        assert [r.status_code for r in not_json] == [415] * 3
        assert "takes a JSON body" in not_json[0].json()["error"]
        assert acknowledged_by(base) is None
        # an API client with HTTP Basic credentials and no cookie needs no Origin
        anonymous = requests.post(ack, json={"id": episode}, headers=basic("olga"), timeout=60)
        assert anonymous.status_code == 200 and acknowledged_by(base) == "olga"
        # a Referer of this server's own page stands for a missing Origin
        same = session.post(ack, json={"id": episode}, headers={"Referer": f"{base}/faults"}, timeout=30)
        assert same.status_code == 200


# ------------------------------------------------------------------ headers and the Content-Security-Policy

def test_every_response_carries_the_security_headers_and_names_no_server_software(park_with_a_fault):
    make, _, _ = park_with_a_fault
    with served(make()) as base:
        page = requests.get(f"{base}/faults", timeout=60)
        script = re.search(r'src="(/_dash-component-suites/[^"]+)"', page.text).group(1)
        answers = {"page": page, "script": requests.get(base + script, timeout=60),
                   "api": requests.get(f"{base}/api/park", timeout=60),
                   "stylesheet": requests.get(f"{base}/assets/bootstrap-5.3.6.min.css", timeout=60),
                   "sign-in page": requests.get(f"{base}/login", timeout=60),
                   "refusal": requests.post(f"{base}/api/faults/ack", data="x", timeout=60),
                   "not found": requests.get(f"{base}/api/nothing", timeout=60)}
    for name, answer in answers.items():
        headers = answer.headers
        policy = headers.get("Content-Security-Policy", "")
        assert "frame-ancestors 'none'" in policy and "default-src 'self'" in policy, name
        assert "'unsafe-eval'" not in policy and "script-src 'self' 'sha256-" in policy, name
        assert (headers.get("X-Frame-Options"), headers.get("X-Content-Type-Options"),
                headers.get("Referrer-Policy")) == ("DENY", "nosniff", "same-origin"), name
        assert "Server" not in headers and "Via" not in headers, (name, headers)


def test_the_pages_run_under_the_policy_in_chromium_with_no_violation(park_with_a_fault, chromium):
    make, _, _ = park_with_a_fault
    with served(make()) as base:
        context = new_context(chromium, viewport={"width": 1440, "height": 900})
        context.add_init_script("""window.__violations = [];
            document.addEventListener("securitypolicyviolation",
                e => window.__violations.push(`${e.violatedDirective} ${e.blockedURI}`));""")
        page = context.new_page()
        watch = ConsoleWatch(page)
        for path, drawn in (("/", "#overview-power-chart .js-plotly-plot"),
                            ("/assets?asset=chiller1", "#assets-history-chart .js-plotly-plot"),
                            ("/faults", '#faults-table tr[data-fault^="battery_overtemp:battery:"]'),
                            ("/dispatch", ".not-available"),
                            ("/points", '#points-table .ag-cell[col-id="id"]'),
                            ("/login", "#sign-in")):
            page.goto(base + path)
            page.wait_for_selector(drawn, timeout=UI_WAIT_MS)  # drawn by the pages' scripts: they ran
            page.wait_for_load_state("networkidle")
            assert page.evaluate("window.__violations") == [], path
        assert watch.errors == []
        context.close()


# ------------------------------------------------------------------ sessions

def test_a_session_cookie_replayed_after_sign_out_is_refused(park_with_a_fault):
    make, episode, _ = park_with_a_fault
    with served(make()) as base:
        signed_in = sign_in(base, "olga")
        assert signed_in.status_code == 302
        cookie = signed_in.cookies.get_dict()
        comment = f"{base}/api/faults/comment"
        written = requests.post(comment, json={"id": episode, "text": "checking"}, cookies=cookie,
                                headers={"Origin": base}, timeout=30)
        assert written.status_code == 200
        # a link or a form on another site cannot sign the user out
        requests.get(f"{base}/logout", cookies=cookie, allow_redirects=False, timeout=30)
        assert requests.post(f"{base}/logout", cookies=cookie, headers={"Origin": "https://elsewhere.example"},
                             allow_redirects=False, timeout=30).status_code == 403
        still = requests.post(comment, json={"id": episode, "text": "still signed in"}, cookies=cookie,
                              headers={"Origin": base}, timeout=30)
        assert still.status_code == 200
        assert requests.post(f"{base}/logout", cookies=cookie, headers={"Origin": base}, allow_redirects=False,
                             timeout=30).status_code == 302
        replayed = requests.post(comment, json={"id": episode, "text": "after sign-out"}, cookies=cookie,
                                 headers={"Origin": base}, timeout=30)
        assert replayed.status_code == 403
        comments = requests.get(f"{base}/api/faults?from=2026-07-01T00:00:00Z&to=2026-07-02T00:00:00Z",
                                timeout=30).json()["faults"][0]["comments"]
        assert [c["text"] for c in comments] == ["checking", "still signed in"]


def test_a_session_ends_when_idle_too_long_or_too_old():
    now = [1000.0]
    sessions = SessionRegistry(SessionLimits(idle_s=60, max_s=600), clock_s=lambda: now[0])
    kept, idle = sessions.start("olga"), sessions.start("vic")
    for _ in range(10):  # used every 59 s: never idle, until 600 s after sign-in
        now[0] += 59
        assert sessions.user_of(kept) == "olga"
    assert sessions.user_of(idle) is None  # 590 s without a request
    now[0] += 11  # 601 s old
    assert sessions.user_of(kept) is None
    third = sessions.start("olga")
    sessions.end(third)
    assert sessions.user_of(third) is None and sessions.user_of("made-up") is None


# ------------------------------------------------------------------ sign-in throttling

def test_ten_wrong_passwords_lock_the_user_until_the_lockout_ends(park_with_a_fault):
    make, _, _ = park_with_a_fault
    lockout_s = 3
    with served(make(ThrottleLimits(max_failures=10, window_s=900, lockout_s=lockout_s,
                                    max_failures_per_address=1000))) as base:
        assert [sign_in(base, "olga", "guess").status_code for _ in range(10)] == [401] * 10
        locked = sign_in(base, "olga")  # the 11th attempt, with the right password
        assert locked.status_code == 429 and 1 <= int(locked.headers["Retry-After"]) <= lockout_s
        assert "too many wrong passwords" in locked.text
        basic_locked = requests.post(f"{base}/api/faults/ack", json={"id": "x"}, headers=basic("olga"), timeout=30)
        assert basic_locked.status_code == 429 and "Retry-After" in basic_locked.headers
        assert sign_in(base, "vic").status_code == 302  # another user is not locked
        deadline = time.monotonic() + 60
        while (answer := sign_in(base, "olga")).status_code == 429:
            assert time.monotonic() < deadline, "the lock did not end"
            time.sleep(float(answer.headers["Retry-After"]) / 4)
        assert answer.status_code == 302


def test_wrong_passwords_from_one_address_lock_that_address_whatever_the_names(park_with_a_fault):
    make, _, _ = park_with_a_fault
    with served(make(ThrottleLimits(max_failures=1000, max_failures_per_address=5))) as base:
        assert [sign_in(base, f"user{i}", "guess").status_code for i in range(5)] == [401] * 5
        assert sign_in(base, "olga").status_code == 429


@pytest.mark.parametrize("behind_proxy", [True, False], ids=["behind-proxy", "direct"])
def test_behind_one_proxy_the_forwarded_client_address_and_scheme_count(park_with_a_fault, behind_proxy):
    """Behind the proxy, failures lock the address it forwards; served directly, forwarded headers are
    ignored (anyone could send them) and every failure counts against the connecting address."""
    make, _, _ = park_with_a_fault
    with served(make(ThrottleLimits(max_failures=1000, max_failures_per_address=3)), behind_proxy) as base:
        def attempt(client: str, user: str = "olga", password: str = "guess", proto: str = "http"):
            origin = base.replace("http:", f"{proto}:")
            return requests.post(f"{base}/login", data={"username": user, "password": password},
                                 headers={"X-Forwarded-For": client, "X-Forwarded-Proto": proto, "Origin": origin},
                                 allow_redirects=False, timeout=60).status_code

        assert [attempt("127.0.0.2") for _ in range(3)] == [401] * 3
        assert attempt("127.0.0.2", password="olga-password") == 429
        other_client = attempt("127.0.0.3", password="olga-password")
        assert other_client == (302 if behind_proxy else 429)
        # the browser's origin is https when the proxy says the request came over https
        https = attempt("127.0.0.4", user="vic", password="vic-password", proto="https")
        assert https == (302 if behind_proxy else 403)


def test_known_and_unknown_users_take_as_long_to_refuse(park_with_a_fault):
    """Medians of 15 interleaved wrong sign-ins each: the hash runs for unknown names too."""
    make, _, _ = park_with_a_fault
    with served(make()) as base:
        sign_in(base, "olga", "warm-up")
        known, unknown = [], []
        for i in range(15):
            for name, times in (("olga", known), (f"nobody{i}", unknown)):
                started = time.perf_counter()
                assert sign_in(base, name, "wrong").status_code == 401
                times.append(time.perf_counter() - started)
    slower, faster = sorted([statistics.median(known), statistics.median(unknown)], reverse=True)
    assert slower <= 1.2 * faster, (known, unknown)


# ------------------------------------------------------------------ the command line serves it so

def test_parktwin_dashboard_serves_with_waitress_and_its_sign_in_options(simulated_history, tmp_path):
    users_file = tmp_path / "users.yaml"
    add_user(users_file, "olga", "operator", "olga-password")
    with parktwin_server("dashboard", str(DEMO), "--history", simulated_history.url, "--users", str(users_file),
                         "--login-failures", "2", "--lockout-min", "10", "--threads", "2") as base:
        page = requests.get(f"{base}/", timeout=60)
        assert page.status_code == 200 and "Server" not in page.headers
        assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
        assert [sign_in(base, "olga", "guess").status_code for _ in range(2)] == [401, 401]
        locked = sign_in(base, "olga")
        assert locked.status_code == 429 and 590 <= int(locked.headers["Retry-After"]) <= 600
