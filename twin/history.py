"""History store: every reading of every point, in SQLite (default) or PostgreSQL.

One interface, :class:`History`, two backends, :class:`SQLiteHistory` and
:class:`PostgresHistory`; :func:`open_history` picks one from a URL.

Storage layout (both backends):

- ``points(point_key INTEGER PRIMARY KEY, point_id TEXT UNIQUE)``: a small
  table giving each point id an integer key.
- ``readings(point_key, ts_ms, value, quality)`` with primary key
  ``(point_key, ts_ms)``: ``ts_ms`` is milliseconds since the Unix epoch (UTC),
  ``value`` is the engineering value in the point's unit or NULL when unknown,
  ``quality`` is the :class:`~twin.readings.Quality` code.

Semantics (both backends):

- A reading is never dropped: a value of None or NaN is stored as NULL with
  its quality kept, whatever the quality.
- Re-ingest is idempotent: a reading for a (point, timestamp) that is already
  stored replaces it, value and quality. Within one call, the later reading wins.
- Timestamps must be tz-aware (any zone); naive ones are refused with a
  ValueError. They are stored as UTC milliseconds, sub-millisecond parts
  rounded to the nearest millisecond, and returned as tz-aware UTC.
- Ranges are half-open: ``start <= ts < end``.
- The readings of one append are written in one transaction: readers see
  all of them or none.
- Write attempts to device points are kept in an audit log beside the
  readings, table ``write_audit`` (see :class:`WriteRecord`).
- Aggregates (:meth:`History.resample`) count only readings whose value is
  known and whose quality is GOOD or STALE: a STALE value is still the last
  value the device reported, whereas BAD and COMM_FAIL values are not to be
  trusted or not there at all.

Thread safety: each store holds one database connection behind a lock, so one
instance may be shared by threads (the runtime writes from the simulation
thread while the web server reads); calls are serialised.
"""

from __future__ import annotations

import abc
import logging
import math
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import numpy as np
import pandas as pd
import psycopg
from psycopg import sql

from twin.readings import Quality, Reading, from_utc_ms, utc_ms

AGGREGATES = ("mean", "min", "max", "last", "first", "sum")
"""Aggregates accepted by :meth:`History.resample`."""

FRAME_COLUMNS = ("point_id", "ts_utc", "value", "quality")
"""Columns of a long-format history frame."""

_COUNTED_QUALITY_MAX = int(Quality.STALE)
"""Highest quality code whose values count in aggregates (GOOD and STALE)."""

_ROW_DTYPE = np.dtype([("point_key", "i8"), ("ts_ms", "i8"), ("value", "f8"), ("quality", "i2")])
"""Rows read back from a backend: NULL values arrive as NaN."""

_BUCKET_DTYPE = np.dtype([("point_key", "i8"), ("bucket_ms", "i8"), ("value", "f8")])
"""Aggregated rows read back from a backend: one value per point and bucket."""

WRITE_PAGE_SIZE = 1000
"""Write records per page of :meth:`History.write_records` unless the caller asks for another size."""


class History(abc.ABC):
    """Append readings, query ranges, downsample; the same semantics for every backend.

    This class owns validation, time conversion and the shape of every result;
    a backend implements the underscore primitives, which speak integer point
    keys, integer milliseconds (UTC) and numpy arrays. Every public call holds
    the store's lock.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._point_keys: dict[str, int] = {}

    # ------------------------------------------------------------------ writes

    def append(self, readings: Iterable[Reading]) -> int:
        """Store readings; returns how many were given (all are stored, see module notes)."""
        readings = list(readings)
        return self._store(
            np.array([r.point_id for r in readings], dtype=object),
            np.fromiter((utc_ms(r.ts_utc) for r in readings), dtype=np.int64, count=len(readings)),
            np.array([r.value for r in readings], dtype=np.float64),  # None becomes NaN
            np.fromiter((int(r.quality) for r in readings), dtype=np.int64, count=len(readings)),
        )

    def append_frame(self, frame: pd.DataFrame) -> int:
        """Store a long-format frame; returns its number of rows (all are stored).

        Columns: ``point_id`` (str), ``ts_utc`` (tz-aware datetime64, any zone),
        ``value`` (float in the point's unit, NaN or None when unknown),
        ``quality`` (int :class:`Quality` codes). The conversion is vectorised:
        this is the fast path for bulk ingest.
        """
        missing = [c for c in FRAME_COLUMNS if c not in frame.columns]
        if missing:
            raise ValueError(f"history frame lacks column(s) {missing}; expected {list(FRAME_COLUMNS)}")
        if frame.empty:
            return 0
        ts = frame["ts_utc"]
        if not isinstance(ts.dtype, pd.DatetimeTZDtype):
            raise ValueError(f"history frame column ts_utc must hold tz-aware timestamps, got dtype {ts.dtype}; "
                             "naive timestamps are ambiguous: localize them first, e.g. .dt.tz_localize('UTC')")
        if ts.isna().any():
            raise ValueError("history frame column ts_utc has missing timestamps")
        for column in ("point_id", "quality"):
            if frame[column].isna().any():
                raise ValueError(f"history frame column {column} has missing entries")
        ts_ms = pd.DatetimeIndex(ts).round("ms").as_unit("ms").asi8
        return self._store(
            frame["point_id"].to_numpy(dtype=object),
            ts_ms,
            frame["value"].to_numpy(dtype=np.float64, na_value=np.nan),
            frame["quality"].to_numpy(dtype=np.int64),
        )

    def _store(self, point_ids: np.ndarray, ts_ms: np.ndarray, values: np.ndarray, qualities: np.ndarray) -> int:
        """Validate, sort by (point, time), keep the last of duplicate (point, time) pairs, and write.

        point_ids: object array of str; ts_ms: int64 ms since the epoch (UTC);
        values: float64, NaN when unknown; qualities: int Quality codes.
        """
        n = len(point_ids)
        if n == 0:
            return 0
        bad = (qualities < min(Quality)) | (qualities > max(Quality))
        if bad.any():
            raise ValueError(f"quality codes must be one of {[int(q) for q in Quality]}, "
                             f"got {sorted(set(qualities[bad].tolist()))}")
        codes, unique_ids = pd.factorize(point_ids)
        order = np.lexsort((ts_ms, codes))  # stable: equal (point, time) pairs keep their input order
        codes, ts_ms, values, qualities = codes[order], ts_ms[order], values[order], qualities[order]
        superseded = (codes[:-1] == codes[1:]) & (ts_ms[:-1] == ts_ms[1:])
        if superseded.any():
            keep = np.append(~superseded, True)
            codes, ts_ms, values, qualities = codes[keep], ts_ms[keep], values[keep], qualities[keep]
        with self._lock:
            key_of = self._keys_for(list(unique_ids), create=True)
            keys = np.array([key_of[p] for p in unique_ids], dtype=np.int64)[codes]
            self._upsert_rows(keys, ts_ms, values, qualities.astype(np.int16))
        return n

    # ------------------------------------------------------------------- reads

    def query(self, point_ids: Sequence[str], start: datetime, end: datetime) -> pd.DataFrame:
        """Readings of the points in [start, end), long format, sorted by point id then time.

        Columns: point_id (str), ts_utc (datetime64[us, UTC]), value (float,
        NaN when unknown), quality (int16 Quality codes).
        """
        ids = sorted(_unique_ids(point_ids))
        rows, positions = self._read_rows(ids, start, end)
        order = np.lexsort((rows["ts_ms"], positions))
        rows, positions = rows[order], positions[order]
        return pd.DataFrame({
            "point_id": np.array(ids, dtype=object)[positions],
            "ts_utc": _utc_index(rows["ts_ms"]),
            "value": rows["value"],
            "quality": rows["quality"],
        })

    def query_wide(self, point_ids: Sequence[str], start: datetime, end: datetime) -> pd.DataFrame:
        """Values of the points in [start, end), one column per point id (in the order given).

        Index ts_utc (datetime64[us, UTC]): every timestamp at which any of the
        points has a reading; NaN where a point has none or its value is unknown.
        Qualities are not included: use :meth:`query` for them.
        """
        ids = _unique_ids(point_ids)
        rows, positions = self._read_rows(ids, start, end)
        return _wide(positions, rows["ts_ms"], rows["value"], ids)

    def _read_rows(self, ids: list[str], start: datetime, end: datetime) -> tuple[np.ndarray, np.ndarray]:
        """Rows of the points in [start, end) in any order, and the position in ids of each row's point."""
        start_ms, end_ms = _range_ms(start, end)
        with self._lock:
            key_of = self._keys_for(ids, create=False)
            rows = self._select_rows(list(key_of.values()), start_ms, end_ms) if key_of and end_ms > start_ms \
                else np.empty(0, dtype=_ROW_DTYPE)
        return rows, _positions(rows["point_key"], key_of, ids)

    def resample(self, point_ids: Sequence[str], start: datetime, end: datetime, interval_s: int,
                 agg: str = "mean") -> pd.DataFrame:
        """Values of the points in [start, end) aggregated in the database into buckets of interval_s seconds.

        agg: one of :data:`AGGREGATES`; ``first`` / ``last`` take the value of
        the earliest / latest counted reading in the bucket. Only readings with a
        known value and quality GOOD or STALE count.
        Buckets are aligned to the Unix epoch (so to UTC midnight when
        interval_s divides a day); a bucket is labelled by its start, and the
        first and last bucket are partial when start or end are not aligned.
        Result: index ts_utc (datetime64[us, UTC]) with one row per bucket that
        has a counted reading of any of the points; one column per point id in
        the order given, NaN where that point has nothing counted in the bucket.
        """
        if agg not in AGGREGATES:
            raise ValueError(f"unknown aggregate {agg!r}; expected one of {', '.join(AGGREGATES)}")
        if isinstance(interval_s, bool) or not isinstance(interval_s, (int, np.integer)) or interval_s <= 0:
            raise ValueError(f"interval_s must be a positive whole number of seconds, got {interval_s!r}")
        ids = _unique_ids(point_ids)
        start_ms, end_ms = _range_ms(start, end)
        with self._lock:
            key_of = self._keys_for(ids, create=False)
            rows = self._select_buckets(list(key_of.values()), start_ms, end_ms, int(interval_s) * 1000, agg) \
                if key_of and end_ms > start_ms else np.empty(0, dtype=_BUCKET_DTYPE)
        return _wide(_positions(rows["point_key"], key_of, ids), rows["bucket_ms"], rows["value"], ids)

    def latest(self, point_ids: Sequence[str] | None = None) -> dict[str, Reading]:
        """Latest reading (any quality) per point id; points without history are left out.

        point_ids: the points to look up, or None for every point with history.
        """
        with self._lock:
            if point_ids is None:
                keys = None
            else:
                keys = list(self._keys_for(_unique_ids(point_ids), create=False).values())
                if not keys:
                    return {}
            rows = self._select_latest(keys)
        return {pid: Reading(pid, from_utc_ms(ts_ms), value, Quality(quality))
                for pid, ts_ms, value, quality in rows}

    def point_ids(self) -> list[str]:
        """Ids of every point with at least one stored reading, sorted."""
        with self._lock:
            return self._select_point_ids()

    def time_range(self, point_id: str) -> tuple[datetime, datetime] | None:
        """(first, last) reading timestamps of a point, tz-aware UTC, both inclusive; None without history."""
        with self._lock:
            key = self._keys_for([point_id], create=False).get(point_id)
            span = self._select_time_range(key) if key is not None else None
        return None if span is None else (from_utc_ms(span[0]), from_utc_ms(span[1]))

    # --------------------------------------------------------- write audit log

    def record_write(self, record: WriteRecord) -> None:
        """Append one record to the write audit log. A NaN value is stored as None, which SQLite would
        make of it anyway: both backends give the same record back."""
        value = None if record.value is None or math.isnan(record.value) else float(record.value)
        with self._lock:
            self._insert_write(utc_ms(record.ts_utc), record.who, record.point_id, value, record.result)

    def write_audit(self, point_id: str | None = None) -> list[WriteRecord]:
        """The whole write audit log in the order recorded, for every point or the one named."""
        with self._lock:
            rows = self._select_write_log(point_id)
        return [_write_record(row) for row in rows]

    def write_records(self, start: datetime, end: datetime, limit: int = WRITE_PAGE_SIZE,
                      after: str | None = None) -> WritePage:
        """One page of the write attempts with start <= time < end, oldest first.

        Records with the same time come in the order they were recorded.
        limit: most records in the page (a positive whole number). after: the
        ``next_cursor`` of the previous page, None for the first. Pages follow
        each other without gaps or repeats: the cursor names the last record
        given (its time and sequence number), not a position, so records
        added meanwhile shift nothing.
        """
        if isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit <= 0:
            raise ValueError(f"limit must be a positive whole number of records, got {limit!r}")
        start_ms, end_ms = _range_ms(start, end)
        after_ts, after_seq = _parse_write_cursor(after) if after is not None else (start_ms, 0)
        with self._lock:
            rows = self._select_writes(max(start_ms, after_ts), end_ms, after_ts, after_seq, int(limit) + 1) \
                if end_ms > start_ms else []
        more = len(rows) > limit
        rows = rows[:limit]
        return WritePage([_write_record(row) for row in rows], f"{rows[-1][1]}:{rows[-1][0]}" if more else None)

    def iter_write_records(self, start: datetime, end: datetime,
                           page_size: int = WRITE_PAGE_SIZE) -> Iterator[WriteRecord]:
        """Every write attempt with start <= time < end, oldest first, read a page at a time."""
        after = None
        while True:
            page = self.write_records(start, end, page_size, after)
            yield from page.records
            if page.next_cursor is None:
                return
            after = page.next_cursor

    # --------------------------------------------------------------- lifecycle

    @abc.abstractmethod
    def close(self) -> None:
        """Release the database connection; the store is unusable afterwards."""

    def __enter__(self) -> "History":
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # -------------------------------------------------------------- point keys

    def _keys_for(self, point_ids: list[str], create: bool) -> dict[str, int]:
        """Integer keys of the point ids found (or, with create, made) in the points table. Caller holds the lock."""
        missing = [pid for pid in point_ids if pid not in self._point_keys]
        if missing:
            found = self._insert_points(missing) if create else self._select_point_keys(missing)
            self._point_keys.update(found)  # keys are committed and never change
        return {pid: self._point_keys[pid] for pid in point_ids if pid in self._point_keys}

    # ------------------------------------------------------ backend primitives

    @abc.abstractmethod
    def _insert_points(self, point_ids: list[str]) -> dict[str, int]:
        """Add the point ids not yet in the points table, commit, and return the keys of all of them.

        Committed ahead of the readings, so a failed write can leave a point
        without readings: queries of points "with history" check for readings.
        """

    @abc.abstractmethod
    def _select_point_keys(self, point_ids: list[str]) -> dict[str, int]:
        """Keys of those point ids that are in the points table."""

    @abc.abstractmethod
    def _upsert_rows(self, keys: np.ndarray, ts_ms: np.ndarray, values: np.ndarray, qualities: np.ndarray) -> None:
        """Insert or replace rows in one transaction; sorted by (key, ts_ms), unique pairs, NaN values stored NULL."""

    @abc.abstractmethod
    def _select_rows(self, keys: list[int], start_ms: int, end_ms: int) -> np.ndarray:
        """Rows of the keys with start_ms <= ts_ms < end_ms, as a _ROW_DTYPE array in any order."""

    @abc.abstractmethod
    def _select_buckets(self, keys: list[int], start_ms: int, end_ms: int, interval_ms: int, agg: str) -> np.ndarray:
        """Aggregated counted values per key and epoch-aligned bucket, as a _BUCKET_DTYPE array in any order."""

    @abc.abstractmethod
    def _select_latest(self, keys: list[int] | None) -> list[tuple[str, int, float | None, int]]:
        """(point_id, ts_ms, value, quality) of the latest row of each key (None: of every point)."""

    @abc.abstractmethod
    def _select_point_ids(self) -> list[str]:
        """Sorted ids of the points that have at least one row."""

    @abc.abstractmethod
    def _select_time_range(self, key: int) -> tuple[int, int] | None:
        """(min ts_ms, max ts_ms) of a key, or None without rows."""

    @abc.abstractmethod
    def _insert_write(self, ts_ms: int, who: str, point_id: str, value: float | None, result: str) -> None:
        """Append one row to the write audit table (its sequence number is given by the database)."""

    @abc.abstractmethod
    def _select_write_log(self, point_id: str | None) -> list[tuple[int, int, str, str, float | None, str]]:
        """(seq, ts_ms, who, point_id, value, result) of every audit row, or the named point's, by seq."""

    @abc.abstractmethod
    def _select_writes(self, start_ms: int, end_ms: int, after_ts_ms: int, after_seq: int,
                       limit: int) -> list[tuple[int, int, str, str, float | None, str]]:
        """Up to limit audit rows (seq, ts_ms, who, point_id, value, result) with start_ms <= ts_ms < end_ms
        and (ts_ms, seq) after (after_ts_ms, after_seq), ordered by (ts_ms, seq)."""


class SQLiteHistory(History):
    """History in one SQLite file: WAL journal, synchronous=NORMAL, 64 MiB page cache.

    One connection (``check_same_thread=False``) shared behind the store's lock.
    WAL lets other processes read the file while this one writes. With
    synchronous=NORMAL a power cut may lose the last commits, never corrupt
    the file. Each append writes its readings in one transaction.
    """

    def __init__(self, path: str | Path):
        super().__init__()
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
        for pragma in ("journal_mode = WAL", "synchronous = NORMAL", "cache_size = -65536", "temp_store = MEMORY"):
            self._conn.execute(f"PRAGMA {pragma}")
        self._conn.executescript("""
            CREATE TABLE IF NOT EXISTS points (
                point_key INTEGER PRIMARY KEY,
                point_id TEXT NOT NULL UNIQUE);
            CREATE TABLE IF NOT EXISTS readings (
                point_key INTEGER NOT NULL,
                ts_ms INTEGER NOT NULL,
                value REAL,
                quality INTEGER NOT NULL,
                PRIMARY KEY (point_key, ts_ms)) WITHOUT ROWID;
        """)
        self._conn.execute(_WRITE_AUDIT_TABLE_SQL.format(table="write_audit", seq=_SQLITE_SEQ))
        self._conn.execute(_WRITE_AUDIT_INDEX_SQL.format(table="write_audit"))

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def _insert_points(self, point_ids: list[str]) -> dict[str, int]:
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            self._conn.executemany("INSERT INTO points (point_id) VALUES (?) ON CONFLICT (point_id) DO NOTHING",
                                   [(pid,) for pid in point_ids])
            self._conn.execute("COMMIT")
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        return self._select_point_keys(point_ids)

    def _select_point_keys(self, point_ids: list[str]) -> dict[str, int]:
        found = {}
        for pid in point_ids:
            row = self._conn.execute("SELECT point_key FROM points WHERE point_id = ?", (pid,)).fetchone()
            if row is not None:
                found[pid] = row[0]
        return found

    def _upsert_rows(self, keys: np.ndarray, ts_ms: np.ndarray, values: np.ndarray, qualities: np.ndarray) -> None:
        # SQLite stores a bound NaN as NULL, so unknown values need no conversion.
        rows = zip(keys.tolist(), ts_ms.tolist(), values.tolist(), qualities.tolist())
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            self._conn.executemany(
                "INSERT INTO readings (point_key, ts_ms, value, quality) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (point_key, ts_ms) DO UPDATE SET value = excluded.value, quality = excluded.quality",
                rows)
            self._conn.execute("COMMIT")
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise

    def _select_rows(self, keys: list[int], start_ms: int, end_ms: int) -> np.ndarray:
        # One primary-key range scan per point: faster here than one IN (...) query.
        columns = np.dtype([("ts_ms", "i8"), ("value", "f8"), ("quality", "i2")])
        parts = [np.array(self._conn.execute(
            "SELECT ts_ms, value, quality FROM readings WHERE point_key = ? AND ts_ms >= ? AND ts_ms < ?",
            (key, start_ms, end_ms)).fetchall(), dtype=columns) for key in keys]
        rows = np.empty(sum(len(p) for p in parts), dtype=_ROW_DTYPE)
        rows["point_key"] = np.repeat(keys, [len(p) for p in parts])
        for name in columns.names:
            rows[name] = np.concatenate([p[name] for p in parts]) if parts else []
        return rows

    def _select_buckets(self, keys: list[int], start_ms: int, end_ms: int, interval_ms: int, agg: str) -> np.ndarray:
        query, params = _bucket_query(agg, "readings", keys, start_ms, end_ms, interval_ms, lambda name: f":{name}")
        return np.array(self._conn.execute(query, params).fetchall(), dtype=_BUCKET_DTYPE)

    def _select_latest(self, keys: list[int] | None) -> list[tuple[str, int, float | None, int]]:
        if keys is None:
            keys = [row[0] for row in self._conn.execute("SELECT point_key FROM points")]
        rows = []
        for key in keys:
            row = self._conn.execute(
                "SELECT p.point_id, r.ts_ms, r.value, r.quality FROM readings AS r "
                "JOIN points AS p ON p.point_key = r.point_key "
                "WHERE r.point_key = ? ORDER BY r.ts_ms DESC LIMIT 1", (key,)).fetchone()
            if row is not None:
                rows.append(row)
        return rows

    def _select_point_ids(self) -> list[str]:
        return [row[0] for row in self._conn.execute(_POINTS_WITH_HISTORY_SQL.format(points="points",
                                                                                    readings="readings"))]

    def _select_time_range(self, key: int) -> tuple[int, int] | None:
        first, last = self._conn.execute(
            "SELECT min(ts_ms), max(ts_ms) FROM readings WHERE point_key = ?", (key,)).fetchone()
        return None if first is None else (first, last)

    def _insert_write(self, ts_ms: int, who: str, point_id: str, value: float | None, result: str) -> None:
        self._conn.execute(_INSERT_WRITE_SQL.format(table="write_audit", p="?"), (ts_ms, who, point_id, value, result))

    def _select_write_log(self, point_id: str | None) -> list[tuple[int, int, str, str, float | None, str]]:
        query, params = _write_log_query("write_audit", "?", point_id)
        return self._conn.execute(query, params).fetchall()

    def _select_writes(self, start_ms: int, end_ms: int, after_ts_ms: int, after_seq: int,
                       limit: int) -> list[tuple[int, int, str, str, float | None, str]]:
        return self._conn.execute(_SELECT_WRITES_SQL.format(table="write_audit", p="?"),
                                  (start_ms, end_ms, after_ts_ms, after_seq, limit)).fetchall()


class PostgresHistory(History):
    """History in PostgreSQL, in the schema named by the URL parameter ``schema`` (default ``public``).

    The schema and tables are created if missing. One psycopg connection
    shared behind the store's lock. Ingest streams rows with binary COPY into
    a session-local staging table, then moves them with one
    INSERT .. ON CONFLICT DO UPDATE (replace semantics), all in one transaction.
    """

    def __init__(self, url: str):
        super().__init__()
        conninfo, self.schema = _split_schema(url)
        self._conn = psycopg.connect(conninfo, autocommit=True)
        schema = sql.Identifier(self.schema)
        self._points = sql.Identifier(self.schema, "points").as_string(self._conn)
        self._readings = sql.Identifier(self.schema, "readings").as_string(self._conn)
        self._audit = sql.Identifier(self.schema, "write_audit").as_string(self._conn)
        with self._conn.transaction():
            self._conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(schema))
            self._conn.execute(f"""
                CREATE TABLE IF NOT EXISTS {self._points} (
                    point_key integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
                    point_id text NOT NULL UNIQUE)""")
            self._conn.execute(f"""
                CREATE TABLE IF NOT EXISTS {self._readings} (
                    point_key integer NOT NULL,
                    ts_ms bigint NOT NULL,
                    value double precision,
                    quality smallint NOT NULL,
                    PRIMARY KEY (point_key, ts_ms))""")
            self._conn.execute(_WRITE_AUDIT_TABLE_SQL.format(table=self._audit, seq=_POSTGRES_SEQ))
            self._conn.execute(_WRITE_AUDIT_INDEX_SQL.format(table=self._audit))
        self._conn.execute("""
            CREATE TEMPORARY TABLE IF NOT EXISTS parktwin_staging (
                point_key integer, ts_ms bigint, value double precision, quality smallint)
            ON COMMIT DELETE ROWS""")

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def _insert_points(self, point_ids: list[str]) -> dict[str, int]:
        with self._conn.transaction():
            self._conn.execute(f"INSERT INTO {self._points} (point_id) SELECT unnest(%s::text[]) "
                               "ON CONFLICT (point_id) DO NOTHING", (point_ids,))
        return self._select_point_keys(point_ids)

    def _select_point_keys(self, point_ids: list[str]) -> dict[str, int]:
        rows = self._conn.execute(f"SELECT point_id, point_key FROM {self._points} WHERE point_id = ANY(%s::text[])",
                                  (point_ids,)).fetchall()
        return dict(rows)

    def _upsert_rows(self, keys: np.ndarray, ts_ms: np.ndarray, values: np.ndarray, qualities: np.ndarray) -> None:
        with self._conn.transaction():
            with self._conn.cursor().copy("COPY parktwin_staging FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(["int4", "int8", "float8", "int2"])
                for row in zip(keys.tolist(), ts_ms.tolist(), values.tolist(), qualities.tolist()):
                    copy.write_row(row)
            # PostgreSQL's NaN equals NaN, so NULLIF turns unknown values into NULL.
            self._conn.execute(
                f"INSERT INTO {self._readings} (point_key, ts_ms, value, quality) "
                "SELECT point_key, ts_ms, NULLIF(value, 'NaN'), quality FROM parktwin_staging "
                "ON CONFLICT (point_key, ts_ms) DO UPDATE SET value = EXCLUDED.value, quality = EXCLUDED.quality")

    def _select_rows(self, keys: list[int], start_ms: int, end_ms: int) -> np.ndarray:
        cursor = self._conn.cursor(binary=True)
        cursor.execute(f"SELECT point_key, ts_ms, value, quality FROM {self._readings} "
                       "WHERE point_key = ANY(%s::integer[]) AND ts_ms >= %s AND ts_ms < %s",
                       (keys, start_ms, end_ms))
        return np.array(cursor.fetchall(), dtype=_ROW_DTYPE)

    def _select_buckets(self, keys: list[int], start_ms: int, end_ms: int, interval_ms: int, agg: str) -> np.ndarray:
        query, params = _bucket_query(agg, self._readings, keys, start_ms, end_ms, interval_ms,
                                      lambda name: f"%({name})s::bigint")
        return np.array(self._conn.cursor(binary=True).execute(query, params).fetchall(), dtype=_BUCKET_DTYPE)

    def _select_latest(self, keys: list[int] | None) -> list[tuple[str, int, float | None, int]]:
        where = "" if keys is None else "WHERE p.point_key = ANY(%(keys)s::integer[])"
        return self._conn.execute(
            f"SELECT p.point_id, r.ts_ms, r.value, r.quality FROM {self._points} AS p "
            f"CROSS JOIN LATERAL (SELECT ts_ms, value, quality FROM {self._readings} "
            f"  WHERE point_key = p.point_key ORDER BY ts_ms DESC LIMIT 1) AS r {where}",
            {"keys": keys}).fetchall()

    def _select_point_ids(self) -> list[str]:
        query = _POINTS_WITH_HISTORY_SQL.format(points=self._points, readings=self._readings)
        return [row[0] for row in self._conn.execute(query)]

    def _select_time_range(self, key: int) -> tuple[int, int] | None:
        first, last = self._conn.execute(f"SELECT min(ts_ms), max(ts_ms) FROM {self._readings} WHERE point_key = %s",
                                         (key,)).fetchone()
        return None if first is None else (first, last)

    def _insert_write(self, ts_ms: int, who: str, point_id: str, value: float | None, result: str) -> None:
        self._conn.execute(_INSERT_WRITE_SQL.format(table=self._audit, p="%s"), (ts_ms, who, point_id, value, result))

    def _select_write_log(self, point_id: str | None) -> list[tuple[int, int, str, str, float | None, str]]:
        query, params = _write_log_query(self._audit, "%s", point_id)
        return self._conn.execute(query, params).fetchall()

    def _select_writes(self, start_ms: int, end_ms: int, after_ts_ms: int, after_seq: int,
                       limit: int) -> list[tuple[int, int, str, str, float | None, str]]:
        return self._conn.execute(_SELECT_WRITES_SQL.format(table=self._audit, p="%s"),
                                  (start_ms, end_ms, after_ts_ms, after_seq, limit)).fetchall()


def open_history(url: str) -> History:
    """Open the history store a URL names.

    Accepted: ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db``,
    a plain file path (SQLite), ``postgresql://...`` or ``postgres://...``
    (optionally with ``?schema=NAME``). SQLite parent folders are created.
    """
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresHistory(url)
    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///")
        if path:
            return SQLiteHistory(path)
    elif url and "://" not in url:
        return SQLiteHistory(url)
    raise ValueError(f"unsupported history URL {url!r}: expected sqlite:///relative/path.db, "
                     "sqlite:////absolute/path.db, a file path, or postgresql://user@host:port/database[?schema=NAME]")


# ---------------------------------------------------------------------------- write audit log
# Every attempt to write a device point (who or what asked, the point, the value, when,
# the result) is kept in a ``write_audit`` table beside the readings, in either backend:
# ``seq`` numbers the rows in the order recorded and breaks ties between equal times.


@dataclass(frozen=True)
class WriteRecord:
    """One write to a device point. value None means a relinquish (the point handed back to the device).

    result: ``ok``, or ``refused: <reason>`` (limits, device exception) or ``failed: <reason>`` (no answer).
    """

    ts_utc: datetime
    who: str
    point_id: str
    value: float | None
    result: str


@dataclass(frozen=True)
class WritePage:
    """One page of :meth:`History.write_records`: its records, oldest first, and the cursor of the next
    page (pass it as ``after``), None when this page reaches the end of the range."""

    records: list[WriteRecord]
    next_cursor: str | None


def record_write(store: History, record: WriteRecord) -> None:
    """Append one record to the store's write audit log (:meth:`History.record_write`)."""
    store.record_write(record)


def write_audit(store: History, point_id: str | None = None) -> list[WriteRecord]:
    """The write audit log in the order recorded, for every point or the one named (:meth:`History.write_audit`)."""
    return store.write_audit(point_id)


_SQLITE_SEQ = "seq INTEGER PRIMARY KEY AUTOINCREMENT"
_POSTGRES_SEQ = "seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY"
_WRITE_AUDIT_TABLE_SQL = ("CREATE TABLE IF NOT EXISTS {table} ({seq}, ts_ms BIGINT NOT NULL, who TEXT NOT NULL, "
                          "point_id TEXT NOT NULL, value DOUBLE PRECISION, result TEXT NOT NULL)")
_WRITE_AUDIT_INDEX_SQL = "CREATE INDEX IF NOT EXISTS write_audit_time ON {table} (ts_ms, seq)"
_WRITE_COLUMNS = "seq, ts_ms, who, point_id, value, result"
_INSERT_WRITE_SQL = "INSERT INTO {table} (ts_ms, who, point_id, value, result) VALUES ({p}, {p}, {p}, {p}, {p})"
# The plain ts_ms bounds let both databases range-scan the (ts_ms, seq) index; the row comparison
# then skips what an earlier page already gave.
_SELECT_WRITES_SQL = (f"SELECT {_WRITE_COLUMNS} FROM {{table}} WHERE ts_ms >= {{p}} AND ts_ms < {{p}} "
                      "AND (ts_ms, seq) > ({p}, {p}) ORDER BY ts_ms, seq LIMIT {p}")


def _write_log_query(table: str, mark: str, point_id: str | None) -> tuple[str, tuple]:
    """SQL and parameters of the whole audit log (or one point's) in the order recorded."""
    where, params = (f" WHERE point_id = {mark}", (point_id,)) if point_id is not None else ("", ())
    return f"SELECT {_WRITE_COLUMNS} FROM {table}{where} ORDER BY seq", params


def _write_record(row: tuple[int, int, str, str, float | None, str]) -> WriteRecord:
    """The record of an audit row (seq, ts_ms, who, point_id, value, result)."""
    _, ts_ms, who, point_id, value, result = row
    return WriteRecord(from_utc_ms(ts_ms), who, point_id, value, result)


def _parse_write_cursor(cursor: str) -> tuple[int, int]:
    """(ts_ms, seq) of the last record of a page, from its ``next_cursor``."""
    ts_text, _, seq_text = str(cursor).partition(":")
    try:
        return int(ts_text), int(seq_text)
    except ValueError:
        raise ValueError(f"cursor {cursor!r} is not a next_cursor of a write audit page") from None


# ---------------------------------------------------------------------------- helpers

_POINTS_WITH_HISTORY_SQL = ("SELECT point_id FROM {points} AS p "
                            "WHERE EXISTS (SELECT 1 FROM {readings} AS r WHERE r.point_key = p.point_key) "
                            "ORDER BY point_id")

_AGGREGATE_SQL = {"mean": "avg(value)", "min": "min(value)", "max": "max(value)", "sum": "sum(value)"}
_EDGE_TIME_SQL = {"first": "min(ts_ms)", "last": "max(ts_ms)"}


def _bucket_query(agg: str, readings: str, keys: list[int], start_ms: int, end_ms: int, interval_ms: int,
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
               f"AND quality <= {_COUNTED_QUALITY_MAX} AND value IS NOT NULL")
    if agg in _AGGREGATE_SQL:
        query = (f"SELECT point_key, {bucket} AS bucket_ms, {_AGGREGATE_SQL[agg]} FROM {readings} "
                 f"WHERE {counted} GROUP BY point_key, bucket_ms")
    else:
        query = (f"SELECT r.point_key, b.bucket_ms, r.value FROM "
                 f"(SELECT point_key, {bucket} AS bucket_ms, {_EDGE_TIME_SQL[agg]} AS ts_ms FROM {readings} "
                 f" WHERE {counted} GROUP BY point_key, bucket_ms) AS b "
                 f"JOIN {readings} AS r ON r.point_key = b.point_key AND r.ts_ms = b.ts_ms")
    return query, {"origin_ms": origin_ms, "interval_ms": interval_ms, "start_ms": start_ms, "end_ms": end_ms}


def _split_schema(url: str) -> tuple[str, str]:
    """(connection URL without the schema parameter, schema name) of a PostgreSQL URL."""
    parts = urlsplit(url)
    params = parse_qsl(parts.query, keep_blank_values=True)
    schemas = [value for name, value in params if name == "schema"]
    if schemas and not schemas[-1]:
        raise ValueError(f"history URL {url!r}: schema= needs a name")
    rest = urlencode([(name, value) for name, value in params if name != "schema"])
    return urlunsplit(parts._replace(query=rest)), schemas[-1] if schemas else "public"


def _unique_ids(point_ids: Sequence[str]) -> list[str]:
    """Point ids in the order given, without repeats; a bare string is refused (it is not a list of ids)."""
    if isinstance(point_ids, str):
        raise TypeError(f"point_ids must be a sequence of point ids, not the string {point_ids!r}")
    return list(dict.fromkeys(point_ids))


def _range_ms(start: datetime, end: datetime) -> tuple[int, int]:
    """UTC milliseconds of a half-open range's ends; naive datetimes are refused."""
    for name, ts in (("start", start), ("end", end)):
        if ts.tzinfo is None or ts.utcoffset() is None:
            raise ValueError(f"{name} {ts} has no time zone; history ranges need tz-aware timestamps")
    return utc_ms(start), utc_ms(end)


def _utc_index(ts_ms: np.ndarray) -> pd.DatetimeIndex:
    """Tz-aware UTC DatetimeIndex named ts_utc (microsecond unit, pandas' default) from epoch milliseconds."""
    naive = np.asarray(ts_ms, dtype=np.int64).view("datetime64[ms]").astype("datetime64[us]")
    return pd.DatetimeIndex(naive, name="ts_utc").tz_localize("UTC")


def _positions(row_keys: np.ndarray, key_of: dict[str, int], ids: list[str]) -> np.ndarray:
    """Position in ids of each row's point, from the rows' point keys (every row key is in key_of)."""
    if not key_of:
        return np.zeros(len(row_keys), dtype=np.int64)
    position_of = {pid: i for i, pid in enumerate(ids)}
    keys = np.array(list(key_of.values()), dtype=np.int64)
    positions = np.array([position_of[pid] for pid in key_of], dtype=np.int64)
    by_key = np.argsort(keys)
    return positions[by_key][np.searchsorted(keys[by_key], row_keys)]


def _wide(columns: np.ndarray, ts_ms: np.ndarray, values: np.ndarray, ids: list[str]) -> pd.DataFrame:
    """Wide frame from (column position, epoch ms, value) triples with unique (column, time) pairs.

    The index is every distinct time, ascending, as tz-aware UTC named
    ts_utc; one column per id; cells without a triple are NaN.
    """
    times, row_of = np.unique(np.asarray(ts_ms, dtype=np.int64), return_inverse=True)
    table = np.full((len(times), len(ids)), np.nan)
    table[row_of, columns] = values
    return pd.DataFrame(table, index=_utc_index(times), columns=pd.Index(ids, dtype=object))


# ---------------------------------------------------------------------------- fault episodes

class FaultEpisodeStore:
    """Fault episodes kept in a history store's database, table ``fault_episodes``.

    One row per episode, keyed by (rule_id, asset_id, point_id, start_ms);
    ``end_ms`` is NULL while the episode is open, ``evidence`` is JSON text.
    :meth:`save` inserts or replaces by that key, so saving the same episode
    again (as a detector extends or closes it, or re-runs over the same
    history) never makes a second row. Uses the history store's connection
    and lock; works on :class:`SQLiteHistory` and :class:`PostgresHistory`.

    Acknowledgements (who, when) live in a table of their own,
    ``fault_acknowledgements``, keyed like the episodes: adding it left the
    episodes table as it was, and a detector re-saving an episode never
    touches its acknowledgement. Comments on episodes (``alarm_comments``)
    and shelvings of alarms (``alarm_shelves``: rule, asset, point, who,
    when, until, why) are kept the same way, every row for the audit.

    The alarm console's listing (:meth:`page`) and the alarm count
    (:meth:`alarm_count`) filter, order and page in SQL on the indexes of
    :data:`_ALARM_INDEXES`.
    """

    _COLUMNS = "rule_id, asset_id, point_id, start_ms, end_ms, priority, evidence, suppressed_by"
    _KEY = "rule_id, asset_id, point_id, start_ms"

    def __init__(self, history: History):
        self._history = history
        self._conn = history._conn
        self._listeners: list[Callable[[list["FaultEpisode"]], None]] = []
        if isinstance(history, PostgresHistory):
            def table(name: str) -> str:
                return sql.Identifier(history.schema, name).as_string(self._conn)
            self._param = "%s"
        else:
            def table(name: str) -> str:
                return name
            self._param = "?"
        self._table, self._acks = table("fault_episodes"), table("fault_acknowledgements")
        self._comments, self._shelves = table("alarm_comments"), table("alarm_shelves")
        seq = _POSTGRES_SEQ if isinstance(history, PostgresHistory) else _SQLITE_SEQ
        with history._lock:
            self._conn.execute(f"""
                CREATE TABLE IF NOT EXISTS {self._table} (
                    rule_id text NOT NULL, asset_id text NOT NULL, point_id text NOT NULL,
                    start_ms bigint NOT NULL, end_ms bigint, priority smallint NOT NULL, evidence text NOT NULL,
                    suppressed_by text, PRIMARY KEY (rule_id, asset_id, point_id, start_ms))""")
            self._migrate_severity()
            self._conn.execute(f"""
                CREATE TABLE IF NOT EXISTS {self._acks} (
                    rule_id text NOT NULL, asset_id text NOT NULL, point_id text NOT NULL,
                    start_ms bigint NOT NULL, acknowledged_by text NOT NULL, acknowledged_ms bigint NOT NULL,
                    PRIMARY KEY (rule_id, asset_id, point_id, start_ms))""")
            self._conn.execute(f"""
                CREATE TABLE IF NOT EXISTS {self._comments} ({seq},
                    rule_id text NOT NULL, asset_id text NOT NULL, point_id text NOT NULL, start_ms bigint NOT NULL,
                    who text NOT NULL, ts_ms bigint NOT NULL, body text NOT NULL)""")
            self._conn.execute(f"""
                CREATE TABLE IF NOT EXISTS {self._shelves} ({seq},
                    rule_id text NOT NULL, asset_id text NOT NULL, point_id text NOT NULL, shelved_by text NOT NULL,
                    shelved_ms bigint NOT NULL, until_ms bigint NOT NULL, reason text NOT NULL)""")
            for table_name, name, columns in _ALARM_INDEXES:
                self._conn.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {table(table_name)} {columns}")

    def _migrate_severity(self) -> None:
        """Bring a table made before alarm priorities up to date: its three severities (info, warning,
        critical) become the priorities low, medium and critical, and ``suppressed_by`` is added, empty."""
        if isinstance(self._history, PostgresHistory):
            schema, table = self._history.schema, "fault_episodes"
            columns = {row[0] for row in self._conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = %s",
                (schema, table)).fetchall()}
        else:
            columns = {row[1] for row in self._conn.execute(f"PRAGMA table_info({self._table})").fetchall()}
        if "severity" not in columns:
            return
        self._in_transaction(lambda: [self._conn.execute(statement) for statement in (
            f"ALTER TABLE {self._table} RENAME COLUMN severity TO priority",
            f"UPDATE {self._table} SET priority = 4 WHERE priority = 3",
            f"ALTER TABLE {self._table} ADD COLUMN suppressed_by text")])

    def save(self, episodes: Iterable["FaultEpisode"]) -> int:
        """Insert or replace episodes (by rule, asset, point, start) in one transaction; returns how many.

        After the transaction, every listener (:meth:`listen`) is called with the episodes that were not
        stored before, in the order given; a listener that raises is logged and does not undo the save.
        """
        import json

        episodes = list(episodes)
        rows = [(e.rule_id, e.asset_id, e.point_id, utc_ms(e.start_utc),
                 None if e.end_utc is None else utc_ms(e.end_utc), int(e.priority),
                 json.dumps(e.evidence, sort_keys=True), e.suppressed_by) for e in episodes]
        if not rows:
            return 0
        p = self._param
        statement = (f"INSERT INTO {self._table} ({self._COLUMNS}) VALUES ({', '.join([p] * 8)}) "
                     "ON CONFLICT (rule_id, asset_id, point_id, start_ms) DO UPDATE SET "
                     "end_ms = excluded.end_ms, priority = excluded.priority, evidence = excluded.evidence, "
                     "suppressed_by = excluded.suppressed_by")
        new: list["FaultEpisode"] = []

        def upsert() -> None:
            if self._listeners:
                exists = f"SELECT 1 FROM {self._table} AS e WHERE {self._key_match()}"
                new.extend(e for e, row in zip(episodes, rows)
                           if self._conn.execute(exists, row[:4]).fetchone() is None)
            self._conn.cursor().executemany(statement, rows)

        self._in_transaction(upsert)
        for listener in self._listeners if new else ():
            try:
                listener(list(new))
            except Exception:
                logging.getLogger(__name__).exception("fault episode listener %r failed", listener)
        return len(rows)

    def listen(self, listener: Callable[[list["FaultEpisode"]], None]) -> None:
        """Call ``listener`` with the new episodes of every later :meth:`save` (e.g. to notify people);
        called in the saving thread, so it must return quickly."""
        self._listeners.append(listener)

    def _in_transaction(self, work: Callable[[], object]) -> None:
        """Run ``work`` (statements on this store's connection) in one transaction, under the history's lock."""
        with self._history._lock:
            if isinstance(self._history, PostgresHistory):
                with self._conn.transaction():
                    work()
            else:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    work()
                    self._conn.execute("COMMIT")
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise

    def overlapping(self, start: datetime, end: datetime) -> list["FaultEpisode"]:
        """Episodes active at some time in [start, end) (open ones included), ordered by start, rule, asset."""
        start_ms, end_ms = _range_ms(start, end)
        p = self._param
        return self._select(f"e.start_ms < {p} AND (e.end_ms IS NULL OR e.end_ms > {p})", (end_ms, start_ms))

    def open_episodes(self) -> list["FaultEpisode"]:
        """Episodes still active (no end), ordered by start, rule, asset."""
        return self._select("e.end_ms IS NULL", ())

    def acknowledge(self, episode_id: str, who: str, at_utc: datetime) -> "FaultEpisode | None":
        """Record that ``who`` acknowledged the episode with this id (``FaultEpisode.id``) at ``at_utc``.

        The first acknowledgement stands: acknowledging again changes nothing.
        Returns the episode as stored afterwards (with who and when), None
        when no episode has that id.
        """
        key = _episode_key(episode_id)
        if key is None:
            return None
        p = self._param
        self._in_transaction(lambda: self._conn.execute(
            f"INSERT INTO {self._acks} ({self._KEY}, acknowledged_by, acknowledged_ms) "
            f"SELECT {self._KEY}, {p}, {p} FROM {self._table} AS e WHERE {self._key_match()} "
            f"ON CONFLICT ({self._KEY}) DO NOTHING", (who, utc_ms(at_utc), *key)))
        return self.episode(episode_id)

    def comment(self, episode_id: str, who: str, at_utc: datetime, text: str) -> "AlarmComment | None":
        """Add ``who``'s comment ``text`` to the episode with this id; the comment, None when no episode has
        that id. Raises ValueError for an empty text."""
        from twin.fault_episodes import AlarmComment

        if not text.strip():
            raise ValueError("a comment needs some text")
        key = _episode_key(episode_id)
        if key is None or self.episode(episode_id) is None:
            return None
        p = self._param
        self._in_transaction(lambda: self._conn.execute(
            f"INSERT INTO {self._comments} ({self._KEY}, who, ts_ms, body) VALUES ({', '.join([p] * 7)})",
            (*key, who, utc_ms(at_utc), text)))
        return AlarmComment(episode_id, who, from_utc_ms(utc_ms(at_utc)), text)

    def comments(self, episode_ids: Sequence[str]) -> dict[str, list["AlarmComment"]]:
        """The comments on each of these episodes, oldest first, by episode id (episodes without any absent)."""
        from twin.fault_episodes import AlarmComment

        keys = [key for key in map(_episode_key, episode_ids) if key is not None]
        if not keys:
            return {}
        p = self._param
        wanted = ", ".join([f"({p}, {p}, {p}, {p})"] * len(keys))  # a flat list: a page may ask for thousands
        with self._history._lock:
            rows = self._conn.execute(
                f"SELECT rule_id, asset_id, point_id, start_ms, who, ts_ms, body FROM {self._comments} "
                f"WHERE ({self._KEY}) IN (VALUES {wanted}) ORDER BY seq",
                [value for key in keys for value in key]).fetchall()
        found: dict[str, list[AlarmComment]] = {}
        for rule_id, asset_id, point_id, start_ms, who, ts_ms, body in rows:
            episode_id = f"{rule_id}:{asset_id}:{point_id}:{start_ms}"
            found.setdefault(episode_id, []).append(AlarmComment(episode_id, who, from_utc_ms(ts_ms), body))
        return found

    def episode(self, episode_id: str) -> "FaultEpisode | None":
        """The episode with this id (``FaultEpisode.id``), with its acknowledgement; None when there is none."""
        key = _episode_key(episode_id)
        found = self._select(self._key_match(), key) if key is not None else []
        return found[0] if found else None

    def rule_ids(self) -> list[str]:
        """Every rule with a stored episode, sorted."""
        with self._history._lock:
            return [row[0] for row in self._conn.execute(
                f"SELECT DISTINCT rule_id FROM {self._table} ORDER BY rule_id").fetchall()]

    def shelve(self, episode_id: str, who: str, at_utc: datetime, until_utc: datetime,
               reason: str) -> "Shelf | None":
        """Shelve the alarm (rule, asset, point) of the episode with this id from ``at_utc`` until
        ``until_utc``, recording who and why; the shelf, None when no episode has that id. Raises ValueError
        for an empty reason or an end not after the start. Every shelving is kept (:meth:`shelf_log`)."""
        from twin.fault_episodes import Shelf

        if not reason.strip():
            raise ValueError("shelving needs a reason")
        if until_utc <= at_utc:
            raise ValueError(f"shelving until {until_utc.isoformat()} ends before it begins ({at_utc.isoformat()})")
        key = _episode_key(episode_id)
        if key is None or self.episode(episode_id) is None:
            return None
        p = self._param
        rule_id, asset_id, point_id, _ = key
        self._in_transaction(lambda: self._conn.execute(
            f"INSERT INTO {self._shelves} (rule_id, asset_id, point_id, shelved_by, shelved_ms, until_ms, reason) "
            f"VALUES ({', '.join([p] * 7)})",
            (rule_id, asset_id, point_id, who, utc_ms(at_utc), utc_ms(until_utc), reason)))
        return Shelf(rule_id, asset_id, point_id, who, from_utc_ms(utc_ms(at_utc)), from_utc_ms(utc_ms(until_utc)),
                     reason)

    def shelves(self, at_utc: datetime | None = None) -> list["Shelf"]:
        """Shelvings in the order recorded: all of them (the audit), or those in force at ``at_utc``."""
        from twin.fault_episodes import Shelf

        where, params = "", ()
        if at_utc is not None:
            where, params = f" WHERE shelved_ms <= {self._param} AND until_ms > {self._param}", (utc_ms(at_utc),) * 2
        with self._history._lock:
            rows = self._conn.execute(
                "SELECT rule_id, asset_id, point_id, shelved_by, shelved_ms, until_ms, reason "
                f"FROM {self._shelves}{where} ORDER BY seq", params).fetchall()
        return [Shelf(rule_id, asset_id, point_id, who, from_utc_ms(shelved_ms), from_utc_ms(until_ms), reason)
                for rule_id, asset_id, point_id, who, shelved_ms, until_ms, reason in rows]

    def page(self, which: "AlarmFilter", now_utc: datetime, offset: int = 0, limit: int = 50) -> "EpisodePage":
        """The episodes ``which`` selects, newest start first, ``limit`` of them from ``offset`` on, and how
        many match in all. Filtered, ordered and paged by the database (on its indexes); ``now_utc`` decides
        which alarms are shelved."""
        from twin.fault_episodes import EpisodePage

        where, params = self._filter_sql(which, utc_ms(now_utc))
        with self._history._lock:
            (total,), = self._conn.execute(f"SELECT count(*) FROM {self._table} AS e WHERE {where}",
                                          params).fetchall()
        p = self._param
        episodes = self._select(where, (*params, limit, offset), newest_first=True, tail=f" LIMIT {p} OFFSET {p}")
        return EpisodePage(episodes, int(total), offset)

    def alarm_count(self, now_utc: datetime) -> int:
        """Alarms needing an operator now: active, unacknowledged, not shelved at ``now_utc``, not suppressed."""
        from twin.fault_episodes import AlarmFilter, AlarmState

        where, params = self._filter_sql(
            AlarmFilter(states=frozenset({AlarmState.ACTIVE, AlarmState.UNACKNOWLEDGED})), utc_ms(now_utc))
        where += f" AND e.suppressed_by IS NULL AND NOT {self._shelved_sql()}"
        with self._history._lock:
            (count,), = self._conn.execute(f"SELECT count(*) FROM {self._table} AS e WHERE {where}",
                                          (*params, utc_ms(now_utc), utc_ms(now_utc))).fetchall()
        return int(count)

    def _shelved_sql(self) -> str:
        """Condition: the alarm of episode ``e`` is shelved at a time given twice as parameters."""
        p = self._param
        return (f"EXISTS (SELECT 1 FROM {self._shelves} AS s WHERE s.rule_id = e.rule_id AND s.asset_id = e.asset_id "
                f"AND s.point_id = e.point_id AND s.shelved_ms <= {p} AND s.until_ms > {p})")

    def _filter_sql(self, which: "AlarmFilter", now_ms: int) -> tuple[str, tuple]:
        """WHERE clause (table alias ``e``) and parameters selecting the episodes ``which`` asks for."""
        from twin.fault_episodes import AlarmState

        p = self._param
        clauses, params = ["1 = 1"], []
        if which.end_utc is not None:
            clauses.append(f"e.start_ms < {p}")
            params.append(utc_ms(which.end_utc))
        if which.start_utc is not None:
            clauses.append(f"(e.end_ms IS NULL OR e.end_ms > {p})")
            params.append(utc_ms(which.start_utc))
        for column, values in (("priority", sorted(int(v) for v in which.priorities)),
                               ("asset_id", sorted(which.asset_ids)), ("rule_id", sorted(which.rule_ids))):
            if values:
                clauses.append(f"e.{column} IN ({', '.join([p] * len(values))})")
                params.extend(values)
        acknowledged = (f"EXISTS (SELECT 1 FROM {self._acks} AS a WHERE a.rule_id = e.rule_id "
                        "AND a.asset_id = e.asset_id AND a.point_id = e.point_id AND a.start_ms = e.start_ms)")
        for state in sorted(which.states):
            if state is AlarmState.SHELVED:
                clauses.append(self._shelved_sql())
                params.extend((now_ms, now_ms))
            else:
                clauses.append({AlarmState.ACTIVE: "e.end_ms IS NULL", AlarmState.CLEARED: "e.end_ms IS NOT NULL",
                                AlarmState.UNACKNOWLEDGED: f"NOT {acknowledged}",
                                AlarmState.SUPPRESSED: "e.suppressed_by IS NOT NULL"}[state])
        return " AND ".join(clauses), tuple(params)

    def _key_match(self) -> str:
        """WHERE clause matching one episode of table alias ``e`` by (rule, asset, point, start_ms)."""
        return " AND ".join(f"e.{column.strip()} = {self._param}" for column in self._KEY.split(","))

    def _select(self, where: str, params: tuple, newest_first: bool = False, tail: str = "") -> list["FaultEpisode"]:
        """Episodes (table alias ``e``) matching ``where``, each with its acknowledgement when there is one;
        oldest first (by start, rule, asset, point) or newest first; ``tail`` follows the ORDER BY."""
        import json

        from twin.fault_episodes import FaultEpisode, Priority

        columns = ", ".join(f"e.{c.strip()}" for c in self._COLUMNS.split(","))
        order = ", ".join(f"e.{c.strip()}{' DESC' if newest_first else ''}" for c in _EPISODE_ORDER.split(","))
        with self._history._lock:
            rows = self._conn.execute(
                f"SELECT {columns}, a.acknowledged_by, a.acknowledged_ms FROM {self._table} AS e "
                f"LEFT JOIN {self._acks} AS a ON a.rule_id = e.rule_id AND a.asset_id = e.asset_id "
                f"AND a.point_id = e.point_id AND a.start_ms = e.start_ms WHERE {where} "
                f"ORDER BY {order}{tail}", params).fetchall()
        return [FaultEpisode(rule_id, asset_id, from_utc_ms(start_ms),
                             None if end_ms is None else from_utc_ms(end_ms), Priority(priority),
                             json.loads(evidence), point_id, suppressed_by, acked_by,
                             None if acked_ms is None else from_utc_ms(acked_ms))
                for (rule_id, asset_id, point_id, start_ms, end_ms, priority, evidence, suppressed_by, acked_by,
                     acked_ms) in rows]


_EPISODE_ORDER = "start_ms, rule_id, asset_id, point_id"
"""The order episodes are listed in (reversed for newest first), the columns of index fault_episodes_start."""

_ALARM_INDEXES = (
    ("fault_episodes", "fault_episodes_start", f"({_EPISODE_ORDER})"),
    ("fault_episodes", "fault_episodes_priority", "(priority, start_ms)"),
    ("fault_episodes", "fault_episodes_asset", "(asset_id, start_ms)"),
    ("fault_episodes", "fault_episodes_rule_start", "(rule_id, start_ms)"),
    ("fault_episodes", "fault_episodes_open", "(start_ms) WHERE end_ms IS NULL"),
    ("alarm_comments", "alarm_comments_episode", "(rule_id, asset_id, point_id, start_ms)"),
    ("alarm_shelves", "alarm_shelves_alarm", "(rule_id, asset_id, point_id, until_ms)"),
)
"""Indexes (table, name, columns) of the alarm console's queries: newest first on their own, by priority, asset
or rule, the open episodes, and the comments and shelvings of an episode or alarm."""


def _episode_key(episode_id: str) -> tuple[str, str, str, int] | None:
    """(rule, asset, point, start_ms) of a ``FaultEpisode.id``; None when it is not one."""
    parts = episode_id.split(":")
    if len(parts) != 4 or not parts[0] or not parts[1]:
        return None
    try:
        return parts[0], parts[1], parts[2], int(parts[3])
    except ValueError:
        return None


def query_grid(history: History, point_ids: Sequence[str], start: datetime,
               end: datetime) -> tuple[pd.DatetimeIndex, np.ndarray, np.ndarray]:
    """Readings of the points in [start, end) on one time grid, for bulk analysis (fault rules).

    Returns (times, values, qualities): ``times`` every distinct timestamp
    any of the points has, ascending, tz-aware UTC; ``values`` float
    (times x points, in the order given), NaN where unknown or absent;
    ``qualities`` int16 Quality codes, -1 where a point has no reading at
    that time. Same rows as :meth:`History.query`, without building a long frame.
    """
    ids = _unique_ids(point_ids)
    rows, positions = history._read_rows(ids, start, end)
    times, row_of = np.unique(rows["ts_ms"], return_inverse=True)
    values = np.full((len(times), len(ids)), np.nan)
    qualities = np.full((len(times), len(ids)), -1, dtype=np.int16)
    values[row_of, positions] = rows["value"]
    qualities[row_of, positions] = rows["quality"]
    return _utc_index(times), values, qualities
