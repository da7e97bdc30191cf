"""Which points measure which subsystem's electric power.

Subsystems are the groups facility managers read consumption by: chillers,
lighting, elevators, EV charging and "other" (building plug loads and
auxiliaries, the part of the building sub-meters no subsystem point explains),
plus the sources PV, battery and grid.
"""

from __future__ import annotations

import pandas as pd

from twin.assets import Battery, Chiller, Elevator, EVCharger, Lighting, Meter, PVArray
from twin.park import Park
from twin.points import point_id

LOAD_SUBSYSTEMS: dict[str, type] = {
    "chillers": Chiller,
    "lighting": Lighting,
    "elevators": Elevator,
    "ev": EVCharger,
}


def power_points(park: Park) -> dict[str, list[str]]:
    """Point ids of electric power (kW) per group.

    Keys: the load subsystems, ``building_meters`` (used to derive "other"),
    ``pv`` (AC output), ``battery`` (+ discharge) and ``grid`` (+ import).
    """
    groups: dict[str, list[str]] = {name: [] for name in LOAD_SUBSYSTEMS}
    groups.update(building_meters=[], pv=[], battery=[], grid=[])
    for building, asset in park.iter_assets():
        for name, cls in LOAD_SUBSYSTEMS.items():
            if isinstance(asset, cls):
                groups[name].append(point_id(building.id, asset.id, "power_kw"))
        if isinstance(asset, PVArray):
            groups["pv"].append(point_id(building.id, asset.id, "ac_power_kw"))
        elif isinstance(asset, Battery):
            groups["battery"].append(point_id(building.id, asset.id, "power_kw"))
        elif isinstance(asset, Meter):
            key = "grid" if asset.measures == "grid" else "building_meters"
            groups[key].append(point_id(building.id, asset.id, "power_kw"))
    return groups


def subsystem_power_kw(park: Park, values: dict[str, float]) -> dict[str, float]:
    """Power per subsystem from point values (kW); missing points count as 0.

    ``other`` = building sub-meters - chillers - lighting - elevators - EV, never below 0.
    """
    row = pd.DataFrame([{pid: v for pid, v in values.items() if v is not None}], dtype=float)
    return {name: float(v) for name, v in subsystem_power_frame(park, row).iloc[0].items()}


def subsystem_power_frame(park: Park, wide: pd.DataFrame) -> pd.DataFrame:
    """Power per subsystem (kW) for every row of a wide frame of point values (columns: point ids).

    Missing columns and NaN count as 0. Result columns: the load subsystems,
    ``other`` (as in :func:`subsystem_power_kw`), ``pv``, ``battery`` (+ discharge)
    and ``grid`` (+ import); same index as ``wide``.
    """
    groups = power_points(park)

    def total(name: str) -> pd.Series:
        present = [pid for pid in groups[name] if pid in wide.columns]
        return wide[present].fillna(0.0).sum(axis=1) if present else pd.Series(0.0, index=wide.index)

    result = pd.DataFrame({name: total(name) for name in LOAD_SUBSYSTEMS}, index=wide.index)
    result["other"] = (total("building_meters") - result.sum(axis=1)).clip(lower=0.0)
    for name in ("pv", "battery", "grid"):
        result[name] = total(name)
    return result
