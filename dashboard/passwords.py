"""Password hashes of the users file: made and checked by ``werkzeug.security``, with bounded costs.

New hashes are werkzeug's scrypt (``scrypt:32768:8:1$<salt>$<hash hex>``: N=2**15, r=8, p=1, a 16-character
random salt). Users files written before keep ``scrypt$N$r$p$<salt hex>$<hash hex>`` (standard library
``hashlib.scrypt`` over the password's UTF-8 bytes), still checked here. A stored hash chooses how much work
and memory a sign-in costs, so :func:`hash_cost_problem` bounds it before any hash is computed: scrypt N a
power of two up to 2**20, r up to 16, p up to 4; PBKDF2 (SHA-256 or SHA-512) up to 5,000,000 iterations.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from werkzeug.security import check_password_hash, generate_password_hash

HASH_METHOD = "scrypt:32768:8:1"
SALT_CHARACTERS = 16
MAX_SCRYPT_N, MAX_SCRYPT_R, MAX_SCRYPT_P = 2**20, 16, 4
MAX_PBKDF2_ITERATIONS = 5_000_000
PBKDF2_DIGESTS = ("sha256", "sha512")
SCRYPT_MEMORY_MARGIN = 132
"""Bytes per unit of N*r*p that ``hashlib.scrypt`` may use (128 needed; werkzeug allows the same margin)."""

_LEGACY = re.compile(r"scrypt\$(\d{1,20})\$(\d{1,20})\$(\d{1,20})\$((?:[0-9a-f]{2})+)\$((?:[0-9a-f]{2})+)")
_SCRYPT = re.compile(r"scrypt:(\d{1,20}):(\d{1,20}):(\d{1,20})\$[^$]+\$[0-9a-f]+")
_PBKDF2 = re.compile(r"pbkdf2:(\w+):(\d{1,20})\$[^$]+\$[0-9a-f]+")


def hash_password(password: str) -> str:
    """A salted hash of the password in werkzeug's format (:data:`HASH_METHOD`)."""
    return generate_password_hash(password, method=HASH_METHOD, salt_length=SALT_CHARACTERS)


def hash_cost_problem(stored: str) -> str | None:
    """Why a stored hash cannot be used (unknown format, or a cost out of bounds), else None."""
    if match := _LEGACY.fullmatch(stored) or _SCRYPT.fullmatch(stored):
        n, r, p = (int(match.group(i)) for i in (1, 2, 3))
        if n < 2 or n > MAX_SCRYPT_N or n & (n - 1):
            return f"scrypt N={n:,} must be a power of two from 2 to 2**20 ({MAX_SCRYPT_N:,})"
        if not 1 <= r <= MAX_SCRYPT_R:
            return f"scrypt r={r:,} must be from 1 to {MAX_SCRYPT_R}"
        if not 1 <= p <= MAX_SCRYPT_P:
            return f"scrypt p={p:,} must be from 1 to {MAX_SCRYPT_P}"
        return None
    if match := _PBKDF2.fullmatch(stored):
        digest, iterations = match.group(1), int(match.group(2))
        if digest not in PBKDF2_DIGESTS:
            return f"pbkdf2 digest {digest!r} must be one of {', '.join(PBKDF2_DIGESTS)}"
        if not 1 <= iterations <= MAX_PBKDF2_ITERATIONS:
            return f"pbkdf2 iterations={iterations:,} must be from 1 to {MAX_PBKDF2_ITERATIONS:,}"
        return None
    return ("not a password hash: expected scrypt:N:r:p$<salt>$<hash hex> (as `parktwin users add` writes), "
            "pbkdf2:DIGEST:ITERATIONS$<salt>$<hash hex> or scrypt$N$r$p$<salt hex>$<hash hex>")


def verify_password(password: str, stored: str) -> bool:
    """True when the password matches the stored hash (constant-time comparison); False for a hash
    :func:`hash_cost_problem` refuses, without computing anything."""
    if hash_cost_problem(stored) is not None:
        return False
    legacy = _LEGACY.fullmatch(stored)
    if legacy is None:
        return check_password_hash(stored, password)
    n, r, p = (int(legacy.group(i)) for i in (1, 2, 3))
    digest = hashlib.scrypt(password.encode(), salt=bytes.fromhex(legacy.group(4)), n=n, r=r, p=p,
                            maxmem=SCRYPT_MEMORY_MARGIN * n * r * p)
    return hmac.compare_digest(digest, bytes.fromhex(legacy.group(5)))
