"""History store: every reading of every point, in SQLite (default) or PostgreSQL.

One interface, :class:`History` (``twin.history.interface``), two backends, :class:`SQLiteHistory`
(``twin.history.sqlite``) and :class:`PostgresHistory` (``twin.history.postgres``); :func:`open_history`
picks one from a URL. Beside the readings: the write audit log (``twin.history.audit``), fault episodes
with their alarm lifecycle (``twin.history.episodes``), the clock speed of each run that wrote it
(``twin.history.runs``), and the schema version with its migrations (``twin.history.schema``). The live
run's writer, which spools readings on disk while the store cannot take them, is in ``twin.history.writer``
and ``twin.history.spool``.
"""

from __future__ import annotations

from twin.history.audit import RELINQUISH, UNRECORDED, WritePage, WriteRecord, record_write, write_audit
from twin.history.episodes import FaultEpisodeStore
from twin.history.interface import (
    AGGREGATES,
    FRAME_COLUMNS,
    WRITE_PAGE_SIZE,
    History,
    StorageFull,
    StorageUnavailable,
    StoreLocationError,
)
from twin.history.postgres import PostgresHistory
from twin.history.schema import SCHEMA_VERSION, schema_version
from twin.history.sqlite import SQLiteHistory

__all__ = ["AGGREGATES", "FRAME_COLUMNS", "RELINQUISH", "SCHEMA_VERSION", "UNRECORDED", "WRITE_PAGE_SIZE",
           "FaultEpisodeStore", "History", "PostgresHistory", "SQLiteHistory", "StorageFull", "StorageUnavailable",
           "StoreLocationError", "WritePage", "WriteRecord", "open_history", "record_write", "schema_version",
           "write_audit"]


def open_history(url: str) -> History:
    """Open the history store a URL names, bringing its schema up to date (``twin.history.schema``).

    Accepted: ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db``,
    a plain file path (SQLite), ``postgresql://...`` or ``postgres://...``
    (optionally with ``?schema=NAME``). A SQLite file's folder must exist and be
    writable (StoreLocationError, a ValueError, otherwise); a PostgreSQL server
    that cannot be reached raises StorageUnavailable.
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
