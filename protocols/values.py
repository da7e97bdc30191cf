"""What one poll got for one point: the engineering value, its quality, and the raw value from the wire.

The adapters decode at the edge, once: the same decoding step that yields
the engineering value keeps what it started from, so that an integrator can
compare the two during commissioning and see why a point is bad. Raw values
go to the dashboard (through the feed), never to the history.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

from twin.readings import Quality


@dataclass(frozen=True, slots=True)
class RawValue:
    """A point's value as read, before scale, offset and scale factor.

    value: Modbus: the point's registers decoded as its type, unscaled (an
    int, a float, or text; 0 or 1 for a coil or discrete input); BACnet: the
    present value as received (a number, or the state text of a binary
    object, e.g. ``active``, or the error the device answered). None when
    nothing could be decoded.
    words: Modbus registers as received, in hex: ``0x47F1 0x2000``; None for
    bits and BACnet.
    scale_factor: the SunSpec scale factor as read (a power of ten, int16);
    None for a point without a scale-factor register.
    status: BACnet: what the object says of its value besides the value, when
    anything: status flags set (``in-alarm``, ``fault``, ``overridden``,
    ``out-of-service``), a reliability other than no-fault-detected, a command
    at a priority above ParkTwin's (``overridden at priority 8``); None otherwise.
    override_priority: BACnet: the highest active priority (1-16) above
    ParkTwin's write priority in the point's priority array, None when none is.
    exception: Modbus: the exception code the device answered the point's
    read with (2 illegal data address, ...); None when it answered with data.
    """

    value: float | int | str | None
    words: str | None = None
    scale_factor: int | None = None
    status: str | None = None
    override_priority: int | None = None
    exception: int | None = None

    def as_json(self) -> dict[str, Any]:
        """``{"value", "words", "scale_factor"}``, plus ``status``, ``override_priority`` and ``exception`` when
        set; a non-finite float as its text (``nan``, ``inf``)."""
        value = self.value
        if isinstance(value, float) and not math.isfinite(value):
            value = str(value)
        data = {"value": value, "words": self.words, "scale_factor": self.scale_factor}
        if self.status is not None:
            data["status"] = self.status
        if self.override_priority is not None:
            data["override_priority"] = self.override_priority
        if self.exception is not None:
            data["exception"] = self.exception
        return data


def raw_text(raw: dict[str, Any] | None) -> str:
    """A raw value in its JSON form (:meth:`RawValue.as_json`) as one line: ``0xFB2E = -1234 (sf -2)``,
    ``active``, ``8.5 [overridden at priority 8]``, ``Modbus exception 2 (illegal data address)``; an en
    dash when there is none."""
    if raw is None:
        return "–"
    if raw.get("exception") is not None:
        code = raw["exception"]
        return f"Modbus exception {code} ({MODBUS_EXCEPTIONS.get(code, 'unknown')})"
    text = " = ".join(str(part) for part in (raw["words"], raw["value"]) if part is not None)
    text = text if raw["scale_factor"] is None else f"{text} (sf {raw['scale_factor']})"
    return text if raw.get("status") is None else f"{text} [{raw['status']}]"


MODBUS_EXCEPTIONS = {1: "illegal function", 2: "illegal data address", 3: "illegal data value",
                     4: "server device failure", 5: "acknowledge", 6: "server device busy",
                     8: "memory parity error", 10: "gateway path unavailable",
                     11: "gateway target device failed to respond"}
"""Modbus exception codes and their names (Modbus application protocol v1.1b3, section 7)."""


def hex_words(registers: list[int]) -> str:
    """Modbus registers as the hex words an integrator compares with a register list: ``0x47F1 0x2000``."""
    return " ".join(f"0x{r:04X}" for r in registers)


class PointValue(NamedTuple):
    """One point after one poll: engineering value (point's unit, None when unknown), quality, raw value
    (None when the poll got nothing for it, e.g. the device did not answer)."""

    value: float | None
    quality: Quality
    raw: RawValue | None = None


PointValues = dict[str, PointValue]
"""Every point of a device after one poll, by point id."""
