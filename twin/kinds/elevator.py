"""The elevator kind: a traction elevator whose load follows passenger traffic."""

from __future__ import annotations

from typing import ClassVar, Literal, overload

import numpy as np

from twin.input_schema import NonNegativeFloat, PositiveFloat
from twin.kinds.base import ST, AssetBase, M, PowerGroup
from twin.kinds.simulation import HourProfile, Member, Simulation, Stage, State, StepInputs
from twin.points import PointSpec
from twin.profiles import elevator_traffic

FAULT_CODE_OUT_OF_SERVICE = 17
"""Fault code an elevator reports when taken out of service by an injected fault."""

TRAFFIC_OCCUPANCY_MIN = 0.05
"""Least occupancy (0 to 1) the park's traffic is scaled by: some people travel in an empty building."""


@overload
def _travel_kw(lift: Elevator, traffic: float) -> float: ...


@overload
def _travel_kw(lift: Elevator, traffic: np.ndarray) -> np.ndarray: ...


def _travel_kw(lift: Elevator, traffic: float | np.ndarray) -> float | np.ndarray:
    """Power above idle (kW) at ``traffic``, the park's traffic scaled by the building's occupancy: half of
    rated power at the morning up-peak of a full building."""
    return lift.rated_kw * 0.5 * traffic


def _step(members: list[Member], inputs: StepInputs, occupancy: float, values: memoryview[float]) -> float:
    """A building's elevators (twin.kinds.simulation): idle power plus a share of rated power that follows
    the park's traffic at this hour scaled by the building's ``occupancy``; trips counted; out of service,
    idle power only. Returns their power, kW."""
    total = 0.0
    traffic = elevator_traffic(inputs.hour) * max(occupancy, TRAFFIC_OCCUPANCY_MIN)
    trips_mean = traffic * 1.2 * inputs.step_h * 60
    rng = inputs.rng
    for member in members:
        lift: Elevator = member.asset
        slots, state = member.slots, member.state
        in_service = ("elevator_out_of_service", lift.id) not in inputs.faults
        values[slots["trips_count"]] = state["trips_count"]
        if in_service:
            # a uniform draw on [0.6, 1.4), as Generator.uniform makes it (low + (high - low) * random()),
            # written out to skip its argument handling on this per-lift, per-step call
            spread = 0.6 + (1.4 - 0.6) * rng.random()
            power = lift.idle_kw + _travel_kw(lift, traffic) * spread
            state["trips_count"] += int(rng.poisson(trips_mean))
        else:
            power = lift.idle_kw
        values[slots["power_kw"]] = power
        values[slots["in_service"]] = float(in_service)
        values[slots["fault_code"]] = 0.0 if in_service else float(FAULT_CODE_OUT_OF_SERVICE)
        total += power
    return total


def _initial_state(lift: Elevator) -> State:
    return {"trips_count": 0.0}


def _typical_kw(lift: Elevator, profile: HourProfile) -> np.ndarray:
    """An elevator's typical power, kW: the step's at the mean of its random spread (1)."""
    traffic = profile.elevator_traffic * np.maximum(profile.occupancy, TRAFFIC_OCCUPANCY_MIN)
    return lift.idle_kw + _travel_kw(lift, traffic)


class Elevator(AssetBase):
    """A traction elevator whose electric load follows passenger traffic."""

    kind: Literal["elevator"] = "elevator"
    kind_label: ClassVar[str] = "Elevator"
    power_point: ClassVar[str] = "power_kw"
    power_groups: ClassVar[tuple[PowerGroup, ...]] = (PowerGroup("elevators", "load", "Elevators", "#8c564b"),)
    simulation: ClassVar[Simulation] = Simulation(Stage.BUILDING_LOAD, _step, _initial_state,
                                                  continued={"trips_count": True}, typical_kw=_typical_kw)
    rated_kw: PositiveFloat
    idle_kw: NonNegativeFloat = 1.0

    def standard_points(self) -> list[PointSpec]:
        return [
            PointSpec("power_kw", "kW", M, low_limit=0, high_limit=1.5 * self.rated_kw),
            PointSpec("in_service", "bool", ST),
            PointSpec("fault_code", "code", ST, low_limit=0, description="0 means no fault"),
            PointSpec("trips_count", "count", M, low_limit=0),
        ]
