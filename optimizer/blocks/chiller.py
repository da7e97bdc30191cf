"""The chillers' LP block: chilled water and ice making per chiller and step, and its electric power.

Columns: ``direct[c,t]`` chilled water (kWth), ``ice[c,t]`` ice making (kWth, ice-capable chillers only).
One mode per step: ``direct/cap_direct + ice/cap_ice <= 1`` where the step has no mode binary (the LP form,
which lets a chiller share a step between the modes), else ``ice <= cap_ice u``,
``direct <= cap_direct (1 - u)`` with u binary (its relaxation is the LP form).
Electric power: cooling / COP at the forecast outdoor temperature (:func:`chiller_cops`).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from optimizer.blocks.base import Assembly, KindBlock, Term
from optimizer.inputs import HorizonInputs
from optimizer.linear_program import Labels
from optimizer.lp_builder import BinarySteps, exclusive_pair, flowing_together
from twin.kinds import Chiller
from twin.plant import MODE_DIRECT, MODE_ICE, chiller_cop


def chiller_cops(chiller: Chiller, outdoor_temp_c: np.ndarray | None, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """(direct, ice) COP per step at full load: the plant model's curves at the forecast outdoor
    temperature, or the rated COPs without one (twin.plant.chiller_cop)."""
    if outdoor_temp_c is None:
        return np.full(steps, chiller.cop_rated), np.full(steps, chiller.ice_cop_rated or chiller.cop_rated)
    temperature = np.asarray(outdoor_temp_c, dtype=float)
    return (chiller_cop(chiller, MODE_DIRECT, 1.0, temperature, chiller.chw_setpoint_c),
            chiller_cop(chiller, MODE_ICE, 1.0, temperature, chiller.chw_setpoint_c))


def chiller_mode_steps(load_kwth: np.ndarray, cap_direct: np.ndarray, cop_direct: np.ndarray,
                       ice_rows: list[int]) -> BinarySteps:
    """Steps where the LP could share an ice-making chiller between its modes, so its mode binary is
    needed: where the cooling load is above what the chillers that make no ice can carry, or where
    one of those is not strictly more efficient than every ice-making chiller (elsewhere the
    cheapest direct cooling comes from chillers that make no ice, and the ice-making ones make only
    ice). ``cap_direct`` (rows, 1) and ``cop_direct`` (rows, steps) are per chiller, ``ice_rows``
    the ice-making chillers' rows. A solve that mixes the modes elsewhere still gets them there."""
    T = len(load_kwth)
    if not ice_rows:
        return BinarySteps.none(T)
    other_rows = [i for i in range(len(cap_direct)) if i not in ice_rows]
    if other_rows:
        others_cheaper = cop_direct[other_rows].min(axis=0) > cop_direct[ice_rows].max(axis=0)
        steps = (load_kwth > cap_direct[other_rows].sum()) | ~others_cheaper
    else:
        steps = load_kwth > 0
    none = np.zeros(T, bool)
    return BinarySteps(none, none, steps, ((f"a chiller could make ice and chilled water in {int(steps.sum())} "
                                           "step(s)"),) if steps.any() else ())


class ChillerBlock(KindBlock):
    kind = "chiller"
    primary_columns = ("chiller_direct_kwth", "chiller_ice_kwth")
    assets: tuple[Chiller, ...]

    def cooling_max_kwth(self) -> float:
        """Every chiller's direct capacity."""
        return sum(c.cooling_capacity_kwth for c in self.assets)

    def ice_making_cop(self) -> float | None:
        return max((c.ice_cop_rated for c in self.assets if c.makes_ice and c.ice_cop_rated is not None), default=None)

    def import_max_kw(self, inputs: HorizonInputs) -> float:
        """Every chiller at full capacity at its lowest COP."""
        worst_temperature_factor = 0.7  # lowest condenser-temperature factor of twin.plant.chiller_cop
        return sum(c.cooling_capacity_kwth / (min(c.cop_rated, c.ice_cop_rated or c.cop_rated)
                                              * worst_temperature_factor) for c in self.assets)

    def variables(self, lp: Assembly) -> None:
        chillers = self.assets
        self.ice_chillers = tuple(c for c in chillers if c.makes_ice)
        self.ice_ids = [c.id for c in self.ice_chillers]
        T = lp.step_count
        self.cap_direct = np.array([c.cooling_capacity_kwth for c in chillers]).reshape(-1, 1)
        self.cap_ice = np.array([c.ice_capacity_kwth for c in self.ice_chillers]).reshape(-1, 1)
        self.direct = lp.builder.variables("chiller_direct_kwth", (len(chillers), T), 0.0,
                                           self.cap_direct if chillers else 0.0,
                                           labels=Labels.of("direct_kwth", self.ids, lp.steps))
        self.ice = lp.builder.variables("chiller_ice_kwth", (len(self.ice_chillers), T), 0.0,
                                        self.cap_ice if self.ice_chillers else 0.0,
                                        labels=Labels.of("ice_kwth", self.ice_ids, lp.steps))
        temp = lp.inputs.column("outdoor_temp_c") if "outdoor_temp_c" in lp.inputs.frame else None
        cops = [chiller_cops(c, temp, T) for c in chillers]
        self.cop_direct = np.array([d for d, _ in cops]).reshape(len(chillers), T)
        cop_ice = np.array([i for c, (_, i) in zip(chillers, cops) if c.makes_ice]).reshape(len(self.ice_chillers), T)
        self.direct_kw_per_kwth, self.ice_kw_per_kwth = 1.0 / self.cop_direct, 1.0 / cop_ice
        self.ice_rows = [chillers.index(c) for c in self.ice_chillers]

    def cooling_terms(self, lp: Assembly) -> list[Term]:
        return [(self.direct.T, 1.0)]

    def ice_terms(self, lp: Assembly) -> list[Term]:
        return [(self.ice.T, 1.0)]

    def rows(self, lp: Assembly) -> None:
        """One mode per chiller and step: the LP form where the step has no mode binary."""
        T = lp.step_count
        if lp.options.realizability == "auto" and lp.columns("ice_charge_kwth").size:
            lp.binary_steps = lp.binary_steps.union(
                chiller_mode_steps(lp.inputs.column("cooling_load_kwth"), self.cap_direct, self.cop_direct,
                                   self.ice_rows))
        self.direct_of_ice, self.cap_direct_of_ice = self.direct[self.ice_rows], self.cap_direct[self.ice_rows]
        lp_form = ~lp.binary_steps.chiller
        if self.ice_chillers and lp_form.any():
            n = len(self.ice_chillers) * int(lp_form.sum())
            lp.builder.rows_of(n, -np.inf, 1.0,
                               [(self.direct_of_ice[:, lp_form].reshape(-1),
                                 np.repeat(1.0 / self.cap_direct_of_ice, T, axis=1)[:, lp_form].reshape(-1)),
                                (self.ice[:, lp_form].reshape(-1),
                                 np.repeat(1.0 / self.cap_ice, T, axis=1)[:, lp_form].reshape(-1))],
                               labels=Labels.of("one_mode", self.ice_ids, np.flatnonzero(lp_form)))

    def electric_terms(self, lp: Assembly) -> list[Term]:
        return [(self.direct.T, -self.direct_kw_per_kwth.T), (self.ice.T, -self.ice_kw_per_kwth.T)]

    def electric_kw(self, direct_kwth: NDArray[np.float64], ice_kwth: NDArray[np.float64]) -> NDArray[np.float64]:
        """Electric kW per chiller and step (rows as the direct block) of its chilled water and ice (kWth, shaped
        as the direct and ice blocks): cooling / COP, as in the electric balance."""
        result = direct_kwth * self.direct_kw_per_kwth
        result[self.ice_rows] += ice_kwth * self.ice_kw_per_kwth
        return result

    def mode_binaries(self, lp: Assembly) -> None:
        """u = 1: ice mode (ice up to its capacity, no chilled water); u = 0: chilled water only."""
        mode_steps = lp.binary_steps.chiller
        n_chiller = int(mode_steps.sum())
        exclusive_pair(lp.builder, "u_chiller_ice", self.ice[:, mode_steps].reshape(-1),
                        self.direct_of_ice[:, mode_steps].reshape(-1),
                        np.repeat(self.cap_ice, n_chiller, axis=1).reshape(-1),
                        np.repeat(self.cap_direct_of_ice, n_chiller, axis=1).reshape(-1),
                        Labels.of("u_ice_mode", self.ice_ids, np.flatnonzero(mode_steps)))

    def simultaneous(self, x: NDArray[np.float64], steps: int) -> BinarySteps:
        """Steps where an ice-making chiller makes ice and chilled water at once."""
        none = np.zeros(steps, bool)
        return BinarySteps(none, none, flowing_together(x[self.ice], x[self.direct_of_ice], steps), ())

    def table_columns(self, x: NDArray[np.float64], steps: int) -> dict[str, NDArray[np.float64]]:
        """Chilled water and ice made (kWth) and electric power (kW) per chiller, then all chillers' power (kW)."""
        direct, ice = x[self.direct], x[self.ice]
        electric_kw = self.electric_kw(direct, ice)
        ice_row = {c.id: j for j, c in enumerate(self.ice_chillers)}
        columns: dict[str, NDArray[np.float64]] = {}
        for i, chiller in enumerate(self.assets):
            columns[f"{chiller.id}.direct_kwth"] = direct[i]
            columns[f"{chiller.id}.ice_kwth"] = ice[ice_row[chiller.id]] if chiller.id in ice_row else np.zeros(steps)
            columns[f"{chiller.id}.electric_kw"] = electric_kw[i]
        columns["chillers_electric_kw"] = electric_kw.sum(axis=0)
        return columns
