"""Live state: latest reading per point, ordering, and readers beside writers."""

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
