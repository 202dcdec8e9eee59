"""Security headers on every response, and a Content-Security-Policy with a nonce for the map's inline scripts."""

from __future__ import annotations

import secrets

from flask import Flask, g


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
