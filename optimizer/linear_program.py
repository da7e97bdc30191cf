"""The dispatch LP as it is solved: arrays, named blocks of columns, row groups, and a readable name per
column and row (names as :mod:`optimizer.model` describes them). :mod:`optimizer.lp_builder` builds it."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray

if TYPE_CHECKING:
    from optimizer.blocks.base import KindBlock

KindBlockT = TypeVar("KindBlockT", bound="KindBlock")


@dataclass
class Block:
    """A named block of variables: indices into x shaped (rows, steps) or (rows,)."""

    name: str
    index: NDArray[np.intp]


@dataclass(frozen=True)
class Labels:
    """What a run of consecutive columns or rows is, to name each: ``quantity``, and per entry the asset
    (``""`` for none) and the step (-1 for none). Entries run asset-major: the assets' product with
    the steps, as ``x[(assets, steps)].reshape(-1)`` lays them out."""

    quantity: str
    assets: np.ndarray
    steps: np.ndarray

    @classmethod
    def of(cls, quantity: str, assets: Iterable[str] | None = None, steps: ArrayLike | None = None) -> Labels:
        """Labels for ``assets`` x ``steps`` (either may be None: one entry without it)."""
        asset_array = np.array([""] if assets is None else list(assets), dtype=object)
        step_array = np.array([-1] if steps is None else steps, dtype=int).reshape(-1)
        return cls(quantity, np.repeat(asset_array, len(step_array)), np.tile(step_array, len(asset_array)))

    def names(self, start_utc: np.datetime64, step_min: float) -> list[str]:
        """``{asset}.{quantity}[{step start}Z]``, asset and time left out where an entry has none."""
        minutes = np.round(self.steps * step_min).astype("timedelta64[m]")
        stamps = np.datetime_as_string(start_utc + minutes, unit="m")
        return [(f"{asset}.{self.quantity}" if asset else self.quantity) + (f"[{stamp}Z]" if step >= 0 else "")
                for asset, step, stamp in zip(self.assets.tolist(), self.steps.tolist(), stamps.tolist())]


@dataclass
class LinearProgram:
    """min c x  s.t.  row_lower <= A x <= row_upper,  col_lower <= x <= col_upper, x_j integer where flagged."""

    c: np.ndarray
    a: sp.csr_matrix
    row_lower: np.ndarray
    row_upper: np.ndarray
    col_lower: np.ndarray
    col_upper: np.ndarray
    integrality: np.ndarray
    objective_constant: float
    blocks: dict[str, Block]
    step_h: float
    kind_blocks: tuple[KindBlock, ...]
    """The LP blocks of the dispatchable kinds it was assembled from, in registry order (optimizer.blocks),
    each holding its assets and its columns."""
    row_groups: dict[str, np.ndarray]
    soft_rows: dict[str, NDArray[np.intp]]
    """Row groups (names in ``row_groups``) of soft lower bounds, each row ``... + slack >= lower`` with one
    slack column of its own (coefficient 1, penalised in c): the slack columns by group."""
    binary_pairs: dict[str, tuple[np.ndarray, np.ndarray]]
    binaries_reasons: list[str] = field(default_factory=list)
    start_utc: np.datetime64 = field(default_factory=lambda: np.datetime64("1970-01-01T00:00"))
    """Start of the first step (UTC, naive): the time in the names."""
    column_labels: list[Labels] = field(default_factory=list)
    row_labels: list[Labels] = field(default_factory=list)

    @functools.cached_property
    def column_names(self) -> list[str]:
        """A readable, unique name per column (module docstring), built on first use."""
        return [name for labels in self.column_labels for name in labels.names(self.start_utc, 60.0 * self.step_h)]

    @functools.cached_property
    def row_names(self) -> list[str]:
        """A readable, unique name per row (module docstring), built on first use."""
        return [name for labels in self.row_labels for name in labels.names(self.start_utc, 60.0 * self.step_h)]

    def kind_block(self, kind: type[KindBlockT]) -> KindBlockT:
        """The block of this class among :attr:`kind_blocks` (KeyError when it has none)."""
        for block in self.kind_blocks:
            if isinstance(block, kind):
                return block
        raise KeyError(f"no {kind.__name__} in this LP")

    @property
    def electric_rows(self) -> np.ndarray:
        return self.row_groups["electric_balance"]

    @property
    def peak_rows(self) -> np.ndarray:
        return self.row_groups["peak"]

    @property
    def has_integers(self) -> bool:
        return bool(self.integrality.any())

    def values(self, x: NDArray[np.float64], name: str) -> NDArray[np.float64]:
        return x[self.blocks[name].index]

    def objective(self, x: np.ndarray) -> float:
        return float(self.c @ x + self.objective_constant)

    def violation(self, x: np.ndarray) -> float:
        """Largest violation of any row or bound by x (0 when feasible)."""
        ax = self.a @ x
        return float(max(0.0, np.max(self.row_lower - ax, initial=0.0), np.max(ax - self.row_upper, initial=0.0),
                         np.max(self.col_lower - x, initial=0.0), np.max(x - self.col_upper, initial=0.0)))
