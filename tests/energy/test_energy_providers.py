"""The energy models as dashboard providers: the documented shapes, filled from a simulated week."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from energy.fault_detection import detect_faults
from energy.kpi import energy_kpis
from energy.providers import EnergyKpiProvider, StoredFaultProvider
from energy.tariff import load_tariff
from twin.history import FaultEpisodeStore, open_history


def test_kpi_provider_labels_the_energy_kpis_of_the_period(faulty_week_url, demo_park, sim_start_utc):
    start, end = sim_start_utc, sim_start_utc + timedelta(days=2)
    tariff = load_tariff(demo_park.tariff)
    with open_history(faulty_week_url) as history:
        shown = EnergyKpiProvider(demo_park, history, tariff).kpis(start, end)
        kpis = energy_kpis(history, demo_park, start, end, tariff)
    json.dumps(shown)  # JSON-ready
    assert all(set(entry) == {"label", "value", "unit"} for entry in shown.values())
    assert shown["cost_cny"] == {"label": "Cost", "value": pytest.approx(kpis.total_cost_cny), "unit": "CNY"}
    assert shown["self_sufficiency_pct"]["value"] == pytest.approx(100 * kpis.self_sufficiency)
    assert shown["savings_cny"]["value"] is None  # no baseline


def test_fault_provider_lists_stored_episodes_of_the_period_as_text(faulty_week_url, demo_park, sim_start_utc,
                                                                   tmp_path):
    day = sim_start_utc + timedelta(days=5)  # 6 July local
    with open_history(faulty_week_url) as history:
        frame = history.query(list(demo_park.points), day, day + timedelta(days=1))
    with open_history(f"sqlite:///{tmp_path / 'day.sqlite'}") as history:
        history.append_frame(frame)
        store = FaultEpisodeStore(history)
        provider = StoredFaultProvider(store)
        assert provider.faults(day, day + timedelta(days=1)) == []  # nothing detected yet
        detect_faults(history, demo_park, day, day + timedelta(days=1), store=store)
        shown = provider.faults(day, day + timedelta(days=1))
    json.dumps(shown)
    lift = next(f for f in shown if f["rule_id"] == "elevator_out_of_service")
    start_ms = int(datetime(2026, 7, 6, 1, tzinfo=timezone.utc).timestamp() * 1000)
    assert lift == {"id": f"elevator_out_of_service:elevator2::{start_ms}", "rule_id": "elevator_out_of_service",
                    "asset_id": "elevator2", "point_id": None,
                    "start": "2026-07-06T01:00:00+00:00", "end": "2026-07-06T07:00:00+00:00", "severity": "warning",
                    "evidence": "fault_code=17", "acknowledged_by": None, "acknowledged_at": None}
