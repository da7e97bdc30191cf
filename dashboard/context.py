"""Everything the dashboard pages and API read, handed over once by the composition root."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property

from dashboard.auth import Access, UserStore
from dashboard.history_views import reference_time
from dashboard.providers import KpiProvider, Providers
from energy.providers import EnergyKpiProvider
from twin.history import History, WriteRecord
from twin.live import LiveState
from twin.park import Park


def wall_clock_utc() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class DashboardContext:
    """The park, its live state and history, optional providers, access (users, sessions), and the clock ages
    are measured on.

    now_utc: the twin's current time (the simulation clock under ``parktwin run``,
    the wall clock otherwise); the age of a reading is now_utc() - its timestamp.
    """

    park: Park
    live: LiveState
    history: History
    providers: Providers = field(default_factory=Providers)
    access: Access = field(default_factory=lambda: Access(UserStore()))
    """Who may sign in, their sessions and the sign-in throttle."""
    now_utc: Callable[[], datetime] = wall_clock_utc

    @cached_property
    def kpi(self) -> KpiProvider:
        """The KPI engine every energy figure comes from: the provider given (with the park's tariff and the
        point maps' poll periods), else the engine over this history without a tariff (no money figures)."""
        return self.providers.kpi if self.providers.kpi is not None else EnergyKpiProvider(self.park, self.history)

    def record_write(self, record: WriteRecord) -> None:
        """Add a record to the write audit log: through the live run's writer when there is one, else to the
        history store."""
        (self.providers.audit or self.history.record_write)(record)

    def data_end(self) -> datetime:
        """Where the data shown ends: the newest grid-meter reading in history, else now."""
        return reference_time(self.park, self.history) or self.now_utc()

    def periods_end(self) -> datetime:
        """The "now" that periods such as "the last 7 days" run to: under a live feed (``parktwin run``) the
        twin's clock, if ahead of the data (the fault detector saves episodes before history flushes the
        readings); over a history alone (``parktwin dashboard``) where its data ends, never the wall clock."""
        live_feed = self.providers.devices is not None
        return max(self.data_end(), self.now_utc()) if live_feed else self.data_end()

    def live_points(self, point_ids: list[str] | None = None) -> list[dict]:
        """Latest value, quality, age and raw protocol value of each point (all by default), in park order;
        JSON-ready.

        Points without a reading yet have value, quality, ts_utc and age_s None;
        raw is None without the protocol adapters or before (or without) a raw value.
        """
        ids = list(self.park.points) if point_ids is None else point_ids
        snapshot = self.live.snapshot(ids)
        raw = self.providers.devices.raw_values() if self.providers.devices is not None else {}
        now = self.now_utc()
        rows = []
        for pid in ids:
            point = self.park.points[pid]
            reading = snapshot.get(pid)
            rows.append({
                "id": pid, "building_id": point.building_id, "asset_id": point.asset_id, "name": point.name,
                "unit": point.unit, "kind": str(point.kind), "writable": point.writable,
                "low_limit": point.spec.low_limit, "high_limit": point.spec.high_limit,
                "value": reading.value if reading else None,
                "quality": reading.quality.label if reading else None,
                "ts_utc": reading.ts_utc.isoformat() if reading else None,
                "age_s": round((now - reading.ts_utc).total_seconds(), 1) if reading else None,
                "raw": raw.get(pid),
            })
        return rows
