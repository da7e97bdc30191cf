"""Weather: clear sky with clouds, diurnal temperature, TMY3 re-stamping, weather CSVs, resampling."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pvlib
import pytest

from energy.weather import (
    SHENZHEN_CLIMATE,
    WEATHER_COLUMNS,
    MonthlyClimate,
    clear_sky_weather,
    read_tmy3_weather,
    read_weather_csv,
    resample_weather,
)
from twin.timeseries_csv import TimeSeriesCsvError

LAT, LON, ALT = 22.53, 113.94, 10.0  # the demo park in Shenzhen
TMY3 = Path(pvlib.__file__).parent / "data" / "723170TYA.CSV"  # Greensboro NC, UTC-5
SOLAR_HOUR_OFFSET_H = LON / 15.0  # local mean solar time = UTC + this


def minutes(start: str, days: float = 1.0) -> pd.DatetimeIndex:
    return pd.date_range(start, periods=int(days * 1440), freq="1min", tz="UTC")


def solar_hour(index_utc: pd.DatetimeIndex) -> np.ndarray:
    return np.mod(index_utc.hour + index_utc.minute / 60.0 + SOLAR_HOUR_OFFSET_H, 24.0)


def test_clear_sky_ghi_at_summer_solar_noon_is_plausible_and_zero_at_night():
    index = minutes("2024-06-20T16:00")  # local midnight to midnight, Asia/Shanghai
    weather = clear_sky_weather(LAT, LON, ALT, index, 28.3, 6.2)
    assert list(weather.columns) == list(WEATHER_COLUMNS)
    assert weather.index.equals(index)
    zenith = pvlib.solarposition.get_solarposition(index, LAT, LON, ALT)["zenith"]
    noon = zenith.idxmin()
    # the sun is almost overhead at 22.5 N on 21 June, around 12:25 local clock time
    assert zenith[noon] < 2.0
    assert noon.tz_convert("Asia/Shanghai").hour == 12
    # a humid subtropical clear sky: well below the 1360 W/m2 at the top of the atmosphere
    assert 850.0 < weather.loc[noon, "ghi_wm2"] < 1100.0
    night = weather[zenith > 95.0]
    assert len(night) > 8 * 60
    assert (night[["ghi_wm2", "dni_wm2", "dhi_wm2"]] == 0.0).all().all()
    assert (weather[["ghi_wm2", "dni_wm2", "dhi_wm2"]] >= 0.0).all().all()
    assert (weather["wind_speed_ms"] == 1.5).all()


def test_cloudy_sky_is_seeded_reduces_ghi_and_keeps_the_component_balance():
    index = minutes("2024-06-20T16:00", days=3)
    clear = clear_sky_weather(LAT, LON, ALT, index, 28.3, 6.2)
    cloudy = clear_sky_weather(LAT, LON, ALT, index, 28.3, 6.2, cloudiness=0.5, seed=7)
    pd.testing.assert_frame_equal(cloudy, clear_sky_weather(LAT, LON, ALT, index, 28.3, 6.2, cloudiness=0.5, seed=7))
    assert not cloudy.equals(clear_sky_weather(LAT, LON, ALT, index, 28.3, 6.2, cloudiness=0.5, seed=8))
    # same clouds whatever window is asked for (a simulation may ask in chunks)
    window = index[1000:1500]
    pd.testing.assert_frame_equal(cloudy.loc[window],
                                  clear_sky_weather(LAT, LON, ALT, window, 28.3, 6.2, cloudiness=0.5, seed=7))
    day = clear["ghi_wm2"] > 50.0
    clear_sky_index = cloudy["ghi_wm2"][day] / clear["ghi_wm2"][day]
    assert clear_sky_index.max() <= 1.0 + 1e-12
    assert clear_sky_index.min() >= 0.25 - 1e-12  # Kasten-Czeplak floor for full cover
    assert clear_sky_index.std() > 0.05  # clouds come and go during the day
    assert cloudy["ghi_wm2"].sum() < 0.95 * clear["ghi_wm2"].sum()
    assert (cloudy["dni_wm2"] <= clear["dni_wm2"] + 1e-9).all()
    # GHI = DNI cos(zenith) + DHI with the apparent zenith the clear-sky model used
    zenith = pvlib.location.Location(LAT, LON, altitude=ALT).get_solarposition(index)["apparent_zenith"]
    closure = cloudy["dni_wm2"] * np.cos(np.radians(zenith)) + cloudy["dhi_wm2"]
    np.testing.assert_allclose(closure, cloudy["ghi_wm2"], atol=1e-6)
    assert (cloudy["dhi_wm2"] >= 0.0).all()


def test_overcast_sky_leaves_a_quarter_of_ghi_all_diffuse():
    index = minutes("2024-06-20T16:00")
    clear = clear_sky_weather(LAT, LON, ALT, index, 28.3, 6.2)
    overcast = clear_sky_weather(LAT, LON, ALT, index, 28.3, 6.2, cloudiness=1.0)
    # Kasten and Czeplak (1980): G / G_clear = 1 - 0.75 (8/8)^3.4 = 0.25
    np.testing.assert_allclose(overcast["ghi_wm2"], 0.25 * clear["ghi_wm2"], atol=1e-9)
    assert (overcast["dni_wm2"] == 0.0).all()
    np.testing.assert_allclose(overcast["dhi_wm2"], overcast["ghi_wm2"], atol=1e-9)


def test_cloudiness_outside_0_to_1_is_refused():
    with pytest.raises(ValueError, match="cloudiness"):
        clear_sky_weather(LAT, LON, ALT, minutes("2024-06-21"), 28.3, 6.2, cloudiness=1.5)


def test_air_temperature_peaks_at_15_and_bottoms_at_6_solar_time_with_the_given_mean_and_swing():
    index = minutes("2024-01-10")
    temp_c = clear_sky_weather(LAT, LON, ALT, index, 15.4, 7.6)["temp_air_c"]
    hours = solar_hour(index)
    assert abs(hours[np.argmin(temp_c.to_numpy())] - 6.0) <= 1 / 60
    assert abs(hours[np.argmax(temp_c.to_numpy())] - 15.0) <= 1 / 60
    assert temp_c.min() == pytest.approx(15.4 - 3.8, abs=1e-4)
    assert temp_c.max() == pytest.approx(15.4 + 3.8, abs=1e-4)
    assert temp_c.mean() == pytest.approx(15.4, abs=1e-3)
    # warming in the morning, cooling in the evening
    assert temp_c[(hours > 9) & (hours < 10)].is_monotonic_increasing
    assert temp_c[(hours > 19) & (hours < 20)].is_monotonic_decreasing


def test_index_must_be_utc():
    with pytest.raises(ValueError, match="UTC"):
        clear_sky_weather(LAT, LON, ALT, pd.date_range("2024-06-21", periods=3, freq="1h"), 28.3, 6.2)
    with pytest.raises(ValueError, match="UTC"):
        clear_sky_weather(LAT, LON, ALT, pd.date_range("2024-06-21", periods=3, freq="1h", tz="Asia/Shanghai"),
                          28.3, 6.2)


def test_shenzhen_climate_normals():
    assert SHENZHEN_CLIMATE.mean_temp_c[0] == pytest.approx(15.4, abs=0.5)
    assert SHENZHEN_CLIMATE.mean_temp_c[6] == pytest.approx(28.9, abs=0.5)
    assert max(SHENZHEN_CLIMATE.mean_temp_c) == SHENZHEN_CLIMATE.mean_temp_c[6]
    assert min(SHENZHEN_CLIMATE.mean_temp_c) == SHENZHEN_CLIMATE.mean_temp_c[0]
    assert all(5.0 < swing < 10.0 for swing in SHENZHEN_CLIMATE.temp_swing_c)
    assert "China Meteorological Administration" in SHENZHEN_CLIMATE.source
    with pytest.raises(ValueError, match="12 monthly values"):
        MonthlyClimate("nowhere", (10.0,) * 11, (5.0,) * 12, "test")
    with pytest.raises(ValueError, match=">= 0"):
        MonthlyClimate("nowhere", (10.0,) * 12, (-1.0,) + (5.0,) * 11, "test")


def raw_tmy3() -> pd.DataFrame:
    """The TMY3 file read with plain pandas, independently of pvlib."""
    return pd.read_csv(TMY3, skiprows=1)


def test_tmy3_is_restamped_to_hour_midpoints_in_utc_and_keeps_the_annual_sums():
    raw = raw_tmy3()
    weather = read_tmy3_weather(TMY3, 2023)
    assert list(weather.columns) == list(WEATHER_COLUMNS)
    assert len(weather) == len(raw) == 8760
    assert str(weather.index.tz) == "UTC"
    assert weather.index.is_monotonic_increasing and weather.index.is_unique
    # the hour ending 01:00 local standard time (UTC-5) on 1 Jan is stamped at its mid-point
    assert weather.index[0] == pd.Timestamp("2023-01-01T05:30Z")
    assert weather.index[-1] == pd.Timestamp("2024-01-01T04:30Z")
    assert weather["ghi_wm2"].sum() == raw["GHI (W/m^2)"].sum()
    assert weather["dni_wm2"].sum() == raw["DNI (W/m^2)"].sum()
    assert weather["dhi_wm2"].sum() == raw["DHI (W/m^2)"].sum()
    # 21 June, hour ending 13:00 local standard time -> 12:30-05:00 -> 17:30 UTC
    row = raw.index[(raw["Date (MM/DD/YYYY)"].str.startswith("06/21/")) & (raw["Time (HH:MM)"] == "13:00")][0]
    stamp = pd.Timestamp("2023-06-21T17:30Z")
    assert weather.loc[stamp, "ghi_wm2"] == raw.loc[row, "GHI (W/m^2)"]
    # temperature is instantaneous at 12:00 and 13:00: the mid-point gets the mean
    assert weather.loc[stamp, "temp_air_c"] == pytest.approx(raw.loc[row - 1:row, "Dry-bulb (C)"].mean())
    assert weather.loc[stamp, "wind_speed_ms"] == pytest.approx(raw.loc[row - 1:row, "Wspd (m/s)"].mean())


def test_tmy3_on_a_leap_year_repeats_28_february():
    weather = read_tmy3_weather(TMY3, 2024)
    assert len(weather) == 8784
    assert weather.index.is_monotonic_increasing and weather.index.is_unique
    local = weather.tz_convert("Etc/GMT+5")  # the file's UTC-5 standard time
    feb_28 = local[(local.index.month == 2) & (local.index.day == 28)]
    feb_29 = local[(local.index.month == 2) & (local.index.day == 29)]
    assert len(feb_29) == 24
    np.testing.assert_array_equal(feb_29.to_numpy(), feb_28.to_numpy())


def write_csv(tmp_path: Path, text: str, name: str = "weather.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_csv_with_ghi_only_gets_erbs_dni_and_dhi_that_close_the_balance(tmp_path):
    index = pd.date_range("2024-06-21T00:00Z", "2024-06-21T11:00Z", freq="15min")
    ghi = clear_sky_weather(LAT, LON, ALT, index, 28.3, 6.2, cloudiness=0.4, seed=3)["ghi_wm2"].round(1)
    lines = ["timestamp,GHI,temp_air"] + [f"{t.isoformat()},{g},{30.0}" for t, g in zip(index, ghi)]
    weather, notes = read_weather_csv(write_csv(tmp_path, "\n".join(lines) + "\n"), LAT, LON, ALT)
    assert weather.index.equals(index)
    assert "dni_wm2 and dhi_wm2 derived from ghi_wm2 by Erbs decomposition" in notes
    assert any("wind_speed_ms" in note for note in notes)
    assert (weather["wind_speed_ms"] == 1.0).all()
    np.testing.assert_allclose(weather["ghi_wm2"], ghi)
    zenith = pvlib.solarposition.get_solarposition(index, LAT, LON, ALT)["zenith"]
    sun_up = zenith < 85.0
    assert sun_up.sum() > 30
    closure = weather["dni_wm2"] * np.cos(np.radians(zenith)) + weather["dhi_wm2"]
    np.testing.assert_allclose(closure[sun_up], weather["ghi_wm2"][sun_up], rtol=1e-3, atol=0.5)
    assert (weather["dhi_wm2"][sun_up] > 0).all() and (weather["dni_wm2"] >= 0).all()


def test_csv_local_times_with_tz_and_canonical_names_and_closure_for_a_missing_dni(tmp_path):
    path = write_csv(tmp_path, "time,ghi_wm2,dhi_wm2,temp_air_c,wind_speed_ms,humidity\n"
                               "2024-06-21 12:00,900,150,31.5,2.0,80\n"
                               "2024-06-21 12:01,905,151,31.6,2.1,80\n")
    weather, notes = read_weather_csv(path, LAT, LON, ALT, tz="Asia/Shanghai")
    assert weather.index[0] == pd.Timestamp("2024-06-21T04:00Z")
    assert "ignored columns: humidity" in notes
    assert "dni_wm2 derived from ghi_wm2 and dhi_wm2 by closure GHI = DNI cos(zenith) + DHI" in notes
    zenith = pvlib.solarposition.get_solarposition(weather.index, LAT, LON, ALT)["zenith"]
    np.testing.assert_allclose(weather["dni_wm2"] * np.cos(np.radians(zenith)) + weather["dhi_wm2"],
                               weather["ghi_wm2"], rtol=1e-4)
    assert weather["wind_speed_ms"].tolist() == [2.0, 2.1]


GOOD_HEADER = "time,ghi,dni,dhi,temp_air\n"
GOOD_ROW = "2024-06-21T04:00Z,900,700,200,30\n"


@pytest.mark.parametrize(
    ("text", "place", "reason"),
    [
        ("when,ghi,temp_air\n2024-06-21T04:00Z,900,30\n", "line 1", "no time column"),
        (GOOD_HEADER + GOOD_ROW + "21/06/2024 05:00,900,700,200,30\n", "line 3, column time", "cannot read time"),
        (GOOD_HEADER + GOOD_ROW + "2024-06-21T04:00Z,900,700,200,30\n", "line 3, column time", "not after"),
        (GOOD_HEADER + GOOD_ROW + "2024-06-21T03:59Z,900,700,200,30\n", "line 3, column time", "not after"),
        (GOOD_HEADER + GOOD_ROW + "2024-06-21T05:00Z,900,-3,200,30\n", "line 3, column dni", "negative"),
        (GOOD_HEADER + GOOD_ROW + "2024-06-21T05:00Z,900,700,,30\n", "line 3, column dhi", "not a number"),
        (GOOD_HEADER + "2024-06-21 12:00,900,700,200,30\n", "line 2, column time", "no UTC offset"),
        ("time,ghi,dni,dhi\n" + "2024-06-21T04:00Z,900,700,200\n", "line 1", "missing column temp_air_c"),
        ("time,dni,temp_air\n" + "2024-06-21T04:00Z,700,30\n", "line 1", "irradiance needs ghi"),
        (GOOD_HEADER, "", "no data rows"),
    ],
)
def test_bad_csv_is_refused_naming_file_place_and_reason(tmp_path, text, place, reason):
    path = write_csv(tmp_path, text, name="bad-weather.csv")
    with pytest.raises(TimeSeriesCsvError) as caught:
        read_weather_csv(path, LAT, LON, ALT)
    message = str(caught.value)
    assert isinstance(caught.value, ValueError)
    assert str(path) in message and caught.value.path == str(path)
    assert place in message
    assert reason in message


def test_csv_line_numbers_count_blank_lines(tmp_path):
    path = write_csv(tmp_path, GOOD_HEADER + GOOD_ROW + "\n" + "2024-06-21T05:00Z,900,700,-1,30\n")
    with pytest.raises(TimeSeriesCsvError, match="line 4, column dhi"):
        read_weather_csv(path, LAT, LON, ALT)


def test_resample_hourly_to_minutes_is_linear_in_time():
    hourly = read_tmy3_weather(TMY3, 2023)
    index = minutes("2023-06-21T10:00", days=0.5)
    fine = resample_weather(hourly, index)
    assert fine.index.equals(index) and list(fine.columns) == list(WEATHER_COLUMNS)
    assert fine.loc["2023-06-21T17:30Z", "ghi_wm2"] == hourly.loc["2023-06-21T17:30Z", "ghi_wm2"]
    halfway = fine.loc["2023-06-21T18:00Z"]
    expected = hourly.loc[["2023-06-21T17:30Z", "2023-06-21T18:30Z"]].mean()
    pd.testing.assert_series_equal(halfway, expected, check_names=False)
    assert (fine[["ghi_wm2", "dni_wm2", "dhi_wm2"]] >= 0).all().all()


def test_resample_refuses_to_reach_far_beyond_the_data():
    hourly = read_tmy3_weather(TMY3, 2023)
    start = minutes("2023-01-01T05:00", days=0.1)  # 30 min before the first row: held
    assert resample_weather(hourly, start).iloc[0].equals(hourly.iloc[0].rename(start[0]))
    with pytest.raises(ValueError, match="beyond the weather data"):
        resample_weather(hourly, minutes("2022-12-31T00:00"))


def test_park_environment_gives_each_moment_its_own_months_normals():
    """Asked for two local days across a month end in one index, or a day at a time, the park's
    clear-sky weather is the same, and each day's mean temperature is its own month's normal
    (Shenzhen: January 15.4 degC, February 16.6 degC)."""
    from energy.environment import ParkEnvironment
    from twin.config import load_park

    park = load_park(Path(__file__).parents[2] / "examples" / "demo-park" / "park.yaml")
    environment = ParkEnvironment(park)
    index = pd.date_range("2026-01-30 16:00", "2026-02-01 16:00", freq="10min", tz="UTC", inclusive="left")
    whole = environment.weather(index)
    january, february = environment.weather(index[:144]), environment.weather(index[144:])
    pd.testing.assert_frame_equal(whole, pd.concat([january, february]))
    assert january["temp_air_c"].mean() == pytest.approx(15.4, abs=0.3)
    assert february["temp_air_c"].mean() == pytest.approx(16.6, abs=0.3)
