"""Points: the measurable or commandable quantities of an asset.

A point id is ``<building>.<asset>.<name>``, e.g. ``b1.chiller1.chw_supply_temp_c``.
The name carries the unit suffix (``_kw``, ``_kwh``, ``_kwth``, ``_c``, ``_pct``...).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class PointKind(StrEnum):
    """What a point is: a measured quantity, a commanded setpoint or a discrete status."""

    MEASUREMENT = "measurement"
    SETPOINT = "setpoint"
    STATUS = "status"


@dataclass(frozen=True, slots=True)
class PointSpec:
    """One point an asset kind exposes, before it is placed in a building.

    low_limit / high_limit: the safe range for a writable point (writes outside
    it are refused) or the plausible range of a measurement (values outside it
    are marked bad). None means unbounded on that side.
    """

    name: str
    unit: str
    kind: PointKind
    writable: bool = False
    low_limit: float | None = None
    high_limit: float | None = None
    description: str = ""

    def __post_init__(self) -> None:
        if self.writable and (self.low_limit is None or self.high_limit is None):
            raise ValueError(f"writable point {self.name} needs both safe limits")
        if self.low_limit is not None and self.high_limit is not None and self.low_limit > self.high_limit:
            raise ValueError(f"point {self.name}: low limit {self.low_limit} above high limit {self.high_limit}")


@dataclass(frozen=True, slots=True)
class Point:
    """A point of one asset in the park, addressed by its id."""

    id: str
    building_id: str
    asset_id: str
    asset_kind: str
    spec: PointSpec

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def unit(self) -> str:
        return self.spec.unit

    @property
    def kind(self) -> PointKind:
        return self.spec.kind

    @property
    def writable(self) -> bool:
        return self.spec.writable

    def within_limits(self, value: float) -> bool:
        """True when value lies inside the point's limits (inclusive)."""
        low, high = self.spec.low_limit, self.spec.high_limit
        return (low is None or value >= low) and (high is None or value <= high)


def point_id(building_id: str, asset_id: str, name: str) -> str:
    """The canonical point id ``building.asset.name``."""
    return f"{building_id}.{asset_id}.{name}"
