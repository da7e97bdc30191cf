"""Faults to inject into the simulator, read from YAML.

Example::

    faults:
      - {kind: chiller_cop_drop, target: chiller1, start: 2026-07-02T10:00, end: 2026-07-03T10:00, magnitude: 0.7}
      - {kind: sensor_flatline, target: b1.meter_b1.power_kw, start: 2026-07-04T09:00}

Times without an offset are in the park's time zone.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict

from twin.config import load_yaml_model
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


class FaultEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: FaultKind
    target: str
    start: datetime
    end: datetime | None = None
    magnitude: float = 0.0


class FaultsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    faults: list[FaultEntry]


def load_faults(path: str | Path, park: Park) -> list[Fault]:
    """Read and check a faults file against the park; ConfigError names every bad entry."""

    def check(doc: FaultsFile) -> list[tuple[FieldPath, str]]:
        issues: list[tuple[FieldPath, str]] = []
        asset_kinds = {asset.id: asset.kind for _, asset in park.iter_assets()}
        for i, entry in enumerate(doc.faults):
            if entry.kind in POINT_TARGET_KINDS:
                if entry.target not in park.points:
                    issues.append((("faults", i, "target"), f"no point {entry.target!r} in the park"))
                elif entry.kind == "setpoint_ignored" and not park.points[entry.target].writable:
                    issues.append((("faults", i, "target"), f"setpoint_ignored needs a writable point; "
                                                            f"{entry.target!r} is read-only"))
            elif entry.target not in asset_kinds:
                issues.append((("faults", i, "target"), f"no asset {entry.target!r} in the park"))
            elif entry.kind in ASSET_KIND_FOR_FAULT and asset_kinds[entry.target] != ASSET_KIND_FOR_FAULT[entry.kind]:
                issues.append((("faults", i, "target"),
                               f"{entry.kind} applies to a {ASSET_KIND_FOR_FAULT[entry.kind]}, "
                               f"{entry.target!r} is a {asset_kinds[entry.target]}"))
            if entry.end is not None and _utc(entry.end, park) <= _utc(entry.start, park):
                issues.append((("faults", i, "end"), "end must be after start"))
        return issues

    doc = load_yaml_model(path, FaultsFile, check)
    return [Fault(e.kind, e.target, _utc(e.start, park), _utc(e.end, park) if e.end else None, e.magnitude)
            for e in doc.faults]


def _utc(ts: datetime, park: Park) -> datetime:
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=ZoneInfo(park.site.timezone))
    return ts.astimezone(timezone.utc)

