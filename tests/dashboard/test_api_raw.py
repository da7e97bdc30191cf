"""/api/points over a live protocol feed (real Modbus and BACnet servers): each point's raw value is what its
device sent, and its engineering value follows from it by the point map."""

from __future__ import annotations

import struct
import time
from datetime import UTC, datetime

import flask
import pytest
from park_copies import copy_demo_park

from dashboard.api import create_api
from dashboard.context import DashboardContext
from dashboard.providers import Providers
from energy.environment import ParkEnvironment
from parktwin.runtime import ProtocolFeed, SimulationClock, TwinSink
from protocols.pointmap import load_point_maps
from twin.config import load_park
from twin.history import open_history
from twin.live import LiveState
from twin.sim import ParkSimulator

START_UTC = datetime(2026, 7, 1, 4, 0, tzinfo=UTC)  # noon in Shenzhen: the battery and chillers busy


@pytest.fixture(scope="module")
def points(tmp_path_factory):
    """/api/points of a dashboard fed by the battery (Modbus) and chiller1 (BACnet) over the wire, by point id."""
    park = load_park(copy_demo_park(tmp_path_factory.mktemp("park")))
    maps = [m for m in load_point_maps(park.point_maps, park) if m.name in ("battery", "chiller1")]
    live = LiveState()
    store = open_history(str(tmp_path_factory.mktemp("history") / "h.sqlite"))
    # a nearly frozen clock: the raw and engineering values below come from one state of the field
    feed = ProtocolFeed(ParkSimulator(park, ParkEnvironment(park), START_UTC), SimulationClock(START_UTC, 0.01),
                        TwinSink(live, store), maps, audit=store)
    feed.start()
    try:
        ids = [pid for m in maps for pid in m.point_ids]
        deadline = time.monotonic() + 30
        while len(feed.raw_values()) < len(ids) and time.monotonic() < deadline:
            time.sleep(0.05)
        server = flask.Flask(__name__)
        server.register_blueprint(create_api(DashboardContext(park, live, store, Providers(devices=feed))))
        body = server.test_client().get("/api/points").get_json()
        yield {row["id"]: row for row in body["points"]}, dict(feed.host.values)
    finally:
        feed.stop()
        store.close()


def test_a_sunspec_point_gives_its_register_and_unscaled_count(points):
    rows, simulated = points
    row = rows["plant.battery.soc_pct"]  # uint16 with a scale-factor register (battery.yaml)
    raw = row["raw"]
    register = int(raw["words"], 16)
    assert raw["words"] == f"0x{register:04X}" and raw["value"] == register
    assert raw["scale_factor"] == -1  # SOC in tenths of a percent
    assert raw["value"] > 0 and row["value"] == pytest.approx(raw["value"] / 10)
    assert row["value"] == pytest.approx(simulated["plant.battery.soc_pct"], abs=0.05)  # one count: 0.1 %


def test_a_float32_point_gives_its_two_words_in_wire_order(points):
    rows, simulated = points
    row = rows["plant.battery.stored_energy_kwh"]  # float32, ABCD, no scaling
    words = row["raw"]["words"].split()
    assert len(words) == 2 and row["raw"]["scale_factor"] is None
    number = struct.unpack(">f", bytes.fromhex("".join(w.removeprefix("0x") for w in words)))[0]
    assert row["raw"]["value"] == number == row["value"]
    assert number == pytest.approx(simulated["plant.battery.stored_energy_kwh"], rel=1e-6)


def test_bacnet_points_give_their_present_value_as_received(points):
    rows, simulated = points
    running = rows["plant.chiller1.running"]  # binary-input: the state text
    assert running["raw"] == {"value": "active" if running["value"] == 1.0 else "inactive", "words": None,
                              "scale_factor": None}
    mode = rows["plant.chiller1.mode"]  # multi-state-input, offset -1 (chiller1.yaml)
    assert isinstance(mode["raw"]["value"], int) and mode["value"] == mode["raw"]["value"] - 1
    power = rows["plant.chiller1.power_kw"]  # analog-input REAL
    assert power["raw"]["value"] == power["value"] == pytest.approx(simulated["plant.chiller1.power_kw"], rel=1e-6)


def test_points_of_devices_not_polled_have_no_raw_value(points):
    rows, _ = points
    assert rows["plant.chiller2.power_kw"]["raw"] is None
