"""Accounts, roles, machine tokens and the login policy. Flask-free.

Passwords are hashed with Argon2 (argon2-cffi); machine tokens are 256-bit random strings of which
only a SHA-256 digest is stored (a fast digest is enough for values that cannot be guessed).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from geoapp.core.layers import Layer
from geoapp.errors import InvalidParameter, TooManyAttempts

ROLES = ("viewer", "planner", "commander", "sensor", "admin")
#: roles that may read internal fields (a sensor only posts readings)
STAFF = frozenset({"viewer", "planner", "commander", "admin"})
MIN_PASSWORD = 10

_hasher = PasswordHasher()
NAME = re.compile(r"[\w.@-]{1,64}")
#: verified instead of a real hash when an account does not exist, so that both take as long
DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def valid_name(name: str) -> bool:
    """Account and token names: 1 to 64 letters, digits, ``_``, ``.``, ``@`` or ``-``."""
    return bool(NAME.fullmatch(name))


def check_name(name: str) -> str:
    if not valid_name(name):
        raise InvalidParameter("a name has 1 to 64 letters, digits, _ . @ or -", parameter="name")
    return name


@dataclass(frozen=True)
class Principal:
    """Whoever a request acts for: a signed-in user or a machine token, with their roles."""

    name: str
    kind: str  # user | token
    roles: frozenset[str]

    @property
    def staff(self) -> bool:
        return bool(self.roles & STAFF)

    @property
    def admin(self) -> bool:
        return "admin" in self.roles

    def may_edit(self, layer: Layer) -> bool:
        return self.admin or bool(self.roles & set(layer.editors))


def check_roles(roles: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    unknown = [r for r in roles if r not in ROLES]
    if unknown or not roles:
        raise InvalidParameter(f"role must be one of {', '.join(ROLES)}", parameter="role")
    return tuple(dict.fromkeys(roles))


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise InvalidParameter(f"a password needs at least {MIN_PASSWORD} characters", parameter="password")
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def new_token() -> tuple[str, str]:
    """A new machine token and the digest to store; the token itself is shown once and never kept."""
    token = "gat_" + secrets.token_urlsafe(32)
    return token, token_digest(token)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class LoginPolicy:
    """Failed logins within ``window_s`` first slow an account down, then refuse it; an address likewise."""

    window_s: int = 15 * 60
    slow_after: int = 3  # failures on an account before each attempt waits
    delay_s: float = 1.0  # wait per failure past slow_after, up to max_delay_s
    max_delay_s: float = 5.0
    refuse_after: int = 10  # failures on an account before it is refused until the window passes
    refuse_address_after: int = 30  # failures from one address (any accounts)

    def keys(self, name: str, address: str | None) -> list[str]:
        return [f"user:{name}", f"addr:{address or '-'}"]

    def delay(self, failures: dict[str, int], name: str, address: str | None) -> float:
        """Seconds to wait before checking the password; raise :class:`TooManyAttempts` when refused."""
        account, origin = (failures[k] for k in self.keys(name, address))
        if account >= self.refuse_after or origin >= self.refuse_address_after:
            minutes = self.window_s // 60
            raise TooManyAttempts(
                f"too many failed logins; try again in {minutes} minutes or ask an administrator", parameter="name"
            )
        return min(self.max_delay_s, max(0, account - self.slow_after + 1) * self.delay_s)
