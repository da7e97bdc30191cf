"""The dispatch LP is assembled from the LP blocks registered by kind name (optimizer.blocks): a block
registered for a kind this test defines takes part in the park's model like the built-in ones."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pytest
from optimizer_cases import horizon

from optimizer.blocks import Assembly, KindBlock, Term, block, blocks, registered
from optimizer.inputs import HorizonInputs, InitialState
from optimizer.linear_program import Labels
from optimizer.model import DispatchAssets, PlanOptions, build_lp
from optimizer.solve import solve
from twin.kinds import kind_name, kinds
from twin.kinds.base import AssetBase
from twin.points import PointSpec


class Heater(AssetBase):
    """A load of this test: draws between its minimum and maximum power, and must take ``energy_kwh`` over
    the horizon."""

    kind: Literal["test_heater"] = "test_heater"
    power_min_kw: float
    power_max_kw: float
    energy_kwh: float

    def standard_points(self) -> list[PointSpec]:
        return []


class HeaterBlock(KindBlock):
    kind = "test_heater"
    assets: tuple[Heater, ...]

    def import_max_kw(self, inputs: HorizonInputs) -> float:
        return sum(h.power_max_kw for h in self.assets)

    def variables(self, lp: Assembly) -> None:
        lower = np.array([h.power_min_kw for h in self.assets]).reshape(-1, 1)
        upper = np.array([h.power_max_kw for h in self.assets]).reshape(-1, 1)
        self.power = lp.builder.variables("heater_kw", (len(self.assets), lp.step_count), lower, upper,
                                          labels=Labels.of("power_kw", self.ids, lp.steps))

    def electric_terms(self, lp: Assembly) -> list[Term]:
        return [(self.power.T, -1.0)]

    def terminal(self, lp: Assembly) -> None:
        energy = np.array([h.energy_kwh for h in self.assets])
        lp.builder.rows_of(len(self.assets), energy, energy, [(self.power, lp.step_h)],
                           labels=Labels.of("energy_kwh", self.ids))


def test_a_registered_block_is_assembled_into_the_park_model():
    """Two hours at 0.2 then 1.0 CNY/kWh, 10 kW of other load; a heater of 20..100 kW that must take 120 kWh.

    By hand: it takes 100 kWh in hour 1 and the 20 kWh left (its minimum) in hour 2; the grid imports
    110 then 30 kW: 0.2 * 110 + 1.0 * 30 = 52 CNY."""
    inputs = horizon(60, cooling_load_kwth=[0, 0], pv_available_kw=[0, 0], other_load_kw=[10, 10],
                     price_cny_per_kwh=[0.2, 1.0])
    heater = Heater(id="heater", power_min_kw=20, power_max_kw=100, energy_kwh=120)
    with registered(HeaterBlock):
        assert block("test_heater") is HeaterBlock
        lp = build_lp(inputs, DispatchAssets((heater,)), InitialState(), PlanOptions())
    result = solve(lp)
    assert result.optimal and result.x is not None
    assert result.objective_cny == pytest.approx(52.0, abs=1e-6)
    assert lp.values(result.x, "heater_kw")[0].tolist() == pytest.approx([100.0, 20.0], abs=1e-6)
    assert lp.values(result.x, "grid_import_kw").tolist() == pytest.approx([110.0, 30.0], abs=1e-6)
    assert "heater.power_kw[2026-06-30T16:00Z]" in lp.column_names
    assert "heater.energy_kwh" in lp.row_names


def test_the_registry_finds_blocks_by_kind_name_and_forgets_a_registered_one_after():
    before = blocks()
    with registered(HeaterBlock):
        with pytest.raises(ValueError, match="test_heater"):
            with registered(HeaterBlock):
                pass
    assert HeaterBlock not in blocks()
    with pytest.raises(KeyError, match="test_heater"):
        block("test_heater")
    assert blocks() == before
    assert all(block(each.kind) is each for each in before)
    assert {each.kind for each in before} <= {kind_name(cls) for cls in kinds()}  # every block is a park kind's


def test_a_kind_without_a_registered_block_leaves_the_model_as_it_is():
    """The heater's assets are ignored while no block is registered for its kind: the model then has the
    same columns and rows as without them."""
    inputs = horizon(60, cooling_load_kwth=[0, 0], pv_available_kw=[0, 0], other_load_kw=[10, 10],
                     price_cny_per_kwh=[0.2, 1.0])
    heater = Heater(id="heater", power_min_kw=20, power_max_kw=100, energy_kwh=120)
    with_heater = build_lp(inputs, DispatchAssets((heater,)), InitialState(), PlanOptions())
    without = build_lp(inputs, DispatchAssets(), InitialState(), PlanOptions())
    assert with_heater.column_names == without.column_names and with_heater.row_names == without.row_names
