"""The ParkTwin web dashboard (Dash + dash-bootstrap-components) and its JSON endpoints.

First page: live power per subsystem. The app only reads the twin (live state
and history); it changes nothing.
"""

from __future__ import annotations

from datetime import timedelta

import dash_bootstrap_components as dbc
import pandas as pd
import plotly.graph_objects as go
from dash import Dash, Input, Output, dcc, html
from flask import jsonify

from twin.history import History
from twin.live import LiveState
from twin.park import Park
from twin.subsystems import LOAD_SUBSYSTEMS, power_points, subsystem_power_kw

REFRESH_MS = 2000
CHART_WINDOW = timedelta(hours=12)
SUBSYSTEM_COLOURS = {
    "chillers": "#1f77b4", "lighting": "#ffbf00", "elevators": "#8c564b", "ev": "#2ca02c", "other": "#7f7f7f",
}
CARD_ITEMS = [
    ("grid", "Grid import", "kW"), ("pv", "PV", "kW"), ("battery", "Battery (+ discharge)", "kW"),
    ("chillers", "Chillers", "kW"), ("lighting", "Lighting", "kW"), ("elevators", "Elevators", "kW"),
    ("ev", "EV charging", "kW"), ("other", "Other loads", "kW"),
]


def live_power(park: Park, live: LiveState) -> dict:
    """Latest power per subsystem (kW) and the timestamp of the newest reading."""
    snapshot = live.snapshot()
    values = {pid: r.value for pid, r in snapshot.items()}
    newest = max((r.ts_utc for r in snapshot.values()), default=None)
    return {
        "ts_utc": newest.isoformat() if newest else None,
        "points_live": len(snapshot),
        "power_kw": {k: round(v, 3) for k, v in subsystem_power_kw(park, values).items()},
    }


def power_history(park: Park, history: History, live: LiveState) -> pd.DataFrame:
    """Per-subsystem power (kW) over the chart window, 1-minute means, from history."""
    groups = power_points(park)
    newest = live.snapshot()
    if not newest:
        return pd.DataFrame()
    end = max(r.ts_utc for r in newest.values()) + timedelta(minutes=1)
    ids = [pid for name in (*LOAD_SUBSYSTEMS, "building_meters", "pv", "battery", "grid") for pid in groups[name]]
    wide = history.resample(ids, end - CHART_WINDOW, end, interval_s=60, agg="mean")
    if wide.empty:
        return pd.DataFrame()
    rows = [subsystem_power_kw(park, {k: v for k, v in row.items() if pd.notna(v)})
            for row in wide.to_dict("records")]
    return pd.DataFrame(rows, index=wide.index)


def power_figure(frame: pd.DataFrame, tz: str) -> go.Figure:
    figure = go.Figure()
    if not frame.empty:
        x = frame.index.tz_convert(tz)
        for name in (*LOAD_SUBSYSTEMS, "other"):
            figure.add_trace(go.Scatter(x=x, y=frame[name], name=name, stackgroup="loads", mode="lines",
                                        line={"width": 0.5, "color": SUBSYSTEM_COLOURS[name]}))
        figure.add_trace(go.Scatter(x=x, y=frame["pv"], name="PV", mode="lines", line={"color": "#ff7f0e"}))
        figure.add_trace(go.Scatter(x=x, y=frame["grid"], name="grid import", mode="lines",
                                    line={"color": "#d62728", "dash": "dot"}))
    figure.update_layout(margin={"l": 40, "r": 10, "t": 30, "b": 30}, height=420, yaxis_title="kW",
                         legend={"orientation": "h"}, uirevision="keep")
    return figure


def create_app(park: Park, live: LiveState, history: History) -> Dash:
    """Build the Dash app over a park's live state and history."""
    app = Dash(__name__, external_stylesheets=[dbc.themes.BOOTSTRAP], title="ParkTwin")
    cards = dbc.Row([
        dbc.Col(dbc.Card(dbc.CardBody([
            html.Div(label, className="text-muted small"),
            html.H4(id=f"card-{key}", children="–", className="mb-0"),
            html.Span(unit, className="small text-muted"),
        ])), xs=6, md=3, className="mb-3")
        for key, label, unit in CARD_ITEMS
    ])
    app.layout = dbc.Container([
        dbc.NavbarSimple(brand=f"ParkTwin · {park.name}", color="dark", dark=True, className="mb-3"),
        html.Div(id="sim-time", className="mb-2 text-muted"),
        cards,
        dbc.Card(dbc.CardBody([html.H5("Power by subsystem (last 12 h)"), dcc.Graph(id="power-chart")])),
        dcc.Interval(id="tick", interval=REFRESH_MS),
    ], fluid=True)

    @app.callback(
        [Output(f"card-{key}", "children") for key, _, _ in CARD_ITEMS]
        + [Output("sim-time", "children"), Output("power-chart", "figure")],
        Input("tick", "n_intervals"),
    )
    def refresh(_):
        now = live_power(park, live)
        card_values = [f"{now['power_kw'][key]:,.0f}" if now["ts_utc"] else "–" for key, _, _ in CARD_ITEMS]
        when = (pd.Timestamp(now["ts_utc"]).tz_convert(park.site.timezone).strftime("%Y-%m-%d %H:%M %Z")
                if now["ts_utc"] else "waiting for the first readings")
        return card_values + [f"Park time {when} · {now['points_live']} points live",
                              power_figure(power_history(park, history, live), park.site.timezone)]

    @app.server.route("/api/live")
    def api_live():
        return jsonify(live_power(park, live))

    return app
