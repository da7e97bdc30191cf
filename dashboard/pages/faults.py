"""Faults: the alarm console (ISA-18.2 lifecycle, DOMAIN.md "Alarm management") over the stored fault episodes,
the selected episode's comments and shelving, a timeline of the listed episodes, and fault KPIs of the last 7
days; says so while the energy models are missing.

The console filters (priority, state, asset, rule, days) and pages on the server: the store selects one page
of :data:`PAGE_SIZE` episodes in SQL, so the page stays light however many episodes are stored. Filters can
be given in the URL (``/faults?state=active,unacknowledged&priority=critical&from=2026-07-01``). Acknowledging,
commenting and shelving go through :mod:`dashboard.actions` (operator or admin).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import dash
import dash_bootstrap_components as dbc
import flask
from dash import ALL, Dash, Input, Output, State, dcc, html, no_update

from dashboard import actions
from dashboard.alarm_health import alarm_health_card
from dashboard.components import data_attributes, local_time_text, not_available, page_header
from dashboard.context import DashboardContext
from dashboard.pages.tables import records_table
from dashboard.providers import MISSING
from twin.fault_episodes import AlarmFilter, Priority, alarm_filter

PATH = "/faults"
KPI_WINDOW = timedelta(days=7)
REFRESH_MS = 10_000
KPI_REFRESH_MS = 60_000
"""The KPIs read every episode of the week, so they refresh less often than the console's page."""
PAGE_SIZE = 50
PRIORITY_COLOURS = {"low": "info", "medium": "warning", "high": "orange", "critical": "danger"}
ANY = "any"
"""The value of a filter's "any" choice (the empty value belongs to the select's disabled placeholder)."""
STATE_CHOICES = (("any state", ANY), ("active, unacknowledged", "active,unacknowledged"), ("active", "active"),
                 ("unacknowledged", "unacknowledged"), ("cleared", "cleared"), ("shelved", "shelved"),
                 ("suppressed", "suppressed"))
"""The state filter's choices: label, value (comma-separated :class:`AlarmState` names that must all hold)."""
SHELVE_CHOICES_MIN = (("15 min", 15), ("1 h", 60), ("4 h", 240), ("8 h", 480), ("24 h", 1440), ("7 days", 10080))
SELECTS = ("priority", "state", "asset", "rule")
"""The filters chosen from a list; the URL names them so too (``?priority=critical``)."""
FILTERS = ("faults-priority", "faults-state", "faults-asset", "faults-rule", "faults-from", "faults-to")
"""Ids of the filter controls, in the order :func:`console_filter` takes their values."""


def layout(ctx: DashboardContext, **query) -> html.Div:
    header = page_header("Faults", "the alarm console: fault episodes by priority, state, asset, rule and time, "
                                   "with acknowledgement, comments and shelving")
    if ctx.providers.faults is None:
        return html.Div([header, not_available("Faults", MISSING["faults"])])
    chosen = {name: str(query.get(name, ANY if name in SELECTS else "")) for name in (*SELECTS, "from", "to")}
    try:
        which = console_filter(ctx, *chosen.values())
    except ValueError as exc:
        which = AlarmFilter()
        chosen = {name: ANY if name in SELECTS else "" for name in chosen}
        warning = dbc.Alert(f"filter from the address ignored: {exc}", color="warning", className="py-2")
    else:
        warning = None
    table, info, total = _console(ctx, which, 0)
    return html.Div([
        header,
        warning,
        dbc.Card(dbc.CardBody([
            html.H5("Alarm console", className="card-title"),
            _filter_row(ctx, chosen),
            html.Div("Acknowledging (active or cleared alarms), commenting and shelving record your name and the "
                     "time; they need the operator role. Details opens an episode's comments and shelving.",
                     className="text-muted small mb-2"),
            html.Div([
                dbc.Button("Previous", id="faults-prev", size="sm", color="secondary", outline=True,
                           className="me-2"),
                dbc.Button("Next", id="faults-next", size="sm", color="secondary", outline=True, className="me-3"),
                html.Span(info, id="faults-page-info", className="small"),
            ], className="mb-2"),
            html.Div(table, id="faults-console"),
            html.Div(id="faults-ack-result", className="mt-2"),
        ]), className="mb-3"),
        dbc.Card(dbc.CardBody([
            html.H5("Selected episode", className="card-title"),
            html.Div(_detail(ctx, None), id="faults-detail"),
            html.Div(id="faults-action-result", className="mt-2"),
        ]), className="mb-3"),
        dbc.Card(dbc.CardBody([
            html.H5("Timeline of the episodes listed", className="card-title"),
            # drawn by a callback once the console is up: plotly's script is large and the console comes first
            html.Div(html.Div("drawing…", className="text-muted"), id="faults-timeline-box"),
        ]), className="mb-3"),
        # drawn by the KPI callback: it reads every episode of the week
        html.Div(id="faults-alarm-health"),
        dbc.Card(dbc.CardBody([
            html.H5("Fault KPIs by asset kind, last 7 days", className="card-title"),
            html.Div(html.Div("computing…", className="text-muted"), id="faults-kpis"),
        ])),
        dcc.Store(id="faults-offset", data=0),
        dcc.Store(id="faults-total", data=total),
        dcc.Store(id="faults-selected", data=None),
        dcc.Interval(id="faults-tick", interval=REFRESH_MS),
        dcc.Interval(id="faults-kpi-tick", interval=KPI_REFRESH_MS),
    ])


def console_filter(ctx: DashboardContext, priority: str | None, state: str | None, asset: str | None,
                   rule: str | None, first_day: str | None, last_day: str | None) -> AlarmFilter:
    """The filter the console's controls (or the URL) choose: comma-separated priorities and states, one asset,
    one rule, and the days from ``first_day`` to ``last_day`` (ISO dates in the park's time zone, both
    included); :data:`ANY` or nothing does not filter. Raises ValueError naming what cannot be read."""
    tz = ZoneInfo(ctx.park.site.timezone)

    def midnight(text: str | None, days_after: int, name: str) -> datetime | None:
        if not text:
            return None
        try:
            day = date.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{name} {text!r} is not a date YYYY-MM-DD") from None
        return datetime.combine(day + timedelta(days=days_after), time.min, tzinfo=tz)

    def names(text: str | None) -> list[str]:
        return [] if not text or text == ANY else text.split(",")

    return alarm_filter(names(priority), names(state), names(asset), names(rule), midnight(first_day, 0, "from"),
                        midnight(last_day, 1, "to"))


def _filter_row(ctx: DashboardContext, chosen: dict[str, str]) -> dbc.Row:
    assets = sorted({a.id for _, a in ctx.park.iter_assets()} | ({chosen["asset"]} - {ANY}))
    rules = sorted(set(ctx.providers.installed_faults().rule_ids()) | ({chosen["rule"]} - {ANY}))

    def select(control_id: str, label: str, options: list[tuple[str, str]], value: str) -> dbc.Col:
        return dbc.Col([dbc.Label(label, html_for=control_id, className="small mb-0"),
                        dbc.Select(id=control_id, options=[{"label": text, "value": v} for text, v in options],
                                   value=value, size="sm")], md=2)

    return dbc.Row([
        select("faults-priority", "priority", [("any priority", ANY), ("high and critical", "high,critical")]
               + [(p.label, p.label) for p in reversed(Priority)], chosen["priority"]),
        select("faults-state", "state", list(STATE_CHOICES), chosen["state"]),
        select("faults-asset", "asset", [("any asset", ANY)] + [(a, a) for a in assets], chosen["asset"]),
        select("faults-rule", "rule", [("any rule", ANY)] + [(r, r) for r in rules], chosen["rule"]),
        dbc.Col([dbc.Label(f"from day ({ctx.park.site.timezone})", html_for="faults-from", className="small mb-0"),
                 dbc.Input(id="faults-from", type="date", value=chosen["from"], size="sm", debounce=True)], md=2),
        dbc.Col([dbc.Label("to day (included)", html_for="faults-to", className="small mb-0"),
                 dbc.Input(id="faults-to", type="date", value=chosen["to"], size="sm", debounce=True)], md=2),
    ], className="mb-2 g-2")


def _console(ctx: DashboardContext, which: AlarmFilter, offset: int):
    """The console table of one page, the text saying which rows it shows, and how many match."""
    page = ctx.providers.installed_faults().console(which, offset, PAGE_SIZE)
    listed, total = page["faults"], page["total"]
    info = (f"episodes {offset + 1:,}–{offset + len(listed):,} of {total:,}, newest first" if listed else
            f"no episode matches ({total:,} in all)" if offset == 0 else f"past the last of {total:,} episodes")
    return _table(listed, ctx.park.site.timezone), info, total


def _local(iso: str | None, tz: str) -> str:
    return local_time_text(datetime.fromisoformat(iso), tz) if iso else "–"


def _table(records: list[dict], tz: str):
    if not records:
        return html.Div("no fault episodes match", className="text-muted", id="faults-table")
    rows = []
    for e in records:
        status = [dbc.Badge("suppressed", color="secondary", className="me-1 suppressed")] if e["suppressed_by"] \
            else []
        if e["shelved_until_utc"]:
            status.append(dbc.Badge(f"shelved until {_local(e['shelved_until_utc'], tz)}", color="dark",
                                    className="me-1 shelved"))
        rows.append(html.Tr([
            html.Td(dbc.Badge(e["priority"], color=PRIORITY_COLOURS.get(e["priority"], "secondary"))),
            html.Td(e["asset_id"], className="asset"), html.Td(e["rule_id"], className="rule"),
            html.Td(e["point_id"] or "–"),
            html.Td(_local(e["start_utc"], tz)), html.Td(_local(e["end_utc"], tz) if e["end_utc"] else "active"),
            html.Td(html.Span(f"{e['acknowledged_by']} at {_local(e['acknowledged_utc'], tz)}",
                              className="acknowledged") if e["acknowledged_by"] else
                    dbc.Button("Acknowledge", id={"type": "ack-fault", "index": e["id"]}, size="sm",
                               color="warning", outline=True, className="ack-button")),
            html.Td(status), html.Td(e["evidence"], className="small"),
            html.Td(len(e["comments"]) or ""),
            html.Td(dbc.Button("Details", id={"type": "fault-details", "index": e["id"]}, size="sm",
                               color="secondary", outline=True, className="details-button")),
        ], **data_attributes(fault=e["id"])))
    return dbc.Table([html.Thead(html.Tr([html.Th(h) for h in (
        "priority", "asset", "rule", "point", f"start ({tz})", "end", "acknowledged", "status", "evidence",
        "comments", "")])), html.Tbody(rows)], id="faults-table", size="sm", hover=True, responsive=True)


def _detail(ctx: DashboardContext, episode_id: str | None):
    """The selected episode: what it is, its comments, and the forms to comment on it and shelve its alarm."""
    if episode_id is None:
        return html.Div("choose Details on an episode of the console", className="text-muted")
    record = ctx.providers.installed_faults().episode(episode_id)
    if record is None:
        return html.Div(f"episode {episode_id} is no longer stored", className="text-muted")
    tz = ctx.park.site.timezone
    alarm = f"{record['rule_id']} on {record['asset_id']}" + (f" ({record['point_id']})" if record["point_id"] else "")
    comments = [html.Li([html.Strong(c["who"]), f" at {_local(c['at_utc'], tz)}: ", c["text"]])
                for c in record["comments"]]
    return html.Div([
        html.Div([html.Strong(alarm), f" from {_local(record['start_utc'], tz)}",
                  f" to {_local(record['end_utc'], tz)}" if record["end_utc"] else " (active)",
                  f"; shelved until {_local(record['shelved_until_utc'], tz)}" if record["shelved_until_utc"] else ""],
                 id="faults-detail-title", **data_attributes(fault=episode_id)),
        html.Ul(comments, id="faults-comments", className="small mt-2") if comments else
        html.Div("no comments yet", className="text-muted small mt-2", id="faults-comments"),
        dbc.Row([
            dbc.Col(dbc.Textarea(id="faults-comment-text", placeholder="comment", rows=2, size="sm"), md=6),
            dbc.Col(dbc.Button("Add comment", id="faults-comment-add", size="sm", color="primary"), md=2),
        ], className="g-2 mb-2"),
        dbc.Row([
            dbc.Col(dbc.Select(id="faults-shelve-minutes", value="60", size="sm",
                               options=[{"label": text, "value": str(m)} for text, m in SHELVE_CHOICES_MIN]), md=2),
            dbc.Col(dbc.Input(id="faults-shelve-reason", placeholder="why shelve this alarm", size="sm"), md=4),
            dbc.Col(dbc.Button("Shelve alarm", id="faults-shelve", size="sm", color="dark"), md=2),
        ], className="g-2"),
        html.Div("Shelving hides this alarm (rule, asset, point) from the count and from notifications for the "
                 "time chosen; its new episodes are still recorded.", className="text-muted small mt-1"),
    ])


def timeline_figure(episodes: list[dict], end: datetime, tz: str) -> dict:
    """One bar per episode on its asset's row, from start to end (or to ``end`` while active), coloured by
    priority; a plain figure dict (plotly's classes cost more than the data)."""
    traces = []
    for priority, colour in (("low", "#0dcaf0"), ("medium", "#ffc107"), ("high", "#fd7e14"),
                             ("critical", "#dc3545")):
        mine = [e for e in episodes if e["priority"] == priority]
        if not mine:
            continue
        starts = [datetime.fromisoformat(e["start_utc"]) for e in mine]
        ends = [datetime.fromisoformat(e["end_utc"]) if e["end_utc"] else max(end, s) for e, s in zip(mine, starts)]
        traces.append({
            "type": "bar", "orientation": "h", "name": priority, "marker": {"color": colour},
            "y": [e["asset_id"] for e in mine],
            "base": [s.astimezone(ZoneInfo(tz)).isoformat() for s in starts],
            "x": [(f - s).total_seconds() * 1000.0 for s, f in zip(starts, ends)],  # duration, ms on a date axis
            "customdata": [e["rule_id"] for e in mine],
            "hovertemplate": "%{y}: %{customdata}<br>from %{base}<extra></extra>",
        })
    rows = len({e["asset_id"] for e in episodes})
    return {"data": traces, "layout": {
        "barmode": "overlay", "height": 120 + 28 * max(rows, 1), "margin": {"l": 110, "r": 10, "t": 10, "b": 30},
        "xaxis": {"type": "date", "title": f"time ({tz})"}, "yaxis": {"automargin": True},
        "legend": {"orientation": "h"}, "uirevision": "keep",
        "annotations": [] if episodes else [{"text": "no fault episodes", "showarrow": False,
                                             "xref": "paper", "yref": "paper", "x": 0.5, "y": 0.5}]}}


def kpi_table(ctx: DashboardContext):
    """Fault KPIs per asset kind over the last 7 days of data."""
    data_end = ctx.data_end()
    # up to the twin's clock as well: the detector saves an episode before history has flushed its readings
    kpis = ctx.providers.installed_faults().fault_kpis(data_end - KPI_WINDOW, ctx.periods_end())
    rows = [{"asset kind": k["name"], "faults": k["faults"], "hours in fault": f"{k['hours_in_fault']:.2f}",
             "% of time": f"{k['pct_time_in_fault']:.2f}",
             "MTBF (h)": None if k["mtbf_h"] is None else f"{k['mtbf_h']:.1f}",
             "MTTR (h)": None if k["mttr_h"] is None else f"{k['mttr_h']:.2f}",
             "availability (%)": f"{100 * k['availability']:.2f}", "comm losses": k["comm_losses"]}
            for k in sorted(kpis, key=lambda k: (-k["hours_in_fault"], k["name"]))]
    return records_table(rows, "fault-kpis-table", "no fault KPIs")


def _message(result: actions.ActionResult, message_id: str) -> dbc.Alert:
    text = result.message if result.ok else f"refused ({result.status}): {result.message}" + (
        " — sign in first" if result.status == 403 else "")
    return dbc.Alert(text, color="success" if result.ok else "danger", className="py-2 mb-0", id=message_id)


def _clicked() -> bool:
    """True when the callback was triggered by a click (not by buttons drawn anew)."""
    return dash.ctx.triggered_id is not None and bool(dash.ctx.triggered[0]["value"])


def register_callbacks(app: Dash, ctx: DashboardContext) -> None:
    if ctx.providers.faults is None:
        return
    filters = [Input(control, "value") for control in FILTERS]

    @app.callback(Output("faults-offset", "data"), Input("faults-prev", "n_clicks"),
                  Input("faults-next", "n_clicks"), *filters, State("faults-offset", "data"),
                  State("faults-total", "data"), prevent_initial_call=True)
    def turn_page(_prev, _next, *values):
        *_, offset, total = values
        if dash.ctx.triggered_id == "faults-prev":
            return max(0, offset - PAGE_SIZE)
        if dash.ctx.triggered_id == "faults-next":
            return offset + PAGE_SIZE if offset + PAGE_SIZE < total else no_update
        return 0  # a filter changed: back to the newest

    @app.callback(Output("faults-console", "children"), Output("faults-page-info", "children"),
                  Output("faults-total", "data"), Input("faults-offset", "data"), Input("faults-tick", "n_intervals"),
                  Input("faults-ack-result", "children"), Input("faults-action-result", "children"),
                  *[State(control, "value") for control in FILTERS], prevent_initial_call=True)
    def refresh(offset, _tick, _ack, _action, *values):
        try:
            which = console_filter(ctx, *values)
        except ValueError as exc:
            return dbc.Alert(str(exc), color="danger", className="py-2", id="faults-table"), "", 0
        return _console(ctx, which, offset)

    @app.callback(Output("faults-timeline-box", "children"), Input("faults-console", "children"),
                  State("faults-offset", "data"), *[State(control, "value") for control in FILTERS])
    def timeline(_console_drawn, offset, *values):
        try:
            which = console_filter(ctx, *values)
        except ValueError:
            return no_update
        listed = ctx.providers.installed_faults().console(which, offset, PAGE_SIZE)["faults"]
        figure = timeline_figure(listed, ctx.periods_end(), ctx.park.site.timezone)
        return dcc.Graph(id="faults-timeline", figure=figure,
                         config={"displaylogo": False})

    @app.callback(Output("faults-kpis", "children"), Output("faults-alarm-health", "children"),
                  Input("faults-kpi-tick", "n_intervals"))
    def kpis(_):
        return kpi_table(ctx), alarm_health_card(ctx, KPI_WINDOW)

    @app.callback(Output("faults-ack-result", "children"), Input({"type": "ack-fault", "index": ALL}, "n_clicks"),
                  prevent_initial_call=True)
    def acknowledge(_clicks):
        if not _clicked():
            return no_update
        return _message(actions.acknowledge_fault(ctx, flask.request, dash.ctx.triggered_id["index"]), "ack-message")

    @app.callback(Output("faults-selected", "data"), Input({"type": "fault-details", "index": ALL}, "n_clicks"),
                  prevent_initial_call=True)
    def select(_clicks):
        return dash.ctx.triggered_id["index"] if _clicked() else no_update

    @app.callback(Output("faults-detail", "children"), Input("faults-selected", "data"),
                  Input("faults-action-result", "children"), prevent_initial_call=True)
    def detail(episode_id, _):
        return _detail(ctx, episode_id)

    @app.callback(Output("faults-action-result", "children"), Input("faults-comment-add", "n_clicks"),
                  Input("faults-shelve", "n_clicks"), State("faults-selected", "data"),
                  State("faults-comment-text", "value"), State("faults-shelve-minutes", "value"),
                  State("faults-shelve-reason", "value"), prevent_initial_call=True)
    def act(_comment, _shelve, episode_id, text, minutes, reason):
        if not _clicked() or episode_id is None:
            return no_update
        if dash.ctx.triggered_id == "faults-comment-add":
            return _message(actions.comment_fault(ctx, flask.request, episode_id, text), "action-message")
        return _message(actions.shelve_alarm(ctx, flask.request, episode_id, minutes, reason), "action-message")
