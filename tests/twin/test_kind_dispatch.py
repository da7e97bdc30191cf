"""What dispatch asks the kinds (twin.kinds.base): the setpoints a plan drives, the setpoints that hold
storage idle, the stored energy read from points and brought forward, the storage charted on the dispatch
page, and which simulated devices speak SunSpec Modbus. A storage kind added later (a flywheel, defined
here as a new module would define it) is planned, held, read, laid out and charted with no other change."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
import pandas as pd
import pytest

from dashboard.context import DashboardContext
from dashboard.pages.dispatch import actual_series
from optimizer.park_inputs import hold_storage_setpoints
from optimizer.setpoints import table_setpoints
from protocols.devices.layout import SUNSPEC_KINDS, BacnetLayout, ModbusLayout, device_layouts
from protocols.field import ProtocolField
from twin.config import load_park
from twin.history import open_history
from twin.input_schema import PositiveFloat
from twin.kinds.base import SP, AssetBase, M, PlanColumn, Role
from twin.live import LiveState
from twin.points import PointSpec
from twin.readings import Reading

EXAMPLES = Path(__file__).parents[2] / "examples"
READ_AT = datetime(2026, 7, 1, 2, tzinfo=UTC)


class Flywheel(AssetBase):
    """A flywheel store: electric storage without losses, + discharge, planned as a battery is."""

    kind: Literal["flywheel"] = "flywheel"
    kind_label: ClassVar[str] = "Flywheel"
    point_roles: ClassVar[Mapping[Role, str]] = {Role.BATTERY_STORED_ENERGY: "stored_energy_kwh",
                                                 Role.BATTERY_SOC: "soc_pct"}
    hold_setpoints: ClassVar[Mapping[str, float]] = {"power_setpoint_kw": 0.0}
    storage_flow_points: ClassVar[tuple[str, ...]] = ("power_kw",)
    power_max_kw: PositiveFloat
    capacity_kwh: PositiveFloat

    def standard_points(self) -> list[PointSpec]:
        return [PointSpec("power_kw", "kW", M, low_limit=-self.power_max_kw, high_limit=self.power_max_kw),
                PointSpec("stored_energy_kwh", "kWh", M, low_limit=0, high_limit=self.capacity_kwh),
                PointSpec("soc_pct", "%", M, low_limit=0, high_limit=100),
                PointSpec("power_setpoint_kw", "kW", SP, writable=True, low_limit=-self.power_max_kw,
                          high_limit=self.power_max_kw)]

    def plan_setpoints(self, column: PlanColumn, peers: Sequence[Flywheel]) -> dict[str, np.ndarray]:
        return {"power_setpoint_kw": column(f"{self.id}.power_setpoint_kw")}

    def stored_after(self, stored: float, flows: Sequence[float], hours: float) -> float:
        (power_kw,) = flows
        return min(self.capacity_kwh, max(0.0, stored - power_kw * hours))


@pytest.fixture
def park():
    """The demo park with a flywheel in building b1, made in code (the park file's schema knows only the
    kinds of twin.kinds)."""
    park = load_park(EXAMPLES / "demo-park" / "park.yaml")
    park.buildings[1].assets.append(Flywheel(id="fly1", power_max_kw=200.0, capacity_kwh=50.0))
    return park


def plan_columns(park, flywheel_kw: list[float]) -> dict[str, list[float]]:
    """Two plan steps: storage idle, PV curtailed to half the park's rating in the first step."""
    columns: dict[str, list[float]] = {"pv_used_kw": [450.0, 900.0], "pv_curtailed_kw": [50.0, 0.0],
                                       "fly1.power_setpoint_kw": flywheel_kw}
    for _, asset in park.iter_assets():
        for name in ("power_setpoint_kw", "charge_kwth", "melt_kwth", "ice_kwth"):
            columns.setdefault(f"{asset.id}.{name}", [0.0, 0.0])
    return columns


def test_a_plan_drives_a_new_kinds_setpoint_clipped_to_its_points_limits(park):
    steps = table_setpoints(park, plan_columns(park, [350.0, -80.0]))
    assert [s["b1.fly1.power_setpoint_kw"] for s in steps] == [200.0, -80.0]
    # the flywheel, planned on its own, comes after the plant's assets and before the PV arrays planned as one
    order = list(steps[0])
    assert order.index("plant.battery.power_setpoint_kw") < order.index("b1.fly1.power_setpoint_kw") < \
        order.index("plant.pv_plant_roof.power_limit_pct")
    assert steps[0]["b1.pv_roof_south.power_limit_pct"] == 50.0


def test_assets_planned_as_one_follow_those_planned_one_by_one_whatever_the_file_order():
    park = load_park(EXAMPLES / "pv-battery" / "park.yaml")
    assert [asset.kind for _, asset in park.iter_assets()] == ["pv_array", "battery", "meter"]
    steps = table_setpoints(park, {"battery.power_setpoint_kw": [-900.0], "pv_used_kw": [130.0],
                                   "pv_curtailed_kw": [20.0]})
    # 130 of the array's 260 kW inverter; the battery charges at most 250 kW (park file)
    assert list(steps[0].items()) == [("office.battery.power_setpoint_kw", -250.0),
                                      ("office.pv_roof.power_limit_pct", 50.0)]


def test_a_new_kinds_hold_setpoints_keep_it_idle_in_hold_storage_runs(park):
    assert hold_storage_setpoints(park) == {"plant.ice_tank.charge_setpoint_kwth": 0.0,
                                            "plant.ice_tank.melt_setpoint_kwth": 0.0,
                                            "plant.battery.power_setpoint_kw": 0.0,
                                            "b1.fly1.power_setpoint_kw": 0.0}


def test_a_new_kinds_stored_energy_is_read_from_its_points_and_brought_forward_by_its_flows(tmp_path, park):
    """Read ten minutes ago at 40 kWh discharging 60 kW: 30 kWh now (hand calculation); without its power
    reading, the reading as it stands."""
    live = LiveState()
    live.update([Reading("b1.fly1.stored_energy_kwh", READ_AT, 40.0), Reading("b1.fly1.power_kw", READ_AT, 60.0)])
    with open_history(f"sqlite:///{tmp_path / 'h.sqlite'}") as store:
        field = ProtocolField(park, live, store, lambda values, who: {}, lambda: READ_AT + timedelta(minutes=10), 15)
        assert field.read_state().battery_stored_kwh == {"fly1": pytest.approx(30.0)}
        assert field.read_state(READ_AT + timedelta(minutes=15)).battery_stored_kwh == {"fly1": pytest.approx(25.0)}
        live.update([Reading("b1.fly1.power_kw", READ_AT, None)])
        assert field.read_state().battery_stored_kwh == {"fly1": 40.0}
        assert field.read_state().ice_inventory_kwhth == {}


def test_the_dispatch_page_charts_a_new_storage_kinds_state_of_charge(tmp_path, park):
    with open_history(f"sqlite:///{tmp_path / 'h.sqlite'}") as store:
        store.append_frame(pd.DataFrame({"point_id": "b1.fly1.soc_pct", "value": [40.0, 60.0], "quality": 0,
                                         "ts_utc": [READ_AT, READ_AT + timedelta(minutes=5)]}))
        series = actual_series(DashboardContext(park, LiveState(), store), READ_AT, READ_AT + timedelta(minutes=15))
    assert list(series) == ["ice_tank.soc_pct", "battery.soc_pct", "fly1.soc_pct", "grid_import_kw"]
    assert series["fly1.soc_pct"].tolist() == [50.0]


def test_a_kind_is_a_sunspec_modbus_device_only_with_an_entry_in_the_layout_table(park, monkeypatch):
    kinds_of = {layout.name: type(layout) for layout in device_layouts(park)}
    assert [name for name, kind in kinds_of.items() if kind is ModbusLayout] == [
        "battery", "pv_plant_roof", "grid_meter", "meter", "pv_roof_south", "meter_b1", "pv_roof_east",
        "pv_roof_west", "meter_b2"]
    (flywheel,) = [layout for layout in device_layouts(park) if layout.name == "fly1"]
    assert isinstance(flywheel, BacnetLayout) and flywheel.heartbeat is not None  # it has a setpoint
    assert [(p.object_type, p.instance) for p in flywheel.points] == [
        ("analog-input", 1), ("analog-input", 2), ("analog-input", 3), ("analog-output", 1)]

    monkeypatch.setitem(SUNSPEC_KINDS, "flywheel", lambda builder, asset: builder.vendor_floats(
        ["power_kw", "stored_energy_kwh", "soc_pct", "power_setpoint_kw"]))
    (flywheel,) = [layout for layout in device_layouts(park) if layout.name == "fly1"]
    assert isinstance(flywheel, ModbusLayout)
    # after the SunS marker (2 registers) and common model 1 (2 + 66): model 64100's header, then its floats
    # its length: four float32s, and an enable and a revert-timeout register for the one writable point
    assert [flywheel.constants[address] for address in (40070, 40071)] == [64100, 2 * 4 + 2 * 1]
    assert [(p.id, p.address, p.type) for p in flywheel.points] == [
        (f"b1.fly1.{name}", 40072 + 2 * i, "float32")
        for i, name in enumerate(["power_kw", "stored_energy_kwh", "soc_pct", "power_setpoint_kw"])]
    assert flywheel.points[-1].fail_safe is not None and flywheel.points[0].fail_safe is None
