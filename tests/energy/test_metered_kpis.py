"""Grid energy, cost and demand from the grid meter's counters when readings come as a live run polls
them: at uneven times, devices at different instants. The hand calculation is the truth."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from energy.kpi import energy_kpis
from energy.tariff import load_tariff
from twin.history import open_history
from twin.readings import Quality, Reading

START = datetime(2026, 7, 1, 2, 0, tzinfo=UTC)  # 10:00 local: peak period until 12:00
IMPORT_KW = (400.0, 1000.0)
"""The park imports 400 kW for the first hour and 1,000 kW for the second."""


def import_counter_kwh(t: datetime) -> float:
    hours = (t - START).total_seconds() / 3600.0
    return 5000.0 + IMPORT_KW[0] * min(hours, 1.0) + IMPORT_KW[1] * max(0.0, hours - 1.0)


def test_import_cost_and_peak_come_from_the_counter_whatever_the_poll_times(tmp_path, demo_park, demo_dir):
    rng = np.random.default_rng(7)
    grid = "plant.grid_meter"
    readings = []
    t = START - timedelta(minutes=20)
    while t < START + timedelta(hours=2, minutes=20):
        # the counter polled every 7-13 minutes; the power point at other instants, half of them missing
        readings.append(Reading(f"{grid}.import_energy_kwh", t, import_counter_kwh(t), Quality.GOOD))
        readings.append(Reading(f"{grid}.export_energy_kwh", t, 12.0, Quality.GOOD))
        if rng.random() < 0.5:
            power_at = t + timedelta(minutes=3)
            hour = 0 if power_at < START + timedelta(hours=1) else 1
            readings.append(Reading(f"{grid}.power_kw", power_at, IMPORT_KW[hour], Quality.GOOD))
        t += timedelta(seconds=int(rng.integers(420, 780)))  # whole seconds: the store keeps milliseconds
    tariff = load_tariff(demo_dir / "tariff.yaml")
    with open_history(f"sqlite:///{tmp_path / 'h.sqlite'}") as history:
        history.append(readings)
        kpis = energy_kpis(history, demo_park, START, START + timedelta(hours=2), tariff)
    assert kpis.grid_import_kwh == pytest.approx(400.0 + 1000.0, rel=1e-9)
    assert kpis.grid_export_kwh == pytest.approx(0.0, abs=1e-9)
    # 10:00-12:00 local is peak time on the demo tariff
    peak_price = float(tariff.energy_price_cny_per_kwh(pd.DatetimeIndex([START])).iloc[0])
    assert sum(kpis.energy_cost_by_period_cny.values()) == pytest.approx(1400.0 * peak_price, rel=1e-9)
    assert kpis.peak_demand_kw == pytest.approx(1000.0, rel=1e-9)
    assert kpis.demand_charge_cny == pytest.approx(1000.0 * tariff.demand_charge_cny_per_kw_month, rel=1e-9)


def test_without_counters_spanning_the_period_energy_comes_from_power(tmp_path, demo_park, demo_dir):
    grid = "plant.grid_meter"
    readings = [Reading(f"{grid}.power_kw", START + timedelta(minutes=m), 600.0, Quality.GOOD) for m in range(120)]
    readings.append(Reading(f"{grid}.import_energy_kwh", START + timedelta(minutes=30), 100.0, Quality.GOOD))
    with open_history(f"sqlite:///{tmp_path / 'h.sqlite'}") as history:
        history.append(readings)
        kpis = energy_kpis(history, demo_park, START, START + timedelta(hours=2), load_tariff(demo_dir / "tariff.yaml"))
    assert kpis.grid_import_kwh == pytest.approx(1200.0, rel=1e-9)


def test_a_period_starting_before_the_first_counter_reading_estimates_only_its_first_interval(
        tmp_path, demo_park, demo_dir):
    """A run's history starts with its first poll, minutes after the period's start: the first interval
    is estimated from the held power reading, the rest comes from the counter."""
    grid = "plant.grid_meter"
    first_poll = START + timedelta(minutes=8)
    readings = [Reading(f"{grid}.power_kw", START + timedelta(minutes=3), IMPORT_KW[0], Quality.GOOD)]
    t = first_poll
    while t < START + timedelta(hours=2, minutes=20):
        readings.append(Reading(f"{grid}.import_energy_kwh", t, import_counter_kwh(t), Quality.GOOD))
        readings.append(Reading(f"{grid}.export_energy_kwh", t, 0.0, Quality.GOOD))
        t += timedelta(minutes=10)
    with open_history(f"sqlite:///{tmp_path / 'h.sqlite'}") as history:
        history.append(readings)
        kpis = energy_kpis(history, demo_park, START, START + timedelta(hours=2), load_tariff(demo_dir / "tariff.yaml"))
    # 00:00-00:15 from 400 kW held: 100 kWh; the counter from 00:15: 400 x 0.75 h + 1,000 x 1 h
    assert kpis.grid_import_kwh == pytest.approx(100.0 + 300.0 + 1000.0, rel=1e-9)
