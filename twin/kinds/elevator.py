"""The elevator kind: a traction elevator whose load follows passenger traffic."""

from __future__ import annotations

from typing import ClassVar, Literal

from twin.input_schema import NonNegativeFloat, PositiveFloat
from twin.kinds.base import ST, AssetBase, M, PowerGroup
from twin.kinds.simulation import Member, Simulation, Stage, State, StepInputs
from twin.points import PointSpec
from twin.profiles import elevator_traffic

FAULT_CODE_OUT_OF_SERVICE = 17
"""Fault code an elevator reports when taken out of service by an injected fault."""


def _step(members: list[Member], inputs: StepInputs, occupancy: float, values: memoryview[float]) -> float:
    """A building's elevators (twin.kinds.simulation): idle power plus a share of rated power that follows
    the park's traffic at this hour scaled by the building's ``occupancy``; trips counted; out of service,
    idle power only. Returns their power, kW."""
    total = 0.0
    traffic = elevator_traffic(inputs.hour) * max(occupancy, 0.05)
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
            power = lift.idle_kw + lift.rated_kw * 0.5 * traffic * spread
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


class Elevator(AssetBase):
    """A traction elevator whose electric load follows passenger traffic."""

    kind: Literal["elevator"] = "elevator"
    kind_label: ClassVar[str] = "Elevator"
    power_point: ClassVar[str] = "power_kw"
    power_groups: ClassVar[tuple[PowerGroup, ...]] = (PowerGroup("elevators", "load", "Elevators", "#8c564b"),)
    simulation: ClassVar[Simulation] = Simulation(Stage.BUILDING_LOAD, _step, _initial_state,
                                                  continued={"trips_count": True})
    rated_kw: PositiveFloat
    idle_kw: NonNegativeFloat = 1.0

    def standard_points(self) -> list[PointSpec]:
        return [
            PointSpec("power_kw", "kW", M, low_limit=0, high_limit=1.5 * self.rated_kw),
            PointSpec("in_service", "bool", ST),
            PointSpec("fault_code", "code", ST, low_limit=0, description="0 means no fault"),
            PointSpec("trips_count", "count", M, low_limit=0),
        ]
