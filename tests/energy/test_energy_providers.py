"""The energy models as dashboard providers: the documented shapes, filled from a simulated week."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from energy.fault_detection import detect_faults
from energy.kpi import energy_kpis
from energy.providers import EnergyKpiProvider, StoredFaultProvider
from energy.tariff import load_tariff
from twin.fault_episodes import AlarmFilter
from twin.history import FaultEpisodeStore, open_history


def test_kpi_provider_labels_the_energy_kpis_of_the_period(faulty_week_url, demo_park, sim_start_utc):
    start, end = sim_start_utc, sim_start_utc + timedelta(days=2)
    tariff = load_tariff(demo_park.tariff)
    with open_history(faulty_week_url) as history:
        shown = EnergyKpiProvider(demo_park, history, tariff).kpis(start, end)
        kpis = energy_kpis(history, demo_park, start, end, tariff)
    json.dumps(shown)  # JSON-ready
    assert all(set(entry) == {"label", "value", "unit", "coverage"} for entry in shown.values())
    assert shown["cost_cny"] == {"label": "Energy cost (net of export)", "value": pytest.approx(kpis.cost_cny),
                                 "unit": "CNY", "coverage": 1.0}
    assert shown["self_sufficiency_pct"]["value"] == pytest.approx(100 * kpis.self_sufficiency)
    assert shown["savings_cny"]["value"] is None  # no baseline
    assert shown["storage_cooling_delivered_kwhth"] == {
        "label": "Cooling from storage (net)", "value": pytest.approx(kpis.storage_cooling_delivered_kwhth),
        "unit": "kWhth", "coverage": pytest.approx(1.0)}


def test_fault_provider_lists_stored_episodes_of_the_period_as_text(faulty_week_url, demo_park, sim_start_utc,
                                                                   tmp_path):
    day = sim_start_utc + timedelta(days=5)  # 6 July local
    with open_history(faulty_week_url) as history:
        frame = history.query(list(demo_park.points), day, day + timedelta(days=1))
    with open_history(f"sqlite:///{tmp_path / 'day.sqlite'}") as history:
        history.append_frame(frame)
        store = FaultEpisodeStore(history)
        provider = StoredFaultProvider(store)
        the_day = AlarmFilter(start_utc=day, end_utc=day + timedelta(days=1))
        assert provider.console(the_day, 0, 1000) == {"faults": [], "total": 0}  # nothing detected yet
        detect_faults(history, demo_park, day, day + timedelta(days=1), store=store)
        shown = provider.console(the_day, 0, 1000)["faults"]
    json.dumps(shown)
    lift = next(f for f in shown if f["rule_id"] == "elevator_out_of_service")
    start_ms = int(datetime(2026, 7, 6, 1, tzinfo=UTC).timestamp() * 1000)
    assert lift == {"id": f"elevator_out_of_service:elevator2::{start_ms}", "rule_id": "elevator_out_of_service",
                    "asset_id": "elevator2", "point_id": None,
                    "start_utc": "2026-07-06T01:00:00+00:00", "end_utc": "2026-07-06T07:00:00+00:00",
                    "priority": "high",
                    "suppressed_by": None, "evidence": "fault_code=17",
                    "acknowledged_by": None, "acknowledged_utc": None,
                    "comments": [], "shelved_until_utc": None}


def test_fault_provider_gives_fault_kpis_by_kind_as_computed_by_hand(demo_park, tmp_path):
    """Chiller 1 in fault 2 h and 1 h, chiller 2 for 1 h still open at the end, over one day. Per kind the
    period is 24 h x 3 chillers = 72 h; failures 3, hours 4, so MTBF = (72 - 4) / 3, MTTR = 4 / 3."""
    from twin.fault_episodes import FaultEpisode, Priority

    day = datetime(2026, 7, 1, tzinfo=UTC)
    hours = lambda h: day + timedelta(hours=h)
    with open_history(f"sqlite:///{tmp_path / 'kpis.sqlite'}") as history:
        store = FaultEpisodeStore(history)
        store.save([
            FaultEpisode("chiller_low_cop", "chiller1", hours(2), hours(4), Priority.MEDIUM),
            FaultEpisode("chw_low_delta_t", "chiller1", hours(10), hours(11), Priority.MEDIUM),
            FaultEpisode("chiller_low_cop", "chiller2", hours(23), None, Priority.MEDIUM),
        ])
        kpis = {k["name"]: k for k in StoredFaultProvider(store, park=demo_park).fault_kpis(day, hours(24))}
        assert StoredFaultProvider(store).fault_kpis(day, hours(24)) == []  # no park, no KPIs
    chillers = kpis["chiller"]
    assert (chillers["faults"], chillers["hours_in_fault"], chillers["period_h"]) == (3, 4.0, 72.0)
    assert chillers["mtbf_h"] == pytest.approx(68 / 3) and chillers["mttr_h"] == pytest.approx(4 / 3)
    assert chillers["availability"] == pytest.approx(68 / 72)
    assert kpis["battery"]["faults"] == 0 and kpis["battery"]["availability"] == 1.0
    assert kpis["battery"]["mtbf_h"] is None
