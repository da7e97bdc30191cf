"""What a plan asks of the park's devices: the setpoints of each plan step, by point id."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from twin.kinds import Battery, Chiller, IceTank, PVArray
from twin.park import Park
from twin.plant import CMD_AUTO, CMD_ICE
from twin.points import point_id


def table_setpoints(park: Park, table: pd.DataFrame | Mapping[str, np.ndarray]) -> list[dict[str, float]]:
    """The setpoints each step of a plan table (or its columns, optimizer.plan.dispatch_columns) asks
    of the park, by point id, clipped to each asset's limits: battery power (kW, + discharge), ice
    charge and melt (kWth), ice-making chillers' mode, PV power limit (%). One dict per step, worked
    out a column at a time."""
    columns: dict[str, np.ndarray] = {}
    pv_arrays = [(b.id, a) for b, a in park.iter_assets() if isinstance(a, PVArray)]
    pv_rating_kw = sum(a.inverter_ac_kw for _, a in pv_arrays)

    def column(name: str) -> np.ndarray:
        return np.asarray(table[name], dtype=float)

    for building, asset in park.iter_assets():
        if isinstance(asset, Battery):
            columns[point_id(building.id, asset.id, "power_setpoint_kw")] = np.clip(
                column(f"{asset.id}.power_setpoint_kw"), -asset.charge_power_max_kw, asset.discharge_power_max_kw)
        elif isinstance(asset, IceTank):
            columns[point_id(building.id, asset.id, "charge_setpoint_kwth")] = np.clip(
                column(f"{asset.id}.charge_kwth"), 0.0, asset.charge_rate_max_kwth)
            columns[point_id(building.id, asset.id, "melt_setpoint_kwth")] = np.clip(
                column(f"{asset.id}.melt_kwth"), 0.0, asset.melt_rate_max_kwth)
        elif isinstance(asset, Chiller) and asset.makes_ice:
            columns[point_id(building.id, asset.id, "mode_cmd")] = np.where(
                column(f"{asset.id}.ice_kwth") > 1e-3, float(CMD_ICE), float(CMD_AUTO))
    curtailed = column("pv_curtailed_kw") > 1e-3
    share_pct = 100.0 * np.minimum(1.0, column("pv_used_kw") / pv_rating_kw) if pv_rating_kw else 100.0
    for building_id, array in pv_arrays:
        columns[point_id(building_id, array.id, "power_limit_pct")] = np.where(curtailed, share_pct, 100.0)
    by_point = {point: values.tolist() for point, values in columns.items()}
    return [{point: values[k] for point, values in by_point.items()} for k in range(len(curtailed))]
