"""Overview (facility manager): energy of today, this week or chosen days against a like-for-like period.

Every figure comes from the KPI engine (:mod:`energy.kpi` through the KPI
provider), the one ``parktwin kpi`` and /api/energy use: consumption, PV,
self-sufficiency, peak demand, energy cost, the month-to-date demand charge,
CO2, plant COP and the energy flow; each card shows its coverage. Changes are
against the same weekdays of the week before, or the same days of the month or
year before (ratios in percentage points); a period still running is compared
with the same part of its days. The power chart reads subsystem power from
history.
"""

from __future__ import annotations

from datetime import date, datetime

import dash_bootstrap_components as dbc
from dash import Dash, Input, Output, dcc, html

from dashboard.components import format_value, local_iso_times, local_time_text, not_available, page_header
from dashboard.context import DashboardContext
from dashboard.history_views import (
    COMPARISONS,
    ENERGY_INTERVAL_S,
    PERIODS,
    choose_period,
    coarser,
    last_local_day,
    screen_interval_s,
    subsystem_power,
)
from energy.kpi import FLOW_SOURCES, flow_sinks, load_names
from twin.kinds import power_groups

PATH = "/"
REFRESH_MS = 15_000
SERIES_COLOURS = {"other": "#9e9e9e", "battery charge": "#c5b0d5", "export": "#ff9896"}
SERIES_LABELS = {"other": "Other loads", "battery charge": "Battery charging", "export": "Export"}
"""Colours and labels of what the charts show beside the power groups of the asset kinds."""


def colours() -> dict[str, str]:
    """Colour (CSS hex) of every series the charts show, by name: the power groups', then the rest."""
    return {group.name: group.colour for group in power_groups() if group.colour} | SERIES_COLOURS


def labels() -> dict[str, str]:
    """Label of every series the charts show, by name: the power groups', then the rest."""
    return {group.name: group.label for group in power_groups() if group.label} | SERIES_LABELS


EMPTY_FIGURE = {"data": [], "layout": {"height": 120}}
CARD_KPIS = (("consumption_kwh", False), ("pv_kwh", True), ("grid_import_kwh", False),
             ("self_sufficiency_pct", True), ("peak_demand_kw", False), ("cost_cny", False),
             ("demand_charge_cny", False), ("co2_t", False), ("plant_cop", True), ("savings_cny", True))
"""Cards in order, each with whether a higher value is better."""
RATIO_UNITS = ("%",)
"""Units of ratios, whose changes are shown in percentage points."""


def layout(ctx: DashboardContext, period: str = "today", first_day: str | None = None,
           last_day: str | None = None, compare: str = "week", **_query) -> html.Div:
    """The page; the URL may choose the period, ``/?period=week`` or ``/?period=custom&first_day=..&last_day=..``,
    and what it is compared with, ``&compare=week|month|year`` (:func:`dashboard.history_views.choose_period`)."""
    today = last_local_day(ctx.park, ctx.data_end())
    kind = period if period in PERIODS else "today"
    compare = compare if compare in COMPARISONS else "week"
    return html.Div([
        page_header("Overview", f"{ctx.park.name} · energy from the twin's history"),
        dbc.Row([
            dbc.Col(dbc.RadioItems(
                id="overview-period", value=kind, inline=True, className="btn-group",
                inputClassName="btn-check", labelClassName="btn btn-outline-primary",
                labelCheckedClassName="active",
                options=[{"label": "Today", "value": "today"}, {"label": "This week", "value": "week"},
                         {"label": "Custom", "value": "custom"}]), width="auto"),
            dbc.Col(dcc.DatePickerRange(id="overview-days", start_date=first_day or today.isoformat(),
                                        end_date=last_day or today.isoformat(), max_date_allowed=today.isoformat(),
                                        display_format="YYYY-MM-DD", disabled=kind != "custom"), width="auto"),
            dbc.Col(dbc.Select(id="overview-compare", value=compare, options=[
                {"label": "vs the week before", "value": "week"}, {"label": "vs the month before", "value": "month"},
                {"label": "vs the year before", "value": "year"}]), width="auto"),
            dbc.Col(html.Div(id="overview-period-label", className="text-muted pt-2"), width="auto"),
        ], className="g-2 mb-3 align-items-center"),
        dcc.Loading(html.Div(id="overview-cards"), type="dot", delay_show=500),
        dbc.Card(dbc.CardBody([html.H5("Power by subsystem", className="card-title"),
                               dcc.Graph(id="overview-power-chart", config={"displaylogo": False})]),
                 className="mb-3"),
        dbc.Card(dbc.CardBody([html.H5("Energy flow", className="card-title"),
                               dcc.Graph(id="overview-sankey", config={"displaylogo": False})]),
                 className="mb-3"),
        dcc.Interval(id="overview-tick", interval=REFRESH_MS),
    ])


def _change(current: float | None, previous: float | None, unit: str, higher_is_better: bool,
            compared_with: str) -> html.Span:
    """The change against the compared period: percentage points for a ratio, else relative."""
    if current is None or previous is None or (unit not in RATIO_UNITS and previous == 0):
        return html.Span(f"nothing to compare with ({compared_with})", className="kpi-change text-muted")
    change = current - previous if unit in RATIO_UNITS else (current - previous) / abs(previous)
    better = (change > 0) == higher_is_better
    arrow = "▲" if change > 0 else "▼" if change < 0 else "="
    text = f"{change:+.1f} pp" if unit in RATIO_UNITS else f"{change:+.1%}"
    return html.Span(f"{arrow} {text} vs {compared_with}",
                     className=f"kpi-change {'text-success' if better else 'text-danger'}")


def _card(key: str, label: str, value: str, change: html.Span | None, note: str | None = None,
          coverage: float | None = None) -> dbc.Col:
    body = [html.Div(label, className="kpi-label"),
            html.Div(value, id=f"kpi-{key}", className="kpi-value"),
            change,
            html.Div(note, id=f"kpi-{key}-note", className="small text-muted") if note else None,
            html.Div(f"data for {coverage:.1%} of the period", id=f"kpi-{key}-coverage",
                     className=f"small {'text-muted' if coverage >= 0.99 else 'text-warning'}")
            if coverage is not None else None]
    return dbc.Col(dbc.Card(dbc.CardBody(body), className="kpi-card h-100"), xs=12, sm=6, lg=3, className="mb-3")


def _cards(now: dict, before: dict, energy: dict, compared_with: str, tz: str) -> list[dbc.Col]:
    """One card per CARD_KPIS entry from the engine's labelled KPIs of the period and of the compared one."""
    notes = {
        "grid_import_kwh": "export " + format_value(now["grid_export_kwh"]["value"], "kWh"),
        "self_sufficiency_pct": "self-consumption of PV " + format_value(now["self_consumption_pct"]["value"], "%"),
        "peak_demand_kw": "at " + local_time_text(datetime.fromisoformat(energy["peak_demand_start_utc"]), tz,
                                                  "%a %d %b %H:%M") if energy["peak_demand_start_utc"] else None,
        "cost_cny": "import by tariff period minus export revenue "
                    f"({format_value(now['export_revenue_cny']['value'], now['export_revenue_cny']['unit'])})",
        "demand_charge_cny": "on the billed peak so far this month, "
                             f"{format_value(now['billed_demand_kw']['value'], 'kW')}; not part of the cost above",
    }
    cards = []
    for key, higher_is_better in CARD_KPIS:
        kpi = now[key]
        change = None if key == "demand_charge_cny" else \
            _change(kpi["value"], before[key]["value"], kpi["unit"], higher_is_better, compared_with)
        cards.append(_card(key, kpi["label"], format_value(kpi["value"], kpi["unit"]), change, notes.get(key),
                           kpi["coverage"]))
    return cards


def power_figure(frame, tz: str) -> dict:
    """Stacked loads, with PV, battery and grid as lines (kW); a plain figure dict (fast to build)."""
    x = local_iso_times(frame.index, tz)
    colour, label = colours(), labels()
    traces = [{"type": "scatter", "x": x, "y": frame[name].to_numpy(), "name": label[name], "mode": "lines",
               "stackgroup": "loads", "line": {"width": 0.5, "color": colour[name]}} for name in load_names()]
    traces += [{"type": "scatter", "x": x, "y": frame[name].to_numpy(), "name": label[name], "mode": "lines",
                "line": {"color": colour[name], "dash": dash, "width": 2}}
               for name, dash in (("pv", "solid"), ("battery", "solid"), ("grid", "dot"))]
    grid = {"showgrid": True, "gridcolor": "#eee"}
    return {"data": traces, "layout": {
        "margin": {"l": 50, "r": 10, "t": 10, "b": 30}, "height": 380, "yaxis": {"title": {"text": "kW"}, **grid},
        "xaxis": grid, "legend": {"orientation": "h", "y": -0.12}, "hovermode": "x unified",
        "plot_bgcolor": "white", "uirevision": "overview"}}


def _translucent(hex_colour: str, alpha: float = 0.35) -> str:
    r, g, b = (int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def sankey_figure(flows: list[dict]) -> dict:
    """Energy from grid, PV and battery to each use (kWh; the engine's ``flows_kwh``), as a plain figure dict."""
    nodes = [*FLOW_SOURCES, *flow_sinks()]
    index = {name: i for i, name in enumerate(nodes)}
    colour, label = colours(), labels()
    return {"data": [{
        "type": "sankey", "valueformat": ",.0f", "valuesuffix": " kWh",
        "node": {"label": [label[n] for n in nodes], "color": [colour[n] for n in nodes], "pad": 18},
        "link": {"source": [index[f["source"]] for f in flows], "target": [index[f["target"]] for f in flows],
                 "value": [f["kwh"] for f in flows], "color": [_translucent(colour[f["source"]]) for f in flows]},
    }], "layout": {"margin": {"l": 10, "r": 10, "t": 10, "b": 10}, "height": 340}}


def register_callbacks(app: Dash, ctx: DashboardContext) -> None:
    tz = ctx.park.site.timezone

    @app.callback(Output("overview-days", "disabled"), Input("overview-period", "value"))
    def enable_days(kind):
        return kind != "custom"

    @app.callback(
        Output("overview-period-label", "children"), Output("overview-cards", "children"),
        Output("overview-power-chart", "figure"), Output("overview-sankey", "figure"),
        Input("overview-period", "value"), Input("overview-days", "start_date"), Input("overview-days", "end_date"),
        Input("overview-compare", "value"), Input("overview-tick", "n_intervals"),
    )
    def refresh(kind, first_day, last_day, compare, _):
        end = ctx.data_end()
        try:
            chosen = choose_period(ctx.park, kind, end, date.fromisoformat(first_day) if first_day else None,
                                   date.fromisoformat(last_day) if last_day else None, compare)
        except ValueError as exc:
            return (str(exc), not_available("Energy", "choose a first and a last day"),
                    EMPTY_FIGURE, EMPTY_FIGURE)
        power_15min = subsystem_power(ctx.park, ctx.history, chosen.start, chosen.end, ENERGY_INTERVAL_S)
        interval_s = screen_interval_s(chosen.start, chosen.end)
        # long periods draw from the 15-minute buckets already read instead of asking the database again
        power = coarser(power_15min, interval_s) if interval_s % ENERGY_INTERVAL_S == 0 else \
            subsystem_power(ctx.park, ctx.history, chosen.start, chosen.end, interval_s)
        label = (f"{chosen.label}{' (so far)' if chosen.partial else ''} · data up to {local_time_text(end, tz)} "
                 f"({tz}) · compared with the {chosen.previous_label}")
        if power.empty:
            return label, not_available("Energy", "the history holds no power readings in this period"), \
                EMPTY_FIGURE, EMPTY_FIGURE
        energy = ctx.kpi.energy(chosen.start, chosen.end)
        before = ctx.kpi.kpis(chosen.previous_start, chosen.previous_end)
        cards = dbc.Row(_cards(energy["kpis"], before, energy, chosen.previous_label, tz))
        return label, cards, power_figure(power, tz), sankey_figure(energy["flows_kwh"])
