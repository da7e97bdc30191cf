"""Chilled-water plant step: cooling balance, one mode per chiller, ice limits, COP figures."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twin.kinds import Chiller, IceTank
from twin.plant import (
    CMD_AUTO,
    CMD_DIRECT,
    CMD_ICE,
    CMD_OFF,
    MODE_DIRECT,
    MODE_ICE,
    MODE_OFF,
    chiller_cop,
    cooling_load_kwth,
    operate_plant,
)

DUAL = Chiller(id="c1", cooling_capacity_kwth=2000, cop_rated=5.6, ice_capacity_kwth=1400, ice_cop_rated=4.1)
DUAL2 = Chiller(id="c2", cooling_capacity_kwth=2000, cop_rated=5.6, ice_capacity_kwth=1400, ice_cop_rated=4.1)
BASE = Chiller(id="c3", cooling_capacity_kwth=1000, cop_rated=5.9)
TANK = IceTank(id="t", capacity_kwhth=10000, charge_rate_max_kwth=2800, melt_rate_max_kwth=2500,
               standing_loss_pct_per_h=0.2, melt_effectiveness=0.95)
CHILLERS = [DUAL, DUAL2, BASE]


@settings(max_examples=300, deadline=None)
@given(
    load=st.floats(0, 6000),
    inventory=st.floats(0, 10000),
    charge=st.floats(0, 4000),
    melt=st.floats(0, 4000),
    commands=st.lists(st.sampled_from([CMD_AUTO, CMD_OFF, CMD_DIRECT, CMD_ICE]), min_size=3, max_size=3),
)
def test_plant_step_invariants(load, inventory, charge, melt, commands):
    step_h = 1 / 60
    out = operate_plant(CHILLERS, commands, TANK, inventory, load, charge, melt, step_h)
    direct = sum(c.cooling_kwth for c in out.chillers if c.mode == MODE_DIRECT)
    ice = sum(c.cooling_kwth for c in out.chillers if c.mode == MODE_ICE)
    # cooling balance: direct + ice delivered + unmet = load
    assert direct + out.cooling_delivered_by_ice_kwth + out.unmet_kwth == pytest.approx(load, abs=1e-6)
    assert out.unmet_kwth >= -1e-9
    assert ice == pytest.approx(out.charge_kwth, abs=1e-6)
    assert not (out.charge_kwth > 0 and out.melt_kwth > 0), "never make ice and melt it at once"
    assert out.melt_kwth <= TANK.melt_rate_max_kwth + 1e-9 and out.charge_kwth <= TANK.charge_rate_max_kwth + 1e-9
    assert out.melt_kwth <= melt + 1e-9 and out.charge_kwth <= charge + 1e-9
    new_inventory = inventory + (out.charge_kwth - out.melt_kwth - out.standing_loss_kwth) * step_h
    assert -1e-6 <= new_inventory <= TANK.capacity_kwhth + 1e-6
    for chiller, cmd, result in zip(CHILLERS, commands, out.chillers):
        limit = chiller.ice_capacity_kwth if result.mode == MODE_ICE else chiller.cooling_capacity_kwth
        assert result.cooling_kwth <= limit + 1e-6
        if cmd == CMD_OFF:
            assert result.mode == MODE_OFF and result.cooling_kwth == 0
        if result.mode == MODE_ICE:
            assert chiller.makes_ice
    if all(c == CMD_AUTO for c in commands) and load - out.cooling_delivered_by_ice_kwth <= 5000 - 1e-6:
        assert out.unmet_kwth == pytest.approx(0, abs=1e-6), "automatic plant with enough capacity meets the load"


def test_load_comes_before_ice_making():
    # 3,500 kWth load needs both large chillers (with the base one), so only one can make ice... none here.
    out = operate_plant(CHILLERS, [CMD_AUTO] * 3, TANK, 0, 3500, 2800, 0, 1 / 60)
    assert out.unmet_kwth == pytest.approx(0)
    assert out.charge_kwth <= 1400 + 1e-9
    light = operate_plant(CHILLERS, [CMD_AUTO] * 3, TANK, 0, 500, 2800, 0, 1 / 60)
    assert light.charge_kwth == pytest.approx(2800)  # both dual-duty chillers make ice, base carries the load
    assert [c.mode for c in light.chillers] == [MODE_ICE, MODE_ICE, MODE_DIRECT]


def test_melt_limited_by_inventory_and_load():
    out = operate_plant(CHILLERS, [CMD_AUTO] * 3, TANK, 10.0, 3000, 0, 2500, 1.0)
    loss = 10.0 * 0.002
    assert out.melt_kwth == pytest.approx(10.0 - loss)
    small = operate_plant(CHILLERS, [CMD_AUTO] * 3, TANK, 9000, 950, 0, 2500, 1 / 60)
    assert small.cooling_delivered_by_ice_kwth == pytest.approx(950)
    assert small.melt_kwth == pytest.approx(1000)  # 950 / 0.95 effectiveness


def test_ice_mode_and_direct_mode_cop_figures():
    # kW/ton = 3.517 / COP (DOMAIN.md); at rated conditions (30 C, full load, 7 C setpoint)
    direct = chiller_cop(DUAL, MODE_DIRECT, 1.0, 30.0, 7.0)
    ice = chiller_cop(DUAL, MODE_ICE, 1.0, 30.0, 7.0)
    assert direct == pytest.approx(5.6)
    assert 3.517 / direct == pytest.approx(0.628, abs=1e-3)
    assert 0.66 <= ice / direct <= 0.75
    assert chiller_cop(DUAL, MODE_DIRECT, 0.5, 30.0, 7.0) < direct
    assert chiller_cop(DUAL, MODE_DIRECT, 1.0, 35.0, 7.0) < direct < chiller_cop(DUAL, MODE_DIRECT, 1.0, 25.0, 7.0)
    assert chiller_cop(DUAL, MODE_DIRECT, 1.0, 30.0, 9.0) > direct


def test_cooling_load_shape():
    assert cooling_load_kwth(2000, 15.0, 0.0, 1.0) == 0.0
    assert cooling_load_kwth(2000, 34.0, 0.0, 1.0) == pytest.approx(2000)
    assert cooling_load_kwth(2000, 34.0, 0.0, 0.0) == pytest.approx(400)
    assert cooling_load_kwth(2000, 25.0, 1000.0, 1.0) == pytest.approx(2000 * 0.5 + 200)
