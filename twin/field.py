"""The park as a controller sees it, and the simulated park behind that view.

:class:`FieldState` is what a plan starts from. :class:`SimulatedField` is the
field of backtests: it owns a :class:`twin.sim.ParkSimulator`, writes
setpoints into it, advances it, and keeps what its meters measured (grid and PV
power each simulator step, the month's billed demand peak, and quarter-hour means of
the loads a plan is made for, as a load history for forecasters). It is the
only code that writes into the simulator on a controller's behalf.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd

from twin.kinds.base import Role
from twin.metering import BilledDemand
from twin.park import Park
from twin.sim import ParkSimulator
from twin.subsystems import planning_load_points, planning_loads_frame

QUARTER_HOUR = pd.Timedelta(minutes=15)


@dataclass(frozen=True)
class FieldState:
    """What a plan starts from, read from the field at ``now_utc``.

    ``stored``: what each storage asset stores, by asset id, in the unit of its kind's stored point (kWh,
    kWhth; twin.kinds.base.AssetBase.stored_point); an asset whose reading is
    missing or not good is left out, and the plan uses its model default. ``month_peak_kw``:
    the highest demand-interval mean import billed so far in the current local month, kW;
    ``last_interval``: start (UTC) and mean grid import (kW) of the last demand interval the meter has
    completed (None: none yet), which controllers compare with what their plan expected for it.
    """

    now_utc: datetime
    stored: dict[str, float] = field(default_factory=dict)
    month_peak_kw: float = 0.0
    last_interval: tuple[pd.Timestamp, float] | None = None


class SimulatedField:
    """A :class:`ParkSimulator` driven as a field: the controller's port for backtests.

    ``grid_point``: the grid meter's power point (kW, + import). Setpoints are written with the
    simulator's own limits (a value outside a point's safe limits is refused, not clipped). Each
    :meth:`advance` step records grid and PV power and the planning loads (twin.subsystems).
    ``history``: quarter-hour planning loads measured before the simulator's start
    (:meth:`quarter_hour_loads` returns them as well), e.g. from a warm-up run.
    """

    def __init__(self, simulator: ParkSimulator, demand_interval_min: int, history: pd.DataFrame | None = None):
        self.simulator = simulator
        park: Park = simulator.park
        roles = planning_load_points(park)
        ids = simulator.point_ids
        self._grid_cols = [ids.index(p) for p in roles["grid"]]
        self._pv_cols = [ids.index(p) for p in roles["pv"]]
        self._load_ids = sorted({p for points in roles.values() for p in points})
        self._load_cols = [ids.index(p) for p in self._load_ids]
        self._grid_meter = park.assets_with_role(Role.GRID_POWER)[0].id
        self._billed = BilledDemand(park.site.timezone, demand_interval_min)
        self._billed.add(simulator.now_utc, simulator.meter_import_kwh(self._grid_meter))
        self._written: set[str] = set()
        self._times: list[datetime] = []
        self._grid_kw: list[float] = []
        self._pv_kw: list[float] = []
        self._load_rows: list[np.ndarray] = []
        self._quarters = history  # planning loads, quarter-hour means, up to the last whole hour
        self._quarters_done = 0  # steps already in _quarters

    # ------------------------------------------------------------------ Field port

    def now_utc(self) -> datetime:
        return self.simulator.now_utc

    def read_state(self, at_utc: datetime | None = None) -> FieldState:
        """The simulator's state now; a simulated field has no other time to read at (``at_utc``, when
        given, must be now: backtests prepare and dispatch each step at once)."""
        if at_utc is not None and at_utc != self.simulator.now_utc:
            raise ValueError(f"a simulated field is read at its own clock ({self.simulator.now_utc}), not {at_utc}")
        return FieldState(self.simulator.now_utc, self.simulator.storage_state(), self._billed.peak_kw,
                          self._billed.last_interval)

    def write_setpoints(self, setpoints: dict[str, float], who: str) -> dict[str, str]:
        results = {}
        for point, value in setpoints.items():
            try:
                self.simulator.write_setpoint(point, value)
                self._written.add(point)
                results[point] = "ok"
            except (KeyError, ValueError) as exc:
                results[point] = f"refused: {exc}"
        return results

    def release_setpoints(self, who: str) -> dict[str, str]:
        for point in self._written:
            self.simulator.release_setpoint(point)
        results = dict.fromkeys(sorted(self._written), "ok")
        self._written.clear()
        return results

    # ------------------------------------------------------------------ simulation

    def advance(self, until_utc: datetime) -> None:
        """Simulate up to ``until_utc``, recording what the meters measured each step."""
        while self.simulator.now_utc < until_utc:
            out = self.simulator.advance()
            values = out.values
            grid_kw = float(sum(values[c] for c in self._grid_cols))
            self._times.append(out.ts_utc)
            self._grid_kw.append(grid_kw)
            self._pv_kw.append(float(sum(values[c] for c in self._pv_cols)))
            self._load_rows.append(values[self._load_cols])
        self._billed.add(self.simulator.now_utc, self.simulator.meter_import_kwh(self._grid_meter))

    def meter_series(self) -> tuple[pd.Series, pd.Series]:
        """Grid meter power (kW, + import) and PV AC power (kW) at every simulated step so far."""
        index = pd.DatetimeIndex(self._times)
        return pd.Series(self._grid_kw, index=index), pd.Series(self._pv_kw, index=index)

    def quarter_hour_loads(self, start_utc: datetime, end_utc: datetime) -> pd.DataFrame:
        """Quarter-hour means of the planning loads (twin.subsystems.planning_loads_frame) over whole hours
        in [start, end) that have been simulated; the load history a forecaster learns from."""
        self._update_quarters()
        quarters = self._quarters
        if quarters is None:
            return pd.DataFrame(columns=["cooling_load_kwth", "other_load_kw", "pv_kw", "temp_air_c", "ghi_wm2"],
                                index=pd.DatetimeIndex([], tz="UTC"), dtype=float)
        return quarters[(quarters.index >= pd.Timestamp(start_utc)) & (quarters.index < pd.Timestamp(end_utc))]

    def _update_quarters(self) -> None:
        """Turn the steps of every whole hour simulated since the last call into quarter-hour means."""
        if not self._times:
            return
        last_hour = pd.Timestamp(self._times[-1] + self.simulator.step).floor("h")
        new_times = pd.DatetimeIndex(self._times[self._quarters_done:])
        end = self._quarters_done + int(new_times.searchsorted(last_hour))
        if end <= self._quarters_done:
            return
        wide = pd.DataFrame(np.vstack(self._load_rows[self._quarters_done:end]), columns=self._load_ids,
                            index=new_times[:end - self._quarters_done])
        quarters = planning_loads_frame(self.simulator.park, wide).resample(QUARTER_HOUR).mean().dropna(how="all")
        self._quarters = quarters if self._quarters is None else pd.concat([self._quarters, quarters])
        self._quarters_done = end
