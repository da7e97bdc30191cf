"""The ice tanks' LP block: charge, melt and inventory per tank, and its soft terminal target.

Columns: ``charge[k,t]``, ``melt[k,t]`` (kWth), ``inventory[k,t]`` (kWhth, t = 0..T, the first fixed at
the initial state), ``short[k]`` (kWhth short of the terminal target, penalised).
Dynamics: inventory[t+1] = (1 - loss dt) inventory[t] + (charge - melt) dt, the linear form of the
simulator's tank (twin.kinds.ice_tank), written here as rows over the horizon (optimizer.blocks.storage).
The melt delivers ``melt_effectiveness * melt`` to the cooling balance; the charge takes ice the chillers make.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from optimizer.blocks.base import Assembly, Term
from optimizer.blocks.storage import StorageBlock, StorageFigures, StorageNames, cooling_storage_figures
from optimizer.inputs import InitialState
from twin.kinds import IceTank

NAMES = StorageNames("ice", "charge_kwth", "melt_kwth", "inventory_kwhth", "inventory_balance", "kwhth")


class IceTankBlock(StorageBlock):
    kind = "ice_tank"
    names = NAMES
    primary_columns = NAMES.primary_columns
    stored_column = NAMES.level
    capacity_field = "capacity_kwhth"
    level_unit = "kWhth"
    assets: tuple[IceTank, ...]

    def cooling_max_kwth(self) -> float:
        """Every tank melting at its maximum rate, times its melt effectiveness."""
        return sum(k.melt_rate_max_kwth * k.melt_effectiveness for k in self.assets)

    def stored_cooling_kwhth(self, state: InitialState) -> float:
        """Every tank's inventory, times its melt effectiveness."""
        return sum(state.stored_of(k) * k.melt_effectiveness for k in self.assets)

    def figures(self, lp: Assembly) -> StorageFigures:
        """The tanks' charge and melt rates (optimizer.blocks.storage.cooling_storage_figures)."""
        return cooling_storage_figures(lp, self.assets, [k.melt_rate_max_kwth for k in self.assets])

    def terminal_penalty(self, lp: Assembly) -> float:
        """The options' penalty, by default twice the horizon's top import price per kWh of the electricity that
        makes a kWhth of ice at the park's best ice-making COP."""
        penalty = lp.options.ice_terminal_penalty_cny_per_kwhth
        return 2.0 * lp.top_price_cny_per_kwh / lp.ice_making_cop if penalty is None else penalty

    def cooling_terms(self, lp: Assembly) -> list[Term]:
        eff = np.array([k.melt_effectiveness for k in self.assets]).reshape(-1, 1)
        return [(self.discharge.T, np.repeat(eff, lp.step_count, axis=1).T if self.assets else 1.0)]

    def ice_terms(self, lp: Assembly) -> list[Term]:
        return [(self.charge.T, -1.0)]

    def extra_table_columns(self, charge: NDArray[np.float64], discharge: NDArray[np.float64],
                            index: int) -> dict[str, NDArray[np.float64]]:
        """The cooling the melt delivers, kWth."""
        tank = self.assets[index]
        return {f"{tank.id}.cooling_delivered_kwth": discharge[index] * tank.melt_effectiveness}
