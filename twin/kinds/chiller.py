"""The chiller kind: a water-cooled chiller making chilled water or ice."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, ClassVar, Literal

import numpy as np
from pydantic import Field, model_validator

from twin.input_schema import PositiveFloat
from twin.kinds.base import SP, ST, AssetBase, M, Percent, PlanColumn, PowerGroup, Role
from twin.kinds.simulation import Member, Simulation, Stage, State, StepInputs
from twin.plant import CMD_AUTO, CMD_ICE, GLYCOL_SUPPLY_C, MODE_ICE, MODE_OFF, PlantOperation, chiller_cop
from twin.points import PointSpec

ICE_PLANNED_MIN_KWTH = 1e-3
"""Least ice making (kWth) in a plan step that puts the chiller in ice mode: below it, solver round-off."""
CHW_LOOP_IDLE_C = 13.0
"""Temperature an idle chiller's sensors settle to, degC."""


def _step(members: list[Member], inputs: StepInputs, plant: PlantOperation, values: memoryview[float]) -> float:
    """The park's chillers in the plant's operation (twin.kinds.simulation; ``plant.step.chillers`` in the
    members' order): COP at the outdoor temperature and setpoint in force (times a ``chiller_cop_drop``
    fault's factor), electric power, chilled-water temperatures, starts counted. Returns their power, kW."""
    total_kw = 0.0
    for member, command, result in zip(members, plant.mode_commands, plant.step.chillers):
        chiller: Chiller = member.asset
        slots, state = member.slots, member.state
        setpoint_c = inputs.setpoints.get(slots["chw_setpoint_c"], chiller.chw_setpoint_c)
        running = result.cooling_kwth > 0
        cop = chiller_cop(chiller, result.mode, result.part_load, inputs.outdoor_temp_c, setpoint_c)
        cop_drop = inputs.faults.get(("chiller_cop_drop", chiller.id))
        if cop_drop is not None:
            cop *= cop_drop
        power = result.cooling_kwth / cop if running else 0.0
        if running and not state["running"]:
            state["starts_count"] += 1
        state["running"] = running
        supply_c, return_c = _chw_temperatures(chiller, result.mode if running else MODE_OFF, result.part_load,
                                               setpoint_c, plant.step.unmet_kwth, plant.load_kwth,
                                               inputs.faults.get(("chw_low_delta_t", chiller.id)), inputs.rng)
        values[slots["running"]] = float(running)
        values[slots["mode"]] = float(result.mode if running else MODE_OFF)
        values[slots["power_kw"]] = power
        values[slots["cooling_kwth"]] = result.cooling_kwth
        values[slots["cop"]] = cop if running else 0.0
        values[slots["chw_supply_temp_c"]] = supply_c
        values[slots["chw_return_temp_c"]] = return_c
        values[slots["starts_count"]] = state["starts_count"]
        values[slots["chw_setpoint_c"]] = setpoint_c
        values[slots["mode_cmd"]] = float(command)
        total_kw += power
    return total_kw


def _chw_temperatures(chiller: Chiller, mode: int, part_load: float, setpoint_c: float, unmet_kwth: float,
                      load_kwth: float, low_delta_t_k: float | None, rng: np.random.Generator) -> tuple[float, float]:
    """Supply and return temperature, degC: setpoint (rising when load is unmet), glycol in ice mode; the
    delta-T of a ``chw_low_delta_t`` fault (``low_delta_t_k``, K) while it lasts."""
    noise = 0.05 * rng.standard_normal()
    if mode == MODE_OFF:
        return CHW_LOOP_IDLE_C + noise, CHW_LOOP_IDLE_C + noise
    if mode == MODE_ICE:
        supply = GLYCOL_SUPPLY_C + noise
        return supply, supply + 0.5 + 3.0 * part_load
    rise_k = chiller.design_delta_t_k * unmet_kwth / load_kwth if load_kwth > 0 else 0.0
    supply = setpoint_c + rise_k + noise
    delta_t = low_delta_t_k if low_delta_t_k is not None else chiller.design_delta_t_k * (0.6 + 0.4 * part_load)
    return supply, supply + delta_t


def _initial_state(chiller: Chiller) -> State:
    return {"starts_count": 0.0, "running": False}


class Chiller(AssetBase):
    """A water-cooled chiller that makes chilled water directly or, in ice mode, charges an ice tank.

    The two modes have their own capacity and COP (DOMAIN.md: ice making cuts
    both by a quarter to a third). ``ice_capacity_kwth`` None means the chiller
    cannot make ice. A chiller runs in one mode at a time.
    """

    kind: Literal["chiller"] = "chiller"
    kind_label: ClassVar[str] = "Chiller"
    power_point: ClassVar[str] = "power_kw"
    power_groups: ClassVar[tuple[PowerGroup, ...]] = (PowerGroup("chillers", "load", "Chillers", "#1f77b4"),)
    point_roles: ClassVar[Mapping[Role, str]] = {Role.CHILLER_POWER: "power_kw", Role.CHILLER_COOLING: "cooling_kwth",
                                                 Role.CHILLER_MODE: "mode", Role.CHILLER_MODE_COMMAND: "mode_cmd"}
    simulation: ClassVar[Simulation] = Simulation(Stage.PLANT, _step, _initial_state,
                                                  continued={"starts_count": True})
    cooling_capacity_kwth: PositiveFloat
    cop_rated: Annotated[float, Field(gt=1, le=12)] = 5.5
    ice_capacity_kwth: PositiveFloat | None = None
    ice_cop_rated: Annotated[float, Field(gt=1, le=12)] | None = None
    min_part_load_pct: Percent = 20.0
    chw_setpoint_c: Annotated[float, Field(ge=4, le=15)] = 7.0
    design_delta_t_k: PositiveFloat = 5.5

    @model_validator(mode="after")
    def _ice_mode_consistent(self) -> Chiller:
        if (self.ice_capacity_kwth is None) != (self.ice_cop_rated is None):
            raise ValueError("ice_capacity_kwth and ice_cop_rated go together: give both or neither")
        if self.ice_capacity_kwth is not None and self.ice_capacity_kwth > self.cooling_capacity_kwth:
            raise ValueError("ice_capacity_kwth cannot exceed cooling_capacity_kwth (ice mode lowers capacity)")
        return self

    @property
    def makes_ice(self) -> bool:
        return self.ice_capacity_kwth is not None

    def fault_magnitude_max(self) -> Mapping[str, float]:
        """A low delta-T (K) is at most the design delta-T: above it, it is no low delta-T."""
        return {"chw_low_delta_t": self.design_delta_t_k}

    def plan_setpoints(self, column: PlanColumn, peers: Sequence[Chiller]) -> dict[str, np.ndarray]:
        """An ice-making chiller's mode command: ice making in the steps the plan makes ice on it, automatic
        otherwise; a chiller that makes no ice gets none."""
        if not self.makes_ice:
            return {}
        return {"mode_cmd": np.where(column(f"{self.id}.ice_kwth") > ICE_PLANNED_MIN_KWTH,
                                     float(CMD_ICE), float(CMD_AUTO))}

    def standard_points(self) -> list[PointSpec]:
        return [
            PointSpec("running", "bool", ST, description="1 when the compressor runs"),
            PointSpec("mode", "enum", ST, low_limit=0, high_limit=2,
                      description="0 off, 1 chilled water, 2 ice making"),
            PointSpec("power_kw", "kW", M, low_limit=0, high_limit=self.cooling_capacity_kwth),
            PointSpec("cooling_kwth", "kWth", M, low_limit=0, high_limit=1.5 * self.cooling_capacity_kwth),
            PointSpec("cop", "", M, low_limit=0, high_limit=15),
            PointSpec("chw_supply_temp_c", "degC", M, low_limit=-10, high_limit=30),
            PointSpec("chw_return_temp_c", "degC", M, low_limit=-10, high_limit=35),
            PointSpec("starts_count", "count", M, low_limit=0),
            PointSpec("chw_setpoint_c", "degC", SP, writable=True, low_limit=5, high_limit=12,
                      description="chilled-water supply setpoint"),
            PointSpec("mode_cmd", "enum", SP, writable=True, low_limit=0, high_limit=3,
                      description="0 automatic, 1 off, 2 chilled water, 3 ice making"),
        ]
