"""Readings: one timestamped value of one point, with its quality.

A reading is never dropped silently. A value that could not be read or
decoded is kept as a reading with ``value=None`` and a quality other than
``GOOD`` (what the wire carried stays with the protocol adapters, see
protocols.values.RawValue).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum


class Quality(IntEnum):
    """Quality of a reading, stored as a small integer.

    GOOD: read and decoded normally.
    STALE: the source did not update within its expected period.
    BAD: read, but the value is out of range, undecodable or flagged by the device.
    COMM_FAIL: the device could not be reached; the value is unknown.
    """

    GOOD = 0
    STALE = 1
    BAD = 2
    COMM_FAIL = 3

    @property
    def label(self) -> str:
        """Lower-case name as shown to users: good / stale / bad / comm_fail."""
        return self.name.lower()

    @classmethod
    def from_label(cls, label: str) -> Quality:
        return cls[label.upper()]


@dataclass(frozen=True, slots=True)
class Reading:
    """One value of one point at one instant.

    point_id: twin point id, e.g. ``b1.chiller1.chw_supply_temp_c``.
    ts_utc: tz-aware UTC timestamp.
    value: engineering value in the point's unit, or None when unknown.
    quality: see :class:`Quality`.
    """

    point_id: str
    ts_utc: datetime
    value: float | None
    quality: Quality = Quality.GOOD

    def __post_init__(self) -> None:
        if self.ts_utc.tzinfo is None:
            raise ValueError(f"reading for {self.point_id}: timestamp {self.ts_utc} has no time zone")


def utc_ms(ts: datetime) -> int:
    """Milliseconds since the Unix epoch for a tz-aware timestamp."""
    if ts.tzinfo is None:
        raise ValueError(f"timestamp {ts} has no time zone")
    return int(round(ts.timestamp() * 1000))


def from_utc_ms(ms: int) -> datetime:
    """Tz-aware UTC datetime from milliseconds since the Unix epoch."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC)
