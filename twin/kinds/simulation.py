"""What a kind declares for the park simulator (:mod:`twin.sim`): the stage of the step it runs in and
its step function, and what the simulator hands that function; for a load, also the power it typically
draws over the day's profiles (:attr:`Simulation.typical_kw`), which forecasts plan on without history.

A kind's step function simulates every asset of the kind that the simulator passes (a building's, or the
park's) over one step [t, t + step). It sees only its arguments, never the simulator:

- ``members``: the assets with the positions of their points in the step's value vector and their state
  (:class:`Member`);
- ``inputs``: what every kind may read about the step (:class:`StepInputs`);
- ``coupling``: what the simulator worked out from the other kinds for this stage (:class:`Stage`);
- ``values``: the step's value vector in point order, a writable memoryview of float64, where it writes
  each member's points: power and flows as the mean over the step, state points as the state at t.

It carries each member's state forward to t + step in ``member.state`` and returns the electric power of
its members together, kW (a load, or a supply in the ``SUPPLY`` stage; 0 for kinds that have none), except
in the ``CHILLED_WATER_LOOP`` stage, where it returns the cooling its members deliver to the loop, kWth.
Random draws come from ``inputs.rng`` in member order, so that a run is reproducible from its seed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import IntEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from twin.park import PlantSchedule, SimulationSettings

Slots = dict[str, int]
"""Where one asset's points sit in the step's value vector: point name -> index."""

State = dict[str, Any]
"""One asset's state carried from step to step, by name; a state that a point reports goes by that point's
name and holds its value at the step's start."""


class Stage(IntEnum):
    """When in a step the simulator runs a kind, and what it passes as the step function's ``coupling``."""

    BUILDING_LOAD = 1
    """A load of its building: called once per building with that building's members; coupling is the
    building's occupancy, 0 to 1."""
    CHILLED_WATER_LOOP = 2
    """Stands on the buildings' chilled-water loop between their cooling load and the plant (a chilled-water
    storage tank, charged with chilled water and discharged to the buildings): called with all the park's
    members in a park with chillers; coupling is the demand on the plant the kinds before it in the registry
    leave (:class:`ChilledWaterDemand`). Returns the cooling it delivers to the loop net, kWth, negative while
    it takes chilled water from the plant; the plant then carries the load less that. It must take no more
    than the chillers can spare and give no more than the load, so that it never leaves load unmet. What it
    takes is direct load to the plant, which comes before ice making (twin.plant.operate_plant)."""
    PLANT = 3
    """Part of the chilled-water plant: called with all the park's members; coupling is the plant's
    operation over the step (:class:`twin.plant.PlantOperation`)."""
    SUPPLY = 4
    """Supplies the park's loads: called with all the park's members; coupling is the load the kinds before
    it in the registry have not supplied, kW. Returns the power supplied, kW."""
    METER = 5
    """Measures electric power: called with all the park's members; coupling is the true power of the grid
    connection and of each building (:class:`MeteredPower`)."""
    SENSOR = 6
    """Measures outdoor conditions: called with all the park's members; coupling is None."""


@dataclass(slots=True)
class StepInputs:
    """What every kind's step function may read about the step [t, t + step)."""

    t_utc: datetime
    step_h: float
    """Step length, h."""
    hour: float
    """Local hour of day at t (fractional), in the park's time zone."""
    weekend: bool
    outdoor_temp_c: float
    ghi_wm2: float
    """Global horizontal irradiance, W/m2."""
    conditions: list[float]
    """The environment's row for the step; a member's columns (:attr:`Simulation.condition_columns`) are
    at the positions in :attr:`Member.columns`."""
    faults: Mapping[tuple[str, str], float]
    """The magnitude of every fault in force by (fault kind, target id)."""
    setpoints: Mapping[int, float]
    """Written setpoints in force by index in the value vector; a point absent follows its default."""
    schedule: PlantSchedule
    """The plant's own time-of-day control, for setpoints nobody has written."""
    settings: SimulationSettings
    rng: np.random.Generator


@dataclass(slots=True, eq=False)
class Member:
    """One asset in the simulation."""

    asset: Any
    """The asset, of the kind whose step function it is passed to."""
    building_id: str
    slots: Slots
    state: State
    columns: tuple[int, ...] = ()
    """Position in :attr:`StepInputs.conditions` of each of the asset's condition columns, in their order."""


@dataclass(frozen=True)
class HourProfile:
    """The park's daily profiles (:mod:`twin.profiles`) at a run of times, as a load kind's typical power reads
    them: each array holds one value per time."""

    occupancy: np.ndarray
    """The asset's building's occupancy, 0 to 1."""
    elevator_traffic: np.ndarray
    """Elevator traffic relative to the morning up-peak (:func:`twin.profiles.elevator_traffic`)."""
    ev_arrival_weight: np.ndarray
    """Relative EV arrival rate (:func:`twin.profiles.ev_arrival_weight`)."""
    settings: SimulationSettings


StepFunction = Callable[[list[Member], StepInputs, Any, "memoryview[float]"], float]
"""A kind's step (module docstring): (members, inputs, coupling, values) -> electric power, kW."""


@dataclass(frozen=True, eq=False)
class Simulation:
    """How the park simulator runs one kind.

    continued: the state points a later run continues from an earlier one's last values, by point name;
    True for a count, which is taken rounded to a whole number.
    condition_columns: the environment's columns an asset reads (``twin.sim.Environment``), in order.
    typical_kw: for a load, the electric power (kW) an asset typically draws at each time of an
    :class:`HourProfile`, no fault in force: the planning figure of a forecast without history, from the
    step's own figures; None: the kind is no load that follows the profiles.
    """

    stage: Stage
    step: StepFunction
    initial_state: Callable[[Any], State] = lambda asset: {}
    continued: Mapping[str, bool] = field(default_factory=dict)
    condition_columns: Callable[[Any], tuple[str, ...]] = lambda asset: ()
    typical_kw: Callable[[Any, HourProfile], np.ndarray] | None = None


@dataclass(slots=True)
class MeteredPower:
    """The true electric power meters measure over the step, kW, + import."""

    grid_kw: float
    """At the grid connection: every load less every supply."""
    building_kw: Mapping[str, float]
    """Every load of each building, by building id (supplies not counted)."""


@dataclass(slots=True)
class ChilledWaterDemand:
    """The demand on the chilled-water plant over the step, as the kinds on the loop before it leave it."""

    load_kwth: float
    """Cooling load the plant is to carry, kWth: the buildings' load less what those kinds deliver net."""
    capacity_kwth: float
    """Chilled water the chillers can make together, kWth (:func:`twin.plant.chilled_water_capacity_kwth`)."""

    @property
    def spare_kwth(self) -> float:
        """Chilled water the chillers can make beyond the load, kWth; 0 when they cannot carry it."""
        return max(0.0, self.capacity_kwth - self.load_kwth)
