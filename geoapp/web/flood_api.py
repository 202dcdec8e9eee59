"""The flood API: readings in, the board's live data, scenarios, nearest resources and closures out.

Views translate a request into a call of :class:`geoapp.flood.service.Flood` (which checks the
caller's roles and the values) and its answer into JSON; nothing here writes to the store.
"""

from __future__ import annotations

import zlib

import orjson
from flask import Blueprint, Response, request

from geoapp.core import permissions
from geoapp.core.query import parse_fid, parse_int, parse_number
from geoapp.errors import InvalidParameter, NotFound
from geoapp.flood.readings import parse_range_time
from geoapp.flood.service import BOARD_ROLES, CLOSURE_ROLES, READING_ROLES, closure_json
from geoapp.web import service
from geoapp.web.access import caller, visibility
from geoapp.web.body import check_members, json_body, query_args

bp = Blueprint("flood_api", __name__, url_prefix="/api")


def _json(payload, status: int = 200) -> Response:
    return Response(orjson.dumps(payload), status=status, mimetype="application/json")


def _args(allowed: tuple[str, ...]) -> dict[str, str]:
    return query_args(request, allowed)


def _fid(text: str | None, parameter: str) -> int:
    fid = parse_fid(text or "")
    if fid is None:
        raise InvalidParameter(f"{parameter} must be a feature id (a whole number from 1)", parameter=parameter)
    return fid


@bp.post("/readings")
def post_readings():
    """One reading or ``{"readings": [...]}`` (a batch: all or none); 201 with how many were new."""
    flood = service().flood
    who = caller()
    permissions.require_role(who, READING_ROLES)  # before the body: the public learns nothing from it
    stored, duplicates = flood.post_readings(who, json_body(request))
    return _json({"stored": stored, "duplicates": duplicates}, 201)


@bp.get("/readings")
def readings():
    """A feature's series: ``layer``, ``feature_id``, optional ``kind``, ``since`` and ``until`` (ISO 8601)."""
    permissions.require_role(caller())  # staff, before the parameters: the public learns nothing from them
    args = _args(("layer", "feature_id", "kind", "since", "until"))
    for name in ("layer", "feature_id"):
        if name not in args:
            raise InvalidParameter(f"{name} is required", parameter=name)
    since = parse_range_time(args["since"], "since") if "since" in args else None
    until = parse_range_time(args["until"], "until") if "until" in args else None
    fid = _fid(args["feature_id"], "feature_id")
    return _json(service().flood.series(caller(), args["layer"], fid, args.get("kind"), since, until))


@bp.get("/flood/live")
def live():
    """The board's live data; its ETag is the content's, so a poll with If-None-Match gets 304 until it changes."""
    payload = service().flood.live(caller(), visibility())
    same = {k: v for k, v in payload.items() if k != "generated_at"}
    response = _json(payload)
    response.set_etag(f"{zlib.crc32(orjson.dumps(same, option=orjson.OPT_SORT_KEYS)):08x}-{visibility()}")
    response.headers["Cache-Control"] = "private, no-cache"
    return response.make_conditional(request)


@bp.get("/flood/scenario")
def scenario():
    """``rain_mm_h`` falling for ``hours``: each monitored feature's expected level and the signal."""
    permissions.require_role(caller(), BOARD_ROLES)
    args = _args(("rain_mm_h", "hours"))
    if "rain_mm_h" not in args:
        raise InvalidParameter("rain_mm_h is required (mm of rain an hour, 0 to 300)", parameter="rain_mm_h")
    rain = parse_number(args["rain_mm_h"], "rain_mm_h")
    hours = parse_number(args.get("hours", "1"), "hours")
    return _json(service().flood.scenario(caller(), rain, hours))


@bp.get("/flood/nearest")
def nearest():
    """The ``k`` nearest available resources of ``kind`` from ``lon``/``lat`` or from a feature (``layer``,
    ``feature_id``), nearest first, with distances in metres."""
    permissions.require_role(caller(), BOARD_ROLES)  # before a feature is looked up: no 404 tells the public
    args = _args(("lon", "lat", "layer", "feature_id", "kind", "k"))
    flood = service().flood
    origin: dict = {}
    if "layer" in args or "feature_id" in args:
        if "lon" in args or "lat" in args:
            raise InvalidParameter("give lon and lat, or layer and feature_id, not both", parameter="lon")
        if "layer" not in args or "feature_id" not in args:
            raise InvalidParameter("a feature is named by layer and feature_id", parameter="layer")
        fid = _fid(args["feature_id"], "feature_id")
        lon, lat = flood.feature_point(args["layer"], fid)
        origin = {"layer": args["layer"], "feature_id": fid}
    else:
        for name in ("lon", "lat"):
            if name not in args:
                raise InvalidParameter("give lon and lat (WGS84 degrees), or layer and feature_id", parameter=name)
        lon, lat = parse_number(args["lon"], "lon"), parse_number(args["lat"], "lat")
        if not -180 <= lon <= 180:
            raise InvalidParameter("lon must be from -180 to 180", parameter="lon")
        if not -90 <= lat <= 90:
            raise InvalidParameter("lat must be from -90 to 90", parameter="lat")
    k = parse_int(args["k"], "k") if "k" in args else None
    found = flood.nearest(caller(), lon, lat, args.get("kind"), k, visibility())
    return _json({"from": {"lon": lon, "lat": lat, **origin}, "kind": args.get("kind"), "resources": found})


@bp.get("/flood/closures")
def closures():
    """Closures that hold (``state=open``, the default) or every closure (``state=all``), newest first."""
    permissions.require_role(caller(), BOARD_ROLES)
    args = _args(("state",))
    state = args.get("state", "open")
    if state not in ("open", "all"):
        raise InvalidParameter("state must be open or all", parameter="state")
    flood = service().flood
    found = flood.closures(caller(), open_only=state == "open")
    return _json({"closures": [closure_json(c, flood._name_of) for c in found]})


@bp.post("/flood/closures")
def close():
    """Close an underpass or seal an underground space: ``{"layer", "feature_id", "reason"}``; 201 the closure."""
    flood = service().flood
    who = caller()
    permissions.require_role(who, CLOSURE_ROLES)
    body = json_body(request)
    check_members(body, ("layer", "feature_id", "reason"))
    layer = body.get("layer")
    if not isinstance(layer, str):
        raise InvalidParameter("layer is required (the layer of the feature to close)", parameter="layer")
    fid = body.get("feature_id")
    if isinstance(fid, bool) or not isinstance(fid, int) or not 0 < fid < 2**63:
        raise InvalidParameter("feature_id must be a feature id (a whole number from 1)", parameter="feature_id")
    closure = flood.close(who, layer, fid, body.get("reason"))
    return _json(closure_json(closure, flood._name_of), 201)


@bp.post("/flood/closures/<closure_id>/reopen")
def reopen(closure_id: str):
    """Reopen a closure: ``{"reason"}`` (optional)."""
    flood = service().flood
    who = caller()
    permissions.require_role(who, CLOSURE_ROLES)
    number = parse_fid(closure_id)
    if number is None:
        raise NotFound(f"no closure {closure_id[:40]!r}", parameter="closure")
    body = json_body(request, optional=True)
    check_members(body, ("reason",))
    closure = flood.reopen(who, number, body.get("reason"))
    return _json(closure_json(closure, flood._name_of))
