"""How the dispatch LP is built: columns and rows collected block by block (:class:`Builder`), the
binaries that keep two flows apart (:func:`exclusive_pair`) and the steps that get them
(:class:`BinarySteps`). The park's model (optimizer.model) and the kinds' LP blocks (optimizer.blocks)
build on these."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray

from optimizer.linear_program import Block, Labels, LinearProgram

if TYPE_CHECKING:
    from optimizer.blocks.base import KindBlock


def _flat(value: ArrayLike, shape: tuple[int, ...]) -> np.ndarray:
    """``value`` (a scalar or an array broadcastable to ``shape``) broadcast to ``shape`` and flattened,
    as floats; scalars and arrays already of that shape skip ``np.broadcast_to``, whose fixed cost per call
    is large beside the arithmetic of a small LP's blocks."""
    array = np.asarray(value, dtype=float)
    if array.ndim == 0:
        return np.full(math.prod(shape), float(array))
    if array.shape == shape:
        return array.reshape(-1)
    return np.broadcast_to(array, shape).reshape(-1)


class Builder:
    """Collects variable blocks and constraint rows as COO triplets."""

    def __init__(self) -> None:
        self.n = 0
        self.blocks: dict[str, Block] = {}
        self.lower: list[np.ndarray] = []
        self.upper: list[np.ndarray] = []
        self.cost: list[np.ndarray] = []
        self.integer: list[np.ndarray] = []
        self.rows: list[np.ndarray] = []
        self.cols: list[np.ndarray] = []
        self.vals: list[np.ndarray] = []
        self.row_lower: list[np.ndarray] = []
        self.row_upper: list[np.ndarray] = []
        self.m = 0
        self.row_groups: dict[str, np.ndarray] = {}
        self.binary_pairs: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.soft_rows: dict[str, NDArray[np.intp]] = {}
        self.column_labels: list[Labels] = []
        self.row_labels: list[Labels] = []

    def variables(self, name: str, shape: tuple[int, ...], lower: ArrayLike, upper: ArrayLike, cost: ArrayLike = 0.0,
                  integer: bool = False, *, labels: Labels) -> NDArray[np.intp]:
        """A block of ``shape`` columns named ``name``; ``labels`` name each (asset-major, as the shape)."""
        size = math.prod(shape)
        assert len(labels.steps) == size, (name, len(labels.steps), size)
        self.column_labels.append(labels)
        index = np.arange(self.n, self.n + size).reshape(shape)
        self.n += size
        self.lower.append(_flat(lower, shape))
        self.upper.append(_flat(upper, shape))
        self.cost.append(_flat(cost, shape))
        self.integer.append(np.full(size, integer))
        self.blocks[name] = Block(name, index)
        return index

    def rows_of(self, count: int, lower: ArrayLike, upper: ArrayLike,
                terms: list[tuple[np.ndarray, np.ndarray | float]], group: str | None = None, *,
                labels: Labels) -> None:
        """Add ``count`` rows: row i is sum over terms of coef[i] * x[var[i]], within [lower, upper];
        ``labels`` name them.

        Each term's var array has shape (count,) or (count, k) (k variables per row).
        """
        assert len(labels.steps) == count, (labels.quantity, len(labels.steps), count)
        self.row_labels.append(labels)
        row_ids = np.arange(self.m, self.m + count)
        for var, coef in terms:
            var = np.asarray(var)
            if var.size == 0:
                continue
            var2 = var.reshape(count, -1)
            self.rows.append(np.repeat(row_ids, var2.shape[1]))
            self.cols.append(var2.reshape(-1))
            self.vals.append(_flat(np.asarray(coef, dtype=float).reshape(count, -1) if np.ndim(coef) else coef,
                                   var2.shape))
        self.row_lower.append(_flat(lower, (count,)))
        self.row_upper.append(_flat(upper, (count,)))
        self.m += count
        if group is not None:
            self.row_groups[group] = row_ids

    def build(self, constant: float, reasons: list[str], step_h: float, kind_blocks: tuple[KindBlock, ...],
              start_utc: np.datetime64) -> LinearProgram:
        rows, cols, vals = _concatenate(self.rows), _concatenate(self.cols), _concatenate(self.vals)
        keep = vals != 0
        a = sp.csr_matrix((vals[keep], (rows[keep].astype(int), cols[keep].astype(int))), shape=(self.m, self.n))
        return LinearProgram(_concatenate(self.cost), a, _concatenate(self.row_lower), _concatenate(self.row_upper),
                             _concatenate(self.lower), _concatenate(self.upper),
                             _concatenate(self.integer).astype(bool), constant, self.blocks, step_h, kind_blocks,
                             self.row_groups, self.soft_rows, self.binary_pairs, reasons, start_utc,
                             self.column_labels, self.row_labels)


def _concatenate(parts: list[np.ndarray]) -> np.ndarray:
    """The parts end to end; an empty float array for none."""
    return np.concatenate(parts) if parts else np.zeros(0)


SIMULTANEOUS_TOLERANCE_KW = 1e-6
"""Both flows of a pair above this (kW / kWth) in one step count as simultaneous."""


def flowing_together(first: NDArray[np.float64], second: NDArray[np.float64], steps: int) -> NDArray[np.bool_]:
    """Per step, whether any row of ``first`` and the same row of ``second`` (values of two flows, rows x steps,
    or one row of ``steps``) are both above :data:`SIMULTANEOUS_TOLERANCE_KW`."""
    per_step: NDArray[np.bool_] = np.any((first.reshape(-1, steps) > SIMULTANEOUS_TOLERANCE_KW)
                                         & (second.reshape(-1, steps) > SIMULTANEOUS_TOLERANCE_KW), axis=0)
    return per_step


@dataclass(frozen=True)
class BinarySteps:
    """Steps (boolean masks over the horizon) that get realizability binaries, and why: ``grid``
    import/export, ``storage`` battery and ice charge/discharge, ``chiller`` every ice-making
    chiller's ice/direct mode."""

    grid: NDArray[np.bool_]
    storage: NDArray[np.bool_]
    chiller: NDArray[np.bool_]
    reasons: tuple[str, ...]

    @classmethod
    def none(cls, steps: int) -> BinarySteps:
        return cls(np.zeros(steps, bool), np.zeros(steps, bool), np.zeros(steps, bool), ())

    @property
    def any(self) -> bool:
        return bool(self.grid.any() or self.storage.any() or self.chiller.any())

    @property
    def steps(self) -> NDArray[np.bool_]:
        """Steps with any binary."""
        return self.grid | self.storage | self.chiller

    def describe(self) -> str:
        """The flagged steps counted by pair, e.g. "a chiller in both modes in 3 step(s)"."""
        counts = (("import with export", self.grid), ("charge with discharge", self.storage),
                  ("a chiller in both modes", self.chiller))
        return ", ".join(f"{what} in {int(mask.sum())} step(s)" for what, mask in counts if mask.any())

    def union(self, other: BinarySteps) -> BinarySteps:
        return BinarySteps(self.grid | other.grid, self.storage | other.storage, self.chiller | other.chiller,
                           self.reasons + tuple(r for r in other.reasons if r not in self.reasons))
def exclusive_pair(b: Builder, name: str, first: NDArray[np.intp], second: NDArray[np.intp], first_max: np.ndarray,
                    second_max: np.ndarray,
                    labels: Labels) -> None:
    """first <= first_max u, second <= second_max (1 - u), u binary: at most one of the two is non-zero.
    ``labels`` name u; its rows are named after it, ``.first`` and ``.second``."""
    n = len(first)
    u = b.variables(name, (n,), 0.0, 1.0, integer=True, labels=labels)
    b.binary_pairs[name] = (np.asarray(first), np.asarray(second))
    if n:
        b.rows_of(n, -np.inf, 0.0, [(first, 1.0), (u, -first_max)],
                  labels=Labels(f"{labels.quantity}.first", labels.assets, labels.steps))
        b.rows_of(n, -np.inf, second_max, [(second, 1.0), (u, second_max)],
                  labels=Labels(f"{labels.quantity}.second", labels.assets, labels.steps))
