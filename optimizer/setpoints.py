"""What a plan asks of the park's devices: the setpoints of each plan step, by point id."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from twin.kinds.base import AssetBase
from twin.park import Park
from twin.points import point_id


def table_setpoints(park: Park, table: pd.DataFrame | Mapping[str, np.ndarray]) -> list[dict[str, float]]:
    """The setpoints each step of a plan table (or its columns, optimizer.plan.dispatch_columns) asks
    of the park, by point id, clipped to the points' limits: what each asset's kind reads off the plan
    (twin.kinds.base.AssetBase.plan_setpoints), assets planned one by one first, then those planned as
    one (``plan_shared``), each in park order. One dict per step, worked out a column at a time."""
    columns: dict[str, np.ndarray] = {}
    assets: list[tuple[str, AssetBase]] = [(building.id, asset) for building, asset in park.iter_assets()]
    peers: dict[type[AssetBase], list[AssetBase]] = {}
    for _, asset in assets:
        peers.setdefault(type(asset), []).append(asset)

    def column(name: str) -> np.ndarray:
        return np.asarray(table[name], dtype=float)

    for building_id, asset in sorted(assets, key=lambda pair: pair[1].plan_shared):
        specs = {spec.name: spec for spec in asset.point_specs()}
        for name, values in asset.plan_setpoints(column, peers[type(asset)]).items():
            columns[point_id(building_id, asset.id, name)] = np.clip(values, specs[name].low_limit,
                                                                     specs[name].high_limit)
    steps = len(column(str(next(iter(table)))))  # every column has a value per step
    by_point = {point: values.tolist() for point, values in columns.items()}
    return [{point: values[k] for point, values in by_point.items()} for k in range(steps)]
