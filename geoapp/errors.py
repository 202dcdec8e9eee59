"""The whole error hierarchy of geoapp: each error carries an HTTP status, a code and a message for the user.

The core and the store raise these without knowing about HTTP; ``geoapp.web.errors`` is the one
handler that turns them (and any other exception) into ``{"error": {"code", "message", "parameter"}}``.
"""

from __future__ import annotations

from collections.abc import Callable


class GeoappError(Exception):
    status = 500
    code = "internal_error"

    #: seconds after which a retry may succeed (``Retry-After``), for 429 and 503
    retry_after: int | None = None

    def __init__(
        self,
        message: str,
        parameter: str | None = None,
        *,
        retry_after: int | None = None,
        text: Callable[[str], str] | None = None,
    ):
        super().__init__(message)
        #: what went wrong in English, naming fields and values as the API does (logs, the CLI)
        self.message = message
        self.parameter = parameter
        #: the message people are shown, in either language: ``text("zh")``, ``text("en")`` (see
        #: geoapp.core.messages); None where ``message`` is all there is
        self.text = text
        if retry_after is not None:
            self.retry_after = retry_after

    def message_in(self, lang: str) -> str:
        """The message for people who read ``lang`` (``zh`` or ``en``)."""
        return self.message if self.text is None else self.text(lang)

    def to_dict(self, lang: str = "en") -> dict:
        """The JSON error shape, its message in ``lang`` (English for machine clients)."""
        return {"error": {"code": self.code, "message": self.message_in(lang), "parameter": self.parameter}}


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


class VersionRequired(GeoappError):
    """A change must carry the version it was made from (If-Match or ``version``)."""

    status = 428
    code = "version_required"


class Unauthorized(GeoappError):
    status = 401
    code = "unauthorized"


class Forbidden(GeoappError):
    status = 403
    code = "forbidden"


class PayloadTooLarge(GeoappError):
    status = 413
    code = "payload_too_large"


class TooManyAttempts(GeoappError):
    status = 429
    code = "too_many_attempts"


class TileUnavailable(GeoappError):
    status = 502
    code = "tile_unavailable"


class StoreBusy(GeoappError):
    """Another writer holds the store's lock for longer than a request may wait."""

    status = 503
    code = "store_busy"
    retry_after = 5


class TilesBusy(GeoappError):
    """The tile proxy is already fetching as many tiles as it may at once."""

    status = 503
    code = "tiles_busy"
    retry_after = 2


class WrongStatus(GeoappError):
    """A workflow step asked of a case that is not in a status it starts from."""

    status = 409
    code = "wrong_status"
