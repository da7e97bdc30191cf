"""The asset-kind registry (twin.kinds): every kind once, what the kinds declare, and a kind added later
(a pump, defined here as a new module would define it) found by subsystems and the overview unchanged."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

import pandas as pd
import pytest

from dashboard.pages.overview import colours, labels, power_figure, sankey_figure
from energy.kpi import flow_sinks, load_names
from twin.config import load_park
from twin.input_schema import PositiveFloat
from twin.kinds import ASSET_CLASSES, ChilledWaterTank, kind_class, kind_name, kinds, power_groups, registered
from twin.kinds.base import AssetBase, M, PowerGroup, Role
from twin.points import PointSpec
from twin.subsystems import power_points, subsystem_power_frame

DEMO_PARK = Path(__file__).parents[2] / "examples" / "demo-park" / "park.yaml"


class Pump(AssetBase):
    """A chilled-water pump: a measured load in a subsystem of its own."""

    kind: Literal["pump"] = "pump"
    kind_label: ClassVar[str] = "Pump"
    power_point: ClassVar[str] = "power_kw"
    power_groups: ClassVar[tuple[PowerGroup, ...]] = (PowerGroup("pumps", "load", "Pumps", "#17becf"),)
    rated_kw: PositiveFloat

    def standard_points(self) -> list[PointSpec]:
        return [PointSpec("power_kw", "kW", M, low_limit=0, high_limit=1.1 * self.rated_kw)]


def test_the_registry_lists_every_kind_of_the_park_file_once_in_park_order():
    names = [kind_name(cls) for cls in kinds()]
    assert names == ["chiller", "ice_tank", "chilled_water_tank", "lighting", "elevator", "pv_array", "battery",
                     "ev_charger", "meter", "weather_station"]
    assert kinds() == ASSET_CLASSES
    assert all(kind_class(name).model_fields["kind"].default == name for name in names)
    with pytest.raises(KeyError, match="pump"):
        kind_class("pump")


def test_power_groups_are_unique_by_name_and_ordered_loads_meters_sources():
    groups = power_groups()
    assert [g.name for g in groups] == ["chillers", "lighting", "elevators", "ev", "building_meters", "pv",
                                        "battery", "grid"]
    assert [g.part for g in groups] == ["load"] * 4 + ["meters"] + ["source"] * 3
    assert all(g.label and g.colour.startswith("#") for g in groups if g.part != "meters")


def test_every_declared_point_is_one_of_the_kinds_standard_points():
    park = load_park(DEMO_PARK)
    park.buildings[0].assets.append(ChilledWaterTank(id="chw_tank", capacity_kwhth=18604, charge_rate_max_kwth=2000,
                                                     discharge_rate_max_kwth=3000))
    assert {type(asset) for _, asset in park.iter_assets()} == set(ASSET_CLASSES)  # every kind
    for _, asset in park.iter_assets():
        names = {spec.name for spec in asset.standard_points()}
        assert (asset.power_point is None) == (asset.power_group() is None)
        assert asset.power_point is None or asset.power_point in names
        assert set(asset.roles().values()) <= names, asset.id


def test_power_points_and_role_points_of_the_demo_park_read_off_its_file():
    park = load_park(DEMO_PARK)
    groups = power_points(park)
    assert list(groups) == ["chillers", "lighting", "elevators", "ev", "building_meters", "pv", "battery", "grid"]
    assert groups["chillers"] == [f"plant.chiller{i}.power_kw" for i in (1, 2, 3)]
    assert groups["ev"] == [f"b{1 + (i > 6)}.ev{i}.power_kw" for i in range(1, 13)]
    assert groups["building_meters"] == ["plant.meter.power_kw", "b1.meter_b1.power_kw", "b2.meter_b2.power_kw"]
    assert groups["pv"] == ["plant.pv_plant_roof.ac_power_kw", "b1.pv_roof_south.ac_power_kw",
                            "b2.pv_roof_east.ac_power_kw", "b2.pv_roof_west.ac_power_kw"]
    assert (groups["battery"], groups["grid"]) == (["plant.battery.power_kw"], ["plant.grid_meter.power_kw"])
    assert [meter.id for meter in park.assets_with_role(Role.GRID_POWER)] == ["grid_meter"]
    assert park.role_points(Role.GRID_EXPORT_COUNTER) == ["plant.grid_meter.export_energy_kwh"]
    assert park.role_points(Role.STORAGE_COOLING_DELIVERED) == ["plant.ice_tank.cooling_delivered_kwth"]
    assert park.role_point_pairs(Role.OUTDOOR_TEMP, Role.GHI) == [("plant.weather.outdoor_temp_c",
                                                                   "plant.weather.ghi_wm2")]
    assert park.role_point_pairs(Role.BUILDING_IMPORT_COUNTER, Role.BUILDING_POWER)[1] == (
        "b1.meter_b1.import_energy_kwh", "b1.meter_b1.power_kw")


def test_a_kind_cannot_be_registered_twice_and_registration_ends_with_its_block():
    with registered(Pump):
        assert kinds()[-1] is Pump and kind_class("pump") is Pump
        with pytest.raises(ValueError, match="registered already"):
            with registered(Pump):
                pass
    assert kinds() == ASSET_CLASSES
    with pytest.raises(ValueError, match="registered already"):
        with registered(kind_class("meter")):
            pass
    assert kinds() == ASSET_CLASSES


@pytest.fixture
def park_with_pump():
    """The demo park with a pump in building b1, made in code (the park file's schema, twin.kinds.Asset,
    knows only the kinds of this package)."""
    park = load_park(DEMO_PARK)
    park.buildings[1].assets.append(Pump(id="pump1", rated_kw=30.0))
    return park


def test_a_new_measured_kind_is_counted_in_its_own_subsystem_with_no_other_change(park_with_pump):
    before = power_points(load_park(DEMO_PARK))
    with registered(Pump):
        groups = power_points(park_with_pump)
        names = list(before)
        assert list(groups) == [*names[:4], "pumps", *names[4:]]
        assert groups == {**before, "pumps": ["b1.pump1.power_kw"]}

        # one row of values: every power point 2 kW, the pump 7 kW, the building meters 400 kW each
        values = {pid: 2.0 for pids in groups.values() for pid in pids}
        values["b1.pump1.power_kw"] = 7.0
        meters = ["plant.meter.power_kw", "b1.meter_b1.power_kw", "b2.meter_b2.power_kw"]
        values.update(dict.fromkeys(meters, 400.0))
        frame = subsystem_power_frame(park_with_pump, pd.DataFrame([values]))
    chillers, lights, lifts, evs = 3, 5, 7, 12  # points of each subsystem in the demo park file
    assert list(frame.columns) == ["chillers", "lighting", "elevators", "ev", "pumps", "other", "pv", "battery",
                                   "grid"]
    assert frame.loc[0, "pumps"] == 7.0
    assert frame.loc[0, "other"] == pytest.approx(3 * 400.0 - 2.0 * (chillers + lights + lifts + evs) - 7.0)
    assert frame.loc[0, "pv"] == 2.0 * 4 and frame.loc[0, "grid"] == 2.0


def test_the_overview_shows_a_new_load_subsystem_with_its_kinds_label_and_colour(park_with_pump):
    assert "pumps" not in colours() and "pumps" not in load_names()
    with registered(Pump):
        assert (labels()["pumps"], colours()["pumps"]) == ("Pumps", "#17becf")
        assert load_names() == ["chillers", "lighting", "elevators", "ev", "pumps", "other"]
        assert flow_sinks()[-3:] == ["other", "battery charge", "export"]
        frame = pd.DataFrame({name: [1.0] for name in [*load_names(), "pv", "battery", "grid"]},
                             index=pd.DatetimeIndex(["2026-07-01T00:00Z"]))
        traces = {t["name"]: t for t in power_figure(frame, "Asia/Shanghai")["data"]}
        assert traces["Pumps"]["stackgroup"] == "loads" and traces["Pumps"]["line"]["color"] == "#17becf"
        sankey = sankey_figure([{"source": "grid", "target": "pumps", "kwh": 5.0}])["data"][0]
        pumps = sankey["node"]["label"].index("Pumps")
        assert sankey["node"]["color"][pumps] == "#17becf" and sankey["link"]["target"] == [pumps]
    assert "pumps" not in labels()

