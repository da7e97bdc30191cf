"""Fault-detection rules: each a small function from point values to "the fault holds now" per asset.

A rule looks at a :class:`RuleInput` (point values and qualities on a
time grid) and returns one :class:`Condition` per asset (or point) it
judges: a boolean per timestamp, where it could be judged at all, the time it
must hold before it counts as a fault (its on-delay), and the figures behind
it. :func:`evaluate_rules` then gives every condition its alarm settings (ISA-18.2
alarm management, DOMAIN.md "Alarm management"): its priority, its off-delay,
and on- and off-delays of at least ``debounce_poll_periods`` of its device's
poll period. Turning conditions into fault episodes (delays, suppression by
cause, no duplicates, batch or live) is :mod:`energy.fault_detection`'s job.

Thresholds are the defaults of DOMAIN.md ("Fault rules worth having") and sit
in :class:`FaultThresholds`, with the alarm settings, which a YAML file can
override (:func:`load_fault_thresholds`). Each rule's docstring says what it
checks and why the threshold is where it is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated, Literal, TypeVar, cast

import numpy as np
import pandas as pd
from pydantic import Field, field_validator

from energy.pv import pv_expected_ac_from_poa_kw
from twin.config import load_yaml_model
from twin.fault_episodes import Priority
from twin.faults_file import POINT_TARGET_KINDS
from twin.input_schema import InputModel
from twin.kinds import Battery, Chiller, Elevator, Lighting, PVArray
from twin.kinds.base import Role
from twin.park import Building, Park
from twin.plant import MODE_DIRECT, MODE_ICE, chiller_cop
from twin.points import point_id
from twin.profiles import occupancy_fraction
from twin.readings import Quality
from twin.sim import Fault

MISSING_QUALITY = -1
"""Quality code used in a :class:`RuleInput` where a point has no reading at a grid time."""
HELD_QUALITY = -2
"""Quality code where a point has no reading at a grid time but its previous reading still stands
(energy.fault_detection holds a value until it would be stale): value rules see that value, the
staleness and communication rules see no fresh reading there, as at :data:`MISSING_QUALITY`."""

Minutes = Annotated[float, Field(ge=0, le=24 * 60)]
PollCount = Annotated[int, Field(ge=1, le=1000)]
"""A number of polls of one device (at most 1,000: over a quarter of an hour even at one poll a second,
and small enough that its times in nanoseconds stay within 64 bits)."""

COMM_LOST_RULE = "device_comm_lost"
SUPPRESSED_BY_COMM_LOSS = ("sensor_stale", "sensor_flatline")
"""Rules whose episodes on a device's points are explained by that device's comm loss (DOMAIN.md:
"raise one alarm, not one per point"): recorded with ``suppressed_by``, not annunciated."""
ON_DELAY_FLOOR_EXEMPT = ("sensor_spike", "chiller_short_cycling", "sensor_stale", COMM_LOST_RULE)
"""Rules exempt from the on-delay's poll-period floor: events judged at one reading, and the silence rules,
whose condition already spans several poll periods."""
FRESH_QUALITIES = (int(Quality.GOOD), int(Quality.BAD))
"""Qualities of a reading that shows the device answered with a new value (BAD: read, but implausible)."""

DEFAULT_PRIORITIES: dict[str, Priority] = {
    "chw_low_delta_t": Priority.LOW,
    "chw_supply_off_setpoint": Priority.MEDIUM,
    "chiller_low_cop": Priority.LOW,
    "chiller_short_cycling": Priority.MEDIUM,
    "sensor_flatline": Priority.LOW,
    "sensor_spike": Priority.LOW,
    "sensor_out_of_range": Priority.LOW,
    "sensor_stale": Priority.LOW,
    "pv_underperformance": Priority.LOW,
    "battery_soc_out_of_window": Priority.HIGH,
    "battery_overtemp": Priority.CRITICAL,
    "battery_voltage_spread": Priority.MEDIUM,
    "elevator_out_of_service": Priority.HIGH,
    "lighting_on_unoccupied": Priority.LOW,
    COMM_LOST_RULE: Priority.MEDIUM,
}
"""Alarm priority of every rule id by default, aiming at DOMAIN.md's distribution (about 80 % low, 15 %
medium, 5 % high, critical rare): energy waste and sensor trouble low; comfort, equipment wear and a lost
device medium; a battery outside its window or a lift out of service high; battery overtemperature critical."""

PriorityName = Literal["low", "medium", "high", "critical"]


class AlarmSettings(InputModel):
    """One rule's alarm settings; ``priority`` None keeps the rule's default (:data:`DEFAULT_PRIORITIES`)."""

    priority: PriorityName | None = None
    off_delay_minutes: Minutes = 15
    """Minutes the condition must stay clear before its episode ends (at the time it first cleared):
    a condition that clears for less, and holds again, continues the same episode."""


class FaultThresholds(InputModel):
    """Every threshold and minimum duration of the fault rules (DOMAIN.md defaults).

    A YAML file with any of these fields overrides the defaults
    (``parktwin faults --thresholds FILE``); unknown fields are refused.
    """

    chw_delta_t_min_k: Annotated[float, Field(gt=0)] = 2.2
    chw_delta_t_minutes: Minutes = 15
    chw_supply_offset_max_k: Annotated[float, Field(gt=0)] = 1.2
    chw_supply_offset_minutes: Minutes = 15
    chiller_cop_ratio_min: Annotated[float, Field(gt=0, lt=1)] = 0.8
    chiller_cop_minutes: Minutes = 60
    short_cycle_max_per_hour: Annotated[int, Field(ge=1, le=3600)] = 5
    flatline_minutes: Minutes = 30
    flatline_points: dict[str, list[str]] = {
        "chiller": ["chw_supply_temp_c", "chw_return_temp_c"],
        "meter": ["power_kw"],
        "weather_station": ["outdoor_temp_c"],
        "battery": ["cell_temp_max_c"],
    }
    """Points, by asset kind, that always move a little when healthy (noisy analog sensors):
    the flatline rule watches these, and the spike rule those of them in degC."""
    flatline_ignore_zero: bool = True
    stale_poll_periods: PollCount = 3
    out_of_range_minutes: Minutes = 2
    spike_jump_k: Annotated[float, Field(gt=0)] = 3.0
    pv_ratio_min: Annotated[float, Field(gt=0, lt=1)] = 0.8
    pv_poa_min_wm2: Annotated[float, Field(ge=0)] = 200.0
    pv_minutes: Minutes = 30
    battery_soc_margin_pct: Annotated[float, Field(ge=0)] = 1.0
    battery_cell_temp_max_c: float = 45.0
    battery_voltage_spread_max_v: Annotated[float, Field(gt=0)] = 0.15
    battery_minutes: Minutes = 5
    elevator_minutes: Minutes = 5
    lighting_on_fraction: Annotated[float, Field(gt=0, le=1)] = 0.5
    lighting_unoccupied_below: Annotated[float, Field(gt=0, le=1)] = 0.3
    lighting_minutes: Minutes = 30
    comm_lost_poll_periods: PollCount = 3
    debounce_poll_periods: Annotated[float, Field(ge=0, le=100)] = 2.0
    """On- and off-delays are at least this many poll periods of the device a condition reads, so a
    value that changes for a single poll neither opens nor ends an episode (event rules exempt from the
    on-delay floor: :data:`ON_DELAY_FLOOR_EXEMPT`)."""
    startup_grace_s: Annotated[float, Field(ge=0, le=3600)] = 120.0
    """Wall-clock seconds after a live detector starts during which the stale and comm-loss rules hold
    for no point: a starting feed's first polls time out while connections open and the first plans are
    made (in a simulated run the twin clock passes ``speed`` times as much)."""
    alarms: dict[str, AlarmSettings] = {}
    """Alarm settings by rule id (any of :data:`DEFAULT_PRIORITIES`); rules not listed keep the defaults."""

    @field_validator("alarms")
    @classmethod
    def _known_rules(cls, alarms: dict[str, AlarmSettings]) -> dict[str, AlarmSettings]:
        unknown = sorted(set(alarms) - set(DEFAULT_PRIORITIES))
        if unknown:
            raise ValueError(f"unknown rule id(s) {', '.join(unknown)} (known: {', '.join(DEFAULT_PRIORITIES)})")
        return alarms

    def priority(self, rule_id: str) -> Priority:
        """The rule's alarm priority: its setting, else its default."""
        settings = self.alarms.get(rule_id)
        if settings is not None and settings.priority is not None:
            return Priority[settings.priority.upper()]
        return DEFAULT_PRIORITIES[rule_id]

    def off_delay(self, rule_id: str) -> pd.Timedelta:
        """The rule's configured off-delay (before the poll-period floor)."""
        return _minutes(self.alarms.get(rule_id, AlarmSettings()).off_delay_minutes)


def load_fault_thresholds(path: str | Path) -> FaultThresholds:
    """Thresholds from a YAML file (fields of :class:`FaultThresholds`); ConfigError names any problem."""
    return load_yaml_model(path, FaultThresholds)


@dataclass
class RuleInput:
    """Point values and qualities on a UTC time grid.

    ``values``: one column per point id, NaN where unknown. ``quality``: the
    same shape, :class:`~twin.readings.Quality` codes, :data:`MISSING_QUALITY`
    where the point has no reading at that time, :data:`HELD_QUALITY` where it
    has none but its previous value is carried. ``step``: the typical grid
    spacing (for the event rules' windows). ``poll_periods``: each point's own
    poll period in twin time (a point not listed: ``step``). ``grace_end_utc``:
    the end of a live detector's start-up grace period; None for history.
    """

    park: Park
    values: pd.DataFrame
    quality: pd.DataFrame
    step: pd.Timedelta
    poll_periods: dict[str, pd.Timedelta] = field(default_factory=dict)
    grace_end_utc: pd.Timestamp | None = None

    @property
    def times(self) -> pd.DatetimeIndex:
        return cast(pd.DatetimeIndex, self.values.index)

    def value(self, pid: str) -> np.ndarray:
        """A point's values (NaN where unknown or absent)."""
        if pid in self.values.columns:
            return self.values[pid].to_numpy(dtype=float)
        return np.full(len(self.values), np.nan)

    def point(self, building_id: str, asset_id: str, name: str) -> np.ndarray:
        return self.value(point_id(building_id, asset_id, name))

    def steps(self, minutes: float) -> int:
        """Whole grid steps in ``minutes`` (at least 1)."""
        return max(1, int(round(pd.Timedelta(minutes=minutes) / self.step)))

    def own_rows(self, pid: str) -> np.ndarray:
        """Indices of the grid times where the point has a reading of its own (not one held from before)."""
        if pid not in self.quality.columns:
            return np.zeros(0, dtype=np.int64)
        return np.flatnonzero(~np.isin(self.quality[pid].to_numpy(), (MISSING_QUALITY, HELD_QUALITY)))

    def poll_period(self, pid: str) -> pd.Timedelta:
        """The point's own poll period, twin time."""
        return self.poll_periods.get(pid, self.step)

    def device_poll_period(self, asset_id: str) -> pd.Timedelta:
        """The longest poll period among the asset's points (its device's), twin time."""
        periods = [self.poll_period(pid) for pid, p in self.park.points.items() if p.asset_id == asset_id]
        return max(periods, default=self.step)

    def in_startup_grace(self) -> np.ndarray:
        """Per grid time: within the start-up grace period."""
        if self.grace_end_utc is None:
            return np.zeros(len(self.times), dtype=bool)
        return np.asarray(self.times < self.grace_end_utc)

    def polls_without_value(self, pids: list[str]) -> np.ndarray:
        """Per grid time and point (times x pids, points of one device): how many of the device's polls in a
        row up to then gave the point no fresh value (:data:`FRESH_QUALITIES`); 0 after a fresh one and
        before the device's first poll. A poll is a grid time where the device delivered readings (good or
        not); between polls the count of the last one stands. Counting polls rather than time, a twin that
        stalls (and polls nothing) makes no point stale, and a single failed poll stays one."""
        quality = self.quality[pids].to_numpy()
        polled_rows = np.flatnonzero(~np.isin(quality, (MISSING_QUALITY, HELD_QUALITY)).all(axis=1))
        missed = ~np.isin(quality[polled_rows], FRESH_QUALITIES)
        total = np.cumsum(missed, axis=0)
        since_fresh: np.ndarray = total - np.maximum.accumulate(np.where(missed, 0, total), axis=0)
        counts = np.zeros(quality.shape, dtype=np.int64)
        last_poll = np.searchsorted(polled_rows, np.arange(len(quality)), side="right") - 1
        counts[last_poll >= 0] = since_fresh[last_poll[last_poll >= 0]]
        return counts


@dataclass
class Condition:
    """Whether one rule holds for one asset (or point) at each grid time.

    ``active`` is False where the inputs are unknown. ``judged``: where the
    rule could tell at all (None: everywhere); elsewhere (a chiller that is
    off, PV at night, inputs unknown) the condition keeps the state it had, so
    an ongoing fault is neither ended nor started there. ``min_duration`` is
    the on-delay, ``off_delay`` the time it must stay clear before its episode
    ends. ``metrics`` are the figures behind the verdict per timestamp; the
    detector stores their values at the moment an episode is confirmed as its
    evidence. ``priority`` and ``off_delay`` come from the alarm settings
    (:func:`evaluate_rules`).
    """

    rule_id: str
    asset_id: str
    active: np.ndarray
    min_duration: pd.Timedelta
    metrics: dict[str, np.ndarray] = field(default_factory=dict)
    point_id: str = ""
    judged: np.ndarray | None = None
    priority: Priority = Priority.LOW
    off_delay: pd.Timedelta = pd.Timedelta(0)


Rule = Callable[[RuleInput, FaultThresholds], list[Condition]]


def _minutes(value: float) -> pd.Timedelta:
    return pd.Timedelta(minutes=value)


AssetT = TypeVar("AssetT")


def _assets(park: Park, cls: type[AssetT]) -> list[tuple[Building, AssetT]]:
    return [(building, asset) for building, asset in park.iter_assets() if isinstance(asset, cls)]


# ------------------------------------------------------------------ chillers

def chw_low_delta_t(data: RuleInput, limits: FaultThresholds) -> list[Condition]:
    """Chilled-water low delta-T: running on chilled water and return - supply < 2.2 K for 15 min.

    A low delta-T means too much water pumped for the cooling delivered
    (fouled coils, open bypass, failed valves). Ice-making mode is excluded:
    the glycol loop runs at its own small delta-T at part load. Only a chiller
    running on chilled water is judged: one that stops or makes ice in the
    middle of a fault neither ends nor restarts it.
    """
    conditions = []
    for building, chiller in _assets(data.park, Chiller):
        mode = data.point(building.id, chiller.id, "mode")
        delta_t_k = data.point(building.id, chiller.id, "chw_return_temp_c") - \
            data.point(building.id, chiller.id, "chw_supply_temp_c")
        judged = (mode == MODE_DIRECT) & np.isfinite(delta_t_k)
        conditions.append(Condition("chw_low_delta_t", chiller.id, judged & (delta_t_k < limits.chw_delta_t_min_k),
                                    _minutes(limits.chw_delta_t_minutes), {"delta_t_k": delta_t_k}, judged=judged))
    return conditions


def chw_supply_off_setpoint(data: RuleInput, limits: FaultThresholds) -> list[Condition]:
    """Chilled-water supply more than 1.2 K from its setpoint for 15 min while running on chilled water.

    Warm supply means the plant cannot carry the load (or a control fault);
    cold supply wastes energy.
    """
    conditions = []
    for building, chiller in _assets(data.park, Chiller):
        mode = data.point(building.id, chiller.id, "mode")
        offset_k = data.point(building.id, chiller.id, "chw_supply_temp_c") - \
            data.point(building.id, chiller.id, "chw_setpoint_c")
        judged = (mode == MODE_DIRECT) & np.isfinite(offset_k)
        conditions.append(Condition("chw_supply_off_setpoint", chiller.id,
                                    judged & (np.abs(offset_k) > limits.chw_supply_offset_max_k),
                                    _minutes(limits.chw_supply_offset_minutes),
                                    {"supply_offset_k": offset_k}, judged=judged))
    return conditions


def chiller_low_cop(data: RuleInput, limits: FaultThresholds) -> list[Condition]:
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
    conditions = []
    for building, chiller in _assets(data.park, Chiller):
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
        conditions.append(Condition("chiller_low_cop", chiller.id, judged & (ratio < limits.chiller_cop_ratio_min),
                                    _minutes(limits.chiller_cop_minutes),
                                    {"cop_ratio": ratio, "expected_cop": expected}, judged=judged))
    return conditions


def chiller_short_cycling(data: RuleInput, limits: FaultThresholds) -> list[Condition]:
    """More than 5 starts, or more than 5 mode changes, within the last hour.

    Starts come from the ``starts_count`` counter, mode changes from the
    ``mode`` point; both over a trailing 60-minute window. Short cycling
    wears compressors and wastes energy at every start.
    """
    window = data.steps(60)
    conditions = []
    for building, chiller in _assets(data.park, Chiller):
        starts = pd.Series(data.point(building.id, chiller.id, "starts_count"))
        mode = pd.Series(data.point(building.id, chiller.id, "mode"))
        starts_per_h = starts.diff().clip(lower=0).rolling(window, min_periods=1).sum().to_numpy()
        mode_changes_per_h = (mode.diff().fillna(0) != 0).astype(float).rolling(window, min_periods=1).sum().to_numpy()
        per_hour = np.maximum(starts_per_h, mode_changes_per_h)
        conditions.append(Condition("chiller_short_cycling", chiller.id, per_hour > limits.short_cycle_max_per_hour,
                                    data.step, {"starts_or_mode_changes_per_h": per_hour}))
    return conditions


# ------------------------------------------------------------------- sensors

def _watched_points(data: RuleInput, limits: FaultThresholds) -> list[tuple[str, str, str]]:
    """(asset id, point id, point name) of the points the flatline and spike rules watch."""
    return [(p.asset_id, p.id, p.name) for p in data.park.points.values()
            if p.name in limits.flatline_points.get(p.asset_kind, [])]


def sensor_flatline(data: RuleInput, limits: FaultThresholds) -> list[Condition]:
    """A noisy analog sensor repeating exactly the same value for 30 min.

    Only the points listed in ``flatline_points`` are watched: their healthy
    readings always move by at least the sensor noise, whereas setpoints,
    counters and powers of idle equipment legitimately stay constant. A
    reading of exactly 0 does not count (``flatline_ignore_zero``): a meter
    reads 0 for hours when the battery exactly covers the load, as the demo
    park's peak-shaving schedule does. Each reading is compared with the
    point's previous reading of its own, not with values held between polls.
    """
    conditions = []
    for asset_id, pid, _ in _watched_points(data, limits):
        values = data.value(pid)
        rows = data.own_rows(pid)
        own = values[rows]
        unchanged = np.zeros(len(values), dtype=bool)
        unchanged[rows[1:]] = np.abs(np.diff(own)) <= 1e-9  # NaN compares False
        if limits.flatline_ignore_zero:
            unchanged &= values != 0.0
        judged = np.zeros(len(values), dtype=bool)
        judged[rows[1:]] = np.isfinite(own[1:]) & np.isfinite(own[:-1])
        conditions.append(Condition("sensor_flatline", asset_id, unchanged, _minutes(limits.flatline_minutes),
                                    {"value": values}, point_id=pid, judged=judged))
    return conditions


def sensor_spike(data: RuleInput, limits: FaultThresholds) -> list[Condition]:
    """A temperature reading more than 3 K away from both neighbours, in the same direction.

    A step (a chiller starting, a mode change) moves away from the previous
    value and stays; a spike comes back at the next reading. Watches the
    degC points among ``flatline_points``. Where the asset has a ``mode``
    point (chillers), readings next to a mode change are not judged: a
    chiller that runs for a single step moves its water temperatures for
    that step, which is operation, not a sensor fault. Neighbours are the
    point's own readings before and after, not values held between polls.
    """
    conditions = []
    for asset_id, pid, name in _watched_points(data, limits):
        if not name.endswith("_c"):
            continue
        rows = data.own_rows(pid)
        values = data.value(pid)[rows]
        mode = data.value(pid.rsplit(".", 1)[0] + ".mode")[rows]
        mode_steady = np.ones(len(values), dtype=bool)
        if np.isfinite(mode).any():
            mode_steady[1:-1] = (mode[1:-1] == mode[:-2]) & (mode[1:-1] == mode[2:])
        jump_before = np.full(len(values), np.nan)
        jump_after = np.full(len(values), np.nan)
        jump_before[1:] = values[1:] - values[:-1]
        jump_after[:-1] = values[:-1] - values[1:]
        spike = np.zeros(len(data.times), dtype=bool)
        spike[rows] = (np.abs(jump_before) > limits.spike_jump_k) & (np.abs(jump_after) > limits.spike_jump_k) & \
            (np.sign(jump_before) == np.sign(jump_after)) & mode_steady
        jump_k = np.full(len(data.times), np.nan)
        jump_k[rows] = jump_before
        conditions.append(Condition("sensor_spike", asset_id, spike, data.step,
                                    {"value": data.value(pid), "jump_k": jump_k}, point_id=pid))
    return conditions


def sensor_out_of_range(data: RuleInput, limits: FaultThresholds) -> list[Condition]:
    """A measured value outside its point's safe limits (the park model's low/high limits) for 2 min."""
    conditions = []
    for p in data.park.points.values():
        low, high = p.spec.low_limit, p.spec.high_limit
        if p.writable or (low is None and high is None) or p.id not in data.values.columns:
            continue
        values = data.value(p.id)
        outside = ((values < low) if low is not None else False) | ((values > high) if high is not None else False)
        conditions.append(Condition("sensor_out_of_range", p.asset_id, np.asarray(outside, dtype=bool),
                                    _minutes(limits.out_of_range_minutes), {"value": values},
                                    point_id=p.id, judged=np.isfinite(values)))
    return conditions


def _device_points(data: RuleInput) -> dict[str, list[str]]:
    """The point ids of each asset (a device) that the input has columns for."""
    by_asset: dict[str, list[str]] = {}
    for pid, p in data.park.points.items():
        if pid in data.quality.columns:
            by_asset.setdefault(p.asset_id, []).append(pid)
    return by_asset


def sensor_stale(data: RuleInput, limits: FaultThresholds) -> list[Condition]:
    """A point without a fresh value in 3 polls of its device in a row (readings marked stale or comm_fail,
    or none); the episode starts at the third.

    The point's own device's polls count, at the cadence of its own poll period
    (never other devices' timestamps). A device that stops answering gives one
    stale episode per point, which its comm-loss episode suppresses
    (:data:`SUPPRESSED_BY_COMM_LOSS`). Not raised during the start-up grace period.
    """
    grace = data.in_startup_grace()
    conditions = []
    for asset_id, pids in _device_points(data).items():
        counts = data.polls_without_value(pids)
        for column, pid in enumerate(pids):
            stale = (counts[:, column] >= limits.stale_poll_periods) & ~grace
            if stale.any():
                conditions.append(Condition("sensor_stale", asset_id, stale, pd.Timedelta(0),
                                            {"polls_without_value": counts[:, column]}, point_id=pid))
    return conditions


# ------------------------------------------------------- PV, battery, others

def pv_underperformance(data: RuleInput, limits: FaultThresholds) -> list[Condition]:
    """Measured / expected AC power below 0.8 while plane-of-array irradiance is above 200 W/m2, 30 min.

    Expected power is the PVWatts chain on the array's own measured POA
    irradiance and cell temperature (:func:`energy.pv.pv_expected_ac_from_poa_kw`),
    capped by the power limit in force, so curtailment is not a fault.
    """
    conditions = []
    for building, array in _assets(data.park, PVArray):
        poa = data.point(building.id, array.id, "poa_irradiance_wm2")
        cell_c = data.point(building.id, array.id, "cell_temp_c")
        limit_pct = data.point(building.id, array.id, "power_limit_pct")
        limit_pct = np.where(np.isfinite(limit_pct), limit_pct, 100.0)
        expected_kw = np.minimum(pv_expected_ac_from_poa_kw(array.pvwatts(), np.nan_to_num(poa), cell_c),
                                 array.inverter_ac_kw * limit_pct / 100.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = data.point(building.id, array.id, "ac_power_kw") / expected_kw
        judged = (poa > limits.pv_poa_min_wm2) & np.isfinite(ratio)  # not at night: an outage goes on
        conditions.append(Condition("pv_underperformance", array.id, judged & (ratio < limits.pv_ratio_min),
                                    _minutes(limits.pv_minutes),
                                    {"performance_ratio": ratio, "poa_wm2": poa}, judged=judged))
    return conditions


def battery_limits(data: RuleInput, limits: FaultThresholds) -> list[Condition]:
    """Battery SOC outside its window (beyond a 1-point margin), cell temperature above 45 C,
    cell voltage spread above 0.15 V; each for 5 minutes."""
    conditions = []
    duration = _minutes(limits.battery_minutes)
    for building, battery in _assets(data.park, Battery):
        soc = data.point(building.id, battery.id, "soc_pct")
        temp_c = data.point(building.id, battery.id, "cell_temp_max_c")
        spread_v = data.point(building.id, battery.id, "cell_voltage_spread_v")
        margin = limits.battery_soc_margin_pct
        conditions += [
            Condition("battery_soc_out_of_window", battery.id,
                      (soc < battery.soc_min_pct - margin) | (soc > battery.soc_max_pct + margin),
                      duration, {"soc_pct": soc}, judged=np.isfinite(soc)),
            Condition("battery_overtemp", battery.id, temp_c > limits.battery_cell_temp_max_c, duration,
                      {"cell_temp_max_c": temp_c}, judged=np.isfinite(temp_c)),
            Condition("battery_voltage_spread", battery.id, spread_v > limits.battery_voltage_spread_max_v, duration,
                      {"cell_voltage_spread_v": spread_v}, judged=np.isfinite(spread_v)),
        ]
    return conditions


def elevator_out_of_service(data: RuleInput, limits: FaultThresholds) -> list[Condition]:
    """An elevator reporting out of service or a non-zero fault code for 5 minutes."""
    conditions = []
    for building, lift in _assets(data.park, Elevator):
        in_service = data.point(building.id, lift.id, "in_service")
        fault_code = data.point(building.id, lift.id, "fault_code")
        conditions.append(Condition("elevator_out_of_service", lift.id, (in_service == 0) | (fault_code > 0),
                                    _minutes(limits.elevator_minutes), {"fault_code": fault_code},
                                    judged=np.isfinite(in_service) | np.isfinite(fault_code)))
    return conditions


def lighting_on_unoccupied(data: RuleInput, limits: FaultThresholds) -> list[Condition]:
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
    conditions = []
    for building, light in _assets(data.park, Lighting):
        present = np.array([occupancy_fraction(building.occupancy, h, w) for h, w in zip(hours, weekend)])
        power_kw = data.point(building.id, light.id, "power_kw")
        judged = (present < limits.lighting_unoccupied_below) & np.isfinite(power_kw)
        conditions.append(Condition("lighting_on_unoccupied", light.id,
                                    judged & (power_kw > limits.lighting_on_fraction * light.rated_kw),
                                    _minutes(limits.lighting_minutes), {"power_kw": power_kw}, judged=judged))
    return conditions


def device_comm_lost(data: RuleInput, limits: FaultThresholds) -> list[Condition]:
    """No fresh value of any point of a device in 3 of its polls in a row (comm_fail after the map's
    retries): communication lost; the episode starts at the third failed poll.

    Not raised during the start-up grace period (a starting feed's first polls time out)."""
    grace = data.in_startup_grace()
    conditions = []
    for asset_id, pids in _device_points(data).items():
        failed_polls = data.polls_without_value(pids).min(axis=1)
        lost = (failed_polls >= limits.comm_lost_poll_periods) & ~grace
        if lost.any():
            conditions.append(Condition(COMM_LOST_RULE, asset_id, lost, pd.Timedelta(0),
                                        {"failed_polls": failed_polls}))
    return conditions


RULES: dict[str, Rule] = {
    "chw_low_delta_t": chw_low_delta_t,
    "chw_supply_off_setpoint": chw_supply_off_setpoint,
    "chiller_low_cop": chiller_low_cop,
    "chiller_short_cycling": chiller_short_cycling,
    "sensor_flatline": sensor_flatline,
    "sensor_spike": sensor_spike,
    "sensor_out_of_range": sensor_out_of_range,
    "sensor_stale": sensor_stale,
    "pv_underperformance": pv_underperformance,
    "battery_limits": battery_limits,
    "elevator_out_of_service": elevator_out_of_service,
    "lighting_on_unoccupied": lighting_on_unoccupied,
    COMM_LOST_RULE: device_comm_lost,
}
"""Every rule function by name (``battery_limits`` yields three rule ids)."""

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
    """Every rule's conditions over the input, with their alarm settings (see the module docstring)."""
    return [_with_alarm_settings(condition, data, limits)
            for rule in RULES.values() for condition in rule(data, limits)]


def _with_alarm_settings(condition: Condition, data: RuleInput, limits: FaultThresholds) -> Condition:
    """The condition with its priority, its off-delay, and both delays at least the debounce of its device."""
    poll_period = data.poll_period(condition.point_id) if condition.point_id else \
        data.device_poll_period(condition.asset_id)
    debounce = poll_period * limits.debounce_poll_periods
    on_delay = condition.min_duration if condition.rule_id in ON_DELAY_FLOOR_EXEMPT else \
        max(condition.min_duration, debounce)
    return replace(condition, min_duration=on_delay, off_delay=max(limits.off_delay(condition.rule_id), debounce),
                   priority=limits.priority(condition.rule_id))

