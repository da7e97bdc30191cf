"""The EV charger kind: a charging point serving arriving sessions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import ClassVar, Literal

import numpy as np

from twin.input_schema import PositiveFloat
from twin.kinds.base import SP, ST, AssetBase, M, PowerGroup
from twin.kinds.simulation import HourProfile, Member, Simulation, Stage, State, StepInputs
from twin.points import PointSpec
from twin.profiles import EV_ARRIVAL_WEIGHT_PER_DAY_H, ev_arrival_weight

TYPICAL_SESSION_KWH = 20.0
"""Energy of a typical charging session, kWh."""


@dataclass
class EVSession:
    """A car plugged into a charger."""

    energy_needed_kwh: float
    departure_utc: datetime
    delivered_kwh: float = 0.0


def _step(members: list[Member], inputs: StepInputs, occupancy: float, values: memoryview[float]) -> float:
    """A building's EV chargers (twin.kinds.simulation): sessions arrive at random at a free charger (the
    park's rate per charger and day, 0.4 of it at weekends, over the day's arrival profile), charge within
    the power limit and leave at departure. Returns their power, kW."""
    total = 0.0
    step_h, rng = inputs.step_h, inputs.rng
    rate_per_day = inputs.settings.ev_sessions_per_charger_per_day * (0.4 if inputs.weekend else 1.0)
    p_arrival = _arrivals_per_h(rate_per_day, ev_arrival_weight(inputs.hour)) * step_h
    for member in members:
        charger: EVCharger = member.asset
        slots, state = member.slots, member.state
        session: EVSession | None = state["session"]
        if session is not None and inputs.t_utc >= session.departure_utc:
            session = state["session"] = None
        if session is None and rng.random() < p_arrival:
            session = state["session"] = _new_session(charger, inputs.t_utc, rng)
            state["session_energy_kwh"] = 0.0
        limit_kw = inputs.setpoints.get(slots["power_limit_kw"], charger.power_max_kw)
        power = 0.0
        if session is not None:
            remaining_kwh = max(0.0, session.energy_needed_kwh - session.delivered_kwh)
            power = min(charger.power_max_kw, limit_kw, remaining_kwh / step_h)
        values[slots["power_kw"]] = power
        values[slots["connected"]] = float(session is not None)
        values[slots["session_energy_kwh"]] = state["session_energy_kwh"]
        values[slots["power_limit_kw"]] = limit_kw
        if session is not None:
            session.delivered_kwh += power * step_h
            state["session_energy_kwh"] += power * step_h
        total += power
    return total


def _arrivals_per_h(rate_per_day: float, arrival_weight: float | np.ndarray) -> float | np.ndarray:
    """Sessions arriving per hour at a charger that gets ``rate_per_day`` sessions a day, at the hour of the
    day's arrival profile whose weight is ``arrival_weight``."""
    return rate_per_day * arrival_weight / EV_ARRIVAL_WEIGHT_PER_DAY_H


def _typical_kw(charger: EVCharger, profile: HourProfile) -> np.ndarray:
    """A charger's typical power, kW: the energy its sessions bring per hour as they arrive, each
    :data:`TYPICAL_SESSION_KWH`, at the park's sessions per charger and day over the day's arrival profile
    (the weekday rate on weekends too)."""
    arrivals = _arrivals_per_h(profile.settings.ev_sessions_per_charger_per_day, profile.ev_arrival_weight)
    return np.asarray(arrivals * TYPICAL_SESSION_KWH)


def _new_session(charger: EVCharger, t_utc: datetime, rng: np.random.Generator) -> EVSession:
    """A session arriving at t: a DC charger's cars want more energy and stay shorter, kWh and h."""
    if charger.connector == "dc":
        energy, dwell_h = rng.uniform(15, 45), rng.uniform(0.5, 1.5)
    else:
        energy, dwell_h = rng.uniform(8, 30), rng.uniform(4, 9)
    return EVSession(energy, t_utc + timedelta(hours=dwell_h))


def _initial_state(charger: EVCharger) -> State:
    return {"session": None, "session_energy_kwh": 0.0}


class EVCharger(AssetBase):
    """An EV charging point; sessions arrive, charge within the power limit, and leave."""

    kind: Literal["ev_charger"] = "ev_charger"
    kind_label: ClassVar[str] = "EV charger"
    power_point: ClassVar[str] = "power_kw"
    power_groups: ClassVar[tuple[PowerGroup, ...]] = (PowerGroup("ev", "load", "EV charging", "#2ca02c"),)
    simulation: ClassVar[Simulation] = Simulation(Stage.BUILDING_LOAD, _step, _initial_state, typical_kw=_typical_kw)
    power_max_kw: PositiveFloat
    connector: Literal["ac", "dc"] = "ac"

    @classmethod
    def park_summary(cls, assets: Sequence[EVCharger]) -> str:
        """How many charging points."""
        return f"{len(assets)} EV chargers"

    def standard_points(self) -> list[PointSpec]:
        return [
            PointSpec("power_kw", "kW", M, low_limit=0, high_limit=1.05 * self.power_max_kw),
            PointSpec("connected", "bool", ST),
            PointSpec("session_energy_kwh", "kWh", M, low_limit=0),
            PointSpec("power_limit_kw", "kW", SP, writable=True, low_limit=0, high_limit=self.power_max_kw),
        ]
