"""`parktwin audit`: the write audit log of a period as a table or JSON lines, in process, on both backends."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cli_support import parktwin

from parktwin.terminal import EXIT_BAD_INPUT
from twin.history import WRITE_PAGE_SIZE, History, WriteRecord, open_history, record_write

DEMO = str(Path(__file__).resolve().parents[2] / "examples" / "demo-park" / "park.yaml")
LOCAL_MIDNIGHT_UTC = datetime(2026, 6, 30, 16, 0, tzinfo=UTC)  # 1 July 00:00 in Asia/Shanghai
SETPOINT = "plant.chiller1.chw_setpoint_c"
MS = timedelta(milliseconds=1)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def history_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'history.sqlite'}"
    return request.getfixturevalue("postgres_url")


def audit(url: str, *args: str):
    result = parktwin("audit", DEMO, "--history", url, *args)
    assert result.returncode == 0, (result.stdout, result.stderr)
    return result


def record(url: str, *records: WriteRecord) -> None:
    with open_history(url) as store:
        for r in records:
            record_write(store, r)


def test_writes_refused_by_points_write_are_listed_with_who_value_and_result(tmp_path):
    url = f"sqlite:///{tmp_path / 'history.sqlite'}"
    refused = parktwin("points", "write", DEMO, SETPOINT, "30", "--who", "olga", "--history", url)
    assert refused.returncode == EXIT_BAD_INPUT, refused.stderr  # outside the limits: refused before a device is asked

    lines = audit(url, "--from", "2000-01-01", "--to", "2100-01-01", "--json").stdout.splitlines()

    assert len(lines) == 1
    row = json.loads(lines[0])
    assert (row["who"], row["point_id"], row["value"], row["result"]) == \
        ("olga", SETPOINT, 30.0, "refused: outside safe limits [5, 12]")
    assert abs(datetime.fromisoformat(row["ts_utc"]) - datetime.now(UTC)) < timedelta(minutes=5)
    table = audit(url, "--from", "2000-01-01", "--to", "2100-01-01").stdout.splitlines()
    assert table[1].split(maxsplit=5)[2:] == ["olga", SETPOINT, "30", "refused: outside safe limits [5, 12]"]


def test_table_shows_local_times_of_the_half_open_period_oldest_first(history_url):
    next_midnight = LOCAL_MIDNIGHT_UTC + timedelta(days=1)
    record(history_url,
           WriteRecord(next_midnight - MS, "optimizer", "plant.battery.power_setpoint_kw", -250.5, "ok"),
           WriteRecord(LOCAL_MIDNIGHT_UTC - MS, "before", SETPOINT, 8.0, "ok"),
           WriteRecord(LOCAL_MIDNIGHT_UTC, "dashboard:olga", SETPOINT, None, "failed: no answer"),
           WriteRecord(next_midnight, "after", SETPOINT, 8.0, "ok"))

    lines = audit(history_url, "--from", "2026-07-01", "--to", "2026-07-02").stdout.splitlines()

    assert [line.split(maxsplit=5) for line in lines[1:3]] == [
        ["2026-07-01", "00:00:00.000", "dashboard:olga", SETPOINT, "relinquish", "failed: no answer"],
        ["2026-07-01", "23:59:59.999", "optimizer", "plant.battery.power_setpoint_kw", "-250.5", "ok"],
    ]
    assert lines[0].split() == ["time", "(Asia/Shanghai)", "who", "point", "value", "result"]
    assert lines[3] == "2 write(s) from 2026-07-01 00:00 to 2026-07-02 00:00 (Asia/Shanghai)"
    assert len(lines) == 4
    # a time with an offset is that instant, whatever the park's zone
    later = audit(history_url, "--from", "2026-07-01T15:59:59.999+00:00", "--to", "2026-07-03", "--json").stdout
    assert [json.loads(line)["who"] for line in later.splitlines()] == ["optimizer", "after"]


def test_json_lines_stream_a_range_longer_than_a_page_in_order(history_url, monkeypatch):
    n = 2 * WRITE_PAGE_SIZE + 5
    written = [WriteRecord(LOCAL_MIDNIGHT_UTC + timedelta(seconds=i // 3), f"w{i}", SETPOINT, float(i), "ok")
               for i in range(n)]  # three writes a second: equal times cross the page borders
    out_of_order = list(reversed(written[:10]))  # recorded out of time order at the start
    record(history_url, *out_of_order, *written[10:])
    # the sort is stable: records with the same time stay in the order they were recorded
    expected = sorted(out_of_order, key=lambda r: r.ts_utc) + written[10:]
    pages: list[int] = []
    read_page = History.write_records

    def counted(self, *args, **kwargs):
        page = read_page(self, *args, **kwargs)
        pages.append(len(page.records))
        assert len(pages) <= 3, "more pages than records to fill them: the cursor does not advance"
        return page

    monkeypatch.setattr(History, "write_records", counted)
    lines = audit(history_url, "--from", "2026-07-01", "--to", "2026-07-02", "--json").stdout.splitlines()

    assert [(json.loads(line)["who"], json.loads(line)["value"]) for line in lines] == \
        [(r.who, r.value) for r in expected]
    assert [datetime.fromisoformat(json.loads(line)["ts_utc"]) for line in lines] == [r.ts_utc for r in expected]
    assert pages == [WRITE_PAGE_SIZE, WRITE_PAGE_SIZE, 5]
    pages.clear()
    table = audit(history_url, "--from", "2026-07-01", "--to", "2026-07-02").stdout.splitlines()
    assert [line.split()[2] for line in table[1:-1]] == [r.who for r in expected]
    assert pages == [WRITE_PAGE_SIZE, WRITE_PAGE_SIZE, 5]


def test_an_empty_period_says_so_and_succeeds(history_url):
    record(history_url, WriteRecord(LOCAL_MIDNIGHT_UTC, "cli", SETPOINT, 8.0, "ok"))
    table = audit(history_url, "--from", "2026-06-29", "--to", "2026-07-01")
    assert table.stdout == "no writes from 2026-06-29 00:00 to 2026-07-01 00:00 (Asia/Shanghai)\n"
    as_json = audit(history_url, "--from", "2026-06-29", "--to", "2026-07-01", "--json")
    assert as_json.stdout == "" and as_json.stderr.startswith("no writes from 2026-06-29")


@pytest.mark.parametrize("args, message", [
    (["--from", "2026-13-01", "--to", "2026-07-02"], "--from: '2026-13-01' is not a date"),
    (["--from", "2026-07-01", "--to", "tomorrow"], "--to: 'tomorrow' is not a date"),
    (["--from", "2026-07-02", "--to", "2026-07-01"], "must be after --from"),
    (["--from", "2026-07-01", "--to", "2026-07-01"], "must be after --from"),
])
def test_bad_dates_exit_2_with_a_message_naming_the_option(tmp_path, args, message):
    result = parktwin("audit", DEMO, "--history", f"sqlite:///{tmp_path / 'history.sqlite'}", *args)
    assert result.returncode == EXIT_BAD_INPUT and message in result.stderr and result.stdout == ""


@pytest.mark.parametrize(("point_id", "value", "requested", "result"), [
    ("plant.no_such_point", "8", "8", "refused: unknown point: in none of the point maps of park.yaml"),
    ("plant.chiller1.chw_supply_temp_c", "7", "7", "refused: not writable"),
    (SETPOINT, "warm", "warm", "refused: not a number"),
    (SETPOINT, "NaN", "NaN", "refused: outside safe limits [5, 12]"),
    (SETPOINT, "-inf", "-inf", "refused: outside safe limits [5, 12]"),
], ids=["unknown-point", "not-writable", "not-a-number", "nan", "infinity"])
def test_every_write_points_write_refuses_is_audited_with_its_reason(tmp_path, point_id, value, requested, result):
    url = f"sqlite:///{tmp_path / 'history.sqlite'}"
    refused = parktwin("points", "write", DEMO, point_id, "--who", "olga", "--history", url, "--", value)
    assert refused.returncode == EXIT_BAD_INPUT, refused.stderr  # exit 2, before any device is asked

    (row,) = [json.loads(line) for line in audit(url, "--from", "2000-01-01", "--to", "2100-01-01",
                                                 "--json").stdout.splitlines()]
    assert (row["who"], row["point_id"], row["value"], row["requested"], row["result"]) == \
        ("olga", point_id, None, requested, result)


def test_a_refused_nan_is_told_apart_from_a_relinquish_and_from_a_refused_null(tmp_path, demo_park_copy):
    """The battery's point map without its fail-safe: a null on that Modbus point is refused, not a relinquish."""
    battery_map = demo_park_copy.parent / "pointmaps" / "battery.yaml"
    battery_map.write_text(battery_map.read_text().replace(
        "fail_safe: {enable_address: 40158, revert_timeout_address: 40159, revert_timeout_s: 3600}, ", ""))
    url = f"sqlite:///{tmp_path / 'history.sqlite'}"
    battery = "plant.battery.power_setpoint_kw"
    for value in ("null", "nan"):
        refused = parktwin("points", "write", demo_park_copy, battery, value, "--history", url)
        assert refused.returncode == EXIT_BAD_INPUT, refused.stderr
    record(url, WriteRecord(LOCAL_MIDNIGHT_UTC, "controller", SETPOINT, None, "ok"))  # a relinquish that went through

    rows = [json.loads(line) for line in audit(url, "--from", "2000-01-01", "--to", "2100-01-01",
                                               "--json").stdout.splitlines()]
    assert [(r["value"], r["requested"], r["result"].split(" (")[0]) for r in rows] == [
        (None, "relinquish", "ok"),
        (None, "relinquish", "refused: null on a Modbus point without a fail_safe"),
        (None, "nan", "refused: outside safe limits [-1000, 1000]"),
    ]
    table = audit(url, "--from", "2000-01-01", "--to", "2100-01-01").stdout.splitlines()
    assert [line.split(maxsplit=5)[4] for line in table[1:-1]] == ["relinquish", "relinquish", "nan"]
