"""Forecasts for the optimizer's horizon: PV per array (pvlib) and loads per subsystem (learned from history).

Loads, hourly means:

- ``cooling_load_kwth``: the buildings' cooling load, measured as chilled
  water made directly (chillers in chilled-water mode) plus cooling delivered
  by melting ice;
- ``lighting_kw``, ``elevators_kw``, ``ev_kw``: electric power of those subsystems.

:class:`LoadForecaster` fits, per load, a least-squares regression on the
hour of the day for weekdays and for weekends (48 indicator columns), the
cooling degrees above 16 degC and the global horizontal irradiance, from at
least :data:`MIN_HISTORY_DAYS` days of hourly history (weather from the park's
weather station). With less history the **fallback profile**
(:func:`rated_load_profile`) is used instead: the buildings' design cooling
load scaled by occupancy, outdoor temperature and sun
(:func:`twin.plant.cooling_load_kwth`); lighting at 90 % of rated power
while a building is at least 30 % occupied and at its night fraction
otherwise; elevators at idle power plus half their rated power times the
traffic profile; EV charging at the park's sessions per charger per day times
:data:`FALLBACK_EV_SESSION_KWH`, spread over the arrival profile.

Forecast error on a held-back period is reported as MAPE (hours whose actual
value is at least 5 % of the mean) and CV(RMSE) = RMSE / mean of actual (the
ASHRAE Guideline 14 measure; 30 % is its hourly calibration limit).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pvlib

from energy.environment import ParkEnvironment, pv_params
from energy.pv import pv_model_outputs_many
from energy.weather import read_tmy3_weather, resample_weather
from twin.assets import Chiller, Elevator, EVCharger, IceTank, Lighting, PVArray, WeatherStation
from twin.history import History
from twin.park import Park
from twin.plant import COOLING_BALANCE_TEMP_C, MODE_DIRECT, cooling_load_kwth
from twin.points import point_id
from twin.profiles import EV_ARRIVAL_WEIGHT_PER_DAY_H, elevator_traffic, ev_arrival_weight, occupancy_fraction
from twin.subsystems import power_points

FORECAST_COLUMNS = ("cooling_load_kwth", "other_load_kw", "pv_available_kw", "outdoor_temp_c")
"""Columns every forecast has, each the mean over [timestamp, timestamp + step): the buildings' cooling
load (kWth), every electric load but the chillers (kW), PV AC power available before curtailment (kW),
outdoor air temperature (degC). A forecaster may add columns (per subsystem, per PV array)."""

LOADS = ("cooling_load_kwth", "lighting_kw", "elevators_kw", "ev_kw")
"""The loads forecast, hourly means."""

MIN_HISTORY_DAYS = 3
"""Days of hourly history below which the fallback profile is used."""

FALLBACK_EV_SESSION_KWH = 20.0
"""Energy of an average EV charging session in the fallback profile, kWh."""

MAPE_MIN_SHARE = 0.05
"""Hours whose actual value is below this share of the mean are left out of MAPE (it divides by the actual)."""

RIDGE = 1e-6
"""Ridge weight (relative to the feature scale) that keeps the regression solvable with few days."""


def _asset_points(park: Park, cls: type, name: str) -> list[str]:
    return [point_id(building.id, asset.id, name) for building, asset in park.iter_assets() if isinstance(asset, cls)]


def hourly_load_history(history: History, park: Park, start: datetime, end: datetime) -> pd.DataFrame:
    """Hourly means of :data:`LOADS` plus ``temp_air_c`` and ``ghi_wm2`` (weather station) from history.

    Hours without any reading are left out. Raises ValueError when the park
    has no weather station.
    """
    stations = park.assets_of(WeatherStation)
    if not stations:
        raise ValueError("load forecasts learn from the weather station's readings; the park has none")
    station_building = park.building_of(stations[0].id).id
    groups = power_points(park)
    chillers = [(point_id(b.id, c.id, "cooling_kwth"), point_id(b.id, c.id, "mode"))
                for b, c in park.iter_assets() if isinstance(c, Chiller)]
    ice = _asset_points(park, IceTank, "cooling_delivered_kwth")
    weather = [point_id(station_building, stations[0].id, "outdoor_temp_c"),
               point_id(station_building, stations[0].id, "ghi_wm2")]
    ids = [p for pair in chillers for p in pair] + ice + weather
    ids += groups["lighting"] + groups["elevators"] + groups["ev"]
    wide = history.query_wide(ids, start, end)
    if wide.empty:
        return pd.DataFrame(columns=[*LOADS, "temp_air_c", "ghi_wm2"])
    direct = sum((wide[cool].fillna(0.0) * (wide[mode] == MODE_DIRECT) for cool, mode in chillers),
                 start=pd.Series(0.0, index=wide.index))
    minute = pd.DataFrame({
        "cooling_load_kwth": direct + wide[ice].fillna(0.0).sum(axis=1),
        "lighting_kw": wide[groups["lighting"]].fillna(0.0).sum(axis=1),
        "elevators_kw": wide[groups["elevators"]].fillna(0.0).sum(axis=1),
        "ev_kw": wide[groups["ev"]].fillna(0.0).sum(axis=1),
        "temp_air_c": wide[weather[0]],
        "ghi_wm2": wide[weather[1]],
    })
    return minute.resample("1h").mean().dropna(how="any")


def _features(index_utc: pd.DatetimeIndex, temp_air_c: np.ndarray, ghi_wm2: np.ndarray, timezone: str) -> np.ndarray:
    """Design matrix: 48 hour-of-day x (weekday, weekend) indicators, cooling degrees, GHI in kW/m2."""
    local = index_utc.tz_convert(timezone)
    slot = np.asarray(local.hour) + 24 * np.asarray(local.weekday >= 5)
    indicators = np.zeros((len(index_utc), 48))
    indicators[np.arange(len(index_utc)), slot] = 1.0
    cooling_degrees = np.clip(np.asarray(temp_air_c, dtype=float) - COOLING_BALANCE_TEMP_C, 0.0, None)
    return np.column_stack([indicators, cooling_degrees, np.asarray(ghi_wm2, dtype=float) / 1000.0])


@dataclass
class LoadForecaster:
    """Hourly load forecasts for a park: regression on history, or the fallback profile.

    ``coefficients``: per load, the regression coefficients (None: fallback).
    """

    park: Park
    coefficients: dict[str, np.ndarray] | None
    trained_hours: int

    @property
    def method(self) -> str:
        return "regression" if self.coefficients is not None else "fallback profile"

    @classmethod
    def fit(cls, park: Park, hourly: pd.DataFrame) -> "LoadForecaster":
        """Fit on :func:`hourly_load_history` output; fewer than MIN_HISTORY_DAYS days gives the fallback."""
        if len(hourly) < MIN_HISTORY_DAYS * 24:
            return cls(park, None, len(hourly))
        x = _features(pd.DatetimeIndex(hourly.index), hourly["temp_air_c"].to_numpy(), hourly["ghi_wm2"].to_numpy(),
                      park.site.timezone)
        gram = x.T @ x
        ridge = RIDGE * np.trace(gram) / gram.shape[0] * np.eye(gram.shape[0])
        coefficients = {load: np.linalg.solve(gram + ridge, x.T @ hourly[load].to_numpy()) for load in LOADS}
        return cls(park, coefficients, len(hourly))

    def predict(self, index_utc: pd.DatetimeIndex, temp_air_c: np.ndarray, ghi_wm2: np.ndarray) -> pd.DataFrame:
        """Hourly mean :data:`LOADS` starting at each time of ``index_utc`` for that hour's weather; never below 0."""
        if self.coefficients is None:
            return rated_load_profile(self.park, index_utc, temp_air_c, ghi_wm2)
        x = _features(index_utc, temp_air_c, ghi_wm2, self.park.site.timezone)
        return pd.DataFrame({load: np.clip(x @ beta, 0.0, None) for load, beta in self.coefficients.items()},
                            index=index_utc)


def rated_load_profile(park: Park, index_utc: pd.DatetimeIndex, temp_air_c: np.ndarray,
                       ghi_wm2: np.ndarray) -> pd.DataFrame:
    """The fallback profile (module docstring) from the park file's ratings and schedules."""
    local = index_utc.tz_convert(park.site.timezone)
    hours = np.asarray(local.hour + local.minute / 60.0) + 0.5  # middle of each hour
    weekend = np.asarray(local.weekday >= 5)
    rows = {load: np.zeros(len(index_utc)) for load in LOADS}
    for i, (hour, is_weekend, temp_c, ghi) in enumerate(zip(hours, weekend, temp_air_c, ghi_wm2)):
        for building in park.buildings:
            occupancy = occupancy_fraction(building.occupancy, hour, bool(is_weekend))
            rows["cooling_load_kwth"][i] += cooling_load_kwth(building.cooling_design_load_kwth, temp_c, ghi, occupancy)
            for light in building.assets_of(Lighting):
                rows["lighting_kw"][i] += light.rated_kw * (0.9 if occupancy >= 0.3 else light.night_fraction)
            for lift in building.assets_of(Elevator):
                traffic = elevator_traffic(hour) * max(occupancy, 0.05)
                rows["elevators_kw"][i] += lift.idle_kw + 0.5 * lift.rated_kw * traffic
        sessions_per_h = (park.simulation.ev_sessions_per_charger_per_day * len(park.assets_of(EVCharger))
                          * ev_arrival_weight(hour) / EV_ARRIVAL_WEIGHT_PER_DAY_H)
        rows["ev_kw"][i] = sessions_per_h * FALLBACK_EV_SESSION_KWH
    return pd.DataFrame(rows, index=index_utc)


def forecast_errors(actual: pd.Series, predicted: pd.Series) -> dict[str, float]:
    """MAPE and CV(RMSE), both in %, of hourly forecasts against actual values (module docstring)."""
    actual_values, predicted_values = actual.to_numpy(float), predicted.reindex(actual.index).to_numpy(float)
    mean = actual_values.mean()
    counted = actual_values >= MAPE_MIN_SHARE * mean
    mape = 100.0 * np.mean(np.abs(predicted_values[counted] - actual_values[counted]) / actual_values[counted])
    cv_rmse = 100.0 * np.sqrt(np.mean((predicted_values - actual_values) ** 2)) / mean
    return {"mape_pct": float(mape), "cv_rmse_pct": float(cv_rmse)}


def pv_forecast_kw(park: Park, weather: pd.DataFrame, index_utc: pd.DatetimeIndex) -> pd.DataFrame:
    """Mean AC power of each PV array (kW) over the hour starting at each time of ``index_utc``.

    ``weather``: :data:`energy.weather.WEATHER_COLUMNS` at 15-minute steps
    covering the hours; the pvlib model (:mod:`energy.pv`) runs at those
    steps and is averaged per hour.
    """
    arrays = {a.id: pv_params(a) for a in park.assets_of(PVArray)}
    site = park.site
    outputs = pv_model_outputs_many(arrays, weather, site.latitude_deg, site.longitude_deg, site.altitude_m)
    frame = pd.DataFrame({array_id: out["ac_kw"] for array_id, out in outputs.items()}, index=weather.index)
    return frame.resample("1h").mean().reindex(index_utc)


def forecast_weather(park: Park, start_utc: datetime, hours: int, weather: pd.DataFrame | None = None) -> pd.DataFrame:
    """Weather at 15-minute steps over the horizon: from a weather frame (e.g. a CSV) when given, else the
    park's own weather source (clear sky with clouds, or TMY3)."""
    index = pd.date_range(pd.Timestamp(start_utc), periods=hours * 4, freq="15min", name="ts_utc")
    if weather is None:
        return ParkEnvironment(park).weather(index)
    return resample_weather(weather, index)


def annual_pv_energy_kwh(park: Park, tmy3_path: str | Path, year: int = 2023) -> dict[str, float]:
    """Annual AC energy (kWh) of each PV array of the park over a full TMY3 year.

    The arrays are placed at the TMY3 file's own site (latitude, longitude,
    altitude from its header), since the weather belongs there; the file's
    typical year is stamped onto ``year`` (see :func:`energy.weather.read_tmy3_weather`).
    Each hourly value is the hour's mean, so energy = sum of AC kW x 1 h.
    """
    _, meta = pvlib.iotools.read_tmy3(tmy3_path, map_variables=True)
    weather = read_tmy3_weather(tmy3_path, year)
    arrays = {a.id: pv_params(a) for a in park.assets_of(PVArray)}
    outputs = pv_model_outputs_many(arrays, weather, meta["latitude"], meta["longitude"], meta["altitude"])
    return {array_id: float(out["ac_kw"].sum()) for array_id, out in outputs.items()}
