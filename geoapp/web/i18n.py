"""Languages: Chinese (zh_CN) by default, English on request; chosen once per request, remembered in a cookie."""

from __future__ import annotations

from urllib.parse import urlencode

from flask import Flask, g, request, url_for
from flask_babel import Babel, get_locale

from geoapp.errors import InvalidParameter

#: ``?lang=`` code -> locale of the message catalogue (zh: Simplified Chinese, as used in mainland China)
LANGUAGES = {"zh": "zh", "en": "en"}
DEFAULT = "zh"
COOKIE = "lang"


def _choose() -> str:
    asked = request.args.get("lang")
    if asked is not None:
        if asked not in LANGUAGES:
            raise InvalidParameter(f"lang must be one of {', '.join(LANGUAGES)}", parameter="lang")
        return asked
    remembered = request.cookies.get(COOKIE)
    if remembered in LANGUAGES:
        return remembered
    best = request.accept_languages.best_match(["zh-CN", "zh", "en"])
    return "en" if best == "en" else DEFAULT


def current_lang() -> str:
    """``zh`` or ``en`` for this request."""
    if "lang" not in g:
        g.lang = DEFAULT  # an invalid ?lang= is refused in the default language
        g.lang = _choose()
    return g.lang


def init_app(app: Flask) -> None:
    Babel(app, locale_selector=lambda: LANGUAGES[current_lang()])

    @app.before_request
    def _validate_lang():
        if not request.path.startswith("/api/"):
            current_lang()

    @app.after_request
    def _remember(response):
        asked = request.args.get("lang")
        if asked in LANGUAGES and request.cookies.get(COOKIE) != asked:
            if response.cache_control.public:
                # an answer for shared caches sets no cookie: an image, a feed or data does not remember the
                # language; a page (the public map) does, and is then this visitor's, never a shared cache's
                if response.mimetype != "text/html":
                    return response
                response.cache_control.public = False
                response.cache_control.private = True
            response.set_cookie(COOKIE, asked, max_age=365 * 24 * 3600, samesite="Lax", httponly=True)
        return response

    @app.context_processor
    def _languages():
        def switch_url(lang: str) -> str:
            """This page in another language (query arguments kept as they are, never given to url_for)."""
            path = request.path if request.endpoint is None else url_for(request.endpoint, **(request.view_args or {}))
            return f"{path}?{urlencode({**request.args.to_dict(), 'lang': lang})}"

        return {"lang": current_lang(), "locale": str(get_locale()), "switch_url": switch_url}
