"""The one error handler: every error raised while serving a request becomes the JSON error shape for API
clients, or an error page for browsers; never a traceback."""

from __future__ import annotations

from flask import jsonify, make_response, render_template, request
from werkzeug.exceptions import HTTPException

from geoapp.errors import GeoappError


def respond(payload: dict, status: int):
    """The JSON error shape for API clients, an error page for browsers."""
    wants_json = request.path.startswith("/api/") or (
        request.accept_mimetypes.best_match(["text/html", "application/json"]) == "application/json"
    )
    if wants_json:
        response = jsonify(payload)
        response.status_code = status
        return response
    return render_template("error.html", status=status, error=payload["error"]), status


def init_app(app) -> None:
    """Answer every error raised while serving a request with :func:`respond`; never a traceback."""

    @app.errorhandler(GeoappError)
    def _geoapp_error(exc: GeoappError):
        response = make_response(respond(exc.to_dict(), exc.status))
        if exc.retry_after is not None:
            response.headers["Retry-After"] = str(exc.retry_after)
        return response

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        code = (exc.name or "error").lower().replace(" ", "_")
        return respond({"error": {"code": code, "message": exc.description, "parameter": None}}, exc.code or 500)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        app.logger.exception("unhandled error")
        return respond(GeoappError("internal error; the details are in the server log").to_dict(), 500)
