"""The history store in one SQLite file."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from twin.history.interface import BUCKET_DTYPE, ROW_DTYPE, History, StorageFull, StorageUnavailable, StoreLocationError
from twin.history.queries import bucket_query
from twin.history.schema import migrate

_CORE_TABLES = (
    "CREATE TABLE IF NOT EXISTS points (point_key INTEGER PRIMARY KEY, point_id TEXT NOT NULL UNIQUE)",
    ("CREATE TABLE IF NOT EXISTS readings (point_key INTEGER NOT NULL, ts_ms INTEGER NOT NULL, value REAL, "
    "quality INTEGER NOT NULL, PRIMARY KEY (point_key, ts_ms)) WITHOUT ROWID"),
)

_UNAVAILABLE_CODES = ("SQLITE_IOERR", "SQLITE_CANTOPEN", "SQLITE_READONLY", "SQLITE_BUSY", "SQLITE_LOCKED",
                      "SQLITE_PROTOCOL")
"""SQLite result codes (and their extended codes) meaning the file cannot be written now, not a bad statement."""


class SQLiteHistory(History):
    """History in one SQLite file: WAL journal, synchronous=NORMAL, 64 MiB page cache.

    One connection (``check_same_thread=False``) shared behind the store's lock.
    WAL lets other processes read the file while this one writes. With
    synchronous=NORMAL a power cut may lose the last commits, never corrupt
    the file. Each append writes its readings in one transaction. The file's
    folder must exist and be writable (:class:`StoreLocationError` otherwise).
    A full disk raises :class:`StorageFull`.
    """

    param = "?"
    sequence_column = "seq INTEGER PRIMARY KEY AUTOINCREMENT"

    def __init__(self, path: str | Path):
        super().__init__()
        self.path = Path(path)
        self.description = str(self.path)
        folder = self.path.parent
        if not folder.is_dir():
            raise StoreLocationError(f"history file {self.path}: " + (
                f"{folder} is a file, not a folder" if folder.exists() else f"folder {folder} does not exist"))
        try:
            self._conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
            for pragma in ("journal_mode = WAL", "synchronous = NORMAL", "cache_size = -65536",
                           "temp_store = MEMORY"):
                self._conn.execute(f"PRAGMA {pragma}")
        except sqlite3.Error as exc:
            raise StoreLocationError(f"history file {self.path}: cannot open it for writing ({exc}); is the "
                                     f"file or its folder {folder} read-only?") from None
        try:
            migrate(self, _CORE_TABLES)
        except StorageFull:
            self._conn.close()
            raise
        except StorageUnavailable as exc:
            self._conn.close()
            raise StoreLocationError(f"history file {self.path}: cannot write it ({exc.__cause__ or exc}); is "
                                     f"the file or its folder {folder} read-only?") from None

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def table(self, name: str) -> str:
        return name

    def _unavailable(self, exc: Exception) -> StorageUnavailable | None:
        if not isinstance(exc, sqlite3.Error):
            return None
        code = getattr(exc, "sqlite_errorname", "") or ""
        if code == "SQLITE_FULL" or "database or disk is full" in str(exc):
            return StorageFull(f"history file {self.path}: the disk is full ({exc})")
        if code.startswith(_UNAVAILABLE_CODES):
            return StorageUnavailable(f"history file {self.path}: cannot be written ({exc})")
        return None

    def _execute(self, statement: str, params: Sequence | dict) -> list[tuple]:
        return self._conn.execute(statement, params).fetchall()

    def _execute_many(self, statement: str, rows: list[Sequence]) -> None:
        self._conn.executemany(statement, rows)

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        if self._conn.in_transaction:  # nested: part of the enclosing transaction
            yield
            return
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield
            self._conn.execute("COMMIT")
        except BaseException:
            if self._conn.in_transaction:  # SQLite may have rolled back already (a full disk does)
                self._conn.execute("ROLLBACK")
            raise

    def _table_columns(self, name: str) -> set[str]:
        return {row[1] for row in self._conn.execute(f"PRAGMA table_info({name})").fetchall()}

    def _insert_points(self, point_ids: list[str]) -> dict[str, int]:
        with self._transaction():
            self._conn.executemany("INSERT INTO points (point_id) VALUES (?) ON CONFLICT (point_id) DO NOTHING",
                                   [(pid,) for pid in point_ids])
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
        with self._transaction():
            self._conn.executemany(
                "INSERT INTO readings (point_key, ts_ms, value, quality) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (point_key, ts_ms) DO UPDATE SET value = excluded.value, quality = excluded.quality",
                rows)

    def _select_rows(self, keys: list[int], start_ms: int, end_ms: int) -> np.ndarray:
        # One primary-key range scan per point: faster here than one IN (...) query.
        columns = np.dtype([("ts_ms", "i8"), ("value", "f8"), ("quality", "i2")])
        parts = [np.array(self._conn.execute(
            "SELECT ts_ms, value, quality FROM readings WHERE point_key = ? AND ts_ms >= ? AND ts_ms < ?",
            (key, start_ms, end_ms)).fetchall(), dtype=columns) for key in keys]
        rows = np.empty(sum(len(p) for p in parts), dtype=ROW_DTYPE)
        rows["point_key"] = np.repeat(keys, [len(p) for p in parts])
        for name in columns.names or ():
            rows[name] = np.concatenate([p[name] for p in parts]) if parts else []
        return rows

    def _select_buckets(self, keys: list[int], start_ms: int, end_ms: int, interval_ms: int, agg: str) -> np.ndarray:
        query, params = bucket_query(agg, "readings", keys, start_ms, end_ms, interval_ms, lambda name: f":{name}")
        return np.array(self._conn.execute(query, params).fetchall(), dtype=BUCKET_DTYPE)

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
