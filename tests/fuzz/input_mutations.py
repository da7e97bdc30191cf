"""Hypothesis strategies that mutate a real input file's bytes in the ways that can break a loader.

A mutation replaces up to three values of the file (YAML values after ``key:`` and list dashes, CSV
cells) with hostile ones (NaN and infinity, 1e308, huge integers, deep nesting, lists and mappings
where scalars belong, impossible dates, aliases to themselves, wrong types), then may damage the bytes
(a flipped byte, truncation, invalid UTF-8 or binary inserted, a range deleted, a line repeated).
"""

from __future__ import annotations

import math
import re

from hypothesis import strategies as st

YAML_VALUE = re.compile(rb"(?<=: )[^,\n{}\[\]#]+|(?<=- )[^,\n{}\[\]#:]+")
CSV_CELL = re.compile(rb"[^,\r\n]+")
YAML_NUMBER = re.compile(rb"(?:(?<=: )|(?<=\[)|(?<=, ))-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?(?=[,}\]\s])")
EXTREME_NUMBERS = [b"0", b"-0.0", b"-1", b"1e-300", b"1e300", b"-1e300", b"1e15", b"9223372036854775808", b"0.5",
                   b"100", b"1e6", b"3600", b"86400"]

HOSTILE_VALUES = [
    b".nan", b".inf", b"-.inf", b"nan", b"inf", b"-inf", b"NaN", b"1e308", b"-1e308", b"1e-320", b"0", b"-0",
    b"-1", b"7", b"99999999999", b"9" * 100_000, b"0x" + b"f" * 200, b"[1, 2]", b"{a: 1}", b"[]", b"{}",
    b"null", b"~", b"true", b'""', b"'x'", b"2026-02-30", b"2026-13-01T25:61", b"1970-01-01", b"&a [*a]",
    b"!!binary AAAA", b"!!python/object:os.system ls", b"\xc3\xa9", b"a:b", b"*undefined", b"? [a]",
    b"1_000", b"12:00", b"|", b'"\\ud800"', b"!!int abc", b"!!float .", b"!!timestamp abc", b"!!bool maybe",
    b"!!int 0b2", b"!!binary '###'", b"!!set [1]", b"{<<: 5}", b"!!int 1:70:1",
]
BAD_BYTES = [b"\xff", b"\xfe\xff", b"\xc3", b"\xc3(", b"\xed\xa0\x80", b"\x00", b"\x00\x00\x00\x01", b"\x1b[31m"]


def nested(depth: int, mapping: bool) -> bytes:
    """A value nested ``depth`` levels deep, as a flow sequence or a flow mapping."""
    return (b"{a: " * depth + b"1" + b"}" * depth) if mapping else (b"[" * depth + b"]" * depth)


hostile_value = st.one_of(
    st.sampled_from(HOSTILE_VALUES),
    st.builds(nested, st.integers(1, 5000), st.booleans()),
    st.floats(allow_nan=True, allow_infinity=True).map(lambda x: repr(x).encode()),
    st.integers(-(10**40), 10**40).map(lambda n: str(n).encode()),
    st.text(max_size=20).map(lambda s: s.encode("utf-8", "surrogatepass")),
)


@st.composite
def mutated(draw, original: bytes, value_pattern: re.Pattern[bytes]) -> bytes:
    """``original`` with up to three values replaced, then possibly damaged byte by byte."""
    spans = [m.span() for m in value_pattern.finditer(original)]
    chosen = draw(st.lists(st.sampled_from(spans), max_size=3, unique=True)) if spans else []
    data = original
    for start, end in sorted(chosen, reverse=True):
        data = data[:start] + draw(hostile_value) + data[end:]
    damage = draw(st.sampled_from(["none", "none", "flip", "truncate", "insert", "delete", "repeat_line"]))
    if damage == "none" or not data:
        return data
    at = draw(st.integers(0, len(data) - 1))
    if damage == "flip":
        return data[:at] + bytes([draw(st.integers(0, 255))]) + data[at + 1:]
    if damage == "truncate":
        return data[:at]
    if damage == "insert":
        return data[:at] + draw(st.one_of(st.sampled_from(BAD_BYTES), st.binary(min_size=1, max_size=16))) + data[at:]
    if damage == "delete":
        return data[:at] + data[at + draw(st.integers(1, 64)):]
    line_start = data.rfind(b"\n", 0, at) + 1
    line_end = data.find(b"\n", at)
    line = data[line_start:line_end + 1 if line_end >= 0 else len(data)]
    return data[:line_start] + line * draw(st.integers(2, 50)) + data[line_start:]


@st.composite
def extreme_numbers(draw, original: bytes) -> bytes:
    """``original`` (YAML) with one to three of its numbers replaced by extreme but well-formed ones."""
    spans = [m.span() for m in YAML_NUMBER.finditer(original)]
    data = original
    for start, end in sorted(draw(st.lists(st.sampled_from(spans), min_size=1, max_size=3, unique=True)),
                             reverse=True):
        data = data[:start] + draw(st.sampled_from(EXTREME_NUMBERS)) + data[end:]
    return data


def yaml_mutations(original: bytes) -> st.SearchStrategy[bytes]:
    return mutated(original, YAML_VALUE)


def csv_mutations(original: bytes) -> st.SearchStrategy[bytes]:
    return mutated(original, CSV_CELL)


def non_finite_numbers(value, path: str = "") -> list[str]:
    """Paths of every NaN or infinite float inside plain data (dicts, lists, tuples, numbers)."""
    if isinstance(value, float):
        return [] if math.isfinite(value) else [path or "(value)"]
    if isinstance(value, dict):
        return [p for key, item in value.items() for p in non_finite_numbers(item, f"{path}.{key}")]
    if isinstance(value, (list, tuple)):
        return [p for i, item in enumerate(value) for p in non_finite_numbers(item, f"{path}[{i}]")]
    return []
