"""The chilled-water tank kind: sensible (stratified) chilled-water storage on the buildings' chilled-water loop,
charged with chilled water the chillers make in their ordinary mode and discharged to the buildings."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, ClassVar, Literal

import numpy as np
from pydantic import Field

from twin.input_schema import PositiveFloat
from twin.kinds.base import SP, AssetBase, M, Percent, PlanColumn, PlanTrace, Role
from twin.kinds.chiller import Chiller
from twin.kinds.simulation import ChilledWaterDemand, Member, Simulation, Stage, State, StepInputs
from twin.plant import chargeable_kwth, dischargeable_kwth, standing_loss_kwth, stored_after_kwhth
from twin.points import PointSpec


def _step(members: list[Member], inputs: StepInputs, demand: ChilledWaterDemand, values: memoryview[float]) -> float:
    """The park's chilled-water tanks on the buildings' chilled-water loop (twin.kinds.simulation), in park
    order, each on the load and the chillers' spare capacity the ones before it leave: each follows its
    setpoints in force, without written ones the rates the plant schedule asks (:meth:`ChilledWaterTank.follow`).
    Returns the cooling they deliver to the loop net, kWth, negative while they charge."""
    delivered_kwth = 0.0
    for member in members:
        tank: ChilledWaterTank = member.asset
        slots, state = member.slots, member.state
        stored_kwhth = state["stored_kwhth"]
        charge_default, discharge_default = inputs.schedule.cooling_storage_kwth(
            inputs.hour, tank.charge_rate_max_kwth, tank.discharge_rate_max_kwth)
        charge_request = inputs.setpoints.get(slots["charge_setpoint_kwth"], charge_default)
        discharge_request = inputs.setpoints.get(slots["discharge_setpoint_kwth"], discharge_default)
        left = ChilledWaterDemand(demand.load_kwth - delivered_kwth, demand.capacity_kwth)
        charge, discharge, loss = tank.follow(stored_kwhth, charge_request, discharge_request, left, inputs.step_h)
        values[slots["stored_kwhth"]] = stored_kwhth
        values[slots["soc_pct"]] = 100.0 * stored_kwhth / tank.capacity_kwhth
        values[slots["charge_kwth"]] = charge
        values[slots["discharge_kwth"]] = discharge
        values[slots["standing_loss_kwth"]] = loss
        values[slots["cooling_delivered_kwth"]] = discharge - charge
        values[slots["charge_setpoint_kwth"]] = charge_request
        values[slots["discharge_setpoint_kwth"]] = discharge_request
        state["stored_kwhth"] = stored_after_kwhth(stored_kwhth, tank.capacity_kwhth, charge, discharge, loss,
                                                   inputs.step_h)
        delivered_kwth += discharge - charge
    return delivered_kwth


def _initial_state(tank: ChilledWaterTank) -> State:
    return {"stored_kwhth": tank.initial_stored()}


class ChilledWaterTank(AssetBase):
    """A stratified chilled-water storage tank on the buildings' chilled-water loop.

    Chillers in chilled-water mode charge it (cold water in at the bottom, warm water out at the top), so
    charging adds to the load they carry, at their direct COP, unlike ice; it discharges to the buildings'
    loop, taking that much load off the chillers, and delivers the thermal power it gives up in full (the
    water leaves at the temperature it was stored at). Balance per step:
    d(stored) = (charge - discharge - standing loss) * hours, the standing loss a share of what it holds.

    capacity_kwhth: usable capacity, volume x density x specific heat x design delta-T, e.g.
    2,000 m3 x 1,000 kg/m3 x 4.186 kJ/(kg K) x 8 K = 66,976 MJ = 18,604 kWhth.
    standing_loss_pct_per_h: default 0.5 %/h, the lower end of the 0.5-1 %/h taken for sensible storage (more
    than ice's 0.1-0.25 %/h, ../shared/DOMAIN.md): heat gained through the walls and the mixing across the
    thermocline together, the second the larger (Homan, Sohn and Soo, "Thermal performance of stratified
    chilled water storage tanks", HVAC&R Research 2(2), 1996).
    """

    kind: Literal["chilled_water_tank"] = "chilled_water_tank"
    kind_label: ClassVar[str] = "Chilled-water tank"
    point_roles: ClassVar[Mapping[Role, str]] = {Role.STORAGE_COOLING_DELIVERED: "cooling_delivered_kwth"}
    stored_point: ClassVar[str] = "stored_kwhth"
    """The point reporting the cooling the tank stores, kWhth."""
    stored_pct_point: ClassVar[str] = "soc_pct"
    """The point reporting the cooling the tank stores as a share of its capacity, %."""
    stored_pct_label: ClassVar[str] = "stored chilled water"
    hold_setpoints: ClassVar[Mapping[str, float]] = {"charge_setpoint_kwth": 0.0, "discharge_setpoint_kwth": 0.0}
    storage_flow_points: ClassVar[tuple[str, ...]] = ("charge_kwth", "discharge_kwth", "standing_loss_kwth")
    plan_traces: ClassVar[tuple[PlanTrace, ...]] = (
        PlanTrace("charge_kwth", "chilled-water charge kWth", "#20c997"),
        PlanTrace("discharge_kwth", "chilled-water discharge kWth", "#d63384"))
    simulation: ClassVar[Simulation] = Simulation(Stage.CHILLED_WATER_LOOP, _step, _initial_state,
                                                  continued={"stored_kwhth": False})
    capacity_kwhth: PositiveFloat
    charge_rate_max_kwth: PositiveFloat
    discharge_rate_max_kwth: PositiveFloat
    standing_loss_pct_per_h: Annotated[float, Field(ge=0, le=5)] = 0.5
    initial_soc_pct: Percent = 20.0

    @classmethod
    def park_issues(cls, assets: Sequence[AssetBase]) -> list[str]:
        """Chillers charge the tank with chilled water."""
        if any(isinstance(asset, cls) for asset in assets) and not any(isinstance(asset, Chiller) for asset in assets):
            return ["a chilled-water tank needs at least one chiller to charge it"]
        return []

    @classmethod
    def park_summary(cls, assets: Sequence[ChilledWaterTank]) -> str | None:
        """The tanks' capacity; nothing in a park without one."""
        if not assets:
            return None
        return f"chilled-water storage {sum(tank.capacity_kwhth for tank in assets):,.0f} kWhth"

    def follow(self, stored_kwhth: float, charge_request_kwth: float, discharge_request_kwth: float,
               demand: ChilledWaterDemand, hours: float) -> tuple[float, float, float]:
        """The charge, discharge and standing loss, kWth, of the tank holding these requests (kWth) for ``hours``
        from ``stored_kwhth`` on a loop with this demand: it discharges up to the request, its rate, what it
        holds and the load, so that it never pushes cooling back into the plant; when it does not discharge, it
        charges up to the request, its rate, the room left and the chillers' spare capacity, so that the load
        comes first. It never charges and discharges in one step."""
        loss_kwth = standing_loss_kwth(stored_kwhth, self.standing_loss_pct_per_h)
        discharge_kwth = 0.0
        if discharge_request_kwth > 0:
            discharge_kwth = min(discharge_request_kwth, self.discharge_rate_max_kwth,
                                 dischargeable_kwth(stored_kwhth, loss_kwth, hours), demand.load_kwth)
        charge_kwth = 0.0
        if discharge_kwth == 0.0 and charge_request_kwth > 0:
            charge_kwth = min(charge_request_kwth, self.charge_rate_max_kwth,
                              chargeable_kwth(stored_kwhth, self.capacity_kwhth, loss_kwth, hours), demand.spare_kwth)
        return charge_kwth, discharge_kwth, loss_kwth

    def initial_stored(self) -> float:
        """The initial SOC's share of the capacity, kWhth."""
        return self.capacity_kwhth * self.initial_soc_pct / 100.0

    def stored_after(self, stored: float, flows: Sequence[float], hours: float) -> float:
        """The cooling stored (kWhth) after the charge, discharge and standing loss read (kWth) held for ``hours``."""
        charge_kwth, discharge_kwth, loss_kwth = flows
        return stored_after_kwhth(stored, self.capacity_kwhth, charge_kwth, discharge_kwth, loss_kwth, hours)

    def plan_setpoints(self, column: PlanColumn, peers: Sequence[ChilledWaterTank]) -> dict[str, np.ndarray]:
        """The plan's charge and discharge (kWth)."""
        return {"charge_setpoint_kwth": column(f"{self.id}.charge_kwth"),
                "discharge_setpoint_kwth": column(f"{self.id}.discharge_kwth")}

    def standard_points(self) -> list[PointSpec]:
        return [
            PointSpec("stored_kwhth", "kWhth", M, low_limit=0, high_limit=self.capacity_kwhth),
            PointSpec("soc_pct", "%", M, low_limit=0, high_limit=100),
            PointSpec("charge_kwth", "kWth", M, low_limit=0, high_limit=self.charge_rate_max_kwth,
                      description="chilled water taken from the plant into the tank"),
            PointSpec("discharge_kwth", "kWth", M, low_limit=0, high_limit=self.discharge_rate_max_kwth,
                      description="cooling the tank gives up to the buildings' loop"),
            PointSpec("standing_loss_kwth", "kWth", M, low_limit=0),
            PointSpec("cooling_delivered_kwth", "kWth", M, low_limit=-self.charge_rate_max_kwth,
                      high_limit=self.discharge_rate_max_kwth,
                      description="net cooling to the buildings: discharge less charge, negative while charging"),
            PointSpec("charge_setpoint_kwth", "kWth", SP, writable=True, low_limit=0,
                      high_limit=self.charge_rate_max_kwth),
            PointSpec("discharge_setpoint_kwth", "kWth", SP, writable=True, low_limit=0,
                      high_limit=self.discharge_rate_max_kwth),
        ]
