"""Which points measure which power group's electric power, and the loads a dispatch plan is made for.

The asset kinds declare the groups (:mod:`twin.kinds`): the load subsystems facility managers read
consumption by (chillers, lighting, elevators, EV charging), the building sub-meters, whose remainder
over the load subsystems is "other" (building plug loads and auxiliaries), and the sources PV, battery
and grid.
"""

from __future__ import annotations

import pandas as pd

from twin.kinds import load_subsystems, power_groups
from twin.kinds.base import Role
from twin.park import Park
from twin.plant import MODE_DIRECT
from twin.points import point_id


def load_subsystem_names() -> list[str]:
    """Names of the load subsystems, in display order."""
    return [group.name for group in load_subsystems()]


def power_points(park: Park) -> dict[str, list[str]]:
    """Point ids of electric power (kW) per group, each in file order.

    Keys, every registered group (:func:`twin.kinds.power_groups`) in its order: the load subsystems,
    ``building_meters`` (used to derive "other"), then the sources ``pv`` (AC output), ``battery``
    (+ discharge) and ``grid`` (+ import).
    """
    groups: dict[str, list[str]] = {group.name: [] for group in power_groups()}
    for building, asset in park.iter_assets():
        group = asset.power_group()
        if group is not None and asset.power_point is not None:
            groups[group.name].append(point_id(building.id, asset.id, asset.power_point))
    return groups


def subsystem_power_kw(park: Park, values: dict[str, float]) -> dict[str, float]:
    """Power per subsystem from point values (kW); missing points count as 0.

    ``other`` = building sub-meters - the load subsystems, never below 0.
    """
    row = pd.DataFrame([{pid: v for pid, v in values.items() if v is not None}], dtype=float)
    return {str(name): float(v) for name, v in subsystem_power_frame(park, row).iloc[0].items()}


def subsystem_power_frame(park: Park, wide: pd.DataFrame) -> pd.DataFrame:
    """Power per subsystem (kW) for every row of a wide frame of point values (columns: point ids).

    Missing columns and NaN count as 0. Result columns: the load subsystems,
    ``other`` (as in :func:`subsystem_power_kw`), then the sources ``pv``, ``battery`` (+ discharge)
    and ``grid`` (+ import); same index as ``wide``.
    """
    groups = power_points(park)

    def total(pids: list[str]) -> pd.Series:
        present = [pid for pid in pids if pid in wide.columns]
        return wide[present].fillna(0.0).sum(axis=1) if present else pd.Series(0.0, index=wide.index)

    result = pd.DataFrame({name: total(groups[name]) for name in load_subsystem_names()}, index=wide.index)
    meters = [pid for group in power_groups("meters") for pid in groups[group.name]]
    result["other"] = (total(meters) - result.sum(axis=1)).clip(lower=0.0)
    for group in power_groups("source"):
        result[group.name] = total(groups[group.name])
    return result


def planning_load_points(park: Park) -> dict[str, list[str]]:
    """Point ids that :func:`planning_loads_frame` reads, by role: chillers' cooling, mode and electric
    power, cooling delivered by storage, grid (+ import), PV AC, battery (+ discharge), and the weather
    station's outdoor temperature and GHI (the first station; none: empty lists)."""
    groups = power_points(park)
    chillers = park.role_point_pairs(Role.CHILLER_COOLING, Role.CHILLER_MODE)
    weather = park.role_point_pairs(Role.OUTDOOR_TEMP, Role.GHI)[:1]
    return {
        Role.CHILLER_COOLING: [cooling for cooling, _ in chillers],
        Role.CHILLER_MODE: [mode for _, mode in chillers],
        Role.STORAGE_COOLING_DELIVERED: park.role_points(Role.STORAGE_COOLING_DELIVERED),
        Role.OUTDOOR_TEMP: [temp for temp, _ in weather],
        Role.GHI: [ghi for _, ghi in weather],
        Role.CHILLER_POWER: park.role_points(Role.CHILLER_POWER),
        "grid": groups["grid"], "pv": groups["pv"], "battery": groups["battery"],
    }


def planning_loads_frame(park: Park, wide: pd.DataFrame) -> pd.DataFrame:
    """The loads a dispatch plan is made for, for every row of a wide frame of point values.

    Columns: ``cooling_load_kwth`` (chilled water made directly by chillers in direct mode plus the cooling
    storage delivered net of what it took from the buildings' loop to charge: the buildings' load, whatever
    carried it), ``other_load_kw``
    (grid + PV + battery discharge - chillers: every electric load the plan does not schedule, never
    below 0), ``pv_kw``, ``temp_air_c`` and ``ghi_wm2`` (NaN without a weather station). Missing power
    points count as 0.
    """
    roles = planning_load_points(park)

    def total(role: str) -> pd.Series:
        present = [pid for pid in roles[role] if pid in wide.columns]
        return wide[present].fillna(0.0).sum(axis=1) if present else pd.Series(0.0, index=wide.index)

    direct = pd.Series(0.0, index=wide.index)
    for cooling, mode in zip(roles[Role.CHILLER_COOLING], roles[Role.CHILLER_MODE]):
        if cooling in wide.columns and mode in wide.columns:
            direct = direct + wide[cooling].fillna(0.0) * (wide[mode] == MODE_DIRECT)
    pv_kw = total("pv")
    result = pd.DataFrame({
        "cooling_load_kwth": direct + total(Role.STORAGE_COOLING_DELIVERED),
        "other_load_kw": (total("grid") + pv_kw + total("battery") - total(Role.CHILLER_POWER)).clip(lower=0.0),
        "pv_kw": pv_kw,
    }, index=wide.index)
    for column, role in (("temp_air_c", Role.OUTDOOR_TEMP), ("ghi_wm2", Role.GHI)):
        present = [pid for pid in roles[role] if pid in wide.columns]
        result[column] = wide[present[0]] if present else float("nan")
    return result
