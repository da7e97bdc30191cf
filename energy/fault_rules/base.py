"""What every fault rule works with: its input, its output, its thresholds and its alarm settings.

A rule looks at a :class:`RuleInput` (point values and qualities on a
time grid) and returns one :class:`Condition` per asset (or point) it
judges: a boolean per timestamp, where it could be judged at all, the time it
must hold before it counts as a fault (its on-delay), and the figures behind
it. A :data:`ParkRule` judges points of any kind (the sensor and communication
rules, :mod:`energy.fault_rules.sensors`); an :data:`AssetRule` judges one asset
of the kind whose module in this package lists it (:mod:`energy.fault_rules`
holds the table by kind name).

Thresholds are the defaults of DOMAIN.md ("Fault rules worth having") and sit
in :class:`FaultThresholds`, with the alarm settings, which a YAML file can
override (:func:`load_fault_thresholds`). Each rule's docstring says what it
checks and why the threshold is where it is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, cast

import numpy as np
import pandas as pd
from pydantic import Field, field_validator

from twin.config import load_yaml_model
from twin.fault_episodes import Priority
from twin.input_schema import InputModel
from twin.park import Building, Park
from twin.points import point_id
from twin.readings import Quality

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
        return minutes(self.alarms.get(rule_id, AlarmSettings()).off_delay_minutes)


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


ParkRule = Callable[[RuleInput, FaultThresholds], list[Condition]]
"""A rule over the park's points, whatever their assets' kinds."""
AssetRule = Callable[[RuleInput, FaultThresholds, Building, Any], list[Condition]]
"""A rule over one asset (in its building) of the kind whose rules list it; the rule annotates the asset
with that kind's class."""


def minutes(value: float) -> pd.Timedelta:
    """A duration in minutes as a Timedelta."""
    return pd.Timedelta(minutes=value)

