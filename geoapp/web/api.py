"""The JSON API: translate a request into an engine call, and the result into a response."""

from __future__ import annotations

import zlib
from dataclasses import asdict
from urllib.parse import urlencode

import orjson
from flask import Blueprint, Response, request, url_for

from geoapp.core import editing
from geoapp.core import stats as report
from geoapp.core.layers import GROUPS, FieldDef, Layer
from geoapp.core.query import features_request, parse_int
from geoapp.errors import InvalidParameter, NotFound
from geoapp.store import Feature
from geoapp.store.memindex import Result, geojson_geometries
from geoapp.web import GEOJSON, auth, service
from geoapp.web.access import staff

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
    # the answer changes with this layer and with any layer it was asked relative to (within=grid_cells/7)
    versions = "-".join(str(v) for v in (result.snapshot.version, *map(engine.store.version, req.depends)))
    response.set_etag(f"{layer_id}-{versions}-{int(internal)}-{zlib.crc32(request.query_string):08x}")
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


def _body() -> dict:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise InvalidParameter("the request body must be a JSON object", parameter="body")
    return body


def _feature_response(feature: Feature, status: int = 200) -> Response:
    """A changed feature as GeoJSON (what the caller may see), with its new version as the ETag."""
    layer = service().registry[feature.layer]
    visible = {f.name for f in layer.visible_fields(staff())}
    payload = {
        "type": "Feature",
        "id": feature.fid,
        "version": feature.version,
        "geometry": orjson.loads(geojson_geometries(feature.geometry)),
        "properties": {k: v for k, v in feature.properties.items() if k in visible},
    }
    response = _json(payload, status, GEOJSON)
    response.set_etag(str(feature.version))
    return response


def _properties(body: dict) -> dict:
    props = body.get("properties", {})
    if not isinstance(props, dict):
        raise InvalidParameter("properties must be a JSON object of field values", parameter="properties")
    return props


@bp.post("/layers/<layer_id>/features")
def create_feature(layer_id: str):
    """Add a feature: a GeoJSON Feature with the layer's fields as properties."""
    svc = service()
    layer = svc.engine.layer(layer_id)
    auth.require_edit(layer)
    body = _body()
    geometry = editing.parse_geometry(body.get("geometry"))
    editing.check_inside_district(svc.engine, geometry)
    feature = svc.store.insert(layer_id, _properties(body), geometry, actor=auth.actor())
    response = _feature_response(feature, 201)
    response.headers["Location"] = url_for("api.feature", layer_id=layer_id, fid=feature.fid)
    return response


@bp.patch("/layers/<layer_id>/features/<int:fid>")
def update_feature(layer_id: str, fid: int):
    """Change fields and/or the geometry of the version the caller read (If-Match or ``version``)."""
    svc = service()
    layer = svc.engine.layer(layer_id)
    auth.require_edit(layer)
    body = _body()
    version = editing.expected_version(request.headers.get("If-Match"), body)
    geometry = None
    if body.get("geometry") is not None:
        geometry = editing.parse_geometry(body["geometry"])
        editing.check_inside_district(svc.engine, geometry)
    unknown = sorted(set(body) - {"type", "id", "properties", "geometry", "version"})
    if unknown:
        raise InvalidParameter(f"unknown member {unknown[0]!r}; allowed: properties, geometry, version", unknown[0])
    feature = svc.store.update(layer_id, fid, _properties(body), geometry, expected_version=version, actor=auth.actor())
    return _feature_response(feature)


@bp.delete("/layers/<layer_id>/features/<int:fid>")
def delete_feature(layer_id: str, fid: int):
    """Remove a feature (kept, so that an admin can restore it)."""
    svc = service()
    layer = svc.engine.layer(layer_id)
    auth.require_edit(layer)
    body = request.get_json(silent=True) or {}
    version = editing.expected_version(request.headers.get("If-Match"), body if isinstance(body, dict) else {})
    svc.store.delete(layer_id, fid, expected_version=version, actor=auth.actor())
    return Response(status=204)


@bp.post("/layers/<layer_id>/features/<int:fid>/restore")
@auth.require_role("admin")
def restore_feature(layer_id: str, fid: int):
    svc = service()
    svc.engine.layer(layer_id)
    return _feature_response(svc.store.restore(layer_id, fid, actor=auth.actor()))


@bp.get("/layers/<layer_id>/features/<int:fid>/history")
@auth.require_role()
def feature_history(layer_id: str, fid: int):
    """Who changed the feature when, field by field (staff only)."""
    svc = service()
    svc.engine.layer(layer_id)
    entries = svc.store.history(layer_id, fid)
    if not entries and svc.store.get(layer_id, fid) is None:
        raise NotFound(f"no feature {fid} in layer {layer_id}", parameter="fid")
    return _json({"layer": layer_id, "id": fid, "history": [asdict(e) for e in entries]})


@bp.get("/deleted")
@auth.require_role("admin")
def deleted_features():
    rows = service().store.deleted()
    return _json(
        {
            "deleted": [
                {
                    "layer": d.feature.layer,
                    "id": d.feature.fid,
                    "version": d.feature.version,
                    "deleted_at": d.deleted_at,
                    "deleted_by": d.deleted_by,
                    "properties": d.feature.properties,
                }
                for d in rows
            ]
        }
    )


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
