"""What the storage kinds' LP blocks share: a soft target for the level at the horizon's end, and a binary per
flagged step that keeps charging and discharging apart (optimizer.blocks.battery, optimizer.blocks.ice_tank)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from numpy.typing import NDArray

from optimizer.blocks.base import Assembly, KindBlock
from optimizer.model import Labels, exclusive_pair


def soft_terminal_target(lp: Assembly, block: KindBlock, name: str, unit: str, penalty_per_unit: float,
                         targets: Mapping[str, float] | None, level: NDArray[np.intp], start: np.ndarray,
                         level_max: np.ndarray) -> None:
    """level[T] + short >= target, per asset: its entry in ``targets`` (by asset id), else its level at the start,
    at most ``level_max``; ``short`` (columns ``<name>_terminal_short_<unit>``) costs ``penalty_per_unit`` CNY per
    unit short. ``level``: the block's level columns, one row per asset, t = 0..T."""
    short = lp.builder.variables(f"{name}_terminal_short_{unit}", (len(block.assets),), 0.0, np.inf,
                                 penalty_per_unit, labels=Labels.of(f"terminal_short_{unit}", block.ids))
    if not block.assets:
        return
    wanted = targets or {}
    target = np.array([wanted.get(asset.id, level0) for asset, level0 in zip(block.assets, start)])
    lp.builder.rows_of(len(block.assets), np.minimum(target, level_max), np.inf,
                       [(level[:, lp.step_count], 1.0), (short, 1.0)], group=f"{name}_terminal",
                       labels=Labels.of("terminal", block.ids))


def charging_apart_from_discharging(lp: Assembly, block: KindBlock, name: str, charge: NDArray[np.intp],
                                    discharge: NDArray[np.intp], charge_max: np.ndarray,
                                    discharge_max: np.ndarray) -> None:
    """A binary u per asset and step flagged for storage (columns ``u_<name>_charge``): u = 1 allows charging,
    u = 0 discharging. ``charge``, ``discharge``: the flow columns (asset x step); ``charge_max``,
    ``discharge_max``: their upper bounds (asset x 1)."""
    storage = lp.binary_steps.storage
    n_storage = int(storage.sum())
    if charge.size and n_storage:
        exclusive_pair(lp.builder, f"u_{name}_charge", charge[:, storage].reshape(-1),
                       discharge[:, storage].reshape(-1), np.repeat(charge_max, n_storage, axis=1).reshape(-1),
                       np.repeat(discharge_max, n_storage, axis=1).reshape(-1),
                       Labels.of("u_charge", block.ids, np.flatnonzero(storage)))
