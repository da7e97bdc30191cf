"""The two ports the rolling-horizon controller (optimizer.controller) depends on.

The controller never knows what is behind them:

- a :class:`Field` is the park as the controller sees it: its clock, the state a
  plan starts from, and the setpoints it can write and release. The simulated
  field (``twin.simulated_field.SimulatedField``) drives the park simulator in
  backtests; the protocol field (``protocols.field.ProtocolField``) writes
  through Modbus and BACnet with limits and audit in live runs.
- a :class:`Forecaster` gives the loads and PV the plan needs over a horizon.
  ``energy.forecast.HistoryForecaster`` learns them from the park's own
  history and a weather forecast (live runs, and backtests by default);
  ``optimizer.park_inputs.PerfectForecaster`` reads them off a simulator run
  (perfect foresight, only for backtests that ask for it by name).

Both are structural (typing.Protocol): implementations do not import this module.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

import pandas as pd

from energy.forecast import FORECAST_COLUMNS
from twin.field import FieldState

__all__ = ["FORECAST_COLUMNS", "Field", "FieldState", "Forecaster"]

class Field(Protocol):
    """The park the controller operates."""

    def now_utc(self) -> datetime:
        """The field's clock, tz-aware UTC (simulated time in backtests and demo runs)."""
        ...

    def read_state(self, at_utc: datetime | None = None) -> FieldState:
        """Storage state and the month's billed peak at ``at_utc`` (default: now; a later time is a step
        boundary the controller prepares for, and storage is brought forward to it by the flows in force)."""
        ...

    def write_setpoints(self, setpoints: dict[str, float], who: str) -> dict[str, str]:
        """Write each setpoint (point id -> value in engineering units) for ``who``; each point's
        result: "ok", or "refused: ..." / "failed: ..." (one failing point does not stop the others)."""
        ...

    def release_setpoints(self, who: str) -> dict[str, str]:
        """Hand every point this field has written back to the plant's own schedule; results as above. A
        point whose release failed stays written: the next release tries it again."""
        ...


class Forecaster(Protocol):
    """Loads and PV over a horizon."""

    def forecast(self, start_utc: datetime, steps: int, step: pd.Timedelta) -> pd.DataFrame:
        """``steps`` rows from ``start_utc`` at ``step`` (a UTC DatetimeIndex) with :data:`FORECAST_COLUMNS`,
        made with what is known at ``start_utc`` only."""
        ...
