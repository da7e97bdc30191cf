"""Points (integrator): every device's poll statistics, and every point's raw protocol value, engineering
value and quality, with a filter for failing ones.

Device poll statistics (protocol, address, poll period, last success, errors,
latency) and raw values come from the protocol adapters; the page
says so while they are missing, and shows engineering values and quality
from live state.

Both tables are AG Grids (dash-ag-grid: sorted and filtered in the browser,
rows drawn as they scroll into view, updated as data), so a refresh every
5 s redraws only the rows in view: a park's hundreds of points as Dash HTML
components would be redrawn whole at every refresh and freeze the page.
"""

from __future__ import annotations

from typing import Any

import dash_ag_grid as dag
import dash_bootstrap_components as dbc
from dash import Dash, Input, Output, dcc, html

from dashboard.components import QUALITY_COLOURS, age_text, format_value, not_available, page_header
from dashboard.context import DashboardContext
from dashboard.providers import MISSING
from protocols.values import raw_text
from twin.readings import Quality

PATH = "/points"
REFRESH_MS = 5_000
NO_READING = "no reading"
BOOTSTRAP_COLOURS = {"success": ("#d1e7dd", "#0f5132"), "warning": ("#fff3cd", "#664d03"),
                     "danger": ("#f8d7da", "#842029"), "dark": ("#d3d3d4", "#141619"),
                     "secondary": ("#e2e3e5", "#41464b")}
"""Bootstrap 5's subtle background and emphasis text colour of each theme colour."""
MONOSPACE = {"fontFamily": "var(--bs-font-monospace)", "fontSize": "0.8rem"}
DEVICE_COLUMNS = ("device_id", "protocol", "address", "poll_period_s", "available", "last_success", "error_count",
                  "latency_ms", "last_error")
"""The keys of dashboard.providers.DeviceStatusProvider.devices, in the order shown."""


def quality_style() -> dict:
    """Quality cells coloured as the badges elsewhere in the dashboard (components.QUALITY_COLOURS)."""
    labels = {q.label: QUALITY_COLOURS[q] for q in Quality} | {NO_READING: "secondary"}
    return {"styleConditions": [
        {"condition": f"params.value === '{label}'",
         "style": {"backgroundColor": BOOTSTRAP_COLOURS[colour][0], "color": BOOTSTRAP_COLOURS[colour][1]}}
        for label, colour in labels.items()]}


POINT_COLUMNS: list[dict[str, Any]] = [
    {"field": "id", "headerName": "point", "minWidth": 260},
    {"field": "raw", "headerName": "raw", "cellStyle": MONOSPACE, "minWidth": 220},
    {"field": "value", "headerName": "engineering value", "type": "rightAligned"},
    {"field": "unit", "headerName": "unit", "maxWidth": 110},
    {"field": "quality", "headerName": "quality", "cellStyle": quality_style(), "maxWidth": 140},
    {"field": "age", "headerName": "age", "maxWidth": 110, "sortable": False},
]


def grid(grid_id: str, columns: list[dict], rows: list[dict], row_id: str, height: str, **options) -> dag.AgGrid:
    """A compact AG Grid in the dashboard's style, ``height`` tall (CSS): sortable, filterable under each
    header, resizable."""
    return dag.AgGrid(
        id=grid_id, columnDefs=columns, rowData=rows, getRowId=f"params.data.{row_id}",
        # every cell is text as shown ("cellDataType" would otherwise turn ISO times into a date filter)
        defaultColDef={"sortable": True, "filter": True, "floatingFilter": True, "resizable": True, "flex": 1,
                       "cellDataType": "text"},
        dashGridOptions={"rowHeight": 28, "headerHeight": 30, "floatingFiltersHeight": 30, "animateRows": False},
        style={"height": height, "width": "100%"}, **options)


def point_rows(points: list[dict]) -> list[dict]:
    """The points table's rows from DashboardContext.live_points."""
    return [{"id": p["id"], "raw": raw_text(p["raw"]), "value": format_value(p["value"]), "unit": p["unit"],
             "quality": p["quality"] or NO_READING,
             "age": age_text(p["age_s"]) if p["age_s"] is not None else "–"} for p in points]


def device_rows(devices: list[dict]) -> list[dict]:
    """The devices table's rows: every value as text, an en dash for none."""
    return [{key: "–" if device.get(key) is None else str(device[key]) for key in DEVICE_COLUMNS}
            for device in devices]


def layout(ctx: DashboardContext, **_query) -> html.Div:
    if ctx.providers.devices is None:
        devices = not_available("Devices", MISSING["devices"])
    else:
        columns = [{"field": key, "headerName": key.replace("_", " ")} for key in DEVICE_COLUMNS]
        unavailable = BOOTSTRAP_COLOURS["danger"]
        devices = grid("devices-table", columns, device_rows(ctx.providers.devices.devices()), "device_id", "40vh",
                       getRowStyle={"styleConditions": [{"condition": "params.data.available === 'False'",
                                                         "style": {"backgroundColor": unavailable[0],
                                                                   "color": unavailable[1]}}]})
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
                dbc.Col(html.Div("type under a column's header to filter it, click the header to sort",
                                 className="text-muted small pt-1"), width="auto"),
            ], className="align-items-center"),
            grid("points-table", POINT_COLUMNS, [], "id", "60vh"),
        ])),
        dcc.Interval(id="points-tick", interval=REFRESH_MS),
    ])


def register_callbacks(app: Dash, ctx: DashboardContext) -> None:
    @app.callback(Output("points-table", "rowData"), Output("points-count", "children"),
                  Input("points-failing-only", "value"), Input("points-tick", "n_intervals"))
    def refresh_points(failing_only, _):
        rows = ctx.live_points()
        if failing_only:
            rows = [r for r in rows if r["quality"] != Quality.GOOD.label]
        return point_rows(rows), f"{len(rows)} of {len(ctx.park.points)} points"

    if ctx.providers.devices is not None:
        devices = ctx.providers.devices

        @app.callback(Output("devices-table", "rowData"), Input("points-tick", "n_intervals"))
        def refresh_devices(_):
            return device_rows(devices.devices())
