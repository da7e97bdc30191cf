"""The batteries' LP block: charge, discharge and stored energy per battery, and its soft terminal target.

Columns: ``charge[b,t]``, ``discharge[b,t]`` (kW at the AC side, each with the wear cost per kWh),
``stored[b,t]`` (kWh, t = 0..T, between the SOC limits, the first fixed at the initial state),
``short[b]`` (kWh short of the terminal target, penalised).
Dynamics: stored[t+1] = stored[t] + (eta_c charge - discharge / eta_d) dt, the linear form of the
simulator's battery (twin.kinds.battery), written here as rows over the horizon (optimizer.blocks.storage).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from optimizer.blocks.base import Assembly, Term
from optimizer.blocks.storage import StorageBlock, StorageFigures, StorageNames, per_asset
from optimizer.inputs import HorizonInputs, InitialState
from twin.kinds import Battery

NAMES = StorageNames("battery", "charge_kw", "discharge_kw", "stored_kwh", "stored_balance", "kwh")


class BatteryBlock(StorageBlock):
    kind = "battery"
    names = NAMES
    primary_columns = NAMES.primary_columns
    stored_column = NAMES.level
    capacity_field = "energy_capacity_kwh"
    level_unit = "kWh"
    assets: tuple[Battery, ...]

    def state_problems(self, state: InitialState) -> list[str]:
        """A starting SOC outside the battery's SOC window."""
        problems = []
        for battery in self.assets:
            stored = state.stored.get(battery.id)
            if stored is None:
                continue
            soc_pct = 100.0 * stored / battery.energy_capacity_kwh
            if soc_pct < battery.soc_min_pct - 1e-9:
                problems.append(f"battery {battery.id!r} starts at SOC {soc_pct:.1f} %, below its minimum "
                                f"soc_min_pct {battery.soc_min_pct:g} %")
            elif soc_pct > battery.soc_max_pct + 1e-9:
                problems.append(f"battery {battery.id!r} starts at SOC {soc_pct:.1f} %, above its maximum "
                                f"soc_max_pct {battery.soc_max_pct:g} %")
        return problems

    def import_max_kw(self, inputs: HorizonInputs) -> float:
        return sum(x.charge_power_max_kw for x in self.assets)

    def export_max_kw(self, inputs: HorizonInputs) -> float:
        return sum(x.discharge_power_max_kw for x in self.assets)

    def figures(self, lp: Assembly) -> StorageFigures:
        """Power limits, the SOC window, no standing loss, the efficiencies and the wear cost of a step."""
        batteries = self.assets
        return StorageFigures(
            charge_max=per_asset([x.charge_power_max_kw for x in batteries]),
            discharge_max=per_asset([x.discharge_power_max_kw for x in batteries]),
            level_min=per_asset([x.stored_window_kwh()[0] for x in batteries]),
            level_max=per_asset([x.stored_window_kwh()[1] for x in batteries]),
            start=per_asset([lp.state.stored_of(x) for x in batteries]),
            capacity=per_asset([x.energy_capacity_kwh for x in batteries]),
            loss_pct_per_h=np.zeros(len(batteries)),
            charge_efficiency=per_asset([x.charge_efficiency for x in batteries]),
            discharge_efficiency=per_asset([x.discharge_efficiency for x in batteries]),
            flow_cost_cny=lp.options.battery_wear_cny_per_kwh * lp.step_h)

    def terminal_penalty(self, lp: Assembly) -> float:
        """The options' penalty, by default twice the horizon's top import price per kWh."""
        penalty = lp.options.battery_terminal_penalty_cny_per_kwh
        return 2.0 * lp.top_price_cny_per_kwh if penalty is None else penalty

    def electric_terms(self, lp: Assembly) -> list[Term]:
        return [(self.charge.T, -1.0), (self.discharge.T, 1.0)]

    def export_source_terms(self, lp: Assembly, steps: NDArray[np.bool_]) -> list[Term]:
        return [(self.discharge[:, steps].T, -1.0)]

    def extra_table_columns(self, charge: NDArray[np.float64], discharge: NDArray[np.float64],
                            index: int) -> dict[str, NDArray[np.float64]]:
        """The power setpoint the flows make, kW (+ discharge)."""
        return {f"{self.assets[index].id}.power_setpoint_kw": discharge[index] - charge[index]}
