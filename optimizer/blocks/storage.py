"""What the storage kinds' LP blocks share: a soft target for the level at the horizon's end, a binary per
flagged step that keeps charging and discharging apart (and the steps where a solution has them together),
and the level a dispatch's flows lead to
(optimizer.blocks.battery, optimizer.blocks.ice_tank)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from numpy.typing import NDArray

from optimizer.blocks.base import Assembly, KindBlock
from optimizer.linear_program import Labels
from optimizer.lp_builder import BinarySteps, exclusive_pair, flowing_together


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
    lp.builder.soft_rows[f"{name}_terminal"] = short


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


def levels_from_flows(x: NDArray[np.float64], level: NDArray[np.intp], start: np.ndarray, keep: np.ndarray | float,
                      gain: np.ndarray | float, charge: NDArray[np.intp], discharge: NDArray[np.intp],
                      drain: np.ndarray | float, step_h: float) -> None:
    """Set the ``level`` columns of ``x`` (asset x t = 0..T) from the flows already in it, step by step as the
    block's dynamics rows have it: level[0] = start, level[t+1] = keep level[t] + (gain charge[t] -
    discharge[t] / drain) dt. ``keep``: the level kept over a step (1 less the standing loss), ``gain``: the
    share of the charge stored, ``drain``: the share of the level drawn that is discharged, per asset."""
    x[level[:, 0]] = start
    charged, discharged = x[charge], x[discharge]
    for t in range(charged.shape[1]):
        x[level[:, t + 1]] = keep * x[level[:, t]] + (gain * charged[:, t] - discharged[:, t] / drain) * step_h


def charging_with_discharging(x: NDArray[np.float64], charge: NDArray[np.intp], discharge: NDArray[np.intp],
                              steps: int) -> BinarySteps:
    """The steps where ``x`` charges and discharges one asset at once, as storage steps (the pair
    :func:`charging_apart_from_discharging` keeps apart)."""
    none = np.zeros(steps, bool)
    return BinarySteps(none, flowing_together(x[charge], x[discharge], steps), none, ())
