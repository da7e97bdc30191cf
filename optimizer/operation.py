"""Live operation: the controller of a running park on the twin's clock, and what traders see of it.

:class:`LiveOperation` runs :class:`optimizer.controller.Controller` in a
background thread, one control step at every 15-minute step of the twin's clock
(the simulation clock under ``parktwin run``), and serves the dashboard's plan
provider (``dashboard.providers.PlanProvider``, structurally: the optimizer does
not import the dashboard): the plan in force, the plan a trader approved, every
re-plan and every dispatch round with its writes, approval and suspension.

Approval (``--approval``):

- ``auto``: authority is standing; every step is dispatched.
- ``manual``: nothing is written until a trader approves a plan; from then until
  the end of that plan's horizon the controller re-plans and dispatches every
  step. Suspending ends the authority at once and releases every setpoint written.
  When the approved plan runs out, the setpoints are released too and an alarm
  is raised (``on_alarm``) until a trader approves again.

Each step is prepared (state, forecasts, re-plan) shortly before its boundary
and its setpoints sent so that they have reached the devices when it begins
(:class:`StepLeads`): a step dispatched only after its own solve would leave the
previous step's charging and discharging in force for the first part of it,
and at a demand peak that part is billed.

The plan for the next operating day is made for review every day at the park's
review time (local, default 14:00): a 24-hour plan from the next local midnight,
starting from the state the plan in force expects then. Approving it extends the
authority to its end.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime, time, timedelta
from typing import Any

import numpy as np
import pandas as pd

from optimizer.baselines import BASELINES
from optimizer.controller import Authority, Controller, ControlStep, PlanInForce, PreparedStep
from optimizer.inputs import InitialState
from optimizer.park_inputs import PLAN_STEP
from optimizer.plan import DispatchPlan, make_plan, stored_columns
from twin.history import StorageUnavailable

log = logging.getLogger(__name__)

JsonObject = dict[str, Any]
"""A JSON object as the dashboard's plan provider serves it (README "Dashboard and JSON API"): a plan
record, a re-plan, a dispatch round, the approval state."""

AlarmHook = Callable[[str, str | None], None]
"""(alarm id, message or None when it clears): raised while no plan with authority covers the step."""


_STORE_UNAVAILABLE = "history store unavailable"
"""How :attr:`LiveOperation._error` begins while steps fail for want of the history store."""


class StepLeads:
    """How long before a step's start a live run prepares it and sends its setpoints, in twin seconds,
    learned from the durations of recent rounds (twin time: under a simulation clock a wall-clock second
    is ``speed`` twin seconds).

    The write round starts early by the ``QUANTILE`` of recent write rounds, so that nine in ten have
    reached the devices when the step begins (a device applies a setpoint as it gets it; the simulated
    field from its next simulation step). Preparation starts earlier again by twice the ``QUANTILE`` of
    recent preparations (room for a slow re-plan on a busy machine). Both are capped: storage brought
    forward a long way is a guess, and setpoints sent long before their step take over the step before.
    """

    QUANTILE = 0.9
    KEPT = 32
    MAX_DISPATCH_S = PLAN_STEP.total_seconds() / 5
    MAX_PREPARE_S = PLAN_STEP.total_seconds() / 3

    def __init__(self) -> None:
        self._prepare_s: deque[float] = deque(maxlen=self.KEPT)
        self._dispatch_s: deque[float] = deque(maxlen=self.KEPT)

    def took(self, prepare_s: float | None = None, dispatch_s: float | None = None) -> None:
        """Record how long a preparation or a write round took, twin seconds."""
        if prepare_s is not None:
            self._prepare_s.append(prepare_s)
        if dispatch_s is not None:
            self._dispatch_s.append(dispatch_s)

    @property
    def dispatch_s(self) -> float:
        """Twin seconds before a step's start its write round begins."""
        return min(self.MAX_DISPATCH_S, self._quantile(self._dispatch_s))

    @property
    def prepare_s(self) -> float:
        """Twin seconds before a step's start its preparation begins."""
        return min(self.MAX_PREPARE_S, self.dispatch_s + 2 * self._quantile(self._prepare_s))

    def _quantile(self, durations: deque[float]) -> float:
        return float(np.quantile(np.fromiter(durations, float), self.QUANTILE)) if durations else 0.0


class LiveOperation:
    """The controller of a running park in a background thread (module docstring).

    ``now_utc``: the twin's clock; ``speed``: its twin seconds per wall-clock second (1 on the wall clock).
    ``wait_s``: the longest the thread sleeps (wall clock) between looks at the twin's clock.
    ``review_time``: local time the next day's plan is made for review.
    """

    ROUNDS_KEPT = 2_000
    REPLANS_KEPT = 500
    APPROVABLE_PLANS = 4
    """The last plans in force a trader may approve (besides the plan for review): a page shows the plan
    of a few steps ago when the park re-plans every step of a fast simulation clock."""

    def __init__(self, controller: Controller, now_utc: Callable[[], datetime], currency: str,
                 on_alarm: AlarmHook | None = None, review_time: time = time(14, 0), wait_s: float = 0.05,
                 speed: float = 1.0):
        self.controller, self.now_utc, self.currency = controller, now_utc, currency
        self.on_alarm, self.review_time, self.wait_s, self.speed = on_alarm, review_time, wait_s, speed
        self.leads = StepLeads()
        self.controller.on_release = self._released
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._rounds: deque[JsonObject] = deque(maxlen=self.ROUNDS_KEPT)
        self._replans: deque[JsonObject] = deque(maxlen=self.REPLANS_KEPT)
        self._records: dict[str, JsonObject] = {}  # plan records by id: the one in force, the approved, the review
        self._approved_id: str | None = None
        self._review: tuple[JsonObject, DispatchPlan] | None = None
        self._review_day: object = None
        self._error: str | None = None
        self._replan_asked = False
        self._alarm: str | None = None

    @property
    def authority(self) -> Authority:
        return self.controller.authority

    # ------------------------------------------------------------------ running

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="controller", daemon=True)
        self._thread.start()

    def stop(self, reason: str = "ParkTwin is stopping") -> dict[str, str]:
        """Stop stepping and release every setpoint written; the release results."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        with self._lock:
            return self.controller.release(reason)

    def _run(self) -> None:
        """The step in force at once, then each next step prepared and dispatched ahead of its boundary
        (:class:`StepLeads`); a run that falls behind a boundary steps at once at the step in force."""
        boundary = self._step_in_force()
        prepared: PreparedStep | None = None
        tried = False  # a preparation for this boundary failed: the step is taken at the boundary instead
        while not self._stop.is_set():
            now = pd.Timestamp(self.now_utc())
            if self._replan_asked or (prepared is None and now >= boundary):
                boundary, prepared, tried = self._step_in_force(), None, False
                continue
            if prepared is None:
                due = boundary if tried else boundary - pd.Timedelta(seconds=self.leads.prepare_s)
                if now >= due:
                    prepared, tried = self._prepare(boundary.to_pydatetime()), True
                    continue
            else:
                due = boundary - pd.Timedelta(seconds=self.leads.dispatch_s)
                if now >= due:
                    self._dispatch(prepared)
                    boundary, prepared, tried = boundary + PLAN_STEP, None, False
                    continue
            self._stop.wait(min(self.wait_s, (due - now).total_seconds() / self.speed))

    def _step_in_force(self) -> pd.Timestamp:
        """Step now; the start of the step after the one stepped (when the step ran on into it, the loop
        steps again at once rather than skip it)."""
        stepped = pd.Timestamp(self.now_utc()).floor(PLAN_STEP)
        self.step_now()
        return stepped + PLAN_STEP

    def step_now(self) -> ControlStep | None:
        """One control step now (the thread calls this at start and when asked to re-plan; tests and scripts
        may too)."""
        with self._lock:
            if self._replan_asked:
                self.controller.current = None  # a re-plan is due when no plan is in force
                self._replan_asked = False
            prepared = self._prepare(None)
            return self._dispatch(prepared) if prepared is not None else None

    def _prepare(self, at_utc: datetime | None) -> PreparedStep | None:
        with self._lock:
            started = self.now_utc()
            try:
                prepared = self.controller.prepare(at_utc)
            except StorageUnavailable as exc:  # the run logs the outage; one line here, not one per step
                if self._error is None or not self._error.startswith(_STORE_UNAVAILABLE):
                    log.warning("control steps skipped while the history store is unavailable (%s)", exc)
                self._error = f"{_STORE_UNAVAILABLE}: {exc}"
                return None
            except Exception as exc:  # a failing step must not stop the park's operation; the page shows it
                log.exception("preparing the control step failed")
                self._error = f"{type(exc).__name__}: {exc}"
                return None
            self.leads.took(prepare_s=(self.now_utc() - started).total_seconds())
            current = self.controller.current
            if prepared.replanned and current is not None:
                self._recorded(current)
                self._replans.append({"id": current.id, "made_utc": current.made_utc.isoformat(),
                                      "status": current.plan.status if current.plan else None,
                                      "total_cny": current.plan.costs.total_cny if current.plan else None})
            return prepared

    def _dispatch(self, prepared: PreparedStep) -> ControlStep | None:
        with self._lock:
            started = self.now_utc()
            try:
                record = self.controller.dispatch(prepared)
                if self._error is not None and self._error.startswith(_STORE_UNAVAILABLE):
                    log.warning("control steps go on: the history store is back")
                self._error = None
            except Exception as exc:
                log.exception("dispatching the control step failed")
                self._error = f"{type(exc).__name__}: {exc}"
                return None
            if record.results:
                self.leads.took(dispatch_s=(self.now_utc() - started).total_seconds())
            self._append_round(record)
            self._alarm_state(record)
            self._maybe_review(record.ts_utc)
            return record

    def _append_round(self, record: ControlStep) -> None:
        self._rounds.append({"ts_utc": record.ts_utc.isoformat(), "plan_id": record.plan_id,
                             "replanned": record.replanned, "released": record.released,
                             "margin_kw": record.margin_kw, "deviation": record.deviation,
                             "writes": [{"point_id": p, "value": record.setpoints.get(p), "result": r}
                                        for p, r in record.results.items()]})

    def _alarm_state(self, record: ControlStep) -> None:
        """Raise the plan-expiry alarm while a step that had authority has no plan to write, clear it after."""
        now = record.ts_utc
        if self.authority.expired(now) or (record.plan_id is None and self.authority.allows(now)):
            message = "the approved plan has expired: setpoints released to the plant schedule" \
                if self.authority.expired(now) else "no plan covers this step: setpoints released to the plant schedule"
            if self._alarm != message:
                self._alarm = message
                log.warning("dispatch: %s", message)
                if self.on_alarm is not None:
                    self.on_alarm("plan_expired", message)
        elif self._alarm is not None:
            self._alarm = None
            if self.on_alarm is not None:
                self.on_alarm("plan_expired", None)

    def _released(self, reason: str, results: dict[str, str]) -> None:
        not_released = {p: r for p, r in results.items() if r != "ok"}
        if not_released:
            log.warning("setpoints released (%s); not released: %s", reason, not_released)

    # ------------------------------------------------------------------ the plan for review

    def _maybe_review(self, now_utc: datetime) -> None:
        local = pd.Timestamp(now_utc).tz_convert(self.controller.park.site.timezone)
        if local.time() < self.review_time or self._review_day == local.date():
            return
        self._review_day = local.date()
        start = (local.normalize() + pd.Timedelta(days=1)).tz_convert("UTC")
        try:
            self._review = self._day_ahead(start)
        except StorageUnavailable as exc:
            log.warning("the plan for review failed: %s", exc)
            self._error = f"{_STORE_UNAVAILABLE}: {exc}"
        except Exception as exc:
            log.exception("the plan for review failed")
            self._error = f"plan for review: {type(exc).__name__}: {exc}"

    def _day_ahead(self, start: pd.Timestamp) -> tuple[JsonObject, DispatchPlan]:
        """A 24-hour plan from ``start`` for review, from the storage the plan in force expects there."""
        controller = self.controller
        state = controller.field.read_state()
        stored = dict(state.stored)
        current = controller.current
        if current is not None and current.plan is not None:
            row = current.row(start)
            if row is not None:
                table = current.plan.table.iloc[row]
                columns = stored_columns(controller.park)
                stored = {asset: float(table[columns[asset]]) for asset in stored
                          if asset in columns and columns[asset] in table}
        horizon = controller.horizon_inputs(start, int(timedelta(days=1) / PLAN_STEP))
        initial = InitialState(stored, controller.planning_peak_kw(state))
        plan = make_plan(horizon, initial, controller.options, controller.context, solver=controller.solver)
        plan_id = f"{start:%Y%m%dT%H%MZ}-review"
        record = self._plan_record(plan_id, state.now_utc, horizon.index, plan)
        self._records[plan_id] = record
        log.info("plan %s for review made (%s), cost %.0f %s", plan_id, plan.status, plan.costs.total_cny,
                 self.currency)
        return record, plan

    # ------------------------------------------------------------------ records

    def _recorded(self, in_force: PlanInForce) -> JsonObject:
        if in_force.plan is None:
            raise ValueError(f"plan {in_force.id} has no dispatch plan to record (only the optimal strategy's has)")
        record = self._plan_record(in_force.id, in_force.made_utc, in_force.index, in_force.plan)
        self._records[in_force.id] = record
        recent = {r["id"] for r in list(self._replans)[-self.APPROVABLE_PLANS:]}
        keep = recent | {in_force.id, self._approved_id} | ({self._review[0]["id"]} if self._review else set())
        for plan_id in [p for p in self._records if p not in keep]:
            del self._records[plan_id]
        return record

    def _plan_record(self, plan_id: str, made_utc: datetime, index: pd.DatetimeIndex, plan: DispatchPlan) -> JsonObject:
        record: JsonObject = json.loads(plan.to_json())
        record.update({"id": plan_id, "made_utc": made_utc.isoformat(), "start_utc": index[0].isoformat(),
                       "end_utc": (index[-1] + PLAN_STEP).isoformat(), "currency": self.currency,
                       "baseline_names": list(BASELINES)})
        return record

    def _approval(self) -> JsonObject:
        authority, now = self.authority, self.now_utc()
        last = self._rounds[-1] if self._rounds else None
        return {**{k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in asdict(authority).items()},
                "approved_plan_id": self._approved_id, "active": authority.allows(now),
                "expired": authority.expired(now), "alarm": self._alarm,
                "dispatched_step_utc": last["ts_utc"] if last and last["writes"] and not last["released"] else None,
                "writes": last["writes"] if last else []}

    # ------------------------------------------------------------------ plan provider

    def plan(self) -> JsonObject | None:
        """The plan in force (README "Dashboard and JSON API", /api/plan) with the approval state, the
        approved plan's id, the plan for review's id, the recent re-plans and dispatch rounds; None before
        the first plan."""
        with self._lock:
            current = self.controller.current
            if current is None or current.id not in self._records:
                return None
            return {**self._records[current.id], "approval": self._approval(), "solving": False,
                    "error": self._error, "review_plan_id": self._review[0]["id"] if self._review else None,
                    "replans": list(self._replans)[-96:], "rounds": list(self._rounds)[-96:],
                    "tracking_rms": self.tracking_rms()}

    def tracking_rms(self) -> dict[str, float]:
        """Root mean square of measured minus planned storage over the rounds kept, per plan column
        (``<battery>.stored_kwh`` kWh, ``<tank>.inventory_kwhth`` kWhth): how closely the park follows
        its plans."""
        with self._lock:
            squares: dict[str, list[float]] = {}
            for round_ in self._rounds:
                for column, value in round_["deviation"].items():
                    squares.setdefault(column, []).append(value * value)
        return {column: (sum(values) / len(values)) ** 0.5 for column, values in squares.items()}

    def plan_record(self, plan_id: str) -> JsonObject | None:
        """A plan kept by id: the one in force, the approved one, the plan for review."""
        with self._lock:
            return self._records.get(plan_id)

    def rounds(self, since_utc: datetime | None = None) -> list[JsonObject]:
        """Dispatch rounds kept (the last :data:`ROUNDS_KEPT`), oldest first, from ``since_utc`` on."""
        with self._lock:
            rounds = list(self._rounds)
        if since_utc is None:
            return rounds
        since = pd.Timestamp(since_utc).isoformat()
        return [r for r in rounds if r["ts_utc"] >= since]

    def state(self) -> JsonObject:
        with self._lock:
            return {"solving": self.controller.current is None and self._error is None, "error": self._error}

    def csv(self) -> str | None:
        with self._lock:
            current = self.controller.current
            if current is None or current.plan is None:
                return None
            return current.plan.table.to_csv(index=False, float_format="%.6g")

    def approve(self, plan_id: str, who: str) -> JsonObject:
        """``who`` approves plan ``plan_id`` (one of the last :data:`APPROVABLE_PLANS` plans in force, or the
        plan for review): in manual mode the controller dispatches every step until that plan's end. Raises
        ValueError with the reason."""
        with self._lock:
            record = self._records.get(plan_id)
            current = self.controller.current
            if current is None:
                raise ValueError("no dispatch plan has been made yet")
            if record is None:
                raise ValueError(f"plan {plan_id} has been replaced by plan {current.id}; review that one")
            now = self.now_utc()
            end = datetime.fromisoformat(record["end_utc"])
            if end <= now:
                raise ValueError(f"plan {plan_id} ended at {record['end_utc']}; approve the plan in force")
            authority = self.authority
            if (authority.approved_by is not None and authority.approved_at_utc is not None
                    and self._approved_id == plan_id and authority.suspended_by is None):
                raise ValueError(f"plan {plan_id} was approved by {authority.approved_by} at "
                                 f"{authority.approved_at_utc.isoformat()}")
            authority.approved_by, authority.approved_at_utc = who, now
            authority.until_utc = max(end, authority.until_utc) if authority.until_utc and \
                authority.suspended_by is None and authority.allows(now) else end
            authority.suspended_by = authority.suspended_at_utc = None
            self._approved_id = plan_id
            self.controller.who = f"controller:{who}"  # the write audit names whose approval a write rests on
            log.info("plan %s approved by %s until %s", plan_id, who, authority.until_utc.isoformat())
        self.step_now()  # the step in force is dispatched at once
        with self._lock:
            return self._approval()

    def suspend(self, who: str) -> JsonObject:
        """End the authority now and release every setpoint written; the approval state."""
        with self._lock:
            authority = self.authority
            authority.suspended_by, authority.suspended_at_utc = who, self.now_utc()
            log.info("dispatch suspended by %s", who)
            reason = f"suspended by {who}"
            results = self.controller.release(reason)
            # a round of its own, so the release shows beside the writes it undoes
            self._append_round(ControlStep(pd.Timestamp(authority.suspended_at_utc).floor(PLAN_STEP).to_pydatetime(),
                                           False, None, {}, results, self.controller.margin_in_use_kw, reason))
            return self._approval()

    def replan(self) -> bool:
        """Re-plan at once (on the controller's thread); False when a re-plan is already asked for."""
        with self._lock:
            if self._replan_asked:
                return False
            self._replan_asked = True
            return True
