"""A HiGHS basis carried from one LP to the next of a sequence of similar ones (a closed loop's re-plans).

Consecutive re-plans have the same blocks and rows over a horizon moved on by one re-plan interval, so
the optimal basis of one is a valid, and near, starting point for the next: the simplex ends at an
optimum of the new LP either way (the same objective; where the optimum is not unique it may end at
another optimal vertex), and from near it takes fewer simplex iterations than from HiGHS's own start.
The basis is only used by an LP of the same shape (columns and rows); any other starts cold.
"""

from __future__ import annotations

import highspy

from optimizer.linear_program import LinearProgram


class WarmStart:
    """The basis of the last LP that :meth:`keep` was given, for :meth:`apply` to the next one."""

    def __init__(self) -> None:
        self._basis: highspy.HighsBasis | None = None
        self._shape: tuple[int, int] | None = None

    def apply(self, highs: highspy.Highs, lp: LinearProgram) -> None:
        """Start ``highs`` (holding ``lp``, not yet run) from the kept basis, if it is of ``lp``'s shape."""
        if self._basis is not None and lp.a.shape == self._shape:
            highs.setBasis(self._basis)

    def keep(self, highs: highspy.Highs, lp: LinearProgram) -> None:
        """Keep the basis ``highs`` ends with after solving ``lp``."""
        self._basis, self._shape = highs.getBasis(), lp.a.shape
