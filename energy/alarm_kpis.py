"""Alarm-system KPIs of ISA-18.2 and EEMUA 191 from fault episodes (DOMAIN.md "Alarm management").

An alarm is an annunciated episode (``suppressed_by`` None) that started in the period; an
episode suppressed by its cause was recorded, not shown to the operator, and is not an alarm.
The park has one operator console, so an operator hour is an hour of the period.

- ``alarms_per_operator_hour`` = alarms / period hours (about 6 is very likely acceptable, 12 the
  most an operator can handle);
- ``flood_periods_pct``: share of the period's 10-minute intervals with more than 10 alarms
  (keep under about 1 %);
- ``chattering_alarms``: alarms (rule, asset, point) that started 3 or more times within 1 minute;
- ``standing_alarms``: annunciated episodes active in the period that had been active for more
  than 24 hours by their end or by the period's end;
- ``priority_counts`` and ``priority_pct``: alarms per priority (aim: about 80 % low, 15 % medium,
  5 % high, critical rare).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime, timedelta
from typing import Any

from twin.fault_episodes import FaultEpisode, Priority

FLOOD_INTERVAL = timedelta(minutes=10)
FLOOD_ALARMS = 10
"""More than this many alarms in one :data:`FLOOD_INTERVAL` is a flood."""
CHATTER_WINDOW = timedelta(minutes=1)
CHATTER_STARTS = 3
"""An alarm starting this many times within :data:`CHATTER_WINDOW` chatters."""
STANDING_AFTER = timedelta(hours=24)


def alarm_system_kpis(episodes: list[FaultEpisode], start: datetime, end: datetime) -> dict[str, Any]:
    """The alarm-system KPIs (see the module docstring) of the episodes over [start, end), as a JSON-ready dict."""
    period_h = (end - start).total_seconds() / 3600.0
    annunciated = [e for e in episodes if e.suppressed_by is None]
    alarms = sorted((e for e in annunciated if start <= e.start_utc < end), key=lambda e: e.start_utc)
    intervals = max(1, -(-(end - start) // FLOOD_INTERVAL))
    per_interval = Counter((e.start_utc - start) // FLOOD_INTERVAL for e in alarms)
    flooded = sum(1 for count in per_interval.values() if count > FLOOD_ALARMS)
    starts: dict[str, list[datetime]] = defaultdict(list)
    for e in alarms:
        starts[_tag(e)].append(e.start_utc)
    chattering = sorted(tag for tag, times in starts.items()
                        if any(times[i + CHATTER_STARTS - 1] - times[i] <= CHATTER_WINDOW
                               for i in range(len(times) - CHATTER_STARTS + 1)))
    standing = [e for e in annunciated if e.start_utc < end and (e.end_utc is None or e.end_utc > start)
                and min(e.end_utc or end, end) - e.start_utc > STANDING_AFTER]
    by_priority = Counter(e.priority for e in alarms)
    return {
        "period_h": period_h,
        "alarms": len(alarms),
        "suppressed": sum(1 for e in episodes if e.suppressed_by is not None and start <= e.start_utc < end),
        "alarms_per_operator_hour": len(alarms) / period_h if period_h else 0.0,
        "flood_periods_pct": 100.0 * flooded / intervals,
        "chattering_alarms": chattering,
        "standing_alarms": [e.id for e in standing],
        "priority_counts": {p.label: by_priority.get(p, 0) for p in Priority},
        "priority_pct": {p.label: 100.0 * by_priority.get(p, 0) / len(alarms) if alarms else 0.0 for p in Priority},
    }


def _tag(episode: FaultEpisode) -> str:
    """The alarm an episode is an occurrence of: rule, asset and point."""
    return f"{episode.rule_id}:{episode.asset_id}:{episode.point_id}"
