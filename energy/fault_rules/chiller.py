"""Fault rules of a chiller (twin.kinds.chiller): its chilled water, its efficiency and its starts."""

from __future__ import annotations

import numpy as np
import pandas as pd

from energy.fault_rules.base import AssetRule, Condition, FaultThresholds, RuleInput, minutes
from twin.kinds.base import Role
from twin.kinds.chiller import Chiller
from twin.park import Building
from twin.plant import MODE_DIRECT, MODE_ICE, chiller_cop

KIND = "chiller"
"""The kind name these rules judge assets of."""


def chw_low_delta_t(data: RuleInput, limits: FaultThresholds, building: Building,
                    chiller: Chiller) -> list[Condition]:
    """Chilled-water low delta-T: running on chilled water and return - supply < 2.2 K for 15 min.

    A low delta-T means too much water pumped for the cooling delivered
    (fouled coils, open bypass, failed valves). Ice-making mode is excluded:
    the glycol loop runs at its own small delta-T at part load. Only a chiller
    running on chilled water is judged: one that stops or makes ice in the
    middle of a fault neither ends nor restarts it.
    """
    mode = data.point(building.id, chiller.id, "mode")
    delta_t_k = data.point(building.id, chiller.id, "chw_return_temp_c") - \
        data.point(building.id, chiller.id, "chw_supply_temp_c")
    judged = (mode == MODE_DIRECT) & np.isfinite(delta_t_k)
    return [Condition("chw_low_delta_t", chiller.id, judged & (delta_t_k < limits.chw_delta_t_min_k),
                      minutes(limits.chw_delta_t_minutes), {"delta_t_k": delta_t_k}, judged=judged)]


def chw_supply_off_setpoint(data: RuleInput, limits: FaultThresholds, building: Building,
                            chiller: Chiller) -> list[Condition]:
    """Chilled-water supply more than 1.2 K from its setpoint for 15 min while running on chilled water.

    Warm supply means the plant cannot carry the load (or a control fault);
    cold supply wastes energy.
    """
    mode = data.point(building.id, chiller.id, "mode")
    offset_k = data.point(building.id, chiller.id, "chw_supply_temp_c") - \
        data.point(building.id, chiller.id, "chw_setpoint_c")
    judged = (mode == MODE_DIRECT) & np.isfinite(offset_k)
    return [Condition("chw_supply_off_setpoint", chiller.id,
                      judged & (np.abs(offset_k) > limits.chw_supply_offset_max_k),
                      minutes(limits.chw_supply_offset_minutes), {"supply_offset_k": offset_k}, judged=judged)]


def chiller_low_cop(data: RuleInput, limits: FaultThresholds, building: Building,
                    chiller: Chiller) -> list[Condition]:
    """Chiller COP below 80 % of expected for its load for an hour.

    Measured COP = cooling_kwth / power_kw (from the two measured points, not
    the chiller's own COP register). Expected COP is the twin's performance
    curve :func:`twin.plant.chiller_cop` at the measured mode, part load,
    chilled-water setpoint and outdoor temperature (the first point measuring
    it on site, by role). Without one the rule is skipped.
    """
    outdoor_points = data.park.role_points(Role.OUTDOOR_TEMP)
    if not outdoor_points:
        return []
    outdoor_c = data.value(outdoor_points[0])
    mode = data.point(building.id, chiller.id, "mode")
    cooling_kwth = data.point(building.id, chiller.id, "cooling_kwth")
    power_kw = data.point(building.id, chiller.id, "power_kw")
    setpoint_c = data.point(building.id, chiller.id, "chw_setpoint_c")
    running = np.isin(mode, (MODE_DIRECT, MODE_ICE)) & (cooling_kwth > 0) & (power_kw > 0) & np.isfinite(outdoor_c)
    capacity = np.where(mode == MODE_ICE, chiller.ice_capacity_kwth or chiller.cooling_capacity_kwth,
                        chiller.cooling_capacity_kwth)
    expected = np.full(len(mode), np.nan)
    for i in np.flatnonzero(running):
        expected[i] = chiller_cop(chiller, int(mode[i]), cooling_kwth[i] / capacity[i], outdoor_c[i],
                                  setpoint_c[i] if np.isfinite(setpoint_c[i]) else chiller.chw_setpoint_c)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(running, cooling_kwth / power_kw / expected, np.nan)
    judged = running & np.isfinite(ratio)
    return [Condition("chiller_low_cop", chiller.id, judged & (ratio < limits.chiller_cop_ratio_min),
                      minutes(limits.chiller_cop_minutes),
                      {"cop_ratio": ratio, "expected_cop": expected}, judged=judged)]


def chiller_short_cycling(data: RuleInput, limits: FaultThresholds, building: Building,
                          chiller: Chiller) -> list[Condition]:
    """More than 5 starts, or more than 5 mode changes, within the last hour.

    Starts come from the ``starts_count`` counter, mode changes from the
    ``mode`` point; both over a trailing 60-minute window. Short cycling
    wears compressors and wastes energy at every start.
    """
    window = data.steps(60)
    starts = pd.Series(data.point(building.id, chiller.id, "starts_count"))
    mode = pd.Series(data.point(building.id, chiller.id, "mode"))
    starts_per_h = starts.diff().clip(lower=0).rolling(window, min_periods=1).sum().to_numpy()
    mode_changes_per_h = (mode.diff().fillna(0) != 0).astype(float).rolling(window, min_periods=1).sum().to_numpy()
    per_hour = np.maximum(starts_per_h, mode_changes_per_h)
    return [Condition("chiller_short_cycling", chiller.id, per_hour > limits.short_cycle_max_per_hour,
                      data.step, {"starts_or_mode_changes_per_h": per_hour})]


RULES: tuple[AssetRule, ...] = (chw_low_delta_t, chw_supply_off_setpoint, chiller_low_cop, chiller_short_cycling)
"""Every rule judging a chiller."""
