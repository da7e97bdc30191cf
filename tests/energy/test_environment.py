"""The environment finds the park's PV by what the kinds declare (AssetBase.pvwatts), not by class."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pandas as pd
import yaml

from energy.environment import ParkEnvironment, pv_arrays
from twin.config import load_park
from twin.input_schema import PositiveFloat
from twin.kinds.base import AssetBase, M
from twin.kinds.pvwatts import PVWattsParams
from twin.points import PointSpec

DEMO_PARK = Path(__file__).parents[2] / "examples" / "demo-park" / "park.yaml"


class SolarFacade(AssetBase):
    """Building-integrated PV on a south facade: generates from irradiance, whatever its class."""

    kind: Literal["solar_facade"] = "solar_facade"
    dc_capacity_kw: PositiveFloat

    def pvwatts(self) -> PVWattsParams:
        return PVWattsParams(self.dc_capacity_kw, tilt_deg=90.0, azimuth_deg=180.0,
                             inverter_ac_kw=self.dc_capacity_kw)

    def standard_points(self) -> list[PointSpec]:
        return [PointSpec("ac_power_kw", "kW", M, low_limit=0)]


def test_the_demo_parks_arrays_are_its_files_pv_arrays_with_pvwatts_defaults_in_file_order():
    spec = yaml.safe_load(DEMO_PARK.read_text())
    expected = {asset["id"]: PVWattsParams(asset["dc_capacity_kw"], asset["tilt_deg"], asset["azimuth_deg"],
                                           asset["inverter_ac_kw"], losses_pct=14.0, gamma_pdc_per_c=-0.0037)
                for building in spec["buildings"] for asset in building["assets"] if asset["kind"] == "pv_array"}
    arrays = pv_arrays(load_park(DEMO_PARK))
    assert list(arrays) == list(expected) and len(arrays) == 4
    assert arrays == expected


def test_a_kind_declaring_pvwatts_parameters_gets_its_output_from_the_environment():
    park = load_park(DEMO_PARK)
    park.buildings[1].assets.append(SolarFacade(id="facade", dc_capacity_kw=50.0))
    index = pd.date_range("2026-07-01T00:00Z", periods=12, freq="1h")
    conditions = ParkEnvironment(park).conditions(index)
    assert list(pv_arrays(park)) == ["pv_plant_roof", "pv_roof_south", "facade", "pv_roof_east", "pv_roof_west"]
    facade = conditions["facade.ac_kw"]
    # a vertical south facade near the tropic of cancer in July sees little sun: far below a flat roof's
    # output per kWp, yet something by day
    roof = conditions["pv_plant_roof.ac_kw"] / 180.0
    assert facade.max() > 0.0
    assert (facade / 50.0 <= roof + 1e-9).all()
