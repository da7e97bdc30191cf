"""The ice tanks' LP block: charge, melt and inventory per tank, and its soft terminal target.

Columns: ``charge[k,t]``, ``melt[k,t]`` (kWth), ``inventory[k,t]`` (kWhth, t = 0..T, the first fixed at
the initial state), ``short[k]`` (kWhth short of the terminal target, penalised).
Dynamics: inventory[t+1] = (1 - loss dt) inventory[t] + (charge - melt) dt, the linear form of the
simulator's tank (twin.kinds.ice_tank), written here as rows over the horizon.
The melt delivers ``melt_effectiveness * melt`` to the cooling balance; the charge takes ice the chillers make.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from numpy.typing import NDArray

from optimizer.blocks.base import Assembly, KindBlock, Term
from optimizer.blocks.storage import (
    charging_apart_from_discharging,
    charging_with_discharging,
    levels_from_flows,
    soft_terminal_target,
)
from optimizer.linear_program import Labels
from optimizer.lp_builder import BinarySteps
from twin.kinds import IceTank


class IceTankBlock(KindBlock):
    kind = "ice_tank"
    primary_columns = ("ice_charge_kwth", "ice_melt_kwth")
    stored_column: ClassVar[str] = "inventory_kwhth"
    assets: tuple[IceTank, ...]

    def cooling_max_kwth(self) -> float:
        """Every tank melting at its maximum rate, times its melt effectiveness."""
        return sum(k.melt_rate_max_kwth * k.melt_effectiveness for k in self.assets)

    def variables(self, lp: Assembly) -> None:
        tanks, T = self.assets, lp.step_count
        self.charge_max = np.array([k.charge_rate_max_kwth for k in tanks]).reshape(-1, 1)
        self.melt_max = np.array([k.melt_rate_max_kwth for k in tanks]).reshape(-1, 1)
        self.capacity = np.array([k.capacity_kwhth for k in tanks]).reshape(-1, 1)
        self.start = np.array([lp.state.stored.get(k.id, k.capacity_kwhth * k.initial_soc_pct / 100)
                               for k in tanks])
        inv_lower = np.zeros((len(tanks), T + 1))
        inv_upper = np.repeat(self.capacity, T + 1, axis=1) if tanks else np.zeros((0, T + 1))
        inv_lower[:, 0] = inv_upper[:, 0] = self.start
        self.charge = lp.builder.variables("ice_charge_kwth", (len(tanks), T), 0.0, self.charge_max if tanks else 0.0,
                                           labels=Labels.of("charge_kwth", self.ids, lp.steps))
        self.melt = lp.builder.variables("ice_melt_kwth", (len(tanks), T), 0.0, self.melt_max if tanks else 0.0,
                                         labels=Labels.of("melt_kwth", self.ids, lp.steps))
        self.inventory = lp.builder.variables("ice_inventory_kwhth", (len(tanks), T + 1), inv_lower, inv_upper,
                                              labels=Labels.of(self.stored_column, self.ids, lp.states))

    def cooling_terms(self, lp: Assembly) -> list[Term]:
        eff = np.array([k.melt_effectiveness for k in self.assets]).reshape(-1, 1)
        return [(self.melt.T, np.repeat(eff, lp.step_count, axis=1).T if self.assets else 1.0)]

    def ice_terms(self, lp: Assembly) -> list[Term]:
        return [(self.charge.T, -1.0)]

    def rows(self, lp: Assembly) -> None:
        """The inventory's dynamics."""
        if not self.assets:
            return
        T, dt = lp.step_count, lp.step_h
        keep = 1.0 - np.array([k.standing_loss_pct_per_h / 100.0 for k in self.assets]).reshape(-1, 1) * dt
        lp.builder.rows_of(len(self.assets) * T, 0.0, 0.0,
                           [(self.inventory[:, 1:].reshape(-1), 1.0),
                            (self.inventory[:, :-1].reshape(-1), -np.repeat(keep, T, axis=1).reshape(-1)),
                            (self.charge.reshape(-1), -dt), (self.melt.reshape(-1), dt)],
                           labels=Labels.of("inventory_balance", self.ids, lp.steps))

    def terminal(self, lp: Assembly) -> None:
        """inventory[T] + short >= target (the initial inventory unless the options name one), at most full;
        short costs the options' penalty, by default twice the horizon's top import price per kWh of the
        electricity that makes a kWhth of ice at the park's best ice-making COP."""
        penalty = lp.options.ice_terminal_penalty_cny_per_kwhth
        soft_terminal_target(lp, self, "ice", "kwhth",
                             2.0 * lp.top_price_cny_per_kwh / lp.ice_making_cop if penalty is None else penalty,
                             lp.options.terminal_stored, self.inventory, self.start, self.capacity.reshape(-1))

    def exclusive_pairs(self, lp: Assembly) -> None:
        """u = 1 allows charging, u = 0 melting, on the steps flagged for storage."""
        charging_apart_from_discharging(lp, self, "ice", self.charge, self.melt, self.charge_max, self.melt_max)

    def complete(self, x: NDArray[np.float64], step_h: float) -> None:
        """The inventory the charge and melt lead to."""
        keep = np.array([1.0 - k.standing_loss_pct_per_h / 100.0 * step_h for k in self.assets])
        levels_from_flows(x, self.inventory, self.start, keep, 1.0, self.charge, self.melt, 1.0, step_h)

    def simultaneous(self, x: NDArray[np.float64], steps: int) -> BinarySteps:
        return charging_with_discharging(x, self.charge, self.melt, steps)

    def table_columns(self, x: NDArray[np.float64], steps: int) -> dict[str, NDArray[np.float64]]:
        """Charge, melt and the cooling the melt delivers (kWth), inventory (kWhth) and its share of the capacity
        (%) per tank."""
        charge, melt, inventory = x[self.charge], x[self.melt], x[self.inventory]
        columns: dict[str, NDArray[np.float64]] = {}
        for k, tank in enumerate(self.assets):
            columns[f"{tank.id}.charge_kwth"] = charge[k]
            columns[f"{tank.id}.melt_kwth"] = melt[k]
            columns[f"{tank.id}.cooling_delivered_kwth"] = melt[k] * tank.melt_effectiveness
            columns[f"{tank.id}.{self.stored_column}"] = inventory[k, :steps]
            columns[f"{tank.id}.soc_pct"] = 100.0 * inventory[k, :steps] / tank.capacity_kwhth
        return columns
