"""One error hierarchy for geoapp, each error carrying an HTTP status and a message for the user.

The core raises these without knowing about HTTP; ``init_app`` registers the one handler that
turns them (and any other exception) into ``{"error": {"code", "message", "parameter"}}``.
"""

from __future__ import annotations


class GeoappError(Exception):
    status = 500
    code = "internal_error"

    def __init__(self, message: str, parameter: str | None = None):
        super().__init__(message)
        self.message = message
        self.parameter = parameter

    def to_dict(self) -> dict:
        return {"error": {"code": self.code, "message": self.message, "parameter": self.parameter}}


class InvalidParameter(GeoappError):
    """A request parameter is malformed or outside its allowed values."""

    status = 400
    code = "invalid_parameter"


class InvalidFeature(GeoappError):
    """A feature's values or geometry do not fit its layer definition; nothing was written."""

    status = 400
    code = "invalid_feature"


class NotFound(GeoappError):
    status = 404
    code = "not_found"


class VersionConflict(GeoappError):
    """The feature changed since the caller read it."""

    status = 409
    code = "version_conflict"


class StoreError(GeoappError):
    """The store cannot be opened or created as asked."""

    status = 500
    code = "store_error"


class ConfigError(GeoappError):
    """A setting is invalid; the app refuses to start."""

    code = "config_error"


def respond(payload: dict, status: int):
    """The JSON error shape for API clients, an error page for browsers."""
    from flask import jsonify, render_template, request

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
    from werkzeug.exceptions import HTTPException

    @app.errorhandler(GeoappError)
    def _geoapp_error(exc: GeoappError):
        return respond(exc.to_dict(), exc.status)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        code = (exc.name or "error").lower().replace(" ", "_")
        return respond({"error": {"code": code, "message": exc.description, "parameter": None}}, exc.code or 500)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        app.logger.exception("unhandled error")
        return respond(GeoappError("internal error; the details are in the server log").to_dict(), 500)
