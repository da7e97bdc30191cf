"""Notifications of new high and critical alarms by e-mail (SMTP) and webhook (HTTP POST of JSON), per user.

Who is told what is configured in the dashboard's users file (``dashboard.auth``): each user may carry a
``notify`` :class:`Subscription` (e-mail address, webhook URL, priorities, assets), and the file's
``notifications`` section holds the :class:`NotificationSettings` (SMTP server, rate limit).

:class:`AlarmNotifier` listens to the fault episode store (``FaultEpisodeStore.listen``): it hears every
new episode where it is saved, keeps the high and critical ones that are annunciated (not suppressed by
a cause) on a queue, and a worker thread delivers them, so neither the detector nor the controller ever
waits for a mail server. In the worker, an episode whose alarm was shelved when it began is dropped, and
each recipient gets at most ``max_per_hour`` messages in any hour (the rest are counted in the log). A
delivery that fails is logged and not retried; nothing in here stops the twin.
"""

from __future__ import annotations

import functools
import json
import logging
import queue
import smtplib
import threading
import time
import urllib.request
from collections import deque
from collections.abc import Callable
from datetime import datetime
from email.message import EmailMessage
from typing import Literal

from pydantic import Field

from energy.providers import episode_record
from twin.fault_episodes import FaultEpisode, Priority, Shelf
from twin.input_schema import InputModel

log = logging.getLogger(__name__)

NOTIFIED_PRIORITIES = frozenset({Priority.HIGH, Priority.CRITICAL})
"""Priorities that are ever notified, those that need a response before anyone may next look at the console;
lower ones wait for the console."""


class SmtpServer(InputModel):
    """Where e-mail is handed over: an SMTP server (plain; STARTTLS and login when ``username`` is given)."""

    host: str
    port: int = Field(25, ge=1, le=65535)
    sender: str = Field(pattern=r"^[^@\s]+@[^@\s]+$")
    username: str | None = None
    password: str | None = None
    timeout_s: float = Field(10.0, gt=0)


class NotificationSettings(InputModel):
    """The users file's ``notifications`` section: the SMTP server (needed for e-mail subscriptions) and how
    many messages one recipient (address or webhook URL) gets at most in any hour."""

    smtp: SmtpServer | None = None
    max_per_hour: int = Field(20, ge=1)
    webhook_timeout_s: float = Field(10.0, gt=0)


class Subscription(InputModel):
    """A user's ``notify`` entry: where to tell them (e-mail, webhook or both) about which new alarms
    (priorities among high and critical, default both; assets, default all)."""

    email: str | None = Field(None, pattern=r"^[^@\s]+@[^@\s]+$")
    webhook: str | None = Field(None, pattern=r"^https?://")
    priorities: list[Literal["high", "critical"]] = ["high", "critical"]
    assets: list[str] = []

    def wants(self, episode: FaultEpisode) -> bool:
        return episode.priority.label in self.priorities and (not self.assets or episode.asset_id in self.assets)


class AlarmNotifier:
    """Delivers new high and critical alarms to the subscribers, from a queue on a worker thread.

    settings: needs an SMTP server when a subscriber has an e-mail address (the users file checks that).

    subscribers: user name -> subscription. shelves_at: the shelvings in force at a time (the store's
    ``shelves``). Messages carry the episode as /api/faults lists it (``energy.providers.episode_record``).
    monotonic_s: the clock of the rate limit (a real-time budget, whatever clock the twin runs on).
    """

    QUEUE_SIZE = 1000

    def __init__(self, park_name: str, settings: NotificationSettings, subscribers: dict[str, Subscription],
                 shelves_at: Callable[[datetime], list[Shelf]], monotonic_s: Callable[[], float] = time.monotonic):
        self.park_name = park_name
        self.settings = settings
        self.subscribers = subscribers
        self.shelves_at = shelves_at
        self.monotonic_s = monotonic_s
        self._queue: queue.Queue[FaultEpisode | None] = queue.Queue(self.QUEUE_SIZE)
        self._sent: dict[str, deque[float]] = {}
        self._held_back: dict[str, int] = {}
        self._thread: threading.Thread | None = None

    def submit(self, new_episodes: list[FaultEpisode]) -> None:
        """Queue the new episodes worth telling someone about (a store listener: never blocks; a full queue
        drops the episode with a log line)."""
        for episode in new_episodes:
            if episode.priority not in NOTIFIED_PRIORITIES or episode.suppressed_by is not None:
                continue
            try:
                self._queue.put_nowait(episode)
            except queue.Full:
                log.error("notification queue full: %s not notified", episode.id)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._work, name="alarm-notifier", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 30.0) -> None:
        """Deliver what is queued (waiting at most ``timeout_s``), then end the worker."""
        if self._thread is None:
            return
        try:
            self._queue.put(None, timeout=timeout_s)
        except queue.Full:
            log.error("notification queue still full after %s s: stopping without draining it", timeout_s)
        self._thread.join(timeout_s)
        self._thread = None

    def _work(self) -> None:
        while (episode := self._queue.get()) is not None:
            try:
                self._deliver(episode)
            except Exception:
                log.exception("notifying %s failed", episode.id)

    def _deliver(self, episode: FaultEpisode) -> None:
        if any(shelf.covers(episode, episode.start_utc) for shelf in self.shelves_at(episode.start_utc)):
            log.info("%s not notified: its alarm is shelved", episode.id)
            return
        for name, subscription in self.subscribers.items():
            if not subscription.wants(episode):
                continue
            if subscription.email and self._within_rate(subscription.email):
                self._send(name, "e-mail", functools.partial(self._email, subscription.email, episode))
            if subscription.webhook and self._within_rate(subscription.webhook):
                self._send(name, "webhook", functools.partial(self._post, subscription.webhook, episode))

    def _within_rate(self, recipient: str) -> bool:
        """True (and counted) when ``recipient`` has had fewer than ``max_per_hour`` messages in the last hour."""
        now = self.monotonic_s()
        sent = self._sent.setdefault(recipient, deque())
        while sent and sent[0] <= now - 3600.0:
            sent.popleft()
        if len(sent) >= self.settings.max_per_hour:
            self._held_back[recipient] = self._held_back.get(recipient, 0) + 1
            log.warning("rate limit: %d notification(s) to %s held back this hour (at most %d an hour)",
                        self._held_back[recipient], recipient, self.settings.max_per_hour)
            return False
        sent.append(now)
        return True

    @staticmethod
    def _send(user: str, channel: str, deliver: Callable[[], None]) -> None:
        try:
            deliver()
        except Exception as exc:  # a mail server or receiver that fails is logged, never fatal
            log.error("%s notification to user %s failed: %s", channel, user, exc)

    def _subject(self, episode: FaultEpisode) -> str:
        point = f" ({episode.point_id})" if episode.point_id else ""
        return (f"[{self.park_name}] {episode.priority.label.upper()} alarm: "
                f"{episode.rule_id} on {episode.asset_id}{point}")

    def _email(self, address: str, episode: FaultEpisode) -> None:
        smtp = self.settings.smtp
        if smtp is None:
            raise ValueError("no smtp server is configured under notifications in the users file")
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = smtp.sender, address, self._subject(episode)
        record = episode_record(episode)
        message.set_content("\n".join([f"{self._subject(episode)}", "", *(f"{key}: {value}" for key, value in
                                                                          record.items() if value is not None)]))
        with smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout_s) as server:
            if smtp.username:
                server.starttls()
                server.login(smtp.username, smtp.password or "")
            server.send_message(message)

    def _post(self, url: str, episode: FaultEpisode) -> None:
        body = json.dumps({"park": self.park_name, "subject": self._subject(episode),
                           "fault": episode_record(episode)}).encode()
        request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=self.settings.webhook_timeout_s) as response:
            response.read()
