"""The ice tank kind: ice storage charged by chillers in ice mode, melted to serve cooling load."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Annotated, ClassVar, Literal

import numpy as np
from pydantic import Field

from twin.input_schema import PositiveFloat
from twin.kinds.base import SP, AssetBase, Fraction, M, Percent, PlanColumn, PlanTrace, Role
from twin.kinds.chiller import Chiller
from twin.kinds.simulation import Member, Simulation, Stage, State, StepInputs
from twin.plant import PlantOperation, stored_after_kwhth
from twin.points import PointSpec

if TYPE_CHECKING:
    from twin.park import PlantSchedule


def _step(members: list[Member], inputs: StepInputs, plant: PlantOperation, values: memoryview[float]) -> float:
    """The park's ice tank in the plant's operation (twin.kinds.simulation): the charge, melt and standing
    loss the plant ran, and the inventory they leave. It draws no electric power: returns 0 kW."""
    flows = plant.step
    for member in members:
        tank: IceTank = member.asset
        slots, state = member.slots, member.state
        inventory_kwhth = state["inventory_kwhth"]
        values[slots["inventory_kwhth"]] = inventory_kwhth
        values[slots["soc_pct"]] = 100.0 * inventory_kwhth / tank.capacity_kwhth
        values[slots["charge_kwth"]] = flows.charge_kwth
        values[slots["melt_kwth"]] = flows.melt_kwth
        values[slots["cooling_delivered_kwth"]] = flows.cooling_delivered_by_ice_kwth
        values[slots["standing_loss_kwth"]] = flows.standing_loss_kwth
        values[slots["charge_setpoint_kwth"]] = plant.charge_request_kwth
        values[slots["melt_setpoint_kwth"]] = plant.melt_request_kwth
        state["inventory_kwhth"] = tank.inventory_after_kwhth(inventory_kwhth, flows.charge_kwth, flows.melt_kwth,
                                                              flows.standing_loss_kwth, inputs.step_h)
    return 0.0


def _initial_state(tank: IceTank) -> State:
    return {"inventory_kwhth": tank.initial_stored()}


class IceTank(AssetBase):
    """An ice storage tank charged by chillers in ice mode and melted to serve cooling load.

    Inventory balance per step: d(inventory) = charge - melt - standing loss,
    where melt is the thermal energy drawn from the ice and the cooling it
    delivers is ``melt * melt_effectiveness``.
    """

    kind: Literal["ice_tank"] = "ice_tank"
    kind_label: ClassVar[str] = "Ice tank"
    point_roles: ClassVar[Mapping[Role, str]] = {Role.STORAGE_MELT: "melt_kwth",
                                                 Role.STORAGE_COOLING_DELIVERED: "cooling_delivered_kwth",
                                                 Role.STORAGE_CHARGE_SETPOINT: "charge_setpoint_kwth",
                                                 Role.STORAGE_MELT_SETPOINT: "melt_setpoint_kwth"}
    stored_point: ClassVar[str] = "inventory_kwhth"
    stored_pct_point: ClassVar[str] = "soc_pct"
    stored_pct_label: ClassVar[str] = "ice inventory"
    hold_setpoints: ClassVar[Mapping[str, float]] = {"charge_setpoint_kwth": 0.0, "melt_setpoint_kwth": 0.0}
    storage_flow_points: ClassVar[tuple[str, ...]] = ("charge_kwth", "melt_kwth", "standing_loss_kwth")
    plan_traces: ClassVar[tuple[PlanTrace, ...]] = (PlanTrace("charge_kwth", "ice making kWth", "#0dcaf0"),
                                                    PlanTrace("melt_kwth", "ice melt kWth", "#fd7e14"))
    simulation: ClassVar[Simulation] = Simulation(Stage.PLANT, _step, _initial_state,
                                                  continued={"inventory_kwhth": False})
    capacity_kwhth: PositiveFloat
    charge_rate_max_kwth: PositiveFloat
    melt_rate_max_kwth: PositiveFloat
    standing_loss_pct_per_h: Annotated[float, Field(ge=0, le=5)] = 0.15
    melt_effectiveness: Fraction = 0.95
    initial_soc_pct: Percent = 20.0

    @classmethod
    def park_issues(cls, assets: Sequence[AssetBase]) -> list[str]:
        """Ice is made by chillers in ice mode; the simulator models one tank."""
        tanks = [asset for asset in assets if isinstance(asset, cls)]
        issues = []
        if tanks and not any(isinstance(asset, Chiller) and asset.makes_ice for asset in assets):
            issues.append("an ice tank needs at least one chiller with ice_capacity_kwth")
        if len(tanks) > 1:
            issues.append("the simulator models one ice tank per park; found more")
        return issues

    def scheduled_kwth(self, schedule: PlantSchedule, hour: float) -> tuple[float, float]:
        """The charge and melt rates the plant schedule asks at this local hour of day, kWth: the full charge
        rate in its ice-charge window, the full melt rate in its melt windows, else 0."""
        return schedule.cooling_storage_kwth(hour, self.charge_rate_max_kwth, self.melt_rate_max_kwth)

    def inventory_after_kwhth(self, inventory_kwhth: float, charge_kwth: float, melt_kwth: float,
                              standing_loss_kwth: float, hours: float) -> float:
        """The inventory after ``hours`` of these flows (the balance of the class docstring), kWhth, within
        0 and the capacity."""
        return stored_after_kwhth(inventory_kwhth, self.capacity_kwhth, charge_kwth, melt_kwth, standing_loss_kwth,
                                  hours)

    def initial_stored(self) -> float:
        """The initial SOC's share of the capacity, kWhth."""
        return self.capacity_kwhth * self.initial_soc_pct / 100.0

    def stored_after(self, stored: float, flows: Sequence[float], hours: float) -> float:
        """The inventory (kWhth) after the charge, melt and standing loss read (kWth) held for ``hours``."""
        charge_kwth, melt_kwth, standing_loss_kwth = flows
        return self.inventory_after_kwhth(stored, charge_kwth, melt_kwth, standing_loss_kwth, hours)

    def plan_setpoints(self, column: PlanColumn, peers: Sequence[IceTank]) -> dict[str, np.ndarray]:
        """The plan's ice charge and melt (kWth)."""
        return {"charge_setpoint_kwth": column(f"{self.id}.charge_kwth"),
                "melt_setpoint_kwth": column(f"{self.id}.melt_kwth")}

    def standard_points(self) -> list[PointSpec]:
        return [
            PointSpec("inventory_kwhth", "kWhth", M, low_limit=0, high_limit=self.capacity_kwhth),
            PointSpec("soc_pct", "%", M, low_limit=0, high_limit=100),
            PointSpec("charge_kwth", "kWth", M, low_limit=0, high_limit=self.charge_rate_max_kwth),
            PointSpec("melt_kwth", "kWth", M, low_limit=0, high_limit=self.melt_rate_max_kwth,
                      description="thermal power drawn from the ice"),
            PointSpec("cooling_delivered_kwth", "kWth", M, low_limit=0, high_limit=self.melt_rate_max_kwth),
            PointSpec("standing_loss_kwth", "kWth", M, low_limit=0),
            PointSpec("charge_setpoint_kwth", "kWth", SP, writable=True, low_limit=0,
                      high_limit=self.charge_rate_max_kwth),
            PointSpec("melt_setpoint_kwth", "kWth", SP, writable=True, low_limit=0,
                      high_limit=self.melt_rate_max_kwth),
        ]
