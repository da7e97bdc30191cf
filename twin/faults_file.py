"""Faults to inject into the simulator, read from YAML.

Example::

    faults:
      - {kind: chiller_cop_drop, target: chiller1, start: 2026-07-02T10:00, end: 2026-07-03T10:00, magnitude: 0.7}
      - {kind: sensor_flatline, target: b1.meter_b1.power_kw, start: 2026-07-04T09:00}

Times without an offset are in the park's time zone. ``magnitude`` is required by the kinds that
use it (:func:`magnitude_range`: above 0 and at most a bound per kind) and refused by the others.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import field_validator

from twin.config import load_yaml_model
from twin.input_schema import INPUT_YEARS, FiniteFloat, InputModel
from twin.kinds.base import AssetBase
from twin.park import FieldPath, Park
from twin.sim import Fault, FaultKind

POINT_TARGET_KINDS = {"sensor_flatline", "setpoint_ignored"}
ASSET_KIND_FOR_FAULT = {
    "chiller_cop_drop": "chiller",
    "chw_low_delta_t": "chiller",
    "pv_string_outage": "pv_array",
    "elevator_out_of_service": "elevator",
    "lighting_stuck_on": "lighting",
    "battery_overtemp": "battery",
}


BATTERY_OVERTEMP_MAX_K = 100.0
"""Most a battery_overtemp fault adds to the cell temperature (K): a cell 100 K above normal is on fire."""


class FaultEntry(InputModel):
    kind: FaultKind
    target: str
    start: datetime
    end: datetime | None = None
    magnitude: FiniteFloat | None = None

    @field_validator("start", "end")
    @classmethod
    def _within_years(cls, value: datetime | None) -> datetime | None:
        if value is not None and not INPUT_YEARS[0] <= value.year <= INPUT_YEARS[1]:
            raise ValueError(f"{value.isoformat()} is outside the years {INPUT_YEARS[0]}-{INPUT_YEARS[1]}")
        return value


def magnitude_range(kind: str, asset: AssetBase | None) -> tuple[str, float, float] | None:
    """What a fault kind's magnitude means and its range (lowest excluded, highest included), for the
    targeted asset; None for kinds without a magnitude. A COP multiplier of 0 would stop the chiller's
    physics (its power is cooling / COP); the targeted asset's kind bounds the others it sets a limit to
    (twin.kinds.base.AssetBase.fault_magnitude_max)."""
    most = asset.fault_magnitude_max().get(kind, float("inf")) if asset is not None else float("inf")
    if kind == "chiller_cop_drop":
        return "the multiplier of the chiller's COP", 0.0, 1.0
    if kind == "chw_low_delta_t":
        return "the chilled-water delta-T in K, at most the chiller's design_delta_t_k", 0.0, most
    if kind == "pv_string_outage":
        return "the number of strings lost, at most the array's strings_count", 0.0, most
    if kind == "battery_overtemp":
        return "the K added to the cell temperature", 0.0, BATTERY_OVERTEMP_MAX_K
    return None


class FaultsFile(InputModel):
    faults: list[FaultEntry]


def load_faults(path: str | Path, park: Park) -> list[Fault]:
    """Read and check a faults file against the park; ConfigError names every bad entry."""

    def check(doc: FaultsFile) -> list[tuple[FieldPath, str]]:
        issues: list[tuple[FieldPath, str]] = []
        assets = {asset.id: asset for _, asset in park.iter_assets()}
        asset_kinds = {asset_id: asset.kind for asset_id, asset in assets.items()}
        for i, entry in enumerate(doc.faults):
            if entry.kind in POINT_TARGET_KINDS:
                if entry.target not in park.points:
                    issues.append((("faults", i, "target"), f"no point {entry.target!r} in the park"))
                elif entry.kind == "setpoint_ignored" and not park.points[entry.target].writable:
                    issues.append((("faults", i, "target"), (f"setpoint_ignored needs a writable point; "
                                                            f"{entry.target!r} is read-only")))
            elif entry.target not in asset_kinds:
                issues.append((("faults", i, "target"), f"no asset {entry.target!r} in the park"))
            elif entry.kind in ASSET_KIND_FOR_FAULT and asset_kinds[entry.target] != ASSET_KIND_FOR_FAULT[entry.kind]:
                issues.append((("faults", i, "target"),
                               (f"{entry.kind} applies to a {ASSET_KIND_FOR_FAULT[entry.kind]}, "
                               f"{entry.target!r} is a {asset_kinds[entry.target]}")))
            if entry.end is not None and _utc(entry.end, park) <= _utc(entry.start, park):
                issues.append((("faults", i, "end"), "end must be after start"))
            problem = _magnitude_problem(entry, assets.get(entry.target))
            if problem:
                issues.append((("faults", i, "magnitude"), problem))
        return issues

    doc = load_yaml_model(path, FaultsFile, check)
    return [Fault(e.kind, e.target, _utc(e.start, park), _utc(e.end, park) if e.end else None, e.magnitude or 0.0)
            for e in doc.faults]


def _magnitude_problem(entry: FaultEntry, asset: AssetBase | None) -> str | None:
    expected = magnitude_range(entry.kind, asset)
    if expected is None:
        return None if entry.magnitude is None else f"{entry.kind} takes no magnitude"
    meaning, low, high = expected
    if entry.magnitude is None:
        return f"required for {entry.kind}: {meaning}"
    if not low < entry.magnitude <= high:
        return f"{entry.magnitude:g} is outside ({low:g}, {high:g}]: {meaning}"
    return None


def _utc(ts: datetime, park: Park) -> datetime:
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=ZoneInfo(park.site.timezone))
    return ts.astimezone(UTC)

