"""A dispatch: the decisions of every asset over the horizon, and what follows from them.

Rule-based strategies (baselines, the fallback plan) choose the primary decisions
(chiller direct/ice, ice charge/melt, battery charge/discharge, PV used, EV power);
:func:`complete_dispatch` derives the rest (inventories, SOC, grid import/export,
peak, terminal shortfalls, binaries) and lays it out as a vector of the same
:class:`~optimizer.model.LinearProgram`, so every strategy is priced by the same
objective and checked against the same constraints as the optimal plan.
"""

from __future__ import annotations

import numpy as np

from optimizer.inputs import HorizonInputs
from optimizer.model import DispatchAssets, LinearProgram

PRIMARY_BLOCKS = ("chiller_direct_kwth", "chiller_ice_kwth", "ice_charge_kwth", "ice_melt_kwth",
                  "battery_charge_kw", "battery_discharge_kw", "pv_used_kw", "ev_kw")


def complete_dispatch(lp: LinearProgram, inputs: HorizonInputs, assets: DispatchAssets,
                      decisions: dict[str, np.ndarray]) -> np.ndarray:
    """The LP vector of a dispatch given its primary decisions (arrays shaped like the LP blocks)."""
    dt = inputs.step_h
    x = np.zeros(lp.a.shape[1])
    for name in PRIMARY_BLOCKS:
        x[lp.blocks[name].index] = decisions[name]
    inventory = lp.blocks["ice_inventory_kwhth"].index
    stored = lp.blocks["battery_stored_kwh"].index
    x[inventory[:, 0]] = lp.col_lower[inventory[:, 0]]
    x[stored[:, 0]] = lp.col_lower[stored[:, 0]]
    keep = np.array([1.0 - k.standing_loss_pct_per_h / 100.0 * dt for k in assets.ice_tanks])
    eta_c = np.array([b.charge_efficiency for b in assets.batteries])
    eta_d = np.array([b.discharge_efficiency for b in assets.batteries])
    charge, melt = decisions["ice_charge_kwth"], decisions["ice_melt_kwth"]
    bat_ch, bat_dis = decisions["battery_charge_kw"], decisions["battery_discharge_kw"]
    for t in range(inputs.steps):
        x[inventory[:, t + 1]] = keep * x[inventory[:, t]] + (charge[:, t] - melt[:, t]) * dt
        x[stored[:, t + 1]] = x[stored[:, t]] + (eta_c * bat_ch[:, t] - bat_dis[:, t] / eta_d) * dt
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
    """Peak, terminal shortfalls and binaries: the smallest values the rows allow for x's decisions."""
    peak = lp.blocks["peak_kw"].index
    x[peak] = 0.0
    peak_rows = lp.peak_rows
    x[peak] = max(float(lp.col_lower[peak][0]), float(np.max(lp.a[peak_rows] @ x, initial=0.0)))
    for name, rows in (("battery_terminal_short_kwh", lp.battery_terminal_rows),
                       ("ice_terminal_short_kwhth", lp.ice_terminal_rows)):
        index = lp.blocks[name].index
        x[index] = 0.0
        x[index] = np.maximum(0.0, lp.row_lower[rows] - lp.a[rows] @ x)
    for name, (first, _second) in lp.binary_pairs.items():
        x[lp.blocks[name].index] = (x[first] > 0).astype(float)
