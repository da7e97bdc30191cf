"""Field protocols: point maps, value codec, Modbus TCP and BACnet/IP client adapters, per-device
polling coordinators, and (in :mod:`protocols.devices`) the simulated devices that serve the park.

- :mod:`protocols.pointmap`: the point-map file format (YAML, CSV import) and its validation.
- :mod:`protocols.codec`: registers <-> values for every data type and byte/word order.
- :mod:`protocols.modbus_client`, :mod:`protocols.bacnet_client`: one adapter per device.
- :mod:`protocols.coordinator`: polling all devices concurrently with backoff and quality marking.
- :mod:`protocols.adapters`: adapters for a set of point maps; :mod:`protocols.errors`: what they raise.
"""
