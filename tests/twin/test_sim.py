"""Park simulator: plausible behaviour, setpoints, limits and injected faults (run in-process)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from energy.environment import ParkEnvironment
from parktwin.runtime import SimulationClock
from twin.config import load_park
from twin.readings import Quality
from twin.sim import Fault, ParkSimulator

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo-park" / "park.yaml"
START = datetime(2026, 6, 30, 16, tzinfo=UTC)  # 2026-07-01 00:00 in Shenzhen


@pytest.fixture(scope="module")
def park():
    return load_park(DEMO)


def simulate(park, hours: float, faults=(), setpoints=None, start=START) -> pd.DataFrame:
    """Wide frame (index: UTC time, columns: point ids) of an in-process simulation."""
    sim = ParkSimulator(park, ParkEnvironment(park), start)
    for fault in faults:
        sim.inject_fault(fault)
    for point, value in (setpoints or {}).items():
        sim.write_setpoint(point, value)
    frames = list(sim.run(start + timedelta(hours=hours)))
    long = pd.concat(frames)
    return long.pivot(index="ts_utc", columns="point_id", values="value")


@pytest.fixture(scope="module")
def day(park):
    return simulate(park, 24)


def test_every_point_has_a_value_every_step(park, day):
    assert list(day.columns.sort_values()) == sorted(park.points)
    assert len(day) == 24 * 60
    assert not day.isna().any().any()


def test_daily_pattern_is_plausible(park, day):
    local = day.copy()
    local.index = local.index.tz_convert("Asia/Shanghai")
    hour = local.index.hour
    pv = local.filter(like="ac_power_kw").sum(axis=1)
    assert pv[(hour < 5) | (hour >= 20)].max() == 0
    assert 500 < pv.max() < 1000  # 1 MWp with inverters of 900 kW AC in total
    ice = local["plant.ice_tank.inventory_kwhth"]
    assert ice[hour == 7].mean() > ice[hour == 0].mean() + 5000  # made in the valley
    assert ice[hour == 18].mean() < ice[hour == 9].mean()  # melted at peak
    lighting = local["b1.lighting_office.power_kw"]
    assert lighting[(hour >= 10) & (hour < 17)].mean() > 3 * lighting[(hour >= 1) & (hour < 5)].mean()
    cooling = local[[c for c in local if c.endswith(".cooling_kwth")]].sum(axis=1) + local[
        "plant.ice_tank.cooling_delivered_kwth"]
    assert cooling[(hour >= 13) & (hour < 16)].mean() > 2 * cooling[(hour >= 2) & (hour < 5)].mean()
    grid = local["plant.grid_meter.power_kw"]
    assert grid.min() > -2000 and grid.max() < 6000


def test_chiller_modes_and_cops(park, day):
    for chiller in ("chiller1", "chiller2"):
        mode = day[f"plant.{chiller}.mode"]
        cop = day[f"plant.{chiller}.cop"]
        supply = day[f"plant.{chiller}.chw_supply_temp_c"]
        ice, direct = mode == 2, mode == 1
        assert ice.any() and direct.any()
        assert cop[ice].mean() < cop[direct].mean()  # ice making is less efficient
        assert supply[ice].max() < -4 and supply[direct].min() > 5
        power, cooling = day[f"plant.{chiller}.power_kw"], day[f"plant.{chiller}.cooling_kwth"]
        running = power > 0
        np.testing.assert_allclose(cooling[running] / power[running], cop[running], rtol=1e-9)
    assert (day["plant.chiller3.mode"] != 2).all()  # base chiller cannot make ice


def test_battery_stays_in_window_and_counts_losses(park, day):
    battery = park.asset("battery")
    soc = day["plant.battery.soc_pct"]
    assert soc.min() >= battery.soc_min_pct - 1e-9 and soc.max() <= battery.soc_max_pct + 1e-9
    power = day["plant.battery.power_kw"]
    stored = day["plant.battery.stored_energy_kwh"]
    dt_h = 1 / 60
    expected_change = np.where(power > 0, -power / 0.95, -power * 0.95) * dt_h
    np.testing.assert_allclose(np.diff(stored.to_numpy()), expected_change[:-1], atol=1e-9)


def test_setpoints_override_the_schedule_and_limits_are_enforced(park):
    sim = ParkSimulator(park, ParkEnvironment(park), START)
    with pytest.raises(ValueError, match="outside the safe limits"):
        sim.write_setpoint("plant.battery.power_setpoint_kw", -5000)
    with pytest.raises(ValueError, match="not writable"):
        sim.write_setpoint("plant.battery.soc_pct", 50)
    with pytest.raises(KeyError):
        sim.write_setpoint("plant.battery.nonexistent", 1)
    wide = simulate(park, 3, setpoints={
        "plant.battery.power_setpoint_kw": 400.0,  # discharge in the valley, against the schedule
        "plant.ice_tank.charge_setpoint_kwth": 0.0,  # no ice tonight
        "plant.chiller3.mode_cmd": 1.0,  # base chiller off
        "b1.ev5.power_limit_kw": 20.0,
        "plant.pv_plant_roof.power_limit_pct": 0.0,
    })
    assert (wide["plant.battery.power_kw"].iloc[:60] == 400.0).all()
    assert (wide["plant.ice_tank.charge_kwth"] == 0).all()
    assert (wide["plant.chiller3.power_kw"] == 0).all()
    assert wide["b1.ev5.power_kw"].max() <= 20.0
    assert (wide["plant.pv_plant_roof.ac_power_kw"] == 0).all()
    assert (wide["plant.battery.power_setpoint_kw"] == 400.0).all()


def test_release_returns_control_to_the_schedule(park):
    sim = ParkSimulator(park, ParkEnvironment(park), START)
    sim.write_setpoint("plant.battery.power_setpoint_kw", 0.0)
    held = sim.advance()
    sim.release_setpoint("plant.battery.power_setpoint_kw")
    scheduled = sim.advance()
    i = sim.point_ids.index("plant.battery.power_kw")
    assert held.values[i] == 0.0
    assert scheduled.values[i] == pytest.approx(-500.0)  # valley charging at half power


def test_injected_faults_show_in_the_readings(park):
    faults = [
        Fault("chiller_cop_drop", "chiller1", START, None, 0.7),
        Fault("pv_string_outage", "pv_roof_south", START, None, 4),
        Fault("sensor_flatline", "plant.weather.outdoor_temp_c", START + timedelta(hours=2), None),
        Fault("device_offline", "ev5", START + timedelta(hours=1), START + timedelta(hours=2)),
    ]
    healthy = simulate(park, 14)
    faulty = simulate(park, 14, faults=faults)
    running = faulty["plant.chiller1.power_kw"] > 0
    ratio = faulty["plant.chiller1.cop"][running] / healthy["plant.chiller1.cop"][running]
    np.testing.assert_allclose(ratio, 0.7, rtol=1e-9)
    pv_h, pv_f = healthy["b1.pv_roof_south.ac_power_kw"], faulty["b1.pv_roof_south.ac_power_kw"]
    sunny = pv_h > 10
    np.testing.assert_allclose(pv_f[sunny] / pv_h[sunny], 0.6, rtol=1e-9)  # 4 of 10 strings lost
    flat = faulty["plant.weather.outdoor_temp_c"].iloc[120:]
    assert flat.nunique() == 1 and healthy["plant.weather.outdoor_temp_c"].iloc[120:].nunique() > 100
    offline = faulty.loc[START + timedelta(hours=1): START + timedelta(minutes=119), "b1.ev5.power_kw"]
    assert offline.isna().all() and len(offline) == 60
    assert not faulty["b1.ev5.power_kw"].iloc[120:].isna().any()


def test_device_offline_marks_comm_fail_and_keeps_the_reading(park):
    sim = ParkSimulator(park, ParkEnvironment(park), START)
    sim.inject_fault(Fault("device_offline", "elevator1", START))
    readings = {r.point_id: r for r in sim.readings(sim.advance())}
    lift = [r for pid, r in readings.items() if pid.startswith("b1.elevator1.")]
    assert len(lift) == 4 and all(r.quality is Quality.COMM_FAIL and r.value is None for r in lift)
    assert readings["b1.elevator2.power_kw"].quality is Quality.GOOD


def test_same_seed_same_park_same_results(park):
    a, b = simulate(park, 2), simulate(park, 2)
    pd.testing.assert_frame_equal(a, b)


def test_simulation_clock_runs_at_its_speed():
    wall = [100.0]
    clock = SimulationClock(START, speed=60, monotonic_s=lambda: wall[0])
    assert clock.now_utc() == START
    wall[0] += 90.0
    assert clock.now_utc() == START + timedelta(minutes=90)
    with pytest.raises(ValueError):
        SimulationClock(START, speed=0)


def test_step_observers_see_every_step_the_simulator_gives(park):
    start = datetime(2026, 7, 1, tzinfo=UTC)
    simulator = ParkSimulator(park, ParkEnvironment(park), start)
    seen = []
    simulator.add_step_observer(seen.append)
    given = [simulator.advance() for _ in range(5)]
    assert [s.ts_utc for s in seen] == [start + timedelta(minutes=m) for m in range(5)]
    assert all(np.array_equal(s.values, g.values, equal_nan=True) for s, g in zip(seen, given))


def test_restored_state_continues_storage_and_counters_and_refuses_values_outside_limits(park):
    sim = ParkSimulator(park, ParkEnvironment(park), START)
    taken = sim.restore_state({
        "plant.ice_tank.inventory_kwhth": 20_000.0,  # above the tank's 14,068 kWhth: not taken
        "plant.battery.stored_energy_kwh": 1_500.0,
        "plant.grid_meter.import_energy_kwh": 12_345.5,
        "plant.grid_meter.export_energy_kwh": float("nan"),  # unknown: not taken
        "plant.pv_plant_roof.energy_kwh": 999.0,
        "plant.chiller1.starts_count": 7.0,
        "b1.elevator1.trips_count": 42.0,
        "plant.chiller1.power_kw": 500.0,  # not a state: ignored
    })
    assert sorted(taken) == ["b1.elevator1.trips_count", "plant.battery.stored_energy_kwh",
                             "plant.chiller1.starts_count", "plant.grid_meter.import_energy_kwh",
                             "plant.pv_plant_roof.energy_kwh"]
    first = dict(zip(sim.point_ids, sim.advance().values))
    # state points show the state at the step's start, before its flows
    assert first["plant.ice_tank.inventory_kwhth"] == pytest.approx(14_068 * 0.30)  # the initial 30 %
    assert first["plant.battery.stored_energy_kwh"] == 1_500.0
    assert first["plant.battery.soc_pct"] == pytest.approx(75.0)  # 1,500 of 2,000 kWh
    assert first["plant.grid_meter.import_energy_kwh"] == 12_345.5
    assert first["plant.grid_meter.export_energy_kwh"] == 0.0
    assert first["plant.pv_plant_roof.energy_kwh"] == 999.0
    assert first["plant.chiller1.starts_count"] in (7.0, 8.0)  # a start within the step counts in it
    assert first["b1.elevator1.trips_count"] >= 42.0
