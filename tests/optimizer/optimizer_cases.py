"""Shared pieces of the optimizer tests: small parks built in code and horizon inputs from plain arrays."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from energy.environment import ParkEnvironment
from energy.tariff import Tariff, load_tariff
from optimizer.inputs import HorizonInputs
from optimizer.model import DispatchAssets
from optimizer.park_inputs import park_horizon_inputs, simulated_loads
from optimizer.plan import PlanContext
from twin.config import load_park
from twin.park import Park, PlantSchedule

UTC_START = pd.Timestamp("2026-06-30T16:00Z")  # 2026-07-01 00:00 Asia/Shanghai
DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo-park"


def demo_inputs(days: int) -> tuple[Park, Tariff, HorizonInputs]:
    """The demo park, its tariff, and ``days`` days of 15-minute inputs from UTC_START: the simulator's
    loads and PV, the tariff's import prices and its export price (0.40 CNY/kWh, above the valley price)."""
    park = load_park(DEMO / "park.yaml")
    tariff = load_tariff(DEMO / "tariff.yaml")
    loads = simulated_loads(park, ParkEnvironment(park), UTC_START, UTC_START + timedelta(days=days))
    return park, tariff, park_horizon_inputs(loads, tariff.energy_price_cny_per_kwh(loads.index),
                                             tariff.export_price_cny_per_kwh)


def horizon(step_min: int, **columns) -> HorizonInputs:
    """Inputs on an index of ``step_min`` steps from UTC_START; export price defaults to 0."""
    n = len(columns["price_cny_per_kwh"])
    index = pd.date_range(UTC_START, periods=n, freq=f"{step_min}min")
    frame = pd.DataFrame({k: np.asarray(v, dtype=float) for k, v in columns.items()}, index=index)
    if "export_price_cny_per_kwh" not in frame:
        frame["export_price_cny_per_kwh"] = 0.0
    return HorizonInputs(frame)


def context(assets: DispatchAssets) -> PlanContext:
    return PlanContext(assets, PlantSchedule(), "Asia/Shanghai",
                       lambda index: pd.Series("all", index=index))
