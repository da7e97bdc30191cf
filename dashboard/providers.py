"""The seams where capabilities outside the dashboard plug in.

The dashboard reads the twin (park, live state, history) itself. KPIs that
need the energy models, fault episodes, dispatch plans and device poll
statistics come from other rooms; the composition root (``parktwin``)
hands them to :func:`dashboard.app.create_app` as providers. A page or API
endpoint whose provider is missing says so (HTTP 503 in the API) instead of
showing numbers it does not have.

Every provider returns plain JSON-ready data (str, float, int, None, lists and
dicts of them; timestamps as ISO 8601 strings in UTC), so the same value feeds
the page and the API.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from twin.fault_episodes import AlarmFilter
from twin.history import WriteRecord


class KpiProvider(Protocol):
    """The KPI engine over the park's history (``energy.providers.EnergyKpiProvider``): every energy figure
    the pages and the API show comes from it."""

    def energy(self, start: datetime, end: datetime) -> dict:
        """Every energy KPI of [start, end) with its coverage and the energy flows (``energy.kpi.EnergyKpis``
        as JSON, README /api/energy)."""

    def kpis(self, start: datetime, end: datetime) -> dict[str, dict]:
        """Headline KPIs of [start, end) by key (``cost_cny``, ``co2_t``, ``savings_cny``, ``plant_cop``, ...):
        each ``{"label": str, "value": float | None, "unit": str, "coverage": float | None}``."""


class FaultProvider(Protocol):
    """Fault episodes, the alarm console over them (ISA-18.2 lifecycle: acknowledgement, comments, shelving)
    and fault KPIs."""

    def console(self, which: AlarmFilter, offset: int, limit: int) -> dict:
        """``{"faults": [...], "total": int}``: the episodes ``which`` selects, newest first, ``limit`` from
        ``offset`` on, each with id, rule_id, asset_id, point_id, start_utc, end_utc (None while active), priority,
        suppressed_by, evidence, acknowledged_by and acknowledged_utc (None until acknowledged), comments
        ([{who, at_utc, text}]) and shelved_until_utc (None while its alarm is not shelved); total: how many match."""

    def episode(self, episode_id: str) -> dict | None:
        """The episode with this id shaped as :meth:`console` lists it; None when there is none."""

    def acknowledge(self, episode_id: str, who: str) -> dict | None:
        """Record ``who`` acknowledging the episode (active or cleared) now (the first acknowledgement
        stands); the episode afterwards, or None when there is no episode with that id."""

    def comment(self, episode_id: str, who: str, text: str) -> dict | None:
        """Add ``who``'s comment to the episode; the comment ({who, at_utc, text}), None without such an episode.
        Raises ValueError for an empty text."""

    def shelve(self, episode_id: str, who: str, minutes: float, reason: str) -> dict | None:
        """Shelve the episode's alarm (rule, asset, point) for ``minutes`` from now; the shelving ({rule_id,
        asset_id, point_id, shelved_by, shelved_utc, until_utc, reason}), None without such an episode. Raises
        ValueError for an empty reason."""

    def shelves(self) -> list[dict]:
        """The shelvings in force now, shaped as :meth:`shelve` returns them."""

    def alarm_count(self) -> int:
        """Alarms needing an operator now: active, unacknowledged, not shelved, not suppressed."""

    def rule_ids(self) -> list[str]:
        """Every rule with a stored episode, sorted."""

    def fault_kpis(self, start: datetime, end: datetime) -> list[dict]:
        """Fault KPIs per asset kind over [start, end): name (the kind), faults, hours_in_fault,
        pct_time_in_fault, mtbf_h, mttr_h, availability (0-1), comm_losses."""

    def alarm_kpis(self, start: datetime, end: datetime) -> dict:
        """Alarm-system KPIs over [start, end) (``energy.alarm_kpis``): period_h, alarms, suppressed,
        alarms_per_operator_hour, flood_periods_pct, chattering_alarms, standing_alarms, priority_counts,
        priority_pct."""


class PlanProvider(Protocol):
    """Live dispatch (``optimizer.operation.LiveOperation``): the plan in force, re-plans, dispatch rounds,
    approval and suspension."""

    def plan(self) -> dict | None:
        """The plan in force as ``{"id", "made_utc", "start_utc", "end_utc", "status", "currency", "costs",
        "baselines", "baseline_names", "savings_cny", "steps": [{"ts_utc": str, <column>: value, ...}],
        "approval": {...}, "review_plan_id", "replans": [...], "rounds": [...], "solving", "error"}`` (README,
        /api/plan); None when no plan has been made yet."""

    def plan_record(self, plan_id: str) -> dict | None:
        """A plan kept by id (the one in force, the approved one, the plan for review), shaped like
        :meth:`plan` without its live keys; None when that plan is not kept."""

    def rounds(self, since_utc: datetime | None = None) -> list[dict]:
        """Dispatch rounds kept, oldest first, from ``since_utc`` on: ``{"ts_utc", "plan_id", "replanned",
        "released", "margin_kw", "writes": [{"point_id", "value", "result"}]}``."""

    def state(self) -> dict:
        """``{"solving": bool, "error": str | None}``: a plan being made, why the last attempt failed."""

    def csv(self) -> str | None:
        """The plan in force's per-step table as CSV; None before the first plan."""

    def approve(self, plan_id: str, who: str) -> dict:
        """Record ``who`` approving plan ``plan_id`` (the plan in force or the plan for review): in manual
        mode every step is dispatched until that plan's end. The approval state afterwards. Raises
        ValueError with the reason when that plan cannot be approved."""

    def suspend(self, who: str) -> dict:
        """End the authority now and release every setpoint written; the approval state afterwards."""

    def replan(self) -> bool:
        """Re-plan at the next control step; False when a re-plan is asked for already."""


class DeviceStatusProvider(Protocol):
    """Device poll statistics and the raw values the protocol adapters read."""

    def devices(self) -> list[dict]:
        """One dict per device: device_id, protocol, address, poll_period_s, available, last_success,
        error_count, latency_ms, last_error."""

    def raw_values(self) -> dict[str, dict | None]:
        """Each polled point's raw value from its latest poll, by point id: ``{"value", "words",
        "scale_factor"}`` (README, /api/points), or None when that poll got nothing; unpolled points absent."""


StorageHealthProvider = Callable[[], dict]
"""The history store's health under a live run (``twin.history.writer.StorageHealth.as_json``): state
(``ok`` or ``degraded``), since_utc, reason, received_rows, written_rows, spooled_rows, lost_rows, spool."""

PointWriter = Callable[[str, float, str], None]
"""Writes a value to a writable point on behalf of a user: (point_id, value, user name).
Raises ValueError for a value the point or its device refuses."""

WriteAuditor = Callable[[WriteRecord], None]
"""Adds a record to the write audit log (the live run's writer, which keeps it while the store is away)."""


@dataclass(frozen=True)
class Providers:
    """The optional capabilities the dashboard shows when they exist; None means "not installed yet"
    (except ``kpi``: without it the dashboard runs the KPI engine without a tariff, see
    :attr:`dashboard.context.DashboardContext.kpi`)."""

    kpi: KpiProvider | None = None
    faults: FaultProvider | None = None
    plan: PlanProvider | None = None
    devices: DeviceStatusProvider | None = None
    write_point: PointWriter | None = None
    storage: StorageHealthProvider | None = None
    audit: WriteAuditor | None = None

    def installed_faults(self) -> FaultProvider:
        """The fault provider, for code that runs only once a page has checked it is installed."""
        if self.faults is None:
            raise ProviderMissing(MISSING["faults"])
        return self.faults

    def installed_plan(self) -> PlanProvider:
        """The plan provider, for code that runs only once a page has checked it is installed."""
        if self.plan is None:
            raise ProviderMissing(MISSING["plan"])
        return self.plan


class ProviderMissing(RuntimeError):
    """A capability was used that this dashboard runs without (a page forgot to check for it)."""


MISSING = {
    "faults": "available when the energy models (fault rules and episodes) are installed",
    "plan": "available when the optimizer is installed",
    "devices": "available when the protocol adapters are installed",
    "write_point": "writing points is not available in this mode (no feed takes setpoints)",
}
"""What a page or endpoint says while its provider is missing."""
