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

import functools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray

from optimizer.inputs import HorizonInputs, InitialState
from twin.kinds import Battery, Chiller, EVCharger, IceTank, kind_name
from twin.kinds.base import AssetBase
from twin.park import Park

if TYPE_CHECKING:
    from optimizer.blocks import KindBlock

SIMULTANEOUS_TOLERANCE_KW = 1e-6
"""Both flows of a pair above this (kW / kWth) in one step count as simultaneous."""

MIP_MAX_NODES = 1000
"""Default node budget of a MIP's search (:attr:`PlanOptions.mip_max_nodes`)."""


_FIELD_OF_KIND = {"chiller": "chillers", "ice_tank": "ice_tanks", "battery": "batteries",
                  "ev_charger": "ev_chargers"}
"""The :class:`DispatchAssets` field holding each kind's assets, by kind name; any other kind's are ``others``."""


@dataclass(frozen=True)
class DispatchAssets:
    """The controllable assets the LP plans for (all optional; the park's grid meter is implied).

    ``others``: assets of every other kind; the LP gives them to the block of their kind where one is
    registered (:mod:`optimizer.blocks`), the PV arrays' for one."""

    chillers: tuple[Chiller, ...] = ()
    ice_tanks: tuple[IceTank, ...] = ()
    batteries: tuple[Battery, ...] = ()
    ev_chargers: tuple[EVCharger, ...] = ()
    others: tuple[AssetBase, ...] = ()

    @classmethod
    def of_park(cls, park: Park) -> DispatchAssets:
        """Every asset of the park, each in the field of its kind (or among ``others``), in file order."""
        fields: dict[str, list[AssetBase]] = {name: [] for name in (*_FIELD_OF_KIND.values(), "others")}
        for _, asset in park.iter_assets():
            fields[_FIELD_OF_KIND.get(kind_name(type(asset)), "others")].append(asset)
        # each field gets the assets of its kind, told by the kind's name, which mypy cannot follow
        return cls(**{name: tuple(value) for name, value in fields.items()})  # type: ignore[arg-type]

    def of_kind(self, kind: str) -> tuple[AssetBase, ...]:
        """The assets of the kind of this name (twin.kinds.kind_name), in file order."""
        if kind in _FIELD_OF_KIND:
            return tuple(getattr(self, _FIELD_OF_KIND[kind]))
        return tuple(asset for asset in self.others if kind_name(type(asset)) == kind)

    @property
    def ice_chillers(self) -> tuple[Chiller, ...]:
        return tuple(c for c in self.chillers if c.makes_ice)


@dataclass(frozen=True)
class PlanOptions:
    """Prices and switches of the plan that are not forecasts.

    demand_charge_cny_per_kw: charged on the horizon's peak above the peak already billed
    (the tariff's monthly rate: the increment is what this horizon adds to the bill).
    Terminal penalties default to twice the horizon's highest import price per kWh
    (battery) and per kWhth divided by the best ice-mode COP (ice).
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


@dataclass
class Block:
    """A named block of variables: indices into x shaped (rows, steps) or (rows,)."""

    name: str
    index: NDArray[np.intp]


@dataclass(frozen=True)
class Labels:
    """What a run of consecutive columns or rows is, to name each: ``quantity``, and per entry the asset
    (``""`` for none) and the step (-1 for none). Entries run asset-major: the assets' product with
    the steps, as ``x[(assets, steps)].reshape(-1)`` lays them out."""

    quantity: str
    assets: np.ndarray
    steps: np.ndarray

    @classmethod
    def of(cls, quantity: str, assets: Iterable[str] | None = None, steps: ArrayLike | None = None) -> Labels:
        """Labels for ``assets`` x ``steps`` (either may be None: one entry without it)."""
        asset_array = np.array([""] if assets is None else list(assets), dtype=object)
        step_array = np.array([-1] if steps is None else steps, dtype=int).reshape(-1)
        return cls(quantity, np.repeat(asset_array, len(step_array)), np.tile(step_array, len(asset_array)))

    def names(self, start_utc: np.datetime64, step_min: float) -> list[str]:
        """``{asset}.{quantity}[{step start}Z]``, asset and time left out where an entry has none."""
        minutes = np.round(self.steps * step_min).astype("timedelta64[m]")
        stamps = np.datetime_as_string(start_utc + minutes, unit="m")
        return [(f"{asset}.{self.quantity}" if asset else self.quantity) + (f"[{stamp}Z]" if step >= 0 else "")
                for asset, step, stamp in zip(self.assets.tolist(), self.steps.tolist(), stamps.tolist())]


@dataclass
class LinearProgram:
    """min c x  s.t.  row_lower <= A x <= row_upper,  col_lower <= x <= col_upper, x_j integer where flagged."""

    c: np.ndarray
    a: sp.csr_matrix
    row_lower: np.ndarray
    row_upper: np.ndarray
    col_lower: np.ndarray
    col_upper: np.ndarray
    integrality: np.ndarray
    objective_constant: float
    blocks: dict[str, Block]
    step_h: float
    ice_chiller_positions: NDArray[np.intp]
    """For each row of the ice-making block, the chiller's row in the direct block."""
    chiller_kw_per_kwth: tuple[NDArray[np.float64], NDArray[np.float64]]
    """(direct, ice) electric kW per kWth of cooling, 1/COP, shaped like the direct and ice blocks:
    the coefficients of the electric balance rows."""
    row_groups: dict[str, np.ndarray]
    binary_pairs: dict[str, tuple[np.ndarray, np.ndarray]]
    binaries_reasons: list[str] = field(default_factory=list)
    start_utc: np.datetime64 = field(default_factory=lambda: np.datetime64("1970-01-01T00:00"))
    """Start of the first step (UTC, naive): the time in the names."""
    column_labels: list[Labels] = field(default_factory=list)
    row_labels: list[Labels] = field(default_factory=list)

    @functools.cached_property
    def column_names(self) -> list[str]:
        """A readable, unique name per column (module docstring), built on first use."""
        return [name for labels in self.column_labels for name in labels.names(self.start_utc, 60.0 * self.step_h)]

    @functools.cached_property
    def row_names(self) -> list[str]:
        """A readable, unique name per row (module docstring), built on first use."""
        return [name for labels in self.row_labels for name in labels.names(self.start_utc, 60.0 * self.step_h)]

    def chiller_electric_kw(self, direct_kwth: NDArray[np.float64],
                            ice_kwth: NDArray[np.float64]) -> NDArray[np.float64]:
        """Electric kW per chiller and step (rows as the direct block): cooling times 1/COP."""
        direct_kw_per_kwth, ice_kw_per_kwth = self.chiller_kw_per_kwth
        result = direct_kwth * direct_kw_per_kwth
        result[self.ice_chiller_positions] += ice_kwth * ice_kw_per_kwth
        return result

    @property
    def electric_rows(self) -> np.ndarray:
        return self.row_groups["electric_balance"]

    @property
    def peak_rows(self) -> np.ndarray:
        return self.row_groups["peak"]

    @property
    def battery_terminal_rows(self) -> np.ndarray:
        return self.row_groups.get("battery_terminal", np.zeros(0, dtype=int))

    @property
    def ice_terminal_rows(self) -> np.ndarray:
        return self.row_groups.get("ice_terminal", np.zeros(0, dtype=int))

    @property
    def has_integers(self) -> bool:
        return bool(self.integrality.any())

    def values(self, x: NDArray[np.float64], name: str) -> NDArray[np.float64]:
        return x[self.blocks[name].index]

    def objective(self, x: np.ndarray) -> float:
        return float(self.c @ x + self.objective_constant)

    def violation(self, x: np.ndarray) -> float:
        """Largest violation of any row or bound by x (0 when feasible)."""
        ax = self.a @ x
        return float(max(0.0, np.max(self.row_lower - ax, initial=0.0), np.max(ax - self.row_upper, initial=0.0),
                         np.max(self.col_lower - x, initial=0.0), np.max(x - self.col_upper, initial=0.0)))


def _flat(value: ArrayLike, shape: tuple[int, ...]) -> np.ndarray:
    """``value`` (a scalar or an array broadcastable to ``shape``) broadcast to ``shape`` and flattened,
    as floats; scalars and arrays already of that shape skip ``np.broadcast_to``, whose fixed cost per call
    is large beside the arithmetic of a small LP's blocks."""
    array = np.asarray(value, dtype=float)
    if array.ndim == 0:
        return np.full(math.prod(shape), float(array))
    if array.shape == shape:
        return array.reshape(-1)
    return np.broadcast_to(array, shape).reshape(-1)


class Builder:
    """Collects variable blocks and constraint rows as COO triplets."""

    def __init__(self) -> None:
        self.n = 0
        self.blocks: dict[str, Block] = {}
        self.lower: list[np.ndarray] = []
        self.upper: list[np.ndarray] = []
        self.cost: list[np.ndarray] = []
        self.integer: list[np.ndarray] = []
        self.rows: list[np.ndarray] = []
        self.cols: list[np.ndarray] = []
        self.vals: list[np.ndarray] = []
        self.row_lower: list[np.ndarray] = []
        self.row_upper: list[np.ndarray] = []
        self.m = 0
        self.row_groups: dict[str, np.ndarray] = {}
        self.binary_pairs: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.column_labels: list[Labels] = []
        self.row_labels: list[Labels] = []

    def variables(self, name: str, shape: tuple[int, ...], lower: ArrayLike, upper: ArrayLike, cost: ArrayLike = 0.0,
                  integer: bool = False, *, labels: Labels) -> NDArray[np.intp]:
        """A block of ``shape`` columns named ``name``; ``labels`` name each (asset-major, as the shape)."""
        size = math.prod(shape)
        assert len(labels.steps) == size, (name, len(labels.steps), size)
        self.column_labels.append(labels)
        index = np.arange(self.n, self.n + size).reshape(shape)
        self.n += size
        self.lower.append(_flat(lower, shape))
        self.upper.append(_flat(upper, shape))
        self.cost.append(_flat(cost, shape))
        self.integer.append(np.full(size, integer))
        self.blocks[name] = Block(name, index)
        return index

    def rows_of(self, count: int, lower: ArrayLike, upper: ArrayLike,
                terms: list[tuple[np.ndarray, np.ndarray | float]], group: str | None = None, *,
                labels: Labels) -> None:
        """Add ``count`` rows: row i is sum over terms of coef[i] * x[var[i]], within [lower, upper];
        ``labels`` name them.

        Each term's var array has shape (count,) or (count, k) (k variables per row).
        """
        assert len(labels.steps) == count, (labels.quantity, len(labels.steps), count)
        self.row_labels.append(labels)
        row_ids = np.arange(self.m, self.m + count)
        for var, coef in terms:
            var = np.asarray(var)
            if var.size == 0:
                continue
            var2 = var.reshape(count, -1)
            self.rows.append(np.repeat(row_ids, var2.shape[1]))
            self.cols.append(var2.reshape(-1))
            self.vals.append(_flat(np.asarray(coef, dtype=float).reshape(count, -1) if np.ndim(coef) else coef,
                                   var2.shape))
        self.row_lower.append(_flat(lower, (count,)))
        self.row_upper.append(_flat(upper, (count,)))
        self.m += count
        if group is not None:
            self.row_groups[group] = row_ids

    def build(self, constant: float, reasons: list[str], step_h: float, ice_positions: NDArray[np.intp],
              chiller_kw_per_kwth: tuple[NDArray[np.float64], NDArray[np.float64]],
              start_utc: np.datetime64) -> LinearProgram:
        rows, cols, vals = _concatenate(self.rows), _concatenate(self.cols), _concatenate(self.vals)
        keep = vals != 0
        a = sp.csr_matrix((vals[keep], (rows[keep].astype(int), cols[keep].astype(int))), shape=(self.m, self.n))
        return LinearProgram(_concatenate(self.cost), a, _concatenate(self.row_lower), _concatenate(self.row_upper),
                             _concatenate(self.lower), _concatenate(self.upper),
                             _concatenate(self.integer).astype(bool), constant, self.blocks, step_h, ice_positions,
                             chiller_kw_per_kwth, self.row_groups, self.binary_pairs, reasons, start_utc,
                             self.column_labels, self.row_labels)


def _concatenate(parts: list[np.ndarray]) -> np.ndarray:
    """The parts end to end; an empty float array for none."""
    return np.concatenate(parts) if parts else np.zeros(0)


@dataclass(frozen=True)
class BinarySteps:
    """Steps (boolean masks over the horizon) that get realizability binaries, and why: ``grid``
    import/export, ``storage`` battery and ice charge/discharge, ``chiller`` every ice-making
    chiller's ice/direct mode."""

    grid: NDArray[np.bool_]
    storage: NDArray[np.bool_]
    chiller: NDArray[np.bool_]
    reasons: tuple[str, ...]

    @classmethod
    def none(cls, steps: int) -> BinarySteps:
        return cls(np.zeros(steps, bool), np.zeros(steps, bool), np.zeros(steps, bool), ())

    @property
    def any(self) -> bool:
        return bool(self.grid.any() or self.storage.any() or self.chiller.any())

    @property
    def steps(self) -> NDArray[np.bool_]:
        """Steps with any binary."""
        return self.grid | self.storage | self.chiller

    def describe(self) -> str:
        """The flagged steps counted by pair, e.g. "a chiller in both modes in 3 step(s)"."""
        counts = (("import with export", self.grid), ("charge with discharge", self.storage),
                  ("a chiller in both modes", self.chiller))
        return ", ".join(f"{what} in {int(mask.sum())} step(s)" for what, mask in counts if mask.any())

    def union(self, other: BinarySteps) -> BinarySteps:
        return BinarySteps(self.grid | other.grid, self.storage | other.storage, self.chiller | other.chiller,
                           self.reasons + tuple(r for r in other.reasons if r not in self.reasons))


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


def default_penalties(inputs: HorizonInputs, assets: DispatchAssets, options: PlanOptions) -> tuple[float, float]:
    """Terminal shortfall penalties (CNY/kWh battery, CNY/kWhth ice) of :class:`PlanOptions`."""
    top_price = max(0.01, float(np.max(np.abs(inputs.column("price_cny_per_kwh")))))
    ice_cop = max((c.ice_cop_rated for c in assets.ice_chillers if c.ice_cop_rated is not None), default=4.0)
    battery = options.battery_terminal_penalty_cny_per_kwh
    ice = options.ice_terminal_penalty_cny_per_kwhth
    return (2.0 * top_price if battery is None else battery, 2.0 * top_price / ice_cop if ice is None else ice)


def build_lp(inputs: HorizonInputs, assets: DispatchAssets, state: InitialState, options: PlanOptions,
             extra_binaries: BinarySteps | None = None) -> LinearProgram:
    """Assemble the dispatch LP (see the module docstring) from the park's grid and the LP block of each
    registered dispatchable kind (:mod:`optimizer.blocks`), holding the park's assets of that kind.

    Realizability binaries go on the steps of :func:`realizability_steps`, plus ``extra_binaries``.
    The blocks' hooks run in registry order, except :meth:`~optimizer.blocks.KindBlock.terminal` and
    :meth:`~optimizer.blocks.KindBlock.exclusive_pairs`, which run in reverse: that order gives each
    column and row the place it has always had, on which ties between optimal solutions are broken.
    """
    from optimizer.blocks import Assembly, blocks  # the blocks build on this module's pieces

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
    battery_penalty, ice_penalty = default_penalties(inputs, assets, options)

    b = Builder()
    lp = Assembly(b, inputs, state, options, binary_steps, battery_penalty, ice_penalty)
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
    return b.build(0.0, list(binary_steps.reasons) if binary_steps.any else [], dt,
                   lp.ice_chiller_positions, lp.chiller_kw_per_kwth,
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


def exclusive_pair(b: Builder, name: str, first: NDArray[np.intp], second: NDArray[np.intp], first_max: np.ndarray,
                    second_max: np.ndarray,
                    labels: Labels) -> None:
    """first <= first_max u, second <= second_max (1 - u), u binary: at most one of the two is non-zero.
    ``labels`` name u; its rows are named after it, ``.first`` and ``.second``."""
    n = len(first)
    u = b.variables(name, (n,), 0.0, 1.0, integer=True, labels=labels)
    b.binary_pairs[name] = (np.asarray(first), np.asarray(second))
    if n:
        b.rows_of(n, -np.inf, 0.0, [(first, 1.0), (u, -first_max)],
                  labels=Labels(f"{labels.quantity}.first", labels.assets, labels.steps))
        b.rows_of(n, -np.inf, second_max, [(second, 1.0), (u, second_max)],
                  labels=Labels(f"{labels.quantity}.second", labels.assets, labels.steps))
