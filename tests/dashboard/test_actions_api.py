"""The API's actions besides point writes: acknowledging a fault (operator); approving, suspending and re-planning
live dispatch (trader), each refused with 403 (and logged) for anyone else.

Dispatch runs on a LiveOperation over a SimulatedField (tests/dashboard/live_park.py): the test moves the
simulator on one 15-minute step at a time and runs the control step, and checks the writes against the plan's
own columns and against what the simulator then reads back.
"""

from __future__ import annotations

import base64
import csv
import io
import logging
from datetime import UTC, datetime, timedelta

import pytest
from live_park import BATTERY_SETPOINT, LivePark

from dashboard.app import create_app
from dashboard.auth import UserStore, add_user
from energy.providers import StoredFaultProvider
from twin.fault_episodes import FaultEpisode, Priority
from twin.history import FaultEpisodeStore, open_history
from twin.live import LiveState

START_UTC = datetime(2026, 7, 1, 4, 0, tzinfo=UTC)
"""12:00 in the park: a flat-price window until 14:00, where the plant schedule holds the battery at 0 kW."""
SCHEDULE_BATTERY_KW = 0.0
ACK_AT = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
SETPOINT_COLUMNS = {BATTERY_SETPOINT: "battery.power_setpoint_kw",
                    "plant.ice_tank.charge_setpoint_kwth": "ice_tank.charge_kwth",
                    "plant.ice_tank.melt_setpoint_kwth": "ice_tank.melt_kwth"}
"""Setpoints the controller writes and the plan columns they come from."""


def basic(user: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{user}-password".encode()).decode()}


@pytest.fixture(scope="module")
def users(tmp_path_factory) -> UserStore:
    users_file = tmp_path_factory.mktemp("users") / "users.yaml"
    for name, role in (("olga", "operator"), ("vic", "viewer"), ("tara", "trader")):
        add_user(users_file, name, role, f"{name}-password")
    return UserStore.load(users_file)


@pytest.fixture
def make_live(demo_park, users, tmp_path):
    """(approval mode, horizon h) -> (test client, LivePark, fault episode): a dashboard over a fresh history
    holding one active fault, and a live park whose first plan is made (nothing simulated yet)."""
    stores = []

    def make(approval: str, horizon_h: int = 4):
        store = open_history(f"sqlite:///{tmp_path / f'{approval}-{len(stores)}.sqlite'}")
        stores.append(store)
        episodes = FaultEpisodeStore(store)
        fault = FaultEpisode("battery_overtemp", "battery", START_UTC - timedelta(hours=1), None, Priority.CRITICAL,
                             {"cell_temp_max_c": 52.0})
        episodes.save([fault])
        live = LivePark(demo_park, store, START_UTC, approval, horizon_h=horizon_h)
        live.operation.step_now()
        app = create_app(demo_park, LiveState(), store, users=users, now_utc=live.now_utc, plan=live.operation,
                         faults=StoredFaultProvider(episodes, now_utc=lambda: ACK_AT))
        return app.server.test_client(), live, fault

    yield make
    for store in stores:
        store.close()


def step_row(plan: dict, ts_utc: str) -> dict:
    """The plan's row of a step (plan steps print times with a space, rounds in ISO form)."""
    return next(s for s in plan["steps"] if datetime.fromisoformat(s["ts_utc"]) == datetime.fromisoformat(ts_utc))


def assert_written_from_plan(round_: dict, plan: dict) -> None:
    """Every setpoint of the round comes from the plan's row of its step, and was written."""
    assert round_["plan_id"] == plan["id"] and not round_["released"]
    row = step_row(plan, round_["ts_utc"])
    written = {w["point_id"]: w for w in round_["writes"]}
    for point, column in SETPOINT_COLUMNS.items():
        assert written[point]["result"] == "ok"
        assert written[point]["value"] == pytest.approx(row[column], abs=1e-9), point


def test_only_operators_acknowledge_a_fault_and_who_and_when_show_in_the_api(make_live, caplog):
    client, _, fault = make_live("manual")
    body = {"id": fault.id}
    with caplog.at_level(logging.WARNING, logger="dashboard.auth"):
        assert client.post("/api/faults/ack", json=body).status_code == 403
        assert client.post("/api/faults/ack", json=body, headers=basic("vic")).status_code == 403
    refusals = [r.getMessage() for r in caplog.records if "refused acknowledge_fault" in r.getMessage()]
    assert len(refusals) == 2 and "anonymous" in refusals[0] and "'vic' (role viewer)" in refusals[1]
    (shown,) = client.get("/api/faults?from=2026-07-01T00:00:00Z&to=2026-07-02T00:00:00Z").get_json()["faults"]
    assert shown["id"] == fault.id and shown["end_utc"] is None and shown["acknowledged_by"] is None
    assert client.post("/api/faults/ack", json={"id": "battery_overtemp:battery::1"},
                       headers=basic("olga")).status_code == 404
    assert client.post("/api/faults/ack", json={}, headers=basic("olga")).status_code == 400
    answer = client.post("/api/faults/ack", json=body, headers=basic("olga"))
    assert answer.status_code == 200 and answer.get_json()["fault"]["acknowledged_by"] == "olga"
    (shown,) = client.get("/api/faults?from=2026-07-01T00:00:00Z&to=2026-07-02T00:00:00Z").get_json()["faults"]
    assert (shown["acknowledged_by"], shown["acknowledged_utc"]) == ("olga", ACK_AT.isoformat())


def test_manual_dispatch_writes_every_step_after_a_traders_approval_and_suspend_releases(make_live, caplog):
    client, live, _ = make_live("manual")
    live.step()
    plan = client.get("/api/plan").get_json()
    approval = plan["approval"]
    assert (approval["mode"], approval["approved_by"], approval["active"]) == ("manual", None, False)
    assert plan["start_utc"] == "2026-07-01T04:15:00+00:00" and plan["rounds"][-1]["writes"] == []
    with caplog.at_level(logging.WARNING, logger="dashboard.auth"):
        for headers in ({}, basic("vic"), basic("olga")):
            assert client.post("/api/plan/approve", json={"id": plan["id"]}, headers=headers).status_code == 403
            assert client.post("/api/plan/suspend", headers=headers).status_code == 403
    assert sum("refused approve_plan" in r.getMessage() for r in caplog.records) == 3
    assert sum("refused suspend_plan" in r.getMessage() for r in caplog.records) == 3
    live.step()
    rounds = client.get("/api/plan/rounds").get_json()["rounds"]
    assert len(rounds) == 3 and all(r["writes"] == [] for r in rounds)  # nothing written before approval
    assert live.read_back(BATTERY_SETPOINT, START_UTC) == pytest.approx([SCHEDULE_BATTERY_KW] * 30)
    assert client.post("/api/plan/approve", json={"id": "another"}, headers=basic("tara")).status_code == 409

    plan = client.get("/api/plan").get_json()
    answer = client.post("/api/plan/approve", json={"id": plan["id"]}, headers=basic("tara"))
    assert answer.status_code == 200
    approval = answer.get_json()["approval"]
    assert (approval["approved_by"], approval["approved_plan_id"], approval["active"]) == ("tara", plan["id"], True)
    assert approval["until_utc"] == plan["end_utc"]
    assert_written_from_plan(client.get("/api/plan/rounds").get_json()["rounds"][-1], plan)  # the step in force
    assert client.post("/api/plan/approve", json={"id": plan["id"]}, headers=basic("tara")).status_code == 409

    approved_at = live.now_utc()
    for _ in range(3):  # every step is dispatched from the plan in force, re-planned each step
        step = live.step()
        plan = client.get("/api/plan").get_json()
        assert step.plan_id == plan["id"] and plan["approval"]["active"]
        assert_written_from_plan(plan["rounds"][-1], plan)
    since = client.get(f"/api/plan/rounds?from={approved_at.isoformat().replace('+00:00', 'Z')}").get_json()
    dispatched = since["rounds"]
    assert [datetime.fromisoformat(r["ts_utc"]) for r in dispatched] == \
        [approved_at + timedelta(minutes=15 * k) for k in (0, 0, 1, 2, 3)]  # the approval's round, then each step
    # the simulator read back what each round wrote over the step that followed it
    for first in dispatched[1:-1]:
        start = datetime.fromisoformat(first["ts_utc"])
        written = next(w["value"] for w in first["writes"] if w["point_id"] == BATTERY_SETPOINT)
        read = live.read_back(BATTERY_SETPOINT, start)[:15]
        assert read == pytest.approx([written] * 15)
    last_written = next(w["value"] for w in dispatched[-1]["writes"] if w["point_id"] == BATTERY_SETPOINT)
    assert abs(last_written - SCHEDULE_BATTERY_KW) > 1.0  # the plan holds the battery away from the schedule

    suspended_at = live.now_utc()
    answer = client.post("/api/plan/suspend", headers=basic("tara"))
    assert answer.status_code == 200
    approval = answer.get_json()["approval"]
    assert (approval["suspended_by"], approval["active"], approval["dispatched_step_utc"]) == ("tara", False, None)
    release = client.get("/api/plan/rounds").get_json()["rounds"][-1]
    assert release["released"] == "suspended by tara"
    assert {w["point_id"]: (w["value"], w["result"]) for w in release["writes"]} == \
        {w["point_id"]: (None, "ok") for w in dispatched[-1]["writes"]}
    live.step()
    assert client.get("/api/plan/rounds").get_json()["rounds"][-1]["writes"] == []
    assert live.read_back(BATTERY_SETPOINT, suspended_at) == pytest.approx([SCHEDULE_BATTERY_KW] * 15)


def test_an_expired_approval_releases_raises_the_alarm_and_cannot_be_approved_again(make_live):
    client, live, _ = make_live("manual", horizon_h=1)
    plan = client.get("/api/plan").get_json()
    assert client.post("/api/plan/approve", json={"id": plan["id"]}, headers=basic("tara")).status_code == 200
    until = datetime.fromisoformat(plan["end_utc"])
    while live.now_utc() < until:
        live.step()
    approval = client.get("/api/plan").get_json()["approval"]
    assert (approval["active"], approval["expired"]) == (False, True)
    assert "expired" in approval["alarm"] and live.alarms[-1][0] == "plan_expired"
    last = client.get("/api/plan/rounds").get_json()["rounds"][-1]
    assert last["released"] == "the approved plan has expired" and last["writes"]
    assert all(w["value"] is None and w["result"] == "ok" for w in last["writes"])
    refused = client.post("/api/plan/approve", json={"id": plan["id"]}, headers=basic("tara"))
    assert refused.status_code == 409
    live.step()
    assert client.get("/api/plan/rounds").get_json()["rounds"][-1]["writes"] == []
    assert client.get("/api/plan").get_json()["approval"]["expired"]


def test_auto_mode_dispatches_every_step_without_approval(make_live):
    client, live, _ = make_live("auto")
    for _ in range(2):
        live.step()
        plan = client.get("/api/plan").get_json()
        assert plan["approval"]["approved_by"] is None and plan["approval"]["active"]
        assert_written_from_plan(plan["rounds"][-1], plan)
    every = client.get("/api/plan/rounds").get_json()
    assert [len(r["writes"]) > 0 for r in every["rounds"]] == [True] * 3
    assert (every["truncated"], every["next_offset"], every["limit"]) == (False, None, 2000)
    pages = [client.get("/api/plan/rounds?limit=2").get_json()]  # a page at a time, oldest first
    assert (pages[0]["truncated"], pages[0]["next_offset"]) == (True, 2)
    pages.append(client.get("/api/plan/rounds?limit=2&offset=2").get_json())
    assert (pages[1]["truncated"], pages[1]["next_offset"]) == (False, None)
    assert pages[0]["rounds"] + pages[1]["rounds"] == every["rounds"]
    assert client.get("/api/plan/rounds?limit=2001").status_code == 400


def test_the_csv_download_holds_the_same_steps_as_the_json(make_live):
    client, live, _ = make_live("manual")
    live.step()
    plan = client.get("/api/plan").get_json()
    response = client.get("/api/plan.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert f'plan-{plan["id"]}.csv' in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert len(rows) == len(plan["steps"]) == 16  # the controller's 4-hour horizon in 15-minute steps
    for row, step in zip(rows, plan["steps"]):
        assert datetime.fromisoformat(row["ts_utc"]) == datetime.fromisoformat(step["ts_utc"])
        for column in ("grid_import_kw", "battery.power_setpoint_kw", "ice_tank.soc_pct"):
            assert float(row[column]) == pytest.approx(step[column], rel=1e-5, abs=1e-6)
    # the plan's grid import prices to its energy cost (an independent sum over the steps)
    energy = sum(s["grid_import_kw"] * 0.25 * s["price_cny_per_kwh"] for s in plan["steps"])
    assert plan["costs"]["energy_cny"] == pytest.approx(energy, rel=1e-9)
