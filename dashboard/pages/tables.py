"""A plain table of provider records, the way pages show data whose shape its provider decides."""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import html


def records_table(records: list[dict], table_id: str, empty: str) -> html.Div | dbc.Table:
    """One column per key (in first-seen order), one row per record; ``empty`` when there are none."""
    if not records:
        return html.Div(empty, className="text-muted", id=table_id)
    columns = list(dict.fromkeys(key for record in records for key in record))
    return dbc.Table([
        html.Thead(html.Tr([html.Th(c) for c in columns])),
        html.Tbody([html.Tr([html.Td("–" if r.get(c) is None else str(r.get(c))) for c in columns])
                    for r in records]),
    ], id=table_id, size="sm", hover=True, responsive=True, className="points-table")
