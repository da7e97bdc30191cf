"""Actions that change something, each behind :func:`dashboard.auth.authorize`; shared by the API and the pages."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from flask import Request

from dashboard.auth import authorize
from dashboard.context import DashboardContext
from dashboard.providers import MISSING

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ActionResult:
    """HTTP status (200, 400, 403, 404, 503) and a message for people."""

    status: int
    message: str

    @property
    def ok(self) -> bool:
        return self.status == 200


def write_point(ctx: DashboardContext, request: Request, point_id: str, raw_value: object) -> ActionResult:
    """Write a value to a writable point for a signed-in operator or admin.

    404 unknown point; 403 not allowed (logged); 503 no writer in this mode;
    400 not writable, not a number or outside the point's safe limits.
    """
    point = ctx.park.points.get(point_id)
    if point is None:
        return ActionResult(404, f"unknown point {point_id!r}")
    user = authorize(ctx.users, request, "write_point", point_id)
    if user is None:
        return ActionResult(403, "writing a point needs a signed-in user with the operator or admin role")
    if ctx.providers.write_point is None:
        return ActionResult(503, MISSING["write_point"])
    if not point.writable:
        return ActionResult(400, f"point {point_id} is not writable")
    try:
        value = float(raw_value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return ActionResult(400, f"value {raw_value!r} is not a number")
    if not math.isfinite(value) or not point.within_limits(value):
        return ActionResult(400, f"{value:g} is outside the safe limits of {point_id} "
                                 f"[{point.spec.low_limit:g}, {point.spec.high_limit:g}] {point.unit}")
    try:
        ctx.providers.write_point(point_id, value)
    except ValueError as exc:
        return ActionResult(400, str(exc))
    log.info("user %r (role %s) wrote %g %s to %s", user.name, user.role, value, point.unit, point_id)
    return ActionResult(200, f"wrote {value:g} {point.unit} to {point_id}")
