"""Waiting for a condition in tests that run on a loaded machine: poll until it holds, fail naming it."""

from __future__ import annotations

import asyncio
import time


def wait_for(predicate, timeout_s: float, what: str):
    """Call ``predicate()`` until it gives something true and return that; fail naming ``what`` after timeout_s."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout_s} s: {what}")


async def eventually(condition, what: str, timeout_s: float = 30.0):
    """Await ``condition()`` (a coroutine function) until it is true; fail naming ``what`` after timeout_s."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        if await condition():
            return
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)
