"""The PV array kind: a rooftop PV array with its inverter."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, ClassVar, Literal

import numpy as np
from pydantic import Field

from twin.input_schema import PositiveFloat
from twin.kinds.base import SP, AssetBase, M, PlanColumn, PowerGroup, Role
from twin.kinds.pvwatts import PVWattsParams
from twin.kinds.simulation import Member, Simulation, Stage, State, StepInputs
from twin.points import PointSpec

CURTAILED_MIN_KW = 1e-3
"""Least PV curtailment (kW) in a plan step that limits the arrays: below it, solver round-off."""


def _step(members: list[Member], inputs: StepInputs, unsupplied_kw: float, values: memoryview[float]) -> float:
    """The park's PV arrays (twin.kinds.simulation): the environment's AC power less the strings a
    ``pv_string_outage`` fault takes out, capped by the power limit in force. Returns their power, kW."""
    total = 0.0
    conditions = inputs.conditions
    for member in members:
        array: PVArray = member.asset
        slots, state = member.slots, member.state
        ac_at, poa_at, cell_at = member.columns
        ac_kw = conditions[ac_at]
        strings_lost = inputs.faults.get(("pv_string_outage", array.id))
        if strings_lost is not None:
            ac_kw *= max(0.0, 1.0 - strings_lost / array.strings_count)
        limit_pct = inputs.setpoints.get(slots["power_limit_pct"], 100.0)
        ac_kw = min(ac_kw, array.inverter_ac_kw * limit_pct / 100.0)
        values[slots["ac_power_kw"]] = ac_kw
        values[slots["energy_kwh"]] = state["energy_kwh"]
        values[slots["poa_irradiance_wm2"]] = conditions[poa_at]
        values[slots["cell_temp_c"]] = conditions[cell_at]
        values[slots["power_limit_pct"]] = limit_pct
        state["energy_kwh"] += ac_kw * inputs.step_h
        total += ac_kw
    return total


def _initial_state(array: PVArray) -> State:
    return {"energy_kwh": 0.0}


def _condition_columns(array: PVArray) -> tuple[str, ...]:
    """The environment's AC power (kW, before curtailment and faults), plane-of-array irradiance (W/m2) and
    cell temperature (degC) of the array."""
    return f"{array.id}.ac_kw", f"{array.id}.poa_wm2", f"{array.id}.cell_temp_c"


class PVArray(AssetBase):
    """A rooftop PV array with its inverter, described by PVWatts parameters.

    azimuth_deg follows pvlib: 180 faces south. losses_pct is the PVWatts
    system loss; gamma_pdc_per_c the DC power temperature coefficient.
    """

    kind: Literal["pv_array"] = "pv_array"
    kind_label: ClassVar[str] = "PV array"
    power_point: ClassVar[str] = "ac_power_kw"
    power_groups: ClassVar[tuple[PowerGroup, ...]] = (PowerGroup("pv", "source", "PV", "#ff7f0e"),)
    point_roles: ClassVar[Mapping[Role, str]] = {Role.PV_POWER: "ac_power_kw", Role.PV_ENERGY_COUNTER: "energy_kwh"}
    plan_shared: ClassVar[bool] = True
    simulation: ClassVar[Simulation] = Simulation(Stage.SUPPLY, _step, _initial_state, continued={"energy_kwh": False},
                                                  condition_columns=_condition_columns)
    dc_capacity_kw: PositiveFloat
    inverter_ac_kw: PositiveFloat
    tilt_deg: Annotated[float, Field(ge=0, le=90)]
    azimuth_deg: Annotated[float, Field(ge=0, lt=360)]
    losses_pct: Annotated[float, Field(ge=0, lt=100)] = 14.0
    gamma_pdc_per_c: Annotated[float, Field(ge=-0.01, le=0)] = -0.0037
    strings_count: Annotated[int, Field(ge=1)] = 10

    @classmethod
    def park_summary(cls, assets: Sequence[PVArray]) -> str:
        """The arrays' DC capacity."""
        return f"PV {sum(array.dc_capacity_kw for array in assets):,.0f} kWp"

    def fault_magnitude_max(self) -> Mapping[str, float]:
        """A string outage loses at most the array's strings."""
        return {"pv_string_outage": self.strings_count}

    def pvwatts(self) -> PVWattsParams:
        """The array's fields, PVWatts's inverter efficiency and temperature model defaults."""
        return PVWattsParams(
            dc_capacity_kw=self.dc_capacity_kw, tilt_deg=self.tilt_deg, azimuth_deg=self.azimuth_deg,
            inverter_ac_kw=self.inverter_ac_kw, losses_pct=self.losses_pct, gamma_pdc_per_c=self.gamma_pdc_per_c,
        )

    def plan_setpoints(self, column: PlanColumn, peers: Sequence[PVArray]) -> dict[str, np.ndarray]:
        """The power limit (%): in the steps the plan curtails the park's PV, every array limited to the share
        of the park's inverter rating the plan uses; no limit (100 %) otherwise."""
        rating_kw = sum(array.inverter_ac_kw for array in peers)
        share_pct = 100.0 * np.minimum(1.0, column("pv_used_kw") / rating_kw)
        return {"power_limit_pct": np.where(column("pv_curtailed_kw") > CURTAILED_MIN_KW, share_pct, 100.0)}

    def standard_points(self) -> list[PointSpec]:
        return [
            PointSpec("ac_power_kw", "kW", M, low_limit=0, high_limit=1.05 * self.inverter_ac_kw),
            PointSpec("energy_kwh", "kWh", M, low_limit=0, description="lifetime AC energy counter"),
            PointSpec("poa_irradiance_wm2", "W/m2", M, low_limit=0, high_limit=1500),
            PointSpec("cell_temp_c", "degC", M, low_limit=-20, high_limit=95),
            PointSpec("power_limit_pct", "%", SP, writable=True, low_limit=0, high_limit=100,
                      description="active power limit as a share of inverter rating"),
        ]
