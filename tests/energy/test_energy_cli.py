"""`parktwin forecast`, `kpi` and `faults` end to end on a simulated week; bad input exits 2 with the reason."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from pathlib import Path

import pvlib
import pytest
from cli_support import CliResult, parktwin

from energy.forecast import annual_pv_energy_kwh
from twin.history import FaultEpisodeStore, open_history

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "examples" / "demo-park" / "park.yaml"
TMY3 = Path(pvlib.__file__).parent / "data" / "723170TYA.CSV"


def timed(*args: str) -> tuple[CliResult, float]:
    began = time.perf_counter()
    result = parktwin(*args)
    return result, time.perf_counter() - began


def test_kpi_json_of_the_week_reports_the_grid_import_of_the_raw_readings(faulty_week_url, sim_start_utc):
    result, seconds = timed("kpi", DEMO, "--from", "2026-07-01", "--to", "2026-07-08", "--history", faulty_week_url,
                            "--json", "--baseline-cost", "300000")
    assert result.returncode == 0, result.stderr
    print(f"\nparktwin kpi over a simulated week: {seconds:.2f} s")
    kpis = json.loads(result.stdout)
    with open_history(faulty_week_url) as history:
        grid = history.query_wide(["plant.grid_meter.power_kw"], sim_start_utc, sim_start_utc + timedelta(days=7))
    assert kpis["grid_import_kwh"] == pytest.approx(grid.iloc[:, 0].clip(lower=0).sum() / 60, rel=1e-9)
    assert kpis["savings_cny"] == pytest.approx(300000 - kpis["cost_cny"])
    assert kpis["hours"] == 168


def test_kpi_reports_storage_cooling_net_and_ice_apart_in_its_table_and_json(both_storages_day, sim_start_utc):
    park_file, url = both_storages_day
    period = ("--from", "2026-07-01", "--to", "2026-07-02", "--history", url)
    result = parktwin("kpi", park_file, *period, "--json")
    assert result.returncode == 0, result.stderr
    kpis = json.loads(result.stdout)
    flow_points = ("plant.ice_tank.melt_kwth", "plant.chw_tank.charge_kwth", "plant.chw_tank.discharge_kwth")
    with open_history(url) as history:
        flows = history.query_wide(list(flow_points), sim_start_utc, sim_start_utc + timedelta(days=1))
    melt_kwhth, charge_kwhth, discharge_kwhth = (flows[pid].sum() / 60 for pid in flow_points)  # 1-minute readings
    assert kpis["ice_cooling_delivered_kwhth"] == pytest.approx(0.95 * melt_kwhth, rel=1e-9)
    assert kpis["storage_cooling_delivered_kwhth"] == pytest.approx(0.95 * melt_kwhth + discharge_kwhth - charge_kwhth,
                                                                    rel=1e-9)
    table = parktwin("kpi", park_file, *period)
    assert table.returncode == 0, table.stderr
    rows = {line.split("│")[1].strip(): line.split("│")[2].strip() for line in table.stdout.splitlines()
            if line.count("│") == 4}
    assert rows["cooling from storage (net)"] == f"{kpis['storage_cooling_delivered_kwhth']:,.0f} kWhth"
    assert rows["ice used (melt)"] == f"{kpis['ice_melt_kwhth']:,.0f} kWhth"
    assert rows["cooling from ice"] == f"{kpis['ice_cooling_delivered_kwhth']:,.0f} kWhth"


def test_faults_json_lists_the_weeks_episodes_and_stores_them_once(faulty_week_url, sim_start_utc):
    args = ("faults", DEMO, "--from", "2026-07-01", "--to", "2026-07-08", "--history", faulty_week_url, "--json")
    result, seconds = timed(*args)
    assert result.returncode == 0, result.stderr
    print(f"\nparktwin faults over a simulated week: {seconds:.2f} s")
    report = json.loads(result.stdout)
    rules = {e["rule_id"] for e in report["episodes"]}
    assert {"chiller_low_cop", "device_comm_lost", "battery_overtemp", "sensor_flatline"} <= rules
    assert report["kpis_per_asset"]["ev5"]["comm_losses"] == 1
    assert parktwin(*args).returncode == 0  # again: the store keeps one row per episode
    with open_history(faulty_week_url) as history:
        stored = FaultEpisodeStore(history).overlapping(sim_start_utc, sim_start_utc + timedelta(days=7))
    assert len(stored) == len(report["episodes"])


def test_forecast_json_gives_hourly_pv_and_loads_and_the_annual_tmy_figure(faulty_week_url, demo_park):
    result = parktwin("forecast", DEMO, "--start", "2026-07-08T06:00", "--hours", "12", "--history", faulty_week_url,
                      "--annual-tmy", TMY3, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["load_method"] == "regression" and len(report["times_utc"]) == 12
    assert set(report["pv_kw"]) == {"pv_plant_roof", "pv_roof_south", "pv_roof_east", "pv_roof_west"}
    noon = report["times_utc"].index("2026-07-08T04:00:00+00:00")  # 12:00 local
    assert report["pv_kw"]["pv_roof_south"][noon] > 100 and report["pv_kw"]["pv_roof_south"][0] < 20
    assert all(len(values) == 12 and min(values) >= 0 for values in report["loads"].values())
    assert report["pv_annual_tmy"]["arrays_kwh"] == pytest.approx(annual_pv_energy_kwh(demo_park, TMY3))
    plan = report["plan_inputs"]  # what a live plan would be made on: the HistoryForecaster, hour by hour
    assert plan["weather_forecast"] == "persistence" and plan["load_method"] == "regression"
    assert all(len(plan[c]) == 12 and min(plan[c]) >= 0 for c in ("cooling_load_kwth", "other_load_kw",
                                                                  "pv_available_kw"))
    assert plan["pv_available_kw"][noon] > 300


def test_forecast_from_a_ghi_only_weather_file_says_what_it_derived(tmp_path):
    csv = tmp_path / "weather.csv"
    csv.write_text("time,ghi,temp_air\n" + "".join(
        f"2026-07-08T{h:02d}:00,{max(0, 900 - 90 * abs(h - 12))},{28 + (h > 10)}\n" for h in range(24)))
    result = parktwin("forecast", DEMO, "--start", "2026-07-08T08:00", "--hours", "8", "--weather", csv, "--json",
                      "--history", f"sqlite:///{tmp_path / 'empty.sqlite'}")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert any("Erbs" in note for note in report["weather_notes"])
    assert report["load_method"] == "fallback profile" and max(report["pv_kw"]["pv_roof_south"]) > 100
    assert report["plan_inputs"]["load_method"] == "fallback profile"
    assert report["plan_inputs"]["outdoor_temp_c"][-1] == pytest.approx(29.0)  # the file's weather


@pytest.mark.parametrize("args, message", [
    (("kpi", DEMO, "--from", "2026-07-32", "--to", "2026-08-02"), "--from: '2026-07-32' is not a date"),
    (("kpi", DEMO, "--from", "2026-07-05", "--to", "2026-07-01"), "--to 2026-07-01 must be after --from"),
    (("faults", DEMO, "--from", "yesterday", "--to", "2026-07-02"), "--from: 'yesterday'"),
    (("forecast", DEMO, "--start", "2026-07-01T25:00", "--hours", "4"), "--start: '2026-07-01T25:00'"),
    (("forecast", DEMO, "--start", "2026-07-01T00:00", "--hours", "4", "--weather", "missing.csv"), "missing.csv"),
])
def test_bad_dates_and_files_exit_2_with_the_reason(args, message, tmp_path):
    result = parktwin(*args, "--history", f"sqlite:///{tmp_path / 'h.sqlite'}")
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr


def test_a_price_file_with_a_gap_exits_2_naming_the_line(tmp_path, faulty_week_url):
    prices = tmp_path / "prices.csv"
    prices.write_text("timestamp,price_cny_per_kwh\n2026-07-01T00:00,0.3\n2026-07-01T01:00,0.3\n2026-07-01T03:00,0.3\n")
    result = parktwin("kpi", DEMO, "--from", "2026-07-01", "--to", "2026-07-02", "--history", faulty_week_url,
                      "--prices", prices)
    assert result.returncode == 2
    assert "line 4, column timestamp: gap of 0 days 02:00:00" in result.stderr and "Traceback" not in result.stderr


def test_day_ahead_prices_in_local_time_price_the_import(tmp_path, faulty_week_url, sim_start_utc):
    prices = tmp_path / "prices.csv"  # a flat 0.5 CNY/kWh day in the park's local time
    prices.write_text("timestamp,price_cny_per_kwh\n" + "".join(f"2026-07-01T{h:02d}:00,0.5\n" for h in range(24)))
    result = parktwin("kpi", DEMO, "--from", "2026-07-01", "--to", "2026-07-02", "--history", faulty_week_url,
                      "--prices", prices, "--json")
    assert result.returncode == 0, result.stderr
    kpis = json.loads(result.stdout)
    assert sum(kpis["energy_cost_by_period_cny"].values()) == pytest.approx(0.5 * kpis["grid_import_kwh"], rel=1e-9)
    short = parktwin("kpi", DEMO, "--from", "2026-07-01", "--to", "2026-07-03", "--history", faulty_week_url,
                     "--prices", prices)
    assert short.returncode == 2 and "do not cover the period" in short.stderr


def test_kpi_of_a_period_without_history_fails_with_exit_1(tmp_path):
    result = parktwin("kpi", DEMO, "--from", "2026-07-01", "--to", "2026-07-02",
                      "--history", f"sqlite:///{tmp_path / 'empty.sqlite'}")
    assert result.returncode == 1 and "no readings" in result.stderr
