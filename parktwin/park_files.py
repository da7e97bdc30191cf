"""Opening what a park file names, as the commands need it: the history store, the tariff, the point maps."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from parktwin.terminal import BadInput
from twin.park import Park

if TYPE_CHECKING:
    from energy.tariff import Tariff
    from protocols.pointmap import AnyDeviceMap
    from twin.history import History

DEFAULT_HISTORY = "sqlite:///parktwin-history.sqlite"


def history_url(park: Park, option: str | None) -> str:
    """The history store a command uses: ``--history``, else the park file's, else :data:`DEFAULT_HISTORY`."""
    return option or park.history or DEFAULT_HISTORY


def open_history(url: str) -> History:
    """The history store at ``url``; bad input (exit 2) when the URL is not one."""
    from twin.history import open_history as open_store

    try:
        return open_store(url)
    except ValueError as exc:
        raise BadInput(f"--history: {exc}") from None


def park_tariff(park: Park, park_file: Path) -> Tariff:
    """The park's tariff, which plans need; bad input when the park names none."""
    from energy.tariff import load_tariff

    if not park.tariff:
        raise BadInput(f"{park_file}: the park names no tariff file (tariff: ...), which plans need")
    return load_tariff(Path(park_file).parent / park.tariff)


def park_point_maps(park: Park, park_file: Path) -> list[AnyDeviceMap]:
    """The park's point maps, one per device; bad input when the park names no folder of them."""
    from protocols.pointmap import load_point_maps

    if not park.point_maps:
        raise BadInput(f"{park_file}: point_maps: the park names no folder of point maps")
    return load_point_maps(park.point_maps, park)


def park_point_maps_if_any(park: Park) -> list[AnyDeviceMap]:
    """The park's point maps, none when it names no folder of them."""
    from protocols.pointmap import load_point_maps

    return load_point_maps(park.point_maps, park) if park.point_maps else []
