"""Points (integrator): every point's raw protocol value, engineering value and quality, with a filter
for failing ones.

Device poll statistics (protocol, address, poll period, last success, errors,
latency) and raw values come from the protocol adapters (issue 3); the page
says so while they are missing, and shows engineering values and quality
from live state.
"""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import Dash, Input, Output, dcc, html

from dashboard.components import age_text, format_value, not_available, page_header, quality_badge
from dashboard.context import DashboardContext
from dashboard.pages.tables import records_table
from dashboard.providers import MISSING
from protocols.values import raw_text
from twin.readings import Quality

PATH = "/points"
REFRESH_MS = 5_000


def layout(ctx: DashboardContext, **_query) -> html.Div:
    devices = not_available("Devices", MISSING["devices"]) if ctx.providers.devices is None else \
        records_table(ctx.providers.devices.devices(), "devices-table", "no devices")
    return html.Div([
        page_header("Points", "commissioning view: devices and every point's raw value, engineering value "
                              "and quality"),
        dbc.Card(dbc.CardBody([html.H5("Devices", className="card-title"), devices]), className="mb-3"),
        dbc.Card(dbc.CardBody([
            dbc.Row([
                dbc.Col(html.H5("Points", className="card-title"), width="auto"),
                dbc.Col(dbc.Switch(id="points-failing-only", label="only points not good", value=False),
                        width="auto"),
                dbc.Col(html.Div(id="points-count", className="text-muted small pt-1"), width="auto"),
            ], className="align-items-center"),
            html.Div(id="points-table"),
        ])),
        dcc.Interval(id="points-tick", interval=REFRESH_MS),
    ])


def register_callbacks(app: Dash, ctx: DashboardContext) -> None:
    @app.callback(Output("points-table", "children"), Output("points-count", "children"),
                  Input("points-failing-only", "value"), Input("points-tick", "n_intervals"))
    def refresh(failing_only, _):
        rows = ctx.live_points()
        if failing_only:
            rows = [r for r in rows if r["quality"] != Quality.GOOD.label]
        body = [html.Tr([
            html.Td(r["id"]),
            html.Td(raw_text(r["raw"]), className="raw"),
            html.Td(format_value(r["value"]), className="value"),
            html.Td(r["unit"], className="text-muted"),
            html.Td(quality_badge(Quality.from_label(r["quality"])) if r["quality"] else
                    dbc.Badge("no reading", color="secondary")),
            html.Td(age_text(r["age_s"]) if r["age_s"] is not None else "–", className="text-muted"),
        ], **{"data-point": r["id"]}) for r in rows]
        table = dbc.Table([html.Thead(html.Tr([html.Th(h) for h in ("point", "raw", "engineering value", "unit",
                                                                    "quality", "age")])),
                           html.Tbody(body)], size="sm", hover=True, className="points-table")
        return table, f"{len(rows)} of {len(ctx.park.points)} points"
