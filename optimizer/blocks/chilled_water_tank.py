"""The chilled-water tanks' LP block: charge, discharge and stored cooling per tank, and its soft terminal target.

Columns: ``charge[k,t]``, ``discharge[k,t]`` (kWth), ``stored[k,t]`` (kWhth, t = 0..T, between empty and full,
the first fixed at the initial state), ``short[k]`` (kWhth short of the terminal target, penalised).
Dynamics: stored[t+1] = (1 - loss dt) stored[t] + (charge - discharge) dt, the linear form of the simulator's
tank (twin.kinds.chilled_water_tank), written as rows over the horizon by optimizer.blocks.storage.
The tank sits on the buildings' chilled-water loop: its discharge carries cooling load and its charge is load
the chillers carry in chilled-water mode, so both are terms of the cooling balance (and the charge's electricity
is the chillers', at their chilled-water COP); it draws no electricity of its own. The baselines run it on the
plant's own schedule (:meth:`ChilledWaterTankBlock.on_plant_schedule`).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from optimizer.blocks.base import Assembly, Term
from optimizer.blocks.storage import StorageBlock, StorageFigures, StorageNames, cooling_storage_figures
from optimizer.inputs import InitialState
from twin.kinds import ChilledWaterTank
from twin.kinds.simulation import ChilledWaterDemand
from twin.park import PlantSchedule

NAMES = StorageNames("chilled_water", "charge_kwth", "discharge_kwth", "stored_kwhth", "stored_balance", "kwhth")


class ChilledWaterTankBlock(StorageBlock):
    kind = "chilled_water_tank"
    names = NAMES
    primary_columns = NAMES.primary_columns
    stored_column = NAMES.level
    capacity_field = "capacity_kwhth"
    level_unit = "kWhth"
    assets: tuple[ChilledWaterTank, ...]

    def cooling_max_kwth(self) -> float:
        """Every tank discharging at its maximum rate."""
        return sum(k.discharge_rate_max_kwth for k in self.assets)

    def stored_cooling_kwhth(self, state: InitialState) -> float:
        """Every tank's stored cooling."""
        return sum(state.stored_of(k) for k in self.assets)

    def figures(self, lp: Assembly) -> StorageFigures:
        """The tanks' charge and discharge rates (optimizer.blocks.storage.cooling_storage_figures)."""
        return cooling_storage_figures(lp, self.assets, [k.discharge_rate_max_kwth for k in self.assets])

    def terminal_penalty(self, lp: Assembly) -> float:
        """Twice the horizon's top import price per kWh of the electricity that makes a kWhth at the park's best
        ice-making COP (optimizer.blocks.base.Assembly.ice_making_cop), below any chiller's chilled-water COP: a
        kWhth short costs more than chilling it again at any hour of the horizon."""
        return 2.0 * lp.top_price_cny_per_kwh / lp.ice_making_cop

    def on_plant_schedule(self, schedule: PlantSchedule, hours: NDArray[np.float64], load_kwth: NDArray[np.float64],
                          chiller_capacity_kwth: float, step_h: float) -> tuple[dict[str, NDArray[np.float64]],
                                                                                NDArray[np.float64]]:
        """Each tank on the plant schedule's cooling-storage rates, followed as the simulated tank follows them
        (twin.kinds.chilled_water_tank.ChilledWaterTank.follow: discharge up to the load, charge with the chillers'
        spare capacity), in park order on the load the ones before it leave."""
        charge, discharge = np.zeros((len(self.assets), len(hours))), np.zeros((len(self.assets), len(hours)))
        delivered_kwth = np.zeros(len(hours))
        stored_kwhth = self.figure.start.copy()
        for t, hour in enumerate(hours):
            for k, tank in enumerate(self.assets):
                charge_request, discharge_request = schedule.cooling_storage_kwth(
                    float(hour), tank.charge_rate_max_kwth, tank.discharge_rate_max_kwth)
                demand = ChilledWaterDemand(float(load_kwth[t] - delivered_kwth[t]), chiller_capacity_kwth)
                flows = tank.follow(float(stored_kwhth[k]), charge_request, discharge_request, demand, step_h)
                charge[k, t], discharge[k, t] = flows[0], flows[1]
                stored_kwhth[k] = tank.stored_after(float(stored_kwhth[k]), flows, step_h)
                delivered_kwth[t] += flows[1] - flows[0]
        charge_column, discharge_column = NAMES.primary_columns
        return {charge_column: charge, discharge_column: discharge}, delivered_kwth

    def cooling_terms(self, lp: Assembly) -> list[Term]:
        return [(self.discharge.T, 1.0), (self.charge.T, -1.0)]

    def extra_table_columns(self, charge: NDArray[np.float64], discharge: NDArray[np.float64],
                            index: int) -> dict[str, NDArray[np.float64]]:
        """The cooling the tank delivers to the buildings net, kWth (discharge less charge, as its point reads)."""
        return {f"{self.assets[index].id}.cooling_delivered_kwth": discharge[index] - charge[index]}
