"""How commands end and print: exit codes, :class:`BadInput`, the stdout and stderr consoles, JSON output and
local times."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from zoneinfo import ZoneInfo

from rich.console import Console

from twin.park import Park

EXIT_FAILURE, EXIT_BAD_INPUT = 1, 2

console = Console(soft_wrap=True)
errors = Console(stderr=True, soft_wrap=True)


class BadInput(Exception):
    """A user-supplied value that cannot be used; printed as is, exit 2."""


def print_json(data: object) -> None:
    """``data`` as indented JSON on stdout; values JSON does not know (times, paths) as their text."""
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def local_minute(ts: datetime, park: Park) -> str:
    """``ts`` in the park's time zone, to the minute, for display."""
    return ts.astimezone(ZoneInfo(park.site.timezone)).strftime("%Y-%m-%d %H:%M")
