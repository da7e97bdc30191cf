"""A live run of the demo park under the controller (`parktwin run --speed 120 --approval auto` from 1 July): a
dispatch round every control step (counted from the write audit log), a re-plan at the set
interval, the park following its plans, and every setpoint handed back to the plant on Ctrl+C.

At 120x a control step is 7.5 s of wall clock, which a run keeps up with while other processes load
the machine; the 4-day run at 600x is benchmarks/live_vs_backtest.py."""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd
from park_copies import stop_with_ctrl_c

from twin.config import load_park
from twin.history import open_history
from twin.kinds import Battery, IceTank

STEP = timedelta(minutes=15)
STEPS_WANTED = 16
"""Control steps to watch: 4 simulated hours, 2 minutes of wall clock at --speed 120."""



def rounds_of(records: list, gap: timedelta = timedelta(seconds=10)) -> list[list]:
    """Write records grouped into dispatch rounds: a round's writes go out at once and are stamped together
    on the twin's clock when it is done, rounds are minutes apart."""
    rounds: list[list] = []
    for record in records:
        if rounds and record.ts_utc - rounds[-1][-1].ts_utc < gap:
            rounds[-1].append(record)
        else:
            rounds.append([record])
    return rounds


def test_auto_run_dispatches_every_step_and_releases_on_stop(auto_run_at_120x, demo_park_copy):
    plan = auto_run_at_120x.plan_with_rounds(STEPS_WANTED)
    stop_with_ctrl_c(auto_run_at_120x.process, timeout_s=30)
    assert auto_run_at_120x.process.returncode == 0, auto_run_at_120x.output()
    url = auto_run_at_120x.history_url

    park = load_park(demo_park_copy)
    with open_history(url) as store:
        records = store.write_audit()
    controller = [r for r in records if r.who.startswith("controller:")]
    dispatched = [r for r in controller if r.value is not None]
    released = [r for r in controller if r.value is None]

    # a dispatch round at (at least 95 % of) every control step the run went through
    rounds = rounds_of(dispatched)
    shown = [r for r in plan["rounds"] if r["writes"]]
    first, last = datetime.fromisoformat(shown[0]["ts_utc"]), datetime.fromisoformat(shown[-1]["ts_utc"])
    control_steps = int((last - first) / timedelta(minutes=15)) + 1
    assert len(rounds) >= 0.95 * control_steps >= 0.95 * STEPS_WANTED
    writable = {pid for pid, point in park.points.items() if point.writable}
    plan_points = {w["point_id"] for w in shown[-1]["writes"]}
    assert plan_points <= writable and {"plant.battery.power_setpoint_kw", "plant.ice_tank.charge_setpoint_kwth",
                                        "plant.ice_tank.melt_setpoint_kwth"} <= plan_points
    assert all(len({r.point_id for r in round_}) == len(plan_points) for round_ in rounds[1:-1])
    assert all(r.result == "ok" for r in dispatched)

    # setpoints go out ahead of their step, so that they are in force when it begins: rounds land (their audit
    # stamp is taken when the round is done) before their step's start, the nearest 15-minute boundary, but on
    # a loaded machine some are late (the first round is the step in force at start, written at once)
    landed_s = sorted((round_[-1].ts_utc - pd.Timestamp(round_[-1].ts_utc).round(STEP)).total_seconds()
                      for round_ in rounds[1:])
    assert landed_s[len(landed_s) // 4] <= 0, landed_s

    # a re-plan every 15 minutes of simulated time, each from the step it starts at
    made = [datetime.fromisoformat(r["made_utc"]) for r in plan["replans"]]
    assert len(made) >= STEPS_WANTED - 1
    assert all(later - earlier == timedelta(minutes=15) for earlier, later in zip(made, made[1:]))

    # the park follows its plans: stored energy and ice inventory stay near what the plan in force expected
    (battery,), (tank,) = park.assets_of(Battery), park.assets_of(IceTank)
    rms = plan["tracking_rms"]
    assert set(rms) == {"battery.stored_kwh", "ice_tank.inventory_kwhth"}
    assert rms["battery.stored_kwh"] <= 0.05 * battery.energy_capacity_kwh
    assert rms["ice_tank.inventory_kwhth"] <= 0.05 * tank.capacity_kwhth

    # Ctrl+C: every point written is handed back: BACnet relinquishes, Modbus clears its fail-safe enable register
    assert {r.point_id for r in released} == plan_points
    assert all(record.result == "ok" for record in released), released
