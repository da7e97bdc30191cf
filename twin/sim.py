"""The park simulator: a time-stepped model of every asset that produces a reading for every point.

The simulator is plain computation; the caller decides the pace (as fast as
possible for ``parktwin simulate``, a speed factor for ``parktwin run``).
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
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal, Protocol, cast
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from twin.kinds import Battery, Chiller, Elevator, EVCharger, IceTank, Lighting, Meter, PVArray, WeatherStation
from twin.park import Building, Park
from twin.plant import (
    CMD_AUTO,
    GLYCOL_SUPPLY_C,
    MODE_ICE,
    MODE_OFF,
    chiller_cop,
    cooling_load_kwth,
    operate_plant,
)
from twin.profiles import EV_ARRIVAL_WEIGHT_PER_DAY_H, elevator_traffic, ev_arrival_weight, occupancy_fraction
from twin.readings import Quality, Reading

CHW_LOOP_IDLE_C = 13.0
"""Temperature an idle chiller's sensors settle to, degC."""

ELEVATOR_FAULT_CODE = 17
"""Fault code an elevator reports when taken out of service by an injected fault."""


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
class EVSession:
    """A car plugged into a charger."""

    energy_needed_kwh: float
    departure_utc: datetime
    delivered_kwh: float = 0.0


@dataclass
class StepOutput:
    """Every point's value and quality at one step, in the park's point order."""

    ts_utc: datetime
    values: np.ndarray
    qualities: np.ndarray


ActiveFaults = dict[tuple[str, str], Fault]
"""The faults in force during one step by (kind, target); the first injected wins when several match."""


@dataclass
class _State:
    ice_inventory_kwhth: float
    battery_stored_kwh: dict[str, float]
    chiller_running: dict[str, bool]
    chiller_starts: dict[str, int]
    ev_sessions: dict[str, EVSession | None] = field(default_factory=dict)
    ev_session_energy_kwh: dict[str, float] = field(default_factory=dict)
    pv_energy_kwh: dict[str, float] = field(default_factory=dict)
    elevator_trips: dict[str, int] = field(default_factory=dict)
    meter_import_kwh: dict[str, float] = field(default_factory=dict)
    meter_export_kwh: dict[str, float] = field(default_factory=dict)


Slots = dict[str, int]
"""Where one asset's points sit in the step's value vector: point name -> index."""


@dataclass(frozen=True)
class _ParkAssets:
    """The park's assets by kind in file order, each with its slots, looked up once rather than on every step.

    ``lighting``, ``elevators`` and ``ev_chargers`` are by building id. Chillers and
    the tank come bare, as the plant model takes them.
    """

    chillers: list[Chiller]
    tank: IceTank | None
    pv_arrays: list[tuple[PVArray, Slots]]
    batteries: list[tuple[Battery, Slots]]
    meters: list[tuple[Meter, Slots]]
    weather_stations: list[tuple[WeatherStation, Slots]]
    lighting: dict[str, list[tuple[Lighting, Slots]]]
    elevators: dict[str, list[tuple[Elevator, Slots]]]
    ev_chargers: dict[str, list[tuple[EVCharger, Slots]]]

    @classmethod
    def of(cls, park: Park, slots: dict[str, Slots]) -> _ParkAssets:
        def with_slots(assets: list) -> list:
            return [(asset, slots[asset.id]) for asset in assets]

        tanks = park.assets_of(IceTank)
        return cls(
            chillers=park.assets_of(Chiller),
            tank=tanks[0] if tanks else None,
            pv_arrays=with_slots(park.assets_of(PVArray)),
            batteries=with_slots(park.assets_of(Battery)),
            meters=with_slots(park.assets_of(Meter)),
            weather_stations=with_slots(park.assets_of(WeatherStation)),
            lighting={b.id: with_slots(b.assets_of(Lighting)) for b in park.buildings},
            elevators={b.id: with_slots(b.assets_of(Elevator)) for b in park.buildings},
            ev_chargers={b.id: with_slots(b.assets_of(EVCharger)) for b in park.buildings},
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
        self._pv_conditions: dict[str, tuple[int, int, int]] = {}  # by PV array: its ac_kw, poa_wm2, cell_temp_c
        self._conditions_rows: list[list[float]] = []  # one row per step of that day
        self._assets = _ParkAssets.of(park, self._slots)
        self._bid = {asset.id: building.id for building, asset in park.iter_assets()}
        chillers, tank = self._assets.chillers, self._assets.tank
        self._plant_building_id = self._bid[chillers[0].id] if chillers else None
        self._state = _State(
            ice_inventory_kwhth=tank.capacity_kwhth * tank.initial_soc_pct / 100.0 if tank else 0.0,
            battery_stored_kwh={b.id: b.energy_capacity_kwh * b.initial_soc_pct / 100.0
                                for b in park.assets_of(Battery)},
            chiller_running={c.id: False for c in chillers},
            chiller_starts={c.id: 0 for c in chillers},
            ev_sessions={e.id: None for e in park.assets_of(EVCharger)},
            ev_session_energy_kwh={e.id: 0.0 for e in park.assets_of(EVCharger)},
            pv_energy_kwh={p.id: 0.0 for p in park.assets_of(PVArray)},
            elevator_trips={e.id: 0 for e in park.assets_of(Elevator)},
            meter_import_kwh={m.id: 0.0 for m in park.assets_of(Meter)},
            meter_export_kwh={m.id: 0.0 for m in park.assets_of(Meter)},
        )

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

    def storage_state(self) -> tuple[float, dict[str, float]]:
        """(ice inventory kWhth, battery stored kWh by id) at ``now_utc``, for controllers that re-plan."""
        return self._state.ice_inventory_kwhth, dict(self._state.battery_stored_kwh)

    def restore_state(self, values: Mapping[str, float | None]) -> list[str]:
        """Continue the state an earlier run left, from its points' values (e.g. the history's last readings):
        the ice inventory (``inventory_kwhth``, kWhth), each battery's stored energy (``stored_energy_kwh``,
        kWh) and the counters (meters' ``import_energy_kwh`` and ``export_energy_kwh``, PV ``energy_kwh``,
        chillers' ``starts_count``, elevators' ``trips_count``), so that storage continues and counters never
        run backwards. A state whose value is missing, not finite or outside its point's limits keeps its
        initial value; EV sessions, running chillers and setpoints start as in a new run. Returns the ids
        of the points whose values were taken."""
        st = self._state
        taken: list[str] = []

        def value_of(asset_id: str, name: str) -> float | None:
            point_id = self.point_ids[self._slots[asset_id][name]]
            value = values.get(point_id)
            if value is None or not math.isfinite(value) or not self.park.points[point_id].within_limits(value):
                return None
            taken.append(point_id)
            return float(value)

        tank = self._assets.tank
        if tank is not None and (inventory := value_of(tank.id, "inventory_kwhth")) is not None:
            st.ice_inventory_kwhth = inventory
        for energy_kwh, name in ((st.battery_stored_kwh, "stored_energy_kwh"),
                                 (st.meter_import_kwh, "import_energy_kwh"),
                                 (st.meter_export_kwh, "export_energy_kwh"),
                                 (st.pv_energy_kwh, "energy_kwh")):
            for asset_id in energy_kwh:
                if (value := value_of(asset_id, name)) is not None:
                    energy_kwh[asset_id] = value
        for counts, name in ((st.chiller_starts, "starts_count"), (st.elevator_trips, "trips_count")):
            for asset_id in counts:
                if (value := value_of(asset_id, name)) is not None:
                    counts[asset_id] = round(value)
        return taken

    def meter_import_kwh(self, meter_id: str) -> float:
        """The meter's import-energy counter at ``now_utc``, kWh."""
        return self._state.meter_import_kwh[meter_id]

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
    # Each asset model writes its points into ``values``, the step's vector in
    # point order, at the indices in the asset's slots; points nobody writes stay NaN.
    # ``values`` is a memoryview of the vector: an item write through it stores the float directly,
    # without the ndarray's per-item indexing and conversion.

    def _compute_step(self, t: datetime, values: memoryview[float]) -> None:
        """Every asset over the step [t, t + step), in an order that keeps the random draws reproducible."""
        cond = self._conditions_at(t)
        column = self._conditions_column
        temp_c, ghi = cond[column["temp_air_c"]], cond[column["ghi_wm2"]]
        local = t.astimezone(self.tz)
        hour = local.hour + local.minute / 60.0 + local.second / 3600.0
        weekend = local.weekday() >= 5
        faults = self._active_faults(t)
        traffic = elevator_traffic(hour)
        ev_rate_per_day = self.park.simulation.ev_sessions_per_charger_per_day * (0.4 if weekend else 1.0)
        ev_arrival_p = ev_rate_per_day * ev_arrival_weight(hour) / EV_ARRIVAL_WEIGHT_PER_DAY_H * self.step_h
        building_load_kw: dict[str, float] = {}
        cooling_load = 0.0

        for building in self.park.buildings:
            occ = occupancy_fraction(building.occupancy, hour, weekend)
            cooling_load += cooling_load_kwth(building.cooling_design_load_kwth, temp_c, ghi, occ)
            noise = 1.0 + 0.03 * self._rng.standard_normal()
            plug_swing_kw = building.plug_load_peak_kw - building.plug_load_base_kw
            plug = (building.plug_load_base_kw + plug_swing_kw * occ) * noise
            load_kw = max(0.0, plug)
            load_kw += self._lighting(building, occ, ghi, faults, values)
            load_kw += self._elevators(building, occ, traffic, faults, values)
            load_kw += self._ev_chargers(building, ev_arrival_p, t, values)
            building_load_kw[building.id] = load_kw

        if self._plant_building_id is not None:
            building_load_kw[self._plant_building_id] += self._plant(cooling_load, temp_c, hour, faults, values)
        pv_total_kw = self._pv(cond, faults, values)
        battery_kw = self._batteries(sum(building_load_kw.values()) - pv_total_kw, hour, faults, values)
        self._meters(building_load_kw, pv_total_kw, battery_kw, values)
        for _, slots in self._assets.weather_stations:
            values[slots["outdoor_temp_c"]] = temp_c + 0.1 * self._rng.standard_normal()
            values[slots["ghi_wm2"]] = ghi

    def _lighting(self, building: Building, occupancy: float, ghi_wm2: float, faults: ActiveFaults,
                  values: memoryview[float]) -> float:
        """Lighting circuits: on while occupied (with daylight dimming), night_fraction otherwise."""
        total = 0.0
        for light, slots in self._assets.lighting[building.id]:
            dimming_pct = self._setpoints.get(slots["dimming_pct"], 100.0)
            occupied = occupancy >= 0.3
            if ("lighting_stuck_on", light.id) in faults:
                power, on = light.rated_kw, True
            elif occupied:
                daylight_cut = 0.25 * min(1.0, ghi_wm2 / 800.0)
                power = light.rated_kw * (0.85 + 0.15 * occupancy) * (1.0 - daylight_cut) * dimming_pct / 100.0
                on = True
            else:
                power, on = light.rated_kw * light.night_fraction, False
            values[slots["power_kw"]] = power
            values[slots["on"]] = float(on)
            values[slots["dimming_pct"]] = dimming_pct
            total += power
        return total

    def _elevators(self, building: Building, occupancy: float, park_traffic: float, faults: ActiveFaults,
                   values: memoryview[float]) -> float:
        """Elevators: idle power plus a traffic-driven share of rated power; trips counted.

        park_traffic: :func:`elevator_traffic` at this hour, scaled here by the building's occupancy.
        """
        total = 0.0
        traffic = park_traffic * max(occupancy, 0.05)
        trips = self._state.elevator_trips
        trips_mean = traffic * 1.2 * self.step_h * 60
        for lift, slots in self._assets.elevators[building.id]:
            in_service = ("elevator_out_of_service", lift.id) not in faults
            values[slots["trips_count"]] = float(trips[lift.id])
            if in_service:
                # a uniform draw on [0.6, 1.4), as Generator.uniform makes it (low + (high - low) * random()),
                # written out to skip its argument handling on this per-lift, per-step call
                spread = 0.6 + (1.4 - 0.6) * self._rng.random()
                power = lift.idle_kw + lift.rated_kw * 0.5 * traffic * spread
                trips[lift.id] += int(self._rng.poisson(trips_mean))
            else:
                power = lift.idle_kw
            values[slots["power_kw"]] = power
            values[slots["in_service"]] = float(in_service)
            values[slots["fault_code"]] = 0.0 if in_service else float(ELEVATOR_FAULT_CODE)
            total += power
        return total

    def _ev_chargers(self, building: Building, p_arrival: float, t: datetime, values: memoryview[float]) -> float:
        """EV chargers: sessions arrive at random (seeded), charge within the limit, leave at departure.

        p_arrival: chance that a car arrives at a free charger during this step.
        """
        total = 0.0
        st = self._state
        for charger, slots in self._assets.ev_chargers[building.id]:
            session = st.ev_sessions[charger.id]
            if session is not None and t >= session.departure_utc:
                session = st.ev_sessions[charger.id] = None
            if session is None and self._rng.random() < p_arrival:
                session = st.ev_sessions[charger.id] = self._new_ev_session(charger, t)
                st.ev_session_energy_kwh[charger.id] = 0.0
            limit_kw = self._setpoints.get(slots["power_limit_kw"], charger.power_max_kw)
            power = 0.0
            if session is not None:
                remaining_kwh = max(0.0, session.energy_needed_kwh - session.delivered_kwh)
                power = min(charger.power_max_kw, limit_kw, remaining_kwh / self.step_h)
            values[slots["power_kw"]] = power
            values[slots["connected"]] = float(session is not None)
            values[slots["session_energy_kwh"]] = st.ev_session_energy_kwh[charger.id]
            values[slots["power_limit_kw"]] = limit_kw
            if session is not None:
                session.delivered_kwh += power * self.step_h
                st.ev_session_energy_kwh[charger.id] += power * self.step_h
            total += power
        return total

    def _new_ev_session(self, charger: EVCharger, t: datetime) -> EVSession:
        if charger.connector == "dc":
            energy, dwell_h = self._rng.uniform(15, 45), self._rng.uniform(0.5, 1.5)
        else:
            energy, dwell_h = self._rng.uniform(8, 30), self._rng.uniform(4, 9)
        return EVSession(energy, t + timedelta(hours=dwell_h))

    def _plant(self, cooling_load: float, temp_c: float, hour: float, faults: ActiveFaults,
               values: memoryview[float]) -> float:
        """Chillers and ice tank for one step; returns the chillers' electric power, kW."""
        st, dt_h, schedule = self._state, self.step_h, self.park.plant_schedule
        chillers, tank = self._assets.chillers, self._assets.tank
        commands = [int(self._setpoints.get(self._slots[c.id]["mode_cmd"], CMD_AUTO)) for c in chillers]
        charge_request = melt_request = 0.0
        if tank is not None:
            charge_default = tank.charge_rate_max_kwth if schedule.ice_charge.contains(hour) else 0.0
            melt_default = tank.melt_rate_max_kwth if any(w.contains(hour) for w in schedule.ice_melt) else 0.0
            charge_request = self._setpoints.get(self._slots[tank.id]["charge_setpoint_kwth"], charge_default)
            melt_request = self._setpoints.get(self._slots[tank.id]["melt_setpoint_kwth"], melt_default)
        step = operate_plant(chillers, commands, tank, st.ice_inventory_kwhth, cooling_load,
                             charge_request, melt_request, dt_h)
        total_kw = 0.0
        for chiller, command, result in zip(chillers, commands, step.chillers):
            slots = self._slots[chiller.id]
            setpoint_c = self._setpoints.get(slots["chw_setpoint_c"], chiller.chw_setpoint_c)
            running = result.cooling_kwth > 0
            cop = chiller_cop(chiller, result.mode, result.part_load, temp_c, setpoint_c)
            cop_drop = faults.get(("chiller_cop_drop", chiller.id))
            if cop_drop is not None:
                cop *= cop_drop.magnitude
            power = result.cooling_kwth / cop if running else 0.0
            if running and not st.chiller_running[chiller.id]:
                st.chiller_starts[chiller.id] += 1
            st.chiller_running[chiller.id] = running
            supply_c, return_c = self._chw_temperatures(chiller, result.mode if running else MODE_OFF,
                                                        result.part_load, setpoint_c, step.unmet_kwth,
                                                        cooling_load, faults)
            values[slots["running"]] = float(running)
            values[slots["mode"]] = float(result.mode if running else MODE_OFF)
            values[slots["power_kw"]] = power
            values[slots["cooling_kwth"]] = result.cooling_kwth
            values[slots["cop"]] = cop if running else 0.0
            values[slots["chw_supply_temp_c"]] = supply_c
            values[slots["chw_return_temp_c"]] = return_c
            values[slots["starts_count"]] = float(st.chiller_starts[chiller.id])
            values[slots["chw_setpoint_c"]] = setpoint_c
            values[slots["mode_cmd"]] = float(command)
            total_kw += power
        if tank is not None:
            slots = self._slots[tank.id]
            values[slots["inventory_kwhth"]] = st.ice_inventory_kwhth
            values[slots["soc_pct"]] = 100.0 * st.ice_inventory_kwhth / tank.capacity_kwhth
            values[slots["charge_kwth"]] = step.charge_kwth
            values[slots["melt_kwth"]] = step.melt_kwth
            values[slots["cooling_delivered_kwth"]] = step.cooling_delivered_by_ice_kwth
            values[slots["standing_loss_kwth"]] = step.standing_loss_kwth
            values[slots["charge_setpoint_kwth"]] = charge_request
            values[slots["melt_setpoint_kwth"]] = melt_request
            st.ice_inventory_kwhth = tank.inventory_after_kwhth(st.ice_inventory_kwhth, step.charge_kwth,
                                                                step.melt_kwth, step.standing_loss_kwth, dt_h)
        return total_kw

    def _chw_temperatures(self, chiller: Chiller, mode: int, part_load: float, setpoint_c: float,
                          unmet_kwth: float, load_kwth: float, faults: ActiveFaults) -> tuple[float, float]:
        """Supply and return temperature, degC: setpoint (rising when load is unmet), glycol in ice mode."""
        noise = 0.05 * self._rng.standard_normal()
        if mode == MODE_OFF:
            return CHW_LOOP_IDLE_C + noise, CHW_LOOP_IDLE_C + noise
        if mode == MODE_ICE:
            supply = GLYCOL_SUPPLY_C + noise
            return supply, supply + 0.5 + 3.0 * part_load
        rise_k = chiller.design_delta_t_k * unmet_kwth / load_kwth if load_kwth > 0 else 0.0
        supply = setpoint_c + rise_k + noise
        low_delta_t = faults.get(("chw_low_delta_t", chiller.id))
        delta_t = low_delta_t.magnitude if low_delta_t else chiller.design_delta_t_k * (0.6 + 0.4 * part_load)
        return supply, supply + delta_t

    def _pv(self, cond: list[float], faults: ActiveFaults, values: memoryview[float]) -> float:
        """PV arrays: the environment's AC power less lost strings, capped by the power limit."""
        total = 0.0
        for array, slots in self._assets.pv_arrays:
            ac_at, poa_at, cell_at = self._pv_conditions[array.id]
            ac_kw = cond[ac_at]
            outage = faults.get(("pv_string_outage", array.id))
            if outage is not None:
                ac_kw *= max(0.0, 1.0 - outage.magnitude / array.strings_count)
            limit_pct = self._setpoints.get(slots["power_limit_pct"], 100.0)
            ac_kw = min(ac_kw, array.inverter_ac_kw * limit_pct / 100.0)
            values[slots["ac_power_kw"]] = ac_kw
            values[slots["energy_kwh"]] = self._state.pv_energy_kwh[array.id]
            values[slots["poa_irradiance_wm2"]] = cond[poa_at]
            values[slots["cell_temp_c"]] = cond[cell_at]
            values[slots["power_limit_pct"]] = limit_pct
            self._state.pv_energy_kwh[array.id] += ac_kw * self.step_h
            total += ac_kw
        return total

    def _batteries(self, net_load_kw: float, hour: float, faults: ActiveFaults, values: memoryview[float]) -> float:
        """Batteries follow their setpoint within power, SOC window and efficiencies; returns kW (+ discharge).

        Without a written setpoint the plant schedule charges in the valley window
        and discharges in the peak windows without exporting.
        """
        total = 0.0
        schedule = self.park.plant_schedule
        dt_h = self.step_h
        for battery, slots in self._assets.batteries:
            stored = self._state.battery_stored_kwh[battery.id]
            if schedule.battery_charge.contains(hour):
                default_kw = -schedule.battery_power_fraction * battery.charge_power_max_kw
            elif any(w.contains(hour) for w in schedule.battery_discharge):
                default_kw = min(schedule.battery_power_fraction * battery.discharge_power_max_kw,
                                 max(0.0, net_load_kw - total))
            else:
                default_kw = 0.0
            setpoint_kw = self._setpoints.get(slots["power_setpoint_kw"], default_kw)
            power, stored_after = battery.follow(stored, setpoint_kw, dt_h)
            load_share = abs(power) / max(battery.charge_power_max_kw, battery.discharge_power_max_kw)
            overtemp = faults.get(("battery_overtemp", battery.id))
            values[slots["power_kw"]] = power
            values[slots["soc_pct"]] = 100.0 * stored / battery.energy_capacity_kwh
            values[slots["stored_energy_kwh"]] = stored
            values[slots["cell_temp_max_c"]] = (27.0 + 8.0 * load_share
                                                + (overtemp.magnitude if overtemp else 0.0)
                                                + 0.05 * self._rng.standard_normal())
            values[slots["cell_voltage_spread_v"]] = 0.02 + 0.03 * load_share
            values[slots["power_setpoint_kw"]] = setpoint_kw
            self._state.battery_stored_kwh[battery.id] = stored_after
            total += power
        return total

    def _meters(self, building_load_kw: dict[str, float], pv_total_kw: float, battery_kw: float,
                values: memoryview[float]) -> None:
        """Meters: building meters sum their building's loads (not PV or battery); the grid meter
        measures loads - PV - battery discharge + battery charge. Each adds its accuracy as noise."""
        grid_kw = sum(building_load_kw.values()) - pv_total_kw - battery_kw
        for meter, slots in self._assets.meters:
            true_kw = grid_kw if meter.measures == "grid" else building_load_kw[self._bid[meter.id]]
            measured_kw = true_kw * (1.0 + meter.accuracy_pct / 100.0 * 0.5 * self._rng.standard_normal())
            values[slots["power_kw"]] = measured_kw
            values[slots["import_energy_kwh"]] = self._state.meter_import_kwh[meter.id]
            values[slots["export_energy_kwh"]] = self._state.meter_export_kwh[meter.id]
            self._state.meter_import_kwh[meter.id] += max(0.0, measured_kw) * self.step_h
            self._state.meter_export_kwh[meter.id] += max(0.0, -measured_kw) * self.step_h

    # --------------------------------------------------------------- helpers

    def _active_faults(self, t: datetime) -> ActiveFaults:
        """The faults in force at t, looked up once per step (faults may be injected between any two steps)."""
        active: ActiveFaults = {}
        for fault in self._faults:
            if fault.active(t):
                active.setdefault((fault.kind, fault.target), fault)
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
        environment's row, each column at its position in ``_conditions_column`` (PV arrays' columns also
        in ``_pv_conditions``)."""
        if self._conditions_start is None or t.date() != self._conditions_start.date():
            day = pd.Timestamp(t).floor("D")
            index = pd.date_range(day, day + pd.Timedelta(days=1), freq=self.step, inclusive="left")
            frame = self.environment.conditions(index)
            self._conditions_column = {name: k for k, name in enumerate(frame.columns)}
            column = self._conditions_column
            self._pv_conditions = {array.id: (column[f"{array.id}.ac_kw"], column[f"{array.id}.poa_wm2"],
                                              column[f"{array.id}.cell_temp_c"])
                                   for array, _ in self._assets.pv_arrays}
            self._conditions_rows = frame.to_numpy(dtype=float).tolist()
            self._conditions_start = day.to_pydatetime()
        position = (t - self._conditions_start) // self.step
        return self._conditions_rows[position]


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
