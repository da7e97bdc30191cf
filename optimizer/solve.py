"""Solving a :class:`~optimizer.model.LinearProgram`: HiGHS by default, CBC (through PuLP) as the fallback.

Two ways to reach HiGHS:

- ``"highs"`` (default): the assembled sparse matrix goes to highspy in one
  ``passModel`` call, so building costs little beside solving;
- ``"pulp-highs"`` / ``"pulp-cbc"``: the same matrix becomes a PuLP model
  (``LpAffineExpression`` per row, from the CSR arrays) solved by ``pulp.HiGHS``
  or ``pulp.PULP_CBC_CMD``. PuLP is the modelling layer traders and tests can
  inspect or write out (``LpProblem.writeLP``); it is slower to build.

Every solve asks for a relative MIP gap of ``mip_rel_gap`` (1e-6 by default) and
reports status, objective, solver time and the gap reached. A failed solve never
raises: the caller gets the status and decides on a fallback.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pulp

from optimizer.model import LinearProgram

SolverName = Literal["highs", "pulp-highs", "pulp-cbc"]
SOLVERS: tuple[str, ...] = ("highs", "pulp-highs", "pulp-cbc")


@dataclass
class SolveResult:
    """What a solver returned. ``x`` is None unless status is "optimal"."""

    status: str
    solver: str
    x: np.ndarray | None
    objective_cny: float | None
    solve_time_s: float
    build_time_s: float
    mip_gap: float | None

    @property
    def optimal(self) -> bool:
        return self.status == "optimal"

    @property
    def usable(self) -> bool:
        """Optimal, or a feasible (realizable) incumbent when the MIP time limit cut the search short."""
        return self.x is not None


def solve(lp: LinearProgram, solver: SolverName = "highs", mip_rel_gap: float = 1e-6,
          mip_time_limit_s: float | None = None) -> SolveResult:
    """Solve with the named solver; if it fails for a reason other than infeasibility, try CBC.

    ``mip_time_limit_s`` bounds a MIP's search; the incumbent is then returned with status
    "time limit" and the gap it reached (never claimed optimal)."""
    result = _SOLVE[solver](lp, mip_rel_gap, mip_time_limit_s)
    if not result.usable and result.status not in ("infeasible", "unbounded") and solver != "pulp-cbc":
        fallback = solve_pulp(lp, mip_rel_gap, mip_time_limit_s, cbc=True)
        fallback.solver = f"{solver} failed ({result.status}); pulp-cbc"
        return fallback
    return result


def solve_highspy(lp: LinearProgram, mip_rel_gap: float = 1e-6, mip_time_limit_s: float | None = None) -> SolveResult:
    """Hand the matrices straight to HiGHS (column-wise CSC)."""
    import highspy

    started = time.perf_counter()
    csc = lp.a.tocsc()
    model = highspy.HighsLp()
    model.num_col_, model.num_row_ = lp.a.shape[1], lp.a.shape[0]
    model.col_cost_ = lp.c
    model.col_lower_, model.col_upper_ = lp.col_lower, lp.col_upper
    model.row_lower_, model.row_upper_ = lp.row_lower, lp.row_upper
    model.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    model.a_matrix_.start_ = csc.indptr
    model.a_matrix_.index_ = csc.indices
    model.a_matrix_.value_ = csc.data
    if lp.has_integers:
        model.integrality_ = [highspy.HighsVarType.kInteger if flag else highspy.HighsVarType.kContinuous
                              for flag in lp.integrality]
    highs = _new_highs()
    highs.setOptionValue("mip_rel_gap", mip_rel_gap)
    if mip_time_limit_s is not None and lp.has_integers:
        highs.setOptionValue("time_limit", float(mip_time_limit_s))
    highs.passModel(model)
    build_s = time.perf_counter() - started
    started = time.perf_counter()
    highs.run()
    solve_s = time.perf_counter() - started
    status = highs.getModelStatus()
    name = {highspy.HighsModelStatus.kOptimal: "optimal", highspy.HighsModelStatus.kInfeasible: "infeasible",
            highspy.HighsModelStatus.kUnbounded: "unbounded",
            highspy.HighsModelStatus.kUnboundedOrInfeasible: "infeasible",
            highspy.HighsModelStatus.kTimeLimit: "time limit"}.get(status, highs.modelStatusToString(status))
    has_incumbent = name == "time limit" and highs.getInfo().primal_solution_status == 2
    if name != "optimal" and not has_incumbent:
        return SolveResult(name, "highs", None, None, solve_s, build_s, None)
    x = np.asarray(highs.getSolution().col_value, dtype=float)
    gap = float(highs.getInfo().mip_gap) if lp.has_integers else 0.0
    return SolveResult(name, "highs", x, lp.objective(x), solve_s, build_s, gap)


def _new_highs():
    """A silent HiGHS instance. HiGHS prints its banner on the process's first instance, from C++,
    before any option can be set; stdout (fd 1) is pointed at /dev/null for that moment so that
    machine-readable output (``parktwin plan --json``) stays clean."""
    import highspy

    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 1)
            highs = highspy.Highs()
    finally:
        os.dup2(saved, 1)
        os.close(saved)
    highs.setOptionValue("output_flag", False)
    return highs


def pulp_problem(lp: LinearProgram) -> tuple[pulp.LpProblem, list[pulp.LpVariable]]:
    """The LP as a PuLP model: one variable per column, one constraint per row (ranges split in two)."""
    problem = pulp.LpProblem("dispatch", pulp.LpMinimize)
    variables = [
        problem.add_variable(f"x{j}", None if not np.isfinite(lo) else lo, None if not np.isfinite(hi) else hi,
                             pulp.LpInteger if integer else pulp.LpContinuous)
        for j, (lo, hi, integer) in enumerate(zip(lp.col_lower, lp.col_upper, lp.integrality))
    ]
    nonzero = np.flatnonzero(lp.c)
    problem.setObjective(pulp.LpAffineExpression({variables[j]: lp.c[j] for j in nonzero},
                                                 constant=lp.objective_constant))
    a = lp.a
    for i in range(a.shape[0]):
        cols = a.indices[a.indptr[i]:a.indptr[i + 1]]
        vals = a.data[a.indptr[i]:a.indptr[i + 1]]
        expr = pulp.LpAffineExpression({variables[j]: v for j, v in zip(cols, vals)})
        lo, hi = lp.row_lower[i], lp.row_upper[i]
        if lo == hi:
            problem.addConstraint(pulp.LpConstraint(expr, pulp.LpConstraintEQ, f"r{i}", lo))
            continue
        if np.isfinite(lo):
            problem.addConstraint(pulp.LpConstraint(expr, pulp.LpConstraintGE, f"r{i}_lo", lo))
        if np.isfinite(hi):
            problem.addConstraint(pulp.LpConstraint(expr, pulp.LpConstraintLE, f"r{i}_hi", hi))
    return problem, variables


def solve_pulp(lp: LinearProgram, mip_rel_gap: float = 1e-6, mip_time_limit_s: float | None = None,
               cbc: bool = False) -> SolveResult:
    """Build the PuLP model and solve it with pulp.HiGHS (or CBC)."""
    started = time.perf_counter()
    problem, variables = pulp_problem(lp)
    build_s = time.perf_counter() - started
    name = "pulp-cbc" if cbc else "pulp-highs"
    limit = mip_time_limit_s if lp.has_integers else None
    if not cbc:
        _new_highs()  # pulp.HiGHS makes its own instance; let the banner go to /dev/null first
    # PULP_CBC_CMD (the CBC bundled with pulp 3.x) is deprecated for 4.0 in favour of COIN_CMD with
    # pulp[cbc]; it is the CBC this install has, so the fallback uses it.
    solver = (pulp.PULP_CBC_CMD(msg=False, gapRel=mip_rel_gap, timeLimit=limit) if cbc
              else pulp.HiGHS(msg=False, gapRel=mip_rel_gap, timeLimit=limit))
    started = time.perf_counter()
    try:
        problem.solve(solver)
    except pulp.PulpSolverError as exc:
        return SolveResult(f"error: {exc}", name, None, None, time.perf_counter() - started, build_s, None)
    solve_s = time.perf_counter() - started
    status = {pulp.LpStatusOptimal: "optimal", pulp.LpStatusInfeasible: "infeasible",
              pulp.LpStatusUnbounded: "unbounded"}.get(problem.status, pulp.LpStatus[problem.status].lower())
    if status != "optimal" or problem.sol_status not in (pulp.LpSolutionOptimal,):
        return SolveResult(status if status != "optimal" else "not solved to optimality", name, None, None,
                           solve_s, build_s, None)
    x = np.array([v.varValue or 0.0 for v in variables])
    return SolveResult("optimal", name, x, lp.objective(x), solve_s, build_s, 0.0 if not lp.has_integers else mip_rel_gap)


_SOLVE = {
    "highs": solve_highspy,
    "pulp-highs": lambda lp, gap, limit: solve_pulp(lp, gap, limit, cbc=False),
    "pulp-cbc": lambda lp, gap, limit: solve_pulp(lp, gap, limit, cbc=True),
}
