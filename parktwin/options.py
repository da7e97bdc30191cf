"""What the commands take from the command line: the option and argument types several commands share, the
dashboard's serving options (:class:`WebOptions`), and the parsing of days and times given as options."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any, get_type_hints
from zoneinfo import ZoneInfo

import typer

from parktwin.park_files import DEFAULT_HISTORY
from parktwin.terminal import BadInput
from twin.input_schema import INPUT_YEARS
from twin.park import Park

ParkFile = Annotated[Path, typer.Argument(help="Park YAML file", metavar="PARK.yaml")]
HistoryOption = Annotated[str | None, typer.Option(
    "--history", help="History store: sqlite:///FILE or postgresql://... "
                      f"(default: the park file's history, else {DEFAULT_HISTORY})")]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables")]
FromOption = Annotated[str, typer.Option("--from", help="Start, YYYY-MM-DD[THH:MM] in the park's time zone")]
ToOption = Annotated[str, typer.Option("--to", help="End (exclusive), YYYY-MM-DD[THH:MM]")]
RecordedSpeedOption = Annotated[float | None, typer.Option(
    "--speed", min=0.01, max=3600, help="Simulated seconds per wall-clock second of the `parktwin run` that "
                                        "recorded the history (its --speed): scales the point maps' poll periods, "
                                        "which limit how long a reading holds in the KPIs (default: the speed the "
                                        "runs recorded in the history, the fastest of several; else 1)")]

BehindProxyOption = Annotated[bool, typer.Option(
    "--behind-proxy", help="The dashboard is reached through one reverse proxy (TLS): take the client's address "
                           "and scheme from its X-Forwarded-For and X-Forwarded-Proto, trusting that one proxy "
                           "only")]
ThreadsOption = Annotated[int, typer.Option(min=1, max=64, help="Dashboard requests served at once")]
SessionIdleOption = Annotated[float, typer.Option(
    "--session-idle-min", min=1, max=7 * 24 * 60, help="A sign-in ends after this many minutes without a request")]
SessionMaxOption = Annotated[float, typer.Option(
    "--session-max-h", min=0.1, max=30 * 24, help="A sign-in ends this many hours after it began, used or not")]
LoginFailuresOption = Annotated[int, typer.Option(
    "--login-failures", min=1, max=10_000, help="Wrong passwords for one user name within --login-window-min "
                                                "before it is locked (sign-in answers 429)")]
LoginWindowOption = Annotated[float, typer.Option(
    "--login-window-min", min=0.1, max=24 * 60, help="Minutes over which wrong passwords are counted")]
LockoutOption = Annotated[float, typer.Option(
    "--lockout-min", min=0.01, max=24 * 60, help="Minutes a user name (or client address) stays locked")]


@dataclass(frozen=True)
class WebOptions:
    """How the dashboard is served and signed in to: the options :func:`web_options` gives `run` and
    `dashboard`."""

    behind_proxy: BehindProxyOption = False
    threads: ThreadsOption = 8
    session_idle_min: SessionIdleOption = 30
    session_max_h: SessionMaxOption = 12
    login_failures: LoginFailuresOption = 10
    login_window_min: LoginWindowOption = 15
    lockout_min: LockoutOption = 15

    def app_options(self) -> dict[str, Any]:
        """The keyword arguments of dashboard.app.create_app these options set."""
        from dashboard.sessions import SessionLimits
        from dashboard.throttle import ThrottleLimits

        return {"session_limits": SessionLimits(idle_s=self.session_idle_min * 60,
                                                max_s=self.session_max_h * 3600),
                "throttle_limits": ThrottleLimits(max_failures=self.login_failures,
                                                  window_s=self.login_window_min * 60,
                                                  lockout_s=self.lockout_min * 60)}


def web_options(command: Callable[..., None]) -> Callable[..., None]:
    """Give a command the options of :class:`WebOptions` (one per field, as typer reads a signature); the
    command receives them as one ``web`` argument."""
    names = [f.name for f in fields(WebOptions)]
    hints = {**get_type_hints(command, include_extras=True), **get_type_hints(WebOptions, include_extras=True)}
    del hints["web"]
    own = [p.replace(annotation=hints[p.name]) for p in inspect.signature(command).parameters.values()
           if p.name != "web"]
    added = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=getattr(WebOptions, name),
                               annotation=hints[name]) for name in names]

    @functools.wraps(command)
    def with_web_options(*args: Any, **kwargs: Any) -> None:
        return command(*args, web=WebOptions(**{name: kwargs.pop(name) for name in names}), **kwargs)

    # inspect.signature, which typer reads, honours a function's __signature__ (documented in inspect), but
    # typeshed declares no such attribute on functions
    with_web_options.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [*own, *added], return_annotation=None)
    with_web_options.__annotations__ = hints
    return with_web_options


def parse_day(text: str, option: str) -> date:
    """The day YYYY-MM-DD given as ``option``."""
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise BadInput(f"{option}: {text!r} is not a date of the form YYYY-MM-DD") from None
    _check_year(day.year, text, option)
    return day


def parse_local_time(text: str, option: str, park: Park) -> datetime:
    """UTC time of YYYY-MM-DD (local midnight) or YYYY-MM-DDTHH:MM (local unless it carries an offset)."""
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise BadInput(f"{option}: {text!r} is not a date YYYY-MM-DD or a time YYYY-MM-DDTHH:MM") from None
    _check_year(parsed.year, text, option)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=ZoneInfo(park.site.timezone))
    return parsed.astimezone(UTC)


def parse_period(park: Park, from_text: str, to_text: str) -> tuple[datetime, datetime]:
    """The UTC period [--from, --to) of local times given as text."""
    start, end = parse_local_time(from_text, "--from", park), parse_local_time(to_text, "--to", park)
    if end <= start:
        raise BadInput(f"--to {to_text} must be after --from {from_text}")
    return start, end


def _check_year(year: int, text: str, option: str) -> None:
    if not INPUT_YEARS[0] <= year <= INPUT_YEARS[1]:
        raise BadInput(f"{option}: {text!r} is outside the years {INPUT_YEARS[0]}-{INPUT_YEARS[1]}")


def local_midnight(day: date, park: Park) -> datetime:
    """The start of a local day of the park, in UTC."""
    return datetime.combine(day, datetime.min.time(), tzinfo=ZoneInfo(park.site.timezone)).astimezone(UTC)

