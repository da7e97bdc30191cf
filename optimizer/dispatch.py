"""A dispatch: the decisions of every asset over the horizon, and what follows from them.

Rule-based strategies (baselines, the fallback plan) choose the primary decisions, the column blocks
each kind's LP block names in :attr:`~optimizer.blocks.KindBlock.primary_columns` (a chiller's direct and
ice cooling, a tank's charge and melt, PV used...); :func:`complete_dispatch` derives the rest (each
block's own, such as storage levels, then grid import/export, peak, terminal shortfalls, binaries) and
lays it out as a vector of the same :class:`~optimizer.linear_program.LinearProgram`, so every strategy is
priced by the same objective and checked against the same constraints as the optimal plan.
"""

from __future__ import annotations

import numpy as np

from optimizer.linear_program import LinearProgram


def complete_dispatch(lp: LinearProgram, decisions: dict[str, np.ndarray]) -> np.ndarray:
    """The LP vector of a dispatch given its primary decisions (arrays shaped like the LP's column blocks,
    by block name). A block whose primary columns the decisions leave out holds idle: those columns 0, the
    rest derived from them (a storage's level kept where it starts, less its standing loss)."""
    primary = {name for block in lp.kind_blocks for name in block.primary_columns}
    unknown = sorted(set(decisions) - primary)
    if unknown:
        raise ValueError(f"not primary decisions of this LP: {', '.join(unknown)}; "
                         f"those are {', '.join(sorted(primary))}")
    x = np.zeros(lp.a.shape[1])
    for block in lp.kind_blocks:
        for name in block.primary_columns:
            if name in decisions:
                x[lp.blocks[name].index] = decisions[name]
        block.complete(x, lp.step_h)
    net_kw = _net_grid_kw(lp, x)
    x[lp.blocks["grid_import_kw"].index] = np.maximum(net_kw, 0.0)
    x[lp.blocks["grid_export_kw"].index] = np.maximum(-net_kw, 0.0)
    _set_slacks(lp, x)
    return x


def _net_grid_kw(lp: LinearProgram, x: np.ndarray) -> np.ndarray:
    """Import minus export each step from the electric-balance rows, given every other column of x."""
    imp, exp = lp.blocks["grid_import_kw"].index, lp.blocks["grid_export_kw"].index
    rows = lp.electric_rows
    x[imp], x[exp] = 0.0, 0.0
    slack: np.ndarray = lp.row_lower[rows] - lp.a[rows] @ x
    return slack


def _set_slacks(lp: LinearProgram, x: np.ndarray) -> None:
    """Peak, the slacks of the soft rows (terminal shortfalls) and binaries: the smallest values the rows
    allow for x's decisions."""
    peak = lp.blocks["peak_kw"].index
    x[peak] = 0.0
    peak_rows = lp.peak_rows
    x[peak] = max(float(lp.col_lower[peak][0]), float(np.max(lp.a[peak_rows] @ x, initial=0.0)))
    for group, slack in lp.soft_rows.items():
        rows = lp.row_groups[group]
        x[slack] = 0.0
        x[slack] = np.maximum(0.0, lp.row_lower[rows] - lp.a[rows] @ x)
    for name, (first, _second) in lp.binary_pairs.items():
        x[lp.blocks[name].index] = (x[first] > 0).astype(float)
