"""A live `parktwin run` with a users file subscribing an operator to high and critical alarms: each new one the
run stores reaches a real SMTP server and a real HTTP receiver on 127.0.0.1 exactly once, the injected battery
over-temperature (critical) among them, and nothing else does."""

from __future__ import annotations

import re
import signal
from collections import Counter
from datetime import UTC, datetime

from twin.fault_episodes import AlarmFilter, Priority
from twin.history import FaultEpisodeStore, open_history


def test_each_new_high_or_critical_alarm_of_a_live_run_is_mailed_and_posted_once(notifying_run, smtp, hook):
    run = notifying_run
    run.wait_for(lambda: any(b["fault"]["rule_id"] == "battery_overtemp" for b in hook.bodies), 180,
                 "the battery over-temperature posted to the webhook")
    run.process.send_signal(signal.SIGINT)  # a stop delivers what is queued before the process exits
    run.process.wait(timeout=60)
    stderr = run.output()
    assert run.process.returncode == 0, stderr
    with open_history(run.history_url) as history:
        store = FaultEpisodeStore(history)
        worth = store.page(AlarmFilter(priorities=frozenset({Priority.HIGH, Priority.CRITICAL})),
                           datetime.now(UTC), 0, 100_000).episodes
    expected = Counter(e.id for e in worth if e.suppressed_by is None)  # nothing was shelved
    posted = Counter(body["fault"]["id"] for body in hook.bodies)
    mailed = Counter(re.search(r"^id: (\S+)", m.get_content(), re.MULTILINE).group(1) for m in smtp.messages)
    assert posted == expected and mailed == expected
    overheating = [e for e in worth if e.rule_id == "battery_overtemp"]
    assert overheating and all(e.priority is Priority.CRITICAL for e in overheating)
    print(f"\nlive run: {len(expected)} new high or critical alarm(s) notified, "
          f"{sum(e.suppressed_by is not None for e in worth)} suppressed not notified")
