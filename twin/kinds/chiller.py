"""The chiller kind: a water-cooled chiller making chilled water or ice."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, ClassVar, Literal

import numpy as np
from pydantic import Field, model_validator

from twin.input_schema import PositiveFloat
from twin.kinds.base import SP, ST, AssetBase, M, Percent, PlanColumn, PowerGroup, Role
from twin.points import PointSpec

CMD_AUTO, CMD_OFF, CMD_DIRECT, CMD_ICE = 0, 1, 2, 3
"""Values of a chiller's ``mode_cmd`` point: automatic (the plant's own staging), off, chilled water, ice making."""
ICE_PLANNED_MIN_KWTH = 1e-3
"""Least ice making (kWth) in a plan step that puts the chiller in ice mode: below it, solver round-off."""


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
                                                 Role.CHILLER_MODE: "mode"}
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
