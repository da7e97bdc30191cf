"""PV: the PVWatts chain against a hand calculation, annual yield, clipping, orientation, many arrays."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pvlib
import pytest
from pvlib.location import Location
from pvlib.modelchain import ModelChain

from energy.pv import PV_OUTPUT_COLUMNS, pv_ac_power_kw, pv_model_outputs_many, pv_system
from energy.weather import clear_sky_weather, read_tmy3_weather
from twin.kinds.pvwatts import PVWattsParams

LAT, LON, ALT = 22.53, 113.94, 10.0  # the demo park in Shenzhen
TMY3 = Path(pvlib.__file__).parent / "data" / "723170TYA.CSV"  # Greensboro NC
TMY3_LAT, TMY3_LON, TMY3_ALT = 36.1, -79.95, 273.0  # from the file's header line


def summer_day() -> pd.DataFrame:
    index = pd.date_range("2024-06-20T16:00Z", periods=1440, freq="1min")  # one local day
    return clear_sky_weather(LAT, LON, ALT, index, 28.3, 6.2)


@pytest.fixture(scope="module")
def tmy3_weather() -> pd.DataFrame:
    return read_tmy3_weather(TMY3, 2023)


def test_horizontal_array_under_diffuse_light_matches_a_hand_calculation():
    # Diffuse light only on a horizontal array: every transposition model gives POA = DHI, and
    # the incidence-angle modifier acts on the beam only, so the chain can be followed by hand.
    index = pd.DatetimeIndex([pd.Timestamp("2024-06-21T04:00Z"), pd.Timestamp("2024-06-21T05:00Z")])
    dhi_wm2 = np.array([600.0, 150.0])
    weather = pd.DataFrame({"ghi_wm2": dhi_wm2, "dni_wm2": 0.0, "dhi_wm2": dhi_wm2,
                            "temp_air_c": [30.0, 20.0], "wind_speed_ms": [1.0, 3.0]}, index=index)
    params = PVWattsParams(dc_capacity_kw=100.0, tilt_deg=0.0, azimuth_deg=180.0, inverter_ac_kw=80.0)
    out = pv_model_outputs_many({"roof": params}, weather, LAT, LON, ALT)["roof"]

    # SAPM cell temperature, open rack glass/polymer: a = -3.56, b = -0.075, dT = 3 K (King et al. 2004)
    temp_air = weather["temp_air_c"].to_numpy()
    wind = weather["wind_speed_ms"].to_numpy()
    cell_c = dhi_wm2 * np.exp(-3.56 - 0.075 * wind) + temp_air + dhi_wm2 / 1000.0 * 3.0
    # PVWatts DC with 14 % system losses, then the PVWatts inverter (Dobos 2014, eqs. 1-2)
    dc_kw = dhi_wm2 / 1000.0 * 100.0 * (1 - 0.0037 * (cell_c - 25.0)) * (1 - 0.14)
    pdc0_kw = 80.0 / 0.96
    zeta = dc_kw / pdc0_kw
    eta = 0.96 / 0.9637 * (-0.0162 * zeta - 0.0059 / zeta + 0.9858)
    ac_kw = np.minimum(eta * dc_kw, 80.0)

    np.testing.assert_allclose(out["poa_wm2"], dhi_wm2, rtol=1e-9)
    np.testing.assert_allclose(out["cell_temp_c"], cell_c, rtol=1e-9)
    np.testing.assert_allclose(out["ac_kw"], ac_kw, rtol=1e-9)
    assert 40.0 < out["ac_kw"].iloc[0] < 50.0  # 600 W/m2, warm cells, 14 % losses, ~96 % inverter


def test_annual_specific_yield_of_a_south_array_on_tmy3_is_plausible(tmy3_weather):
    params = PVWattsParams(dc_capacity_kw=1.0, tilt_deg=30.0, azimuth_deg=180.0, inverter_ac_kw=1.0)
    ac_kw = pv_ac_power_kw(params, tmy3_weather, TMY3_LAT, TMY3_LON, TMY3_ALT)
    annual_kwh = ac_kw.sum() * 1.0  # hourly rows
    # PVWatts gives about 1,400 kWh/kWp a year for a fixed south array in central North Carolina
    assert 1200.0 < annual_kwh < 1600.0
    assert (ac_kw >= 0).all() and ac_kw.max() <= 1.0


def test_south_facing_beats_flat_beats_north_facing_at_36_north(tmy3_weather):
    arrays = {
        "south": PVWattsParams(1.0, 30.0, 180.0, 1.0),
        "flat": PVWattsParams(1.0, 0.0, 180.0, 1.0),
        "north": PVWattsParams(1.0, 30.0, 0.0, 1.0),
    }
    annual_kwh = {name: out["ac_kw"].sum() for name, out in
                  pv_model_outputs_many(arrays, tmy3_weather, TMY3_LAT, TMY3_LON, TMY3_ALT).items()}
    assert annual_kwh["south"] > 1.05 * annual_kwh["flat"] > 1.05 * annual_kwh["north"]


def test_inverter_clips_ac_at_its_rating_and_output_is_zero_at_night():
    weather = summer_day()
    # hot cells and 14 % losses: 150 kWp gives under 100 kW AC at noon, so take an 80 kW inverter
    params = PVWattsParams(dc_capacity_kw=150.0, tilt_deg=10.0, azimuth_deg=180.0, inverter_ac_kw=80.0)
    out = pv_model_outputs_many({"pv": params}, weather, LAT, LON, ALT)["pv"]
    assert out["ac_kw"].max() == pytest.approx(80.0, abs=1e-9)
    assert (out["ac_kw"] >= 80.0 - 1e-9).sum() > 60  # clipped for over an hour around noon
    assert (out["ac_kw"] >= 0).all() and out.notna().all().all()
    night = weather["ghi_wm2"] == 0
    assert (out.loc[night, "ac_kw"] == 0).all() and (out.loc[night, "poa_wm2"] == 0).all()
    np.testing.assert_allclose(out.loc[night, "cell_temp_c"], weather.loc[night, "temp_air_c"])
    # an unclipped twin with a big inverter shows the clipped energy
    big = pv_ac_power_kw(PVWattsParams(150.0, 10.0, 180.0, 1000.0), weather, LAT, LON, ALT)
    assert big.max() > 90.0
    assert big.sum() > out["ac_kw"].sum() + 60 * 5.0  # more than 5 kWh clipped


def test_many_arrays_equal_single_array_runs_and_plain_pvlib():
    weather = summer_day()
    arrays = {
        "east": PVWattsParams(120.0, 15.0, 90.0, 100.0),
        "west": PVWattsParams(80.0, 15.0, 270.0, 75.0, losses_pct=10.0, gamma_pdc_per_c=-0.003),
        "facade": PVWattsParams(30.0, 90.0, 180.0, 30.0, temperature_model="close_mount_glass_glass"),
    }
    many = pv_model_outputs_many(arrays, weather, LAT, LON, ALT)
    assert set(many) == set(arrays)
    for name, params in arrays.items():
        assert list(many[name].columns) == list(PV_OUTPUT_COLUMNS)
        assert many[name].index.equals(weather.index)
        pd.testing.assert_series_equal(many[name]["ac_kw"], pv_ac_power_kw(params, weather, LAT, LON, ALT))
        # the same chain in plain pvlib, computing its own solar position
        chain = ModelChain(pv_system(params), Location(LAT, LON, altitude=ALT), dc_model="pvwatts",
                           ac_model="pvwatts", aoi_model="physical", spectral_model="no_loss",
                           losses_model="pvwatts", transposition_model="perez")
        chain.run_model(weather.rename(columns={"ghi_wm2": "ghi", "dni_wm2": "dni", "dhi_wm2": "dhi",
                                                "temp_air_c": "temp_air", "wind_speed_ms": "wind_speed"}))
        np.testing.assert_allclose(many[name]["ac_kw"], chain.results.ac.fillna(0) / 1000.0, rtol=1e-12)
        np.testing.assert_allclose(many[name]["cell_temp_c"], chain.results.cell_temperature, rtol=1e-12)
    # a vertical facade gets less light at noon than a low-tilt roof
    assert many["facade"]["poa_wm2"].max() < many["east"]["poa_wm2"].max()


def test_pvwatts_losses_total_exactly_losses_pct():
    assert pv_system(PVWattsParams(1.0, 20.0, 180.0, 1.0, losses_pct=9.5)).pvwatts_losses() == pytest.approx(9.5)
    assert pv_system(PVWattsParams(1.0, 20.0, 180.0, 1.0)).pvwatts_losses() == pytest.approx(14.0)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"dc_capacity_kw": 0.0}, "dc_capacity_kw"),
        ({"inverter_ac_kw": -1.0}, "inverter_ac_kw"),
        ({"tilt_deg": 95.0}, "tilt_deg"),
        ({"azimuth_deg": 360.0}, "azimuth_deg"),
        ({"losses_pct": 100.0}, "losses_pct"),
        ({"inverter_eta_nom": 1.2}, "inverter_eta_nom"),
        ({"temperature_model": "on_the_moon"}, "temperature_model"),
    ],
)
def test_bad_array_parameters_are_refused(kwargs, field):
    base = {"dc_capacity_kw": 10.0, "tilt_deg": 10.0, "azimuth_deg": 180.0, "inverter_ac_kw": 8.0}
    with pytest.raises(ValueError, match=field):
        PVWattsParams(**(base | kwargs))


def test_weather_without_needed_columns_or_utc_index_is_refused():
    weather = summer_day()
    params = {"pv": PVWattsParams(10.0, 10.0, 180.0, 8.0)}
    with pytest.raises(ValueError, match="wind_speed_ms"):
        pv_model_outputs_many(params, weather.drop(columns="wind_speed_ms"), LAT, LON, ALT)
    with pytest.raises(ValueError, match="UTC"):
        pv_model_outputs_many(params, weather.tz_convert("Asia/Shanghai"), LAT, LON, ALT)
