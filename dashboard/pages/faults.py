"""Faults: fault episodes from the energy models' fault rules (issue 4); says so while they are missing."""

from __future__ import annotations

from datetime import timedelta

import dash_bootstrap_components as dbc
from dash import html

from dashboard.components import not_available, page_header
from dashboard.context import DashboardContext
from dashboard.pages.tables import records_table
from dashboard.providers import MISSING

PATH = "/faults"
WINDOW = timedelta(days=7)


def layout(ctx: DashboardContext, **_query) -> html.Div:
    header = page_header("Faults", "active faults, fault timeline and fault KPIs by asset kind")
    if ctx.providers.faults is None:
        return html.Div([header, not_available("Faults", MISSING["faults"])])
    end = ctx.data_end()
    episodes = ctx.providers.faults.faults(end - WINDOW, end)
    return html.Div([header, dbc.Card(dbc.CardBody([
        html.H5("Fault episodes of the last 7 days", className="card-title"),
        records_table(episodes, "faults-table", "no faults in the last 7 days"),
    ]))])
