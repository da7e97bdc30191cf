"""Every fault rule on synthetic series: one that must raise it (with the right start) and one that must not."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
import pandas as pd
import pytest

from energy.fault_detection import EpisodeTracker
from energy.fault_rules import (
    DEFAULT_PRIORITIES,
    KIND_RULES,
    Condition,
    FaultThresholds,
    RuleInput,
    evaluate_rules,
    load_fault_thresholds,
)
from twin.config import ConfigError, load_park
from twin.fault_episodes import Priority
from twin.input_schema import PositiveFloat
from twin.kinds import kind_class, registered
from twin.kinds.base import AssetBase, M
from twin.park import Building
from twin.points import PointSpec
from twin.readings import Quality

PARK = load_park(Path(__file__).parents[2] / "examples" / "demo-park" / "park.yaml")
T0 = pd.Timestamp("2026-07-01T02:00Z")  # 10:00 in Shenzhen, a Wednesday
MINUTES = 120


def minutes(start: int, end: int, inside: float, outside: float) -> np.ndarray:
    """A 1-minute series of MINUTES values: ``inside`` for minutes [start, end), else ``outside``."""
    values = np.full(MINUTES, outside, dtype=float)
    values[start:end] = inside
    return values


def run(columns: dict[str, np.ndarray], qualities: dict[str, np.ndarray] | None = None,
        t0: pd.Timestamp = T0, limits: FaultThresholds | None = None) -> list:
    index = pd.date_range(t0, periods=MINUTES, freq="1min", name="ts_utc")
    values = pd.DataFrame(columns, index=index)
    quality = pd.DataFrame({pid: np.full(MINUTES, int(Quality.GOOD)) for pid in columns}, index=index)
    for pid, codes in (qualities or {}).items():
        quality[pid] = codes
    data = RuleInput(PARK, values, quality, pd.Timedelta(minutes=1))
    return EpisodeTracker().feed(evaluate_rules(data, limits or FaultThresholds()), data.times)


def found(episodes, rule_id: str, asset_id: str) -> list:
    return [e for e in episodes if e.rule_id == rule_id and e.asset_id == asset_id]


def at(minute: int) -> pd.Timestamp:
    return T0 + pd.Timedelta(minutes=minute)


def chiller3(mode: float, supply: np.ndarray, ret: np.ndarray, setpoint: float = 7.0) -> dict[str, np.ndarray]:
    return {"plant.chiller3.mode": np.full(MINUTES, mode), "plant.chiller3.chw_supply_temp_c": supply,
            "plant.chiller3.chw_return_temp_c": ret, "plant.chiller3.chw_setpoint_c": np.full(MINUTES, setpoint)}


def noisy(mean: float, sd: float, seed: int = 1) -> np.ndarray:
    return mean + sd * np.random.default_rng(seed).standard_normal(MINUTES)


# ------------------------------------------------------------- rules by kind

ASSET_RULE_KINDS = {"chw_low_delta_t": "chiller", "chw_supply_off_setpoint": "chiller", "chiller_low_cop": "chiller",
                    "chiller_short_cycling": "chiller", "pv_underperformance": "pv_array",
                    "battery_soc_out_of_window": "battery", "battery_overtemp": "battery",
                    "battery_voltage_spread": "battery", "elevator_out_of_service": "elevator",
                    "lighting_on_unoccupied": "lighting"}
"""The kind every asset rule id judges (DOMAIN.md "Fault rules worth having")."""


def test_each_asset_rule_judges_every_asset_of_its_kind_and_no_other():
    index = pd.date_range(T0, periods=MINUTES, freq="1min", name="ts_utc")
    nothing = pd.DataFrame(index=index, dtype=float)
    conditions = evaluate_rules(RuleInput(PARK, nothing, nothing, pd.Timedelta(minutes=1)), FaultThresholds())
    for rule_id, kind in ASSET_RULE_KINDS.items():
        judged = [c.asset_id for c in conditions if c.rule_id == rule_id]
        assert judged == [asset.id for _, asset in PARK.iter_assets() if asset.kind == kind], rule_id
    assert all(kind_class(name) for name in KIND_RULES)  # a name no kind has would list rules that never run


class Pump(AssetBase):
    """A chilled-water pump, a kind defined outside twin.kinds."""

    kind: Literal["pump"] = "pump"
    kind_label: ClassVar[str] = "Pump"
    rated_kw: PositiveFloat

    def standard_points(self) -> list[PointSpec]:
        return [PointSpec("power_kw", "kW", M)]


def pump_overload(data: RuleInput, limits: FaultThresholds, building: Building, pump: Pump) -> list[Condition]:
    """A pump drawing more than its rated power, for 5 minutes."""
    power_kw = data.point(building.id, pump.id, "power_kw")
    return [Condition("pump_overload", pump.id, power_kw > pump.rated_kw, pd.Timedelta(minutes=5),
                      {"power_kw": power_kw}, judged=np.isfinite(power_kw))]


def test_a_new_kind_brings_its_rules_which_judge_its_assets_only(monkeypatch):
    park = load_park(Path(__file__).parents[2] / "examples" / "demo-park" / "park.yaml")
    park.buildings[1].assets.append(Pump(id="pump1", rated_kw=30.0))
    monkeypatch.setitem(KIND_RULES, "pump", (pump_overload,))
    monkeypatch.setitem(DEFAULT_PRIORITIES, "pump_overload", Priority.MEDIUM)
    index = pd.date_range(T0, periods=MINUTES, freq="1min", name="ts_utc")
    values = pd.DataFrame({"b1.pump1.power_kw": minutes(20, 40, 36.0, 25.0)}, index=index)
    quality = pd.DataFrame({"b1.pump1.power_kw": np.full(MINUTES, int(Quality.GOOD))}, index=index)
    with registered(Pump):
        data = RuleInput(park, values, quality, pd.Timedelta(minutes=1))
        conditions = evaluate_rules(data, FaultThresholds())
    assert [c.asset_id for c in conditions if c.rule_id == "pump_overload"] == ["pump1"]
    (episode,) = found(EpisodeTracker().feed(conditions, data.times), "pump_overload", "pump1")
    assert (episode.start_utc, episode.end_utc, episode.priority) == (at(20), at(40), Priority.MEDIUM)


# ------------------------------------------------------------------ chillers

def test_low_delta_t_for_20_minutes_raises_an_episode_from_its_first_minute():
    episodes = run(chiller3(1, noisy(7.0, 0.05), noisy(7.0, 0.05) + minutes(30, 50, 1.5, 5.0)))
    (episode,) = found(episodes, "chw_low_delta_t", "chiller3")
    assert (episode.start_utc, episode.end_utc) == (at(30), at(50))
    assert episode.evidence["delta_t_k"] < 2.2


def test_low_delta_t_shorter_than_15_minutes_or_in_ice_mode_raises_nothing():
    short = run(chiller3(1, noisy(7.0, 0.05), noisy(7.0, 0.05) + minutes(30, 44, 1.5, 5.0)))
    ice = run(chiller3(2, noisy(-5.6, 0.05), noisy(-5.6, 0.05) + 1.0))
    assert found(short, "chw_low_delta_t", "chiller3") == [] and found(ice, "chw_low_delta_t", "chiller3") == []


def test_supply_off_setpoint_raises_above_1_2_k_and_not_below():
    warm = run(chiller3(1, minutes(10, 40, 8.5, 7.0), np.full(MINUTES, 13.0)))
    close = run(chiller3(1, minutes(10, 40, 8.0, 7.0), np.full(MINUTES, 13.0)))
    (episode,) = found(warm, "chw_supply_off_setpoint", "chiller3")
    assert (episode.start_utc, episode.end_utc) == (at(10), at(40))
    assert found(close, "chw_supply_off_setpoint", "chiller3") == []


def chiller1_at_half_load(cop_factor: np.ndarray) -> dict[str, np.ndarray]:
    # Expected COP by hand (twin.plant curve): 5.6 x (1 - 0.25 x (1 - 0.5)^2) x 1 (7 C setpoint) x 1 (30 C) = 5.25
    cooling_kwth = 0.5 * 2110.0
    return {"plant.chiller1.mode": np.full(MINUTES, 1.0), "plant.chiller1.cooling_kwth": np.full(MINUTES, cooling_kwth),
            "plant.chiller1.power_kw": cooling_kwth / (5.25 * cop_factor),
            "plant.chiller1.chw_setpoint_c": np.full(MINUTES, 7.0),
            "plant.weather.outdoor_temp_c": noisy(30.0, 0.01)}


def test_cop_at_70_percent_of_expected_for_over_an_hour_raises():
    (episode,) = found(run(chiller1_at_half_load(minutes(20, 100, 0.7, 1.0))), "chiller_low_cop", "chiller1")
    assert (episode.start_utc, episode.end_utc) == (at(20), at(100))  # ended where it cleared, 15 min off-delay later
    assert episode.evidence["expected_cop"] == pytest.approx(5.25, rel=1e-3)
    assert episode.evidence["cop_ratio"] == pytest.approx(0.7, rel=1e-3)


def test_cop_at_85_percent_or_low_for_only_45_minutes_raises_nothing():
    assert found(run(chiller1_at_half_load(minutes(0, MINUTES, 0.85, 1.0))), "chiller_low_cop", "chiller1") == []
    assert found(run(chiller1_at_half_load(minutes(20, 65, 0.7, 1.0))), "chiller_low_cop", "chiller1") == []


def test_more_than_5_starts_in_an_hour_is_short_cycling_and_4_is_not():
    every_8_min = np.floor(np.arange(MINUTES) / 8.0)  # 7.5 starts per hour
    every_15_min = np.floor(np.arange(MINUTES) / 15.0)  # 4 per hour
    cycling = found(run({"plant.chiller2.starts_count": every_8_min}), "chiller_short_cycling", "chiller2")
    assert len(cycling) == 1 and cycling[0].start_utc == at(48)  # the 6th start within an hour
    assert found(run({"plant.chiller2.starts_count": every_15_min}), "chiller_short_cycling", "chiller2") == []


# ------------------------------------------------------------------- sensors

def test_a_meter_frozen_for_40_minutes_is_a_flatline_but_noise_or_zero_is_not():
    frozen = noisy(500.0, 2.0)
    frozen[30:70] = frozen[30]
    (episode,) = found(run({"b1.meter_b1.power_kw": frozen}), "sensor_flatline", "meter_b1")
    assert episode.point_id == "b1.meter_b1.power_kw" and (episode.start_utc, episode.end_utc) == (at(31), at(70))
    assert found(run({"b1.meter_b1.power_kw": noisy(500.0, 2.0)}), "sensor_flatline", "meter_b1") == []
    assert found(run({"b1.meter_b1.power_kw": np.zeros(MINUTES)}), "sensor_flatline", "meter_b1") == []


def test_a_single_reading_far_from_both_neighbours_is_a_spike_but_a_step_is_not():
    spike = noisy(30.0, 0.1)
    spike[50] += 6.0
    (episode,) = found(run({"plant.weather.outdoor_temp_c": spike}), "sensor_spike", "weather")
    assert episode.start_utc == at(50) and episode.end_utc == at(51)
    step = noisy(30.0, 0.1) + minutes(50, MINUTES, 6.0, 0.0)
    assert found(run({"plant.weather.outdoor_temp_c": step}), "sensor_spike", "weather") == []


def test_a_value_beyond_the_points_limits_is_out_of_range_and_one_inside_is_not():
    hot = minutes(40, 50, 85.0, 30.0)  # cell_temp_max_c limits are -20..80
    (episode,) = found(run({"plant.battery.cell_temp_max_c": hot}), "sensor_out_of_range", "battery")
    assert (episode.start_utc, episode.end_utc, episode.point_id) == (at(40), at(50), "plant.battery.cell_temp_max_c")
    assert found(run({"plant.battery.cell_temp_max_c": minutes(40, 50, 79.0, 30.0)}),
                 "sensor_out_of_range", "battery") == []


def test_stale_readings_for_3_poll_periods_raise_and_for_2_do_not():
    pid = "b2.meter_b2.power_kw"
    stale_5 = minutes(60, 65, int(Quality.STALE), int(Quality.GOOD)).astype(int)
    stale_2 = minutes(60, 62, int(Quality.STALE), int(Quality.GOOD)).astype(int)
    (episode,) = found(run({pid: noisy(300.0, 3.0)}, {pid: stale_5}), "sensor_stale", "meter_b2")
    assert (episode.start_utc, episode.end_utc) == (at(62), at(65))  # last fresh at 59: 3 minutes on
    assert found(run({pid: noisy(300.0, 3.0)}, {pid: stale_2}), "sensor_stale", "meter_b2") == []


# ------------------------------------------------------- PV, battery, others

def pv_south(poa_wm2: float, power_share: np.ndarray) -> dict[str, np.ndarray]:
    # PVWatts by hand for pv_roof_south (380 kWdc, 340 kWac, 14 % losses, gamma -0.0037) at 800 W/m2, 45 C cells:
    dc_kw = 380.0 * poa_wm2 / 1000.0 * (1 - 0.0037 * (45.0 - 25.0)) * 0.86
    pdc0_kw = 340.0 / 0.96
    zeta = dc_kw / pdc0_kw
    expected_kw = min(340.0, dc_kw * 0.96 / 0.9637 * (-0.0162 * zeta - 0.0059 / zeta + 0.9858))
    return {"b1.pv_roof_south.poa_irradiance_wm2": np.full(MINUTES, poa_wm2),
            "b1.pv_roof_south.cell_temp_c": np.full(MINUTES, 45.0),
            "b1.pv_roof_south.ac_power_kw": expected_kw * power_share}


def test_pv_at_60_percent_of_expected_under_strong_light_raises():
    (episode,) = found(run(pv_south(800.0, minutes(10, 60, 0.6, 0.97))), "pv_underperformance", "pv_roof_south")
    assert (episode.start_utc, episode.end_utc) == (at(10), at(60))
    assert episode.evidence["performance_ratio"] == pytest.approx(0.6, rel=1e-3)


def test_pv_at_85_percent_or_in_weak_light_raises_nothing():
    assert found(run(pv_south(800.0, np.full(MINUTES, 0.85))), "pv_underperformance", "pv_roof_south") == []
    assert found(run(pv_south(150.0, np.zeros(MINUTES))), "pv_underperformance", "pv_roof_south") == []


@pytest.mark.parametrize("rule_id, point, bad, good", [
    ("battery_soc_out_of_window", "soc_pct", 5.0, 9.5),  # window 10-90 %, 1-point margin
    ("battery_overtemp", "cell_temp_max_c", 50.0, 44.0),  # 45 C
    ("battery_voltage_spread", "cell_voltage_spread_v", 0.2, 0.1),  # 0.15 V
])
def test_battery_limits_raise_beyond_their_threshold_and_not_within(rule_id, point, bad, good):
    pid = f"plant.battery.{point}"
    (episode,) = found(run({pid: minutes(30, 45, bad, good)}), rule_id, "battery")
    assert (episode.start_utc, episode.end_utc) == (at(30), at(45))
    assert found(run({pid: np.full(MINUTES, good)}), rule_id, "battery") == []


def test_an_elevator_out_of_service_for_10_minutes_raises_and_for_3_does_not():
    out_10 = {"b1.elevator2.in_service": minutes(20, 30, 0.0, 1.0), "b1.elevator2.fault_code": np.zeros(MINUTES)}
    out_3 = {"b1.elevator2.in_service": minutes(20, 23, 0.0, 1.0), "b1.elevator2.fault_code": np.zeros(MINUTES)}
    (episode,) = found(run(out_10), "elevator_out_of_service", "elevator2")
    assert (episode.start_utc, episode.end_utc) == (at(20), at(30))
    assert found(run(out_3), "elevator_out_of_service", "elevator2") == []


def test_office_lighting_at_full_power_at_night_raises_but_not_during_office_hours():
    full = {"b1.lighting_office.power_kw": np.full(MINUTES, 180.0)}
    night = run(full, t0=pd.Timestamp("2026-07-01T13:00Z"))  # 21:00-23:00 local; Tower A occupied 8-20
    (episode,) = found(night, "lighting_on_unoccupied", "lighting_office")
    assert episode.start_utc == pd.Timestamp("2026-07-01T13:00Z") and episode.end_utc is None  # still on
    assert found(run(full), "lighting_on_unoccupied", "lighting_office") == []  # 10:00-12:00 local


def test_a_device_with_every_point_comm_fail_for_5_minutes_has_lost_communication():
    points = [pid for pid, p in PARK.points.items() if p.asset_id == "ev5"]
    values = {pid: np.zeros(MINUTES) for pid in points}
    lost = {pid: minutes(15, 20, int(Quality.COMM_FAIL), int(Quality.GOOD)).astype(int) for pid in points}
    blip = {pid: minutes(15, 17, int(Quality.COMM_FAIL), int(Quality.GOOD)).astype(int) for pid in points}
    (episode,) = found(run(values, lost), "device_comm_lost", "ev5")
    assert (episode.start_utc, episode.end_utc) == (at(17), at(20))  # last answer at 14: 3 minutes on
    assert found(run(values, blip), "device_comm_lost", "ev5") == []


# ------------------------------------------------------------- thresholds

def test_thresholds_come_from_a_file_and_change_what_is_raised(tmp_path):
    path = tmp_path / "thresholds.yaml"
    path.write_text("battery_cell_temp_max_c: 40\nbattery_minutes: 1\n")
    limits = load_fault_thresholds(path)
    assert found(run({"plant.battery.cell_temp_max_c": np.full(MINUTES, 42.0)}, limits=limits),
                 "battery_overtemp", "battery")
    path.write_text("battery_cell_temp_max: 40\n")
    with pytest.raises(ConfigError, match="line 1: battery_cell_temp_max: unknown field"):
        load_fault_thresholds(path)
