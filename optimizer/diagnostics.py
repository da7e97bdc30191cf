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
from twin.kinds import Chiller, EVCharger, IceTank


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
    tanks = cast(tuple[IceTank, ...], assets.of_kind("ice_tank"))
    load = inputs.column("cooling_load_kwth")
    if np.isfinite(load).all():
        capacity_kwth = {each.kind: each(assets.of_kind(each.kind)).cooling_max_kwth() for each in blocks()}
        over = load > sum(capacity_kwth.values()) + 1e-9
        if over.any():
            worst = int(np.argmax(load))
            sources = ", ".join(f"{kind} {kwth:,.0f} kWth" for kind, kwth in capacity_kwth.items() if kwth > 0)
            problems.append(f"inputs: cooling_load_kwth {load[worst]:,.0f} kWth at "
                            f"{inputs.index[worst]:%Y-%m-%d %H:%M} UTC is above the most the park's cooling "
                            f"sources deliver, {sum(capacity_kwth.values()):,.0f} kWth ({sources or 'none'}; "
                            f"{int(over.sum())} step(s))")
        elif tanks:
            direct_kwth = sum(c.cooling_capacity_kwth for c in cast(tuple[Chiller, ...], assets.of_kind("chiller")))
            problems += _ice_shortage(inputs, tanks, state, load, direct_kwth)
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


def _ice_shortage(inputs: HorizonInputs, tanks: tuple[IceTank, ...], state: InitialState, load: np.ndarray,
                  direct_kwth: float) -> list[str]:
    """Load above chiller capacity that the ice inventory (without recharging) cannot cover, when no
    chiller is free to make ice in those steps."""
    need_kwhth = np.maximum(0.0, load - direct_kwth) * inputs.step_h
    if need_kwhth.sum() == 0:
        return []
    inventory = sum(state.stored.get(k.id, k.initial_stored())
                    * k.melt_effectiveness for k in tanks)
    rechargeable = any(load < direct_kwth)
    if inventory + 1e-9 >= need_kwhth.sum() or rechargeable:
        return []
    return [(f"inputs: cooling_load_kwth exceeds total chiller capacity {direct_kwth:,.0f} kWth by "
            f"{need_kwhth.sum():,.0f} kWhth over the horizon, more than the ice inventory can deliver "
            f"({inventory:,.0f} kWhth) with no step free to make ice")]


def infeasibility_diagnostic(inputs: HorizonInputs, assets: DispatchAssets, state: InitialState,
                             status: str) -> list[str]:
    """A failed solve explained: the input checks' findings, else the status and what to look at."""
    problems = input_problems(inputs, assets, state)
    if problems:
        return [f"solver status: {status}"] + problems
    return [f"solver status: {status}",
            ("no single input explains it; check that cooling_load_kwth can be carried by the chillers and the ice "
            "inventory over the horizon, grid import/export limits, and EV session windows")]
