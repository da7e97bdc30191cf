"""What every asset kind has and declares: the base class, the points an integrator may add, and the
declarations the read side asks the registry (:mod:`twin.kinds`) about.

Each kind is a pydantic model (its own module in this package): the park YAML is validated against it,
and the validated object is the asset the rest of ParkTwin uses. Typical figures come from
../shared/DOMAIN.md; every one can be overridden in the park file.

A kind declares, as class variables and methods:

- its points (:meth:`AssetBase.standard_points`); an asset may add points of its own under
  ``extra_points``;
- the point measuring its electric power (kW) and the :class:`PowerGroup` that point counts in (a load
  subsystem, the building sub-meters or a source), with the group's display label and colour;
- the :class:`Role` each of its points plays for a consumer that needs one particular measurement
  (the grid meter's counters, the cooling storage delivered, the outdoor temperature...);
- what dispatch asks of it: the setpoints a plan's columns drive (:meth:`AssetBase.plan_setpoints`),
  the setpoints that hold it idle, and for storage the points reporting its stored energy and how the
  flows read with it bring that forward (:meth:`AssetBase.stored_after`);
- for storage, how the dispatch page charts its plan columns (:class:`PlanTrace`);
- for a kind that generates electricity from irradiance, its PVWatts parameters (:meth:`AssetBase.pvwatts`);
- the rules it sets on a park, what the park's one-line summary says of it, and the fault magnitudes
  an asset of the kind bounds;
- how the park simulator steps its assets and, for a load, the power it typically draws
  (:class:`twin.kinds.simulation.Simulation`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, ClassVar, Literal, Self

import numpy as np
from pydantic import Field, model_validator

from twin.input_schema import FiniteFloat, InputModel
from twin.kinds.pvwatts import PVWattsParams
from twin.kinds.simulation import Simulation
from twin.points import PointKind, PointSpec

M, SP, ST = PointKind.MEASUREMENT, PointKind.SETPOINT, PointKind.STATUS

Identifier = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=48)]
Fraction = Annotated[float, Field(gt=0, le=1)]
Percent = Annotated[float, Field(ge=0, le=100)]
PlanColumn = Callable[[str], np.ndarray]
"""A plan table's column by name (optimizer.plan.dispatch_columns), as floats, one per plan step: an
asset's own as ``<asset id>.<column>`` (``battery.power_setpoint_kw``), the park's by name (``pv_used_kw``)."""
STORED_PCT_COLUMN = "soc_pct"
"""The plan table's column of a storage asset's stored energy as a percentage of its capacity, %, after
``<asset id>.``."""


@dataclass(frozen=True)
class PowerGroup:
    """A group of electric power points (kW) the read side totals.

    part: ``load``, a load subsystem facility managers read consumption by (chillers, lighting...);
    ``meters``, the building sub-meters, whose remainder over the load subsystems is "other";
    ``source``, what supplies the loads (PV, battery + discharge, grid + import).
    label, colour: how the dashboard shows the group (English label, CSS hex colour); empty for a group
    it does not show.
    """

    name: str
    part: Literal["load", "meters", "source"]
    label: str = ""
    colour: str = ""


@dataclass(frozen=True)
class PlanTrace:
    """A line the dispatch page draws of one of an asset's plan columns.

    column: the column's name after ``<asset id>.`` (``power_setpoint_kw``), in its unit (kW or kWth).
    label: what the line is called after the asset's id, unit included ("power kW (+ discharge)").
    colour: the line's colour (CSS hex).
    """

    column: str
    label: str
    colour: str


class Role(StrEnum):
    """What a point stands for to a consumer that needs one particular measurement of the park.

    A kind maps roles to its point names (:attr:`AssetBase.point_roles`); the park lists the points
    playing a role (:meth:`twin.park.Park.role_points`).
    """

    CHILLER_POWER = "chiller_power"
    """A chiller's electric power, kW."""
    CHILLER_COOLING = "chiller_cooling"
    """Cooling a chiller makes, kWth (chilled water or ice)."""
    CHILLER_MODE = "chiller_mode"
    """A chiller's mode (twin.plant: off, chilled water, ice making)."""
    CHILLER_MODE_COMMAND = "chiller_mode_command"
    """A chiller's mode command (twin.plant: automatic, off, chilled water, ice making)."""
    STORAGE_MELT = "storage_melt"
    """Thermal power drawn from ice storage by melting it, kWth."""
    STORAGE_COOLING_DELIVERED = "storage_cooling_delivered"
    """Cooling that storage delivers to the buildings net of what it takes from them to charge, kWth, negative
    while it charges from the buildings' chilled-water loop: with the chillers' direct cooling, the buildings'
    cooling load."""
    STORAGE_CHARGE_SETPOINT = "storage_charge_setpoint"
    """Charge rate asked of cooling storage, kWth."""
    STORAGE_MELT_SETPOINT = "storage_melt_setpoint"
    """Melt rate asked of cooling storage, kWth."""
    PV_POWER = "pv_power"
    """A PV array's AC output, kW."""
    PV_ENERGY_COUNTER = "pv_energy_counter"
    """A PV array's AC energy counter, kWh."""
    GRID_POWER = "grid_power"
    """Power at the grid connection, kW, + import."""
    GRID_IMPORT_COUNTER = "grid_import_counter"
    """The grid meter's import energy counter, kWh."""
    GRID_EXPORT_COUNTER = "grid_export_counter"
    """The grid meter's export energy counter, kWh."""
    BUILDING_POWER = "building_power"
    """A building sub-meter's power, kW, + import."""
    BUILDING_IMPORT_COUNTER = "building_import_counter"
    """A building sub-meter's import energy counter, kWh."""
    OUTDOOR_TEMP = "outdoor_temp"
    """Outdoor air temperature measured on site, degC."""
    GHI = "ghi"
    """Global horizontal irradiance measured on site, W/m2."""


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
    """Fields every asset has, and what every kind declares (module docstring)."""

    id: Identifier
    name: str = ""
    extra_points: list[ExtraPoint] = []

    kind_label: ClassVar[str] = ""
    power_point: ClassVar[str | None] = None
    """Name of the point measuring the asset's electric power, kW; None: the kind has none."""
    power_groups: ClassVar[tuple[PowerGroup, ...]] = ()
    """Every group an asset of this kind may count its power point in."""
    point_roles: ClassVar[Mapping[Role, str]] = {}
    """Point name by the role it plays, for every asset of this kind."""
    hold_setpoints: ClassVar[Mapping[str, float]] = {}
    """Setpoint values by point name that hold an asset of this kind idle (storage neither charging nor
    discharging), in the points' units; empty: it needs none to stay out of a run."""
    plan_shared: ClassVar[bool] = False
    """True: a plan plans the park's assets of this kind as one, in columns of the park's, which
    :meth:`plan_setpoints` shares out; their setpoints come after those of the assets planned one by one."""
    stored_point: ClassVar[str | None] = None
    """Name of the point reporting the energy an asset of this kind stores, in its unit, kWh or kWhth; None: it
    stores none. The simulator's state of the asset under this name is its stored level."""
    stored_pct_point: ClassVar[str | None] = None
    """Name of the point reporting the same as a percentage of the asset's capacity, %; None: it stores none."""
    stored_pct_label: ClassVar[str] = ""
    """What a chart of :attr:`stored_pct_point` calls it after the asset's id, before "%" ("SOC"); empty: the
    kind's :attr:`kind_label`."""
    storage_flow_points: ClassVar[tuple[str, ...]] = ()
    """Names of the points whose readings, held, move the energy a storage asset holds (:meth:`stored_after`)."""
    plan_traces: ClassVar[tuple[PlanTrace, ...]] = ()
    """The lines the dispatch page draws of a storage asset's planned flows, kW or kWth, in its storage panel;
    its stored percentage (the plan's :data:`STORED_PCT_COLUMN`, named as :attr:`stored_pct_label` names it) is
    drawn dotted in the colour of the first. Empty: the page draws no line of the asset."""
    simulation: ClassVar[Simulation | None] = None
    """How the park simulator steps assets of this kind; None: it does not simulate them."""

    def standard_points(self) -> list[PointSpec]:
        """The points every asset of this kind exposes."""
        raise NotImplementedError

    def point_specs(self) -> list[PointSpec]:
        """Standard points followed by the asset's extra points."""
        return self.standard_points() + [p.to_spec() for p in self.extra_points]

    def power_group(self) -> PowerGroup | None:
        """The group this asset's power point counts in: its kind's only one (None: it has no power point)."""
        return self.power_groups[0] if self.power_groups else None

    def roles(self) -> Mapping[Role, str]:
        """Point name by the role it plays, for this asset."""
        return self.point_roles

    def plan_setpoints(self, column: PlanColumn, peers: Sequence[Self]) -> dict[str, np.ndarray]:
        """The values, each plan step, that a plan's columns ask of this asset's setpoint points, by point
        name, in the points' units, before they are clipped to the points' limits. ``peers``: the park's
        assets of this kind, this one among them, in park order. Empty: no plan drives this asset."""
        return {}

    @classmethod
    def park_issues(cls, assets: Sequence[AssetBase]) -> list[str]:
        """The rules this kind sets on a park, each one the park's assets (all of them, in file order) break as
        a reason (twin.park.Park.consistency_issues); empty when they keep them."""
        return []

    @classmethod
    def park_summary(cls, assets: Sequence[Self]) -> str | None:
        """What the park's one-line summary (``parktwin model check``) says of its assets of this kind, however
        many (none included), e.g. "PV 1,000 kWp"; None: the summary leaves the kind out."""
        return None

    def fault_magnitude_max(self) -> Mapping[str, float]:
        """The largest magnitude a fault of each kind (twin.sim.FaultKind) may have on this asset, where the
        asset bounds it (in the fault kind's unit); empty: it bounds none."""
        return {}

    def pvwatts(self) -> PVWattsParams | None:
        """The asset's array and inverter in PVWatts terms, when it generates electricity from irradiance; None:
        it does not."""
        return None

    def initial_stored(self) -> float:
        """The energy a storage asset holds where nothing says otherwise (a simulation's start, a plan without
        its reading), in the unit of its :attr:`stored_point` (kWh, kWhth)."""
        raise NotImplementedError(f"{self.kind_label or type(self).__name__} holds no stored energy")

    def stored_after(self, stored: float, flows: Sequence[float], hours: float) -> float:
        """The energy a storage asset holds after ``hours`` from ``stored``, with its flows held at the values
        read from its :attr:`storage_flow_points` (in their order); in the unit of its :attr:`stored_point`
        (kWh, kWhth)."""
        raise NotImplementedError(f"{self.kind_label or type(self).__name__} holds no stored energy")
