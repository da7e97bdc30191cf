"""Which points measure which subsystem's electric power.

Subsystems are the groups facility managers read consumption by: chillers,
lighting, elevators, EV charging and "other" (building plug loads and
auxiliaries, the part of the building sub-meters no subsystem point explains),
plus the sources PV, battery and grid.
"""

from __future__ import annotations

import pandas as pd

from twin.kinds import Battery, Chiller, Elevator, EVCharger, IceTank, Lighting, Meter, PVArray, WeatherStation
from twin.park import Park
from twin.plant import MODE_DIRECT
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
    return {str(name): float(v) for name, v in subsystem_power_frame(park, row).iloc[0].items()}


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


def planning_load_points(park: Park) -> dict[str, list[str]]:
    """Point ids that :func:`planning_loads_frame` reads, by role: chillers' cooling, mode and electric
    power, ice delivered, grid (+ import), PV AC, battery (+ discharge), and the weather station's
    outdoor temperature and GHI (the first station; none: empty lists)."""
    groups = power_points(park)
    roles: dict[str, list[str]] = {"chiller_cooling": [], "chiller_mode": [], "ice_delivered": [],
                                   "outdoor_temp": [], "ghi": []}
    for building, asset in park.iter_assets():
        if isinstance(asset, Chiller):
            roles["chiller_cooling"].append(point_id(building.id, asset.id, "cooling_kwth"))
            roles["chiller_mode"].append(point_id(building.id, asset.id, "mode"))
        elif isinstance(asset, IceTank):
            roles["ice_delivered"].append(point_id(building.id, asset.id, "cooling_delivered_kwth"))
        elif isinstance(asset, WeatherStation) and not roles["outdoor_temp"]:
            roles["outdoor_temp"].append(point_id(building.id, asset.id, "outdoor_temp_c"))
            roles["ghi"].append(point_id(building.id, asset.id, "ghi_wm2"))
    roles.update(chiller_power=groups["chillers"], grid=groups["grid"], pv=groups["pv"], battery=groups["battery"])
    return roles


def planning_loads_frame(park: Park, wide: pd.DataFrame) -> pd.DataFrame:
    """The loads a dispatch plan is made for, for every row of a wide frame of point values.

    Columns: ``cooling_load_kwth`` (chilled water made directly by chillers in direct mode plus cooling
    delivered by melting ice: the buildings' load, whatever carried it), ``other_load_kw`` (grid + PV +
    battery discharge - chillers: every electric load the plan does not schedule, never below 0),
    ``pv_kw``, ``temp_air_c`` and ``ghi_wm2`` (NaN without a weather station). Missing power points
    count as 0.
    """
    roles = planning_load_points(park)

    def total(role: str) -> pd.Series:
        present = [pid for pid in roles[role] if pid in wide.columns]
        return wide[present].fillna(0.0).sum(axis=1) if present else pd.Series(0.0, index=wide.index)

    direct = pd.Series(0.0, index=wide.index)
    for cooling, mode in zip(roles["chiller_cooling"], roles["chiller_mode"]):
        if cooling in wide.columns and mode in wide.columns:
            direct = direct + wide[cooling].fillna(0.0) * (wide[mode] == MODE_DIRECT)
    pv_kw = total("pv")
    result = pd.DataFrame({
        "cooling_load_kwth": direct + total("ice_delivered"),
        "other_load_kw": (total("grid") + pv_kw + total("battery") - total("chiller_power")).clip(lower=0.0),
        "pv_kw": pv_kw,
    }, index=wide.index)
    for column, role in (("temp_air_c", "outdoor_temp"), ("ghi_wm2", "ghi")):
        present = [pid for pid in roles[role] if pid in wide.columns]
        result[column] = wide[present[0]] if present else float("nan")
    return result
