"""The power each load kind typically draws over the day's profiles (Simulation.typical_kw), against figures
worked by hand from its docstring and DOMAIN.md's ratings, and the registry's list of the subsystems it covers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from twin.kinds import Elevator, EVCharger, Lighting, kinds, typical_load_subsystems
from twin.kinds.simulation import HourProfile
from twin.park import SimulationSettings
from twin.profiles import ev_arrival_weight


def profile(occupancy, traffic=0.0, arrival=0.0, sessions_per_day=1.5) -> HourProfile:
    n = len(occupancy)
    return HourProfile(np.asarray(occupancy, float), np.full(n, traffic), np.full(n, arrival),
                       SimulationSettings(ev_sessions_per_charger_per_day=sessions_per_day))


def typical_kw(asset, hours: HourProfile) -> np.ndarray:
    assert asset.simulation.typical_kw is not None
    return asset.simulation.typical_kw(asset, hours)


def test_lighting_draws_nine_tenths_of_rated_power_from_three_tenths_occupancy_and_its_night_fraction_below():
    light = Lighting(id="l", rated_kw=100.0, night_fraction=0.15)
    assert list(typical_kw(light, profile([0.0, 0.29, 0.3, 1.0]))) == pytest.approx([15.0, 15.0, 90.0, 90.0])


def test_an_elevator_draws_idle_power_plus_half_its_rating_times_traffic_and_occupancy_floored_at_five_pct():
    lift = Elevator(id="e", rated_kw=20.0, idle_kw=1.5)
    # occupancy 0.5: 1.5 + 0.5 x 20 x 0.8 x 0.5; occupancy 0 counts as 0.05: 1.5 + 0.5 x 20 x 0.8 x 0.05
    assert list(typical_kw(lift, profile([0.5, 0.0], traffic=0.8))) == pytest.approx([5.5, 1.9])


def test_an_ev_charger_delivers_its_daily_sessions_of_twenty_kwh_over_the_arrival_profile():
    charger = EVCharger(id="ev", power_max_kw=22.0)
    hours = np.arange(-24.0, 48.0, 0.01)  # the arrival bumps' whole mass around one day
    arrival = np.array([ev_arrival_weight(h) for h in hours])
    hourly = HourProfile(np.zeros(len(hours)), np.zeros(len(hours)), arrival,
                         SimulationSettings(ev_sessions_per_charger_per_day=1.5))
    assert typical_kw(charger, hourly).sum() * 0.01 == pytest.approx(1.5 * 20.0, rel=1e-6)
    # at the morning peak (weight 1): 1.5 sessions a day over the profile's integral of
    # sqrt(2 pi) x (1 x 1 + 0.35 x 1.5 + 0.25 x 1.5) h, 20 kWh each
    peak = typical_kw(charger, profile([0.0], arrival=1.0))
    assert peak[0] == pytest.approx(1.5 * 20.0 / (math.sqrt(2 * math.pi) * 1.9))


def test_the_loads_with_a_typical_power_are_lighting_elevators_and_ev_charging_in_park_order():
    assert [group.name for group in typical_load_subsystems()] == ["lighting", "elevators", "ev"]
    declaring = [cls for cls in kinds() if cls.simulation is not None and cls.simulation.typical_kw is not None]
    assert declaring == [Lighting, Elevator, EVCharger]
