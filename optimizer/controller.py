"""The rolling-horizon controller: the one closed loop of ``parktwin run`` and ``parktwin backtest``.

At every control step (:data:`optimizer.park_inputs.PLAN_STEP`, 15 minutes) the
controller reads the field's state, re-plans when one is due (every
``replan_min`` minutes, or when no plan covers the step) over ``horizon_h``
hours from the forecaster's loads and PV and the price source's prices, and
writes the setpoints of the step in force (optimizer.setpoints.table_setpoints)
through the field, as DOMAIN.md's "Operating a park" describes model-predictive
control. It depends only on the two ports of :mod:`optimizer.ports`.

Writes need authority (:class:`Authority`): standing in backtests and in
``--approval auto``, a trader's approval up to the end of the approved plan in
``--approval manual``. Without it the controller still plans (so traders see a
fresh plan) but writes nothing, and when authority ends (suspended, or the
approved plan expired) every setpoint it wrote is released to the plant's own
schedule at once.

Demand charge: plans fill import up to the month's billed peak, and realized
import scatters around the plan (forecast error, meter noise, unforecast EV
sessions), so each scatter above the plan would set a new billed peak. The
controller therefore plans against the billed peak less a margin learned from
its own record (:class:`ImportMargin`: a high quantile of realized minus
planned import over the last week of steps near the peak).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import datetime, timedelta
from typing import Literal, cast

import numpy as np
import pandas as pd

from energy.tariff import Tariff
from optimizer.inputs import HorizonInputs, InitialState
from optimizer.model import PlanOptions
from optimizer.park_inputs import PLAN_STEP
from optimizer.plan import DispatchPlan, PlanContext, baseline_columns, make_plan, stored_columns
from optimizer.ports import Field, Forecaster
from optimizer.setpoints import table_setpoints
from optimizer.solve import SolverName
from optimizer.warm_start import WarmStart
from twin.field import FieldState
from twin.park import Park

log = logging.getLogger(__name__)

ApprovalMode = Literal["manual", "auto"]
OPTIMAL = "optimal"
"""The strategy that plans with the dispatch MILP (the others are optimizer.baselines.BASELINES)."""


class TariffPrices:
    """Energy and export prices at :data:`PLAN_STEP` from a tariff, worked out a week at a time and kept
    (a long run asks for overlapping windows every step)."""

    CHUNK = pd.Timedelta(days=7)

    def __init__(self, tariff: Tariff):
        self.tariff = tariff
        self._frame: pd.DataFrame | None = None

    def window(self, start_utc: pd.Timestamp, steps: int) -> pd.DataFrame:
        """``price_cny_per_kwh`` and ``export_price_cny_per_kwh`` for ``steps`` steps from ``start_utc``."""
        end = start_utc + steps * PLAN_STEP
        frame = self._frame
        if frame is None or start_utc < frame.index[0] or end > frame.index[-1] + PLAN_STEP:
            index = pd.date_range(start_utc, max(end, start_utc + self.CHUNK), freq=PLAN_STEP, inclusive="left")
            frame = pd.DataFrame({"price_cny_per_kwh": self.tariff.energy_price_cny_per_kwh(index).to_numpy(float),
                                  "export_price_cny_per_kwh": self.tariff.export_price_cny_per_kwh}, index=index)
            self._frame = frame
        position = cast(int, frame.index.get_loc(start_utc))  # the index is unique
        return frame.iloc[position:position + steps]


class ImportMargin:
    """Margin for forecast and model error on the demand peak, kW: the ``quantile`` of (realized - planned)
    mean import per control step over the last ``window_steps`` steps, taken over the steps whose planned
    import was near the level asked about (at least ``NEAR_SHARE`` of it: the chillers' staging and
    part-load efficiency make errors grow with load, and only steps near the billed peak can set a new
    one), or over every step while fewer than ``min_steps`` were near it; 0 until ``min_steps`` are known."""

    NEAR_SHARE = 0.9

    def __init__(self, quantile: float = 0.99, window_steps: int = 672, min_steps: int = 16):
        self.quantile, self.min_steps = quantile, min_steps
        self._planned_kw: deque[float] = deque(maxlen=window_steps)
        self._errors_kw: deque[float] = deque(maxlen=window_steps)

    def observe(self, planned_kw: float, realized_kw: float) -> None:
        if np.isfinite(planned_kw) and np.isfinite(realized_kw):
            self._planned_kw.append(planned_kw)
            self._errors_kw.append(realized_kw - planned_kw)

    def margin_kw(self, level_kw: float) -> float:
        """The margin to keep below an import of ``level_kw`` (the month's billed peak)."""
        if len(self._errors_kw) < self.min_steps:
            return 0.0
        errors = np.fromiter(self._errors_kw, float)
        near = np.fromiter(self._planned_kw, float) >= self.NEAR_SHARE * level_kw
        chosen = errors[near] if near.sum() >= self.min_steps else errors
        return max(0.0, float(np.quantile(chosen, self.quantile)))


@dataclass
class Authority:
    """Whether the controller may write now. ``auto``: standing. ``manual``: from a trader's approval
    until ``until_utc`` (the end of the approved plan's horizon); suspending ends it at once."""

    mode: ApprovalMode
    approved_by: str | None = None
    approved_at_utc: datetime | None = None
    until_utc: datetime | None = None
    suspended_by: str | None = None
    suspended_at_utc: datetime | None = None

    def allows(self, now_utc: datetime) -> bool:
        if self.suspended_by is not None:
            return False
        return self.mode == "auto" or (self.until_utc is not None and now_utc < self.until_utc)

    def expired(self, now_utc: datetime) -> bool:
        """A manual approval whose plan has run out (not suspended)."""
        return (self.mode == "manual" and self.suspended_by is None and self.until_utc is not None
                and now_utc >= self.until_utc)


@dataclass(frozen=True)
class PreparedStep:
    """A control step made ready to dispatch: its start, whether it re-planned, and the storage deviation
    from the plan at its start (as :attr:`ControlStep.deviation`)."""

    ts_utc: datetime
    replanned: bool
    deviation: dict[str, float]


@dataclass
class ControlStep:
    """What one control step did. ``plan_id``: the plan in force (None: no plan covers the step);
    ``results``: each write's (or release's) result by point id; ``released``: why setpoints were
    handed back to the plant schedule this step (None: they were not)."""

    ts_utc: datetime
    replanned: bool
    plan_id: str | None
    setpoints: dict[str, float]
    results: dict[str, str]
    margin_kw: float
    released: str | None = None
    deviation: dict[str, float] = dataclass_field(default_factory=dict)
    """Measured minus planned storage at the step's start, by the plan that was in force over the step
    before: ``<battery>.stored_kwh`` (kWh) and ``<tank>.inventory_kwhth`` (kWhth); empty without one."""


@dataclass
class PlanInForce:
    """A plan the controller made: its id, when it was made, its rows' times and the setpoints each row
    asks of the devices, and the grid import it expects per row (kW)."""

    id: str
    made_utc: datetime
    index: pd.DatetimeIndex
    setpoints: list[dict[str, float]]
    import_kw: np.ndarray
    plan: DispatchPlan | None = None
    """The whole plan (optimal strategy only; baselines lay out only the rows they act on)."""

    @property
    def end_utc(self) -> datetime:
        return (self.index[-1] + PLAN_STEP).to_pydatetime()

    def row(self, ts_utc: pd.Timestamp) -> int | None:
        position = int(self.index.searchsorted(ts_utc, side="right")) - 1
        return position if 0 <= position < len(self.setpoints) else None


@dataclass
class Controller:
    """One strategy operating one field (module docstring).

    ``strategy``: "optimal" (the dispatch MILP) or a baseline of optimizer.baselines.BASELINES (its rule
    laid out for the re-plan interval only: rules are causal). ``on_release``: called with the reason
    and the results whenever authority ends and setpoints are released (the runtime raises an alarm).
    """

    park: Park
    field: Field
    forecaster: Forecaster
    prices: TariffPrices
    options: PlanOptions
    context: PlanContext
    authority: Authority = dataclass_field(default_factory=lambda: Authority("auto"))
    strategy: str = OPTIMAL
    replan_min: int = 15
    horizon_h: int = 24
    solver: SolverName = "highs"
    with_baselines: bool = False
    who: str = "controller"
    margin: ImportMargin = dataclass_field(default_factory=ImportMargin)
    on_release: Callable[[str, dict[str, str]], None] | None = None
    plans: list[PlanInForce] = dataclass_field(default_factory=list)
    keep_plans: int | None = None
    """Plans kept in :attr:`plans` (None: all; a long live run keeps the last few)."""

    def __post_init__(self) -> None:
        self.current: PlanInForce | None = None
        self._warm_start = WarmStart()
        self._made = 0
        self._planned_import_kw: dict[pd.Timestamp, float] = {}  # by step start, until the meter reports it
        self._holding_setpoints = False  # setpoints written and not released since
        self.margin_in_use_kw = 0.0

    @property
    def horizon_steps(self) -> int:
        return int(timedelta(hours=self.horizon_h) / PLAN_STEP)

    @property
    def replan_steps(self) -> int:
        return max(1, int(timedelta(minutes=self.replan_min) / PLAN_STEP))

    def step(self) -> ControlStep:
        """One control step at the field's clock (its 15-minute step in force): prepared and dispatched at
        once, as backtests do."""
        return self.dispatch(self.prepare())

    def prepare(self, at_utc: datetime | None = None) -> PreparedStep:
        """Everything of the control step starting at ``at_utc`` (default: the step in force now) but the
        writes: the field's state brought forward to the step's start, the import record, the deviation from
        the plan and a re-plan when due. A live run prepares a step before its boundary, so that its
        setpoints go out at the boundary rather than a solve later (optimizer.operation)."""
        state = self.field.read_state(at_utc)
        now = pd.Timestamp(state.now_utc).floor(PLAN_STEP)
        self._observe_import(state)
        deviation = self._deviation(state, now)
        self.margin_in_use_kw = self.margin.margin_kw(state.month_peak_kw)
        replanned = self._replan_due(now)
        if replanned:
            self.replan(state, now)
        return PreparedStep(now.to_pydatetime(), replanned, deviation)

    def dispatch(self, prepared: PreparedStep) -> ControlStep:
        """Write the setpoints of the prepared step from the plan in force, or release every setpoint
        written when no plan covers the step or the controller has no authority for it."""
        start = pd.Timestamp(prepared.ts_utc)
        current = self.current
        row = current.row(start) if current is not None else None
        if current is None or row is None or not self.authority.allows(prepared.ts_utc):
            reason = "no plan covers this step" if row is None else self._no_authority_reason(prepared.ts_utc)
            released = self.release(reason) if self._holding_setpoints else None
            return ControlStep(prepared.ts_utc, prepared.replanned,
                               current.id if current and row is not None else None, {}, released or {},
                               self.margin_in_use_kw, reason if released is not None else None, prepared.deviation)
        setpoints = current.setpoints[row]
        results = self.field.write_setpoints(setpoints, self.who)
        self._holding_setpoints = True
        self._planned_import_kw[start] = float(current.import_kw[row])
        return ControlStep(prepared.ts_utc, prepared.replanned, current.id, setpoints, results,
                           self.margin_in_use_kw, deviation=prepared.deviation)

    def _deviation(self, state: FieldState, now: pd.Timestamp) -> dict[str, float]:
        """Measured minus planned storage now, by the plan in force (optimal strategy: baselines lay out
        no states)."""
        current = self.current
        row = current.row(now) if current is not None and current.plan is not None else None
        if current is None or current.plan is None or row is None:
            return {}
        planned = current.plan.table.iloc[row]
        columns = stored_columns(self.park)
        return {columns[asset]: level - float(planned[columns[asset]]) for asset, level in state.stored.items()
                if asset in columns and columns[asset] in planned}

    def _observe_import(self, state: FieldState) -> None:
        """Compare the import the meter reports for an interval with what the plan in force then expected
        (a live meter's interval may be reported a poll or two after it ends)."""
        if state.last_interval is None:
            return
        start, realized_kw = state.last_interval
        planned_kw = self._planned_import_kw.pop(pd.Timestamp(start), None)
        if planned_kw is not None:
            self.margin.observe(planned_kw, realized_kw)
        for step in [s for s in self._planned_import_kw if s < start]:  # never reported: a gap in the readings
            del self._planned_import_kw[step]

    def _replan_due(self, now: pd.Timestamp) -> bool:
        current = self.current
        if current is None or current.row(now) is None:
            return True
        return now >= pd.Timestamp(current.made_utc) + timedelta(minutes=self.replan_min)

    def _no_authority_reason(self, now_utc: datetime) -> str:
        if self.authority.suspended_by is not None:
            return f"suspended by {self.authority.suspended_by}"
        if self.authority.expired(now_utc):
            return "the approved plan has expired"
        return "waiting for a trader's approval"

    def replan(self, state: FieldState, now: pd.Timestamp) -> PlanInForce:
        """Make a new plan from ``now`` and put it in force."""
        initial = InitialState(state.stored, self.planning_peak_kw(state))
        if self.strategy == OPTIMAL:
            horizon = self.horizon_inputs(now, self.horizon_steps)
            plan = make_plan(horizon, initial, self.options, self.context, solver=self.solver,
                             with_baselines=self.with_baselines, warm_start=self._warm_start)
            table = plan.table
            in_force = PlanInForce(self._plan_id(now), now.to_pydatetime(), horizon.index,
                                   table_setpoints(self.park, table), table["grid_import_kw"].to_numpy(float), plan)
            if plan.status != "optimal":
                log.warning("plan %s at %s: %s %s", in_force.id, now, plan.status, "; ".join(plan.diagnostic))
        else:
            horizon = self.horizon_inputs(now, self.replan_steps)
            columns = baseline_columns(self.strategy, horizon, initial, self.options, self.context)
            in_force = PlanInForce(self._plan_id(now), now.to_pydatetime(), horizon.index,
                                   table_setpoints(self.park, columns), np.asarray(columns["grid_import_kw"], float))
        self.current = in_force
        self.plans.append(in_force)
        if self.keep_plans is not None and len(self.plans) > self.keep_plans:
            del self.plans[:len(self.plans) - self.keep_plans]
        return in_force

    def planning_peak_kw(self, state: FieldState) -> float:
        """The peak plans keep their import below: the month's billed peak less the learned margin, kW."""
        return max(0.0, state.month_peak_kw - self.margin.margin_kw(state.month_peak_kw))

    def horizon_inputs(self, start: pd.Timestamp, steps: int) -> HorizonInputs:
        """Forecasts and prices for ``steps`` plan steps from ``start``."""
        forecast = self.forecaster.forecast(start.to_pydatetime(), steps, PLAN_STEP)
        prices = self.prices.window(start, steps)
        frame = forecast.assign(price_cny_per_kwh=prices["price_cny_per_kwh"].to_numpy(),
                                export_price_cny_per_kwh=prices["export_price_cny_per_kwh"].to_numpy())
        return HorizonInputs(frame)

    def release(self, reason: str) -> dict[str, str]:
        """Hand every setpoint written back to the plant schedule (logged, and reported to ``on_release``).
        A release that failed (no answer) is tried again at each next step until it is carried out: until
        then the device holds ParkTwin's setpoint, or falls back only at its own fail-safe timeout."""
        results = self.field.release_setpoints(self.who)
        self._holding_setpoints = any(result.startswith("failed") for result in results.values())
        log.info("setpoints released (%s): %d points", reason, len(results))
        if self.on_release is not None:
            self.on_release(reason, results)
        return results

    def _plan_id(self, start: pd.Timestamp) -> str:
        self._made += 1
        return f"{start:%Y%m%dT%H%MZ}-{self._made}"
