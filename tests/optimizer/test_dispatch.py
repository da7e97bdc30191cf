"""A rule-based dispatch completed from its primary decisions (optimizer.dispatch): storage levels, grid,
peak and terminal shortfalls derived by each kind's LP block, checked against hand calculations; a block
given no decisions holds idle, so a storage kind this test defines is priced by every baseline."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pytest
from optimizer_cases import context, horizon

from optimizer.baselines import BASELINES, baseline_dispatch
from optimizer.blocks import Assembly, KindBlock, Term, registered
from optimizer.blocks.storage import levels_from_flows, soft_terminal_target
from optimizer.dispatch import complete_dispatch
from optimizer.inputs import HorizonInputs, InitialState
from optimizer.linear_program import Labels
from optimizer.model import DispatchAssets, PlanOptions, build_lp
from optimizer.plan import make_plan
from twin.kinds import Battery, Chiller, IceTank
from twin.kinds.base import AssetBase
from twin.points import PointSpec

CHILLER = Chiller(id="chiller", cooling_capacity_kwth=1000, cop_rated=5, ice_capacity_kwth=500, ice_cop_rated=4)
TANK = IceTank(id="tank", capacity_kwhth=3000, charge_rate_max_kwth=500, melt_rate_max_kwth=300,
               standing_loss_pct_per_h=2.0, melt_effectiveness=1.0, initial_soc_pct=50)
BATTERY = Battery(id="battery", energy_capacity_kwh=400, charge_power_max_kw=200, discharge_power_max_kw=200,
                  charge_efficiency=0.8, discharge_efficiency=0.5, initial_soc_pct=50)
ASSETS = DispatchAssets((CHILLER, TANK, BATTERY))


def three_hours() -> HorizonInputs:
    return horizon(60, cooling_load_kwth=[0, 300, 400], pv_available_kw=[0, 0, 0], other_load_kw=[300, 300, 300],
                   price_cny_per_kwh=[0.2, 1.0, 1.0])


PLANT = {"chiller_direct_kwth": np.array([[0.0, 0.0, 400.0]]), "chiller_ice_kwth": np.array([[500.0, 0.0, 0.0]]),
         "ice_charge_kwth": np.array([[500.0, 0.0, 0.0]]), "ice_melt_kwth": np.array([[0.0, 300.0, 0.0]]),
         "pv_used_kw": np.zeros(3)}
"""Hour 1 makes 500 kWth of ice into the tank, hour 2 melts 300 kWth for the load, hour 3 cools directly."""


def test_levels_grid_and_shortfall_of_a_battery_and_ice_dispatch_by_hand():
    """Tank (2 %/h standing loss) from 1500 kWhth: 0.98 * 1500 + 500 = 1970, 0.98 * 1970 - 300 = 1630.6,
    0.98 * 1630.6 = 1597.988. Battery (charge x 0.8, discharge / 0.5) from 200 kWh: 200 + 0.8 * 100 = 280,
    280 - 50 / 0.5 = 180, 180; 20 kWh short of its start, at twice the top price (2 CNY/kWh) = 40 CNY.
    Import: 300 + 500 / 4 + 100 = 525, 300 - 50 = 250, 300 + 400 / 5 = 380 kW; peak 525 kW.
    Cost: 0.2 * 525 + 250 + 380 + 40 = 775 CNY."""
    lp = build_lp(three_hours(), ASSETS, InitialState(), PlanOptions())
    x = complete_dispatch(lp, {**PLANT, "battery_charge_kw": np.array([[100.0, 0.0, 0.0]]),
                               "battery_discharge_kw": np.array([[0.0, 50.0, 0.0]]), "ev_kw": np.zeros((0, 3))})
    assert lp.values(x, "ice_inventory_kwhth")[0].tolist() == pytest.approx([1500, 1970, 1630.6, 1597.988])
    assert lp.values(x, "battery_stored_kwh")[0].tolist() == pytest.approx([200, 280, 180, 180])
    assert lp.values(x, "grid_import_kw").tolist() == pytest.approx([525, 250, 380])
    assert lp.values(x, "grid_export_kw").tolist() == [0, 0, 0]
    assert lp.values(x, "peak_kw").tolist() == pytest.approx([525])
    assert lp.values(x, "battery_terminal_short_kwh").tolist() == pytest.approx([20])
    assert lp.values(x, "ice_terminal_short_kwhth").tolist() == [0]
    assert lp.violation(x) < 1e-9
    assert lp.objective(x) == pytest.approx(775.0)


def test_a_block_given_no_decisions_holds_idle():
    """The same plant without battery decisions: the battery holds 200 kWh, nothing short; import 425, 300,
    380 kW: 0.2 * 425 + 300 + 380 = 765 CNY."""
    lp = build_lp(three_hours(), ASSETS, InitialState(), PlanOptions())
    x = complete_dispatch(lp, PLANT)
    assert lp.values(x, "battery_charge_kw").tolist() == [[0, 0, 0]]
    assert lp.values(x, "battery_stored_kwh").tolist() == [[200, 200, 200, 200]]
    assert lp.values(x, "battery_terminal_short_kwh").tolist() == [0]
    assert lp.violation(x) < 1e-9
    assert lp.objective(x) == pytest.approx(765.0)


def test_decisions_for_columns_no_block_chooses_are_refused():
    lp = build_lp(three_hours(), ASSETS, InitialState(), PlanOptions())
    with pytest.raises(ValueError, match="not primary decisions of this LP: battery_stored_kwh"):
        complete_dispatch(lp, {**PLANT, "battery_stored_kwh": np.zeros((1, 4))})


class Flywheel(AssetBase):
    """An electric store of this test: stores 90 % of what it takes, gives back what it draws."""

    kind: Literal["test_flywheel"] = "test_flywheel"
    power_max_kw: float
    capacity_kwh: float

    def standard_points(self) -> list[PointSpec]:
        return []


class FlywheelBlock(KindBlock):
    kind = "test_flywheel"
    primary_columns = ("flywheel_charge_kw", "flywheel_discharge_kw")
    assets: tuple[Flywheel, ...]
    efficiency = 0.9

    def import_max_kw(self, inputs: HorizonInputs) -> float:
        return sum(f.power_max_kw for f in self.assets)

    def export_max_kw(self, inputs: HorizonInputs) -> float:
        return sum(f.power_max_kw for f in self.assets)

    def variables(self, lp: Assembly) -> None:
        n, T = len(self.assets), lp.step_count
        power = np.array([f.power_max_kw for f in self.assets]).reshape(-1, 1)
        self.capacity = np.array([f.capacity_kwh for f in self.assets])
        self.start = self.capacity / 2
        lower = np.zeros((n, T + 1))
        upper = np.repeat(self.capacity.reshape(-1, 1), T + 1, axis=1)
        lower[:, 0] = upper[:, 0] = self.start
        self.charge = lp.builder.variables("flywheel_charge_kw", (n, T), 0.0, power,
                                           labels=Labels.of("charge_kw", self.ids, lp.steps))
        self.discharge = lp.builder.variables("flywheel_discharge_kw", (n, T), 0.0, power,
                                              labels=Labels.of("discharge_kw", self.ids, lp.steps))
        self.stored = lp.builder.variables("flywheel_stored_kwh", (n, T + 1), lower, upper,
                                           labels=Labels.of("stored_kwh", self.ids, lp.states))

    def rows(self, lp: Assembly) -> None:
        n, T, dt = len(self.assets), lp.step_count, lp.step_h
        lp.builder.rows_of(n * T, 0.0, 0.0, [(self.stored[:, 1:].reshape(-1), 1.0),
                                             (self.stored[:, :-1].reshape(-1), -1.0),
                                             (self.charge.reshape(-1), -self.efficiency * dt),
                                             (self.discharge.reshape(-1), dt)],
                           labels=Labels.of("stored_balance", self.ids, lp.steps))

    def electric_terms(self, lp: Assembly) -> list[Term]:
        return [(self.charge.T, -1.0), (self.discharge.T, 1.0)]

    def terminal(self, lp: Assembly) -> None:
        soft_terminal_target(lp, self, "flywheel", "kwh", 2.0 * lp.top_price_cny_per_kwh, None, self.stored,
                             self.start, self.capacity)

    def complete(self, x: np.ndarray, step_h: float) -> None:
        levels_from_flows(x, self.stored, self.start, 1.0, self.efficiency, self.charge, self.discharge, 1.0,
                          step_h)


def test_a_storage_kind_defined_here_is_held_idle_by_every_baseline_and_helps_the_optimal_plan():
    """A day of valley (0.25 CNY/kWh, local 00:00-08:00) and peak (1.0) prices, with a 200 kW / 400 kWh
    flywheel beside the plant: each baseline holds it idle (its flows 0, its level where it starts), so it
    costs what the baseline costs without the flywheel, as a feasible point of the park's model. The optimal
    plan costs no more than the best baseline; the flywheel saves it what, by hand, its best use saves: fill
    the 200 kWh it lacks in the valley (200 / 0.9 kWh at 0.25 CNY/kWh), give 200 kWh back at the peak price
    and end where it started (the rest of the day is at the peak price), 200 - 0.25 * 200 / 0.9 CNY."""
    hours = np.arange(24)
    inputs = horizon(60, cooling_load_kwth=np.where((hours >= 9) & (hours < 20), 900.0, 300.0),
                     pv_available_kw=np.zeros(24), other_load_kw=np.full(24, 300.0),
                     price_cny_per_kwh=np.where(hours < 8, 0.25, 1.0))
    flywheel = Flywheel(id="fly", power_max_kw=200, capacity_kwh=400)
    with_flywheel = DispatchAssets((CHILLER, TANK, BATTERY, flywheel))
    without = make_plan(inputs, InitialState(), PlanOptions(), context(ASSETS))
    with registered(FlywheelBlock):
        plan = make_plan(inputs, InitialState(), PlanOptions(), context(with_flywheel))
        lp = build_lp(inputs, with_flywheel, InitialState(), PlanOptions())
        plan_context = context(with_flywheel)
        for name in BASELINES:
            x = baseline_dispatch(name, lp, inputs, with_flywheel, plan_context.schedule, plan_context.timezone)
            assert not lp.values(x, "flywheel_charge_kw").any() and not lp.values(x, "flywheel_discharge_kw").any()
            assert lp.values(x, "flywheel_stored_kwh").tolist() == [[200.0] * 25]
            assert lp.violation(x) < 1e-6 * max(1.0, np.abs(x).max()), name
            assert lp.objective(x) == pytest.approx(plan.baselines[name].total_cny, rel=1e-12)
            assert plan.baselines[name].total_cny == pytest.approx(without.baselines[name].total_cny, rel=1e-12)
    assert plan.status == "optimal"
    assert plan.costs.total_cny <= min(cost.total_cny for cost in plan.baselines.values()) + 1e-6
    assert without.costs.total_cny - plan.costs.total_cny == pytest.approx(200.0 - 0.25 * 200.0 / 0.9, abs=1e-6)
