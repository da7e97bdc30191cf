"""Fault rules of an elevator (twin.kinds.elevator): its service state."""

from __future__ import annotations

import numpy as np

from energy.fault_rules.base import AssetRule, Condition, FaultThresholds, RuleInput, minutes
from twin.kinds.elevator import Elevator
from twin.park import Building

KIND = "elevator"
"""The kind name these rules judge assets of."""


def elevator_out_of_service(data: RuleInput, limits: FaultThresholds, building: Building,
                            lift: Elevator) -> list[Condition]:
    """An elevator reporting out of service or a non-zero fault code for 5 minutes."""
    in_service = data.point(building.id, lift.id, "in_service")
    fault_code = data.point(building.id, lift.id, "fault_code")
    return [Condition("elevator_out_of_service", lift.id, (in_service == 0) | (fault_code > 0),
                      minutes(limits.elevator_minutes), {"fault_code": fault_code},
                      judged=np.isfinite(in_service) | np.isfinite(fault_code))]


RULES: tuple[AssetRule, ...] = (elevator_out_of_service,)
"""Every rule judging an elevator."""
