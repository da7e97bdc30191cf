"""Users, roles, who a request comes from, and the authorization check for every dashboard action that
changes something.

Users live in a YAML file (``users:`` mapping user name -> ``{role, password_hash, notify}``, ``notify``
optional: see :class:`energy.notifications.Subscription`; a ``notifications:`` section configures delivery,
:class:`energy.notifications.NotificationSettings`). Password hashes are made and checked by
:mod:`dashboard.passwords`; the file never holds a password. A user name may not hold ``:`` (HTTP Basic
cannot carry it) or control characters.

Reading pages needs no sign-in. Each action names the roles allowed to do it
(:data:`ACTION_ROLES`); :func:`authorize` answers for the user of the current
request (a server-side session after signing in, :mod:`dashboard.sessions`, or HTTP Basic credentials for
API clients) and logs every refusal. Sign-ins of both kinds are throttled (:mod:`dashboard.throttle`).
"""

from __future__ import annotations

import logging
import math
import secrets
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal, cast

import yaml
from flask import Request, session
from pydantic import AfterValidator, field_validator, model_validator
from werkzeug.exceptions import TooManyRequests

from dashboard.passwords import hash_cost_problem, hash_password, verify_password
from dashboard.sessions import SessionRegistry
from dashboard.throttle import LoginThrottle
from energy.notifications import NotificationSettings, Subscription
from twin.config import load_yaml_model
from twin.input_schema import InputModel

log = logging.getLogger(__name__)

Role = Literal["viewer", "operator", "trader", "admin"]
ROLES: tuple[str, ...] = ("viewer", "operator", "trader", "admin")

ACTION_ROLES: dict[str, frozenset[str]] = {
    "write_point": frozenset({"operator", "admin"}),
    "acknowledge_fault": frozenset({"operator", "admin"}),
    "comment_fault": frozenset({"operator", "admin"}),
    "shelve_alarm": frozenset({"operator", "admin"}),
    "approve_plan": frozenset({"trader", "admin"}),
    "suspend_plan": frozenset({"trader", "admin"}),
}
"""Roles allowed to take each action; viewers take none."""

SESSION_ID = "session_id"
"""The session cookie's only entry: the id of a server-side session record."""


def user_name_problem(name: str) -> str | None:
    """Why a user name cannot be used, else None."""
    if not name:
        return "user name must not be empty"
    if ":" in name:
        return f"user name {name!r} must not contain ':' (HTTP Basic credentials cannot carry it)"
    if any(unicodedata.category(c) == "Cc" or c.isspace() for c in name):
        return f"user name {name!r} must not contain spaces or control characters"
    return None


def _usable_name(name: str) -> str:
    if (problem := user_name_problem(name)) is not None:
        raise ValueError(problem)
    return name


UserName = Annotated[str, AfterValidator(_usable_name)]
"""A users-file key: refused where it stands, with its line, when :func:`user_name_problem` finds one."""


class UserEntry(InputModel):
    role: Role
    password_hash: str
    notify: Subscription | None = None
    """Where and about which new alarms this user is notified (``energy.notifications``); None: never."""

    @field_validator("password_hash")
    @classmethod
    def _bounded_hash(cls, stored: str) -> str:
        problem = hash_cost_problem(stored)
        if problem is not None:
            raise ValueError(problem)
        return stored


class UsersFile(InputModel):
    """Schema of the users file."""

    users: dict[UserName, UserEntry] = {}
    notifications: NotificationSettings = NotificationSettings()

    @model_validator(mode="after")
    def _smtp_for_email(self) -> UsersFile:
        emailed = sorted(name for name, entry in self.users.items() if entry.notify and entry.notify.email)
        if emailed and self.notifications.smtp is None:
            raise ValueError(f"notifications.smtp is missing: user(s) {', '.join(emailed)} subscribe by e-mail")
        return self


@dataclass(frozen=True)
class User:
    name: str
    role: str

    def may(self, action: str) -> bool:
        return self.role in ACTION_ROLES[action]


class UserStore:
    """The users of one users file (or none): sign-in checks."""

    def __init__(self, users: UsersFile | None = None):
        self._users = users.users if users is not None else {}
        self.notification_settings = users.notifications if users is not None else NotificationSettings()
        self._stand_in: str | None = None

    def subscriptions(self) -> dict[str, Subscription]:
        """Each user's notification subscription, by user name (users without one absent)."""
        return {name: entry.notify for name, entry in self._users.items() if entry.notify is not None}

    @classmethod
    def load(cls, path: str | Path) -> UserStore:
        """Read and validate a users file; raises ConfigError naming the problem."""
        return cls(load_yaml_model(path, UsersFile))

    def sign_in(self, name: str, password: str) -> User | None:
        """The user when name and password match, else None. An unknown name costs as much as a known one:
        its password is checked against a stored user's hash (or one made for the purpose), and refused."""
        entry = self._users.get(name)
        if entry is None:
            verify_password(password, self._stand_in_hash())
            return None
        return User(name, entry.role) if verify_password(password, entry.password_hash) else None

    def _stand_in_hash(self) -> str:
        if self._stand_in is None:
            self._stand_in = next(iter(self._users.values())).password_hash if self._users else \
                hash_password(secrets.token_hex(16))
        return self._stand_in

    def get(self, name: str) -> User | None:
        entry = self._users.get(name)
        return User(name, entry.role) if entry is not None else None


def add_user(path: str | Path, name: str, role: str, password: str) -> bool:
    """Add a user to a users file, or replace its role and password; creates the file. True when new."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
    if (problem := user_name_problem(name)) is not None:
        raise ValueError(problem)
    if not password:
        raise ValueError("the password must not be empty")
    path = Path(path)
    users = load_yaml_model(path, UsersFile) if path.exists() else UsersFile()
    new = name not in users.users
    kept = users.users[name].notify if not new else None  # a new password keeps the user's subscription
    users.users[name] = UserEntry(role=cast(Role, role), password_hash=hash_password(password), notify=kept)
    path.write_text(yaml.safe_dump(users.model_dump(exclude_defaults=True), sort_keys=True), encoding="utf-8")
    return new


class Access:
    """Who a request comes from: sign-in (throttled), the server-side session it opens, sign-out, and HTTP
    Basic credentials for API clients (throttled alike)."""

    def __init__(self, users: UserStore, sessions: SessionRegistry | None = None,
                 throttle: LoginThrottle | None = None):
        self.users = users
        self.sessions = sessions or SessionRegistry()
        self.throttle = throttle or LoginThrottle()

    def sign_in(self, name: str, password: str, address: str) -> User | None:
        """The user when name and password match; None otherwise. Raises :class:`TooManyRequests` (429, with
        Retry-After in whole seconds) while the name or the client address is locked by too many failures."""
        wait_s = self.throttle.wait_s(name, address)
        if wait_s > 0:
            log.warning("refused sign-in of %r from %s: locked for %.0f s more", name, address, wait_s)
            raise TooManyRequests(f"too many wrong passwords: try again in {math.ceil(wait_s)} s",
                                  retry_after=math.ceil(wait_s))
        user = self.users.sign_in(name, password)
        if user is None:
            self.throttle.failed(name, address)
            log.warning("failed sign-in of %r from %s", name, address)
        else:
            self.throttle.succeeded(name)
        return user

    def open_session(self, user: User) -> None:
        """A new server-side session for the signed-in user, its id in the session cookie (a session the
        browser had before ends: a sign-in never continues an id someone else may know)."""
        self.close_session()
        session[SESSION_ID] = self.sessions.start(user.name)

    def close_session(self) -> None:
        """Sign-out: the session record goes, so the cookie is refused even if replayed."""
        session_id = session.pop(SESSION_ID, None)
        if isinstance(session_id, str):
            self.sessions.end(session_id)
        session.clear()

    def current_user(self, request: Request) -> User | None:
        """The signed-in user of this request: the live session's, else valid HTTP Basic credentials, else
        None."""
        session_id = session.get(SESSION_ID)
        if isinstance(session_id, str):
            name = self.sessions.user_of(session_id)
            return self.users.get(name) if name is not None else None
        basic = request.authorization
        if basic is not None and basic.type == "basic" and basic.username and basic.password is not None:
            return self.sign_in(basic.username, basic.password, request.remote_addr or "")
        return None


def authorize(access: Access, request: Request, action: str, target: str) -> User | None:
    """The user when allowed to take ``action`` on ``target``; None (and a logged refusal) otherwise."""
    user = access.current_user(request)
    if user is not None and user.may(action):
        return user
    who = f"user {user.name!r} (role {user.role})" if user else "anonymous client"
    log.warning("refused %s on %s for %s from %s", action, target, who, request.remote_addr)
    return None
