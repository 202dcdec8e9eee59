"""Security headers on every response, a Content-Security-Policy with a nonce for the map's inline scripts, and
caching rules: what a signed-in user or a token sees is never stored, what varies by sign-in says so."""

from __future__ import annotations

import secrets

from flask import Flask, g, request, session


def nonce() -> str:
    """This request's CSP nonce, made on first use."""
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(18)
    return g.csp_nonce


def init_app(app: Flask, tile_origins: tuple[str, ...] = ()) -> None:
    images = " ".join(("'self'", "data:", "blob:", *tile_origins))
    app.jinja_env.globals["csp_nonce"] = nonce

    @app.after_request
    def _headers(response):
        _caching(response)
        headers = response.headers
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "same-origin")
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        headers.setdefault("Permissions-Policy", "geolocation=(self), camera=(), microphone=()")
        if response.mimetype == "text/html":
            scripts = f"'self' 'nonce-{g.csp_nonce}'" if "csp_nonce" in g else "'self'"
            headers["Content-Security-Policy"] = (
                f"default-src 'self'; script-src {scripts}; style-src 'self' 'unsafe-inline'; img-src {images}; "
                "font-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
                "frame-ancestors 'none'; form-action 'self'"
            )
        return response


def _caching(response) -> None:
    """``private, no-store`` for staff; ``Vary: Cookie, Authorization`` on whatever depends on who asks.

    Responses their view marks public (tiles, vendor assets) and the app's static files are the same for
    everyone and keep their caching; so do the public's API answers (ETag), which vary by sign-in. None of them
    sets a cookie: the session is not refreshed on a public answer, and one that sets a cookie anyway (the
    language, a changed session) is made private (``geoapp.web.i18n``, ``geoapp.web.auth._Sessions``).
    """
    if response.cache_control.public or request.endpoint == "static":
        return
    response.vary.update(("Cookie", "Authorization"))
    # g.user is the principal of this request; the session also holds one that has just signed in
    if g.get("user") is not None or session.get("user") is not None:
        response.cache_control.no_store = True
        response.cache_control.private = True
        response.cache_control.no_cache = None
        response.cache_control.max_age = None
