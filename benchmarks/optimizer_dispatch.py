"""Dispatch optimizer benchmark: build + solve times, their ratio to solver-only time, and the backtest.

Run:  .venv/bin/python benchmarks/optimizer_dispatch.py [--repeats 15] [--backtest-days 7]

Cases (inputs: the demo park's simulated loads and PV, its tariff):
- 96-step day and 672-step week without binaries (export price set to 0.20 CNY/kWh, below every
  import price, so no import/export loop can pay);
- a park with 20 batteries and 10 ice tanks, 96 steps, no binaries;
- the 96-step day with the demo tariff's export price 0.40 CNY/kWh, above the valley price, for PV
  surplus only (the tariff's export_limited_to_pv): realizability binaries go on the valley steps with
  sun; asked for a relative gap of 1e-6;
- the same day with any export paid (the battery may sell stored grid energy): binaries on all 32
  valley steps, a near-symmetric MIP; the gap reached within --mip-time-limit is printed;
- the closed-loop backtest re-planning every hour, the strategies in worker processes (one per
  strategy, at most one per CPU): measured over --backtest-days, extrapolated to 365 unless it is 365
  (0 leaves it out).

Every case is solved the default way, HiGHS through PuLP (the PuLP model built from the sparse matrix,
solved by pulp.HiGHS); the LP cases also straight through highspy, for comparison. Each time is the
median of --repeats runs; "total" is assembling the model plus solving, "solver" the HiGHS run alone.
Targets: 96 steps <= 50 ms, 672 steps <= 500 ms, ratio <= 2.0; with binaries 96 steps
<= 100 ms at gap 1e-6; 365-day backtest <= 5 min.
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from energy.environment import ParkEnvironment
from energy.tariff import load_tariff
from optimizer.backtest import OPTIMAL, backtest
from optimizer.baselines import BASELINES
from optimizer.inputs import HorizonInputs, InitialState
from optimizer.model import DispatchAssets, build_lp
from optimizer.park_inputs import park_horizon_inputs, simulated_loads
from optimizer.plan import plan_options
from optimizer.solve import DEFAULT_SOLVER, solve
from twin.config import load_park
from twin.kinds import Battery, Chiller, IceTank

DEMO = Path(__file__).resolve().parents[1] / "examples" / "demo-park"
START_UTC = datetime(2026, 6, 30, 16, tzinfo=UTC)  # 2026-07-01 00:00 Asia/Shanghai


def timed(inputs: HorizonInputs, assets: DispatchAssets, options, repeats: int, solver: str = DEFAULT_SOLVER):
    """Median total (build + solve) and solver-only seconds, and the last result (after one untimed
    run, so that first-call costs such as imports do not land in the first case's figures)."""
    solve(build_lp(inputs, assets, InitialState(), options), solver, options.mip_rel_gap, options.mip_time_limit_s)
    totals, solver_times, result = [], [], None
    for _ in range(repeats):
        started = time.perf_counter()
        lp = build_lp(inputs, assets, InitialState(), options)
        result = solve(lp, solver, options.mip_rel_gap, options.mip_time_limit_s)
        totals.append(time.perf_counter() - started)
        solver_times.append(result.solve_time_s)
    return statistics.median(totals), statistics.median(solver_times), result, lp


def report(name: str, total_s: float, solver_s: float, result, lp, target_s: float | None) -> None:
    ratio = total_s / solver_s if solver_s > 0 else float("inf")
    verdict = ""
    if target_s is not None:
        checks = {"time": total_s <= target_s}
        if lp.has_integers:
            checks["gap 1e-6"] = result.optimal
        else:
            checks["ratio 2.0"] = ratio <= 2.0
        verdict = ", ".join(f"{name} {'PASS' if ok else 'MISS'}" for name, ok in checks.items())
    gap = f" gap {result.mip_gap:.1e}" if lp.has_integers and result.mip_gap is not None else ""
    print(f"{name:<44} {lp.a.shape[1]:>7} cols {lp.a.shape[0]:>7} rows  total {1000 * total_s:8.1f} ms  "
          f"solver {1000 * solver_s:8.1f} ms  ratio {ratio:5.2f}  {result.status}{gap}  "
          f"{'' if target_s is None else f'target {1000 * target_s:.0f} ms '}{verdict}")


def many_storage_assets(park) -> DispatchAssets:
    """The demo plant's chillers with 10 ice tanks and 20 batteries of varied sizes."""
    base = DispatchAssets.of_park(park)
    tanks = tuple(IceTank(id=f"tank{i}", capacity_kwhth=1500 + 100 * i, charge_rate_max_kwth=300 + 10 * i,
                          melt_rate_max_kwth=300 + 15 * i) for i in range(10))
    chillers = base.of_kind("chiller") + tuple(Chiller(id=f"icechiller{i}", cooling_capacity_kwth=400, cop_rated=5.5,
                                             ice_capacity_kwth=300, ice_cop_rated=4.0) for i in range(10))
    batteries = tuple(Battery(id=f"battery{i}", energy_capacity_kwh=200 + 20 * i, charge_power_max_kw=100 + 5 * i,
                              discharge_power_max_kw=100 + 5 * i) for i in range(20))
    return DispatchAssets((*chillers, *tanks, *batteries, *base.of_kind("ev_charger")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--backtest-days", type=int, default=7)
    parser.add_argument("--mip-time-limit", type=float, default=5.0)
    args = parser.parse_args()

    park = load_park(DEMO / "park.yaml")
    tariff = load_tariff(DEMO / "tariff.yaml")
    environment = ParkEnvironment(park)
    loads = simulated_loads(park, environment, START_UTC, START_UTC + timedelta(days=7))
    prices = tariff.energy_price_cny_per_kwh(loads.index)
    week_no_loop = park_horizon_inputs(loads, prices, 0.20)
    day_no_loop = HorizonInputs(week_no_loop.frame.iloc[:96])
    day_demo_export = park_horizon_inputs(loads.iloc[:96], prices.iloc[:96], tariff.export_price_cny_per_kwh)
    options = plan_options(tariff)
    assets = DispatchAssets.of_park(park)

    print(f"dispatch optimizer benchmark, median of {args.repeats} (HiGHS through PuLP unless noted)")
    report("demo day, 96 steps", *timed(day_no_loop, assets, options, args.repeats), 0.050)
    report("demo day, 96 steps, highspy directly", *timed(day_no_loop, assets, options, args.repeats, "highs"),
           None)
    report("demo week, 672 steps", *timed(week_no_loop, assets, options, args.repeats), 0.500)
    report("demo week, 672 steps, highspy directly", *timed(week_no_loop, assets, options, args.repeats, "highs"),
           None)
    many = many_storage_assets(park)
    report("20 batteries + 10 ice tanks, 96 steps", *timed(day_no_loop, many, options, args.repeats), None)
    report("20 batteries + 10 ice tanks, highspy directly", *timed(day_no_loop, many, options, args.repeats,
                                                                   "highs"), None)
    mip_options = replace(options, mip_time_limit_s=args.mip_time_limit)
    report("demo day with binaries (export of PV surplus)", *timed(day_demo_export, assets, mip_options,
                                                                   args.repeats), 0.100)
    any_export = replace(mip_options, export_limited_to_pv=False)
    report(f"demo day, any export paid (limit {args.mip_time_limit:g} s)",
           *timed(day_demo_export, assets, any_export, max(3, args.repeats // 5)), None)

    days = args.backtest_days
    if days <= 0:
        return
    started = time.perf_counter()
    result = backtest(park, environment, tariff, START_UTC, days, (OPTIMAL,) + BASELINES)
    elapsed = time.perf_counter() - started
    per_day = elapsed / days
    year_s = per_day * 365
    print(f"backtest {days} days, 5 strategies, optimal re-planned hourly: {elapsed:.1f} s "
          f"({per_day:.1f} s/day; {len(result.plans)} plans, build+solve median "
          f"{1000 * statistics.median(result.solve_times_s):.0f} ms)")
    optimal_share = sum(result.solve_times_s) / elapsed
    how = "measured" if days == 365 else f"extrapolated from {days} days, not run"
    print(f"365-day backtest: {year_s / 60:.1f} min for all 5 strategies in {result.workers} worker processes "
          f"(optimal re-planning is {100 * optimal_share:.0f} % of the wall time); target 5 min "
          f"{'PASS' if year_s <= 300 else 'MISS'} ({how})")
    for name in BASELINES:
        print(f"  saving vs {name}: {result.savings_cny(name):,.0f} CNY ({result.savings_pct(name):.1f} %)")


if __name__ == "__main__":
    main()
