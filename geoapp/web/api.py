"""The JSON API: translate a request into a reader query or a use case, and the result into a response.

Views read only through the :class:`~geoapp.store.base.FeatureReader` and change only through the
use cases (:class:`~geoapp.core.editing.Editing`); what a caller may see and do is the permission
policy's answer (``geoapp.core.permissions``).
"""

from __future__ import annotations

import zlib
from dataclasses import asdict
from urllib.parse import urlencode

import orjson
from flask import Blueprint, Response, request, url_for

from geoapp.core import encode, geojson, permissions, stats
from geoapp.core.editing import etag, expected_version
from geoapp.core.layers import GROUPS, FieldDef, Layer
from geoapp.core.query import features_request, parse_fid, parse_int
from geoapp.errors import InvalidParameter, NotFound
from geoapp.store.base import Feature, LayerSummary, Visibility
from geoapp.web import GEOJSON, service
from geoapp.web.access import caller, visibility
from geoapp.web.body import check_members, json_body

bp = Blueprint("api", __name__, url_prefix="/api")

FEATURE_MEMBERS = ("type", "id", "properties", "geometry", "version")
#: problems listed per layer for staff (the count says how many there are in all)
PROBLEMS_LISTED = 20


def _json(payload, status: int = 200, mimetype: str = "application/json") -> Response:
    return Response(orjson.dumps(payload), status=status, mimetype=mimetype)


def _conditional(response: Response, *parts) -> Response:
    """An ETag from what the answer depends on (the layer definitions too: a field made internal is not kept by a
    304), and a 304 when the caller has it already."""
    response.set_etag("-".join(map(str, (*parts, service().registry.fingerprint))))
    return response.make_conditional(request)


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


def describe(layer: Layer, vis: Visibility, summary: LayerSummary) -> dict:
    """A layer as ``/api/layers`` lists it; internal fields and stored-data problems only for staff."""
    fields = layer.visible_fields(vis == "internal")
    visible = {f.name for f in fields}
    out = {
        "id": layer.id,
        "title": layer.title.model_dump(),
        "group": {"id": layer.group, "title": GROUPS[layer.group]},
        "geometry_types": list(layer.geometry),
        "count": summary.count,
        "extent": summary.extent,
        "version": summary.version,
        "context": layer.context,
        "title_field": layer.title_field,
        "fields": [_field(f) for f in fields],
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
    if vis == "internal" and summary.problems:
        out["problems"] = {
            "count": len(summary.problems),
            "rows": [asdict(p) for p in summary.problems[:PROBLEMS_LISTED]],
        }
    return out


def _versions_tag(versions: dict[str, int]) -> str:
    return f"{zlib.crc32(orjson.dumps(versions, option=orjson.OPT_SORT_KEYS)):08x}"


@bp.get("/layers")
def layers():
    svc = service()
    vis = visibility()
    summary = svc.reader.summary()
    payload = {
        "layers": [describe(layer, vis, summary[layer.id]) for layer in svc.registry],
        "synthetic": svc.store.synthetic,
    }
    versions = {layer_id: s.version for layer_id, s in summary.items()}
    return _conditional(_json(payload), "layers", _versions_tag(versions), vis)


@bp.get("/layers/<layer_id>")
def layer(layer_id: str):
    svc = service()
    vis = visibility()
    spec = _layer(layer_id)
    summary = svc.reader.summary()[layer_id]
    return _conditional(_json(describe(spec, vis, summary)), "layer", layer_id, summary.version, vis)


def _layer(layer_id: str) -> Layer:
    return service().registry.require(layer_id)


@bp.get("/layers/<layer_id>/features")
def features(layer_id: str):
    reader = service().reader
    spec = _layer(layer_id)
    vis = visibility()
    args = request.args.to_dict(flat=False)
    req = features_request(reader, spec, args, visibility=vis)
    page = reader.select(layer_id, req.query, req.offset, req.limit, vis)
    returned = len(page.features)
    links = [{"rel": "self", "href": request.url, "type": GEOJSON}]
    by_distance = req.query.near is not None or req.query.nearest is not None
    if page.more and by_distance:
        links.append({"rel": "next", "href": _link(args, limit=req.limit, offset=req.offset + req.limit)})
    elif page.more:  # keyset: exact while the layer changes, and as fast on the last page as on the first
        links.append({"rel": "next", "href": _link(args, limit=req.limit, after=page.ids[-1])})
    if req.offset > 0:
        links.append({"rel": "prev", "href": _link(args, limit=req.limit, offset=max(0, req.offset - req.limit))})
    for link in links[1:]:
        link["type"] = GEOJSON
    members = {"numberMatched": page.matched, "numberReturned": returned}
    if page.estimated:
        members["numberMatchedEstimated"] = True  # the database's estimate of a very large selection
    body = encode.collection(page.features, **members, layer=layer_id, layerVersion=page.version, links=links)
    # the answer changes with this layer and with any layer it was asked relative to (within=grid_cells/7)
    versions = reader.versions()
    depends = "-".join(str(versions[d]) for d in req.depends)
    return _conditional(
        Response(body, mimetype=GEOJSON),
        layer_id,
        page.version,
        depends,
        vis,
        f"{zlib.crc32(request.query_string):08x}",
    )


def _link(args: dict[str, list[str]], **paging: int) -> str:
    params = {k: v for k, v in args.items() if k not in ("offset", "limit", "after")}
    params.update({name: [str(value)] for name, value in paging.items()})
    return f"{request.base_url}?{urlencode(params, doseq=True)}"


def _fid(layer_id: str, text: str) -> int:
    """A feature id from the URL; anything that cannot name a feature is 404, like a feature that does not exist."""
    fid = parse_fid(text)
    if fid is None:
        raise NotFound(f"no feature {text[:40]!r} in layer {layer_id}", parameter="fid")
    return fid


def _feature_response(feature: Feature, vis: Visibility, status: int = 200) -> Response:
    """A feature as GeoJSON (the fields ``vis`` shows), with its version as the ETag (an If-Match for a change)."""
    spec = service().registry[feature.layer]
    visible = {f.name for f in spec.visible_fields(vis == "internal")}
    props = {k: v for k, v in feature.properties.items() if k in visible}
    response = Response(encode.feature(feature.fid, feature.version, feature.geometry, props), status, mimetype=GEOJSON)
    response.set_etag(etag(feature.version, vis))
    return response


@bp.get("/layers/<layer_id>/features/<fid>")
def feature(layer_id: str, fid: str):
    _layer(layer_id)
    vis = visibility()
    found = service().reader.get(layer_id, _fid(layer_id, fid), vis)
    if found is None:
        raise NotFound(f"no feature {fid} in layer {layer_id}", parameter="fid")
    return _feature_response(found, vis).make_conditional(request)


def _properties(body: dict) -> dict:
    props = body.get("properties", {})
    if not isinstance(props, dict):
        raise InvalidParameter("properties must be a JSON object of field values", parameter="properties")
    return props


@bp.post("/layers/<layer_id>/features")
def create_feature(layer_id: str):
    """Add a feature: a GeoJSON Feature with the layer's fields as properties."""
    _layer(layer_id)
    who = caller()
    permissions.require_edit(who, service().registry[layer_id])
    body = json_body(request)
    check_members(body, FEATURE_MEMBERS)
    geometry = geojson.parse_geometry(body.get("geometry"))
    created = service().editing.create(who, layer_id, _properties(body), geometry)
    response = _feature_response(created, visibility(), 201)
    response.headers["Location"] = url_for("api.feature", layer_id=layer_id, fid=created.fid)
    return response


def _change(layer_id: str, fid: str, members: tuple[str, ...], *, optional_body: bool = False):
    """What every change of one feature reads first: the caller (who must be an editor), the fid, the body,
    and the version the caller read (If-Match or ``version``)."""
    spec = _layer(layer_id)
    who = caller()
    permissions.require_edit(who, spec)  # before the body: the public learns nothing from its errors
    number = _fid(layer_id, fid)
    body = json_body(request, optional=optional_body)
    check_members(body, members)
    return who, number, body, expected_version(request.headers.get("If-Match"), body.get("version"))


@bp.patch("/layers/<layer_id>/features/<fid>")
def update_feature(layer_id: str, fid: str):
    """Change fields and/or the geometry of the version the caller read (If-Match or ``version``)."""
    who, number, body, version = _change(layer_id, fid, FEATURE_MEMBERS)
    geometry = geojson.parse_geometry(body["geometry"]) if body.get("geometry") is not None else None
    changed = service().editing.update(
        who, layer_id, number, version=version, properties=_properties(body), geometry=geometry
    )
    return _feature_response(changed, visibility())


@bp.delete("/layers/<layer_id>/features/<fid>")
def delete_feature(layer_id: str, fid: str):
    """Remove a feature (kept, so that an administrator can restore it)."""
    who, number, _, version = _change(layer_id, fid, ("version",), optional_body=True)
    service().editing.delete(who, layer_id, number, version=version)
    return Response(status=204)


@bp.post("/layers/<layer_id>/features/<fid>/restore")
def restore_feature(layer_id: str, fid: str):
    _layer(layer_id)
    who = caller()
    permissions.require_restore(who)
    return _feature_response(service().editing.restore(who, layer_id, _fid(layer_id, fid)), visibility())


@bp.get("/layers/<layer_id>/features/<fid>/history")
def feature_history(layer_id: str, fid: str):
    """Who changed the feature when, field by field (staff only)."""
    _layer(layer_id)
    permissions.require_role(caller())
    number = _fid(layer_id, fid)
    svc = service()
    entries = svc.store.history(layer_id, number)
    if not entries and svc.reader.get(layer_id, number) is None:
        raise NotFound(f"no feature {fid} in layer {layer_id}", parameter="fid")
    response = _json({"layer": layer_id, "id": number, "history": [asdict(e) for e in entries]})
    return response


@bp.get("/deleted")
def deleted_features():
    rows = service().editing.deleted(caller())
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
    return _json({"q": q, "results": service().reader.search(q, limit)})


@bp.get("/stats")
def stats_():
    svc = service()
    summary = svc.reader.summary()
    layers_ = {
        layer_id: {"count": s.count, **({"by_status": s.by_status} if s.by_status is not None else {})}
        for layer_id, s in summary.items()
    }
    payload = {
        "layers": layers_,
        "report": stats.headline(svc.reader, svc.figures),
        "synthetic": svc.store.synthetic,
    }
    versions = {layer_id: s.version for layer_id, s in summary.items()}
    return _conditional(_json(payload), "stats", _versions_tag(versions))
