"""Device-side servers that expose the simulated park's equipment over Modbus TCP and BACnet/IP."""
