"""The public warning feeds, for other systems to subscribe to (no sign-in): an Atom 1.0 feed indexing the
warnings in force, and each warning's CAP 1.2 alert.

- ``GET /flood/warnings.atom``: ``application/atom+xml``, one entry per warning linking to its alert; empty
  when nothing is wrong.
- ``GET /flood/warnings/<key>.cap``: ``application/cap+xml``, the alert of the warning ``key`` while it is in
  force; 404 (the JSON error shape) for a key that names none.

Both carry an ETag (If-None-Match gives 304) and ``Cache-Control: public, max-age=30``: they are the same for
every caller, public values only. The documents are built by :mod:`geoapp.flood.alerts`.
"""

from __future__ import annotations

import hashlib

from flask import Blueprint, Response, current_app, jsonify, request, url_for

from geoapp.errors import GeoappError, NotFound
from geoapp.flood import alerts
from geoapp.web import service

bp = Blueprint("feeds", __name__)

#: seconds a subscriber or a proxy may keep an answer
MAX_AGE = 30


@bp.record_once
def _check_sender(state) -> None:
    # a bad sender stops the app at start-up, as other settings do, not at the first poll
    alerts.check_sender(state.app.config["GEOAPP_CAP_SENDER"])


@bp.errorhandler(GeoappError)
def _error(exc: GeoappError):
    # subscribers are machines: the JSON error shape whatever Accept says
    response = jsonify(exc.to_dict())
    response.status_code = exc.status
    return response


def _district() -> alerts.District | None:
    """The district's simplified outline, made again only when its layer changes."""
    reader = service().reader
    version = reader.versions().get(alerts.DISTRICT_LAYER)
    kept = current_app.extensions.get("geoapp.feeds.district")
    if kept is None or kept[0] != version:
        kept = (version, alerts.district(reader) if version is not None else None)
        current_app.extensions["geoapp.feeds.district"] = kept
    return kept[1]


def _context() -> alerts.Context:
    svc = service()
    links = alerts.Links(
        feed=url_for("feeds.atom", _external=True),
        home=url_for("pages.index", _external=True),
        alert=lambda key: url_for("feeds.cap", key=key, _external=True),
        feature=lambda layer, fid: url_for("pages.feature", layer_id=layer, fid=fid, _external=True),
    )
    return alerts.Context(
        sender=current_app.config["GEOAPP_CAP_SENDER"],
        synthetic=svc.store.synthetic,
        rules=svc.flood.rules,
        registry=svc.registry,
        district=_district(),
        links=links,
    )


def _answer(body: bytes, mimetype: str, etag_of: bytes) -> Response:
    response = Response(body, mimetype=mimetype)
    response.charset = "utf-8"
    response.set_etag(hashlib.sha256(etag_of).hexdigest()[:32])
    response.cache_control.public = True
    response.cache_control.max_age = MAX_AGE
    # public data for any subscriber, a page's script on another origin included (no credentials are involved)
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response.make_conditional(request)


@bp.get("/flood/warnings.atom")
def atom():
    """The Atom feed of the warnings in force, most severe first."""
    flood = service().flood
    warnings = flood.warnings()
    ctx = _context()
    body = alerts.atom_feed(warnings, ctx, flood.now_ms())
    # the empty feed's <updated> is the time of asking: the ETag follows the warnings, not the clock
    return _answer(body, alerts.ATOM_TYPE, alerts.fingerprint(warnings, ctx))


@bp.get("/flood/warnings/<key>.cap")
def cap(key: str):
    """The CAP 1.2 alert of the warning ``key``, while it is in force."""
    found = next((w for w in service().flood.warnings() if w.key == key), None)
    if found is None:
        raise NotFound(f"no warning {key[:80]!r} is in force; see /flood/warnings.atom", parameter="key")
    body = alerts.cap_alert(found, _context())
    return _answer(body, alerts.CAP_TYPE, body)
