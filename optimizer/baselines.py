"""Rule-based strategies the optimal plan is compared with, on the same inputs and the same plant model.

- ``chiller_priority``: chillers carry the cooling load directly; ice melts only for load
  above their direct capacity; in the ice-charge window the tank is refilled to the level
  the horizon started at. Battery on the plant schedule.
- ``storage_priority``: full ice every night (charge at the maximum rate in the ice-charge
  window), melt first whenever cooling is needed outside it, chillers cover the rest.
  Battery on the plant schedule.
- ``no_storage``: ice and battery hold; chillers meet the load directly.
- ``battery_idle``: storage-priority ice with the battery idle.

The plant schedule (twin.park.PlantSchedule) is the site's own time-of-day control:
battery charges in its window at ``battery_power_fraction`` of rated power and
discharges in its windows up to the net load. Storage on the chilled-water loop (a chilled-water tank), which
the rules do not name, runs on the plant schedule in every strategy but ``no_storage``, where it holds, and the
rules share out the cooling load it leaves. Every strategy uses all the PV and
charges EVs at full power from arrival. ``no_storage`` is also the safe fallback plan.
Every other dispatchable kind holds idle (optimizer.dispatch.complete_dispatch).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, cast

import numpy as np
import pandas as pd

from optimizer.blocks.chiller import ChillerBlock
from optimizer.dispatch import complete_dispatch
from optimizer.inputs import HorizonInputs
from optimizer.linear_program import LinearProgram
from optimizer.model import DispatchAssets
from twin.kinds import Battery, Chiller, IceTank
from twin.park import PlantSchedule

BASELINES = ("chiller_priority", "storage_priority", "no_storage", "battery_idle")


def baseline_dispatch(name: str, lp: LinearProgram, inputs: HorizonInputs, assets: DispatchAssets,
                      schedule: PlantSchedule, timezone: str) -> np.ndarray:
    """The LP vector of baseline ``name`` (one of :data:`BASELINES`)."""
    ice_rule, battery_on_schedule = {
        "chiller_priority": (_chiller_priority_ice, True),
        "storage_priority": (_storage_priority_ice, True),
        "no_storage": (_hold_ice, False),
        "battery_idle": (_storage_priority_ice, False),
    }[name]
    return _rule_dispatch(lp, inputs, assets, schedule, timezone, ice_rule, battery_on_schedule,
                          loop_on_schedule=name != "no_storage")


def hold_storage_dispatch(lp: LinearProgram, inputs: HorizonInputs, assets: DispatchAssets,
                          schedule: PlantSchedule, timezone: str) -> np.ndarray:
    """Storage holds, chillers meet the load directly: the safe fallback plan."""
    return _rule_dispatch(lp, inputs, assets, schedule, timezone, _hold_ice, False, loop_on_schedule=False)


IceRule = Callable[..., tuple[float, float]]


def _hold_ice(**_: Any) -> tuple[float, float]:
    return 0.0, 0.0


def _storage_priority_ice(*, charge_window: bool, load_kwth: float, inventory_kwhth: float, start_kwhth: float,
                          capacity_kwhth: float, keep: float, dt: float, charge_max: float, melt_max: float,
                          effectiveness: float, direct_capacity_kwth: float) -> tuple[float, float]:
    """(charge, melt) kWth: fill at the maximum rate in the window, else melt first."""
    if charge_window:
        return min(charge_max, max(0.0, capacity_kwhth - keep * inventory_kwhth) / dt), 0.0
    return 0.0, min(melt_max, keep * inventory_kwhth / dt, load_kwth / effectiveness)


def _chiller_priority_ice(*, charge_window: bool, load_kwth: float, inventory_kwhth: float, start_kwhth: float,
                          capacity_kwhth: float, keep: float, dt: float, charge_max: float, melt_max: float,
                          effectiveness: float, direct_capacity_kwth: float) -> tuple[float, float]:
    """(charge, melt) kWth: melt only above direct capacity; refill to the starting level in the window."""
    if charge_window:
        return min(charge_max, max(0.0, min(capacity_kwhth, start_kwhth) - keep * inventory_kwhth) / dt), 0.0
    over = max(0.0, load_kwth - direct_capacity_kwth) / effectiveness
    return 0.0, min(melt_max, keep * inventory_kwhth / dt, over)


def _rule_dispatch(lp: LinearProgram, inputs: HorizonInputs, assets: DispatchAssets, schedule: PlantSchedule,
                   timezone: str, ice_rule: IceRule, battery_on_schedule: bool, loop_on_schedule: bool) -> np.ndarray:
    """``loop_on_schedule``: storage on the chilled-water loop runs on the plant schedule (else it holds) and the
    rules share out the load it leaves."""
    T, dt = inputs.steps, inputs.step_h
    hours = local_hours(inputs.index, timezone)
    load = inputs.column("cooling_load_kwth")
    # the strategies' rules are for these kinds, asked for by name
    chillers = cast(tuple[Chiller, ...], assets.of_kind("chiller"))
    loop_decisions: dict[str, np.ndarray] = {}
    if loop_on_schedule:
        for block in lp.kind_blocks:
            decided, delivered_kwth = block.on_plant_schedule(
                schedule, hours, load, sum(c.cooling_capacity_kwth for c in chillers), dt)
            if decided:
                loop_decisions.update(decided)
                load = load - delivered_kwth
    tanks = cast(tuple[IceTank, ...], assets.of_kind("ice_tank"))
    batteries = cast(tuple[Battery, ...], assets.of_kind("battery"))
    ice_chillers = tuple(c for c in chillers if c.makes_ice)
    direct = np.zeros((len(chillers), T))
    ice = np.zeros((len(ice_chillers), T))
    charge = np.zeros((len(tanks), T))
    melt = np.zeros((len(tanks), T))
    inventory = lp.col_lower[lp.blocks["ice_inventory_kwhth"].index[:, 0]].copy()
    start = inventory.copy()
    direct_capacity = sum(c.cooling_capacity_kwth for c in chillers)
    direct_order = sorted(range(len(chillers)), key=lambda i: chillers[i].makes_ice)
    ice_rows = [chillers.index(c) for c in ice_chillers]
    for t in range(T):
        remaining = load[t]
        window = schedule.ice_charge.contains(hours[t])
        for k, tank in enumerate(tanks):
            keep = 1.0 - tank.standing_loss_pct_per_h / 100.0 * dt
            want_charge, want_melt = ice_rule(
                charge_window=window, load_kwth=remaining, inventory_kwhth=inventory[k], start_kwhth=start[k],
                capacity_kwhth=tank.capacity_kwhth, keep=keep, dt=dt, charge_max=tank.charge_rate_max_kwth,
                melt_max=tank.melt_rate_max_kwth, effectiveness=tank.melt_effectiveness,
                direct_capacity_kwth=direct_capacity)
            melt[k, t] = want_melt
            remaining -= want_melt * tank.melt_effectiveness
            charge[k, t] = want_charge
        direct[:, t], ice[:, t] = _allocate_chillers(chillers, ice_chillers, direct_order, ice_rows, remaining,
                                                     charge[:, t].sum())
        made = ice[:, t].sum()
        wanted = charge[:, t].sum()
        if wanted > 0:
            charge[:, t] *= made / wanted
        for k, tank in enumerate(tanks):
            keep = 1.0 - tank.standing_loss_pct_per_h / 100.0 * dt
            inventory[k] = min(tank.capacity_kwhth, max(0.0, keep * inventory[k] + (charge[k, t] - melt[k, t]) * dt))
    pv = inputs.column("pv_available_kw")
    ev = _ev_uncontrolled(lp, inputs)
    bat_ch, bat_dis = np.zeros((len(batteries), T)), np.zeros((len(batteries), T))
    if battery_on_schedule and batteries:
        chiller_kw = lp.kind_block(ChillerBlock).electric_kw(direct, ice).sum(axis=0)
        net_kw = inputs.column("other_load_kw") + chiller_kw + ev.sum(axis=0) - pv
        bat_ch, bat_dis = _battery_schedule(lp, batteries, schedule, hours, net_kw, dt)
    decisions = {"chiller_direct_kwth": direct, "chiller_ice_kwth": ice, "ice_charge_kwth": charge,
                 "ice_melt_kwth": melt, "battery_charge_kw": bat_ch, "battery_discharge_kw": bat_dis,
                 "pv_used_kw": pv, "ev_kw": ev, **loop_decisions}
    return complete_dispatch(lp, decisions)


def _allocate_chillers(chillers: Sequence[Chiller], ice_chillers: Sequence[Chiller], direct_order: list[int],
                       ice_rows: list[int], direct_need_kwth: float,
                       ice_request_kwth: float) -> tuple[np.ndarray, np.ndarray]:
    """Direct load first, each chiller in ``direct_order`` (those that cannot make ice first) filled
    before the next, then ice from the ice chillers that carry no direct load (``ice_rows``: each
    ice chiller's index in ``chillers``): a chiller is in one mode per step, as the field commands it.
    """
    direct = np.zeros(len(chillers))
    need = max(0.0, direct_need_kwth)
    for i in direct_order:
        direct[i] = min(need, chillers[i].cooling_capacity_kwth)
        need -= direct[i]
    ice = np.zeros(len(ice_chillers))
    request = ice_request_kwth
    for j, chiller in enumerate(ice_chillers):
        if direct[ice_rows[j]] > 0:
            continue
        ice[j] = min(request, chiller.ice_capacity_kwth or 0.0)  # an ice chiller's is set
        request -= ice[j]
    return direct, ice


def _ev_uncontrolled(lp: LinearProgram, inputs: HorizonInputs) -> np.ndarray:
    """Each session charges at full power from arrival until its energy is delivered."""
    upper = lp.col_upper[lp.blocks["ev_kw"].index]
    ev: np.ndarray = np.zeros_like(upper)
    for s, session in enumerate(inputs.ev_sessions):
        remaining = session.energy_kwh
        for t in np.flatnonzero(upper[s] > 0):
            ev[s, t] = min(upper[s, t], remaining / inputs.step_h)
            remaining -= ev[s, t] * inputs.step_h
    return ev


def _battery_schedule(lp: LinearProgram, batteries: Sequence[Battery], schedule: PlantSchedule, hours: np.ndarray,
                      net_kw: np.ndarray, dt: float) -> tuple[np.ndarray, np.ndarray]:
    """The plant schedule's battery, as the simulated park runs it (twin.kinds.battery: the schedule's
    setpoint, followed within power, SOC window and efficiencies): charge in the window, discharge in the
    peak windows up to the net load the batteries before it leave."""
    T = len(hours)
    ch, dis = np.zeros((len(batteries), T)), np.zeros((len(batteries), T))
    stored = lp.col_lower[lp.blocks["battery_stored_kwh"].index[:, 0]].copy()
    for t in range(T):
        covered = 0.0
        for b, battery in enumerate(batteries):
            setpoint_kw = battery.scheduled_kw(schedule, hours[t], net_kw[t] - covered)
            power_kw, stored[b] = battery.follow(stored[b], setpoint_kw, dt)
            if power_kw > 0:
                dis[b, t] = power_kw
                covered += power_kw
            elif power_kw < 0:
                ch[b, t] = -power_kw
    return ch, dis


def local_hours(index_utc: pd.DatetimeIndex, timezone: str) -> np.ndarray:
    """Hour of day (fractional) in the park's time zone, where the plant schedule lives."""
    local = index_utc.tz_convert(timezone)
    return local.hour.to_numpy() + local.minute.to_numpy() / 60.0
