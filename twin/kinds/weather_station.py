"""The weather station kind: outdoor temperature and irradiance measured on site."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Literal

from twin.kinds.base import AssetBase, M, Role
from twin.kinds.simulation import Member, Simulation, Stage, StepInputs
from twin.points import PointSpec


def _step(members: list[Member], inputs: StepInputs, coupling: None, values: memoryview[float]) -> float:
    """The park's weather stations (twin.kinds.simulation): the outdoor temperature with sensor noise and
    the irradiance. They draw no power: returns 0 kW."""
    for member in members:
        slots = member.slots
        values[slots["outdoor_temp_c"]] = inputs.outdoor_temp_c + 0.1 * inputs.rng.standard_normal()
        values[slots["ghi_wm2"]] = inputs.ghi_wm2
    return 0.0


class WeatherStation(AssetBase):
    """An on-site weather station."""

    kind: Literal["weather_station"] = "weather_station"
    kind_label: ClassVar[str] = "Weather station"
    point_roles: ClassVar[Mapping[Role, str]] = {Role.OUTDOOR_TEMP: "outdoor_temp_c", Role.GHI: "ghi_wm2"}
    simulation: ClassVar[Simulation] = Simulation(Stage.SENSOR, _step)

    def standard_points(self) -> list[PointSpec]:
        return [
            PointSpec("outdoor_temp_c", "degC", M, low_limit=-40, high_limit=60),
            PointSpec("ghi_wm2", "W/m2", M, low_limit=0, high_limit=1500),
        ]
