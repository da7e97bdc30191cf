"""The park as a controller sees it, and the simulated park behind that view.

:class:`FieldState` is what a plan starts from. :class:`SimulatedField` is the
field of backtests: it owns a :class:`twin.sim.ParkSimulator`, writes
setpoints into it, advances it, and keeps what its meters measured (grid and PV
power each simulator step, the month's billed demand peak, and hourly means of
the loads a plan is made for, as a load history for forecasters). It is the
only code that writes into the simulator on a controller's behalf.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd

from twin.assets import IceTank
from twin.park import Park
from twin.sim import ParkSimulator
from twin.subsystems import planning_load_points, planning_loads_frame


@dataclass(frozen=True)
class FieldState:
    """What a plan starts from, read from the field at ``now_utc``.

    ``battery_stored_kwh`` and ``ice_inventory_kwhth`` by asset id (an asset whose reading is
    missing or not good is left out, and the plan uses its model default); ``month_peak_kw``:
    the highest demand-interval mean import billed so far in the current local month, kW;
    ``last_step_import_kw``: mean grid import over the control step that just ended, kW (None:
    not known), which controllers compare with what their plan expected.
    """

    now_utc: datetime
    battery_stored_kwh: dict[str, float] = field(default_factory=dict)
    ice_inventory_kwhth: dict[str, float] = field(default_factory=dict)
    month_peak_kw: float = 0.0
    last_step_import_kw: float | None = None


class MonthPeak:
    """The month's billed demand: the highest mean grid import (kW, + import) over a demand interval
    of the local calendar month, from power samples in time order. Samples of an unfinished interval
    are not billed yet; the peak starts again at 0 when the local month changes."""

    def __init__(self, timezone: str, interval_min: int):
        self.timezone = timezone
        self.interval = pd.Timedelta(minutes=interval_min)
        self.peak_kw = 0.0
        self._month: tuple[int, int] | None = None
        self._interval_start: pd.Timestamp | None = None
        self._sum_kw = 0.0
        self._count = 0

    def add(self, ts_utc: datetime, import_kw: float) -> None:
        start = pd.Timestamp(ts_utc).tz_convert(self.timezone).floor(self.interval)
        if start != self._interval_start:
            self._close_interval()
            self._interval_start = start
            month = (start.year, start.month)
            if month != self._month:
                self._month, self.peak_kw = month, 0.0
        self._sum_kw += max(0.0, import_kw)
        self._count += 1

    def _close_interval(self) -> None:
        if self._count:
            self.peak_kw = max(self.peak_kw, self._sum_kw / self._count)
        self._sum_kw, self._count = 0.0, 0


class SimulatedField:
    """A :class:`ParkSimulator` driven as a field: the controller's port for backtests.

    ``grid_point``: the grid meter's power point (kW, + import). Setpoints are written with the
    simulator's own limits (a value outside a point's safe limits is refused, not clipped). Each
    :meth:`advance` step records grid and PV power and the planning loads (twin.subsystems).
    ``history``: hourly planning loads measured before the simulator's start (:meth:`hourly_loads`
    returns them as well), e.g. from a warm-up run.
    """

    def __init__(self, simulator: ParkSimulator, demand_interval_min: int, history: pd.DataFrame | None = None):
        self.simulator = simulator
        park: Park = simulator.park
        self._tank_ids = [a.id for a in park.assets_of(IceTank)]
        roles = planning_load_points(park)
        ids = simulator.point_ids
        self._grid_cols = [ids.index(p) for p in roles["grid"]]
        self._pv_cols = [ids.index(p) for p in roles["pv"]]
        self._load_ids = sorted({p for points in roles.values() for p in points})
        self._load_cols = [ids.index(p) for p in self._load_ids]
        self._month_peak = MonthPeak(park.site.timezone, demand_interval_min)
        self._written: set[str] = set()
        self._times: list[datetime] = []
        self._grid_kw: list[float] = []
        self._pv_kw: list[float] = []
        self._load_rows: list[np.ndarray] = []
        self._hourly = history  # planning loads, hourly means, up to the last whole hour
        self._hourly_done = 0  # steps already in _hourly
        self._step_start = 0  # index into the step lists where the current control step began

    # ------------------------------------------------------------------ Field port

    def now_utc(self) -> datetime:
        return self.simulator.now_utc

    def read_state(self) -> FieldState:
        ice_kwhth, stored = self.simulator.storage_state()
        inventory = {tank_id: ice_kwhth for tank_id in self._tank_ids}
        recent = self._grid_kw[self._step_start:]
        last_import = float(np.mean(np.clip(recent, 0.0, None))) if recent else None
        self._step_start = len(self._grid_kw)
        return FieldState(self.simulator.now_utc, stored, inventory, self._month_peak.peak_kw, last_import)

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
        results = {point: "ok" for point in sorted(self._written)}
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
            self._month_peak.add(out.ts_utc, grid_kw)

    def meter_series(self) -> tuple[pd.Series, pd.Series]:
        """Grid meter power (kW, + import) and PV AC power (kW) at every simulated step so far."""
        index = pd.DatetimeIndex(self._times)
        return pd.Series(self._grid_kw, index=index), pd.Series(self._pv_kw, index=index)

    def hourly_loads(self, start_utc: datetime, end_utc: datetime) -> pd.DataFrame:
        """Hourly means of the planning loads (twin.subsystems.planning_loads_frame) over whole hours
        in [start, end) that have been simulated; the load history a forecaster learns from."""
        self._update_hourly()
        hourly = self._hourly
        if hourly is None:
            return pd.DataFrame(columns=["cooling_load_kwth", "other_load_kw", "pv_kw", "temp_air_c", "ghi_wm2"])
        return hourly[(hourly.index >= pd.Timestamp(start_utc)) & (hourly.index < pd.Timestamp(end_utc))]

    def _update_hourly(self) -> None:
        """Turn the steps of every whole hour simulated since the last call into hourly means."""
        if not self._times:
            return
        last_hour = pd.Timestamp(self._times[-1] + self.simulator.step).floor("h")
        new_times = pd.DatetimeIndex(self._times[self._hourly_done:])
        end = self._hourly_done + int(new_times.searchsorted(last_hour))
        if end <= self._hourly_done:
            return
        wide = pd.DataFrame(np.vstack(self._load_rows[self._hourly_done:end]), columns=self._load_ids,
                            index=new_times[:end - self._hourly_done])
        hourly = planning_loads_frame(self.simulator.park, wide).resample("1h").mean().dropna(how="all")
        self._hourly = hourly if self._hourly is None else pd.concat([self._hourly, hourly])
        self._hourly_done = end
