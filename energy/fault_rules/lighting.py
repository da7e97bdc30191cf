"""Fault rules of a lighting circuit (twin.kinds.lighting): light left on when nobody is there."""

from __future__ import annotations

import numpy as np

from energy.fault_rules.base import AssetRule, Condition, FaultThresholds, RuleInput, minutes
from twin.kinds.lighting import Lighting
from twin.park import Building
from twin.profiles import occupancy_fraction

KIND = "lighting"
"""The kind name these rules judge assets of."""


def lighting_on_unoccupied(data: RuleInput, limits: FaultThresholds, building: Building,
                           light: Lighting) -> list[Condition]:
    """Lighting above half its rated power for 30 min while its building is unoccupied.

    Unoccupied: the building's occupancy schedule (park file, local time,
    :func:`twin.profiles.occupancy_fraction`) gives fewer than 30 % of people
    present; night and weekend security lighting stays below half power.
    Lighting in occupied hours is not judged: a light stuck on stays one
    fault through the day.
    """
    local = data.times.tz_convert(data.park.site.timezone)
    hours = np.asarray(local.hour + local.minute / 60.0)
    weekend = np.asarray(local.weekday >= 5)
    present = np.array([occupancy_fraction(building.occupancy, h, w) for h, w in zip(hours, weekend)])
    power_kw = data.point(building.id, light.id, "power_kw")
    judged = (present < limits.lighting_unoccupied_below) & np.isfinite(power_kw)
    return [Condition("lighting_on_unoccupied", light.id,
                      judged & (power_kw > limits.lighting_on_fraction * light.rated_kw),
                      minutes(limits.lighting_minutes), {"power_kw": power_kw}, judged=judged)]


RULES: tuple[AssetRule, ...] = (lighting_on_unoccupied,)
"""Every rule judging a lighting circuit."""
