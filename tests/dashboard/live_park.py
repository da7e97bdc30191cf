"""A live park for dashboard tests without protocol servers: LiveOperation over a Controller on a SimulatedField
with perfect forecasts, the simulator's readings stored in a real history file as the steps go by.

Steps are driven by the test (:meth:`LivePark.step`), not by the operation's thread, so every round is known.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd
from browser_support import DEMO

from energy.environment import ParkEnvironment
from energy.tariff import load_tariff
from optimizer.controller import Authority, Controller, ControlStep, TariffPrices
from optimizer.operation import LiveOperation
from optimizer.park_inputs import PLAN_STEP, PerfectForecaster, hold_storage_run
from optimizer.plan import plan_context, plan_options
from twin.field import SimulatedField
from twin.history import History
from twin.park import Park
from twin.sim import ParkSimulator

BATTERY_SETPOINT = "plant.battery.power_setpoint_kw"


class LivePark:
    """The demo park simulated from ``start_utc``, operated by a LiveOperation in ``approval`` mode.

    ``horizon_h``: the controller's planning horizon (an approved plan ends that long after it was made).
    ``days``: how far the perfect forecasts reach (horizon included).
    """

    def __init__(self, park: Park, store: History, start_utc: datetime, approval: str, horizon_h: int = 4,
                 days: float = 1.5):
        self.park, self.store = park, store
        self.tariff = load_tariff(DEMO.parent / "tariff.yaml")
        environment = ParkEnvironment(park)
        loads = hold_storage_run(park, environment, start_utc, start_utc + timedelta(days=days)).loads
        self.simulator = ParkSimulator(park, environment, start_utc)
        self.field = SimulatedField(self.simulator, self.tariff.demand_interval_min)
        controller = Controller(park, self.field, PerfectForecaster(loads), TariffPrices(self.tariff),
                                plan_options(self.tariff, mip_time_limit_s=2.0), plan_context(park, self.tariff),
                                authority=Authority(approval), horizon_h=horizon_h, with_baselines=True,
                                who=f"controller:{approval}", keep_plans=4)
        self.alarms: list[tuple[str, str | None]] = []
        self.operation = LiveOperation(controller, self.field.now_utc, self.tariff.currency,
                                       on_alarm=lambda rule, message: self.alarms.append((rule, message)),
                                       review_time=park.dispatch.review_time_local)

    def now_utc(self) -> datetime:
        return self.field.now_utc()

    def step(self) -> ControlStep:
        """Simulate the step in force (its readings go into history), then run the next control step."""
        until = (pd.Timestamp(self.now_utc()).floor(PLAN_STEP) + PLAN_STEP).to_pydatetime()
        for frame in self.simulator.run(until):
            self.store.append_frame(frame)
        self.field.advance(until)  # nothing left to simulate: the field reads the meter counter
        return self.operation.step_now()

    def read_back(self, point_id: str, since_utc: datetime) -> list[float]:
        """What the simulator read for a point from ``since_utc`` on (stored readings)."""
        frame = self.store.query([point_id], since_utc, self.now_utc())
        return [float(v) for v in frame["value"]]
