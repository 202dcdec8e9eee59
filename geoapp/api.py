"""The JSON API: translate a request into an engine call, and the result into a response."""

from __future__ import annotations

import zlib
from urllib.parse import urlencode

import orjson
from flask import Blueprint, Response, request, url_for

from geoapp import GEOJSON, report, service
from geoapp.access import staff
from geoapp.errors import InvalidParameter, NotFound
from geoapp.layers import GROUPS, FieldDef, Layer
from geoapp.params import features_request, parse_int
from geoapp.spatial import Result

bp = Blueprint("api", __name__, url_prefix="/api")


def _json(payload, status: int = 200, mimetype: str = "application/json") -> Response:
    return Response(orjson.dumps(payload), status=status, mimetype=mimetype)


def _field(spec: FieldDef) -> dict:
    out = {
        "name": spec.name,
        "type": spec.type,
        "title": spec.label.model_dump(),
        "visibility": spec.visibility,
        "required": spec.required,
    }
    if spec.unit:
        out["unit"] = spec.unit
    if spec.computed:
        out["computed"] = spec.computed
    if spec.values is not None:
        out["values"] = [c.model_dump(exclude_none=True) for c in spec.values]
    return out


def describe(layer: Layer, internal: bool) -> dict:
    """A layer as ``/api/layers`` lists it; internal fields only for staff."""
    snap = service().engine.snapshot(layer.id)
    visible = {f.name for f in layer.visible_fields(internal)}
    out = {
        "id": layer.id,
        "title": layer.title.model_dump(),
        "group": {"id": layer.group, "title": GROUPS[layer.group]},
        "geometry_types": list(layer.geometry),
        "count": len(snap),
        "extent": snap.extent,
        "version": snap.version,
        "context": layer.context,
        "title_field": layer.title_field,
        "fields": [_field(f) for f in layer.visible_fields(internal)],
        "popup": [name for name in layer.popup if name in visible],
        "links": [{"rel": "items", "href": url_for("api.features", layer_id=layer.id), "type": GEOJSON}],
    }
    if layer.status_field:
        out["status"] = {
            "field": layer.status_field,
            "values": [c.model_dump() for c in layer.field(layer.status_field).values],
        }
    if layer.note:
        out["note"] = layer.note.model_dump()
    return out


@bp.get("/layers")
def layers():
    internal = staff()
    svc = service()
    payload = {
        "layers": [describe(layer, internal) for layer in svc.registry],
        "synthetic": svc.store.demo,
    }
    return _json(payload)


@bp.get("/layers/<layer_id>")
def layer(layer_id: str):
    return _json(describe(service().engine.layer(layer_id), staff()))


@bp.get("/layers/<layer_id>/features")
def features(layer_id: str):
    engine = service().engine
    layer = engine.layer(layer_id)
    internal = staff()
    args = request.args.to_dict(flat=False)
    req = features_request(engine, layer, args, internal=internal)
    result = engine.query(layer_id, req.query)
    page = result.page(req.offset, req.limit)
    links = [{"rel": "self", "href": _link(args, req.offset, req.limit), "type": GEOJSON}]
    if req.offset + page.matched < result.matched:
        links.append({"rel": "next", "href": _link(args, req.offset + req.limit, req.limit), "type": GEOJSON})
    if req.offset > 0:
        links.append({"rel": "prev", "href": _link(args, max(0, req.offset - req.limit), req.limit), "type": GEOJSON})
    meta = {
        "numberMatched": result.matched,
        "numberReturned": page.matched,
        "layer": layer_id,
        "layerVersion": result.snapshot.version,
        "links": links,
    }
    body = b'{"type":"FeatureCollection","features":[%s],%s' % (
        b",".join(_features(page, internal)),
        orjson.dumps(meta)[1:],
    )
    response = Response(body, mimetype=GEOJSON)
    response.set_etag(f"{layer_id}-{result.snapshot.version}-{int(internal)}-{zlib.crc32(request.query_string):08x}")
    return response.make_conditional(request)


def _features(page: Result, internal: bool) -> list[bytes]:
    """Close each cached feature, adding ``distance_m`` where the query measured one."""
    cached = page.snapshot.features_json(page.positions, internal)
    if page.distances is None:
        return [f + b"}}" for f in cached]
    return [
        f + (b'"distance_m":%.2f}}' if f.endswith(b"{") else b',"distance_m":%.2f}}') % d
        for f, d in zip(cached, page.distances.tolist(), strict=True)
    ]


def _link(args: dict[str, list[str]], offset: int, limit: int) -> str:
    params = {k: v for k, v in args.items() if k not in ("offset", "limit")}
    params["limit"], params["offset"] = [str(limit)], [str(offset)]
    return f"{request.base_url}?{urlencode(params, doseq=True)}"


@bp.get("/layers/<layer_id>/features/<fid>")
def feature(layer_id: str, fid: str):
    engine = service().engine
    engine.layer(layer_id)
    snap = engine.snapshot(layer_id)
    pos = snap.position(parse_int(fid, "fid"))
    if pos is None:
        raise NotFound(f"no feature {fid} in layer {layer_id}", parameter="fid")
    internal = staff()
    (body,) = snap.features_json([pos], internal)
    response = Response(body + b"}}", mimetype=GEOJSON)
    response.set_etag(f"{layer_id}-{fid}-{snap.version}-{int(internal)}")
    return response.make_conditional(request)


@bp.get("/search")
def search():
    """Find features by title across layers: ``q`` (1 to 100 characters) and ``limit`` (1 to 100, default 20)."""
    args = request.args.to_dict(flat=False)
    for name in args:
        if name not in ("q", "limit"):
            raise InvalidParameter(f"unknown parameter {name!r}; allowed: q, limit", parameter=name)
    q = request.args.get("q", "").strip()
    if not 1 <= len(q) <= 100:
        raise InvalidParameter("q must be 1 to 100 characters of a name to look for", parameter="q")
    limit = parse_int(request.args.get("limit", "20"), "limit")
    if not 1 <= limit <= 100:
        raise InvalidParameter("limit must be a whole number from 1 to 100", parameter="limit")
    return _json({"q": q, "results": service().engine.search(q, limit)})


@bp.get("/stats")
def stats():
    svc = service()
    engine = svc.engine
    return _json(
        {
            "layers": {layer.id: engine.counts(layer.id) for layer in svc.registry},
            "report": report.headline(engine),
            "synthetic": svc.store.demo,
        }
    )
