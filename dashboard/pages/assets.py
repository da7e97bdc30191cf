"""Assets: the twin as a tree (park, building, asset), each asset's live points, and history charts.

History charts ask the database for bucket means at screen resolution
(:func:`dashboard.history_views.screen_interval_s`), so a month of 1-minute
readings arrives as about 720 points per series.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import cast
from zoneinfo import ZoneInfo

import dash_bootstrap_components as dbc
import flask
import pandas as pd
from dash import Dash, Input, Output, State, dcc, html, no_update
from dash.development.base_component import Component

from dashboard import actions
from dashboard.components import (
    age_text,
    data_attributes,
    format_value,
    local_iso_times,
    not_available,
    page_header,
    quality_badge,
)
from dashboard.context import DashboardContext
from dashboard.history_views import last_local_day, screen_interval_s
from dashboard.providers import MISSING
from twin.points import PointKind
from twin.readings import Quality

PATH = "/assets"
REFRESH_MS = 5_000
RANGES = {"24h": timedelta(days=1), "7d": timedelta(days=7), "30d": timedelta(days=30)}
DEFAULT_CHART_POINTS = 3
RATING_SKIP = {"id", "name", "kind", "extra_points"}


def _tree(ctx: DashboardContext, selected: str) -> dbc.ListGroup:
    items = [dbc.ListGroupItem(ctx.park.name, className="building")]
    for building in ctx.park.buildings:
        items.append(dbc.ListGroupItem(building.name or building.id, className="building"))
        for asset in building.assets:
            items.append(dbc.ListGroupItem(
                [asset.name or asset.id, html.Span(f" {asset.kind_label}", className="text-muted small")],
                href=f"{PATH}?asset={asset.id}", active=asset.id == selected, className="ps-4"))
    return dbc.ListGroup(items, className="asset-tree", flush=True)


def _ratings(asset) -> html.Div:
    fields = {k: v for k, v in asset.model_dump().items() if k not in RATING_SKIP and v not in (None, "")}
    return html.Div([dbc.Badge(f"{k} = {v}", color="light", text_color="dark", className="me-1 mb-1 border")
                     for k, v in fields.items()])


def _write_form(ctx: DashboardContext, asset_id: str) -> dbc.Card | None:
    writable = [pid for pid, p in ctx.park.points.items() if p.asset_id == asset_id and p.writable]
    if not writable:
        return None
    body: list[Component] = [html.H5("Write a setpoint", className="card-title")]
    if ctx.providers.write_point is None:
        body.append(not_available("Writing", MISSING["write_point"]))
    else:
        options = [{"label": f"{ctx.park.points[pid].name} [{ctx.park.points[pid].spec.low_limit:g} to "
                             f"{ctx.park.points[pid].spec.high_limit:g} {ctx.park.points[pid].unit}]", "value": pid}
                   for pid in writable]
        body += [
            dbc.Row([
                dbc.Col(dcc.Dropdown(id="write-point", options=options, value=writable[0], clearable=False), md=6),
                dbc.Col(dbc.Input(id="write-value", type="number", placeholder="value"), md=3),
                dbc.Col(dbc.Button("Write", id="write-button", color="primary"), md=3),
            ], className="g-2"),
            html.Div(id="write-result", className="mt-2"),
            html.Div("Writing needs a signed-in operator or admin.", className="small text-muted"),
        ]
    return dbc.Card(dbc.CardBody(body), className="mb-3")


def layout(ctx: DashboardContext, asset: str | None = None, **_query) -> html.Div:
    asset_ids = [a.id for _, a in ctx.park.iter_assets()]
    selected = asset if asset in asset_ids else asset_ids[0]
    building = ctx.park.building_of(selected)
    chosen = ctx.park.asset(selected)
    own_points = [pid for pid, p in ctx.park.points.items() if p.asset_id == selected]
    chart_default = [pid for pid in own_points
                     if ctx.park.points[pid].kind == PointKind.MEASUREMENT][:DEFAULT_CHART_POINTS] or own_points[:1]
    end_day = last_local_day(ctx.park, ctx.data_end())
    return html.Div([
        page_header("Assets", "the twin: park, buildings and assets; live points and their history"),
        dcc.Store(id="assets-selected", data=selected),
        dbc.Row([
            dbc.Col(dbc.Card(_tree(ctx, selected), className="mb-3"), md=3),
            dbc.Col([
                dbc.Card(dbc.CardBody([
                    html.H4(chosen.name or chosen.id, className="card-title mb-0"),
                    html.Div(f"{chosen.kind_label} · {building.name or building.id} · id {selected}",
                             className="text-muted mb-2"),
                    _ratings(chosen),
                ]), className="mb-3"),
                dbc.Card(dbc.CardBody([
                    html.H5("Live points", className="card-title"),
                    html.Div(id="assets-live-points"),
                ]), className="mb-3"),
                _write_form(ctx, selected),
                dbc.Card(dbc.CardBody([
                    html.H5("History", className="card-title"),
                    dbc.Row([
                        dbc.Col(dcc.Dropdown(id="history-points", multi=True, value=chart_default,
                                             options=[{"label": f"{pid} ({p.unit})", "value": pid}
                                                      for pid, p in ctx.park.points.items()]), md=6),
                        dbc.Col(dbc.RadioItems(
                            id="history-range", value="24h", inline=True, className="btn-group",
                            inputClassName="btn-check", labelClassName="btn btn-outline-primary btn-sm",
                            labelCheckedClassName="active",
                            options=[{"label": "24 h", "value": "24h"}, {"label": "7 days", "value": "7d"},
                                     {"label": "30 days", "value": "30d"}, {"label": "Days", "value": "custom"}]),
                            width="auto"),
                        dbc.Col(dcc.DatePickerRange(id="history-days", start_date=end_day.isoformat(),
                                                    end_date=end_day.isoformat(), max_date_allowed=end_day.isoformat(),
                                                    display_format="YYYY-MM-DD"),
                                width="auto"),
                    ], className="g-2 mb-2 align-items-center"),
                    html.Div(id="history-caption", className="small text-muted"),
                    dcc.Graph(id="assets-history-chart", config={"displaylogo": False}),
                ]), className="mb-3"),
            ], md=9),
        ]),
        dcc.Interval(id="assets-tick", interval=REFRESH_MS),
    ])


def live_points_table(ctx: DashboardContext, asset_id: str) -> html.Table:
    ids = [pid for pid, p in ctx.park.points.items() if p.asset_id == asset_id]
    rows = []
    for row in ctx.live_points(ids):
        quality = quality_badge(Quality.from_label(row["quality"])) if row["quality"] else \
            dbc.Badge("no reading", color="secondary")
        rows.append(html.Tr([
            html.Td(row["name"]),
            html.Td(format_value(row["value"]), className="value"),
            html.Td(row["unit"], className="text-muted"),
            html.Td(quality),
            html.Td(age_text(row["age_s"]) if row["age_s"] is not None else "–", className="text-muted"),
            html.Td(row["kind"] + (" · writable" if row["writable"] else ""), className="text-muted small"),
        ], **data_attributes(point=row["id"], value="" if row["value"] is None else repr(row["value"]))))
    header = html.Thead(html.Tr([html.Th(h) for h in ("point", "value", "unit", "quality", "age", "kind")]))
    return dbc.Table([header, html.Tbody(rows)], className="points-table", hover=True, size="sm")


def history_range(ctx: DashboardContext, kind: str, first_day: str | None, last_day: str | None
                  ) -> tuple[datetime, datetime]:
    """[start, end) of the chart: the last 24 h / 7 d / 30 d of data, or whole local days."""
    if kind in RANGES:
        end = ctx.data_end()
        return end - RANGES[kind], end
    tz = ZoneInfo(ctx.park.site.timezone)
    if first_day is None or last_day is None:
        raise ValueError("choose the first and the last day")
    first, last = date.fromisoformat(first_day), date.fromisoformat(last_day)
    return (datetime.combine(first, time.min, tzinfo=tz),
            datetime.combine(last + timedelta(days=1), time.min, tzinfo=tz))


def history_figure(ctx: DashboardContext, point_ids: list[str], start: datetime, end: datetime,
                   interval_s: int) -> dict:
    """One panel per unit, shared time axis; bucket means from the database.

    Built as a plain figure dict: plotly's validating figure classes cost more
    than the query on a month of data.
    """
    wide = ctx.history.resample(point_ids, start, end, interval_s=interval_s, agg="mean")
    units = list(dict.fromkeys(ctx.park.points[pid].unit for pid in point_ids))
    x = local_iso_times(cast(pd.DatetimeIndex, wide.index), ctx.park.site.timezone)
    suffix = {unit: "" if row == 1 else str(row) for row, unit in enumerate(units, start=1)}  # y, y2, y3...
    gap = 0.06
    height = (1 - gap * (len(units) - 1)) / len(units)
    layout = {"height": max(320, 220 * len(units)), "margin": {"l": 60, "r": 10, "t": 10, "b": 30},
              "legend": {"orientation": "h", "y": -0.15}, "hovermode": "x unified", "plot_bgcolor": "white",
              "xaxis": {"showgrid": True, "gridcolor": "#eee", "anchor": f"y{suffix[units[-1]]}"}}
    for row, unit in enumerate(units):
        top = 1 - row * (height + gap)
        layout[f"yaxis{suffix[unit]}"] = {"title": {"text": unit or "(no unit)"}, "domain": [top - height, top],
                                          "showgrid": True, "gridcolor": "#eee", "anchor": "x"}
    traces = [{"type": "scatter", "mode": "lines", "name": pid, "x": x, "y": wide[pid].to_numpy(),
               "yaxis": f"y{suffix[ctx.park.points[pid].unit]}"} for pid in point_ids]
    return {"data": traces, "layout": layout}


def register_callbacks(app: Dash, ctx: DashboardContext) -> None:
    @app.callback(Output("assets-live-points", "children"),
                  Input("assets-tick", "n_intervals"), Input("assets-selected", "data"))
    def refresh_live(_, asset_id):
        return live_points_table(ctx, asset_id)

    @app.callback(Output("history-days", "disabled"), Input("history-range", "value"))
    def enable_days(kind):
        return kind != "custom"

    @app.callback(Output("assets-history-chart", "figure"), Output("history-caption", "children"),
                  Input("history-points", "value"), Input("history-range", "value"),
                  Input("history-days", "start_date"), Input("history-days", "end_date"))
    def draw_history(point_ids, kind, first_day, last_day):
        if not point_ids:
            return {"data": [], "layout": {}}, "choose one or more points"
        start, end = history_range(ctx, kind, first_day, last_day)
        interval_s = screen_interval_s(start, end)
        caption = f"bucket means of {interval_s // 60} min" if interval_s >= 60 else f"{interval_s} s buckets"
        return history_figure(ctx, point_ids, start, end, interval_s), caption

    @app.callback(Output("write-result", "children"), Input("write-button", "n_clicks"),
                  State("write-point", "value"), State("write-value", "value"), prevent_initial_call=True)
    def write(_, point_id, value):
        if value is None:
            return no_update
        result = actions.write_point(ctx, flask.request, point_id, value)
        return dbc.Alert(result.message if result.ok else f"refused ({result.status}): {result.message}",
                         color="success" if result.ok else "danger", className="py-2 mb-0", id="write-message")
