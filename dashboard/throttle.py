"""Sign-in throttling: too many wrong passwords lock the user name, and the client address, for a while.

Each failed sign-in counts against the user name tried (known or not: the answer must not tell them apart)
and against the client's address. ``max_failures`` failures of a name within ``window_s`` seconds lock that
name for ``lockout_s`` seconds, and ``max_failures_per_address`` failures from one address within the window
lock that address as long; a locked sign-in is refused without checking the password (no hash is computed:
guessing costs the server nothing while locked).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class ThrottleLimits:
    """Failures allowed per user name and per client address within ``window_s`` seconds, and how long
    (seconds) a name or address is locked once it has had them."""

    max_failures: int = 10
    max_failures_per_address: int = 100
    window_s: float = 15 * 60
    lockout_s: float = 15 * 60


TRACKED_KEYS = 100_000
"""Names and addresses tracked at most; past it, those with no failure in the window are forgotten."""


class _FailureCounter:
    """Failure times and lock ends (monotonic seconds) per key, for one limit."""

    def __init__(self, max_failures: int, window_s: float, lockout_s: float):
        self._max_failures, self._window_s, self._lockout_s = max_failures, window_s, lockout_s
        self._failures: dict[str, deque[float]] = {}
        self._locked_until: dict[str, float] = {}

    def locked_s(self, key: str, now_s: float) -> float:
        """Seconds the key stays locked (0: not locked)."""
        return max(0.0, self._locked_until.get(key, 0.0) - now_s)

    def failed(self, key: str, now_s: float) -> None:
        times = self._failures.setdefault(key, deque())
        times.append(now_s)
        while times and times[0] <= now_s - self._window_s:
            times.popleft()
        if len(times) >= self._max_failures:
            self._locked_until[key] = now_s + self._lockout_s
            times.clear()
        if len(self._failures) > TRACKED_KEYS:
            self._forget_stale(now_s)

    def forgive(self, key: str) -> None:
        self._failures.pop(key, None)

    def _forget_stale(self, now_s: float) -> None:
        for key in [k for k, t in self._failures.items() if not t or t[-1] <= now_s - self._window_s]:
            del self._failures[key]
        for key in [k for k, until in self._locked_until.items() if until <= now_s]:
            del self._locked_until[key]


class LoginThrottle:
    """Counts failed sign-ins per user name and per client address; answers how long a sign-in must wait."""

    def __init__(self, limits: ThrottleLimits = ThrottleLimits(), clock_s: Callable[[], float] = time.monotonic):
        self.limits = limits
        self._clock_s = clock_s
        self._names = _FailureCounter(limits.max_failures, limits.window_s, limits.lockout_s)
        self._addresses = _FailureCounter(limits.max_failures_per_address, limits.window_s, limits.lockout_s)
        self._lock = threading.Lock()

    def wait_s(self, name: str, address: str) -> float:
        """Seconds before ``name`` may sign in from ``address`` again (0: now)."""
        now = self._clock_s()
        with self._lock:
            return max(self._names.locked_s(name, now), self._addresses.locked_s(address, now))

    def failed(self, name: str, address: str) -> None:
        now = self._clock_s()
        with self._lock:
            self._names.failed(name, now)
            self._addresses.failed(address, now)

    def succeeded(self, name: str) -> None:
        """A right password clears the name's earlier failures (its address keeps its count)."""
        with self._lock:
            self._names.forgive(name)
