"""The protocol field: the live park as the controller sees it, read from the twin and written over
Modbus and BACnet.

State comes from the twin: storage from live state (good readings only),
brought forward from the time of its reading to now (or to the step boundary
the controller prepares for) by the flows read with it
(a reading is up to a poll period old, and at full power a battery moves a
sizeable share of its capacity in one: planning from the old figure would ask
for energy it no longer has), the month's billed demand from the grid meter's import-energy counter in history
(twin.field.BilledDemand, read incrementally). Setpoints go through the
protocol write path (``write``: limits enforced, every attempt in the write
audit log). Release hands each point written back to the plant's own schedule:
a BACnet relinquish (a write of null at ParkTwin's priority), or for a Modbus
point its fail-safe enable register set to 0 (a Modbus point without one is
refused, and recorded as such).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import pandas as pd

from twin.field import FieldState
from twin.history import History
from twin.kinds.base import AssetBase, Role
from twin.live import LiveState
from twin.metering import BilledDemand
from twin.park import Park
from twin.points import point_id
from twin.readings import Quality

PointWrites = Callable[[dict[str, "float | None"], str], dict[str, str]]
"""({point id: value, or None to relinquish}, who) -> each write's result: "ok", or "refused: ..." /
"failed: ..."; the points are written at once (one round of the protocols,
protocols.coordinator.AdapterFeed.write_many)."""


class ProtocolField:
    """The controller's Field port on a live park (module docstring). ``now_utc``: the twin's clock;
    ``on_written(point, value)``: told of every accepted write and release (value None), for read-back
    (protocols.readback); ``overrides()``: the points a higher priority than ParkTwin's holds (an operator
    at priority 8), which are not written while it does."""

    def __init__(self, park: Park, live: LiveState, history: History, write: PointWrites,
                 now_utc: Callable[[], datetime], demand_interval_min: int,
                 on_written: Callable[[str, float | None], None] | None = None,
                 overrides: Callable[[], dict[str, int]] | None = None):
        self.park, self.live, self.history, self.write, self.now_utc = park, live, history, write, now_utc
        self.on_written, self.overrides = on_written, overrides
        # the storage FieldState reports, every asset whose kind declares a stored point: (asset, building id,
        # that point's id)
        self._storage = [(asset, building.id, point_id(building.id, asset.id, asset.stored_point))
                         for building, asset in park.iter_assets() if asset.stored_point is not None]
        self._counter = park.role_points(Role.GRID_IMPORT_COUNTER)[0]
        self._billed = BilledDemand(park.site.timezone, demand_interval_min)
        self._written: set[str] = set()

    def read_state(self, at_utc: datetime | None = None) -> FieldState:
        """The state at ``at_utc`` (default now): storage brought forward to it from its readings; the
        billed peak as metered up to now."""
        now = self.now_utc()
        self._read_counter(now)
        at = now if at_utc is None else at_utc
        stored = {asset.id: value for asset, building, point in self._storage
                  if (value := self._stored_at(asset, building, point, at)) is not None}
        return FieldState(at, stored, self._billed.peak_kw, self._billed.last_interval)

    def _good(self, point: str) -> tuple[datetime, float] | None:
        """The point's live reading (time, value) when it is good, else None."""
        reading = self.live.get(point)
        if reading is None or reading.quality != Quality.GOOD or reading.value is None:
            return None
        return reading.ts_utc, reading.value

    def _stored_at(self, asset: AssetBase, building: str, stored_point: str, at: datetime) -> float | None:
        """The energy the asset stores at ``at``, in the unit of its ``stored_point`` (its id): that point's
        reading, with the flows read with it (its kind's ``storage_flow_points``) held since then; the reading
        itself when a flow is unknown; None without a good reading."""
        stored = self._good(stored_point)
        if stored is None:
            return None
        stored_utc, stored_value = stored
        flows = [self.live.value(point_id(building, asset.id, name)) for name in asset.storage_flow_points]
        known = [flow for flow in flows if flow is not None]
        hours = (at - stored_utc).total_seconds() / 3600.0
        if len(known) < len(flows) or hours <= 0:
            return stored_value
        return asset.stored_after(stored_value, known, hours)

    def _read_counter(self, now: datetime) -> None:
        """Feed the counter readings stored since the last call (from the local month's start at first), and
        the live one."""
        since = self._billed.last_sample_utc
        if since is None:
            local = pd.Timestamp(now).tz_convert(self.park.site.timezone)
            since = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0, nanosecond=0).tz_convert("UTC")
        else:
            since = since + timedelta(microseconds=1)
        readings = self.history.query([self._counter], since.to_pydatetime(), now)
        readings = readings[readings["quality"] == int(Quality.GOOD)]
        for ts, value in zip(readings["ts_utc"], readings["value"]):
            self._billed.add(ts, float(value))
        latest = self._good(self._counter)  # newer than history while the store batches its writes
        if latest is not None:
            self._billed.add(*latest)

    def write_setpoints(self, setpoints: dict[str, float], who: str) -> dict[str, str]:
        overridden = self.overrides() if self.overrides is not None else {}
        # an operator holds an overridden point: not fought, written again once relinquished
        results = {point: f"skipped: overridden at priority {overridden[point]}" for point in setpoints
                   if point in overridden}
        results.update(self._write({p: v for p, v in setpoints.items() if p not in overridden}, who))
        # a write that failed (no answer in time) may still have reached the device: it is released too
        self._written |= {point for point, result in results.items() if result == "ok" or result.startswith("failed")}
        return {point: results[point] for point in setpoints}

    def release_setpoints(self, who: str) -> dict[str, str]:
        results = self._write(dict.fromkeys(sorted(self._written)), who)
        self._written = {p for p, result in results.items() if result.startswith("failed")}
        return results

    def _write(self, values: dict[str, float | None], who: str) -> dict[str, str]:
        """Write the values, telling ``on_written`` of each accepted one; a failure of the whole round
        (e.g. the protocol thread not answering) is each point's result."""
        if not values:
            return {}
        try:
            results = self.write(values, who)
        except Exception as exc:  # one failing round does not stop the controller
            results = dict.fromkeys(values, f"failed: {exc}")
        if self.on_written is not None:
            for point, result in results.items():
                if result == "ok":
                    self.on_written(point, values[point])
        return results
