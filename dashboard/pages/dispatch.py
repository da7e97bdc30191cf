"""Dispatch (energy trader): the day-ahead plan, its cost against a chosen baseline, downloads and approval.

The plan comes from the plan provider (``optimizer.providers`` under
``parktwin run``); approving and re-planning go through
:mod:`dashboard.actions` (trader or admin). Times are shown in the park's time
zone; the figures are the plan's own columns, the same numbers /api/plan serves.
"""

from __future__ import annotations

from datetime import datetime

import dash_bootstrap_components as dbc
import flask
from dash import Dash, Input, Output, State, dcc, html, no_update

from dashboard import actions
from dashboard.components import format_value, local_time_text, not_available, page_header
from dashboard.context import DashboardContext
from dashboard.providers import MISSING

PATH = "/dispatch"
REFRESH_MS = 3_000
COST_ROWS = (("energy_cny", "Energy"), ("export_revenue_cny", "Export revenue (credit)"),
             ("demand_charge_cny", "Demand charge"), ("wear_cny", "Battery wear"), ("co2_cny", "CO2 price"),
             ("penalty_cny", "End-of-day storage shortfall"), ("total_cny", "Total"))
QUANTITY_ROWS = (("peak_kw", "Peak import (15 min)", "kW"), ("import_kwh", "Grid import", "kWh"),
                 ("export_kwh", "Grid export", "kWh"))


def layout(ctx: DashboardContext, **_query) -> html.Div:
    header = page_header("Dispatch", "day-ahead plan: prices, storage schedules, grid exchange, cost against a "
                                     "baseline, approval")
    if ctx.providers.plan is None:
        return html.Div([header, not_available("Dispatch plans", MISSING["plan"])])
    plan = ctx.providers.plan.plan()
    return html.Div([
        header,
        html.Div(_status(ctx, plan), id="plan-status"),
        html.Div(id="plan-action-result", className="mb-3"),
        dcc.Store(id="plan-shown", data=_signature(plan)),
        html.Div(_body(ctx, plan), id="plan-body"),
        dcc.Interval(id="plan-tick", interval=REFRESH_MS),
    ])


def _signature(plan: dict | None) -> dict | None:
    """What the page shows of a plan: its id and approval; the page redraws when either changes."""
    return None if plan is None else {"id": plan["id"], "approved_by": plan["approval"]["approved_by"],
                                      "solving": plan["solving"], "writes": len(plan["approval"]["writes"])}


def _status(ctx: DashboardContext, plan: dict | None) -> dbc.Card:
    tz = ctx.park.site.timezone
    buttons = [dbc.Button("Re-plan", id="plan-replan", color="secondary", outline=True, className="me-2")]
    if plan is None:
        state = ctx.providers.plan.state()
        text = "The day-ahead plan is being made…" if state["solving"] else \
            f"No plan yet: {state['error']}" if state["error"] else "No dispatch plan has been made yet."
        return dbc.Card(dbc.CardBody(dbc.Row([dbc.Col(html.Div(text, id="plan-state")),
                                              dbc.Col(buttons, width="auto")])), className="mb-3")
    approval = plan["approval"]
    if approval["approved_by"]:
        badge = dbc.Badge(f"approved by {approval['approved_by']} at "
                          f"{local_time_text(_time(approval['approved_at']), tz, '%d %b %H:%M')}",
                          color="success", id="plan-approval")
    elif approval["mode"] == "auto":
        badge = dbc.Badge("automatic dispatch (no approval needed)", color="info", id="plan-approval")
    else:
        badge = dbc.Badge("awaiting approval: nothing is dispatched before it", color="warning", id="plan-approval")
    if not approval["approved_by"]:
        buttons.insert(0, dbc.Button("Approve plan", id="plan-approve", color="success", className="me-2"))
    start, end = _time(plan["start_utc"]), _time(plan["end_utc"])
    savings = plan["savings_cny"]
    best = min(savings.values()) if savings else None
    lines = [
        html.H5([f"Plan {plan['id']} ", badge], className="card-title mb-1"),
        html.Div(f"{local_time_text(start, tz, '%a %d %b %H:%M')} to {local_time_text(end, tz, '%a %d %b %H:%M')} "
                 f"({tz}), 15-minute steps · solver status {plan['status']} · made "
                 f"{local_time_text(_time(plan['created_utc']), tz, '%d %b %H:%M')}"
                 + (" · a new plan is being made" if plan["solving"] else ""), className="text-muted small"),
        html.Div([html.Strong(f"Plan cost {format_value(plan['costs']['total_cny'], plan['currency'])}"),
                  f" · saves at least {format_value(best, plan['currency'])} against every baseline"
                  if best is not None else ""], className="mt-1", id="plan-headline"),
    ]
    if approval["dispatched_step_utc"]:
        ok = sum(w["result"] == "ok" for w in approval["writes"])
        lines.append(html.Div(f"dispatched the step of {local_time_text(_time(approval['dispatched_step_utc']), tz)}:"
                              f" {ok} of {len(approval['writes'])} setpoints written", className="small",
                              id="plan-dispatched"))
    lines += [html.Div(f"note: {n}", className="small text-muted") for n in plan["notes"] + plan["diagnostic"]]
    downloads = [html.A("Download CSV", href="/api/plan.csv", download="", className="btn btn-outline-primary btn-sm "
                        "me-2", id="plan-csv"),
                 html.A("Download JSON", href="/api/plan", download=f"plan-{plan['id']}.json",
                        className="btn btn-outline-primary btn-sm", id="plan-json")]
    return dbc.Card(dbc.CardBody(dbc.Row([
        dbc.Col(lines),
        dbc.Col([html.Div(buttons, className="mb-2"), html.Div(downloads)], width="auto", className="text-end"),
    ])), className="mb-3")


def _time(iso: str) -> datetime:
    return datetime.fromisoformat(iso.replace(" ", "T"))


def _body(ctx: DashboardContext, plan: dict | None) -> list:
    if plan is None:
        return []
    names = plan["baseline_names"]
    return [dbc.Row([
        dbc.Col(dbc.Card(dbc.CardBody([dcc.Graph(id="plan-chart", figure=plan_figure(plan, ctx.park.site.timezone),
                                                 config={"displaylogo": False})])), lg=8),
        dbc.Col(dbc.Card(dbc.CardBody([
            html.H5("Plan against baseline", className="card-title"),
            dbc.Label("baseline", html_for="plan-baseline", className="small text-muted mb-0"),
            dcc.Dropdown(id="plan-baseline", options=[{"label": n.replace("_", " "), "value": n} for n in names],
                         value=names[0], clearable=False, className="mb-2"),
            html.Div(cost_table(plan, names[0]), id="plan-costs"),
        ])), lg=4),
    ])]


def cost_table(plan: dict, baseline: str) -> dbc.Table:
    """Plan and baseline costs side by side, with what the plan saves (baseline minus plan)."""
    ours, theirs, currency = plan["costs"], plan["baselines"][baseline], plan["currency"]
    sign = {"export_revenue_cny": -1.0}  # a credit lowers the cost: shown negative, so "plan saves" adds up

    def cell(key: str, value: float) -> html.Td:
        return html.Td(format_value(sign.get(key, 1.0) * value + 0.0), className="text-end")  # + 0.0: no "-0"

    rows = [html.Tr([html.Td(label), cell(key, ours[key]), cell(key, theirs[key]), cell(key, theirs[key] - ours[key])],
                    className="fw-bold" if key == "total_cny" else None, **{"data-cost": key})
            for key, label in COST_ROWS]
    rows += [html.Tr([html.Td(f"{label} ({unit})"), cell(key, ours[key]), cell(key, theirs[key]),
                      cell(key, theirs[key] - ours[key])], **{"data-cost": key})
             for key, label, unit in QUANTITY_ROWS]
    return dbc.Table([html.Thead(html.Tr([html.Th(currency), html.Th("plan", className="text-end"),
                                          html.Th(baseline.replace("_", " "), className="text-end"),
                                          html.Th("plan saves", className="text-end")])),
                      html.Tbody(rows)], size="sm", id="plan-cost-table")


def plan_figure(plan: dict, tz: str) -> dict:
    """Price; battery and ice schedules; SOC and ice inventory; grid import and export: four panels on one
    time axis (park time), straight from the plan's columns."""
    steps = plan["steps"]
    x = [s["ts_local"].replace(" ", "T") for s in steps]
    columns = steps[0].keys() if steps else []
    batteries = [c.removesuffix(".power_setpoint_kw") for c in columns if c.endswith(".power_setpoint_kw")]
    tanks = [c.removesuffix(".charge_kwth") for c in columns if c.endswith(".charge_kwth")]

    def line(column: str, name: str, axis: str, colour: str, **style) -> dict:
        return {"type": "scatter", "mode": "lines", "x": x, "y": [s[column] for s in steps], "name": name,
                "yaxis": axis, "line": {"color": colour, "shape": "hv", **style}}

    traces = [line("price_cny_per_kwh", f"energy price ({plan['currency']}/kWh)", "y", "#6f42c1")]
    for b in batteries:
        traces.append(line(f"{b}.power_setpoint_kw", f"{b} power kW (+ discharge)", "y2", "#198754"))
    for t in tanks:
        traces.append(line(f"{t}.charge_kwth", f"{t} ice making kWth", "y2", "#0dcaf0"))
        traces.append(line(f"{t}.melt_kwth", f"{t} ice melt kWth", "y2", "#fd7e14"))
    for b in batteries:
        traces.append(line(f"{b}.soc_pct", f"{b} SOC %", "y3", "#198754", dash="dot"))
    for t in tanks:
        traces.append(line(f"{t}.soc_pct", f"{t} ice inventory %", "y3", "#0dcaf0", dash="dot"))
    traces.append(line("grid_import_kw", "grid import kW", "y4", "#dc3545"))
    traces.append(line("grid_export_kw", "grid export kW", "y4", "#0d6efd"))
    panels = (("y", f"price {plan['currency']}/kWh"), ("y2", "storage kW / kWth"), ("y3", "state %"),
              ("y4", "grid kW"))
    height, gap = 0.22, 0.04
    layout = {"height": 720, "margin": {"l": 70, "r": 10, "t": 10, "b": 30}, "hovermode": "x unified",
              "plot_bgcolor": "white", "legend": {"orientation": "h", "y": -0.06},
              "xaxis": {"showgrid": True, "gridcolor": "#eee", "anchor": "y4"}, "uirevision": plan["id"]}
    for row, (axis, title) in enumerate(panels):
        top = 1 - row * (height + gap)
        layout["yaxis" + axis[1:]] = {"title": {"text": title}, "domain": [top - height, top], "showgrid": True,
                                      "gridcolor": "#eee", "anchor": "x", "rangemode": "tozero"}
    return {"data": traces, "layout": layout}


def register_callbacks(app: Dash, ctx: DashboardContext) -> None:
    if ctx.providers.plan is None:
        return

    @app.callback(Output("plan-costs", "children"), Input("plan-baseline", "value"), prevent_initial_call=True)
    def compare(baseline):
        plan = ctx.providers.plan.plan()
        return no_update if plan is None or baseline not in plan["baselines"] else cost_table(plan, baseline)

    @app.callback(Output("plan-action-result", "children"), Input("plan-approve", "n_clicks"),
                  State("plan-shown", "data"), prevent_initial_call=True)
    def approve(clicks, shown):
        if not clicks or not shown:
            return no_update
        return _alert(actions.approve_plan(ctx, flask.request, shown["id"]), "approving")

    @app.callback(Output("plan-action-result", "children", allow_duplicate=True), Input("plan-replan", "n_clicks"),
                  prevent_initial_call=True)
    def replan(clicks):
        return _alert(actions.replan(ctx, flask.request), "re-planning") if clicks else no_update

    @app.callback(Output("plan-status", "children"), Output("plan-body", "children"), Output("plan-shown", "data"),
                  Input("plan-tick", "n_intervals"), Input("plan-action-result", "children"),
                  State("plan-shown", "data"), prevent_initial_call=True)
    def refresh(_, __, shown):
        plan = ctx.providers.plan.plan()
        signature = _signature(plan)
        if signature == shown and plan is not None:
            return no_update, no_update, no_update
        body = no_update if plan is not None and shown is not None and shown["id"] == plan["id"] else _body(ctx, plan)
        return _status(ctx, plan), body, signature


def _alert(result: actions.ActionResult, doing: str) -> dbc.Alert:
    if result.ok:
        return dbc.Alert(result.message, color="success", className="py-2 mb-0", id="plan-message")
    hint = " Sign in with a trader account to do this." if result.status == 403 else ""
    return dbc.Alert(f"{doing} refused ({result.status}): {result.message}.{hint}", color="danger",
                     className="py-2 mb-0", id="plan-message")
