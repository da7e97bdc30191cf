"""The Faults page's "alarm system" card: the alarm-system KPIs of ISA-18.2 / EEMUA 191 (energy.alarm_kpis)
beside the benchmarks of DOMAIN.md "Alarm management", each marked within or beyond its benchmark."""

from __future__ import annotations

from datetime import timedelta

import dash_bootstrap_components as dbc
from dash import html

from dashboard.components import data_attributes
from dashboard.context import DashboardContext

ACCEPTABLE_ALARMS_PER_HOUR = 6.0
"""EEMUA 191: about 6 alarms per operator hour in normal operation is very likely acceptable."""
FLOOD_PERIODS_PCT_MAX = 1.0
"""Keep floods under about 1 % of 10-minute periods."""
PRIORITY_AIM = "low 80 %, medium 15 %, high 5 %, critical rare"
"""The priority distribution to aim for."""


def alarm_health_card(ctx: DashboardContext, window: timedelta) -> dbc.Card:
    """The card for the ``window`` up to the end of the periods (ctx.periods_end)."""
    end = ctx.periods_end()
    kpis = ctx.providers.installed_faults().alarm_kpis(end - window, end)
    return dbc.Card(dbc.CardBody([
        html.H5(f"Alarm system, last {window.days} days", className="card-title"),
        html.Div("Annunciated alarms only: an alarm explained by its cause (a device's comm loss) is recorded, "
                 "not shown to the operator.", className="text-muted small mb-2"),
        alarm_health_table(kpis),
    ]), className="mb-3", id="alarm-health")


def alarm_health_table(kpis: dict) -> dbc.Table:
    """One row per KPI: its value, the benchmark, and whether the value is within it."""
    rate = kpis["alarms_per_operator_hour"]
    rows = [
        ("alarms", f"{kpis['alarms']:,} ({kpis['suppressed']:,} suppressed by cause)", "", None),
        ("alarms per operator hour", f"{rate:.2f}", f"≤ {ACCEPTABLE_ALARMS_PER_HOUR:g}",
         rate <= ACCEPTABLE_ALARMS_PER_HOUR),
        ("10-minute periods in flood (> 10 alarms)", f"{kpis['flood_periods_pct']:.2f} %",
         f"< {FLOOD_PERIODS_PCT_MAX:g} %", kpis["flood_periods_pct"] < FLOOD_PERIODS_PCT_MAX),
        ("chattering alarms (≥ 3 in 1 min)", _listed(kpis["chattering_alarms"]), "none",
         not kpis["chattering_alarms"]),
        ("standing alarms (active > 24 h)", _listed(kpis["standing_alarms"]), "none", not kpis["standing_alarms"]),
        ("priority distribution", ", ".join(f"{label} {pct:.0f} %" for label, pct in kpis["priority_pct"].items()),
         PRIORITY_AIM, None),
    ]
    return dbc.Table([
        html.Thead(html.Tr([html.Th(h) for h in ("KPI", "value", "benchmark", "")])),
        html.Tbody([html.Tr([html.Td(name), html.Td(value, className="alarm-kpi-value"), html.Td(benchmark),
                             html.Td(_verdict(within))], **data_attributes(kpi=name)) for name, value, benchmark, within
                    in rows]),
    ], id="alarm-health-table", size="sm", responsive=True)


def _listed(items: list[str]) -> str:
    return "none" if not items else f"{len(items)}: " + ", ".join(items[:5]) + (" …" if len(items) > 5 else "")


def _verdict(within: bool | None):
    if within is None:
        return ""
    return dbc.Badge("within" if within else "beyond", color="success" if within else "danger")
