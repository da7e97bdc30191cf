"""The lighting kind: a switched, dimmable lighting circuit."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field

from twin.input_schema import PositiveFloat
from twin.kinds.base import SP, ST, AssetBase, M, PowerGroup
from twin.points import PointSpec


class Lighting(AssetBase):
    """A lighting circuit switched by an occupancy schedule and dimmable."""

    kind: Literal["lighting"] = "lighting"
    kind_label: ClassVar[str] = "Lighting"
    power_point: ClassVar[str] = "power_kw"
    power_groups: ClassVar[tuple[PowerGroup, ...]] = (PowerGroup("lighting", "load", "Lighting", "#e0a800"),)
    rated_kw: PositiveFloat
    night_fraction: Annotated[float, Field(ge=0, le=1)] = 0.1

    def standard_points(self) -> list[PointSpec]:
        return [
            PointSpec("power_kw", "kW", M, low_limit=0, high_limit=1.2 * self.rated_kw),
            PointSpec("on", "bool", ST),
            PointSpec("dimming_pct", "%", SP, writable=True, low_limit=0, high_limit=100),
        ]
