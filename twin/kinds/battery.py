"""The battery kind: a stationary battery, + discharge."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, ClassVar, Literal

import numpy as np
from pydantic import model_validator

from twin.input_schema import PositiveFloat
from twin.kinds.base import SP, AssetBase, Fraction, M, Percent, PlanColumn, PlanTrace, PowerGroup
from twin.kinds.simulation import Member, Simulation, Stage, State, StepInputs
from twin.points import PointSpec

if TYPE_CHECKING:
    from twin.park import PlantSchedule


def _step(members: list[Member], inputs: StepInputs, unsupplied_kw: float, values: memoryview[float]) -> float:
    """The park's batteries (twin.kinds.simulation) follow their setpoint within power, SOC window and
    efficiencies; without a written one, the plant schedule's (:meth:`Battery.scheduled_kw`) towards the
    load the batteries before them leave of ``unsupplied_kw``. Cell temperature rises with the load and by a
    ``battery_overtemp`` fault's kelvins. Returns their power, kW (+ discharge)."""
    total = 0.0
    rng = inputs.rng
    for member in members:
        battery: Battery = member.asset
        slots, state = member.slots, member.state
        stored = state["stored_energy_kwh"]
        setpoint_kw = inputs.setpoints.get(slots["power_setpoint_kw"])
        if setpoint_kw is None:
            setpoint_kw = battery.scheduled_kw(inputs.schedule, inputs.hour, unsupplied_kw - total)
        power, stored_after = battery.follow(stored, setpoint_kw, inputs.step_h)
        load_share = abs(power) / max(battery.charge_power_max_kw, battery.discharge_power_max_kw)
        values[slots["power_kw"]] = power
        values[slots["soc_pct"]] = 100.0 * stored / battery.energy_capacity_kwh
        values[slots["stored_energy_kwh"]] = stored
        values[slots["cell_temp_max_c"]] = (27.0 + 8.0 * load_share
                                            + inputs.faults.get(("battery_overtemp", battery.id), 0.0)
                                            + 0.05 * rng.standard_normal())
        values[slots["cell_voltage_spread_v"]] = 0.02 + 0.03 * load_share
        values[slots["power_setpoint_kw"]] = setpoint_kw
        state["stored_energy_kwh"] = stored_after
        total += power
    return total


def _initial_state(battery: Battery) -> State:
    return {"stored_energy_kwh": battery.initial_stored()}


class Battery(AssetBase):
    """A stationary battery. Power is positive when discharging (OpenEMS convention)."""

    kind: Literal["battery"] = "battery"
    kind_label: ClassVar[str] = "Battery"
    power_point: ClassVar[str] = "power_kw"
    power_groups: ClassVar[tuple[PowerGroup, ...]] = (PowerGroup("battery", "source", "Battery", "#9467bd"),)
    stored_point: ClassVar[str] = "stored_energy_kwh"
    stored_pct_point: ClassVar[str] = "soc_pct"
    stored_pct_label: ClassVar[str] = "SOC"
    hold_setpoints: ClassVar[Mapping[str, float]] = {"power_setpoint_kw": 0.0}
    storage_flow_points: ClassVar[tuple[str, ...]] = ("power_kw",)
    plan_traces: ClassVar[tuple[PlanTrace, ...]] = (
        PlanTrace("power_setpoint_kw", "power kW (+ discharge)", "#198754"),)
    simulation: ClassVar[Simulation] = Simulation(Stage.SUPPLY, _step, _initial_state,
                                                  continued={"stored_energy_kwh": False})
    energy_capacity_kwh: PositiveFloat
    charge_power_max_kw: PositiveFloat
    discharge_power_max_kw: PositiveFloat
    charge_efficiency: Fraction = 0.95
    discharge_efficiency: Fraction = 0.95
    soc_min_pct: Percent = 10.0
    soc_max_pct: Percent = 90.0
    initial_soc_pct: Percent = 50.0

    @model_validator(mode="after")
    def _soc_window(self) -> Battery:
        if self.soc_min_pct >= self.soc_max_pct:
            raise ValueError("soc_min_pct must be below soc_max_pct")
        if not self.soc_min_pct <= self.initial_soc_pct <= self.soc_max_pct:
            raise ValueError("initial_soc_pct must lie inside the SOC window")
        return self

    def scheduled_kw(self, schedule: PlantSchedule, hour: float, unsupplied_kw: float) -> float:
        """The plant schedule's setpoint at this local hour of day, kW (+ discharge): charge at the schedule's
        share of the charge power in its charge window; discharge at its share of the discharge power in its
        discharge windows, no more than ``unsupplied_kw`` (the battery does not export); 0 otherwise."""
        if schedule.battery_charge.contains(hour):
            return -schedule.battery_power_fraction * self.charge_power_max_kw
        if any(w.contains(hour) for w in schedule.battery_discharge):
            return min(schedule.battery_power_fraction * self.discharge_power_max_kw, max(0.0, unsupplied_kw))
        return 0.0

    def follow(self, stored_kwh: float, setpoint_kw: float, hours: float) -> tuple[float, float]:
        """The battery holding ``setpoint_kw`` (+ discharge) for ``hours`` from ``stored_kwh``: (the power it
        delivers, kW, within its power limits and SOC window; the energy stored afterwards, kWh, after the
        charge or discharge efficiency)."""
        min_kwh, max_kwh = self.stored_window_kwh()
        if setpoint_kw >= 0:
            power_kw = min(setpoint_kw, self.discharge_power_max_kw,
                           max(0.0, (stored_kwh - min_kwh) * self.discharge_efficiency / hours))
            return power_kw, stored_kwh - power_kw / self.discharge_efficiency * hours
        power_kw = -min(-setpoint_kw, self.charge_power_max_kw,
                        max(0.0, (max_kwh - stored_kwh) / (self.charge_efficiency * hours)))
        return power_kw, stored_kwh - power_kw * self.charge_efficiency * hours

    @classmethod
    def park_summary(cls, assets: Sequence[Battery]) -> str:
        """The batteries' energy capacity."""
        return f"battery {sum(battery.energy_capacity_kwh for battery in assets):,.0f} kWh"

    def stored_window_kwh(self) -> tuple[float, float]:
        """The least and the most energy the SOC window lets the battery hold, kWh."""
        return (self.energy_capacity_kwh * self.soc_min_pct / 100.0,
                self.energy_capacity_kwh * self.soc_max_pct / 100.0)

    def initial_stored(self) -> float:
        """The initial SOC's share of the capacity, kWh."""
        return self.energy_capacity_kwh * self.initial_soc_pct / 100.0

    def stored_after(self, stored: float, flows: Sequence[float], hours: float) -> float:
        """The energy stored (kWh) after the battery has held the power read (kW, + discharge) for ``hours``."""
        (power_kw,) = flows
        return self.follow(stored, power_kw, hours)[1]

    def plan_setpoints(self, column: PlanColumn, peers: Sequence[Battery]) -> dict[str, np.ndarray]:
        """The plan's power setpoint (kW, + discharge)."""
        return {"power_setpoint_kw": column(f"{self.id}.power_setpoint_kw")}

    def standard_points(self) -> list[PointSpec]:
        return [
            PointSpec("power_kw", "kW", M, low_limit=-self.charge_power_max_kw, high_limit=self.discharge_power_max_kw,
                      description="positive discharging, negative charging"),
            PointSpec("soc_pct", "%", M, low_limit=0, high_limit=100),
            PointSpec("stored_energy_kwh", "kWh", M, low_limit=0, high_limit=self.energy_capacity_kwh),
            PointSpec("cell_temp_max_c", "degC", M, low_limit=-20, high_limit=80),
            PointSpec("cell_voltage_spread_v", "V", M, low_limit=0, high_limit=1),
            PointSpec("power_setpoint_kw", "kW", SP, writable=True, low_limit=-self.charge_power_max_kw,
                      high_limit=self.discharge_power_max_kw, description="positive discharge, negative charge"),
        ]
