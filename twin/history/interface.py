"""The public interface of a history store: readings, the write audit log, and the SQL primitives the fault
episode store builds on; the same semantics for every backend.

Storage layout (both backends):

- ``points(point_key INTEGER PRIMARY KEY, point_id TEXT UNIQUE)``: a small
  table giving each point id an integer key.
- ``readings(point_key, ts_ms, value, quality)`` with primary key
  ``(point_key, ts_ms)``: ``ts_ms`` is milliseconds since the Unix epoch (UTC),
  ``value`` is the engineering value in the point's unit or NULL when unknown,
  ``quality`` is the :class:`~twin.readings.Quality` code.
- ``run_speeds(start_ms, speed)``: the clock speed of each `parktwin run` from its start (``twin.history.runs``).
- ``schema_version(version)``: the version of this layout (``twin.history.schema``).

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
  readings, table ``write_audit`` (see :class:`~twin.history.audit.WriteRecord`).
- Aggregates (:meth:`History.resample`) count only readings whose value is
  known and whose quality is GOOD or STALE: a STALE value is still the last
  value the device reported, whereas BAD and COMM_FAIL values are not to be
  trusted or not there at all.
- A store that cannot be reached or written (a database server down, a full
  disk) raises :class:`StorageUnavailable` (:class:`StorageFull` for a full
  disk) from any call; nothing of that call was committed. The store stays
  usable: a later call works again once the cause is gone.

Thread safety: each store holds one database connection behind a lock, so one
instance may be shared by threads (the runtime writes from its writer thread
while the web server reads); calls are serialised.
"""

from __future__ import annotations

import abc
import contextlib
import math
import threading
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from types import TracebackType

import numpy as np
import pandas as pd

from twin.history.audit import WritePage, WriteRecord, parse_write_cursor, write_record_of_row
from twin.readings import Quality, Reading, from_utc_ms, utc_ms

AGGREGATES = ("mean", "min", "max", "last", "first", "sum")
"""Aggregates accepted by :meth:`History.resample`."""

FRAME_COLUMNS = ("point_id", "ts_utc", "value", "quality")
"""Columns of a long-format history frame."""

COUNTED_QUALITY_MAX = int(Quality.STALE)
"""Highest quality code whose values count in aggregates (GOOD and STALE)."""

ROW_DTYPE = np.dtype([("point_key", "i8"), ("ts_ms", "i8"), ("value", "f8"), ("quality", "i2")])
"""Rows read back from a backend: NULL values arrive as NaN."""

BUCKET_DTYPE = np.dtype([("point_key", "i8"), ("bucket_ms", "i8"), ("value", "f8")])
"""Aggregated rows read back from a backend: one value per point and bucket."""

WRITE_PAGE_SIZE = 1000
"""Write records per page of :meth:`History.write_records` unless the caller asks for another size."""

_WRITE_COLUMNS = "seq, ts_ms, who, point_id, value, result, requested"


class StorageUnavailable(RuntimeError):
    """The store cannot be reached or written now (server down, connection lost, file not writable);
    nothing of the call that raised it was committed, and a later call may succeed."""


class StorageFull(StorageUnavailable):
    """The disk (or the database's size limit) holding the store is full."""


class StoreLocationError(ValueError):
    """The store cannot be opened where it was asked to be (a missing or read-only folder): bad input."""


class History(abc.ABC):
    """Append readings, query ranges, downsample; the same semantics for every backend.

    This class owns validation, time conversion and the shape of every result;
    a backend implements the underscore primitives, which speak integer point
    keys, integer milliseconds (UTC) and numpy arrays. Every public call holds
    the store's lock and turns the driver's connection and disk errors into
    :class:`StorageUnavailable`.

    Other modules that keep their own tables beside the readings (the fault
    episode store) use the public SQL primitives :attr:`param`, :meth:`table`,
    :meth:`execute`, :meth:`execute_many`, :meth:`transaction` and
    :attr:`sequence_column`.
    """

    param: str
    """The driver's positional placeholder (``?`` or ``%s``)."""

    sequence_column: str
    """Column definition of an auto-numbered ``seq`` primary key in this database."""

    description: str
    """Where the store is, for messages (a file path, or host, port, database and schema)."""

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
        with self._session():
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
        ids = sorted(unique_ids(point_ids))
        rows, positions = self._read_rows(ids, start, end)
        order = np.lexsort((rows["ts_ms"], positions))
        rows, positions = rows[order], positions[order]
        return pd.DataFrame({
            "point_id": np.array(ids, dtype=object)[positions],
            "ts_utc": utc_index(rows["ts_ms"]),
            "value": rows["value"],
            "quality": rows["quality"],
        })

    def query_wide(self, point_ids: Sequence[str], start: datetime, end: datetime) -> pd.DataFrame:
        """Values of the points in [start, end), one column per point id (in the order given).

        Index ts_utc (datetime64[us, UTC]): every timestamp at which any of the
        points has a reading; NaN where a point has none or its value is unknown.
        Qualities are not included: use :meth:`query` for them.
        """
        ids = unique_ids(point_ids)
        rows, positions = self._read_rows(ids, start, end)
        return _wide(positions, rows["ts_ms"], rows["value"], ids)

    def query_grid(self, point_ids: Sequence[str], start: datetime,
                   end: datetime) -> tuple[pd.DatetimeIndex, np.ndarray, np.ndarray]:
        """Readings of the points in [start, end) on one time grid, for bulk analysis (fault rules).

        Returns (times, values, qualities): ``times`` every distinct timestamp
        any of the points has, ascending, tz-aware UTC; ``values`` float
        (times x points, in the order given), NaN where unknown or absent;
        ``qualities`` int16 Quality codes, -1 where a point has no reading at
        that time. Same rows as :meth:`query`, without building a long frame.
        """
        ids = unique_ids(point_ids)
        rows, positions = self._read_rows(ids, start, end)
        times, row_of = np.unique(rows["ts_ms"], return_inverse=True)
        values = np.full((len(times), len(ids)), np.nan)
        qualities = np.full((len(times), len(ids)), -1, dtype=np.int16)
        values[row_of, positions] = rows["value"]
        qualities[row_of, positions] = rows["quality"]
        return utc_index(times), values, qualities

    def _read_rows(self, ids: list[str], start: datetime, end: datetime) -> tuple[np.ndarray, np.ndarray]:
        """Rows of the points in [start, end) in any order, and the position in ids of each row's point."""
        start_ms, end_ms = range_ms(start, end)
        with self._session():
            key_of = self._keys_for(ids, create=False)
            rows = self._select_rows(list(key_of.values()), start_ms, end_ms) if key_of and end_ms > start_ms \
                else np.empty(0, dtype=ROW_DTYPE)
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
        ids = unique_ids(point_ids)
        start_ms, end_ms = range_ms(start, end)
        with self._session():
            key_of = self._keys_for(ids, create=False)
            rows = self._select_buckets(list(key_of.values()), start_ms, end_ms, int(interval_s) * 1000, agg) \
                if key_of and end_ms > start_ms else np.empty(0, dtype=BUCKET_DTYPE)
        return _wide(_positions(rows["point_key"], key_of, ids), rows["bucket_ms"], rows["value"], ids)

    def latest(self, point_ids: Sequence[str] | None = None) -> dict[str, Reading]:
        """Latest reading (any quality) per point id; points without history are left out.

        point_ids: the points to look up, or None for every point with history.
        """
        with self._session():
            if point_ids is None:
                keys = None
            else:
                keys = list(self._keys_for(unique_ids(point_ids), create=False).values())
                if not keys:
                    return {}
            rows = self._select_latest(keys)
        return {pid: Reading(pid, from_utc_ms(ts_ms), value, Quality(quality))
                for pid, ts_ms, value, quality in rows}

    def point_ids(self) -> list[str]:
        """Ids of every point with at least one stored reading, sorted."""
        readings, points = self.table("readings"), self.table("points")
        return [row[0] for row in self.execute(
            f"SELECT point_id FROM {points} AS p "
            f"WHERE EXISTS (SELECT 1 FROM {readings} AS r WHERE r.point_key = p.point_key) ORDER BY point_id")]

    def time_range(self, point_id: str) -> tuple[datetime, datetime] | None:
        """(first, last) reading timestamps of a point, tz-aware UTC, both inclusive; None without history."""
        with self._session():
            key = self._keys_for([point_id], create=False).get(point_id)
            span = self.execute(f"SELECT min(ts_ms), max(ts_ms) FROM {self.table('readings')} "
                                f"WHERE point_key = {self.param}", (key,))[0] if key is not None else (None, None)
        return None if span[0] is None else (from_utc_ms(span[0]), from_utc_ms(span[1]))

    # --------------------------------------------------------- write audit log

    def record_write(self, record: WriteRecord) -> None:
        """Append one record to the write audit log. A value that is not a finite number is stored as None
        (SQLite would make NULL of a NaN anyway): what was asked for stays in ``record.requested``."""
        value = None if record.value is None or not math.isfinite(record.value) else float(record.value)
        p = self.param
        self.execute(f"INSERT INTO {self.table('write_audit')} (ts_ms, who, point_id, value, result, requested) "
                     f"VALUES ({p}, {p}, {p}, {p}, {p}, {p})",
                     (utc_ms(record.ts_utc), record.who, record.point_id, value, record.result, record.requested))

    def write_audit(self, point_id: str | None = None) -> list[WriteRecord]:
        """The whole write audit log in the order recorded, for every point or the one named."""
        where, params = (f" WHERE point_id = {self.param}", (point_id,)) if point_id is not None else ("", ())
        rows = self.execute(f"SELECT {_WRITE_COLUMNS} FROM {self.table('write_audit')}{where} ORDER BY seq", params)
        return [write_record_of_row(row) for row in rows]

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
        start_ms, end_ms = range_ms(start, end)
        after_ts, after_seq = parse_write_cursor(after) if after is not None else (start_ms, 0)
        p = self.param
        # The plain ts_ms bounds let both databases range-scan the (ts_ms, seq) index; the row comparison
        # then skips what an earlier page already gave.
        rows = self.execute(
            f"SELECT {_WRITE_COLUMNS} FROM {self.table('write_audit')} WHERE ts_ms >= {p} AND ts_ms < {p} "
            f"AND (ts_ms, seq) > ({p}, {p}) ORDER BY ts_ms, seq LIMIT {p}",
            (max(start_ms, after_ts), end_ms, after_ts, after_seq, int(limit) + 1)) if end_ms > start_ms else []
        more = len(rows) > limit
        rows = rows[:limit]
        return WritePage([write_record_of_row(row) for row in rows],
                         f"{rows[-1][1]}:{rows[-1][0]}" if more else None)

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

    # ---------------------------------------------------------- SQL primitives

    @abc.abstractmethod
    def table(self, name: str) -> str:
        """The name of table ``name`` as SQL (qualified by the store's schema where there is one)."""

    def execute(self, statement: str, params: Sequence | dict = ()) -> list[tuple]:
        """Run one SQL statement (placeholders :attr:`param`) and return its rows (none for statements that
        return nothing). Outside :meth:`transaction` it commits at once."""
        with self._session():
            return self._execute(statement, params)

    def execute_many(self, statement: str, rows: Iterable[Sequence]) -> None:
        """Run one SQL statement once per row of parameters; in one transaction when inside :meth:`transaction`."""
        with self._session():
            self._execute_many(statement, list(rows))

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Hold the store for one transaction: the :meth:`execute` calls in the block commit together, or
        none of them when the block raises."""
        with self._session():
            with self._transaction():
                yield

    def table_columns(self, name: str) -> set[str]:
        """Column names of table ``name`` (empty when there is no such table)."""
        with self._session():
            return self._table_columns(name)

    @contextlib.contextmanager
    def _session(self) -> Iterator[None]:
        """Hold the lock, connect if need be, and turn connection and disk errors into StorageUnavailable."""
        with self._lock:
            self._ensure_connected()
            try:
                yield
            except StorageUnavailable:
                raise
            except Exception as exc:
                unavailable = self._unavailable(exc)
                if unavailable is None:
                    raise
                raise unavailable from exc

    # --------------------------------------------------------------- lifecycle

    @abc.abstractmethod
    def close(self) -> None:
        """Release the database connection; the store is unusable afterwards."""

    def __enter__(self) -> History:
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

    def _ensure_connected(self) -> None:  # noqa: B027 -- a no-op hook: only backends that can lose it override
        """Make sure the store has a working connection (a backend that can lose it reconnects here, or raises
        StorageUnavailable while it waits to try again). Caller holds the lock."""

    @abc.abstractmethod
    def _unavailable(self, exc: Exception) -> StorageUnavailable | None:
        """The StorageUnavailable a driver error means (the connection lost, the disk full), None when the
        error is of another kind (a bug, a constraint)."""

    @abc.abstractmethod
    def _execute(self, statement: str, params: Sequence | dict) -> list[tuple]:
        """Run one statement on the connection and return its rows. Caller holds the lock."""

    @abc.abstractmethod
    def _execute_many(self, statement: str, rows: list[Sequence]) -> None:
        """Run one statement per row of parameters. Caller holds the lock."""

    @abc.abstractmethod
    def _transaction(self) -> contextlib.AbstractContextManager:
        """A context manager running its block in one database transaction. Caller holds the lock."""

    @abc.abstractmethod
    def _table_columns(self, name: str) -> set[str]:
        """Column names of a table of the store. Caller holds the lock."""

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
        """Rows of the keys with start_ms <= ts_ms < end_ms, as a ROW_DTYPE array in any order."""

    @abc.abstractmethod
    def _select_buckets(self, keys: list[int], start_ms: int, end_ms: int, interval_ms: int, agg: str) -> np.ndarray:
        """Aggregated counted values per key and epoch-aligned bucket, as a BUCKET_DTYPE array in any order."""

    @abc.abstractmethod
    def _select_latest(self, keys: list[int] | None) -> list[tuple[str, int, float | None, int]]:
        """(point_id, ts_ms, value, quality) of the latest row of each key (None: of every point)."""


# ---------------------------------------------------------------------------- helpers

def unique_ids(point_ids: Sequence[str]) -> list[str]:
    """Point ids in the order given, without repeats; a bare string is refused (it is not a list of ids)."""
    if isinstance(point_ids, str):
        raise TypeError(f"point_ids must be a sequence of point ids, not the string {point_ids!r}")
    return list(dict.fromkeys(point_ids))


def range_ms(start: datetime, end: datetime) -> tuple[int, int]:
    """UTC milliseconds of a half-open range's ends; naive datetimes are refused."""
    for name, ts in (("start", start), ("end", end)):
        if ts.tzinfo is None or ts.utcoffset() is None:
            raise ValueError(f"{name} {ts} has no time zone; history ranges need tz-aware timestamps")
    return utc_ms(start), utc_ms(end)


def utc_index(ts_ms: np.ndarray) -> pd.DatetimeIndex:
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
    return pd.DataFrame(table, index=utc_index(times), columns=pd.Index(ids, dtype=object))
