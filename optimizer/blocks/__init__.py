"""The LP blocks of the dispatchable kinds, by kind name: the registry the dispatch LP is assembled from.

Each block lives in a module of its own in this package (:mod:`optimizer.blocks.base` says what a block
is); :func:`optimizer.model.build_lp` asks :func:`blocks` for them and never names a kind. A new
dispatchable kind is a new module whose block is added to :data:`_blocks` here.
"""

from __future__ import annotations

from contextlib import AbstractContextManager

from optimizer.blocks.base import Assembly, KindBlock, Term
from optimizer.blocks.battery import BatteryBlock
from optimizer.blocks.chilled_water_tank import ChilledWaterTankBlock
from optimizer.blocks.chiller import ChillerBlock
from optimizer.blocks.ev_charger import EVChargerBlock
from optimizer.blocks.ice_tank import IceTankBlock
from optimizer.blocks.pv_array import PVArrayBlock
from twin.registration import registered_while

__all__ = ["Assembly", "KindBlock", "Term", "block", "blocks", "registered"]

_blocks: list[type[KindBlock]] = [ChillerBlock, IceTankBlock, BatteryBlock, PVArrayBlock, EVChargerBlock,
                                  ChilledWaterTankBlock]
"""In the order the park's model takes their columns and rows (optimizer.model.build_lp)."""


def blocks() -> tuple[type[KindBlock], ...]:
    """Every registered block, in registry order."""
    return tuple(_blocks)


def block(kind: str) -> type[KindBlock]:
    """The block of the kind of this name; KeyError names the kinds that have one."""
    for each in _blocks:
        if each.kind == kind:
            return each
    raise KeyError(f"no LP block for asset kind {kind!r}; kinds with one: {', '.join(b.kind for b in _blocks)}")


def registered(each: type[KindBlock]) -> AbstractContextManager[type[KindBlock]]:
    """Add a block defined outside this package to the registry while the block of code runs (it comes
    last); ValueError when its kind has one already."""
    return registered_while(_blocks, each, lambda known: known.kind, "asset kind {name!r} has an LP block already")
