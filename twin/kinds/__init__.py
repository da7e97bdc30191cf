"""The asset-kind registry: every kind the park file may hold, in park order, and queries over them.

Each kind lives in a module of its own in this package and declares there what the rest of ParkTwin
needs to know about it (:mod:`twin.kinds.base`). A new kind is a new module whose class is added to
:data:`Asset` here; the read side (power groups, roles, labels and colours) then finds it through the
queries below, never by naming its class; the park simulator steps it through its declared
:class:`~twin.kinds.simulation.Simulation`.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Annotated, get_args

from pydantic import Field

from twin.kinds.base import AssetBase, PowerGroup
from twin.kinds.battery import Battery
from twin.kinds.chilled_water_tank import ChilledWaterTank
from twin.kinds.chiller import Chiller
from twin.kinds.elevator import Elevator
from twin.kinds.ev_charger import EVCharger
from twin.kinds.ice_tank import IceTank
from twin.kinds.lighting import Lighting
from twin.kinds.meter import Meter
from twin.kinds.pv_array import PVArray
from twin.kinds.simulation import Simulation, Stage
from twin.kinds.weather_station import WeatherStation
from twin.registration import registered_while

__all__ = ["ASSET_CLASSES", "Asset", "Battery", "ChilledWaterTank", "Chiller", "EVCharger", "Elevator", "IceTank",
           "Lighting", "Meter", "PVArray", "WeatherStation", "kind_class", "kind_name", "kinds", "load_subsystems",
           "power_groups", "registered", "simulations", "typical_load_subsystems"]

Asset = Annotated[
    Chiller | IceTank | ChilledWaterTank | Lighting | Elevator | PVArray | Battery | EVCharger | Meter | WeatherStation,
    Field(discriminator="kind"),
]
"""Any asset of the park file, told apart by its ``kind``."""

ASSET_CLASSES: tuple[type[AssetBase], ...] = get_args(get_args(Asset)[0])
"""The kinds of :data:`Asset`, in park order."""

_kinds: list[type[AssetBase]] = list(ASSET_CLASSES)


def kind_name(cls: type[AssetBase]) -> str:
    """The name a kind goes by in the park file (its ``kind`` field's one value)."""
    return str(cls.model_fields["kind"].default)


def kinds() -> tuple[type[AssetBase], ...]:
    """Every registered kind, in park order: those of :data:`Asset`, then any :func:`registered` one."""
    return tuple(_kinds)


def kind_class(name: str) -> type[AssetBase]:
    """The kind of this name; KeyError names the known ones."""
    for cls in _kinds:
        if kind_name(cls) == name:
            return cls
    raise KeyError(f"unknown asset kind {name!r}; known: {', '.join(kind_name(cls) for cls in _kinds)}")


def registered(cls: type[AssetBase]) -> AbstractContextManager[type[AssetBase]]:
    """Add a kind defined outside this package to the registry's queries while the block runs.

    The park file's schema (:data:`Asset`) stays as it is: assets of the kind are made in code. Raises
    ValueError when a kind of that name is registered already.
    """
    return registered_while(_kinds, cls, kind_name, "asset kind {name!r} is registered already")


def power_groups(part: str | None = None) -> list[PowerGroup]:
    """Every power group the registered kinds count power in, each once: the load subsystems, then the
    building sub-meters, then the sources, each part in park order of the kinds; only those of ``part``
    (:attr:`PowerGroup.part`) when given."""
    groups = list(dict.fromkeys(group for cls in _kinds for group in cls.power_groups))
    return [group for each in ("load", "meters", "source") if part in (None, each)
            for group in groups if group.part == each]


def load_subsystems() -> list[PowerGroup]:
    """The load subsystems facility managers read consumption by, in park order of the kinds."""
    return power_groups("load")


def typical_load_subsystems() -> list[PowerGroup]:
    """The load subsystems of the kinds that declare the power they typically draw
    (:attr:`~twin.kinds.simulation.Simulation.typical_kw`), in park order of the kinds."""
    typical = {group for cls in _kinds if cls.simulation is not None and cls.simulation.typical_kw is not None
               for group in cls.power_groups}
    return [group for group in load_subsystems() if group in typical]


def simulations(stage: Stage) -> list[Simulation]:
    """How the park simulator steps each registered kind that runs in ``stage``, in park order of the kinds."""
    return [cls.simulation for cls in _kinds if cls.simulation is not None and cls.simulation.stage == stage]
