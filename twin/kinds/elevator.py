"""The elevator kind: a traction elevator whose load follows passenger traffic."""

from __future__ import annotations

from typing import ClassVar, Literal

from twin.input_schema import NonNegativeFloat, PositiveFloat
from twin.kinds.base import ST, AssetBase, M, PowerGroup
from twin.points import PointSpec


class Elevator(AssetBase):
    """A traction elevator whose electric load follows passenger traffic."""

    kind: Literal["elevator"] = "elevator"
    kind_label: ClassVar[str] = "Elevator"
    power_point: ClassVar[str] = "power_kw"
    power_groups: ClassVar[tuple[PowerGroup, ...]] = (PowerGroup("elevators", "load", "Elevators", "#8c564b"),)
    rated_kw: PositiveFloat
    idle_kw: NonNegativeFloat = 1.0

    def standard_points(self) -> list[PointSpec]:
        return [
            PointSpec("power_kw", "kW", M, low_limit=0, high_limit=1.5 * self.rated_kw),
            PointSpec("in_service", "bool", ST),
            PointSpec("fault_code", "code", ST, low_limit=0, description="0 means no fault"),
            PointSpec("trips_count", "count", M, low_limit=0),
        ]
