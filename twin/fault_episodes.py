"""Fault episodes: one stretch of time during which one fault rule held for one asset.

An episode is identified by (rule id, asset id, start); its end is None while
the fault is still active. Detection rules live in ``energy.fault_rules``; the
history store keeps episodes beside the readings (``twin.history.FaultEpisodeStore``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import IntEnum


class Priority(IntEnum):
    """How urgently an operator must respond to an episode, the four alarm priorities of ISA-18.2:
    LOW (worth a look when convenient), MEDIUM (costs energy or comfort), HIGH (equipment at risk or a
    device lost), CRITICAL (safety or an outage). DOMAIN.md: aim for about 80 % low, 15 % medium, 5 % high."""

    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class FaultEpisode:
    """A fault rule holding for an asset from ``start_utc`` until ``end_utc`` (None: still active).

    ``asset_id`` is the asset the rule judged (for sensor rules: the asset
    whose point misbehaves; ``point_id`` names the point then). ``evidence``
    holds the figures that tripped the rule (e.g. ``{"delta_t_k": 1.2}``),
    JSON-serialisable numbers and strings.
    """

    rule_id: str
    asset_id: str
    start_utc: datetime
    end_utc: datetime | None
    priority: Priority
    evidence: dict = field(default_factory=dict)
    point_id: str = ""
    suppressed_by: str | None = None
    """The id of the episode whose cause explains this one (e.g. its device's comm loss): recorded, not
    annunciated; None when the episode is annunciated."""
    acknowledged_by: str | None = None
    """Who acknowledged the episode (a dashboard user name); None until someone does."""
    acknowledged_utc: datetime | None = None

    def __post_init__(self) -> None:
        if self.start_utc.tzinfo is None or (self.end_utc is not None and self.end_utc.tzinfo is None):
            raise ValueError("fault episode times must be tz-aware")
        if self.end_utc is not None and self.end_utc <= self.start_utc:
            raise ValueError(f"episode {self.rule_id}/{self.asset_id}: end {self.end_utc} is not after start "
                             f"{self.start_utc}")

    @property
    def key(self) -> tuple[str, str, str, datetime]:
        """Identity of the episode: (rule, asset, point, start)."""
        return (self.rule_id, self.asset_id, self.point_id, self.start_utc)

    @property
    def id(self) -> str:
        """The key as one string, ``rule:asset:point:start_ms`` (point empty for asset rules), for URLs and forms."""
        return f"{self.rule_id}:{self.asset_id}:{self.point_id}:{int(self.start_utc.timestamp() * 1000)}"

    @property
    def is_open(self) -> bool:
        return self.end_utc is None

    def closed_at(self, end_utc: datetime) -> "FaultEpisode":
        return replace(self, end_utc=end_utc)

    def duration_h(self, until_utc: datetime) -> float:
        """Hours in fault, counting an open episode up to ``until_utc``."""
        end = self.end_utc or until_utc
        return max(0.0, (end - self.start_utc).total_seconds() / 3600.0)
