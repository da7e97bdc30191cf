"""The chilled-water tank kind (twin.kinds.chilled_water_tank) in the demo park, simulated minute by minute:
its energy balance, the load it puts on and takes off the chillers, its limits, its setpoints and its
schedule, a continued run, the forecasts' cooling-load history and its device layout.

The parks are the demo park's file with the ice tank replaced by (or joined by) a chilled-water tank; the
buildings' true cooling load each minute is what the chillers carry in the same park with no storage at all
(the same weather, occupancy and random draws: the tank draws none)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from energy.environment import ParkEnvironment
from energy.forecast import hourly_load_history
from protocols.devices.layout import BacnetLayout, device_layouts
from twin.config import load_park
from twin.history import open_history
from twin.kinds import ChilledWaterTank
from twin.kinds.simulation import ChilledWaterDemand
from twin.park import Park
from twin.plant import MODE_ICE
from twin.sim import ParkSimulator

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo-park" / "park.yaml"
MIDNIGHT = datetime(2026, 6, 30, 16, tzinfo=UTC)  # 2026-07-01 00:00 in Shenzhen, a Wednesday
DAY = 1440  # one-minute steps
STEP_H = 1.0 / 60.0
CAPACITY_KWHTH = 18604.0  # 2,000 m3 x 1,000 kg/m3 x 4.186 kJ/(kg K) x 8 K / 3,600 kJ/kWh
CHARGE_MAX_KWTH, DISCHARGE_MAX_KWTH, LOSS_PCT_PER_H, INITIAL_SOC_PCT = 2000.0, 3000.0, 0.5, 30.0
CHILLERS_KWTH = 2110.0 + 2110.0 + 1400.0
"""The demo park's chillers' chilled-water capacity (examples/demo-park/park.yaml)."""
CHILLERS = ("plant.chiller1", "plant.chiller2", "plant.chiller3")
TANK = "plant.chw_tank"
ICE_TANK_ENTRY = re.compile(r"^      - \{kind: ice_tank,.*?\}\n", re.MULTILINE | re.DOTALL)
TANK_ENTRY = ("      - {kind: chilled_water_tank, id: chw_tank, name: Chilled-water storage, capacity_kwhth: 18604,\n"
              "         charge_rate_max_kwth: 2000, discharge_rate_max_kwth: 3000, standing_loss_pct_per_h: 0.5,\n"
              "         initial_soc_pct: 30}\n")


def park_file(folder: Path, storage: str) -> Path:
    """The demo park's file with cooling storage ``none``, ``chilled_water`` (the ice tank's place taken by the
    tank) or ``both`` (the tank after the ice tank), without its tariff and point maps (not simulated)."""
    text = re.sub(r"^(tariff|point_maps):.*\n", "", DEMO.read_text(encoding="utf-8"), flags=re.MULTILINE)
    ice_tank = ICE_TANK_ENTRY.search(text)
    assert ice_tank is not None
    replacement = {"none": "", "chilled_water": TANK_ENTRY, "both": ice_tank.group(0) + TANK_ENTRY}[storage]
    path = folder / f"{storage}.yaml"
    path.write_text(text[:ice_tank.start()] + replacement + text[ice_tank.end():], encoding="utf-8")
    return path


class Run:
    """Every point's value at every step of a simulation, by point id."""

    def __init__(self, sim: ParkSimulator, steps: int):
        self.ids = sim.point_ids
        self.values = np.vstack([sim.advance().values for _ in range(steps)])

    def __getitem__(self, point_id: str) -> np.ndarray:
        return self.values[:, self.ids.index(point_id)]

    def chillers_kwth(self) -> np.ndarray:
        """Cooling the chillers make, kWth, together."""
        return sum((self[f"{chiller}.cooling_kwth"] for chiller in CHILLERS), start=np.zeros(len(self.values)))

    def tank(self, name: str) -> np.ndarray:
        return self[f"{TANK}.{name}"]


def simulator(park: Park, start: datetime = MIDNIGHT, writes: dict[str, float] | None = None) -> ParkSimulator:
    sim = ParkSimulator(park, ParkEnvironment(park), start)
    for point, value in (writes or {}).items():
        sim.write_setpoint(point, value)
    return sim


@pytest.fixture(scope="module")
def parks(tmp_path_factory) -> dict[str, Park]:
    folder = tmp_path_factory.mktemp("chw_tank")
    return {storage: load_park(park_file(folder, storage)) for storage in ("none", "chilled_water", "both")}


@pytest.fixture(scope="module")
def load_kwth(parks) -> np.ndarray:
    """The buildings' cooling load each minute of the day, kWth: what the chillers carry with no storage."""
    run = Run(simulator(parks["none"]), DAY)
    assert all(np.all(run[f"{chiller}.mode"] != MODE_ICE) for chiller in CHILLERS)
    return run.chillers_kwth()


@pytest.fixture(scope="module")
def tank_day(parks) -> Run:
    """A day of the tank following the plant schedule."""
    return Run(simulator(parks["chilled_water"]), DAY)


def local_hours(steps: int, start_h: float = 0.0) -> np.ndarray:
    return start_h + np.arange(steps) * STEP_H


def test_the_tank_keeps_its_energy_balance_every_step_of_a_day(tank_day):
    stored, charge, discharge, loss = (tank_day.tank(name) for name in
                                       ("stored_kwhth", "charge_kwth", "discharge_kwth", "standing_loss_kwth"))
    assert stored[0] == CAPACITY_KWHTH * INITIAL_SOC_PCT / 100.0
    np.testing.assert_allclose(np.diff(stored), (charge - discharge - loss)[:-1] * STEP_H, rtol=0, atol=1e-9)
    np.testing.assert_allclose(loss, stored * LOSS_PCT_PER_H / 100.0, rtol=1e-12)
    np.testing.assert_allclose(tank_day.tank("soc_pct"), 100.0 * stored / CAPACITY_KWHTH, rtol=1e-12)
    np.testing.assert_array_equal(tank_day.tank("cooling_delivered_kwth"), discharge - charge)
    assert stored.max() == pytest.approx(CAPACITY_KWHTH)  # filled at night, then held full against the loss
    assert np.all(charge * discharge == 0)


def test_without_written_setpoints_it_charges_at_night_and_discharges_in_the_melt_windows(tank_day):
    hour = local_hours(DAY)
    night = hour < 8
    melt = ((10 <= hour) & (hour < 12)) | ((14 <= hour) & (hour < 19))
    np.testing.assert_array_equal(tank_day.tank("charge_setpoint_kwth"), np.where(night, CHARGE_MAX_KWTH, 0.0))
    np.testing.assert_array_equal(tank_day.tank("discharge_setpoint_kwth"), np.where(melt, DISCHARGE_MAX_KWTH, 0.0))
    charge, discharge = tank_day.tank("charge_kwth"), tank_day.tank("discharge_kwth")
    assert np.all(charge[~night] == 0) and np.all(charge[:60] == CHARGE_MAX_KWTH)
    assert np.all(discharge[~melt] == 0) and np.all(discharge[melt][:60] == DISCHARGE_MAX_KWTH)


def test_the_chillers_carry_the_load_plus_the_charge_less_the_discharge(tank_day, load_kwth):
    net = tank_day.tank("cooling_delivered_kwth")
    assert net.min() == -CHARGE_MAX_KWTH and net.max() == DISCHARGE_MAX_KWTH
    np.testing.assert_allclose(tank_day.chillers_kwth(), load_kwth - net, rtol=1e-12, atol=1e-9)


def test_charging_takes_only_the_chilled_water_the_load_leaves(parks, load_kwth):
    only_chiller3 = {f"{chiller}.mode_cmd": 1.0 for chiller in CHILLERS[:2]}  # 1: off
    run = Run(simulator(parks["chilled_water"], writes=only_chiller3), 120)
    spare_kwth = 1400.0 - load_kwth[:120]
    assert np.all((0 < spare_kwth) & (spare_kwth < CHARGE_MAX_KWTH))  # a night: chiller 3 alone can spare some
    np.testing.assert_allclose(run.tank("charge_kwth"), spare_kwth, rtol=1e-12)
    np.testing.assert_allclose(run["plant.chiller3.cooling_kwth"], 1400.0, rtol=1e-12)

    all_off = {f"{chiller}.mode_cmd": 1.0 for chiller in CHILLERS}
    run = Run(simulator(parks["chilled_water"], writes=all_off), 10)
    assert np.all(run.tank("charge_setpoint_kwth") == CHARGE_MAX_KWTH) and np.all(run.tank("charge_kwth") == 0)


def test_written_setpoints_are_followed_within_the_load_and_the_spare_capacity(parks, load_kwth):
    ten_am = MIDNIGHT + timedelta(hours=10)
    day = slice(600, 660)
    discharging = Run(simulator(parks["chilled_water"], ten_am, {f"{TANK}.discharge_setpoint_kwth": 1000.0}), 60)
    np.testing.assert_array_equal(discharging.tank("discharge_kwth"), 1000.0)
    np.testing.assert_allclose(discharging.chillers_kwth(), load_kwth[day] - 1000.0, rtol=1e-12)

    writes = {f"{TANK}.discharge_setpoint_kwth": 0.0, f"{TANK}.charge_setpoint_kwth": 1500.0}
    charging = Run(simulator(parks["chilled_water"], ten_am, writes), 60)
    np.testing.assert_allclose(charging.tank("charge_kwth"), np.minimum(1500.0, CHILLERS_KWTH - load_kwth[day]),
                               rtol=1e-12)
    np.testing.assert_allclose(charging.chillers_kwth(), load_kwth[day] + charging.tank("charge_kwth"), rtol=1e-12)

    night = Run(simulator(parks["chilled_water"], writes={f"{TANK}.discharge_setpoint_kwth": DISCHARGE_MAX_KWTH}), 60)
    assert np.all(load_kwth[:60] < DISCHARGE_MAX_KWTH)  # the night's load is less than the rate asked
    np.testing.assert_allclose(night.tank("discharge_kwth"), load_kwth[:60], rtol=1e-12)
    np.testing.assert_allclose(night.chillers_kwth(), 0.0, atol=1e-9)
    assert np.all(night.tank("charge_kwth") == 0)  # in the charge window, but discharging

    sim = simulator(parks["chilled_water"])
    with pytest.raises(ValueError, match="outside the safe limits"):
        sim.write_setpoint(f"{TANK}.discharge_setpoint_kwth", DISCHARGE_MAX_KWTH + 1)


def test_the_tank_follows_its_requests_within_its_rates_what_it_holds_and_the_loop():
    tank = ChilledWaterTank(id="t", capacity_kwhth=1000, charge_rate_max_kwth=600, discharge_rate_max_kwth=800,
                            standing_loss_pct_per_h=1.0)
    plenty = ChilledWaterDemand(load_kwth=5000.0, capacity_kwth=20000.0)
    # 100 kWhth over a quarter hour: 400 kWth, less the 1 kWth standing loss
    assert tank.follow(100.0, 0.0, 800.0, plenty, 0.25) == (0.0, 399.0, 1.0)
    assert tank.stored_after(100.0, (0.0, 399.0, 1.0), 0.25) == 0.0
    # 50 kWhth of room over a quarter hour: 200 kWth, plus the 9.5 kWth standing loss
    assert tank.follow(950.0, 600.0, 0.0, plenty, 0.25) == (209.5, 0.0, 9.5)
    assert tank.stored_after(950.0, (209.5, 0.0, 9.5), 0.25) == 1000.0
    assert tank.follow(0.0, 600.0, 0.0, ChilledWaterDemand(300.0, 500.0), 0.25) == (200.0, 0.0, 0.0)  # spare
    assert tank.follow(0.0, 600.0, 0.0, ChilledWaterDemand(600.0, 500.0), 0.25) == (0.0, 0.0, 0.0)  # none spare
    assert tank.follow(1000.0, 0.0, 800.0, ChilledWaterDemand(120.0, 500.0), 0.25) == (0.0, 120.0, 10.0)  # load
    assert tank.follow(500.0, 100.0, 100.0, plenty, 0.25) == (0.0, 100.0, 5.0)  # never both


def test_hold_setpoints_keep_it_idle_losing_only_its_standing_loss(parks, load_kwth):
    hold = {f"{TANK}.{name}": value for name, value in ChilledWaterTank.hold_setpoints.items()}
    run = Run(simulator(parks["chilled_water"], writes=hold), DAY)
    assert np.all(run.tank("charge_kwth") == 0) and np.all(run.tank("discharge_kwth") == 0)
    stored0 = CAPACITY_KWHTH * INITIAL_SOC_PCT / 100.0
    kept_per_step = 1 - LOSS_PCT_PER_H / 100.0 * STEP_H
    np.testing.assert_allclose(run.tank("stored_kwhth"), stored0 * kept_per_step ** np.arange(DAY), rtol=1e-12)
    np.testing.assert_allclose(run.chillers_kwth(), load_kwth, rtol=1e-12)


def test_a_restored_run_continues_the_stored_cooling(parks):
    sim = simulator(parks["chilled_water"])
    taken = sim.restore_state({f"{TANK}.stored_kwhth": 12345.0, f"{TANK}.soc_pct": 1.0,
                               f"{TANK}.charge_kwth": 5.0})
    assert taken == [f"{TANK}.stored_kwhth"]
    first = dict(zip(sim.point_ids, sim.advance().values))
    assert first[f"{TANK}.stored_kwhth"] == 12345.0
    assert first[f"{TANK}.soc_pct"] == pytest.approx(100.0 * 12345.0 / CAPACITY_KWHTH)

    beyond = simulator(parks["chilled_water"])
    assert beyond.restore_state({f"{TANK}.stored_kwhth": CAPACITY_KWHTH + 1}) == []  # outside the point's limits


def test_the_forecasts_cooling_load_history_is_the_buildings_load_with_ice_and_chilled_water_storage(
        parks, load_kwth, tmp_path):
    park = parks["both"]
    sim = simulator(park)
    with open_history(f"sqlite:///{tmp_path / 'day.sqlite'}") as history:
        frames = list(sim.run(MIDNIGHT + timedelta(days=1)))
        for frame in frames:
            history.append_frame(frame)
        hourly = hourly_load_history(history, park, MIDNIGHT, MIDNIGHT + timedelta(days=1))
    values = {pid: group["value"].to_numpy() for pid, group in pd.concat(frames).groupby("point_id")}
    assert values[f"{TANK}.charge_kwth"].max() > 0 and values[f"{TANK}.discharge_kwth"].max() > 0
    assert values["plant.ice_tank.charge_kwth"].max() > 0 and values["plant.ice_tank.melt_kwth"].max() > 0
    assert len(hourly) == 24
    np.testing.assert_allclose(hourly["cooling_load_kwth"].to_numpy(), load_kwth.reshape(24, 60).mean(axis=1),
                               rtol=1e-9)


def test_the_tank_is_a_bacnet_device_laid_out_from_its_points(parks):
    park = parks["chilled_water"]
    (layout,) = [each for each in device_layouts(park) if each.name == "chw_tank"]
    assert isinstance(layout, BacnetLayout) and layout.heartbeat is not None
    objects = {point.id.removeprefix(f"{TANK}."): point.object_type for point in layout.points}
    assert objects == {"stored_kwhth": "analog-input", "soc_pct": "analog-input", "charge_kwth": "analog-input",
                       "discharge_kwth": "analog-input", "standing_loss_kwth": "analog-input",
                       "cooling_delivered_kwth": "analog-input", "charge_setpoint_kwth": "analog-output",
                       "discharge_setpoint_kwth": "analog-output"}


def test_a_park_with_a_tank_and_no_chiller_is_refused_and_its_summary_names_the_tank(parks):
    park = parks["chilled_water"]
    assert park.summary().startswith("chilled-water storage 18,604 kWhth; ")
    assert "chilled-water storage" not in parks["none"].summary()
    tank = park.asset("chw_tank")
    assert ChilledWaterTank.park_issues([tank]) == ["a chilled-water tank needs at least one chiller to charge it"]
    assert ChilledWaterTank.park_issues([asset for _, asset in park.iter_assets()]) == []
