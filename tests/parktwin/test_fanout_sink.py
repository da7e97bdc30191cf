"""FanOutSink: every sink gets the readings, and one failing sink does not starve the others."""

from __future__ import annotations

from datetime import UTC, datetime

from parktwin.runtime import FanOutSink
from twin.history.interface import StorageUnavailable
from twin.readings import Quality, Reading


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


class NeedsTheStoreAtTimes:
    """A sink that needs the history store only for some deliveries (as fault detection does when an episode
    opens or closes); ``store_up`` is the store's state."""

    def __init__(self):
        self.store_up, self.needs_store = True, True

    def deliver(self, readings):
        if self.needs_store and not self.store_up:
            raise StorageUnavailable("connection refused")


def test_a_sink_waiting_for_the_store_is_logged_once_per_outage_however_its_deliveries_fall(caplog):
    """A delivery that did not need the store says nothing of it: the sink is back only with the store."""
    sink = NeedsTheStoreAtTimes()
    fan_out = FanOutSink([sink], store_ok=lambda: sink.store_up)
    reading = Reading("b1.meter_b1.power_kw", datetime(2026, 7, 1, tzinfo=UTC), 512.0, Quality.GOOD)
    sink.store_up = False
    for needs_store in (True, False, True, False, True):  # within one outage
        sink.needs_store = needs_store
        fan_out.deliver([reading])
    assert caplog.text.count("history store unavailable") == 1 and "history store back" not in caplog.text
    sink.store_up = True
    fan_out.deliver([reading])
    assert caplog.text.count("history store back") == 1
