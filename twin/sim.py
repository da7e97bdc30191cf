"""The park simulator: a time-stepped model of every asset that produces a reading for every point.

The simulator is plain computation; the caller decides the pace (as fast as
possible for ``parktwin simulate``, a speed factor for ``parktwin run``).
Each kind's physics is the step function its module declares (:mod:`twin.kinds.simulation`);
this module runs the kinds the registry gives, stage by stage, and works out what couples them.
Outdoor conditions and PV power come from an :class:`Environment` passed in
(built in ``energy/`` by the composition root), so this module needs nothing
outside the twin core.

Conventions for every step [t, t + step):
- power and flow points (``*_kw``, ``*_kwth``) are the mean over the step;
- state points (ice inventory, SOC, energy counters) are the state at t, before
  the step's flows, so state(t + step) - state(t) = flows(t) * step;
- setpoint points report the setpoint in force: one written through
  :meth:`ParkSimulator.write_setpoint`, else the plant's own schedule.

Sign conventions follow the assets: battery power positive when discharging,
meter power positive when importing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol, cast
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from twin.kinds import simulations
from twin.kinds.base import Role
from twin.kinds.simulation import (
    ChilledWaterDemand,
    Member,
    MeteredPower,
    Simulation,
    Slots,
    Stage,
    StepFunction,
    StepInputs,
)
from twin.park import Park
from twin.plant import CMD_AUTO, PlantOperation, chilled_water_capacity_kwth, cooling_load_kwth, operate_plant
from twin.profiles import occupancy_fraction
from twin.readings import Quality, Reading


class Environment(Protocol):
    """Outdoor conditions and PV output for a UTC time index.

    ``conditions(index)`` returns a frame on that index with columns
    ``temp_air_c`` (degC), ``ghi_wm2`` (W/m2) and, for every PV array id,
    ``<id>.ac_kw`` (kW AC before curtailment and faults), ``<id>.poa_wm2`` and
    ``<id>.cell_temp_c``.
    """

    def conditions(self, index_utc: pd.DatetimeIndex) -> pd.DataFrame: ...


FaultKind = Literal[
    "chiller_cop_drop",  # target: chiller id; magnitude: COP multiplier, e.g. 0.7
    "chw_low_delta_t",  # target: chiller id; magnitude: delta-T in K while the fault lasts
    "pv_string_outage",  # target: PV array id; magnitude: strings lost
    "sensor_flatline",  # target: point id; the value freezes at its value when the fault starts
    "device_offline",  # target: asset id; its points read comm_fail
    "elevator_out_of_service",  # target: elevator id
    "lighting_stuck_on",  # target: lighting id; full power regardless of schedule
    "battery_overtemp",  # target: battery id; magnitude: K added to cell temperature
    "setpoint_ignored",  # target: point id of a writable point; writes are accepted and not taken (local mode)
]


@dataclass(frozen=True)
class Fault:
    """A fault injected into the simulated park over [start_utc, end_utc) (end None: until cleared)."""

    kind: FaultKind
    target: str
    start_utc: datetime
    end_utc: datetime | None = None
    magnitude: float = 0.0

    def active(self, t: datetime) -> bool:
        return self.start_utc <= t and (self.end_utc is None or t < self.end_utc)


@dataclass
class StepOutput:
    """Every point's value and quality at one step, in the park's point order."""

    ts_utc: datetime
    values: np.ndarray
    qualities: np.ndarray


ActiveFaults = dict[tuple[str, str], float]
"""The magnitude of every fault in force during one step by (kind, target); the first injected wins when
several match."""


@dataclass(frozen=True)
class _Kinds:
    """The park's simulated assets grouped by kind, each group with its kind's step function, in the
    registry's order of the kinds and the park's order of the assets; grouped once rather than on every step.

    Building loads are grouped by building id as well; the plant's chillers and cooling storage are found by
    the roles of their points, the storage whose level controllers read by their kinds' stored points.
    """

    members: dict[str, Member]
    """Every simulated asset by id."""
    building_loads: dict[str, list[tuple[StepFunction, list[Member]]]]
    """By building id; only the kinds the building has."""
    chilled_water_loop: list[tuple[StepFunction, list[Member]]]
    plant: list[tuple[StepFunction, list[Member]]]
    supplies: list[tuple[StepFunction, list[Member]]]
    meters: list[tuple[StepFunction, list[Member]]]
    sensors: list[tuple[StepFunction, list[Member]]]
    chillers: list[Member]
    """In the park's order, which the plant's per-chiller results follow."""
    chiller_assets: list[Any]
    """The chillers' assets, in the same order."""
    mode_command_slots: list[int]
    """Each chiller's mode command point."""
    storage: Member | None
    """The plant's cooling storage (one per park)."""
    storage_setpoint_slots: tuple[int, int]
    """The storage's charge and melt setpoint points; unused without storage."""
    stored: list[Member]
    """Every asset whose kind declares a stored point (:attr:`twin.kinds.base.AssetBase.stored_point`)."""
    conditioned: list[tuple[Member, tuple[str, ...]]]
    """Every asset that reads columns of the environment, with their names."""

    @classmethod
    def of(cls, park: Park, slots: dict[str, Slots]) -> _Kinds:
        members: dict[str, Member] = {}
        groups: dict[Simulation, list[Member]] = {}
        for building, asset in park.iter_assets():
            if asset.simulation is not None:
                member = Member(asset, building.id, slots.get(asset.id, {}), asset.simulation.initial_state(asset))
                members[asset.id] = member
                groups.setdefault(asset.simulation, []).append(member)

        def stage(of: Stage) -> list[tuple[StepFunction, list[Member]]]:
            return [(simulation.step, groups[simulation]) for simulation in simulations(of) if simulation in groups]

        def with_role(role: Role) -> list[Member]:
            return [member for member in members.values() if role in member.asset.roles()]

        def role_slot(member: Member, role: Role) -> int:
            return member.slots[member.asset.roles()[role]]

        def in_building(building_id: str) -> list[tuple[StepFunction, list[Member]]]:
            by_kind = [(step, [m for m in group if m.building_id == building_id])
                       for step, group in stage(Stage.BUILDING_LOAD)]
            return [(step, group) for step, group in by_kind if group]

        chillers = with_role(Role.CHILLER_MODE_COMMAND)
        storage = with_role(Role.STORAGE_CHARGE_SETPOINT)
        return cls(
            members=members,
            building_loads={b.id: in_building(b.id) for b in park.buildings},
            chilled_water_loop=stage(Stage.CHILLED_WATER_LOOP),
            plant=stage(Stage.PLANT),
            supplies=stage(Stage.SUPPLY),
            meters=stage(Stage.METER),
            sensors=stage(Stage.SENSOR),
            chillers=chillers,
            chiller_assets=[chiller.asset for chiller in chillers],
            mode_command_slots=[role_slot(c, Role.CHILLER_MODE_COMMAND) for c in chillers],
            storage=storage[0] if storage else None,
            storage_setpoint_slots=(role_slot(storage[0], Role.STORAGE_CHARGE_SETPOINT),
                                    role_slot(storage[0], Role.STORAGE_MELT_SETPOINT)) if storage else (-1, -1),
            stored=[member for member in members.values() if member.asset.stored_point is not None],
            conditioned=[(member, names) for member in members.values()
                         if (names := member.asset.simulation.condition_columns(member.asset))],
        )


class ParkSimulator:
    """Simulates the park step by step from ``start_utc``."""

    def __init__(self, park: Park, environment: Environment, start_utc: datetime):
        if start_utc.tzinfo is None:
            raise ValueError("start_utc must be tz-aware")
        self.park = park
        self.environment = environment
        self.step = timedelta(seconds=park.simulation.step_s)
        self.step_h = park.simulation.step_s / 3600.0
        self.now_utc = start_utc.astimezone(UTC)
        self.tz = ZoneInfo(park.site.timezone)
        self.point_ids: list[str] = list(park.points)
        self._no_values = np.full(len(self.point_ids), np.nan)  # copied to start each step's vector
        self._index = {pid: i for i, pid in enumerate(self.point_ids)}
        self._slots: dict[str, Slots] = {}  # by asset id
        for i, point in enumerate(park.points.values()):
            self._slots.setdefault(point.asset_id, {})[point.name] = i
        self._rng = np.random.default_rng(park.simulation.seed)
        self._setpoints: dict[int, float] = {}  # written setpoints by point index; other points follow the schedule
        self._faults: list[Fault] = []
        self._step_observers: list[Callable[[StepOutput], None]] = []
        self._frozen: dict[str, float | None] = {}
        self._conditions_start: datetime | None = None  # UTC midnight of the day held in the three below
        self._conditions_column: dict[str, int] = {}  # position of each environment column in a row
        self._conditions_rows: list[list[float]] = []  # one row per step of that day
        self._kinds = _Kinds.of(park, self._slots)
        chillers = self._kinds.chillers
        self._plant_building_id = chillers[0].building_id if chillers else None

    # ----------------------------------------------------------------- control

    def write_setpoint(self, point: str, value: float) -> None:
        """Command a writable point; it overrides the plant schedule until released (a ``setpoint_ignored``
        fault on the point makes the write a no-op, as a device left in local mode does).

        Raises KeyError for an unknown point, ValueError for a read-only point or a
        value outside the point's safe limits.
        """
        spec = self.park.points[point]
        if not spec.writable:
            raise ValueError(f"point {point} is not writable")
        if not math.isfinite(value) or not spec.within_limits(value):
            raise ValueError(f"{value} is outside the safe limits of {point} "
                             f"[{spec.spec.low_limit}, {spec.spec.high_limit}] {spec.unit}")
        if any(f.kind == "setpoint_ignored" and f.target == point and f.active(self.now_utc) for f in self._faults):
            return  # the device acknowledges the write and keeps following its own schedule
        self._setpoints[self._index[point]] = float(value)

    def release_setpoint(self, point: str) -> None:
        """Hand a point back to the plant schedule (like a BACnet relinquish); an unknown point is ignored."""
        index = self._index.get(point)
        if index is not None:
            self._setpoints.pop(index, None)

    def inject_fault(self, fault: Fault) -> None:
        self._faults.append(fault)

    def clear_faults(self) -> None:
        self._faults.clear()

    @property
    def faults(self) -> list[Fault]:
        return list(self._faults)

    def storage_state(self) -> dict[str, float]:
        """What every asset whose kind declares a stored point stores at ``now_utc``, by asset id, in that
        point's unit (kWh, kWhth), for controllers that re-plan."""
        return {member.asset.id: _stored(member) for member in self._kinds.stored}

    def restore_state(self, values: Mapping[str, float | None]) -> list[str]:
        """Continue the state an earlier run left, from its points' values (e.g. the history's last readings):
        every state point each kind declares continued (:attr:`twin.kinds.simulation.Simulation.continued`:
        the ice inventory, each battery's stored energy and the counters of meters, PV arrays, chiller starts
        and elevator trips), so that storage continues and counters never run backwards. A state whose value
        is missing, not finite or outside its point's limits keeps its initial value; any other state (EV
        sessions, running chillers) and setpoints start as in a new run. Returns the ids of the points whose
        values were taken."""
        taken: list[str] = []

        def value_of(asset_id: str, name: str) -> float | None:
            point_id = self.point_ids[self._slots[asset_id][name]]
            value = values.get(point_id)
            if value is None or not math.isfinite(value) or not self.park.points[point_id].within_limits(value):
                return None
            taken.append(point_id)
            return float(value)

        for member in self._kinds.members.values():
            for name, count in member.asset.simulation.continued.items():
                if (value := value_of(member.asset.id, name)) is not None:
                    member.state[name] = float(round(value)) if count else value
        return taken

    def meter_import_kwh(self, meter_id: str) -> float:
        """The meter's import-energy counter at ``now_utc``, kWh."""
        return float(self._kinds.members[meter_id].state["import_energy_kwh"])

    def add_step_observer(self, observer: Callable[[StepOutput], None]) -> None:
        """Call ``observer`` with every step's output as it is simulated (every point's value over the step,
        as the devices present it): the ground truth a live run's measured figures can be checked against.
        Observers run on the thread that steps the simulator and must return quickly."""
        self._step_observers.append(observer)

    # --------------------------------------------------------------- stepping

    def advance(self) -> StepOutput:
        """Simulate the step starting at ``now_utc``; return its readings and move the clock on."""
        t = self.now_utc
        for fault in self._faults:
            if fault.kind == "setpoint_ignored" and fault.active(t):
                self._setpoints.pop(self._index[fault.target], None)  # local mode: the device's own schedule
        values = self._no_values.copy()
        qualities = np.zeros(len(self.point_ids), dtype=np.int8)
        self._compute_step(t, _float_view(values))
        self._apply_sensor_faults(t, values, qualities)
        self.now_utc = t + self.step
        output = StepOutput(t, values, qualities)
        for observer in self._step_observers:
            observer(output)
        return output

    def readings(self, output: StepOutput) -> list[Reading]:
        """The step's values as Reading objects (for live state)."""
        return [
            Reading(pid, output.ts_utc, None if math.isnan(v) else float(v), Quality(int(q)))
            for pid, v, q in zip(self.point_ids, output.values, output.qualities)
        ]

    def run(self, end_utc: datetime, progress: Callable[[int], None] | None = None) -> Iterator[pd.DataFrame]:
        """Simulate up to ``end_utc``, yielding one long-format frame (point_id, ts_utc, value, quality) per day."""
        while self.now_utc < end_utc:
            chunk_end = min(end_utc, (pd.Timestamp(self.now_utc).floor("D") + pd.Timedelta(days=1)).to_pydatetime())
            times, rows, quals = [], [], []
            while self.now_utc < chunk_end:
                out = self.advance()
                times.append(out.ts_utc)
                rows.append(out.values)
                quals.append(out.qualities)
            if progress:
                progress(len(times))
            yield _long_frame(self.point_ids, times, np.vstack(rows), np.vstack(quals))

    # --------------------------------------------------------------- physics
    #
    # Each kind's step function (twin.kinds.simulation) writes its assets' points into ``values``, the
    # step's vector in point order, at the indices in the assets' slots; points nobody writes stay NaN.
    # What couples the kinds is worked out here: the buildings' plug and cooling loads, the cooling load the
    # kinds on the chilled-water loop leave the plant, the plant's operation, the load left for each supply
    # and the power the meters measure.
    # ``values`` is a memoryview of the vector: an item write through it stores the float directly,
    # without the ndarray's per-item indexing and conversion.

    def _compute_step(self, t: datetime, values: memoryview[float]) -> None:
        """Every asset over the step [t, t + step), stage by stage (twin.kinds.simulation.Stage) and within
        a stage kind by kind in the registry's order, which keeps the random draws reproducible."""
        cond = self._conditions_at(t)
        column = self._conditions_column
        temp_c, ghi = cond[column["temp_air_c"]], cond[column["ghi_wm2"]]
        local = t.astimezone(self.tz)
        hour = local.hour + local.minute / 60.0 + local.second / 3600.0
        weekend = local.weekday() >= 5
        inputs = StepInputs(t, self.step_h, hour, weekend, temp_c, ghi, cond, self._active_faults(t), self._setpoints,
                            self.park.plant_schedule, self.park.simulation, self._rng)
        kinds = self._kinds
        building_load_kw: dict[str, float] = {}
        cooling_load = 0.0

        for building in self.park.buildings:
            occ = occupancy_fraction(building.occupancy, hour, weekend)
            cooling_load += cooling_load_kwth(building.cooling_design_load_kwth, temp_c, ghi, occ)
            noise = 1.0 + 0.03 * self._rng.standard_normal()
            plug_swing_kw = building.plug_load_peak_kw - building.plug_load_base_kw
            plug = (building.plug_load_base_kw + plug_swing_kw * occ) * noise
            load_kw = max(0.0, plug)
            for step, members in kinds.building_loads[building.id]:
                load_kw += step(members, inputs, occ, values)
            building_load_kw[building.id] = load_kw

        if self._plant_building_id is not None:
            commands = [int(self._setpoints.get(slot, CMD_AUTO)) for slot in kinds.mode_command_slots]
            plant_load_kwth = cooling_load
            if kinds.chilled_water_loop:
                capacity_kwth = chilled_water_capacity_kwth(kinds.chiller_assets, commands)
                for step, members in kinds.chilled_water_loop:
                    demand = ChilledWaterDemand(plant_load_kwth, capacity_kwth)
                    plant_load_kwth -= step(members, inputs, demand, values)
            operation = self._operate_plant(plant_load_kwth, commands, hour)
            plant_kw = 0.0
            for step, members in kinds.plant:
                plant_kw += step(members, inputs, operation, values)
            building_load_kw[self._plant_building_id] += plant_kw
        unsupplied_kw = sum(building_load_kw.values())
        for step, members in kinds.supplies:
            unsupplied_kw -= step(members, inputs, unsupplied_kw, values)
        metered = MeteredPower(unsupplied_kw, building_load_kw)
        for step, members in kinds.meters:
            step(members, inputs, metered, values)
        for step, members in kinds.sensors:
            step(members, inputs, None, values)

    def _operate_plant(self, cooling_load_kwth: float, commands: list[int], hour: float) -> PlantOperation:
        """The plant's operation for the cooling load it carries: the chillers' mode commands in force
        (``commands``; without written ones, automatic) and the cooling storage's charge and melt setpoints in
        force (without written ones, the rates the plant schedule asks of the storage), run by
        :func:`twin.plant.operate_plant`."""
        setpoints, kinds = self._setpoints, self._kinds
        storage, tank = kinds.storage, None
        inventory_kwhth = charge_request = melt_request = 0.0
        if storage is not None:
            tank = storage.asset
            charge_default, melt_default = tank.scheduled_kwth(self.park.plant_schedule, hour)
            charge_slot, melt_slot = kinds.storage_setpoint_slots
            charge_request = setpoints.get(charge_slot, charge_default)
            melt_request = setpoints.get(melt_slot, melt_default)
            inventory_kwhth = _stored(storage)
        step = operate_plant(kinds.chiller_assets, commands, tank, inventory_kwhth, cooling_load_kwth,
                             charge_request, melt_request, self.step_h)
        return PlantOperation(step, commands, cooling_load_kwth, charge_request, melt_request)

    # --------------------------------------------------------------- helpers

    def _active_faults(self, t: datetime) -> ActiveFaults:
        """The faults in force at t, looked up once per step (faults may be injected between any two steps)."""
        active: ActiveFaults = {}
        for fault in self._faults:
            if fault.active(t):
                active.setdefault((fault.kind, fault.target), fault.magnitude)
        return active

    def _apply_sensor_faults(self, t: datetime, values: np.ndarray, qualities: np.ndarray) -> None:
        """Flatlined sensors repeat their frozen value; offline devices read comm_fail with no value."""
        for fault in self._faults:
            if fault.kind == "sensor_flatline":
                i = self._index[fault.target]
                if fault.active(t):
                    frozen = self._frozen.setdefault(fault.target, float(values[i]))
                    values[i] = frozen
                else:
                    self._frozen.pop(fault.target, None)
            elif fault.kind == "device_offline" and fault.active(t):
                for i in self._slots[fault.target].values():
                    values[i] = np.nan
                    qualities[i] = int(Quality.COMM_FAIL)

    def _conditions_at(self, t: datetime) -> list[float]:
        """Outdoor conditions for the step at t (UTC), fetched from the environment a UTC day at a time: the
        environment's row, each column at its position in ``_conditions_column`` (the columns an asset reads
        also in its :attr:`Member.columns`)."""
        if self._conditions_start is None or t.date() != self._conditions_start.date():
            day = pd.Timestamp(t).floor("D")
            index = pd.date_range(day, day + pd.Timedelta(days=1), freq=self.step, inclusive="left")
            frame = self.environment.conditions(index)
            self._conditions_column = {name: k for k, name in enumerate(frame.columns)}
            column = self._conditions_column
            for member, names in self._kinds.conditioned:
                member.columns = tuple(column[name] for name in names)
            self._conditions_rows = frame.to_numpy(dtype=float).tolist()
            self._conditions_start = day.to_pydatetime()
        position = (t - self._conditions_start) // self.step
        return self._conditions_rows[position]


def _stored(member: Member) -> float:
    """What the member stores: its state that its kind's stored point reports."""
    return float(member.state[member.asset.stored_point])


def _float_view(vector: np.ndarray) -> memoryview[float]:
    """A writable memoryview of a float64 vector (format ``d``): its items read and write as Python floats."""
    return cast("memoryview[float]", vector.data)


def _long_frame(point_ids: list[str], times: list[datetime], values: np.ndarray, qualities: np.ndarray) -> pd.DataFrame:
    """Long-format history frame from a (steps x points) block."""
    n_steps, n_points = values.shape
    return pd.DataFrame({
        "point_id": np.tile(np.asarray(point_ids, dtype=object), n_steps),
        "ts_utc": np.repeat(pd.DatetimeIndex(times), n_points),
        "value": values.reshape(-1),
        "quality": qualities.reshape(-1).astype(np.int16),
    })
