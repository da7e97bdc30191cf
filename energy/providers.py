"""The energy models as the dashboard's KPI and fault providers (plain JSON-ready data).

They follow the shapes ``dashboard.providers.KpiProvider`` and
``FaultProvider`` document (structurally: ``energy`` does not import the
dashboard); the composition root (``parktwin``) hands them to the
dashboard.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from energy.alarm_kpis import alarm_system_kpis
from energy.fault_kpis import fault_kpis
from energy.kpi import energy_kpis
from energy.tariff import Tariff
from twin.fault_episodes import AlarmComment, AlarmFilter, FaultEpisode, Shelf
from twin.history import FaultEpisodeStore, History
from twin.park import Park


class EnergyKpiProvider:
    """The KPI engine (:func:`energy.kpi.energy_kpis`) over the park's history, for the dashboard: every page
    and /api/kpi and /api/energy take their energy figures from here.

    hold_s: how long each point's reading holds (:func:`energy.aligned.hold_limits_s`, from the point maps'
    poll periods); default the park's simulation step.
    """

    def __init__(self, park: Park, history: History, tariff: Tariff | None = None,
                 hold_s: dict[str, float] | None = None):
        self.park, self.history, self.tariff, self.hold_s = park, history, tariff, hold_s

    def energy(self, start: datetime, end: datetime) -> dict[str, Any]:
        """Every energy KPI of [start, end) as JSON-ready data (:meth:`energy.kpi.EnergyKpis.as_dict`), with
        ``currency`` and ``kpis`` (the headline KPIs, :meth:`kpis`)."""
        data = energy_kpis(self.history, self.park, start, end, self.tariff, hold_s=self.hold_s).as_dict()
        data["currency"] = self.tariff.currency if self.tariff else None
        data["kpis"] = labelled_kpis(data, data["currency"] or "")
        return data

    def kpis(self, start: datetime, end: datetime) -> dict[str, dict[str, Any]]:
        """``{key: {"label", "value", "unit", "coverage"}}``; value None where the period lacks what the KPI
        needs; coverage the share (0-1) of the period the figure had data for, None where it does not apply."""
        kpis: dict[str, dict[str, Any]] = self.energy(start, end)["kpis"]
        return kpis


def labelled_kpis(k: dict[str, Any], currency: str) -> dict[str, dict[str, Any]]:
    """The headline KPIs of :meth:`EnergyKpiProvider.energy`'s answer, keyed and labelled for display."""
    cover = k["coverage"]

    def pct(fraction: float | None) -> float | None:
        return None if fraction is None else 100.0 * fraction

    both = min(cover["grid_import_kwh"], cover["pv_kwh"])
    entries = [
        ("consumption_kwh", "Consumption", k["consumption_kwh"]["total"], "kWh", cover["consumption_kwh"]),
        ("pv_kwh", "PV production", k["pv_kwh"], "kWh", cover["pv_kwh"]),
        ("grid_import_kwh", "Grid import", k["grid_import_kwh"], "kWh", cover["grid_import_kwh"]),
        ("grid_export_kwh", "Grid export", k["grid_export_kwh"], "kWh", cover["grid_export_kwh"]),
        ("self_consumption_pct", "Self-consumption", pct(k["self_consumption"]), "%", both),
        ("self_sufficiency_pct", "Self-sufficiency", pct(k["self_sufficiency"]), "%", both),
        ("peak_demand_kw", "Peak demand (15 min)", k["peak_demand_kw"], "kW", cover["grid_import_kwh"]),
        ("load_factor", "Load factor", k["load_factor"], "", cover["grid_import_kwh"]),
        ("cost_cny", "Energy cost (net of export)", k["cost_cny"], currency, cover["grid_import_kwh"]),
        ("export_revenue_cny", "Export revenue", k["export_revenue_cny"], currency, cover["grid_export_kwh"]),
        ("billed_demand_kw", "Billed demand, month to date", k["billed_demand_kw"], "kW", None),
        ("demand_charge_cny", "Demand charge, month to date", k["demand_charge_cny"], currency, None),
        ("co2_t", "CO2", k["co2_t"], "t", cover["grid_import_kwh"]),
        ("plant_cop", "Plant COP", k["plant_cop"], "", cover["cooling_kwhth"]),
        ("plant_kw_per_ton", "Plant kW/ton", k["plant_kw_per_ton"], "kW/ton", cover["cooling_kwhth"]),
        ("storage_cooling_delivered_kwhth", "Cooling from storage (net)", k["storage_cooling_delivered_kwhth"],
         "kWhth", cover["storage_cooling_delivered_kwhth"]),
        ("ice_melt_kwhth", "Ice used", k["ice_melt_kwhth"], "kWhth", cover["ice_melt_kwhth"]),
        ("savings_cny", "Savings vs baseline", k["savings_cny"], currency, None),
    ]
    return {key: {"label": label, "value": value, "unit": unit, "coverage": coverage}
            for key, label, value, unit, coverage in entries}


def _wall_clock_utc() -> datetime:
    return datetime.now(UTC)


class StoredFaultProvider:
    """Fault episodes stored with the history (by the live detector of ``parktwin run`` or by
    ``parktwin faults``) that overlap a period, and their acknowledgement.

    ``now_utc`` stamps acknowledgements: the twin's clock (``parktwin run`` passes its simulation clock, so an
    acknowledgement lines up with the episodes it acknowledges), the wall clock by default.
    """

    def __init__(self, store: FaultEpisodeStore, now_utc: Callable[[], datetime] = _wall_clock_utc,
                 park: Park | None = None):
        self.store = store
        self.now_utc = now_utc
        self.park = park

    def fault_kpis(self, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """Fault KPIs per asset kind over [start, end) (see ``energy.fault_kpis``): name (the kind), episodes,
        faults, hours_in_fault, period_h, pct_time_in_fault, mtbf_h, mttr_h, availability, comm_losses.
        Empty when the provider was made without the park."""
        if self.park is None:
            return []
        _, per_kind = fault_kpis(self.park, self.store.overlapping(start, end), start, end)
        return [kpis.as_dict() for kpis in per_kind.values()]

    def alarm_kpis(self, start: datetime, end: datetime) -> dict[str, Any]:
        """Alarm-system KPIs of ISA-18.2 / EEMUA 191 over [start, end) (see ``energy.alarm_kpis``)."""
        return alarm_system_kpis(self.store.overlapping(start, end), start, end)

    def acknowledge(self, episode_id: str, who: str) -> dict[str, Any] | None:
        """Record ``who`` acknowledging the episode (active or cleared) now; the episode afterwards, None when
        there is no such episode. The first acknowledgement stands."""
        episode = self.store.acknowledge(episode_id, who, self.now_utc())
        return None if episode is None else episode_record(episode)

    def console(self, which: AlarmFilter, offset: int, limit: int) -> dict[str, Any]:
        """One page of the alarm console: ``{"faults": [...], "total": int}``, the episodes ``which`` selects,
        newest first, ``limit`` of them from ``offset`` on; each record as :func:`episode_record` makes it plus
        ``comments`` (``[{"who", "at_utc", "text"}]``, oldest first) and ``shelved_until_utc`` (when its alarm's
        shelving ends, None while not shelved)."""
        now = self.now_utc()
        page = self.store.page(which, now, offset, limit)
        return {"faults": self._console_records(page.episodes, now), "total": page.total}

    def episode(self, episode_id: str) -> dict[str, Any] | None:
        """The episode with this id as :meth:`console` lists it; None when there is none."""
        episode = self.store.episode(episode_id)
        return None if episode is None else self._console_records([episode], self.now_utc())[0]

    def _console_records(self, episodes: list[FaultEpisode], now: datetime) -> list[dict[str, Any]]:
        comments = self.store.comments([e.id for e in episodes])
        shelved_until: dict[tuple[str, str, str], datetime] = {}
        for shelf in self.store.shelves(now):
            alarm = (shelf.rule_id, shelf.asset_id, shelf.point_id)
            shelved_until[alarm] = max(shelf.until_utc, shelved_until.get(alarm, shelf.until_utc))
        records = []
        for e in episodes:
            until = shelved_until.get((e.rule_id, e.asset_id, e.point_id))
            records.append(episode_record(e) | {
                "comments": [comment_record(c) for c in comments.get(e.id, [])],
                "shelved_until_utc": until.isoformat() if until else None})
        return records

    def comment(self, episode_id: str, who: str, text: str) -> dict[str, Any] | None:
        """Add ``who``'s comment to the episode now; the comment (who, at, text), None when there is no such
        episode. Raises ValueError for an empty text."""
        comment = self.store.comment(episode_id, who, self.now_utc(), text)
        return None if comment is None else comment_record(comment)

    def shelve(self, episode_id: str, who: str, minutes: float, reason: str) -> dict[str, Any] | None:
        """Shelve the episode's alarm (rule, asset, point) for ``minutes`` from now, for ``reason``; the
        shelving as :meth:`shelves` lists it, None when there is no such episode. Raises ValueError for an
        empty reason or a duration that is not positive."""
        now = self.now_utc()
        shelf = self.store.shelve(episode_id, who, now, now + timedelta(minutes=minutes), reason)
        return None if shelf is None else shelf_record(shelf)

    def shelves(self) -> list[dict[str, Any]]:
        """Alarms shelved now, in the order shelved: rule_id, asset_id, point_id, shelved_by, shelved_utc,
        until_utc, reason."""
        return [shelf_record(s) for s in self.store.shelves(self.now_utc())]

    def alarm_count(self) -> int:
        """Alarms needing an operator now: active, unacknowledged, not shelved, not suppressed."""
        return self.store.alarm_count(self.now_utc())

    def rule_ids(self) -> list[str]:
        """Every rule with a stored episode, sorted (the console's rule filter)."""
        return self.store.rule_ids()


def episode_record(e: FaultEpisode) -> dict[str, Any]:
    """A fault episode as JSON-ready data (the shape of /api/faults)."""
    return {
        "id": e.id, "rule_id": e.rule_id, "asset_id": e.asset_id, "point_id": e.point_id or None,
        "start_utc": e.start_utc.isoformat(), "end_utc": e.end_utc.isoformat() if e.end_utc else None,
        "priority": e.priority.label, "suppressed_by": e.suppressed_by,
        "evidence": ", ".join(f"{name}={value:g}" if isinstance(value, float) else f"{name}={value}"
                              for name, value in e.evidence.items()),
        "acknowledged_by": e.acknowledged_by,
        "acknowledged_utc": e.acknowledged_utc.isoformat() if e.acknowledged_utc else None,
    }


def comment_record(c: AlarmComment) -> dict[str, Any]:
    """A comment as JSON-ready data."""
    return {"who": c.who, "at_utc": c.at_utc.isoformat(), "text": c.text}


def shelf_record(s: Shelf) -> dict[str, Any]:
    """A shelving as JSON-ready data."""
    return {"rule_id": s.rule_id, "asset_id": s.asset_id, "point_id": s.point_id or None, "shelved_by": s.shelved_by,
            "shelved_utc": s.shelved_utc.isoformat(), "until_utc": s.until_utc.isoformat(), "reason": s.reason}
