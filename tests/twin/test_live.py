"""Live state: latest reading per point, ordering, staleness and subscribers."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from twin.live import LiveState
from twin.readings import Quality, Reading

T0 = datetime(2026, 7, 1, tzinfo=UTC)


def r(pid: str, minutes: int, value: float | None, quality: Quality = Quality.GOOD) -> Reading:
    return Reading(pid, T0 + timedelta(minutes=minutes), value, quality)


def test_latest_wins_and_older_readings_do_not_go_back_in_time():
    live = LiveState()
    live.update([r("a.b.x_kw", 1, 10.0), r("a.b.y_kw", 1, 5.0)])
    live.update([r("a.b.x_kw", 2, 11.0)])
    live.update([r("a.b.x_kw", 0, 99.0)])
    assert live.get("a.b.x_kw").value == 11.0
    assert live.get("a.b.y_kw").value == 5.0
    assert live.get("a.b.z_kw") is None
    assert set(live.snapshot()) == {"a.b.x_kw", "a.b.y_kw"}
    assert set(live.snapshot(["a.b.y_kw", "nope"])) == {"a.b.y_kw"}


def test_value_is_only_given_for_good_readings():
    live = LiveState()
    live.update([r("p", 1, None, Quality.COMM_FAIL), r("q", 1, 3.0, Quality.BAD), r("s", 1, 2.0)])
    assert live.value("p") is None and live.value("q", default=-1) == -1 and live.value("s") == 2.0
    assert live.get("p").quality is Quality.COMM_FAIL


def test_subscribers_get_only_changes_of_the_points_they_follow():
    live = LiveState()
    seen_all, seen_x = [], []
    live.subscribe(seen_all.extend)
    sub_x = live.subscribe(seen_x.extend, ["x"])
    live.update([r("x", 1, 1.0), r("y", 1, 2.0)])
    live.update([r("x", 2, 1.0)])  # same value and quality: no change
    live.update([r("x", 3, 1.0, Quality.BAD)])  # quality change counts
    assert [(x.point_id, x.value) for x in seen_all] == [("x", 1.0), ("y", 2.0), ("x", 1.0)]
    assert [x.quality for x in seen_x] == [Quality.GOOD, Quality.BAD]
    sub_x.cancel()
    live.update([r("x", 4, 7.0)])
    assert len(seen_x) == 2 and seen_all[-1].value == 7.0


def test_a_failing_subscriber_does_not_stop_updates_or_other_subscribers():
    live = LiveState()
    got = []

    def broken(_):
        raise RuntimeError("subscriber bug")

    live.subscribe(broken)
    live.subscribe(got.extend)
    live.update([r("x", 1, 1.0)])
    assert live.get("x").value == 1.0 and len(got) == 1


def test_mark_stale_keeps_value_and_flags_quality():
    live = LiveState()
    live.update([r("old", 0, 4.0), r("fresh", 9, 5.0), r("dead", 0, None, Quality.COMM_FAIL)])
    stale = live.mark_stale(T0 + timedelta(minutes=10), max_age_s=180)
    assert [x.point_id for x in stale] == ["old"]
    assert live.get("old").quality is Quality.STALE and live.get("old").value == 4.0
    assert live.get("fresh").quality is Quality.GOOD
    assert live.get("dead").quality is Quality.COMM_FAIL


def test_concurrent_writers_and_readers():
    live = LiveState()

    def writer(name: str):
        for i in range(2000):
            live.update([r(name, i, float(i))])

    threads = [threading.Thread(target=writer, args=(f"p{k}",)) for k in range(4)]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        live.snapshot()
    for t in threads:
        t.join()
    assert {pid: x.value for pid, x in live.snapshot().items()} == {f"p{k}": 1999.0 for k in range(4)}
