"""An exact branch-and-bound over the realizability binaries, on HiGHS LPs.

The only binaries a dispatch LP usually has are the realizability ones: per pair of flows that must
not both run in one step (import/export, battery charge/discharge, ice making/melting) a ``u`` with
``first <= M u`` and ``second <= M (1 - u)`` (optimizer.model). Most re-plans need few of them to
settle, and HiGHS's MIP machinery (presolve, cuts, heuristics, its own search) costs several times
the LP even when the root solves it (``benchmarks/realizability_search.py``). This search skips that
machinery:

- the LP relaxation (u in [0, 1]) is solved; a solution where no pair has both flows above
  :data:`~optimizer.lp_builder.SIMULTANEOUS_TOLERANCE_KW` is realizable as it stands (each u can be set
  to the side that flows), so it is an incumbent;
- otherwise it branches on the pair with the largest simultaneous flow, fixing its u to 1 or 0
  (bounds changed in place, so HiGHS re-solves from the last basis), the side with the larger
  flow first, depth first;
- a node is dropped when its bound is within ``mip_rel_gap`` (relative) of the incumbent, so a
  finished search is optimal to that gap;
- the LPs run without HiGHS's presolve and with Devex pricing in the dual simplex: the nodes
  re-solve from the last basis, and on the demo park's day-ahead relaxations presolve costs more
  than it saves.

A search that has not finished within :data:`NODE_LIMIT` nodes (near-symmetric cases, such as any
export paid above the valley price, where many steps tie) hands over to the HiGHS MIP on the same
instance, with the incumbent found so far as its starting solution and what is left of the node
budget (``max_nodes``, HiGHS's ``mip_max_nodes``) and of the time limit, if any. A budget spent
within the search itself ends it with its incumbent (status "node limit") or without one. Either way
the instance ends holding the solution it returns, so a caller that reads it back (PuLP) gets that
solution.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from optimizer.linear_program import LinearProgram
from optimizer.lp_builder import SIMULTANEOUS_TOLERANCE_KW
from optimizer.model import MIP_MAX_NODES
from optimizer.warm_start import WarmStart

if TYPE_CHECKING:
    import highspy

NODE_LIMIT = 60
"""LPs the search solves before handing over to the HiGHS MIP."""

DEVEX = 1
"""HiGHS ``simplex_dual_edge_weight_strategy`` value for Devex pricing."""


@dataclass
class SearchOutcome:
    """How a realizability search ended. ``status``: "optimal", "node limit" or "time limit" (with
    its incumbent, gap ``mip_gap``, where ``incumbent``), "infeasible", "handed over" (the HiGHS MIP
    has run on the instance; read its status there) or another HiGHS status of an LP that failed."""

    status: str
    mip_gap: float | None
    nodes: int
    run_s: float
    """Time in HiGHS runs, s."""
    incumbent: bool = False
    """The instance holds a realizable solution (always so when "optimal")."""


def pairs_only(lp: LinearProgram) -> bool:
    """True when every integer column of ``lp`` is a realizability binary of :attr:`LinearProgram.binary_pairs`."""
    pair_columns = _pair_columns(lp)[0]
    return lp.has_integers and np.array_equal(np.sort(pair_columns), np.flatnonzero(lp.integrality))


def search_realizable(highs: highspy.Highs, lp: LinearProgram, mip_rel_gap: float, time_limit_s: float | None,
                      warm_start: WarmStart | None = None, max_nodes: int = MIP_MAX_NODES) -> SearchOutcome:
    """Branch and bound on ``highs``, which holds ``lp`` without integrality (see module docstring).
    ``warm_start``: where the relaxation starts from, and keeps its optimal basis for the next search.
    ``max_nodes``: the LPs of this search and the nodes of the HiGHS MIP it may hand over to, together."""
    import highspy

    started = time.perf_counter()
    highs.setOptionValue("presolve", "off")
    highs.setOptionValue("simplex_dual_edge_weight_strategy", DEVEX)
    u, first, second = _pair_columns(lp)
    lower, upper = lp.col_lower[u].copy(), lp.col_upper[u].copy()
    best_x, best_objective, run_s, nodes = None, np.inf, 0.0, 0
    open_nodes: list[tuple[float, dict[int, float]]] = [(-np.inf, {})]  # (parent's bound, fixings)
    while open_nodes:
        out_of_time = time_limit_s is not None and time.perf_counter() - started > time_limit_s
        out_of_nodes = nodes >= max_nodes
        if out_of_nodes or out_of_time:
            status = "time limit" if out_of_time else "node limit"
            if best_x is None:
                return SearchOutcome(status, None, nodes, run_s)
            bound = min(b for b, _ in open_nodes)
            return _finish(highs, lp, u, best_x, SearchOutcome(status, _gap(best_objective, bound), nodes, run_s,
                                                               True), time_limit_s, started, max_nodes)
        if nodes >= NODE_LIMIT:
            return _hand_over(highs, lp, u, best_x, time_limit_s, started, nodes, run_s, max_nodes)
        parent_bound, fixings = open_nodes.pop()
        if parent_bound >= _cutoff(best_objective, mip_rel_gap):
            continue
        node_lower, node_upper = lower.copy(), upper.copy()
        for k, value in fixings.items():
            node_lower[k] = node_upper[k] = value
        highs.changeColsBounds(len(u), u, node_lower, node_upper)
        if nodes == 0 and warm_start is not None:
            warm_start.apply(highs, lp)
        run_s += _run(highs)
        if nodes == 0 and warm_start is not None:
            warm_start.keep(highs, lp)
        nodes += 1
        model_status = highs.getModelStatus()
        if model_status == highspy.HighsModelStatus.kInfeasible:
            continue
        if model_status != highspy.HighsModelStatus.kOptimal:
            return SearchOutcome(highs.modelStatusToString(model_status), None, nodes, run_s)
        objective = highs.getInfo().objective_function_value
        if objective >= _cutoff(best_objective, mip_rel_gap):
            continue
        x = np.asarray(highs.getSolution().col_value)
        both = np.minimum(x[first], x[second])
        k = int(np.argmax(both)) if len(both) else 0
        if not len(both) or both[k] <= SIMULTANEOUS_TOLERANCE_KW:
            best_x, best_objective = _with_integral_u(x, u, first, second), objective
            continue
        larger_side = 1.0 if x[first[k]] >= x[second[k]] else 0.0
        open_nodes.append((objective, {**fixings, k: 1.0 - larger_side}))
        open_nodes.append((objective, {**fixings, k: larger_side}))
    if best_x is None:
        return SearchOutcome("infeasible", None, nodes, run_s)
    return _finish(highs, lp, u, best_x, SearchOutcome("optimal", 0.0, nodes, run_s, True), time_limit_s, started,
                   max_nodes)


def _pair_columns(lp: LinearProgram) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(u, first, second) column indices over every realizability pair."""
    names = [name for name, (first, _) in lp.binary_pairs.items() if len(first)]
    if not names:
        empty = np.zeros(0, dtype=np.int32)
        return empty, empty, empty
    u = np.concatenate([lp.blocks[name].index for name in names])
    first = np.concatenate([lp.binary_pairs[name][0] for name in names])
    second = np.concatenate([lp.binary_pairs[name][1] for name in names])
    return u.astype(np.int32), first, second


def _with_integral_u(x: np.ndarray, u: np.ndarray, first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """x with each u at the side that flows (1 for first, 0 for second; rounded where neither does)."""
    x = x.copy()
    x[u] = np.where(x[first] > SIMULTANEOUS_TOLERANCE_KW, 1.0,
                    np.where(x[second] > SIMULTANEOUS_TOLERANCE_KW, 0.0, np.round(x[u])))
    return x


def _finish(highs: highspy.Highs, lp: LinearProgram, u: np.ndarray, best_x: np.ndarray, outcome: SearchOutcome,
            time_limit_s: float | None, started: float, max_nodes: int) -> SearchOutcome:
    """Fix every u at its value in the incumbent and re-solve, so the instance holds that solution
    (PuLP reads it back from there); should that LP not solve, the HiGHS MIP takes over."""
    import highspy

    highs.changeColsBounds(len(u), u, best_x[u], best_x[u])
    outcome.run_s += _run(highs)
    if highs.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        return _hand_over(highs, lp, u, best_x, time_limit_s, started, outcome.nodes, outcome.run_s, max_nodes)
    return outcome


def _run(highs: highspy.Highs) -> float:
    started = time.perf_counter()
    highs.run()
    return time.perf_counter() - started


def _cutoff(best_objective: float, mip_rel_gap: float) -> float:
    """Bound at or above which a node cannot improve the incumbent by more than the gap."""
    return best_objective - mip_rel_gap * abs(best_objective) if np.isfinite(best_objective) else np.inf


def _gap(best_objective: float, bound: float) -> float:
    return float((best_objective - bound) / max(abs(best_objective), 1e-9)) if np.isfinite(bound) else 1.0


def _hand_over(highs: highspy.Highs, lp: LinearProgram, u: np.ndarray, best_x: np.ndarray | None,
               time_limit_s: float | None, started: float, nodes: int, run_s: float, max_nodes: int) -> SearchOutcome:
    """Turn the instance into the MIP (bounds and integrality of lp), start it from the incumbent, run it
    with the nodes left of ``max_nodes``."""
    import highspy

    highs.setOptionValue("mip_max_nodes", max(0, int(max_nodes) - nodes))
    highs.setOptionValue("presolve", "choose")  # the MIP's presolve pays for itself
    highs.setOptionValue("simplex_dual_edge_weight_strategy", -1)  # HiGHS chooses again
    highs.changeColsBounds(len(u), u, lp.col_lower[u], lp.col_upper[u])
    highs.changeColsIntegrality(len(u), u, np.full(len(u), highspy.HighsVarType.kInteger, dtype=np.uint8))
    if best_x is not None:
        solution = highspy.HighsSolution()
        solution.col_value = best_x.tolist()
        solution.value_valid = True
        highs.setSolution(solution)
    if time_limit_s is not None:
        highs.setOptionValue("time_limit", max(0.01, time_limit_s - (time.perf_counter() - started)))
    run_s += _run(highs)
    return SearchOutcome("handed over", None, nodes, run_s)
