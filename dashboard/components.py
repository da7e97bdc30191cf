"""Small building blocks shared by the dashboard pages."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import dash_bootstrap_components as dbc
import numpy as np
import pandas as pd
from dash import html

from twin.readings import Quality

QUALITY_COLOURS = {Quality.GOOD: "success", Quality.STALE: "warning", Quality.BAD: "danger",
                   Quality.COMM_FAIL: "dark"}


def data_attributes(**values: str) -> dict[str, Any]:
    """``data-<name>="<value>"`` attributes as keyword arguments of a Dash html component
    (``**data_attributes(point=...)``): the attributes tests and scripts find elements by."""
    return {f"data-{name}": value for name, value in values.items()}


def not_available(what: str, reason: str) -> dbc.Alert:
    """The plain statement a page makes while the data behind it does not exist yet."""
    return dbc.Alert([html.Strong(f"{what}: not available yet. "), reason], color="secondary",
                     className="not-available")


def quality_badge(quality: Quality) -> dbc.Badge:
    return dbc.Badge(quality.label, color=QUALITY_COLOURS[quality], className="quality")


def age_text(seconds: float) -> str:
    """A reading's age in the largest whole unit: 42 s, 5 min, 3 h, 2 d."""
    if seconds < 0:
        return "0 s"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds:.0f} s"


def format_value(value: float | None, unit: str = "") -> str:
    """A value with sensible precision for a table or card; an en dash when unknown."""
    if value is None:
        return "–"
    magnitude = abs(value)
    text = f"{value:,.0f}" if magnitude >= 100 else f"{value:,.1f}" if magnitude >= 10 else f"{value:,.2f}"
    return f"{text} {unit}".strip()


def page_header(title: str, subtitle: str | None = None) -> html.Div:
    return html.Div([html.H3(title, className="mb-0"),
                     html.Div(subtitle, className="text-muted small") if subtitle else None],
                    className="mb-3")


def local_time_text(ts_utc: datetime | None, tz: str, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A UTC time shown in the park's time zone."""
    return ts_utc.astimezone(ZoneInfo(tz)).strftime(fmt) if ts_utc else "–"


def local_iso_times(index: pd.DatetimeIndex, tz: str) -> np.ndarray:
    """ISO 8601 strings with the park's UTC offset (plotly draws them as park wall-clock time)."""
    return np.asarray([f"{t[:-2]}:{t[-2:]}" for t in index.tz_convert(tz).strftime("%Y-%m-%dT%H:%M:%S%z")],
                      dtype=object)
