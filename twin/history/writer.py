"""The live run's way into the history store: readings are written in a thread of their own, and whatever the
store cannot take (its server down, its disk full) waits in an on-disk spool and is replayed, in order, once
the store is back. Nothing is lost unless the spool itself overflows or cannot be written, and then the
count lost is kept and logged.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from twin.history.audit import WriteRecord
from twin.history.interface import History, StorageUnavailable
from twin.history.spool import ReadingSpool
from twin.readings import Reading

log = logging.getLogger(__name__)

RETRY_S = 1.0
"""Seconds between two attempts to replay the spool while the store is unavailable (the PostgreSQL backend
spaces its reconnection attempts further apart on its own)."""

REPLAY_ROWS = 20_000
"""Readings per transaction of a replay."""


@dataclass(frozen=True)
class StorageHealth:
    """How the history store is doing, for ``/api/status`` and the dashboard's banner.

    state: ``ok`` or ``degraded`` (readings go to the spool). since_utc: wall-clock time the store became
    unavailable (None while ok). reason: the last error met (None while ok). received_rows: readings given
    to the writer; written_rows: readings committed to the store (directly or replayed); spooled_rows:
    readings waiting in the spool; lost_rows: readings dropped because the spool overflowed or could not
    be written. Counts are since the writer started (spooled_rows includes what an earlier run left).
    """

    state: str
    since_utc: datetime | None
    reason: str | None
    received_rows: int
    written_rows: int
    spooled_rows: int
    lost_rows: int
    spool_path: str

    def as_json(self) -> dict:
        return {"state": self.state, "since_utc": None if self.since_utc is None else self.since_utc.isoformat(),
                "reason": self.reason, "received_rows": self.received_rows, "written_rows": self.written_rows,
                "spooled_rows": self.spooled_rows, "lost_rows": self.lost_rows, "spool": self.spool_path}


_STOP = object()
"""Queued last: the writer replays what it can and ends."""


class SpooledWriter:
    """Writes readings to a history store from a thread of its own, through a spool while the store is away.

    :meth:`append` only queues the readings (it never blocks on the store). The thread writes each batch to
    the store while the store takes them and nothing waits in the spool; otherwise the batch goes to the
    spool, after those already waiting, and every ``retry_s`` seconds the thread replays the spool oldest
    first, :data:`REPLAY_ROWS` at a time, until it is empty: then the store is healthy again. One log line
    when the store becomes unavailable, one when it is back (and one when the spool starts dropping).

    Write audit records (:meth:`record_write`) are written at once while the store is healthy, else kept in
    the spool and replayed with the readings.
    """

    def __init__(self, store: History, spool: ReadingSpool, retry_s: float = RETRY_S,
                 wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC)):
        self.store = store
        self.spool = spool
        self.retry_s = retry_s
        self._wall_clock = wall_clock
        self._queue: queue.Queue = queue.Queue()
        self._lock = threading.Lock()
        self._since: datetime | None = None
        self._reason: str | None = None
        self._received = self._written = self._lost = 0
        self._dropping = False
        self._next_replay_s = 0.0
        self._thread = threading.Thread(target=self._run, name="history-writer", daemon=True)
        if len(spool) or spool.pending_writes():
            self._degrade(f"{len(spool):,} readings of an earlier run wait in the spool {spool.path}")

    def start(self) -> None:
        self._thread.start()

    def replay_spool(self) -> bool:
        """Write what an earlier run left in the spool to the store now, in the caller's thread, before
        :meth:`start`: a restarted run must find those readings in the store before it decides where the
        history ends. True when the spool is empty after; False while the store is unavailable (the thread
        replays the rest once it is back)."""
        self._replay()
        return self._since is None

    def append(self, readings: Iterable[Reading]) -> int:
        """Queue readings for the store; returns how many."""
        batch = list(readings)
        if batch:
            with self._lock:
                self._received += len(batch)
            self._queue.put(batch)
        return len(batch)

    def record_write(self, record: WriteRecord) -> None:
        """Add a record to the write audit log: at once while the store is healthy, else through the spool."""
        if self._since is None:
            try:
                self.store.record_write(record)
                return
            except StorageUnavailable as exc:
                self._degrade(str(exc))
        self.spool.push_write(record)

    def health(self) -> StorageHealth:
        with self._lock:
            return StorageHealth("ok" if self._since is None else "degraded", self._since, self._reason,
                                 self._received, self._written, len(self.spool), self._lost, str(self.spool.path))

    def close(self, timeout_s: float = 60.0) -> StorageHealth:
        """Write what is queued (to the store, or the spool while the store is away), replay the spool once
        more, and stop the thread; the health at the end."""
        self._queue.put(_STOP)
        if self._thread.is_alive():
            self._thread.join(timeout_s)
        return self.health()

    # ------------------------------------------------------------------ thread

    def _run(self) -> None:
        while True:
            try:
                batch = self._queue.get(timeout=self.retry_s)
            except queue.Empty:
                batch = None
            if batch is _STOP:
                self._replay()
                return
            if batch is not None:
                self._take(batch)
            if self._since is not None and time.monotonic() >= self._next_replay_s:
                self._replay()

    def _take(self, batch: list[Reading]) -> None:
        if self._since is None:
            try:
                self.store.append(batch)
                with self._lock:
                    self._written += len(batch)
                return
            except StorageUnavailable as exc:
                self._degrade(str(exc))
        self._to_spool(batch)

    def _to_spool(self, batch: list[Reading]) -> None:
        try:
            dropped = self.spool.push(batch)
        except sqlite3.Error as exc:
            dropped = len(batch)
            if not self._dropping:
                log.error("history spool %s cannot be written (%s): readings are being lost", self.spool.path, exc)
        else:
            if dropped and not self._dropping:
                log.error("history spool %s is full (%s readings): the oldest readings are being dropped",
                          self.spool.path, f"{self.spool.max_rows:,}")
        if dropped:
            with self._lock:
                self._lost += dropped
            self._dropping = True

    def _replay(self) -> None:
        """Write the spool to the store oldest first; on success the store is healthy again."""
        self._next_replay_s = time.monotonic() + self.retry_s
        try:
            while (write := self.spool.oldest_write()) is not None:
                self.store.record_write(write[1])
                self.spool.remove_write(write[0])
            while True:
                seq, readings = self.spool.oldest(REPLAY_ROWS)
                if not readings:
                    break
                self.store.append(readings)
                self.spool.remove_through(seq)
                with self._lock:
                    self._written += len(readings)
        except StorageUnavailable as exc:
            self._degrade(str(exc))
            return
        self._recover()

    def _degrade(self, reason: str) -> None:
        with self._lock:
            first = self._since is None
            if first:
                self._since = self._wall_clock()
            self._reason = reason
        if first:
            log.warning("history store unavailable (%s): readings wait in the spool %s until it is back",
                        reason, self.spool.path)

    def _recover(self) -> None:
        with self._lock:
            if self._since is None:
                return
            since, self._since, self._reason = self._since, None, None
            lost, self._dropping = self._lost, False
        log.warning("history store back after %.0f s: spooled readings written%s",
                    (self._wall_clock() - since).total_seconds(),
                    f"; {lost:,} readings lost to the spool's limit so far" if lost else "")
