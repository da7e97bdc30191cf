"""The park simulator steps each kind through the step function its module declares (twin.kinds.simulation):
a pump kind, defined here as a new module would define it, is simulated, metered and continued with no
other change, and leaves every other asset's readings as they were; a kind on the buildings' chilled-water
loop takes the cooling it delivers off the load the chillers carry."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
import pytest

from energy.environment import ParkEnvironment
from twin.config import load_park
from twin.input_schema import PositiveFloat
from twin.kinds import registered
from twin.kinds.base import AssetBase, M, PowerGroup
from twin.kinds.simulation import ChilledWaterDemand, Member, Simulation, Stage, State, StepInputs
from twin.park import Park
from twin.points import PointSpec
from twin.sim import ParkSimulator

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo-park" / "park.yaml"
START = datetime(2026, 7, 1, 2, tzinfo=UTC)  # 10:00 on a Wednesday in Shenzhen: offices occupied
STEPS = 120
PUMP_KW = 30.0


def _pump_step(members: list[Member], inputs: StepInputs, occupancy: float, values: memoryview[float]) -> float:
    """Each pump runs at its rated power; its energy counter shows the energy before the step."""
    total = 0.0
    for member in members:
        power = member.asset.rated_kw
        values[member.slots["power_kw"]] = power
        values[member.slots["energy_kwh"]] = member.state["energy_kwh"]
        member.state["energy_kwh"] += power * inputs.step_h
        total += power
    return total


def _pump_state(pump: Pump) -> State:
    return {"energy_kwh": 0.0}


class Pump(AssetBase):
    """A chilled-water pump at constant power: a load of its building with an energy counter."""

    kind: Literal["pump"] = "pump"
    kind_label: ClassVar[str] = "Pump"
    power_point: ClassVar[str] = "power_kw"
    power_groups: ClassVar[tuple[PowerGroup, ...]] = (PowerGroup("pumps", "load", "Pumps", "#17becf"),)
    simulation: ClassVar[Simulation] = Simulation(Stage.BUILDING_LOAD, _pump_step, _pump_state,
                                                  continued={"energy_kwh": False})
    rated_kw: PositiveFloat

    def standard_points(self) -> list[PointSpec]:
        return [PointSpec("power_kw", "kW", M, low_limit=0, high_limit=1.1 * self.rated_kw),
                PointSpec("energy_kwh", "kWh", M, low_limit=0)]


def simulate(park: Park, steps: int) -> tuple[list[str], np.ndarray]:
    """(point ids, steps x points values) from START, the battery held at 0 kW so that it does not follow
    the load."""
    sim = ParkSimulator(park, ParkEnvironment(park), START)
    sim.write_setpoint("plant.battery.power_setpoint_kw", 0.0)
    return sim.point_ids, np.vstack([sim.advance().values for _ in range(steps)])


@pytest.fixture(scope="module")
def without_pump():
    return simulate(load_park(DEMO), STEPS)


def park_with_pump() -> Park:
    park = load_park(DEMO)
    park.buildings[1].assets.append(Pump(id="pump1", rated_kw=PUMP_KW))
    return park


def test_a_new_kind_is_simulated_and_metered_with_every_other_reading_unchanged(without_pump):
    with registered(Pump):
        ids, values = simulate(park_with_pump(), STEPS)
    before_ids, before = without_pump
    column = {pid: k for k, pid in enumerate(ids)}
    assert set(ids) == {*before_ids, "b1.pump1.power_kw", "b1.pump1.energy_kwh"}
    assert np.all(values[:, column["b1.pump1.power_kw"]] == PUMP_KW)
    hours = np.arange(STEPS) / 60.0
    np.testing.assert_allclose(values[:, column["b1.pump1.energy_kwh"]], PUMP_KW * hours)

    metered = {"b1.meter_b1.power_kw", "b1.meter_b1.import_energy_kwh", "b1.meter_b1.export_energy_kwh",
               "plant.grid_meter.power_kw", "plant.grid_meter.import_energy_kwh",
               "plant.grid_meter.export_energy_kwh"}
    for k, pid in enumerate(before_ids):
        if pid not in metered:  # the same random draws in the same order: the same readings
            np.testing.assert_array_equal(values[:, column[pid]], before[:, k], err_msg=pid)
    for meter in ("b1.meter_b1.power_kw", "plant.grid_meter.power_kw"):  # 0.2 % meters
        added_kw = values[:, column[meter]] - before[:, before_ids.index(meter)]
        np.testing.assert_allclose(added_kw, PUMP_KW, rtol=0.01)


def test_a_new_kinds_continued_state_is_restored():
    with registered(Pump):
        park = park_with_pump()
        sim = ParkSimulator(park, ParkEnvironment(park), START)
        taken = sim.restore_state({"b1.pump1.energy_kwh": 1234.5, "b1.pump1.power_kw": 5.0})
        first = dict(zip(sim.point_ids, sim.advance().values))
    assert taken == ["b1.pump1.energy_kwh"]
    assert first["b1.pump1.energy_kwh"] == 1234.5 and first["b1.pump1.power_kw"] == PUMP_KW


IMPORT_KWTH = 800.0
CHILLERS_KWTH = 2110.0 + 2110.0 + 1400.0
"""The demo park's chillers' chilled-water capacity (examples/demo-park/park.yaml), all in automatic mode."""


def _import_step(members: list[Member], inputs: StepInputs, demand: ChilledWaterDemand,
                 values: memoryview[float]) -> float:
    """Each import delivers its rated cooling, no more than the load left; it reports the chillers' spare
    capacity it was handed."""
    delivered = 0.0
    for member in members:
        cooling = min(member.asset.rated_kwth, demand.load_kwth - delivered)
        values[member.slots["cooling_kwth"]] = cooling
        values[member.slots["spare_kwth"]] = demand.spare_kwth
        delivered += cooling
    return delivered


class CoolingImport(AssetBase):
    """District cooling through a heat exchanger on the buildings' chilled-water loop, at a fixed rate."""

    kind: Literal["cooling_import"] = "cooling_import"
    simulation: ClassVar[Simulation] = Simulation(Stage.CHILLED_WATER_LOOP, _import_step)
    rated_kwth: PositiveFloat

    def standard_points(self) -> list[PointSpec]:
        return [PointSpec("cooling_kwth", "kWth", M, low_limit=0), PointSpec("spare_kwth", "kWth", M, low_limit=0)]


def chillers_cooling_kwth(park: Park, steps: int) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(point ids, steps x points values, the chillers' cooling each step, kWth) from START with the ice tank
    held idle, so that the chillers carry the whole load the plant is left."""
    sim = ParkSimulator(park, ParkEnvironment(park), START)
    for point in ("plant.ice_tank.charge_setpoint_kwth", "plant.ice_tank.melt_setpoint_kwth"):
        sim.write_setpoint(point, 0.0)
    values = np.vstack([sim.advance().values for _ in range(steps)])
    cooling = [k for k, pid in enumerate(sim.point_ids) if pid.startswith("plant.chiller") and
               pid.endswith(".cooling_kwth")]
    return sim.point_ids, values, values[:, cooling].sum(axis=1)


def test_a_kind_on_the_chilled_water_loop_takes_its_cooling_off_the_plants_load():
    _, _, load_kwth = chillers_cooling_kwth(load_park(DEMO), STEPS)
    park = load_park(DEMO)
    park.buildings[0].assets.append(CoolingImport(id="district", rated_kwth=IMPORT_KWTH))
    with registered(CoolingImport):
        ids, values, carried_kwth = chillers_cooling_kwth(park, STEPS)
    assert np.all(load_kwth > IMPORT_KWTH)  # an occupied morning: the import delivers its rate
    np.testing.assert_array_equal(values[:, ids.index("plant.district.cooling_kwth")], IMPORT_KWTH)
    np.testing.assert_allclose(carried_kwth, load_kwth - IMPORT_KWTH, rtol=1e-12)
    np.testing.assert_allclose(values[:, ids.index("plant.district.spare_kwth")], CHILLERS_KWTH - load_kwth,
                               rtol=1e-12)
