"""A bounded on-disk queue of readings (and write audit records) that the history store could not take yet.

One SQLite file beside the run. Readings are kept in the order they were spooled and handed back oldest
first, so a replay writes them to the store in the order they arrived. The spool holds at most
``max_rows`` readings: when a push would go beyond that, the oldest go first and are counted as lost.
Write audit records are few (one per write attempt) and are never dropped.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from twin.history.audit import WriteRecord
from twin.readings import Quality, Reading, from_utc_ms, utc_ms


class ReadingSpool:
    """Readings and write audit records waiting for the history store, in a SQLite file at ``path``.

    Thread-safe (one connection behind a lock). Raises sqlite3.Error when the file cannot be written
    (a full disk): the caller decides what that loses.
    """

    def __init__(self, path: str | Path, max_rows: int):
        if isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows <= 0:
            raise ValueError(f"spool size must be a positive whole number of readings, got {max_rows!r}")
        self.path = Path(path)
        self.max_rows = max_rows
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute("PRAGMA synchronous = NORMAL")
        self._conn.execute("CREATE TABLE IF NOT EXISTS readings (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
                           "point_id TEXT NOT NULL, ts_ms INTEGER NOT NULL, value REAL, quality INTEGER NOT NULL)")
        self._conn.execute("CREATE TABLE IF NOT EXISTS writes (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
                           "ts_ms INTEGER NOT NULL, who TEXT NOT NULL, point_id TEXT NOT NULL, value REAL, "
                           "result TEXT NOT NULL, requested TEXT)")
        self._rows = self._conn.execute("SELECT count(*) FROM readings").fetchone()[0]

    def __len__(self) -> int:
        """Readings waiting (write audit records not counted)."""
        return self._rows

    def pending_writes(self) -> int:
        """Write audit records waiting."""
        with self._lock:
            return self._conn.execute("SELECT count(*) FROM writes").fetchone()[0]

    def push(self, readings: list[Reading]) -> int:
        """Add readings after those waiting; returns how many of the oldest were dropped to stay within
        max_rows (0 unless the spool was full)."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.executemany(
                    "INSERT INTO readings (point_id, ts_ms, value, quality) VALUES (?, ?, ?, ?)",
                    [(r.point_id, utc_ms(r.ts_utc), r.value, int(r.quality)) for r in readings])
                dropped = max(0, self._rows + len(readings) - self.max_rows)
                if dropped:
                    self._conn.execute("DELETE FROM readings WHERE seq IN "
                                       "(SELECT seq FROM readings ORDER BY seq LIMIT ?)", (dropped,))
                self._conn.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise
            self._rows += len(readings) - dropped
            return dropped

    def oldest(self, limit: int) -> tuple[int, list[Reading]]:
        """Up to ``limit`` of the oldest readings waiting, in the order spooled, and the sequence number of the
        last of them (for :meth:`remove_through`); (0, []) when none wait."""
        with self._lock:
            rows = self._conn.execute("SELECT seq, point_id, ts_ms, value, quality FROM readings ORDER BY seq "
                                      "LIMIT ?", (limit,)).fetchall()
        if not rows:
            return 0, []
        return rows[-1][0], [Reading(pid, from_utc_ms(ts_ms), value, Quality(quality))
                             for _, pid, ts_ms, value, quality in rows]

    def remove_through(self, seq: int) -> None:
        """Forget the readings up to sequence number ``seq`` (they are in the store now)."""
        with self._lock:
            removed = self._conn.execute("DELETE FROM readings WHERE seq <= ?", (seq,)).rowcount
            self._rows -= removed

    def push_write(self, record: WriteRecord) -> None:
        """Keep a write audit record until the store takes it."""
        with self._lock:
            self._conn.execute(
                "INSERT INTO writes (ts_ms, who, point_id, value, result, requested) VALUES (?, ?, ?, ?, ?, ?)",
                (utc_ms(record.ts_utc), record.who, record.point_id, record.value, record.result, record.requested))

    def oldest_write(self) -> tuple[int, WriteRecord] | None:
        """The oldest write audit record waiting and its sequence number; None when none waits."""
        with self._lock:
            row = self._conn.execute("SELECT seq, ts_ms, who, point_id, value, result, requested FROM writes "
                                     "ORDER BY seq LIMIT 1").fetchone()
        if row is None:
            return None
        seq, ts_ms, who, point_id, value, result, requested = row
        return seq, WriteRecord(from_utc_ms(ts_ms), who, point_id, value, result, requested)

    def remove_write(self, seq: int) -> None:
        """Forget a write audit record (it is in the store now)."""
        with self._lock:
            self._conn.execute("DELETE FROM writes WHERE seq = ?", (seq,))

    def close(self) -> None:
        with self._lock:
            self._conn.close()
