"""Horizon inputs built from the park model, for plans without a forecast file and for backtests.

The loads come from a run of the park simulator with storage held (battery
setpoint 0, no ice charge or melt, chillers automatic): the cooling load the
chillers then carry, and every other electric load (grid meter + PV - chillers),
as 15-minute means. PV available is the simulated AC output without curtailment,
outdoor temperature is the environment's. The simulator is seeded by the park
file, so the same park and dates give the same inputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import cast

import numpy as np
import pandas as pd

from optimizer.inputs import HorizonInputs
from twin.kinds.base import Role
from twin.park import Park
from twin.points import point_id
from twin.sim import Environment, ParkSimulator

PLAN_STEP = pd.Timedelta(minutes=15)


def hold_storage_setpoints(park: Park) -> dict[str, float]:
    """Setpoints that keep every storage asset idle (its kind's ``hold_setpoints``), in park order."""
    return {point_id(building.id, asset.id, name): value for building, asset in park.iter_assets()
            for name, value in asset.hold_setpoints.items()}


@dataclass
class HoldStorageRun:
    """A run of the simulator with every battery and ice tank idle (:func:`hold_storage_setpoints`)."""

    loads: pd.DataFrame
    """15-minute means of cooling load (kWth), other electric load (kW), PV available (kW) and
    outdoor temperature (degC)."""
    grid_kw: pd.Series
    """Grid meter power each simulator step, kW (+ import)."""
    pv_kw: pd.Series
    """PV AC power each simulator step, kW."""


def hold_storage_run(park: Park, environment: Environment, start_utc: datetime, end_utc: datetime) -> HoldStorageRun:
    """Simulate [start, end) with storage held: the loads the plant sees, and what the grid meter read."""
    simulator = ParkSimulator(park, environment, start_utc)
    for point, value in hold_storage_setpoints(park).items():
        simulator.write_setpoint(point, value)
    ids = simulator.point_ids
    index_of = {pid: i for i, pid in enumerate(ids)}

    def columns(role: Role) -> list[int]:
        return [index_of[point] for point in park.role_points(role)]

    cooling_cols = columns(Role.CHILLER_COOLING)
    chiller_power_cols = columns(Role.CHILLER_POWER)
    pv_cols = columns(Role.PV_POWER)
    grid_col = columns(Role.GRID_POWER)
    times, cooling, other, pv, grid = [], [], [], [], []
    while simulator.now_utc < end_utc:
        out = simulator.advance()
        values = out.values.tolist()  # Python floats summed left to right, as ndarray.sum sums so few
        times.append(out.ts_utc)
        pv_kw = sum(values[c] for c in pv_cols)
        grid_kw = sum(values[c] for c in grid_col)
        cooling.append(sum(values[c] for c in cooling_cols))
        pv.append(pv_kw)
        grid.append(grid_kw)
        other.append(grid_kw + pv_kw - sum(values[c] for c in chiller_power_cols))
    index = pd.DatetimeIndex(times)
    minute = pd.DataFrame({"cooling_load_kwth": cooling, "other_load_kw": other, "pv_available_kw": pv}, index=index)
    frame = minute.resample(PLAN_STEP).mean()
    middles = cast(pd.DatetimeIndex, frame.index) + PLAN_STEP / 2
    frame["outdoor_temp_c"] = environment.conditions(middles)["temp_air_c"].to_numpy()
    frame["other_load_kw"] = frame["other_load_kw"].clip(lower=0.0)
    return HoldStorageRun(frame, pd.Series(grid, index=index), pd.Series(pv, index=index))


def simulated_loads(park: Park, environment: Environment, start_utc: datetime, end_utc: datetime) -> pd.DataFrame:
    """15-minute means of cooling load (kWth), other electric load (kW), PV available (kW) and
    outdoor temperature (degC) over [start, end) from a hold-storage run of the simulator."""
    return hold_storage_run(park, environment, start_utc, end_utc).loads


class PerfectForecaster:
    """Perfect foresight for backtests: the loads, PV and outdoor temperature of a hold-storage run of
    the same simulator (:func:`hold_storage_run`'s ``loads``, at :data:`PLAN_STEP`), read off for
    any horizon they cover. Meter noise and the plant's own staging are not foreseen."""

    def __init__(self, loads: pd.DataFrame):
        self.loads = loads

    def forecast(self, start_utc: datetime, steps: int, step: pd.Timedelta) -> pd.DataFrame:
        if step != PLAN_STEP:
            raise ValueError(f"perfect forecasts are at {PLAN_STEP}, not {step}")
        position = cast(int, self.loads.index.get_loc(pd.Timestamp(start_utc)))  # the index is unique
        window = self.loads.iloc[position:position + steps]
        if len(window) < steps:
            raise ValueError(f"perfect forecasts end at {self.loads.index[-1] + PLAN_STEP}; "
                             f"{steps} steps from {start_utc} go past it")
        return window


def park_horizon_inputs(loads: pd.DataFrame, price_cny_per_kwh: pd.Series,
                        export_price_cny_per_kwh: float | pd.Series) -> HorizonInputs:
    """Horizon inputs from simulated loads and prices (prices forward-filled onto the loads' 15-min index)."""
    index = loads.index
    price = price_cny_per_kwh.reindex(price_cny_per_kwh.index.union(index)).ffill().reindex(index)
    return HorizonInputs.from_series(loads["cooling_load_kwth"], loads["pv_available_kw"], loads["other_load_kw"],
                                     price, export_price_cny_per_kwh, loads["outdoor_temp_c"])


def prices_cover(price_cny_per_kwh: pd.Series, index: pd.DatetimeIndex) -> list[str]:
    """Problems with a price series for this horizon (empty when it covers every step)."""
    if price_cny_per_kwh.empty:
        return ["no prices"]
    first, last = price_cny_per_kwh.index[0], price_cny_per_kwh.index[-1]
    step = (price_cny_per_kwh.index[1] - first) if len(price_cny_per_kwh) > 1 else PLAN_STEP
    if first > index[0] or last + step < index[-1] + PLAN_STEP:
        return [(f"prices cover {first:%Y-%m-%d %H:%M} to {last + step:%Y-%m-%d %H:%M} UTC; the plan needs "
                f"{index[0]:%Y-%m-%d %H:%M} to {index[-1] + PLAN_STEP:%Y-%m-%d %H:%M} UTC")]
    if not np.isfinite(price_cny_per_kwh.to_numpy()).all():
        return ["prices contain values that are not finite"]
    return []
