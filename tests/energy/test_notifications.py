"""Notifications of new high and critical alarms, heard where the fault episode store saves them, delivered to
a real SMTP server and a real HTTP receiver on 127.0.0.1: one e-mail and one webhook per new critical alarm,
none for a shelved or suppressed one, at most the hourly limit, and a dead mail server only logged."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest
from park_copies import free_port
from receivers import WebhookReceiver
from waiting import wait_for

from energy.notifications import AlarmNotifier, NotificationSettings, SmtpServer, Subscription
from twin.fault_episodes import FaultEpisode, Priority
from twin.history import FaultEpisodeStore, open_history

T0 = datetime(2026, 7, 1, 2, 0, tzinfo=UTC)


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def alarm(rule: str, asset: str, start_h: float, priority: Priority = Priority.CRITICAL,
          suppressed_by: str | None = None) -> FaultEpisode:
    return FaultEpisode(rule, asset, at(start_h), None, priority, {"cell_temp_max_c": 55.0}, "", suppressed_by)


@pytest.fixture
def store(tmp_path):
    with open_history(f"sqlite:///{tmp_path / 'h.sqlite'}") as history:
        yield FaultEpisodeStore(history)



def notifier_for(store, smtp_port: int, webhook: str, *, priorities=("critical",), max_per_hour: int = 20,
                 monotonic_s=None) -> AlarmNotifier:
    settings = NotificationSettings(smtp=SmtpServer(host="127.0.0.1", port=smtp_port, sender="parktwin@park.test"),
                                    max_per_hour=max_per_hour)
    olga = Subscription(email="olga@park.test", webhook=webhook, priorities=list(priorities))
    extra = {} if monotonic_s is None else {"monotonic_s": monotonic_s}
    notifier = AlarmNotifier("Demo Park", settings, {"olga": olga}, store.shelves, **extra)
    store.listen(notifier.submit)
    notifier.start()
    return notifier


def webhook_ids(hook: WebhookReceiver) -> list[str]:
    return [body["fault"]["id"] for body in hook.bodies]


def test_one_email_and_one_webhook_per_new_critical_alarm_and_none_when_shelved_or_suppressed(store, smtp, hook):
    notifier = notifier_for(store, smtp.port, hook.url)
    overheating = alarm("battery_overtemp", "battery", 0)
    store.save([overheating])
    store.save([overheating.closed_at(at(0.5))])  # the same episode ending is no new alarm
    comm_lost = alarm("device_comm_lost", "chiller1", 1)
    store.save([comm_lost])
    store.save([alarm("sensor_stale", "chiller1", 1, suppressed_by=comm_lost.id)])  # explained: not annunciated
    store.save([alarm("chw_low_delta_t", "chiller3", 1, Priority.HIGH)])  # olga subscribes to critical only
    store.save([alarm("lighting_after_hours", "lighting", 1, Priority.LOW)])  # low: never notified
    first_lift = alarm("elevator_out_of_service", "elevator1", 1)
    store.save([first_lift])
    store.shelve(first_lift.id, "olga", at(1.5), at(6), "vendor repairing the lift")
    store.save([first_lift.closed_at(at(1.6)), alarm("elevator_out_of_service", "elevator1", 2)])  # shelved alarm
    last = alarm("battery_overtemp", "battery", 3)
    store.save([last])  # delivered after everything above (one queue, one worker)
    wait_for(lambda: len(hook.bodies) >= 4 and len(smtp.messages) >= 4, 30, "four e-mails and four webhooks")
    notifier.stop()  # everything queued is handled before it returns
    assert webhook_ids(hook) == [overheating.id, comm_lost.id, first_lift.id, last.id]
    assert [m["Subject"] for m in smtp.messages] == [
        "[Demo Park] CRITICAL alarm: battery_overtemp on battery",
        "[Demo Park] CRITICAL alarm: device_comm_lost on chiller1",
        "[Demo Park] CRITICAL alarm: elevator_out_of_service on elevator1",
        "[Demo Park] CRITICAL alarm: battery_overtemp on battery"]
    assert all(m["To"] == "olga@park.test" and m["From"] == "parktwin@park.test" for m in smtp.messages)
    assert f"id: {overheating.id}" in smtp.messages[0].get_content()
    assert "evidence: cell_temp_max_c=55" in smtp.messages[0].get_content()
    first = hook.bodies[0]
    assert (first["park"], first["fault"]["priority"], first["fault"]["start_utc"]) == (
        "Demo Park", "critical", overheating.start_utc.isoformat())


def test_a_recipient_gets_at_most_the_hourly_limit_and_more_again_an_hour_later(store, smtp, hook, caplog):
    clock = {"s": 1000.0}
    notifier = notifier_for(store, smtp.port, hook.url, max_per_hour=2, monotonic_s=lambda: clock["s"])
    burst = [alarm("battery_overtemp", "battery", h) for h in (0, 1, 2)]
    with caplog.at_level(logging.WARNING, logger="energy.notifications"):
        store.save(burst)
        wait_for(lambda: sum("held back" in r.getMessage() for r in caplog.records) >= 2, 30,
                 "the third alarm held back for both recipients")
    clock["s"] += 3600.0  # an hour later the budget is back
    later = alarm("battery_overtemp", "battery", 5)
    store.save([later])
    wait_for(lambda: len(hook.bodies) >= 3 and len(smtp.messages) >= 3, 30, "the alarm an hour later delivered")
    notifier.stop()
    assert webhook_ids(hook) == [burst[0].id, burst[1].id, later.id]
    assert len(smtp.messages) == 3


def test_a_dead_mail_server_is_logged_and_the_webhook_still_delivered(store, hook, caplog):
    notifier = notifier_for(store, free_port(), hook.url)  # nothing listens there
    overheating = alarm("battery_overtemp", "battery", 0)
    with caplog.at_level(logging.ERROR, logger="energy.notifications"):
        store.save([overheating])
        wait_for(lambda: hook.bodies, 30, "the webhook")
        notifier.stop()
    assert webhook_ids(hook) == [overheating.id]
    assert any("e-mail notification to user olga failed" in r.getMessage() for r in caplog.records)
    assert store.open_episodes() == [overheating]  # the episode is stored whatever the delivery did
