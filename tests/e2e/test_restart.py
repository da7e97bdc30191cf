"""A simulated `parktwin run` killed (SIGKILL: no flush, no clean stop) and started again on the same history,
SQLite and PostgreSQL alike: what the first run stored stays as it was, the second run's clock continues
after the first run's last record (no interleaved timelines), counters never run backwards, and the fault
episode open across the kill goes on as one episode (none duplicated, none ending before it starts).

Neither run has --start: both begin from the history (the first, on an empty one, at the wall clock; the
second after the first's last record), so a second run on the wall clock would overlap the first's hours."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import pandas as pd
from cli_support import parktwin
from park_copies import stop_with_ctrl_c

from energy.fault_rules import FaultThresholds
from twin.config import load_park
from twin.history import FaultEpisodeStore, open_history
from twin.history.spool import ReadingSpool
from twin.readings import Quality, Reading

ROOT = Path(__file__).resolve().parents[2]
SPEED = 600
PAST = datetime(2000, 1, 1, tzinfo=UTC)
FUTURE = datetime(2100, 1, 1, tzinfo=UTC)
GRID_IMPORT_COUNTER = "plant.grid_meter.import_energy_kwh"
SECOND_RUN = 2 * timedelta(minutes=max(value for name, value in FaultThresholds().model_dump().items()
                                       if name.endswith("_minutes")))
"""How long the second run goes on, in twin time: twice the longest on- or off-delay of the fault rules, so every
rule has judged the readings after the restart (an episode left open would be ended or doubled by then)."""


def overtemp_episodes(run, now: datetime) -> list[dict]:
    """The battery_overtemp episodes the run's console lists over the days around ``now``."""
    window = f"from={(now - timedelta(days=1)):%Y-%m-%dT%H:%MZ}&to={(now + timedelta(days=60)):%Y-%m-%dT%H:%MZ}"
    body = run.get(f"/api/faults?rule=battery_overtemp&{window}")
    return body["faults"] if body else []


def twin_time(run) -> datetime | None:
    live = run.get("/api/live")
    return datetime.fromisoformat(live["ts_utc"]) if live and live["ts_utc"] else None


def stored(history_url: str):
    """(every reading, every episode, every write record) the history holds."""
    with open_history(history_url) as store:
        readings = store.query(store.point_ids(), PAST, FUTURE)
        episodes = FaultEpisodeStore(store).overlapping(PAST, FUTURE)
        writes = store.write_audit()
    return readings, episodes, writes


def test_a_killed_simulated_run_restarted_on_its_history_continues_it(tmp_path, demo_park_copy, history_url,
                                                                      park_runs):
    now = datetime.now(UTC)
    faults = tmp_path / "faults.yaml"  # the battery overheats from before the first run until long after the second
    faults.write_text("faults:\n  - {kind: battery_overtemp, target: battery, "
                      f"start: {(now - timedelta(hours=1)):%Y-%m-%dT%H:%M}Z, "
                      f"end: {(now + timedelta(days=30)):%Y-%m-%dT%H:%M}Z, magnitude: 25}}\n", encoding="utf-8")
    options = ("--speed", str(SPEED), "--faults", str(faults))

    with park_runs(demo_park_copy, history_url, *options) as first:
        (open_before,) = first.wait_for(lambda: overtemp_episodes(first, now), 300, "the battery_overtemp episode")
        assert open_before["end_utc"] is None
        first.plan_with_rounds(1)  # writes in the audit log too
        first.process.kill()
        first.process.wait(timeout=30)
    readings_1, episodes_1, writes_1 = stored(history_url)
    last_reading_1 = readings_1["ts_utc"].max().to_pydatetime()
    last_record_1 = max([last_reading_1, *(r.ts_utc for r in writes_1),
                         *(t for e in episodes_1 for t in (e.start_utc, e.end_utc) if t is not None)])
    expected_start = last_record_1.replace(second=0, microsecond=0) + timedelta(minutes=1)

    with park_runs(demo_park_copy, history_url, *options) as second:
        started = second.wait_for(lambda: re.search(r"simulating at 600x from (\S+ \S+) UTC", second.output()),
                                  120, "the second run's start")
        second.wait_for(lambda: (t := twin_time(second)) and t >= expected_start + SECOND_RUN, 300,
                        "the second run's simulated hours")
        stop_with_ctrl_c(second.process, timeout_s=60)
        output = second.output()
    readings_2, episodes_2, writes_2 = stored(history_url)

    # the fault detector, a reading sink, failed on episodes left open before (ValueError: ... is not after start)
    assert "reading sink" not in output and "is not after start" not in output, output[-3000:]
    # the clock continues on the first whole minute after everything the first run recorded
    assert datetime.fromisoformat(started.group(1)).replace(tzinfo=UTC) == expected_start
    # the first run's readings are all still there, unchanged, and the second run's all come after them
    earlier = readings_2[readings_2["ts_utc"] <= pd.Timestamp(last_reading_1)].reset_index(drop=True)
    pd.testing.assert_frame_equal(earlier, readings_1)
    later = readings_2[readings_2["ts_utc"] > pd.Timestamp(last_reading_1)]
    assert len(later) > 0 and later["ts_utc"].min() >= pd.Timestamp(expected_start)
    assert writes_2[:len(writes_1)] == writes_1
    assert all(w.ts_utc >= expected_start for w in writes_2[len(writes_1):])
    # the grid meter's import counter goes on from where the first run left it
    counter = readings_2[(readings_2["point_id"] == GRID_IMPORT_COUNTER)
                         & (readings_2["quality"] == int(Quality.GOOD))].sort_values("ts_utc")
    before, after = counter[counter["ts_utc"] <= pd.Timestamp(last_reading_1)], counter[counter.index.isin(later.index)]
    assert len(before) and len(after) and after["value"].iloc[0] >= before["value"].iloc[-1]
    assert counter["value"].is_monotonic_increasing
    # episodes: none inverted, none overlapping another of the same alarm, the overheating one still one episode
    assert all(e.end_utc is None or e.end_utc > e.start_utc for e in episodes_2)
    by_alarm: dict[tuple, list] = {}
    for episode in episodes_2:
        by_alarm.setdefault((episode.rule_id, episode.asset_id, episode.point_id), []).append(episode)
    for alarm, runs in by_alarm.items():
        for earlier_episode, next_episode in pairwise(sorted(runs, key=lambda e: e.start_utc)):
            assert earlier_episode.end_utc is not None and earlier_episode.end_utc <= next_episode.start_utc, alarm
    assert {e.key for e in episodes_1} <= {e.key for e in episodes_2}
    (overtemp,) = by_alarm[("battery_overtemp", "battery", "")]
    assert overtemp.id == open_before["id"] and overtemp.end_utc is None


def test_readings_a_killed_run_left_in_its_spool_are_written_first_and_the_restart_continues_after_them(
        tmp_path, demo_park_copy, park_runs):
    """A run killed while its store was away leaves readings in its spool, newer than the store's last one. The
    restart writes them to the store first and continues after them: one timeline, the counter not run back."""
    history = tmp_path / "run.sqlite"
    url = f"sqlite:///{history}"
    stored_until = datetime(2026, 7, 3, 2, 4, tzinfo=UTC)
    spooled_until = stored_until + timedelta(hours=2)
    with open_history(url) as store:
        store.append([Reading(GRID_IMPORT_COUNTER, stored_until, 1000.0, Quality.GOOD)])
    spool = ReadingSpool(Path(f"{history}-spool.sqlite"), max_rows=1000)  # where `parktwin run` keeps it
    spool.push([Reading(GRID_IMPORT_COUNTER, stored_until + timedelta(minutes=m), 1000.0 + m, Quality.GOOD)
                for m in range(1, 121)])
    spool.close()

    with park_runs(demo_park_copy, url, "--speed", str(SPEED)) as run:
        started = run.wait_for(lambda: re.search(r"simulating at 600x from (\S+ \S+) UTC", run.output()), 120,
                               "the run's start")
        run.wait_for(lambda: (t := twin_time(run)) and t >= spooled_until + timedelta(minutes=30), 300,
                     "half an hour of the run")
        stop_with_ctrl_c(run.process, timeout_s=60)

    assert datetime.fromisoformat(started.group(1)).replace(tzinfo=UTC) == spooled_until + timedelta(minutes=1)
    readings, _, _ = stored(url)
    counter = readings[readings["point_id"] == GRID_IMPORT_COUNTER].sort_values("ts_utc")
    assert len(counter[counter["ts_utc"] <= pd.Timestamp(spooled_until)]) == 121  # the stored one and the spooled
    assert len(counter[counter["ts_utc"] > pd.Timestamp(spooled_until)]) > 0
    good = counter[counter["quality"] == int(Quality.GOOD)]
    assert good["value"].is_monotonic_increasing and good["value"].iloc[-1] > 1120.0
    left = ReadingSpool(Path(f"{history}-spool.sqlite"), max_rows=1000)
    assert len(left) == 0
    left.close()


def test_a_start_day_before_the_end_of_the_history_is_refused_naming_both_times(tmp_path, demo_park):
    history_url = f"sqlite:///{tmp_path / 'h.sqlite'}"
    with open_history(history_url) as store:
        store.append([Reading("plant.battery.soc_pct", datetime(2026, 7, 3, 10, 4, 12, tzinfo=UTC), 50.0,
                              Quality.GOOD)])
    park_file = ROOT / "examples" / "demo-park" / "park.yaml"
    for day, start_utc in (("2026-07-02", "2026-07-01 16:00"), ("2026-07-03", "2026-07-02 16:00")):
        done = parktwin("run", park_file, "--start", day, "--history", history_url)
        assert done.returncode == 2, done.stdout + done.stderr
        message = " ".join(done.stderr.split())
        assert f"--start {day} ({start_utc} UTC) is not after the end of the history" in message
        assert "its last stored reading is at 2026-07-03 10:04:12 UTC" in message
        assert "Traceback" not in done.stderr
    with open_history(history_url) as store:  # nothing written
        assert [r.ts_utc for r in store.latest().values()] == [datetime(2026, 7, 3, 10, 4, 12, tzinfo=UTC)]
    assert load_park(park_file).site.timezone == "Asia/Shanghai"  # the hand-calculated UTC times above
