"""Every input-file loader, fed 200 mutations of a real file: it returns a valid object or raises ConfigError.

Nothing else may escape (such as UnicodeDecodeError, RecursionError, ValueError from a 100,000-digit
integer, TypeError from a list where a scalar goes), and an accepted file holds no NaN or infinite
number. The demo park's files are the seeds; the loaders without an example file (prices, inputs,
users, thresholds, weather CSV) start from the small valid files written below, TMY3 weather from
pvlib's sample file.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pvlib
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from input_mutations import csv_mutations, extreme_numbers, non_finite_numbers, yaml_mutations
from park_copies import DEMO_PARK_DIR

from dashboard.auth import UserStore
from energy.environment import ParkEnvironment
from energy.fault_rules import load_fault_thresholds
from energy.prices import PRICE_LIMIT_CNY_PER_KWH, load_price_csv
from energy.tariff import load_tariff
from energy.weather import read_tmy3_weather, read_weather_csv
from optimizer.inputs import read_inputs_csv
from protocols.pointmap import import_csv, load_point_map
from twin.config import ConfigError, load_park
from twin.faults_file import load_faults
from twin.sim import ParkSimulator

TZ = "Asia/Shanghai"
PARK = load_park(DEMO_PARK_DIR / "park.yaml")

PRICES_CSV = "timestamp,price_cny_per_kwh\n" + "".join(
    f"2026-07-01T{h:02d}:00+08:00,{0.25 if h < 8 else 1.1 if 10 <= h < 12 or 14 <= h < 19 else 0.65}\n"
    for h in range(24))
INPUTS_CSV = "timestamp,cooling_load_kwth,pv_available_kw,other_load_kw,price_cny_per_kwh,outdoor_temp_c\n" + "".join(
    f"2026-07-01T{q // 4:02d}:{15 * (q % 4):02d},{3000 + 10 * q},{max(0, 800 - abs(q - 48) * 20)},{1500 + q},"
    f"{0.25 if q < 32 else 1.1},{28 + q / 20:.2f}\n" for q in range(96))
WEATHER_CSV = "time,ghi,temp_air,wind_speed\n" + "".join(
    f"2026-07-01T{h:02d}:00+08:00,{max(0, 900 - abs(h - 12) * 150)},{27 + h / 4:.2f},2.5\n" for h in range(24))
REGISTER_SHEET_CSV = """\
id,address,type,scale,unit,writable,low_limit,high_limit,description
plant.battery.power_kw,40084,int16,0.001,kW,,,,positive discharging
plant.battery.soc_pct,40130,uint16,,%,,,,
plant.battery.stored_energy_kwh,40150,float32,,kWh,,,,
plant.battery.power_setpoint_kw,40156,float32,,kW,true,-1000,1000,positive discharge
"""
THRESHOLDS_YAML = """\
stale_poll_periods: 3
comm_lost_poll_periods: 3
debounce_poll_periods: 2
startup_grace_s: 120
chw_delta_t_min_k: 2.2
battery_cell_temp_max_c: 50
alarms:
  elevator_out_of_service: {priority: critical, off_delay_minutes: 30}
  chw_low_delta_t: {priority: medium}
"""
USERS_YAML = """\
notifications:
  max_per_hour: 20
  webhook_timeout_s: 10.0
users:
  ops:
    role: operator
    password_hash: scrypt$16384$8$1$00112233445566778899aabbccddeeff$8f4a9b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a
    notify: {webhook: "http://127.0.0.1:9/hook", priorities: [critical], assets: [battery]}
  trader:
    role: trader
    password_hash: scrypt$16384$8$1$ffeeddccbbaa99887766554433221100$0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a1b
"""


def _model_numbers_finite(obj: Any) -> list[str]:
    return non_finite_numbers(obj.model_dump())


def _frame_numbers_finite(frame: pd.DataFrame | pd.Series) -> list[str]:
    values = frame.to_numpy(dtype=float)
    return [] if np.isfinite(values).all() else ["a value that is not finite"]


def _prices_finite_and_bounded(series: pd.Series) -> list[str]:
    values = series.to_numpy(dtype=float)
    return [] if np.isfinite(values).all() and (np.abs(values) <= PRICE_LIMIT_CNY_PER_KWH).all() else ["a price"]


@dataclass(frozen=True)
class Loader:
    """One loader under fuzz: its seed files, how to mutate them, how to load, what an accepted result holds."""

    name: str
    seeds: list[bytes]
    mutations: Callable[[bytes], st.SearchStrategy[bytes]]
    file_name: str
    load: Callable[[Path], Any]
    bad_numbers: Callable[[Any], list[str]]


LOADERS = [
    Loader("park", [(DEMO_PARK_DIR / "park.yaml").read_bytes()], yaml_mutations, "park.yaml",
           load_park, _model_numbers_finite),
    Loader("point map", [(DEMO_PARK_DIR / "pointmaps" / name).read_bytes()
                         for name in ("chiller1.yaml", "battery.yaml", "pv_roof_south.yaml")],
           yaml_mutations, "map.yaml", lambda path: load_point_map(path, PARK), _model_numbers_finite),
    Loader("point map CSV sheet", [REGISTER_SHEET_CSV.encode()], csv_mutations, "sheet.csv",
           lambda path: import_csv(path, {"protocol": "modbus", "name": "battery", "port": 15020}),
           _model_numbers_finite),
    Loader("tariff", [(DEMO_PARK_DIR / "tariff.yaml").read_bytes()], yaml_mutations, "tariff.yaml",
           load_tariff, _model_numbers_finite),
    Loader("faults", [(DEMO_PARK_DIR / "faults.yaml").read_bytes()], yaml_mutations, "faults.yaml",
           lambda path: load_faults(path, PARK), lambda faults: non_finite_numbers([f.magnitude for f in faults])),
    Loader("users", [USERS_YAML.encode()], yaml_mutations, "users.yaml",
           UserStore.load, lambda store: non_finite_numbers(store.notification_settings.model_dump())),
    Loader("thresholds", [THRESHOLDS_YAML.encode()], yaml_mutations, "thresholds.yaml",
           load_fault_thresholds, _model_numbers_finite),
    Loader("prices", [PRICES_CSV.encode()], csv_mutations, "prices.csv",
           lambda path: load_price_csv(path, TZ), _prices_finite_and_bounded),
    Loader("inputs", [INPUTS_CSV.encode()], csv_mutations, "inputs.csv",
           lambda path: read_inputs_csv(path, TZ, 0.0), lambda horizon: _frame_numbers_finite(horizon.frame)),
    Loader("weather CSV", [WEATHER_CSV.encode()], csv_mutations, "weather.csv",
           lambda path: read_weather_csv(path, PARK.site.latitude_deg, PARK.site.longitude_deg, tz=TZ)[0],
           _frame_numbers_finite),
]

TMY3_TWO_DAYS = b"".join((Path(pvlib.__file__).parent / "data" / "723170TYA.CSV").read_bytes().splitlines(
    keepends=True)[:50])
"""pvlib's Greensboro TMY3 file cut to its two header lines and first 48 hours (a whole year is slow to read
for every case)."""
TMY3_LOADER = Loader("TMY3 weather", [TMY3_TWO_DAYS], csv_mutations, "tmy3.csv",
                     lambda path: read_tmy3_weather(path, 2026), _frame_numbers_finite)


@pytest.fixture(scope="module")
def park_folder(tmp_path_factory) -> Path:
    """A copy of the demo park's folder: a mutated park file written into it finds its tariff and point maps."""
    folder = tmp_path_factory.mktemp("fuzz") / "demo-park"
    shutil.copytree(DEMO_PARK_DIR, folder)
    return folder


def test_every_seed_file_loads(park_folder):
    """The seeds are valid: a refusal below comes from a mutation, not from a broken seed."""
    for loader in LOADERS + [TMY3_LOADER]:
        for seed in loader.seeds:
            path = park_folder / loader.file_name
            path.write_bytes(seed)
            assert loader.bad_numbers(loader.load(path)) == [], loader.name


@pytest.mark.parametrize("loader", LOADERS, ids=[loader.name for loader in LOADERS])
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_a_mutated_file_is_loaded_valid_or_refused_with_config_error(park_folder, loader, data):
    assert_loaded_valid_or_refused(park_folder, loader, data.draw(st.sampled_from(loader.seeds).flatmap(
        loader.mutations), label="file"))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(content=csv_mutations(TMY3_TWO_DAYS))
def test_a_mutated_tmy3_file_is_loaded_valid_or_refused_with_config_error(park_folder, content):
    """TMY3 files go through pvlib's reader, slower than the others: 100 cases."""
    assert_loaded_valid_or_refused(park_folder, TMY3_LOADER, content)


def assert_loaded_valid_or_refused(park_folder: Path, loader: Loader, content: bytes) -> None:
    path = park_folder / loader.file_name
    path.write_bytes(content)
    try:
        result = loader.load(path)
    except ConfigError as exc:
        message = str(exc)
        assert message.startswith(f"{path}: ") and "Traceback" not in message
        return
    assert loader.bad_numbers(result) == []


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(content=extreme_numbers((DEMO_PARK_DIR / "park.yaml").read_bytes()))
def test_a_park_that_validates_also_simulates(park_folder, content):
    """What `parktwin validate` accepts, `simulate` runs: extreme numbers (seed -1 was one) are refused by
    the park file, or the simulator starts and steps."""
    path = park_folder / "extreme.yaml"
    path.write_bytes(content)
    try:
        park = load_park(path)
    except ConfigError:
        return
    start_utc = pd.Timestamp("2026-07-01", tz=park.site.timezone).tz_convert("UTC").to_pydatetime()
    simulator = ParkSimulator(park, ParkEnvironment(park), start_utc)
    for _ in range(3):
        simulator.advance()
