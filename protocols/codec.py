"""Encode and decode Modbus register values for every data type in all four byte/word orders.

A value is packed big-endian (the Modbus wire order inside a register), cut
into 16-bit words, then rearranged: ``byte_order="little"`` swaps the two
bytes inside each word, ``word_order="little"`` reverses the words. For
float32 123456.0 (0x47F12000) this gives the reference vectors of DOMAIN.md:
ABCD (big/big) 0x47F1 0x2000, BADC (big/little) 0xF147 0x0020,
CDAB (little/big) 0x2000 0x47F1, DCBA (little/little) 0x0020 0xF147.
"""

from __future__ import annotations

import struct

STRUCT_FORMATS = {"int16": ">h", "uint16": ">H", "int32": ">i", "uint32": ">I", "int64": ">q", "uint64": ">Q",
                  "float32": ">f", "float64": ">d"}


class CodecError(ValueError):
    """A value that cannot be encoded, or registers that cannot be decoded."""


def encode(value: float | int | str, data_type: str, word_order: str = "big", byte_order: str = "big",
           length: int | None = None) -> list[int]:
    """Registers (ints 0..65535) holding ``value`` as ``data_type``.

    Integers are rounded to the nearest whole number and must fit the type;
    strings are UTF-8, padded with NUL to ``length`` registers.
    """
    if data_type == "bool":
        return [1 if value else 0]
    if data_type == "string":
        if length is None:
            raise CodecError("a string needs its length in registers")
        raw = str(value).encode("utf-8")
        if len(raw) > 2 * length:
            raise CodecError(f"string of {len(raw)} bytes does not fit {length} registers")
        data = raw.ljust(2 * length, b"\0")
    else:
        fmt = _format(data_type)
        try:
            if data_type.startswith("float"):
                number = float(value)
            else:  # exact for Python ints (64-bit values do not survive a trip through float)
                number = value if isinstance(value, int) else int(round(float(value)))
            data = struct.pack(fmt, number)
        except (struct.error, OverflowError, ValueError):
            raise CodecError(f"{value!r} does not fit {data_type}") from None
    return _arrange(_words(data), word_order, byte_order)


def decode(registers: list[int], data_type: str, word_order: str = "big", byte_order: str = "big") -> float | int | str:
    """The value held in ``registers`` (exactly as many as the type needs)."""
    if data_type == "bool":
        return int(bool(registers[0]))
    if any(not 0 <= r <= 0xFFFF for r in registers):
        raise CodecError(f"registers out of range: {registers}")
    words = _arrange(list(registers), word_order, byte_order)  # the arrangement is its own inverse
    data = b"".join(w.to_bytes(2, "big") for w in words)
    if data_type == "string":
        try:
            return data.rstrip(b"\0").decode("utf-8")
        except UnicodeDecodeError:
            raise CodecError("registers do not hold UTF-8 text") from None
    fmt = _format(data_type)
    if len(data) != struct.calcsize(fmt):
        raise CodecError(f"{data_type} needs {struct.calcsize(fmt) // 2} registers, got {len(registers)}")
    value: float | int | str = struct.unpack(fmt, data)[0]
    return value


def register_count(data_type: str, length: int | None = None) -> int:
    """Registers a value of ``data_type`` occupies."""
    if data_type == "bool":
        return 1
    if data_type == "string":
        if length is None:
            raise CodecError("a string needs its length in registers")
        return length
    return struct.calcsize(_format(data_type)) // 2


def _format(data_type: str) -> str:
    try:
        return STRUCT_FORMATS[data_type]
    except KeyError:
        raise CodecError(f"unknown data type {data_type!r}") from None


def _words(data: bytes) -> list[int]:
    return [int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data), 2)]


def _arrange(words: list[int], word_order: str, byte_order: str) -> list[int]:
    if byte_order == "little":
        words = [((w & 0xFF) << 8) | (w >> 8) for w in words]
    elif byte_order != "big":
        raise CodecError(f"byte order must be big or little, not {byte_order!r}")
    if word_order == "little":
        words = words[::-1]
    elif word_order != "big":
        raise CodecError(f"word order must be big or little, not {word_order!r}")
    return words
