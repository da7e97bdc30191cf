"""A closed loop's re-plans hand HiGHS the last one's basis (optimizer.warm_start): the same optimum as a
cold start, reached in fewer simplex iterations; an LP of another shape starts cold."""

from __future__ import annotations

from dataclasses import replace

import pytest
from optimizer_cases import demo_inputs

from optimizer.inputs import HorizonInputs, InitialState
from optimizer.model import DispatchAssets, build_lp
from optimizer.plan import plan_options
from optimizer.solve import new_highs, pass_matrix
from optimizer.warm_start import WarmStart


@pytest.fixture(scope="module")
def hourly_relaxations():
    """Six day-ahead LPs of the demo park, one hour apart (no realizability binaries)."""
    park, tariff, inputs = demo_inputs(2)
    options = replace(plan_options(tariff), realizability="never")
    assets = DispatchAssets.of_park(park)
    return [build_lp(HorizonInputs(inputs.frame.iloc[k:k + 96]), assets, InitialState(), options)
            for k in range(0, 24, 4)], assets, options, inputs


def run(lp, warm_start: WarmStart | None) -> tuple[float, int]:
    """(objective, simplex iterations) of the LP, from the warm start's basis where given."""
    assert not lp.has_integers
    highs = new_highs()
    pass_matrix(highs, lp)
    if warm_start is not None:
        warm_start.apply(highs, lp)
    highs.run()
    if warm_start is not None:
        warm_start.keep(highs, lp)
    info = highs.getInfo()
    return info.objective_function_value, info.simplex_iteration_count


def test_each_replan_reaches_the_cold_optimum_in_fewer_iterations(hourly_relaxations):
    lps, _, _, _ = hourly_relaxations
    warm_start = WarmStart()
    cold = [run(lp, None) for lp in lps]
    warm = [run(lp, warm_start) for lp in lps]
    for (cold_objective, _), (warm_objective, _) in zip(cold, warm):
        assert warm_objective == pytest.approx(cold_objective, rel=1e-9)
    assert warm[0][1] == cold[0][1]  # nothing kept yet: the first starts cold
    assert sum(i for _, i in warm[1:]) < 0.8 * sum(i for _, i in cold[1:])


def test_an_lp_of_another_shape_starts_cold(hourly_relaxations):
    lps, assets, options, inputs = hourly_relaxations
    warm_start = WarmStart()
    run(lps[0], warm_start)
    shorter = build_lp(HorizonInputs(inputs.frame.iloc[4:92]), assets, InitialState(),
                       options)
    assert shorter.a.shape != lps[0].a.shape
    assert run(shorter, warm_start)[1] == run(shorter, None)[1]
