"""Chilled-water plant physics for the simulator: cooling load, chiller COP, the energy balance of cooling
storage, and one step of chiller and ice-tank operation.

Sources for the figures are in ../shared/DOMAIN.md: direct COP 4.4-6.3 for large
water-cooled chillers; in ice-making mode (glycol at about -5.6 C) capacity and COP
fall by a quarter to a third; melt effectiveness about 0.95; standing loss
0.1-0.25 % of inventory per hour. Part-load and temperature corrections are
simple illustrative curves, stated in each docstring.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, overload

import numpy as np

if TYPE_CHECKING:
    from twin.kinds import Chiller, IceTank

GLYCOL_SUPPLY_C = -5.6
"""Glycol supply temperature in ice-making mode, degC (DOMAIN.md)."""

COOLING_BALANCE_TEMP_C = 16.0
"""Outdoor temperature, degC, below which the buildings need no cooling (free cooling by ventilation)."""

DESIGN_OUTDOOR_TEMP_C = 34.0
"""Outdoor temperature, degC, at which a building needs its design cooling load at full occupancy."""

MODE_OFF, MODE_DIRECT, MODE_ICE = 0, 1, 2
CMD_AUTO, CMD_OFF, CMD_DIRECT, CMD_ICE = 0, 1, 2, 3
"""Values of a chiller's ``mode_cmd`` point: automatic (the plant's own staging), off, chilled water, ice making."""


@overload
def cooling_load_kwth(design_load_kwth: float, outdoor_temp_c: float, ghi_wm2: float, occupancy: float) -> float: ...
@overload
def cooling_load_kwth(design_load_kwth: float, outdoor_temp_c: np.ndarray, ghi_wm2: float | np.ndarray,
                      occupancy: float | np.ndarray) -> np.ndarray: ...
def cooling_load_kwth(design_load_kwth: float, outdoor_temp_c: float | np.ndarray, ghi_wm2: float | np.ndarray,
                      occupancy: float | np.ndarray) -> float | np.ndarray:
    """Building cooling load in kWth; arrays of conditions give an array of loads (forecast horizons).

    design * (0.2 + 0.8 * occupancy) * clip((T - 16) / (34 - 16), 0, 1.25)
    plus a solar gain of 10 % of design at 1000 W/m2 while the building is conditioned.
    """
    uncorrected = (outdoor_temp_c - COOLING_BALANCE_TEMP_C) / (DESIGN_OUTDOOR_TEMP_C - COOLING_BALANCE_TEMP_C)
    temperature_share: float | np.ndarray
    conditioned: float | np.ndarray
    if isinstance(uncorrected, np.ndarray):
        temperature_share = np.clip(uncorrected, 0.0, 1.25)
        conditioned = (temperature_share > 0).astype(float)
    else:  # the simulator's per-step call on a float: builtin min/max, no numpy array round trip
        temperature_share = min(1.25, max(0.0, uncorrected))
        conditioned = 1.0 if temperature_share > 0 else 0.0
    internal = design_load_kwth * (0.2 + 0.8 * occupancy) * temperature_share
    solar = design_load_kwth * 0.10 * (ghi_wm2 / 1000.0) * conditioned
    return internal + solar


@overload
def chiller_cop(chiller: Chiller, mode: int, part_load: float, outdoor_temp_c: float,
                chw_setpoint_c: float) -> float: ...
@overload
def chiller_cop(chiller: Chiller, mode: int, part_load: float, outdoor_temp_c: np.ndarray,
                chw_setpoint_c: float) -> np.ndarray: ...
def chiller_cop(chiller: Chiller, mode: int, part_load: float, outdoor_temp_c: float | np.ndarray,
                chw_setpoint_c: float) -> float | np.ndarray:
    """Chiller COP (kWth cooling per kW electric) in the given mode; an array of outdoor
    temperatures gives an array of COPs (the optimizer's forecast horizon).

    Direct mode: cop_rated * (1 - 0.25 * (1 - PLR)^2) * (1 + 0.03 * (setpoint - 7)) * f(T)
    Ice mode:    ice_cop_rated * f(T)
    with f(T) = clip(1 - 0.02 * (T - 30), 0.7, 1.25), a 2 %/K condenser-temperature
    correction around 30 degC outdoor. Illustrative curves of the usual shape.
    """
    uncorrected = 1.0 - 0.02 * (outdoor_temp_c - 30.0)
    temperature_factor: float | np.ndarray
    if isinstance(uncorrected, np.ndarray):
        temperature_factor = np.clip(uncorrected, 0.7, 1.25)
    else:  # the simulator's per-step call on a float: builtin min/max, no numpy array round trip
        temperature_factor = min(1.25, max(0.7, uncorrected))
    if mode == MODE_ICE:
        return (chiller.ice_cop_rated or chiller.cop_rated) * temperature_factor
    plr = min(1.0, max(0.0, part_load))
    part_load_factor = 1.0 - 0.25 * (1.0 - plr) ** 2
    setpoint_factor = 1.0 + 0.03 * (chw_setpoint_c - 7.0)
    return chiller.cop_rated * part_load_factor * setpoint_factor * temperature_factor


def standing_loss_kwth(stored_kwhth: float, loss_pct_per_h: float) -> float:
    """The standing loss of cooling storage holding ``stored_kwhth`` that loses ``loss_pct_per_h`` of what it holds
    each hour, kWth (heat gained through the tank's walls, as a share of the stored cooling)."""
    return stored_kwhth * (loss_pct_per_h / 100.0)


def dischargeable_kwth(stored_kwhth: float, loss_kwth: float, step_h: float) -> float:
    """The most cooling storage can give up over a step of ``step_h`` hours while losing ``loss_kwth``, kWth: what it
    holds, spread over the step, less the loss; never below 0."""
    return max(0.0, stored_kwhth / step_h - loss_kwth)


def chargeable_kwth(stored_kwhth: float, capacity_kwhth: float, loss_kwth: float, step_h: float) -> float:
    """The most cooling storage can take over a step of ``step_h`` hours while losing ``loss_kwth``, kWth: the room
    left below its capacity, spread over the step, plus the loss; never below 0."""
    return max(0.0, (capacity_kwhth - stored_kwhth) / step_h + loss_kwth)


def stored_after_kwhth(stored_kwhth: float, capacity_kwhth: float, charge_kwth: float, discharge_kwth: float,
                       loss_kwth: float, hours: float) -> float:
    """What cooling storage holds after ``hours`` of these flows, kWhth: the balance
    d(stored) = (charge - discharge - standing loss) * hours, within 0 and the capacity."""
    change_kwhth = (charge_kwth - discharge_kwth - loss_kwth) * hours
    return min(capacity_kwhth, max(0.0, stored_kwhth + change_kwhth))


@dataclass
class ChillerOutput:
    """One chiller over one step."""

    mode: int
    cooling_kwth: float
    part_load: float


@dataclass
class PlantStep:
    """The plant over one step: per-chiller output, ice flows, and cooling not met."""

    chillers: list[ChillerOutput]
    charge_kwth: float
    melt_kwth: float
    cooling_delivered_by_ice_kwth: float
    standing_loss_kwth: float
    unmet_kwth: float


@dataclass(slots=True)
class PlantOperation:
    """What the park simulator hands the plant's kinds for one step (twin.kinds.simulation.Stage.PLANT):
    the plant's step for this load and these requests, from :func:`operate_plant`."""

    step: PlantStep
    mode_commands: list[int]
    """Each chiller's mode command in force (CMD_*), in the chillers' park order."""
    load_kwth: float
    """The cooling load the plant carries, kWth: the buildings' less the cooling the kinds on their chilled-water
    loop deliver net (twin.kinds.simulation.Stage.CHILLED_WATER_LOOP)."""
    charge_request_kwth: float
    """Ice charge asked for, kWth: the setpoint in force."""
    melt_request_kwth: float
    """Ice melt asked for, kWth: the setpoint in force."""


def chilled_water_capacity_kwth(chillers: list[Chiller], mode_commands: list[int]) -> float:
    """The chilled water the chillers can make together, kWth: the capacity of every chiller whose mode command
    (CMD_*, in the chillers' order) leaves it automatic or in chilled-water mode, which :func:`operate_plant`
    stages for the direct load before it puts any in ice mode."""
    return sum(chiller.cooling_capacity_kwth for chiller, command in zip(chillers, mode_commands)
               if _fixed_mode(chiller, command) in (None, MODE_DIRECT))


def operate_plant(
    chillers: list[Chiller],
    mode_commands: list[int],
    tank: IceTank | None,
    inventory_kwhth: float,
    load_kwth: float,
    charge_request_kwth: float,
    melt_request_kwth: float,
    step_h: float,
) -> PlantStep:
    """Decide what each chiller and the ice tank do for one step.

    Order: melt ice up to the request (never more than the load needs), then
    put automatic ice-capable chillers into ice mode for the charge request as
    long as the remaining chillers can still carry the direct load (the load
    comes first), then share the direct load among direct-mode chillers in
    proportion to capacity. A chiller makes ice or chilled water, never both.
    Charge and melt are never both non-zero in one step.
    """
    loss_kwth = standing_loss_kwth(inventory_kwhth, tank.standing_loss_pct_per_h) if tank else 0.0
    melt = 0.0
    if tank and melt_request_kwth > 0:
        melt = min(melt_request_kwth, tank.melt_rate_max_kwth, dischargeable_kwth(inventory_kwhth, loss_kwth, step_h),
                   load_kwth / tank.melt_effectiveness)
    delivered_by_ice = melt * (tank.melt_effectiveness if tank else 0.0)
    direct_load = max(0.0, load_kwth - delivered_by_ice)

    modes = [_fixed_mode(c, cmd) for c, cmd in zip(chillers, mode_commands)]
    charge_wanted = 0.0
    if tank and melt == 0.0 and charge_request_kwth > 0:
        charge_wanted = min(charge_request_kwth, tank.charge_rate_max_kwth,
                            chargeable_kwth(inventory_kwhth, tank.capacity_kwhth, loss_kwth, step_h))
    # a chiller is in ice mode only when it makes ice, that is when its ice capacity is set
    ice_capacity = sum(c.ice_capacity_kwth or 0.0 for c, m in zip(chillers, modes) if m == MODE_ICE)
    by_ice_capacity = sorted(range(len(chillers)), key=lambda k: -(chillers[k].ice_capacity_kwth or 0.0)) \
        if ice_capacity < charge_wanted else []  # most steps want no more ice than is being made
    for i in by_ice_capacity:
        chiller = chillers[i]
        if modes[i] is not None or not chiller.makes_ice or ice_capacity >= charge_wanted:
            continue
        direct_capacity_left = sum(c.cooling_capacity_kwth for k, (c, m) in enumerate(zip(chillers, modes))
                                   if k != i and m in (None, MODE_DIRECT))
        if direct_capacity_left >= direct_load:
            modes[i] = MODE_ICE
            ice_capacity += chiller.ice_capacity_kwth or 0.0
    charge = min(charge_wanted, ice_capacity) if tank else 0.0
    if charge <= 0.0:
        modes = [MODE_OFF if m == MODE_ICE and cmd == CMD_AUTO else m for m, cmd in zip(modes, mode_commands)]

    outputs = [ChillerOutput(MODE_OFF, 0.0, 0.0) for _ in chillers]
    ice_chillers = [i for i, m in enumerate(modes) if m == MODE_ICE]
    for i in ice_chillers:
        chiller_ice_kwth = chillers[i].ice_capacity_kwth or 0.0
        share = chiller_ice_kwth / ice_capacity if charge > 0 else 0.0
        cooling = charge * share
        outputs[i] = ChillerOutput(MODE_ICE, cooling, cooling / chiller_ice_kwth)
    # Stage direct chillers in file order until they can carry the load at <= 90 % part load.
    candidates = [i for i, m in enumerate(modes) if m in (None, MODE_DIRECT)]
    staged: list[int] = []
    for i in candidates:
        if modes[i] == MODE_DIRECT or sum(chillers[k].cooling_capacity_kwth for k in staged) < direct_load / 0.9:
            staged.append(i)
    if direct_load > 0 and not staged and candidates:
        staged = candidates[:1]
    staged_capacity = sum(chillers[i].cooling_capacity_kwth for i in staged)
    served = min(direct_load, staged_capacity)
    for i in staged:
        share = chillers[i].cooling_capacity_kwth / staged_capacity
        cooling = served * share
        outputs[i] = ChillerOutput(MODE_DIRECT if cooling > 0 or modes[i] == MODE_DIRECT else MODE_OFF,
                                   cooling, cooling / chillers[i].cooling_capacity_kwth)
    return PlantStep(outputs, charge, melt, delivered_by_ice, loss_kwth, direct_load - served)


def _fixed_mode(chiller: Chiller, command: int) -> int | None:
    """The mode an operator command forces, or None when the plant chooses (automatic)."""
    if command == CMD_OFF:
        return MODE_OFF
    if command == CMD_DIRECT:
        return MODE_DIRECT
    if command == CMD_ICE:
        return MODE_ICE if chiller.makes_ice else MODE_OFF
    return None
