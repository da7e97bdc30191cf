"""Forecasts for the optimizer's horizon: PV per array (pvlib) and loads per subsystem (learned from history).

Loads, hourly means:

- ``cooling_load_kwth``: the buildings' cooling load, measured as chilled
  water made directly (chillers in chilled-water mode) plus the cooling
  storage delivered net of what it took from the buildings' loop to charge
  (``Role.STORAGE_COOLING_DELIVERED``: melting ice, a chilled-water tank's
  discharge less its charge);
- ``<subsystem>_kw``: electric power of each load subsystem whose kinds declare the power they
  typically draw (:func:`twin.kinds.typical_load_subsystems`: ``lighting_kw``, ``elevators_kw``, ``ev_kw``).

:class:`LoadForecaster` fits, per load, a least-squares regression on the
hour of the day for weekdays and for weekends (48 indicator columns), the
cooling degrees above 16 degC and the global horizontal irradiance, from at
least :data:`MIN_HISTORY_DAYS` days of hourly history (weather from the park's
weather station). With less history the **fallback profile**
(:func:`rated_load_profile`) is used instead: the buildings' design cooling
load scaled by occupancy, outdoor temperature and sun
(:func:`twin.plant.cooling_load_kwth`); each subsystem the sum of its assets' typical power over
the day's occupancy, elevator traffic and EV arrival profiles, as their kinds declare it
(:attr:`twin.kinds.simulation.Simulation.typical_kw`); ``other_load_kw`` (every electric load but
the chillers) the buildings' plug loads by occupancy plus those subsystems.

:class:`HistoryForecaster` is the forecaster live plans are made on: the same regression on
:data:`PLANNING_LOADS` from a :class:`LoadHistorySource` (the park's history store through
:class:`HistoryLoadSource`, or a backtest's simulated field), PV from pvlib on a weather forecast
(:mod:`energy.weather_forecast`), at any step from a 15-minute grid.

Forecast error on a held-back period is reported as MAPE (hours whose actual
value is at least 5 % of the mean) and CV(RMSE) = RMSE / mean of actual (the
ASHRAE Guideline 14 measure; 30 % is its hourly calibration limit).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd
import pvlib

from energy.environment import ParkEnvironment, pv_arrays
from energy.pv import pv_model_outputs_many
from energy.weather import read_tmy3_weather, resample_weather
from energy.weather_forecast import PERSISTENCE_HOURS, WeatherForecast, station_weather_estimate, weather_forecast_for
from twin.history import History
from twin.kinds import typical_load_subsystems
from twin.kinds.base import Role
from twin.kinds.simulation import HourProfile
from twin.park import Park
from twin.plant import COOLING_BALANCE_TEMP_C, MODE_DIRECT, cooling_load_kwth
from twin.profiles import elevator_traffic, ev_arrival_weight, occupancy_fraction
from twin.subsystems import planning_load_points, planning_loads_frame, power_points

FORECAST_COLUMNS = ("cooling_load_kwth", "other_load_kw", "pv_available_kw", "outdoor_temp_c")
"""Columns every forecast has, each the mean over [timestamp, timestamp + step): the buildings' cooling
load (kWth), every electric load but the chillers (kW), PV AC power available before curtailment (kW),
outdoor air temperature (degC). A forecaster may add columns (per subsystem, per PV array)."""

SUBSYSTEM_LOADS = {group.name: f"{group.name}_kw" for group in typical_load_subsystems()}
"""The electric load forecast (kW) of each load subsystem whose kinds declare their typical power, by the
subsystem's name."""

TYPICAL_LOADS = tuple(SUBSYSTEM_LOADS.values())
"""The electric loads forecast, in the order of their subsystems."""

LOADS = ("cooling_load_kwth", *TYPICAL_LOADS)
"""The loads forecast, hourly means."""

MIN_HISTORY_DAYS = 3
"""Days of hourly history below which the fallback profile is used."""

MAPE_MIN_SHARE = 0.05
"""Hours whose actual value is below this share of the mean are left out of MAPE (it divides by the actual)."""

RIDGE = 1e-6
"""Ridge weight (relative to the feature scale) that keeps the regression solvable with few days."""


def hourly_load_history(history: History, park: Park, start: datetime, end: datetime) -> pd.DataFrame:
    """Hourly means of :data:`LOADS` plus ``temp_air_c`` and ``ghi_wm2`` (weather station) from history.

    Hours without any reading are left out. Raises ValueError when the park
    has no weather station.
    """
    stations = park.role_point_pairs(Role.OUTDOOR_TEMP, Role.GHI)
    if not stations:
        raise ValueError("load forecasts learn from the weather station's readings; the park has none")
    weather = list(stations[0])
    groups = power_points(park)
    chillers = park.role_point_pairs(Role.CHILLER_COOLING, Role.CHILLER_MODE)
    storage = park.role_points(Role.STORAGE_COOLING_DELIVERED)
    subsystems = {load: groups[name] for name, load in SUBSYSTEM_LOADS.items()}
    ids = [p for pair in chillers for p in pair] + storage + weather + [p for ps in subsystems.values() for p in ps]
    wide = history.query_wide(ids, start, end)
    if wide.empty:
        return pd.DataFrame(columns=[*LOADS, "temp_air_c", "ghi_wm2"])
    direct = sum((wide[cool].fillna(0.0) * (wide[mode] == MODE_DIRECT) for cool, mode in chillers),
                 start=pd.Series(0.0, index=wide.index))
    minute = pd.DataFrame({
        "cooling_load_kwth": direct + wide[storage].fillna(0.0).sum(axis=1),
        **{load: wide[points].fillna(0.0).sum(axis=1) for load, points in subsystems.items()},
        "temp_air_c": wide[weather[0]],
        "ghi_wm2": wide[weather[1]],
    })
    return minute.resample("1h").mean().dropna(how="any")


def _slots(index_utc: pd.DatetimeIndex, timezone: str) -> np.ndarray:
    """Local hour of the day, plus 24 on weekends: the regression's indicator column of each time."""
    local = index_utc.tz_convert(timezone)
    slots: np.ndarray = np.asarray(local.hour) + 24 * np.asarray(local.weekday >= 5)
    return slots


def _features(index_utc: pd.DatetimeIndex, temp_air_c: np.ndarray, ghi_wm2: np.ndarray, timezone: str) -> np.ndarray:
    """Design matrix: 48 hour-of-day x (weekday, weekend) indicators, cooling degrees, GHI in kW/m2."""
    slot = _slots(index_utc, timezone)
    indicators = np.zeros((len(index_utc), 48))
    indicators[np.arange(len(index_utc)), slot] = 1.0
    cooling_degrees = np.clip(np.asarray(temp_air_c, dtype=float) - COOLING_BALANCE_TEMP_C, 0.0, None)
    return np.column_stack([indicators, cooling_degrees, np.asarray(ghi_wm2, dtype=float) / 1000.0])


@dataclass
class LoadForecaster:
    """Hourly load forecasts for a park: regression on history, or the fallback profile.

    ``coefficients``: per load, the regression coefficients (None: fallback); ``loads``: the loads
    forecast (:data:`LOADS`, or :data:`PLANNING_LOADS`); ``trained_slots``: which of the 48 hour-of-day
    x (weekday, weekend) slots the history held. A time in a slot it did not (weekend hours before
    the first weekend has passed) takes the fallback profile: the regression knows nothing of it.
    """

    park: Park
    coefficients: dict[str, np.ndarray] | None
    trained_hours: int
    loads: tuple[str, ...] = LOADS
    trained_slots: np.ndarray | None = None

    @property
    def method(self) -> str:
        return "regression" if self.coefficients is not None else "fallback profile"

    @classmethod
    def fit(cls, park: Park, hourly: pd.DataFrame, loads: tuple[str, ...] = LOADS) -> LoadForecaster:
        """Fit on hourly history with ``loads``, ``temp_air_c`` and ``ghi_wm2`` (e.g. :func:`hourly_load_history`);
        fewer than MIN_HISTORY_DAYS days gives the fallback."""
        if len(hourly) < MIN_HISTORY_DAYS * 24:
            return cls(park, None, len(hourly), loads)
        x = _features(pd.DatetimeIndex(hourly.index), hourly["temp_air_c"].to_numpy(), hourly["ghi_wm2"].to_numpy(),
                      park.site.timezone)
        gram = x.T @ x
        ridge = RIDGE * np.trace(gram) / gram.shape[0] * np.eye(gram.shape[0])
        coefficients = {load: np.linalg.solve(gram + ridge, x.T @ hourly[load].to_numpy()) for load in loads}
        return cls(park, coefficients, len(hourly), loads, np.asarray(x[:, :48].any(axis=0)))

    def predict(self, index_utc: pd.DatetimeIndex, temp_air_c: np.ndarray, ghi_wm2: np.ndarray,
                step: pd.Timedelta = pd.Timedelta(hours=1)) -> pd.DataFrame:
        """Mean loads over [t, t + step) for each time t of ``index_utc`` and that period's weather; never below 0.

        The regression gives each period its hour of the day's value for the period's weather (a
        15-minute step takes the hour it lies in); the fallback profile is taken at the period's middle.
        """
        if self.coefficients is None or self.trained_slots is None:  # fitted with coefficients, or neither
            return rated_load_profile(self.park, index_utc, temp_air_c, ghi_wm2, step)[list(self.loads)]
        x = _features(index_utc, temp_air_c, ghi_wm2, self.park.site.timezone)
        predicted = pd.DataFrame({load: np.clip(x @ beta, 0.0, None) for load, beta in self.coefficients.items()},
                                 index=index_utc)
        unknown = ~self.trained_slots[_slots(index_utc, self.park.site.timezone)]
        if unknown.any():
            fallback = rated_load_profile(self.park, index_utc[unknown], np.asarray(temp_air_c)[unknown],
                                          np.asarray(ghi_wm2)[unknown], step)
            predicted.loc[unknown] = fallback[list(self.loads)].to_numpy()
        return predicted


def rated_load_profile(park: Park, index_utc: pd.DatetimeIndex, temp_air_c: np.ndarray,
                       ghi_wm2: np.ndarray, step: pd.Timedelta = pd.Timedelta(hours=1)) -> pd.DataFrame:
    """The fallback profile (module docstring) from the park file's ratings and schedules, at the middle of
    each period [t, t + step): :data:`LOADS` and ``other_load_kw`` (plug loads + :data:`TYPICAL_LOADS`)."""
    local = index_utc.tz_convert(park.site.timezone)
    hours = np.asarray(local.hour + local.minute / 60.0) + step / pd.Timedelta(hours=1) / 2.0
    weekend = np.asarray(local.weekday >= 5)
    # the schedules are scalar functions of (hour, weekend): evaluated once per distinct pair
    pairs, row_pair = np.unique(np.column_stack([hours, weekend]), axis=0, return_inverse=True)
    row_pair = np.asarray(row_pair).reshape(-1)
    occupancy = {b.id: np.array([occupancy_fraction(b.occupancy, h, bool(w)) for h, w in pairs])[row_pair]
                 for b in park.buildings}
    traffic = np.array([elevator_traffic(h) for h, _ in pairs])[row_pair]
    arrival = np.array([ev_arrival_weight(h) for h, _ in pairs])[row_pair]
    temp_air_c, ghi_wm2 = np.asarray(temp_air_c, dtype=float), np.asarray(ghi_wm2, dtype=float)
    rows = {load: np.zeros(len(index_utc)) for load in (*LOADS, "plug_kw")}
    for building in park.buildings:
        occ = occupancy[building.id]
        rows["cooling_load_kwth"] += cooling_load_kwth(building.cooling_design_load_kwth, temp_air_c, ghi_wm2, occ)
        rows["plug_kw"] += building.plug_load_base_kw + (building.plug_load_peak_kw - building.plug_load_base_kw) * occ
        profile = HourProfile(occ, traffic, arrival, park.simulation)
        for asset in building.assets:
            group = asset.power_group()
            if asset.simulation is not None and asset.simulation.typical_kw is not None and group is not None:
                rows[SUBSYSTEM_LOADS[group.name]] += asset.simulation.typical_kw(asset, profile)
    frame = pd.DataFrame({load: rows[load] for load in LOADS}, index=index_utc)
    frame["other_load_kw"] = sum((rows[load] for load in TYPICAL_LOADS), start=rows["plug_kw"])
    return frame


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
    arrays = pv_arrays(park)
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
    arrays = pv_arrays(park)
    outputs = pv_model_outputs_many(arrays, weather, meta["latitude"], meta["longitude"], meta["altitude"])
    return {array_id: float(out["ac_kw"].sum()) for array_id, out in outputs.items()}


PLANNING_LOADS = ("cooling_load_kwth", "other_load_kw")
"""The loads a dispatch plan is made for (:func:`twin.subsystems.planning_loads_frame`)."""

LOAD_HISTORY_COLUMNS = (*PLANNING_LOADS, "pv_kw", "temp_air_c", "ghi_wm2")
"""Columns of :meth:`LoadHistorySource.quarter_hour_loads`."""

LOAD_HISTORY_STEP = pd.Timedelta(minutes=15)
"""Period of the means a :class:`LoadHistorySource` gives: a dispatch plan's step."""


class LoadHistorySource(Protocol):
    """The park's measured past, as a :class:`HistoryForecaster` learns from it."""

    def quarter_hour_loads(self, start_utc: datetime, end_utc: datetime) -> pd.DataFrame:
        """Means over each quarter hour (:data:`LOAD_HISTORY_STEP`) of :data:`LOAD_HISTORY_COLUMNS`
        (:func:`twin.subsystems.planning_loads_frame`'s columns) in [start_utc, end_utc) (both on hour
        boundaries), on a UTC DatetimeIndex of quarter-hour starts. Quarters with no data are left out;
        ``temp_air_c`` and ``ghi_wm2`` are NaN where the weather station has no reading (or the park has
        none)."""
        ...


class HistoryLoadSource:
    """:class:`LoadHistorySource` read from a history store."""

    def __init__(self, history: History, park: Park):
        self.history = history
        self.park = park
        self.point_ids = [pid for ids in planning_load_points(park).values() for pid in ids]

    def quarter_hour_loads(self, start_utc: datetime, end_utc: datetime) -> pd.DataFrame:
        wide = self.history.query_wide(self.point_ids, start_utc, end_utc)
        if wide.empty:
            return pd.DataFrame(columns=list(LOAD_HISTORY_COLUMNS), index=pd.DatetimeIndex([], tz="UTC"), dtype=float)
        return load_means(planning_loads_frame(self.park, wide), LOAD_HISTORY_STEP)


def load_means(loads: pd.DataFrame, period: pd.Timedelta) -> pd.DataFrame:
    """Means over each ``period`` of a frame of :data:`LOAD_HISTORY_COLUMNS` (readings or finer means),
    periods without a planning load left out."""
    means = loads.resample(period).mean()
    means.index = pd.DatetimeIndex(means.index).as_unit("ns")
    return means.dropna(subset=list(PLANNING_LOADS), how="all")[list(LOAD_HISTORY_COLUMNS)]


BASE_STEP = LOAD_HISTORY_STEP
"""Step of the grid a :class:`HistoryForecaster` computes on; requested steps are averaged from it."""

HOUR = pd.Timedelta(hours=1)


def _quarter_slots(index_utc: pd.DatetimeIndex, timezone: str) -> np.ndarray:
    """Local quarter hour of the day (0-95), plus 96 on weekends."""
    local = index_utc.tz_convert(timezone)
    quarter_of_day = np.asarray(local.hour) * 4 + np.asarray(local.minute) // 15
    slots: np.ndarray = quarter_of_day + 96 * np.asarray(local.weekday >= 5)
    return slots


def quarter_hour_shape(quarters: pd.DataFrame, timezone: str) -> dict[str, np.ndarray]:
    """How each planning load moves within its hour, learned from quarter-hour history: per local quarter
    hour of the day (weekdays and weekends apart, :func:`_quarter_slots`), the mean of the quarter's load
    minus its hour's mean (kW or kWth; 0 for slots the history lacks). The hourly regression gives each
    hour's level; adding this puts the morning ramp and the like where they happen within the hour."""
    hour_mean = quarters[list(PLANNING_LOADS)].groupby(pd.DatetimeIndex(quarters.index).floor("1h")).transform("mean")
    offsets = quarters[list(PLANNING_LOADS)] - hour_mean
    slots = _quarter_slots(pd.DatetimeIndex(quarters.index), timezone)
    shape = {}
    for load in PLANNING_LOADS:
        values = offsets[load].to_numpy(float)
        known = np.isfinite(values)
        sums = np.bincount(slots[known], weights=values[known], minlength=192)
        counts = np.bincount(slots[known], minlength=192)
        shape[load] = np.divide(sums, counts, out=np.zeros(192), where=counts > 0)
    return shape

HISTORY_REREAD = pd.Timedelta(hours=24)
"""Hours of history read again at each weather refresh, for readings that arrived late (store and forward)."""


class HistoryForecaster:
    """The Forecaster of live plans (optimizer.ports.Forecaster): loads learned from the park's history,
    PV from pvlib on a weather forecast.

    Parameters
    ----------
    park : Park
        The park (its site, PV arrays, ratings, ``weather_forecast`` section).
    loads : LoadHistorySource
        The park's measured past; nothing else about the past is used.
    weather : WeatherForecast, optional
        The weather forecast source; default the park file's (:func:`energy.weather_forecast.weather_forecast_for`).
    training_days : float
        Trailing window of hourly history the load regression is fitted on.
    refit_every, refresh_every : pd.Timedelta
        The regression is refitted, and the weather forecast with its PV remade, at multiples of these since
        the Unix epoch (UTC). A forecast from ``start_utc`` uses the weather issued at the last refresh at or
        before it and the regression fitted at the last refit at or before that, each from the hours before
        its own time only, so it depends on ``start_utc`` and the history before it and on nothing else.
        ``refresh_every`` must divide ``refit_every``.
    horizon : pd.Timedelta
        The horizon usually asked for; each refresh computes horizon + refresh_every at once (longer
        requests extend it).

    ``forecast`` gives :data:`FORECAST_COLUMNS` plus ``<array id>.pv_available_kw`` per PV array, each
    the mean over [t, t + step). Loads come from :class:`LoadForecaster` on :data:`PLANNING_LOADS`
    (the fallback profile with fewer than :data:`MIN_HISTORY_DAYS` days of history); hours whose
    station weather is missing are fitted on :func:`energy.weather_forecast.station_weather_estimate`.
    """

    def __init__(self, park: Park, loads: LoadHistorySource, weather: WeatherForecast | None = None,
                 training_days: float = 28.0, refit_every: pd.Timedelta = pd.Timedelta(days=1),
                 refresh_every: pd.Timedelta = pd.Timedelta(hours=6), horizon: pd.Timedelta = pd.Timedelta(hours=24)):
        if refresh_every < BASE_STEP or refresh_every % BASE_STEP or refit_every % refresh_every:
            raise ValueError(f"refresh_every ({refresh_every}) must be a multiple of {BASE_STEP} "
                             f"that divides refit_every ({refit_every})")
        self.park = park
        self.loads = loads
        self.weather = weather if weather is not None else weather_forecast_for(park)
        self.training = pd.Timedelta(days=training_days)
        self.refit_every, self.refresh_every, self.horizon = refit_every, refresh_every, horizon
        self.arrays = pv_arrays(park)
        self.columns = [*FORECAST_COLUMNS, *(f"{array_id}.pv_available_kw" for array_id in self.arrays)]
        self.model: LoadForecaster | None = None
        self._fitted_at: pd.Timestamp | None = None
        self._quarters = pd.DataFrame(columns=list(LOAD_HISTORY_COLUMNS), index=pd.DatetimeIndex([], tz="UTC"),
                                      dtype=float)
        self._quarters_span: tuple[pd.Timestamp, pd.Timestamp] | None = None
        self._shape: dict[str, np.ndarray] = {}
        self._issued_at: pd.Timestamp | None = None
        self._grid_end: pd.Timestamp | None = None
        self._cumulative: np.ndarray | None = None

    @property
    def method(self) -> str:
        """How the loads are forecast now: ``regression`` or ``fallback profile`` (before the first forecast: none)."""
        return self.model.method if self.model is not None else "none"

    def forecast(self, start_utc: datetime, steps: int, step: pd.Timedelta) -> pd.DataFrame:
        """``steps`` rows from ``start_utc`` at ``step``: means over [t, t + step) of :data:`FORECAST_COLUMNS`
        and each array's ``<id>.pv_available_kw``, on a UTC DatetimeIndex named ``ts_utc``."""
        start = pd.Timestamp(start_utc).tz_convert("UTC")
        step = pd.Timedelta(step)
        if steps < 1 or step <= pd.Timedelta(0):
            raise ValueError(f"need steps >= 1 and a positive step, got {steps} steps of {step}")
        issued = start.floor(self.refresh_every)
        end = start + steps * step
        cumulative = self._cumulative
        if cumulative is None or self._grid_end is None or issued != self._issued_at or end > self._grid_end:
            cumulative = self._issue(issued, max(end, issued + self.refresh_every + self.horizon))
        # means over each requested period from the running integral of the grid's piecewise-constant values
        position = ((start - issued).value + np.arange(steps + 1) * step.value) / BASE_STEP.value
        whole = np.minimum(np.floor(position).astype(int), len(cumulative) - 2)
        fraction = (position - whole)[:, None]
        integral = cumulative[whole] + fraction * (cumulative[whole + 1] - cumulative[whole])
        means = np.diff(integral, axis=0) / (step / BASE_STEP)
        index = pd.date_range(start, periods=steps, freq=step, name="ts_utc")
        return pd.DataFrame(means, index=index, columns=self.columns)

    def _issue(self, issued: pd.Timestamp, end: pd.Timestamp) -> np.ndarray:
        """Make the weather forecast issued at ``issued``, its PV and the loads on the grid up to ``end``; return
        the running integral of the grid's values (:attr:`_cumulative`)."""
        fit_at = issued.floor(self.refit_every)
        model = self.model
        if model is None or fit_at != self._fitted_at:
            quarters = self._history(fit_at - self.training, fit_at)
            model = LoadForecaster.fit(self.park, self._with_station_weather(load_means(quarters, HOUR)),
                                       PLANNING_LOADS)
            self.model = model
            self._shape = quarter_hour_shape(quarters, self.park.site.timezone) if model.coefficients else {}
            self._fitted_at = fit_at
        grid = pd.date_range(issued, periods=int(np.ceil((end - issued) / BASE_STEP)), freq=BASE_STEP)
        measured = load_means(self._history(issued - pd.Timedelta(hours=PERSISTENCE_HOURS), issued), HOUR)
        weather = self.weather.weather(issued, grid + BASE_STEP / 2, measured)
        site = self.park.site
        outputs = pv_model_outputs_many(self.arrays, weather, site.latitude_deg, site.longitude_deg, site.altitude_m)
        pv = np.column_stack([outputs[a]["ac_kw"].to_numpy(float) for a in self.arrays]) if self.arrays \
            else np.zeros((len(grid), 0))
        loads = model.predict(grid, weather["temp_air_c"].to_numpy(float), weather["ghi_wm2"].to_numpy(float),
                                   BASE_STEP)
        slots = _quarter_slots(grid, self.park.site.timezone)
        for load, shape in self._shape.items():
            loads[load] = np.clip(loads[load].to_numpy(float) + shape[slots], 0.0, None)
        values = np.column_stack([loads["cooling_load_kwth"].to_numpy(float), loads["other_load_kw"].to_numpy(float),
                                  pv.sum(axis=1), weather["temp_air_c"].to_numpy(float), pv])
        cumulative = np.vstack([np.zeros((1, values.shape[1])), np.cumsum(values, axis=0)])
        self._cumulative = cumulative
        self._issued_at, self._grid_end = issued, grid[-1] + BASE_STEP
        return cumulative

    def _history(self, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        """Quarter-hour loads in [start, end) through the source, read once and kept (the last
        :data:`HISTORY_REREAD` read again when extended)."""
        span = self._quarters_span
        if span is None or start < span[0]:
            self._quarters = self.loads.quarter_hour_loads(start, end)
            self._quarters_span = (start, end)
        elif end > span[1]:
            reread_from = max(span[0], span[1] - HISTORY_REREAD)
            fresh = self.loads.quarter_hour_loads(reread_from, end)
            keep_from = end - self.training - pd.Timedelta(hours=PERSISTENCE_HOURS) - self.refit_every
            kept = self._quarters[(self._quarters.index < reread_from) & (self._quarters.index >= keep_from)]
            self._quarters = pd.concat([kept, fresh]) if len(kept) else fresh
            self._quarters_span = (max(span[0], keep_from), end)
        quarters = self._quarters
        return quarters[(quarters.index >= start) & (quarters.index < end)]

    def _with_station_weather(self, hourly: pd.DataFrame) -> pd.DataFrame:
        """Hourly means of history with station weather gaps filled by the estimate the regression can stand on."""
        hourly = hourly.dropna(subset=list(PLANNING_LOADS))
        gaps = hourly[["temp_air_c", "ghi_wm2"]].isna().any(axis=1).to_numpy()
        if not gaps.any():
            return hourly
        hourly = hourly.copy()
        estimate = station_weather_estimate(self.park, pd.DatetimeIndex(hourly.index[gaps]))
        for column in ("temp_air_c", "ghi_wm2"):
            hourly.loc[gaps, column] = hourly.loc[gaps, column].fillna(estimate[column])
        return hourly
