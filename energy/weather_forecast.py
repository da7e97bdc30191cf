"""Weather forecasts that live plans are made on: persistence, the site's forecast CSV, or TMY3.

The park file's ``weather_forecast`` section (:class:`twin.park.WeatherForecastSource`) names
the source; :func:`weather_forecast_for` builds it. Every source has one method,
``weather(issue_utc, index_utc, measured)``: :data:`energy.weather.WEATHER_COLUMNS` on
``index_utc`` (times at or after ``issue_utc``) as forecast at ``issue_utc``. ``measured`` is
the weather station's hourly means (``temp_air_c``, ``ghi_wm2``; hours labelled by their
start) of the hours before ``issue_utc``: all a source may know about the weather so far.

- :class:`PersistenceForecast` (the default): the Ineichen clear sky for the site, attenuated to
  the clearness the station measured over the last :data:`PERSISTENCE_HOURS` hours, and the air
  temperature measured the same hour of the day a day earlier.
- :class:`CsvWeatherForecast`: a weather CSV that the site's job refreshes from its weather
  service (format of :func:`energy.weather.read_weather_csv`: a time column with a UTC offset,
  or local time of the park; ``temp_air_c`` degC; ``ghi_wm2`` and optionally ``dni_wm2``,
  ``dhi_wm2`` W/m2; optionally ``wind_speed_ms`` m/s), re-read whenever its modification time
  or size changes. Times the file does not reach are filled by persistence (and noted).
- :class:`TmyForecast`: the park's own TMY3 weather (:class:`energy.environment.ParkEnvironment`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd
import pvlib

from energy.environment import ParkEnvironment, park_climate
from energy.weather import (
    CLEAR_SKY_WIND_SPEED_MS,
    WEATHER_COLUMNS,
    cloudy_irradiance,
    diurnal_temp_air_c,
    read_weather_csv,
    resample_weather,
)
from twin.park import Park

PERSISTENCE_HOURS = 24
"""Hours of station history a persistence forecast looks back on."""

SUN_UP_CLEAR_GHI_WM2 = 50.0
"""Hours whose clear-sky mean GHI is below this (night, sunrise, sunset) do not count towards the clearness."""

CLEAR_SKY_STEP = pd.Timedelta(minutes=15)
"""Spacing of the clear-sky values a persistence forecast keeps, a UTC day at a time."""

CLEAR_SKY_DAYS_KEPT = 8
"""Days of clear-sky values kept (a forecast horizon and the day measured before it fit easily)."""

MIN_SUN_HOURS = 3
"""Measured sun-up hours below which the measured clearness is not trusted (the park's cloudiness is used)."""


class WeatherForecast(Protocol):
    """A weather forecast source (module docstring)."""

    def weather(self, issue_utc: pd.Timestamp, index_utc: pd.DatetimeIndex, measured: pd.DataFrame) -> pd.DataFrame:
        ...


def clear_sky_index_of_cover(cloud_fraction: float) -> float:
    """Kasten-Czeplak clear-sky index ``1 - 0.75 N^3.4`` of a cloud-cover fraction N (energy.weather)."""
    index: float = 1.0 - 0.75 * float(cloud_fraction) ** 3.4
    return index


def cover_of_clear_sky_index(clear_sky_index: float) -> float:
    """The cloud-cover fraction whose Kasten-Czeplak clear-sky index is ``clear_sky_index`` (0.25 to 1; outside,
    the nearest end)."""
    return float(np.clip((1.0 - np.clip(clear_sky_index, 0.25, 1.0)) / 0.75, 0.0, 1.0) ** (1.0 / 3.4))


class PersistenceForecast:
    """Clear sky scaled by yesterday's measured clearness; yesterday's temperatures (module docstring).

    Clearness k = sum of measured hourly GHI / sum of clear-sky hourly GHI over the last
    :data:`PERSISTENCE_HOURS` hours with the sun up (clear-sky mean above
    :data:`SUN_UP_CLEAR_GHI_WM2`). The forecast sky has the cloud cover whose Kasten-Czeplak index
    is k, split into beam and diffuse by :func:`energy.weather.cloudy_irradiance` (below k = 0.25,
    overcast, all three components scaled down to k). Each hour of the day takes the temperature
    measured in that hour within the last day, interpolated linearly between hour mid-points.

    Without station history: the clearness of the park's mean cloud cover (``weather.cloudiness``)
    and the diurnal temperature cycle of its monthly normals (:func:`energy.environment.park_climate`).
    """

    def __init__(self, park: Park):
        self.park = park
        site = park.site
        self.location = pvlib.location.Location(site.latitude_deg, site.longitude_deg, altitude=site.altitude_m)
        self.climate = park_climate(park)
        self.default_clearness = clear_sky_index_of_cover(park.weather.cloudiness)
        self._clear_by_day: dict[pd.Timestamp, pd.DataFrame] = {}

    def clear_sky(self, index_utc: pd.DatetimeIndex) -> pd.DataFrame:
        """Ineichen clear-sky ``ghi``, ``dni``, ``dhi`` (W/m2) at the site.

        Times in the middle of quarter hours (hh:07:30, hh:22:30, ...: the forecaster's grid and the hours'
        quarters the clearness is measured on) are computed a UTC day at a time and kept, since
        successive forecasts ask for mostly the same times.
        """
        offset = (index_utc - pd.Timestamp(0, tz="UTC")) % CLEAR_SKY_STEP
        if len(index_utc) == 0 or not (offset == CLEAR_SKY_STEP / 2).all():
            clear_sky: pd.DataFrame = self.location.get_clearsky(index_utc, model="ineichen")
            return clear_sky
        frames = []
        for day in index_utc.floor("1D").unique():
            if day not in self._clear_by_day:
                if len(self._clear_by_day) >= CLEAR_SKY_DAYS_KEPT:
                    self._clear_by_day.pop(next(iter(self._clear_by_day)))
                times = pd.date_range(day + CLEAR_SKY_STEP / 2, periods=pd.Timedelta(days=1) // CLEAR_SKY_STEP,
                                      freq=CLEAR_SKY_STEP)
                self._clear_by_day[day] = self.location.get_clearsky(times, model="ineichen")[["ghi", "dni", "dhi"]]
            frames.append(self._clear_by_day[day])
        return (frames[0] if len(frames) == 1 else pd.concat(frames)).reindex(index_utc)

    def clearness(self, measured: pd.DataFrame) -> float | None:
        """Measured clearness of the hours in ``measured`` (None: too few sun-up hours measured)."""
        ghi = measured["ghi_wm2"].dropna() if "ghi_wm2" in measured else pd.Series(dtype=float)
        if ghi.empty:
            return None
        hours = pd.DatetimeIndex(ghi.index)
        quarters = (hours.repeat(4) + pd.to_timedelta(np.tile([7.5, 22.5, 37.5, 52.5], len(hours)), unit="min"))
        clear = self.clear_sky(pd.DatetimeIndex(quarters))["ghi"].to_numpy(float).reshape(-1, 4).mean(axis=1)
        up = clear >= SUN_UP_CLEAR_GHI_WM2
        if up.sum() < MIN_SUN_HOURS:
            return None
        return float(ghi.to_numpy(float)[up].sum() / clear[up].sum())

    def hourly_temperatures(self, issue_utc: pd.Timestamp, measured: pd.DataFrame) -> np.ndarray:
        """Air temperature (degC) of each UTC hour of the day 0-23: as measured in the last day, else from the
        monthly normals."""
        hours = pd.date_range(issue_utc.floor("1h") - pd.Timedelta(hours=24), periods=24, freq="1h")
        temps = np.array(measured["temp_air_c"].reindex(hours), dtype=float) if "temp_air_c" in measured \
            else np.full(24, np.nan)
        missing = ~np.isfinite(temps)
        if missing.any():
            month = issue_utc.tz_convert(self.park.site.timezone).month
            normal = diurnal_temp_air_c(hours + pd.Timedelta(minutes=30), self.park.site.longitude_deg,
                                        self.climate.mean_temp_c[month - 1], self.climate.temp_swing_c[month - 1])
            temps[missing] = normal[missing]
        by_hour = np.empty(24)
        by_hour[hours.hour] = temps
        return by_hour

    def weather(self, issue_utc: pd.Timestamp, index_utc: pd.DatetimeIndex, measured: pd.DataFrame) -> pd.DataFrame:
        recent = measured[(measured.index >= issue_utc - pd.Timedelta(hours=PERSISTENCE_HOURS))
                          & (measured.index < issue_utc)]
        k = self.clearness(recent)
        if k is None:
            k = self.default_clearness
        k = float(np.clip(k, 0.0, 1.0))
        cover = cover_of_clear_sky_index(k)
        clear = self.clear_sky(index_utc)
        ghi, dni, dhi = cloudy_irradiance(clear["ghi"].to_numpy(float), clear["dni"].to_numpy(float),
                                          clear["dhi"].to_numpy(float), np.full(len(index_utc), cover))
        overcast_scale = k / clear_sky_index_of_cover(cover) if k < 0.25 else 1.0
        hour_of_day = ((index_utc - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(hours=1)).to_numpy(float) % 24.0
        temps = np.interp(hour_of_day, np.arange(24) + 0.5, self.hourly_temperatures(issue_utc, recent), period=24.0)
        return pd.DataFrame({
            "ghi_wm2": ghi * overcast_scale, "dni_wm2": dni * overcast_scale, "dhi_wm2": dhi * overcast_scale,
            "temp_air_c": temps, "wind_speed_ms": CLEAR_SKY_WIND_SPEED_MS,
        }, index=index_utc)[list(WEATHER_COLUMNS)]


class CsvWeatherForecast:
    """The site's weather forecast CSV (module docstring), re-read whenever the file changes.

    A file that cannot be used raises :class:`twin.timeseries_csv.TimeSeriesCsvError` naming the file, the line,
    the column and the reason; the site's job should write a new file beside it and rename it into place,
    so that a half-written file is never read. ``notes``: what the last forecast filled in or derived.
    """

    def __init__(self, park: Park, path: str | Path):
        self.park = park
        self.path = path
        self.persistence = PersistenceForecast(park)
        self.notes: list[str] = []
        self._stamp: tuple[int, int] | None = None
        self._frame: pd.DataFrame | None = None
        self._read_notes: list[str] = []
        self.read()

    def read(self) -> pd.DataFrame:
        """The file's weather, re-read when its modification time or size changed since the last read."""
        status = os.stat(self.path)
        stamp = (status.st_mtime_ns, status.st_size)
        if stamp != self._stamp:
            site = self.park.site
            self._frame, self._read_notes = read_weather_csv(self.path, site.latitude_deg, site.longitude_deg,
                                                             site.altitude_m, tz=site.timezone)
            self._stamp = stamp
        assert self._frame is not None  # read whenever the stamp changes, and it starts as None
        return self._frame

    def weather(self, issue_utc: pd.Timestamp, index_utc: pd.DatetimeIndex, measured: pd.DataFrame) -> pd.DataFrame:
        frame = self.read()
        self.notes = list(self._read_notes)
        reach = frame.index.to_series().diff().median() if len(frame) > 1 else pd.Timedelta(0)
        covered = (index_utc >= frame.index[0] - reach) & (index_utc <= frame.index[-1] + reach)
        if covered.all():
            return resample_weather(frame, index_utc)
        self.notes.append(f"{self.path}: covers {frame.index[0]} to {frame.index[-1]}; "
                          f"{int((~covered).sum())} of {len(index_utc)} forecast times by persistence")
        result = self.persistence.weather(issue_utc, index_utc, measured)
        if covered.any():
            result.loc[covered] = resample_weather(frame, index_utc[covered]).to_numpy()
        return result


class TmyForecast:
    """The park's TMY3 weather as the forecast (a typical year: no knowledge of today's sky)."""

    def __init__(self, park: Park):
        if park.weather.source != "tmy3":
            raise ValueError(f"weather_forecast source tmy needs weather.source tmy3, not {park.weather.source}")
        self.environment = ParkEnvironment(park)

    def weather(self, issue_utc: pd.Timestamp, index_utc: pd.DatetimeIndex, measured: pd.DataFrame) -> pd.DataFrame:
        return self.environment.weather(index_utc)


def weather_forecast_for(park: Park) -> WeatherForecast:
    """The weather forecast source the park file names (``weather_forecast``; default persistence)."""
    settings = park.weather_forecast
    if settings.source == "csv":
        if settings.file is None:  # the park file's validation refuses this
            raise ValueError("weather_forecast.source csv needs weather_forecast.file")
        return CsvWeatherForecast(park, settings.file)
    if settings.source == "tmy":
        return TmyForecast(park)
    return PersistenceForecast(park)


def station_weather_estimate(park: Park, hours_utc: pd.DatetimeIndex) -> pd.DataFrame:
    """What a station would have read, hour by hour, when it has not: ``temp_air_c`` from the monthly normals'
    diurnal cycle and ``ghi_wm2`` the clear sky at the park's mean clearness (as persistence without history)."""
    persistence = PersistenceForecast(park)
    mid = hours_utc + pd.Timedelta(minutes=30)
    local_month = hours_utc.tz_convert(park.site.timezone).month.to_numpy()
    temps = np.empty(len(hours_utc))
    for month in np.unique(local_month):
        chosen = local_month == month
        temps[chosen] = diurnal_temp_air_c(mid[chosen], park.site.longitude_deg,
                                           persistence.climate.mean_temp_c[month - 1],
                                           persistence.climate.temp_swing_c[month - 1])
    ghi = persistence.clear_sky(mid)["ghi"].to_numpy(float) * persistence.default_clearness
    return pd.DataFrame({"temp_air_c": temps, "ghi_wm2": ghi}, index=hours_utc)
