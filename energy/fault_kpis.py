"""Fault KPIs from fault episodes: per asset and per asset kind (DOMAIN.md "KPI definitions").

For one asset over a period of H hours:

- ``episodes``: fault episodes overlapping the period (any rule);
- ``faults``: failures, i.e. episodes merged where they overlap or touch
  (two rules tripping on one failure count once);
- ``hours_in_fault``: length of the union of the episodes within the period
  (an open episode counts up to the period's end);
- ``pct_time_in_fault`` = 100 x hours_in_fault / H;
- ``mtbf_h`` = (H - hours_in_fault) / faults (mean up-time between failures);
- ``mttr_h`` = hours_in_fault / faults (mean time to repair);
- ``availability`` = MTBF / (MTBF + MTTR) = 1 - hours_in_fault / H;
- ``comm_losses``: episodes of the ``device_comm_lost`` rule.

MTBF and MTTR are None for an asset without a fault; its availability is 1.
Per asset kind the same figures pool that kind's assets: H is the period times
the number of assets of the kind, hours and counts are summed.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from energy.fault_rules import COMM_LOST_RULE
from twin.fault_episodes import FaultEpisode
from twin.park import Park


@dataclass(frozen=True)
class FaultKpis:
    """Fault KPIs of one asset or one asset kind over a period (see the module docstring)."""

    name: str
    episodes: int
    faults: int
    hours_in_fault: float
    period_h: float
    pct_time_in_fault: float
    mtbf_h: float | None
    mttr_h: float | None
    availability: float
    comm_losses: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _fault_intervals(episodes: list[FaultEpisode], start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """Union of the episodes clipped to [start, end), as sorted disjoint intervals."""
    clipped = sorted((max(e.start_utc, start), min(e.end_utc or end, end)) for e in episodes)
    merged: list[list[datetime]] = []
    for lo, hi in clipped:
        if hi <= lo:
            continue
        if merged and lo <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    return [(lo, hi) for lo, hi in merged]


def _kpis(name: str, episodes: list[FaultEpisode], intervals: list[tuple[datetime, datetime]],
          period_h: float) -> FaultKpis:
    hours = sum((hi - lo).total_seconds() for lo, hi in intervals) / 3600.0
    faults = len(intervals)
    mtbf = (period_h - hours) / faults if faults else None
    mttr = hours / faults if faults else None
    return FaultKpis(
        name=name, episodes=len(episodes), faults=faults, hours_in_fault=hours, period_h=period_h,
        pct_time_in_fault=100.0 * hours / period_h if period_h else 0.0, mtbf_h=mtbf, mttr_h=mttr,
        availability=1.0 - hours / period_h if period_h else 1.0,
        comm_losses=sum(1 for e in episodes if e.rule_id == COMM_LOST_RULE),
    )


def fault_kpis(park: Park, episodes: list[FaultEpisode], start: datetime,
               end: datetime) -> tuple[dict[str, FaultKpis], dict[str, FaultKpis]]:
    """(KPIs per asset id, KPIs per asset kind) over [start, end), for every asset of the park."""
    period_h = (end - start).total_seconds() / 3600.0
    by_asset: dict[str, list[FaultEpisode]] = defaultdict(list)
    for episode in episodes:
        by_asset[episode.asset_id].append(episode)
    per_asset: dict[str, FaultKpis] = {}
    kind_parts: dict[str, list[tuple[list[FaultEpisode], list[tuple[datetime, datetime]]]]] = defaultdict(list)
    for _, asset in park.iter_assets():
        mine = by_asset.get(asset.id, [])
        intervals = _fault_intervals(mine, start, end)
        per_asset[asset.id] = _kpis(asset.id, mine, intervals, period_h)
        kind_parts[asset.kind].append((mine, intervals))
    per_kind = {
        kind: _kpis(kind, [e for mine, _ in parts for e in mine], [iv for _, ivs in parts for iv in ivs],
                    period_h * len(parts))
        for kind, parts in kind_parts.items()
    }
    return per_asset, per_kind
