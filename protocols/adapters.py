"""Client adapters for a set of point maps: one per device, sharing one BACnet client application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from protocols.bacnet_client import BacnetAdapter, make_client_application
from protocols.modbus_client import ModbusAdapter
from protocols.pointmap import AnyDeviceMap, ModbusDeviceMap


@asynccontextmanager
async def open_adapters(device_maps: list[AnyDeviceMap]) -> AsyncIterator[list[ModbusAdapter | BacnetAdapter]]:
    """Adapters for every device map, in order; connections and the BACnet socket are closed on exit."""
    bacnet_app = None
    if any(not isinstance(m, ModbusDeviceMap) for m in device_maps):
        bacnet_app = make_client_application()
    adapters = [ModbusAdapter(m) if isinstance(m, ModbusDeviceMap) else BacnetAdapter(m, bacnet_app)
                for m in device_maps]
    try:
        yield adapters
    finally:
        for adapter in adapters:
            await adapter.close()
        if bacnet_app is not None:
            bacnet_app.close()
