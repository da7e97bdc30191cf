"""Park YAML validation: the demo park is valid; broken files are refused whole with file, path and reason."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from cli_support import parktwin

from twin.config import ConfigError, load_park
from twin.kinds import Battery, Chiller, Elevator, EVCharger, IceTank, Lighting, Meter, PVArray

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "examples" / "demo-park" / "park.yaml"
TON_HOUR_KWH = 3.517


def write_variant(tmp_path: Path, edit) -> Path:
    data = yaml.safe_load(DEMO.read_text())
    edit(data)
    path = tmp_path / "variant.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    (tmp_path / "tariff.yaml").write_text((DEMO.parent / "tariff.yaml").read_text())
    return path


def assets(data: dict, building: str) -> list[dict]:
    return next(b for b in data["buildings"] if b["id"] == building)["assets"]


def test_demo_park_matches_the_shenzhen_brief():
    park = load_park(DEMO)
    assert len(park.buildings) >= 2
    chillers = park.assets_of(Chiller)
    assert sum(c.makes_ice for c in chillers) >= 2
    for c in chillers:
        if c.makes_ice:  # ice mode cuts capacity and COP by a quarter to a third (DOMAIN.md)
            assert 0.66 <= c.ice_capacity_kwth / c.cooling_capacity_kwth <= 0.75
            assert 0.66 <= c.ice_cop_rated / c.cop_rated <= 0.75
        assert 4.4 <= c.cop_rated <= 6.3
    (tank,) = park.assets_of(IceTank)
    assert tank.capacity_kwhth / TON_HOUR_KWH >= 1000  # thousands of ton-hours
    assert 0.1 <= tank.standing_loss_pct_per_h <= 0.25
    assert len(park.assets_of(Elevator)) >= 4
    assert len(park.assets_of(EVCharger)) >= 10
    pv = park.assets_of(PVArray)
    assert 900 <= sum(a.dc_capacity_kw for a in pv) <= 1100
    assert len({a.azimuth_deg for a in pv}) >= 3
    assert len({park.building_of(a.id).id for a in pv}) >= 2
    (battery,) = park.assets_of(Battery)
    assert battery.energy_capacity_kwh == pytest.approx(2000, rel=0.1)
    assert battery.discharge_power_max_kw == pytest.approx(1000, rel=0.1)
    meters = park.assets_of(Meter)
    assert sum(m.measures == "grid" for m in meters) == 1
    assert {park.building_of(m.id).id for m in meters if m.measures == "building"} == {b.id for b in park.buildings}
    for building in park.buildings:
        if building.cooling_design_load_kwth > 0:
            assert building.assets_of(Lighting)
    assert Path(park.tariff).is_file()


def test_point_ids_units_and_limits():
    park = load_park(DEMO)
    point = park.points["plant.chiller1.chw_setpoint_c"]
    assert point.writable and point.unit == "degC" and point.kind == "setpoint"
    assert point.within_limits(7.0) and not point.within_limits(2.0)
    assert park.points["plant.battery.power_setpoint_kw"].spec.low_limit == -1000
    for pid, p in park.points.items():
        assert pid == f"{p.building_id}.{p.asset_id}.{p.name}"
        if p.writable:
            assert p.spec.low_limit is not None and p.spec.high_limit is not None


def test_cli_validate_demo_exits_0():
    result = parktwin("validate", str(DEMO))
    assert result.returncode == 0, result.stderr
    assert "valid" in result.stdout


@pytest.mark.parametrize(
    ("edit", "path_pattern", "reason_pattern"),
    [
        (lambda d: assets(d, "plant")[0].update(cop_rated="five"),
         r"buildings\[0 plant\]\.assets\[0 chiller1\]\.cop_rated", r"valid number"),
        (lambda d: assets(d, "plant")[0].pop("cooling_capacity_kwth"),
         r"buildings\[0 plant\]\.assets\[0 chiller1\]\.cooling_capacity_kwth", r"required field is missing"),
        (lambda d: assets(d, "b1")[0].update(dc_capacity_kw=-380),
         r"buildings\[1 b1\]\.assets\[0 pv_roof_south\]\.dc_capacity_kw", r"greater than 0.*-380"),
        (lambda d: assets(d, "b1")[0].setdefault("extra_points", []).append(
            {"name": "ac_power_kw", "unit": "kW"}),
         r"buildings\[1 b1\]\.assets\[0 pv_roof_south\]\.extra_points\[0\]\.name",
         r"duplicate point id 'b1\.pv_roof_south\.ac_power_kw'"),
        (lambda d: assets(d, "b2").append({"kind": "elevator", "id": "elevator1", "rated_kw": 18}),
         r"buildings\[2 b2\]\.assets\[\d+ elevator1\]\.id", r"duplicate asset id"),
        (lambda d: assets(d, "b1").append({"kind": "heat_pump", "id": "hp1"}),
         r"buildings\[1 b1\]\.assets\[\d+ hp1\]", r"kind|tag"),
        (lambda d: d["site"].update(timezone="Mars/Olympus"), r"site", r"unknown time zone"),
        (lambda d: d.update(colour="blue"), r"colour", r"unknown field"),
        (lambda d: assets(d, "plant")[4].update(soc_min_pct=95),
         r"buildings\[0 plant\]\.assets\[4 battery\]", r"soc_min_pct must be below soc_max_pct"),
    ],
    ids=["wrong-type", "missing-field", "negative-capacity", "duplicate-point", "duplicate-asset",
         "unknown-kind", "bad-timezone", "unknown-field", "soc-window"],
)
def test_invalid_park_file_exits_2_naming_file_path_and_reason(tmp_path, edit, path_pattern, reason_pattern):
    bad = write_variant(tmp_path, edit)
    result = parktwin("validate", str(bad))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert str(bad) in result.stderr
    line = next((ln for ln in result.stderr.splitlines() if re.search(path_pattern, ln)), None)
    assert line is not None, result.stderr
    assert re.search(reason_pattern, line), line
    assert re.search(r"line \d+", line), line


def test_errors_collected_together_and_nothing_half_loaded(tmp_path):
    def two_problems(d):
        assets(d, "plant")[0]["cop_rated"] = -1
        assets(d, "b2")[0]["tilt_deg"] = 120

    with pytest.raises(ConfigError) as info:
        load_park(write_variant(tmp_path, two_problems))
    assert len(info.value.problems) == 2


def test_not_yaml_and_missing_file_exit_2(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [unclosed\n")
    result = parktwin("validate", str(broken))
    assert result.returncode == 2 and "not valid YAML" in result.stderr and "line" in result.stderr
    result = parktwin("validate", str(tmp_path / "absent.yaml"))
    assert result.returncode == 2 and "cannot read file" in result.stderr


def test_missing_tariff_file_is_named(tmp_path):
    bad = write_variant(tmp_path, lambda d: d.update(tariff="nowhere.yaml"))
    with pytest.raises(ConfigError, match="tariff: file not found"):
        load_park(bad)
