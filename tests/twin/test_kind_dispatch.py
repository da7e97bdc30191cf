"""What dispatch and the park's checks ask the kinds (twin.kinds.base): the setpoints a plan drives, the
setpoints that hold storage idle, the stored energy the simulator holds and the energy read from points and
brought forward, the storage charted on the dispatch page, which simulated devices speak SunSpec Modbus, the
park's rules and one-line summary, and the bounds of fault magnitudes. A storage kind added later (a flywheel,
defined here as a new module would define it) is planned, held, simulated, read, laid out, charted, checked and
summarised with no other change."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
import pandas as pd
import pytest

from dashboard.context import DashboardContext
from dashboard.pages.dispatch import actual_figure, actual_series, plan_figure
from energy.environment import ParkEnvironment
from optimizer.park_inputs import hold_storage_setpoints
from optimizer.setpoints import table_setpoints
from protocols.devices.layout import SUNSPEC_KINDS, BacnetLayout, ModbusLayout, device_layouts
from protocols.field import ProtocolField
from twin.config import load_park
from twin.faults_file import magnitude_range
from twin.field import SimulatedField
from twin.history import open_history
from twin.input_schema import PositiveFloat
from twin.kinds import registered
from twin.kinds.base import SP, AssetBase, M, PlanColumn, PlanTrace
from twin.kinds.simulation import Member, Simulation, Stage, State, StepInputs
from twin.live import LiveState
from twin.points import PointSpec
from twin.readings import Reading
from twin.sim import ParkSimulator

EXAMPLES = Path(__file__).parents[2] / "examples"
READ_AT = datetime(2026, 7, 1, 2, tzinfo=UTC)


def _flywheel_step(members: list[Member], inputs: StepInputs, unsupplied_kw: float,
                   values: memoryview[float]) -> float:
    """Each flywheel holds its written setpoint (0 without one), kW, + discharge, as far as its store allows."""
    total_kw = 0.0
    for member in members:
        flywheel: Flywheel = member.asset
        slots, state = member.slots, member.state
        stored_kwh = state["stored_energy_kwh"]
        setpoint_kw = inputs.setpoints.get(slots["power_setpoint_kw"], 0.0)
        stored_after_kwh = flywheel.stored_after(stored_kwh, [setpoint_kw], inputs.step_h)
        power_kw = (stored_kwh - stored_after_kwh) / inputs.step_h
        values[slots["power_kw"]] = power_kw
        values[slots["stored_energy_kwh"]] = stored_kwh
        values[slots["soc_pct"]] = 100.0 * stored_kwh / flywheel.capacity_kwh
        values[slots["power_setpoint_kw"]] = setpoint_kw
        state["stored_energy_kwh"] = stored_after_kwh
        total_kw += power_kw
    return total_kw


def _flywheel_initial_state(flywheel: Flywheel) -> State:
    return {"stored_energy_kwh": flywheel.capacity_kwh / 2}


class Flywheel(AssetBase):
    """A flywheel store: electric storage without losses, + discharge, planned as a battery is; it starts half
    full."""

    kind: Literal["flywheel"] = "flywheel"
    kind_label: ClassVar[str] = "Flywheel"
    stored_point: ClassVar[str] = "stored_energy_kwh"
    stored_pct_point: ClassVar[str] = "soc_pct"
    hold_setpoints: ClassVar[Mapping[str, float]] = {"power_setpoint_kw": 0.0}
    storage_flow_points: ClassVar[tuple[str, ...]] = ("power_kw",)
    plan_traces: ClassVar[tuple[PlanTrace, ...]] = (PlanTrace("power_setpoint_kw", "flywheel kW (+ discharge)",
                                                              "#ffc107"),)
    simulation: ClassVar[Simulation] = Simulation(Stage.SUPPLY, _flywheel_step, _flywheel_initial_state)
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

    @classmethod
    def park_issues(cls, assets: Sequence[AssetBase]) -> list[str]:
        total_kwh = sum(asset.capacity_kwh for asset in assets if isinstance(asset, cls))
        return [f"flywheels store at most 100 kWh in a park, found {total_kwh:g}"] if total_kwh > 100 else []

    @classmethod
    def park_summary(cls, assets: Sequence[Flywheel]) -> str:
        return f"{len(assets)} flywheels"

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
        assert field.read_state().stored == {"fly1": pytest.approx(30.0)}
        assert field.read_state(READ_AT + timedelta(minutes=15)).stored == {"fly1": pytest.approx(25.0)}
        live.update([Reading("b1.fly1.power_kw", READ_AT, None)])
        assert field.read_state().stored == {"fly1": 40.0}


def test_a_new_kinds_stored_energy_is_what_the_simulator_holds_for_it(park):
    """Half of 50 kWh to start; discharging 60 kW for three 1-minute steps (the demo park's step_s) leaves
    25 - 60 * 3 / 60 = 22 kWh (hand calculation); a simulated field reads the same. The demo park's ice tank
    and battery start at their initial_soc_pct (30 % of 14,068 kWhth, 50 % of 2,000 kWh: park file)."""
    with registered(Flywheel):
        simulator = ParkSimulator(park, ParkEnvironment(park), READ_AT)
        assert simulator.storage_state() == {"ice_tank": pytest.approx(4220.4), "battery": pytest.approx(1000.0),
                                             "fly1": 25.0}
        simulator.write_setpoint("b1.fly1.power_setpoint_kw", 60.0)
        outputs = [simulator.advance() for _ in range(3)]
        assert simulator.storage_state()["fly1"] == pytest.approx(22.0)
        assert SimulatedField(simulator, 15).read_state().stored["fly1"] == pytest.approx(22.0)
    # what the step reported at the last step's start: 23 kWh, 46 % of 50 kWh
    last = dict(zip(simulator.point_ids, outputs[-1].values))
    assert (last["b1.fly1.stored_energy_kwh"], last["b1.fly1.soc_pct"]) == (pytest.approx(23.0), pytest.approx(46.0))


def test_the_dispatch_page_charts_a_new_storage_kinds_state_of_charge(tmp_path, park):
    """A panel per storage asset titled by its kind's stored_pct_label (the flywheel has none: its kind_label),
    in park order, then grid import."""
    with open_history(f"sqlite:///{tmp_path / 'h.sqlite'}") as store:
        store.append_frame(pd.DataFrame({"point_id": "b1.fly1.soc_pct", "value": [40.0, 60.0], "quality": 0,
                                         "ts_utc": [READ_AT, READ_AT + timedelta(minutes=5)]}))
        ctx = DashboardContext(park, LiveState(), store)
        series = actual_series(ctx, READ_AT, READ_AT + timedelta(minutes=15))
        figure = actual_figure(ctx, {"id": "plan", "steps": []}, None, READ_AT + timedelta(minutes=15))
    assert list(series) == ["ice_tank.soc_pct", "battery.soc_pct", "fly1.soc_pct", "grid_import_kw"]
    assert series["fly1.soc_pct"].tolist() == [50.0]
    layout = figure["layout"]
    assert [layout[axis]["title"]["text"] for axis in ("yaxis", "yaxis2", "yaxis3", "yaxis4")] == [
        "ice_tank ice inventory %", "battery SOC %", "fly1 Flywheel %", "grid import kW"]
    actual = next(trace for trace in figure["data"] if trace["name"] == "actual fly1 Flywheel %")
    assert actual["yaxis"] == "y3" and actual["y"] == [50.0]


def test_the_dispatch_pages_plan_chart_draws_a_new_storage_kinds_declared_traces(park):
    """The flywheel's power in the storage panel and its stored percentage dotted in the state panel, in its
    declared colour, each after the battery's (park order: plant, then b1); the ice tank, whose columns this
    plan lacks, gets no line."""
    columns = {"price_cny_per_kwh": 0.5, "grid_import_kw": 900.0, "grid_export_kw": 0.0,
               "battery.power_setpoint_kw": -300.0, "battery.soc_pct": 55.0,
               "fly1.power_setpoint_kw": 120.0, "fly1.soc_pct": 40.0}
    plan = {"currency": "CNY", "steps": [{"ts_local": "2026-07-01 10:00:00+08:00", **columns}]}
    traces = {trace["name"]: trace for trace in plan_figure(plan, park)["data"]}
    assert list(traces) == ["energy price (CNY/kWh)", "battery power kW (+ discharge)",
                            "fly1 flywheel kW (+ discharge)", "battery SOC %", "fly1 Flywheel %", "grid import kW",
                            "grid export kW"]
    power, stored = traces["fly1 flywheel kW (+ discharge)"], traces["fly1 Flywheel %"]
    assert (power["yaxis"], power["y"], power["line"]["color"]) == ("y2", [120.0], "#ffc107")
    assert (stored["yaxis"], stored["y"], stored["line"]) == ("y3", [40.0], {"color": "#ffc107", "shape": "hv",
                                                                             "dash": "dot"})


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


def test_the_park_summary_and_rules_are_each_registered_kinds(park):
    """Summary figures from the park files: PV 180 + 380 + 220 + 220 kWp, one 2,000 kWh battery, 12 chargers."""
    assert park.summary() == "PV 1,000 kWp; battery 2,000 kWh; 12 EV chargers"
    assert load_park(EXAMPLES / "pv-battery" / "park.yaml").summary() == "PV 300 kWp; battery 500 kWh; 0 EV chargers"
    park.buildings[2].assets.append(Flywheel(id="fly2", power_max_kw=100.0, capacity_kwh=60.0))
    assert park.consistency_issues() == []  # not a registered kind: its rules are not asked
    with registered(Flywheel):
        assert park.summary() == "PV 1,000 kWp; battery 2,000 kWh; 12 EV chargers; 2 flywheels"
        assert park.consistency_issues() == [(("buildings",), "flywheels store at most 100 kWh in a park, found 110")]


def test_the_ice_tanks_rules_hold_for_every_park_the_kind_is_in(park):
    tank = park.asset("ice_tank")
    park.buildings[1].assets.append(tank.model_copy(update={"id": "ice_tank2"}))
    assert park.consistency_issues() == [(("buildings",), "the simulator models one ice tank per park; found more")]
    plant = park.buildings[0]
    plant.assets = [asset.model_copy(update={"ice_capacity_kwth": None, "ice_cop_rated": None})
                    if asset.kind == "chiller" else asset for asset in plant.assets]
    assert [reason for _, reason in park.consistency_issues()] == [
        "an ice tank needs at least one chiller with ice_capacity_kwth",
        "the simulator models one ice tank per park; found more"]


def test_a_faults_magnitude_is_bounded_by_the_targeted_assets_kind(park):
    chiller, array, battery = park.asset("chiller1"), park.asset("pv_roof_south"), park.asset("battery")
    assert magnitude_range("chw_low_delta_t", chiller)[2] == 5.5  # the park file's default design_delta_t_k
    assert magnitude_range("pv_string_outage", array)[2] == 10  # strings_count, its default
    # a target of another kind (refused as such by load_faults) or none bounds nothing
    assert magnitude_range("chw_low_delta_t", battery)[2] == magnitude_range("pv_string_outage", None)[2] == \
        float("inf")
    assert magnitude_range("battery_overtemp", battery)[1:] == (0.0, 100.0)
