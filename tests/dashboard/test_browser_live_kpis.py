"""One live day of the demo park: `parktwin kpi`, /api/kpi, /api/energy and the Overview against each other
and against the simulator's own ground truth.

The day is run live as `parktwin run` runs it, in this process: the simulated devices served over Modbus TCP
and BACnet/IP on free ports, polled at their point maps' periods while the simulation runs 600 times faster
than the wall clock (so each device is read about every 10 simulated minutes, at its own instants), readings
stored in a real SQLite history. The simulator's step observer records every simulated minute as the ground
truth: the meters' and PV inverters' power as the devices present it.
"""

from __future__ import annotations

import json
import threading
import urllib.parse
import urllib.request
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from browser_support import ARTIFACTS, UI_WAIT_MS, ConsoleWatch
from cli_support import parktwin
from park_copies import copy_demo_park, free_port
from playwright.sync_api import expect
from waiting import wait_for
from werkzeug.serving import make_server

from dashboard.app import create_app
from energy.aligned import hold_limits_s
from energy.environment import ParkEnvironment
from energy.providers import EnergyKpiProvider
from energy.tariff import load_tariff
from parktwin.runtime import ProtocolFeed, SimulationClock, TwinSink
from protocols.pointmap import load_point_maps
from twin.config import load_park
from twin.history import open_history
from twin.live import LiveState
from twin.sim import ParkSimulator
from twin.subsystems import power_points

SPEED = 600.0
DAY = "2026-07-01"
DAY_START = datetime(2026, 6, 30, 16, 0, tzinfo=UTC)  # 1 July, local midnight in Shenzhen
DAY_END = DAY_START + timedelta(days=1)
RUN_FROM, RUN_TO = DAY_START - timedelta(minutes=30), DAY_END + timedelta(minutes=30)
"""The run starts and ends half an hour beyond the day, so that polled counters span its bounds."""
FIGURES = ("grid_import_kwh", "grid_export_kwh", "consumption_kwh", "pv_kwh", "cost_cny")


@pytest.fixture(scope="module")
def live_day(tmp_path_factory):
    """(park file, park, history, its URL, ground truth): the ground truth as one row per simulated minute of the
    day with the grid meter's power, the building meters' and the PV inverters' summed power (kW)."""
    folder = tmp_path_factory.mktemp("live-kpis")
    park_file = copy_demo_park(folder)
    park = load_park(park_file)
    simulator = ParkSimulator(park, ParkEnvironment(park), RUN_FROM)
    steps = []
    simulator.add_step_observer(lambda out: steps.append((out.ts_utc, out.values.copy())))
    url = f"sqlite:///{folder / 'live.sqlite'}"
    store = open_history(url)
    clock = SimulationClock(RUN_FROM, SPEED)
    sink = TwinSink(LiveState(), store, flush_every=5)
    feed = ProtocolFeed(simulator, clock, sink, load_point_maps(park.point_maps, park), audit=store,
                        points=park.points)
    feed.start()
    try:
        wait_for(lambda: clock.now_utc() >= RUN_TO, (RUN_TO - RUN_FROM).total_seconds() / SPEED + 120,
                 "the simulated day to pass")
    finally:
        feed.stop()
        sink.flush()
    column = {pid: i for i, pid in enumerate(simulator.point_ids)}
    groups = power_points(park)
    minutes = [(ts, values) for ts, values in steps if DAY_START <= ts < DAY_END]
    truth = pd.DataFrame({
        "grid_kw": [v[column[groups["grid"][0]]] for _, v in minutes],
        "building_kw": [sum(v[column[pid]] for pid in groups["building_meters"]) for _, v in minutes],
        "pv_kw": [sum(v[column[pid]] for pid in groups["pv"]) for _, v in minutes],
    }, index=pd.DatetimeIndex([ts for ts, _ in minutes]))
    assert len(truth) == 24 * 60 and truth.index.is_monotonic_increasing
    yield park_file, park, store, url, truth
    store.close()


def ground_truth(truth: pd.DataFrame, tariff) -> dict[str, float]:
    """The day's figures from the simulated minutes (1/60 h each): import, export, consumption (building
    meters), PV, and the energy cost: each minute's import at its tariff price, minus the export the tariff
    pays (no more than each 15-minute interval's PV, as the tariff's export_limited_to_pv says) at its price."""
    step_h = 1 / 60
    import_kwh = truth["grid_kw"].clip(lower=0) * step_h
    export_kwh = (-truth["grid_kw"]).clip(lower=0) * step_h
    price = tariff.energy_price_cny_per_kwh(truth.index).to_numpy()
    quarters = pd.DataFrame({"export": export_kwh, "pv": truth["pv_kw"] * step_h}).resample("15min").sum()
    paid_export_kwh = np.minimum(quarters["export"], quarters["pv"]).sum()
    return {"grid_import_kwh": float(import_kwh.sum()), "grid_export_kwh": float(export_kwh.sum()),
            "consumption_kwh": float(truth["building_kw"].sum() * step_h),
            "pv_kwh": float(truth["pv_kw"].sum() * step_h),
            "cost_cny": float((import_kwh.to_numpy() * price).sum()
                              - paid_export_kwh * tariff.export_price_cny_per_kwh)}


def card_number(page, selector: str) -> float:
    """The number a card shows ("12,345 kWh", "export 0.00 kWh", "5,678 CNY")."""
    text = page.inner_text(selector).removeprefix("export ")
    return float(text.split(" ")[0].replace(",", ""))


def test_cli_api_and_overview_agree_with_each_other_and_with_the_simulators_ground_truth(live_day, chromium):
    park_file, park, store, url, truth = live_day
    tariff = load_tariff(park.tariff)
    expected = ground_truth(truth, tariff)

    cli = parktwin("kpi", park_file, "--from", DAY, "--to", "2026-07-02", "--history", url, "--speed", SPEED, "--json")
    assert cli.returncode == 0, cli.stderr
    kpi_cli = json.loads(cli.stdout)

    hold_s = hold_limits_s(park, {pid: device.poll_period_s for device in load_point_maps(park.point_maps, park)
                                  for pid in device.point_ids}, SPEED)
    app = create_app(park, LiveState(), store, kpi=EnergyKpiProvider(park, store, tariff, hold_s))
    port = free_port()
    server = make_server("127.0.0.1", port, app.server, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    try:
        query = urllib.parse.urlencode({"from": DAY_START.isoformat(), "to": DAY_END.isoformat()})
        with urllib.request.urlopen(f"{base}/api/kpi?{query}") as response:
            kpis = json.load(response)["kpis"]
        with urllib.request.urlopen(f"{base}/api/energy?period=custom&first_day={DAY}&last_day={DAY}") as response:
            energy = json.load(response)["current"]
        page = chromium.new_page(viewport={"width": 1440, "height": 1000})
        watch = ConsoleWatch(page)
        page.goto(f"{base}/?period=custom&first_day={DAY}&last_day={DAY}")
        expect(page.locator("#kpi-cost_cny")).not_to_have_text("–", timeout=UI_WAIT_MS)
        overview = {"grid_import_kwh": card_number(page, "#kpi-grid_import_kwh"),
                    "grid_export_kwh": card_number(page, "#kpi-grid_import_kwh-note"),
                    "consumption_kwh": card_number(page, "#kpi-consumption_kwh"),
                    "pv_kwh": card_number(page, "#kpi-pv_kwh"), "cost_cny": card_number(page, "#kpi-cost_cny")}
        coverage_text = page.inner_text("#kpi-consumption_kwh-coverage")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "overview-live-day.png"), full_page=True)
        page.close()
    finally:
        server.shutdown()
        thread.join()

    sources = {
        "parktwin kpi": {**{f: kpi_cli[f] for f in FIGURES if f != "consumption_kwh"},
                         "consumption_kwh": kpi_cli["consumption_kwh"]["total"]},
        "/api/kpi": {f: kpis[f]["value"] for f in FIGURES},
        "/api/energy": {**{f: energy[f] for f in FIGURES if f != "consumption_kwh"},
                        "consumption_kwh": energy["consumption_kwh"]["total"]},
        "Overview": overview,
    }
    print(f"\nlive day {DAY} at --speed {SPEED:g}: each source against the simulator's minutes")
    print(f"{'figure':<18}{'ground truth':>14}" + "".join(f"{name:>22}" for name in sources))
    for figure in FIGURES:
        print(f"{figure:<18}{expected[figure]:>14,.1f}" + "".join(
            f"{values[figure]:>13,.1f} ({(values[figure] - expected[figure]) / max(abs(expected[figure]), 1e-9):+.3%})"
            for values in sources.values()))
    reference = sources["parktwin kpi"]
    for name, values in sources.items():
        for figure in FIGURES:
            # the Overview's cards show whole kWh and CNY (the export note two decimals under 10 kWh)
            assert values[figure] == pytest.approx(reference[figure], rel=0.005, abs=1.0), (name, figure)
            assert values[figure] == pytest.approx(expected[figure], rel=0.01, abs=1.0), (name, figure)
    # the counters span the day: every energy figure is measured for (nearly) all of it; on a loaded machine a
    # poll can come later than its reading's hold, and that stretch is reported as not covered, while the
    # counters still carry its energy (the figures above match the ground truth all the same)
    for figure in ("grid_import_kwh", "grid_export_kwh", "consumption_kwh", "pv_kwh"):
        assert 0.98 <= kpi_cli["coverage"][figure] <= 1.0, figure
    assert coverage_text == f"data for {kpi_cli['coverage']['consumption_kwh']:.1%} of the period"
    assert watch.errors == []
