"""Fault-detection rules: each a small function from point values to "the fault holds now" per asset.

The rules judging one kind of asset live in this package's module for that kind, which names the kind
(``KIND``) and lists its rules (``RULES``); :data:`KIND_RULES` gathers them by kind name. The rules over
the park's points whatever their kind (sensors, communication) live in :mod:`energy.fault_rules.sensors`.
What they share (input, output, thresholds, alarm settings) is :mod:`energy.fault_rules.base`.

:func:`evaluate_rules` runs the park rules, and for every asset of the park the rules its kind name
lists, then gives every condition its alarm settings (ISA-18.2 alarm management, DOMAIN.md "Alarm
management"): its priority, its off-delay, and on- and off-delays of at least ``debounce_poll_periods``
of its device's poll period. Turning conditions into fault episodes (delays, suppression by cause, no
duplicates, batch or live) is :mod:`energy.fault_detection`'s job.
"""

from __future__ import annotations

from dataclasses import replace

import pandas as pd

from energy.fault_rules import battery, chiller, elevator, lighting, pv_array, sensors
from energy.fault_rules.base import (
    COMM_LOST_RULE,
    DEFAULT_PRIORITIES,
    HELD_QUALITY,
    MISSING_QUALITY,
    ON_DELAY_FLOOR_EXEMPT,
    SUPPRESSED_BY_COMM_LOSS,
    AssetRule,
    Condition,
    FaultThresholds,
    ParkRule,
    RuleInput,
    load_fault_thresholds,
)
from twin.faults_file import POINT_TARGET_KINDS
from twin.kinds import kind_name
from twin.park import Park
from twin.sim import Fault

__all__ = ["COMM_LOST_RULE", "DEFAULT_PRIORITIES", "HELD_QUALITY", "KIND_RULES", "MISSING_QUALITY", "PARK_RULES",
           "RULE_FOR_FAULT_KIND", "RULE_LOOKBACK", "SUPPRESSED_BY_COMM_LOSS", "Condition", "FaultThresholds",
           "RuleInput", "evaluate_rules", "fault_asset_id", "load_fault_thresholds"]

KIND_RULES: dict[str, tuple[AssetRule, ...]] = {
    module.KIND: module.RULES for module in (chiller, pv_array, battery, elevator, lighting)}
"""The rules judging each asset of a kind, by the kind's name (twin.kinds.kind_name); a kind not listed has
none of its own."""

PARK_RULES: tuple[ParkRule, ...] = sensors.RULES
"""The rules over the park's points, whatever their assets' kinds."""

RULE_FOR_FAULT_KIND = {
    "chiller_cop_drop": "chiller_low_cop",
    "chw_low_delta_t": "chw_low_delta_t",
    "pv_string_outage": "pv_underperformance",
    "sensor_flatline": "sensor_flatline",
    "device_offline": COMM_LOST_RULE,
    "elevator_out_of_service": "elevator_out_of_service",
    "lighting_stuck_on": "lighting_on_unoccupied",
    "battery_overtemp": "battery_overtemp",
}
"""The rule id that must find each kind of fault the simulator injects (``twin.sim.FaultKind``); a
``setpoint_ignored`` fault is found by the write path's read-back, not by a rule."""


def fault_asset_id(fault: Fault, park: Park) -> str:
    """The asset whose episode an injected fault raises: the asset of a point fault's point, else the target."""
    return park.points[fault.target].asset_id if fault.kind in POINT_TARGET_KINDS else fault.target


RULE_LOOKBACK = pd.Timedelta(hours=2)
"""History before a detection range that the rules need (the longest window, 60 min, plus margin)."""


def evaluate_rules(data: RuleInput, limits: FaultThresholds) -> list[Condition]:
    """Every rule's conditions over the input, with their alarm settings (see the module docstring): the park
    rules', then those of each asset's kind, asset by asset in park order."""
    conditions = [condition for rule in PARK_RULES for condition in rule(data, limits)]
    for building, asset in data.park.iter_assets():
        for asset_rule in KIND_RULES.get(kind_name(type(asset)), ()):
            conditions += asset_rule(data, limits, building, asset)
    return [_with_alarm_settings(condition, data, limits) for condition in conditions]


def _with_alarm_settings(condition: Condition, data: RuleInput, limits: FaultThresholds) -> Condition:
    """The condition with its priority, its off-delay, and both delays at least the debounce of its device."""
    poll_period = data.poll_period(condition.point_id) if condition.point_id else \
        data.device_poll_period(condition.asset_id)
    debounce = poll_period * limits.debounce_poll_periods
    on_delay = condition.min_duration if condition.rule_id in ON_DELAY_FLOOR_EXEMPT else \
        max(condition.min_duration, debounce)
    return replace(condition, min_duration=on_delay, off_delay=max(limits.off_delay(condition.rule_id), debounce),
                   priority=limits.priority(condition.rule_id))

