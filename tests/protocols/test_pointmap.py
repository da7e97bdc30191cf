"""Point maps: the example parks' maps, located errors for malformed maps (exit 2), CSV import."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from cli_support import parktwin

from protocols.devices.layout import render_default_point_maps
from protocols.pointmap import ModbusDeviceMap, import_csv, load_point_map, load_point_maps
from twin.config import ConfigError, load_park

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "examples" / "demo-park" / "park.yaml"
EXAMPLES_WITH_MAPS = [ROOT / "examples" / name / "park.yaml" for name in ("demo-park", "chilled-water")]


@pytest.fixture(scope="module")
def park():
    return load_park(DEMO)


@pytest.mark.parametrize("park_file", EXAMPLES_WITH_MAPS, ids=lambda path: path.parent.name)
def test_an_example_parks_point_maps_cover_every_point_of_the_park_once(park_file):
    park = load_park(park_file)
    maps = load_point_maps(park.point_maps, park)
    mapped = [pid for device in maps for pid in device.point_ids]
    assert sorted(mapped) == sorted(park.points)
    assert len({(m.host, m.port) for m in maps}) == len(maps), "one port per device"


@pytest.mark.parametrize("park_file", EXAMPLES_WITH_MAPS, ids=lambda path: path.parent.name)
def test_an_example_parks_point_maps_are_what_points_generate_writes(park_file):
    """The files are what `parktwin points generate` writes for the park; regenerate them if this fails."""
    park = load_park(park_file)
    folder = Path(park.point_maps)
    expected = render_default_point_maps(park)
    assert sorted(p.name for p in folder.glob("*.yaml")) == sorted(expected)
    for name, text in expected.items():
        assert (folder / name).read_text(encoding="utf-8") == text, f"{name} is out of date"


GOOD_MODBUS = """\
protocol: modbus
name: inverter
port: 1502
points:
  - {id: b1.pv_roof_south.ac_power_kw, address: 100, type: int16, scale: 0.1, unit: kW}
  - {id: b1.pv_roof_south.energy_kwh, address: 102, type: uint32, unit: kWh}
  - {id: b1.pv_roof_south.power_limit_pct, address: 110, type: float32, writable: true, low_limit: 0, high_limit: 100}
"""


def write(tmp_path: Path, text: str, name: str = "map.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_a_good_map_loads_and_binds_to_the_park(tmp_path, park):
    device = load_point_map(write(tmp_path, GOOD_MODBUS), park)
    assert isinstance(device, ModbusDeviceMap)
    assert [p.register_count for p in device.points] == [1, 2, 2]
    assert device.points[0].to_engineering(1234) == pytest.approx(123.4)


@pytest.mark.parametrize("change, line, where, reason", [
    (("address: 102, type: uint32", "address: 99, type: uint32"), 6,
     "points[1 b1.pv_roof_south.energy_kwh].address", "overlaps point 'b1.pv_roof_south.ac_power_kw'"),
    (("id: b1.pv_roof_south.energy_kwh", "id: b1.pv_roof_south.ac_power_kw"), 6,
     "points[1 b1.pv_roof_south.ac_power_kw].id", "duplicate point id"),
    ((", writable: true, low_limit: 0, high_limit: 100", ", writable: true"), 7,
     "points[2 b1.pv_roof_south.power_limit_pct]", "needs low_limit and high_limit"),
    (("low_limit: 0, high_limit: 100", "safe_min: 0, safe_max: 100"), 7,
     "points[2 b1.pv_roof_south.power_limit_pct]", "safe_min is now named low_limit; safe_max is now named high_limit"),
    (("type: int16", "type: int17"), 5, "points[0 b1.pv_roof_south.ac_power_kw].type", "int17"),
    (("unit: kWh", "unit: kWh, high_limit: 1000000"), 6,
     "points[1 b1.pv_roof_south.energy_kwh]", "high_limit: only a writable point has limits"),
    (("writable: true, low_limit: 0", "writable: false, low_limit: 0"), 7,
     "points[2 b1.pv_roof_south.power_limit_pct]", "low_limit and high_limit: only a writable point has limits"),
])
def test_malformed_modbus_maps_name_the_point_and_field(tmp_path, park, change, line, where, reason):
    path = write(tmp_path, GOOD_MODBUS.replace(*change))
    with pytest.raises(ConfigError) as info:
        load_point_map(path, park)
    message = str(info.value)
    assert str(path) in message and f"line {line}: {where}" in message and reason in message


def test_a_point_bound_to_no_twin_point_is_refused(tmp_path, park):
    path = write(tmp_path, GOOD_MODBUS.replace("b1.pv_roof_south.energy_kwh", "b1.pv_roof_south.energy_mwh"))
    load_point_map(path)  # structurally fine on its own
    with pytest.raises(ConfigError, match=r"line 6: points\[1 b1.pv_roof_south.energy_mwh\].id: no twin point"):
        load_point_map(path, park)


def test_unknown_bacnet_object_type_is_refused(tmp_path):
    path = write(tmp_path, """\
        protocol: bacnet
        name: chiller
        port: 47808
        device_instance: 7
        points:
          - {id: plant.chiller1.power_kw, object_type: analog-inptu, instance: 1}
        """)
    with pytest.raises(ConfigError, match=r"line 6: points\[0 plant.chiller1.power_kw\].object_type: .*'analog-input'"):
        load_point_map(path)


def test_cli_validate_exits_2_naming_file_point_and_field(tmp_path):
    path = write(tmp_path, GOOD_MODBUS.replace("address: 102, type: uint32", "address: 99, type: uint32"))
    result = parktwin("points", "validate", str(path), "--park", str(DEMO))
    assert result.returncode == 2
    assert str(path) in result.stderr and "points[1 b1.pv_roof_south.energy_kwh].address" in result.stderr
    assert "Traceback" not in result.stderr
    good_file = write(tmp_path, GOOD_MODBUS, "ok.yaml")
    good = parktwin("points", "validate", str(good_file))
    assert good.returncode == 0 and "3 points (1 writable)" in good.stdout


def test_csv_registry_sheet_imports_into_the_same_map(tmp_path, park):
    sheet = tmp_path / "registers.csv"
    sheet.write_text(
        "id,address,type,scale,unit,writable,low_limit,high_limit\n"
        "b1.pv_roof_south.ac_power_kw,100,int16,0.1,kW,,,\n"
        "b1.pv_roof_south.energy_kwh,102,uint32,,kWh,,,\n"
        "b1.pv_roof_south.power_limit_pct,110,float32,,,true,0,100\n", encoding="utf-8")
    from_csv = import_csv(sheet, {"protocol": "modbus", "name": "inverter", "port": 1502})
    from_yaml = load_point_map(write(tmp_path, GOOD_MODBUS), park)
    assert [p.model_dump(exclude={"unit"}) for p in from_csv.points] == \
        [p.model_dump(exclude={"unit"}) for p in from_yaml.points]


def test_csv_errors_name_row_and_column(tmp_path):
    sheet = tmp_path / "bad.csv"
    sheet.write_text("id,address,type\nb1.pv_roof_south.ac_power_kw,100,int16\nb1.pv_roof_south.energy_kwh,x,uint32\n",
                     encoding="utf-8")
    with pytest.raises(ConfigError, match=r"row 3: column address"):
        import_csv(sheet, {"protocol": "modbus", "name": "inverter", "port": 1502})


def test_csv_overlaps_are_refused_too_and_the_cli_writes_a_valid_map(tmp_path):
    sheet = tmp_path / "overlap.csv"
    sheet.write_text("id,address,type\nb1.pv_roof_south.ac_power_kw,100,uint32\nb1.pv_roof_south.energy_kwh,101,uint32\n",
                     encoding="utf-8")
    with pytest.raises(ConfigError, match=r"row 3: column address: holding_register 101 overlaps"):
        import_csv(sheet, {"protocol": "modbus", "name": "inverter", "port": 1502})
    good = tmp_path / "good.csv"
    good.write_text("id,object_type,instance,unit\nplant.chiller1.power_kw,analog-input,1,kW\n", encoding="utf-8")
    out = tmp_path / "chiller.yaml"
    result = parktwin("points", "import", good, "--out", out, "--protocol", "bacnet", "--name", "chiller1",
                      "--port", "47808", "--device-instance", "1000")
    assert result.returncode == 0, result.stderr
    device = load_point_map(out, load_park(DEMO))
    assert (device.device_instance, device.points[0].object_type, device.points[0].unit) == (1000, "analog-input", "kW")


def test_cli_import_error_shows_the_id_pattern_as_it_is(tmp_path):
    """The pattern's character classes ([a-z]) reach the terminal, not eaten as rich markup."""
    sheet = tmp_path / "bad.csv"
    sheet.write_text("id,address,type\nPower KW,100,int16\n", encoding="utf-8")
    result = parktwin("points", "import", sheet, "--out", tmp_path / "out.yaml", "--protocol", "modbus", "--name",
                      "x", "--port", "1502")
    assert result.returncode == 2 and "row 2: column id" in result.stderr
    assert r"'^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$'" in result.stderr


SECOND_INVERTER_MAP = """\
protocol: modbus
name: inverter_b
port: 1503
points:
  - {id: b1.pv_roof_south.cell_temp_c, address: 100, type: int16, scale: 0.1, unit: degC}
  - {id: b1.pv_roof_south.energy_kwh, address: 102, type: uint32, unit: kWh}
"""


def test_two_maps_feeding_one_twin_point_are_refused_naming_both_files_and_the_point(tmp_path, park):
    first = write(tmp_path, GOOD_MODBUS, "a_inverter.yaml")
    second = write(tmp_path, SECOND_INVERTER_MAP, "b_inverter.yaml")
    with pytest.raises(ConfigError) as info:
        load_point_maps(tmp_path, park)
    message = str(info.value)
    assert f"point 'b1.pv_roof_south.energy_kwh' is fed by more than one point map: {first}, {second}" in message
    assert "ac_power_kw" not in message  # the points fed once are not named
    second.write_text(SECOND_INVERTER_MAP.replace("b1.pv_roof_south.energy_kwh", "b1.pv_roof_south.poa_irradiance_wm2"))
    assert [m.name for m in load_point_maps(tmp_path, park)] == ["inverter", "inverter_b"]


def test_cli_validate_refuses_a_point_fed_by_two_maps_given_or_in_the_parks_folder(tmp_path):
    first = write(tmp_path, GOOD_MODBUS, "a_inverter.yaml")
    second = write(tmp_path, SECOND_INVERTER_MAP, "b_inverter.yaml")
    both = parktwin("points", "validate", str(first), str(second))
    assert both.returncode == 2 and "Traceback" not in both.stderr
    assert "'b1.pv_roof_south.energy_kwh' is fed by more than one point map" in both.stderr
    assert str(first) in both.stderr and str(second) in both.stderr
    # one new map, checked against the demo park's own folder, whose pv_roof_south map feeds the same points
    against_park = parktwin("points", "validate", str(first), "--park", str(DEMO))
    assert against_park.returncode == 2
    assert "'b1.pv_roof_south.ac_power_kw' is fed by more than one point map" in against_park.stderr
    assert "pv_roof_south.yaml" in against_park.stderr
    # a map of the park's folder validated with --park is not compared with itself
    own = Path(load_park(DEMO).point_maps) / "pv_roof_south.yaml"
    alone = parktwin("points", "validate", str(own), "--park", str(DEMO))
    assert alone.returncode == 0, alone.stderr
