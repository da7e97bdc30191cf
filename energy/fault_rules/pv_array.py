"""Fault rules of a PV array (twin.kinds.pv_array): its output against what its irradiance should give."""

from __future__ import annotations

import numpy as np

from energy.fault_rules.base import AssetRule, Condition, FaultThresholds, RuleInput, minutes
from energy.pv import pv_expected_ac_from_poa_kw
from twin.kinds.pv_array import PVArray
from twin.park import Building

KIND = "pv_array"
"""The kind name these rules judge assets of."""


def pv_underperformance(data: RuleInput, limits: FaultThresholds, building: Building,
                        array: PVArray) -> list[Condition]:
    """Measured / expected AC power below 0.8 while plane-of-array irradiance is above 200 W/m2, 30 min.

    Expected power is the PVWatts chain on the array's own measured POA
    irradiance and cell temperature (:func:`energy.pv.pv_expected_ac_from_poa_kw`),
    capped by the power limit in force, so curtailment is not a fault.
    """
    poa = data.point(building.id, array.id, "poa_irradiance_wm2")
    cell_c = data.point(building.id, array.id, "cell_temp_c")
    limit_pct = data.point(building.id, array.id, "power_limit_pct")
    limit_pct = np.where(np.isfinite(limit_pct), limit_pct, 100.0)
    expected_kw = np.minimum(pv_expected_ac_from_poa_kw(array.pvwatts(), np.nan_to_num(poa), cell_c),
                             array.inverter_ac_kw * limit_pct / 100.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = data.point(building.id, array.id, "ac_power_kw") / expected_kw
    judged = (poa > limits.pv_poa_min_wm2) & np.isfinite(ratio)  # not at night: an outage goes on
    return [Condition("pv_underperformance", array.id, judged & (ratio < limits.pv_ratio_min),
                      minutes(limits.pv_minutes), {"performance_ratio": ratio, "poa_wm2": poa}, judged=judged)]


RULES: tuple[AssetRule, ...] = (pv_underperformance,)
"""Every rule judging a PV array."""
