"""Which points measure which subsystem's electric power.

Subsystems are the groups facility managers read consumption by: chillers,
lighting, elevators, EV charging and "other" (building plug loads and
auxiliaries, the part of the building sub-meters no subsystem point explains),
plus the sources PV, battery and grid.
"""

from __future__ import annotations

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
    groups = power_points(park)

    def total(name: str) -> float:
        return sum(values.get(pid) or 0.0 for pid in groups[name])

    result = {name: total(name) for name in LOAD_SUBSYSTEMS}
    result["other"] = max(0.0, total("building_meters") - sum(result.values()))
    result["pv"] = total("pv")
    result["battery"] = total("battery")
    result["grid"] = total("grid")
    return result
