"""Weather for the park: clear-sky with seeded clouds, TMY3 files, CSV files.

Every function returns a frame on a tz-aware UTC ``DatetimeIndex`` with the
columns of :data:`WEATHER_COLUMNS`:

=================  ======  ===================================================
column             unit    meaning
=================  ======  ===================================================
``ghi_wm2``        W/m2    global horizontal irradiance
``dni_wm2``        W/m2    direct normal irradiance
``dhi_wm2``        W/m2    diffuse horizontal irradiance
``temp_air_c``     degC    dry-bulb air temperature
``wind_speed_ms``  m/s     wind speed (at about 10 m)
=================  ======  ===================================================

Values are instantaneous at each timestamp (files with hourly averages are
re-stamped to the hour mid-point so that holds as well as it can).
"""

from __future__ import annotations

import calendar
import io
from dataclasses import dataclass
from datetime import timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pvlib
from numpy.typing import NDArray

from twin.config import MAX_CSV_BYTES, read_input_text
from twin.timeseries_csv import TimeSeriesCsv, TimeSeriesCsvError, csv_problem, read_timeseries_csv

WEATHER_COLUMNS = ("ghi_wm2", "dni_wm2", "dhi_wm2", "temp_air_c", "wind_speed_ms")
"""Column names (with units) of every weather frame in ParkTwin."""

IRRADIANCE_COLUMNS = ("ghi_wm2", "dni_wm2", "dhi_wm2")
"""The irradiance columns of a weather frame, W/m2."""

CLEAR_SKY_WIND_SPEED_MS = 1.5
"""Wind speed of synthetic clear-sky weather, m/s (a light breeze)."""

CSV_DEFAULT_WIND_SPEED_MS = 1.0
"""Wind speed assumed when a weather CSV has none, m/s (pvlib's default for
the SAPM cell temperature model)."""

TEMP_MIN_SOLAR_HOUR = 6.0
"""Local mean solar hour of the daily minimum air temperature (about sunrise)."""

TEMP_MAX_SOLAR_HOUR = 15.0
"""Local mean solar hour of the daily maximum air temperature."""

CLOUD_KNOT_MINUTES = 15
"""Spacing of the random cloud-cover values, min; linear in between."""

CLOUD_CONCENTRATION = 2.0
"""Concentration (a + b) of the Beta distribution of cloud cover. Below 2 the
distribution is U-shaped: skies tend to be mostly clear or mostly covered."""

CSV_TIME_COLUMNS = ("time", "timestamp", "datetime", "time_utc", "ts_utc")
"""Accepted names (case-insensitive) of the time column of a weather CSV."""

CSV_COLUMN_ALIASES = {
    "ghi_wm2": ("ghi", "ghi_wm2"),
    "dni_wm2": ("dni", "dni_wm2"),
    "dhi_wm2": ("dhi", "dhi_wm2"),
    "temp_air_c": ("temp_air", "temp_air_c"),
    "wind_speed_ms": ("wind_speed", "wind_speed_ms"),
}
"""Accepted names (case-insensitive) of each weather CSV data column."""


@dataclass(frozen=True)
class MonthlyClimate:
    """Monthly normal air temperatures of a place, January first.

    ``mean_temp_c`` is the monthly mean of the daily mean temperature (degC);
    ``temp_swing_c`` the monthly mean of the daily range, daily maximum minus
    daily minimum (K). Feed one month's pair to :func:`clear_sky_weather`.
    """

    place: str
    mean_temp_c: tuple[float, ...]
    temp_swing_c: tuple[float, ...]
    source: str

    def __post_init__(self) -> None:
        if len(self.mean_temp_c) != 12 or len(self.temp_swing_c) != 12:
            raise ValueError(f"{self.place}: need 12 monthly values for mean_temp_c and temp_swing_c")
        if min(self.temp_swing_c) < 0:
            raise ValueError(f"{self.place}: temp_swing_c must be >= 0")


SHENZHEN_CLIMATE = MonthlyClimate(
    place="Shenzhen",
    mean_temp_c=(15.4, 16.6, 19.3, 23.1, 26.5, 28.3, 28.9, 28.7, 27.8, 25.3, 21.4, 16.9),
    temp_swing_c=(7.6, 7.1, 6.8, 6.5, 6.5, 6.2, 6.6, 6.8, 6.8, 7.3, 8.0, 8.0),
    source="China Meteorological Administration 1991-2020 normals, Shenzhen (approximate)",
)
"""Approximate monthly temperature normals for the demo park in Shenzhen."""


def clear_sky_weather(
    latitude_deg: float,
    longitude_deg: float,
    altitude_m: float,
    index_utc: pd.DatetimeIndex,
    daily_mean_temp_c: float,
    daily_temp_swing_c: float,
    cloudiness: float = 0.0,
    seed: int = 0,
) -> pd.DataFrame:
    """Synthetic weather: clear sky, optional seeded clouds, a diurnal temperature cycle.

    Irradiance is the Ineichen-Perez clear sky [1]_ [2]_ (pvlib, Linke
    turbidity from pvlib's monthly climatology) attenuated by the cloud cover
    of :func:`cloud_cover_fraction` through :func:`cloudy_irradiance`. Air
    temperature follows :func:`diurnal_temp_air_c`; wind speed is the constant
    :data:`CLEAR_SKY_WIND_SPEED_MS`.

    Parameters
    ----------
    latitude_deg, longitude_deg : float
        Site position, degrees north and east.
    altitude_m : float
        Site altitude above sea level, m.
    index_utc : pd.DatetimeIndex
        tz-aware UTC timestamps; values are instantaneous at each.
    daily_mean_temp_c : float
        Daily mean air temperature, degC.
    daily_temp_swing_c : float
        Daily maximum minus daily minimum air temperature, K (>= 0).
    cloudiness : float
        Mean cloud-cover fraction, 0 (clear sky) to 1 (overcast).
    seed : int
        Seed of the cloud cover (>= 0); same seed and times give the same clouds.

    Returns
    -------
    pd.DataFrame
        :data:`WEATHER_COLUMNS` on ``index_utc``.

    References
    ----------
    .. [1] Ineichen, P. and Perez, R. (2002). A new airmass independent
       formulation for the Linke turbidity coefficient. Solar Energy 73(3),
       151-157.
    .. [2] pvlib.clearsky.ineichen, pvlib.location.Location.get_clearsky.
    """
    _require_utc(index_utc)
    location = pvlib.location.Location(latitude_deg, longitude_deg, altitude=altitude_m)
    clear = location.get_clearsky(index_utc, model="ineichen")
    ghi_wm2, dni_wm2, dhi_wm2 = cloudy_irradiance(
        clear["ghi"].to_numpy(float),
        clear["dni"].to_numpy(float),
        clear["dhi"].to_numpy(float),
        cloud_cover_fraction(index_utc, cloudiness, seed),
    )
    return pd.DataFrame(
        {
            "ghi_wm2": ghi_wm2,
            "dni_wm2": dni_wm2,
            "dhi_wm2": dhi_wm2,
            "temp_air_c": diurnal_temp_air_c(index_utc, longitude_deg, daily_mean_temp_c, daily_temp_swing_c),
            "wind_speed_ms": CLEAR_SKY_WIND_SPEED_MS,
        },
        index=index_utc,
    )


def cloudy_irradiance(
    clear_ghi_wm2: np.ndarray,
    clear_dni_wm2: np.ndarray,
    clear_dhi_wm2: np.ndarray,
    cloud_fraction: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Attenuate clear-sky irradiance for a cloud-cover fraction.

    GHI follows Kasten and Czeplak [1]_: ``GHI = GHI_clear (1 - 0.75 N^3.4)``
    with N the cloud-cover fraction (their octas / 8). The beam reaches the
    ground through the cloud-free part of the sky, ``DNI = DNI_clear (1 - N)``,
    and DHI closes the balance ``GHI = DNI cos(zenith) + DHI`` that the
    clear-sky components satisfy, i.e.
    ``DHI = k DHI_clear + (k - (1 - N)) DNI_clear cos(zenith)`` with
    ``k = GHI / GHI_clear``. Since ``N >= 0.75 N^3.4`` on [0, 1], DHI is never
    below ``k DHI_clear``: the light the cloud takes from the beam partly
    reappears as diffuse.

    Parameters
    ----------
    clear_ghi_wm2, clear_dni_wm2, clear_dhi_wm2 : np.ndarray
        Clear-sky irradiance components, W/m2, closing
        ``GHI = DNI cos(zenith) + DHI``.
    cloud_fraction : np.ndarray
        Cloud cover, 0 to 1.

    Returns
    -------
    tuple of np.ndarray
        ``(ghi_wm2, dni_wm2, dhi_wm2)``, W/m2.

    References
    ----------
    .. [1] Kasten, F. and Czeplak, G. (1980). Solar and terrestrial radiation
       dependent on the amount and type of cloud. Solar Energy 24(2), 177-189.
    """
    clear_sky_index = 1.0 - 0.75 * cloud_fraction**3.4
    beam_cos_zenith_wm2 = clear_ghi_wm2 - clear_dhi_wm2
    ghi_wm2 = clear_sky_index * clear_ghi_wm2
    dni_wm2 = (1.0 - cloud_fraction) * clear_dni_wm2
    dhi_wm2 = clear_sky_index * clear_dhi_wm2 + (clear_sky_index - (1.0 - cloud_fraction)) * beam_cos_zenith_wm2
    return ghi_wm2, dni_wm2, dhi_wm2


def cloud_cover_fraction(index_utc: pd.DatetimeIndex, cloudiness: float, seed: int) -> NDArray[np.float64]:
    """Seeded random cloud cover, 0 to 1, varying through the day.

    Cover is drawn every :data:`CLOUD_KNOT_MINUTES` minutes on a grid fixed to
    the Unix epoch, from a Beta distribution with mean ``cloudiness`` and
    concentration :data:`CLOUD_CONCENTRATION`, and interpolated linearly in
    between. Each UTC day's draws come from their own generator seeded with
    ``(seed, day number)``, so a time gets the same cover whatever index it
    is part of (a simulation computed in chunks sees one sky). Cloudiness 0
    and 1 give constant 0 and 1.

    Parameters
    ----------
    index_utc : pd.DatetimeIndex
        tz-aware UTC timestamps.
    cloudiness : float
        Mean cloud cover, 0 to 1.
    seed : int
        Non-negative seed.

    Returns
    -------
    np.ndarray
        Cloud cover fraction at each timestamp.
    """
    if not 0.0 <= cloudiness <= 1.0:
        raise ValueError(f"cloudiness must be between 0 and 1, got {cloudiness}")
    if cloudiness in (0.0, 1.0) or len(index_utc) == 0:
        return np.full(len(index_utc), float(cloudiness))
    knots_per_day = 24 * 60 // CLOUD_KNOT_MINUTES
    knot = pd.Timedelta(minutes=CLOUD_KNOT_MINUTES)
    position: NDArray[np.float64] = ((index_utc - pd.Timestamp(0, tz="UTC")) / knot).to_numpy(float)
    first_day = int(np.floor(position.min())) // knots_per_day
    last_day = int(np.floor(position.max())) // knots_per_day + 1  # the next day's first knot closes the last interval
    a = CLOUD_CONCENTRATION * cloudiness
    b = CLOUD_CONCENTRATION * (1.0 - cloudiness)
    cover: NDArray[np.float64] = np.concatenate([
        np.random.default_rng([seed, day]).beta(a, b, size=knots_per_day) for day in range(first_day, last_day + 1)
    ])
    knots = np.arange(first_day * knots_per_day, (last_day + 1) * knots_per_day, dtype=float)
    return np.interp(position, knots, cover)


def diurnal_temp_air_c(
    index_utc: pd.DatetimeIndex,
    longitude_deg: float,
    daily_mean_temp_c: float,
    daily_temp_swing_c: float,
) -> np.ndarray:
    """Air temperature over the day as two half-cosines.

    The minimum is at :data:`TEMP_MIN_SOLAR_HOUR` and the maximum at
    :data:`TEMP_MAX_SOLAR_HOUR` local mean solar time (UTC + longitude / 15 h;
    the equation of time, at most about 16 min, is ignored). A half-cosine
    rises from minimum to maximum and another falls back over the remaining
    15 hours, in the manner of the WAVE method of Reicosky et al. [1]_. Each
    half averages to the midpoint, so the daily mean is ``daily_mean_temp_c``.

    Parameters
    ----------
    index_utc : pd.DatetimeIndex
        tz-aware UTC timestamps.
    longitude_deg : float
        Site longitude, degrees east.
    daily_mean_temp_c : float
        Daily mean temperature, degC.
    daily_temp_swing_c : float
        Daily maximum minus minimum, K (>= 0).

    Returns
    -------
    np.ndarray
        Air temperature at each timestamp, degC.

    References
    ----------
    .. [1] Reicosky, D.C., Winkelman, L.J., Baker, J.M. and Baker, D.G. (1989).
       Accuracy of hourly air temperatures calculated from daily minima and
       maxima. Agricultural and Forest Meteorology 46, 193-209.
    """
    if daily_temp_swing_c < 0:
        raise ValueError(f"daily_temp_swing_c must be >= 0, got {daily_temp_swing_c}")
    hours_utc = ((index_utc - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(hours=1)).to_numpy(float)
    solar_hour = np.mod(hours_utc + longitude_deg / 15.0, 24.0)
    rise_h = TEMP_MAX_SOLAR_HOUR - TEMP_MIN_SOLAR_HOUR
    since_min_h = np.mod(solar_hour - TEMP_MIN_SOLAR_HOUR, 24.0)
    since_max_h = np.mod(solar_hour - TEMP_MAX_SOLAR_HOUR, 24.0)
    rising = since_min_h < rise_h
    shape = np.where(rising, -np.cos(np.pi * since_min_h / rise_h), np.cos(np.pi * since_max_h / (24.0 - rise_h)))
    return daily_mean_temp_c + 0.5 * daily_temp_swing_c * shape


def read_tmy3_weather(path: str | Path, year: int) -> pd.DataFrame:
    """Read a TMY3 file and re-stamp its typical year onto ``year``, in UTC.

    TMY3 irradiance is the energy of the hour *ending* at the timestamp
    (local standard time, no daylight saving) [1]_, i.e. the hour's mean in
    W/m2. Each row is re-stamped to the **mid-point** of its hour (01:00 ->
    00:30), keeping month, day and time of day but taking ``year``, then
    converted from the file's UTC offset to UTC. Temperature and wind are
    instantaneous at the original timestamp, so their mid-point value is the
    mean of that row and the previous one (the first row uses the last, as a
    typical year wraps around). TMY3 files have no 29 February; for a leap
    ``year`` it is filled with a copy of 28 February.

    Parameters
    ----------
    path : str or Path
        A TMY3 CSV file (NREL format, read with ``pvlib.iotools.read_tmy3``).
    year : int
        Calendar year to stamp the data onto.

    Returns
    -------
    pd.DataFrame
        :data:`WEATHER_COLUMNS` hourly on a UTC index, from 00:30 on 1 January
        to 23:30 on 31 December of ``year`` in the file's local standard time
        (for a UTC-5 file: 05:30 UTC on 1 January to 04:30 UTC on 1 January
        of the next year).

    Raises
    ------
    twin.timeseries_csv.TimeSeriesCsvError
        The file cannot be read as TMY3 or holds values that are not numbers.
        TMY3 is not a plain time series (two header lines, date and time in
        separate columns, hours ending at 24:00), so pvlib's own reader reads
        it, and the error cannot name a line.

    References
    ----------
    .. [1] Wilcox, S. and Marion, W. (2008). Users Manual for TMY3 Data Sets.
       NREL/TP-581-43156.
    """
    text = read_input_text(path, MAX_CSV_BYTES)
    try:
        frame = _restamped_tmy3(text, year)
    except (ValueError, KeyError, IndexError, TypeError) as exc:  # pvlib's and pandas' errors on a damaged file
        raise TimeSeriesCsvError(path, [f"not a readable TMY3 file: {type(exc).__name__}: {exc}"]) from None
    not_finite = [name for name in WEATHER_COLUMNS if not np.isfinite(frame[name].to_numpy()).all()]
    if not_finite:
        raise TimeSeriesCsvError(path, [f"TMY3 columns {', '.join(not_finite)} hold values that are not numbers"])
    return frame


def _restamped_tmy3(text: str, year: int) -> pd.DataFrame:
    """The TMY3 file's text restamped onto ``year`` in UTC (see :func:`read_tmy3_weather`)."""
    raw, meta = pvlib.iotools.read_tmy3(io.StringIO(text), map_variables=True)
    # From the file's own date and time columns: read_tmy3's index moves the
    # hour ending 24:00 on 28 Feb of a leap source year to 1 March.
    mid_local = pd.DatetimeIndex(
        pd.to_datetime(raw["Date (MM/DD/YYYY)"], format="%m/%d/%Y")
        + pd.to_timedelta(raw["Time (HH:MM)"] + ":00")
        - pd.Timedelta(minutes=30)
    )
    restamped = pd.to_datetime(pd.DataFrame({
        "year": year, "month": mid_local.month, "day": mid_local.day,
        "hour": mid_local.hour, "minute": mid_local.minute,
    }))
    frame = pd.DataFrame(
        {
            "ghi_wm2": raw["ghi"].to_numpy(float),
            "dni_wm2": raw["dni"].to_numpy(float),
            "dhi_wm2": raw["dhi"].to_numpy(float),
            "temp_air_c": _mean_with_previous(raw["temp_air"].to_numpy(float)),
            "wind_speed_ms": _mean_with_previous(raw["wind_speed"].to_numpy(float)),
        },
        index=pd.DatetimeIndex(restamped),
    ).sort_index()
    if calendar.isleap(year):
        stamps = pd.DatetimeIndex(frame.index)
        feb_28 = frame[(stamps.month == 2) & (stamps.day == 28)]
        frame = pd.concat([frame, feb_28.set_axis(feb_28.index + pd.Timedelta(days=1))]).sort_index()
    utc_offset = timezone(timedelta(hours=meta["TZ"]))
    return frame.tz_localize(utc_offset).tz_convert("UTC")


def _mean_with_previous(values: NDArray[np.float64]) -> NDArray[np.float64]:
    """Mean of each value and the one before it, the first wrapping to the last."""
    return 0.5 * (values + np.roll(values, 1))


def read_weather_csv(
    path: str | Path,
    latitude_deg: float,
    longitude_deg: float,
    altitude_m: float = 0.0,
    tz: str | None = None,
) -> tuple[pd.DataFrame, list[str]]:
    """Read a weather CSV, fill what can be derived, and say what was.

    The file has a header line, a time column named one of
    :data:`CSV_TIME_COLUMNS`, and data columns named as in
    :data:`CSV_COLUMN_ALIASES` (``ghi`` or ``ghi_wm2``, ...; case-insensitive).
    Other columns are ignored (and listed in the notes). Values are taken as
    instantaneous at each timestamp.

    The file is read by :func:`twin.timeseries_csv.read_timeseries_csv`: times
    are ISO 8601; a time with a UTC offset (``2024-06-01T08:00+08:00``,
    ``...Z``) is used as is; a time without one is local time in ``tz`` (an
    IANA name) and is an error when ``tz`` is None, as is a local time that
    ``tz`` makes ambiguous or nonexistent (daylight-saving changes). Times
    must strictly increase; every value must be a finite number.

    Derivations:

    - only GHI: DNI and DHI by the Erbs decomposition [1]_
      (``pvlib.irradiance.erbs``, solar position by pvlib's SPA);
    - two of GHI, DNI, DHI: the third by closure ``GHI = DNI cos(zenith) + DHI``
      (``pvlib.irradiance.complete_irradiance``; a derived DHI is clipped at 0);
    - no wind: :data:`CSV_DEFAULT_WIND_SPEED_MS`.

    Missing temperature, missing irradiance beyond that, negative irradiance
    or wind speed are errors.

    Parameters
    ----------
    path : str or Path
        The CSV file.
    latitude_deg, longitude_deg : float
        Site position, degrees north and east (for the solar position).
    altitude_m : float
        Site altitude, m.
    tz : str, optional
        IANA time zone of times without a UTC offset.

    Returns
    -------
    (pd.DataFrame, list of str)
        :data:`WEATHER_COLUMNS` on a UTC index, and notes on what was derived
        or ignored.

    Raises
    ------
    twin.timeseries_csv.TimeSeriesCsvError
        The file cannot be used; the message names the file, the line and
        column where it applies (line 1 is the header), and the reason.

    References
    ----------
    .. [1] Erbs, D.G., Klein, S.A. and Duffie, J.A. (1982). Estimation of the
       diffuse radiation fraction for hourly, daily and monthly-average global
       radiation. Solar Energy 28(4), 293-302.
    """
    table = read_timeseries_csv(path, time_names=CSV_TIME_COLUMNS, columns=CSV_COLUMN_ALIASES,
                                required=("temp_air_c",), other_columns="ignore", timezone=tz)
    columns = {name: table.frame[name].to_numpy() for name in table.frame.columns}
    table.refuse_if([table.problem(row, name, f"negative value {values[row]:g}")
                     for name, values in columns.items() if name != "temp_air_c"
                     for row in map(int, np.flatnonzero(values < 0))])
    notes = [f"ignored columns: {', '.join(table.ignored_columns)}"] if table.ignored_columns else []
    notes.extend(_complete_irradiance(table, columns, latitude_deg, longitude_deg, altitude_m))
    if "wind_speed_ms" not in columns:
        columns["wind_speed_ms"] = np.full(len(table.frame), CSV_DEFAULT_WIND_SPEED_MS)
        notes.append(f"wind_speed_ms set to {CSV_DEFAULT_WIND_SPEED_MS} m/s (no wind column)")
    return pd.DataFrame({name: columns[name] for name in WEATHER_COLUMNS}, index=table.frame.index), notes


def _complete_irradiance(table: TimeSeriesCsv, columns: dict[str, np.ndarray], latitude_deg: float,
                         longitude_deg: float, altitude_m: float) -> list[str]:
    """Add the missing irradiance columns to ``columns`` in place; return notes on what was derived."""
    present = [name for name in IRRADIANCE_COLUMNS if name in columns]
    if len(present) == 3:
        return []
    if len(present) < 2 and present != ["ghi_wm2"]:
        table.refuse([csv_problem(1, None, "irradiance needs ghi, or two of ghi, dni and dhi; "
                                           f"found {', '.join(present) or 'none'}")])
    index_utc = table.frame.index
    location = pvlib.location.Location(latitude_deg, longitude_deg, altitude=altitude_m)
    solar_position = location.get_solarposition(index_utc, temperature=columns["temp_air_c"])
    if present == ["ghi_wm2"]:
        parts = pvlib.irradiance.erbs(columns["ghi_wm2"], solar_position["zenith"].to_numpy(float), index_utc)
        columns["dni_wm2"] = np.asarray(parts["dni"], dtype=float)
        columns["dhi_wm2"] = np.asarray(parts["dhi"], dtype=float)
        return ["dni_wm2 and dhi_wm2 derived from ghi_wm2 by Erbs decomposition"]
    (missing,) = set(IRRADIANCE_COLUMNS) - set(present)
    complete = pvlib.irradiance.complete_irradiance(
        solar_position["zenith"],
        **{name.removesuffix("_wm2"): pd.Series(columns[name], index=index_utc) for name in present},
    )
    columns[missing] = np.clip(complete[missing.removesuffix("_wm2")].to_numpy(float), 0.0, None)
    return [f"{missing} derived from {' and '.join(present)} by closure GHI = DNI cos(zenith) + DHI"]


def resample_weather(weather: pd.DataFrame, index_utc: pd.DatetimeIndex) -> pd.DataFrame:
    """Interpolate a weather frame linearly in time onto another UTC index.

    For example hourly TMY3 data (at hh:30) onto a 1-minute simulation.
    Linear interpolation of non-negative irradiance cannot go negative, so
    irradiance stays >= 0. Times before the first or after the last row take
    that row's values, but only up to one median row spacing away: a longer
    reach is an error, not an extrapolation.

    Parameters
    ----------
    weather : pd.DataFrame
        :data:`WEATHER_COLUMNS` on a strictly increasing tz-aware index.
    index_utc : pd.DatetimeIndex
        tz-aware UTC target timestamps.

    Returns
    -------
    pd.DataFrame
        :data:`WEATHER_COLUMNS` on ``index_utc``.
    """
    _require_utc(index_utc)
    source = weather.index
    if (not isinstance(source, pd.DatetimeIndex) or source.tz is None or not source.is_monotonic_increasing
            or not source.is_unique):
        raise ValueError("weather index must be tz-aware and strictly increasing")
    epoch = pd.Timestamp(0, tz="UTC")
    source_s = ((source - epoch) / pd.Timedelta(seconds=1)).to_numpy(float)
    target_s = ((index_utc - epoch) / pd.Timedelta(seconds=1)).to_numpy(float)
    if len(target_s):
        reach_s = float(np.median(np.diff(source_s))) if len(source_s) > 1 else 0.0
        if target_s.min() < source_s[0] - reach_s or target_s.max() > source_s[-1] + reach_s:
            raise ValueError(f"index {index_utc[0]} .. {index_utc[-1]} reaches beyond the weather data "
                             f"{weather.index[0]} .. {weather.index[-1]}")
    return pd.DataFrame(
        {name: np.interp(target_s, source_s, weather[name].to_numpy(float)) for name in WEATHER_COLUMNS},
        index=index_utc,
    )


def _require_utc(index: pd.DatetimeIndex) -> None:
    """Raise ValueError unless ``index`` is a tz-aware UTC DatetimeIndex."""
    if not isinstance(index, pd.DatetimeIndex) or index.tz is None or str(index.tz) != "UTC":
        raise ValueError("index must be a tz-aware UTC pandas DatetimeIndex")
