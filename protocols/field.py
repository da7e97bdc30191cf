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
from twin.kinds import Battery, IceTank
from twin.kinds.base import Role
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
        self._batteries = [(a, b.id) for b, a in park.iter_assets() if isinstance(a, Battery)]
        self._tanks = [(a, b.id) for b, a in park.iter_assets() if isinstance(a, IceTank)]
        self._counter = park.role_points(Role.GRID_IMPORT_COUNTER)[0]
        self._billed = BilledDemand(park.site.timezone, demand_interval_min)
        self._written: set[str] = set()

    def read_state(self, at_utc: datetime | None = None) -> FieldState:
        """The state at ``at_utc`` (default now): storage brought forward to it from its readings; the
        billed peak as metered up to now."""
        now = self.now_utc()
        self._read_counter(now)
        at = now if at_utc is None else at_utc
        stored = {battery.id: kwh for battery, building in self._batteries
                  if (kwh := self._stored_at_kwh(battery, building, at)) is not None}
        inventory = {tank.id: kwh for tank, building in self._tanks
                     if (kwh := self._inventory_at_kwhth(tank, building, at)) is not None}
        return FieldState(at, stored, inventory, self._billed.peak_kw, self._billed.last_interval)

    def _good(self, point: str) -> tuple[datetime, float] | None:
        """The point's live reading (time, value) when it is good, else None."""
        reading = self.live.get(point)
        if reading is None or reading.quality != Quality.GOOD or reading.value is None:
            return None
        return reading.ts_utc, reading.value

    def _stored_at_kwh(self, battery: Battery, building: str, at: datetime) -> float | None:
        """The battery's stored energy at ``at``: its reading, held at the power read with it since then."""
        stored = self._good(point_id(building, battery.id, "stored_energy_kwh"))
        if stored is None:
            return None
        stored_utc, stored_kwh = stored
        power_kw = self.live.value(point_id(building, battery.id, "power_kw"))
        hours = (at - stored_utc).total_seconds() / 3600.0
        if power_kw is None or hours <= 0:
            return stored_kwh
        return battery.follow(stored_kwh, power_kw, hours)[1]

    def _inventory_at_kwhth(self, tank: IceTank, building: str, at: datetime) -> float | None:
        """The tank's ice inventory at ``at``: its reading, with the charge, melt and standing loss read
        with it held since then."""
        inventory = self._good(point_id(building, tank.id, "inventory_kwhth"))
        if inventory is None:
            return None
        inventory_utc, inventory_kwhth = inventory
        charge_kwth, melt_kwth, loss_kwth = (self.live.value(point_id(building, tank.id, name))
                                             for name in ("charge_kwth", "melt_kwth", "standing_loss_kwth"))
        hours = (at - inventory_utc).total_seconds() / 3600.0
        if charge_kwth is None or melt_kwth is None or loss_kwth is None or hours <= 0:
            return inventory_kwhth
        return tank.inventory_after_kwhth(inventory_kwhth, charge_kwth, melt_kwth, loss_kwth, hours)

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
