"""Daily profiles that drive the simulated loads: occupancy, elevator traffic, EV arrivals.

All take the local hour of day (0-24, fractional) and return a dimensionless
intensity. Shapes are typical office-park patterns (morning arrival, lunch,
evening departure); they are illustrative, not measured.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from twin.park import Occupancy

RAMP_H = 1.0


def occupancy_fraction(occupancy: Occupancy, local_hour: float, is_weekend: bool) -> float:
    """Share of the building's people present, 0-1, with one-hour ramps at both ends of the day."""
    window = occupancy.weekday
    if window.start_h == 0 and window.end_h == 24:
        present = 1.0
    else:
        rise = _clip01((local_hour - window.start_h + RAMP_H) / RAMP_H)
        fall = _clip01((window.end_h - local_hour) / RAMP_H)
        present = max(0.03, min(rise, fall))
    return present * (occupancy.weekend_fraction if is_weekend else 1.0)


def elevator_traffic(local_hour: float) -> float:
    """Relative elevator traffic (1.0 = morning up-peak), Gaussian peaks at 08:45, 12:15 and 18:00."""
    return max(
        0.05,
        _bump(local_hour, 8.75, 0.6),
        0.7 * _bump(local_hour, 12.25, 0.7),
        0.8 * _bump(local_hour, 18.0, 0.7),
        0.35 * _bump(local_hour, 14.5, 2.5),
    )


def ev_arrival_weight(local_hour: float) -> float:
    """Relative EV arrival rate: commuters around 08:30, a smaller midday and evening wave."""
    return _bump(local_hour, 8.5, 1.0) + 0.35 * _bump(local_hour, 13.0, 1.5) + 0.25 * _bump(local_hour, 19.0, 1.5)


EV_ARRIVAL_WEIGHT_PER_DAY_H = (1.0 * math.sqrt(2 * math.pi) * 1.0 + 0.35 * math.sqrt(2 * math.pi) * 1.5
                               + 0.25 * math.sqrt(2 * math.pi) * 1.5)
"""Integral of :func:`ev_arrival_weight` over a day, in hours, to turn sessions/day into a rate."""


def _bump(x: float, centre: float, width: float) -> float:
    return math.exp(-0.5 * ((x - centre) / width) ** 2)


def _clip01(x: float) -> float:
    return min(1.0, max(0.0, x))
