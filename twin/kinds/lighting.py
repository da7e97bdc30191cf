"""The lighting kind: a switched, dimmable lighting circuit."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

import numpy as np
from pydantic import Field

from twin.input_schema import PositiveFloat
from twin.kinds.base import SP, ST, AssetBase, M, PowerGroup
from twin.kinds.simulation import HourProfile, Member, Simulation, Stage, StepInputs
from twin.points import PointSpec

OCCUPIED_MIN = 0.3
"""Least occupancy of its building (0 to 1) at which a lighting circuit is on."""

TYPICAL_ON_SHARE = 0.9
"""Share of rated power a lit circuit typically draws: a round figure for the step's 0.85 + 0.15 x occupancy
(0.895 to 1) less its daylight dimming (up to a quarter)."""


def _step(members: list[Member], inputs: StepInputs, occupancy: float, values: memoryview[float]) -> float:
    """A building's lighting circuits (twin.kinds.simulation): on while occupied (``occupancy`` at least
    :data:`OCCUPIED_MIN`, with daylight dimming and the dimming setpoint), ``night_fraction`` of rated power
    otherwise, full power while stuck on; returns their power, kW."""
    total = 0.0
    for member in members:
        light: Lighting = member.asset
        slots = member.slots
        dimming_pct = inputs.setpoints.get(slots["dimming_pct"], 100.0)
        occupied = occupancy >= OCCUPIED_MIN
        if ("lighting_stuck_on", light.id) in inputs.faults:
            power, on = light.rated_kw, True
        elif occupied:
            daylight_cut = 0.25 * min(1.0, inputs.ghi_wm2 / 800.0)
            power = light.rated_kw * (0.85 + 0.15 * occupancy) * (1.0 - daylight_cut) * dimming_pct / 100.0
            on = True
        else:
            power, on = light.rated_kw * light.night_fraction, False
        values[slots["power_kw"]] = power
        values[slots["on"]] = float(on)
        values[slots["dimming_pct"]] = dimming_pct
        total += power
    return total


def _typical_kw(light: Lighting, profile: HourProfile) -> np.ndarray:
    """A circuit's typical power, kW: :data:`TYPICAL_ON_SHARE` of rated power while its building is occupied
    (:data:`OCCUPIED_MIN`), ``night_fraction`` of it otherwise."""
    power_kw: np.ndarray = light.rated_kw * np.where(profile.occupancy >= OCCUPIED_MIN, TYPICAL_ON_SHARE,
                                                     light.night_fraction)
    return power_kw


class Lighting(AssetBase):
    """A lighting circuit switched by an occupancy schedule and dimmable."""

    kind: Literal["lighting"] = "lighting"
    kind_label: ClassVar[str] = "Lighting"
    power_point: ClassVar[str] = "power_kw"
    power_groups: ClassVar[tuple[PowerGroup, ...]] = (PowerGroup("lighting", "load", "Lighting", "#e0a800"),)
    rated_kw: PositiveFloat
    simulation: ClassVar[Simulation] = Simulation(Stage.BUILDING_LOAD, _step, typical_kw=_typical_kw)
    night_fraction: Annotated[float, Field(ge=0, le=1)] = 0.1

    def standard_points(self) -> list[PointSpec]:
        return [
            PointSpec("power_kw", "kW", M, low_limit=0, high_limit=1.2 * self.rated_kw),
            PointSpec("on", "bool", ST),
            PointSpec("dimming_pct", "%", SP, writable=True, low_limit=0, high_limit=100),
        ]
