"""Tariff edge cases: period boundaries, critical peak by month, demand charge per local billing month,
invalid files refused with the line and the reason."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from energy.tariff import load_tariff
from twin.config import ConfigError

DEMO_TARIFF = Path(__file__).parents[2] / "examples" / "demo-park" / "tariff.yaml"
FLAT = 0.65  # demo tariff: flat price, peak x1.7, valley x0.38, critical peak +25 % 15:00-17:00 in Jul-Sep


def local(*stamps: str) -> pd.DatetimeIndex:
    return pd.DatetimeIndex([pd.Timestamp(s, tz="Asia/Shanghai") for s in stamps]).tz_convert("UTC")


@pytest.fixture(scope="module")
def tariff():
    return load_tariff(DEMO_TARIFF)


def test_prices_change_exactly_at_period_boundaries(tariff):
    index = local("2026-07-01 07:59:59", "2026-07-01 08:00", "2026-07-01 09:59", "2026-07-01 10:00",
                  "2026-07-01 11:59", "2026-07-01 12:00", "2026-07-01 18:59", "2026-07-01 19:00",
                  "2026-07-01 23:59", "2026-07-02 00:00")
    expected = FLAT * np.array([0.38, 1.0, 1.0, 1.7, 1.7, 1.0, 1.7, 1.0, 1.0, 0.38])
    np.testing.assert_allclose(tariff.energy_price_cny_per_kwh(index).to_numpy(), expected)
    assert list(tariff.period_names(index)) == ["valley", "flat", "flat", "peak", "peak", "flat", "peak", "flat",
                                                "flat", "valley"]


def test_critical_peak_applies_in_its_window_and_months_only(tariff):
    index = local("2026-07-01 14:59", "2026-07-01 15:00", "2026-07-01 16:59", "2026-07-01 17:00",
                  "2026-06-30 15:30", "2026-10-01 15:30", "2026-09-30 15:30")
    expected = FLAT * 1.7 * np.array([1.0, 1.25, 1.25, 1.0, 1.0, 1.0, 1.25])
    np.testing.assert_allclose(tariff.energy_price_cny_per_kwh(index).to_numpy(), expected)


def test_demand_charge_takes_each_local_months_highest_15_minute_mean(tariff):
    # 1-minute import from 30 June 22:00 to 1 July 02:00 local (14:00-18:00 UTC): 400 kW base,
    # a 15-minute 900 kW block at 23:30-23:45 local on 30 June (the June peak),
    # 700 kW on 1 July 00:40-01:00 local: the 00:45-01:00 interval averages 700 kW (the July peak)
    # and 00:30-00:45 averages (10 x 400 + 5 x 700) / 15 = 500 kW.
    index = pd.date_range("2026-06-30T14:00Z", "2026-06-30T18:00Z", freq="1min", inclusive="left")
    grid_kw = pd.Series(400.0, index=index)
    wall = index.tz_convert("Asia/Shanghai")
    grid_kw[(wall >= pd.Timestamp("2026-06-30 23:30", tz="Asia/Shanghai"))
            & (wall < pd.Timestamp("2026-06-30 23:45", tz="Asia/Shanghai"))] = 900.0
    grid_kw[(wall >= pd.Timestamp("2026-07-01 00:40", tz="Asia/Shanghai"))
            & (wall < pd.Timestamp("2026-07-01 01:00", tz="Asia/Shanghai"))] = 700.0
    charges = tariff.demand_charges(grid_kw)
    assert list(charges.index) == ["2026-06", "2026-07"]
    assert charges.loc["2026-06", "peak_demand_kw"] == pytest.approx(900.0)
    assert charges.loc["2026-07", "peak_demand_kw"] == pytest.approx(700.0)
    assert charges.loc["2026-07", "peak_start_utc"] == pd.Timestamp("2026-06-30T16:45Z")  # still June in UTC
    assert charges.loc["2026-06", "charge_cny"] == pytest.approx(900.0 * 35.0)


def test_a_peak_straddling_two_intervals_is_averaged_within_each_and_export_is_no_demand(tariff):
    index = pd.date_range("2026-07-01T00:00Z", periods=60, freq="1min")
    grid_kw = pd.Series(-300.0, index=index)  # exporting
    grid_kw.iloc[10:20] = 1200.0  # 10 minutes across the 00:15 boundary: 5 in each interval
    (peak_kw,) = tariff.demand_charges(grid_kw)["peak_demand_kw"]
    assert peak_kw == pytest.approx(5 * 1200.0 / 15)


@pytest.mark.parametrize("periods, problem", [
    (('[{name: valley, start: "00:00", end: "08:00", price_cny_per_kwh: 0.3},'
     ' {name: flat, start: "09:00", end: "24:00", price_cny_per_kwh: 0.6}]'), "gap from 08:00 to 09:00"),
    (('[{name: valley, start: "00:00", end: "08:00", price_cny_per_kwh: 0.3},'
     ' {name: flat, start: "07:00", end: "24:00", price_cny_per_kwh: 0.6}]'), "overlaps the one before"),
    ('[{name: valley, start: "00:00", end: "24:00", price_ratio: 0.3}]', "price_ratio needs flat_price_cny_per_kwh"),
])
def test_a_tariff_with_gaps_overlaps_or_missing_prices_is_refused(tmp_path, periods, problem):
    path = tmp_path / "tariff.yaml"
    path.write_text(f"name: t\ntimezone: Asia/Shanghai\nperiods: {periods}\n")
    with pytest.raises(ConfigError, match=problem):
        load_tariff(path)


def test_export_is_paid_up_to_the_pv_production_when_the_tariff_limits_it(tariff):
    export_kw = np.array([0.0, 50.0, 300.0, 120.0])
    pv_kw = np.array([10.0, 80.0, 200.0, 0.0])  # the last: a battery exporting at night
    assert tariff.export_limited_to_pv  # the demo tariff: only PV surplus is bought
    assert tariff.paid_export_kw(export_kw, pv_kw).tolist() == [0.0, 50.0, 200.0, 0.0]
    unlimited = tariff.model_copy(update={"export_limited_to_pv": False})
    assert unlimited.paid_export_kw(export_kw, pv_kw).tolist() == export_kw.tolist()
