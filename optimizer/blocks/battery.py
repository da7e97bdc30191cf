"""The batteries' LP block: charge, discharge and stored energy per battery, and its soft terminal target.

Columns: ``charge[b,t]``, ``discharge[b,t]`` (kW at the AC side, each with the wear cost per kWh),
``stored[b,t]`` (kWh, t = 0..T, between the SOC limits, the first fixed at the initial state),
``short[b]`` (kWh short of the terminal target, penalised).
Dynamics: stored[t+1] = stored[t] + (eta_c charge - discharge / eta_d) dt, the linear form of the
simulator's battery (twin.kinds.battery), written here as rows over the horizon.
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
from optimizer.inputs import HorizonInputs
from optimizer.linear_program import Labels
from optimizer.lp_builder import BinarySteps
from twin.kinds import Battery


class BatteryBlock(KindBlock):
    kind = "battery"
    primary_columns = ("battery_charge_kw", "battery_discharge_kw")
    stored_column: ClassVar[str] = "stored_kwh"
    assets: tuple[Battery, ...]

    def import_max_kw(self, inputs: HorizonInputs) -> float:
        return sum(x.charge_power_max_kw for x in self.assets)

    def export_max_kw(self, inputs: HorizonInputs) -> float:
        return sum(x.discharge_power_max_kw for x in self.assets)

    def variables(self, lp: Assembly) -> None:
        batteries, T = self.assets, lp.step_count
        wear = lp.options.battery_wear_cny_per_kwh * lp.step_h
        self.p_ch = np.array([x.charge_power_max_kw for x in batteries]).reshape(-1, 1)
        self.p_dis = np.array([x.discharge_power_max_kw for x in batteries]).reshape(-1, 1)
        e_min = np.array([x.energy_capacity_kwh * x.soc_min_pct / 100 for x in batteries])
        self.e_max = np.array([x.energy_capacity_kwh * x.soc_max_pct / 100 for x in batteries])
        self.start = np.array([lp.state.stored.get(x.id, x.energy_capacity_kwh * x.initial_soc_pct / 100)
                               for x in batteries])
        stored_lower = np.repeat(e_min.reshape(-1, 1), T + 1, axis=1)
        stored_upper = np.repeat(self.e_max.reshape(-1, 1), T + 1, axis=1)
        stored_lower[:, 0] = stored_upper[:, 0] = self.start
        self.charge = lp.builder.variables("battery_charge_kw", (len(batteries), T), 0.0,
                                           self.p_ch if batteries else 0.0, wear,
                                           labels=Labels.of("charge_kw", self.ids, lp.steps))
        self.discharge = lp.builder.variables("battery_discharge_kw", (len(batteries), T), 0.0,
                                              self.p_dis if batteries else 0.0, wear,
                                              labels=Labels.of("discharge_kw", self.ids, lp.steps))
        self.stored = lp.builder.variables("battery_stored_kwh", (len(batteries), T + 1), stored_lower, stored_upper,
                                           labels=Labels.of(self.stored_column, self.ids, lp.states))

    def rows(self, lp: Assembly) -> None:
        """The stored energy's dynamics."""
        if not self.assets:
            return
        T, dt = lp.step_count, lp.step_h
        eta_c = np.array([x.charge_efficiency for x in self.assets]).reshape(-1, 1)
        eta_d = np.array([x.discharge_efficiency for x in self.assets]).reshape(-1, 1)
        lp.builder.rows_of(len(self.assets) * T, 0.0, 0.0,
                           [(self.stored[:, 1:].reshape(-1), 1.0), (self.stored[:, :-1].reshape(-1), -1.0),
                            (self.charge.reshape(-1), -np.repeat(eta_c, T, axis=1).reshape(-1) * dt),
                            (self.discharge.reshape(-1), np.repeat(1.0 / eta_d, T, axis=1).reshape(-1) * dt)],
                           labels=Labels.of("stored_balance", self.ids, lp.steps))

    def electric_terms(self, lp: Assembly) -> list[Term]:
        return [(self.charge.T, -1.0), (self.discharge.T, 1.0)]

    def terminal(self, lp: Assembly) -> None:
        """stored[T] + short >= target (the initial energy unless the options name one), at most the SOC maximum;
        short costs the options' penalty, by default twice the horizon's top import price per kWh."""
        penalty = lp.options.battery_terminal_penalty_cny_per_kwh
        soft_terminal_target(lp, self, "battery", "kwh", 2.0 * lp.top_price_cny_per_kwh if penalty is None else penalty,
                             lp.options.terminal_stored, self.stored, self.start, self.e_max)

    def exclusive_pairs(self, lp: Assembly) -> None:
        """u = 1 allows charging, u = 0 discharging, on the steps flagged for storage."""
        charging_apart_from_discharging(lp, self, "battery", self.charge, self.discharge, self.p_ch, self.p_dis)

    def export_source_terms(self, lp: Assembly, steps: NDArray[np.bool_]) -> list[Term]:
        return [(self.discharge[:, steps].T, -1.0)]

    def complete(self, x: NDArray[np.float64], step_h: float) -> None:
        """The stored energy the charge and discharge lead to."""
        levels_from_flows(x, self.stored, self.start, 1.0, np.array([b.charge_efficiency for b in self.assets]),
                          self.charge, self.discharge, np.array([b.discharge_efficiency for b in self.assets]), step_h)

    def simultaneous(self, x: NDArray[np.float64], steps: int) -> BinarySteps:
        return charging_with_discharging(x, self.charge, self.discharge, steps)

    def table_columns(self, x: NDArray[np.float64], steps: int) -> dict[str, NDArray[np.float64]]:
        """Charge and discharge (kW), the power setpoint they make (kW, + discharge), stored energy (kWh) and SOC
        (% of capacity) per battery."""
        charge, discharge, stored = x[self.charge], x[self.discharge], x[self.stored]
        columns: dict[str, NDArray[np.float64]] = {}
        for b, battery in enumerate(self.assets):
            columns[f"{battery.id}.charge_kw"] = charge[b]
            columns[f"{battery.id}.discharge_kw"] = discharge[b]
            columns[f"{battery.id}.power_setpoint_kw"] = discharge[b] - charge[b]
            columns[f"{battery.id}.{self.stored_column}"] = stored[b, :steps]
            columns[f"{battery.id}.soc_pct"] = 100.0 * stored[b, :steps] / battery.energy_capacity_kwh
        return columns
