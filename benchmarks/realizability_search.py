"""Realizability binaries: ParkTwin's own branch and bound (optimizer.branch_and_bound) against the HiGHS MIP.

Run:  .venv/bin/python benchmarks/realizability_search.py [--repeats 3] [--days 7]

Both solve the same matrix to the same relative gap (1e-6) and node budget, from a cold start, on a
fresh HiGHS instance each (load included in the time). Cases, the demo park's inputs from 2026-07-01:
- "re-plans with chiller-mode binaries": 24-hour horizons starting every 4 hours over --days days
  (the controller's day-ahead re-plans): each horizon's LP is solved once, and the steps where the
  solution mixes a pair's flows (a chiller in both modes, mostly) get binaries, as
  optimizer.plan.realizable_solve does in its second solve; the horizons whose model then has binaries
  are the cases;
- "export of PV surplus": the demo day with the tariff's export price above the valley price;
- "week as one horizon": the --days days in one model (chiller-mode and PV-export binaries).
The near-symmetric day where any export is paid is left out: the search hands it over to the HiGHS
MIP after its node limit, so both arms would time mostly the same MIP.
Prints, per case group, the median time of each and the ratio MIP / search, and checks that both
reach the same objective within the gap.
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import highspy
import numpy as np

from energy.environment import ParkEnvironment
from energy.tariff import load_tariff
from optimizer.branch_and_bound import pairs_only, search_realizable
from optimizer.inputs import HorizonInputs, InitialState
from optimizer.linear_program import LinearProgram
from optimizer.model import DispatchAssets, build_lp
from optimizer.park_inputs import park_horizon_inputs, simulated_loads
from optimizer.plan import plan_options, simultaneous_steps
from optimizer.solve import new_highs, pass_matrix, solve
from twin.config import load_park

DEMO = Path(__file__).resolve().parents[1] / "examples" / "demo-park"
START_UTC = datetime(2026, 6, 30, 16, tzinfo=UTC)  # 2026-07-01 00:00 Asia/Shanghai
GAP = 1e-6


def search_s(lp: LinearProgram, max_nodes: int) -> tuple[float, float]:
    """(seconds, objective) of the branch and bound on a fresh instance."""
    started = time.perf_counter()
    highs = new_highs()
    highs.setOptionValue("mip_rel_gap", GAP)
    pass_matrix(highs, lp, integrality=False)
    search_realizable(highs, lp, GAP, None, None, max_nodes)
    elapsed = time.perf_counter() - started
    return elapsed, lp.objective(np.asarray(highs.getSolution().col_value))


def mip_s(lp: LinearProgram, max_nodes: int) -> tuple[float, float]:
    """(seconds, objective) of the HiGHS MIP on a fresh instance."""
    started = time.perf_counter()
    highs = new_highs()
    highs.setOptionValue("mip_rel_gap", GAP)
    highs.setOptionValue("mip_max_nodes", max_nodes)
    pass_matrix(highs, lp, integrality=True)
    highs.run()
    elapsed = time.perf_counter() - started
    assert highs.getModelStatus() in (highspy.HighsModelStatus.kOptimal, highspy.HighsModelStatus.kSolutionLimit)
    return elapsed, lp.objective(np.asarray(highs.getSolution().col_value))


def compare(name: str, lps: list[LinearProgram], repeats: int, max_nodes: int) -> None:
    searches, mips, worst_gap = [], [], 0.0
    for lp in lps:
        search_runs = [search_s(lp, max_nodes) for _ in range(repeats)]
        mip_runs = [mip_s(lp, max_nodes) for _ in range(repeats)]
        searches.append(statistics.median(t for t, _ in search_runs))
        mips.append(statistics.median(t for t, _ in mip_runs))
        search_objective, mip_objective = search_runs[0][1], mip_runs[0][1]
        worst_gap = max(worst_gap, abs(search_objective - mip_objective) / max(1.0, abs(mip_objective)))
    ratios = [m / s for s, m in zip(searches, mips)]
    print(f"{name:<40} {len(lps):3d} case(s)  search median {1000 * statistics.median(searches):7.1f} ms  "
          f"HiGHS MIP median {1000 * statistics.median(mips):7.1f} ms  ratio MIP/search median "
          f"{statistics.median(ratios):5.2f} (min {min(ratios):.2f}, max {max(ratios):.2f})  "
          f"objectives within {worst_gap:.1e}")


def replan_cases(inputs: HorizonInputs, assets: DispatchAssets, options, days: int) -> list[LinearProgram]:
    """The second solve's model of each 24-hour horizon, every 4 hours, that needs binaries."""
    cases = []
    for start in range(0, 96 * days - 96 + 1, 16):
        horizon = HorizonInputs(inputs.frame.iloc[start:start + 96])
        lp = build_lp(horizon, assets, InitialState(), options)
        if not lp.has_integers:
            result = solve(lp, "highs", GAP)
            mixed = simultaneous_steps(lp, result.x)
            if not mixed.any:
                continue
            lp = build_lp(horizon, assets, InitialState(), options, extra_binaries=mixed)
        if pairs_only(lp):
            cases.append(lp)
    return cases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--days", type=int, default=7)
    args = parser.parse_args()
    park = load_park(DEMO / "park.yaml")
    tariff = load_tariff(DEMO / "tariff.yaml")
    loads = simulated_loads(park, ParkEnvironment(park), START_UTC, START_UTC + timedelta(days=args.days))
    prices = tariff.energy_price_cny_per_kwh(loads.index)
    inputs = park_horizon_inputs(loads, prices, tariff.export_price_cny_per_kwh)
    options = plan_options(tariff)
    assets = DispatchAssets.of_park(park)
    day = HorizonInputs(inputs.frame.iloc[:96])
    print(f"realizability binaries, gap {GAP:g}, node budget {options.mip_max_nodes}, median of {args.repeats}")
    compare("re-plans with chiller-mode binaries", replan_cases(inputs, assets, options, args.days), args.repeats,
            options.mip_max_nodes)
    compare("export of PV surplus", [build_lp(day, assets, InitialState(), options)], args.repeats,
            options.mip_max_nodes)
    compare("week as one horizon", [build_lp(inputs, assets, InitialState(), options)], args.repeats,
            options.mip_max_nodes)


if __name__ == "__main__":
    main()
