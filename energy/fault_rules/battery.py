"""Fault rules of a battery (twin.kinds.battery): its state of charge and its cells."""

from __future__ import annotations

import numpy as np

from energy.fault_rules.base import AssetRule, Condition, FaultThresholds, RuleInput, minutes
from twin.kinds.battery import Battery
from twin.park import Building

KIND = "battery"
"""The kind name these rules judge assets of."""


def battery_limits(data: RuleInput, limits: FaultThresholds, building: Building,
                   battery: Battery) -> list[Condition]:
    """Battery SOC outside its window (beyond a 1-point margin), cell temperature above 45 C,
    cell voltage spread above 0.15 V; each for 5 minutes."""
    duration = minutes(limits.battery_minutes)
    soc = data.point(building.id, battery.id, "soc_pct")
    temp_c = data.point(building.id, battery.id, "cell_temp_max_c")
    spread_v = data.point(building.id, battery.id, "cell_voltage_spread_v")
    margin = limits.battery_soc_margin_pct
    return [
        Condition("battery_soc_out_of_window", battery.id,
                  (soc < battery.soc_min_pct - margin) | (soc > battery.soc_max_pct + margin),
                  duration, {"soc_pct": soc}, judged=np.isfinite(soc)),
        Condition("battery_overtemp", battery.id, temp_c > limits.battery_cell_temp_max_c, duration,
                  {"cell_temp_max_c": temp_c}, judged=np.isfinite(temp_c)),
        Condition("battery_voltage_spread", battery.id, spread_v > limits.battery_voltage_spread_max_v, duration,
                  {"cell_voltage_spread_v": spread_v}, judged=np.isfinite(spread_v)),
    ]


RULES: tuple[AssetRule, ...] = (battery_limits,)
"""Every rule judging a battery (``battery_limits`` yields three rule ids)."""
