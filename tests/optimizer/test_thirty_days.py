"""Every day of 30 days of the demo park: the optimal plan costs no more than any baseline on the same
inputs, and every baseline is a feasible point of the same model (so the comparison is like for like)."""

from __future__ import annotations

import numpy as np
import pytest
from optimizer_cases import demo_inputs

from optimizer.baselines import BASELINES, baseline_dispatch
from optimizer.inputs import HorizonInputs, InitialState
from optimizer.model import build_lp
from optimizer.plan import make_plan, plan_context, plan_options

DAYS = 30


@pytest.fixture(scope="module")
def plans():
    park, tariff, inputs = demo_inputs(DAYS)
    options = plan_options(tariff, mip_time_limit_s=1.0)
    context = plan_context(park, tariff)
    result = []
    for d in range(DAYS):
        day = HorizonInputs(inputs.frame.iloc[96 * d:96 * (d + 1)])
        result.append((day, make_plan(day, InitialState(), options, context)))
    return result, options, context


def test_optimal_plan_never_costs_more_than_a_baseline(plans):
    plans, _, _ = plans
    assert len(plans) == DAYS
    worst = []
    for day, plan in plans:
        assert plan.status in ("optimal", "time limit"), plan.diagnostic
        for name in BASELINES:
            saving = plan.savings_cny[name]
            worst.append(saving)
            assert saving >= -1e-6 * plan.baselines[name].total_cny, (day.index[0], name, saving)
    assert min(worst) >= 0


def test_baselines_are_feasible_points_of_the_same_model(plans):
    plans, options, context = plans
    for day, plan in plans[:5]:
        lp = build_lp(day, context.assets, InitialState(), options)
        for name in BASELINES:
            x = baseline_dispatch(name, lp, day, context.assets, context.schedule, context.timezone)
            assert lp.violation(x) < 1e-6 * max(1.0, np.abs(x).max()), (name, lp.violation(x))
            # priced by the same objective as the plan (no peak billed before: the demand term is the charge)
            assert lp.objective(x) == pytest.approx(plan.baselines[name].total_cny, rel=1e-9)


def test_baselines_are_causal_so_a_closed_loop_lays_out_one_interval(plans):
    """The backtest's closed loop lays a baseline out over the hour it acts on only (optimizer.backtest):
    that holds because each rule's step follows from the steps before it. Over the first hour alone,
    from a part-full tank and battery at several times of day (night charging, peak melting), every
    baseline's table is the first hour of its table over the whole 24 hours, to the last digit."""
    from optimizer.plan import baseline_columns

    _, options, context = plans
    _, _, inputs = demo_inputs(2)
    tank, battery = context.assets.of_kind("ice_tank")[0], context.assets.of_kind("battery")[0]
    state = InitialState({battery.id: 0.5 * battery.energy_capacity_kwh, tank.id: 0.4 * tank.capacity_kwhth}, 1500.0)
    for start_step in (0, 30, 44, 60, 80):  # local 00:00, 07:30, 11:00, 15:00, 20:00
        day = HorizonInputs(inputs.frame.iloc[start_step:start_step + 96])
        hour = HorizonInputs(day.frame.iloc[:4])
        for name in BASELINES:
            whole = baseline_columns(name, day, state, options, context)
            alone = baseline_columns(name, hour, state, options, context)
            assert list(alone) == list(whole)
            for column in whole:
                np.testing.assert_array_equal(alone[column], whole[column][:4],
                                              err_msg=f"{name} from step {start_step}: {column}")
