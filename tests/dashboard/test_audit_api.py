"""GET /api/audit: the write audit log over HTTP, on both history backends, with writes made through the API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dashboard.api import AUDIT_LIMIT, MAX_AUDIT_LIMIT
from dashboard.app import create_app
from dashboard.auth import UserStore, add_user
from twin.history import WriteRecord, open_history, record_write
from twin.live import LiveState

LOCAL_MIDNIGHT_UTC = datetime(2026, 6, 30, 16, 0, tzinfo=UTC)  # 1 July 00:00 in Asia/Shanghai
SETPOINT = "plant.chiller1.chw_setpoint_c"
MS = timedelta(milliseconds=1)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def served(request, demo_park, tmp_path):
    """The dashboard over an empty history whose point writer records each write as `parktwin run` does,
    stamped with a clock the test sets."""
    url = f"sqlite:///{tmp_path / 'audit.sqlite'}" if request.param == "sqlite" \
        else request.getfixturevalue("postgres_url")
    users_file = tmp_path / "users.yaml"
    add_user(users_file, "olga", "operator", "olga-password")
    clock = [LOCAL_MIDNIGHT_UTC]
    with open_history(url) as store:
        def write_point(point_id: str, value: float, who: str) -> None:
            record_write(store, WriteRecord(clock[0], f"dashboard:{who}", point_id, value, "ok"))

        app = create_app(demo_park, LiveState(), store, write_point=write_point,
                         users=UserStore.load(users_file), now_utc=lambda: clock[0])
        yield app.server.test_client(), store, clock


def basic(user: str) -> dict:
    import base64

    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{user}-password".encode()).decode()}


def get_audit(client, query: str) -> dict:
    response = client.get(f"/api/audit?{query}")
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_writes_made_through_the_api_are_listed_with_who_value_result_and_time(served):
    client, store, clock = served
    for minutes, value in ((5, 8.0), (65, 9.5)):
        clock[0] = LOCAL_MIDNIGHT_UTC + timedelta(minutes=minutes)
        assert client.post(f"/api/points/{SETPOINT}/write", json={"value": value},
                            headers=basic("olga")).status_code == 200
    record_write(store, WriteRecord(LOCAL_MIDNIGHT_UTC + timedelta(hours=2), "optimizer",
                                    "plant.battery.power_setpoint_kw", None, "failed: no answer"))

    body = get_audit(client, "from=2026-07-01T00:00:00%2B08:00&to=2026-07-01T02:00:00Z")  # anonymous, like reads

    assert body["writes"] == [
        {"ts_utc": "2026-06-30T16:05:00+00:00", "who": "dashboard:olga", "point_id": SETPOINT, "value": 8.0,
         "requested": "8.0", "result": "ok"},
        {"ts_utc": "2026-06-30T17:05:00+00:00", "who": "dashboard:olga", "point_id": SETPOINT, "value": 9.5,
         "requested": "9.5", "result": "ok"},
        {"ts_utc": "2026-06-30T18:00:00+00:00", "who": "optimizer", "point_id": "plant.battery.power_setpoint_kw",
         "value": None, "requested": "relinquish", "result": "failed: no answer"},
    ]
    assert body["next"] is None and body["limit"] == AUDIT_LIMIT and not body["truncated"]
    assert body["from"] == "2026-06-30T16:00:00+00:00" and body["to"] == "2026-07-01T02:00:00+00:00"


def test_a_date_is_midnight_in_the_parks_time_zone_and_to_is_exclusive(served):
    client, store, _ = served
    next_midnight = LOCAL_MIDNIGHT_UTC + timedelta(days=1)
    for i, ts in enumerate([LOCAL_MIDNIGHT_UTC - MS, LOCAL_MIDNIGHT_UTC, next_midnight - MS, next_midnight]):
        record_write(store, WriteRecord(ts, f"w{i}", SETPOINT, 8.0, "ok"))

    body = get_audit(client, "from=2026-07-01&to=2026-07-02")

    assert body["from"] == LOCAL_MIDNIGHT_UTC.isoformat() and body["to"] == next_midnight.isoformat()
    assert [w["who"] for w in body["writes"]] == ["w1", "w2"]
    assert [datetime.fromisoformat(w["ts_utc"]) for w in body["writes"]] == [LOCAL_MIDNIGHT_UTC, next_midnight - MS]


def test_pages_follow_next_without_gaps_or_repeats(served):
    client, store, _ = served
    seconds = [s % 7 for s in range(25)]  # equal times straddle the page borders
    for i, s in enumerate(seconds):
        record_write(store, WriteRecord(LOCAL_MIDNIGHT_UTC + timedelta(seconds=s), f"w{i}", SETPOINT, float(i), "ok"))
    expected = [f"w{i}" for i in sorted(range(25), key=lambda i: (seconds[i], i))]

    pages, query = [], "from=2026-07-01&to=2026-07-02&limit=10"
    for _ in range(4):  # bounded: a cursor that fails to advance must fail, not hang
        body = get_audit(client, query)
        pages.append([w["who"] for w in body["writes"]])
        if body["next"] is None:
            break
        query = f"from=2026-07-01&to=2026-07-02&limit=10&cursor={body['next']}"

    assert [len(p) for p in pages] == [10, 10, 5]
    assert [who for p in pages for who in p] == expected


def test_answers_stop_at_the_default_limit_and_say_where_to_go_on(served):
    client, store, _ = served
    for i in range(AUDIT_LIMIT + 1):
        record_write(store, WriteRecord(LOCAL_MIDNIGHT_UTC + i * MS, f"w{i}", SETPOINT, 8.0, "ok"))
    first = get_audit(client, "from=2026-07-01&to=2026-07-02")
    assert len(first["writes"]) == AUDIT_LIMIT and first["next"] is not None and first["truncated"]
    rest = get_audit(client, f"from=2026-07-01&to=2026-07-02&cursor={first['next']}")
    assert [w["who"] for w in rest["writes"]] == [f"w{AUDIT_LIMIT}"] and rest["next"] is None


@pytest.mark.parametrize("query, message", [
    ("to=2026-07-02", "missing query parameter 'from'"),
    ("from=2026-07-01", "missing query parameter 'to'"),
    ("from=yesterday&to=2026-07-02", "from='yesterday' is not an ISO 8601 time"),
    ("from=2026-07-01&to=2026-07-02T00:00:00", "to='2026-07-02T00:00:00' has no time zone"),
    ("from=2026-07-02&to=2026-07-01", "'to' must be after 'from'"),
    ("from=2026-07-01&to=2026-07-01", "'to' must be after 'from'"),
    ("from=2026-07-01&to=2026-07-02&limit=0", "limit='0'"),
    ("from=2026-07-01&to=2026-07-02&limit=many", "limit='many'"),
    (f"from=2026-07-01&to=2026-07-02&limit={MAX_AUDIT_LIMIT + 1}", f"from 1 to {MAX_AUDIT_LIMIT}"),
    ("from=2026-07-01&to=2026-07-02&cursor=page2", "cursor='page2'"),
])
def test_bad_or_missing_parameters_answer_400_naming_the_parameter(served, query, message):
    response = served[0].get(f"/api/audit?{query}")
    assert response.status_code == 400 and message in response.get_json()["error"], response.get_json()


@pytest.mark.parametrize(("point_id", "body", "user", "requested", "result"), [
    ("plant.no_such_point", {"value": 8.0}, "olga", "8.0", "refused: unknown point 'plant.no_such_point'"),
    (SETPOINT, {"value": 8.0}, None, "8.0",
     "refused: writing a point needs a signed-in user with the operator or admin role"),
    ("plant.chiller1.chw_supply_temp_c", {"value": 7.0}, "olga", "7.0",
     "refused: point plant.chiller1.chw_supply_temp_c is not writable"),
    (SETPOINT, {"value": "warm"}, "olga", "warm", "refused: value 'warm' is not a number"),
    (SETPOINT, {"value": None}, "olga", "relinquish", "refused: value None is not a number"),
    (SETPOINT, {"value": "nan"}, "olga", "nan", ("refused: nan is outside the safe limits of "
                                               "plant.chiller1.chw_setpoint_c [5, 12] degC")),
    (SETPOINT, {"value": 30}, "olga", "30", ("refused: 30 is outside the safe limits of "
                                           "plant.chiller1.chw_setpoint_c [5, 12] degC")),
], ids=["unknown-point", "anonymous", "not-writable", "not-a-number", "null", "nan", "outside-limits"])
def test_a_write_the_dashboard_refuses_is_audited_with_its_reason(served, point_id, body, user, requested, result):
    client, _, clock = served
    response = client.post(f"/api/points/{point_id}/write", json=body, headers=basic(user) if user else {})
    assert response.status_code in (400, 403, 404)

    (record,) = get_audit(client, "from=2026-07-01&to=2026-07-02")["writes"]
    who = "dashboard" if user is None or point_id not in ("plant.chiller1.chw_supply_temp_c", SETPOINT) \
        else f"dashboard:{user}"  # refused before a user is known: an unknown point, a client not allowed
    assert record == {"ts_utc": clock[0].isoformat(), "who": who,
                      "point_id": point_id, "value": None, "requested": requested, "result": result}
