"""Actions that change something, each behind :func:`dashboard.auth.authorize`; shared by the API and the pages."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from flask import Request

from dashboard.auth import User, authorize
from dashboard.context import DashboardContext
from dashboard.providers import MISSING
from twin.history import RELINQUISH, WriteRecord

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ActionResult:
    """HTTP status (200, 400, 403, 404, 409, 503), a message for people and, for some actions, what they changed."""

    status: int
    message: str
    data: dict | None = None

    @property
    def ok(self) -> bool:
        return self.status == 200


def write_point(ctx: DashboardContext, request: Request, point_id: str, raw_value: object) -> ActionResult:
    """Write a value to a writable point for a signed-in operator or admin.

    404 unknown point; 403 not allowed (logged); 503 no writer in this mode;
    400 not writable, not a number or outside the point's safe limits. Every
    refusal here is recorded in the write audit log with its reason, as asked by
    ``dashboard:<user>``, or ``dashboard`` before a user is known (an unknown
    point, a client not allowed); the writer records the writes it makes or the
    device refuses.
    """
    user = authorize(ctx.access, request, "write_point", point_id) if point_id in ctx.park.points else None
    refused = _refusal(ctx, user, point_id, raw_value)
    if refused is not None:
        ctx.record_write(WriteRecord(ctx.now_utc(), f"dashboard:{user.name}" if user else "dashboard", point_id,
                                     None, f"refused: {refused.message}",
                                     RELINQUISH if raw_value is None else str(raw_value)))
        return refused
    writer = ctx.providers.write_point
    assert user is not None and writer is not None, "_refusal refuses a write without a user or a writer"
    point, value = ctx.park.points[point_id], float(raw_value)  # type: ignore[arg-type]
    try:
        writer(point_id, value, user.name)
    except ValueError as exc:
        return ActionResult(400, str(exc))
    log.info("user %r (role %s) wrote %g %s to %s", user.name, user.role, value, point.unit, point_id)
    return ActionResult(200, f"wrote {value:g} {point.unit} to {point_id}")


def _refusal(ctx: DashboardContext, user: User | None, point_id: str, raw_value: object) -> ActionResult | None:
    """Why a write of ``raw_value`` to ``point_id`` by ``user`` (None: not allowed) is refused before it reaches
    the writer; None when it may go."""
    point = ctx.park.points.get(point_id)
    if point is None:
        return ActionResult(404, f"unknown point {point_id!r}")
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
    return None


def acknowledge_fault(ctx: DashboardContext, request: Request, episode_id: str) -> ActionResult:
    """Acknowledge a fault episode for a signed-in operator or admin (who and when are stored with it).

    403 not allowed (logged); 503 no fault provider; 404 no such episode.
    The result's ``data`` is the episode as stored afterwards.
    """
    user = authorize(ctx.access, request, "acknowledge_fault", episode_id)
    if user is None:
        return ActionResult(403, "acknowledging a fault needs a signed-in user with the operator or admin role")
    if ctx.providers.faults is None:
        return ActionResult(503, MISSING["faults"])
    episode = ctx.providers.faults.acknowledge(episode_id, user.name)
    if episode is None:
        return ActionResult(404, f"no fault episode {episode_id!r}")
    if episode["acknowledged_by"] != user.name:
        return ActionResult(200, f"already acknowledged by {episode['acknowledged_by']} at "
                                 f"{episode['acknowledged_utc']}", episode)
    log.info("user %r (role %s) acknowledged fault %s", user.name, user.role, episode_id)
    return ActionResult(200, f"acknowledged {episode['rule_id']} on {episode['asset_id']} as {user.name}", episode)


MAX_SHELVE_MINUTES = 7 * 24 * 60
"""Longest an alarm may be shelved at once (a week): shelving is for a known nuisance, not a way to silence
an alarm for good."""


def comment_fault(ctx: DashboardContext, request: Request, episode_id: str, text: object) -> ActionResult:
    """Add a signed-in operator's or admin's comment to a fault episode (who and when are stored with it).

    403 not allowed (logged); 503 no fault provider; 400 no text; 404 no such episode.
    The result's ``data`` is the comment.
    """
    user = authorize(ctx.access, request, "comment_fault", episode_id)
    if user is None:
        return ActionResult(403, "commenting on a fault needs a signed-in user with the operator or admin role")
    if ctx.providers.faults is None:
        return ActionResult(503, MISSING["faults"])
    if not isinstance(text, str) or not text.strip():
        return ActionResult(400, "a comment needs some text")
    comment = ctx.providers.faults.comment(episode_id, user.name, text.strip())
    if comment is None:
        return ActionResult(404, f"no fault episode {episode_id!r}")
    log.info("user %r (role %s) commented on fault %s", user.name, user.role, episode_id)
    return ActionResult(200, f"comment added by {user.name}", comment)


def shelve_alarm(ctx: DashboardContext, request: Request, episode_id: str, raw_minutes: object,
                 reason: object) -> ActionResult:
    """Shelve the alarm (rule, asset, point) of a fault episode for a signed-in operator or admin: its
    episodes are recorded but neither counted nor notified until the shelving expires. Audited (who, when,
    until, why) in the store and logged.

    403 not allowed (logged); 503 no fault provider; 400 minutes not from 1 to :data:`MAX_SHELVE_MINUTES`
    or no reason; 404 no such episode. The result's ``data`` is the shelving.
    """
    user = authorize(ctx.access, request, "shelve_alarm", episode_id)
    if user is None:
        return ActionResult(403, "shelving an alarm needs a signed-in user with the operator or admin role")
    if ctx.providers.faults is None:
        return ActionResult(503, MISSING["faults"])
    try:
        minutes = float(raw_minutes)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        minutes = math.nan
    if not 1 <= minutes <= MAX_SHELVE_MINUTES:
        return ActionResult(400, f"minutes {raw_minutes!r} must be a number from 1 to {MAX_SHELVE_MINUTES}")
    if not isinstance(reason, str) or not reason.strip():
        return ActionResult(400, "shelving an alarm needs a reason")
    shelf = ctx.providers.faults.shelve(episode_id, user.name, minutes, reason.strip())
    if shelf is None:
        return ActionResult(404, f"no fault episode {episode_id!r}")
    alarm = f"{shelf['rule_id']} on {shelf['asset_id']}" + (f" ({shelf['point_id']})" if shelf["point_id"] else "")
    log.info("user %r (role %s) shelved %s until %s: %s", user.name, user.role, alarm, shelf["until_utc"],
             shelf["reason"])
    return ActionResult(200, f"shelved {alarm} until {shelf['until_utc']} by {user.name}", shelf)


def approve_plan(ctx: DashboardContext, request: Request, plan_id: str) -> ActionResult:
    """Approve plan ``plan_id`` (the plan in force or the plan for review) for a signed-in trader or admin:
    in manual mode the controller then dispatches every step until that plan's end.

    403 not allowed (logged); 503 no planner; 409 replaced, expired or approved already.
    The result's ``data`` is the approval state (approver, until when, the setpoints of the step dispatched).
    """
    user = authorize(ctx.access, request, "approve_plan", plan_id)
    if user is None:
        return ActionResult(403, "approving a plan needs a signed-in user with the trader or admin role")
    if ctx.providers.plan is None:
        return ActionResult(503, MISSING["plan"])
    try:
        approval = ctx.providers.plan.approve(plan_id, user.name)
    except ValueError as exc:
        return ActionResult(409, str(exc))
    log.info("user %r (role %s) approved plan %s until %s", user.name, user.role, plan_id, approval["until_utc"])
    written = sum(w["result"] == "ok" for w in approval["writes"])
    dispatched = f"; {written} of {len(approval['writes'])} setpoints written" if approval["writes"] else ""
    return ActionResult(200, f"plan {plan_id} approved by {user.name} until {approval['until_utc']}{dispatched}",
                        approval)


def suspend_plan(ctx: DashboardContext, request: Request) -> ActionResult:
    """Suspend dispatch for a signed-in trader or admin: authority ends and every setpoint written goes back
    to the plant schedule at once. 403 not allowed (logged); 503 no planner. ``data``: the approval state."""
    user = authorize(ctx.access, request, "suspend_plan", "dispatch")
    if user is None:
        return ActionResult(403, "suspending dispatch needs a signed-in user with the trader or admin role")
    if ctx.providers.plan is None:
        return ActionResult(503, MISSING["plan"])
    approval = ctx.providers.plan.suspend(user.name)
    log.info("user %r (role %s) suspended dispatch", user.name, user.role)
    return ActionResult(200, f"dispatch suspended by {user.name}: setpoints released to the plant schedule",
                        approval)


def replan(ctx: DashboardContext, request: Request) -> ActionResult:
    """Re-plan at the next control step for a signed-in trader or admin; 409 while one is asked for already."""
    user = authorize(ctx.access, request, "approve_plan", "re-plan")
    if user is None:
        return ActionResult(403, "re-planning needs a signed-in user with the trader or admin role")
    if ctx.providers.plan is None:
        return ActionResult(503, MISSING["plan"])
    if not ctx.providers.plan.replan():
        return ActionResult(409, "a re-plan is asked for already")
    log.info("user %r (role %s) asked for a new plan", user.name, user.role)
    return ActionResult(200, f"re-planning for {user.name}; "
                             "the new plan replaces the one in force at the controller's next look")
