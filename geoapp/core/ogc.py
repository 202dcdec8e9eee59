"""OGC API - Features (Part 1 Core, Part 2 CRS by reference, Part 3 Filtering), Flask-free.

One list of parameters (:data:`PARAMETERS`: name, where, schema, description, the resources that take
it) is both what :func:`items_request` reads and what :func:`openapi` documents, so the OpenAPI
document cannot drift from the code. The web layer (``geoapp.web.ogc``) only translates a request
into these calls and their documents into responses.

Output CRSs are CRS84 (lon/lat), EPSG:4326 and EPSG:4490 (lat/lon, their axis order), and the store's
metric CRS (for a CGCS2000 Gauss-Kruger zone northing/easting, as EPSG defines it). WGS84 and
CGCS2000 are treated as the same datum (sub-metre for mapping).
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
import orjson
import shapely
from pyproj import CRS

from geoapp.core import cql, encode
from geoapp.core import crs as coords
from geoapp.core.crs import STORAGE_CRS, project
from geoapp.core.layers import Layer, Registry
from geoapp.core.query import parse_int, parse_number
from geoapp.errors import InvalidParameter
from geoapp.store.base import FeatureReader, LayerSummary, Page, Query, Visibility

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
TRS = "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"
GEOJSON = "application/geo+json"
OPENAPI_JSON = "application/vnd.oai.openapi+json;version=3.0"
DEFAULT_LIMIT = 100
MAX_LIMIT = 10_000
#: no layer holds more features than a SQLite row id counts (a database refuses larger offsets)
MAX_OFFSET = 2**63 - 1 - MAX_LIMIT
#: decimals of projected coordinates (millimetres)
METRIC_DECIMALS = 3

CORE = "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/"
CONFORMANCE_CORE = [CORE + c for c in ("core", "geojson", "html", "oas30")]
CONFORMANCE_CRS = ["http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs"]
_FILTER = "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/"
_CQL2 = "http://www.opengis.net/spec/cql2/1.0/conf/"
CONFORMANCE_FILTER = [
    _FILTER + c for c in ("filter", "features-filter", "queryables", "queryables-query-parameters")
] + [_CQL2 + c for c in ("cql2-text", "cql2-json", "basic-cql2")]


def conformance() -> list[str]:
    """The conformance classes this service implements, and only those."""
    classes = [*CONFORMANCE_CORE, *CONFORMANCE_CRS, *CONFORMANCE_FILTER]
    return classes + [c for c in cql.CONFORMANCE if c not in classes]


# -- coordinate systems ----------------------------------------------------------------------------


@dataclass(frozen=True)
class OutputCrs:
    """A CRS the service answers in: its URI, a code pyproj reads, and whether its first axis is northing."""

    uri: str
    code: str
    north_first: bool
    geographic: bool


def crs_uri(code: str) -> str:
    """``EPSG:4547`` -> ``http://www.opengis.net/def/crs/EPSG/0/4547``; ``OGC:CRS84`` -> the CRS84 URI."""
    if code.upper() in ("OGC:CRS84", "CRS84"):
        return CRS84
    auth, _, number = code.partition(":")
    return f"http://www.opengis.net/def/crs/{auth.upper()}/0/{number}"


@lru_cache(maxsize=32)
def output_crs(code: str) -> OutputCrs:
    """The :class:`OutputCrs` for ``OGC:CRS84`` or ``EPSG:n`` (its axis order read from the EPSG definition)."""
    crs = CRS(code)
    first = crs.axis_info[0].direction.lower() if crs.axis_info else "east"
    return OutputCrs(crs_uri(code), code, first in ("north", "south"), crs.is_geographic)


def supported_crs(metric_crs: str) -> list[OutputCrs]:
    """CRS84 first, then EPSG:4326, EPSG:4490 and the store's metric CRS."""
    codes = ["OGC:CRS84", "EPSG:4326", "EPSG:4490"]
    if metric_crs not in codes:
        codes.append(metric_crs)
    return [output_crs(c) for c in codes]


def parse_crs(text: str, supported: Sequence[OutputCrs], parameter: str) -> OutputCrs:
    """One of ``supported``, named as :func:`geoapp.core.crs.parse_crs` reads CRSs (the OGC URI, ``EPSG:n``,
    ``[EPSG:n]``, ``CRS84``), or a 400 listing those served."""
    system = coords.parse_crs(text.strip(), parameter)
    for crs in supported:
        if crs.code == system.code:
            return crs
    allowed = ", ".join(c.uri for c in supported)
    raise InvalidParameter(f"{parameter}: {system.code} is not served here; supported: {allowed}", parameter=parameter)


def to_output(geoms: np.ndarray, crs: OutputCrs) -> np.ndarray:
    """Stored lon/lat geometries in ``crs``, in its axis order."""
    if not crs.geographic:
        geoms = project(geoms, STORAGE_CRS, crs.code)
        decimals = METRIC_DECIMALS
    else:
        decimals = encode.COORD_DECIMALS
    if crs.north_first:
        return shapely.transform(geoms, lambda xy: np.round(xy[:, ::-1], decimals))
    return shapely.transform(geoms, lambda xy: np.round(xy, decimals))


@dataclass(frozen=True)
class Area:
    """A bbox as the store reads it: a lon/lat box, and for a projected bbox-crs the box itself in lon/lat
    (its edges are straight in that CRS, not along meridians: the envelope alone would take more)."""

    envelope: tuple[float, float, float, float]
    polygon: shapely.Polygon | None = None


#: points an edge of a projected box is sampled at (a 10 km edge bends by millimetres between them)
EDGE_POINTS = 65


def bbox_area(values: Sequence[float], crs: OutputCrs) -> Area:
    """A box given in ``crs`` (its axis order) as an :class:`Area`."""
    a1, a2, b1, b2 = values
    if crs.north_first:
        a1, a2, b1, b2 = a2, a1, b2, b1
    if crs.geographic:
        return Area((a1, a2, b1, b2))
    ring = shapely.box(a1, a2, b1, b2).exterior
    ring = shapely.LinearRing(shapely.line_interpolate_point(ring, np.linspace(0, 1, 4 * EDGE_POINTS), normalized=True))
    polygon = project(shapely.Polygon(ring), crs.code, STORAGE_CRS)
    lonlat = shapely.get_coordinates(polygon)
    if not np.all(np.isfinite(lonlat)):
        raise InvalidParameter(f"bbox is outside the area where {crs.code} is defined", parameter="bbox")
    minx, miny = lonlat.min(axis=0)
    maxx, maxy = lonlat.max(axis=0)
    return Area((float(minx), float(miny), float(maxx), float(maxy)), polygon)


# -- the parameters --------------------------------------------------------------------------------

#: the resources, as the web layer names its views
LANDING, CONFORMANCE, COLLECTIONS, COLLECTION = "landing", "conformance", "collections", "collection"
ITEMS, ITEM, QUERYABLES, API = "items", "item", "queryables", "api"
ALL = (LANDING, CONFORMANCE, COLLECTIONS, COLLECTION, ITEMS, ITEM, QUERYABLES, API)


@dataclass(frozen=True)
class Parameter:
    """One parameter as OpenAPI describes it, and the resources that take it."""

    name: str
    where: str  # query | path
    schema: dict[str, Any]
    description: str
    resources: tuple[str, ...]
    style: str | None = None
    explode: bool | None = None

    def openapi(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "in": self.where,
            "required": self.where == "path",
            "description": self.description,
            "schema": self.schema,
        }
        if self.style:
            out["style"] = self.style
        if self.explode is not None:
            out["explode"] = self.explode
        return out


PARAMETERS: tuple[Parameter, ...] = (
    Parameter("collectionId", "path", {"type": "string"}, "the id of a collection (a layer)", ()),
    Parameter("featureId", "path", {"type": "integer", "minimum": 1}, "the id of a feature", ()),
    Parameter(
        "f",
        "query",
        {"type": "string", "enum": ["json", "html"]},
        "the format of the answer: json (GeoJSON for features) or html; without it the Accept header decides",
        ALL,
    ),
    Parameter(
        "lang",
        "query",
        {"type": "string", "enum": ["zh", "en"]},
        "the language of titles, descriptions and HTML pages: zh (the default) or en",
        ALL,
    ),
    Parameter(
        "bbox",
        "query",
        {"type": "array", "minItems": 4, "maxItems": 4, "items": {"type": "number"}},
        "features whose geometry meets this box: lower corner, upper corner, in the axis order of bbox-crs "
        "(CRS84: minlon,minlat,maxlon,maxlat)",
        (ITEMS,),
        style="form",
        explode=False,
    ),
    Parameter(
        "bbox-crs",
        "query",
        {"type": "string", "format": "uri"},
        "the CRS of bbox (one of the collection's crs list; CRS84 when not given)",
        (ITEMS,),
    ),
    Parameter(
        "crs",
        "query",
        {"type": "string", "format": "uri"},
        "the CRS of the geometries in the answer (one of the collection's crs list; CRS84 when not given); "
        "the Content-Crs header names it",
        (ITEMS, ITEM),
    ),
    Parameter(
        "datetime",
        "query",
        {"type": "string"},
        "features whose date (the collection's temporal extent says which field) is this date or falls in this "
        "interval: 2023-05-01, 2023-01-01/2023-06-30, ../2023-06-30, 2023-01-01/..; refused for a collection "
        "without a date",
        (ITEMS,),
    ),
    Parameter(
        "limit",
        "query",
        {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
        f"at most this many features in the answer (1 to {MAX_LIMIT}; more is refused)",
        (ITEMS,),
    ),
    Parameter(
        "offset",
        "query",
        {"type": "integer", "minimum": 0, "default": 0},
        "skip this many matching features (in id order); the next and prev links page with it",
        (ITEMS,),
    ),
    Parameter(
        "filter",
        "query",
        {"type": "string"},
        "a CQL2 expression on the collection's queryables (see filter-lang)",
        (ITEMS,),
    ),
    Parameter(
        "filter-lang",
        "query",
        {"type": "string", "enum": ["cql2-text", "cql2-json", "cql-text"], "default": "cql2-text"},
        "the language of filter: cql2-text or cql2-json (cql-text, the draft's name that GDAL sends, is read as "
        "cql2-text)",
        (ITEMS,),
    ),
    Parameter(
        "filter-crs",
        "query",
        {"type": "string", "format": "uri"},
        "the CRS of geometries in filter (CRS84 when not given)",
        (ITEMS,),
    ),
)
BY_NAME = {p.name: p for p in PARAMETERS}


def parameters(resource: str) -> list[Parameter]:
    """The query parameters ``resource`` takes."""
    return [p for p in PARAMETERS if resource in p.resources and p.where == "query"]


def property_fields(layer: Layer, visibility: Visibility):
    """The fields a caller may filter by as ``field=value`` (those whose names are no parameter's)."""
    return [f for f in layer.visible_fields(visibility == "internal") if f.name not in BY_NAME]


def check_names(resource: str, args: Mapping[str, Sequence[str]], extra: Iterable[str] = ()) -> dict[str, str]:
    """Each parameter of ``args`` once, and only those ``resource`` takes (and ``extra``); their values."""
    allowed = [p.name for p in parameters(resource)] + list(extra)
    for name, values in args.items():
        if name not in allowed:
            raise InvalidParameter(f"unknown parameter {name[:60]!r}; allowed: {', '.join(allowed)}", parameter=name)
        if len(values) != 1:
            raise InvalidParameter(f"{name} given {len(values)} times; give it once", parameter=name)
    one = {name: values[0] for name, values in args.items()}
    if "f" in one and one["f"] not in ("json", "html"):
        raise InvalidParameter("f must be json or html", parameter="f")
    return one


# -- items -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ItemsRequest:
    query: Query
    limit: int
    offset: int
    crs: OutputCrs
    #: the request's parameters but the paging ones, kept in every link
    kept: dict[str, str] = field(default_factory=dict)


def date_field(layer: Layer, visibility: Visibility) -> str | None:
    """The field ``datetime`` filters by and the temporal extent spans: the campaign's date, else the first date
    field (only one the caller may see)."""
    visible = {f.name: f for f in layer.visible_fields(visibility == "internal")}
    if layer.progress and layer.progress.date_field in visible:
        return layer.progress.date_field
    return next((name for name, f in visible.items() if f.type == "date"), None)


def _day(text: str) -> dt.date:
    """The date of an RFC 3339 date or date-time (a feature's date is a whole day)."""
    if text[-1:] in ("T", "t") and len(text) == 11:  # a date with the time left out (GDAL sends these)
        text = text[:-1]
    try:
        if "T" in text or "t" in text:
            moment = dt.datetime.fromisoformat(text.replace("z", "Z").replace("Z", "+00:00"))
            return moment.date()
        return dt.date.fromisoformat(text)
    except ValueError:
        raise InvalidParameter(
            f"datetime: {text[:40]!r} is not a date (2023-05-01) or date-time (2023-05-01T08:00:00Z)",
            parameter="datetime",
        ) from None


def parse_datetime(text: str) -> tuple[dt.date | None, dt.date | None]:
    """An instant or an interval (``..`` or nothing for an open end) as first and last day, inclusive."""
    if "/" not in text:
        day = _day(text)
        return day, day
    start, _, end = text.partition("/")
    if "/" in end:
        raise InvalidParameter("datetime is an instant or one interval start/end", parameter="datetime")
    first = None if start in ("", "..") else _day(start)
    last = None if end in ("", "..") else _day(end)
    if first is None and last is None:
        raise InvalidParameter("datetime: an interval needs at least one end (not ../..)", parameter="datetime")
    if first and last and first > last:
        raise InvalidParameter("datetime: the interval ends before it starts", parameter="datetime")
    return first, last


def items_request(
    layer: Layer,
    args: Mapping[str, Sequence[str]],
    *,
    visibility: Visibility,
    crs_list: Sequence[OutputCrs],
) -> ItemsRequest:
    """Read an ``/items`` request for ``layer`` into a store query, paging and an output CRS; 400 naming the
    parameter for anything it cannot take."""
    props = {f.name: f for f in property_fields(layer, visibility)}
    one = check_names(ITEMS, args, props)

    out = parse_crs(one["crs"], crs_list, "crs") if "crs" in one else crs_list[0]
    area = None
    if "bbox" in one:
        bbox_crs = parse_crs(one["bbox-crs"], crs_list, "bbox-crs") if "bbox-crs" in one else crs_list[0]
        area = parse_bbox(one["bbox"], bbox_crs)
    elif "bbox-crs" in one:
        raise InvalidParameter("bbox-crs is the CRS of bbox: give bbox too", parameter="bbox-crs")

    filters: dict[str, list[Any]] = {}
    for name, spec in props.items():
        if name in one:
            try:
                filters[name] = [spec.coerce(one[name])]
            except ValueError as exc:
                raise InvalidParameter(f"{name} {exc}", parameter=name) from None

    where = None
    if "datetime" in one:
        name = date_field(layer, visibility)
        if name is None:
            raise InvalidParameter(
                f"datetime: collection {layer.id} has no date to filter by; leave datetime out", parameter="datetime"
            )
        first, last = parse_datetime(one["datetime"])
        if first is not None and last is not None:
            where = cql.Between(name, first.isoformat(), last.isoformat())
        elif first is not None:
            where = cql.Compare(name, ">=", first.isoformat())
        else:
            where = cql.Compare(name, "<=", last.isoformat())
    if "filter" in one:
        lang = one.get("filter-lang", "cql2-text")
        text = one["filter"]
        if lang == "cql-text":
            lang, text = "cql2-text", from_draft_cql(text)
        filter_crs = None
        if "filter-crs" in one:
            filter_crs = coords.parse_crs(parse_crs(one["filter-crs"], crs_list, "filter-crs").code, "filter-crs")
        parsed = cql.parse(text, lang, layer, visibility=visibility, filter_crs=filter_crs)
        where = parsed if where is None else cql.And((where, parsed))
    else:
        for name in ("filter-lang", "filter-crs"):
            if name in one:
                raise InvalidParameter(f"{name} says how to read filter: give filter too", parameter=name)

    limit = parse_int(one.get("limit", str(DEFAULT_LIMIT)), "limit")
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidParameter(f"limit must be a whole number from 1 to {MAX_LIMIT}", parameter="limit")
    offset = parse_int(one.get("offset", "0"), "offset")
    if not 0 <= offset <= MAX_OFFSET:
        raise InvalidParameter(f"offset must be a whole number from 0 to {MAX_OFFSET}", parameter="offset")

    if area is not None and area.polygon is not None:
        inside = cql.Spatial("intersects", area.polygon)
        where = inside if where is None else cql.And((inside, where))
    query = Query(bbox=area.envelope if area else None, filters=filters, where=where)
    kept = {k: v for k, v in one.items() if k not in ("limit", "offset", "f")}
    return ItemsRequest(query, limit, offset, out, kept)


_DRAFT_DATE = re.compile(r"'(\d{4}-\d{2}-\d{2})T?'")
_DRAFT_TIMESTAMP = re.compile(r"'(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2}))'")


def from_draft_cql(text: str) -> str:
    """The draft's CQL text (``filter-lang=cql-text``, as GDAL writes it) as CQL2 text: the draft compared dates
    with plain strings (GDAL writes ``'2023-11-01T'``), CQL2 with ``DATE('2023-11-01')`` and ``TIMESTAMP(...)``."""
    text = _DRAFT_TIMESTAMP.sub(r"TIMESTAMP('\1')", text)
    return _DRAFT_DATE.sub(r"DATE('\1')", text)


def parse_bbox(text: str, crs: OutputCrs) -> Area:
    """Four numbers in ``crs``'s axis order as an :class:`Area`."""
    parts = text.split(",")
    if len(parts) == 6:
        raise InvalidParameter("bbox with 6 numbers (heights) is not supported: give 4", parameter="bbox")
    if len(parts) != 4:
        raise InvalidParameter(
            "bbox must be 4 numbers: lower corner, upper corner (CRS84: minlon,minlat,maxlon,maxlat)", parameter="bbox"
        )
    values = [parse_number(p, "bbox") for p in parts]
    if values[0] > values[2] or values[1] > values[3]:
        raise InvalidParameter(
            "bbox is inverted or crosses the antimeridian: the lower corner must come first", parameter="bbox"
        )
    area = bbox_area(values, crs)
    minx, miny, maxx, maxy = area.envelope
    if crs.geographic and not (-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90):
        raise InvalidParameter(
            "bbox: longitudes must be within -180..180 and latitudes within -90..90 (check the axis order of bbox-crs)",
            parameter="bbox",
        )
    return area


# -- documents -------------------------------------------------------------------------------------

#: builds an absolute URL: (resource, path values and query parameters) -> URL
Url = Callable[..., str]


def _title(layer: Layer, lang: str) -> str:
    return layer.title(lang)


def landing(url: Url, lang: str, title: str, description: str) -> dict:
    return {
        "title": title,
        "description": description,
        "links": [
            {"rel": "self", "type": "application/json", "title": "this document", "href": url(LANDING, f="json")},
            {"rel": "alternate", "type": "text/html", "title": "this document as HTML", "href": url(LANDING, f="html")},
            {"rel": "service-desc", "type": OPENAPI_JSON, "title": "the API definition", "href": url(API)},
            {"rel": "service-doc", "type": "text/html", "title": "the API documentation", "href": url(API, f="html")},
            {
                "rel": "conformance",
                "type": "application/json",
                "title": "the conformance classes implemented",
                "href": url(CONFORMANCE),
            },
            {"rel": "data", "type": "application/json", "title": "the collections", "href": url(COLLECTIONS)},
        ],
    }


def collection(
    layer: Layer,
    summary: LayerSummary,
    url: Url,
    lang: str,
    crs_list: Sequence[OutputCrs],
    temporal: tuple[str, str] | None,
    visibility: Visibility,
) -> dict:
    """A collection's document: titles, extents (CRS84), CRSs and links."""
    cid = layer.id
    extent: dict[str, Any] = {}
    if summary.extent:
        extent["spatial"] = {"bbox": [list(summary.extent)], "crs": CRS84}
    name = date_field(layer, visibility)
    if name is not None:
        interval = [f"{temporal[0]}T00:00:00Z", f"{temporal[1]}T23:59:59Z"] if temporal else [None, None]
        extent["temporal"] = {"interval": [interval], "trs": TRS}
    out: dict[str, Any] = {
        "id": cid,
        "title": _title(layer, lang),
        "description": layer.note(lang) if layer.note else _title(layer, lang),
        "itemType": "feature",
        "crs": [c.uri for c in crs_list],
        "storageCrs": CRS84,
        "extent": extent,
        "numberOfFeatures": summary.count,
        "links": [
            {
                "rel": "self",
                "type": "application/json",
                "title": "this collection",
                "href": url(COLLECTION, cid, f="json"),
            },
            {
                "rel": "alternate",
                "type": "text/html",
                "title": "this collection as HTML",
                "href": url(COLLECTION, cid, f="html"),
            },
            {"rel": "items", "type": GEOJSON, "title": "the features", "href": url(ITEMS, cid, f="json")},
            {"rel": "items", "type": "text/html", "title": "the features as HTML", "href": url(ITEMS, cid, f="html")},
            {
                "rel": "http://www.opengis.net/def/rel/ogc/1.0/queryables",
                "type": "application/schema+json",
                "title": "what the features can be filtered by",
                "href": url(QUERYABLES, cid),
            },
        ],
    }
    if name is not None:
        out["dateField"] = name
    return out


def collections(
    registry: Registry,
    summaries: Mapping[str, LayerSummary],
    url: Url,
    lang: str,
    crs_list,
    temporal,
    visibility: Visibility,
) -> dict:
    """Every layer of the registry as a collection; ``temporal(layer)`` gives its first and last date."""
    return {
        "links": [
            {"rel": "self", "type": "application/json", "title": "the collections", "href": url(COLLECTIONS, f="json")},
            {
                "rel": "alternate",
                "type": "text/html",
                "title": "the collections as HTML",
                "href": url(COLLECTIONS, f="html"),
            },
        ],
        "collections": [
            collection(layer, summaries[layer.id], url, lang, crs_list, temporal(layer), visibility)
            for layer in registry
        ],
        "crs": [c.uri for c in crs_list],
    }


_JSON_TYPES = {
    "string": "string",
    "integer": "integer",
    "number": "number",
    "boolean": "boolean",
    "date": "string",
    "datetime": "string",
}


def queryables(layer: Layer, url: Url, visibility: Visibility) -> dict:
    """The JSON Schema of what ``layer``'s features can be filtered by (the fields the caller may see)."""
    return cql.queryables(layer, visibility=visibility, id=url(QUERYABLES, layer.id))


def feature_members(text: bytes, crs: OutputCrs) -> dict:
    """A stored GeoJSON Feature text as a dict, its geometry in ``crs``."""
    feature = orjson.loads(text)
    if crs.uri != CRS84 and feature.get("geometry") is not None:
        geom = shapely.from_geojson(orjson.dumps(feature["geometry"]))
        feature["geometry"] = orjson.loads(shapely.to_geojson(to_output(np.array([geom]), crs)[0]))
    return feature


def feature_texts(texts: Sequence[bytes], crs: OutputCrs) -> list[bytes]:
    """Stored Feature texts with their geometries in ``crs`` (the stored texts themselves for CRS84)."""
    if crs.uri == CRS84 or not texts:
        return list(texts)
    features = [orjson.loads(t) for t in texts]
    present = [i for i, f in enumerate(features) if f.get("geometry") is not None]
    if present:
        geoms = shapely.from_geojson([orjson.dumps(features[i]["geometry"]) for i in present])
        for i, text in zip(present, shapely.to_geojson(to_output(geoms, crs)), strict=True):
            features[i]["geometry"] = orjson.Fragment(text.encode())
    return [orjson.dumps(f) for f in features]


def items_links(url: Url, layer_id: str, req: ItemsRequest, page: Page, fmt: str) -> list[dict]:
    """self, alternate, next and prev (offset paging, every other parameter kept) and the collection."""
    media = GEOJSON if fmt == "json" else "text/html"
    other, other_media = ("html", "text/html") if fmt == "json" else ("json", GEOJSON)

    def at(offset: int, f: str) -> str:
        return url(ITEMS, layer_id, **req.kept, limit=str(req.limit), offset=str(offset), f=f)

    links = [
        {"rel": "self", "type": media, "title": "this page", "href": at(req.offset, fmt)},
        {
            "rel": "alternate",
            "type": other_media,
            "title": "this page as " + other.upper(),
            "href": at(req.offset, other),
        },
    ]
    returned = len(page.features)
    if page.more or req.offset + returned < page.matched:
        links.append({"rel": "next", "type": media, "title": "the next page", "href": at(req.offset + req.limit, fmt)})
    if req.offset > 0:
        links.append(
            {
                "rel": "prev",
                "type": media,
                "title": "the previous page",
                "href": at(max(0, req.offset - req.limit), fmt),
            }
        )
    links.append(
        {"rel": "collection", "type": "application/json", "title": "the collection", "href": url(COLLECTION, layer_id)}
    )
    return links


def timestamp() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def items_body(features: Sequence[bytes], page: Page, links: list[dict]) -> bytes:
    """The FeatureCollection of a page (numberMatched is left out where it is only the database's estimate)."""
    members: dict[str, Any] = {"timeStamp": timestamp(), "numberReturned": len(features)}
    if not page.estimated:
        members["numberMatched"] = page.matched
    members["links"] = links
    return encode.collection(list(features), **members)


class TemporalExtents:
    """Each layer's first and last date, computed once per layer version (walking the layer by fid)."""

    PAGE = 10_000

    def __init__(self):
        self._cache: dict[tuple[str, str, int], tuple[str, str] | None] = {}
        self._lock = threading.Lock()

    def __call__(self, reader: FeatureReader, layer: Layer, visibility: Visibility, version: int):
        name = date_field(layer, visibility)
        if name is None:
            return None
        key = (layer.id, name, version)
        with self._lock:
            if key in self._cache:
                return self._cache[key]
        low = high = None
        after = None
        while True:
            page = reader.select(layer.id, Query(after=after), 0, self.PAGE, "internal")
            for text in page.features:
                value = orjson.loads(text)["properties"].get(name)
                if value:
                    low = value if low is None or value < low else low
                    high = value if high is None or value > high else high
            if not page.more or not page.ids:
                break
            after = page.ids[-1]
        span = None if low is None else (low, high)
        with self._lock:
            if len(self._cache) > 256:
                self._cache.clear()
            self._cache[key] = span
        return span


# -- OpenAPI ---------------------------------------------------------------------------------------

_EXCEPTION = {
    "type": "object",
    "required": ["code"],
    "properties": {
        "code": {"type": "string"},
        "description": {"type": "string"},
        "parameter": {"type": "string", "nullable": True},
    },
}
_LINK = {
    "type": "object",
    "required": ["href"],
    "properties": {
        "href": {"type": "string"},
        "rel": {"type": "string"},
        "type": {"type": "string"},
        "title": {"type": "string"},
    },
}
_POSITION = {"type": "array", "minItems": 2, "items": {"type": "number"}}
_GEOMETRY = {
    "type": "object",
    "nullable": True,
    "required": ["type"],
    "properties": {
        "type": {
            "type": "string",
            "enum": ["Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon"],
        },
        "coordinates": {
            "description": "a position, or arrays of positions nested as the geometry type says",
            "oneOf": [
                {"$ref": "#/components/schemas/position"},
                {"type": "array", "items": {"$ref": "#/components/schemas/position"}},
                {"type": "array", "items": {"type": "array", "items": {"$ref": "#/components/schemas/position"}}},
                {
                    "type": "array",
                    "items": {
                        "type": "array",
                        "items": {"type": "array", "items": {"$ref": "#/components/schemas/position"}},
                    },
                },
            ],
        },
    },
}
_FEATURE = {
    "type": "object",
    "required": ["type", "geometry", "properties"],
    "properties": {
        "type": {"type": "string", "enum": ["Feature"]},
        "id": {"type": "integer"},
        "geometry": {"$ref": "#/components/schemas/geometry"},
        "properties": {"type": "object", "nullable": True},
        "links": {"type": "array", "items": {"$ref": "#/components/schemas/link"}},
    },
}
_FEATURES = {
    "type": "object",
    "required": ["type", "features"],
    "properties": {
        "type": {"type": "string", "enum": ["FeatureCollection"]},
        "features": {"type": "array", "items": {"$ref": "#/components/schemas/feature"}},
        "links": {"type": "array", "items": {"$ref": "#/components/schemas/link"}},
        "timeStamp": {"type": "string", "format": "date-time"},
        "numberMatched": {"type": "integer", "minimum": 0},
        "numberReturned": {"type": "integer", "minimum": 0},
    },
}
_LINKS_DOC = {
    "type": "object",
    "required": ["links"],
    "properties": {"links": {"type": "array", "items": {"$ref": "#/components/schemas/link"}}},
    "additionalProperties": True,
}
_COLLECTION = {
    "type": "object",
    "required": ["id", "links"],
    "properties": {
        "id": {"type": "string"},
        "title": {"type": "string"},
        "description": {"type": "string"},
        "itemType": {"type": "string"},
        "crs": {"type": "array", "items": {"type": "string"}},
        "storageCrs": {"type": "string"},
        "extent": {"type": "object"},
        "links": {"type": "array", "items": {"$ref": "#/components/schemas/link"}},
    },
}
_COLLECTIONS = {
    "type": "object",
    "required": ["links", "collections"],
    "properties": {
        "links": {"type": "array", "items": {"$ref": "#/components/schemas/link"}},
        "collections": {"type": "array", "items": {"$ref": "#/components/schemas/collection"}},
    },
}
_CONFORMANCE = {
    "type": "object",
    "required": ["conformsTo"],
    "properties": {"conformsTo": {"type": "array", "items": {"type": "string"}}},
}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/parameters/{name}"}


def _answers(schema: str, media: str = "application/json", *, errors: tuple[int, ...] = (400,)) -> dict:
    out = {
        "200": {
            "description": "the answer",
            "content": {
                media: {"schema": {"$ref": f"#/components/schemas/{schema}"}},
                "text/html": {"schema": {"type": "string"}},
            },
        }
    }
    for status in errors:
        out[str(status)] = {"$ref": f"#/components/responses/{status}"}
    return out


def _property_parameter(spec, lang: str) -> dict:
    schema: dict[str, Any] = {"type": _JSON_TYPES[spec.type]}
    if spec.type in ("date", "datetime"):
        schema["format"] = "date" if spec.type == "date" else "date-time"
    if spec.values is not None:
        schema["enum"] = [c.value for c in spec.values]
    return {
        "name": spec.name,
        "in": "query",
        "required": False,
        "description": f"features whose {spec.name} ({spec.label(lang)}) equals this value",
        "schema": schema,
    }


def openapi(registry: Registry, server: str, lang: str, visibility: Visibility, title: str, version: str) -> dict:
    """The OpenAPI 3.0 document of the service, generated from :data:`PARAMETERS` and the layers' fields; every
    schema is inline (no reference leaves the document)."""
    shared = {p.name: p.openapi() for p in PARAMETERS if p.where == "path" or any(p in parameters(r) for r in ALL)}
    paths: dict[str, Any] = {
        "/": {
            "get": {
                "summary": "landing page",
                "operationId": "getLandingPage",
                "tags": ["Capabilities"],
                "parameters": [_ref(p.name) for p in parameters(LANDING)],
                "responses": _answers("links"),
            }
        },
        "/conformance": {
            "get": {
                "summary": "the conformance classes implemented",
                "operationId": "getConformance",
                "tags": ["Capabilities"],
                "parameters": [_ref(p.name) for p in parameters(CONFORMANCE)],
                "responses": _answers("conformance"),
            }
        },
        "/api": {
            "get": {
                "summary": "this API definition (f=html: as a page)",
                "operationId": "getAPI",
                "tags": ["Capabilities"],
                "parameters": [_ref(p.name) for p in parameters(API)],
                "responses": {
                    "200": {
                        "description": "the OpenAPI document",
                        "content": {
                            OPENAPI_JSON: {"schema": {"type": "object"}},
                            "text/html": {"schema": {"type": "string"}},
                        },
                    },
                    "400": {"$ref": "#/components/responses/400"},
                },
            }
        },
        "/collections": {
            "get": {
                "summary": "the collections (layers)",
                "operationId": "getCollections",
                "tags": ["Capabilities"],
                "parameters": [_ref(p.name) for p in parameters(COLLECTIONS)],
                "responses": _answers("collections"),
            }
        },
    }
    for layer in registry:
        cid = layer.id
        name = layer.title(lang)
        tag = [cid]
        paths[f"/collections/{cid}"] = {
            "get": {
                "summary": f"{name}: the collection",
                "operationId": f"describe_{cid}",
                "tags": tag,
                "parameters": [_ref(p.name) for p in parameters(COLLECTION)],
                "responses": _answers("collection", errors=(400, 404)),
            }
        }
        paths[f"/collections/{cid}/items"] = {
            "get": {
                "summary": f"{name}: the features",
                "operationId": f"getFeatures_{cid}",
                "tags": tag,
                "parameters": [_ref(p.name) for p in parameters(ITEMS)]
                + [_property_parameter(f, lang) for f in property_fields(layer, visibility)],
                "responses": _answers("featureCollection", GEOJSON, errors=(400, 404)),
            }
        }
        paths[f"/collections/{cid}/items/{{featureId}}"] = {
            "get": {
                "summary": f"{name}: one feature",
                "operationId": f"getFeature_{cid}",
                "tags": tag,
                "parameters": [_ref("featureId"), *[_ref(p.name) for p in parameters(ITEM)]],
                "responses": _answers("feature", GEOJSON, errors=(400, 404)),
            }
        }
        paths[f"/collections/{cid}/queryables"] = {
            "get": {
                "summary": f"{name}: what the features can be filtered by",
                "operationId": f"getQueryables_{cid}",
                "tags": tag,
                "parameters": [_ref(p.name) for p in parameters(QUERYABLES)],
                "responses": {
                    "200": {
                        "description": "a JSON Schema of the queryables",
                        "content": {
                            "application/schema+json": {"schema": {"type": "object"}},
                            "text/html": {"schema": {"type": "string"}},
                        },
                    },
                    "400": {"$ref": "#/components/responses/400"},
                    "404": {"$ref": "#/components/responses/404"},
                },
            }
        }
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/exception"}}}
    return {
        "openapi": "3.0.3",
        "info": {
            "title": title,
            "version": version,
            "description": "OGC API - Features (Part 1 Core, Part 2 CRS, Part 3 Filtering) of the layers. "
            "Anonymous callers see public fields only; a token (Authorization: Bearer ...) gives its role's view.",
        },
        "servers": [{"url": server}],
        "tags": [
            {"name": "Capabilities"},
            *({"name": layer.id, "description": layer.title(lang)} for layer in registry),
        ],
        "paths": paths,
        "components": {
            "parameters": shared,
            "schemas": {
                "exception": _EXCEPTION,
                "link": _LINK,
                "links": _LINKS_DOC,
                "position": _POSITION,
                "geometry": _GEOMETRY,
                "feature": _FEATURE,
                "featureCollection": _FEATURES,
                "collection": _COLLECTION,
                "collections": _COLLECTIONS,
                "conformance": _CONFORMANCE,
            },
            "responses": {
                "400": {"description": "a parameter is not valid (the exception names it)", "content": error},
                "404": {"description": "no such collection or feature", "content": error},
            },
            "securitySchemes": {"token": {"type": "http", "scheme": "bearer"}},
        },
    }


#: OGC API exception codes for the app's error codes
EXCEPTION_CODES = {
    "invalid_parameter": "InvalidParameterValue",
    "not_found": "NotFound",
    "unauthorized": "Unauthorized",
    "forbidden": "Forbidden",
}


def exception(code: str, message: str, parameter: str | None, status: int) -> dict:
    """OGC's exception JSON (as pygeoapi writes it), with the parameter named and the app's own error shape."""
    ogc_code = EXCEPTION_CODES.get(code, "ServerError" if status >= 500 else "InvalidRequest")
    return {
        "code": ogc_code,
        "description": message,
        "parameter": parameter,
        "error": {"code": code, "message": message, "parameter": parameter},
    }
