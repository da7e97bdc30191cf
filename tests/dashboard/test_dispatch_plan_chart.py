"""The dispatch page's charts of a park with a chilled-water tank beside the ice tank and the battery: each
storage asset's lines come from its kind's declarations (twin.kinds.base.AssetBase.plan_traces,
stored_pct_label), in park order, so the tank is drawn as itself and never as an ice tank."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dashboard.context import DashboardContext
from dashboard.pages.dispatch import actual_figure, plan_figure
from twin.config import load_park
from twin.history import open_history
from twin.live import LiveState
from twin.park import Park

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo-park" / "park.yaml"
TANK_ENTRY = ("      - {kind: chilled_water_tank, id: chw_tank, capacity_kwhth: 18604, charge_rate_max_kwth: 2000,\n"
              "         discharge_rate_max_kwth: 2400}\n")
NOW_UTC = datetime(2026, 7, 1, 2, tzinfo=UTC)
PLAN_STEPS = [
    {"ts_local": "2026-07-01 10:00:00+08:00", "price_cny_per_kwh": 1.2, "grid_import_kw": 2100.0,
     "grid_export_kw": 0.0, "ice_tank.charge_kwth": 0.0, "ice_tank.melt_kwth": 1500.0, "ice_tank.soc_pct": 62.0,
     "chw_tank.charge_kwth": 0.0, "chw_tank.discharge_kwth": 2400.0, "chw_tank.stored_kwhth": 9302.0,
     "chw_tank.soc_pct": 50.0, "battery.power_setpoint_kw": 800.0, "battery.soc_pct": 70.0},
    {"ts_local": "2026-07-01 10:15:00+08:00", "price_cny_per_kwh": 0.4, "grid_import_kw": 3300.0,
     "grid_export_kw": 0.0, "ice_tank.charge_kwth": 1200.0, "ice_tank.melt_kwth": 0.0, "ice_tank.soc_pct": 60.0,
     "chw_tank.charge_kwth": 2000.0, "chw_tank.discharge_kwth": 0.0, "chw_tank.stored_kwhth": 8702.0,
     "chw_tank.soc_pct": 46.8, "battery.power_setpoint_kw": -500.0, "battery.soc_pct": 60.0},
]
PLAN = {"id": "plan", "currency": "CNY", "steps": PLAN_STEPS}


@pytest.fixture(scope="module")
def park(tmp_path_factory) -> Park:
    """The demo park's file with the chilled-water tank in the plant building between the ice tank and the
    battery, without its tariff and point maps (not read here)."""
    text = re.sub(r"^(tariff|point_maps):.*\n", "", DEMO.read_text(encoding="utf-8"), flags=re.MULTILINE)
    battery = text.index("      - {kind: battery,")
    path = tmp_path_factory.mktemp("chw") / "park.yaml"
    path.write_text(text[:battery] + TANK_ENTRY + text[battery:], encoding="utf-8")
    return load_park(path)


def test_the_plan_chart_draws_the_chilled_water_tank_with_its_own_labelled_lines_in_park_order(park):
    traces = {trace["name"]: trace for trace in plan_figure(PLAN, park, NOW_UTC)["data"]}
    assert [(name, trace["yaxis"]) for name, trace in traces.items()] == [
        ("energy price (CNY/kWh)", "y"),
        ("ice_tank ice making kWth", "y2"), ("ice_tank ice melt kWth", "y2"),
        ("chw_tank chilled-water charge kWth", "y2"), ("chw_tank chilled-water discharge kWth", "y2"),
        ("battery power kW (+ discharge)", "y2"),
        ("ice_tank ice inventory %", "y3"), ("chw_tank stored chilled water %", "y3"), ("battery SOC %", "y3"),
        ("grid import kW", "y4"), ("grid export kW", "y4")]
    charge, discharge, stored = (traces[f"chw_tank {label}"] for label in (
        "chilled-water charge kWth", "chilled-water discharge kWth", "stored chilled water %"))
    assert (charge["y"], discharge["y"], stored["y"]) == ([0.0, 2000.0], [2400.0, 0.0], [50.0, 46.8])
    assert stored["line"] == {"color": charge["line"]["color"], "shape": "hv", "dash": "dot"}
    ice_colours = {traces[name]["line"]["color"] for name in traces if name.startswith("ice_tank ")}
    assert ice_colours.isdisjoint({charge["line"]["color"], discharge["line"]["color"]})


def test_a_plan_without_the_tanks_columns_draws_no_line_of_it(park):
    """A plan made before the tank's LP block gave its columns: the tank is left out, the rest is drawn."""
    steps = [{column: value for column, value in step.items() if not column.startswith("chw_tank.")}
             for step in PLAN_STEPS]
    names = [trace["name"] for trace in plan_figure({**PLAN, "steps": steps}, park)["data"]]
    assert not any(name.startswith("chw_tank") for name in names)
    assert "ice_tank ice melt kWth" in names and "battery SOC %" in names


def test_the_plan_against_actual_panels_follow_park_order_with_the_tanks_own_title(tmp_path, park):
    with open_history(f"sqlite:///{tmp_path / 'h.sqlite'}") as store:
        figure = actual_figure(DashboardContext(park, LiveState(), store), PLAN, None, NOW_UTC)
    layout = figure["layout"]
    assert [layout[axis]["title"]["text"] for axis in ("yaxis", "yaxis2", "yaxis3", "yaxis4")] == [
        "ice_tank ice inventory %", "chw_tank stored chilled water %", "battery SOC %", "grid import kW"]
    planned = next(trace for trace in figure["data"] if trace["name"] == "plan in force chw_tank stored chilled "
                   "water % (plan)")
    assert (planned["yaxis"], planned["y"]) == ("y2", [50.0, 46.8])
