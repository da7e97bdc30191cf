"""Shared pieces of the optimizer tests: small parks built in code and horizon inputs from plain arrays."""

from __future__ import annotations

import numpy as np
import pandas as pd

from optimizer.inputs import HorizonInputs
from optimizer.model import DispatchAssets
from optimizer.plan import PlanContext
from twin.park import PlantSchedule

UTC_START = pd.Timestamp("2026-06-30T16:00Z")  # 2026-07-01 00:00 Asia/Shanghai


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
