"""The energy models as the dashboard's KPI and fault providers (plain JSON-ready data).

They follow the shapes ``dashboard.providers.KpiProvider`` and
``FaultProvider`` document (structurally: ``energy`` does not import the
dashboard); the composition root (``twin/cli.py``) hands them to the
dashboard.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Callable

from energy.alarm_kpis import alarm_system_kpis
from energy.fault_kpis import fault_kpis
from energy.kpi import energy_kpis
from energy.tariff import Tariff
from twin.fault_episodes import FaultEpisode
from twin.history import FaultEpisodeStore, History
from twin.park import Park


class EnergyKpiProvider:
    """Energy KPIs of a period from history (:func:`energy.kpi.energy_kpis`), keyed and labelled for display."""

    def __init__(self, park: Park, history: History, tariff: Tariff | None = None):
        self.park, self.history, self.tariff = park, history, tariff

    def kpis(self, start: datetime, end: datetime) -> dict[str, dict]:
        """``{key: {"label", "value", "unit"}}``; value None where the period lacks what the KPI needs."""
        k = energy_kpis(self.history, self.park, start, end, self.tariff)
        currency = self.tariff.currency if self.tariff else "CNY"

        def pct(fraction: float | None) -> float | None:
            return None if fraction is None else 100.0 * fraction

        entries = [
            ("consumption_kwh", "Consumption", k.consumption_kwh["total"], "kWh"),
            ("pv_kwh", "PV production", k.pv_kwh, "kWh"),
            ("grid_import_kwh", "Grid import", k.grid_import_kwh, "kWh"),
            ("self_consumption_pct", "Self-consumption", pct(k.self_consumption), "%"),
            ("self_sufficiency_pct", "Self-sufficiency", pct(k.self_sufficiency), "%"),
            ("peak_demand_kw", "Peak demand (15 min)", k.peak_demand_kw, "kW"),
            ("load_factor", "Load factor", k.load_factor, ""),
            ("cost_cny", "Cost", k.total_cost_cny, currency),
            ("demand_charge_cny", "Demand charge", k.demand_charge_cny, currency),
            ("co2_t", "CO2", k.co2_t, "t"),
            ("plant_cop", "Plant COP", k.plant_cop, ""),
            ("plant_kw_per_ton", "Plant kW/ton", k.plant_kw_per_ton, "kW/ton"),
            ("ice_melt_kwhth", "Ice used", k.ice_melt_kwhth, "kWhth"),
            ("savings_cny", "Savings vs baseline", k.savings_cny, currency),
        ]
        return {key: {"label": label, "value": value, "unit": unit} for key, label, value, unit in entries}


def _wall_clock_utc() -> datetime:
    return datetime.now(timezone.utc)


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

    def fault_kpis(self, start: datetime, end: datetime) -> list[dict]:
        """Fault KPIs per asset kind over [start, end) (see ``energy.fault_kpis``): name (the kind), episodes,
        faults, hours_in_fault, period_h, pct_time_in_fault, mtbf_h, mttr_h, availability, comm_losses.
        Empty when the provider was made without the park."""
        if self.park is None:
            return []
        _, per_kind = fault_kpis(self.park, self.store.overlapping(start, end), start, end)
        return [kpis.as_dict() for kpis in per_kind.values()]

    def alarm_kpis(self, start: datetime, end: datetime) -> dict:
        """Alarm-system KPIs of ISA-18.2 / EEMUA 191 over [start, end) (see ``energy.alarm_kpis``)."""
        return alarm_system_kpis(self.store.overlapping(start, end), start, end)

    def faults(self, start: datetime, end: datetime) -> list[dict]:
        """One dict per episode: id, rule_id, asset_id, point_id, start, end (None while active), priority,
        suppressed_by, evidence (as text), acknowledged_by and acknowledged_at (None until acknowledged); times ISO 8601 UTC."""
        return [episode_record(e) for e in self.store.overlapping(start, end)]

    def acknowledge(self, episode_id: str, who: str) -> dict | None:
        """Record ``who`` acknowledging the episode now; the episode afterwards, None when there is no such
        episode. The first acknowledgement stands."""
        episode = self.store.acknowledge(episode_id, who, self.now_utc())
        return None if episode is None else episode_record(episode)


def episode_record(e: FaultEpisode) -> dict:
    """A fault episode as JSON-ready data (the shape of /api/faults)."""
    return {
        "id": e.id, "rule_id": e.rule_id, "asset_id": e.asset_id, "point_id": e.point_id or None,
        "start": e.start_utc.isoformat(), "end": e.end_utc.isoformat() if e.end_utc else None,
        "priority": e.priority.label, "suppressed_by": e.suppressed_by,
        "evidence": ", ".join(f"{name}={value:g}" if isinstance(value, float) else f"{name}={value}"
                              for name, value in e.evidence.items()),
        "acknowledged_by": e.acknowledged_by,
        "acknowledged_at": e.acknowledged_utc.isoformat() if e.acknowledged_utc else None,
    }
