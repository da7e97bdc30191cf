"""Fault episodes: one stretch of time during which one fault rule held for one asset.

An episode is identified by (rule id, asset id, start); its end is None while
the fault is still active. Detection rules live in ``energy.fault_rules``; the
history store keeps episodes beside the readings (``twin.history.FaultEpisodeStore``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import IntEnum, StrEnum

from twin.readings import utc_ms


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
        """The key as one string, ``rule:asset:point:start_ms`` (point empty for asset rules), for URLs and forms;
        ``start_ms`` rounded as the store keeps it, so an episode has the same id before and after it is stored."""
        return f"{self.rule_id}:{self.asset_id}:{self.point_id}:{utc_ms(self.start_utc)}"

    @property
    def is_open(self) -> bool:
        return self.end_utc is None

    def closed_at(self, end_utc: datetime) -> FaultEpisode:
        return replace(self, end_utc=end_utc)

    def duration_h(self, until_utc: datetime) -> float:
        """Hours in fault, counting an open episode up to ``until_utc``."""
        end = self.end_utc or until_utc
        return max(0.0, (end - self.start_utc).total_seconds() / 3600.0)


class AlarmState(StrEnum):
    """States an alarm console filters on (ISA-18.2 lifecycle, DOMAIN.md "Alarm management"); several given
    together must all hold. ``shelved`` is judged at the console's "now"."""

    ACTIVE = "active"
    """The episode has not ended."""
    CLEARED = "cleared"
    """The episode has ended."""
    UNACKNOWLEDGED = "unacknowledged"
    """Nobody has acknowledged the episode (active or cleared: a cleared alarm stays listed until acknowledged)."""
    SHELVED = "shelved"
    """The episode's alarm (rule, asset, point) is shelved now."""
    SUPPRESSED = "suppressed"
    """Another episode's cause explains this one (``suppressed_by``)."""


@dataclass(frozen=True)
class AlarmFilter:
    """Which episodes an alarm console lists: each field left empty (None or empty set) does not filter.

    ``start_utc``/``end_utc``: episodes active at some time in [start, end) (open ones included).
    """

    start_utc: datetime | None = None
    end_utc: datetime | None = None
    priorities: frozenset[Priority] = frozenset()
    asset_ids: frozenset[str] = frozenset()
    rule_ids: frozenset[str] = frozenset()
    states: frozenset[AlarmState] = frozenset()


def alarm_filter(priorities: Iterable[str] = (), states: Iterable[str] = (), asset_ids: Iterable[str] = (),
                 rule_ids: Iterable[str] = (), start_utc: datetime | None = None,
                 end_utc: datetime | None = None) -> AlarmFilter:
    """An :class:`AlarmFilter` from names as people and URLs give them (priority labels such as ``high``,
    state names such as ``unacknowledged``); empty names are ignored. Raises ValueError naming a priority or
    state that does not exist, or a time range that ends before it begins."""
    chosen_priorities, chosen_states = set(), set()
    for label in filter(None, priorities):
        try:
            chosen_priorities.add(Priority[label.upper()])
        except KeyError:
            raise ValueError(f"priority {label!r} is not one of "
                             f"{', '.join(p.label for p in Priority)}") from None
    for name in filter(None, states):
        try:
            chosen_states.add(AlarmState(name))
        except ValueError:
            raise ValueError(f"state {name!r} is not one of {', '.join(AlarmState)}") from None
    if start_utc is not None and end_utc is not None and end_utc <= start_utc:
        raise ValueError(f"the time range ends ({end_utc.isoformat()}) before it begins ({start_utc.isoformat()})")
    return AlarmFilter(start_utc, end_utc, frozenset(chosen_priorities), frozenset(filter(None, asset_ids)),
                       frozenset(filter(None, rule_ids)), frozenset(chosen_states))


@dataclass(frozen=True)
class EpisodePage:
    """One page of a console listing: its episodes (newest start first), how many match in all, and where
    the page begins in that listing."""

    episodes: list[FaultEpisode]
    total: int
    offset: int


@dataclass(frozen=True)
class AlarmComment:
    """A note an operator left on an episode."""

    episode_id: str
    who: str
    at_utc: datetime
    text: str


@dataclass(frozen=True)
class Shelf:
    """An alarm (rule, asset, point: every episode of it) hidden from ``shelved_utc`` until ``until_utc``:
    its episodes are recorded but neither counted as needing attention nor notified. Kept for the audit."""

    rule_id: str
    asset_id: str
    point_id: str
    shelved_by: str
    shelved_utc: datetime
    until_utc: datetime
    reason: str

    def covers(self, episode: FaultEpisode, at_utc: datetime) -> bool:
        """True when this shelf hides ``episode``'s alarm at ``at_utc``."""
        return ((self.rule_id, self.asset_id, self.point_id) == (episode.rule_id, episode.asset_id, episode.point_id)
                and self.shelved_utc <= at_utc < self.until_utc)
