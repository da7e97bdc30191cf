"""The seams for other rooms: with a provider, its page and endpoint show the provider's data; without, they say so.

The providers here are minimal stand-ins with the documented shapes; the real
ones come from the energy models, the optimizer and the protocol adapters.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import flask
import pytest

from dashboard.api import create_api
from dashboard.context import DashboardContext
from dashboard.pages import dispatch, faults, points
from dashboard.providers import Providers
from twin.history import open_history
from twin.live import LiveState

END = datetime(2026, 7, 2, 0, 0, tzinfo=UTC)


class FixedKpis:
    def __init__(self):
        self.asked: list[tuple[datetime, datetime]] = []

    def kpis(self, start, end):
        self.asked.append((start, end))
        return {"cost_cny": {"label": "Cost", "value": 1234.5, "unit": "CNY"}}


class OneFault:
    def console(self, which, offset, limit):
        listed = [{"id": "chw_low_delta_t:chiller2::1782900000000", "rule_id": "chw_low_delta_t",
                   "asset_id": "chiller2", "point_id": None, "start_utc": "2026-07-01T10:00:00+00:00", "end_utc": None,
                   "priority": "medium", "suppressed_by": None, "evidence": "delta-T 1.4 K for 15 min",
                   "acknowledged_by": None, "acknowledged_utc": None, "comments": [], "shelved_until_utc": None}]
        return {"faults": listed[offset:offset + limit], "total": len(listed)}

    def alarm_count(self):
        return 1

    def shelves(self):
        return []

    def rule_ids(self):
        return ["chw_low_delta_t"]

    def acknowledge(self, episode_id, who):
        return None

    def fault_kpis(self, start, end):
        return [{"name": "chiller", "episodes": 1, "faults": 1, "hours_in_fault": 14.0, "period_h": 504.0,
                 "pct_time_in_fault": 2.78, "mtbf_h": 490.0, "mttr_h": 14.0, "availability": 0.9722,
                 "comm_losses": 0}]

    def alarm_kpis(self, start, end):
        return {"period_h": 168.0, "alarms": 1, "suppressed": 0, "alarms_per_operator_hour": 1 / 168.0,
                "flood_periods_pct": 0.0, "chattering_alarms": [], "standing_alarms": [],
                "priority_counts": {"low": 0, "medium": 1, "high": 0, "critical": 0},
                "priority_pct": {"low": 0.0, "medium": 100.0, "high": 0.0, "critical": 0.0}}


class NoPlanYet:
    def plan(self):
        return None

    def state(self):
        return {"solving": False, "error": None}


class OneDevice:
    def devices(self):
        return [{"device_id": "plant-modbus", "protocol": "modbus", "address": "127.0.0.1:5020", "poll_period_s": 5,
                 "last_success": "2026-07-01T23:59:55+00:00", "error_count": 0, "latency_ms": 3.2}]

    def raw_values(self):
        return {"plant.battery.soc_pct": {"value": 555, "words": "0x022B", "scale_factor": -1},
                "plant.battery.power_kw": None}  # its last poll got nothing


@pytest.fixture
def contexts(demo_park, tmp_path):
    with open_history(f"sqlite:///{tmp_path / 'empty.sqlite'}") as store:
        bare = DashboardContext(demo_park, LiveState(), store, now_utc=lambda: END)
        kpis = FixedKpis()
        full = DashboardContext(demo_park, LiveState(), store,
                                Providers(kpi=kpis, faults=OneFault(), plan=NoPlanYet(), devices=OneDevice()),
                                now_utc=lambda: END)
        yield bare, full, kpis


def client_for(ctx: DashboardContext):
    server = flask.Flask(__name__)
    server.register_blueprint(create_api(ctx))
    return server.test_client()


def text_of(component) -> str:
    """All text in a Dash component tree."""
    if isinstance(component, (str, int, float)):
        return str(component)
    if isinstance(component, (list, tuple)):
        return " ".join(text_of(c) for c in component)
    children = getattr(component, "children", None)
    return text_of(children) if children is not None else ""


def component_with_id(component, component_id: str):
    """The component of a Dash tree with that id, or None."""
    if getattr(component, "id", None) == component_id:
        return component
    children = getattr(component, "children", None)
    for child in children if isinstance(children, (list, tuple)) else [children] if children is not None else []:
        found = component_with_id(child, component_id)
        if found is not None:
            return found
    return None


def test_pages_say_what_is_missing_and_show_what_providers_give(contexts):
    bare, full, _ = contexts
    assert "not available yet" in text_of(faults.layout(bare))
    assert "not available yet" in text_of(dispatch.layout(bare))
    assert "protocol adapters" in text_of(points.layout(bare))
    shown = text_of(faults.layout(full))
    assert "chw_low_delta_t" in shown and "chiller2" in shown and "not available" not in shown
    kpis = text_of(faults.kpi_table(full))  # drawn by a callback after the console
    assert "97.22" in kpis and "490.0" in kpis  # the fault-KPI row of the provider, as a percentage
    assert "No dispatch plan has been made yet" in text_of(dispatch.layout(full))
    devices = component_with_id(points.layout(full), "devices-table")
    assert [row["address"] for row in devices.rowData] == ["127.0.0.1:5020"]
    assert devices.rowData[0]["last_error"] == "–"  # a key the provider left out


def test_endpoints_answer_with_the_providers_data(contexts):
    bare, full, kpis = contexts
    # without a KPI provider the dashboard runs the KPI engine itself, without a tariff: no money figures
    engine = client_for(bare).get("/api/kpi").get_json()["kpis"]
    assert engine["cost_cny"]["value"] is None and engine["grid_import_kwh"]["coverage"] == 0.0  # empty history
    body = client_for(full).get("/api/kpi?from=2026-07-01T00:00:00Z&to=2026-07-02T00:00:00Z").get_json()
    assert body["kpis"]["cost_cny"]["value"] == 1234.5
    assert kpis.asked == [(END - timedelta(days=1), END)]
    faults_body = client_for(full).get("/api/faults").get_json()
    assert faults_body["faults"][0]["asset_id"] == "chiller2"
    assert faults_body["fault_kpis_by_kind"][0]["availability"] == 0.9722
    assert faults_body["alarm_system"]["priority_counts"]["medium"] == 1
    rows = {r["id"]: r for r in client_for(full).get("/api/points").get_json()["points"]}
    assert rows["plant.battery.soc_pct"]["raw"] == {"value": 555, "words": "0x022B", "scale_factor": -1}
    assert rows["plant.battery.power_kw"]["raw"] is None and rows["plant.chiller1.cop"]["raw"] is None
    assert all(r["raw"] is None for r in client_for(bare).get("/api/points").get_json()["points"])
    response = client_for(full).get("/api/plan")
    assert response.status_code == 404 and "no dispatch plan" in response.get_json()["error"]
