"""The park's outdoor environment for the simulator: weather and the PV arrays' output.

Implements ``twin.sim.Environment``: ``conditions(index_utc)`` gives air
temperature, GHI and, per PV array, AC power, plane-of-array irradiance and
cell temperature from the pvlib model of :mod:`energy.pv`.
"""

from __future__ import annotations

import pandas as pd

from energy.pv import pv_model_outputs_many
from energy.weather import SHENZHEN_CLIMATE, MonthlyClimate, clear_sky_weather, read_tmy3_weather, resample_weather
from twin.kinds.pvwatts import PVWattsParams
from twin.park import Park


def pv_arrays(park: Park) -> dict[str, PVWattsParams]:
    """PVWatts parameters of every asset of the park that generates from irradiance (its kind declares them,
    :meth:`twin.kinds.base.AssetBase.pvwatts`), by asset id, in file order."""
    return {asset.id: params for _, asset in park.iter_assets() if (params := asset.pvwatts()) is not None}


def park_climate(park: Park) -> MonthlyClimate:
    """Monthly temperature normals for clear-sky weather: the park file's, else Shenzhen's."""
    source = park.weather
    if source.monthly_mean_temp_c is None or source.monthly_temp_swing_c is None:  # the park file gives both or neither
        return SHENZHEN_CLIMATE
    return MonthlyClimate(park.name, tuple(source.monthly_mean_temp_c), tuple(source.monthly_temp_swing_c),
                          source="park file")


class ParkEnvironment:
    """Weather and PV output for a park, from its weather source (clear sky or TMY3)."""

    def __init__(self, park: Park):
        self.park = park
        self.arrays = pv_arrays(park)
        self.climate = park_climate(park)
        self._tmy_by_year: dict[int, pd.DataFrame] = {}

    def weather(self, index_utc: pd.DatetimeIndex) -> pd.DataFrame:
        """Weather columns of ``energy.weather`` on ``index_utc``."""
        site, source = self.park.site, self.park.weather
        if source.source == "tmy3":
            years = sorted({ts.year for ts in (index_utc[0], index_utc[-1])})
            frames = [self._tmy(year) for year in range(years[0] - 1, years[-1] + 2)]
            return resample_weather(pd.concat(frames).sort_index(), index_utc)
        # each timestamp gets its own local month's normals, so any index sees the same weather at the
        # same moment (clouds sit on a grid fixed in time), a year-long index included
        local_month = index_utc.tz_convert(site.timezone).month.to_numpy()
        frames = [clear_sky_weather(site.latitude_deg, site.longitude_deg, site.altitude_m,
                                    index_utc[local_month == month], self.climate.mean_temp_c[month - 1],
                                    self.climate.temp_swing_c[month - 1], cloudiness=source.cloudiness,
                                    seed=self.park.simulation.seed)
                  for month in pd.unique(local_month)]
        return frames[0] if len(frames) == 1 else pd.concat(frames).reindex(index_utc)

    def conditions(self, index_utc: pd.DatetimeIndex) -> pd.DataFrame:
        """Air temperature, GHI and each array's ``<id>.ac_kw``, ``<id>.poa_wm2``, ``<id>.cell_temp_c``."""
        weather = self.weather(index_utc)
        site = self.park.site
        columns = {"temp_air_c": weather["temp_air_c"], "ghi_wm2": weather["ghi_wm2"]}
        outputs = pv_model_outputs_many(self.arrays, weather, site.latitude_deg, site.longitude_deg, site.altitude_m)
        for array_id, frame in outputs.items():
            for column in ("ac_kw", "poa_wm2", "cell_temp_c"):
                columns[f"{array_id}.{column}"] = frame[column]
        return pd.DataFrame(columns, index=index_utc)

    def _tmy(self, year: int) -> pd.DataFrame:
        if year not in self._tmy_by_year:
            if self.park.weather.file is None:
                raise ValueError("TMY3 weather needs weather.file in the park file")
            self._tmy_by_year[year] = read_tmy3_weather(self.park.weather.file, year)
        return self._tmy_by_year[year]
