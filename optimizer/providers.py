"""The day-ahead plan of a running park, as the dashboard's plan provider, with its approval and dispatch.

:class:`DayAheadPlanProvider` plans the next 24 hours (96 steps of 15 min,
from the next quarter hour of the twin's clock) the way ``parktwin plan``
does: loads from a hold-storage simulator run (``optimizer.park_inputs``),
tariff prices, a MIP time limit; storage starts where the live state says it
stands. Plans are solved in a background thread, never on a request.

Approval: in ``manual`` mode nothing is dispatched until a user approves the
current plan; in ``auto`` mode each new plan is dispatched as soon as it is
made. Dispatch hands the setpoints of the step in force now (the first step of
a fresh plan; ``optimizer.setpoints.table_setpoints``) to ``write(point, value, who)``,
the protocol write path, with who ``plan:<approver>`` (``plan:auto``). Who
approved, when (the twin's clock, UTC), and every write's result are kept in memory
with the plan (a new plan starts unapproved) and logged; they also reach the
history's write audit log through the write path.

The provider follows the shape ``dashboard.providers.PlanProvider`` documents
(structurally: the optimizer does not import the dashboard).
"""

from __future__ import annotations

import json
import logging
import threading
from datetime import datetime, timedelta
from typing import Callable, Literal

import pandas as pd

from energy.tariff import Tariff
from optimizer.baselines import BASELINES
from optimizer.inputs import InitialState
from optimizer.plan import plan_context, plan_options
from optimizer.setpoints import table_setpoints
from optimizer.park_inputs import PLAN_STEP, park_horizon_inputs, simulated_loads
from optimizer.plan import DispatchPlan, make_plan
from twin.assets import Battery, IceTank
from twin.live import LiveState
from twin.park import Park
from twin.points import point_id
from twin.sim import Environment

log = logging.getLogger(__name__)

Approval = Literal["manual", "auto"]
HORIZON = timedelta(days=1)
PointWrite = Callable[[str, float, str], str]
"""(point id, value, who) -> the write's result: "ok", or "refused: ..." / "failed: ..."."""


class DayAheadPlanProvider:
    """The park's current day-ahead plan; re-planned on demand; approved and dispatched as above.

    now_utc: the twin's clock (the simulation clock under ``parktwin run``): where the horizon starts,
    which step is in force, and the time plans and approvals are stamped with (so they line up with the
    readings and fault episodes of a simulated park).
    """

    def __init__(self, park: Park, tariff: Tariff, environment: Environment, live: LiveState, write: PointWrite,
                 now_utc: Callable[[], datetime], approval: Approval = "manual", mip_time_limit_s: float = 10.0):
        if approval not in ("manual", "auto"):
            raise ValueError(f"approval must be manual or auto, not {approval!r}")
        self.park, self.tariff, self.environment, self.live = park, tariff, environment, live
        self.write, self.now_utc, self.approval = write, now_utc, approval
        self.options = plan_options(tariff, mip_time_limit_s=mip_time_limit_s)
        self.context = plan_context(park, tariff)
        self._lock = threading.Lock()
        self._current: dict | None = None
        self._table: pd.DataFrame | None = None
        self._solving: threading.Thread | None = None
        self._error: str | None = None
        self._made = 0

    # ------------------------------------------------------------------ planning

    def replan(self) -> bool:
        """Start making a new plan in the background; False when one is being made already."""
        with self._lock:
            if self._solving is not None:
                return False
            self._solving = threading.Thread(target=self._make, name="day-ahead-plan", daemon=True)
            self._solving.start()
            return True

    def wait(self, timeout_s: float | None = None) -> None:
        """Block until the plan being made (if any) is ready; for tests and scripts."""
        thread = self._solving
        if thread is not None:
            thread.join(timeout_s)

    @property
    def solving(self) -> bool:
        return self._solving is not None

    def _make(self) -> None:
        try:
            asked_at = self.now_utc()
            start = pd.Timestamp(asked_at).ceil(PLAN_STEP).to_pydatetime()
            loads = simulated_loads(self.park, self.environment, start, start + HORIZON)
            horizon = park_horizon_inputs(loads, self.tariff.energy_price_cny_per_kwh(loads.index),
                                          self.tariff.export_price_cny_per_kwh)
            result = make_plan(horizon, self._initial_state(), self.options, self.context)
            with self._lock:
                self._made += 1
                self._current, self._table = self._record(result, asked_at, start), result.table
                self._error = None
            log.info("day-ahead plan %s made (%s), cost %.0f %s", self._current["id"], result.status,
                     result.costs.total_cny, self.tariff.currency)
            if self.approval == "auto":
                self._dispatch("auto")
        except Exception as exc:  # a failed plan must not take the running park down; the page shows it
            log.exception("day-ahead plan failed")
            with self._lock:
                self._error = f"{type(exc).__name__}: {exc}"
        finally:
            with self._lock:
                self._solving = None

    def _initial_state(self) -> InitialState:
        """Battery stored energy and ice inventory from live state (good readings), else the model's default."""
        stored, inventory = {}, {}
        for building, asset in self.park.iter_assets():
            if isinstance(asset, Battery):
                value = self.live.value(point_id(building.id, asset.id, "stored_energy_kwh"))
                if value is not None:
                    stored[asset.id] = value
            elif isinstance(asset, IceTank):
                value = self.live.value(point_id(building.id, asset.id, "inventory_kwhth"))
                if value is not None:
                    inventory[asset.id] = value
        return InitialState(stored, inventory)

    def _record(self, result: DispatchPlan, asked_at: datetime, start: datetime) -> dict:
        record = json.loads(result.to_json())
        record.update({
            "id": f"{start:%Y%m%dT%H%MZ}-{self._made}",
            "created_utc": asked_at.isoformat(),  # when planning began: the state it starts from
            "start_utc": start.isoformat(), "end_utc": (start + HORIZON).isoformat(),
            "currency": self.tariff.currency, "baseline_names": list(BASELINES),
            "approval": {"mode": self.approval, "approved_by": None, "approved_at": None,
                         "dispatched_step_utc": None, "writes": []},
        })
        return record

    # ------------------------------------------------------------------ reading

    def plan(self) -> dict | None:
        """The current plan (see README "Dashboard and JSON API", /api/plan), None before the first is made.
        ``solving`` says a new one is being made, ``error`` why the last attempt failed."""
        with self._lock:
            if self._current is None:
                return None
            return {**self._current, "approval": dict(self._current["approval"]), "solving": self.solving,
                    "error": self._error}

    def state(self) -> dict:
        """Whether a plan is being made and why the last attempt failed (for pages before the first plan)."""
        with self._lock:
            return {"solving": self.solving, "error": self._error}

    def csv(self) -> str | None:
        """The current plan's per-step table as CSV (columns as ``parktwin plan --out``)."""
        with self._lock:
            return None if self._table is None else self._table.to_csv(index=False, float_format="%.6g")

    # ------------------------------------------------------------------ approval and dispatch

    def approve(self, plan_id: str, who: str) -> dict:
        """Record ``who`` approving the plan ``plan_id`` and dispatch it; the approval record.

        Raises ValueError (with the reason) when there is no plan, another plan
        has replaced it, or it is approved already.
        """
        with self._lock:
            current = self._current
            if current is None:
                raise ValueError("no dispatch plan has been made yet")
            if current["id"] != plan_id:
                raise ValueError(f"plan {plan_id} has been replaced by plan {current['id']}; review that one")
            if current["approval"]["approved_by"] is not None:
                raise ValueError(f"plan {plan_id} was approved by {current['approval']['approved_by']} "
                                 f"at {current['approval']['approved_at']}")
            current["approval"] = {**current["approval"], "approved_by": who,
                                   "approved_at": self.now_utc().isoformat()}
        log.info("plan %s approved by %s", plan_id, who)
        if self.approval == "manual":
            self._dispatch(who)
        return self.plan()["approval"]

    def _dispatch(self, approver: str) -> None:
        """Hand the setpoints of the step in force now to the write path, recording each write's result."""
        with self._lock:
            table, current = self._table, self._current
        now = pd.Timestamp(self.now_utc())
        step = max(0, int(table["ts_utc"].searchsorted(now, side="right")) - 1)
        row = table.iloc[step]
        writes = []
        for point, value in table_setpoints(self.park, table.iloc[step:step + 1])[0].items():
            try:
                result = self.write(point, value, f"plan:{approver}")
            except Exception as exc:  # one failing device does not stop the other setpoints
                result = f"failed: {exc}"
            writes.append({"point_id": point, "value": value, "result": result})
        failed = [w for w in writes if w["result"] != "ok"]
        log.info("plan %s step %s dispatched for %s: %d setpoints, %d not ok", current["id"], row["ts_utc"],
                 approver, len(writes), len(failed))
        with self._lock:
            if self._current is current:
                current["approval"] = {**current["approval"], "dispatched_step_utc": str(row["ts_utc"]),
                                       "writes": writes}
