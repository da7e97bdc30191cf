"""Faults: active faults (with acknowledgement) and the episodes of the last 7 days, from the energy models'
fault rules (issue 4); says so while they are missing.

Acknowledging goes through :func:`dashboard.actions.acknowledge_fault` (operator or admin).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import dash
import dash_bootstrap_components as dbc
import flask
from dash import ALL, Dash, Input, Output, dcc, html, no_update

from dashboard import actions
from dashboard.alarm_health import alarm_health_card
from dashboard.components import local_time_text, not_available, page_header
from dashboard.context import DashboardContext
from dashboard.pages.tables import records_table
from dashboard.providers import MISSING

PATH = "/faults"
WINDOW = timedelta(days=7)
REFRESH_MS = 10_000
PRIORITY_COLOURS = {"low": "info", "medium": "warning", "high": "orange", "critical": "danger"}


def layout(ctx: DashboardContext, **_query) -> html.Div:
    header = page_header("Faults", "active faults, their acknowledgement, and the fault episodes of the last 7 days")
    if ctx.providers.faults is None:
        return html.Div([header, not_available("Faults", MISSING["faults"])])
    active, episodes, timeline, kpis = _tables(ctx)
    return html.Div([
        header,
        dbc.Card(dbc.CardBody([
            html.H5("Active faults", className="card-title"),
            html.Div("Acknowledging records your name and the time with the fault; it needs the operator role.",
                     className="text-muted small mb-2"),
            html.Div(active, id="faults-active"),
            html.Div(id="faults-ack-result", className="mt-2"),
        ]), className="mb-3"),
        dbc.Card(dbc.CardBody([
            html.H5("Fault timeline, last 7 days", className="card-title"),
            dcc.Graph(id="faults-timeline", figure=timeline, config={"displaylogo": False}),
        ]), className="mb-3"),
        alarm_health_card(ctx, WINDOW),
        dbc.Card(dbc.CardBody([
            html.H5("Fault KPIs by asset kind, last 7 days", className="card-title"),
            html.Div(kpis, id="faults-kpis"),
        ]), className="mb-3"),
        dbc.Card(dbc.CardBody([
            html.H5("Fault episodes of the last 7 days", className="card-title"),
            html.Div(episodes, id="faults-episodes"),
        ])),
        dcc.Interval(id="faults-tick", interval=REFRESH_MS),
    ])


def _tables(ctx: DashboardContext):
    """Active faults, the episode table, the timeline figure and the fault-KPI table of the last 7 days."""
    data_end = ctx.data_end()
    # up to the twin's clock as well: the detector saves an episode before history has flushed its readings
    end = max(data_end, ctx.now_utc())
    start = data_end - WINDOW
    episodes = ctx.providers.faults.faults(start, end)
    active = [e for e in episodes if e["end"] is None]
    tz = ctx.park.site.timezone
    shown = [{"asset": e["asset_id"], "rule": e["rule_id"], "point": e["point_id"],
              f"start ({tz})": _local(e["start"], tz),
              f"end ({tz})": _local(e["end"], tz) if e["end"] else "active", "priority": e["priority"],
              "evidence": e["evidence"], "acknowledged by": e["acknowledged_by"],
              "acknowledged at": _local(e["acknowledged_at"], tz) if e["acknowledged_at"] else None}
             for e in reversed(episodes)]  # newest first
    return (_active_table(active, tz), records_table(shown, "faults-table", "no faults in the last 7 days"),
            timeline_figure(episodes, end, tz), _kpi_table(ctx.providers.faults.fault_kpis(start, end)))


def timeline_figure(episodes: list[dict], end: datetime, tz: str) -> dict:
    """One bar per episode on its asset's row, from start to end (or to ``end`` while active), coloured by
    priority; a plain figure dict (plotly's classes cost more than the data)."""
    traces = []
    for priority, colour in (("low", "#0dcaf0"), ("medium", "#ffc107"), ("high", "#fd7e14"),
                             ("critical", "#dc3545")):
        mine = [e for e in episodes if e["priority"] == priority]
        if not mine:
            continue
        starts = [datetime.fromisoformat(e["start"]) for e in mine]
        ends = [datetime.fromisoformat(e["end"]) if e["end"] else end for e in mine]
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


def _kpi_table(kpis: list[dict]):
    rows = [{"asset kind": k["name"], "faults": k["faults"], "hours in fault": f"{k['hours_in_fault']:.2f}",
             "% of time": f"{k['pct_time_in_fault']:.2f}",
             "MTBF (h)": None if k["mtbf_h"] is None else f"{k['mtbf_h']:.1f}",
             "MTTR (h)": None if k["mttr_h"] is None else f"{k['mttr_h']:.2f}",
             "availability (%)": f"{100 * k['availability']:.2f}", "comm losses": k["comm_losses"]}
            for k in sorted(kpis, key=lambda k: (-k["hours_in_fault"], k["name"]))]
    return records_table(rows, "fault-kpis-table", "no fault KPIs")


def _local(iso: str | None, tz: str) -> str:
    return local_time_text(datetime.fromisoformat(iso), tz) if iso else "–"


def _active_table(active: list[dict], tz: str):
    if not active:
        return html.Div("no active faults", className="text-muted", id="active-faults-table")
    rows = [html.Tr([
        html.Td(e["asset_id"]), html.Td(e["rule_id"]), html.Td(e["point_id"] or "–"),
        html.Td(_local(e["start"], tz)),
        html.Td(dbc.Badge(e["priority"], color=PRIORITY_COLOURS.get(e["priority"], "secondary"))),
        html.Td(e["evidence"], className="small"),
        html.Td(html.Span(f"{e['acknowledged_by']} at {_local(e['acknowledged_at'], tz)}", className="acknowledged")
                if e["acknowledged_by"] else
                dbc.Button("Acknowledge", id={"type": "ack-fault", "index": e["id"]}, size="sm",
                           color="warning", outline=True, className="ack-button")),
    ], **{"data-fault": e["id"]}) for e in active]
    return dbc.Table([html.Thead(html.Tr([html.Th(h) for h in (
        "asset", "rule", "point", f"since ({tz})", "priority", "evidence", "acknowledged")])), html.Tbody(rows)],
        id="active-faults-table", size="sm", hover=True, responsive=True)


def register_callbacks(app: Dash, ctx: DashboardContext) -> None:
    if ctx.providers.faults is None:
        return

    @app.callback(Output("faults-ack-result", "children"), Input({"type": "ack-fault", "index": ALL}, "n_clicks"),
                  prevent_initial_call=True)
    def acknowledge(_clicks):
        trigger = dash.ctx.triggered_id
        if trigger is None or not dash.ctx.triggered[0]["value"]:  # buttons drawn anew, not clicked
            return no_update
        result = actions.acknowledge_fault(ctx, flask.request, trigger["index"])
        text = result.message if result.ok else f"refused ({result.status}): {result.message}" + (
            " — sign in first" if result.status == 403 else "")
        return dbc.Alert(text, color="success" if result.ok else "danger", className="py-2 mb-0", id="ack-message")

    @app.callback(Output("faults-active", "children"), Output("faults-episodes", "children"),
                  Output("faults-timeline", "figure"), Output("faults-kpis", "children"),
                  Input("faults-tick", "n_intervals"), Input("faults-ack-result", "children"),
                  prevent_initial_call=True)
    def refresh(_, __):
        return _tables(ctx)
