"""Server-side sign-in sessions: the session cookie carries only a random id; who it belongs to, and whether it
still holds, lives here, so signing out or expiry ends a session even for a copy of its cookie.

A session ends after ``idle_s`` seconds without a request, ``max_s`` seconds after sign-in whatever its use,
or at sign-out. Records live in this process only: sessions end when the server stops.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class SessionLimits:
    """How long a session lasts, in seconds: ``idle_s`` since its last request, ``max_s`` since sign-in."""

    idle_s: float = 30 * 60
    max_s: float = 12 * 3600


@dataclass
class _Session:
    user: str
    created_s: float
    last_seen_s: float


class SessionRegistry:
    """Session id -> user, created and last seen (monotonic seconds), guarded by a lock (waitress serves
    requests on several threads)."""

    def __init__(self, limits: SessionLimits = SessionLimits(), clock_s: Callable[[], float] = time.monotonic):
        self.limits = limits
        self._clock_s = clock_s
        self._sessions: dict[str, _Session] = {}
        self._lock = threading.Lock()

    def start(self, user: str) -> str:
        """A new session for ``user``; returns its id (256 random bits). Expired sessions are dropped here,
        so the registry holds no more than the sessions started within ``max_s``."""
        session_id = secrets.token_urlsafe(32)
        now = self._clock_s()
        with self._lock:
            for expired in [sid for sid, s in self._sessions.items() if not self._holds(s, now)]:
                del self._sessions[expired]
            self._sessions[session_id] = _Session(user, now, now)
        return session_id

    def user_of(self, session_id: str) -> str | None:
        """The user of a live session (its idle time starts again), else None (unknown, ended or expired)."""
        now = self._clock_s()
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None:
                return None
            if not self._holds(session, now):
                del self._sessions[session_id]
                return None
            session.last_seen_s = now
            return session.user

    def end(self, session_id: str) -> None:
        """Sign-out: the session's id is refused from now on."""
        with self._lock:
            self._sessions.pop(session_id, None)

    def _holds(self, session: _Session, now_s: float) -> bool:
        return now_s - session.last_seen_s < self.limits.idle_s and now_s - session.created_s < self.limits.max_s
