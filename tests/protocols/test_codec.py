"""Codec: DOMAIN.md reference vectors, an independent byte-level reference, and round trips."""

from __future__ import annotations

import math
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.codec import CodecError, decode, encode, register_count

ORDERS = [("big", "big"), ("big", "little"), ("little", "big"), ("little", "little")]


@pytest.mark.parametrize("word_order, byte_order, expected", [
    ("big", "big", [0x47F1, 0x2000]),        # ABCD
    ("big", "little", [0xF147, 0x0020]),     # BADC
    ("little", "big", [0x2000, 0x47F1]),     # CDAB
    ("little", "little", [0x0020, 0xF147]),  # DCBA
])
def test_float32_reference_vectors_from_domain(word_order, byte_order, expected):
    assert encode(123456.0, "float32", word_order, byte_order) == expected
    assert decode(expected, "float32", word_order, byte_order) == 123456.0


def _reference_registers(value, fmt: str, word_order: str, byte_order: str) -> list[int]:
    """Second implementation: DCBA is the little-endian byte string read as big-endian words, and so on."""
    big = struct.pack(">" + fmt, value)
    if (word_order, byte_order) == ("big", "big"):
        data = big
    elif (word_order, byte_order) == ("little", "little"):
        data = big[::-1]
    elif (word_order, byte_order) == ("big", "little"):
        data = b"".join(big[i:i + 2][::-1] for i in range(0, len(big), 2))
    else:
        data = b"".join(big[i:i + 2] for i in range(len(big) - 2, -1, -2))
    return [int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data), 2)]


INT_TYPES = {"int16": ("h", -2**15, 2**15 - 1), "uint16": ("H", 0, 2**16 - 1), "int32": ("i", -2**31, 2**31 - 1),
             "uint32": ("I", 0, 2**32 - 1), "int64": ("q", -2**63, 2**63 - 1), "uint64": ("Q", 0, 2**64 - 1)}


@pytest.mark.parametrize("data_type", sorted(INT_TYPES))
@pytest.mark.parametrize("word_order, byte_order", ORDERS)
@settings(deadline=None)  # timing under a loaded CI machine is not what these tests check
@given(data=st.data())
def test_integers_match_the_reference_and_round_trip(data_type, word_order, byte_order, data):
    fmt, low, high = INT_TYPES[data_type]
    value = data.draw(st.integers(low, high))
    registers = encode(value, data_type, word_order, byte_order)
    assert registers == _reference_registers(value, fmt, word_order, byte_order)
    assert len(registers) == register_count(data_type)
    assert decode(registers, data_type, word_order, byte_order) == value


@pytest.mark.parametrize("data_type, fmt", [("float32", "f"), ("float64", "d")])
@pytest.mark.parametrize("word_order, byte_order", ORDERS)
@settings(deadline=None)
@given(value=st.floats(allow_nan=False, width=32))
def test_floats_match_the_reference_and_round_trip(data_type, fmt, word_order, byte_order, value):
    registers = encode(value, data_type, word_order, byte_order)
    assert registers == _reference_registers(value, fmt, word_order, byte_order)
    assert decode(registers, data_type, word_order, byte_order) == value


@pytest.mark.parametrize("word_order, byte_order", ORDERS)
@settings(deadline=None)
@given(text=st.text(st.characters(min_codepoint=32, max_codepoint=0x7E), max_size=16))
def test_strings_round_trip(word_order, byte_order, text):
    registers = encode(text, "string", word_order, byte_order, length=8)
    assert len(registers) == 8
    assert decode(registers, "string", word_order, byte_order) == text


def test_sunspec_marker_is_suns_in_two_registers():
    assert encode("SunS", "string", length=2) == [0x5375, 0x6E53]  # the well-known 0x53756E53


def test_values_that_do_not_fit_are_refused():
    with pytest.raises(CodecError):
        encode(70000, "uint16")
    with pytest.raises(CodecError):
        encode(-1, "uint32")
    with pytest.raises(CodecError):
        encode("too long for one register", "string", length=1)
    with pytest.raises(CodecError):
        decode([0x0001], "int32")  # one register short
    with pytest.raises(CodecError):
        decode([0xFFFF, 0xFFFE], "string")  # not UTF-8


def test_nan_survives_as_nan():
    assert math.isnan(decode(encode(float("nan"), "float32"), "float32"))
