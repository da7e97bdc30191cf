"""Time-series CSV files: one time column and named numeric columns, read into a frame on a UTC index.

Prices, plan inputs and weather files all follow one rule:

- line 1 is the header; names match case-insensitively, surrounding spaces ignored;
- exactly one time column; every required value column present; two header names for one column
  refused; other columns refused or ignored, as the caller declares;
- blank lines skipped (they still count in line numbers);
- every other line has as many fields as the header;
- times are ISO 8601 (pandas ``format="ISO8601"``); with a UTC offset or ``Z`` they are taken as
  given, without one they are local time in the declared time zone, and refused when no zone is
  declared or the local time does not exist or is ambiguous there (daylight-saving changes);
- times strictly increase: a repeated or earlier time is refused;
- every value is a finite number.

Any problem refuses the whole file with :class:`TimeSeriesCsvError`, every problem (up to
:data:`MAX_PROBLEMS_SHOWN`) as ``line N, column C: reason``, lines counted from 1 as an editor shows
them. Callers add their own checks (limits, spacing) through :meth:`TimeSeriesCsv.problem` and
:meth:`TimeSeriesCsv.refuse`, so their messages read the same.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NoReturn

import numpy as np
import pandas as pd

from twin.config import MAX_CSV_BYTES, ConfigError, read_input_text

MAX_PROBLEMS_SHOWN = 20
"""Most problems one refusal lists; a file broken on every line would otherwise print every line."""

MAX_CELL_SHOWN = 40
"""Most characters of a cell a message quotes (a mutated file may hold a field of megabytes)."""

TIME_WITH_OFFSET = r"[Tt ]\d{2}(?::?\d{2}){0,2}(?:[.,]\d+)?\s*(?:Z|z|[+-]\d{2}(?::?\d{2})?)\s*$"
"""An ISO 8601 time of day that ends in a UTC offset (``T08:00+08:00``, ``T00:00Z``); a date alone
(``2026-07-01``) has none, though it ends in ``-01``."""


class TimeSeriesCsvError(ConfigError):
    """A time-series CSV file that cannot be used: each problem names the line (1-based) and the column
    where it applies, and the reason. A :class:`ConfigError`, so the CLI exits 2 on it."""


def csv_problem(line: int, column: str | None, reason: str) -> str:
    """One problem as a refusal lists it: ``line N, column C: reason`` (``line N: reason`` for a whole line)."""
    where = f"line {line}" if column is None else f"line {line}, column {column}"
    return f"{where}: {reason}"


@dataclass(frozen=True)
class TimeSeriesCsv:
    """A time-series CSV file as read: the values and where each row came from.

    ``frame`` holds the value columns found (by their canonical names, floats) on a strictly increasing
    UTC ``DatetimeIndex`` named ``ts_utc``; ``line_numbers[i]`` is the file line of row ``i``;
    ``header_names`` maps each canonical name (and ``"time"``) to the name as the file spells it;
    ``ignored_columns`` lists the file's columns not read.
    """

    path: Path
    frame: pd.DataFrame
    line_numbers: np.ndarray
    header_names: Mapping[str, str]
    ignored_columns: list[str]

    def problem(self, row: int, column: str | None, reason: str) -> str:
        """A problem at row position ``row`` of :attr:`frame` and canonical ``column`` (``"time"`` for the
        time column, None for the whole line), worded as the reader words its own."""
        return csv_problem(int(self.line_numbers[row]), None if column is None else self.header_names[column],
                           reason)

    def refuse(self, problems: Sequence[str]) -> NoReturn:
        """Refuse the file for ``problems`` (from :meth:`problem` or :func:`csv_problem`)."""
        raise TimeSeriesCsvError(self.path, _shown(problems))

    def refuse_if(self, problems: Sequence[str]) -> None:
        """Refuse the file when there are ``problems``."""
        if problems:
            self.refuse(problems)


def read_timeseries_csv(
    path: str | Path,
    *,
    time_names: Sequence[str],
    columns: Mapping[str, Sequence[str]],
    required: Collection[str] = (),
    other_columns: Literal["refuse", "ignore"] = "refuse",
    timezone: str | None,
) -> TimeSeriesCsv:
    """Read a time-series CSV file by the rule of the module docstring.

    Parameters
    ----------
    path
        The CSV file (UTF-8, at most ``twin.config.MAX_CSV_BYTES``).
    time_names
        Accepted names of the time column, lower case.
    columns
        Value columns: canonical name -> accepted header names, lower case.
    required
        Canonical names that must be present; the others of ``columns`` are optional.
    other_columns
        Whether a header name that is neither the time nor a value column is refused or ignored.
    timezone
        IANA time zone of times without a UTC offset; None refuses such times.

    Raises
    ------
    TimeSeriesCsvError
        For any problem, naming the file, the line, the column and the reason.
    """
    path = Path(path)
    header, rows, lines = _rows(path)
    layout = _header_layout(path, header, time_names, columns, required, other_columns)
    if not rows:
        raise TimeSeriesCsvError(path, ["no data rows (only the header)"])
    problems: list[tuple[int, int, str]] = []  # (line, field index, problem), to list in file order
    whole = np.fromiter(map(len, rows), dtype=int, count=len(rows)) == len(header)
    for position in np.flatnonzero(~whole).tolist():
        problems.append((int(lines[position]), -1, csv_problem(int(lines[position]), None,
                                                                _width_reason(rows[position], header))))
    lines = lines[whole]
    whole_rows = rows if whole.all() else [row for row, ok in zip(rows, whole) if ok]
    fields = list(zip(*whole_rows)) or [()] * len(header)

    time_field = layout.fields["time"]
    time_text = fields[time_field]
    stamps_utc, readable = _times_utc(pd.Series(time_text, dtype=object), timezone)
    for position in np.flatnonzero(~readable).tolist():
        line = int(lines[position])
        problems.append((line, time_field, csv_problem(line, header[time_field],
                                                       _time_reason(time_text[position], timezone))))
    for position, before in _not_increasing(stamps_utc, readable):
        line = int(lines[position])
        problems.append((line, time_field, csv_problem(
            line, header[time_field], f"time {_quoted(time_text[position])} is not after the row before "
                                      f"({_quoted(time_text[before])}, line {lines[before]}); times must increase")))

    values = {}
    for canonical, field in layout.fields.items():
        if canonical == "time":
            continue
        numbers = pd.to_numeric(pd.Series(fields[field], dtype=object), errors="coerce").to_numpy(dtype=float)
        for position in np.flatnonzero(~np.isfinite(numbers)).tolist():
            line = int(lines[position])
            problems.append((line, field, csv_problem(line, header[field],
                                                      _value_reason(fields[field][position]))))
        values[canonical] = numbers
    if problems:
        problems.sort(key=lambda problem: problem[:2])
        raise TimeSeriesCsvError(path, _shown([problem for _, _, problem in problems]))
    frame = pd.DataFrame(values, index=pd.DatetimeIndex(stamps_utc, name="ts_utc").tz_localize("UTC"))
    header_names = {canonical: header[field] for canonical, field in layout.fields.items()}
    return TimeSeriesCsv(path, frame, lines, header_names, layout.ignored)


@dataclass(frozen=True)
class _HeaderLayout:
    """Where each column is: canonical name (and ``"time"``) -> field index; the header names not read."""

    fields: dict[str, int]
    ignored: list[str]


def _rows(path: Path) -> tuple[list[str], list[list[str]], np.ndarray]:
    """The file's header (names stripped), its non-blank data rows and the first line of each."""
    try:
        text = read_input_text(path, MAX_CSV_BYTES)
    except ConfigError as exc:
        raise TimeSeriesCsvError(path, exc.problems) from None
    reader = csv.reader(io.StringIO(text, newline=""))
    rows, lines = [], []
    lines_before = 0
    try:
        for row in reader:
            if row and (row[0].strip() or "".join(row).strip()):
                rows.append(row)
                lines.append(lines_before + 1)
            lines_before = reader.line_num
    except csv.Error as exc:
        raise TimeSeriesCsvError(path, [csv_problem(lines_before + 1, None, f"not a readable CSV row: {exc}")]) \
            from None
    if not rows:
        raise TimeSeriesCsvError(path, ["the file is empty"])
    if lines[0] != 1:
        raise TimeSeriesCsvError(path, [csv_problem(1, None, "blank; line 1 must be the header")])
    return [name.strip() for name in rows[0]], rows[1:], np.asarray(lines[1:], dtype=int)


def _header_layout(path: Path, header: list[str], time_names: Sequence[str], columns: Mapping[str, Sequence[str]],
                   required: Collection[str], other_columns: str) -> _HeaderLayout:
    """Find the time and value columns in the header, or refuse it naming every problem on line 1."""
    accepted = {"time": tuple(time_names), **{canonical: tuple(names) for canonical, names in columns.items()}}
    found: dict[str, list[int]] = {canonical: [] for canonical in accepted}
    ignored = []
    for field, name in enumerate(header):
        canonical = next((c for c, names in accepted.items() if name.lower() in names), None)
        if canonical is None:
            ignored.append(name)
        else:
            found[canonical].append(field)
    problems = []
    if not found["time"]:
        problems.append(f"no time column; name it one of {', '.join(time_names)}")
    missing = [canonical for canonical in required if not found[canonical]]
    if missing:
        named = [canonical if accepted[canonical] == (canonical,)
                 else f"{canonical} (named {' or '.join(accepted[canonical])})" for canonical in missing]
        problems.append(f"missing column{'s' if len(missing) > 1 else ''} {', '.join(named)}")
    for canonical, fields in found.items():
        if len(fields) > 1:
            problems.append(f"columns {' and '.join(header[f] for f in fields)} both give {canonical}; keep one")
    if other_columns == "refuse" and ignored:
        problems.append(f"unknown columns {', '.join(ignored)}; known are "
                        f"{', '.join(name for names in accepted.values() for name in names)}")
    if problems:
        raise TimeSeriesCsvError(path, [csv_problem(1, None, problem) for problem in problems])
    return _HeaderLayout({canonical: fields[0] for canonical, fields in found.items() if fields}, ignored)


def _width_reason(row: list[str], header: list[str]) -> str:
    return f"{len(row)} fields, the header has {len(header)}"


def _times_utc(text: pd.Series, timezone: str | None) -> tuple[np.ndarray, np.ndarray]:
    """ISO 8601 times as UTC ``datetime64[us]`` and whether each was readable (NaT where not): with an
    offset as given, without one in ``timezone`` (unreadable when it is None or the time does not exist or
    is ambiguous there)."""
    try:
        uniform = pd.to_datetime(text, format="ISO8601")
    except (ValueError, OverflowError, TypeError):
        uniform = None  # unreadable times, or times with and without offsets: sorted out one kind at a time
    if uniform is not None and isinstance(uniform.dtype, pd.DatetimeTZDtype):
        stamps = _utc_us(uniform)
        return stamps, ~np.isnat(stamps)
    if uniform is not None and timezone is not None:
        stamps = _utc_us(pd.DatetimeIndex(uniform).tz_localize(timezone, ambiguous="NaT", nonexistent="NaT"))
        return stamps, ~np.isnat(stamps)
    with_offset = text.str.contains(TIME_WITH_OFFSET, regex=True).to_numpy(dtype=bool)
    stamps = np.full(len(text), np.datetime64("NaT", "us"))
    if with_offset.any():
        stamps[with_offset] = _utc_us(_parse_iso(text[with_offset], utc=True))
    if timezone is not None and (~with_offset).any():
        local = pd.DatetimeIndex(_parse_iso(text[~with_offset], utc=False))
        stamps[~with_offset] = _utc_us(local.tz_localize(timezone, ambiguous="NaT", nonexistent="NaT"))
    return stamps, ~np.isnat(stamps)


def _parse_iso(text: pd.Series, utc: bool) -> pd.Series:
    """``pd.to_datetime(format="ISO8601")``, NaT where unreadable; without ``utc`` only times without an
    offset are read. Times go one by one when pandas raises on the whole column despite ``errors="coerce"``
    (some malformed offsets) or finds offsets among times meant to have none."""
    try:
        parsed = pd.to_datetime(text, utc=utc, format="ISO8601", errors="coerce")
        if utc or (parsed.dtype.kind == "M" and not isinstance(parsed.dtype, pd.DatetimeTZDtype)):
            return parsed
    except (ValueError, OverflowError, TypeError):
        pass
    return pd.Series([_parse_one_iso(value, utc) for value in text], index=text.index,
                     dtype="datetime64[us, UTC]" if utc else "datetime64[us]")


def _parse_one_iso(value: str, utc: bool) -> pd.Timestamp | None:
    """One ISO 8601 time, None when unreadable (or, without ``utc``, when it has an offset)."""
    try:
        stamp = pd.to_datetime(value, utc=utc, format="ISO8601")
    except (ValueError, OverflowError, TypeError):
        return None
    if not isinstance(stamp, pd.Timestamp) or not (utc or stamp.tzinfo is None):
        return None  # NaT ("", "NaT") or an offset where none belongs
    return stamp


def _utc_us(times) -> np.ndarray:
    """tz-aware times (or NaT) as naive UTC ``datetime64[us]``."""
    index = pd.DatetimeIndex(times)
    if index.tz is not None:
        index = index.tz_convert("UTC").tz_localize(None)
    return index.as_unit("us").to_numpy()


def _time_reason(text: str, timezone: str | None) -> str:
    """Why a time was not read."""
    if _parse_one_iso(text, utc=True) is None or _parse_one_iso(text, utc=False) is None:
        return f"cannot read time {_quoted(text)} (ISO 8601 expected, e.g. 2026-07-01T08:00+08:00)"
    if timezone is None:
        return f"time {_quoted(text)} has no UTC offset; add one (e.g. +08:00) or give the file's time zone"
    return f"local time {_quoted(text)} does not exist or is ambiguous in {timezone} (add a UTC offset)"


def _not_increasing(stamps: np.ndarray, readable: np.ndarray) -> list[tuple[int, int]]:
    """(row, the readable row before it) for each readable time not after the readable time before it."""
    positions = np.flatnonzero(readable)
    late = np.flatnonzero(np.diff(stamps[positions]) <= np.timedelta64(0, "us"))
    return [(int(positions[k + 1]), int(positions[k])) for k in late]


def _value_reason(text: str) -> str:
    """Why a value was not read: not a number at all, or a number that is not finite (``inf``, ``nan``)."""
    try:
        finite = math.isfinite(float(text))
    except ValueError:
        return f"not a number: {_quoted(text)}"
    return f"not a number: {_quoted(text)}" if finite else f"not finite: {_quoted(text)}"


def _quoted(cell: str) -> str:
    """A cell's text for a message: stripped, quoted, cut to :data:`MAX_CELL_SHOWN` characters."""
    text = cell.strip()
    return repr(text) if len(text) <= MAX_CELL_SHOWN else f"{text[:MAX_CELL_SHOWN]!r}..."


def _shown(problems: Sequence[str]) -> list[str]:
    """At most :data:`MAX_PROBLEMS_SHOWN` problems, and how many more there were."""
    if len(problems) <= MAX_PROBLEMS_SHOWN:
        return list(problems)
    return list(problems[:MAX_PROBLEMS_SHOWN]) + [f"... and {len(problems) - MAX_PROBLEMS_SHOWN} more problems"]
