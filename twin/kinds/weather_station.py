"""The weather station kind: outdoor temperature and irradiance measured on site."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Literal

from twin.kinds.base import AssetBase, M, Role
from twin.points import PointSpec


class WeatherStation(AssetBase):
    """An on-site weather station."""

    kind: Literal["weather_station"] = "weather_station"
    kind_label: ClassVar[str] = "Weather station"
    point_roles: ClassVar[Mapping[Role, str]] = {Role.OUTDOOR_TEMP: "outdoor_temp_c", Role.GHI: "ghi_wm2"}

    def standard_points(self) -> list[PointSpec]:
        return [
            PointSpec("outdoor_temp_c", "degC", M, low_limit=-40, high_limit=60),
            PointSpec("ghi_wm2", "W/m2", M, low_limit=0, high_limit=1500),
        ]
