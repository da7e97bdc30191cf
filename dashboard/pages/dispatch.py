"""Dispatch (energy trader): the optimizer's plan (issue 6); says so while it is missing."""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import html

from dashboard.components import not_available, page_header
from dashboard.context import DashboardContext
from dashboard.pages.tables import records_table
from dashboard.providers import MISSING

PATH = "/dispatch"


def layout(ctx: DashboardContext, **_query) -> html.Div:
    header = page_header("Dispatch", "price curve, battery and ice schedules, plan against baseline")
    if ctx.providers.plan is None:
        return html.Div([header, not_available("Dispatch plans", MISSING["plan"])])
    plan = ctx.providers.plan.plan()
    if plan is None:
        return html.Div([header, dbc.Alert("No dispatch plan has been made yet.", color="info")])
    return html.Div([header, dbc.Card(dbc.CardBody([
        html.H5(f"Plan made {plan.get('created', '–')}", className="card-title"),
        records_table(plan.get("rows", []), "plan-table", "the plan has no rows"),
    ]))])
