"""OGC API - Features under ``/ogc``: translate each request into ``geoapp.core.ogc`` calls and its documents into
JSON, GeoJSON or HTML (``f=`` or the Accept header); errors as OGC's exception JSON."""

from __future__ import annotations

from typing import Any

import orjson
from flask import Blueprint, Response, current_app, render_template, request, url_for
from flask_babel import gettext as _

from geoapp import __version__
from geoapp.core import encode, ogc
from geoapp.core.query import parse_fid
from geoapp.errors import GeoappError, NotFound
from geoapp.store.base import Visibility
from geoapp.web import errors, i18n, service
from geoapp.web.access import visibility

bp = Blueprint("ogc", __name__, url_prefix="/ogc")

_VIEWS = {
    ogc.LANDING: "ogc.landing",
    ogc.CONFORMANCE: "ogc.conformance",
    ogc.COLLECTIONS: "ogc.collections",
    ogc.COLLECTION: "ogc.collection",
    ogc.ITEMS: "ogc.items",
    ogc.ITEM: "ogc.item",
    ogc.QUERYABLES: "ogc.queryables",
    ogc.API: "ogc.api",
}


def _url(resource: str, layer_id: str | None = None, fid: int | None = None, **params: str) -> str:
    """An absolute URL of one of the service's resources (``lang`` kept when the request gave it)."""
    values: dict[str, Any] = dict(params)
    if layer_id is not None:
        values["layer_id"] = layer_id
    if fid is not None:
        values["fid"] = fid
    if "lang" in request.args and "lang" not in values:
        values["lang"] = request.args["lang"]
    return url_for(_VIEWS[resource], _external=True, **values)


def _format(resource: str, extra=()) -> str:
    """The format asked, json or html, once the request's parameters are checked (each once, each known)."""
    one = ogc.check_names(resource, request.args.to_dict(flat=False), extra)
    if "f" in one:
        return one["f"]
    best = request.accept_mimetypes.best_match(
        ["application/json", ogc.GEOJSON, ogc.OPENAPI_JSON, "application/schema+json", "text/html"],
        default="application/json",
    )
    return "html" if best == "text/html" else "json"


def _json(payload, mimetype: str = "application/json", status: int = 200) -> Response:
    response = Response(orjson.dumps(payload), status=status, mimetype=mimetype)
    response.vary.add("Accept")
    return response


def _html(template: str, **context) -> Response:
    response = Response(render_template(template, **context), mimetype="text/html")
    response.vary.add("Accept")
    return response


def _crs_list():
    return ogc.supported_crs(service().store.metric_crs)


@bp.record_once
def _setup(state) -> None:
    # each layer's first and last date, kept per layer version
    state.app.extensions["geoapp.ogc.temporal"] = ogc.TemporalExtents()


def _temporal():
    """``layer -> (first date, last date) or None`` for this request's caller."""
    extents = current_app.extensions["geoapp.ogc.temporal"]
    reader = service().reader
    vis = visibility()
    versions = reader.versions()

    def of(layer):
        return extents(reader, layer, vis, versions[layer.id])

    return of


def _title() -> str:
    return _("City Management One Map") + " · OGC API - Features"


@bp.get("/", strict_slashes=False)
def landing():
    fmt = _format(ogc.LANDING)
    doc = ogc.landing(
        _url,
        i18n.current_lang(),
        _title(),
        _("The bureau's layers for GIS clients (QGIS, ArcGIS, GDAL): OGC API - Features with CRS and CQL2 filters."),
    )
    if fmt == "html":
        return _html("ogc/landing.html", title=doc["title"], doc=doc)
    return _json(doc)


@bp.get("/conformance")
def conformance():
    fmt = _format(ogc.CONFORMANCE)
    doc = {"conformsTo": ogc.conformance()}
    if fmt == "html":
        return _html("ogc/conformance.html", title=_("Conformance"), doc=doc)
    return _json(doc)


@bp.get("/api")
def api():
    fmt = _format(ogc.API)
    lang = i18n.current_lang()
    server = url_for("ogc.landing", _external=True).rstrip("/")
    doc = ogc.openapi(service().registry, server, lang, visibility(), _title(), __version__)
    if fmt == "html":
        return _html("ogc/api.html", title=_("API definition"), doc=doc, parameters=ogc.PARAMETERS)
    return _json(doc, ogc.OPENAPI_JSON)


@bp.get("/collections")
def collections():
    fmt = _format(ogc.COLLECTIONS)
    svc = service()
    vis = visibility()
    doc = ogc.collections(svc.registry, svc.reader.summary(), _url, i18n.current_lang(), _crs_list(), _temporal(), vis)
    if fmt == "html":
        return _html("ogc/collections.html", title=_("Collections"), doc=doc)
    return _json(doc)


def _layer(layer_id: str):
    return service().registry.require(layer_id)


@bp.get("/collections/<layer_id>")
def collection(layer_id: str):
    layer = _layer(layer_id)
    fmt = _format(ogc.COLLECTION)
    svc = service()
    vis = visibility()
    summary = svc.reader.summary()[layer_id]
    doc = ogc.collection(layer, summary, _url, i18n.current_lang(), _crs_list(), _temporal()(layer), vis)
    if fmt == "html":
        queryables = ogc.queryables(layer, _url, vis)
        return _html("ogc/collection.html", title=doc["title"], doc=doc, queryables=queryables)
    return _json(doc)


@bp.get("/collections/<layer_id>/queryables")
def queryables(layer_id: str):
    layer = _layer(layer_id)
    fmt = _format(ogc.QUERYABLES)
    doc = ogc.queryables(layer, _url, visibility())
    if fmt == "html":
        return _html("ogc/queryables.html", title=_("Queryables"), doc=doc, layer=layer)
    return _json(doc, "application/schema+json")


def _columns(layer, vis: Visibility, lang: str) -> list[tuple[str, str]]:
    return [(f.name, f.label(lang)) for f in layer.visible_fields(vis == "internal")]


def _shown(layer, properties: dict, vis: Visibility, lang: str) -> dict[str, str]:
    """A feature's values as a page shows them: allowed values by their label, units after numbers."""
    out = {}
    for spec in layer.visible_fields(vis == "internal"):
        value = properties.get(spec.name)
        if value is None:
            out[spec.name] = ""
        elif spec.values is not None and spec.choice(str(value)) is not None:
            out[spec.name] = spec.choice(str(value)).label(lang)
        elif isinstance(value, bool):
            out[spec.name] = _("Yes") if value else _("No")
        else:
            out[spec.name] = f"{value} {spec.unit}" if spec.unit else str(value)
    return out


@bp.get("/collections/<layer_id>/items")
def items(layer_id: str):
    layer = _layer(layer_id)
    svc = service()
    vis = visibility()
    reader = svc.reader
    args = request.args.to_dict(flat=False)
    fmt = _format(ogc.ITEMS, [f.name for f in ogc.property_fields(layer, vis)])
    req = ogc.items_request(layer, args, visibility=vis, crs_list=_crs_list())
    page = reader.select(layer_id, req.query, req.offset, req.limit, vis)
    links = ogc.items_links(_url, layer_id, req, page, fmt)
    texts = ogc.feature_texts(page.features, req.crs)
    if fmt == "html":
        lang = i18n.current_lang()
        features = [orjson.loads(t) for t in texts]
        for f in features:
            f["shown"] = _shown(layer, f["properties"], vis, lang)
        response = _html(
            "ogc/items.html",
            title=layer.title(lang),
            layer=layer,
            features=features,
            columns=_columns(layer, vis, lang),
            page=page,
            req=req,
            links={link["rel"]: link["href"] for link in links},
        )
    else:
        response = Response(ogc.items_body(texts, page, links), mimetype=ogc.GEOJSON)
        response.vary.add("Accept")
    response.headers["Content-Crs"] = f"<{req.crs.uri}>"
    return response


@bp.get("/collections/<layer_id>/items/<fid>")
def item(layer_id: str, fid: str):
    layer = _layer(layer_id)
    fmt = _format(ogc.ITEM)
    one = ogc.check_names(ogc.ITEM, request.args.to_dict(flat=False))
    crs = ogc.parse_crs(one["crs"], _crs_list(), "crs") if "crs" in one else _crs_list()[0]
    number = parse_fid(fid)
    vis = visibility()
    found = service().reader.get(layer_id, number, vis) if number is not None else None
    if found is None:
        raise NotFound(f"no feature {fid[:40]!r} in collection {layer_id}", parameter="featureId")
    visible = {f.name for f in layer.visible_fields(vis == "internal")}
    props = {k: v for k, v in found.properties.items() if k in visible}
    text = encode.feature(found.fid, found.version, found.geometry, props)
    feature = ogc.feature_members(text, crs)
    other = "html" if fmt == "json" else "json"
    extra = {"crs": one["crs"]} if "crs" in one else {}
    feature["links"] = [
        {
            "rel": "self",
            "type": ogc.GEOJSON if fmt == "json" else "text/html",
            "href": _url(ogc.ITEM, layer_id, found.fid, f=fmt, **extra),
        },
        {
            "rel": "alternate",
            "type": "text/html" if fmt == "json" else ogc.GEOJSON,
            "href": _url(ogc.ITEM, layer_id, found.fid, f=other, **extra),
        },
        {"rel": "collection", "type": "application/json", "href": _url(ogc.COLLECTION, layer_id)},
    ]
    if fmt == "html":
        feature["shown"] = _shown(layer, props, vis, i18n.current_lang())
        response = _html(
            "ogc/item.html",
            title=str(props.get(layer.title_field) or found.fid),
            layer=layer,
            feature=feature,
            columns=_columns(layer, vis, i18n.current_lang()),
        )
    else:
        response = _json(feature, ogc.GEOJSON)
    response.headers["Content-Crs"] = f"<{crs.uri}>"
    response.set_etag(f"{found.version}-{vis}-{crs.code}-{fmt}")
    return response.make_conditional(request)


@bp.errorhandler(GeoappError)
def _error(exc: GeoappError):
    """OGC's exception JSON for API clients; the app's error page for browsers."""
    lang = errors.message_lang()
    wants_html = request.args.get("f") == "html" or (
        request.args.get("f") is None
        and request.accept_mimetypes.best_match(["application/json", "text/html"], default="application/json")
        == "text/html"
    )
    if wants_html:
        return errors.respond(exc.to_dict(lang), exc.status)
    response = _json(ogc.exception(exc.code, exc.message_in(lang), exc.parameter, exc.status), status=exc.status)
    if exc.retry_after is not None:
        response.headers["Retry-After"] = str(exc.retry_after)
    return response
