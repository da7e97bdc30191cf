"""FanOutSink: every sink gets the readings, and one failing sink does not starve the others."""

from __future__ import annotations

from datetime import UTC, datetime

from twin.readings import Quality, Reading
from twin.runtime import FanOutSink


class Collect:
    def __init__(self):
        self.received: list[Reading] = []

    def deliver(self, readings):
        self.received.extend(readings)


class Broken:
    def deliver(self, readings):
        raise RuntimeError("detector crashed")


def test_a_failing_sink_is_logged_and_the_next_sink_still_gets_the_readings(caplog):
    first, last = Collect(), Collect()
    reading = Reading("b1.meter_b1.power_kw", datetime(2026, 7, 1, tzinfo=UTC), 512.0, Quality.GOOD)
    FanOutSink([first, Broken(), last]).deliver([reading])
    assert first.received == [reading] and last.received == [reading]
    assert "reading sink Broken failed" in caplog.text
