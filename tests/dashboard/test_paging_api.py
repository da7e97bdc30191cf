"""Caps and paging of /api/readings over HTTP (waitress on 127.0.0.1), on two simulated days of 1-minute
readings: an answer holds at most ``limit`` rows, says whether it was cut, and its ``next`` leads to the rest;
the pages together are exactly the history's rows."""

from __future__ import annotations

from datetime import timedelta

import pytest
import requests
from browser_support import served

from dashboard.app import create_app
from twin.history import open_history
from twin.live import LiveState

POINTS = ["plant.grid_meter.power_kw", "plant.chiller1.power_kw", "plant.chiller2.power_kw",
          "b1.meter_b1.power_kw", "b2.meter_b2.power_kw"]
"""5 points x 2 days x 1,440 minutes = 14,400 readings: more than the default cap of 10,000."""


@pytest.fixture(scope="module")
def api(demo_park, simulated_history):
    """(base URL, history, from, to) of the dashboard served over the simulated history."""
    with open_history(simulated_history.url) as store:
        with served(create_app(demo_park, LiveState(), store)) as base:
            start = simulated_history.start_utc
            yield base, store, start, start + timedelta(days=simulated_history.days)


def pages(base: str, query: dict) -> list[dict]:
    """Every answer of /api/readings for ``query``, following ``next`` to the end."""
    answers = []
    cursor = None
    while True:
        answer = requests.get(f"{base}/api/readings", params={**query, **({"cursor": cursor} if cursor else {})},
                              timeout=120)
        assert answer.status_code == 200, answer.text
        answers.append(answer.json())
        cursor = answers[-1]["next"]
        if cursor is None:
            return answers
        assert len(answers) < 100, "next never ends"


def test_raw_readings_over_the_cap_come_in_pages_whose_union_is_the_history(api):
    base, store, start, end = api
    query = {"point": ",".join(POINTS), "from": start.isoformat(), "to": end.isoformat()}
    answers = pages(base, query)
    assert [a["rows"] for a in answers] == [10_000, 4_400]  # 5 x 2,880 readings
    assert [(a["truncated"], a["limit"]) for a in answers] == [(True, 10_000), (False, 10_000)]
    assert sum(len(a["points"][pid]["value"]) for a in answers for pid in POINTS) == 14_400
    expected = store.query(POINTS, start, end)
    for pid, group in expected.groupby("point_id"):
        got_times = [t for a in answers for t in a["points"][pid]["ts_utc"]]
        got_values = [v for a in answers for v in a["points"][pid]["value"]]
        assert got_times == [t.isoformat() for t in group["ts_utc"]], pid  # no gap, no repeat, in order
        assert got_values == pytest.approx(group["value"].tolist()), pid


def test_a_smaller_limit_pages_across_point_boundaries(api):
    base, _, start, end = api
    query = {"point": ",".join(POINTS[:2]), "from": start.isoformat(), "to": end.isoformat(), "limit": 1000}
    answers = pages(base, query)
    assert [a["rows"] for a in answers] == [1000] * 5 + [760]  # 2 x 2,880 = 5,760
    # the third page ends the first point (2,880 = 2 x 1,000 + 880) and starts the second
    third = answers[2]["points"]
    assert (len(third[POINTS[0]]["value"]), len(third[POINTS[1]]["value"])) == (880, 120)
    total = {pid: sum(len(a["points"][pid]["ts_utc"]) for a in answers) for pid in POINTS[:2]}
    assert total == {POINTS[0]: 2880, POINTS[1]: 2880}


def test_bucket_means_come_in_whole_buckets_whose_union_is_the_history(api):
    base, store, start, end = api
    query = {"point": ",".join(POINTS), "from": start.isoformat(), "to": end.isoformat(), "interval_s": 300}
    answers = pages(base, {**query, "limit": 2000})  # 400 five-minute buckets of 5 points a page
    assert [len(a["points"][POINTS[0]]["ts_utc"]) for a in answers] == [400, 176]  # 2 x 288 buckets
    assert [a["truncated"] for a in answers] == [True, False]
    whole = store.resample(POINTS, start, end, interval_s=300, agg="mean")
    for pid in POINTS:
        assert [t for a in answers for t in a["points"][pid]["ts_utc"]] == [t.isoformat() for t in whole.index]
        assert [v for a in answers for v in a["points"][pid]["value"]] == pytest.approx(whole[pid].tolist())


@pytest.mark.parametrize("extra, message", [
    ({"limit": 100_001}, "limit='100001' must be a whole number from 1 to 100000"),
    ({"limit": 0}, "must be a whole number from 1 to 100000"),
    ({"cursor": "nope.nope@123"}, "is not the 'next' of an earlier /api/readings answer"),
    ({"cursor": "plant.grid_meter.power_kw@later"}, "is not the 'next'"),
    ({"cursor": "123", "interval_s": 300}, "is not the 'next'"),
])
def test_a_bad_limit_or_cursor_answers_400_naming_it(api, extra, message):
    base, _, start, end = api
    answer = requests.get(f"{base}/api/readings", params={"point": POINTS[0], "from": start.isoformat(),
                                                          "to": end.isoformat(), **extra}, timeout=60)
    assert answer.status_code == 400 and message in answer.json()["error"]
