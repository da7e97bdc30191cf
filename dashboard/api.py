"""The JSON API served beside the pages (documented in README.md, "Dashboard and JSON API").

Reads (the write audit log at GET /api/audit among them) need no sign-in; the actions
(POST /api/points/<id>/write, POST /api/faults/ack, POST /api/faults/comment, POST /api/faults/shelve,
POST /api/plan/approve, POST /api/plan/suspend, POST /api/plan/replan) go
through :mod:`dashboard.actions`, and take JSON bodies from this server's own pages or from API clients
(:mod:`dashboard.web_security` refuses the rest with 415 or 403 before they get here). Lists come a page at a
time. Errors are JSON ``{"error": "..."}`` with status 400 (bad request), 403 (not allowed), 404 (unknown
point), 429 (HTTP Basic credentials of a locked user name or address) or 503 (the capability behind the
endpoint is not installed yet, or the history store is unavailable).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, jsonify, request
from werkzeug.exceptions import TooManyRequests

from dashboard import actions
from dashboard.context import DashboardContext
from dashboard.history_views import choose_period, finite_or_none, subsystem_power
from dashboard.providers import MISSING
from dashboard.reading_pages import bucket_page, raw_page
from twin.fault_episodes import alarm_filter
from twin.subsystems import subsystem_power_kw

READINGS_LIMIT, MAX_READINGS_LIMIT = 10_000, 100_000
"""Rows (readings, or buckets x points) per /api/readings answer unless ``limit`` asks for another number, and
the most it may ask for; ``next`` leads to the rest."""

MAX_ROUNDS_LIMIT = 2000
"""Dispatch rounds per /api/plan/rounds answer unless ``limit`` asks for fewer (as many as the controller
keeps)."""

FAULTS_LIMIT, MAX_FAULTS_LIMIT = 1000, 5000
"""Episodes per /api/faults answer unless ``limit`` asks for another number, and the most it may ask for."""

AUDIT_LIMIT, MAX_AUDIT_LIMIT = 1000, 10_000
"""Write records per /api/audit answer unless ``limit`` asks for another number, and the most it may ask for."""


class BadRequest(Exception):
    """A query parameter that cannot be used; answered with 400 and the message."""


def _error(status: int, message: str):
    return jsonify({"error": message}), status


def _action_answer(result: actions.ActionResult, data_key: str | None = None):
    """An action's answer: its status and message when refused, else ok with its message and, under
    ``data_key``, what it made or changed."""
    if not result.ok:
        return _error(result.status, result.message)
    body = {"ok": True, "message": result.message}
    if data_key is not None:
        body[data_key] = result.data
    return jsonify(body)


def _time_param(name: str, default: datetime | None = None) -> datetime:
    text = request.args.get(name)
    if text is None:
        if default is None:
            raise BadRequest(f"missing query parameter {name!r} (ISO 8601 time, e.g. 2026-07-01T00:00:00Z)")
        return default
    ts = _parse_time(text)
    if ts is None:
        raise BadRequest(f"{name}={text!r} is not an ISO 8601 time")
    if ts.tzinfo is None:
        raise BadRequest(f"{name}={text!r} has no time zone; add Z or an offset such as +08:00")
    return ts.astimezone(UTC)


def _parse_time(text: str) -> datetime | None:
    """An ISO 8601 time, or None; an offset whose "+" arrived as a space (not URL-encoded) is read as "+"."""
    candidates = [text]
    if len(text) > 6 and text[-6] == " ":
        candidates.append(f"{text[:-6]}+{text[-5:]}")
    for candidate in candidates:
        try:
            return datetime.fromisoformat(candidate)
        except ValueError:
            pass
    return None


def _time_or_day_param(name: str, park_timezone: str) -> datetime:
    """A required time: an ISO date means midnight in the park's time zone (as the days of /api/energy),
    a date and time needs its zone (as /api/readings)."""
    text = request.args.get(name)
    if text is None:
        raise BadRequest(f"missing query parameter {name!r} (ISO 8601 date, e.g. 2026-07-01 for midnight in the "
                         "park's time zone, or time with its zone, e.g. 2026-07-01T08:00:00+08:00)")
    try:
        day = date.fromisoformat(text)
    except ValueError:
        return _time_param(name)
    return datetime.combine(day, time.min, tzinfo=ZoneInfo(park_timezone)).astimezone(UTC)


def _list_param(name: str) -> list[str]:
    """The values of a query parameter given repeated or comma-separated (``?state=active,unacknowledged``)."""
    return [item.strip() for value in request.args.getlist(name) for item in value.split(",") if item.strip()]


def _whole_param(name: str, default: int, low: int, high: int | None) -> int:
    """A whole-number query parameter from ``low`` to ``high`` (None: no upper bound)."""
    text = request.args.get(name, str(default))
    try:
        value = int(text)
        if value < low or (high is not None and value > high):
            raise ValueError
    except ValueError:
        bound = f"from {low} to {high}" if high is not None else f"of at least {low}"
        raise BadRequest(f"{name}={text!r} must be a whole number {bound}") from None
    return value


def _range_params(ctx: DashboardContext) -> tuple[datetime, datetime]:
    end = _time_param("to", ctx.data_end())
    start = _time_param("from", end - timedelta(days=1))
    if end <= start:
        raise BadRequest("'to' must be after 'from'")
    return start, end


def create_api(ctx: DashboardContext) -> Blueprint:
    """The /api blueprint over one dashboard context."""
    api = Blueprint("api", __name__, url_prefix="/api")

    @api.errorhandler(BadRequest)
    def bad_request(exc: BadRequest):
        return _error(400, str(exc))

    @api.get("/status")
    def status():
        """The history store's health under a live run; null over a history alone (``parktwin dashboard``)."""
        storage = ctx.providers.storage
        return jsonify({"now_utc": ctx.now_utc().isoformat(), "storage": storage() if storage else None})

    @api.errorhandler(TooManyRequests)
    def locked(exc: TooManyRequests):
        """HTTP Basic credentials of a user name or client address locked by too many wrong passwords."""
        body, status = _error(429, exc.description)
        return body, status, {"Retry-After": str(exc.retry_after)}

    @api.get("/park")
    def park():
        p = ctx.park
        return jsonify({
            "name": p.name,
            "site": p.site.model_dump(),
            "buildings": [{
                "id": b.id, "name": b.name,
                "assets": [{"id": a.id, "kind": a.kind, "name": a.name,
                            "points": [pid for pid, pt in p.points.items() if pt.asset_id == a.id]}
                           for a in b.assets],
            } for b in p.buildings],
        })

    @api.get("/points")
    def points():
        return jsonify({"now_utc": ctx.now_utc().isoformat(), "points": ctx.live_points()})

    @api.get("/live")
    def live():
        """Latest power per subsystem (kW), from live state."""
        snapshot = ctx.live.snapshot()
        newest = max((r.ts_utc for r in snapshot.values()), default=None)
        wide = {pid: r.value for pid, r in snapshot.items()}
        return jsonify({
            "ts_utc": newest.isoformat() if newest else None,
            "points_live": len(snapshot),
            "power_kw": {k: round(v, 3) for k, v in subsystem_power_kw(ctx.park, wide).items()},
        })

    @api.get("/readings")
    def readings():
        ids = list(dict.fromkeys(pid for value in request.args.getlist("point") for pid in value.split(",") if pid))
        if not ids:
            raise BadRequest("give at least one point: ?point=ID (repeat it or separate ids with commas)")
        unknown = [pid for pid in ids if pid not in ctx.park.points]
        if unknown:
            raise BadRequest(f"unknown point(s): {', '.join(unknown)}")
        start, end = _range_params(ctx)
        limit = _whole_param("limit", READINGS_LIMIT, 1, MAX_READINGS_LIMIT)
        cursor = request.args.get("cursor")
        interval_text = request.args.get("interval_s")
        interval_s = None
        if interval_text is not None:
            try:
                interval_s = int(interval_text)
                if interval_s <= 0:
                    raise ValueError
            except ValueError:
                raise BadRequest(f"interval_s={interval_text!r} must be a positive whole number of seconds") \
                    from None
        try:
            page = raw_page(ctx.history, ids, start, end, limit, cursor) if interval_s is None else \
                bucket_page(ctx.history, ids, start, end, interval_s, limit, cursor)
        except ValueError:
            raise BadRequest(f"cursor={cursor!r} is not the 'next' of an earlier /api/readings answer with "
                             "the same points, range and interval_s") from None
        return jsonify({"from": start.isoformat(), "to": end.isoformat(), "interval_s": interval_s,
                        "limit": limit, "rows": page.rows, "truncated": page.next_cursor is not None,
                        "next": page.next_cursor, "points": page.points})

    @api.get("/energy")
    def energy():
        """Every energy KPI of today, this week or custom days from the KPI engine, with coverage and flows,
        and of the period it is compared with like for like (``compare``: week, month or year)."""
        kind = request.args.get("period", "today")
        try:
            first = request.args.get("first_day")
            last = request.args.get("last_day")
            chosen = choose_period(ctx.park, kind, ctx.data_end(),
                                   datetime.fromisoformat(first).date() if first else None,
                                   datetime.fromisoformat(last).date() if last else None,
                                   request.args.get("compare", "week"))
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
        return jsonify({"period": chosen.label, "from": chosen.start.isoformat(), "to": chosen.end.isoformat(),
                        "partial": chosen.partial,
                        "compared_with": {"label": chosen.previous_label, "from": chosen.previous_start.isoformat(),
                                          "to": chosen.previous_end.isoformat()},
                        "current": ctx.kpi.energy(chosen.start, chosen.end),
                        "previous": ctx.kpi.energy(chosen.previous_start, chosen.previous_end)})

    @api.get("/power")
    def power():
        """Mean power per subsystem (kW) in buckets of interval_s (default 900) over from..to."""
        start, end = _range_params(ctx)
        try:
            interval_s = int(request.args.get("interval_s", 900))
            if interval_s <= 0:
                raise ValueError
        except ValueError:
            raise BadRequest("interval_s must be a positive whole number of seconds") from None
        frame = subsystem_power(ctx.park, ctx.history, start, end, interval_s)
        return jsonify({"ts_utc": [t.isoformat() for t in frame.index],
                        "power_kw": {c: [finite_or_none(v) for v in frame[c]] for c in frame.columns}})

    @api.get("/kpi")
    def kpi():
        """The headline KPIs of from..to, labelled, each with its coverage."""
        start, end = _range_params(ctx)
        return jsonify({"from": start.isoformat(), "to": end.isoformat(), "kpis": ctx.kpi.kpis(start, end)})

    @api.get("/faults")
    def faults():
        """The alarm console: episodes overlapping from..to, filtered and newest first, a page at a time."""
        if ctx.providers.faults is None:
            return _error(503, f"faults are {MISSING['faults']}")
        start, end = _range_params(ctx)
        try:
            which = alarm_filter(_list_param("priority"), _list_param("state"), _list_param("asset"),
                                 _list_param("rule"), start, end)
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
        offset = _whole_param("offset", 0, 0, None)
        limit = _whole_param("limit", FAULTS_LIMIT, 1, MAX_FAULTS_LIMIT)
        page = ctx.providers.faults.console(which, offset, limit)
        following = offset + len(page["faults"])
        return jsonify({"from": start.isoformat(), "to": end.isoformat(),
                        "faults": page["faults"], "total": page["total"], "offset": offset, "limit": limit,
                        "next_offset": following if following < page["total"] else None,
                        "truncated": following < page["total"],
                        "alarm_count": ctx.providers.faults.alarm_count(),
                        "shelved": ctx.providers.faults.shelves(),
                        "fault_kpis_by_kind": ctx.providers.faults.fault_kpis(start, end),
                        "alarm_system": ctx.providers.faults.alarm_kpis(start, end)})

    @api.get("/audit")
    def audit():
        """The write audit log: every write attempt in [from, to), oldest first, a page at a time."""
        start = _time_or_day_param("from", ctx.park.site.timezone)
        end = _time_or_day_param("to", ctx.park.site.timezone)
        if end <= start:
            raise BadRequest("'to' must be after 'from'")
        limit_text = request.args.get("limit", str(AUDIT_LIMIT))
        try:
            limit = int(limit_text)
            if not 1 <= limit <= MAX_AUDIT_LIMIT:
                raise ValueError
        except ValueError:
            raise BadRequest(f"limit={limit_text!r} must be a whole number from 1 to {MAX_AUDIT_LIMIT}") from None
        cursor = request.args.get("cursor")
        try:
            page = ctx.history.write_records(start, end, limit, after=cursor)
        except ValueError:
            raise BadRequest(f"cursor={cursor!r} is not the 'next' of an earlier /api/audit answer") from None
        return jsonify({"from": start.isoformat(), "to": end.isoformat(), "limit": limit,
                        "writes": [{"ts_utc": r.ts_utc.isoformat(), "who": r.who, "point_id": r.point_id,
                                    "value": finite_or_none(r.value), "requested": r.requested, "result": r.result}
                                   for r in page.records],
                        "truncated": page.next_cursor is not None, "next": page.next_cursor})

    @api.get("/plan")
    def plan():
        if ctx.providers.plan is None:
            return _error(503, f"dispatch plans are {MISSING['plan']}")
        current = ctx.providers.plan.plan()
        if current is None:
            state = ctx.providers.plan.state()
            return _error(404, "no dispatch plan has been made yet" + (
                "; one is being made" if state["solving"] else f"; the last attempt failed: {state['error']}"
                if state["error"] else ""))
        return jsonify(current)

    @api.get("/plan.csv")
    def plan_csv():
        if ctx.providers.plan is None:
            return _error(503, f"dispatch plans are {MISSING['plan']}")
        text = ctx.providers.plan.csv()
        if text is None:
            return _error(404, "no dispatch plan has been made yet")
        plan_id = ctx.providers.plan.plan()["id"]
        return Response(text, mimetype="text/csv",
                        headers={"Content-Disposition": f'attachment; filename="plan-{plan_id}.csv"'})

    @api.post("/plan/approve")
    def approve():
        plan_id = _posted_id('give the plan to approve: {"id": "<id from /api/plan>"}')
        result = actions.approve_plan(ctx, request, plan_id)
        return _action_answer(result, "approval")

    @api.get("/plan/rounds")
    def plan_rounds():
        """Dispatch rounds (each control step's writes or releases), oldest first, from ``from`` on."""
        if ctx.providers.plan is None:
            return _error(503, f"dispatch plans are {MISSING['plan']}")
        since = _time_param("from") if "from" in request.args else None
        offset = _whole_param("offset", 0, 0, None)
        limit = _whole_param("limit", MAX_ROUNDS_LIMIT, 1, MAX_ROUNDS_LIMIT)
        rounds = ctx.providers.plan.rounds(since)
        following = offset + limit
        return jsonify({"from": since.isoformat() if since else None, "rounds": rounds[offset:following],
                        "offset": offset, "limit": limit, "truncated": following < len(rounds),
                        "next_offset": following if following < len(rounds) else None})

    @api.post("/plan/suspend")
    def suspend():
        result = actions.suspend_plan(ctx, request)
        return _action_answer(result, "approval")

    @api.post("/plan/replan")
    def replan():
        result = actions.replan(ctx, request)
        return _action_answer(result)

    @api.post("/faults/ack")
    def acknowledge():
        episode_id = _posted_id('give the episode to acknowledge: {"id": "<id from /api/faults>"}')
        result = actions.acknowledge_fault(ctx, request, episode_id)
        return _action_answer(result, "fault")

    @api.post("/faults/comment")
    def comment():
        episode_id = _posted_id('give the episode to comment on: {"id": "<id from /api/faults>", "text": "..."}')
        result = actions.comment_fault(ctx, request, episode_id, _posted("text"))
        return _action_answer(result, "comment")

    @api.post("/faults/shelve")
    def shelve():
        episode_id = _posted_id('give an episode of the alarm to shelve: {"id": "<id from /api/faults>", '
                                '"minutes": 60, "reason": "..."}')
        result = actions.shelve_alarm(ctx, request, episode_id, _posted("minutes"), _posted("reason"))
        return _action_answer(result, "shelved")

    @api.post("/points/<point_id>/write")
    def write(point_id: str):
        raw_value = _posted("value")
        result = actions.write_point(ctx, request, point_id, raw_value)
        return _action_answer(result)

    return api


def _posted(name: str):
    """A field of a POST's JSON body (the only kind :mod:`dashboard.web_security` lets through); None when
    absent."""
    body = request.get_json(silent=True)
    return body.get(name) if isinstance(body, dict) else None


def _posted_id(hint: str) -> str:
    """The non-empty ``id`` of a POST body; 400 with ``hint`` otherwise."""
    value = _posted("id")
    if not isinstance(value, str) or not value:
        raise BadRequest(hint)
    return value
