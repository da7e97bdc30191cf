"""Absurd values in input files are refused, each by its loader, naming the field (and line) at fault.

Every case edits one value of a real demo file (or of a small valid CSV) and expects ConfigError
whose message names the file, the field and why.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from park_copies import DEMO_PARK_DIR

from dashboard.auth import UserStore, add_user
from energy.fault_rules import load_fault_thresholds
from energy.prices import load_price_csv
from energy.tariff import load_tariff
from optimizer.inputs import read_inputs_csv
from protocols.pointmap import load_point_map
from twin.config import ConfigError, load_park
from twin.faults_file import load_faults

TZ = "Asia/Shanghai"
BATTERY_SETPOINT = "low_limit: -1000.0, high_limit: 1000.0"


@pytest.fixture(scope="module")
def park():
    return load_park(DEMO_PARK_DIR / "park.yaml")


@pytest.fixture
def demo_copy(tmp_path) -> Path:
    folder = tmp_path / "demo-park"
    shutil.copytree(DEMO_PARK_DIR, folder)
    return folder


def edited(path: Path, old: str, new: str, count: int = 1) -> Path:
    """Replace ``old`` by ``new`` in the file (``old`` must occur there) and return the path."""
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} is not in {path}"
    path.write_text(text.replace(old, new, count), encoding="utf-8")
    return path


def refusal(load, *args) -> str:
    with pytest.raises(ConfigError) as caught:
        load(*args)
    return str(caught.value)


# ----------------------------------------------------------------------------- park


@pytest.mark.parametrize("value", [".inf", ".nan", "-.inf"])
def test_a_chiller_capacity_that_is_not_finite_is_refused(demo_copy, value):
    park_file = edited(demo_copy / "park.yaml", "cooling_capacity_kwth: 2110", f"cooling_capacity_kwth: {value}")
    message = refusal(load_park, park_file)
    assert re.search(r"line 32: buildings\[0 plant\]\.assets\[0 chiller1\]\.cooling_capacity_kwth: "
                     r"Input should be a finite number", message), message


@pytest.mark.parametrize("altitude", ["1e300", "-1e300", "10000"])
def test_an_altitude_off_the_earth_is_refused(demo_copy, altitude):
    """1e300 m made the clear-sky model's air pressure overflow once simulate started."""
    park_file = edited(demo_copy / "park.yaml", "altitude_m: 20", f"altitude_m: {altitude}")
    assert "line 8: site.altitude_m: Input should be " in refusal(load_park, park_file)


def test_a_negative_seed_is_refused(demo_copy):
    """numpy refuses a negative seed only once the simulator starts: the park file refuses it first."""
    park_file = edited(demo_copy / "park.yaml", "seed: 7", "seed: -1")
    message = refusal(load_park, park_file)
    assert "line 17: simulation.seed: Input should be greater than or equal to 0 (got -1)" in message


# ----------------------------------------------------------------------------- tariff


@pytest.mark.parametrize("value", [".inf", ".nan", "1e308"])
def test_a_flat_price_that_is_not_finite_or_absurd_is_refused(demo_copy, value):
    tariff = edited(demo_copy / "tariff.yaml", "flat_price_cny_per_kwh: 0.65", f"flat_price_cny_per_kwh: {value}")
    message = refusal(load_tariff, tariff)
    assert re.search(r"line 8: flat_price_cny_per_kwh: Input should be (a finite number|less than or equal to 100)",
                     message), message


@pytest.mark.parametrize("minutes", [7, 1, 45, 120])
def test_a_demand_interval_that_utilities_do_not_bill_on_is_refused(demo_copy, minutes):
    tariff = edited(demo_copy / "tariff.yaml", "demand_interval_min: 15", f"demand_interval_min: {minutes}")
    message = refusal(load_tariff, tariff)
    assert f"line 21: demand_interval_min: Input should be 15, 30 or 60 (got {minutes})" in message


@pytest.mark.parametrize("minutes", [15, 30, 60])
def test_the_demand_intervals_utilities_bill_on_are_accepted(demo_copy, minutes):
    tariff = edited(demo_copy / "tariff.yaml", "demand_interval_min: 15", f"demand_interval_min: {minutes}")
    assert load_tariff(tariff).demand_interval_min == minutes


def test_an_export_price_beyond_the_price_limit_is_refused(demo_copy):
    tariff = edited(demo_copy / "tariff.yaml", "export_price_cny_per_kwh: 0.40", "export_price_cny_per_kwh: -150")
    assert "line 22: export_price_cny_per_kwh: Input should be greater than or equal to -100" in refusal(
        load_tariff, tariff)


# ----------------------------------------------------------------------------- prices and plan inputs

PRICES = "timestamp,price_cny_per_kwh\n" + "".join(f"2026-07-01T{h:02d}:00+08:00,0.65\n" for h in range(24))
INPUTS = "timestamp,cooling_load_kwth,pv_available_kw,other_load_kw,price_cny_per_kwh\n" + "".join(
    f"2026-07-01T{q // 4:02d}:{15 * (q % 4):02d},3000,0,1500,0.65\n" for q in range(96))


def test_one_price_of_1e308_is_refused_with_its_line(tmp_path):
    prices = tmp_path / "prices.csv"
    prices.write_text(PRICES.replace("T05:00+08:00,0.65", "T05:00+08:00,1e308"), encoding="utf-8")
    message = refusal(load_price_csv, prices, TZ)
    assert "line 7, column price_cny_per_kwh: 1e+308 is beyond the limit of +-100 CNY/kWh" in message


def test_a_price_per_mwh_is_bounded_after_conversion(tmp_path):
    """200,000 CNY/MWh is 200 CNY/kWh: beyond the limit; 90,000 CNY/MWh (90 CNY/kWh) is within it."""
    prices = tmp_path / "prices.csv"
    prices.write_text(PRICES.replace("price_cny_per_kwh", "price_cny_per_mwh").replace(",0.65\n", ",90000\n")
                      .replace("T03:00+08:00,90000", "T03:00+08:00,200000"), encoding="utf-8")
    assert ("line 5, column price_cny_per_mwh: 200000 (200 CNY/kWh) is beyond the limit"
            in refusal(load_price_csv, prices, TZ))
    prices.write_text(PRICES.replace("price_cny_per_kwh", "price_cny_per_mwh").replace(",0.65\n", ",90000\n"),
                      encoding="utf-8")
    assert load_price_csv(prices, TZ).max() == pytest.approx(90.0)


@pytest.mark.parametrize(("column", "row_text", "reason"), [
    ("price_cny_per_kwh", "3000,0,1500,1e308", "1e+308 is beyond the limit of +-100 CNY/kWh"),
    ("cooling_load_kwth", "1e308,0,1500,0.65", "1e+308 is outside 0 to 1,000,000 kW"),
    ("other_load_kw", "3000,0,nan,0.65", "not finite: 'nan'"),
])
def test_an_absurd_value_in_a_plan_inputs_row_is_refused(tmp_path, column, row_text, reason):
    inputs = tmp_path / "inputs.csv"
    inputs.write_text(INPUTS.replace("T10:00,3000,0,1500,0.65", f"T10:00,{row_text}"), encoding="utf-8")
    message = refusal(read_inputs_csv, inputs, TZ, 0.0)
    assert f"line 42, column {column}: {reason}" in message, message


# ----------------------------------------------------------------------------- point maps


@pytest.mark.parametrize(("values", "field"), [
    ("low_limit: -1000.0, high_limit: .inf", "high_limit"),
    ("low_limit: .nan, high_limit: 1000.0", "low_limit"),
    ("low_limit: -.inf, high_limit: 1000.0", "low_limit"),
    ("low_limit: -1000.0, high_limit: 1000.0, scale: .nan", "scale"),
])
def test_point_map_limits_and_scale_that_are_not_finite_are_refused(demo_copy, park, values, field):
    point_map = edited(demo_copy / "pointmaps" / "battery.yaml", BATTERY_SETPOINT, values)
    message = refusal(load_point_map, point_map, park)
    assert f"line 19: points[5 plant.battery.power_setpoint_kw].{field}: Input should be a finite number" in message


def test_a_low_limit_above_high_limit_is_refused(demo_copy, park):
    """Equal limits stay allowed: they pin a point to one value (discovery's placeholder at the value in force)."""
    point_map = edited(demo_copy / "pointmaps" / "battery.yaml", BATTERY_SETPOINT, "low_limit: 6, high_limit: 5")
    message = refusal(load_point_map, point_map, park)
    assert "line 19: points[5 plant.battery.power_setpoint_kw]: low_limit 6 is above high_limit 5" in message


def test_a_list_inside_a_point_is_refused_naming_the_field(demo_copy, park):
    point_map = edited(demo_copy / "pointmaps" / "battery.yaml", "address: 40156", "address: [40156, 1]")
    message = refusal(load_point_map, point_map, park)
    assert "line 19: points[5 plant.battery.power_setpoint_kw].address: Input should be a valid integer" in message


def test_a_list_as_the_protocol_is_refused(demo_copy, park):
    point_map = edited(demo_copy / "pointmaps" / "battery.yaml", "protocol: modbus", "protocol: [modbus]")
    assert "protocol: required, one of 'modbus' or 'bacnet' (got ['modbus'])" in refusal(
        load_point_map, point_map, park)


# ----------------------------------------------------------------------------- faults

COP_DROP = "magnitude: 0.7"


@pytest.mark.parametrize("magnitude", ["0", "-0.5", ".nan", "1e308", "1.5"])
def test_a_cop_drop_magnitude_outside_zero_to_one_is_refused(demo_copy, park, magnitude):
    """A multiplier of 0 made the simulator divide by zero; above 1 is no drop."""
    faults = edited(demo_copy / "faults.yaml", COP_DROP, f"magnitude: {magnitude}")
    message = refusal(load_faults, faults, park)
    assert re.search(r"line 5: faults\[0\]\.magnitude: (Input should be a finite number|"
                     r"\S+ is outside \(0, 1\]: the multiplier of the chiller's COP)", message), message


@pytest.mark.parametrize(("old", "new", "line", "index", "reason"), [
    ("magnitude: 4}", "magnitude: 11}", 6, 1, "11 is outside (0, 10]: the number of strings lost"),
    ("magnitude: 1.2}", "magnitude: 6}", 9, 4, "6 is outside (0, 5.5]: the chilled-water delta-T in K"),
    ("magnitude: 22}", "magnitude: 1e308}", 12, 7, "1e+308 is outside (0, 100]"),
    ("magnitude: 22}", "magnitude: -3}", 12, 7, "-3 is outside (0, 100]"),
    ("end: 2026-07-04T20:00}", "end: 2026-07-04T20:00, magnitude: 3}", 7, 2, "sensor_flatline takes no magnitude"),
    (", magnitude: 22}", "}", 12, 7, "required for battery_overtemp"),
])
def test_fault_magnitudes_are_bounded_per_kind(demo_copy, park, old, new, line, index, reason):
    faults = edited(demo_copy / "faults.yaml", old, new)
    message = refusal(load_faults, faults, park)
    assert f"line {line}: faults[{index}].magnitude: {reason}" in message, message


@pytest.mark.parametrize("start", ["0001-01-01T00:00", "9999-12-31T23:59-08:00"])
def test_a_fault_time_beyond_the_simulated_years_is_refused(demo_copy, park, start):
    """Year 1 in Asia/Shanghai is before year 1 in UTC: the conversion overflowed."""
    faults = edited(demo_copy / "faults.yaml", "start: 2026-07-02T10:00", f"start: {start}")
    assert "line 5: faults[0].start: " in refusal(load_faults, faults, park)


def test_the_demo_faults_keep_their_magnitudes(park):
    magnitudes = {f.kind: f.magnitude for f in load_faults(DEMO_PARK_DIR / "faults.yaml", park)}
    assert magnitudes["chiller_cop_drop"] == 0.7 and magnitudes["pv_string_outage"] == 4
    assert magnitudes["sensor_flatline"] == 0.0


# ----------------------------------------------------------------------------- users


HASH = "scrypt$16384$8$1$00112233445566778899aabbccddeeff$0a1b2c"


def test_a_user_name_with_a_colon_is_refused_in_the_file_and_by_add_user(tmp_path):
    users = tmp_path / "users.yaml"
    users.write_text(f"users:\n  ops:\n    role: viewer\n    password_hash: {HASH}\n"
                     f"  'a:b':\n    role: operator\n    password_hash: {HASH}\n", encoding="utf-8")
    message = refusal(UserStore.load, users)
    assert "line 6: users.a:b (the name): user name 'a:b' must not contain ':'" in message
    with pytest.raises(ValueError, match="user name 'a:b' must not contain ':'"):
        add_user(tmp_path / "new.yaml", "a:b", "viewer", "secret")
    assert not (tmp_path / "new.yaml").exists()


@pytest.mark.parametrize("cost", ["99999999999$8$1", "16383$8$1", "2097152$8$1", "16384$8$5", "16384$0$1",
                                  "16384$17$1"])
def test_a_stored_scrypt_cost_out_of_bounds_is_refused(tmp_path, cost):
    """N must be a power of 2 up to 2**20; r 1-16; p 1-4 (dashboard.passwords)."""
    users = tmp_path / "users.yaml"
    users.write_text(f"users:\n  ops:\n    role: viewer\n    password_hash: scrypt${cost}$00ff$0a1b\n",
                     encoding="utf-8")
    message = refusal(UserStore.load, users)
    assert "line 4: users.ops.password_hash: scrypt " in message and " must be " in message


def test_the_cost_add_user_stores_is_within_the_bounds(tmp_path):
    users = tmp_path / "users.yaml"
    add_user(users, "ops", "operator", "correct horse")
    assert UserStore.load(users).sign_in("ops", "correct horse").role == "operator"


# ----------------------------------------------------------------------------- thresholds


@pytest.mark.parametrize(("line", "expected"), [
    ("stale_poll_periods: 100000000000000000000",
     "line 1: stale_poll_periods: Input should be less than or equal to 1000"),
    ("comm_lost_poll_periods: 0", "line 1: comm_lost_poll_periods: Input should be greater than or equal to 1"),
    ("battery_cell_temp_max_c: .nan", "line 1: battery_cell_temp_max_c: Input should be a finite number"),
    ("alarms: {chw_low_delta_t: {off_delay_minutes: .inf}}",
     "line 1: alarms.chw_low_delta_t.off_delay_minutes: Input should be a finite number"),
])
def test_absurd_thresholds_are_refused(tmp_path, line, expected):
    """A stale count of 10**20 polls overflowed the detector's 64-bit nanosecond holds once a run started."""
    thresholds = tmp_path / "thresholds.yaml"
    thresholds.write_text(line + "\n", encoding="utf-8")
    assert expected in refusal(load_fault_thresholds, thresholds)
