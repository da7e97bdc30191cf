"""The write audit log: every attempt to write a device point, accepted or refused, and why.

Kept in table ``write_audit`` beside the readings, in either backend: ``seq`` numbers the rows in the order
recorded and breaks ties between equal times.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from twin.readings import from_utc_ms

if TYPE_CHECKING:
    from twin.history.interface import History


@dataclass(frozen=True)
class WriteRecord:
    """One attempt to write a device point, accepted or refused.

    value: the number written, in the point's unit; None when nothing numeric was written (a relinquish,
    or a request that was refused as not a finite number). requested: what was asked for, as text: a
    number as Python writes it (``12.5``, ``nan``, ``inf``), :data:`RELINQUISH` for a relinquish (the point
    handed back to the device), or the text given when it is not a number; derived from value when not
    given. result: ``ok``, or ``refused: <reason>`` (not writable, unknown point, not a number, limits,
    device exception) or ``failed: <reason>`` (no answer).
    """

    ts_utc: datetime
    who: str
    point_id: str
    value: float | None
    result: str
    requested: str | None = None

    def __post_init__(self) -> None:
        if self.requested is None:
            object.__setattr__(self, "requested", requested_text(self.value))

    @property
    def is_relinquish(self) -> bool:
        """True when the attempt asked to hand the point back to the device."""
        return self.requested == RELINQUISH


RELINQUISH = "relinquish"
"""``WriteRecord.requested`` of a relinquish."""

UNRECORDED = "unrecorded"
"""``WriteRecord.requested`` of a record made before requests were kept, whose value is unknown (a NaN,
an infinity and a relinquish were all stored without a value then)."""


def requested_text(value: float | None) -> str:
    """What a write of ``value`` asked for, as :attr:`WriteRecord.requested` keeps it."""
    return RELINQUISH if value is None else repr(float(value))


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


def write_record_of_row(row: tuple[int, int, str, str, float | None, str, str | None]) -> WriteRecord:
    """The record of an audit row (seq, ts_ms, who, point_id, value, result, requested)."""
    _, ts_ms, who, point_id, value, result, requested = row
    return WriteRecord(from_utc_ms(ts_ms), who, point_id, value, result, requested)


def parse_write_cursor(cursor: str) -> tuple[int, int]:
    """(ts_ms, seq) of the last record of a page, from its ``next_cursor``."""
    ts_text, _, seq_text = str(cursor).partition(":")
    try:
        return int(ts_text), int(seq_text)
    except ValueError:
        raise ValueError(f"cursor {cursor!r} is not a next_cursor of a write audit page") from None


