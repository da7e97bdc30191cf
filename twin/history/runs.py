"""The clock speed of each `parktwin run` that wrote a history, kept in table ``run_speeds`` beside the readings.

A run's speed is the simulated seconds its twin clock passes per wall-clock second (1 on field devices). The
point maps' poll periods are wall-clock seconds, so whoever reads the history needs the speed to know how far
apart, in twin time, a point's readings were meant to come.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from twin.readings import utc_ms

if TYPE_CHECKING:
    from twin.history.interface import History


def record_run_speed(store: History, start: datetime, speed: float) -> None:
    """Note that the run writing readings from ``start`` (tz-aware) on runs ``speed`` twin seconds per wall
    second, until the next run recorded."""
    store.execute(f"INSERT INTO {store.table('run_speeds')} (start_ms, speed) VALUES ({store.param}, {store.param})",
                  (utc_ms(start), float(speed)))


def run_speeds(store: History, start: datetime | None = None, end: datetime | None = None) -> list[float]:
    """The distinct speeds, ascending, of the runs that wrote readings in [start, end): the one in force at
    ``start`` and those started before ``end`` (None: no bound). Empty when no run recorded its speed."""
    rows = store.execute(f"SELECT start_ms, speed FROM {store.table('run_speeds')} ORDER BY start_ms")
    start_ms = utc_ms(start) if start is not None else None
    end_ms = utc_ms(end) if end is not None else None
    in_force = [speed for ms, speed in rows if start_ms is not None and ms <= start_ms][-1:]
    started = [speed for ms, speed in rows if (start_ms is None or ms > start_ms) and (end_ms is None or ms < end_ms)]
    return sorted(set(in_force + started))
