"""Point maps: how one field device's registers or objects feed the twin's points.

One YAML file per device. The top level describes the device (protocol,
address, polling); ``points`` lists its points, each bound to a twin point id
(``building.asset.name``). Example (Modbus)::

    protocol: modbus
    name: pv_roof_south
    host: 127.0.0.1
    port: 15021
    device_id: 1
    poll_period_s: 1.0
    timeout_s: 1.0      # per request; Modbus default 1 s, BACnet 3 s (its APDU timeout)
    retries: 2          # Modbus default 2, BACnet 3
    points:
      - id: b1.pv_roof_south.ac_power_kw
        table: holding_register
        address: 40083
        type: int16
        scale: 0.001
        scale_factor_register: 40084
        unit: kW

A value is decoded once, at the edge: ``value = raw * 10**sf * scale + offset``
(``sf`` read from ``scale_factor_register`` when given, else 0).

Files are read and validated with :mod:`twin.config`; a bad file is
refused whole, naming the file, the line, the point and the field.
CSV registry sheets (one row per point, columns named like the point fields)
are imported with :func:`import_csv`.
"""

from __future__ import annotations

import builtins
import csv
import io
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import Field, ValidationError, model_validator

from twin.config import MAX_CSV_BYTES, ConfigError, read_input_text, read_yaml_mapping, validate_document
from twin.input_schema import FiniteFloat, InputModel
from twin.park import FieldPath, Park

ModbusTable = Literal["coil", "discrete_input", "input_register", "holding_register"]
ModbusType = Literal["bool", "int16", "uint16", "int32", "uint32", "int64", "uint64", "float32", "float64", "string"]
Order = Literal["big", "little"]
BacnetObjectType = Literal[
    "analog-input", "analog-output", "analog-value",
    "binary-input", "binary-output", "binary-value",
    "multi-state-input", "multi-state-output", "multi-state-value",
]
COMMANDABLE_TYPES = ("analog-output", "analog-value", "binary-output", "binary-value",
                     "multi-state-output", "multi-state-value")
BIT_TABLES = ("coil", "discrete_input")
WRITABLE_TABLES = ("coil", "holding_register")
RENAMED_POINT_FIELDS = {"safe_min": "low_limit", "safe_max": "high_limit"}
"""Former names of point fields: a map using one is refused naming the current name, not as an unknown field."""
REGISTERS_PER_TYPE = {"bool": 1, "int16": 1, "uint16": 1, "int32": 2, "uint32": 2, "int64": 4, "uint64": 4,
                      "float32": 2, "float64": 4}

PointId = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$")]
Port = Annotated[int, Field(ge=1, le=65535)]


class MappedPoint(InputModel):
    """Fields every mapped point has. ``id`` is the twin point the value feeds.

    ``low_limit`` / ``high_limit``: the safe range a write must lie in, in engineering units (``unit``);
    required when ``writable`` and refused otherwise, since they govern writes only. They mean what the
    twin point's limits of the same names mean for a setpoint; values read are judged against the twin
    point's limits, not these.
    """

    id: PointId
    unit: str = ""
    scale: FiniteFloat = 1.0
    offset: FiniteFloat = 0.0
    writable: bool = False
    low_limit: FiniteFloat | None = None
    high_limit: FiniteFloat | None = None
    description: str = ""

    @model_validator(mode="before")
    @classmethod
    def _no_renamed_fields(cls, data: Any) -> Any:
        renamed = [f"{old} is now named {new}" for old, new in RENAMED_POINT_FIELDS.items()
                   if isinstance(data, dict) and old in data]
        if renamed:
            raise ValueError("; ".join(renamed))
        return data

    @model_validator(mode="after")
    def _limits_if_and_only_if_writable(self) -> MappedPoint:
        if self.writable and (self.low_limit is None or self.high_limit is None):
            raise ValueError("a writable point needs low_limit and high_limit")
        given = [key for key in ("low_limit", "high_limit") if getattr(self, key) is not None]
        if given and not self.writable:
            raise ValueError(f"{' and '.join(given)}: only a writable point has limits (they govern writes; "
                             "values read are judged against the twin point's limits)")
        if self.low_limit is not None and self.high_limit is not None and self.low_limit > self.high_limit:
            raise ValueError(f"low_limit {self.low_limit:g} is above high_limit {self.high_limit:g}")
        if self.scale == 0:
            raise ValueError("scale cannot be 0")
        return self

    def to_engineering(self, raw: float, scale_factor: int = 0) -> float:
        """Engineering value from the protocol value (see the module docstring)."""
        return raw * (10.0 ** scale_factor) * self.scale + self.offset

    def to_raw(self, value: float, scale_factor: int = 0) -> float:
        """Protocol value for an engineering value (inverse of :meth:`to_engineering`)."""
        return (value - self.offset) / self.scale / (10.0 ** scale_factor)


class ModbusFailSafe(InputModel):
    """How a writable Modbus point's device falls back to its own schedule, after SunSpec's controls.

    SunSpec immediate controls (model 123: ``WMaxLim_Ena`` with ``WMaxLimPct_RvrtTms``) and storage
    (model 124: ``InOutWRte_RvrtTms``) pair a setpoint with an enable register (0 disabled, 1 enabled)
    and a revert timeout register (uint16 seconds): the device follows the setpoint while enabled and,
    once ``revert_timeout_s`` seconds pass without a new write, disables it and returns to its default.
    ParkTwin writes ``revert_timeout_s`` to ``revert_timeout_address`` (when given), then the setpoint,
    then 1 to ``enable_address``; releasing writes 0 to ``enable_address``. ``revert_timeout_s`` is the
    longest a setpoint stays in force without a rewrite, so the controller rewrites within it.
    """

    enable_address: Annotated[int, Field(ge=0, le=65535)]
    revert_timeout_address: Annotated[int, Field(ge=0, le=65535)] | None = None
    revert_timeout_s: Annotated[int, Field(ge=1, le=65535)]


class ModbusPoint(MappedPoint):
    """A point held in Modbus registers or bits.

    ``address`` is the zero-based protocol address (what goes on the wire).
    ``length`` is the number of registers of a ``string``. Word order and byte
    order are set independently: big/big is ABCD, big/little BADC,
    little/big CDAB, little/little DCBA. ``fail_safe`` (writable points):
    see :class:`ModbusFailSafe`; without it a written value stays until overwritten.
    """

    table: ModbusTable = "holding_register"
    address: Annotated[int, Field(ge=0, le=65535)]
    type: ModbusType = "uint16"
    length: Annotated[int, Field(ge=1, le=125)] | None = None
    word_order: Order = "big"
    byte_order: Order = "big"
    scale_factor_register: Annotated[int, Field(ge=0, le=65535)] | None = None
    fail_safe: ModbusFailSafe | None = None

    @model_validator(mode="after")
    def _consistent(self) -> ModbusPoint:
        if self.table in BIT_TABLES and self.type != "bool":
            raise ValueError(f"a {self.table} holds one bit: type must be bool")
        if self.type == "string" and self.length is None:
            raise ValueError("a string needs length (number of registers)")
        if self.type != "string" and self.length is not None:
            raise ValueError("length applies to strings only")
        if self.writable and self.table not in WRITABLE_TABLES:
            raise ValueError(f"a {self.table} cannot be written; use a coil or holding_register")
        if self.writable and self.type == "string":
            raise ValueError("string points cannot be written")
        if self.fail_safe is not None and (not self.writable or self.table != "holding_register"):
            raise ValueError("fail_safe applies to writable holding_register points only")
        return self

    @property
    def register_count(self) -> int:
        if self.type != "string":
            return REGISTERS_PER_TYPE[self.type]
        if self.length is None:  # the point's validation refuses a string without a length
            raise ValueError(f"string point {self.id} has no length")
        return self.length


class BacnetPoint(MappedPoint):
    """A point held in a BACnet object property.

    ``mode: cov`` subscribes to changes of value (renewed before the lifetime
    ends) and falls back to polling when the device refuses; ``poll`` reads
    with ReadPropertyMultiple every poll period. Writes go to the priority
    array at ``write_priority`` (1-16; None: the device map's); writing null
    relinquishes.
    """

    object_type: BacnetObjectType
    instance: Annotated[int, Field(ge=0, le=4194302)]
    property: str = "present-value"
    mode: Literal["poll", "cov"] = "poll"
    write_priority: Annotated[int, Field(ge=1, le=16)] | None = None

    @model_validator(mode="after")
    def _commandable(self) -> BacnetPoint:
        if self.writable and self.object_type not in COMMANDABLE_TYPES:
            raise ValueError(f"a {self.object_type} cannot be written; use an output or value object")
        return self

    @builtins.property  # the field ``property`` shadows the builtin in this class body
    def object_id(self) -> str:
        return f"{self.object_type},{self.instance}"


class DeviceMap(InputModel):
    """Fields every device has. ``name`` identifies the device (by convention the asset id it serves)."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$")]
    host: str = "127.0.0.1"
    port: Port
    poll_period_s: Annotated[float, Field(gt=0, le=3600)] = 1.0
    timeout_s: Annotated[float, Field(gt=0, le=60)] = 1.0
    """Seconds to wait for the answer to one request (defaults per protocol, see the subclasses)."""
    retries: Annotated[int, Field(ge=0, le=10)] = 2
    """Attempts after a first one that got no answer, before the device counts as unreachable: polling
    marks its points comm_fail only then, and a single-shot read or write fails only then."""

    @property
    def point_ids(self) -> list[str]:
        return [p.id for p in self.points]  # type: ignore[attr-defined]

    def point(self, point_id: str) -> MappedPoint:
        points: list[MappedPoint] = self.points  # type: ignore[attr-defined]
        for p in points:
            if p.id == point_id:
                return p
        raise KeyError(point_id)


class ModbusDeviceMap(DeviceMap):
    """A Modbus TCP device. Reads are coalesced up to ``max_registers_per_read`` (at most 125)
    across gaps of at most ``max_gap_registers`` unused registers."""

    protocol: Literal["modbus"] = "modbus"
    timeout_s: Annotated[float, Field(gt=0, le=60)] = 1.0
    """Seconds per request. Modbus TCP sets no standard; devices answer within tens of milliseconds, gateways
    to serial lines within a few hundred, so 1 s with 2 retries tells a dead device from a slow one."""
    retries: Annotated[int, Field(ge=0, le=10)] = 2
    device_id: Annotated[int, Field(ge=0, le=255)] = 1
    max_registers_per_read: Annotated[int, Field(ge=1, le=125)] = 125
    max_gap_registers: Annotated[int, Field(ge=0, le=125)] = 16
    points: Annotated[list[ModbusPoint], Field(min_length=1)]


class BacnetHeartbeat(InputModel):
    """A device's watchdog object (VOLTTRON's ``heart_beat_point``): BACnet has no revert timeout, and a
    ParkTwin that is killed relinquishes nothing, so the device watches a heartbeat instead.

    ParkTwin writes a counter (a value that changes every time) to the object's present value at the map's
    ``write_priority`` at every poll while it runs. When the value has not changed for ``timeout_s``
    seconds (the device's clock), the device relinquishes that priority on every commandable object it
    has, so the relinquish defaults (the plant's own schedule) are in force; it does so again only after a
    new heartbeat and a new command at that priority. ``timeout_s`` is the device's watchdog setting,
    stated here to match it; it must be longer than the poll period.
    """

    object_type: Literal["analog-value", "analog-output"] = "analog-value"
    instance: Annotated[int, Field(ge=0, le=4194302)]
    timeout_s: Annotated[int, Field(ge=1, le=86400)]

    @builtins.property
    def object_id(self) -> str:
        return f"{self.object_type},{self.instance}"


class BacnetDeviceMap(DeviceMap):
    """A BACnet/IP device addressed directly as host:port. ``max_properties_per_request``
    keeps each ReadPropertyMultiple inside the device's APDU limit. ``write_priority``
    is the priority ParkTwin commands at (1-16; supervisory control by convention
    writes in 10-16, below the manual operator's 8); a point may set its own."""

    protocol: Literal["bacnet"] = "bacnet"
    timeout_s: Annotated[float, Field(gt=0, le=60)] = 3.0
    """Seconds per request: BACnet's standard APDU timeout (3,000 ms), with its 3 retries."""
    retries: Annotated[int, Field(ge=0, le=10)] = 3
    device_instance: Annotated[int, Field(ge=0, le=4194302)]
    max_properties_per_request: Annotated[int, Field(ge=1, le=500)] = 40
    cov_lifetime_s: Annotated[int, Field(ge=10, le=86400)] = 300
    write_priority: Annotated[int, Field(ge=1, le=16)] = 10
    heartbeat: BacnetHeartbeat | None = None
    """The device's watchdog object, written at ``write_priority`` at every poll (see :class:`BacnetHeartbeat`)."""
    points: Annotated[list[BacnetPoint], Field(min_length=1)]

    @model_validator(mode="after")
    def _heartbeat_faster_than_polls(self) -> BacnetDeviceMap:
        if self.heartbeat is not None and self.heartbeat.timeout_s <= self.poll_period_s:
            raise ValueError("heartbeat.timeout_s must be longer than poll_period_s (a heartbeat is written per poll)")
        return self

    def priority_of(self, point: BacnetPoint) -> int:
        """The priority (1-16) ParkTwin writes ``point`` at: its own, else the map's."""
        return point.write_priority if point.write_priority is not None else self.write_priority


AnyDeviceMap = ModbusDeviceMap | BacnetDeviceMap
PROTOCOL_MODELS: dict[str, type[ModbusDeviceMap] | type[BacnetDeviceMap]] = {
    "modbus": ModbusDeviceMap, "bacnet": BacnetDeviceMap}


def point_map_issues(device: AnyDeviceMap, park: Park | None = None) -> list[tuple[FieldPath, str]]:
    """Rules that span points: duplicates, overlapping registers or objects, binding to the park."""
    issues: list[tuple[FieldPath, str]] = []
    seen_ids: set[str] = set()
    occupied: dict[tuple[str, int] | tuple[str, int, str], str] = {}
    for index, point in enumerate(device.points):
        if point.id in seen_ids:
            issues.append((("points", index, "id"), f"duplicate point id {point.id!r}"))
        seen_ids.add(point.id)
        if isinstance(point, ModbusPoint):
            for address in range(point.address, point.address + point.register_count):
                key: tuple[str, int] | tuple[str, int, str] = (point.table, address)
                if key in occupied:
                    issues.append((("points", index, "address"),
                                   f"{point.table} {address} overlaps point {occupied[key]!r}"))
                    break
                occupied[key] = point.id
            if point.address + point.register_count > 65536:
                issues.append((("points", index, "address"), "runs past the last address 65535"))
        elif isinstance(point, BacnetPoint):
            key = (point.object_type, point.instance, point.property)
            if key in occupied:
                issues.append((("points", index, "instance"),
                               f"{point.object_id} {point.property} is already mapped to {occupied[key]!r}"))
            occupied[key] = point.id
        if park is not None:
            twin_point = park.points.get(point.id)
            if twin_point is None:
                issues.append((("points", index, "id"), f"no twin point {point.id!r} in park {park.name!r}"))
            elif point.writable and not twin_point.writable:
                issues.append((("points", index, "writable"), f"twin point {point.id} is read-only"))
    heartbeat = getattr(device, "heartbeat", None)
    if heartbeat is not None and (key := (heartbeat.object_type, heartbeat.instance, "present-value")) in occupied:
        issues.append((("heartbeat", "instance"), f"{heartbeat.object_id} is point {occupied[key]!r}"))
    for index, point in enumerate(device.points):
        fail_safe = getattr(point, "fail_safe", None)
        for name in ("enable_address", "revert_timeout_address"):
            fail_safe_address = getattr(fail_safe, name, None)
            if fail_safe_address is not None and ("holding_register", fail_safe_address) in occupied:
                taken_by = occupied["holding_register", fail_safe_address]
                issues.append((("points", index, "fail_safe", name),
                               f"holding_register {fail_safe_address} is point {taken_by!r}"))
    return issues


def load_point_map(path: str | Path, park: Park | None = None) -> AnyDeviceMap:
    """Load and validate one device's point map; with ``park``, every point must bind to a twin point."""
    document = read_yaml_mapping(path)
    protocol = document.data.get("protocol")
    model = PROTOCOL_MODELS.get(protocol) if isinstance(protocol, str) else None
    if model is None:
        raise ConfigError(path, [f"protocol: required, one of 'modbus' or 'bacnet' (got {protocol!r})"])
    return validate_document(document, model, lambda device: point_map_issues(device, park))


def load_point_maps(folder: str | Path, park: Park | None = None) -> list[AnyDeviceMap]:
    """Every ``*.yaml`` point map in a folder (sorted by file name); device names must be unique, and no
    twin point may be fed by two maps."""
    folder = Path(folder)
    paths = sorted(folder.glob("*.yaml"))
    maps = [load_point_map(path, park) for path in paths]
    names = [m.name for m in maps]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    problems = [f"device name {name!r} used by more than one point map" for name in duplicates]
    problems += shared_point_problems(list(zip(paths, maps)))
    if problems:
        raise ConfigError(folder, problems)
    return maps


def shared_point_problems(maps: list[tuple[Path, AnyDeviceMap]]) -> list[str]:
    """One problem per twin point fed by more than one of these point maps, naming the point and every file
    (in the order given). Duplicates inside one map are :func:`point_map_issues`' to report."""
    files_of: dict[str, list[Path]] = {}
    for path, device in maps:
        for point_id in dict.fromkeys(device.point_ids):
            files_of.setdefault(point_id, []).append(path)
    return [f"point {point_id!r} is fed by more than one point map: {', '.join(str(p) for p in paths)}"
            for point_id, paths in files_of.items() if len(paths) > 1]


def point_map_yaml(device: AnyDeviceMap) -> str:
    """The YAML text of a point map: every device field, then one line per point (defaults left out)."""
    data = device.model_dump(mode="json")
    header = {"protocol": device.protocol,
              **{k: v for k, v in data.items() if k not in ("protocol", "points", "heartbeat")}}
    heartbeat = data.get("heartbeat")
    common = set(MappedPoint.model_fields)
    lines = []
    for point in device.points:
        values = point.model_dump(mode="json", exclude_defaults=True)
        ordered = {"id": values.pop("id")}
        ordered.update({k: v for k, v in values.items() if k not in common})
        ordered.update({k: v for k, v in values.items() if k in common})
        lines.append("  - " + yaml.safe_dump(ordered, sort_keys=False, default_flow_style=True, width=10_000))
    text = yaml.safe_dump(header, sort_keys=False)
    if heartbeat is not None:  # one line, as the README shows it
        text += "heartbeat: " + yaml.safe_dump(heartbeat, sort_keys=False, default_flow_style=True, width=10_000)
    return text + "points:\n" + "".join(lines)


def import_csv(csv_path: str | Path, device_fields: dict[str, Any]) -> AnyDeviceMap:
    """Build a point map from a CSV registry sheet (one row per point) and the device's fields.

    Columns are point field names (``id, table, address, type, scale, ...``);
    empty cells take the default. The result is validated like a YAML file:
    problems name the CSV file, the row and the column.
    """
    csv_path = Path(csv_path)
    model = PROTOCOL_MODELS.get(str(device_fields.get("protocol")))
    if model is None:
        raise ConfigError(csv_path, ["protocol: required, one of 'modbus' or 'bacnet'"])
    reader = csv.DictReader(io.StringIO(read_input_text(csv_path, MAX_CSV_BYTES), newline=""))
    try:
        rows = [{k.strip(): v.strip() for k, v in row.items() if isinstance(k, str) and isinstance(v, str) and
                 k.strip() and v.strip()} for row in reader]
    except csv.Error as exc:
        raise ConfigError(csv_path, [f"line {reader.line_num}: not a readable CSV row: {exc}"]) from None
    try:
        device = model.model_validate({**device_fields, "points": rows})
    except ValidationError as exc:
        raise ConfigError(csv_path, [_csv_problem(err["loc"], err["msg"].removeprefix("Value error, "))
                                     for err in exc.errors(include_url=False)]) from None
    issues = point_map_issues(device)
    if issues:
        raise ConfigError(csv_path, [_csv_problem(loc, reason) for loc, reason in issues])
    return device


def _csv_problem(loc: FieldPath, reason: str) -> str:
    """``row N: column C: reason`` for a point's problem (row 1 is the header), else the field path."""
    if len(loc) >= 2 and loc[0] == "points" and isinstance(loc[1], int):
        column = ".".join(str(part) for part in loc[2:]) or "(row)"
        return f"row {loc[1] + 2}: column {column}: {reason}"
    return f"{'.'.join(str(part) for part in loc)}: {reason}"
