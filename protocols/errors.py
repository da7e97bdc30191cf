"""What adapters raise: a device that does not answer, and a write that was not carried out."""


class DeviceUnreachable(Exception):
    """The device did not answer (connection refused or lost, timeout); its points are marked comm_fail."""


class WriteRefused(Exception):
    """A write that was not carried out: outside the point's safe limits, read-only, or refused by the device."""


class BadReply(DeviceUnreachable):
    """The device answered with something that is no answer to the request (garbage, another transaction
    id, a frame cut short); it is running, but its points are marked comm_fail like an unreachable one's."""
