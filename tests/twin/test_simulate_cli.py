"""`parktwin simulate` end to end: a week of the demo park into a real history store, checked from the stored readings.

The checks recompute the balances from the raw readings, independently of the simulator's code.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from cli_support import parktwin

from twin.config import load_park
from twin.history import open_history
from twin.subsystems import power_points

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "examples" / "demo-park" / "park.yaml"
START_UTC = datetime(2026, 6, 30, 16, tzinfo=UTC)  # 2026-07-01 00:00 Asia/Shanghai
STEP_H = 1 / 60


@pytest.fixture(scope="module")
def park():
    return load_park(DEMO)


@pytest.fixture(scope="module")
def week(tmp_path_factory, park) -> pd.DataFrame:
    """Seven days of every point, read back from the SQLite file the CLI wrote (wide frame)."""
    db = tmp_path_factory.mktemp("week") / "history.sqlite"
    result = parktwin("simulate", str(DEMO), "--start", "2026-07-01", "--days", "7", "--history", f"sqlite:///{db}")
    assert result.returncode == 0, result.stderr
    with open_history(f"sqlite:///{db}") as store:
        return store.query_wide(list(park.points), START_UTC, START_UTC + timedelta(days=7))


def test_seven_days_of_every_point(park, week):
    assert set(week.columns) == set(park.points)
    assert len(week) == 7 * 24 * 60
    assert week.index[0] == START_UTC and week.index[-1] == START_UTC + timedelta(days=7) - timedelta(minutes=1)
    assert not week.isna().any().any()


def local_days(frame: pd.DataFrame):
    local_dates = frame.index.tz_convert("Asia/Shanghai").date
    return frame.groupby(local_dates)


def test_energy_balance_closes_each_day_within_half_a_percent(park, week):
    groups = power_points(park)
    energy_kwh = week * STEP_H
    for day, rows in local_days(energy_kwh):
        main = rows[groups["grid"]].sum().sum()
        loads = rows[groups["building_meters"]].sum().sum()
        pv = rows[groups["pv"]].sum().sum()
        battery = rows[groups["battery"]].sum().sum()
        expected = loads - pv - battery
        assert abs(main - expected) <= 0.005 * abs(main), (day, main, expected)
        assert pv > 1000 and loads > 10 * pv / 10  # a real day: sun and loads


def test_meter_counters_integrate_meter_power(park, week):
    power = week["plant.grid_meter.power_kw"]
    imported = week["plant.grid_meter.import_energy_kwh"]
    exported = week["plant.grid_meter.export_energy_kwh"]
    np.testing.assert_allclose(np.diff(imported), (power.clip(lower=0) * STEP_H).iloc[:-1], atol=1e-6)
    np.testing.assert_allclose(np.diff(exported), (-power.clip(upper=0) * STEP_H).iloc[:-1], atol=1e-6)


def test_ice_inventory_is_conserved(park, week):
    tank = park.asset("ice_tank")
    inventory = week["plant.ice_tank.inventory_kwhth"]
    charge, melt = week["plant.ice_tank.charge_kwth"], week["plant.ice_tank.melt_kwth"]
    loss = week["plant.ice_tank.standing_loss_kwth"]
    # standing loss is the stated share of inventory per hour
    np.testing.assert_allclose(loss, inventory * tank.standing_loss_pct_per_h / 100, rtol=1e-9)
    flows = ((charge - melt - loss) * STEP_H).to_numpy()
    np.testing.assert_allclose(np.diff(inventory.to_numpy()), flows[:-1], atol=1e-6)
    for day, rows in local_days(week):
        change = rows["plant.ice_tank.inventory_kwhth"].iloc[-1] - rows["plant.ice_tank.inventory_kwhth"].iloc[0]
        net = ((rows["plant.ice_tank.charge_kwth"] - rows["plant.ice_tank.melt_kwth"]
                - rows["plant.ice_tank.standing_loss_kwth"]) * STEP_H).iloc[:-1].sum()
        assert change == pytest.approx(net, abs=1e-6), day
        assert rows["plant.ice_tank.charge_kwth"].sum() > 0 and rows["plant.ice_tank.melt_kwth"].sum() > 0
    assert not ((charge > 0) & (melt > 0)).any()
    delivered = week["plant.ice_tank.cooling_delivered_kwth"]
    np.testing.assert_allclose(delivered, melt * tank.melt_effectiveness, rtol=1e-9)
    assert inventory.min() >= 0 and inventory.max() <= tank.capacity_kwhth


def test_chillers_make_ice_only_in_ice_mode_and_it_matches_the_tank(park, week):
    ice_cooling = sum(week[f"plant.{c}.cooling_kwth"].where(week[f"plant.{c}.mode"] == 2, 0.0)
                      for c in ("chiller1", "chiller2", "chiller3"))
    np.testing.assert_allclose(ice_cooling, week["plant.ice_tank.charge_kwth"], atol=1e-6)


def test_faults_file_is_applied_and_checked(tmp_path, park):
    faults = tmp_path / "faults.yaml"
    faults.write_text("faults:\n"
                      "  - {kind: device_offline, target: ev5, start: 2026-07-01T01:00, end: 2026-07-01T02:00}\n")
    db = tmp_path / "f.sqlite"
    result = parktwin("simulate", str(DEMO), "--start", "2026-07-01", "--days", "1", "--history", f"sqlite:///{db}",
                      "--faults", str(faults))
    assert result.returncode == 0, result.stderr
    with open_history(f"sqlite:///{db}") as store:
        rows = store.query(["b1.ev5.power_kw"], START_UTC, START_UTC + timedelta(hours=3))
    offline = rows[(rows.ts_utc >= START_UTC + timedelta(hours=1)) & (rows.ts_utc < START_UTC + timedelta(hours=2))]
    assert len(offline) == 60 and (offline.quality == 3).all() and offline.value.isna().all()
    assert len(rows) == 180  # offline readings are stored, not dropped

    faults.write_text("faults:\n  - {kind: chiller_cop_drop, target: ev5, start: 2026-07-01T01:00}\n")
    bad = parktwin("simulate", str(DEMO), "--start", "2026-07-01", "--days", "1", "--history", f"sqlite:///{db}",
                   "--faults", str(faults))
    assert bad.returncode == 2 and "faults[0 ].target" not in bad.stderr
    assert str(faults) in bad.stderr and "faults[0].target" in bad.stderr and "applies to a chiller" in bad.stderr


@pytest.mark.parametrize("args, message", [
    (["--start", "2026-13-01"], "--start"),
    (["--start", "2026-07-01", "--history", "mysql://x"], "--history"),
    (["--start", "2026-07-01", "--days", "0"], "--days"),
])
def test_bad_options_exit_2(args, message):
    result = parktwin("simulate", str(DEMO), *args)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


@pytest.mark.postgres
def test_simulate_into_postgresql(postgres_url, park):
    result = parktwin("simulate", str(DEMO), "--start", "2026-07-01", "--days", "1", "--history", postgres_url)
    assert result.returncode == 0, result.stderr
    with open_history(postgres_url) as store:
        assert set(store.point_ids()) == set(park.points)
        wide = store.query_wide(["plant.grid_meter.power_kw"], START_UTC, START_UTC + timedelta(days=1))
    assert len(wide) == 1440 and wide.notna().all().all()
