"""Forecasts: load regression on a held-back simulated week, the fallback profile, and the annual PV energy of
the demo arrays on a TMY year against an independent PVWatts calculation written here."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
import pandas as pd
import pvlib
import pytest

from energy.forecast import (
    LOADS,
    LoadForecaster,
    annual_pv_energy_kwh,
    forecast_errors,
    hourly_load_history,
    rated_load_profile,
)
from energy.weather import read_tmy3_weather
from twin.history import open_history
from twin.kinds import Lighting
from twin.kinds.base import AssetBase, M, PowerGroup
from twin.kinds.simulation import Simulation, Stage
from twin.points import PointSpec

TMY3 = Path(pvlib.__file__).parent / "data" / "723170TYA.CSV"  # Greensboro NC, shipped with pvlib


@pytest.fixture(scope="module")
def fortnight(healthy_fortnight_url, demo_park, sim_start_utc):
    """Hourly loads of the first (training) and second (held-back) simulated week."""
    with open_history(healthy_fortnight_url) as history:
        train = hourly_load_history(history, demo_park, sim_start_utc, sim_start_utc + timedelta(days=7))
        test = hourly_load_history(history, demo_park, sim_start_utc + timedelta(days=7),
                                   sim_start_utc + timedelta(days=14))
    return train, test


def test_errors_follow_their_definitions_on_a_small_example():
    actual = pd.Series([100.0, 200.0, 0.0, 100.0])  # mean 100; the 0 is below 5 % of it, left out of MAPE
    predicted = pd.Series([110.0, 180.0, 20.0, 100.0])
    errors = forecast_errors(actual, predicted)
    assert errors["mape_pct"] == pytest.approx(100 * (0.1 + 0.1 + 0.0) / 3)
    assert errors["cv_rmse_pct"] == pytest.approx(100 * np.sqrt((100 + 400 + 400 + 0) / 4) / 100)


def test_load_regression_on_a_held_back_week_meets_ashrae_14_and_beats_the_fallback_on_ev(fortnight, demo_park):
    train, test = fortnight
    assert len(train) == len(test) == 168
    model = LoadForecaster.fit(demo_park, train)
    assert model.method == "regression"
    predicted = model.predict(pd.DatetimeIndex(test.index), test["temp_air_c"].to_numpy(), test["ghi_wm2"].to_numpy())
    fallback = rated_load_profile(demo_park, pd.DatetimeIndex(test.index), test["temp_air_c"].to_numpy(),
                                  test["ghi_wm2"].to_numpy())
    errors = {load: forecast_errors(test[load], predicted[load]) for load in LOADS}
    fallback_errors = {load: forecast_errors(test[load], fallback[load]) for load in LOADS}
    print()
    for label, table in (("regression", errors), ("fallback", fallback_errors)):
        print(f"held-back week, {label}:", {k: {m: round(v, 2) for m, v in e.items()} for k, e in table.items()})
    for load in ("cooling_load_kwth", "lighting_kw", "elevators_kw"):
        assert errors[load]["cv_rmse_pct"] < 30.0, load  # ASHRAE Guideline 14, hourly
    # EV sessions arrive at random: hourly error stays large, but learning from history must still help
    assert errors["ev_kw"]["cv_rmse_pct"] < fallback_errors["ev_kw"]["cv_rmse_pct"]


def test_with_two_days_of_history_the_fallback_profile_is_used_and_follows_the_ratings(fortnight, demo_park):
    train, _ = fortnight
    model = LoadForecaster.fit(demo_park, train.iloc[:48])
    assert model.method == "fallback profile"
    # 03:00 and 10:00 local on Thursday 2 July; lighting from the park file by hand:
    # the energy centre is staffed around the clock (0.9 x 12 kW); the towers' circuits at night run at their
    # night fractions: 180 x 0.1 + 60 x 0.35 + 140 x 0.1 + 45 x 0.35; by day all at 0.9 x (12 + 180 + 60 + 140 + 45)
    index = pd.DatetimeIndex([pd.Timestamp("2026-07-01T19:00Z"), pd.Timestamp("2026-07-02T02:00Z")])
    loads = model.predict(index, np.array([26.0, 30.0]), np.array([0.0, 600.0]))
    assert list(loads["lighting_kw"]) == pytest.approx([10.8 + 18 + 21 + 14 + 15.75, 0.9 * 437])


def reference_pvwatts_annual_kwh(array, weather: pd.DataFrame, lat: float, lon: float, alt: float) -> float:
    """PVWatts v5 (Dobos 2014) written out here: Perez transposition, physical IAM on the beam, SAPM cell
    temperature (open rack glass/polymer), PVWatts DC, 14 % losses, PVWatts inverter. pvlib is used only for
    the solar position, extraterrestrial irradiance, air mass, Perez sky diffuse and the Fresnel IAM."""
    solar = pvlib.solarposition.get_solarposition(weather.index, lat, lon, alt, temperature=weather["temp_air_c"])
    dni_extra = pvlib.irradiance.get_extra_radiation(weather.index)
    airmass = pvlib.atmosphere.get_relative_airmass(solar["apparent_zenith"])
    tilt, azimuth = np.radians(array.tilt_deg), np.radians(array.azimuth_deg)
    zenith, sun_az = np.radians(solar["apparent_zenith"].to_numpy()), np.radians(solar["azimuth"].to_numpy())
    cos_aoi = np.cos(zenith) * np.cos(tilt) + np.sin(zenith) * np.sin(tilt) * np.cos(sun_az - azimuth)
    aoi_deg = np.degrees(np.arccos(np.clip(cos_aoi, -1, 1)))
    dni, ghi, dhi = (weather[c].to_numpy() for c in ("dni_wm2", "ghi_wm2", "dhi_wm2"))
    beam = np.clip(dni * cos_aoi, 0, None)
    sky = pvlib.irradiance.perez(array.tilt_deg, array.azimuth_deg, dhi, dni, dni_extra.to_numpy(),
                                 solar["apparent_zenith"].to_numpy(), solar["azimuth"].to_numpy(), airmass.to_numpy())
    ground = ghi * 0.25 * (1 - np.cos(tilt)) / 2  # albedo 0.25
    poa = beam + np.nan_to_num(sky) + ground
    effective = beam * pvlib.iam.physical(aoi_deg) + np.nan_to_num(sky) + ground
    wind, temp_air = weather["wind_speed_ms"].to_numpy(), weather["temp_air_c"].to_numpy()
    cell_c = poa * np.exp(-3.56 - 0.075 * wind) + temp_air + poa / 1000 * 3.0  # King et al. 2004
    dc_w = effective / 1000 * array.dc_capacity_kw * 1000 * (1 + array.gamma_pdc_per_c * (cell_c - 25)) * 0.86
    pdc0_w = array.inverter_ac_kw * 1000 / 0.96
    zeta = np.where(dc_w > 0, dc_w / pdc0_w, 1.0)
    eta = 0.96 / 0.9637 * (-0.0162 * zeta - 0.0059 / zeta + 0.9858)
    ac_w = np.where(dc_w > 0, np.minimum(eta * dc_w, array.inverter_ac_kw * 1000), 0.0)
    return float(np.nansum(ac_w) / 1000)  # hourly means x 1 h


def test_annual_pv_energy_of_the_demo_arrays_matches_an_independent_pvwatts_within_1_percent(demo_park):
    from twin.kinds import PVArray

    _, meta = pvlib.iotools.read_tmy3(TMY3, map_variables=True)
    weather = read_tmy3_weather(TMY3, 2023)
    model = annual_pv_energy_kwh(demo_park, TMY3, 2023)
    lines = []
    for array in demo_park.assets_of(PVArray):
        reference = reference_pvwatts_annual_kwh(array, weather, meta["latitude"], meta["longitude"], meta["altitude"])
        lines.append(f"{array.id}: model {model[array.id]:,.0f} kWh, reference {reference:,.0f} kWh, "
                     f"{100 * (model[array.id] / reference - 1):+.3f} %")
        assert model[array.id] == pytest.approx(reference, rel=0.01)
        assert 1000 < model[array.id] / array.dc_capacity_kw < 1700  # plausible specific yield, kWh/kWp
    print("\n" + "\n".join(lines))


class Floodlight(AssetBase):
    """Yard floodlights, always on: a kind of the lighting subsystem that no forecast code names."""

    kind: Literal["floodlight"] = "floodlight"
    power_point: ClassVar[str] = "power_kw"
    power_groups: ClassVar[tuple[PowerGroup, ...]] = Lighting.power_groups
    simulation: ClassVar[Simulation] = Simulation(
        Stage.BUILDING_LOAD, step=lambda members, inputs, occupancy, values: 0.0,  # not simulated here
        typical_kw=lambda light, hours: np.full(len(hours.occupancy), light.rated_kw))
    rated_kw: float

    def standard_points(self) -> list[PointSpec]:
        return [PointSpec("power_kw", "kW", M, low_limit=0)]


def test_the_fallback_sums_every_kinds_typical_power_into_its_load_subsystem(demo_park):
    index = pd.date_range("2026-07-01T00:00Z", periods=24, freq="1h")
    temp, ghi = np.full(24, 28.0), np.linspace(0.0, 800.0, 24)
    before = rated_load_profile(demo_park, index, temp, ghi)
    park = demo_park.model_copy(deep=True)
    park.buildings[2].assets.append(Floodlight(id="yard", rated_kw=7.5))
    after = rated_load_profile(park, index, temp, ghi)
    assert list(after.columns) == [*LOADS, "other_load_kw"]
    assert np.allclose(after["lighting_kw"], before["lighting_kw"] + 7.5, rtol=0, atol=1e-12)
    assert np.allclose(after["other_load_kw"], before["other_load_kw"] + 7.5, rtol=0, atol=1e-12)
    pd.testing.assert_frame_equal(after.drop(columns=["lighting_kw", "other_load_kw"]),
                                  before.drop(columns=["lighting_kw", "other_load_kw"]))
