"""Users, roles and the authorization check for every dashboard action that changes something.

Users live in a YAML file (``users:`` mapping user name -> ``{role, password_hash, notify}``, ``notify``
optional: see :class:`energy.notifications.Subscription`; a ``notifications:`` section configures delivery,
:class:`energy.notifications.NotificationSettings`).
Passwords are hashed with scrypt (standard library ``hashlib.scrypt``, N=2**14,
r=8, p=1, 16-byte random salt per user) and stored as
``scrypt$N$r$p$<salt hex>$<hash hex>``; the file never holds a password.

Reading pages needs no sign-in. Each action names the roles allowed to do it
(:data:`ACTION_ROLES`); :func:`authorize` answers for the user of the current
request (Flask session after signing in, or HTTP Basic credentials for API
clients) and logs every refusal.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import yaml
from flask import Request, session
from pydantic import AfterValidator, Field, field_validator, model_validator

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

SCRYPT_N, SCRYPT_R, SCRYPT_P, SALT_BYTES = 2**14, 8, 1, 16
SESSION_USER = "user"


def hash_password(password: str) -> str:
    """A salted scrypt hash of the password in the users-file format."""
    salt = secrets.token_bytes(SALT_BYTES)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    """True when the password matches a stored hash (constant-time comparison); False for a malformed hash."""
    try:
        scheme, n, r, p, salt_hex, digest_hex = stored.split("$")
        if scheme != "scrypt":
            return False
        digest = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt_hex), n=int(n), r=int(r), p=int(p))
    except ValueError:
        return False
    return hmac.compare_digest(digest, bytes.fromhex(digest_hex))


USER_NAME_PATTERN = r"[^\s:\x00-\x1f\x7f]{1,64}"
"""A user name: 1-64 characters without spaces, control characters or ':' (HTTP Basic sends
"name:password", RFC 7617, so a name with ':' could never sign in as an API client)."""


def checked_user_name(name: str) -> str:
    """The name when it is a valid user name (:data:`USER_NAME_PATTERN`); ValueError saying why not."""
    if not re.fullmatch(USER_NAME_PATTERN, name):
        raise ValueError(f"user name {name!r} must be 1-64 characters without spaces, control characters or ':'")
    return name


UserName = Annotated[str, AfterValidator(checked_user_name)]
SCRYPT_MAX_MEMORY_BYTES, SCRYPT_MAX_P = 2**25, 4
"""Bounds of a stored scrypt cost: 128 * N * r below 32 MiB (the standard library's limit per hash, which
refuses more) and p at most 4, so a users file cannot make every sign-in exhaust memory or CPU."""


class UserEntry(InputModel):
    role: Role
    password_hash: str = Field(pattern=r"^scrypt\$\d{1,12}\$\d{1,4}\$\d{1,4}\$[0-9a-f]+\$[0-9a-f]+$")
    notify: Subscription | None = None
    """Where and about which new alarms this user is notified (``energy.notifications``); None: never."""

    @field_validator("password_hash")
    @classmethod
    def _bounded_cost(cls, value: str) -> str:
        n, r, p = (int(part) for part in value.split("$")[1:4])
        if n < 2 or n & (n - 1) or not 1 <= r or not 1 <= p <= SCRYPT_MAX_P or 128 * n * r >= SCRYPT_MAX_MEMORY_BYTES:
            raise ValueError(f"scrypt cost N={n}, r={r}, p={p} is out of bounds: N a power of 2, r >= 1, "
                             f"128 N r below {SCRYPT_MAX_MEMORY_BYTES // 2**20} MiB, p 1-{SCRYPT_MAX_P}")
        return value


class UsersFile(InputModel):
    """Schema of the users file."""

    users: dict[UserName, UserEntry] = {}
    notifications: NotificationSettings = NotificationSettings()

    @model_validator(mode="after")
    def _smtp_for_email(self) -> "UsersFile":
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

    def subscriptions(self) -> dict[str, Subscription]:
        """Each user's notification subscription, by user name (users without one absent)."""
        return {name: entry.notify for name, entry in self._users.items() if entry.notify is not None}

    @classmethod
    def load(cls, path: str | Path) -> "UserStore":
        """Read and validate a users file; raises ConfigError naming the problem."""
        return cls(load_yaml_model(path, UsersFile))

    def sign_in(self, name: str, password: str) -> User | None:
        """The user when name and password match, else None."""
        entry = self._users.get(name)
        if entry is None or not verify_password(password, entry.password_hash):
            return None
        return User(name, entry.role)

    def get(self, name: str) -> User | None:
        entry = self._users.get(name)
        return User(name, entry.role) if entry is not None else None


def add_user(path: str | Path, name: str, role: str, password: str) -> bool:
    """Add a user to a users file, or replace its role and password; creates the file. True when new."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
    checked_user_name(name)
    if not password:
        raise ValueError("the password must not be empty")
    path = Path(path)
    users = load_yaml_model(path, UsersFile) if path.exists() else UsersFile()
    new = name not in users.users
    kept = users.users[name].notify if not new else None  # a new password keeps the user's subscription
    users.users[name] = UserEntry(role=role, password_hash=hash_password(password), notify=kept)
    path.write_text(yaml.safe_dump(users.model_dump(exclude_defaults=True), sort_keys=True), encoding="utf-8")
    return new


def current_user(store: UserStore, request: Request) -> User | None:
    """The signed-in user of this request: the session's, else valid HTTP Basic credentials, else None."""
    name = session.get(SESSION_USER)
    if name is not None:
        return store.get(name)
    basic = request.authorization
    if basic is not None and basic.type == "basic" and basic.username and basic.password is not None:
        return store.sign_in(basic.username, basic.password)
    return None


def authorize(store: UserStore, request: Request, action: str, target: str) -> User | None:
    """The user when allowed to take ``action`` on ``target``; None (and a logged refusal) otherwise."""
    user = current_user(store, request)
    if user is not None and user.may(action):
        return user
    who = f"user {user.name!r} (role {user.role})" if user else "anonymous client"
    log.warning("refused %s on %s for %s from %s", action, target, who, request.remote_addr)
    return None
