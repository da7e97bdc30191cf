"""Faults: active faults (with acknowledgement) and the episodes of the last 7 days, from the energy models'
fault rules (issue 4); says so while they are missing.

Acknowledging goes through :func:`dashboard.actions.acknowledge_fault` (operator or admin).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import dash
import dash_bootstrap_components as dbc
import flask
from dash import ALL, Dash, Input, Output, dcc, html, no_update

from dashboard import actions
from dashboard.components import local_time_text, not_available, page_header
from dashboard.context import DashboardContext
from dashboard.pages.tables import records_table
from dashboard.providers import MISSING

PATH = "/faults"
WINDOW = timedelta(days=7)
REFRESH_MS = 10_000
SEVERITY_COLOURS = {"info": "info", "warning": "warning", "critical": "danger"}


def layout(ctx: DashboardContext, **_query) -> html.Div:
    header = page_header("Faults", "active faults, their acknowledgement, and the fault episodes of the last 7 days")
    if ctx.providers.faults is None:
        return html.Div([header, not_available("Faults", MISSING["faults"])])
    active, episodes = _tables(ctx)
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
            html.H5("Fault episodes of the last 7 days", className="card-title"),
            html.Div(episodes, id="faults-episodes"),
        ])),
        dcc.Interval(id="faults-tick", interval=REFRESH_MS),
    ])


def _tables(ctx: DashboardContext):
    data_end = ctx.data_end()
    # up to the twin's clock as well: the detector saves an episode before history has flushed its readings
    episodes = ctx.providers.faults.faults(data_end - WINDOW, max(data_end, ctx.now_utc()))
    active = [e for e in episodes if e["end"] is None]
    tz = ctx.park.site.timezone
    shown = [{"asset": e["asset_id"], "rule": e["rule_id"], "point": e["point_id"],
              f"start ({tz})": _local(e["start"], tz),
              f"end ({tz})": _local(e["end"], tz) if e["end"] else "active", "severity": e["severity"],
              "evidence": e["evidence"], "acknowledged by": e["acknowledged_by"],
              "acknowledged at": _local(e["acknowledged_at"], tz) if e["acknowledged_at"] else None}
             for e in reversed(episodes)]  # newest first
    return _active_table(active, tz), records_table(shown, "faults-table", "no faults in the last 7 days")


def _local(iso: str | None, tz: str) -> str:
    return local_time_text(datetime.fromisoformat(iso), tz) if iso else "–"


def _active_table(active: list[dict], tz: str):
    if not active:
        return html.Div("no active faults", className="text-muted", id="active-faults-table")
    rows = [html.Tr([
        html.Td(e["asset_id"]), html.Td(e["rule_id"]), html.Td(e["point_id"] or "–"),
        html.Td(_local(e["start"], tz)),
        html.Td(dbc.Badge(e["severity"], color=SEVERITY_COLOURS.get(e["severity"], "secondary"))),
        html.Td(e["evidence"], className="small"),
        html.Td(html.Span(f"{e['acknowledged_by']} at {_local(e['acknowledged_at'], tz)}", className="acknowledged")
                if e["acknowledged_by"] else
                dbc.Button("Acknowledge", id={"type": "ack-fault", "index": e["id"]}, size="sm",
                           color="warning", outline=True, className="ack-button")),
    ], **{"data-fault": e["id"]}) for e in active]
    return dbc.Table([html.Thead(html.Tr([html.Th(h) for h in (
        "asset", "rule", "point", f"since ({tz})", "severity", "evidence", "acknowledged")])), html.Tbody(rows)],
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
                  Input("faults-tick", "n_intervals"), Input("faults-ack-result", "children"),
                  prevent_initial_call=True)
    def refresh(_, __):
        return _tables(ctx)
