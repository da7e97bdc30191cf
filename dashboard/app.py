"""The ParkTwin web dashboard: a multi-page Dash app (Dash pages + dash-bootstrap-components) and its JSON API.

Pages: Overview, Assets, Faults, Dispatch, Points (``dashboard/pages``); the
API lives in :mod:`dashboard.api`; sign-in in :mod:`dashboard.auth`. Reading
needs no sign-in; every action that changes something goes through
:mod:`dashboard.actions`. Capabilities of other rooms plug in as providers
(:mod:`dashboard.providers`); while one is missing, its page says so.

Dash pages keep their registry in the ``dash`` module, so one process serves
one dashboard (which is how ``parktwin run`` and ``parktwin dashboard`` use it).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime
from functools import partial
from urllib.parse import urlsplit

import dash
import dash_bootstrap_components as dbc
import flask
from dash import Dash, Input, Output, dcc, html
from markupsafe import escape
from werkzeug.exceptions import TooManyRequests

from dashboard.api import create_api
from dashboard.auth import Access, UserStore
from dashboard.components import data_attributes
from dashboard.context import DashboardContext, wall_clock_utc
from dashboard.pages import assets, dispatch, faults, overview, points
from dashboard.providers import (
    DeviceStatusProvider,
    FaultProvider,
    KpiProvider,
    PlanProvider,
    PointWriter,
    Providers,
    StorageHealthProvider,
    WriteAuditor,
)
from dashboard.sessions import SessionLimits, SessionRegistry
from dashboard.throttle import LoginThrottle, ThrottleLimits
from dashboard.web_security import protect
from twin.history import History, StorageUnavailable
from twin.live import LiveState
from twin.park import Park

PAGES = (("Overview", overview), ("Assets", assets), ("Faults", faults), ("Dispatch", dispatch),
         ("Points", points))
STYLESHEET = "/assets/bootstrap-5.3.6.min.css"


def create_app(park: Park, live: LiveState, history: History, *,
               kpi: KpiProvider | None = None, faults: FaultProvider | None = None,
               plan: PlanProvider | None = None, devices: DeviceStatusProvider | None = None,
               write_point: PointWriter | None = None, storage: StorageHealthProvider | None = None,
               audit: WriteAuditor | None = None, users: UserStore | None = None,
               now_utc: Callable[[], datetime] = wall_clock_utc, secret_key: str | None = None,
               session_limits: SessionLimits = SessionLimits(),
               throttle_limits: ThrottleLimits = ThrottleLimits()) -> Dash:
    """Build the dashboard over a park's live state and history.

    Providers left out show as "not available yet", except the KPI engine (:attr:`DashboardContext.kpi`).
    users: who may sign in
    (nobody when None). now_utc: the twin's clock, for reading ages. secret_key
    signs session cookies (a random one when None); sessions live in this process whatever the key, so
    sign-ins end with it. session_limits: how long a sign-in lasts; throttle_limits: wrong passwords allowed
    before a user name or client address is locked, and for how long. Cross-site request checks and security
    headers: :mod:`dashboard.web_security`.
    """
    ctx = DashboardContext(park, live, history,
                           Providers(kpi=kpi, faults=faults, plan=plan, devices=devices, write_point=write_point,
                                     storage=storage, audit=audit),
                           Access(users or UserStore(), SessionRegistry(session_limits),
                                  LoginThrottle(throttle_limits)),
                           now_utc)
    app = Dash(__name__, use_pages=True, pages_folder="", title="ParkTwin", update_title=None,  # type: ignore[arg-type]  # Dash documents None (no "Updating..." title); its stub says str
               suppress_callback_exceptions=True)
    server = app.server
    server.secret_key = secret_key or secrets.token_hex(32)
    server.config.update(SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Strict")
    for order, (name, module) in enumerate(PAGES):
        dash.register_page(module.__name__, path=module.PATH, name=name, title=f"{name} · ParkTwin",
                           order=order, layout=partial(module.layout, ctx))
        if hasattr(module, "register_callbacks"):
            module.register_callbacks(app, ctx)
    app.layout = _shell(park, with_alarms=faults is not None, with_storage=storage is not None)
    _register_user_area(app, ctx)
    if faults is not None:
        _register_alarm_count(app, ctx)
    if storage is not None:
        _register_storage_banner(app, storage)
    _register_sign_in(server, ctx)
    server.register_error_handler(StorageUnavailable, _store_unavailable)
    server.register_blueprint(create_api(ctx))
    protect(app)
    return app


ALARM_COUNT_REFRESH_MS = 10_000
ALARMS_NEEDING_ATTENTION = f"{faults.PATH}?state=active,unacknowledged"
"""The console filtered to what the header's alarm count counts (less shelved and suppressed alarms, which the
console lists with a badge)."""


def _shell(park: Park, with_alarms: bool, with_storage: bool) -> html.Div:
    links = [dbc.NavItem(dbc.NavLink(name, href=module.PATH, active="exact")) for name, module in PAGES]
    alarms = [html.A(id="alarm-count", href=ALARMS_NEEDING_ATTENTION, className="me-3 text-decoration-none"),
              dcc.Interval(id="alarm-count-tick", interval=ALARM_COUNT_REFRESH_MS)] if with_alarms else []
    navbar = dbc.Navbar(dbc.Container([
        dbc.NavbarBrand(["ParkTwin", html.Span(f" · {park.name}", className="fw-light")], href="/"),
        dbc.Nav(links, navbar=True, id="page-nav", className="me-auto"),
        *alarms,
        html.Div(id="user-area", className="text-light small"),
    ], fluid=True), color="dark", dark=True, className="mb-3")
    storage = [html.Div(id="storage-banner"), dcc.Interval(id="storage-tick", interval=STORAGE_REFRESH_MS)] \
        if with_storage else []
    return html.Div([dcc.Location(id="url"), navbar, *storage, dbc.Container(dash.page_container, fluid=True)])


STORAGE_REFRESH_MS = 5_000


def _store_unavailable(exc: StorageUnavailable):
    """A request (API or page callback) that needed the history store while it is unavailable: 503 with the
    reason, without a traceback in the log (the run logs the outage once)."""
    return flask.jsonify({"error": f"history store unavailable: {exc}"}), 503


def _register_storage_banner(app: Dash, storage: StorageHealthProvider) -> None:
    """A banner on every page while the history store is unavailable (readings wait in the spool), and
    while any reading has been lost to the spool's limit."""
    @app.callback(Output("storage-banner", "children"), Input("url", "pathname"), Input("storage-tick", "n_intervals"))
    def storage_banner(_pathname, _tick):
        health = storage()
        lost = f" {health['lost_rows']:,} readings lost to the spool's limit." if health["lost_rows"] else ""
        if health["state"] == "ok" and not lost:
            return None
        if health["state"] == "ok":
            text = f"History store healthy again.{lost}"
        else:
            text = (f"History store unavailable since {health['since_utc']} ({health['reason']}): live values go "
                    f"on; {health['spooled_rows']:,} readings wait in the spool and are written when it is "
                    f"back.{lost}")
        return dbc.Alert(text, color="warning", className="rounded-0 mb-3", id="storage-degraded")


def _register_alarm_count(app: Dash, ctx: DashboardContext) -> None:
    """The header's alarm count on every page: alarms active, unacknowledged, not shelved and not suppressed."""
    @app.callback(Output("alarm-count", "children"), Input("url", "pathname"), Input("alarm-count-tick", "n_intervals"))
    def alarm_count(_pathname, _tick):
        count = ctx.providers.faults.alarm_count()
        return html.Span(dbc.Badge(f"{count:,} alarm{'' if count == 1 else 's'}",
                                   color="danger" if count else "secondary"),
                         id="alarm-count-badge", **data_attributes(count=str(count)))


def _register_user_area(app: Dash, ctx: DashboardContext) -> None:
    @app.callback(Output("user-area", "children"), Input("url", "pathname"))
    def user_area(pathname):
        user = ctx.access.current_user(flask.request)
        if user is None:
            return html.A("Sign in", href=f"/login?next={pathname or '/'}", className="btn btn-outline-light btn-sm",
                          id="sign-in-link")
        return html.Span([html.Span(f"{user.name} ({user.role})", id="signed-in-user", className="me-2"),
                          html.Form(html.Button("Sign out", type="submit", id="sign-out",
                                                className="btn btn-outline-light btn-sm"),
                                    method="post", action="/logout", className="d-inline")])


LOGIN_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sign in · ParkTwin</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="{stylesheet}"></head>
<body class="bg-light"><main class="container" style="max-width: 380px; margin-top: 12vh">
<h1 class="h4 mb-3">Sign in to ParkTwin</h1>{error}
<form method="post" action="/login">
<input type="hidden" name="next" value="{next}">
<div class="mb-3"><label class="form-label" for="username">User</label>
<input class="form-control" id="username" name="username" autocomplete="username" required autofocus></div>
<div class="mb-3"><label class="form-label" for="password">Password</label>
<input class="form-control" id="password" name="password" type="password"
 autocomplete="current-password" required></div>
<button class="btn btn-primary w-100" id="sign-in" type="submit">Sign in</button></form>
<p class="small text-muted mt-3">Pages are open to read; changing anything needs a role that allows it.</p>
</main></body></html>"""


def _safe_next(target: str | None) -> str:
    """Only paths on this server: never redirect a signed-in user elsewhere."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"  # browsers read "//host" and "/\\host" as another host
    parts = urlsplit(target)
    return "/" if parts.scheme or parts.netloc else target


def _register_sign_in(server: flask.Flask, ctx: DashboardContext) -> None:
    def page(next_path: str, error: str = "", status: int = 200):
        alert = f'<div class="alert alert-danger py-2" id="sign-in-error">{escape(error)}</div>' if error else ""
        return LOGIN_PAGE.format(stylesheet=STYLESHEET, error=alert, next=escape(next_path)), status

    @server.get("/login")
    def login_form():
        return page(_safe_next(flask.request.args.get("next")))

    @server.post("/login")
    def login():
        form = flask.request.form
        next_path = _safe_next(form.get("next"))
        try:
            user = ctx.access.sign_in(form.get("username", ""), form.get("password", ""),
                                      flask.request.remote_addr or "")
        except TooManyRequests as locked:
            body, status = page(next_path, locked.description, locked.code)
            return body, status, {"Retry-After": str(locked.retry_after)}
        if user is None:
            return page(next_path, "Unknown user or wrong password.", 401)
        ctx.access.open_session(user)
        return flask.redirect(next_path)

    @server.post("/logout")  # a POST, so that a link or image on another site cannot sign a user out
    def logout():
        ctx.access.close_session()
        return flask.redirect("/")
