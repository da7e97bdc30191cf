"""History store: the same suite against the SQLite file backend and the PostgreSQL backend.

Expected results are computed from the generated data with pandas, never by
asking the store.
"""

from __future__ import annotations

import itertools
import math
import sqlite3
import threading
from contextlib import closing
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from twin.history import AGGREGATES, History, PostgresHistory, SQLiteHistory, WriteRecord, open_history, record_write
from twin.readings import Quality, Reading

T0 = datetime(2026, 7, 1, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
DAY = timedelta(days=1)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def history_url(request: pytest.FixtureRequest, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'history.sqlite'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def history(history_url: str):
    with open_history(history_url) as store:
        yield store


def make_frame(point_ids: list[str], n_steps: int, start: datetime = T0, step_s: int = 60,
               seed: int = 0, keep_fraction: float = 0.9) -> pd.DataFrame:
    """Step-major long frame like the simulator's, with every quality, unknown values and random gaps."""
    rng = np.random.default_rng(seed)
    times = pd.date_range(start, periods=n_steps, freq=f"{step_s}s")
    n = n_steps * len(point_ids)
    quality = rng.choice([int(q) for q in Quality], size=n, p=[0.8, 0.08, 0.06, 0.06])
    value = rng.normal(100.0, 20.0, size=n)
    value[(quality == Quality.COMM_FAIL) | (rng.random(n) < 0.03)] = np.nan
    frame = pd.DataFrame({
        "point_id": np.tile(np.array(point_ids, dtype=object), n_steps),
        "ts_utc": np.repeat(times, len(point_ids)),
        "value": value,
        "quality": quality.astype(np.int16),
    })
    return frame[rng.random(n) < keep_fraction].reset_index(drop=True)


def as_rows(frame: pd.DataFrame) -> list[tuple]:
    """(point_id, timestamp, value or None, quality) tuples of a long frame, in its order."""
    return [(p, pd.Timestamp(t), None if pd.isna(v) else float(v), int(q))
            for p, t, v, q in zip(frame["point_id"], frame["ts_utc"], frame["value"], frame["quality"])]


def expected_rows(frame: pd.DataFrame, point_ids: list[str], start: datetime, end: datetime) -> list[tuple]:
    chosen = frame[frame["point_id"].isin(point_ids) & (frame["ts_utc"] >= start) & (frame["ts_utc"] < end)]
    return as_rows(chosen.sort_values(["point_id", "ts_utc"], kind="stable"))


def pandas_resample(frame: pd.DataFrame, point_ids: list[str], start: datetime, end: datetime,
                    interval_s: int, agg: str) -> pd.DataFrame:
    """Reference downsampling: GOOD/STALE known values, epoch-aligned left-labelled buckets, empty buckets dropped."""
    counted = frame[frame["point_id"].isin(point_ids) & (frame["ts_utc"] >= start) & (frame["ts_utc"] < end)
                    & (frame["quality"] <= Quality.STALE) & frame["value"].notna()]
    wide = counted.pivot(index="ts_utc", columns="point_id", values="value")
    buckets = wide.resample(f"{interval_s}s", origin="epoch", closed="left", label="left")
    out = buckets.sum(min_count=1) if agg == "sum" else getattr(buckets, agg)()
    return out.dropna(how="all").reindex(columns=point_ids)


def assert_utc(index_or_series) -> None:
    dtype = index_or_series.dtype
    assert isinstance(dtype, pd.DatetimeTZDtype) and str(dtype.tz) == "UTC", dtype


# ------------------------------------------------------------------ round trip


def test_round_trip_keeps_values_qualities_and_unknowns(history: History):
    readings = [
        Reading("b1.meter.power_kw", T0, 12.5, Quality.GOOD),
        Reading("b1.meter.power_kw", T0 + MINUTE, None, Quality.COMM_FAIL),
        Reading("b1.meter.power_kw", T0 + 2 * MINUTE, 1e-300, Quality.STALE),
        Reading("b1.meter.power_kw", T0 + 3 * MINUTE, -7.25, Quality.BAD),
        Reading("b1.meter.power_kw", T0 + 4 * MINUTE, None, Quality.GOOD),
        Reading("a.chiller.chw_supply_temp_c", T0, 0.1 + 0.2, Quality.GOOD),
        Reading("a.chiller.chw_supply_temp_c", T0 + MINUTE, float("nan"), Quality.BAD),
    ]
    assert history.append(readings) == len(readings)

    result = history.query(["b1.meter.power_kw", "a.chiller.chw_supply_temp_c"], T0, T0 + DAY)

    assert list(result.columns) == ["point_id", "ts_utc", "value", "quality"]
    assert_utc(result["ts_utc"])
    assert as_rows(result) == [
        ("a.chiller.chw_supply_temp_c", pd.Timestamp(T0), 0.1 + 0.2, 0),
        ("a.chiller.chw_supply_temp_c", pd.Timestamp(T0 + MINUTE), None, 2),
        ("b1.meter.power_kw", pd.Timestamp(T0), 12.5, 0),
        ("b1.meter.power_kw", pd.Timestamp(T0 + MINUTE), None, 3),
        ("b1.meter.power_kw", pd.Timestamp(T0 + 2 * MINUTE), 1e-300, 1),
        ("b1.meter.power_kw", pd.Timestamp(T0 + 3 * MINUTE), -7.25, 2),
        ("b1.meter.power_kw", pd.Timestamp(T0 + 4 * MINUTE), None, 0),
    ]


def test_generated_frame_round_trips_exactly(history: History):
    ids = [f"b{i % 3}.asset{i}.power_kw" for i in range(12)]
    frame = make_frame(ids, 300)

    assert history.append_frame(frame) == len(frame)

    assert as_rows(history.query(ids, T0, T0 + DAY)) == expected_rows(frame, ids, T0, T0 + DAY)
    assert history.point_ids() == sorted(ids)


def test_query_wide_matches_pivot(history: History):
    ids = ["p.c", "p.a", "p.b"]
    frame = make_frame(ids, 120, seed=3)
    history.append_frame(frame)
    start, end = T0 + 10 * MINUTE, T0 + 100 * MINUTE

    wide = history.query_wide(ids + ["p.never"], start, end)

    chosen = frame[(frame["ts_utc"] >= start) & (frame["ts_utc"] < end)]
    expected = chosen.pivot(index="ts_utc", columns="point_id", values="value").reindex(columns=ids + ["p.never"])
    assert list(wide.columns) == ids + ["p.never"]
    assert_utc(wide.index)
    pd.testing.assert_frame_equal(wide, expected, check_names=False, check_column_type=False, check_freq=False)


def test_unknown_points_give_empty_results(history: History):
    history.append([Reading("known", T0, 1.0)])

    assert history.query(["nobody"], T0, T0 + DAY).empty
    assert list(history.query(["nobody"], T0, T0 + DAY).columns) == ["point_id", "ts_utc", "value", "quality"]
    assert history.resample(["nobody"], T0, T0 + DAY, 60).empty
    assert history.latest(["nobody"]) == {}
    assert history.time_range("nobody") is None


# ------------------------------------------------------------ ranges and time


def test_query_range_is_half_open(history: History):
    history.append([Reading("p", T0 + i * MINUTE, float(i)) for i in range(5)])

    result = history.query(["p"], T0 + MINUTE, T0 + 3 * MINUTE)

    assert result["value"].tolist() == [1.0, 2.0]
    assert history.query(["p"], T0 + MINUTE, T0 + MINUTE).empty
    assert history.query(["p"], T0 + 3 * MINUTE, T0 + MINUTE).empty
    assert history.query_wide(["p"], T0, T0 + 5 * MINUTE).index[-1] == pd.Timestamp(T0 + 4 * MINUTE)


def test_other_time_zones_come_back_as_the_same_instant_in_utc(history: History):
    shanghai, new_york = ZoneInfo("Asia/Shanghai"), ZoneInfo("America/New_York")
    history.append([Reading("p.readings", datetime(2026, 7, 1, 8, 0, tzinfo=shanghai), 1.0)])  # 00:00 UTC
    frame = pd.DataFrame({
        "point_id": ["p.frame", "p.frame"],
        "ts_utc": pd.date_range("2026-06-30 20:00", periods=2, freq="1min", tz=new_york),  # 00:00 UTC
        "value": [2.0, 3.0],
        "quality": [0, 0],
    })
    history.append_frame(frame)

    result = history.query(["p.frame", "p.readings"], datetime(2026, 7, 1, 8, 0, tzinfo=shanghai),
                           datetime(2026, 7, 1, 8, 2, tzinfo=shanghai))

    assert_utc(result["ts_utc"])
    assert result["ts_utc"].tolist() == [pd.Timestamp(T0), pd.Timestamp(T0 + MINUTE), pd.Timestamp(T0)]
    latest = history.latest(["p.readings"])["p.readings"]
    assert latest.ts_utc == T0 and latest.ts_utc.utcoffset() == timedelta(0)
    assert history.time_range("p.frame") == (T0, T0 + MINUTE)


def test_timestamps_are_stored_to_the_millisecond(history: History):
    history.append([Reading("p", T0 + timedelta(microseconds=123_400), 1.0),
                    Reading("p", T0 + timedelta(microseconds=456_600), 2.0)])

    times = history.query(["p"], T0, T0 + MINUTE)["ts_utc"].tolist()

    assert times == [pd.Timestamp(T0 + timedelta(milliseconds=123)), pd.Timestamp(T0 + timedelta(milliseconds=457))]


def test_naive_timestamps_are_refused(history: History):
    naive = datetime(2026, 7, 1)  # noqa: DTZ001 -- naive on purpose: it must be refused
    frame = pd.DataFrame({"point_id": ["p"], "ts_utc": [pd.Timestamp(naive)], "value": [1.0], "quality": [0]})

    with pytest.raises(ValueError, match="tz-aware"):
        history.append_frame(frame)
    with pytest.raises(ValueError, match="time zone"):
        history.query(["p"], naive, T0)
    with pytest.raises(ValueError, match="time zone"):
        history.query_wide(["p"], T0, naive)
    with pytest.raises(ValueError, match="time zone"):
        history.resample(["p"], naive, naive + DAY, 60)
    assert history.point_ids() == []


def test_malformed_frames_are_refused(history: History):
    good = pd.DataFrame({"point_id": ["p"], "ts_utc": [pd.Timestamp(T0)], "value": [1.0], "quality": [0]})

    with pytest.raises(ValueError, match="quality"):
        history.append_frame(good.assign(quality=[7]))
    with pytest.raises(ValueError, match="lacks column"):
        history.append_frame(good.drop(columns="quality"))
    with pytest.raises(ValueError, match="point_id"):
        history.append_frame(good.assign(point_id=[None]))
    assert history.point_ids() == []


# ------------------------------------------------------------ replace, latest


def test_second_reading_for_the_same_point_and_time_replaces_the_first(history: History):
    history.append([Reading("p", T0, 1.0, Quality.GOOD), Reading("p", T0 + MINUTE, 2.0, Quality.GOOD)])
    history.append([Reading("p", T0, None, Quality.COMM_FAIL)])
    history.append_frame(pd.DataFrame({"point_id": ["p", "p"], "ts_utc": [pd.Timestamp(T0 + MINUTE)] * 2,
                                       "value": [5.0, 6.0], "quality": [2, 1]}))  # later row in the frame wins

    assert as_rows(history.query(["p"], T0, T0 + DAY)) == [
        ("p", pd.Timestamp(T0), None, 3),
        ("p", pd.Timestamp(T0 + MINUTE), 6.0, 1),
    ]


def test_reingesting_a_frame_is_idempotent(history: History):
    ids = ["a", "b"]
    frame = make_frame(ids, 200, seed=5)
    history.append_frame(frame)
    history.append_frame(frame)

    assert as_rows(history.query(ids, T0, T0 + DAY)) == expected_rows(frame, ids, T0, T0 + DAY)


def test_latest_reading_per_point_whatever_its_quality(history: History):
    history.append([
        Reading("a", T0, 1.0), Reading("a", T0 + 5 * MINUTE, 2.0),
        Reading("b", T0 + 9 * MINUTE, None, Quality.COMM_FAIL), Reading("b", T0 + MINUTE, 3.0),
        Reading("c", T0 + 2 * MINUTE, 4.0, Quality.BAD),
    ])

    assert history.latest() == {
        "a": Reading("a", T0 + 5 * MINUTE, 2.0, Quality.GOOD),
        "b": Reading("b", T0 + 9 * MINUTE, None, Quality.COMM_FAIL),
        "c": Reading("c", T0 + 2 * MINUTE, 4.0, Quality.BAD),
    }
    assert history.latest(["c", "missing"]) == {"c": Reading("c", T0 + 2 * MINUTE, 4.0, Quality.BAD)}
    assert history.time_range("b") == (T0 + MINUTE, T0 + 9 * MINUTE)


def test_append_frame_and_append_store_the_same(history: History):
    frame = make_frame(["frame.x", "frame.y"], 150, seed=9)
    readings = [Reading(p.replace("frame.", "list.", 1), t.to_pydatetime(), None if math.isnan(v) else v, Quality(q))
                for p, t, v, q in zip(frame["point_id"], frame["ts_utc"], frame["value"], frame["quality"])]

    assert history.append_frame(frame) == history.append(readings) == len(frame)

    from_frame = history.query(["frame.x", "frame.y"], T0, T0 + DAY)
    from_list = history.query(["list.x", "list.y"], T0, T0 + DAY)
    assert as_rows(from_frame.assign(point_id=from_frame["point_id"].str.replace("frame.", "list.", regex=False))) \
        == as_rows(from_list)


# --------------------------------------------------------------- downsampling


@pytest.mark.parametrize("agg", AGGREGATES)
@pytest.mark.parametrize("interval_s", [900, 420])
def test_resample_matches_pandas(history: History, agg: str, interval_s: int):
    ids = ["b2.pv.power_kw", "b1.meter.power_kw", "b1.chiller.power_kw"]
    frame = make_frame(ids, 3 * 1440 // 2, seed=11, keep_fraction=0.7)
    history.append_frame(frame)
    start, end = T0 + 7 * MINUTE, T0 + DAY - 3 * MINUTE  # not aligned: partial first and last bucket

    result = history.resample(ids, start, end, interval_s=interval_s, agg=agg)

    expected = pandas_resample(frame, ids, start, end, interval_s, agg)
    assert len(expected) > 50
    assert list(result.columns) == ids
    assert_utc(result.index)
    pd.testing.assert_frame_equal(result, expected, check_names=False, check_column_type=False, check_freq=False,
                                  rtol=1e-12)


def test_resample_counts_only_known_good_and_stale_values(history: History):
    history.append([
        Reading("p", T0, 10.0, Quality.GOOD),
        Reading("p", T0 + MINUTE, 20.0, Quality.STALE),
        Reading("p", T0 + 2 * MINUTE, 1000.0, Quality.BAD),
        Reading("p", T0 + 3 * MINUTE, None, Quality.COMM_FAIL),
        Reading("p", T0 + 4 * MINUTE, None, Quality.GOOD),
        Reading("p", T0 + 10 * MINUTE, 99.0, Quality.BAD),  # a bucket with nothing counted
    ])

    def one(agg: str) -> list[float]:
        return history.resample(["p"], T0, T0 + DAY, interval_s=300, agg=agg)["p"].tolist()

    assert one("mean") == [15.0]
    assert (one("min"), one("max"), one("sum"), one("first"), one("last")) == ([10.0], [20.0], [30.0], [10.0], [20.0])
    assert history.resample(["p"], T0, T0 + DAY, 300).index.tolist() == [pd.Timestamp(T0)]


def test_resample_refuses_unknown_aggregate_and_bad_interval(history: History):
    with pytest.raises(ValueError, match="median"):
        history.resample(["p"], T0, T0 + DAY, 60, agg="median")
    with pytest.raises(ValueError, match="interval_s"):
        history.resample(["p"], T0, T0 + DAY, 0)


# ------------------------------------------------------ persistence, threads


def test_history_survives_reopening(history: History, history_url: str):
    ids = ["a.x", "a.y", "a.z"]
    frame = make_frame(ids, 100, seed=2)
    history.append_frame(frame)
    history.close()

    with open_history(history_url) as reopened:
        assert as_rows(reopened.query(ids, T0, T0 + DAY)) == expected_rows(frame, ids, T0, T0 + DAY)
        assert reopened.point_ids() == ids
        reopened.append([Reading("a.new", T0, 1.0)])
        assert reopened.point_ids() == sorted([*ids, "a.new"])


def test_writer_thread_and_reader_thread_share_one_store(history: History):
    ids = [f"p{i}" for i in range(20)]
    batches = [make_frame(ids, 10, start=T0 + i * 10 * MINUTE, seed=i) for i in range(40)]
    totals_after_each_commit = set(np.cumsum([0] + [len(b) for b in batches]).tolist())
    writer_done = threading.Event()
    seen: list[int] = []
    errors: list[BaseException] = []

    def write() -> None:
        try:
            for i, batch in enumerate(batches):
                if i % 2:
                    history.append_frame(batch)
                else:
                    history.append([Reading(p, t.to_pydatetime(), None if math.isnan(v) else v, Quality(q))
                                    for p, t, v, q in batch.itertuples(index=False)])
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            writer_done.set()

    def read() -> None:
        try:
            while not writer_done.is_set():
                seen.append(len(history.query(ids, T0, T0 + DAY)))
                history.latest()
                history.resample(ids, T0, T0 + DAY, 600)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write), threading.Thread(target=read)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert not errors, errors
    assert seen and seen == sorted(seen)
    assert set(seen) <= totals_after_each_commit  # readers see whole appends only
    assert len(history.query(ids, T0, T0 + DAY)) == sum(len(b) for b in batches)


# ------------------------------------------------------------------ open_history


def test_sqlite_urls_relative_absolute_and_plain_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for url, path in [("sqlite:///rel/dir/h.sqlite", tmp_path / "rel" / "dir" / "h.sqlite"),
                      (f"sqlite:///{tmp_path}/abs/h.sqlite", tmp_path / "abs" / "h.sqlite"),
                      (str(tmp_path / "plain" / "h.sqlite"), tmp_path / "plain" / "h.sqlite"),
                      ("bare.sqlite", tmp_path / "bare.sqlite")]:
        # a missing folder is refused (tests/twin/test_storage_errors.py)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open_history(url) as store:
            assert isinstance(store, SQLiteHistory)
            store.append([Reading("p", T0, 1.0)])
        assert path.is_file(), url
        with closing(sqlite3.connect(path)) as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert conn.execute("SELECT count(*) FROM readings").fetchone()[0] == 1


@pytest.mark.parametrize("url", ["mysql://host/db", "sqlite://relative.db", "sqlite:///", "", "redis://x"])
def test_unknown_urls_are_refused_with_the_accepted_forms(url: str):
    with pytest.raises(ValueError) as info:
        open_history(url)
    assert repr(url) in str(info.value) and "sqlite:///" in str(info.value) and "postgresql://" in str(info.value)


@pytest.mark.postgres
def test_postgres_urls_and_schema_isolation(postgres_url: str):
    short_scheme = postgres_url.replace("postgresql://", "postgres://", 1)
    with open_history(short_scheme) as store:
        assert isinstance(store, PostgresHistory)
        assert store.schema == postgres_url.rsplit("schema=", 1)[1]
        store.append([Reading("only.here", T0, 1.0)])
    with open_history(postgres_url) as same_schema:
        assert same_schema.point_ids() == ["only.here"]


# ------------------------------------------------------------ write audit log range


SETPOINT = "plant.chiller1.chw_setpoint_c"
BATTERY = "plant.battery.power_setpoint_kw"


def audit_write(history: History, ts: datetime, who: str = "cli", point_id: str = SETPOINT, value: float | None = 8.0,
          result: str = "ok") -> WriteRecord:
    """Record one write through the audit path every writer uses; returns the record."""
    record = WriteRecord(ts, who, point_id, value, result)
    record_write(history, record)
    return record


def test_write_records_range_is_half_open_and_in_utc(history: History):
    start = datetime(2026, 7, 1, 8, 0, tzinfo=ZoneInfo("Asia/Shanghai"))  # 00:00 UTC
    end = start + timedelta(hours=1)
    ms = timedelta(milliseconds=1)
    before, first, middle, last, at_end = (audit_write(history, t, who=f"w{i}") for i, t in enumerate(
        [start - ms, start, start + timedelta(minutes=30), end - ms, end]))

    page = history.write_records(start, end)

    assert page.records == [first, middle, last] and page.next_cursor is None
    assert all(r.ts_utc.utcoffset() == timedelta(0) for r in page.records)
    assert page.records[0].ts_utc == datetime(2026, 7, 1, 0, 0, tzinfo=UTC)
    assert history.write_records(end, end + DAY).records == [at_end]
    assert history.write_records(start - DAY, start).records == [before]
    assert history.write_records(end, start).records == []  # an empty or reversed range has nothing


def test_write_records_come_oldest_first_and_equal_times_in_recorded_order(history: History):
    rng = np.random.default_rng(3)
    offsets = rng.integers(0, 20, size=60)  # many writes share a second
    written = [audit_write(history, T0 + timedelta(seconds=int(s)), who=f"writer{i}", value=float(i),
                     point_id=(SETPOINT, BATTERY)[i % 2], result="ok" if i % 3 else "refused: test")
               for i, s in enumerate(offsets)]
    expected = [written[i] for i in sorted(range(len(written)), key=lambda i: (offsets[i], i))]

    assert history.write_records(T0, T0 + DAY, limit=1000).records == expected
    assert history.write_audit() == written  # the whole log keeps the order recorded


@pytest.mark.parametrize("limit", [1, 4, 7, 10, 60, 61])
def test_write_pages_follow_each_other_without_gaps_or_repeats(history: History, limit: int):
    offsets = [5, 5, 5, 1, 9, 9, 0, 3, 5, 7, 7, 7, 7, 2, 8, 8, 6, 4, 4, 9] * 3  # ties cross page borders
    written = [audit_write(history, T0 + timedelta(seconds=s), who=f"w{i}") for i, s in enumerate(offsets)]
    expected = [written[i] for i in sorted(range(len(written)), key=lambda i: (offsets[i], i))]

    pages, after = [], None
    for _ in range(len(expected) + 1):  # bounded: a cursor that fails to advance must fail, not hang
        page = history.write_records(T0, T0 + MINUTE, limit=limit, after=after)
        pages.append(page.records)
        if page.next_cursor is None:
            break
        after = page.next_cursor
    assert [r for p in pages for r in p] == expected
    assert all(len(p) == limit for p in pages[:-1]) and 0 < len(pages[-1]) <= limit
    assert len(pages) == -(-len(expected) // limit)  # a last page that ends the range says so: no empty page
    streamed = itertools.islice(history.iter_write_records(T0, T0 + MINUTE, page_size=limit), len(expected) + 1)
    assert list(streamed) == expected


def test_writes_recorded_between_pages_shift_nothing(history: History, history_url: str):
    early = [audit_write(history, T0 + timedelta(seconds=s), who=f"w{s}") for s in range(6)]
    first = history.write_records(T0, T0 + DAY, limit=3)
    assert first.records == early[:3]
    later = audit_write(history, T0 + timedelta(seconds=2), who="late")  # same time as the cursor's record
    newest = audit_write(history, T0 + timedelta(hours=1), who="newest")
    with open_history(history_url) as other:  # a cursor is valid on any connection to the store
        rest = list(other.write_records(T0, T0 + DAY, limit=100, after=first.next_cursor).records)
    assert rest == [later, *early[3:], newest]


def test_write_records_keep_relinquish_and_store_nan_as_none(history: History):
    audit_write(history, T0, value=None)
    audit_write(history, T0 + MINUTE, value=float("nan"), result="refused: not a number")
    audit_write(history, T0 + 2 * MINUTE, value=-1500.25, point_id=BATTERY)
    assert [r.value for r in history.write_records(T0, T0 + DAY).records] == [None, None, -1500.25]


@pytest.mark.parametrize("kwargs, message", [
    ({"limit": 0}, "limit"), ({"limit": -5}, "limit"), ({"limit": 2.5}, "limit"), ({"limit": True}, "limit"),
    ({"after": "yesterday"}, "cursor"), ({"after": "12:"}, "cursor"),
])
def test_write_records_refuse_bad_limits_and_cursors(history: History, kwargs: dict, message: str):
    with pytest.raises(ValueError, match=message):
        history.write_records(T0, T0 + DAY, **kwargs)


def test_write_records_refuse_naive_times(history: History):
    with pytest.raises(ValueError, match="time zone"):
        history.write_records(datetime(2026, 7, 1), T0 + DAY)  # noqa: DTZ001 -- naive on purpose: it must be refused
