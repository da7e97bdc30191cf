"""What each simulated device exposes: SunSpec register maps and BACnet object lists, per asset.

The kinds in :data:`SUNSPEC_KINDS` (PV arrays, batteries and meters) are Modbus
TCP devices with SunSpec models from register 40000: the "SunS" marker, common
model 1, then the kind's own models, laid out by its function in that table:
- PV array: inverter model 103 (W, WH, TmpOt = cell temperature) and the
  ParkTwin vendor model 64100 (float32: irradiance, power limit; then the
  limit's enable and revert-timeout registers);
- battery: inverter model 103 (W, positive discharging), storage model 124
  (ChaState = SOC, WChaMax, MinRsvPct) and model 64100 (float32: stored energy,
  cell temperature, cell voltage spread, power setpoint, then the setpoint's
  enable and revert-timeout registers in the style of SunSpec model 123/124);
- meter: three-phase wye meter model 203 (W positive import, TotWhImp, TotWhExp);
then the end marker 0xFFFF with length 0. Integer values carry SunSpec scale
factors; unused fields hold the SunSpec "not implemented" values.

Every other kind (chillers, the ice tank, the chilled-water tank, lighting,
elevators, EV chargers, the weather station) is a BACnet/IP device laid out from its points alone:
analog inputs for measurements, binary inputs for on/off states, multi-state
inputs for modes, commandable analog or multi-state outputs for setpoints; a
device with setpoints also has a heartbeat (watchdog) object, commandable
analog value ``HEARTBEAT_INSTANCE`` (see :class:`protocols.pointmap.BacnetHeartbeat`).

:func:`device_layouts` gives each asset's layout; :func:`default_point_maps`
turns them into point maps with the default ports (Modbus from
``MODBUS_BASE_PORT``, BACnet from ``BACNET_BASE_PORT``, one port per device in
park order), which is how ``examples/demo-park/pointmaps`` was written.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from protocols.codec import encode
from protocols.pointmap import (
    AnyDeviceMap,
    BacnetDeviceMap,
    BacnetHeartbeat,
    BacnetPoint,
    ModbusDeviceMap,
    ModbusFailSafe,
    ModbusPoint,
)
from twin.kinds import Battery, Meter, PVArray, kind_name
from twin.kinds.base import AssetBase
from twin.park import Park
from twin.points import Point

MODBUS_BASE_PORT = 15020
BACNET_BASE_PORT = 47810
SUNSPEC_BASE = 40000
VENDOR_MODEL_ID = 64100
NOT_IMPLEMENTED_INT16 = 0x8000
NOT_IMPLEMENTED_UINT16 = 0xFFFF
REVERT_TIMEOUT_S = 3600
"""Revert timeout of the simulated Modbus setpoints, simulated seconds: four 15-minute control steps, so that
at --speed 600 (6 s of wall clock) a busy machine's stalled poll or two does not hand the plant back."""
HEARTBEAT_INSTANCE = 900
HEARTBEAT_TIMEOUT_S = REVERT_TIMEOUT_S
"""Watchdog timeout of the simulated BACnet devices, simulated seconds: the same four control steps."""
DEFAULT_POLL_PERIOD_S = 1.0
DEFAULT_TIMEOUT_S = 0.5
"""Half the poll period: a silent device is marked within two poll periods of going quiet (at --speed 600 a
poll period is 10 simulated minutes, and a device-offline fault of an hour or two must show as one)."""

# SunSpec model lengths and the data offsets (after ID and L) of unsigned
# fields (not implemented = 0xFFFF) and accumulators (not implemented = 0);
# every other field is int16/sunssf (not implemented = 0x8000).
SUNSPEC_MODELS: dict[int, tuple[int, tuple[int, ...], tuple[int, ...]]] = {
    1: (66, (), ()),
    103: (50, (0, 1, 2, 3, 5, 6, 7, 8, 9, 10, 14, 25, 27, 36, 37, *range(38, 50)), (22, 23)),
    124: (24, (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 13, 14, 15), ()),
    203: (105, (103, 104), (*range(36, 52), *range(53, 69), *range(70, 102))),
}
BUILDING_METER_MAX_W = 3_000_000
GRID_METER_MAX_W = 20_000_000
"""Largest power a meter's int16 W register must hold; sets its scale factor. A building meter's 100 W
steps are finer than its noise (0.1 % of its reading), so that a healthy meter's readings move from poll to
poll, as the flatline rule expects; at 1 kW steps a steady night load read the same four polls running."""


@dataclass
class _Layout:
    name: str
    address: int
    """Modbus device id or BACnet device instance."""

    def _map_fields(self, host: str, port: int) -> dict[str, object]:
        """The point-map fields both protocols share."""
        return {"name": self.name, "host": host, "port": port, "poll_period_s": DEFAULT_POLL_PERIOD_S,
                "timeout_s": DEFAULT_TIMEOUT_S}


@dataclass
class ModbusLayout(_Layout):
    """One simulated Modbus device: the points it carries and its constant registers."""

    points: list[ModbusPoint]
    constants: dict[int, int] = field(default_factory=dict)
    """Holding registers with fixed contents: SunSpec markers, headers, strings, scale factors."""
    protocol: ClassVar[Literal["modbus"]] = "modbus"

    def point_map(self, port: int, host: str = "127.0.0.1") -> ModbusDeviceMap:
        return ModbusDeviceMap(device_id=self.address, points=self.points, **self._map_fields(host, port))


@dataclass
class BacnetLayout(_Layout):
    """One simulated BACnet device: the points it carries and its watchdog object."""

    points: list[BacnetPoint]
    heartbeat: BacnetHeartbeat | None = None
    """The device's watchdog object, when it has setpoints."""
    protocol: ClassVar[Literal["bacnet"]] = "bacnet"

    def point_map(self, port: int, host: str = "127.0.0.1") -> BacnetDeviceMap:
        return BacnetDeviceMap(device_instance=self.address, heartbeat=self.heartbeat, points=self.points,
                               **self._map_fields(host, port))


DeviceLayout = ModbusLayout | BacnetLayout
"""One simulated device: its protocol, the points it carries, its address."""


def device_layouts(park: Park) -> list[DeviceLayout]:
    """Every asset's device, in park order."""
    layouts: list[DeviceLayout] = []
    for index, (_building, asset) in enumerate(park.iter_assets()):
        points = [p for p in park.points.values() if p.asset_id == asset.id]
        if kind_name(type(asset)) in SUNSPEC_KINDS:
            layouts.append(_sunspec_layout(asset, points))
        else:
            layouts.append(_bacnet_layout(asset, points, device_instance=1000 + index))
    return layouts


def default_point_maps(park: Park, host: str = "127.0.0.1") -> list[AnyDeviceMap]:
    """Point maps for every device at its default port."""
    maps: list[AnyDeviceMap] = []
    next_port = {"modbus": MODBUS_BASE_PORT, "bacnet": BACNET_BASE_PORT}
    for layout in device_layouts(park):
        maps.append(layout.point_map(next_port[layout.protocol], host))
        next_port[layout.protocol] += 1
    return maps


# ------------------------------------------------------------------ SunSpec


class _SunSpecBuilder:
    def __init__(self, asset: AssetBase, points: list[Point]):
        self.points = {p.name: p for p in points}
        self.constants: dict[int, int] = {}
        self.mapped: list[ModbusPoint] = []
        self.cursor = SUNSPEC_BASE
        self._put(SUNSPEC_BASE, encode("SunS", "string", length=2))
        self.cursor += 2
        self.asset = asset

    def model(self, model_id: int, length: int | None = None) -> int:
        """Start a model (``length``: data registers, for a model not in SUNSPEC_MODELS); return the address
        of its first data register."""
        unsigned: tuple[int, ...] = ()
        accumulators: tuple[int, ...] = ()
        if model_id in SUNSPEC_MODELS:
            length, unsigned, accumulators = SUNSPEC_MODELS[model_id]
        elif length is None:
            raise ValueError(f"SunSpec model {model_id} is not in SUNSPEC_MODELS: give its length")
        self._put(self.cursor, [model_id, length])
        data = self.cursor + 2
        for offset in range(length):
            if offset in accumulators:
                fill = 0
            elif offset in unsigned:
                fill = NOT_IMPLEMENTED_UINT16
            else:
                fill = NOT_IMPLEMENTED_INT16 if model_id != 1 and model_id != VENDOR_MODEL_ID else 0
            self.constants[data + offset] = fill
        self.cursor = data + length
        return data

    def common(self, serial: str) -> None:
        data = self.model(1)
        self._put(data + 0, encode("ParkTwin", "string", length=16))
        self._put(data + 16, encode(f"Simulated {self.asset.kind_label}", "string", length=16))
        self._put(data + 40, encode("0.1.0", "string", length=8))
        self._put(data + 48, encode(serial, "string", length=16))
        self._put(data + 64, [1])  # DA: Modbus device address

    def value(self, address: int, name: str, data_type: str, scale: float = 1.0,
              scale_factor: tuple[int, int] | None = None) -> None:
        """Map a twin point onto registers; with ``scale_factor`` (register address, SunSpec scale factor),
        also write the scale-factor register."""
        point = self.points[name]
        sf_address = None
        if scale_factor is not None:
            sf_address, sf = scale_factor
            self._put(sf_address, encode(sf, "int16"))
        self.mapped.append(ModbusPoint(
            id=point.id, table="holding_register", address=address, type=data_type, scale=scale,
            scale_factor_register=sf_address, unit=point.unit, writable=point.writable,
            low_limit=point.spec.low_limit if point.writable else None,
            high_limit=point.spec.high_limit if point.writable else None, description=point.spec.description))

    def constant(self, address: int, registers: list[int]) -> None:
        self._put(address, registers)

    def vendor_floats(self, names: list[str]) -> None:
        """Model 64100: one float32 per name, then per writable one an enable and a revert-timeout register
        (uint16, both 0 until written; see :class:`protocols.pointmap.ModbusFailSafe`)."""
        writable = [name for name in names if self.points[name].writable]
        data = self.model(VENDOR_MODEL_ID, 2 * len(names) + 2 * len(writable))
        for i, name in enumerate(names):
            self.value(data + 2 * i, name, "float32")
        controls = data + 2 * len(names)
        for i, name in enumerate(writable):
            enable = controls + 2 * i
            self.constant(enable, [0, 0])
            self.mapped = [p.model_copy(update={"fail_safe": ModbusFailSafe(
                enable_address=enable, revert_timeout_address=enable + 1, revert_timeout_s=REVERT_TIMEOUT_S)})
                if p.id == self.points[name].id else p for p in self.mapped]

    def finish(self) -> None:
        self._put(self.cursor, [0xFFFF, 0])

    def _put(self, address: int, registers: list[int]) -> None:
        for i, register in enumerate(registers):
            self.constants[address + i] = register


def _scale_factor(max_abs: float) -> int:
    """Smallest SunSpec scale factor (>= 0) with which ``max_abs`` fits an int16."""
    return max(0, math.ceil(math.log10(max_abs / 32767))) if max_abs > 32767 else 0


def _pv_array_models(b: _SunSpecBuilder, asset: PVArray) -> None:
    m = b.model(103)
    b.value(m + 12, "ac_power_kw", "int16", 0.001, (m + 13, _scale_factor(1.05 * asset.inverter_ac_kw * 1000)))
    b.value(m + 22, "energy_kwh", "uint32", 0.001, (m + 24, 0))
    b.value(m + 34, "cell_temp_c", "int16", 1.0, (m + 35, -1))
    b.constant(m + 14, [5000])  # Hz
    b.constant(m + 15, encode(-2, "int16"))
    b.vendor_floats(["poa_irradiance_wm2", "power_limit_pct"])


def _battery_models(b: _SunSpecBuilder, asset: Battery) -> None:
    m = b.model(103)
    max_w = 1000 * max(asset.charge_power_max_kw, asset.discharge_power_max_kw)
    b.value(m + 12, "power_kw", "int16", 0.001, (m + 13, _scale_factor(max_w)))
    b.constant(m + 14, [5000])
    b.constant(m + 15, encode(-2, "int16"))
    s = b.model(124)
    wcha_sf = _scale_factor(1000 * asset.charge_power_max_kw)
    b.constant(s + 0, encode(1000 * asset.charge_power_max_kw / 10 ** wcha_sf, "uint16"))
    b.constant(s + 16, encode(wcha_sf, "int16"))
    b.constant(s + 5, encode(asset.soc_min_pct, "uint16"))
    b.constant(s + 19, encode(0, "int16"))
    b.value(s + 6, "soc_pct", "uint16", 1.0, (s + 20, -1))
    b.vendor_floats(["stored_energy_kwh", "cell_temp_max_c", "cell_voltage_spread_v", "power_setpoint_kw"])


def _meter_models(b: _SunSpecBuilder, asset: Meter) -> None:
    m = b.model(203)
    max_w = GRID_METER_MAX_W if asset.measures == "grid" else BUILDING_METER_MAX_W
    b.value(m + 16, "power_kw", "int16", 0.001, (m + 20, _scale_factor(max_w)))
    b.value(m + 36, "export_energy_kwh", "uint32", 0.001, (m + 52, 1))
    b.value(m + 44, "import_energy_kwh", "uint32", 0.001, (m + 52, 1))
    b.constant(m + 14, [5000])
    b.constant(m + 15, encode(-2, "int16"))


SUNSPEC_KINDS: dict[str, Callable[[_SunSpecBuilder, Any], None]] = {
    kind_name(PVArray): _pv_array_models,
    kind_name(Battery): _battery_models,
    kind_name(Meter): _meter_models,
}
"""The kinds whose simulated devices are SunSpec Modbus devices, by kind name (twin.kinds.kind_name): each
kind's function adds its models after the common model, given the builder and the asset. A kind not here is
a BACnet device."""


def _sunspec_layout(asset: AssetBase, points: list[Point]) -> ModbusLayout:
    b = _SunSpecBuilder(asset, points)
    b.common(serial=asset.id)
    SUNSPEC_KINDS[kind_name(type(asset))](b, asset)
    b.finish()
    return ModbusLayout(asset.id, address=1, points=b.mapped, constants=b.constants)


# ------------------------------------------------------------------- BACnet


def _bacnet_layout(asset: AssetBase, points: list[Point], device_instance: int) -> BacnetLayout:
    counters: dict[str, int] = {}
    mapped: list[BacnetPoint] = []
    for point in points:
        is_enum = point.unit == "enum"
        if point.writable:
            object_type = "multi-state-output" if is_enum else "analog-output"
        elif point.unit == "bool":
            object_type = "binary-input"
        elif is_enum:
            object_type = "multi-state-input"
        else:
            object_type = "analog-input"
        counters[object_type] = counters.get(object_type, 0) + 1
        # multi-state values count from 1; the twin's enums from their low limit
        offset = (point.spec.low_limit or 0) - 1 if is_enum else 0.0
        mapped.append(BacnetPoint(
            id=point.id, object_type=object_type, instance=counters[object_type], unit=point.unit, offset=offset,
            writable=point.writable, low_limit=point.spec.low_limit if point.writable else None,
            high_limit=point.spec.high_limit if point.writable else None, description=point.spec.description))
    heartbeat = BacnetHeartbeat(object_type="analog-value", instance=HEARTBEAT_INSTANCE,
                                timeout_s=HEARTBEAT_TIMEOUT_S) if any(p.writable for p in mapped) else None
    return BacnetLayout(asset.id, address=device_instance, points=mapped, heartbeat=heartbeat)


def render_default_point_maps(park: Park, host: str = "127.0.0.1") -> dict[str, str]:
    """File name -> YAML text of every default point map, as ``parktwin points generate`` writes them."""
    from protocols.pointmap import point_map_yaml

    files = {}
    for device in default_point_maps(park, host):
        header = (f"# Point map of device {device.name} ({device.protocol}), generated from the simulated device's\n"
                  f"# layout by `parktwin points generate`. Edit host/port/polling to suit your site.\n")
        files[f"{device.name}.yaml"] = header + point_map_yaml(device)
    return files
