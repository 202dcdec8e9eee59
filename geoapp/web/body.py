"""Read a request's JSON body (and its query's parameters) strictly: every view that takes a body reads it here,
so POST, PATCH and DELETE refuse the same things in the same words."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from flask import Request
from werkzeug.exceptions import RequestEntityTooLarge

from geoapp.core.geojson import read_json
from geoapp.errors import InvalidParameter, PayloadTooLarge

#: media types a JSON body may be sent as (a GeoJSON Feature is JSON)
JSON_TYPES = ("application/json", "application/geo+json")


def json_body(request: Request, *, optional: bool = False) -> dict[str, Any]:
    """Return the request's body as a JSON object, or raise an error naming ``body``.

    Refuses a body that is not sent as JSON (``Content-Type``), malformed JSON, nesting deeper than
    :data:`geoapp.core.geojson.MAX_JSON_DEPTH`, lone surrogates, any JSON value other than an object,
    and (413) a body over ``MAX_CONTENT_LENGTH``. With ``optional`` (DELETE, whose version may come in
    ``If-Match`` alone) a request without a body reads as ``{}``; a body that is sent is read as strictly.
    """
    try:
        data = request.get_data(cache=True)
    except RequestEntityTooLarge:
        limit = request.max_content_length
        raise PayloadTooLarge(f"the body is larger than the {limit} bytes a request may send", "body") from None
    if not data and optional:
        return {}
    if request.mimetype not in JSON_TYPES:
        sent = request.mimetype or "no Content-Type"
        raise InvalidParameter(f"send the body as JSON with Content-Type: application/json, not {sent}", "body")
    charset = request.mimetype_params.get("charset", "utf-8").lower()
    if charset not in ("utf-8", "utf8"):
        raise InvalidParameter(f"a JSON body must be UTF-8, not {charset}", "body")
    body = read_json(data, parameter="body")
    if not isinstance(body, dict):
        raise InvalidParameter(f"the body must be a JSON object, not {_kind(body)}", "body")
    return body


def check_members(body: Mapping[str, Any], allowed: Iterable[str]) -> None:
    """Refuse a body with a member outside ``allowed``, naming it: a misspelt member is not ignored."""
    allowed = tuple(allowed)
    for name in body:
        if name not in allowed:
            raise InvalidParameter(f"unknown member {name[:40]!r}; allowed: {', '.join(allowed)}", parameter=name)


def _kind(value: Any) -> str:
    return {list: "an array", str: "a string", bool: "true or false", type(None): "null"}.get(type(value), "a number")


def query_args(request: Request, allowed: Iterable[str]) -> dict[str, str]:
    """The query's parameters, each one of ``allowed`` and given once (``lang``, which every page takes, aside)."""
    allowed = tuple(allowed)
    out = {}
    for name, values in request.args.to_dict(flat=False).items():
        if name == "lang":
            continue
        if name not in allowed:
            raise InvalidParameter(f"unknown parameter {name[:40]!r}; allowed: {', '.join(allowed)}", parameter=name)
        if len(values) > 1:
            raise InvalidParameter(f"give {name} once", parameter=name)
        out[name] = values[0]
    return out
