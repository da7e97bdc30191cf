"""PV array output with pvlib's PVWatts chain.

Each array is a fixed-tilt PVWatts system [1]_ run through
:class:`pvlib.modelchain.ModelChain`: Perez transposition (as PVWatts),
physical incidence-angle modifier, no spectral loss, SAPM cell temperature,
PVWatts DC, PVWatts system losses and the PVWatts inverter with its AC
limit. The solar position is computed once per weather frame and shared by
all arrays.

References
----------
.. [1] Dobos, A.P. (2014). PVWatts Version 5 Manual. NREL/TP-6A20-62641.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import pvlib
from pvlib.location import Location
from pvlib.modelchain import ModelChain
from pvlib.pvsystem import PVSystem
from pvlib.temperature import TEMPERATURE_MODEL_PARAMETERS

from twin.kinds.pvwatts import PVWattsParams

PV_OUTPUT_COLUMNS = ("ac_kw", "poa_wm2", "cell_temp_c")
"""Columns of each array's output frame: AC power (kW), plane-of-array
irradiance (W/m2) and cell temperature (degC)."""

_PVLIB_WEATHER_NAMES = {
    "ghi_wm2": "ghi",
    "dni_wm2": "dni",
    "dhi_wm2": "dhi",
    "temp_air_c": "temp_air",
    "wind_speed_ms": "wind_speed",
}
"""ParkTwin weather columns -> pvlib ModelChain weather columns."""


def pv_system(params: PVWattsParams) -> PVSystem:
    """A pvlib PVSystem for one array and its inverter, configured for PVWatts.

    Units convert from kW to pvlib's W. The inverter's DC rating is
    ``inverter_ac_kw / inverter_eta_nom`` so that pvlib's PVWatts inverter
    limit ``eta_nom * pdc0`` equals ``inverter_ac_kw``. pvlib's PVWatts loss
    model multiplies named loss components; the whole ``losses_pct`` is put
    in one (``soiling``) and the others set to 0, so the total is exactly
    ``losses_pct``.

    Parameters
    ----------
    params : PVWattsParams
        The array.

    Returns
    -------
    pvlib.pvsystem.PVSystem
    """
    return PVSystem(
        surface_tilt=params.tilt_deg,
        surface_azimuth=params.azimuth_deg,
        module_parameters={"pdc0": params.dc_capacity_kw * 1000.0, "gamma_pdc": params.gamma_pdc_per_c},
        inverter_parameters={
            "pdc0": params.inverter_ac_kw * 1000.0 / params.inverter_eta_nom,
            "eta_inv_nom": params.inverter_eta_nom,
        },
        temperature_model_parameters=TEMPERATURE_MODEL_PARAMETERS["sapm"][params.temperature_model],
        losses_parameters={
            "soiling": params.losses_pct, "shading": 0.0, "snow": 0.0, "mismatch": 0.0, "wiring": 0.0,
            "connections": 0.0, "lid": 0.0, "nameplate_rating": 0.0, "age": 0.0, "availability": 0.0,
        },
    )


class _SharedSolarPosition(Location):  # type: ignore[misc]  # pvlib has no type information
    """A pvlib Location that hands every ModelChain one precomputed solar position.

    ModelChain computes the solar position for each run; for several arrays
    under the same weather it is the same, and it is most of the run time.
    """

    def __init__(self, location: Location, solar_position: pd.DataFrame) -> None:
        super().__init__(location.latitude, location.longitude, tz=location.tz, altitude=location.altitude)
        self._solar_position = solar_position

    def get_solarposition(self, times: pd.DatetimeIndex, pressure: float | None = None, temperature: float = 12,
                          **kwargs: Any) -> pd.DataFrame:
        if not times.equals(self._solar_position.index):
            raise ValueError("shared solar position was computed for other times")
        return self._solar_position


def pv_model_outputs_many(
    arrays: Mapping[str, PVWattsParams],
    weather: pd.DataFrame,
    latitude_deg: float,
    longitude_deg: float,
    altitude_m: float,
) -> dict[str, pd.DataFrame]:
    """AC power, plane-of-array irradiance and cell temperature of several arrays.

    Runs one PVWatts ModelChain (see the module docstring) per array on the
    same weather, with the solar position (pvlib SPA [1]_, refraction from the
    weather's air temperature) computed once.

    Parameters
    ----------
    arrays : Mapping[str, PVWattsParams]
        Arrays by id.
    weather : pd.DataFrame
        ``ghi_wm2``, ``dni_wm2``, ``dhi_wm2`` (W/m2), ``temp_air_c`` (degC),
        ``wind_speed_ms`` (m/s) on a tz-aware UTC index (see ``energy.weather``).
    latitude_deg, longitude_deg : float
        Site position, degrees north and east.
    altitude_m : float
        Site altitude, m.

    Returns
    -------
    dict[str, pd.DataFrame]
        Per array id, on the weather's index: ``ac_kw`` (kW AC, 0 to
        ``inverter_ac_kw``, 0 at night), ``poa_wm2`` (total plane-of-array
        irradiance before the incidence-angle modifier, W/m2, >= 0) and
        ``cell_temp_c`` (degC). Where pvlib's transposition is undefined
        (the sun below the horizon while the data show light, as hourly
        averages around sunrise can), POA and AC are 0 and the cell is at
        air temperature, as the SAPM model gives for no irradiance.

    References
    ----------
    .. [1] Reda, I. and Andreas, A. (2004). Solar position algorithm for solar
       radiation applications. Solar Energy 76(5), 577-589.
    """
    missing = [name for name in _PVLIB_WEATHER_NAMES if name not in weather.columns]
    if missing:
        raise ValueError(f"weather lacks columns: {', '.join(missing)}")
    index_tz = weather.index.tz if isinstance(weather.index, pd.DatetimeIndex) else None
    if index_tz is None or str(index_tz) != "UTC":
        raise ValueError("weather index must be tz-aware UTC")
    pvlib_weather = weather[list(_PVLIB_WEATHER_NAMES)].rename(columns=_PVLIB_WEATHER_NAMES)
    site = Location(latitude_deg, longitude_deg, altitude=altitude_m)
    shared = _SharedSolarPosition(site, site.get_solarposition(pvlib_weather.index,
                                                                 temperature=pvlib_weather["temp_air"]))
    outputs = {}
    for array_id, params in arrays.items():
        chain = ModelChain(
            pv_system(params), shared,
            dc_model="pvwatts", ac_model="pvwatts", aoi_model="physical", spectral_model="no_loss",
            temperature_model="sapm", losses_model="pvwatts", transposition_model="perez",
        )
        chain.run_model(pvlib_weather)
        outputs[array_id] = pd.DataFrame(
            {
                "ac_kw": chain.results.ac.fillna(0.0) / 1000.0,
                "poa_wm2": chain.results.total_irrad["poa_global"].fillna(0.0).clip(lower=0.0),
                "cell_temp_c": chain.results.cell_temperature.fillna(pvlib_weather["temp_air"]),
            },
            index=weather.index,
        )
    return outputs


def pv_ac_power_kw(
    params: PVWattsParams,
    weather: pd.DataFrame,
    latitude_deg: float,
    longitude_deg: float,
    altitude_m: float,
) -> pd.Series:
    """AC power of one array, kW, 0 to ``params.inverter_ac_kw``.

    The ``ac_kw`` column of :func:`pv_model_outputs_many` for a single array;
    parameters as there.
    """
    outputs = pv_model_outputs_many({"array": params}, weather, latitude_deg, longitude_deg, altitude_m)
    return outputs["array"]["ac_kw"]


def pv_expected_ac_from_poa_kw(
    params: PVWattsParams,
    poa_wm2: np.ndarray,
    cell_temp_c: np.ndarray,
) -> np.ndarray:
    """Expected AC power of an array from its measured plane-of-array irradiance and cell temperature, kW.

    The PVWatts chain from the plane of array on [1]_: ``pvlib.pvsystem.pvwatts_dc``
    (DC at STC scaled by irradiance / 1000 W/m2 and ``1 + gamma (T_cell - 25)``),
    the system losses ``losses_pct``, then ``pvlib.inverter.pvwatts`` with
    the AC limit ``inverter_ac_kw``. The incidence-angle loss is not applied
    (the measured POA is total irradiance), so this expectation runs a few
    percent above a healthy array's output at low sun: a fault check on it
    should allow for that. Used by the PV underperformance rule.

    References
    ----------
    .. [1] Dobos, A.P. (2014). PVWatts Version 5 Manual. NREL/TP-6A20-62641.
    """
    poa = np.clip(np.asarray(poa_wm2, dtype=float), 0.0, None)
    dc_w = pvlib.pvsystem.pvwatts_dc(poa, np.asarray(cell_temp_c, dtype=float), params.dc_capacity_kw * 1000.0,
                                     params.gamma_pdc_per_c) * (1.0 - params.losses_pct / 100.0)
    ac_w = pvlib.inverter.pvwatts(dc_w, params.inverter_ac_kw * 1000.0 / params.inverter_eta_nom,
                                  params.inverter_eta_nom)
    ac_kw: np.ndarray = np.clip(np.asarray(ac_w, dtype=float), 0.0, None) / 1000.0
    return ac_kw
