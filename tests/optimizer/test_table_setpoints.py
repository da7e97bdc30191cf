"""What a plan table asks of the park's devices (optimizer.setpoints.table_setpoints): each step's setpoints,
clipped to the asset limits in the park file, written by the closed loop and by the live dispatch."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from optimizer.setpoints import table_setpoints
from twin.config import load_park
from twin.plant import CMD_AUTO, CMD_ICE
from twin.points import point_id

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo-park" / "park.yaml"


@pytest.fixture(scope="module")
def park():
    return load_park(DEMO)


def three_steps() -> dict[str, list[float]]:
    """Three steps past and within the demo park's limits (battery 1000 kW each way, tank charge
    2960 and melt 2800 kWth, PV inverters 160 + 340 + 200 + 200 = 900 kW AC)."""
    return {
        "battery.power_setpoint_kw": [1500.0, -400.0, -1200.0],
        "ice_tank.charge_kwth": [3000.0, 0.0, -5.0],
        "ice_tank.melt_kwth": [0.0, 2900.0, 100.0],
        "chiller1.ice_kwth": [1480.0, 0.0, 0.0005],
        "chiller2.ice_kwth": [0.0, 0.002, 0.0],
        "pv_used_kw": [450.0, 900.0, 0.0],
        "pv_curtailed_kw": [50.0, 0.0, 0.0],
    }


def test_each_step_is_clipped_to_the_park_limits_and_turned_into_device_commands(park):
    steps = table_setpoints(park, three_steps())
    assert len(steps) == 3
    battery = point_id("plant", "battery", "power_setpoint_kw")
    charge = point_id("plant", "ice_tank", "charge_setpoint_kwth")
    melt = point_id("plant", "ice_tank", "melt_setpoint_kwth")
    assert [s[battery] for s in steps] == [1000.0, -400.0, -1000.0]
    assert [s[charge] for s in steps] == [2960.0, 0.0, 0.0]
    assert [s[melt] for s in steps] == [0.0, 2800.0, 100.0]
    # ice mode above 1e-3 kWth of ice making, automatic otherwise; chiller3 makes no ice and gets no command
    assert [s[point_id("plant", "chiller1", "mode_cmd")] for s in steps] == [CMD_ICE, CMD_AUTO, CMD_AUTO]
    assert [s[point_id("plant", "chiller2", "mode_cmd")] for s in steps] == [CMD_AUTO, CMD_ICE, CMD_AUTO]
    assert not any(point_id("plant", "chiller3", "mode_cmd") in s for s in steps)
    # curtailed: every array limited to the park's share in use, 450 of 900 kW; otherwise no limit
    limits = [point_id(b, a, "power_limit_pct") for b, a in (("plant", "pv_plant_roof"), ("b1", "pv_roof_south"),
                                                             ("b2", "pv_roof_east"), ("b2", "pv_roof_west"))]
    assert [[s[p] for p in limits] for s in steps] == [[50.0] * 4, [100.0] * 4, [100.0] * 4]
    assert all(isinstance(value, float) for s in steps for value in s.values())


def test_a_table_and_its_columns_ask_the_same(park):
    columns = three_steps()
    table = pd.DataFrame({"ts_utc": pd.date_range("2026-07-01", periods=3, freq="15min", tz="UTC"), **columns})
    assert table_setpoints(park, table) == table_setpoints(park, columns)
    assert table_setpoints(park, table.iloc[1:2]) == table_setpoints(park, columns)[1:2]
