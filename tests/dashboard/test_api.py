"""The JSON API over a simulated history: values match history, missing capabilities answer 503, writes need a role."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest

from dashboard.app import create_app
from dashboard.auth import UserStore, add_user
from energy.environment import ParkEnvironment
from twin.history import open_history
from twin.live import LiveState
from twin.sim import ParkSimulator

SIM_START_UTC = datetime(2026, 6, 30, 16, 0, tzinfo=UTC)  # local midnight, 1 July (conftest)
DAY2_UTC = SIM_START_UTC + timedelta(days=1)
SETPOINT = "plant.chiller1.chw_setpoint_c"


@pytest.fixture(scope="module")
def served(demo_park, simulated_history, tmp_path_factory):
    """The dashboard's Flask server over the simulated history, a simulator taking writes, and three users."""
    users_file = tmp_path_factory.mktemp("users") / "users.yaml"
    for name, role in (("olga", "operator"), ("vic", "viewer"), ("tara", "trader")):
        add_user(users_file, name, role, f"{name}-password")
    assert simulated_history.start_utc == SIM_START_UTC
    store = open_history(simulated_history.url)
    live = LiveState()
    live.update(store.latest(list(demo_park.points)).values())
    simulator = ParkSimulator(demo_park, ParkEnvironment(demo_park), DAY2_UTC + timedelta(days=1))
    app = create_app(demo_park, live, store,
                     write_point=lambda point, value, who: simulator.write_setpoint(point, value),
                     users=UserStore.load(users_file), now_utc=lambda: DAY2_UTC + timedelta(days=1))
    yield app.server, store, simulator, live
    store.close()


def basic(user: str) -> dict:
    import base64

    token = base64.b64encode(f"{user}:{user}-password".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def test_an_offset_whose_plus_sign_was_not_url_encoded_still_counts(served):
    client = served[0].test_client()
    plain = client.get("/api/readings?point=plant.grid_meter.power_kw&from=2026-07-02T08:00:00+08:00"
                       "&to=2026-07-02T08:10:00%2B08:00").get_json()
    assert plain["from"] == "2026-07-02T00:00:00+00:00"
    assert len(plain["points"]["plant.grid_meter.power_kw"]["value"]) == 10


def test_readings_raw_and_resampled_match_the_history(served, demo_park):
    server, store, _, _ = served
    client = server.test_client()
    pid = "plant.grid_meter.power_kw"
    start, end = DAY2_UTC + timedelta(hours=8), DAY2_UTC + timedelta(hours=10)
    raw = client.get(f"/api/readings?point={pid}&from={start.isoformat()}&to={end.isoformat()}").get_json()
    expected = store.query([pid], start, end)
    assert raw["points"][pid]["value"] == pytest.approx(expected["value"].tolist())
    assert len(raw["points"][pid]["ts_utc"]) == 120
    # resampled: a second implementation of 15-minute means over the raw readings
    means = client.get(f"/api/readings?point={pid}&from={start.isoformat()}&to={end.isoformat()}"
                       "&interval_s=900").get_json()
    by_hand = expected.set_index("ts_utc")["value"].resample("15min").mean()
    assert means["points"][pid]["value"] == pytest.approx(by_hand.tolist())
    assert [datetime.fromisoformat(t) for t in means["points"][pid]["ts_utc"]] == list(by_hand.index)


@pytest.mark.parametrize("query, message", [
    ("", "at least one point"),
    ("?point=nope.nope.x", "unknown point"),
    ("?point=plant.grid_meter.power_kw&from=yesterday", "not an ISO 8601 time"),
    ("?point=plant.grid_meter.power_kw&from=2026-07-01T00:00:00", "no time zone"),
    ("?point=plant.grid_meter.power_kw&from=2026-07-02T00:00:00Z&to=2026-07-01T00:00:00Z", "after"),
    ("?point=plant.grid_meter.power_kw&interval_s=0", "positive whole number"),
])
def test_bad_reading_queries_answer_400_naming_the_problem(served, query, message):
    response = served[0].test_client().get(f"/api/readings{query}")
    assert response.status_code == 400 and message in response.get_json()["error"]


def test_energy_totals_match_an_integration_of_the_meters(served, demo_park):
    server, store, _, _ = served
    body = server.test_client().get("/api/energy?period=custom&first_day=2026-07-02&last_day=2026-07-02").get_json()
    assert body["from"] == DAY2_UTC.isoformat()
    meters = ["plant.meter.power_kw", "b1.meter_b1.power_kw", "b2.meter_b2.power_kw"]
    raw = store.query(meters + ["plant.grid_meter.power_kw"], DAY2_UTC, DAY2_UTC + timedelta(days=1))
    kwh = raw.groupby("point_id")["value"].sum() / 60  # 1-minute samples: kW x 1/60 h
    assert body["current"]["consumption_kwh"]["total"] == pytest.approx(kwh[meters].sum(), rel=1e-9)
    assert body["current"]["grid_import_kwh"] == pytest.approx(kwh["plant.grid_meter.power_kw"], rel=1e-9)
    assert body["current"]["coverage"]["consumption_kwh"] == pytest.approx(1.0) and body["partial"] is False
    # compared like for like: the same weekday a week before, which the history (from 1 July) does not hold
    assert body["compared_with"]["from"] == (DAY2_UTC - timedelta(days=7)).isoformat()
    assert body["previous"]["coverage"]["consumption_kwh"] == 0.0
    by_month = server.test_client().get("/api/energy?period=custom&first_day=2026-07-02&last_day=2026-07-02"
                                        "&compare=month").get_json()
    assert by_month["compared_with"]["from"] == (DAY2_UTC - timedelta(days=30)).isoformat()  # 2 June


def test_points_show_live_values_quality_and_age(served, demo_park):
    server, store, _, _ = served
    body = server.test_client().get("/api/points").get_json()
    assert len(body["points"]) == len(demo_park.points)
    row = next(r for r in body["points"] if r["id"] == "plant.grid_meter.power_kw")
    latest = store.latest(["plant.grid_meter.power_kw"])["plant.grid_meter.power_kw"]
    assert row["value"] == latest.value and row["quality"] == "good" and row["unit"] == "kW"
    # the clock given to the app is one day after the start of day 2; the last reading is at its end - 1 min
    assert row["age_s"] == pytest.approx(60)
    park = server.test_client().get("/api/park").get_json()
    assert [b["id"] for b in park["buildings"]] == [b.id for b in demo_park.buildings]


@pytest.mark.parametrize("path", ["/api/faults", "/api/plan"])
def test_endpoints_of_missing_capabilities_answer_503(served, path):
    response = served[0].test_client().get(path)
    assert response.status_code == 503 and "available when" in response.get_json()["error"]


def test_writes_need_the_operator_role_and_are_logged_when_refused(served, caplog):
    server, _, simulator, _ = served
    client = server.test_client()
    url = f"/api/points/{SETPOINT}/write"
    with caplog.at_level(logging.WARNING, logger="dashboard.auth"):
        assert client.post(url, json={"value": 8.0}).status_code == 403
        assert client.post(url, json={"value": 8.0}, headers=basic("vic")).status_code == 403
        assert client.post(url, json={"value": 8.0}, headers=basic("tara")).status_code == 403
    refusals = [r.getMessage() for r in caplog.records if "refused write_point" in r.getMessage()]
    assert len(refusals) == 3 and "anonymous" in refusals[0] and "'vic' (role viewer)" in refusals[1]
    assert client.post(url, json={"value": 12.5}, headers=basic("olga")).status_code == 400  # limits 5-12 degC
    assert client.post(url, json={"value": "warm"}, headers=basic("olga")).status_code == 400
    assert client.post("/api/points/plant.chiller1.power_kw/write", json={"value": 1},
                       headers=basic("olga")).status_code == 400  # a measurement is not writable
    assert client.post("/api/points/no.such.point/write", json={"value": 1}).status_code == 404
    response = client.post(url, json={"value": 8.0}, headers=basic("olga"))
    assert response.status_code == 200
    step = simulator.advance()
    assert next(r for r in simulator.readings(step) if r.point_id == SETPOINT).value == 8.0


def test_session_sign_in_allows_writes_and_a_wrong_password_does_not(served):
    client = served[0].test_client()
    own = {"Origin": "http://localhost"}  # a browser names the page's origin on every POST
    refused = client.post("/login", data={"username": "olga", "password": "wrong", "next": "/assets"},
                          headers=own)
    assert refused.status_code == 401
    signed_in = client.post("/login", data={"username": "olga", "password": "olga-password",
                                            "next": "https://elsewhere.example/"}, headers=own)
    assert signed_in.status_code == 302 and signed_in.headers["Location"] == "/"  # never off-site
    for target in ("//elsewhere.example/", "/\\elsewhere.example/"):
        again = client.post("/login", data={"username": "olga", "password": "olga-password", "next": target},
                            headers=own)
        assert again.headers["Location"] == "/"
    kept = client.post("/login", data={"username": "olga", "password": "olga-password", "next": "/assets?asset=ev1"},
                       headers=own)
    assert kept.headers["Location"] == "/assets?asset=ev1"
    assert client.post(f"/api/points/{SETPOINT}/write", json={"value": 9.0}, headers=own).status_code == 200
    client.get("/logout")  # sign-out is a POST from this server's own page: a link does not sign out
    assert client.post(f"/api/points/{SETPOINT}/write", json={"value": 9.0}, headers=own).status_code == 200
    assert client.post("/logout", headers=own).status_code == 302
    assert client.post(f"/api/points/{SETPOINT}/write", json={"value": 9.0}, headers=own).status_code == 403
