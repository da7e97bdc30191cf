"""Fault rules over the park's points whatever their assets' kinds: sensors that stick, jump, leave their
limits or fall silent, and devices that stop answering."""

from __future__ import annotations

import numpy as np
import pandas as pd

from energy.fault_rules.base import COMM_LOST_RULE, Condition, FaultThresholds, ParkRule, RuleInput, minutes


def _watched_points(data: RuleInput, limits: FaultThresholds) -> list[tuple[str, str, str]]:
    """(asset id, point id, point name) of the points the flatline and spike rules watch."""
    return [(p.asset_id, p.id, p.name) for p in data.park.points.values()
            if p.name in limits.flatline_points.get(p.asset_kind, [])]


def sensor_flatline(data: RuleInput, limits: FaultThresholds) -> list[Condition]:
    """A noisy analog sensor repeating exactly the same value for 30 min.

    Only the points listed in ``flatline_points`` are watched: their healthy
    readings always move by at least the sensor noise, whereas setpoints,
    counters and powers of idle equipment legitimately stay constant. A
    reading of exactly 0 does not count (``flatline_ignore_zero``): a meter
    reads 0 for hours when the battery exactly covers the load, as the demo
    park's peak-shaving schedule does. Each reading is compared with the
    point's previous reading of its own, not with values held between polls.
    """
    conditions = []
    for asset_id, pid, _ in _watched_points(data, limits):
        values = data.value(pid)
        rows = data.own_rows(pid)
        own = values[rows]
        unchanged = np.zeros(len(values), dtype=bool)
        unchanged[rows[1:]] = np.abs(np.diff(own)) <= 1e-9  # NaN compares False
        if limits.flatline_ignore_zero:
            unchanged &= values != 0.0
        judged = np.zeros(len(values), dtype=bool)
        judged[rows[1:]] = np.isfinite(own[1:]) & np.isfinite(own[:-1])
        conditions.append(Condition("sensor_flatline", asset_id, unchanged, minutes(limits.flatline_minutes),
                                    {"value": values}, point_id=pid, judged=judged))
    return conditions


def sensor_spike(data: RuleInput, limits: FaultThresholds) -> list[Condition]:
    """A temperature reading more than 3 K away from both neighbours, in the same direction.

    A step (a chiller starting, a mode change) moves away from the previous
    value and stays; a spike comes back at the next reading. Watches the
    degC points among ``flatline_points``. Where the asset has a ``mode``
    point (chillers), readings next to a mode change are not judged: a
    chiller that runs for a single step moves its water temperatures for
    that step, which is operation, not a sensor fault. Neighbours are the
    point's own readings before and after, not values held between polls.
    """
    conditions = []
    for asset_id, pid, name in _watched_points(data, limits):
        if not name.endswith("_c"):
            continue
        rows = data.own_rows(pid)
        values = data.value(pid)[rows]
        mode = data.value(pid.rsplit(".", 1)[0] + ".mode")[rows]
        mode_steady = np.ones(len(values), dtype=bool)
        if np.isfinite(mode).any():
            mode_steady[1:-1] = (mode[1:-1] == mode[:-2]) & (mode[1:-1] == mode[2:])
        jump_before = np.full(len(values), np.nan)
        jump_after = np.full(len(values), np.nan)
        jump_before[1:] = values[1:] - values[:-1]
        jump_after[:-1] = values[:-1] - values[1:]
        spike = np.zeros(len(data.times), dtype=bool)
        spike[rows] = (np.abs(jump_before) > limits.spike_jump_k) & (np.abs(jump_after) > limits.spike_jump_k) & \
            (np.sign(jump_before) == np.sign(jump_after)) & mode_steady
        jump_k = np.full(len(data.times), np.nan)
        jump_k[rows] = jump_before
        conditions.append(Condition("sensor_spike", asset_id, spike, data.step,
                                    {"value": data.value(pid), "jump_k": jump_k}, point_id=pid))
    return conditions


def sensor_out_of_range(data: RuleInput, limits: FaultThresholds) -> list[Condition]:
    """A measured value outside its point's safe limits (the park model's low/high limits) for 2 min."""
    conditions = []
    for p in data.park.points.values():
        low, high = p.spec.low_limit, p.spec.high_limit
        if p.writable or (low is None and high is None) or p.id not in data.values.columns:
            continue
        values = data.value(p.id)
        outside = ((values < low) if low is not None else False) | ((values > high) if high is not None else False)
        conditions.append(Condition("sensor_out_of_range", p.asset_id, np.asarray(outside, dtype=bool),
                                    minutes(limits.out_of_range_minutes), {"value": values},
                                    point_id=p.id, judged=np.isfinite(values)))
    return conditions


def _device_points(data: RuleInput) -> dict[str, list[str]]:
    """The point ids of each asset (a device) that the input has columns for."""
    by_asset: dict[str, list[str]] = {}
    for pid, p in data.park.points.items():
        if pid in data.quality.columns:
            by_asset.setdefault(p.asset_id, []).append(pid)
    return by_asset


def sensor_stale(data: RuleInput, limits: FaultThresholds) -> list[Condition]:
    """A point without a fresh value in 3 polls of its device in a row (readings marked stale or comm_fail,
    or none); the episode starts at the third.

    The point's own device's polls count, at the cadence of its own poll period
    (never other devices' timestamps). A device that stops answering gives one
    stale episode per point, which its comm-loss episode suppresses
    (:data:`SUPPRESSED_BY_COMM_LOSS`). Not raised during the start-up grace period.
    """
    grace = data.in_startup_grace()
    conditions = []
    for asset_id, pids in _device_points(data).items():
        counts = data.polls_without_value(pids)
        for column, pid in enumerate(pids):
            stale = (counts[:, column] >= limits.stale_poll_periods) & ~grace
            if stale.any():
                conditions.append(Condition("sensor_stale", asset_id, stale, pd.Timedelta(0),
                                            {"polls_without_value": counts[:, column]}, point_id=pid))
    return conditions


def device_comm_lost(data: RuleInput, limits: FaultThresholds) -> list[Condition]:
    """No fresh value of any point of a device in 3 of its polls in a row (comm_fail after the map's
    retries): communication lost; the episode starts at the third failed poll.

    Not raised during the start-up grace period (a starting feed's first polls time out)."""
    grace = data.in_startup_grace()
    conditions = []
    for asset_id, pids in _device_points(data).items():
        failed_polls = data.polls_without_value(pids).min(axis=1)
        lost = (failed_polls >= limits.comm_lost_poll_periods) & ~grace
        if lost.any():
            conditions.append(Condition(COMM_LOST_RULE, asset_id, lost, pd.Timedelta(0),
                                        {"failed_polls": failed_polls}))
    return conditions


RULES: tuple[ParkRule, ...] = (sensor_flatline, sensor_spike, sensor_out_of_range, sensor_stale, device_comm_lost)
"""Every rule over the park's points."""
