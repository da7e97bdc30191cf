"""The park model: Park -> Building -> Asset, with the site and the plant's local schedule.

These pydantic models are both the schema of the park YAML and the objects
the rest of ParkTwin works with. Cross-object rules (unique ids, exactly one
grid meter, an ice tank needs an ice-making chiller) are checked by
:meth:`Park.consistency_issues`, which reports each problem with its field path.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import time
from functools import cached_property
from typing import Annotated, Literal

from pydantic import Field, model_validator

from twin.input_schema import InputModel
from twin.kinds import Asset, kinds
from twin.kinds.base import AssetBase, Role
from twin.points import Point, point_id

Hour = Annotated[float, Field(ge=0, le=24)]
FieldPath = tuple[str | int, ...]


class Site(InputModel):
    """Where the park is. The time zone is used for tariffs, schedules and display only."""

    latitude_deg: Annotated[float, Field(ge=-90, le=90)]
    longitude_deg: Annotated[float, Field(ge=-180, le=180)]
    altitude_m: Annotated[float, Field(ge=-500, le=9000)] = 0.0
    """Metres above sea level: from below the Dead Sea shore (-430 m) to above Everest's summit (8,849 m)."""
    timezone: str

    @model_validator(mode="after")
    def _known_timezone(self) -> Site:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {self.timezone!r} (use an IANA name such as Asia/Shanghai)") from None
        return self


class HourWindow(InputModel):
    """A daily window in local time, [start_h, end_h); it may wrap past midnight."""

    start_h: Hour
    end_h: Hour

    def contains(self, hour_of_day: float) -> bool:
        if self.start_h <= self.end_h:
            return self.start_h <= hour_of_day < self.end_h
        return hour_of_day >= self.start_h or hour_of_day < self.end_h


class Occupancy(InputModel):
    """When a building is occupied, in local time."""

    weekday: HourWindow = HourWindow(start_h=8, end_h=19)
    weekend_fraction: Annotated[float, Field(ge=0, le=1)] = 0.2


class Building(InputModel):
    """A building with its assets and the loads that are not separately metered.

    cooling_design_load_kwth: cooling the building needs at design outdoor
    temperature and full occupancy, served by the park's chilled-water plant.
    plug_load_peak_kw / plug_load_base_kw: tenant plug loads when occupied / unoccupied.
    """

    id: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=48)]
    name: str = ""
    floor_area_m2: Annotated[float, Field(ge=0)] = 0.0
    cooling_design_load_kwth: Annotated[float, Field(ge=0)] = 0.0
    plug_load_peak_kw: Annotated[float, Field(ge=0)] = 0.0
    plug_load_base_kw: Annotated[float, Field(ge=0)] = 0.0
    occupancy: Occupancy = Occupancy()
    assets: list[Asset] = []

    def assets_of(self, cls: type[AssetBase]) -> list:
        return [a for a in self.assets if isinstance(a, cls)]


class PlantSchedule(InputModel):
    """The plant's own time-of-day control, used for every setpoint nobody has written.

    It stands for the schedule a building management system runs on site:
    make ice in the valley window, melt it first in the melt windows, charge
    the battery in the valley and discharge it in the peak windows.
    """

    ice_charge: HourWindow = HourWindow(start_h=0, end_h=8)
    ice_melt: list[HourWindow] = [HourWindow(start_h=10, end_h=12), HourWindow(start_h=14, end_h=19)]
    battery_charge: HourWindow = HourWindow(start_h=0, end_h=8)
    battery_discharge: list[HourWindow] = [HourWindow(start_h=10, end_h=12), HourWindow(start_h=14, end_h=19)]
    battery_power_fraction: Annotated[float, Field(ge=0, le=1)] = 0.5

    def cooling_storage_kwth(self, hour: float, charge_max_kwth: float,
                             discharge_max_kwth: float) -> tuple[float, float]:
        """The charge and discharge this schedule asks of cooling storage at this local hour of day, kWth, given
        the storage's largest rates: the full charge rate in the ice-charge window, the full discharge rate in
        the melt windows, else 0. Every cooling-storage kind follows these windows, ice or chilled water."""
        charge_kwth = charge_max_kwth if self.ice_charge.contains(hour) else 0.0
        discharge_kwth = discharge_max_kwth if any(w.contains(hour) for w in self.ice_melt) else 0.0
        return charge_kwth, discharge_kwth


MonthlyValues = Annotated[list[Annotated[float, Field(ge=-90, le=60)]], Field(min_length=12, max_length=12)]
"""Twelve monthly air temperatures or swings, degC, January first, within the extremes ever measured."""


class WeatherSource(InputModel):
    """Weather for the simulator: clear sky with seeded clouds, or a TMY3 file.

    For clear sky, air temperature follows the monthly normals given here
    (daily mean and daily swing, degC, January first); without them, the
    normals of Shenzhen, where the demo park stands.
    """

    source: Literal["clearsky", "tmy3"] = "clearsky"
    file: str | None = None
    cloudiness: Annotated[float, Field(ge=0, le=1)] = 0.2
    monthly_mean_temp_c: MonthlyValues | None = None
    monthly_temp_swing_c: MonthlyValues | None = None

    @model_validator(mode="after")
    def _file_for_tmy3(self) -> WeatherSource:
        if self.source == "tmy3" and not self.file:
            raise ValueError("source tmy3 needs file: the path of a TMY3 CSV")
        if (self.monthly_mean_temp_c is None) != (self.monthly_temp_swing_c is None):
            raise ValueError("monthly_mean_temp_c and monthly_temp_swing_c go together")
        return self


class WeatherForecastSource(InputModel):
    """Where the weather forecast that live plans are made on comes from (energy.weather_forecast).

    ``persistence`` (default): clear sky for the site scaled by the clearness the weather station
    measured over the last 24 hours, temperature as measured the same hour a day earlier.
    ``csv``: a weather CSV (``file``, relative to the park file) that the site refreshes from its
    weather service; re-read whenever it changes. ``tmy``: the park's TMY3 weather (``weather``
    must be a ``tmy3`` source).
    """

    source: Literal["persistence", "csv", "tmy"] = "persistence"
    file: str | None = None

    @model_validator(mode="after")
    def _file_for_csv(self) -> WeatherForecastSource:
        if self.source == "csv" and not self.file:
            raise ValueError("source csv needs file: the path of the weather forecast CSV")
        if self.source != "csv" and self.file:
            raise ValueError(f"file is only read by source csv, not {self.source}")
        return self


class SimulationSettings(InputModel):
    """Simulator settings: step length, random seed (a non-negative integer, as numpy's generators take),
    EV session rate."""

    step_s: Annotated[int, Field(ge=1, le=3600)] = 60
    seed: Annotated[int, Field(ge=0)] = 1
    ev_sessions_per_charger_per_day: Annotated[float, Field(ge=0, le=20)] = 1.5


class DispatchSettings(InputModel):
    """How the park is operated live (optimizer.operation): the local time each day at which the next
    operating day's plan is made for a trader's review, "HH:MM"."""

    review_time: Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")] = "14:00"

    @property
    def review_time_local(self) -> time:
        hour, minute = self.review_time.split(":")
        return time(int(hour), int(minute))


class Park(InputModel):
    """The whole park: site, buildings, and where its history and tariff live."""

    name: str
    site: Site
    history: str | None = None
    tariff: str | None = None
    point_maps: str | None = None
    """Folder of the park's device point maps (one YAML file per device), relative to the park file."""
    weather: WeatherSource = WeatherSource()
    weather_forecast: WeatherForecastSource = WeatherForecastSource()
    plant_schedule: PlantSchedule = PlantSchedule()
    simulation: SimulationSettings = SimulationSettings()
    dispatch: DispatchSettings = DispatchSettings()
    devices: Literal["simulated", "field"] = "simulated"
    """Where `parktwin run` reads and writes: the park simulator's devices, served on the point maps' ports
    (the demo), or the real devices the point maps name, on the wall clock."""
    buildings: Annotated[list[Building], Field(min_length=1)]

    def consistency_issues(self) -> list[tuple[FieldPath, str]]:
        """Rules that span objects, each as (field path, reason); empty when consistent."""
        issues: list[tuple[FieldPath, str]] = []
        for dup in _duplicates(b.id for b in self.buildings):
            issues.append((("buildings",), f"duplicate building id {dup!r}"))
        seen_points: set[str] = set()
        seen_assets: set[str] = set()
        for bi, building in enumerate(self.buildings):
            for ai, asset in enumerate(building.assets):
                if asset.id in seen_assets:
                    issues.append((("buildings", bi, "assets", ai, "id"),
                                   f"duplicate asset id {asset.id!r} (asset ids are unique in the park)"))
                    continue
                seen_assets.add(asset.id)
                for pi, spec in enumerate(asset.point_specs()):
                    pid = point_id(building.id, asset.id, spec.name)
                    if pid in seen_points:
                        standard = len(asset.standard_points())
                        loc: FieldPath = ("buildings", bi, "assets", ai)
                        if pi >= standard:
                            loc += ("extra_points", pi - standard, "name")
                        issues.append((loc, f"duplicate point id {pid!r}"))
                    seen_points.add(pid)
        grid_meters = self.assets_with_role(Role.GRID_POWER)
        if len(grid_meters) != 1:
            issues.append((("buildings",),
                           f"the park needs exactly one meter with measures: grid, found {len(grid_meters)}"))
        if self.weather_forecast.source == "tmy" and self.weather.source != "tmy3":
            issues.append((("weather_forecast", "source"),
                           ("source tmy forecasts the park's TMY3 weather, "
                            f"but weather.source is {self.weather.source}")))
        assets = [asset for _, asset in self.iter_assets()]
        issues += [(("buildings",), reason) for cls in kinds() for reason in cls.park_issues(assets)]
        return issues

    def assets_of(self, cls: type[AssetBase]) -> list:
        """Every asset of one kind, in file order."""
        return [a for b in self.buildings for a in b.assets if isinstance(a, cls)]

    def iter_assets(self) -> Iterator[tuple[Building, Asset]]:
        for building in self.buildings:
            for asset in building.assets:
                yield building, asset

    def assets_with_role(self, role: Role) -> list[AssetBase]:
        """Every asset with a point playing ``role`` (:class:`twin.kinds.base.Role`), in file order."""
        return [asset for _, asset in self.iter_assets() if role in asset.roles()]

    def role_points(self, role: Role) -> list[str]:
        """Ids of the points playing ``role`` (:class:`twin.kinds.base.Role`), in file order."""
        return [point_id(building.id, asset.id, asset.roles()[role])
                for building, asset in self.iter_assets() if role in asset.roles()]

    def role_point_pairs(self, first: Role, second: Role) -> list[tuple[str, str]]:
        """For every asset whose points play both roles, in file order: the ids of the points playing them."""
        return [(point_id(building.id, asset.id, asset.roles()[first]),
                 point_id(building.id, asset.id, asset.roles()[second]))
                for building, asset in self.iter_assets() if first in asset.roles() and second in asset.roles()]

    @cached_property
    def points(self) -> dict[str, Point]:
        """Every point of the park by id, in file order."""
        result: dict[str, Point] = {}
        for building, asset in self.iter_assets():
            for spec in asset.point_specs():
                pid = point_id(building.id, asset.id, spec.name)
                result[pid] = Point(pid, building.id, asset.id, asset.kind, spec)
        return result

    def building_of(self, asset_id: str) -> Building:
        for building, asset in self.iter_assets():
            if asset.id == asset_id:
                return building
        raise KeyError(asset_id)

    def asset(self, asset_id: str) -> AssetBase:
        for _, asset in self.iter_assets():
            if asset.id == asset_id:
                return asset
        raise KeyError(asset_id)

    def summary(self) -> str:
        """What the park has, in one line: each registered kind's summary of its assets here, in park order
        of the kinds (twin.kinds.base.AssetBase.park_summary)."""
        return "; ".join(phrase for cls in kinds() if (phrase := cls.park_summary(self.assets_of(cls))) is not None)


def _duplicates(values) -> list:
    return [value for value, count in Counter(values).items() if count > 1]
