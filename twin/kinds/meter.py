"""The meter kind: the park's grid meter or a building's sub-meter, + import."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, ClassVar, Literal

from pydantic import Field

from twin.kinds.base import AssetBase, M, PowerGroup, Role
from twin.kinds.simulation import Member, MeteredPower, Simulation, Stage, State, StepInputs
from twin.points import PointSpec

GRID = PowerGroup("grid", "source", "Grid", "#d62728")
"""Power at the grid connection, + import: the grid meter's."""
BUILDING_METERS = PowerGroup("building_meters", "meters")
"""The buildings' sub-meters, each measuring every load in its building."""
GRID_ROLES: Mapping[Role, str] = {Role.GRID_POWER: "power_kw", Role.GRID_IMPORT_COUNTER: "import_energy_kwh",
                                  Role.GRID_EXPORT_COUNTER: "export_energy_kwh"}
BUILDING_ROLES: Mapping[Role, str] = {Role.BUILDING_POWER: "power_kw",
                                      Role.BUILDING_IMPORT_COUNTER: "import_energy_kwh"}



def _step(members: list[Member], inputs: StepInputs, metered: MeteredPower, values: memoryview[float]) -> float:
    """The park's meters (twin.kinds.simulation): the grid meter measures the grid connection, a building's
    sub-meter the building's loads, each with its accuracy as noise; import and export energy counted from
    the measured power. They draw no power: returns 0 kW."""
    rng, step_h = inputs.rng, inputs.step_h
    for member in members:
        meter: Meter = member.asset
        slots, state = member.slots, member.state
        true_kw = metered.grid_kw if meter.measures == "grid" else metered.building_kw[member.building_id]
        measured_kw = true_kw * (1.0 + meter.accuracy_pct / 100.0 * 0.5 * rng.standard_normal())
        values[slots["power_kw"]] = measured_kw
        values[slots["import_energy_kwh"]] = state["import_energy_kwh"]
        values[slots["export_energy_kwh"]] = state["export_energy_kwh"]
        state["import_energy_kwh"] += max(0.0, measured_kw) * step_h
        state["export_energy_kwh"] += max(0.0, -measured_kw) * step_h
    return 0.0


def _initial_state(meter: Meter) -> State:
    return {"import_energy_kwh": 0.0, "export_energy_kwh": 0.0}


class Meter(AssetBase):
    """An electricity meter. Power is positive for import (consumption).

    measures: ``grid`` for the park's main meter at the grid connection, or
    ``building`` for a sub-meter of every load in its building.
    """

    kind: Literal["meter"] = "meter"
    kind_label: ClassVar[str] = "Meter"
    power_point: ClassVar[str] = "power_kw"
    power_groups: ClassVar[tuple[PowerGroup, ...]] = (GRID, BUILDING_METERS)
    simulation: ClassVar[Simulation] = Simulation(Stage.METER, _step, _initial_state,
                                                  continued={"import_energy_kwh": False, "export_energy_kwh": False})
    measures: Literal["grid", "building"]
    accuracy_pct: Annotated[float, Field(ge=0, le=5)] = 0.2

    def standard_points(self) -> list[PointSpec]:
        return [
            PointSpec("power_kw", "kW", M, description="positive import"),
            PointSpec("import_energy_kwh", "kWh", M, low_limit=0),
            PointSpec("export_energy_kwh", "kWh", M, low_limit=0),
        ]

    def power_group(self) -> PowerGroup:
        """The grid for the grid meter; the building sub-meters for a building's."""
        return GRID if self.measures == "grid" else BUILDING_METERS

    def roles(self) -> Mapping[Role, str]:
        return GRID_ROLES if self.measures == "grid" else BUILDING_ROLES
