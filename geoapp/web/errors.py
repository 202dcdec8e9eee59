"""The one error handler: every error raised while serving a request becomes the JSON error shape for API
clients, or an error page for browsers; never a traceback."""

from __future__ import annotations

from flask import jsonify, make_response, render_template, request
from flask.globals import request_ctx
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge, SecurityError

from geoapp.errors import Forbidden, GeoappError, InvalidParameter, PayloadTooLarge
from geoapp.web import i18n


def status_text(status: int) -> tuple[str, str]:
    """An error page's title and one-line explanation for ``status``, in the visitor's language."""
    texts = {
        400: (_("Bad request"), _("Something in the request is missing or not valid.")),
        401: (_("Sign-in required"), _("Sign in to see this page or to make this change.")),
        403: (
            _("Not allowed"),
            _(
                "Your account may not see this page or make this change; an administrator can give you the role. "
                "If you were signed in, the page may be out of date: reload it and try again."
            ),
        ),
        404: (
            _("Not found"),
            _("There is nothing at this address. The link may be wrong, or what it showed has been deleted."),
        ),
        405: (_("Method not allowed"), _("This address does not accept this kind of request.")),
        409: (
            _("Edit conflict"),
            _("Someone else changed this in the meantime. Nothing was saved; reload to see the current version."),
        ),
        413: (_("Request too large"), _("What was sent is larger than the server accepts.")),
        428: (
            _("Version required"),
            _("A change must say which version it was made from, so that no one else's edit is overwritten."),
        ),
        429: (_("Too many attempts"), _("Too many requests in a short time. Wait a moment, then try again.")),
        500: (_("Server error"), _("Something went wrong on the server. The details are in the server log.")),
        502: (
            _("Upstream service not answering"),
            _("A service this one relies on, such as the map tiles, did not answer properly. Try again later."),
        ),
        503: (_("Service busy"), _("The server is busy for a moment. Try again in a few seconds.")),
    }
    if status in texts:
        return texts[status]
    if status < 500:
        return _("Request refused"), _("The server cannot answer this request as it was sent.")
    return texts[500]


def respond(payload: dict, status: int, headers: dict | None = None, *, detail: bool = True):
    """The JSON error shape for API clients, an error page for browsers (with the message when ``detail``)."""
    wants_json = request.path.startswith("/api/") or (
        request.accept_mimetypes.best_match(["text/html", "application/json"]) == "application/json"
    )
    # a request whose Host was refused has no URL adapter: the page's links could not be built
    if wants_json or request_ctx.url_adapter is None:
        response = jsonify(payload)
        response.status_code = status
    else:
        heading, explanation = status_text(status)
        error = payload["error"] if detail else None
        page = render_template("error.html", status=status, heading=heading, explanation=explanation, error=error)
        response = make_response(page, status)
    response.headers.update(headers or {})
    return response


def message_lang() -> str:
    """The language an error's message is given in: the page's (``?lang=``, the ``lang`` cookie, then
    Accept-Language), except that an ``/api/`` caller stating none of them (a machine client) reads English."""
    if request.path.startswith("/api/") and not _states_a_language():
        return "en"
    try:
        return i18n.current_lang()
    except GeoappError:  # a ?lang= the app does not speak: the default
        return i18n.DEFAULT


def _states_a_language() -> bool:
    return (
        request.args.get("lang") in i18n.LANGUAGES
        or request.cookies.get(i18n.COOKIE) in i18n.LANGUAGES
        or request.accept_languages.best_match(["zh-CN", "zh", "en"]) is not None
    )


def _http_payload(exc: HTTPException) -> dict:
    """A Werkzeug error in the JSON shape, with the app's own sentence unless the view gave one."""
    code = (exc.name or "error").lower().replace(" ", "_")
    message = exc.description
    if not message or message == type(exc).description:  # Werkzeug's stock sentence
        with force_locale("en"):
            message = status_text(exc.code or 500)[1]
    return {"error": {"code": code, "message": message, "parameter": None}}


def init_app(app) -> None:
    """Answer every error raised while serving a request with :func:`respond`; never a traceback."""

    @app.errorhandler(GeoappError)
    def _geoapp_error(exc: GeoappError):
        retry = {"Retry-After": str(exc.retry_after)} if exc.retry_after is not None else None
        return respond(exc.to_dict(message_lang()), exc.status, retry)

    @app.errorhandler(CSRFError)
    def _csrf_error(exc: CSRFError):
        return _geoapp_error(Forbidden(f"CSRF check failed: {exc.description}", parameter="csrf_token"))

    @app.errorhandler(RequestEntityTooLarge)
    def _too_large(exc: RequestEntityTooLarge):
        limit, length = request.max_content_length, request.content_length
        if limit is not None and (length is None or length > limit):
            size = f"{limit / 1024 / 1024:g} MB" if limit >= 1024 * 1024 else f"{limit} bytes"
            message = f"the request body may be at most {size}"
        else:  # Werkzeug's limits on form fields
            memory, parts = request.max_form_memory_size, request.max_form_parts
            message = f"a form may have at most {parts} fields, each at most {memory} bytes"
        return _geoapp_error(PayloadTooLarge(message, parameter="body"))

    @app.errorhandler(SecurityError)
    def _untrusted_host(exc: SecurityError):
        # the Host header (behind a proxy, X-Forwarded-Host) names a host the app does not answer for
        message = "this server does not answer for that host name; see GEOAPP_BASE_URL and GEOAPP_TRUSTED_HOSTS"
        return _geoapp_error(InvalidParameter(message, parameter="Host"))

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        headers = {"Allow": ", ".join(exc.valid_methods)} if getattr(exc, "valid_methods", None) else None
        # Werkzeug's sentences are English and general: the page says what the status means instead
        return respond(_http_payload(exc), exc.code or 500, headers, detail=False)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        app.logger.exception("unhandled error")
        return respond(GeoappError("internal error; the details are in the server log").to_dict(), 500)
