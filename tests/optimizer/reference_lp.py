"""An independent, loop-by-loop assembly of the dispatch problem as dense matrices for scipy.

Written from the formulation in optimizer/model.py's docstring, not from its code:
one named variable at a time, one constraint row at a time. Solved with
scipy.optimize.linprog (HiGHS) or, with realizability binaries on every step (each ice-making
chiller in one mode per step as well), scipy.optimize.milp. Only what the tests use: chillers, one
ice tank, batteries, PV, grid, peak (demand interval = step), soft terminal targets with given
penalties.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, linprog, milp


class Problem:
    def __init__(self):
        self.names: list[str] = []
        self.lower: list[float] = []
        self.upper: list[float] = []
        self.cost: list[float] = []
        self.integer: list[int] = []
        self.eq_rows: list[tuple[dict[str, float], float]] = []
        self.le_rows: list[tuple[dict[str, float], float]] = []

    def var(self, name, lower=0.0, upper=np.inf, cost=0.0, integer=False):
        self.names.append(name)
        self.lower.append(lower)
        self.upper.append(upper)
        self.cost.append(cost)
        self.integer.append(1 if integer else 0)

    def eq(self, terms: dict[str, float], rhs: float):
        self.eq_rows.append((terms, rhs))

    def le(self, terms: dict[str, float], rhs: float):
        self.le_rows.append((terms, rhs))

    def matrices(self):
        col = {n: j for j, n in enumerate(self.names)}

        def dense(rows):
            a = np.zeros((len(rows), len(self.names)))
            b = np.zeros(len(rows))
            for i, (terms, rhs) in enumerate(rows):
                for name, coef in terms.items():
                    a[i, col[name]] += coef
                b[i] = rhs
            return a, b

        return dense(self.eq_rows), dense(self.le_rows), col


def reference_problem(*, step_h, load_kwth, other_kw, pv_kw, price, export_price, chillers, tank, batteries,
                      demand_rate, peak_so_far, battery_penalty, ice_penalty, binaries=False,
                      export_limited_to_pv=False) -> Problem:
    """chillers: list of dicts(id, cap, cop, ice_cap or None, ice_cop); tank: dict(cap, charge_max, melt_max,
    loss_pct_h, eff, start) or None; batteries: dicts(id, e_min, e_max, p_ch, p_dis, eta_c, eta_d, start).
    export_limited_to_pv: the export of each step at most the PV used in it."""
    p = Problem()
    T = len(load_kwth)
    for t in range(T):
        for c in chillers:
            p.var(f"d_{c['id']}_{t}", 0, c["cap"])
            if c["ice_cap"]:
                p.var(f"i_{c['id']}_{t}", 0, c["ice_cap"])
        if tank:
            p.var(f"chg_{t}", 0, tank["charge_max"])
            p.var(f"melt_{t}", 0, tank["melt_max"])
        for b in batteries:
            p.var(f"bc_{b['id']}_{t}", 0, b["p_ch"])
            p.var(f"bd_{b['id']}_{t}", 0, b["p_dis"])
        p.var(f"pv_{t}", 0, pv_kw[t])
        p.var(f"imp_{t}", 0, np.inf, price[t] * step_h)
        p.var(f"exp_{t}", 0, np.inf, -export_price[t] * step_h)
    for t in range(T + 1):
        if tank:
            fixed = tank["start"] if t == 0 else None
            p.var(f"inv_{t}", fixed if fixed is not None else 0, fixed if fixed is not None else tank["cap"])
        for b in batteries:
            fixed = b["start"] if t == 0 else None
            p.var(f"e_{b['id']}_{t}", fixed if fixed is not None else b["e_min"],
                  fixed if fixed is not None else b["e_max"])
    p.var("peak", peak_so_far, np.inf, demand_rate)
    for b in batteries:
        p.var(f"short_{b['id']}", 0, np.inf, battery_penalty)
    if tank:
        p.var("short_ice", 0, np.inf, ice_penalty)

    for t in range(T):
        cooling = {f"d_{c['id']}_{t}": 1.0 for c in chillers}
        if tank:
            cooling[f"melt_{t}"] = tank["eff"]
        p.eq(cooling, load_kwth[t])
        if tank:
            made = {f"i_{c['id']}_{t}": 1.0 for c in chillers if c["ice_cap"]}
            made[f"chg_{t}"] = -1.0
            p.eq(made, 0.0)
            keep = 1 - tank["loss_pct_h"] / 100 * step_h
            p.eq({f"inv_{t + 1}": 1.0, f"inv_{t}": -keep, f"chg_{t}": -step_h, f"melt_{t}": step_h}, 0.0)
        for c in chillers:
            if c["ice_cap"]:
                p.le({f"d_{c['id']}_{t}": 1 / c["cap"], f"i_{c['id']}_{t}": 1 / c["ice_cap"]}, 1.0)
        for b in batteries:
            p.eq({f"e_{b['id']}_{t + 1}": 1.0, f"e_{b['id']}_{t}": -1.0, f"bc_{b['id']}_{t}": -b["eta_c"] * step_h,
                  f"bd_{b['id']}_{t}": step_h / b["eta_d"]}, 0.0)
        electric = {f"imp_{t}": 1.0, f"exp_{t}": -1.0, f"pv_{t}": 1.0}
        for c in chillers:
            electric[f"d_{c['id']}_{t}"] = -1 / c["cop"]
            if c["ice_cap"]:
                electric[f"i_{c['id']}_{t}"] = -1 / c["ice_cop"]
        for b in batteries:
            electric[f"bc_{b['id']}_{t}"] = -1.0
            electric[f"bd_{b['id']}_{t}"] = 1.0
        p.eq(electric, other_kw[t])
        p.le({f"imp_{t}": 1.0, "peak": -1.0}, 0.0)
        if export_limited_to_pv:
            p.le({f"exp_{t}": 1.0, f"pv_{t}": -1.0}, 0.0)
    for b in batteries:
        p.le({f"e_{b['id']}_{T}": -1.0, f"short_{b['id']}": -1.0}, -b["start"])
    if tank:
        p.le({f"inv_{T}": -1.0, "short_ice": -1.0}, -tank["start"])

    if binaries:
        big = 1e5
        for t in range(T):
            p.var(f"ug_{t}", 0, 1, integer=True)
            p.le({f"imp_{t}": 1.0, f"ug_{t}": -big}, 0.0)
            p.le({f"exp_{t}": 1.0, f"ug_{t}": big}, big)
            for b in batteries:
                p.var(f"ub_{b['id']}_{t}", 0, 1, integer=True)
                p.le({f"bc_{b['id']}_{t}": 1.0, f"ub_{b['id']}_{t}": -b["p_ch"]}, 0.0)
                p.le({f"bd_{b['id']}_{t}": 1.0, f"ub_{b['id']}_{t}": b["p_dis"]}, b["p_dis"])
            if tank:
                p.var(f"ui_{t}", 0, 1, integer=True)
                p.le({f"chg_{t}": 1.0, f"ui_{t}": -tank["charge_max"]}, 0.0)
                p.le({f"melt_{t}": 1.0, f"ui_{t}": tank["melt_max"]}, tank["melt_max"])
            for c in chillers:
                if c["ice_cap"]:  # one mode per step: ice (uc = 1) or chilled water (uc = 0)
                    p.var(f"uc_{c['id']}_{t}", 0, 1, integer=True)
                    p.le({f"i_{c['id']}_{t}": 1.0, f"uc_{c['id']}_{t}": -c["ice_cap"]}, 0.0)
                    p.le({f"d_{c['id']}_{t}": 1.0, f"uc_{c['id']}_{t}": c["cap"]}, c["cap"])
    return p


def solve_linprog(p: Problem) -> float:
    (a_eq, b_eq), (a_ub, b_ub), _ = p.matrices()
    result = linprog(p.cost, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=b_eq, bounds=list(zip(p.lower, p.upper)),
                     method="highs")
    assert result.status == 0, result.message
    return float(result.fun)


def solve_milp(p: Problem) -> tuple[float, np.ndarray, dict[str, int]]:
    (a_eq, b_eq), (a_ub, b_ub), col = p.matrices()
    constraints = [LinearConstraint(a_eq, b_eq, b_eq), LinearConstraint(a_ub, -np.inf, b_ub)]
    result = milp(np.array(p.cost), constraints=constraints, integrality=np.array(p.integer),
                  bounds=Bounds(p.lower, p.upper), options={"mip_rel_gap": 1e-9})
    assert result.status == 0, result.message
    return float(result.fun), result.x, col
