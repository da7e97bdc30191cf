"""The dispatch LP, assembled vectorised as one sparse matrix over the horizon.

Each dispatchable kind's columns, rows and terms in the balances are its LP block's, one module per kind
in :mod:`optimizer.blocks`, registered by kind name; :func:`build_lp` assembles them with the park's
grid, peak and balances. The model as a whole:

Decision variables per step t (all kW or kWth means over the step of ``dt`` hours):

- chillers: ``direct[c,t]`` chilled water (kWth), ``ice[c,t]`` ice making (kWth, ice-capable only);
  ``direct/cap_direct + ice/cap_ice <= 1`` (the LP form of one mode per step: it still lets a
  chiller share a step between the modes, which the realizability binaries forbid, see below);
- ice tanks: ``charge[k,t]``, ``melt[k,t]`` (kWth), ``inventory[k,t]`` (kWhth, t = 0..T);
- batteries: ``charge[b,t]``, ``discharge[b,t]`` (kW at the AC side), ``stored[b,t]`` (kWh, t = 0..T);
- ``pv_used[t]`` (kW, curtailment is what is left of the forecast), ``ev[s,t]`` per EV session (kW);
- ``import[t]``, ``export[t]`` at the grid meter (kW), ``peak`` (kW, at least the peak already billed);
- ``short_battery[b]``, ``short_ice[k]``: shortfall against the terminal targets (soft, penalised).

Balances per step:
  cooling   sum_c direct + sum_k melt_effectiveness * melt = cooling load
  ice       sum_c ice = sum_k charge
  electric  import - export = other load + sum_c (direct/COP_direct + ice/COP_ice)
                              + sum_b (charge - discharge) - pv_used + sum_s ev
Dynamics: inventory[t+1] = (1 - loss*dt) inventory[t] + (charge - melt) dt (the simulator's plant);
stored[t+1] = stored[t] + (eta_c charge - discharge / eta_d) dt.
Peak: mean import over each demand interval <= peak.
Export limited to PV (a tariff rule, optional): export <= pv_used each step.

Objective (CNY): sum_t dt (price import - export_price export + wear (charge + discharge)
+ co2_price * co2_factor * import) + demand_rate * peak + penalties * shortfalls.

Names: every column and row has one a person can read, ``{asset}.{quantity}[{step start}]`` (e.g.
``bat1.charge_kw[2026-06-30T16:15Z]``, step start in UTC), without the asset for park-level ones
(``grid_import_kw[...]``, ``electric_balance[...]``) and without the time for per-horizon ones
(``peak_kw``, ``bat1.terminal``). They are built on first use (:attr:`LinearProgram.column_names`,
:attr:`LinearProgram.row_names`): a plan solved straight by highspy never pays for them.

Realizability binaries (``u_grid_import``, ``u_battery_charge``, ``u_ice_charge``,
``u_chiller_ice``) forbid import with export, charge with discharge, ice making with melting,
and a chiller making ice and chilled water, in one step: the field takes one command per device
and step (a chiller's mode is ice or not). The first three are added where the inputs make such a
loop profitable (see :func:`realizability_steps`); all four where a solve found the flows of a
pair together (optimizer.plan). With ``u_chiller_ice`` the LP form of the chiller's step is
replaced by ``ice <= cap_ice u`` and ``direct <= cap_direct (1 - u)``, whose relaxation it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from optimizer.blocks import Assembly, KindBlock, blocks
from optimizer.inputs import HorizonInputs, InitialState
from optimizer.linear_program import Labels, LinearProgram
from optimizer.lp_builder import BinarySteps, Builder, exclusive_pair
from twin.kinds import kind_name
from twin.kinds.base import AssetBase
from twin.park import Park

MIP_MAX_NODES = 1000
"""Default node budget of a MIP's search (:attr:`PlanOptions.mip_max_nodes`)."""

DEFAULT_ICE_MAKING_COP = 4.0
"""COP of ice making the ice terminal penalty assumes when no block declares one
(:meth:`optimizer.blocks.KindBlock.ice_making_cop`)."""


@dataclass(frozen=True)
class DispatchAssets:
    """The controllable assets the LP plans for, of any kinds (the park's grid meter is implied): the LP gives
    each kind's to its LP block where one is registered (:mod:`optimizer.blocks`)."""

    assets: tuple[AssetBase, ...] = ()

    @classmethod
    def of_park(cls, park: Park) -> DispatchAssets:
        """Every asset of the park, in file order."""
        return cls(tuple(asset for _, asset in park.iter_assets()))

    def of_kind(self, kind: str) -> tuple[AssetBase, ...]:
        """The assets of the kind of this name (twin.kinds.kind_name), in file order."""
        return tuple(asset for asset in self.assets if kind_name(type(asset)) == kind)


@dataclass(frozen=True)
class PlanOptions:
    """Prices and switches of the plan that are not forecasts.

    demand_charge_cny_per_kw: charged on the horizon's peak above the peak already billed
    (the tariff's monthly rate: the increment is what this horizon adds to the bill).
    Terminal penalties default to twice the horizon's highest import price per kWh
    (battery) and per kWhth divided by the best ice-mode COP (ice, :data:`DEFAULT_ICE_MAKING_COP`
    where no chiller declares one); the blocks of those kinds price their shortfalls.
    """

    demand_charge_cny_per_kw: float = 0.0
    demand_interval_min: int = 15
    co2_t_per_mwh: float = 0.5703
    co2_price_cny_per_t: float = 0.0
    battery_wear_cny_per_kwh: float = 0.0
    terminal_stored: dict[str, float] | None = None
    """What each storage asset should store at the horizon's end, by asset id, in the unit of its kind's stored
    point (twin.kinds.base.AssetBase.stored_point); an asset left out: what it stores at the start."""
    battery_terminal_penalty_cny_per_kwh: float | None = None
    ice_terminal_penalty_cny_per_kwhth: float | None = None
    grid_import_max_kw: float | None = None
    grid_export_max_kw: float | None = None
    export_limited_to_pv: bool = False
    """Export at most the PV used each step (energy.tariff.Tariff.export_limited_to_pv)."""
    realizability: str = "auto"
    """"auto": binaries where the inputs, or a solve, show they are needed; "always": on every step;
    "never": none on the inputs' account (a solve that mixes the flows of a pair still gets them)."""
    mip_rel_gap: float = 1e-6
    mip_max_nodes: int = MIP_MAX_NODES
    """Bound on a MIP's search in branch-and-bound nodes (HiGHS's ``mip_max_nodes``, CBC's
    ``maxNodes``): the same inputs give the same plan on any machine, at any
    load. A search stopped by it keeps its realizable incumbent (status "node limit")."""
    mip_time_limit_s: float | None = None
    """Optional wall-clock bound on a MIP's search as well (None: nodes only). A search it stops
    keeps its incumbent (status "time limit"), which then depends on the machine's speed and load."""


def realizability_steps(inputs: HorizonInputs, options: PlanOptions, export_bound_kw: np.ndarray) -> BinarySteps:
    """Where an LP could profit from a physically impossible loop, so binaries are needed.

    Import+export pays where export is worth more than import, or import is paid
    (negative price), but only where the park can export at all (``export_bound_kw``
    above 0, see :func:`grid_bounds_kw`: where PV and full battery discharge cannot cover
    the other loads, export is bounded to 0 and no loop is possible). Charge+discharge and
    make+melt only burn energy: they pay where burning does (negative import or export
    price). Elsewhere such loops cost money, so the LP optimum avoids them without binaries
    (a tie is caught after the solve, see optimizer.plan). A chiller sharing a step between
    ice and chilled water is no loop but the LP's cheapest use of part of a chiller for each;
    whether it happens depends on the whole solution, so its binaries come from the solves.
    """
    T = inputs.steps
    if options.realizability == "never":
        return BinarySteps.none(T)
    if options.realizability == "always":
        return BinarySteps(np.ones(T, bool), np.ones(T, bool), np.ones(T, bool), ("binaries requested on every step",))
    price = inputs.column("price_cny_per_kwh")
    export = inputs.column("export_price_cny_per_kwh")
    can_export = export_bound_kw > 0
    reasons = []
    if np.any((export > price) & can_export):
        reasons.append(f"export price above import price in {int(np.sum((export > price) & can_export))} step(s)"
                       " where the park can export")
    if np.any(price < 0):
        reasons.append(f"negative import price in {int(np.sum(price < 0))} step(s)")
    if np.any(export < 0):
        reasons.append(f"negative export price in {int(np.sum(export < 0))} step(s)")
    return BinarySteps(((export > price) | (price < 0)) & can_export, (price < 0) | (export < 0), np.zeros(T, bool),
                       tuple(reasons))


def grid_bounds_kw(inputs: HorizonInputs, kind_blocks: Sequence[KindBlock],
                   options: PlanOptions) -> tuple[np.ndarray, np.ndarray]:
    """Per step, (import, export) at the grid meter that no realizable plan exceeds, kW: they tighten
    the LP and are the big-M of the binaries. Import is at most the other loads and what every block
    may draw, plus 1 kW; export, with nothing imported, at most what every block may supply less the
    other loads (and at most the PV where the tariff pays export of PV only); both are capped by the
    grid limits of ``options``."""
    pv, other = inputs.column("pv_available_kw"), inputs.column("other_load_kw")
    import_kw = other
    supply_kw: np.ndarray | float = 0.0
    for block in kind_blocks:
        import_kw = import_kw + block.import_max_kw(inputs)
        supply_kw = supply_kw + block.export_max_kw(inputs)
    import_kw = import_kw + 1.0
    export_kw = np.maximum(0.0, supply_kw - other)
    if options.grid_import_max_kw is not None:
        import_kw = np.minimum(import_kw, options.grid_import_max_kw)
    if options.grid_export_max_kw is not None:
        export_kw = np.minimum(export_kw, options.grid_export_max_kw)
    if options.export_limited_to_pv:
        export_kw = np.minimum(export_kw, pv)
    return import_kw, export_kw


def build_lp(inputs: HorizonInputs, assets: DispatchAssets, state: InitialState, options: PlanOptions,
             extra_binaries: BinarySteps | None = None) -> LinearProgram:
    """Assemble the dispatch LP (see the module docstring) from the park's grid and the LP block of each
    registered dispatchable kind (:mod:`optimizer.blocks`), holding the park's assets of that kind.

    Realizability binaries go on the steps of :func:`realizability_steps`, plus ``extra_binaries``.
    The blocks' hooks run in registry order, except :meth:`~optimizer.blocks.KindBlock.terminal` and
    :meth:`~optimizer.blocks.KindBlock.exclusive_pairs`, which run in reverse: that order gives each
    column and row the place it has always had, on which ties between optimal solutions are broken.
    """
    T, dt = inputs.steps, inputs.step_h
    load = inputs.column("cooling_load_kwth")
    other = inputs.column("other_load_kw")
    price = inputs.column("price_cny_per_kwh")
    export_price = inputs.column("export_price_cny_per_kwh")
    kind_blocks = [each(assets.of_kind(each.kind)) for each in blocks()]
    big_import, big_export = grid_bounds_kw(inputs, kind_blocks, options)
    binary_steps = realizability_steps(inputs, options, big_export)
    if extra_binaries is not None:
        binary_steps = binary_steps.union(extra_binaries)
    ice_making_cop = max((cop for block in kind_blocks if (cop := block.ice_making_cop()) is not None),
                         default=DEFAULT_ICE_MAKING_COP)

    b = Builder()
    lp = Assembly(b, inputs, state, options, binary_steps, ice_making_cop)
    steps = lp.steps
    for block in kind_blocks:
        block.variables(lp)
    co2_cny_per_kwh = options.co2_price_cny_per_t * options.co2_t_per_mwh / 1000.0
    grid_import = b.variables("grid_import_kw", (T,), 0.0, big_import, (price + co2_cny_per_kwh) * dt,
                              labels=Labels.of("grid_import_kw", None, steps))
    grid_export = b.variables("grid_export_kw", (T,), 0.0, big_export, -export_price * dt,
                              labels=Labels.of("grid_export_kw", None, steps))
    peak = b.variables("peak_kw", (1,), state.peak_so_far_kw, np.inf, options.demand_charge_cny_per_kw,
                       labels=Labels.of("peak_kw"))

    b.rows_of(T, load, load, [term for block in kind_blocks for term in block.cooling_terms(lp)],
              labels=Labels.of("cooling_balance", None, steps))
    b.rows_of(T, 0.0, 0.0, [term for block in kind_blocks for term in block.ice_terms(lp)],
              labels=Labels.of("ice_balance", None, steps))
    for block in kind_blocks:
        block.rows(lp)
    b.rows_of(T, other, other, [(grid_import, 1.0), (grid_export, -1.0),
                                *(term for block in kind_blocks for term in block.electric_terms(lp))],
              group="electric_balance", labels=Labels.of("electric_balance", None, steps))
    # peak demand over each demand interval
    per_interval = max(1, int(round(options.demand_interval_min / 60.0 / dt)))
    n_groups = -(-T // per_interval)
    padded = np.full(n_groups * per_interval, -1)  # consecutive steps per interval, -1 pads the last
    padded[:T] = grid_import
    members = padded.reshape(n_groups, per_interval)
    counts = (members >= 0).sum(axis=1, keepdims=True)
    weights = np.where(members >= 0, 1.0 / counts, 0.0)
    b.rows_of(n_groups, -np.inf, 0.0, [(np.where(members >= 0, members, grid_import[0]), weights),
                                       (np.full(n_groups, peak[0]), -1.0)], group="peak",
              labels=Labels.of("peak", None, np.arange(n_groups) * per_interval))
    if options.export_limited_to_pv:
        can_export = np.flatnonzero(big_export > 0)  # elsewhere export is held at 0 by its bound
        pv_used = lp.columns("pv_used_kw")
        b.rows_of(can_export.size, -np.inf, 0.0, [(grid_export[can_export], 1.0), (pv_used[can_export], -1.0)],
                  labels=Labels.of("export_within_pv", None, can_export))
    for block in reversed(kind_blocks):
        block.terminal(lp)
    binary_steps = lp.binary_steps
    exclusive_pair(b, "u_grid_import", grid_import[binary_steps.grid], grid_export[binary_steps.grid],
                    big_import[binary_steps.grid], big_export[binary_steps.grid],
                    Labels.of("u_import", None, np.flatnonzero(binary_steps.grid)))
    for block in reversed(kind_blocks):
        block.exclusive_pairs(lp)
    if binary_steps.grid.any():
        _export_cut(b, binary_steps.grid, grid_export,
                    [term for block in kind_blocks for term in block.export_source_terms(lp, binary_steps.grid)],
                    other)
    for block in kind_blocks:
        block.mode_binaries(lp)
    return b.build(0.0, list(binary_steps.reasons) if binary_steps.any else [], dt, tuple(kind_blocks),
                   np.datetime64(inputs.index[0].tz_convert("UTC").tz_localize(None), "m"))


def _export_cut(b: Builder, steps: NDArray[np.bool_], grid_export: NDArray[np.intp],
                source_terms: list[tuple[np.ndarray, np.ndarray | float]], other_kw: np.ndarray) -> None:
    """export <= sources - other_load * (1 - u) on the flagged steps, the sources (battery discharge, PV
    used...) as the blocks' ``source_terms`` (coefficient -1 per kW): valid (with u = 0 nothing is imported,
    so the export is what the sources leave after the loads; with u = 1 there is no export) and it tightens
    the relaxation, where a fractional u would otherwise let the import/export loop through."""
    u = b.blocks["u_grid_import"].index
    n = int(steps.sum())
    b.rows_of(n, -np.inf, -other_kw[steps], [(grid_export[steps], 1.0), *source_terms, (u, -other_kw[steps])],
              labels=Labels.of("export_cut", None, np.flatnonzero(steps)))
