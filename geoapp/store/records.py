"""The records every backend keeps beside the layers: accounts, tokens, the audit trail, sign-in attempts and
sessions, and soft-deleted features. Written once, as SQLAlchemy Core statements on the tables of
``geoapp.store.tables``, for SQLite and PostgreSQL alike.

A backend mixes :class:`Records` in and gives it ``_transaction()`` (a context manager yielding
its DB-API connection inside one write transaction), ``_reading()`` (one yielding a connection for
reads) and ``dialect``; its feature writes call :func:`audit_row` in their own transaction.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

from geoapp.errors import InvalidParameter, NotFound, TooManyAttempts
from geoapp.store import tables as t
from geoapp.store.base import Actor, AuditEntry, DeletedFeature, Feature, Token, User

#: sign-in attempts older than this are forgotten (no window looks further back)
ATTEMPTS_KEPT_S = 86400

_USER = (t.users.c.name, t.users.c.roles, t.users.c.password_hash, t.users.c.disabled, t.users.c.epoch)
_USER += (t.users.c.created_at,)
_TOKEN = tuple(t.tokens.c[name] for name in ("name", "roles", "token_hash", "created_at", "revoked_at"))
_TOKEN += (t.tokens.c.last_used_at,)
_AUDIT = tuple(t.audit.c[name] for name in ("id", "at", "actor", "actor_kind", "action", "layer", "fid"))
_AUDIT += (t.audit.c.changes, t.audit.c.address)


def now() -> str:
    """The time of a record: ISO 8601 in UTC, to the millisecond."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


def audit_row(
    conn: Any,
    dialect: Dialect,
    actor: Actor,
    action: str,
    layer: str | None,
    fid: int | None,
    changes: Mapping[str, Any],
) -> None:
    """Write an audit row inside the caller's transaction (and note a token's last use)."""
    at = now()
    row = {
        "at": at,
        "actor": actor.name,
        "actor_kind": actor.kind,
        "action": action,
        "layer": layer,
        "fid": fid,
        "changes": json.dumps(changes, ensure_ascii=False),
        "address": actor.address,
    }
    t.run(conn, sa.insert(t.audit).values(**row), dialect)
    if actor.kind == "token":
        t.run(conn, sa.update(t.tokens).where(t.tokens.c.name == actor.name).values(last_used_at=at), dialect)


class Records:
    """Accounts, tokens, audit, sign-in and sessions for a backend (see the module's docstring).

    The backend provides ``dialect``, ``decode_geometry`` (its geometry encoding read back),
    ``_transaction()`` and ``_reading()``.
    """

    dialect: Dialect
    decode_geometry: Callable[[bytes | None], Any]

    def _run(self, conn: Any, statement: sa.Executable):
        return t.run(conn, statement, self.dialect)

    def _one(self, statement: sa.Executable):
        with self._reading() as conn:
            return self._run(conn, statement).fetchone()

    def _all(self, statement: sa.Executable) -> list:
        with self._reading() as conn:
            return self._run(conn, statement).fetchall()

    def _audit(self, conn: Any, actor: Actor, action: str, changes: Mapping[str, Any]) -> None:
        audit_row(conn, self.dialect, actor, action, None, None, changes)

    def rows(self, table: sa.Table) -> list:
        """Every row of one of geoapp's own tables (for moving a store to another backend)."""
        return self._all(sa.select(table))

    # -- accounts -------------------------------------------------------------------------------

    def add_user(self, name: str, password_hash: str, roles: tuple[str, ...], *, actor: Actor) -> User:
        users = t.users
        with self._transaction() as conn:
            if self._run(conn, sa.select(users.c.name).where(users.c.name == name)).fetchone():
                raise InvalidParameter(f"user {name!r} exists already", parameter="name")
            values = {"name": name, "password_hash": password_hash, "roles": ",".join(roles), "created_at": now()}
            self._run(conn, sa.insert(users).values(**values))
            self._audit(conn, actor, "user_add", {"user": [None, name], "roles": [None, ",".join(roles)]})
        return self.user(name)

    def user(self, name: str) -> User | None:
        row = self._one(sa.select(*_USER).where(t.users.c.name == name))
        return None if row is None else _user(row)

    def users(self) -> list[User]:
        return [_user(row) for row in self._all(sa.select(*_USER).order_by(t.users.c.name))]

    def change_user(
        self,
        name: str,
        *,
        password_hash: str | None = None,
        disabled: bool | None = None,
        actor: Actor,
    ) -> User:
        users = t.users
        with self._transaction() as conn:
            if not self._run(conn, sa.select(users.c.name).where(users.c.name == name)).fetchone():
                raise NotFound(f"no user {name!r}", parameter="name")
            changes: dict[str, list[Any]] = {"user": [name, name]}
            values: dict[str, Any] = {"epoch": users.c.epoch + 1}  # either change ends the user's sessions
            if password_hash is not None:
                values["password_hash"] = password_hash
                changes["password"] = ["(changed)", "(changed)"]
            if disabled is not None:
                values["disabled"] = int(disabled)
                changes["disabled"] = [None, disabled]
            self._run(conn, sa.update(users).where(users.c.name == name).values(**values))
            self._audit(conn, actor, "user_change", changes)
        return self.user(name)

    # -- machine tokens -------------------------------------------------------------------------

    def add_token(self, name: str, token_hash: str, roles: tuple[str, ...], *, actor: Actor) -> Token:
        tokens = t.tokens
        with self._transaction() as conn:
            if self._run(conn, sa.select(tokens.c.name).where(tokens.c.name == name)).fetchone():
                raise InvalidParameter(f"token {name!r} exists already", parameter="name")
            values = {"name": name, "token_hash": token_hash, "roles": ",".join(roles), "created_at": now()}
            self._run(conn, sa.insert(tokens).values(**values))
            self._audit(conn, actor, "token_add", {"token": [None, name], "roles": [None, ",".join(roles)]})
        return next(token for token in self.tokens() if token.name == name)

    def token(self, token_hash: str) -> Token | None:
        tokens = t.tokens
        row = self._one(sa.select(*_TOKEN).where(tokens.c.token_hash == token_hash, tokens.c.revoked_at.is_(None)))
        return None if row is None else _token(row)

    def tokens(self) -> list[Token]:
        return [_token(row) for row in self._all(sa.select(*_TOKEN).order_by(t.tokens.c.name))]

    def revoke_token(self, name: str, *, actor: Actor) -> Token:
        tokens = t.tokens
        with self._transaction() as conn:
            live = sa.update(tokens).where(tokens.c.name == name, tokens.c.revoked_at.is_(None))
            if not self._run(conn, live.values(revoked_at=now())).rowcount:
                raise NotFound(f"no live token {name!r}", parameter="name")
            self._audit(conn, actor, "token_revoke", {"token": [name, None]})
        return next(token for token in self.tokens() if token.name == name)

    # -- the audit trail ------------------------------------------------------------------------

    def record(self, actor: Actor, action: str, changes: Mapping[str, Any] | None = None) -> None:
        with self._transaction() as conn:
            self._audit(conn, actor, action, dict(changes or {}))

    def history(self, layer_id: str, fid: int) -> list[AuditEntry]:
        if not 0 < fid < 2**63:
            return []
        audit = t.audit
        query = sa.select(*_AUDIT).where(audit.c.layer == layer_id, audit.c.fid == fid).order_by(audit.c.id)
        return [_entry(row) for row in self._all(query)]

    def audit(self, since: str | None = None) -> list[AuditEntry]:
        audit = t.audit
        return [
            _entry(row) for row in self._all(sa.select(*_AUDIT).where(audit.c.at >= (since or "")).order_by(audit.c.id))
        ]

    # -- soft-deleted features ------------------------------------------------------------------

    def deleted(self, layer_id: str | None = None) -> list[DeletedFeature]:
        d = t.deleted
        query = sa.select(d.c.layer, d.c.fid, d.c.version, d.c.geom, d.c.properties, d.c.deleted_at, d.c.deleted_by)
        if layer_id:
            query = query.where(d.c.layer == layer_id)
        rows = self._all(query.order_by(d.c.deleted_at.desc(), d.c.fid))
        out = []
        for layer, fid, version, geom, props, at, by in rows:
            geometry = self.decode_geometry(bytes(geom) or None)
            out.append(DeletedFeature(Feature(layer, fid, geometry, json.loads(props), version), at, by))
        return out

    # -- sign-in attempts and sessions ------------------------------------------------------------

    def reserve_login_attempt(
        self, actor: Actor, at: float, window_s: float, check: Callable[[list[float], list[float], list[float]], None]
    ) -> str:
        """Count an attempt before its password is checked, or raise the policy's refusal (counted, audited once)."""
        attempts = t.login_attempts
        account, address = actor.name, actor.address or "-"
        since = at - window_s
        refused: TooManyAttempts | None = None
        attempt = secrets.token_hex(8)
        with self._transaction() as conn:  # one write transaction: attempts are read and counted one at a time
            self._serialize_sign_in(conn)
            self._flush_login_refusals(conn, since)

            def times(*where) -> list[float]:
                query = sa.select(attempts.c.at).where(*where, attempts.c.at >= since).order_by(attempts.c.at)
                return [row[0] for row in self._run(conn, query)]

            try:
                check(
                    times(attempts.c.account == account, attempts.c.address == address),
                    times(attempts.c.account == account),
                    times(attempts.c.address == address),
                )
            except TooManyAttempts as exc:
                refused = exc
                self._note_login_refusal(conn, actor, account, address, at)
            else:
                values = {"attempt": attempt, "account": account, "address": address, "at": at}
                self._run(conn, sa.insert(attempts).values(**values))
                self._run(conn, sa.delete(attempts).where(attempts.c.at < at - ATTEMPTS_KEPT_S))
        if refused is not None:
            raise refused
        return attempt

    def _serialize_sign_in(self, conn: Any) -> None:
        """Make sign-in transactions wait for each other (a backend whose write transactions do not already)."""

    def login_succeeded(self, attempt: str) -> None:
        """Forget the failures of the account and address whose attempt this was."""
        attempts = t.login_attempts
        with self._transaction() as conn:
            query = sa.select(attempts.c.account, attempts.c.address).where(attempts.c.attempt == attempt)
            row = self._run(conn, query).fetchone()
            if row is not None:
                pair = (attempts.c.account == row[0], attempts.c.address == row[1])
                self._run(conn, sa.delete(attempts).where(*pair))

    def clear_login_failures(self, name: str, *, actor: Actor | None = None) -> int:
        """Forget an account's failures (``user unlock``, a new password); audited when an actor is given."""
        with self._transaction() as conn:
            cleared = self._run(conn, sa.delete(t.login_attempts).where(t.login_attempts.c.account == name)).rowcount
            self._run(conn, sa.delete(t.login_refusals).where(t.login_refusals.c.account == name))
            if actor is not None:
                self._audit(conn, actor, "user_unlock", {"user": [name, name], "failures": [cleared, 0]})
        return cleared

    def _note_login_refusal(self, conn: Any, actor: Actor, account: str, address: str, at: float) -> None:
        """Count a refused sign-in; only the first of an account and address in a window writes an audit row."""
        r = t.login_refusals
        pair = (r.c.account == account, r.c.address == address)
        counted = self._run(conn, sa.update(r).where(*pair).values(count=r.c.count + 1, last_at=at)).rowcount
        if not counted:
            values = {"account": account, "address": address, "first_at": at, "last_at": at, "count": 1}
            self._run(conn, sa.insert(r).values(**values))
            self._audit(conn, actor, "login_refused", {"refused": [None, 1]})

    def _flush_login_refusals(self, conn: Any, since: float) -> None:
        """Audit the count of each window of refusals that has passed (if more than its first), then forget it."""
        r = t.login_refusals
        closed = self._run(
            conn, sa.select(r.c.account, r.c.address, r.c.first_at, r.c.last_at, r.c.count).where(r.c.first_at < since)
        ).fetchall()
        for account, address, first_at, last_at, count in closed:
            if count > 1:
                span = {"from": [None, _iso(first_at)], "to": [None, _iso(last_at)]}
                who = Actor(account, "user", address)
                self._audit(conn, who, "login_refused", {"refused": [1, count], **span})
        self._run(conn, sa.delete(r).where(r.c.first_at < since))

    def start_session(self, session_hash: str, user: str, at: float, expires_at: float) -> None:
        s = t.sessions
        with self._transaction() as conn:
            values = {"session_hash": session_hash, "user": user, "started_at": at, "expires_at": expires_at}
            self._run(conn, sa.insert(s).values(**values))
            self._run(conn, sa.delete(s).where(s.c.expires_at < at - ATTEMPTS_KEPT_S))

    def session_user(self, session_hash: str, at: float) -> str | None:
        s = t.sessions
        live = (s.c.session_hash == session_hash, s.c.ended_at.is_(None), s.c.expires_at > at)
        row = self._one(sa.select(s.c.user).where(*live))
        return None if row is None else row[0]

    def end_session(self, session_hash: str, at: float) -> None:
        s = t.sessions
        with self._transaction() as conn:
            live = sa.update(s).where(s.c.session_hash == session_hash, s.c.ended_at.is_(None))
            self._run(conn, live.values(ended_at=at))


def _iso(at: float) -> str:
    return dt.datetime.fromtimestamp(at, dt.UTC).isoformat(timespec="seconds")


def _user(row) -> User:
    name, roles, password_hash, disabled, epoch, created_at = row
    return User(name, tuple(roles.split(",")), password_hash, bool(disabled), epoch, created_at)


def _token(row) -> Token:
    name, roles, token_hash, created_at, revoked_at, last_used_at = row
    return Token(name, tuple(roles.split(",")), token_hash, created_at, revoked_at, last_used_at)


def _entry(row) -> AuditEntry:
    id_, at, actor, kind, action, layer, fid, changes, address = row
    return AuditEntry(id_, at, actor, kind, action, layer, fid, json.loads(changes), address)
