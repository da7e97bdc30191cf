"""Solving a :class:`~optimizer.linear_program.LinearProgram`: HiGHS through PuLP by default, CBC (through PuLP)
as the fallback, or HiGHS straight through highspy.

Three ways to solve the same matrix:

- ``"pulp-highs"`` (default): the matrix becomes a PuLP model through PuLP's public modelling API
  (one ``LpVariable`` per column and one ``LpConstraint`` per row side, named after the model's
  columns and rows, see :func:`pulp_problem`) solved by stock ``pulp.HiGHS``. PuLP is the modelling
  layer a trader or a test can inspect or write out (``LpProblem.writeLP``), and it gets the
  solution back in its variables;
- ``"pulp-cbc"``: the PuLP model solved by PuLP's bundled CBC (``PULP_CBC_CMD``);
- ``"highs"``: the matrix straight to highspy (``Highs.passModel``), no PuLP objects and no names
  (``parktwin plan --solver highs``, and the backtest's default).

Realizability binaries (chiller modes among them) are solved by :mod:`optimizer.branch_and_bound` on
a HiGHS instance holding the matrix, on both HiGHS paths (faster than the HiGHS MIP on the binaries
cases: ``benchmarks/realizability_search.py`` measures both); a model with other integers, or a
search that hands over, goes to the HiGHS MIP. Every solve asks for a relative MIP gap of
``mip_rel_gap`` (1e-6 by default) and reports status, objective, solver-only time (the HiGHS run, or
the CBC process), model-building time and the gap reached. A MIP's search is bounded by
``mip_max_nodes`` branch-and-bound nodes (HiGHS's ``mip_max_nodes``, CBC's ``maxNodes``), so the
same model gives the same result on any machine at any load; a wall-clock ``mip_time_limit_s`` may
be added. A search stopped by either keeps its incumbent (status "node limit" or "time limit", never
claimed optimal) or, without one, returns no solution with that status. A failed solve never raises:
the caller gets the status and decides on a fallback.
"""

from __future__ import annotations

import functools
import math
import os
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
import pulp

from optimizer.branch_and_bound import SearchOutcome, pairs_only, search_realizable
from optimizer.linear_program import LinearProgram
from optimizer.model import MIP_MAX_NODES
from optimizer.warm_start import WarmStart

if TYPE_CHECKING:
    import highspy

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
    optimal). ``warm_start``: the basis an LP (not a MIP) starts from and leaves for the next
    solve, on the ``"highs"`` path (:mod:`optimizer.warm_start`); the PuLP paths start cold."""
    if solver == "pulp-cbc":
        return solve_pulp_cbc(lp, mip_rel_gap, mip_time_limit_s, mip_max_nodes)
    result = _SOLVE[solver](lp, mip_rel_gap, mip_time_limit_s, warm_start, mip_max_nodes)
    if not result.usable and result.status not in ("infeasible", "unbounded") + LIMITS:
        fallback = solve_pulp_cbc(lp, mip_rel_gap, mip_time_limit_s, mip_max_nodes)
        fallback.solver = f"{solver} failed ({result.status}); pulp-cbc"
        return fallback
    return result


def pass_matrix(highs: highspy.Highs, lp: LinearProgram, integrality: bool = True) -> None:
    """Load the LP into a HiGHS instance in one ``passModel`` call: the CSR matrix row-wise as it is
    and every vector as a numpy array (highspy's array overload reads them in place; a ``HighsLp``
    copies each element through Python), with its integrality unless ``integrality`` is False (the
    relaxation the realizability search starts from)."""
    import highspy

    csr = lp.a
    kinds = lp.integrality.astype(np.int32) if integrality else np.zeros(csr.shape[1], dtype=np.int32)
    highs.passModel(csr.shape[1], csr.shape[0], csr.nnz, int(highspy.MatrixFormat.kRowwise),
                    int(highspy.ObjSense.kMinimize), lp.objective_constant, lp.c, lp.col_lower, lp.col_upper,
                    lp.row_lower, lp.row_upper, csr.indptr, csr.indices, csr.data, kinds)


def solve_highspy(lp: LinearProgram, mip_rel_gap: float = 1e-6, mip_time_limit_s: float | None = None,
                  warm_start: WarmStart | None = None, mip_max_nodes: int = MIP_MAX_NODES) -> SolveResult:
    """Hand the matrices straight to HiGHS; realizability binaries go to :mod:`optimizer.branch_and_bound`,
    other integers to the HiGHS MIP."""
    started = time.perf_counter()
    highs = new_highs()
    for option, value in _highs_options(lp, mip_rel_gap, mip_time_limit_s, mip_max_nodes).items():
        highs.setOptionValue(option, value)
    search = pairs_only(lp)
    pass_matrix(highs, lp, integrality=not search)
    if search:
        outcome = search_realizable(highs, lp, mip_rel_gap, mip_time_limit_s, warm_start, mip_max_nodes)
        run_s = outcome.run_s
    else:
        outcome = None
        warm = warm_start if not lp.has_integers else None
        if warm is not None:
            warm.apply(highs, lp)
        run_started = time.perf_counter()
        highs.run()
        run_s = time.perf_counter() - run_started
        if warm is not None:
            warm.keep(highs, lp)
    return _highs_result(highs, lp, "highs", run_s, time.perf_counter() - started - run_s, outcome)


def _highs_options(lp: LinearProgram, mip_rel_gap: float, mip_time_limit_s: float | None,
                   mip_max_nodes: int) -> dict[str, float | int]:
    """HiGHS options of a solve: the gap, and for a MIP its node budget and optional time limit."""
    options: dict[str, float | int] = {"mip_rel_gap": mip_rel_gap}
    if lp.has_integers:
        options["mip_max_nodes"] = int(mip_max_nodes)
        if mip_time_limit_s is not None:
            options["time_limit"] = float(mip_time_limit_s)
    return options


def _highs_result(highs: highspy.Highs, lp: LinearProgram, solver: str, run_s: float, build_s: float,
                  search: SearchOutcome | None = None) -> SolveResult:
    """Status, solution and gap of a HiGHS instance that has run on the matrix (the realizability
    search's status and gap where it ran and did not hand over to the HiGHS MIP)."""
    if search is not None and search.status != "handed over":
        if search.status != "optimal" and not search.incumbent:
            return SolveResult(search.status, solver, None, None, run_s, build_s, None)
        x = np.asarray(highs.getSolution().col_value, dtype=float)
        return SolveResult(search.status, solver, x, lp.objective(x), run_s, build_s, search.mip_gap)
    name, has_solution = _highs_status(highs)
    if not has_solution:
        return SolveResult(name, solver, None, None, run_s, build_s, None)
    x = np.asarray(highs.getSolution().col_value, dtype=float)
    gap = float(highs.getInfo().mip_gap) if lp.has_integers else 0.0
    return SolveResult(name, solver, x, lp.objective(x), run_s, build_s, gap)


def _highs_status(highs: highspy.Highs) -> tuple[str, bool]:
    """The status of a HiGHS instance that has run, and whether it holds a solution (optimal, or the
    incumbent of a MIP its limit stopped)."""
    import highspy

    status = highs.getModelStatus()
    name = {highspy.HighsModelStatus.kOptimal: "optimal", highspy.HighsModelStatus.kInfeasible: "infeasible",
            highspy.HighsModelStatus.kUnbounded: "unbounded",
            highspy.HighsModelStatus.kUnboundedOrInfeasible: "infeasible",
            highspy.HighsModelStatus.kTimeLimit: "time limit",
            # the only solution-type limit set here is mip_max_nodes
            highspy.HighsModelStatus.kSolutionLimit: "node limit"}.get(status, highs.modelStatusToString(status))
    has_incumbent = name in LIMITS and highs.getInfo().primal_solution_status == 2
    return name, name == "optimal" or has_incumbent


def new_highs() -> highspy.Highs:
    """A silent HiGHS instance (highspy's public ``output_flag`` option)."""
    import highspy

    _highs_banner_printed()
    highs = highspy.Highs()
    highs.setOptionValue("output_flag", False)
    return highs


@functools.cache
def _highs_banner_printed() -> bool:
    """HiGHS prints its banner on the process's first instance, from C++ to file descriptor 1, inside
    ``highspy.Highs()`` itself (its constructor enables callbacks, which writes the log header while
    ``output_flag`` still has its default): no option of highspy's public API can be set before it,
    and Python's ``sys.stdout`` never sees it. So stdout (fd 1) is pointed at /dev/null while that
    first instance is made, and machine-readable output (``parktwin plan --json``) stays clean;
    every instance after it is silenced by ``output_flag`` alone."""
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


def pulp_problem(lp: LinearProgram) -> tuple[pulp.LpProblem, list[pulp.LpVariable]]:
    """The LP as a PuLP model, through PuLP's public modelling API: a variable per column and a
    constraint per row, named after them (:attr:`LinearProgram.column_names`, ``row_names``; PuLP
    writes ``_`` for the characters it does not allow in names, ``[]-``); a ranged row becomes
    ``{row}.lo`` and ``{row}.hi``. Every variable is in the objective, with its cost or 0, so that a
    column in no row is still in the model. Also returns the variables in column order."""
    problem = pulp.LpProblem("dispatch", pulp.LpMinimize)
    lower, upper = ([value if math.isfinite(value) else None for value in bound.tolist()]  # PuLP: None is unbounded
                    for bound in (lp.col_lower, lp.col_upper))
    kinds = np.where(lp.integrality, pulp.LpInteger, pulp.LpContinuous).tolist()
    variables = [problem.add_variable(name, lo, hi, kind)
                 for name, lo, hi, kind in zip(lp.column_names, lower, upper, kinds)]
    problem.setObjective(pulp.LpAffineExpression(dict(zip(variables, lp.c.tolist())),
                                                 constant=lp.objective_constant))
    a = lp.a
    starts = a.indptr.tolist()
    # (variable, coefficient), row by row
    terms = list(zip([variables[j] for j in a.indices.tolist()], a.data.tolist()))
    constraints: dict[str, pulp.LpConstraint] = {}

    def add(name: str, sense: int, rhs: float, expression: pulp.LpAffineExpression) -> None:
        constraint = pulp.LpConstraint(expression, sense, name, rhs)
        constraints[constraint.name] = constraint  # the name as PuLP writes it

    for name, start, end, lo, hi in zip(lp.row_names, starts, starts[1:], lp.row_lower.tolist(),
                                        lp.row_upper.tolist()):
        expression = pulp.LpAffineExpression(dict(terms[start:end]))
        if lo == hi:
            add(name, pulp.LpConstraintEQ, lo, expression)
            continue
        if math.isfinite(lo):
            add(f"{name}.lo" if math.isfinite(hi) else name, pulp.LpConstraintGE, lo, expression)
        if math.isfinite(hi):
            add(f"{name}.hi" if math.isfinite(lo) else name, pulp.LpConstraintLE, hi, expression)
    # LpProblem.extend adds named constraints as they are; "+=" would check each name against the
    # others and register every term's variable again, which the objective has already done
    problem.extend(constraints)
    return problem, variables


class MatrixHiGHS(pulp.LpSolver):  # type: ignore[misc]  # pulp ships no types: LpSolver is Any
    """A PuLP solver (PuLP's solver interface, ``actualSolve``) for a model :func:`pulp_problem` made:
    it solves the matrix the model was made of as :func:`solve_highspy` does, realizability search
    included, and writes the solution into the model's variables (``varValue``) and its status
    (``assignStatus``). ``result`` is the :class:`SolveResult` of the last solve."""

    def __init__(self, lp: LinearProgram, variables: list[pulp.LpVariable], mip_rel_gap: float,
                 mip_time_limit_s: float | None, warm_start: WarmStart | None, mip_max_nodes: int):
        super().__init__(mip=True, msg=False)
        self.matrix_lp, self.columns = lp, variables
        self.settings = (mip_rel_gap, mip_time_limit_s, warm_start, mip_max_nodes)
        self.result: SolveResult | None = None

    def available(self) -> bool:
        return True

    def actualSolve(self, problem: pulp.LpProblem) -> int:
        self.result = solve_highspy(self.matrix_lp, *self.settings)
        if self.result.x is not None:
            for variable, value in zip(self.columns, self.result.x.tolist()):
                variable.varValue = value
        status: int
        solution: int
        status, solution = {"optimal": (pulp.LpStatusOptimal, pulp.LpSolutionOptimal),
                            "infeasible": (pulp.LpStatusInfeasible, pulp.LpSolutionInfeasible),
                            "unbounded": (pulp.LpStatusUnbounded, pulp.LpSolutionUnbounded)}.get(
            self.result.status, (pulp.LpStatusOptimal, pulp.LpSolutionIntegerFeasible) if self.result.usable
            else (pulp.LpStatusNotSolved, pulp.LpSolutionNoSolutionFound))
        problem.assignStatus(status, solution)
        return status


def solve_pulp_highs(lp: LinearProgram, mip_rel_gap: float = 1e-6, mip_time_limit_s: float | None = None,
                     warm_start: WarmStart | None = None, mip_max_nodes: int = MIP_MAX_NODES) -> SolveResult:
    """Build the PuLP model and solve it with HiGHS through PuLP (:class:`MatrixHiGHS`)."""
    started = time.perf_counter()
    problem, variables = pulp_problem(lp)
    solver = MatrixHiGHS(lp, variables, mip_rel_gap, mip_time_limit_s, warm_start, mip_max_nodes)
    problem.solve(solver)
    result = solver.result
    if result is None:
        raise RuntimeError("PuLP returned without calling MatrixHiGHS.actualSolve")
    result.solver = "pulp-highs"
    result.build_time_s = time.perf_counter() - started - result.solve_time_s
    return result


class _CBC(pulp.PULP_CBC_CMD):  # type: ignore[misc]  # pulp ships no types: PULP_CBC_CMD is Any
    """PuLP's bundled CBC, keeping the first line of its solution file ("Optimal - objective value
    ...", "Stopped on time - ...", "Stopped on iterations - ...", "Integer infeasible - ..."), which
    says which limit stopped it; PuLP's status does not."""

    status_line = ""

    def get_status(self, filename: str) -> tuple[int, int]:
        """(PuLP status, PuLP solution status) of the solution file, as PULP_CBC_CMD reads them."""
        with open(filename) as f:
            self.status_line = f.readline().strip()
        statuses: tuple[int, int] = super().get_status(filename)
        return statuses


def solve_pulp_cbc(lp: LinearProgram, mip_rel_gap: float = 1e-6, mip_time_limit_s: float | None = None,
                   mip_max_nodes: int = MIP_MAX_NODES) -> SolveResult:
    """Build the PuLP model and solve it with PuLP's bundled CBC, its search bounded by ``maxNodes``
    (and ``mip_time_limit_s``). CBC does not report the gap it reached: an optimal MIP is reported
    at the gap asked for, one stopped by a limit without a gap. A MIP incumbent is polished: its
    binaries fixed at their rounded values and the rest solved again as an LP, so that no pair's
    flows keep the residue CBC's integrality tolerance leaves."""
    started = time.perf_counter()
    problem, variables = pulp_problem(lp)
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
        x, polish_s = _polish(problem, variables, lp, x, pulp.PULP_CBC_CMD(msg=False))
        run_s += polish_s
    return SolveResult(status, "pulp-cbc", x, lp.objective(x), run_s, built_s, gap)


def _polish(problem: pulp.LpProblem, variables: list[pulp.LpVariable], lp: LinearProgram,
            x: np.ndarray, solver: pulp.LpSolver) -> tuple[np.ndarray, float]:
    """x with its integer columns fixed at their rounded values and the other columns re-solved as
    an LP by ``solver``, so that no pair's flows keep the residue the MIP's integrality tolerance
    leaves (x unchanged should that LP not solve); and the seconds it took."""
    started = time.perf_counter()
    for j in np.flatnonzero(lp.integrality):
        variables[j].cat = pulp.LpContinuous
        variables[j].lowBound = variables[j].upBound = float(np.round(x[j]))
    problem.solve(solver)
    run_s = time.perf_counter() - started
    if problem.status != pulp.LpStatusOptimal:
        return x, run_s
    return np.array([v.varValue or 0.0 for v in variables]), run_s


_SOLVE = {"pulp-highs": solve_pulp_highs, "highs": solve_highspy}
"""The HiGHS paths by name (they take a warm start; ``pulp-cbc`` does not)."""
