"""Readings for GET /api/readings a page at a time: at most ``limit`` rows per answer, and a cursor to the rest.

Raw readings come point by point in the order asked, each point's oldest first; the cursor
``POINT_ID@EPOCH_MS`` names the last reading given (the history keeps milliseconds, and one reading per point
and millisecond), and the next page starts right after it. Bucket means come in whole buckets for every
point at once, ``limit // points`` buckets a page (at least one); the cursor ``EPOCH_MS`` is where the next
page's first bucket starts (buckets are aligned to the Unix epoch, see :meth:`twin.history.History.resample`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from dashboard.history_views import finite_or_none
from twin.history import History

ONE_MS = timedelta(milliseconds=1)


@dataclass(frozen=True)
class ReadingsPage:
    """One answer's series by point (JSON-ready), its row count, and the cursor to the rest (None: no more)."""

    points: dict[str, dict]
    rows: int
    next_cursor: str | None


def _ms(ts: datetime) -> int:
    return round(ts.timestamp() * 1000)


def _from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def raw_page(history: History, ids: list[str], start: datetime, end: datetime, limit: int,
             cursor: str | None) -> ReadingsPage:
    """Up to ``limit`` raw readings of ``ids`` in [start, end) after ``cursor``; ValueError for a cursor that
    is not one of these points' ``POINT_ID@EPOCH_MS``."""
    first, after = 0, None
    if cursor is not None:
        point_id, _, ms_text = cursor.rpartition("@")
        if point_id not in ids or not ms_text.isdigit():
            raise ValueError(cursor)
        first, after = ids.index(point_id), _from_ms(int(ms_text)) + ONE_MS
    series: dict[str, dict[str, list[Any]]] = {pid: {"ts_utc": [], "value": [], "quality": []} for pid in ids}
    rows = 0
    for index in range(first, len(ids)):
        pid = ids[index]
        frame = history.query([pid], max(start, after) if index == first and after else start, end)
        taken = frame.iloc[:limit - rows]
        series[pid] = {"ts_utc": [t.isoformat() for t in taken["ts_utc"]],
                       "value": [finite_or_none(v) for v in taken["value"]],
                       "quality": [int(q) for q in taken["quality"]]}
        rows += len(taken)
        if rows == limit:
            more = len(frame) > len(taken) or index + 1 < len(ids)
            return ReadingsPage(series, rows, f"{pid}@{_ms(taken['ts_utc'].iloc[-1])}" if more else None)
    return ReadingsPage(series, rows, None)


def bucket_page(history: History, ids: list[str], start: datetime, end: datetime, interval_s: int, limit: int,
                cursor: str | None) -> ReadingsPage:
    """Bucket means of ``ids`` in [start, end), ``limit // len(ids)`` buckets (at least one) from ``cursor``
    on; ValueError for a cursor that is not an epoch millisecond inside [start, end)."""
    if cursor is not None:
        if not cursor.isdigit() or not _ms(start) < int(cursor) < _ms(end):
            raise ValueError(cursor)
        start = _from_ms(int(cursor))
    interval_ms = interval_s * 1000
    first_bucket_ms = _ms(start) // interval_ms * interval_ms
    page_end_ms = first_bucket_ms + max(1, limit // len(ids)) * interval_ms
    page_end = min(end, _from_ms(page_end_ms))
    wide = history.resample(ids, start, page_end, interval_s=interval_s, agg="mean")
    stamps = [t.isoformat() for t in wide.index]
    points = {pid: {"ts_utc": stamps, "value": [finite_or_none(v) for v in wide[pid]]} for pid in ids}
    return ReadingsPage(points, len(wide) * len(ids), str(page_end_ms) if page_end < end else None)
