"""Fault-detection rules: each a small function from point values to "the fault holds now" per asset.

A rule looks at a :class:`RuleInput` (point values and qualities on a
regular time grid) and returns one :class:`Condition` per asset (or point) it
judges: a boolean per timestamp, the minimum time it must hold before it
counts as a fault, its alarm priority, and the figures behind it. Turning conditions
into fault episodes (minimum duration, no duplicates, batch or live) is
:mod:`energy.fault_detection`'s job.

Thresholds are the defaults of DOMAIN.md ("Fault rules worth having") and sit
in :class:`FaultThresholds`, which a YAML file can override
(:func:`load_fault_thresholds`). Each rule's docstring says what it checks
and why the threshold is where it is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Callable

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from energy.environment import pv_params
from energy.pv import pv_expected_ac_from_poa_kw
from twin.assets import Battery, Chiller, Elevator, Lighting, PVArray, WeatherStation
from twin.config import load_yaml_model
from twin.fault_episodes import Priority
from twin.park import Park
from twin.plant import MODE_DIRECT, MODE_ICE, chiller_cop
from twin.points import point_id
from twin.profiles import occupancy_fraction
from twin.readings import Quality

MISSING_QUALITY = -1
"""Quality code used in a :class:`RuleInput` where a point has no reading at a grid time."""
HELD_QUALITY = -2
"""Quality code where a point has no reading at a grid time but its previous reading still stands
(energy.fault_detection holds a value until it would be stale): value rules see that value, the
staleness and communication rules count the time as not updated, like :data:`MISSING_QUALITY`."""
NOT_UPDATED = (MISSING_QUALITY, HELD_QUALITY)

Minutes = Annotated[float, Field(ge=0, le=24 * 60)]


class FaultThresholds(BaseModel):
    """Every threshold and minimum duration of the fault rules (DOMAIN.md defaults).

    A YAML file with any of these fields overrides the defaults
    (``parktwin faults --thresholds FILE``); unknown fields are refused.
    """

    model_config = ConfigDict(extra="forbid")

    chw_delta_t_min_k: Annotated[float, Field(gt=0)] = 2.2
    chw_delta_t_minutes: Minutes = 15
    chw_supply_offset_max_k: Annotated[float, Field(gt=0)] = 1.2
    chw_supply_offset_minutes: Minutes = 15
    chiller_cop_ratio_min: Annotated[float, Field(gt=0, lt=1)] = 0.8
    chiller_cop_minutes: Minutes = 60
    short_cycle_max_per_hour: Annotated[int, Field(ge=1)] = 5
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
    stale_poll_periods: Annotated[int, Field(ge=1)] = 3
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
    comm_lost_poll_periods: Annotated[int, Field(ge=1)] = 3


def load_fault_thresholds(path: str | Path) -> FaultThresholds:
    """Thresholds from a YAML file (fields of :class:`FaultThresholds`); ConfigError names any problem."""
    return load_yaml_model(path, FaultThresholds)


@dataclass
class RuleInput:
    """Point values and qualities on a regular UTC time grid.

    ``values``: one column per point id, NaN where unknown. ``quality``: the
    same shape, :class:`~twin.readings.Quality` codes, :data:`MISSING_QUALITY`
    where the point has no reading at that time, :data:`HELD_QUALITY` where it
    has none but its previous value is carried. ``step``: the grid spacing
    (the poll or simulation period).
    """

    park: Park
    values: pd.DataFrame
    quality: pd.DataFrame
    step: pd.Timedelta

    @property
    def times(self) -> pd.DatetimeIndex:
        return self.values.index

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


@dataclass
class Condition:
    """Whether one rule holds for one asset (or point) at each grid time.

    ``active`` is False where the inputs are unknown. ``metrics`` are the
    figures behind the verdict per timestamp; the detector stores their values
    at the moment an episode is confirmed as its evidence.
    """

    rule_id: str
    asset_id: str
    active: np.ndarray
    min_duration: pd.Timedelta
    priority: Priority
    metrics: dict[str, np.ndarray] = field(default_factory=dict)
    point_id: str = ""


Rule = Callable[[RuleInput, FaultThresholds], list[Condition]]


def _minutes(value: float) -> pd.Timedelta:
    return pd.Timedelta(minutes=value)


def _assets(park: Park, cls: type):
    return [(building, asset) for building, asset in park.iter_assets() if isinstance(asset, cls)]


# ------------------------------------------------------------------ chillers

def chw_low_delta_t(data: RuleInput, limits: FaultThresholds) -> list[Condition]:
    """Chilled-water low delta-T: running on chilled water and return - supply < 2.2 K for 15 min.

    A low delta-T means too much water pumped for the cooling delivered
    (fouled coils, open bypass, failed valves). Ice-making mode is excluded:
    the glycol loop runs at its own small delta-T at part load.
    """
    conditions = []
    for building, chiller in _assets(data.park, Chiller):
        mode = data.point(building.id, chiller.id, "mode")
        delta_t_k = data.point(building.id, chiller.id, "chw_return_temp_c") - \
            data.point(building.id, chiller.id, "chw_supply_temp_c")
        low = (mode == MODE_DIRECT) & (delta_t_k < limits.chw_delta_t_min_k)
        conditions.append(Condition("chw_low_delta_t", chiller.id, low,
                                    _minutes(limits.chw_delta_t_minutes), Priority.MEDIUM, {"delta_t_k": delta_t_k}))
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
        conditions.append(Condition("chw_supply_off_setpoint", chiller.id,
                                    (mode == MODE_DIRECT) & (np.abs(offset_k) > limits.chw_supply_offset_max_k),
                                    _minutes(limits.chw_supply_offset_minutes), Priority.MEDIUM,
                                    {"supply_offset_k": offset_k}))
    return conditions


def chiller_low_cop(data: RuleInput, limits: FaultThresholds) -> list[Condition]:
    """Chiller COP below 80 % of expected for its load for an hour.

    Measured COP = cooling_kwth / power_kw (from the two measured points, not
    the chiller's own COP register). Expected COP is the twin's performance
    curve :func:`twin.plant.chiller_cop` at the measured mode, part load,
    chilled-water setpoint and outdoor temperature (the park's weather
    station). Without a weather station the rule is skipped.
    """
    stations = _assets(data.park, WeatherStation)
    if not stations:
        return []
    outdoor_c = data.point(stations[0][0].id, stations[0][1].id, "outdoor_temp_c")
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
        conditions.append(Condition("chiller_low_cop", chiller.id, running & (ratio < limits.chiller_cop_ratio_min),
                                    _minutes(limits.chiller_cop_minutes), Priority.MEDIUM,
                                    {"cop_ratio": ratio, "expected_cop": expected}))
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
                                    data.step, Priority.MEDIUM, {"starts_or_mode_changes_per_h": per_hour}))
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
    park's peak-shaving schedule does.
    """
    conditions = []
    for asset_id, pid, _ in _watched_points(data, limits):
        values = data.value(pid)
        unchanged = np.zeros(len(values), dtype=bool)
        unchanged[1:] = np.abs(np.diff(values)) <= 1e-9  # NaN compares False
        if limits.flatline_ignore_zero:
            unchanged &= values != 0.0
        conditions.append(Condition("sensor_flatline", asset_id, unchanged, _minutes(limits.flatline_minutes),
                                    Priority.MEDIUM, {"value": values}, point_id=pid))
    return conditions


def sensor_spike(data: RuleInput, limits: FaultThresholds) -> list[Condition]:
    """A temperature reading more than 3 K away from both neighbours, in the same direction.

    A step (a chiller starting, a mode change) moves away from the previous
    value and stays; a spike comes back at the next reading. Watches the
    degC points among ``flatline_points``. Where the asset has a ``mode``
    point (chillers), readings next to a mode change are not judged: a
    chiller that runs for a single step moves its water temperatures for
    that step, which is operation, not a sensor fault.
    """
    conditions = []
    for asset_id, pid, name in _watched_points(data, limits):
        if not name.endswith("_c"):
            continue
        values = data.value(pid)
        mode = data.value(pid.rsplit(".", 1)[0] + ".mode")
        mode_steady = np.ones(len(values), dtype=bool)
        if np.isfinite(mode).any():
            mode_steady[1:-1] = (mode[1:-1] == mode[:-2]) & (mode[1:-1] == mode[2:])
        jump_before = np.full(len(values), np.nan)
        jump_after = np.full(len(values), np.nan)
        jump_before[1:] = values[1:] - values[:-1]
        jump_after[:-1] = values[:-1] - values[1:]
        spike = (np.abs(jump_before) > limits.spike_jump_k) & (np.abs(jump_after) > limits.spike_jump_k) & \
            (np.sign(jump_before) == np.sign(jump_after)) & mode_steady
        conditions.append(Condition("sensor_spike", asset_id, spike, data.step, Priority.LOW,
                                    {"value": values, "jump_k": jump_before}, point_id=pid))
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
                                    _minutes(limits.out_of_range_minutes), Priority.MEDIUM, {"value": values},
                                    point_id=p.id))
    return conditions


def sensor_stale(data: RuleInput, limits: FaultThresholds) -> list[Condition]:
    """A point not updated for 3 poll periods: readings marked stale, or no reading at all.

    Comm-fail readings are left to :func:`device_comm_lost` (the device is
    gone, not one sensor).
    """
    conditions = []
    for pid in data.quality.columns:
        point = data.park.points.get(pid)
        if point is None:
            continue
        quality = data.quality[pid].to_numpy()
        stale = (quality == int(Quality.STALE)) | np.isin(quality, NOT_UPDATED)
        if stale.any():
            conditions.append(Condition("sensor_stale", point.asset_id, stale, data.step * limits.stale_poll_periods,
                                        Priority.MEDIUM, point_id=pid))
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
        expected_kw = np.minimum(pv_expected_ac_from_poa_kw(pv_params(array), np.nan_to_num(poa), cell_c),
                                 array.inverter_ac_kw * limit_pct / 100.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = data.point(building.id, array.id, "ac_power_kw") / expected_kw
        conditions.append(Condition("pv_underperformance", array.id,
                                    (poa > limits.pv_poa_min_wm2) & (ratio < limits.pv_ratio_min),
                                    _minutes(limits.pv_minutes), Priority.MEDIUM,
                                    {"performance_ratio": ratio, "poa_wm2": poa}))
    return conditions


def battery_limits(data: RuleInput, limits: FaultThresholds) -> list[Condition]:
    """Battery SOC outside its window (beyond a 1-point margin), cell temperature above 45 C,
    cell voltage spread above 0.15 V; each for 5 minutes. Overtemperature is critical."""
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
                      duration, Priority.MEDIUM, {"soc_pct": soc}),
            Condition("battery_overtemp", battery.id, temp_c > limits.battery_cell_temp_max_c, duration,
                      Priority.CRITICAL, {"cell_temp_max_c": temp_c}),
            Condition("battery_voltage_spread", battery.id, spread_v > limits.battery_voltage_spread_max_v, duration,
                      Priority.MEDIUM, {"cell_voltage_spread_v": spread_v}),
        ]
    return conditions


def elevator_out_of_service(data: RuleInput, limits: FaultThresholds) -> list[Condition]:
    """An elevator reporting out of service or a non-zero fault code for 5 minutes."""
    conditions = []
    for building, lift in _assets(data.park, Elevator):
        in_service = data.point(building.id, lift.id, "in_service")
        fault_code = data.point(building.id, lift.id, "fault_code")
        conditions.append(Condition("elevator_out_of_service", lift.id, (in_service == 0) | (fault_code > 0),
                                    _minutes(limits.elevator_minutes), Priority.MEDIUM,
                                    {"fault_code": fault_code}))
    return conditions


def lighting_on_unoccupied(data: RuleInput, limits: FaultThresholds) -> list[Condition]:
    """Lighting above half its rated power for 30 min while its building is unoccupied.

    Unoccupied: the building's occupancy schedule (park file, local time,
    :func:`twin.profiles.occupancy_fraction`) gives fewer than 30 % of people
    present; night and weekend security lighting stays below half power.
    """
    local = data.times.tz_convert(data.park.site.timezone)
    hours = np.asarray(local.hour + local.minute / 60.0)
    weekend = np.asarray(local.weekday >= 5)
    conditions = []
    for building, light in _assets(data.park, Lighting):
        present = np.array([occupancy_fraction(building.occupancy, h, w) for h, w in zip(hours, weekend)])
        power_kw = data.point(building.id, light.id, "power_kw")
        conditions.append(Condition("lighting_on_unoccupied", light.id,
                                    (present < limits.lighting_unoccupied_below)
                                    & (power_kw > limits.lighting_on_fraction * light.rated_kw),
                                    _minutes(limits.lighting_minutes), Priority.LOW, {"power_kw": power_kw}))
    return conditions


def device_comm_lost(data: RuleInput, limits: FaultThresholds) -> list[Condition]:
    """Every point of a device reading comm_fail (or absent) for 3 poll periods: communication lost."""
    by_asset: dict[str, list[str]] = {}
    for p in data.park.points.values():
        by_asset.setdefault(p.asset_id, []).append(p.id)
    conditions = []
    for asset_id, pids in by_asset.items():
        present = [pid for pid in pids if pid in data.quality.columns]
        if not present:
            continue
        quality = data.quality[present].to_numpy()
        lost = ((quality == int(Quality.COMM_FAIL)) | np.isin(quality, NOT_UPDATED)).all(axis=1)
        if lost.any():
            conditions.append(Condition("device_comm_lost", asset_id, lost, data.step * limits.comm_lost_poll_periods,
                                        Priority.CRITICAL))
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
    "device_comm_lost": device_comm_lost,
}
"""Every rule function by name (``battery_limits`` yields three rule ids)."""

RULE_LOOKBACK = pd.Timedelta(hours=2)
"""History before a detection range that the rules need (the longest window, 60 min, plus margin)."""


def evaluate_rules(data: RuleInput, limits: FaultThresholds) -> list[Condition]:
    """Every rule's conditions over the input."""
    return [condition for rule in RULES.values() for condition in rule(data, limits)]

