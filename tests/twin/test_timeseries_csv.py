"""The one time-series CSV reader (twin.timeseries_csv): what it reads, and the line and column of each refusal.

Every expected line number below is counted by hand in the test's own CSV text: line 1 is the header.
"""

from __future__ import annotations

import pandas as pd
import pytest

from twin.config import MAX_CSV_BYTES, ConfigError
from twin.timeseries_csv import MAX_PROBLEMS_SHOWN, TimeSeriesCsvError, read_timeseries_csv

COLUMNS = {"load_kw": ("load_kw", "load"), "temp_c": ("temp_c",)}


def read(tmp_path, text: str | bytes, timezone: str | None = "Asia/Shanghai", other_columns="refuse"):
    path = tmp_path / "series.csv"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return read_timeseries_csv(path, time_names=("timestamp", "time"), columns=COLUMNS, required=("load_kw",),
                               other_columns=other_columns, timezone=timezone)


def problems(tmp_path, text: str | bytes, timezone: str | None = "Asia/Shanghai") -> list[str]:
    with pytest.raises(TimeSeriesCsvError) as caught:
        read(tmp_path, text, timezone)
    assert isinstance(caught.value, ConfigError)
    assert str(caught.value).startswith(f"{tmp_path / 'series.csv'}: ")
    return caught.value.problems


def test_times_with_and_without_offsets_land_on_a_utc_index_with_canonical_columns(tmp_path):
    table = read(tmp_path, "Time , LOAD,temp_c,note\n"
                           "2026-07-01T00:00,10,30.5,x\n"    # line 2: local, UTC+8
                           "\n"                              # line 3: blank, skipped
                           "2026-07-01T01:00+08:00,11,31,\n"  # line 4: with an offset
                           "2026-06-30T18:00Z,12,-1e3,y\n"   # line 5: UTC
                           "2026-07-02,13,29,\n",            # line 6: a date alone is local midnight
                 other_columns="ignore")
    frame = table.frame
    assert list(frame.index) == [pd.Timestamp("2026-06-30T16:00Z"), pd.Timestamp("2026-06-30T17:00Z"),
                                 pd.Timestamp("2026-06-30T18:00Z"), pd.Timestamp("2026-07-01T16:00Z")]
    assert str(frame.index.tz) == "UTC" and frame.index.name == "ts_utc"
    assert list(frame.columns) == ["load_kw", "temp_c"]
    assert frame["load_kw"].tolist() == [10, 11, 12, 13] and frame["temp_c"].tolist() == [30.5, 31, -1000, 29]
    assert table.line_numbers.tolist() == [2, 4, 5, 6]
    assert table.ignored_columns == ["note"]
    assert table.problem(2, "load_kw", "too high") == "line 5, column LOAD: too high"
    assert table.problem(1, "time", "late") == "line 4, column Time: late"


def test_an_optional_column_may_be_absent_and_a_utf8_bom_and_crlf_are_read(tmp_path):
    table = read(tmp_path, b"\xef\xbb\xbftimestamp,load_kw\r\n2026-07-01T00:00Z,\"1.5\"\r\n")
    assert list(table.frame.columns) == ["load_kw"] and table.frame["load_kw"].tolist() == [1.5]


@pytest.mark.parametrize(("text", "expected"), [
    # a value that is not a number, after a blank line: the blank line counts
    ("timestamp,load_kw\n2026-07-01T00:00,1\n\n2026-07-01T00:15,lots\n",
     "line 4, column load_kw: not a number: 'lots'"),
    ("timestamp,load_kw\n2026-07-01T00:00,\n", "line 2, column load_kw: not a number: ''"),
    ("timestamp,load_kw\n2026-07-01T00:00,1\n2026-07-01T00:15,1\n2026-07-01T00:30,inf\n",
     "line 4, column load_kw: not finite: 'inf'"),
    ("timestamp,load_kw,temp_c\n2026-07-01T00:00,1,nan\n", "line 2, column temp_c: not finite: 'nan'"),
    ("timestamp,load_kw\n2026-07-01T00:00,1e999\n", "line 2, column load_kw: not finite: '1e999'"),
    # times
    ("timestamp,load_kw\n2026-07-01T00:00,1\n01/07/2026 00:15,1\n",
     "line 3, column timestamp: cannot read time '01/07/2026 00:15' (ISO 8601 expected"),
    ("timestamp,load_kw\n2026-07-01T00:00,1\n2026-07-01T00:15,1\n2026-07-01T00:15,1\n",
     "line 4, column timestamp: time '2026-07-01T00:15' is not after the row before ('2026-07-01T00:15', line 3)"),
    ("timestamp,load_kw\n2026-07-01T01:00,1\n\n2026-07-01T00:00,1\n",
     "line 4, column timestamp: time '2026-07-01T00:00' is not after the row before ('2026-07-01T01:00', line 2)"),
    ("timestamp,load_kw\n2026-07-01T08:00+08:00,1\n2026-07-01T00:00Z,1\n",  # the same instant twice
     "line 3, column timestamp: time '2026-07-01T00:00Z' is not after the row before"),
    # fields
    ("timestamp,load_kw,temp_c\n2026-07-01T00:00,1,30\n2026-07-01T00:15,1\n", "line 3: 2 fields, the header has 3"),
    ("timestamp,load_kw\n2026-07-01T00:00,1\n2026-07-01T00:15,1,2\n", "line 3: 3 fields, the header has 2"),
    # a quoted field over two lines: the next row starts on line 4
    ("timestamp,load_kw\n2026-07-01T00:00,\"1\n\"\n2026-07-01T00:15,x\n", "line 4, column load_kw: not a number"),
])
def test_each_bad_row_is_named_by_its_line_and_column(tmp_path, text, expected):
    found = problems(tmp_path, text)
    assert len(found) == 1 and found[0].startswith(expected), found


@pytest.mark.parametrize(("text", "timezone", "expected"), [
    ("timestamp,load_kw\n2026-07-01T00:00Z,1\n2026-07-01T00:15,1\n", None,
     "line 3, column timestamp: time '2026-07-01T00:15' has no UTC offset"),
    ("timestamp,load_kw\n2026-03-08T01:30,1\n2026-03-08T02:30,1\n", "America/New_York",
     "line 3, column timestamp: local time '2026-03-08T02:30' does not exist or is ambiguous in America/New_York"),
    ("timestamp,load_kw\n2026-11-01T00:30,1\n2026-11-01T01:30,1\n", "America/New_York",
     "line 3, column timestamp: local time '2026-11-01T01:30' does not exist or is ambiguous in America/New_York"),
])
def test_a_local_time_needs_a_declared_zone_in_which_it_exists_once(tmp_path, text, timezone, expected):
    found = problems(tmp_path, text, timezone)
    assert len(found) == 1 and found[0].startswith(expected), found


@pytest.mark.parametrize(("header", "expected"), [
    ("time_utc,load_kw", ("line 1: no time column; name it one of timestamp, time\n"
                         "line 1: unknown columns time_utc; known are timestamp, time, load_kw, load, temp_c")),
    ("timestamp,temp_c", "line 1: missing column load_kw (named load_kw or load)"),
    ("timestamp,load,load_kw", "line 1: columns load and load_kw both give load_kw; keep one"),
    ("timestamp,time,load_kw", "line 1: columns timestamp and time both give time; keep one"),
    ("timestamp,load_kw,humidity",
     "line 1: unknown columns humidity; known are timestamp, time, load_kw, load, temp_c"),
])
def test_a_bad_header_is_refused_on_line_1(tmp_path, header, expected):
    assert problems(tmp_path, header + "\n2026-07-01T00:00,1,2\n") == expected.split("\n")


def test_every_bad_row_is_listed_in_file_order_and_nothing_is_returned(tmp_path):
    text = ("timestamp,load_kw,temp_c\n"
            "2026-07-01T00:00,1,30\n"    # line 2: good
            "2026-07-01T00:15,x,30\n"    # line 3: not a number
            "2026-07-01T00:30,1\n"       # line 4: a field short
            "2026-07-01T00:30,1,30\n"    # line 5: good (line 4 is not read, so its time is not compared)
            "2026-07-01T00:30,1,inf\n")  # line 6: repeated time, and not finite
    assert problems(tmp_path, text) == [
        "line 3, column load_kw: not a number: 'x'",
        "line 4: 2 fields, the header has 3",
        ("line 6, column timestamp: time '2026-07-01T00:30' is not after the row before ('2026-07-01T00:30', line 5); "
        "times must increase"),
        "line 6, column temp_c: not finite: 'inf'",
    ]


def test_a_file_broken_on_every_line_lists_the_first_problems_and_counts_the_rest(tmp_path):
    text = "timestamp,load_kw\n" + "".join(f"2026-07-01T{h:02d}:00,x\n" for h in range(24))
    found = problems(tmp_path, text)
    assert len(found) == MAX_PROBLEMS_SHOWN + 1
    assert found[0].startswith("line 2, column load_kw") and found[-2].startswith(f"line {MAX_PROBLEMS_SHOWN + 1},")
    assert found[-1] == f"... and {24 - MAX_PROBLEMS_SHOWN} more problems"


@pytest.mark.parametrize(("content", "expected"), [
    (b"", "the file is empty"),
    (b"\n\n", "the file is empty"),
    (b"\ntimestamp,load_kw\n2026-07-01T00:00,1\n", "line 1: blank; line 1 must be the header"),
    (b"timestamp,load_kw\n\n", "no data rows (only the header)"),
    (b"timestamp,load_kw\n2026-07-01T00:00,\"" + b"x" * 200_000 + b"\"\n",
     "line 2: not a readable CSV row: field larger than field limit"),
])
def test_a_file_without_rows_or_with_an_unreadable_row_is_refused(tmp_path, content, expected):
    assert problems(tmp_path, content)[0].startswith(expected)


def test_a_file_beyond_the_csv_size_cap_is_refused_unread(tmp_path):
    big = b"timestamp,load_kw\n" + b"2026-07-01T00:00,1\n" * (MAX_CSV_BYTES // 19 + 1)
    assert problems(tmp_path, big) == ["the file is larger than 64 MiB"]
