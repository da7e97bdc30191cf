"""BACnet discovery: one device's object list walked into a point-map skeleton that passes validation.

``parktwin points discover`` sends Who-Is to one BACnet/IP device, reads its
object list and every input, output and value object's name (and units), and
writes a point map for the integrator to complete. The skeleton validates as
it stands (``parktwin points validate``): ids are ``todo.<device>.<name>``,
made of lower-case ASCII letters, digits and underscores and unique within
the map; units are written the way the twin writes them (``degC``, not
``degrees-celsius``); commandable kinds (outputs and values) are marked
writable with placeholder limits, binary ones 0 to 1.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable
from typing import Any, get_args

from bacpypes3.apdu import ErrorRejectAbortNack
from bacpypes3.basetypes import ErrorType
from bacpypes3.ipv4.app import NormalApplication
from bacpypes3.pdu import Address
from bacpypes3.primitivedata import ObjectIdentifier

from protocols.bacnet_client import ASHRAE
from protocols.errors import DeviceUnreachable
from protocols.pointmap import COMMANDABLE_TYPES, BacnetDeviceMap, BacnetPoint

TWIN_UNITS = {
    "kilowatts": "kW", "watts": "W", "megawatts": "MW", "kilowatt-hours": "kWh", "watt-hours": "Wh",
    "megawatt-hours": "MWh", "degrees-celsius": "degC", "degrees-fahrenheit": "degF", "degrees-kelvin": "K",
    "delta-degrees-kelvin": "K", "percent": "%", "watts-per-square-meter": "W/m2", "volts": "V",
    "kilovolts": "kV", "amperes": "A", "hertz": "Hz", "volt-amperes": "VA", "kilovolt-amperes": "kVA",
    "volt-amperes-reactive": "var", "kilovolt-amperes-reactive": "kvar", "power-factor": "PF",
    "kilopascals": "kPa", "pascals": "Pa", "bars": "bar", "liters-per-second": "L/s",
    "cubic-meters-per-hour": "m3/h", "cubic-meters-per-second": "m3/s", "meters-per-second": "m/s",
    "tons-refrigeration": "TR", "kilowatts-per-ton": "kW/TR", "seconds": "s", "minutes": "min", "hours": "h",
    "percent-relative-humidity": "%RH", "parts-per-million": "ppm", "no-units": "",
}
"""BACnet engineering units (as bacpypes3 names them) to the unit strings of twin points; a unit not
listed keeps its BACnet name for the integrator to translate."""

OBJECT_UNITS = {"binary": "bool", "multi-state": "enum"}
"""Units of objects without a units property, as the twin writes them (by object-type prefix)."""

TYPE_ABBREVIATIONS = {"analog-input": "ai", "analog-output": "ao", "analog-value": "av", "binary-input": "bi",
                      "binary-output": "bo", "binary-value": "bv", "multi-state-input": "msi",
                      "multi-state-output": "mso", "multi-state-value": "msv"}
"""Short object-type names, used in ids made from objects without a usable name or with a taken one."""

MAPPED_TYPES: tuple[str, ...] = get_args(BacnetPoint.model_fields["object_type"].annotation)


def twin_unit(bacnet_unit: str) -> str:
    """The twin's unit string for a BACnet engineering unit name (``degrees-celsius`` -> ``degC``)."""
    return TWIN_UNITS.get(bacnet_unit, bacnet_unit)


def identifier(text: str) -> str:
    """A lower-case ASCII identifier from a BACnet name ('' when nothing usable is left): other characters
    become underscores, runs of them one; an identifier must start with a letter, so a leading digit gets
    ``x_``."""
    cleaned = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
    return f"x_{cleaned}" if cleaned[:1].isdigit() else cleaned


def unique_names(objects: list[tuple[str, int, str]]) -> list[str]:
    """One point name per (object type, instance, object name), unique within the list, in order.

    A name from :func:`identifier`; an object whose name gives nothing usable (say, only Chinese
    characters) is named by its type and instance (``ai_3``), and so is any later object whose name is
    taken already: "Power KW" and "power_kw" become ``power_kw`` and ``power_kw_ai2``."""
    taken: set[str] = set()
    names = []
    for object_type, instance, object_name in objects:
        short = f"{TYPE_ABBREVIATIONS.get(object_type, identifier(object_type))}{instance}"
        base = identifier(object_name)
        name = short if not base else f"{base}_{short}" if base in taken else base
        candidate, suffix = name, 2
        while candidate in taken:  # pathological names ("power_kw_ai2" given by the device itself)
            candidate = f"{name}_{suffix}"
            suffix += 1
        taken.add(candidate)
        names.append(candidate)
    return names


async def discover_point_map(app: NormalApplication, host: str, port: int, timeout_s: float = 3.0) -> BacnetDeviceMap:
    """Who-Is at host:port, then walk the device's object list into a point-map skeleton (module docstring).

    ``timeout_s``: seconds to wait for each answer. Raises DeviceUnreachable when nothing answers or the
    device refuses a read the skeleton needs."""
    address = Address(f"{host}:{port}")
    try:
        i_ams = await asyncio.wait_for(app.who_is(address=address, timeout=timeout_s), timeout_s + 1)
    except TimeoutError:
        i_ams = []
    if not i_ams:
        raise DeviceUnreachable(f"no I-Am from {host}:{port} within {timeout_s:g} s")
    device_id = i_ams[0].iAmDeviceIdentifier
    device_name = identifier(str(await _read(app, address, device_id, "object-name", timeout_s))) \
        or f"device_{int(device_id[1])}"
    object_list = await _read(app, address, device_id, "object-list", timeout_s)
    found = []  # (object type, instance, object name, BACnet units or None)
    for object_id in object_list:
        object_type = str(object_id[0])
        if object_type not in MAPPED_TYPES:
            continue
        wanted = ["object-name", "units"] if object_type.startswith("analog") else ["object-name"]
        answers = await _request(app.read_property_multiple(address, [object_id, wanted], vendor_info=ASHRAE),
                                 timeout_s, f"{address}: reading {', '.join(wanted)} of {object_id}")
        if not isinstance(answers, list):
            raise DeviceUnreachable(f"{address}: cannot read {', '.join(wanted)} of {object_id}: {answers}")
        values = {str(prop): value for _objid, prop, _index, value in answers}
        name = values.get("object-name")
        units = values.get("units")
        found.append((object_type, int(object_id[1]),
                      "" if name is None or isinstance(name, ErrorType) else str(name),
                      None if units is None or isinstance(units, ErrorType) else str(units)))
    points = []
    for (object_type, instance, object_name, units), name in zip(found, unique_names([f[:3] for f in found])):
        kind = next((prefix for prefix in OBJECT_UNITS if object_type.startswith(prefix)), None)
        point = {"id": f"todo.{device_name}.{name}", "object_type": object_type, "instance": instance,
                     "unit": twin_unit(units) if units is not None else OBJECT_UNITS.get(kind or "", ""),
                     "description": object_name}
        if object_type in COMMANDABLE_TYPES:
            if kind == "binary":
                point.update(writable=True, low_limit=0.0, high_limit=1.0)
            else:  # placeholder limits at the value in force, to be set by the integrator
                present = float(await _read(app, address, ObjectIdentifier((object_type, instance)), "present-value",
                                             timeout_s))
                point.update(writable=True, low_limit=present, high_limit=present)
        points.append(point)
    return BacnetDeviceMap(name=device_name, host=host, port=port, device_instance=int(device_id[1]), points=points)


async def _request(awaitable: Awaitable[Any], timeout_s: float, what: str) -> Any:
    """One confirmed request's answer; no answer raises DeviceUnreachable naming ``what``; an error, reject
    or abort is returned as the answer."""
    try:
        return await asyncio.wait_for(awaitable, timeout_s)
    except TimeoutError:
        raise DeviceUnreachable(f"{what}: no answer within {timeout_s:g} s") from None
    except ErrorRejectAbortNack as exc:
        return exc


async def _read(app: NormalApplication, address: Address, object_id: ObjectIdentifier, prop: str,
                timeout_s: float) -> Any:
    value = await _request(app.read_property(address, object_id, prop), timeout_s,
                           f"{address}: reading {prop} of {object_id}")
    if isinstance(value, (ErrorType, ErrorRejectAbortNack)):
        raise DeviceUnreachable(f"{address}: cannot read {prop} of {object_id}: {value}")
    return value
