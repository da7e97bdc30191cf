"""Fault episodes: one stretch of time during which one fault rule held for one asset.

An episode is identified by (rule id, asset id, start); its end is None while
the fault is still active. Detection rules live in ``energy.fault_rules``; the
history store keeps episodes beside the readings (``twin.history.FaultEpisodeStore``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import IntEnum


class Severity(IntEnum):
    """How urgent an episode is: INFO (worth a look), WARNING (costs energy or comfort), CRITICAL (safety or outage)."""

    INFO = 1
    WARNING = 2
    CRITICAL = 3

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
    severity: Severity
    evidence: dict = field(default_factory=dict)
    point_id: str = ""
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
