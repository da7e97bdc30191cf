"""What the storage kinds' LP blocks share (optimizer.blocks.battery, optimizer.blocks.ice_tank,
optimizer.blocks.chilled_water_tank): :class:`StorageBlock`, a charge and a discharge flow per asset and step and
the stored level they lead to, with the level's dynamics, a soft target for it at the horizon's end, a binary per
flagged step that keeps charging and discharging apart, and what a solution or a rule-based dispatch makes of them.
A storage kind's block says what its columns are called and what its assets' figures are; its terms in the park's
balances are its own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar, Protocol

import numpy as np
from numpy.typing import NDArray

from optimizer.blocks.base import Assembly, KindBlock
from optimizer.inputs import InitialState
from optimizer.linear_program import Labels
from optimizer.lp_builder import BinarySteps, exclusive_pair, flowing_together
from twin.kinds.base import STORED_PCT_COLUMN


@dataclass(frozen=True)
class StorageNames:
    """What a storage block's columns and rows are called: column blocks ``<prefix>_<flow or level>`` labelled
    ``<flow or level>`` (e.g. ``battery_charge_kw``, labels ``<asset>.charge_kw[...]``), the dynamics rows
    ``<balance>``, the terminal shortfall ``<prefix>_terminal_short_<unit>`` and the binaries
    ``u_<prefix>_charge``."""

    prefix: str
    charge: str
    """The charge flow, e.g. ``charge_kw``; also its plan table column ``<asset id>.<charge>``."""
    discharge: str
    """The discharge flow, e.g. ``discharge_kw`` or ``melt_kwth``; also its plan table column."""
    level: str
    """The stored level, e.g. ``stored_kwh``; also its plan table column (KindBlock.stored_column)."""
    balance: str
    unit: str
    """The level's unit in names, e.g. ``kwh``."""

    @property
    def primary_columns(self) -> tuple[str, str]:
        """The charge and discharge column blocks: what a rule-based dispatch chooses."""
        return f"{self.prefix}_{self.charge}", f"{self.prefix}_{self.discharge}"


@dataclass(frozen=True)
class StorageFigures:
    """Per asset of a storage block, in its order: flows in kW or kWth, levels in kWh or kWhth.

    The level's dynamics over a step of dt hours: level[t+1] = (1 - loss_pct_per_h / 100 * dt) level[t]
    + (charge_efficiency charge - discharge / discharge_efficiency) dt."""

    charge_max: np.ndarray
    discharge_max: np.ndarray
    level_min: np.ndarray
    level_max: np.ndarray
    start: np.ndarray
    """The level at the horizon's start: the initial state's, else the asset's initial one."""
    capacity: np.ndarray
    """What the plan table's :data:`STORED_PCT_COLUMN` is a percentage of."""
    loss_pct_per_h: np.ndarray
    charge_efficiency: np.ndarray
    discharge_efficiency: np.ndarray
    flow_cost_cny: float = 0.0
    """Cost of each kW of charge or discharge over a step, CNY (battery wear)."""

    def keep(self, step_h: float) -> np.ndarray:
        """The share of the level kept over a step of ``step_h`` hours."""
        result: np.ndarray = 1.0 - self.loss_pct_per_h / 100.0 * step_h
        return result


def per_asset(figures: list[float]) -> np.ndarray:
    """One figure per asset of a block, as floats."""
    return np.array(figures, dtype=float)


class CoolingStorage(Protocol):
    """What :func:`cooling_storage_figures` reads of a cooling-storage asset (twin.kinds: ice and chilled-water
    tanks)."""

    @property
    def id(self) -> str: ...
    @property
    def capacity_kwhth(self) -> float: ...
    @property
    def charge_rate_max_kwth(self) -> float: ...
    @property
    def standing_loss_pct_per_h(self) -> float: ...
    def initial_stored(self) -> float: ...


def cooling_storage_figures(lp: Assembly, tanks: Sequence[CoolingStorage],
                            discharge_max_kwth: list[float]) -> StorageFigures:
    """The figures of cooling storage (ice, chilled water): charge at most ``charge_rate_max_kwth``, discharge
    at most ``discharge_max_kwth`` (kWth, per tank), the stored cooling between empty and full, the standing
    loss; what is charged and discharged is what it gains and gives up."""
    return StorageFigures(
        charge_max=per_asset([k.charge_rate_max_kwth for k in tanks]),
        discharge_max=per_asset(discharge_max_kwth),
        level_min=np.zeros(len(tanks)),
        level_max=per_asset([k.capacity_kwhth for k in tanks]),
        start=per_asset([lp.state.stored_of(k) for k in tanks]),
        capacity=per_asset([k.capacity_kwhth for k in tanks]),
        loss_pct_per_h=per_asset([k.standing_loss_pct_per_h for k in tanks]),
        charge_efficiency=np.ones(len(tanks)),
        discharge_efficiency=np.ones(len(tanks)))


class StorageBlock(KindBlock):
    """The LP block of a storage kind (module docstring). A subclass names its columns (:attr:`names`; its
    ``primary_columns`` and ``stored_column`` are theirs), gives its assets' figures (:meth:`figures`), the
    penalty of a unit short of the terminal target (:meth:`terminal_penalty`), its terms in the park's balances
    and any plan table columns of its own (:meth:`extra_table_columns`)."""

    names: ClassVar[StorageNames]
    capacity_field: ClassVar[str]
    """The assets' field holding the capacity a starting level may not exceed (e.g. ``capacity_kwhth``)."""
    level_unit: ClassVar[str]
    """The level's unit as people read it, e.g. ``kWhth``."""

    def figures(self, lp: Assembly) -> StorageFigures:
        raise NotImplementedError

    def state_problems(self, state: InitialState) -> list[str]:
        """A starting level below 0 or above the capacity its :attr:`capacity_field` gives."""
        problems = []
        for asset in self.assets:
            level, capacity = state.stored.get(asset.id), getattr(asset, self.capacity_field)
            if level is not None and not 0.0 <= level <= capacity + 1e-9:
                problems.append(f"{asset.kind_label.lower()} {asset.id!r} starts at {level:,.0f} {self.level_unit}, "
                                f"outside [0, {self.capacity_field} {capacity:,.0f}]")
        return problems

    def terminal_penalty(self, lp: Assembly) -> float:
        """CNY per unit (kWh, kWhth) of the level short of its target at the horizon's end."""
        raise NotImplementedError

    def extra_table_columns(self, charge: NDArray[np.float64], discharge: NDArray[np.float64],
                            index: int) -> dict[str, NDArray[np.float64]]:
        """Plan table columns of the asset at ``index`` between its flows and its level, from its flows."""
        return {}

    def variables(self, lp: Assembly) -> None:
        """Charge and discharge within their maxima, the level within its limits, the first fixed at the start."""
        names, T = self.names, lp.step_count
        self.figure = figures = self.figures(lp)
        level_lower = np.repeat(figures.level_min.reshape(-1, 1), T + 1, axis=1)
        level_upper = np.repeat(figures.level_max.reshape(-1, 1), T + 1, axis=1)
        level_lower[:, 0] = level_upper[:, 0] = figures.start
        charge_column, discharge_column = names.primary_columns
        self.charge = lp.builder.variables(charge_column, (len(self.assets), T), 0.0, figures.charge_max.reshape(-1, 1),
                                           figures.flow_cost_cny, labels=Labels.of(names.charge, self.ids, lp.steps))
        self.discharge = lp.builder.variables(discharge_column, (len(self.assets), T), 0.0,
                                              figures.discharge_max.reshape(-1, 1), figures.flow_cost_cny,
                                              labels=Labels.of(names.discharge, self.ids, lp.steps))
        self.level = lp.builder.variables(f"{names.prefix}_{names.level}", (len(self.assets), T + 1), level_lower,
                                          level_upper, labels=Labels.of(names.level, self.ids, lp.states))

    def rows(self, lp: Assembly) -> None:
        """The level's dynamics (:class:`StorageFigures`)."""
        if not self.assets:
            return
        T, dt, figures = lp.step_count, lp.step_h, self.figure

        def per_step(figure: np.ndarray) -> np.ndarray:
            """A figure per asset, repeated for each of its rows (asset-major, as the columns are laid out)."""
            return np.repeat(figure.reshape(-1, 1), T, axis=1).reshape(-1)

        lp.builder.rows_of(len(self.assets) * T, 0.0, 0.0,
                           [(self.level[:, 1:].reshape(-1), 1.0),
                            (self.level[:, :-1].reshape(-1), -per_step(figures.keep(dt))),
                            (self.charge.reshape(-1), -per_step(figures.charge_efficiency) * dt),
                            (self.discharge.reshape(-1), per_step(1.0 / figures.discharge_efficiency) * dt)],
                           labels=Labels.of(self.names.balance, self.ids, lp.steps))

    def terminal(self, lp: Assembly) -> None:
        """level[T] + short >= target (the level at the start unless the options name one), at most the level's
        maximum; short costs :meth:`terminal_penalty`, unless the options set one."""
        soft_terminal_target(lp, self, self.names.prefix, self.names.unit, self.terminal_penalty(lp),
                             lp.options.terminal_stored, self.level, self.figure.start, self.figure.level_max)

    def exclusive_pairs(self, lp: Assembly) -> None:
        """u = 1 allows charging, u = 0 discharging, on the steps flagged for storage."""
        charging_apart_from_discharging(lp, self, self.names.prefix, self.charge, self.discharge,
                                        self.figure.charge_max.reshape(-1, 1), self.figure.discharge_max.reshape(-1, 1))

    def complete(self, x: NDArray[np.float64], step_h: float) -> None:
        """The levels the charge and discharge lead to."""
        figures = self.figure
        levels_from_flows(x, self.level, figures.start, figures.keep(step_h), figures.charge_efficiency, self.charge,
                          self.discharge, figures.discharge_efficiency, step_h)

    def simultaneous(self, x: NDArray[np.float64], steps: int) -> BinarySteps:
        none = np.zeros(steps, bool)
        return BinarySteps(none, flowing_together(x[self.charge], x[self.discharge], steps), none, ())

    def table_columns(self, x: NDArray[np.float64], steps: int) -> dict[str, NDArray[np.float64]]:
        """Per asset: charge and discharge, the block's own columns, the level at each step's start and its
        percentage of the capacity (:data:`STORED_PCT_COLUMN`)."""
        charge, discharge, level = x[self.charge], x[self.discharge], x[self.level]
        columns: dict[str, NDArray[np.float64]] = {}
        for k, asset in enumerate(self.assets):
            columns[f"{asset.id}.{self.names.charge}"] = charge[k]
            columns[f"{asset.id}.{self.names.discharge}"] = discharge[k]
            columns.update(self.extra_table_columns(charge, discharge, k))
            columns[f"{asset.id}.{self.names.level}"] = level[k, :steps]
            columns[f"{asset.id}.{STORED_PCT_COLUMN}"] = 100.0 * level[k, :steps] / self.figure.capacity[k]
        return columns


def soft_terminal_target(lp: Assembly, block: KindBlock, name: str, unit: str, penalty_per_unit: float,
                         targets: Mapping[str, float] | None, level: NDArray[np.intp], start: np.ndarray,
                         level_max: np.ndarray) -> None:
    """level[T] + short >= target, per asset: its entry in ``targets`` (by asset id), else its level at the start,
    at most ``level_max``; ``short`` (columns ``<name>_terminal_short_<unit>``) costs ``penalty_per_unit`` CNY per
    unit short. ``level``: the block's level columns, one row per asset, t = 0..T."""
    short = lp.builder.variables(f"{name}_terminal_short_{unit}", (len(block.assets),), 0.0, np.inf,
                                 penalty_per_unit, labels=Labels.of(f"terminal_short_{unit}", block.ids))
    if not block.assets:
        return
    wanted = targets or {}
    target = np.array([wanted.get(asset.id, level0) for asset, level0 in zip(block.assets, start)])
    lp.builder.rows_of(len(block.assets), np.minimum(target, level_max), np.inf,
                       [(level[:, lp.step_count], 1.0), (short, 1.0)], group=f"{name}_terminal",
                       labels=Labels.of("terminal", block.ids))
    lp.builder.soft_rows[f"{name}_terminal"] = short


def charging_apart_from_discharging(lp: Assembly, block: KindBlock, name: str, charge: NDArray[np.intp],
                                    discharge: NDArray[np.intp], charge_max: np.ndarray,
                                    discharge_max: np.ndarray) -> None:
    """A binary u per asset and step flagged for storage (columns ``u_<name>_charge``): u = 1 allows charging,
    u = 0 discharging. ``charge``, ``discharge``: the flow columns (asset x step); ``charge_max``,
    ``discharge_max``: their upper bounds (asset x 1)."""
    storage = lp.binary_steps.storage
    n_storage = int(storage.sum())
    if charge.size and n_storage:
        exclusive_pair(lp.builder, f"u_{name}_charge", charge[:, storage].reshape(-1),
                       discharge[:, storage].reshape(-1), np.repeat(charge_max, n_storage, axis=1).reshape(-1),
                       np.repeat(discharge_max, n_storage, axis=1).reshape(-1),
                       Labels.of("u_charge", block.ids, np.flatnonzero(storage)))


def levels_from_flows(x: NDArray[np.float64], level: NDArray[np.intp], start: np.ndarray, keep: np.ndarray | float,
                      gain: np.ndarray | float, charge: NDArray[np.intp], discharge: NDArray[np.intp],
                      drain: np.ndarray | float, step_h: float) -> None:
    """Set the ``level`` columns of ``x`` (asset x t = 0..T) from the flows already in it, step by step as the
    block's dynamics rows have it: level[0] = start, level[t+1] = keep level[t] + (gain charge[t] -
    discharge[t] / drain) dt. ``keep``: the level kept over a step (1 less the standing loss), ``gain``: the
    share of the charge stored, ``drain``: the share of the level drawn that is discharged, per asset."""
    x[level[:, 0]] = start
    charged, discharged = x[charge], x[discharge]
    for t in range(charged.shape[1]):
        x[level[:, t + 1]] = keep * x[level[:, t]] + (gain * charged[:, t] - discharged[:, t] / drain) * step_h
