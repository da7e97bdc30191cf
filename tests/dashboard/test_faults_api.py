"""/api/faults as the alarm console's API over a real SQLite store: filters, paging, the alarm count, and the
operator's actions on alarms (acknowledging a cleared one, commenting, shelving), with bad input refused."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest

from dashboard.actions import MAX_SHELVE_MINUTES
from dashboard.api import MAX_FAULTS_LIMIT
from dashboard.app import create_app
from dashboard.auth import UserStore, add_user
from energy.providers import StoredFaultProvider
from twin.fault_episodes import FaultEpisode, Priority
from twin.history import FaultEpisodeStore, open_history
from twin.live import LiveState

T0 = datetime(2026, 7, 1, 0, 0, tzinfo=UTC)
NOW = T0 + timedelta(days=2)
"""The twin's clock of these tests: acknowledgements, comments and shelvings are stamped with it."""
RANGE = "from=2026-06-30T00:00:00Z&to=2026-07-03T00:00:00Z"


def basic(user: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{user}-password".encode()).decode()}


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


@pytest.fixture
def served(demo_park, tmp_path):
    """(test client, store) of a dashboard over 30 episodes: every third critical, every fifth still active."""
    users_file = tmp_path / "users.yaml"
    for name, role in (("olga", "operator"), ("vic", "viewer")):
        add_user(users_file, name, role, f"{name}-password")
    with open_history(f"sqlite:///{tmp_path / 'h.sqlite'}") as history:
        store = FaultEpisodeStore(history)
        store.save(FaultEpisode("battery_overtemp" if i % 2 else "sensor_stale", "battery" if i % 2 else "chiller1",
                                at(i), None if i % 5 == 0 else at(i + 0.5),
                                Priority.CRITICAL if i % 3 == 0 else Priority.LOW) for i in range(30))
        app = create_app(demo_park, LiveState(), history, users=UserStore.load(users_file), now_utc=lambda: NOW,
                         faults=StoredFaultProvider(store, now_utc=lambda: NOW, park=demo_park))
        yield app.server.test_client(), store


def start_hours(body: dict) -> list[float]:
    return [(datetime.fromisoformat(f["start_utc"]) - T0).total_seconds() / 3600 for f in body["faults"]]


def test_filters_and_pages_select_in_the_store_newest_first(served):
    client, _ = served
    body = client.get(f"/api/faults?{RANGE}&priority=critical&state=active").get_json()
    assert start_hours(body) == [15, 0]  # by hand: multiples of 15 below 30
    assert (body["total"], body["offset"], body["next_offset"]) == (2, 0, None)
    assert set(body) >= {"from", "to", "faults", "fault_kpis_by_kind", "alarm_count", "shelved"}
    first = client.get(f"/api/faults?{RANGE}&asset=battery&limit=4").get_json()
    assert start_hours(first) == [29, 27, 25, 23] and (first["total"], first["next_offset"]) == (15, 4)
    assert first["truncated"] and not body["truncated"]
    last = client.get(f"/api/faults?{RANGE}&asset=battery&limit=4&offset=12").get_json()
    assert start_hours(last) == [5, 3, 1] and last["next_offset"] is None and not last["truncated"]
    window = client.get("/api/faults?from=2026-07-01T10:00:00Z&to=2026-07-01T12:00:00Z&rule=sensor_stale,"
                        "battery_overtemp").get_json()
    assert start_hours(window) == [11, 10, 5, 0]  # 9 ended at 9:30; 0 and 5 are still active


def test_the_alarm_count_leaves_out_acknowledged_and_shelved_alarms(served):
    client, _ = served
    body = client.get(f"/api/faults?{RANGE}").get_json()
    active = [f for f in body["faults"] if f["end_utc"] is None]
    assert body["alarm_count"] == len(active) == 6  # starts 0, 5, ..., 25
    battery = next(f for f in active if f["asset_id"] == "battery")
    assert client.post("/api/faults/ack", json={"id": battery["id"]}, headers=basic("olga")).status_code == 200
    assert client.get(f"/api/faults?{RANGE}").get_json()["alarm_count"] == 5
    stale = next(f for f in active if f["rule_id"] == "sensor_stale")
    answer = client.post("/api/faults/shelve", json={"id": stale["id"], "minutes": 90, "reason": "probe swapped"},
                         headers=basic("olga"))
    assert answer.status_code == 200
    shelved = answer.get_json()["shelved"]
    assert (shelved["shelved_by"], shelved["until_utc"]) == ("olga", (NOW + timedelta(minutes=90)).isoformat())
    body = client.get(f"/api/faults?{RANGE}").get_json()
    assert body["alarm_count"] == 2  # every sensor_stale episode of chiller1 is the one shelved alarm: 0, 10, 20
    assert body["shelved"] == [shelved]
    listed = client.get(f"/api/faults?{RANGE}&state=shelved").get_json()["faults"]
    assert {f["rule_id"] for f in listed} == {"sensor_stale"} and len(listed) == 15
    assert all(f["shelved_until_utc"] == shelved["until_utc"] for f in listed)


def test_an_operator_acknowledges_a_cleared_alarm_and_comments_on_it(served):
    client, store = served
    cleared = client.get(f"/api/faults?{RANGE}&state=cleared,unacknowledged&limit=1").get_json()["faults"][0]
    assert cleared["end_utc"] is not None
    answer = client.post("/api/faults/ack", json={"id": cleared["id"]}, headers=basic("olga")).get_json()
    assert (answer["fault"]["acknowledged_by"], answer["fault"]["acknowledged_utc"]) == ("olga", NOW.isoformat())
    answer = client.post("/api/faults/comment", json={"id": cleared["id"], "text": "  reset by the vendor "},
                         headers=basic("olga"))
    assert answer.status_code == 200 and answer.get_json()["comment"] == {
        "who": "olga", "at_utc": NOW.isoformat(), "text": "reset by the vendor"}
    (shown,) = [f for f in client.get(f"/api/faults?{RANGE}").get_json()["faults"] if f["id"] == cleared["id"]]
    assert shown["comments"] == [answer.get_json()["comment"]]
    assert [c.text for c in store.comments([cleared["id"]])[cleared["id"]]] == ["reset by the vendor"]


@pytest.mark.parametrize("query, reason", [
    ("priority=urgent", "priority 'urgent' is not one of low, medium, high, critical"),
    ("state=open", "state 'open' is not one of active, cleared"),
    ("limit=0", "limit='0' must be a whole number from 1 to"),
    (f"limit={MAX_FAULTS_LIMIT + 1}", f"from 1 to {MAX_FAULTS_LIMIT}"),
    ("offset=-1", "offset='-1' must be a whole number of at least 0"),
])
def test_bad_filters_are_refused_naming_the_parameter(served, query, reason):
    client, _ = served
    answer = client.get(f"/api/faults?{RANGE}&{query}")
    assert answer.status_code == 400 and reason in answer.get_json()["error"]


def test_only_operators_comment_and_shelve_and_bad_actions_are_refused(served):
    client, store = served
    some = client.get(f"/api/faults?{RANGE}&limit=1").get_json()["faults"][0]["id"]
    for path, body in (("/api/faults/comment", {"id": some, "text": "x"}),
                       ("/api/faults/shelve", {"id": some, "minutes": 60, "reason": "x"})):
        assert client.post(path, json=body).status_code == 403
        assert client.post(path, json=body, headers=basic("vic")).status_code == 403
    refusals = [
        ("/api/faults/comment", {"id": some, "text": "   "}, 400, "a comment needs some text"),
        ("/api/faults/comment", {"id": "sensor_stale:chiller1::1", "text": "x"}, 404, "no fault episode"),
        ("/api/faults/shelve", {"id": some, "minutes": 0, "reason": "x"}, 400, f"from 1 to {MAX_SHELVE_MINUTES}"),
        ("/api/faults/shelve", {"id": some, "minutes": "soon", "reason": "x"}, 400, "minutes 'soon'"),
        ("/api/faults/shelve", {"id": some, "minutes": 60}, 400, "needs a reason"),
        ("/api/faults/shelve", {"minutes": 60, "reason": "x"}, 400, "give an episode of the alarm to shelve"),
    ]
    for path, body, status, reason in refusals:
        answer = client.post(path, json=body, headers=basic("olga"))
        assert (answer.status_code, reason in answer.get_json()["error"]) == (status, True), (path, body)
    assert store.shelves() == [] and store.comments([some]) == {}  # nothing refused was stored
