"""Accounts, roles, machine tokens and the sign-in policy. Flask-free.

Passwords are hashed with Argon2 (argon2-cffi); machine tokens are 256-bit random strings of which
only a SHA-256 digest is stored (a fast digest is enough for values that cannot be guessed).
Nothing is hashed at import: the hash verified for unknown accounts is made on first use.
"""

from __future__ import annotations

import functools
import hashlib
import math
import re
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from geoapp.core.permissions import ROLES, SQUAD_PREFIX, is_role
from geoapp.errors import InvalidParameter, TooManyAttempts

MIN_PASSWORD = 10

NAME = re.compile(r"[\w.@-]{1,64}")


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
    roles: frozenset[str]  # what they may do is geoapp.core.permissions' answer


def check_roles(roles: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    unknown = [r for r in roles if not is_role(r)]
    if unknown or not roles:
        raise InvalidParameter(
            f"role must be one of {', '.join(ROLES)}, or squad:<the squad's name> beside squad", parameter="role"
        )
    if any(r.startswith(SQUAD_PREFIX) for r in roles) and "squad" not in roles:
        raise InvalidParameter("a member of a squad (squad:<name>) also holds the role squad", parameter="role")
    return tuple(dict.fromkeys(roles))


class Passwords:
    """Argon2 hashing with one set of parameters; argon2-cffi's defaults unless told otherwise.

    Tests pass cheap parameters (``time_cost=1, memory_cost=8, parallelism=1``); a hash keeps the
    parameters it was made with, so verifying costs what hashing did.
    """

    def __init__(self, **parameters: int):
        self.parameters = parameters
        self._hasher = PasswordHasher(**parameters)

    def hash(self, password: str) -> str:
        if len(password) < MIN_PASSWORD:
            raise InvalidParameter(f"a password needs at least {MIN_PASSWORD} characters", parameter="password")
        return self._hasher.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        """Check a password; ``None`` (no such account) costs the same check and fails."""
        try:
            return self._hasher.verify(password_hash or self.dummy_hash, password) and password_hash is not None
        except (VerificationError, InvalidHashError):
            return False

    @functools.cached_property
    def dummy_hash(self) -> str:
        """Verified when an account does not exist, so that both take as long; made once, on first use."""
        return self._hasher.hash(secrets.token_urlsafe(16))


def new_token() -> tuple[str, str]:
    """A new machine token and the digest to store; the token itself is shown once and never kept."""
    token = "gat_" + secrets.token_urlsafe(32)
    return token, token_digest(token)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class LoginPolicy:
    """How failed sign-ins slow and then refuse further attempts, counted over a sliding window.

    Three counts, each of the failures within ``window_s``:

    - one account from one address (a person mistyping, or one machine guessing): from the
      ``slow_after``-th failure on each attempt waits ``delay_s`` more after the last one (at most
      ``max_delay_s``); at ``lock_after`` failures that account is refused from that address until
      the oldest of them leave the window. Other addresses are not affected.
    - one account from every address (guessing spread over many machines): past
      ``account_slow_after`` failures the account takes one attempt per ``account_delay_s``, from
      anywhere; it slows, it never locks out.
    - one address, any accounts (one machine trying many accounts): at ``address_lock_after``
      failures that address is refused, a ceiling far above what an office behind one NAT mistypes.

    ``clock`` gives the time (Unix seconds); tests pass a fake one, so nothing ever sleeps.
    """

    window_s: float = 15 * 60
    slow_after: int = 3
    delay_s: float = 2.0
    max_delay_s: float = 30.0
    lock_after: int = 10
    account_slow_after: int = 20
    account_delay_s: float = 10.0
    address_lock_after: int = 100
    clock: Callable[[], float] = field(default=time.time, repr=False, compare=False)

    def check(self, pair: Sequence[float], account: Sequence[float], address: Sequence[float], now: float) -> None:
        """Refuse with :class:`TooManyAttempts` (and its ``retry_after``) when an attempt must wait.

        Each argument holds the times of the failures within the window, oldest first: of this
        account from this address, of this account from anywhere, and of anything from this address.
        """
        waits = [0.0]
        if len(pair) >= self.lock_after:
            waits.append(pair[len(pair) - self.lock_after] + self.window_s - now)
        elif len(pair) >= self.slow_after:
            delay = min(self.max_delay_s, (len(pair) - self.slow_after + 1) * self.delay_s)
            waits.append(pair[-1] + delay - now)
        if len(account) >= self.account_slow_after:
            waits.append(account[-1] + self.account_delay_s - now)
        if len(address) >= self.address_lock_after:
            waits.append(address[len(address) - self.address_lock_after] + self.window_s - now)
        wait = max(waits)
        if wait > 0:
            seconds = math.ceil(wait)
            raise TooManyAttempts(
                f"too many failed sign-ins; try again in {seconds} seconds or ask an administrator",
                parameter="name",
                retry_after=seconds,
            )
