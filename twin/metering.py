"""Meter counters: energy over intervals from an energy counter's samples (kWh, never decreasing), read
at the intervals' bounds by linear interpolation between the samples either side, so samples at any
times (a simulator's steps, a poll's readings) give what the meter's own register would."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd


def counter_increments(sample_times: pd.DatetimeIndex, counter_kwh: np.ndarray,
                       bounds: pd.DatetimeIndex) -> np.ndarray:
    """Energy (kWh) counted in each interval between consecutive ``bounds``: the counter interpolated at
    each bound, differenced. NaN for an interval whose bounds are not both within the samples' span.
    Samples must be in time order; NaN samples are left out."""
    known = np.isfinite(counter_kwh)
    values = np.asarray(counter_kwh, dtype=float)[known]
    if len(values) == 0:
        return np.full(max(len(bounds) - 1, 0), np.nan)
    sample_ns = pd.DatetimeIndex(sample_times[known]).as_unit("ns").asi8
    origin = sample_ns[0]  # times as float offsets from the first sample, so nanoseconds are not rounded away
    times = (sample_ns - origin).astype(float)
    at = (pd.DatetimeIndex(bounds).as_unit("ns").asi8 - origin).astype(float)
    counter = np.interp(at, times, values)
    counter[(at < times[0]) | (at > times[-1])] = np.nan
    return np.diff(counter)


class BilledDemand:
    """The month's billed demand from a meter's import-energy counter, sample by sample as they come.

    The demand of an interval is the counter's increase over it (read at its bounds as the module
    docstring says) divided by its length, kW. Intervals are aligned to the UTC epoch, which matches the local
    clock's intervals wherever the time zone's offset is a whole number of intervals; the month is
    the local calendar month of the interval's start, and the peak starts again at 0 in a new month.
    """

    def __init__(self, timezone: str, interval_min: int):
        self.timezone = timezone
        self.interval = pd.Timedelta(minutes=interval_min)
        self.peak_kw = 0.0
        self.last_interval: tuple[pd.Timestamp, float] | None = None
        """Start and demand (kW) of the last interval completed."""
        self.last_sample_utc: pd.Timestamp | None = None
        self._month: tuple[int, int] | None = None
        self._sample_kwh = 0.0
        self._bound: tuple[pd.Timestamp, float] | None = None  # last interval bound and the counter there

    def add(self, ts_utc: datetime, counter_kwh: float) -> None:
        """A counter sample; samples must come in time order (an earlier or equal time is ignored)."""
        t1 = pd.Timestamp(ts_utc)
        if not np.isfinite(counter_kwh) or (self.last_sample_utc is not None and t1 <= self.last_sample_utc):
            return
        if self.last_sample_utc is None:
            self.last_sample_utc, self._sample_kwh = t1, counter_kwh
            if t1 == t1.floor(self.interval):
                self._bound = (t1, counter_kwh)
            return
        t0, c0 = self.last_sample_utc, self._sample_kwh
        bound = t0.floor(self.interval) + self.interval
        while bound <= t1:
            at_bound = c0 + (counter_kwh - c0) * ((bound - t0) / (t1 - t0))
            if self._bound is not None and bound - self._bound[0] == self.interval:
                self._close(self._bound[0], (at_bound - self._bound[1]) / (self.interval / pd.Timedelta(hours=1)))
            self._bound = (bound, at_bound)
            bound += self.interval
        self.last_sample_utc, self._sample_kwh = t1, counter_kwh

    def _close(self, start: pd.Timestamp, demand_kw: float) -> None:
        local = start.tz_convert(self.timezone)
        if (local.year, local.month) != self._month:
            self._month, self.peak_kw = (local.year, local.month), 0.0
        self.last_interval = (start, demand_kw)
        self.peak_kw = max(self.peak_kw, demand_kw)
