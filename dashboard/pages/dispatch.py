"""Dispatch (energy trader): the live controller's plan in force, its approval, every dispatch round and re-plan.

The plan provider is ``optimizer.operation.LiveOperation`` under ``parktwin run``:
the controller re-plans and dispatches every 15-minute step. The page shows the
approval state (and a warning when the approved plan has expired or nothing
covers the step), the plan in force with a "now" line, plan against actual so
far today (actual from the history store), every dispatch round's writes, the
re-plans, and the plan in force against the approved one. Approving, suspending
and re-planning go through :mod:`dashboard.actions` (trader or admin). Times are
shown in the park's time zone; the figures are the plans' own columns, the same
numbers /api/plan serves.

The page refreshes on an interval; the charts and tables are drawn again only
when the plan in force, the approval or the dispatch rounds changed.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import cast

import dash_bootstrap_components as dbc
import flask
import numpy as np
import pandas as pd
from dash import Dash, Input, Output, State, dcc, html, no_update

from dashboard import actions
from dashboard.components import (
    data_attributes,
    format_value,
    local_iso_times,
    local_time_text,
    not_available,
    page_header,
)
from dashboard.context import DashboardContext
from dashboard.providers import MISSING
from twin.kinds.base import STORED_PCT_COLUMN, AssetBase, Role
from twin.park import Park
from twin.points import point_id

PATH = "/dispatch"
REFRESH_MS = 3_000
ROUNDS_SHOWN = 24
"""Dispatch rounds listed, newest first (all of them: GET /api/plan/rounds)."""
REPLANS_SHOWN = 12
COST_ROWS = (("energy_cny", "Energy"), ("export_revenue_cny", "Export revenue (credit)"),
             ("demand_charge_cny", "Demand charge"), ("wear_cny", "Battery wear"), ("co2_cny", "CO2 price"),
             ("penalty_cny", "End-of-day storage shortfall"), ("total_cny", "Total"))
QUANTITY_ROWS = (("peak_kw", "Peak import (15 min)", "kW"), ("import_kwh", "Grid import", "kWh"),
                 ("export_kwh", "Grid export", "kWh"))
STEP = timedelta(minutes=15)


def layout(ctx: DashboardContext, **_query) -> html.Div:
    header = page_header("Dispatch", "live control: the plan in force, approval, dispatch rounds and re-plans, "
                                     "plan against actual today")
    if ctx.providers.plan is None:
        return html.Div([header, not_available("Dispatch plans", MISSING["plan"])])
    plan = ctx.providers.installed_plan().plan()
    signature = _signature(plan)
    return html.Div([
        header,
        html.Div(_status(ctx, plan), id="plan-status"),
        html.Div(id="plan-action-result", className="mb-3"),
        dcc.Store(id="plan-shown", data=signature),
        dcc.Store(id="plan-baseline-chosen"),  # the body is redrawn with the baseline last picked
        html.Div(_body(ctx, plan, None), id="plan-body"),
        dcc.Interval(id="plan-tick", interval=REFRESH_MS),
    ])


def _signature(plan: dict | None) -> dict | None:
    """What the page shows: ``status`` redraws the approval card, ``body`` the charts and tables."""
    if plan is None:
        return None
    approval, rounds = plan["approval"], plan["rounds"]
    last = rounds[-1] if rounds else None
    body = [plan["id"], approval["approved_plan_id"], plan["review_plan_id"], len(plan["replans"]),
            last and [last["ts_utc"], last["released"], len(last["writes"])], len(rounds)]
    status = [body, {k: v for k, v in approval.items() if k != "writes"}, plan["error"], plan["solving"]]
    return {"id": plan["id"], "review_id": plan["review_plan_id"], "body": body, "status": status}


def _time(iso: str) -> datetime:
    return datetime.fromisoformat(iso.replace(" ", "T"))


def _approval_lines(approval: dict, tz: str) -> list:
    """Mode, approver, until when, active or not, suspended by; a warning when nothing may be written."""
    at = lambda key: local_time_text(_time(approval[key]), tz, "%d %b %H:%M") if approval[key] else "–"
    if approval["suspended_by"]:
        badge = dbc.Badge(f"suspended by {approval['suspended_by']}", color="secondary", id="plan-approval")
    elif approval["active"] and approval["mode"] == "auto":
        badge = dbc.Badge("automatic dispatch (standing authority)", color="info", id="plan-approval")
    elif approval["active"]:
        badge = dbc.Badge(f"approved by {approval['approved_by']} until {at('until_utc')}", color="success",
                          id="plan-approval")
    elif approval["expired"]:
        badge = dbc.Badge("approval expired", color="danger", id="plan-approval")
    else:
        badge = dbc.Badge("awaiting approval: nothing is dispatched before it", color="warning", id="plan-approval")
    facts = [("mode", approval["mode"]), ("approved by", approval["approved_by"] or "–"),
             ("approved at", at("approved_at_utc")), ("approved plan", approval["approved_plan_id"] or "–"),
             ("until", at("until_utc")), ("active", "yes" if approval["active"] else "no"),
             ("suspended by", f"{approval['suspended_by']} at {at('suspended_at_utc')}"
              if approval["suspended_by"] else "–")]
    table = html.Table(html.Tbody([html.Tr([html.Th(k, className="pe-3 fw-normal text-muted"), html.Td(v)],
                                           **data_attributes(approval=k.replace(" ", "_"))) for k, v in facts]),
                       className="small", id="plan-approval-table")
    lines = [html.Div(["Approval ", badge], className="mb-1"), table]
    if approval["suspended_by"]:
        lines.append(dbc.Alert(f"Dispatch suspended by {approval['suspended_by']} at {at('suspended_at_utc')}: "
                               "every setpoint written was released to the plant schedule. Approve a plan to "
                               "dispatch again.", color="secondary", className="py-2 mt-2 mb-0",
                               id="plan-suspended"))
    if approval["expired"] or approval["alarm"]:
        text = approval["alarm"] or "the approved plan has expired: setpoints released to the plant schedule"
        lines.append(dbc.Alert([html.Strong("Warning: "), text, ". Approve the plan in force or the plan for "
                                "review to dispatch again." if approval["mode"] == "manual" else "."],
                               color="danger", className="py-2 mt-2 mb-0", id="plan-warning"))
    return lines


def _status(ctx: DashboardContext, plan: dict | None) -> dbc.Card:
    tz = ctx.park.site.timezone
    replan = dbc.Button("Re-plan", id="plan-replan", color="secondary", outline=True, className="me-2")
    if plan is None:
        state = ctx.providers.installed_plan().state()
        text = "The first plan is being made…" if state["solving"] else \
            f"No plan yet: {state['error']}" if state["error"] else "No dispatch plan has been made yet."
        return dbc.Card(dbc.CardBody(dbc.Row([dbc.Col(html.Div(text, id="plan-state")),
                                              dbc.Col(replan, width="auto")])), className="mb-3")
    approval = plan["approval"]
    buttons = [dbc.Button("Approve plan in force", id="plan-approve", color="success", className="me-2"),
               dbc.Button("Approve plan for review", id="plan-approve-review", color="success", outline=True,
                          className="me-2", style=None if plan["review_plan_id"] else {"display": "none"}),
               dbc.Button("Suspend", id="plan-suspend", color="danger", className="me-2",
                          disabled=approval["suspended_by"] is not None and not approval["active"]),
               replan]
    savings = plan["savings_cny"]
    best = min(savings.values()) if savings else None
    lines = [
        html.H5(f"Plan in force {plan['id']}", className="card-title mb-1", id="plan-in-force"),
        html.Div(f"{local_time_text(_time(plan['start_utc']), tz, '%a %d %b %H:%M')} to "
                 f"{local_time_text(_time(plan['end_utc']), tz, '%a %d %b %H:%M')} ({tz}), 15-minute steps · "
                 f"solver status {plan['status']} · "
                 f"made {local_time_text(_time(plan['made_utc']), tz, '%d %b %H:%M')}"
                 + (f" · plan for review {plan['review_plan_id']}" if plan["review_plan_id"] else ""),
                 className="text-muted small"),
        html.Div([html.Strong(f"Plan cost {format_value(plan['costs']['total_cny'], plan['currency'])}"),
                  f" · saves at least {format_value(best, plan['currency'])} against every baseline"
                  if best is not None else ""], className="mt-1 mb-2", id="plan-headline"),
    ]
    if approval["dispatched_step_utc"]:
        ok = sum(w["result"] == "ok" for w in approval["writes"])
        lines.append(html.Div(f"dispatched the step of {local_time_text(_time(approval['dispatched_step_utc']), tz)}:"
                              f" {ok} of {len(approval['writes'])} setpoints written", className="small mb-2",
                              id="plan-dispatched"))
    if plan["error"]:
        lines.append(dbc.Alert(f"The last control step failed: {plan['error']}", color="danger", className="py-2",
                               id="plan-error"))
    lines += [html.Div(f"note: {n}", className="small text-muted") for n in plan["notes"] + plan["diagnostic"]]
    downloads = [html.A("Download CSV", href="/api/plan.csv", download="", className="btn btn-outline-primary btn-sm "
                        "me-2", id="plan-csv"),
                 html.A("Download JSON", href="/api/plan", download=f"plan-{plan['id']}.json",
                        className="btn btn-outline-primary btn-sm", id="plan-json")]
    return dbc.Card(dbc.CardBody(dbc.Row([
        dbc.Col(lines, lg=5),
        dbc.Col(_approval_lines(approval, tz), lg=4),
        dbc.Col([html.Div(buttons, className="mb-2"), html.Div(downloads)], lg=3, className="text-end"),
    ])), className="mb-3")


def _body(ctx: DashboardContext, plan: dict | None, baseline: str | None) -> list:
    if plan is None:
        return []
    tz = ctx.park.site.timezone
    names = plan["baseline_names"]
    baseline = baseline if baseline is not None and baseline in plan["baselines"] else names[0]
    now = ctx.now_utc()
    approved_id = plan["approval"]["approved_plan_id"]
    plans = ctx.providers.installed_plan()
    approved = plans.plan_record(approved_id) if approved_id and approved_id != plan["id"] else None
    review = plans.plan_record(plan["review_plan_id"]) if plan["review_plan_id"] else None
    card = lambda children, **kw: dbc.Col(dbc.Card(dbc.CardBody(children)), className="mb-3", **kw)
    return [
        dbc.Row([
            card([html.H5("Plan in force", className="card-title"),
                  dcc.Graph(id="plan-chart", figure=plan_figure(plan, ctx.park, now), config={"displaylogo": False})],
                 lg=8),
            card([html.H5("Plan against baseline", className="card-title"),
                  dbc.Label("baseline", html_for="plan-baseline", className="small text-muted mb-0"),
                  dcc.Dropdown(id="plan-baseline", options=[{"label": n.replace("_", " "), "value": n} for n in names],
                               value=baseline, clearable=False, className="mb-2"),
                  html.Div(cost_table(plan, baseline), id="plan-costs"),
                  html.H5("Plans", className="card-title mt-3"),
                  plans_table(plan, plan["approval"], approved if approved_id != plan["id"] else plan, review, tz)],
                 lg=4),
        ]),
        dbc.Row([card([html.H5("Plan against actual today", className="card-title"),
                       dcc.Graph(id="plan-actual-chart", figure=actual_figure(ctx, plan, approved, now),
                                 config={"displaylogo": False})])]),
        dbc.Row([
            card([html.H5("Dispatch rounds", className="card-title"),
                  html.Div(f"the last {ROUNDS_SHOWN} control steps, newest first (all kept: /api/plan/rounds)",
                           className="small text-muted"),
                  rounds_table(ctx.providers.installed_plan().rounds()[-ROUNDS_SHOWN:], tz)], lg=8),
            card([html.H5("Re-plans", className="card-title"),
                  replans_table(plan["replans"][-REPLANS_SHOWN:], plan["id"], approved_id, plan["currency"], tz)],
                 lg=4),
        ]),
    ]


def plans_table(plan: dict, approval: dict, approved: dict | None, review: dict | None, tz: str) -> dbc.Table:
    """The plan in force against the approved plan (and the plan for review): horizon and cost."""
    rows = []
    for role, record in (("in force", plan), ("approved", approved if approval["approved_plan_id"] else None),
                         ("for review", review)):
        if record is None:
            if role == "approved":
                rows.append(html.Tr([html.Td(role), html.Td("none", colSpan=3, className="text-muted")],
                                    **data_attributes(plan=role)))
            continue
        rows.append(html.Tr([html.Td(role), html.Td(record["id"]),
                             html.Td(local_time_text(_time(record["end_utc"]), tz, "%d %b %H:%M")),
                             html.Td(format_value(record["costs"]["total_cny"]), className="text-end")],
                            **data_attributes(plan=role)))
    return dbc.Table([html.Thead(html.Tr([html.Th(""), html.Th("id"), html.Th("ends"),
                                          html.Th(f"cost {plan['currency']}", className="text-end")])),
                      html.Tbody(rows)], size="sm", id="plan-plans-table")


def rounds_table(rounds: list[dict], tz: str) -> dbc.Table:
    """One row per write (or release) of each round, newest round first; a round that wrote nothing says why."""
    rows = []
    for r in reversed(rounds):
        when = local_time_text(_time(r["ts_utc"]), tz, "%d %b %H:%M")
        attrs = {"data-round": r["ts_utc"]}
        if not r["writes"]:
            what = "nothing written" if not r["plan_id"] else "nothing written (no authority)"
            rows.append(html.Tr([html.Td(when), html.Td(r["plan_id"] or "–"), html.Td(what, colSpan=3,
                                 className="text-muted")], **attrs))
            continue
        for w in r["writes"]:
            value = "released" if w["value"] is None else format_value(w["value"])
            rows.append(html.Tr([html.Td(when), html.Td(r["plan_id"] or (r["released"] or "–")),
                                 html.Td(w["point_id"]), html.Td(value, className="text-end"),
                                 html.Td(w["result"], className=None if w["result"] == "ok" else "text-danger")],
                                **attrs, **data_attributes(point=w["point_id"])))
    if not rows:
        rows = [html.Tr(html.Td("no dispatch round yet", colSpan=5, className="text-muted"))]
    return dbc.Table([html.Thead(html.Tr([html.Th("time"), html.Th("plan"), html.Th("point"),
                                          html.Th("value", className="text-end"), html.Th("result")])),
                      html.Tbody(rows)], size="sm", id="plan-rounds-table")


def replans_table(replans: list[dict], in_force: str, approved: str | None, currency: str, tz: str) -> dbc.Table:
    rows = [html.Tr([html.Td(local_time_text(_time(r["made_utc"]), tz, "%d %b %H:%M")),
                     html.Td([r["id"], *([dbc.Badge("in force", color="primary", className="ms-1")]
                                         if r["id"] == in_force else []),
                              *([dbc.Badge("approved", color="success", className="ms-1")]
                                if r["id"] == approved else [])]),
                     html.Td(r["status"] or "–"), html.Td(format_value(r["total_cny"]), className="text-end")],
                    **data_attributes(replan=r["id"])) for r in reversed(replans)]
    return dbc.Table([html.Thead(html.Tr([html.Th("made"), html.Th("id"), html.Th("status"),
                                          html.Th(f"cost {currency}", className="text-end")])),
                      html.Tbody(rows)], size="sm", id="plan-replans-table")


def cost_table(plan: dict, baseline: str) -> dbc.Table:
    """Plan and baseline costs side by side, with what the plan saves (baseline minus plan)."""
    ours, theirs, currency = plan["costs"], plan["baselines"][baseline], plan["currency"]
    sign = {"export_revenue_cny": -1.0}  # a credit lowers the cost: shown negative, so "plan saves" adds up

    def cell(key: str, value: float) -> html.Td:
        return html.Td(format_value(sign.get(key, 1.0) * value + 0.0), className="text-end")  # + 0.0: no "-0"

    rows = [html.Tr([html.Td(label), cell(key, ours[key]), cell(key, theirs[key]), cell(key, theirs[key] - ours[key])],
                    className="fw-bold" if key == "total_cny" else None, **data_attributes(cost=key))
            for key, label in COST_ROWS]
    rows += [html.Tr([html.Td(f"{label} ({unit})"), cell(key, ours[key]), cell(key, theirs[key]),
                      cell(key, theirs[key] - ours[key])], **data_attributes(cost=key))
             for key, label, unit in QUANTITY_ROWS]
    return dbc.Table([html.Thead(html.Tr([html.Th(currency), html.Th("plan", className="text-end"),
                                          html.Th(baseline.replace("_", " "), className="text-end"),
                                          html.Th("plan saves", className="text-end")])),
                      html.Tbody(rows)], size="sm", id="plan-cost-table")


def _now_marker(now_utc: datetime, tz: str) -> tuple[list[dict], list[dict]]:
    """A vertical "now" line across every panel (shapes and annotation of a plotly layout)."""
    x = local_iso_times(pd.DatetimeIndex([now_utc]), tz)[0]
    shapes = [{"type": "line", "xref": "x", "yref": "paper", "x0": x, "x1": x, "y0": 0, "y1": 1,
               "line": {"color": "#212529", "width": 1.5, "dash": "dash"}, "name": "now"}]
    annotations = [{"xref": "x", "yref": "paper", "x": x, "y": 1, "text": "now", "showarrow": False,
                    "yanchor": "bottom", "font": {"size": 11}}]
    return shapes, annotations


def _panels(layout: dict, panels: tuple[tuple[str, str], ...], height: float, gap: float) -> None:
    for row, (axis, title) in enumerate(panels):
        top = 1 - row * (height + gap)
        layout["yaxis" + axis[1:]] = {"title": {"text": title}, "domain": [top - height, top], "showgrid": True,
                                      "gridcolor": "#eee", "anchor": "x", "rangemode": "tozero"}


def _stored_pct_name(asset: AssetBase) -> str:
    """What the page calls a storage asset's stored percentage: "<asset id> <its kind's stored_pct_label, else
    its kind_label> %"."""
    return f"{asset.id} {asset.stored_pct_label or asset.kind_label} %"


def plan_figure(plan: dict, park: Park, now_utc: datetime | None = None) -> dict:
    """Price; storage flows, kW and kWth; stored percentages; grid import and export: four panels on one time
    axis (park time), straight from the plan's columns, with a line at ``now_utc``. The storage panels draw,
    for each asset in park order whose kind declares plan traces (twin.kinds.base.AssetBase.plan_traces) and
    whose columns the plan has, those traces and, dotted in the first one's colour, its stored percentage."""
    steps = plan["steps"]
    x = [s["ts_local"].replace(" ", "T") for s in steps]
    columns = set(steps[0]) if steps else set()
    charted = [asset for _, asset in park.iter_assets() if asset.plan_traces]

    def line(column: str, name: str, axis: str, colour: str, **style) -> dict:
        return {"type": "scatter", "mode": "lines", "x": x, "y": [s[column] for s in steps], "name": name,
                "yaxis": axis, "line": {"color": colour, "shape": "hv", **style}}

    flows = [(f"{asset.id}.{trace.column}", f"{asset.id} {trace.label}", trace.colour)
             for asset in charted for trace in asset.plan_traces]
    states = [(f"{asset.id}.{STORED_PCT_COLUMN}", _stored_pct_name(asset), asset.plan_traces[0].colour)
              for asset in charted]
    traces = [line("price_cny_per_kwh", f"energy price ({plan['currency']}/kWh)", "y", "#6f42c1")]
    traces += [line(column, name, "y2", colour) for column, name, colour in flows if column in columns]
    traces += [line(column, name, "y3", colour, dash="dot") for column, name, colour in states if column in columns]
    traces.append(line("grid_import_kw", "grid import kW", "y4", "#dc3545"))
    traces.append(line("grid_export_kw", "grid export kW", "y4", "#0d6efd"))
    layout = {"height": 720, "margin": {"l": 70, "r": 10, "t": 20, "b": 30}, "hovermode": "x unified",
              "plot_bgcolor": "white", "legend": {"orientation": "h", "y": -0.06},
              "xaxis": {"showgrid": True, "gridcolor": "#eee", "anchor": "y4"}, "uirevision": "plan"}
    _panels(layout, (("y", f"price {plan['currency']}/kWh"), ("y2", "storage kW / kWth"), ("y3", "state %"),
                     ("y4", "grid kW")), 0.22, 0.04)
    if now_utc is not None:
        layout["shapes"], layout["annotations"] = _now_marker(now_utc, park.site.timezone)
    return {"data": traces, "layout": layout}


def actual_series(ctx: DashboardContext, start_utc: datetime, end_utc: datetime) -> dict[str, pd.Series]:
    """What history measured in [start, end) per 15-minute step (means), by plan column: the stored percentage
    (:data:`STORED_PCT_COLUMN`) of every storage asset (its kind's stored percentage point,
    twin.kinds.base.AssetBase.stored_pct_point) in park order, and ``grid_import_kw`` (the grid meter's power,
    import only)."""
    park = ctx.park
    wanted = {f"{asset.id}.{STORED_PCT_COLUMN}": point_id(building.id, asset.id, asset.stored_pct_point)
              for building, asset in park.iter_assets() if asset.stored_pct_point is not None}
    grid = park.role_points(Role.GRID_POWER)
    ids = list(wanted.values()) + grid
    if end_utc <= start_utc or not ids:
        return {}
    wide = ctx.history.resample(ids, start_utc, end_utc, interval_s=int(STEP.total_seconds()), agg="mean")
    series = {column: wide[pid] for column, pid in wanted.items()}
    if grid:
        series["grid_import_kw"] = wide[grid].sum(axis=1, min_count=1).clip(lower=0.0)
    return series


def _storage_panels(park: Park) -> list[tuple[str, str]]:
    """One panel per storage asset (its kind declares a stored percentage point), in park order, charted against
    the plan's stored percentage column: (that column, the panel's title, :func:`_stored_pct_name`)."""
    return [(f"{asset.id}.{STORED_PCT_COLUMN}", _stored_pct_name(asset))
            for _, asset in park.iter_assets() if asset.stored_pct_point is not None]


def actual_figure(ctx: DashboardContext, plan: dict, approved: dict | None, now_utc: datetime) -> dict:
    """Each storage asset's stored percentage (battery SOC, ice inventory...) and grid import today (park time):
    actual so far from history, the plan in force and the approved plan (when it is another one), with a line
    at now."""
    tz = ctx.park.site.timezone
    day_start = pd.Timestamp(now_utc).tz_convert(tz).normalize()
    day_end = day_start + pd.Timedelta(days=1)
    actual = actual_series(ctx, day_start.tz_convert("UTC").to_pydatetime(), now_utc)
    panels = _storage_panels(ctx.park) + [("grid_import_kw", "grid import kW")]
    traces = []

    def planned(record: dict, column: str, name: str, axis: str, colour: str, dash: str) -> dict:
        steps = [s for s in record["steps"] if _time(s["ts_local"]) < day_end]
        return {"type": "scatter", "mode": "lines", "x": [s["ts_local"].replace(" ", "T") for s in steps],
                "y": [s.get(column) for s in steps], "name": f"{name} ({record['id']})", "yaxis": axis,
                "line": {"color": colour, "shape": "hv", "dash": dash}, "legendgroup": name}

    for row, (column, title) in enumerate(panels):
        axis = "y" if row == 0 else f"y{row + 1}"
        if column in actual:
            s = actual[column]
            times = cast(pd.DatetimeIndex, s.index)
            traces.append({"type": "scatter", "mode": "lines", "x": list(local_iso_times(times, tz)),
                           "y": [None if not np.isfinite(v) else float(v) for v in s.to_numpy(float)],
                           "name": f"actual {title}", "yaxis": axis, "line": {"color": "#212529", "shape": "hv"}})
        traces.append(planned(plan, column, f"plan in force {title}", axis, "#0d6efd", "solid"))
        if approved is not None:
            traces.append(planned(approved, column, f"approved plan {title}", axis, "#198754", "dot"))
    gap = 0.06
    height = (1 - gap * (len(panels) - 1)) / len(panels)
    layout = {"height": 180 * len(panels) + 80, "margin": {"l": 70, "r": 10, "t": 20, "b": 30},
              "hovermode": "x unified", "plot_bgcolor": "white", "legend": {"orientation": "h", "y": -0.08},
              "xaxis": {"showgrid": True, "gridcolor": "#eee", "anchor": f"y{len(panels)}" if len(panels) > 1 else "y",
                        "range": list(local_iso_times(pd.DatetimeIndex([day_start, day_end]), tz))},
              "uirevision": "actual"}
    _panels(layout, tuple(("y" if i == 0 else f"y{i + 1}", title) for i, (_, title) in enumerate(panels)),
            height, gap)
    layout["shapes"], layout["annotations"] = _now_marker(now_utc, tz)
    return {"data": traces, "layout": layout}


def register_callbacks(app: Dash, ctx: DashboardContext) -> None:
    if ctx.providers.plan is None:
        return

    @app.callback(Output("plan-costs", "children"), Output("plan-baseline-chosen", "data"),
                  Input("plan-baseline", "value"), prevent_initial_call=True)
    def compare(baseline):
        plan = ctx.providers.installed_plan().plan()
        if plan is None or baseline not in plan["baselines"]:
            return no_update, no_update
        return cost_table(plan, baseline), baseline

    @app.callback(Output("plan-action-result", "children"), Input("plan-approve", "n_clicks"),
                  State("plan-shown", "data"), prevent_initial_call=True)
    def approve(clicks, shown):
        if not clicks or not shown:
            return no_update
        return _alert(actions.approve_plan(ctx, flask.request, shown["id"]), "approving")

    @app.callback(Output("plan-action-result", "children", allow_duplicate=True),
                  Input("plan-approve-review", "n_clicks"), State("plan-shown", "data"), prevent_initial_call=True)
    def approve_review(clicks, shown):
        if not clicks or not shown or not shown["review_id"]:
            return no_update
        return _alert(actions.approve_plan(ctx, flask.request, shown["review_id"]), "approving")

    @app.callback(Output("plan-action-result", "children", allow_duplicate=True), Input("plan-suspend", "n_clicks"),
                  prevent_initial_call=True)
    def suspend(clicks):
        return _alert(actions.suspend_plan(ctx, flask.request), "suspending") if clicks else no_update

    @app.callback(Output("plan-action-result", "children", allow_duplicate=True), Input("plan-replan", "n_clicks"),
                  prevent_initial_call=True)
    def replan(clicks):
        return _alert(actions.replan(ctx, flask.request), "re-planning") if clicks else no_update

    @app.callback(Output("plan-status", "children"), Output("plan-body", "children"), Output("plan-shown", "data"),
                  Input("plan-tick", "n_intervals"), Input("plan-action-result", "children"),
                  State("plan-shown", "data"), State("plan-baseline-chosen", "data"), prevent_initial_call=True)
    def refresh(_, __, shown, baseline):
        plan = ctx.providers.installed_plan().plan()
        signature = _signature(plan)
        if signature == shown:
            return no_update, no_update, no_update
        same_body = plan is not None and shown is not None and shown["body"] == signature["body"]
        return _status(ctx, plan), no_update if same_body else _body(ctx, plan, baseline), signature


def _alert(result: actions.ActionResult, doing: str) -> dbc.Alert:
    if result.ok:
        return dbc.Alert(result.message, color="success", className="py-2 mb-0", id="plan-message")
    hint = " Sign in with a trader account to do this." if result.status == 403 else ""
    return dbc.Alert(f"{doing} refused ({result.status}): {result.message}.{hint}", color="danger",
                     className="py-2 mb-0", id="plan-message")
