"""The controller's pieces checked by hand: the billed demand read from a meter counter, the demand
margin it keeps, and its authority to write (standing, approved until a plan's end, suspended)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from optimizer.controller import Authority, ImportMargin
from twin.metering import BilledDemand, counter_increments

START = datetime(2026, 7, 31, 15, 0, tzinfo=UTC)  # 23:00 on 31 July in Asia/Shanghai


def test_billed_demand_from_irregular_counter_samples_equals_a_second_by_second_sum():
    """A meter sampled at irregular times (20 s to 5 min apart) with the power steady between samples
    (so its counter is exactly linear there): each local month's billed peak equals the highest 15-minute
    mean of the power summed second by second, and August starts again from 0."""
    rng = np.random.default_rng(1)
    gaps_s = rng.integers(20, 300, size=60)
    sample_s = np.concatenate([[0], np.cumsum(gaps_s)])  # seconds after START; past local midnight
    power_kw = rng.uniform(200.0, 2000.0, size=len(sample_s) - 1)  # between consecutive samples
    counter_kwh = np.concatenate([[0.0], np.cumsum(power_kw * gaps_s / 3600.0)])
    demand = BilledDemand("Asia/Shanghai", 15)
    july_peak = None
    midnight_s = 3600  # START is 23:00 local
    for s, kwh in zip(sample_s, counter_kwh):
        demand.add(START + timedelta(seconds=int(s)), float(kwh))
        if july_peak is None and s > midnight_s:  # July's last interval has just closed, August's first has not
            july_peak = demand.peak_kw
    per_second = np.repeat(power_kw, gaps_s)  # the power in each second after START
    quarter = 900
    means = [per_second[k:k + quarter].mean() for k in range(0, len(per_second) - quarter + 1, quarter)]
    july = [m for k, m in enumerate(means) if (k + 1) * quarter <= midnight_s]
    august = [m for k, m in enumerate(means) if k * quarter >= midnight_s]
    assert july_peak == pytest.approx(max(july), rel=1e-9)
    assert demand.peak_kw == pytest.approx(max(august), rel=1e-9)
    _, kw = demand.last_interval
    assert kw == pytest.approx(means[len(means) - 1], rel=1e-9)


def test_counter_increments_between_bounds():
    times = pd.DatetimeIndex([START + timedelta(minutes=m) for m in (5, 20, 35)])
    bounds = pd.DatetimeIndex([START + timedelta(minutes=m) for m in (0, 15, 30, 45)])
    # counter 0, 100, 250 kWh at 5, 20 and 35 min: interpolated at 15 and 30 min -> 66.67 and 200
    kwh = counter_increments(times, np.array([0.0, 100.0, 250.0]), bounds)
    assert np.isnan(kwh[0]) and kwh[1] == pytest.approx(200.0 - 200.0 / 3) and np.isnan(kwh[2])


def test_import_margin_is_a_high_quantile_of_the_errors_near_the_peak():
    margin = ImportMargin(quantile=0.5, min_steps=4)
    for planned, realized in ((1000.0, 1010.0), (1000.0, 990.0), (2000.0, 2100.0)):
        margin.observe(planned, realized)
    assert margin.margin_kw(2000.0) == 0.0  # fewer than min_steps errors known
    for planned, realized in ((1900.0, 2200.0), (1950.0, 2050.0), (1990.0, 2190.0), (100.0, 900.0)):
        margin.observe(planned, realized)
    # near 2,000 kW (planned at least 1,800): errors 100, 300, 100, 200 -> median 150
    assert margin.margin_kw(2000.0) == pytest.approx(150.0)
    # near 3,000 kW only one step was: every step's errors count, median of 10, -10, 100, 300, 100, 200, 800
    assert margin.margin_kw(3000.0) == pytest.approx(100.0)
    margin.observe(2000.0, 1000.0)
    assert ImportMargin(min_steps=1).margin_kw(500.0) == 0.0


def test_authority_standing_approved_until_the_plan_ends_and_suspended():
    now = START
    assert Authority("auto").allows(now)
    manual = Authority("manual")
    assert not manual.allows(now) and not manual.expired(now)
    manual.approved_by, manual.until_utc = "tara", now + timedelta(hours=24)
    assert manual.allows(now + timedelta(hours=23, minutes=45))
    assert not manual.allows(now + timedelta(hours=24)) and manual.expired(now + timedelta(hours=24))
    manual.suspended_by = "tara"
    assert not manual.allows(now) and not manual.expired(now + timedelta(hours=25))
