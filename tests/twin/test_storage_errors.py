"""Storage errors say what happened and where: a missing or read-only folder is bad input (exit 2 naming the file),
a full disk exits 1 saying so and what was committed; a live run's writer spools on a full disk instead.

A full or read-only disk is made for real with a small tmpfs, which needs root (`mount`); as another user those
variants are skipped (a read-only folder is then made with chmod, which does not stop root)."""

from __future__ import annotations

import logging
import os
import re
import sqlite3
import subprocess
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cli_support import CliResult, parktwin
from waiting import wait_for

from twin.history import SQLiteHistory
from twin.history.spool import ReadingSpool
from twin.history.writer import SpooledWriter
from twin.readings import Quality, Reading

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "examples" / "demo-park" / "park.yaml"
T0 = datetime(2026, 7, 1, tzinfo=UTC)


def simulate(history: Path, days: int = 1) -> CliResult:
    return parktwin("simulate", str(DEMO), "--start", "2026-07-01", "--days", str(days), "--history",
                    f"sqlite:///{history}")


def mount_tmpfs(folder: Path, options: str) -> None:
    """A tmpfs at ``folder`` with mount ``options``; skips the test where mounting is not allowed."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a small or read-only tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True,
                          text=True)
    if done.returncode != 0:
        pytest.skip(f"mount -t tmpfs is not allowed here: {done.stderr.strip()}")


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MiB filesystem of the test's own."""
    folder = tmp_path / "disk"
    mount_tmpfs(folder, "size=2m")
    yield folder
    subprocess.run(["umount", str(folder)], check=True)


@pytest.fixture
def read_only_folder(tmp_path):
    """A folder nobody may write in: a read-only tmpfs as root, else a chmod 555 folder."""
    folder = tmp_path / "read-only"
    if os.geteuid() != 0:
        folder.mkdir()
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    mount_tmpfs(folder, "ro,size=1m")
    yield folder
    subprocess.run(["umount", str(folder)], check=True)


def test_a_missing_folder_is_bad_input_naming_the_file(tmp_path):
    history = tmp_path / "no-such-folder" / "h.sqlite"
    result = simulate(history)
    assert result.returncode == 2, result.stderr
    assert f"history file {history}: folder {history.parent} does not exist" in result.stderr
    assert "Traceback" not in result.stderr
    assert not history.parent.exists()  # nothing made on the way


def test_a_file_in_place_of_the_folder_is_bad_input_naming_the_file(tmp_path):
    (tmp_path / "notes.txt").write_text("not a folder")
    history = tmp_path / "notes.txt" / "h.sqlite"
    result = simulate(history)
    assert result.returncode == 2, result.stderr
    assert f"history file {history}: {tmp_path / 'notes.txt'} is a file, not a folder" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_read_only_folder_is_bad_input_naming_the_file(read_only_folder):
    history = read_only_folder / "h.sqlite"
    result = simulate(history)
    assert result.returncode == 2, result.stderr
    assert f"history file {history}: cannot" in result.stderr and "read-only?" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_full_disk_exits_1_saying_so_and_what_was_committed(small_disk):
    history = small_disk / "h.sqlite"
    result = simulate(history)  # a day of the demo park takes about 10 MB: far more than the disk
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    last_line = result.stderr.strip().splitlines()[-1]
    assert "cannot rollback" not in result.stderr, result.stderr
    said = re.search(rf"error: history file {re.escape(str(history))}: the disk is full .*; ([\d,]+) readings up to "
                     r"\d{4}-\d\d-\d\d \d\d:\d\d UTC were committed", last_line)
    assert said, last_line
    committed = int(said.group(1).replace(",", ""))
    with closing(sqlite3.connect(f"file:{history}?mode=ro", uri=True)) as connection:
        (stored,), = connection.execute("SELECT count(*) FROM readings").fetchall()
    assert stored == committed > 0


def test_a_live_run_on_a_full_disk_spools_and_writes_everything_once_there_is_room(small_disk, tmp_path, caplog):
    """The writer in front of a store on a full disk: readings wait in a spool on another disk, one log line,
    and all of them reach the store, in order, once the disk has room again."""
    points = [f"b1.meter{i}.power_kw" for i in range(50)]
    polls = 0

    def poll() -> None:
        nonlocal polls
        polls += 1
        writer.append([Reading(pid, T0 + timedelta(seconds=polls), float(polls), Quality.GOOD) for pid in points])

    with SQLiteHistory(small_disk / "h.sqlite") as store:
        writer = SpooledWriter(store, ReadingSpool(tmp_path / "spool.sqlite", max_rows=1_000_000), retry_s=0.05)
        writer.start()
        try:
            with caplog.at_level(logging.WARNING, logger="twin.history.writer"):
                while writer.health().state == "ok":  # fill the disk, a poll at a time
                    poll()
                    wait_for(lambda: writer.health().written_rows + len(writer.spool) == polls * len(points), 60,
                             "the poll written or spooled")
                assert "disk is full" in writer.health().reason
                for _ in range(100):
                    poll()
                wait_for(lambda: len(writer.spool) >= 100 * len(points), 60, "100 polls spooled")
                subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)  # room again
                wait_for(lambda: writer.health().state == "ok", 60, "the spool replayed")
        finally:
            health = writer.close()
        assert (health.received_rows, health.written_rows, health.lost_rows) == (polls * 50, polls * 50, 0)
        frame = store.query([points[7]], T0, T0 + timedelta(days=1))
    assert frame["value"].tolist() == [float(n) for n in range(1, polls + 1)]
    assert [r.message.split(" (")[0].split(" after")[0] for r in caplog.records] == [
        "history store unavailable", "history store back"]
