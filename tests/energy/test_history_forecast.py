"""The forecaster live plans are made on: loads learned from simulated history (real SQLite files), PV on a
weather forecast, causality, persistence against the environment's actual sky, the forecast CSV and the park
file's weather_forecast section."""

from __future__ import annotations

import os
import shutil
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from energy.environment import ParkEnvironment
from energy.forecast import (
    FORECAST_COLUMNS,
    PLANNING_LOADS,
    HistoryForecaster,
    HistoryLoadSource,
    forecast_errors,
    load_means,
)
from energy.weather_forecast import CsvWeatherForecast, PersistenceForecast, clear_sky_index_of_cover
from twin.config import ConfigError, load_park
from twin.history import open_history
from twin.kinds import Elevator, EVCharger, Lighting, PVArray
from twin.park import WeatherSource
from twin.sim import ParkSimulator
from twin.timeseries_csv import TimeSeriesCsvError

STEP = pd.Timedelta(minutes=15)


def local_midnight(sim_start_utc: datetime, day: int) -> datetime:
    return sim_start_utc + timedelta(days=day)


def measured_hourly(source, start: datetime, end: datetime) -> pd.DataFrame:
    """Hourly means of what a load history source measured in [start, end)."""
    return load_means(source.quarter_hour_loads(start, end), pd.Timedelta(hours=1))


def day_ahead_hourly(forecaster: HistoryForecaster, start: datetime) -> pd.DataFrame:
    return forecaster.forecast(start, 96, STEP).resample("1h").mean()


@pytest.fixture(scope="module")
def three_weeks(healthy_three_weeks_url):
    with open_history(healthy_three_weeks_url) as history:
        yield history


def test_day_ahead_loads_after_two_weeks_of_history_meet_ashrae_14(three_weeks, demo_park, sim_start_utc):
    source = HistoryLoadSource(three_weeks, demo_park)
    forecaster = HistoryForecaster(demo_park, source)
    predicted, actual = [], []
    for day in range(14, 21):  # each day of the third week planned at local midnight, on what came before
        start = local_midnight(sim_start_utc, day)
        frame = forecaster.forecast(start, 96, STEP)
        assert list(frame.columns[:4]) == list(FORECAST_COLUMNS)
        assert frame.index[0] == start and frame.index.freq == STEP and str(frame.index.tz) == "UTC"
        assert forecaster.method == "regression"
        predicted.append(frame.resample("1h").mean())
        actual.append(measured_hourly(source, start, start + timedelta(days=1)))
    predicted, actual = pd.concat(predicted), pd.concat(actual)
    assert len(actual) == 7 * 24
    errors = {load: forecast_errors(actual[load], predicted[load]) for load in PLANNING_LOADS}
    errors["pv"] = forecast_errors(actual["pv_kw"], predicted["pv_available_kw"])
    print("\nday-ahead, third week:", {k: {m: round(v, 2) for m, v in e.items()} for k, e in errors.items()})
    for load in PLANNING_LOADS:
        assert errors[load]["cv_rmse_pct"] < 30.0, load  # ASHRAE Guideline 14, hourly
    # persistence of a sky with scattered clouds: PV energy over the week right within 15 %
    assert predicted["pv_available_kw"].sum() == pytest.approx(actual["pv_kw"].sum(), rel=0.15)
    per_array = [f"{a.id}.pv_available_kw" for a in demo_park.assets_of(PVArray)]
    np.testing.assert_allclose(predicted[per_array].sum(axis=1), predicted["pv_available_kw"], rtol=1e-9)


def test_other_steps_are_means_of_the_same_forecast(three_weeks, demo_park, sim_start_utc):
    forecaster = HistoryForecaster(demo_park, HistoryLoadSource(three_weeks, demo_park))
    start = local_midnight(sim_start_utc, 15)
    quarter = forecaster.forecast(start, 96, STEP)
    hourly = forecaster.forecast(start, 24, pd.Timedelta(hours=1))
    pd.testing.assert_frame_equal(hourly, quarter.resample("1h").mean(), check_freq=False, check_names=False)
    # a start between grid points: each row the mean of the parts of the 15-minute periods it covers
    shifted = forecaster.forecast(start + pd.Timedelta(minutes=5), 2, STEP)
    expected = (quarter.iloc[0:2].to_numpy() * 10 + quarter.iloc[1:3].to_numpy() * 5) / 15
    np.testing.assert_allclose(shifted.to_numpy(), expected, rtol=1e-9)


def test_fallback_profile_while_history_is_short_has_the_ratings_magnitudes(three_weeks, demo_park, sim_start_utc):
    source = HistoryLoadSource(three_weeks, demo_park)
    start = local_midnight(sim_start_utc, 2)  # two days of history, fewer than MIN_HISTORY_DAYS
    forecaster = HistoryForecaster(demo_park, source)
    hourly = day_ahead_hourly(forecaster, start)
    assert forecaster.method == "fallback profile"
    actual = measured_hourly(source, start, start + timedelta(days=1))
    buildings = demo_park.buildings
    # other loads: at least the plug loads' base, at most every rating at once
    floor_kw = sum(b.plug_load_base_kw for b in buildings)
    ceiling_kw = (sum(b.plug_load_peak_kw for b in buildings) + sum(a.rated_kw for a in demo_park.assets_of(Lighting))
                  + sum(a.rated_kw for a in demo_park.assets_of(Elevator))
                  + sum(a.power_max_kw for a in demo_park.assets_of(EVCharger)))
    assert hourly["other_load_kw"].min() >= floor_kw
    assert hourly["other_load_kw"].max() <= ceiling_kw
    cooling_ceiling = sum(b.cooling_design_load_kwth for b in buildings) * (1.25 + 0.10)
    assert 0 < hourly["cooling_load_kwth"].max() <= cooling_ceiling
    assert hourly["pv_available_kw"].max() <= sum(a.inverter_ac_kw for a in demo_park.assets_of(PVArray))
    # the ratings' profile is no forecast of this park's day, but its energy is in the right range
    for load in PLANNING_LOADS:
        ratio = hourly[load].sum() / actual[load].sum()
        print(f"\nfallback {load}: forecast / actual energy of the day {ratio:.3f}")
        assert 0.7 < ratio < 1.3, load
    assert hourly["other_load_kw"].idxmax().tz_convert("Asia/Shanghai").hour in range(8, 20)  # office hours


def test_history_after_the_start_does_not_change_the_forecast(healthy_three_weeks_url, demo_park, sim_start_utc,
                                                              tmp_path):
    start = local_midnight(sim_start_utc, 15) + timedelta(hours=7, minutes=15)  # a re-plan in the morning
    changed_url = f"sqlite:///{tmp_path / 'changed.sqlite'}"
    shutil.copy(healthy_three_weeks_url.removeprefix("sqlite:///"), changed_url.removeprefix("sqlite:///"))

    def forecast(url: str) -> pd.DataFrame:
        with open_history(url) as history:
            return HistoryForecaster(demo_park, HistoryLoadSource(history, demo_park)).forecast(start, 96, STEP)

    def scale_readings(url: str, begin: datetime, end: datetime) -> None:
        with open_history(url) as history:
            readings = history.query(history.point_ids(), begin, end)
            readings["value"] = readings["value"] * 1.5
            history.append_frame(readings)

    original = forecast(healthy_three_weeks_url)
    scale_readings(changed_url, start, start + timedelta(days=2))
    pd.testing.assert_frame_equal(forecast(changed_url), original)
    # the same change before the start does change it: the comparison can see a difference
    scale_readings(changed_url, start - timedelta(days=1), start)
    assert not np.allclose(forecast(changed_url).to_numpy(), original.to_numpy())


def simulated_park_history(park, url: str, start: datetime, days: int) -> ParkEnvironment:
    environment = ParkEnvironment(park)
    simulator = ParkSimulator(park, environment, start)
    with open_history(url) as store:
        for frame in simulator.run(start + timedelta(days=days)):
            store.append_frame(frame)
    return environment


@pytest.mark.parametrize("cloudiness, ghi_tolerance", [(0.0, 0.02), (0.7, 0.25)])
def test_persistence_follows_yesterdays_sky_on_clear_and_cloudy_days(demo_park, sim_start_utc, tmp_path, cloudiness,
                                                                     ghi_tolerance):
    park = demo_park.model_copy(update={"weather": WeatherSource(source="clearsky", cloudiness=cloudiness)})
    url = f"sqlite:///{tmp_path / 'sky.sqlite'}"
    environment = simulated_park_history(park, url, sim_start_utc, 1)
    issued = pd.Timestamp(sim_start_utc + timedelta(days=1))
    index = pd.date_range(issued, periods=96, freq=STEP) + STEP / 2
    with open_history(url) as history:
        measured = measured_hourly(HistoryLoadSource(history, park), issued - pd.Timedelta(hours=24), issued)
    persistence = PersistenceForecast(park)
    forecast = persistence.weather(issued, index, measured)
    actual = environment.weather(index)
    clear = persistence.clear_sky(index)["ghi"]
    yesterday = pd.date_range(issued - pd.Timedelta(hours=24), issued, freq="1min", inclusive="left")
    yesterday_clearness = (environment.weather(yesterday)["ghi_wm2"].sum()
                           / persistence.clear_sky(yesterday)["ghi"].sum())
    forecast_clearness = forecast["ghi_wm2"].sum() / clear.sum()
    ratio = forecast["ghi_wm2"].sum() / actual["ghi_wm2"].sum()
    print(f"\ncloudiness {cloudiness}: yesterday's clearness {yesterday_clearness:.3f}, forecast's "
          f"{forecast_clearness:.3f}, forecast / actual GHI of the next day {ratio:.3f}, "
          f"temperature RMSE {np.sqrt(np.mean((forecast['temp_air_c'] - actual['temp_air_c']) ** 2)):.2f} K")
    # the station's yesterday, carried forward
    assert forecast_clearness == pytest.approx(yesterday_clearness, abs=0.02)
    # the next day's sky differs from yesterday's as much as the simulator's clouds vary from day to day
    assert ratio == pytest.approx(1.0, abs=ghi_tolerance)
    if cloudiness == 0.0:
        np.testing.assert_allclose(forecast["ghi_wm2"], clear, rtol=0.02, atol=1.0)
    else:
        assert forecast_clearness < 0.8
    # same hour yesterday, as measured by the station: within a kelvin of the next day's air
    np.testing.assert_allclose(forecast["temp_air_c"], actual["temp_air_c"], atol=1.0)
    # the components close like the environment's: GHI = DNI cos(zenith) + DHI
    zenith = persistence.location.get_solarposition(index)["apparent_zenith"]
    np.testing.assert_allclose(forecast["dni_wm2"] * np.cos(np.radians(zenith)) + forecast["dhi_wm2"],
                               forecast["ghi_wm2"], atol=1e-6)


def test_persistence_without_station_history_uses_the_parks_climate(demo_park, sim_start_utc):
    persistence = PersistenceForecast(demo_park)
    issued = pd.Timestamp(sim_start_utc)
    index = pd.date_range(issued, periods=96, freq=STEP)
    empty = pd.DataFrame(columns=["temp_air_c", "ghi_wm2"], index=pd.DatetimeIndex([], tz="UTC"), dtype=float)
    forecast = persistence.weather(issued, index, empty)
    clear = persistence.clear_sky(index)["ghi"]
    expected_k = clear_sky_index_of_cover(demo_park.weather.cloudiness)
    assert forecast["ghi_wm2"].sum() == pytest.approx(expected_k * clear.sum(), rel=1e-6)
    assert forecast["temp_air_c"].mean() == pytest.approx(28.9, abs=0.3)  # Shenzhen's July normal


def write_csv(path: Path, rows: list[str]) -> None:
    path.write_text("\n".join(["timestamp,ghi_wm2,dni_wm2,dhi_wm2,temp_air_c,wind_speed_ms", *rows]) + "\n")


def forecast_rows(start_local: str, hours: int, temp_c: float) -> list[str]:
    times = pd.date_range(start_local, periods=hours, freq="1h", tz="Asia/Shanghai")
    return [f"{t.isoformat()},0,0,0,{temp_c},1.0" for t in times]


def test_forecast_csv_is_reread_when_it_changes_and_bad_rows_name_file_and_line(demo_park, three_weeks, sim_start_utc,
                                                                                  tmp_path):
    path = tmp_path / "forecast.csv"
    write_csv(path, forecast_rows("2026-07-15T00:00", 48, 30.0))
    park = demo_park.model_copy(update={"weather_forecast": demo_park.weather_forecast.model_copy(
        update={"source": "csv", "file": str(path)})})
    forecaster = HistoryForecaster(park, HistoryLoadSource(three_weeks, park))
    assert isinstance(forecaster.weather, CsvWeatherForecast)
    start = local_midnight(sim_start_utc, 14)
    first = forecaster.forecast(start, 96, STEP)
    assert np.allclose(first["outdoor_temp_c"], 30.0) and (first["pv_available_kw"] == 0).all()

    write_csv(path, forecast_rows("2026-07-15T00:00", 48, 33.5))  # the site's job refreshed the file
    os.utime(path, ns=(1, 1))  # a different modification time even on coarse file-system clocks
    forecaster_again = forecaster.forecast(start + timedelta(hours=6), 24, STEP)
    assert np.allclose(forecaster_again["outdoor_temp_c"], 33.5)
    assert forecaster_again["cooling_load_kwth"].mean() > first.iloc[24:48]["cooling_load_kwth"].mean()

    rows = forecast_rows("2026-07-15T00:00", 48, 30.0)
    rows[2] = rows[2].replace(",30.0,", ",warm,")  # file line 4: the header is line 1
    write_csv(path, rows)
    with pytest.raises(TimeSeriesCsvError, match=r"forecast\.csv: line 4, column temp_air_c: not a number: 'warm'"):
        forecaster.forecast(start + timedelta(hours=12), 24, STEP)
    with pytest.raises(TimeSeriesCsvError, match=r"forecast\.csv: line 4"):
        HistoryForecaster(park, HistoryLoadSource(three_weeks, park))


def test_forecast_csv_that_ends_too_soon_is_continued_by_persistence(demo_park, three_weeks, sim_start_utc, tmp_path):
    path = tmp_path / "short.csv"
    write_csv(path, forecast_rows("2026-07-15T00:00", 12, 30.0))
    weather = CsvWeatherForecast(demo_park, path)
    forecaster = HistoryForecaster(demo_park, HistoryLoadSource(three_weeks, demo_park), weather=weather)
    frame = forecaster.forecast(local_midnight(sim_start_utc, 14), 96, STEP)
    assert np.allclose(frame["outdoor_temp_c"].iloc[:44], 30.0)
    assert frame["pv_available_kw"].iloc[48:].max() > 100.0  # persistence's sun in the afternoon
    assert any("by persistence" in note for note in weather.notes)


@pytest.fixture
def park_file(demo_dir, tmp_path):
    """Write the demo park with a weather_forecast section (and other changes) into tmp_path; return its path."""

    def write(section: str, replace: tuple[str, str] = ("", "")) -> Path:
        text = (demo_dir / "park.yaml").read_text()
        text = text.replace("tariff: tariff.yaml", f"tariff: {demo_dir / 'tariff.yaml'}")
        text = text.replace("point_maps: pointmaps", f"point_maps: {demo_dir / 'pointmaps'}")
        text = text.replace(*replace).replace("simulation:\n", section + "simulation:\n", 1)
        path = tmp_path / "park.yaml"
        path.write_text(text)
        return path

    return write


def test_park_file_weather_forecast_section_is_validated(park_file, tmp_path):
    assert load_park(park_file("")).weather_forecast.source == "persistence"
    (tmp_path / "forecast.csv").write_text("timestamp,ghi,temp_air\n2026-07-01T00:00+08:00,0,27\n")
    csv_park = load_park(park_file("weather_forecast: {source: csv, file: forecast.csv}\n"))
    assert csv_park.weather_forecast.file == str(tmp_path / "forecast.csv")

    cases = [
        ("weather_forecast: {source: csv}\n", "weather_forecast: source csv needs file"),
        ("weather_forecast: {source: radar}\n",
         "weather_forecast.source: Input should be 'persistence', 'csv' or 'tmy'"),
        ("weather_forecast: {source: persistence, file: forecast.csv}\n",
         "weather_forecast: file is only read by source csv, not persistence"),
        ("weather_forecast: {source: tmy}\n",
         "weather_forecast.source: source tmy forecasts the park's TMY3 weather, but weather.source is clearsky"),
        ("weather_forecast: {source: csv, file: missing.csv}\n",
         f"weather_forecast.file: file not found: {tmp_path / 'missing.csv'}"),
        ("weather_forecast: {source: csv, file: forecast.csv, refresh: 6}\n",
         "weather_forecast.refresh: unknown field"),
    ]
    for section, message in cases:
        with pytest.raises(ConfigError) as caught:
            load_park(park_file(section))
        text = str(caught.value)
        assert str(tmp_path / "park.yaml") in text and message in text, text


def test_a_park_without_weather_station_learns_on_estimated_weather_and_a_first_sunday_is_not_guessed(
        demo_dir, sim_start_utc, tmp_path):
    park = load_park(demo_dir.parent / "pv-battery" / "park.yaml")  # no weather station
    url = f"sqlite:///{tmp_path / 'pv_battery.sqlite'}"
    simulated_park_history(park, url, sim_start_utc, 5)
    start = local_midnight(sim_start_utc, 4)  # Sunday 5 July; history Wednesday to Saturday
    with open_history(url) as history:
        source = HistoryLoadSource(history, park)
        assert measured_hourly(source, start - timedelta(days=1), start)["temp_air_c"].isna().all()
        forecaster = HistoryForecaster(park, source)
        hourly = day_ahead_hourly(forecaster, start)
        actual = measured_hourly(source, start, start + timedelta(days=1))
    assert forecaster.method == "regression"
    # the regression was fitted before Saturday's daytime: Sunday's daytime hours come from the fallback profile
    assert not forecaster.model.trained_slots[24 + 12]
    errors = forecast_errors(actual["other_load_kw"], hourly["other_load_kw"])
    print(f"\npv-battery park, first Sunday: {errors}")
    assert errors["cv_rmse_pct"] < 30.0
