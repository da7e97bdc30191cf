"""Overview (facility manager): energy of today, this week or chosen days against the period before.

From history: consumption, PV, self-sufficiency, peak demand, power by
subsystem and the energy flow. Cost, CO2, savings and plant COP come from the
KPI provider (energy models) and say so while it is missing.
"""

from __future__ import annotations

from datetime import date

import dash_bootstrap_components as dbc
from dash import Dash, Input, Output, dcc, html

from dashboard.components import format_value, local_iso_times, local_time_text, not_available, page_header
from dashboard.context import DashboardContext
from dashboard.history_views import (
    ENERGY_INTERVAL_S, FLOW_SINKS, FLOW_SOURCES, LOAD_NAMES, PERIODS, EnergySummary, choose_period, coarser,
    energy_summary, last_local_day, screen_interval_s, subsystem_power, summarise_power,
)
from dashboard.providers import MISSING

PATH = "/"
REFRESH_MS = 15_000
COLOURS = {
    "chillers": "#1f77b4", "lighting": "#e0a800", "elevators": "#8c564b", "ev": "#2ca02c", "other": "#9e9e9e",
    "pv": "#ff7f0e", "battery": "#9467bd", "grid": "#d62728", "battery charge": "#c5b0d5", "export": "#ff9896",
}
LABELS = {"chillers": "Chillers", "lighting": "Lighting", "elevators": "Elevators", "ev": "EV charging",
          "other": "Other loads", "pv": "PV", "battery": "Battery", "grid": "Grid",
          "battery charge": "Battery charging", "export": "Export"}
EMPTY_FIGURE = {"data": [], "layout": {"height": 120}}
PROVIDER_KPIS = (("cost_cny", "Cost"), ("co2_t", "CO2"), ("savings_cny", "Savings vs baseline"),
                 ("plant_cop", "Plant COP"))


def layout(ctx: DashboardContext, period: str = "today", first_day: str | None = None,
           last_day: str | None = None, **_query) -> html.Div:
    """The page; the URL may choose the period: ``/?period=week`` or ``/?period=custom&first_day=..&last_day=..``."""
    today = last_local_day(ctx.park, ctx.data_end())
    kind = period if period in PERIODS else "today"
    return html.Div([
        page_header("Overview", f"{ctx.park.name} · energy from the twin's history"),
        dbc.Row([
            dbc.Col(dbc.RadioItems(
                id="overview-period", value=kind, inline=True, className="btn-group",
                inputClassName="btn-check", labelClassName="btn btn-outline-primary",
                labelCheckedClassName="active",
                options=[{"label": "Today", "value": "today"}, {"label": "This week", "value": "week"},
                         {"label": "Custom", "value": "custom"}]), width="auto"),
            dbc.Col(dcc.DatePickerRange(id="overview-days", start_date=first_day or today,
                                        end_date=last_day or today, max_date_allowed=today,
                                        display_format="YYYY-MM-DD", disabled=kind != "custom"), width="auto"),
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


def _change(current: float | None, previous: float | None, good_when_lower: bool) -> html.Span:
    if current is None or previous is None or previous == 0:
        return html.Span("no previous period to compare", className="kpi-change text-muted")
    change = (current - previous) / abs(previous)
    better = (change < 0) == good_when_lower
    arrow = "▲" if change > 0 else "▼" if change < 0 else "="
    return html.Span(f"{arrow} {change:+.1%} vs previous period",
                     className=f"kpi-change {'text-success' if better else 'text-danger'}")


def _card(key: str, label: str, value: str, change: html.Span | None, note: str | None = None,
          missing: bool = False) -> dbc.Col:
    body = [html.Div(label, className="kpi-label"),
            html.Div(value, id=f"kpi-{key}", className="kpi-value"),
            change if change is not None else None,
            html.Div(note, className="small text-muted") if note else None]
    return dbc.Col(dbc.Card(dbc.CardBody(body), className=f"kpi-card h-100{' kpi-missing' if missing else ''}"),
                   xs=12, sm=6, lg=3, className="mb-3")


def _history_cards(now: EnergySummary, before: EnergySummary, tz: str) -> list[dbc.Col]:
    ratio = lambda x: f"{x:.1%}" if x is not None else "–"  # noqa: E731
    return [
        _card("consumption", "Consumption", format_value(now.consumption_kwh, "kWh"),
              _change(now.consumption_kwh, before.consumption_kwh, good_when_lower=True)),
        _card("pv", "PV production", format_value(now.pv_kwh, "kWh"),
              _change(now.pv_kwh, before.pv_kwh, good_when_lower=False)),
        _card("self-sufficiency", "Self-sufficiency", ratio(now.self_sufficiency),
              _change(now.self_sufficiency, before.self_sufficiency, good_when_lower=False),
              note=f"self-consumption of PV {ratio(now.self_consumption)}"),
        _card("peak", "Peak grid demand (15 min)", format_value(now.peak_demand_kw, "kW"),
              _change(now.peak_demand_kw, before.peak_demand_kw, good_when_lower=True),
              note=f"at {local_time_text(now.peak_demand_at, tz, '%a %d %b %H:%M')}"),
    ]


def _provider_cards(ctx: DashboardContext, chosen) -> list[dbc.Col]:
    if ctx.providers.kpi is None:
        return [_card(key, label, MISSING["kpi"], None, missing=True) for key, label in PROVIDER_KPIS]
    now = ctx.providers.kpi.kpis(chosen.start, chosen.end)
    before = ctx.providers.kpi.kpis(chosen.previous_start, chosen.previous_end)
    cards = []
    for key, label in PROVIDER_KPIS:
        kpi = now.get(key, {})
        value = kpi.get("value")
        cards.append(_card(key, kpi.get("label", label), format_value(value, kpi.get("unit", "")),
                           _change(value, before.get(key, {}).get("value"),
                                   good_when_lower=key in ("cost_cny", "co2_t"))))
    return cards


def power_figure(frame, tz: str) -> dict:
    """Stacked loads, with PV, battery and grid as lines (kW); a plain figure dict (fast to build)."""
    x = local_iso_times(frame.index, tz)
    traces = [{"type": "scatter", "x": x, "y": frame[name].to_numpy(), "name": LABELS[name], "mode": "lines",
               "stackgroup": "loads", "line": {"width": 0.5, "color": COLOURS[name]}} for name in LOAD_NAMES]
    traces += [{"type": "scatter", "x": x, "y": frame[name].to_numpy(), "name": LABELS[name], "mode": "lines",
                "line": {"color": COLOURS[name], "dash": dash, "width": 2}}
               for name, dash in (("pv", "solid"), ("battery", "solid"), ("grid", "dot"))]
    grid = {"showgrid": True, "gridcolor": "#eee"}
    return {"data": traces, "layout": {
        "margin": {"l": 50, "r": 10, "t": 10, "b": 30}, "height": 380, "yaxis": {"title": {"text": "kW"}, **grid},
        "xaxis": grid, "legend": {"orientation": "h", "y": -0.12}, "hovermode": "x unified",
        "plot_bgcolor": "white", "uirevision": "overview"}}


def _translucent(hex_colour: str, alpha: float = 0.35) -> str:
    r, g, b = (int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def sankey_figure(summary: EnergySummary) -> dict:
    """Energy from grid, PV and battery to each use (kWh), as a plain figure dict."""
    nodes = [*FLOW_SOURCES, *FLOW_SINKS]
    index = {name: i for i, name in enumerate(nodes)}
    flows = summary.flows_kwh
    return {"data": [{
        "type": "sankey", "valueformat": ",.0f", "valuesuffix": " kWh",
        "node": {"label": [LABELS[n] for n in nodes], "color": [COLOURS[n] for n in nodes], "pad": 18},
        "link": {"source": [index[s] for s, _ in flows], "target": [index[t] for _, t in flows],
                 "value": list(flows.values()), "color": [_translucent(COLOURS[s]) for s, _ in flows]},
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
        Input("overview-tick", "n_intervals"),
    )
    def refresh(kind, first_day, last_day, _):
        end = ctx.data_end()
        try:
            chosen = choose_period(ctx.park, kind, end, date.fromisoformat(first_day) if first_day else None,
                            date.fromisoformat(last_day) if last_day else None)
        except ValueError as exc:
            return (str(exc), not_available("Energy", "choose a first and a last day"),
                    EMPTY_FIGURE, EMPTY_FIGURE)
        power_15min = subsystem_power(ctx.park, ctx.history, chosen.start, chosen.end, ENERGY_INTERVAL_S)
        now = summarise_power(power_15min, chosen.start, chosen.end)
        before = energy_summary(ctx.park, ctx.history, chosen.previous_start, chosen.previous_end)
        interval_s = screen_interval_s(chosen.start, chosen.end)
        # long periods draw from the 15-minute buckets already read instead of asking the database again
        power = coarser(power_15min, interval_s) if interval_s % ENERGY_INTERVAL_S == 0 else \
            subsystem_power(ctx.park, ctx.history, chosen.start, chosen.end, interval_s)
        label = f"{chosen.label} · data up to {local_time_text(end, tz)} ({tz})"
        if power.empty:
            return label, not_available("Energy", "the history holds no power readings in this period"), \
                EMPTY_FIGURE, EMPTY_FIGURE
        cards = dbc.Row(_history_cards(now, before, tz) + _provider_cards(ctx, chosen))
        return label, cards, power_figure(power, tz), sankey_figure(now)
