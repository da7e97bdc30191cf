"""Why a plan cannot be had: input checks that name the inputs at fault.

:func:`input_problems` runs before the solve and finds the usual culprits
(storage starting outside its window, cooling load above what the park's cooling
sources can deliver, an EV session that cannot get its energy, non-finite forecasts).
:func:`infeasibility_diagnostic` explains a failed solve, with those checks
and, when they find nothing, the solver status and the remaining suspects.
"""

from __future__ import annotations

from typing import cast

import numpy as np

from optimizer.blocks import blocks
from optimizer.inputs import HorizonInputs, InitialState
from optimizer.model import DispatchAssets
from twin.kinds import EVCharger


def input_problems(inputs: HorizonInputs, assets: DispatchAssets, state: InitialState) -> list[str]:
    """Every reason found in the inputs that makes the plan infeasible (empty when none)."""
    problems = []
    for column in inputs.frame.columns:
        bad = ~np.isfinite(inputs.frame[column].to_numpy(dtype=float))
        if bad.any():
            problems.append(f"inputs: {column} is missing or not finite at {inputs.index[bad][0]:%Y-%m-%d %H:%M} UTC "
                            f"({int(bad.sum())} step(s))")
    for each in blocks():
        problems += [f"state: {problem}" for problem in each(assets.of_kind(each.kind)).state_problems(state)]
    load = inputs.column("cooling_load_kwth")
    if np.isfinite(load).all():
        kind_blocks = [each(assets.of_kind(each.kind)) for each in blocks()]
        capacity_kwth = {block.kind: block.cooling_max_kwth() for block in kind_blocks}
        stored_kwhth = {block.kind: block.stored_cooling_kwhth(state) for block in kind_blocks}
        over = load > sum(capacity_kwth.values()) + 1e-9
        if over.any():
            worst = int(np.argmax(load))
            sources = ", ".join(f"{kind} {kwth:,.0f} kWth" for kind, kwth in capacity_kwth.items() if kwth > 0)
            problems.append(f"inputs: cooling_load_kwth {load[worst]:,.0f} kWth at "
                            f"{inputs.index[worst]:%Y-%m-%d %H:%M} UTC is above the most the park's cooling "
                            f"sources deliver, {sum(capacity_kwth.values()):,.0f} kWth ({sources or 'none'}; "
                            f"{int(over.sum())} step(s))")
        else:
            direct_kwth = sum(kwth for kind, kwth in capacity_kwth.items() if stored_kwhth[kind] is None)
            stored = {kind: kwhth for kind, kwhth in stored_kwhth.items() if kwhth is not None and assets.of_kind(kind)}
            problems += _storage_shortage(inputs, stored, load, direct_kwth)
    charger_max = {c.id: c.power_max_kw for c in cast(tuple[EVCharger, ...], assets.of_kind("ev_charger"))}
    for session in inputs.ev_sessions:
        if session.charger_id not in charger_max:
            problems.append(f"inputs: EV session on unknown charger {session.charger_id!r}")
            continue
        in_window = (inputs.index >= session.arrival_utc) & (inputs.index < session.departure_utc)
        deliverable = in_window.sum() * inputs.step_h * charger_max[session.charger_id]
        if session.energy_kwh > deliverable + 1e-9:
            problems.append(f"inputs: EV session on {session.charger_id!r} needs {session.energy_kwh:g} kWh by "
                            f"{session.departure_utc:%Y-%m-%d %H:%M} UTC but at most {deliverable:g} kWh can be "
                            f"delivered in its window")
    return problems


def _storage_shortage(inputs: HorizonInputs, stored_kwhth: dict[str, float], load: np.ndarray,
                      direct_kwth: float) -> list[str]:
    """Load above the direct cooling sources' capacity (``direct_kwth``: chillers) that the cooling storage
    holds too little for (``stored_kwhth`` by kind, what it delivers without recharging), when no step leaves
    a chiller free to charge it."""
    need_kwhth = np.maximum(0.0, load - direct_kwth) * inputs.step_h
    if need_kwhth.sum() == 0 or not stored_kwhth:
        return []
    rechargeable = any(load < direct_kwth)
    if sum(stored_kwhth.values()) + 1e-9 >= need_kwhth.sum() or rechargeable:
        return []
    held = ", ".join(f"{kind} {kwhth:,.0f} kWhth" for kind, kwhth in stored_kwhth.items())
    return [(f"inputs: cooling_load_kwth exceeds the chillers' direct capacity {direct_kwth:,.0f} kWth by "
             f"{need_kwhth.sum():,.0f} kWhth over the horizon, more than the cooling storage can deliver "
             f"({held}) with no step leaving a chiller free to charge it")]


def infeasibility_diagnostic(inputs: HorizonInputs, assets: DispatchAssets, state: InitialState,
                             status: str) -> list[str]:
    """A failed solve explained: the input checks' findings, else the status and what to look at."""
    problems = input_problems(inputs, assets, state)
    if problems:
        return [f"solver status: {status}"] + problems
    return [f"solver status: {status}",
            ("no single input explains it; check that cooling_load_kwth can be carried by the chillers and the cooling "
            "storage over the horizon, grid import/export limits, and EV session windows")]
