"""What the plant schedule asks of the storage kinds (twin.kinds.battery, twin.kinds.ice_tank), which the
simulator and the schedule baseline both follow."""

from __future__ import annotations

import pytest

from twin.kinds import Battery, IceTank
from twin.park import HourWindow, PlantSchedule

SCHEDULE = PlantSchedule(ice_charge=HourWindow(start_h=22, end_h=6), ice_melt=[HourWindow(start_h=13, end_h=16)],
                         battery_charge=HourWindow(start_h=23, end_h=7),
                         battery_discharge=[HourWindow(start_h=9, end_h=11), HourWindow(start_h=18, end_h=21)],
                         battery_power_fraction=0.4)
BATTERY = Battery(id="battery", energy_capacity_kwh=1000, charge_power_max_kw=300, discharge_power_max_kw=500)
TANK = IceTank(id="tank", capacity_kwhth=10_000, charge_rate_max_kwth=2000, melt_rate_max_kwth=1500)


@pytest.mark.parametrize(("hour", "unsupplied_kw", "expected_kw"), [
    (23.5, 900.0, -120.0),  # charge window, wrapping past midnight: 0.4 of 300 kW charging
    (3.0, -50.0, -120.0),  # charging does not depend on the load
    (10.0, 900.0, 200.0),  # discharge window: 0.4 of 500 kW
    (19.0, 150.0, 150.0),  # no more than the load left
    (20.9, -40.0, 0.0),  # nothing left to supply: no export
    (12.0, 900.0, 0.0),  # outside every window
])
def test_the_battery_follows_the_schedules_windows_at_its_share_of_power(hour, unsupplied_kw, expected_kw):
    assert BATTERY.scheduled_kw(SCHEDULE, hour, unsupplied_kw) == pytest.approx(expected_kw)


@pytest.mark.parametrize(("hour", "expected_kwth"), [
    (22.0, (2000.0, 0.0)), (5.99, (2000.0, 0.0)), (6.0, (0.0, 0.0)), (13.0, (0.0, 1500.0)), (16.0, (0.0, 0.0)),
])
def test_the_ice_tank_is_asked_its_full_rates_in_the_schedules_windows(hour, expected_kwth):
    assert TANK.scheduled_kwth(SCHEDULE, hour) == expected_kwth
