"""The API's actions besides point writes: acknowledging a fault (operator) and approving the day-ahead plan
(trader), each refused with 403 (and logged) for anyone else; approval dispatches the plan's step, not before."""

from __future__ import annotations

import csv
import io
import logging
from datetime import datetime, timedelta, timezone

import pytest

from dashboard.app import create_app
from dashboard.auth import UserStore, add_user
from energy.environment import ParkEnvironment
from energy.providers import StoredFaultProvider
from energy.tariff import load_tariff
from optimizer.providers import DayAheadPlanProvider
from twin.fault_episodes import FaultEpisode, Severity
from twin.history import FaultEpisodeStore, open_history
from twin.live import LiveState
from twin.sim import ParkSimulator

from browser_support import DEMO

NOW_UTC = datetime(2026, 7, 1, 2, 7, tzinfo=timezone.utc)  # 10:07 in the park
ACK_AT = datetime(2026, 11, 24, 9, 0, tzinfo=timezone.utc)
BATTERY_SETPOINT = "plant.battery.power_setpoint_kw"


def basic(user: str) -> dict:
    import base64

    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{user}-password".encode()).decode()}


@pytest.fixture(scope="module")
def served(demo_park, tmp_path_factory):
    """A dashboard over a fresh history holding one active fault, with a real planner writing to a simulator."""
    folder = tmp_path_factory.mktemp("actions")
    users_file = folder / "users.yaml"
    for name, role in (("olga", "operator"), ("vic", "viewer"), ("tara", "trader")):
        add_user(users_file, name, role, f"{name}-password")
    store = open_history(f"sqlite:///{folder / 'h.sqlite'}")
    episodes = FaultEpisodeStore(store)
    fault = FaultEpisode("battery_overtemp", "battery", NOW_UTC - timedelta(hours=1), None, Severity.CRITICAL,
                         {"cell_temp_max_c": 52.0})
    episodes.save([fault])
    simulator = ParkSimulator(demo_park, ParkEnvironment(demo_park), NOW_UTC)
    writes = []

    def write(point_id: str, value: float, who: str) -> str:
        writes.append((point_id, value, who))
        simulator.write_setpoint(point_id, value)
        return "ok"

    planner = DayAheadPlanProvider(demo_park, load_tariff(DEMO.parent / "tariff.yaml"), ParkEnvironment(demo_park),
                                   LiveState(), write, lambda: NOW_UTC, "manual", mip_time_limit_s=2.0)
    app = create_app(demo_park, LiveState(), store, users=UserStore.load(users_file), now_utc=lambda: NOW_UTC,
                     faults=StoredFaultProvider(episodes, now_utc=lambda: ACK_AT), plan=planner)
    yield app.server.test_client(), fault, planner, writes, simulator
    store.close()


def test_only_operators_acknowledge_a_fault_and_who_and_when_show_in_the_api(served, caplog):
    client, fault, *_ = served
    body = {"id": fault.id}
    with caplog.at_level(logging.WARNING, logger="dashboard.auth"):
        assert client.post("/api/faults/ack", json=body).status_code == 403
        assert client.post("/api/faults/ack", json=body, headers=basic("vic")).status_code == 403
    refusals = [r.getMessage() for r in caplog.records if "refused acknowledge_fault" in r.getMessage()]
    assert len(refusals) == 2 and "anonymous" in refusals[0] and "'vic' (role viewer)" in refusals[1]
    (shown,) = client.get("/api/faults?from=2026-07-01T00:00:00Z&to=2026-07-02T00:00:00Z").get_json()["faults"]
    assert shown["id"] == fault.id and shown["end"] is None and shown["acknowledged_by"] is None
    assert client.post("/api/faults/ack", json={"id": "battery_overtemp:battery::1"},
                       headers=basic("olga")).status_code == 404
    assert client.post("/api/faults/ack", json={}, headers=basic("olga")).status_code == 400
    answer = client.post("/api/faults/ack", json=body, headers=basic("olga"))
    assert answer.status_code == 200 and answer.get_json()["fault"]["acknowledged_by"] == "olga"
    (shown,) = client.get("/api/faults?from=2026-07-01T00:00:00Z&to=2026-07-02T00:00:00Z").get_json()["faults"]
    assert (shown["acknowledged_by"], shown["acknowledged_at"]) == ("olga", ACK_AT.isoformat())


def test_the_plan_is_dispatched_only_after_a_trader_approves_it(served, caplog):
    client, _, planner, writes, simulator = served
    planner.replan()
    planner.wait()
    plan = client.get("/api/plan").get_json()
    assert plan["start_utc"] == "2026-07-01T02:15:00+00:00" and len(plan["steps"]) == 96  # next quarter hour, 24 h
    assert plan["approval"] == {"mode": "manual", "approved_by": None, "approved_at": None,
                                "dispatched_step_utc": None, "writes": []}
    with caplog.at_level(logging.WARNING, logger="dashboard.auth"):
        for headers in ({}, basic("vic"), basic("olga")):
            assert client.post("/api/plan/approve", json={"id": plan["id"]}, headers=headers).status_code == 403
    assert sum("refused approve_plan" in r.getMessage() for r in caplog.records) == 3
    assert writes == []  # manual approval: nothing dispatched before it
    assert client.post("/api/plan/approve", json={"id": "another"}, headers=basic("tara")).status_code == 409
    answer = client.post("/api/plan/approve", json={"id": plan["id"]}, headers=basic("tara"))
    assert answer.status_code == 200
    first = plan["steps"][0]
    written = {point: (value, who) for point, value, who in writes}
    assert written[BATTERY_SETPOINT] == (pytest.approx(first["battery.power_setpoint_kw"]), "plan:tara")
    assert written["plant.ice_tank.charge_setpoint_kwth"][0] == pytest.approx(first["ice_tank.charge_kwth"])
    assert written["plant.ice_tank.melt_setpoint_kwth"][0] == pytest.approx(first["ice_tank.melt_kwth"])
    step = simulator.advance()
    assert next(r for r in simulator.readings(step) if r.point_id == BATTERY_SETPOINT).value == \
        pytest.approx(first["battery.power_setpoint_kw"])
    approval = client.get("/api/plan").get_json()["approval"]
    assert approval["approved_by"] == "tara" and approval["dispatched_step_utc"].startswith("2026-07-01 02:15")
    assert client.post("/api/plan/approve", json={"id": plan["id"]}, headers=basic("tara")).status_code == 409
    assert len(writes) == len(written)  # approved once, dispatched once


def test_the_csv_download_holds_the_same_steps_as_the_json(served):
    client, _, planner, *_ = served
    planner.wait()
    plan = client.get("/api/plan").get_json()
    response = client.get("/api/plan.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert len(rows) == len(plan["steps"])
    for row, step in zip(rows, plan["steps"]):
        assert float(row["grid_import_kw"]) == pytest.approx(step["grid_import_kw"], rel=1e-5, abs=1e-6)
        assert float(row["price_cny_per_kwh"]) == pytest.approx(step["price_cny_per_kwh"], rel=1e-5)
    # the plan's grid import prices to its energy cost (an independent sum over the steps)
    energy = sum(s["grid_import_kw"] * 0.25 * s["price_cny_per_kwh"] for s in plan["steps"])
    assert plan["costs"]["energy_cny"] == pytest.approx(energy, rel=1e-9)


def test_in_auto_mode_each_new_plan_is_dispatched_without_approval(demo_park):
    writes = []
    planner = DayAheadPlanProvider(demo_park, load_tariff(DEMO.parent / "tariff.yaml"), ParkEnvironment(demo_park),
                                   LiveState(), lambda p, v, who: writes.append((p, v, who)) or "ok",
                                   lambda: NOW_UTC, "auto", mip_time_limit_s=2.0)
    planner.replan()
    planner.wait()
    plan = planner.plan()
    assert plan["approval"]["approved_by"] is None and len(plan["approval"]["writes"]) == len(writes) > 0
    assert {who for _, _, who in writes} == {"plan:auto"}
    battery = next(v for p, v, _ in writes if p == BATTERY_SETPOINT)
    assert battery == pytest.approx(plan["steps"][0]["battery.power_setpoint_kw"])
