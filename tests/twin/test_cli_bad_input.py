"""`parktwin validate`, `simulate` and `plan` on bad files: exit 2, one plain message naming the file and what is
wrong, no traceback, nothing written. Run in-process through the console entry point (``cli_support``)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pvlib
import pytest
from cli_support import CliResult, parktwin
from park_copies import DEMO_PARK_DIR

TMY3 = Path(pvlib.__file__).parent / "data" / "723170TYA.CSV"  # Greensboro NC
INPUTS_HEADER = "timestamp,cooling_load_kwth,pv_available_kw,other_load_kw,price_cny_per_kwh\n"


def day_of_inputs(day: str) -> str:
    """96 rows of 15 minutes for one local day of the demo park."""
    return INPUTS_HEADER + "".join(f"{day}T{q // 4:02d}:{15 * (q % 4):02d},3000,0,1500,0.65\n" for q in range(96))


@pytest.fixture
def park_dir(tmp_path) -> Path:
    folder = tmp_path / "demo-park"
    shutil.copytree(DEMO_PARK_DIR, folder)
    return folder


def assert_bad_input(result: CliResult, *expected: str) -> None:
    code, out, err = result.returncode, result.stdout, result.stderr
    assert code == 2, (out, err)
    assert "Traceback" not in out + err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1, err  # one problem, one line
    for text in expected:
        assert text in err, err


@pytest.mark.parametrize(("damage", "expected"), [
    (lambda text: text.replace("name: ", "name: \xff\xfe", 1).encode("latin-1", "replace"),
     "line 4: byte 258 (0xff) is not UTF-8 text; save the file as UTF-8"),
    (lambda text: (text + "deep: " + "[" * 100_000 + "]" * 100_000 + "\n").encode(),
     "line 103: nested more than 32 levels deep"),
    (lambda text: text.replace("seed: 7", "seed: " + "9" * 100_000).encode(), "line 17: an integer of 100,000"),
    (lambda text: b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "line 3: byte 8 is NUL: a binary file, not text"),
    (lambda text: text.replace("seed: 7", "seed: -1").encode(), "line 17: simulation.seed: Input should be greater"),
])
def test_validate_refuses_a_damaged_park_file(park_dir, damage, expected):
    park_file = park_dir / "park.yaml"
    park_file.write_bytes(damage(park_file.read_text(encoding="utf-8")))
    assert_bad_input(parktwin("validate", park_file), f"error: {park_file}: {expected}")


def test_simulate_refuses_a_cop_drop_of_zero_before_writing_anything(park_dir, tmp_path):
    faults = park_dir / "faults.yaml"
    faults.write_text(faults.read_text(encoding="utf-8").replace("magnitude: 0.7", "magnitude: 0"), encoding="utf-8")
    history = tmp_path / "history.sqlite"
    result = parktwin("simulate", park_dir / "park.yaml", "--start", "2026-07-01", "--days", "1",
                      "--faults", faults, "--history", f"sqlite:///{history}")
    assert_bad_input(result, f"error: {faults}: line 5: faults[0].magnitude: 0 is outside (0, 1]")
    assert not history.exists()


def test_simulate_refuses_a_binary_faults_file(park_dir, tmp_path):
    faults = tmp_path / "faults.yaml"
    faults.write_bytes(bytes(range(256)))
    result = parktwin("simulate", park_dir / "park.yaml", "--start", "2026-07-01", "--faults", faults,
                      "--history", f"sqlite:///{tmp_path / 'history.sqlite'}")
    assert_bad_input(result, f"error: {faults}: line 1: byte 0 is NUL: a binary file, not text")


def test_plan_refuses_inputs_for_another_day_naming_both(park_dir, tmp_path):
    inputs = tmp_path / "inputs.csv"
    inputs.write_text(day_of_inputs("1970-01-01"), encoding="utf-8")
    result = parktwin("plan", park_dir / "park.yaml", "--date", "2026-07-01", "--inputs", inputs)
    assert_bad_input(result, f"--inputs {inputs}: the file's 96 row(s) of 15 min cover 1970-01-01 00:00 to "
                             "1970-01-02 00:00; the plan needs 2026-07-01 00:00 to 2026-07-02 00:00 (Asia/Shanghai)",
                     "(--date 2026-07-01)")


def test_plan_refuses_a_one_row_inputs_file_naming_the_rows_needed(park_dir, tmp_path):
    inputs = tmp_path / "inputs.csv"
    inputs.write_text(INPUTS_HEADER + "2026-07-01T00:00,3000,0,1500,0.65\n", encoding="utf-8")
    result = parktwin("plan", park_dir / "park.yaml", "--date", "2026-07-01", "--inputs", inputs)
    assert_bad_input(result, "the file's 1 row(s) of 15 min cover 2026-07-01 00:00 to 2026-07-01 00:15",
                     "96 rows of 15 min")


def test_plan_refuses_inputs_that_stop_before_the_end_of_the_day(park_dir, tmp_path):
    inputs = tmp_path / "inputs.csv"
    inputs.write_text("".join(day_of_inputs("2026-07-01").splitlines(keepends=True)[:-4]), encoding="utf-8")
    result = parktwin("plan", park_dir / "park.yaml", "--date", "2026-07-01", "--inputs", inputs)
    assert_bad_input(result, "the file's 92 row(s) of 15 min cover 2026-07-01 00:00 to 2026-07-01 23:00")


def test_plan_refuses_a_price_of_1e308(park_dir, tmp_path):
    prices = tmp_path / "prices.csv"
    prices.write_text("timestamp,price_cny_per_kwh\n" + "".join(
        f"2026-07-01T{h:02d}:00,{'1e308' if h == 9 else '0.65'}\n" for h in range(24)), encoding="utf-8")
    result = parktwin("plan", park_dir / "park.yaml", "--date", "2026-07-01", "--prices", prices)
    assert_bad_input(result, f"error: {prices}: line 11, column price_cny_per_kwh: 1e+308 is beyond the limit")


def test_plan_refuses_an_infinite_flat_price_in_the_tariff_naming_it(park_dir):
    tariff = park_dir / "tariff.yaml"
    tariff.write_text(tariff.read_text(encoding="utf-8").replace("flat_price_cny_per_kwh: 0.65",
                                                                 "flat_price_cny_per_kwh: .inf"), encoding="utf-8")
    result = parktwin("plan", park_dir / "park.yaml", "--date", "2026-07-01")
    assert_bad_input(result, f"error: {tariff}: line 8: flat_price_cny_per_kwh: Input should be a finite")
    assert "--prices" not in result.stderr


def test_plan_accepts_inputs_covering_the_day(park_dir, tmp_path):
    """The coverage check does not refuse a good file: the plan is made and exits 0."""
    inputs = tmp_path / "inputs.csv"
    inputs.write_text(day_of_inputs("2026-07-01"), encoding="utf-8")
    result = parktwin("plan", park_dir / "park.yaml", "--date", "2026-07-01", "--inputs", inputs)
    assert result.returncode == 0, result.stderr
    assert "Dispatch plan (optimal), 2026-07-01" in result.stdout


def test_validate_refuses_a_park_whose_tariff_is_absurd(park_dir):
    """validate reads the files the park names as plan and run will: a demand interval of 7 minutes is refused
    there, naming the tariff file, not first when a plan is made."""
    tariff = park_dir / "tariff.yaml"
    tariff.write_text(tariff.read_text(encoding="utf-8").replace("demand_interval_min: 15", "demand_interval_min: 7"),
                      encoding="utf-8")
    assert_bad_input(parktwin("validate", park_dir / "park.yaml"),
                     f"error: {tariff}: line 21: demand_interval_min: Input should be 15, 30 or 60 (got 7)")


def test_validate_refuses_a_point_map_with_an_infinite_safe_limit(park_dir):
    point_map = park_dir / "pointmaps" / "battery.yaml"
    point_map.write_text(point_map.read_text(encoding="utf-8").replace("high_limit: 1000.0", "high_limit: .inf"),
                         encoding="utf-8")
    assert_bad_input(parktwin("validate", park_dir / "park.yaml"), f"error: {point_map}: line 19: "
                     "points[5 plant.battery.power_setpoint_kw].high_limit: Input should be a finite number")


@pytest.fixture
def tmy3_park(park_dir) -> Path:
    """The demo park on TMY3 weather (a copy of pvlib's Greensboro file beside it)."""
    shutil.copy(TMY3, park_dir / "tmy3.csv")
    park_file = park_dir / "park.yaml"
    text = park_file.read_text(encoding="utf-8").replace("  source: clearsky\n",
                                                         "  source: tmy3\n  file: tmy3.csv\n", 1)
    park_file.write_text(text, encoding="utf-8")
    return park_file


def test_validate_and_simulate_refuse_a_damaged_tmy3_file(tmy3_park, tmp_path):
    result = parktwin("validate", tmy3_park)
    assert result.returncode == 0 and f"TMY3 weather {tmy3_park.parent / 'tmy3.csv'}" in result.stdout, result.stderr
    tmy3 = tmy3_park.parent / "tmy3.csv"
    lines = tmy3.read_text(encoding="utf-8").splitlines(keepends=True)
    tmy3.write_text("".join(lines[:1] + lines[2:]), encoding="utf-8")  # the column header line lost
    assert_bad_input(parktwin("validate", tmy3_park), f"error: {tmy3}: not a readable TMY3 file: ")
    history = tmp_path / "history.sqlite"
    assert_bad_input(parktwin("simulate", tmy3_park, "--start", "2026-07-01", "--history", f"sqlite:///{history}"),
                     f"error: {tmy3}: not a readable TMY3 file: ")
    assert not history.exists()


@pytest.mark.parametrize(("command", "option", "value"), [
    ("simulate", "--start", "0001-01-01"),
    ("plan", "--date", "9999-12-31"),
    ("kpi", "--from", "0001-01-01T00:00"),
])
def test_a_date_option_beyond_the_years_pandas_and_time_zones_handle_is_refused(park_dir, tmp_path,
                                                                               command, option, value):
    """Year 1 at local midnight in Asia/Shanghai is before year 1 in UTC: the conversion overflowed."""
    extra = ["--to", "2026-07-02"] if command == "kpi" else []
    history = tmp_path / "history.sqlite"
    assert_bad_input(parktwin(command, park_dir / "park.yaml", option, value, *extra,
                              *(["--history", f"sqlite:///{history}"] if command != "plan" else [])),
                     f"error: {option}: {value!r} is outside the years 1900-2199")
    assert not history.exists()
