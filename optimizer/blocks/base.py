"""What a dispatchable kind's LP block is, and what it reads and writes while the park's LP is assembled.

A block holds the park's assets of one kind (possibly none) and adds, when :func:`optimizer.model.build_lp`
calls its hooks in the order below, its columns and rows to the park's model and its terms to the park's
balances. Hooks the kind has nothing for are left as they are here (no columns, rows or terms).

1. :meth:`KindBlock.variables`: its columns (bounds and objective terms with them);
2. :meth:`KindBlock.cooling_terms`, :meth:`KindBlock.ice_terms`: its terms in the park's cooling
   balance (kWth delivered to the load) and ice balance (kWth of ice made, + made, - charged);
3. :meth:`KindBlock.rows`: its own rows over the horizon (a chiller's modes, storage dynamics);
4. :meth:`KindBlock.electric_terms`: its terms in the park's electric balance, kW, as seen from
   the grid meter (``import - export = ...`` rearranged: a load's coefficient is -1 per kW drawn);
5. :meth:`KindBlock.terminal`: columns and rows of its targets at the horizon's end;
6. :meth:`KindBlock.exclusive_pairs`: binaries that forbid two of its flows in one step;
7. :meth:`KindBlock.export_source_terms`: its terms, kW, in the cut bounding the export by what
   the park's sources can export (optimizer.model._export_cut);
8. :meth:`KindBlock.mode_binaries`: binaries that pick one of its modes per step.

The hooks run over the blocks in registry order, 5 and 6 in reverse (optimizer.model.build_lp says why).
Before any of them, :meth:`KindBlock.import_max_kw` and :meth:`KindBlock.export_max_kw` bound the
grid's import and export (optimizer.model.grid_bounds_kw).

The park's own columns (grid import and export, peak) come after step 1, its rows (cooling, ice and
electric balances, peak, export limits, the grid's binaries) where the park's model puts them.

Outside the assembly, a block declares what the park's checks and dispatches ask of it:
:meth:`KindBlock.cooling_max_kwth` (optimizer.diagnostics), :meth:`KindBlock.ice_making_cop` (the ice
terminal penalty), :attr:`KindBlock.primary_columns` and :meth:`KindBlock.complete` (a rule-based
dispatch's decisions and what follows from them, optimizer.dispatch), :meth:`KindBlock.on_plant_schedule` (storage on
the chilled-water loop in the baselines); and, of a solution,
:meth:`KindBlock.simultaneous` (flows of a pair together, which a re-solve forbids) and
:meth:`KindBlock.table_columns` (its columns of the plan's per-step table, optimizer.plan).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np
from numpy.typing import NDArray

from optimizer.lp_builder import BinarySteps
from twin.kinds.base import AssetBase

if TYPE_CHECKING:
    from optimizer.inputs import HorizonInputs, InitialState
    from optimizer.lp_builder import Builder
    from optimizer.model import PlanOptions
    from twin.park import PlantSchedule

Term = tuple[np.ndarray, "np.ndarray | float"]
"""Column indices and their coefficients in a run of rows (optimizer.lp_builder.Builder.rows_of)."""


@dataclass
class Assembly:
    """The park's LP while it is assembled: what every block reads, and where it writes.

    binary_steps: the steps that get realizability binaries (optimizer.lp_builder.BinarySteps); a block
    may add its own reasons to them in :meth:`KindBlock.rows`, before the binaries are added.
    ice_making_cop: the best COP (kWth of ice per kW) any block declares (:meth:`KindBlock.ice_making_cop`),
    what a kWhth of ice short at the horizon's end is priced at.
    """

    builder: Builder
    inputs: HorizonInputs
    state: InitialState
    options: PlanOptions
    binary_steps: BinarySteps
    ice_making_cop: float

    @property
    def step_count(self) -> int:
        return self.inputs.steps

    @property
    def step_h(self) -> float:
        return self.inputs.step_h

    @property
    def top_price_cny_per_kwh(self) -> float:
        """The horizon's highest import price by magnitude, at least 0.01 CNY/kWh: what the terminal
        shortfall penalties are twice of by default (optimizer.model.PlanOptions)."""
        return max(0.01, float(np.max(np.abs(self.inputs.column("price_cny_per_kwh")))))

    @property
    def steps(self) -> NDArray[np.intp]:
        """0 .. T-1: the steps of per-step columns and rows."""
        return np.arange(self.inputs.steps)

    @property
    def states(self) -> NDArray[np.intp]:
        """0 .. T: the instants of stored-energy columns (start of each step and the horizon's end)."""
        return np.arange(self.inputs.steps + 1)

    def columns(self, name: str) -> NDArray[np.intp]:
        """The indices of a block of columns already added, by its name (e.g. ``ice_charge_kwth``)."""
        return self.builder.blocks[name].index


class KindBlock:
    """The LP block of one dispatchable kind, over the park's assets of that kind (module docstring)."""

    kind: ClassVar[str]
    """The kind's name in the park file (twin.kinds.kind_name), which the block registry maps to the block."""
    stored_column: ClassVar[str | None] = None
    """For a storage kind, the name of the block's columns of an asset's stored level (their label, and the plan
    table's ``<asset id>.<name>`` column), in the unit of the kind's stored point
    (twin.kinds.base.AssetBase.stored_point); None: the kind stores nothing."""

    primary_columns: ClassVar[tuple[str, ...]] = ()
    """Its blocks of columns a dispatch chooses (names given in :meth:`variables`); :meth:`complete` derives
    the rest of its columns from them (optimizer.dispatch.complete_dispatch)."""

    def __init__(self, assets: tuple[AssetBase, ...]) -> None:
        self.assets = assets

    @property
    def ids(self) -> list[str]:
        return [asset.id for asset in self.assets]

    def import_max_kw(self, inputs: HorizonInputs) -> np.ndarray | float:
        """The most its assets may add to the grid import in any step, kW (per step or one for all)."""
        return 0.0

    def export_max_kw(self, inputs: HorizonInputs) -> np.ndarray | float:
        """The most its assets may supply towards an export in any step, kW (per step or one for all)."""
        return 0.0

    def cooling_max_kwth(self) -> float:
        """The most its assets can deliver to the cooling load in any step, kWth (optimizer.diagnostics)."""
        return 0.0

    def stored_cooling_kwhth(self, state: InitialState) -> float | None:
        """The cooling its assets hold at the start of the horizon, as much as they deliver to the load, kWhth
        (optimizer.diagnostics); None: they store no cooling."""
        return None

    def ice_making_cop(self) -> float | None:
        """The best rated COP (kWth of ice per kW) at which its assets make ice; None when they make none."""
        return None

    def state_problems(self, state: InitialState) -> list[str]:
        """Why its assets cannot start the horizon where ``state`` says they stand, naming each (optimizer.diagnostics);
        empty when they can."""
        return []

    def variables(self, lp: Assembly) -> None:
        """Add the block's columns."""

    def cooling_terms(self, lp: Assembly) -> list[Term]:
        return []

    def ice_terms(self, lp: Assembly) -> list[Term]:
        return []

    def rows(self, lp: Assembly) -> None:
        """Add the block's rows over the horizon."""

    def electric_terms(self, lp: Assembly) -> list[Term]:
        return []

    def terminal(self, lp: Assembly) -> None:
        """Add the block's targets at the horizon's end."""

    def exclusive_pairs(self, lp: Assembly) -> None:
        """Add the block's binaries forbidding two of its flows in one step."""

    def export_source_terms(self, lp: Assembly, steps: NDArray[np.bool_]) -> list[Term]:
        """Its terms on the flagged ``steps`` only."""
        return []

    def mode_binaries(self, lp: Assembly) -> None:
        """Add the block's binaries picking one mode per step."""

    def on_plant_schedule(self, schedule: PlantSchedule, hours: NDArray[np.float64], load_kwth: NDArray[np.float64],
                          chiller_capacity_kwth: float, step_h: float) -> tuple[dict[str, NDArray[np.float64]],
                                                                                NDArray[np.float64]]:
        """For storage on the buildings' chilled-water loop, which the baselines have no rule of their own for: its
        :attr:`primary_columns` (asset x step) as the plant's own schedule runs it at these local ``hours`` on this
        cooling load (kWth per step) with chillers of this chilled-water capacity, and the cooling it delivers to
        the load net, kWth per step (optimizer.baselines); none for any other kind."""
        return {}, np.zeros(len(hours))

    def complete(self, x: NDArray[np.float64], step_h: float) -> None:
        """Set its columns in ``x`` that follow from its :attr:`primary_columns` (already set in ``x``), such as
        storage levels from the flows; its binaries and terminal slacks are set with the park's
        (optimizer.dispatch)."""

    def simultaneous(self, x: NDArray[np.float64], steps: int) -> BinarySteps:
        """The steps where the solution ``x`` has two of its flows together that its binaries keep apart
        (optimizer.lp_builder.flowing_together), as the kind of pair they are."""
        return BinarySteps.none(steps)

    def table_columns(self, x: NDArray[np.float64], steps: int) -> dict[str, NDArray[np.float64]]:
        """Its columns of the plan's per-step table of the solution ``x`` (optimizer.plan.dispatch_table), each
        ``steps`` long, named ``<asset id>.<quantity with unit>`` or, for the kind's total, a park-wide name;
        levels are at each step's start. A plan's setpoints are read from these (twin.kinds.base.PlanColumn)."""
        return {}
