"""SQL shared by the backends: the bucketed aggregates of :meth:`History.resample`."""

from __future__ import annotations

from collections.abc import Callable

from twin.history.interface import COUNTED_QUALITY_MAX

_AGGREGATE_SQL = {"mean": "avg(value)", "min": "min(value)", "max": "max(value)", "sum": "sum(value)"}
_EDGE_TIME_SQL = {"first": "min(ts_ms)", "last": "max(ts_ms)"}


def bucket_query(agg: str, readings: str, keys: list[int], start_ms: int, end_ms: int, interval_ms: int,
                 param: Callable[[str], str]) -> tuple[str, dict[str, int]]:
    """SQL and parameters giving (point_key, bucket_ms, value) per point and bucket, in either backend.

    Buckets are interval_ms wide and aligned to the epoch. They are counted
    from an origin at or before start_ms, so integer division of the
    non-negative offset floors in both SQLite and PostgreSQL. first / last
    group by bucket to find the time of the edge reading and join back to
    fetch its value. param(name) renders the driver's placeholder for a named
    parameter. Point keys are integers read from the points table, so they are
    written into the SQL as literals.
    """
    origin_ms = start_ms - start_ms % interval_ms  # Python's % floors, also before 1970
    key_list = ", ".join(str(int(key)) for key in keys)
    bucket = f"{param('origin_ms')} + (ts_ms - {param('origin_ms')}) / {param('interval_ms')} * {param('interval_ms')}"
    counted = (f"point_key IN ({key_list}) AND ts_ms >= {param('start_ms')} AND ts_ms < {param('end_ms')} "
               f"AND quality <= {COUNTED_QUALITY_MAX} AND value IS NOT NULL")
    if agg in _AGGREGATE_SQL:
        query = (f"SELECT point_key, {bucket} AS bucket_ms, {_AGGREGATE_SQL[agg]} FROM {readings} "
                 f"WHERE {counted} GROUP BY point_key, bucket_ms")
    else:
        query = (f"SELECT r.point_key, b.bucket_ms, r.value FROM "
                 f"(SELECT point_key, {bucket} AS bucket_ms, {_EDGE_TIME_SQL[agg]} AS ts_ms FROM {readings} "
                 f" WHERE {counted} GROUP BY point_key, bucket_ms) AS b "
                 f"JOIN {readings} AS r ON r.point_key = b.point_key AND r.ts_ms = b.ts_ms")
    return query, {"origin_ms": origin_ms, "interval_ms": interval_ms, "start_ms": start_ms, "end_ms": end_ms}
