"""Solving a :class:`~optimizer.model.LinearProgram`: HiGHS through PuLP by default, CBC (through PuLP)
as the fallback.

Three ways to solve the same matrix:

- ``"pulp-highs"`` (default): the matrix becomes a PuLP model (one ``LpVariable`` per column, one
  ``LpConstraint`` per row side, see :func:`pulp_problem`) solved by ``pulp.HiGHS``. PuLP is the
  modelling layer a trader or a test can inspect or write out (``LpProblem.writeLP``), and it gets
  the solution back in its variables. PuLP's own ``buildSolverModel`` hands HiGHS one column and
  one row per call, the slowest part of a solve through PuLP; :class:`MatrixHiGHS` passes the
  matrix the PuLP rows were made from in a single ``passModel`` call instead;
- ``"pulp-cbc"``: the PuLP model solved by PuLP's bundled CBC (``PULP_CBC_CMD``);
- ``"highs"``: the matrix straight to highspy, no PuLP objects at all (about 60 % of the time of
  a day-ahead plan through PuLP; ``parktwin plan --solver highs``, and the backtest's default).

Realizability binaries (chiller modes among them) are solved by :mod:`optimizer.branch_and_bound`
on the HiGHS instance of either HiGHS path; a model with other integers goes to the HiGHS MIP.

Every solve asks for a relative MIP gap of ``mip_rel_gap`` (1e-6 by default) and reports status,
objective, solver-only time (the HiGHS run, or the CBC process), model-building time and the gap
reached. A MIP's search is bounded by ``mip_max_nodes`` branch-and-bound nodes (the realizability
search's LPs, then HiGHS's ``mip_max_nodes`` or CBC's ``maxNodes`` with what is left), so the same
model gives the same result on any machine at any load; a wall-clock ``mip_time_limit_s`` may be
added. A search stopped by either keeps its realizable incumbent (status "node limit" or "time
limit", never claimed optimal) or, without one, returns no solution with that status. A failed
solve never raises: the caller gets the status and decides on a fallback.
"""

from __future__ import annotations

import functools
import gc
import math
import os
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pulp

from optimizer.branch_and_bound import SearchOutcome, pairs_only, search_realizable
from optimizer.model import MIP_MAX_NODES, LinearProgram
from optimizer.warm_start import WarmStart

SolverName = Literal["pulp-highs", "pulp-cbc", "highs"]
SOLVERS: tuple[str, ...] = ("pulp-highs", "pulp-cbc", "highs")
DEFAULT_SOLVER: SolverName = "pulp-highs"


@dataclass
class SolveResult:
    """What a solver returned. ``x`` is None unless a realizable solution came back."""

    status: str
    solver: str
    x: np.ndarray | None
    objective_cny: float | None
    solve_time_s: float
    """The solver's own run (HiGHS ``run``, or the CBC process), s."""
    build_time_s: float
    """Everything else: PuLP objects, handing the model over, reading the solution back, s."""
    mip_gap: float | None

    @property
    def optimal(self) -> bool:
        return self.status == "optimal"

    @property
    def usable(self) -> bool:
        """Optimal, or a feasible (realizable) incumbent when the MIP time limit cut the search short."""
        return self.x is not None


LIMITS = ("node limit", "time limit")
"""Statuses of a MIP search its limit stopped (with a realizable incumbent, or without a solution)."""


def solve(lp: LinearProgram, solver: SolverName = DEFAULT_SOLVER, mip_rel_gap: float = 1e-6,
          mip_time_limit_s: float | None = None, warm_start: WarmStart | None = None,
          mip_max_nodes: int = MIP_MAX_NODES) -> SolveResult:
    """Solve with the named solver; if it fails for a reason other than infeasibility or a limit, try CBC.

    ``mip_max_nodes`` (and ``mip_time_limit_s``, if given) bound a MIP's search; its incumbent is
    then returned with status "node limit" ("time limit") and the gap it reached (never claimed
    optimal). ``warm_start``: the basis the LP (or the realizability search's relaxation) starts
    from and leaves for the next solve, on the HiGHS paths (:mod:`optimizer.warm_start`); CBC
    starts cold."""
    if solver == "pulp-cbc":
        return solve_pulp_cbc(lp, mip_rel_gap, mip_time_limit_s, mip_max_nodes)
    result = _SOLVE[solver](lp, mip_rel_gap, mip_time_limit_s, warm_start, mip_max_nodes)
    if not result.usable and result.status not in ("infeasible", "unbounded") + LIMITS:
        fallback = solve_pulp_cbc(lp, mip_rel_gap, mip_time_limit_s, mip_max_nodes)
        fallback.solver = f"{solver} failed ({result.status}); pulp-cbc"
        return fallback
    return result


def pass_matrix(highs, lp: LinearProgram, integrality: bool = True) -> None:
    """Load the LP into a HiGHS instance in one ``passModel`` call, the CSR matrix row-wise as it is
    and every vector as a numpy array (highspy's array overload reads them in place; a ``HighsLp``
    copies each element through Python, about ten times slower), with its integrality unless
    ``integrality`` is False (the relaxation the realizability search starts from)."""
    import highspy

    csr = lp.a
    kinds = lp.integrality.astype(np.int32) if integrality else np.zeros(csr.shape[1], dtype=np.int32)
    highs.passModel(csr.shape[1], csr.shape[0], csr.nnz, int(highspy.MatrixFormat.kRowwise),
                    int(highspy.ObjSense.kMinimize), lp.objective_constant, lp.c, lp.col_lower, lp.col_upper,
                    lp.row_lower, lp.row_upper, csr.indptr, csr.indices, csr.data, kinds)


def solve_highspy(lp: LinearProgram, mip_rel_gap: float = 1e-6, mip_time_limit_s: float | None = None,
                  warm_start: WarmStart | None = None, mip_max_nodes: int = MIP_MAX_NODES) -> SolveResult:
    """Hand the matrices straight to HiGHS; realizability binaries go to :mod:`optimizer.branch_and_bound`."""
    started = time.perf_counter()
    highs = new_highs()
    highs.setOptionValue("mip_rel_gap", mip_rel_gap)
    if lp.has_integers:
        highs.setOptionValue("mip_max_nodes", int(mip_max_nodes))
        if mip_time_limit_s is not None:
            highs.setOptionValue("time_limit", float(mip_time_limit_s))
    search = pairs_only(lp)
    pass_matrix(highs, lp, integrality=not search)
    if search:
        outcome = search_realizable(highs, lp, mip_rel_gap, mip_time_limit_s, warm_start, mip_max_nodes)
        run_s = outcome.run_s
    else:
        outcome = None
        run_s = _run_warm(highs, lp, warm_start)
    return _highs_result(highs, lp, "highs", run_s, time.perf_counter() - started - run_s, outcome)


def _run_warm(highs, lp: LinearProgram, warm_start: WarmStart | None) -> float:
    """Run HiGHS on ``lp``; an LP (not a MIP) from the warm start's basis, if any, keeping the one it
    ends with. Returns the run's seconds."""
    warm = warm_start is not None and not lp.has_integers
    if warm:
        warm_start.apply(highs, lp)
    started = time.perf_counter()
    highs.run()
    run_s = time.perf_counter() - started
    if warm:
        warm_start.keep(highs, lp)
    return run_s


def _highs_result(highs, lp: LinearProgram, solver: str, run_s: float, build_s: float,
                  search: SearchOutcome | None = None) -> SolveResult:
    """Status, solution and gap of a HiGHS instance that has run (the realizability search's
    status and gap where it ran and did not hand over to the HiGHS MIP)."""
    import highspy

    if search is not None and search.status != "handed over":
        if search.status != "optimal" and not search.incumbent:
            return SolveResult(search.status, solver, None, None, run_s, build_s, None)
        x = np.asarray(highs.getSolution().col_value, dtype=float)
        return SolveResult(search.status, solver, x, lp.objective(x), run_s, build_s, search.mip_gap)
    status = highs.getModelStatus()
    name = {highspy.HighsModelStatus.kOptimal: "optimal", highspy.HighsModelStatus.kInfeasible: "infeasible",
            highspy.HighsModelStatus.kUnbounded: "unbounded",
            highspy.HighsModelStatus.kUnboundedOrInfeasible: "infeasible",
            highspy.HighsModelStatus.kTimeLimit: "time limit",
            # the only solution-type limit set here is mip_max_nodes
            highspy.HighsModelStatus.kSolutionLimit: "node limit"}.get(status, highs.modelStatusToString(status))
    has_incumbent = name in LIMITS and highs.getInfo().primal_solution_status == 2
    if name != "optimal" and not has_incumbent:
        return SolveResult(name, solver, None, None, run_s, build_s, None)
    x = np.asarray(highs.getSolution().col_value, dtype=float)
    gap = float(highs.getInfo().mip_gap) if lp.has_integers else 0.0
    return SolveResult(name, solver, x, lp.objective(x), run_s, build_s, gap)


def new_highs():
    """A silent HiGHS instance."""
    import highspy

    _highs_banner_printed()
    highs = highspy.Highs()
    highs.setOptionValue("output_flag", False)
    return highs


@functools.cache
def _highs_banner_printed() -> bool:
    """HiGHS prints its banner on the process's first instance, from C++, before any option can be
    set; stdout (fd 1) is pointed at /dev/null while that instance is made, so that machine-readable
    output (``parktwin plan --json``) stays clean."""
    import highspy

    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 1)
            highspy.Highs()
    finally:
        os.dup2(saved, 1)
        os.close(saved)
    return True


@contextmanager
def _gc_paused():
    """Python's cyclic garbage collector off while a PuLP model is made and solved: the model's
    tens of thousands of new objects set off collections that scan the whole heap, about a sixth
    of the time to make a week-long model. Reference counting still frees what is dropped."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class MatrixProblem(pulp.LpProblem):
    """A PuLP problem made from a matrix (:func:`pulp_problem`): all its variables exist, in column
    order, before any constraint is added. ``variables()`` returns them as they are; PuLP's own
    collects them again from the objective and every constraint and sorts them by name, on each
    call (twice per solve)."""

    def variables(self) -> list[pulp.LpVariable]:
        return self._variables

    def add_rows(self, constraints: dict[str, pulp.LpConstraint]) -> None:
        """Add constraints, uniquely named, over variables already in the problem. PuLP's
        ``addConstraint`` checks each name against the others and registers every term's variable
        again, a sixth of the time to make a day-ahead model."""
        self._constraints.update(constraints)
        self.modifiedConstraints.extend(constraints.values())


def pulp_problem(lp: LinearProgram) -> tuple[MatrixProblem, list[pulp.LpVariable],
                                             list[tuple[pulp.LpConstraint, int]]]:
    """The LP as a PuLP model: variable ``x{j}`` per column j, constraint ``r{i}`` per row i (a ranged
    row becomes ``r{i}_lo`` and ``r{i}_hi``). Also returns each constraint with its row in ``lp.a``."""
    problem = MatrixProblem("dispatch", pulp.LpMinimize)
    lower, upper = (np.where(np.isfinite(bound), bound.astype(object), None).tolist()  # PuLP: None is unbounded
                    for bound in (lp.col_lower, lp.col_upper))
    kinds = np.where(lp.integrality, pulp.LpInteger, pulp.LpContinuous).tolist()
    variables = [problem.add_variable(f"x{j}", lo, hi, kind)
                 for j, (lo, hi, kind) in enumerate(zip(lower, upper, kinds))]
    problem._add_variables(variables)
    nonzero = np.flatnonzero(lp.c)
    problem.setObjective(pulp.LpAffineExpression(dict(zip([variables[j] for j in nonzero], lp.c[nonzero].tolist())),
                                                 constant=lp.objective_constant))
    a = lp.a
    starts = a.indptr.tolist()
    # (variable, coefficient), row by row
    terms = list(zip([variables[j] for j in a.indices.tolist()], a.data.tolist()))
    constraints: dict[str, pulp.LpConstraint] = {}
    rows: list[tuple[pulp.LpConstraint, int]] = []

    def add(i: int, name: str, sense: int, rhs: float, expression: pulp.LpAffineExpression) -> None:
        constraint = constraints[name] = pulp.LpConstraint(expression, sense, name, rhs)
        rows.append((constraint, i))

    for i, (start, end, lo, hi) in enumerate(zip(starts, starts[1:], lp.row_lower.tolist(), lp.row_upper.tolist())):
        # an empty expression filled by dict.update: LpAffineExpression would copy a dict it is given,
        # and check an iterable of pairs against the (slow) abc first
        expression = pulp.LpAffineExpression()
        expression.update(terms[start:end])
        if lo == hi:
            add(i, f"r{i}", pulp.LpConstraintEQ, lo, expression)
            continue
        if math.isfinite(lo):
            add(i, f"r{i}_lo", pulp.LpConstraintGE, lo, expression)
        if math.isfinite(hi):
            add(i, f"r{i}_hi", pulp.LpConstraintLE, hi, expression)
    problem.add_rows(constraints)
    return problem, variables, rows


class MatrixHiGHS(pulp.HiGHS):
    """``pulp.HiGHS`` that loads the PuLP model from the matrix it was made of, in one ``passModel``,
    and solves realizability binaries by :mod:`optimizer.branch_and_bound` on its HiGHS instance.

    Everything else is PuLP's: options, the run, and the solution written back into the PuLP
    variables and constraints (``varValue``, ``dj``, ``slack``, ``pi``). ``run_s`` is the time in
    HiGHS runs; ``outcome`` the realizability search's, where it ran."""

    def __init__(self, lp: LinearProgram, variables: list[pulp.LpVariable],
                 rows: list[tuple[pulp.LpConstraint, int]], warm_start: WarmStart | None = None,
                 mip_max_nodes: int = MIP_MAX_NODES, **options):
        super().__init__(**options)
        self.matrix_lp, self.columns, self.rows, self.warm_start = lp, variables, rows, warm_start
        self.mip_max_nodes = mip_max_nodes
        self.search = pairs_only(lp)
        self.outcome: SearchOutcome | None = None
        self.run_s = 0.0

    def createAndConfigureSolver(self, problem: pulp.LpProblem) -> None:
        super().createAndConfigureSolver(problem)
        if self.matrix_lp.has_integers:
            problem.solverModel.setOptionValue("mip_max_nodes", int(self.mip_max_nodes))

    def findSolutionValues(self, problem: pulp.LpProblem):
        """PuLP's reading of the solution, which has no entry for HiGHS's "solution limit" (where
        ``mip_max_nodes`` stops a MIP) and raises KeyError on it: then "not solved" for PuLP, and
        the caller reads status and incumbent from the HiGHS instance (:func:`_highs_result`)."""
        try:
            return super().findSolutionValues(problem)
        except KeyError:
            return pulp.LpStatusNotSolved, pulp.LpSolutionNoSolutionFound

    def buildSolverModel(self, problem: pulp.LpProblem) -> None:
        pass_matrix(problem.solverModel, self.matrix_lp, integrality=not self.search)
        for j, variable in enumerate(self.columns):
            variable.index = j
        for constraint, row in self.rows:
            constraint.index = row

    def callSolver(self, problem: pulp.LpProblem) -> None:
        if self.search:
            self.outcome = search_realizable(problem.solverModel, self.matrix_lp, self.gapRel, self.timeLimit,
                                             self.warm_start, self.mip_max_nodes)
            self.run_s = self.outcome.run_s
            return
        self.run_s = _run_warm(problem.solverModel, self.matrix_lp, self.warm_start)


def solve_pulp_highs(lp: LinearProgram, mip_rel_gap: float = 1e-6, mip_time_limit_s: float | None = None,
                     warm_start: WarmStart | None = None, mip_max_nodes: int = MIP_MAX_NODES) -> SolveResult:
    """Build the PuLP model and solve it with HiGHS through PuLP (:class:`MatrixHiGHS`)."""
    started = time.perf_counter()
    _highs_banner_printed()  # pulp.HiGHS makes its own instance
    with _gc_paused():
        # the PuLP model lives and dies inside the pause: freed before the collector is back on, it
        # leaves it nothing to scan (kept until after, its objects cost a collection of their own)
        return _solve_pulp_highs(lp, mip_rel_gap, mip_time_limit_s, warm_start, mip_max_nodes, started)


def _solve_pulp_highs(lp: LinearProgram, mip_rel_gap: float, mip_time_limit_s: float | None,
                      warm_start: WarmStart | None, mip_max_nodes: int, started: float) -> SolveResult:
    problem, variables, rows = pulp_problem(lp)
    solver = MatrixHiGHS(lp, variables, rows, warm_start, mip_max_nodes, msg=False, gapRel=mip_rel_gap,
                         timeLimit=mip_time_limit_s if lp.has_integers else None)
    try:
        problem.solve(solver)
    except pulp.PulpSolverError as exc:
        return SolveResult(f"error: {exc}", "pulp-highs", None, None, solver.run_s,
                           time.perf_counter() - started - solver.run_s, None)
    return _highs_result(problem.solverModel, lp, "pulp-highs", solver.run_s,
                         time.perf_counter() - started - solver.run_s, solver.outcome)


class _CBC(pulp.PULP_CBC_CMD):
    """PuLP's bundled CBC, keeping the first line of its solution file ("Optimal - objective value
    ...", "Stopped on time - ...", "Stopped on iterations - ...", "Integer infeasible - ..."), which
    says which limit stopped it; PuLP's status does not."""

    status_line = ""

    def get_status(self, filename):
        with open(filename) as f:
            self.status_line = f.readline().strip()
        return super().get_status(filename)


def solve_pulp_cbc(lp: LinearProgram, mip_rel_gap: float = 1e-6, mip_time_limit_s: float | None = None,
                   mip_max_nodes: int = MIP_MAX_NODES) -> SolveResult:
    """Build the PuLP model and solve it with PuLP's bundled CBC, its search bounded by ``maxNodes``
    (and ``mip_time_limit_s``). CBC does not report the gap it reached: an optimal MIP is reported
    at the gap asked for, one stopped by a limit without a gap. A MIP incumbent is polished: its
    binaries fixed at their rounded values and the rest solved again as an LP, so that no pair's
    flows keep the residue CBC's integrality tolerance leaves."""
    started = time.perf_counter()
    problem, variables, _rows = pulp_problem(lp)
    built_s = time.perf_counter() - started
    # PULP_CBC_CMD (the CBC bundled with pulp 3.x) is deprecated for 4.0 in favour of COIN_CMD with
    # pulp[cbc]; it is the CBC this install has, so the fallback uses it.
    solver = _CBC(msg=False, gapRel=mip_rel_gap, timeLimit=mip_time_limit_s if lp.has_integers else None,
                  maxNodes=int(mip_max_nodes) if lp.has_integers else None)
    started = time.perf_counter()
    try:
        problem.solve(solver)
    except pulp.PulpSolverError as exc:
        return SolveResult(f"error: {exc}", "pulp-cbc", None, None, time.perf_counter() - started, built_s, None)
    run_s = time.perf_counter() - started
    # CBC writes "Integer infeasible" too when its time runs out before it has an incumbent
    out_of_time = mip_time_limit_s is not None and run_s >= mip_time_limit_s
    timed_out = solver.status_line.startswith("Stopped on time") or (
        out_of_time and solver.status_line.startswith("Integer infeasible"))
    limit = "time limit" if timed_out else "node limit"
    if problem.status == pulp.LpStatusOptimal and problem.sol_status == pulp.LpSolutionOptimal:
        status, gap = "optimal", (mip_rel_gap if lp.has_integers else 0.0)
    elif problem.status == pulp.LpStatusOptimal and problem.sol_status == pulp.LpSolutionIntegerFeasible:
        status, gap = limit, None
    elif lp.has_integers and (timed_out or solver.status_line.startswith("Stopped")):
        return SolveResult(limit, "pulp-cbc", None, None, run_s, built_s, None)
    else:
        status = {pulp.LpStatusInfeasible: "infeasible", pulp.LpStatusUnbounded: "unbounded"}.get(
            problem.status, pulp.LpStatus[problem.status].lower())
        return SolveResult(status, "pulp-cbc", None, None, run_s, built_s, None)
    x = np.array([v.varValue or 0.0 for v in variables])
    if lp.has_integers:
        x, polish_s = _polish(problem, variables, lp, x)
        run_s += polish_s
    return SolveResult(status, "pulp-cbc", x, lp.objective(x), run_s, built_s, gap)


def _polish(problem: pulp.LpProblem, variables: list[pulp.LpVariable], lp: LinearProgram,
            x: np.ndarray) -> tuple[np.ndarray, float]:
    """x with its integer columns fixed at their rounded values and the other columns re-solved as
    an LP by CBC (x unchanged should that LP not solve); and the seconds it took."""
    started = time.perf_counter()
    for j in np.flatnonzero(lp.integrality):
        variables[j].cat = pulp.LpContinuous
        variables[j].lowBound = variables[j].upBound = float(np.round(x[j]))
    problem.solve(pulp.PULP_CBC_CMD(msg=False))
    run_s = time.perf_counter() - started
    if problem.status != pulp.LpStatusOptimal:
        return x, run_s
    return np.array([v.varValue or 0.0 for v in variables]), run_s


_SOLVE = {"pulp-highs": solve_pulp_highs, "highs": solve_highspy}
"""The HiGHS paths by name (they take a warm start; ``pulp-cbc`` does not)."""
