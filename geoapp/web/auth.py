"""Sign-in for people (session cookie) and machines (Bearer token), CSRF protection, and role checks."""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import math
import os
import secrets
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    current_app,
    flash,
    g,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.sessions import SecureCookieSessionInterface
from flask_babel import format_timedelta
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFProtect

from geoapp.core import accounts, permissions
from geoapp.core.accounts import LoginPolicy, Passwords, Principal, token_digest
from geoapp.errors import TooManyAttempts, Unauthorized
from geoapp.store.base import Actor
from geoapp.web import service
from geoapp.web.access import caller

bp = Blueprint("auth", __name__)
csrf = CSRFProtect()
UNSAFE = ("POST", "PUT", "PATCH", "DELETE")


class _Sessions(SecureCookieSessionInterface):
    """The session cookie is Secure whenever the request came over https."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return request.is_secure or super().get_cookie_secure(app)

    def save_session(self, app: Flask, session, response) -> None:
        """No cookie on an answer for shared caches (``Cache-Control: public``: tiles, public photos and layers,
        assets, feeds): the permanent session is not refreshed on it, since a cache that keeps the answer would hand
        the caller's session cookie to everyone; an answer that does set a cookie becomes private."""
        if response.cache_control.public and not session.modified:
            if session.accessed:
                response.vary.add("Cookie")
            return
        super().save_session(app, session, response)
        if response.cache_control.public and "Set-Cookie" in response.headers:
            response.cache_control.public = False
            response.cache_control.private = True


def init_app(app: Flask) -> None:
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = app.config["GEOAPP_SECRET_KEY"] or _instance_secret(Path(app.instance_path))
    # Flask's defaults exist already (SameSite unset, 31 days): a working day's session instead
    app.config.update(SESSION_COOKIE_SAMESITE="Lax", SESSION_COOKIE_HTTPONLY=True, PERMANENT_SESSION_LIFETIME=12 * 3600)
    # CSRF is checked below for cookie sessions only: a Bearer token is not sent by browsers on their own
    app.config.setdefault("WTF_CSRF_CHECK_DEFAULT", False)
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)  # the token lives as long as the session
    app.session_interface = _Sessions()
    # ARGON2_PARAMETERS: argon2-cffi's PasswordHasher arguments; tests pass cheap ones, production keeps the defaults
    app.extensions["geoapp.passwords"] = Passwords(**app.config.get("ARGON2_PARAMETERS", {}))
    # LOGIN_POLICY: a LoginPolicy; tests pass one with a fake clock
    app.extensions["geoapp.login_policy"] = app.config.get("LOGIN_POLICY") or LoginPolicy()
    csrf.init_app(app)
    app.before_request(_load_principal)
    app.register_blueprint(bp)  # a failed CSRF check is answered by geoapp.web.errors, as every error is


def _instance_secret(instance: Path) -> str:
    """A secret kept in the instance folder, so that every worker and restart signs sessions alike.

    Processes starting at once (servers, test workers) agree on one: each writes its candidate to a file of its
    own and links it into place, which only the first may do (``os.link`` fails if the name exists); all then read
    the one that won, always whole (it was complete before it had the name)."""
    path = instance / "secret_key"
    if not path.exists():
        instance.mkdir(parents=True, exist_ok=True)
        fd, candidate = tempfile.mkstemp(dir=instance, prefix=".secret_key.")  # mode 0600
        try:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32))
            with contextlib.suppress(FileExistsError):  # another process's key won
                os.link(candidate, path)
        finally:
            os.unlink(candidate)
    return path.read_text().strip()


def principal() -> Principal | None:
    """The request's caller from a Bearer token or the session (None: the public), without reading the body;
    an unknown token is refused (401), a session no longer valid is cleared."""
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        token = service().store.token(token_digest(header.removeprefix("Bearer ").strip()))
        if token is None:
            raise Unauthorized("the token is unknown or revoked", parameter="Authorization")
        return Principal(token.name, "token", frozenset(token.roles))
    name = session.get("user")
    if name:
        store = service().store
        user = store.user(name)
        sid = session.get("sid")
        live = isinstance(sid, str) and store.session_user(token_digest(sid), policy().clock()) == name
        if not live or user is None or user.disabled or user.epoch != session.get("epoch"):
            session.clear()  # signed out, expired, or ended by a password change or disabling
        else:
            return Principal(user.name, "user", frozenset(user.roles))
    return None


#: what anyone may POST without signing in (the use case limits and holds it): a report of a problem
PUBLIC_POSTS = frozenset({"/api/reports"})


def _load_principal() -> None:
    """Set ``g.user`` from a Bearer token or the session; check CSRF on cookie-authenticated writes."""
    g.user = None  # while it is found out: an unknown token's 401 is answered as to the public
    g.user = principal()
    if g.user is not None and g.user.kind == "token":
        return
    if request.method in UNSAFE:
        if g.user is None and request.path in PUBLIC_POSTS:
            return  # the public's own writes: no session stands behind them for a forged request to ride on
        if g.user is None and request.path.startswith("/api/"):
            raise Unauthorized("sign in (or send a Bearer token) to change anything", parameter="Authorization")
        csrf.protect()


def passwords(app: Flask | None = None) -> Passwords:
    """The app's password hashing (Argon2 with the app's parameters)."""
    return (app or current_app).extensions["geoapp.passwords"]


def policy(app: Flask | None = None) -> LoginPolicy:
    """The app's sign-in policy; its clock also dates sessions."""
    return (app or current_app).extensions["geoapp.login_policy"]


def require_role(*roles: str):
    """Decorate a view: staff with one of ``roles`` (any staff role if none given); pages redirect to login."""

    def decorate(view):
        @functools.wraps(view)
        def wrapped(*args, **kwargs):
            user = g.get("user")
            if user is None and not request.path.startswith("/api/"):
                return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
            permissions.require_role(user, roles)
            return view(*args, **kwargs)

        return wrapped

    return decorate


@bp.route("/login", methods=["GET", "POST"])
def login():
    target = _local_target(request.values.get("next"))
    if request.method == "GET":
        return render_template("login.html", title=_("Sign in"), next=target)
    name = request.form.get("name", "").strip()
    password = request.form.get("password", "")
    if not accounts.valid_name(name):
        # nothing unlike an account name reaches the store or the audit trail
        flash(_("Wrong name or password."), "error")
        return render_template("login.html", title=_("Sign in"), next=target), 401
    store, rules, address = service().store, policy(), request.remote_addr
    now = rules.clock()
    who = Actor(name, "user", address)
    try:
        # counted as a failure before the password is checked: simultaneous guesses cannot pass the limits
        attempt = store.reserve_login_attempt(
            who, now, rules.window_s, lambda pair, account, origin: rules.check(pair, account, origin, now)
        )
    except TooManyAttempts as exc:
        if _wants_json():
            raise  # the error handler answers the JSON shape with Retry-After
        flash(_("Too many failed sign-ins. Try again in %(wait)s or ask an administrator.", wait=_wait(exc)), "error")
        page = render_template("login.html", title=_("Sign in"), next=target, name=name)
        response = make_response(page, 429)
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    user = store.user(name)
    # a missing or disabled account costs the same Argon2 check, so timing does not tell names apart
    checked = passwords().verify(user.password_hash if user else None, password)
    if user is None or user.disabled or not checked:
        store.record(who, "login_failed")
        flash(_("Wrong name or password."), "error")
        return render_template("login.html", title=_("Sign in"), next=target, name=name), 401
    store.login_succeeded(attempt)
    store.record(Actor(user.name, "user", address, frozenset(user.roles)), "login")
    _start_session(user.name, user.epoch, now)
    current_app.logger.info("sign-in: %s from %s", user.name, address)
    return redirect(target)


def _start_session(name: str, epoch: int, now: float) -> None:
    """A new session id (never one the browser brought along), kept in the store until sign-out or expiry."""
    sid = secrets.token_urlsafe(32)
    lifetime = current_app.permanent_session_lifetime.total_seconds()
    service().store.start_session(token_digest(sid), name, now, now + lifetime)
    session.clear()
    session.permanent = True
    session.update(user=name, epoch=epoch, sid=sid)


def _wants_json() -> bool:
    return request.accept_mimetypes.best_match(["text/html", "application/json"]) == "application/json"


def _wait(exc: TooManyAttempts) -> str:
    """How long to wait, in the visitor's language: seconds, or whole minutes rounded up."""
    seconds = exc.retry_after or 1
    if seconds >= 60:
        seconds = math.ceil(seconds / 60) * 60
    return format_timedelta(dt.timedelta(seconds=seconds), granularity="second", threshold=1)


def _local_target(target: str | None) -> str:
    """Where to go after signing in: a path on this site, never another host."""
    home = url_for("pages.index")
    if not target or any(ord(c) < 0x20 or c in "\\\x7f" for c in target):
        return home  # browsers drop tabs and newlines, which would turn "/\t/host" into "//host"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return home
    return target


@bp.post("/logout")
def logout():
    """End the session in the store too: a copy of the cookie signs nobody in afterwards."""
    sid = session.get("sid")
    if isinstance(sid, str):
        service().store.end_session(token_digest(sid), policy().clock())
    if g.get("user") is not None:
        service().store.record(caller(), "logout")
    session.clear()
    return redirect(url_for("pages.index"))
