"""Asset kinds of the park, one class each, with rated parameters in named units.

Each class is a pydantic model: the park YAML is validated against it, and
the validated object is the asset the rest of ParkTwin uses. Typical figures
come from ../shared/DOMAIN.md; every one can be overridden in the park file.

Each kind also lists the points it exposes (:meth:`AssetBase.standard_points`).
An asset may add points of its own under ``extra_points``.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field, model_validator

from twin.input_schema import FiniteFloat, InputModel, NonNegativeFloat, PositiveFloat
from twin.points import PointKind, PointSpec

M, SP, ST = PointKind.MEASUREMENT, PointKind.SETPOINT, PointKind.STATUS

Identifier = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=48)]
Fraction = Annotated[float, Field(gt=0, le=1)]
Percent = Annotated[float, Field(ge=0, le=100)]


class ExtraPoint(InputModel):
    """A point an integrator adds to an asset beyond its kind's standard points."""

    name: Identifier
    unit: str
    kind: PointKind = PointKind.MEASUREMENT
    writable: bool = False
    low_limit: FiniteFloat | None = None
    high_limit: FiniteFloat | None = None
    description: str = ""

    @model_validator(mode="after")
    def _writable_needs_limits(self) -> ExtraPoint:
        if self.writable and (self.low_limit is None or self.high_limit is None):
            raise ValueError("a writable point needs low_limit and high_limit")
        if self.low_limit is not None and self.high_limit is not None and self.low_limit > self.high_limit:
            raise ValueError("low_limit is above high_limit")
        return self

    def to_spec(self) -> PointSpec:
        return PointSpec(self.name, self.unit, self.kind, self.writable, self.low_limit, self.high_limit,
                         self.description)


class AssetBase(InputModel):
    """Fields every asset has."""

    id: Identifier
    name: str = ""
    extra_points: list[ExtraPoint] = []

    kind_label: ClassVar[str] = ""

    def standard_points(self) -> list[PointSpec]:
        """The points every asset of this kind exposes."""
        raise NotImplementedError

    def point_specs(self) -> list[PointSpec]:
        """Standard points followed by the asset's extra points."""
        return self.standard_points() + [p.to_spec() for p in self.extra_points]


class Chiller(AssetBase):
    """A water-cooled chiller that makes chilled water directly or, in ice mode, charges an ice tank.

    The two modes have their own capacity and COP (DOMAIN.md: ice making cuts
    both by a quarter to a third). ``ice_capacity_kwth`` None means the chiller
    cannot make ice. A chiller runs in one mode at a time.
    """

    kind: Literal["chiller"] = "chiller"
    kind_label: ClassVar[str] = "Chiller"
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


class IceTank(AssetBase):
    """An ice storage tank charged by chillers in ice mode and melted to serve cooling load.

    Inventory balance per step: d(inventory) = charge - melt - standing loss,
    where melt is the thermal energy drawn from the ice and the cooling it
    delivers is ``melt * melt_effectiveness``.
    """

    kind: Literal["ice_tank"] = "ice_tank"
    kind_label: ClassVar[str] = "Ice tank"
    capacity_kwhth: PositiveFloat
    charge_rate_max_kwth: PositiveFloat
    melt_rate_max_kwth: PositiveFloat
    standing_loss_pct_per_h: Annotated[float, Field(ge=0, le=5)] = 0.15
    melt_effectiveness: Fraction = 0.95
    initial_soc_pct: Percent = 20.0

    def inventory_after_kwhth(self, inventory_kwhth: float, charge_kwth: float, melt_kwth: float,
                              standing_loss_kwth: float, hours: float) -> float:
        """The inventory after ``hours`` of these flows (the balance of the class docstring), kWhth, within
        0 and the capacity."""
        change_kwhth = (charge_kwth - melt_kwth - standing_loss_kwth) * hours
        return min(self.capacity_kwhth, max(0.0, inventory_kwhth + change_kwhth))

    def standard_points(self) -> list[PointSpec]:
        return [
            PointSpec("inventory_kwhth", "kWhth", M, low_limit=0, high_limit=self.capacity_kwhth),
            PointSpec("soc_pct", "%", M, low_limit=0, high_limit=100),
            PointSpec("charge_kwth", "kWth", M, low_limit=0, high_limit=self.charge_rate_max_kwth),
            PointSpec("melt_kwth", "kWth", M, low_limit=0, high_limit=self.melt_rate_max_kwth,
                      description="thermal power drawn from the ice"),
            PointSpec("cooling_delivered_kwth", "kWth", M, low_limit=0, high_limit=self.melt_rate_max_kwth),
            PointSpec("standing_loss_kwth", "kWth", M, low_limit=0),
            PointSpec("charge_setpoint_kwth", "kWth", SP, writable=True, low_limit=0,
                      high_limit=self.charge_rate_max_kwth),
            PointSpec("melt_setpoint_kwth", "kWth", SP, writable=True, low_limit=0,
                      high_limit=self.melt_rate_max_kwth),
        ]


class Lighting(AssetBase):
    """A lighting circuit switched by an occupancy schedule and dimmable."""

    kind: Literal["lighting"] = "lighting"
    kind_label: ClassVar[str] = "Lighting"
    rated_kw: PositiveFloat
    night_fraction: Annotated[float, Field(ge=0, le=1)] = 0.1

    def standard_points(self) -> list[PointSpec]:
        return [
            PointSpec("power_kw", "kW", M, low_limit=0, high_limit=1.2 * self.rated_kw),
            PointSpec("on", "bool", ST),
            PointSpec("dimming_pct", "%", SP, writable=True, low_limit=0, high_limit=100),
        ]


class Elevator(AssetBase):
    """A traction elevator whose electric load follows passenger traffic."""

    kind: Literal["elevator"] = "elevator"
    kind_label: ClassVar[str] = "Elevator"
    rated_kw: PositiveFloat
    idle_kw: NonNegativeFloat = 1.0

    def standard_points(self) -> list[PointSpec]:
        return [
            PointSpec("power_kw", "kW", M, low_limit=0, high_limit=1.5 * self.rated_kw),
            PointSpec("in_service", "bool", ST),
            PointSpec("fault_code", "code", ST, low_limit=0, description="0 means no fault"),
            PointSpec("trips_count", "count", M, low_limit=0),
        ]


class PVArray(AssetBase):
    """A rooftop PV array with its inverter, described by PVWatts parameters.

    azimuth_deg follows pvlib: 180 faces south. losses_pct is the PVWatts
    system loss; gamma_pdc_per_c the DC power temperature coefficient.
    """

    kind: Literal["pv_array"] = "pv_array"
    kind_label: ClassVar[str] = "PV array"
    dc_capacity_kw: PositiveFloat
    inverter_ac_kw: PositiveFloat
    tilt_deg: Annotated[float, Field(ge=0, le=90)]
    azimuth_deg: Annotated[float, Field(ge=0, lt=360)]
    losses_pct: Annotated[float, Field(ge=0, lt=100)] = 14.0
    gamma_pdc_per_c: Annotated[float, Field(ge=-0.01, le=0)] = -0.0037
    strings_count: Annotated[int, Field(ge=1)] = 10

    def standard_points(self) -> list[PointSpec]:
        return [
            PointSpec("ac_power_kw", "kW", M, low_limit=0, high_limit=1.05 * self.inverter_ac_kw),
            PointSpec("energy_kwh", "kWh", M, low_limit=0, description="lifetime AC energy counter"),
            PointSpec("poa_irradiance_wm2", "W/m2", M, low_limit=0, high_limit=1500),
            PointSpec("cell_temp_c", "degC", M, low_limit=-20, high_limit=95),
            PointSpec("power_limit_pct", "%", SP, writable=True, low_limit=0, high_limit=100,
                      description="active power limit as a share of inverter rating"),
        ]


class Battery(AssetBase):
    """A stationary battery. Power is positive when discharging (OpenEMS convention)."""

    kind: Literal["battery"] = "battery"
    kind_label: ClassVar[str] = "Battery"
    energy_capacity_kwh: PositiveFloat
    charge_power_max_kw: PositiveFloat
    discharge_power_max_kw: PositiveFloat
    charge_efficiency: Fraction = 0.95
    discharge_efficiency: Fraction = 0.95
    soc_min_pct: Percent = 10.0
    soc_max_pct: Percent = 90.0
    initial_soc_pct: Percent = 50.0

    @model_validator(mode="after")
    def _soc_window(self) -> Battery:
        if self.soc_min_pct >= self.soc_max_pct:
            raise ValueError("soc_min_pct must be below soc_max_pct")
        if not self.soc_min_pct <= self.initial_soc_pct <= self.soc_max_pct:
            raise ValueError("initial_soc_pct must lie inside the SOC window")
        return self

    def follow(self, stored_kwh: float, setpoint_kw: float, hours: float) -> tuple[float, float]:
        """The battery holding ``setpoint_kw`` (+ discharge) for ``hours`` from ``stored_kwh``: (the power it
        delivers, kW, within its power limits and SOC window; the energy stored afterwards, kWh, after the
        charge or discharge efficiency)."""
        min_kwh = self.energy_capacity_kwh * self.soc_min_pct / 100.0
        max_kwh = self.energy_capacity_kwh * self.soc_max_pct / 100.0
        if setpoint_kw >= 0:
            power_kw = min(setpoint_kw, self.discharge_power_max_kw,
                           max(0.0, (stored_kwh - min_kwh) * self.discharge_efficiency / hours))
            return power_kw, stored_kwh - power_kw / self.discharge_efficiency * hours
        power_kw = -min(-setpoint_kw, self.charge_power_max_kw,
                        max(0.0, (max_kwh - stored_kwh) / (self.charge_efficiency * hours)))
        return power_kw, stored_kwh - power_kw * self.charge_efficiency * hours

    def standard_points(self) -> list[PointSpec]:
        return [
            PointSpec("power_kw", "kW", M, low_limit=-self.charge_power_max_kw, high_limit=self.discharge_power_max_kw,
                      description="positive discharging, negative charging"),
            PointSpec("soc_pct", "%", M, low_limit=0, high_limit=100),
            PointSpec("stored_energy_kwh", "kWh", M, low_limit=0, high_limit=self.energy_capacity_kwh),
            PointSpec("cell_temp_max_c", "degC", M, low_limit=-20, high_limit=80),
            PointSpec("cell_voltage_spread_v", "V", M, low_limit=0, high_limit=1),
            PointSpec("power_setpoint_kw", "kW", SP, writable=True, low_limit=-self.charge_power_max_kw,
                      high_limit=self.discharge_power_max_kw, description="positive discharge, negative charge"),
        ]


class EVCharger(AssetBase):
    """An EV charging point; sessions arrive, charge within the power limit, and leave."""

    kind: Literal["ev_charger"] = "ev_charger"
    kind_label: ClassVar[str] = "EV charger"
    power_max_kw: PositiveFloat
    connector: Literal["ac", "dc"] = "ac"

    def standard_points(self) -> list[PointSpec]:
        return [
            PointSpec("power_kw", "kW", M, low_limit=0, high_limit=1.05 * self.power_max_kw),
            PointSpec("connected", "bool", ST),
            PointSpec("session_energy_kwh", "kWh", M, low_limit=0),
            PointSpec("power_limit_kw", "kW", SP, writable=True, low_limit=0, high_limit=self.power_max_kw),
        ]


class Meter(AssetBase):
    """An electricity meter. Power is positive for import (consumption).

    measures: ``grid`` for the park's main meter at the grid connection, or
    ``building`` for a sub-meter of every load in its building.
    """

    kind: Literal["meter"] = "meter"
    kind_label: ClassVar[str] = "Meter"
    measures: Literal["grid", "building"]
    accuracy_pct: Annotated[float, Field(ge=0, le=5)] = 0.2

    def standard_points(self) -> list[PointSpec]:
        return [
            PointSpec("power_kw", "kW", M, description="positive import"),
            PointSpec("import_energy_kwh", "kWh", M, low_limit=0),
            PointSpec("export_energy_kwh", "kWh", M, low_limit=0),
        ]


class WeatherStation(AssetBase):
    """An on-site weather station."""

    kind: Literal["weather_station"] = "weather_station"
    kind_label: ClassVar[str] = "Weather station"

    def standard_points(self) -> list[PointSpec]:
        return [
            PointSpec("outdoor_temp_c", "degC", M, low_limit=-40, high_limit=60),
            PointSpec("ghi_wm2", "W/m2", M, low_limit=0, high_limit=1500),
        ]


Asset = Annotated[
    Chiller | IceTank | Lighting | Elevator | PVArray | Battery | EVCharger | Meter | WeatherStation,
    Field(discriminator="kind"),
]

ASSET_CLASSES: tuple[type[AssetBase], ...] = (
    Chiller, IceTank, Lighting, Elevator, PVArray, Battery, EVCharger, Meter, WeatherStation,
)
