"""The EV charger kind: a charging point serving arriving sessions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Literal

from twin.input_schema import PositiveFloat
from twin.kinds.base import SP, ST, AssetBase, M, PowerGroup
from twin.points import PointSpec


class EVCharger(AssetBase):
    """An EV charging point; sessions arrive, charge within the power limit, and leave."""

    kind: Literal["ev_charger"] = "ev_charger"
    kind_label: ClassVar[str] = "EV charger"
    power_point: ClassVar[str] = "power_kw"
    power_groups: ClassVar[tuple[PowerGroup, ...]] = (PowerGroup("ev", "load", "EV charging", "#2ca02c"),)
    power_max_kw: PositiveFloat
    connector: Literal["ac", "dc"] = "ac"

    @classmethod
    def park_summary(cls, assets: Sequence[EVCharger]) -> str:
        """How many charging points."""
        return f"{len(assets)} EV chargers"

    def standard_points(self) -> list[PointSpec]:
        return [
            PointSpec("power_kw", "kW", M, low_limit=0, high_limit=1.05 * self.power_max_kw),
            PointSpec("connected", "bool", ST),
            PointSpec("session_energy_kwh", "kWh", M, low_limit=0),
            PointSpec("power_limit_kw", "kW", SP, writable=True, low_limit=0, high_limit=self.power_max_kw),
        ]
