"""Turn request parameters (strings) into a :class:`~geoapp.store.base.Query`, or refuse them clearly.

Flask-free, so that every web front (the JSON API now, OGC API - Features later) reads
parameters the same way. Each error names the parameter and what it accepts.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from shapely.geometry.base import BaseGeometry

from geoapp.core.geojson import read_area
from geoapp.core.layers import Layer
from geoapp.errors import InvalidParameter
from geoapp.store.base import FeatureReader, Query

DEFAULT_LIMIT = 100
MAX_RADIUS_M = 50_000  # a radius search covers a district, not a province
MAX_K = 1000
MAX_LIMIT = 10_000
SPATIAL_PARAMETERS = ("bbox", "near", "radius", "nearest", "k", "within", "limit", "offset", "after")


@dataclass(frozen=True)
class FeaturesRequest:
    query: Query
    limit: int
    offset: int
    depends: tuple[str, ...] = ()  # other layers the answer depends on (within=<layer>/<id>)


def features_request(
    reader: FeatureReader, layer: Layer, args: Mapping[str, Sequence[str]], *, visibility: str
) -> FeaturesRequest:
    """Read the parameters of a features request for ``layer``; ``args`` maps names to given values."""
    fields = {f.name: f for f in layer.visible_fields(visibility == "internal")}
    allowed = [*SPATIAL_PARAMETERS, *fields]
    for name, values in args.items():
        if name not in allowed:
            raise InvalidParameter(f"unknown parameter {name!r}; allowed: {', '.join(allowed)}", parameter=name)
        if len(values) > 1:
            raise InvalidParameter(f"{name} given {len(values)} times; give it once", parameter=name)
    one = {name: values[0] for name, values in args.items()}

    bbox = parse_bbox(one["bbox"]) if "bbox" in one else None
    near = nearest = None
    if "near" in one or "radius" in one:
        for need in ("near", "radius"):
            if need not in one:
                raise InvalidParameter("near=lon,lat needs radius=<metres> and radius needs near", parameter=need)
        radius = parse_number(one["radius"], "radius")
        if not 0 < radius <= MAX_RADIUS_M:
            raise InvalidParameter(f"radius must be in metres, > 0 and <= {MAX_RADIUS_M}", parameter="radius")
        near = (*parse_lonlat(one["near"], "near"), radius)
    if "nearest" in one or "k" in one:
        if "nearest" not in one:
            raise InvalidParameter("k needs nearest=lon,lat", parameter="k")
        k = parse_int(one.get("k", "10"), "k")
        if not 1 <= k <= MAX_K:
            raise InvalidParameter(f"k must be a whole number from 1 to {MAX_K}", parameter="k")
        nearest = (*parse_lonlat(one["nearest"], "nearest"), k)
    if near and nearest:
        raise InvalidParameter("give either near with radius, or nearest with k, not both", parameter="nearest")
    within, depends = parse_within(reader, list(reader.versions()), one["within"]) if "within" in one else (None, ())

    filters = {}
    for name, spec in fields.items():
        if name not in one:
            continue
        raw = one[name].split(",") if spec.values is not None else [one[name]]
        try:
            filters[name] = [spec.coerce(v) for v in raw]
        except ValueError as exc:
            raise InvalidParameter(f"{name} {exc}", parameter=name) from None

    limit = parse_int(one.get("limit", str(DEFAULT_LIMIT)), "limit")
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidParameter(f"limit must be a whole number from 1 to {MAX_LIMIT}", parameter="limit")
    offset = parse_int(one.get("offset", "0"), "offset")
    if offset < 0:
        raise InvalidParameter("offset must be a whole number >= 0", parameter="offset")
    after = None
    if "after" in one:  # keyset paging: the next page starts after the last fid seen, however the layer changed
        after = parse_int(one["after"], "after")
        if after < 0:
            raise InvalidParameter("after must be a feature id (a whole number >= 0)", parameter="after")
    query = Query(bbox=bbox, near=near, nearest=nearest, within=within, filters=filters, after=after)
    return FeaturesRequest(query, limit, offset, depends)


def parse_number(text: str, parameter: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise InvalidParameter(f"{parameter} must be a number, not {text!r}", parameter=parameter) from None
    if not math.isfinite(value):
        raise InvalidParameter(f"{parameter} must be a finite number", parameter=parameter)
    return value


def parse_int(text: str, parameter: str) -> int:
    """A whole number written in ASCII digits (``int()`` would also take "١٢", "+7" and "1_000")."""
    if not re.fullmatch(r"-?[0-9]{1,19}", text, re.ASCII):
        raise InvalidParameter(f"{parameter} must be a whole number, not {text[:40]!r}", parameter=parameter)
    return int(text)


def _check_lonlat(lon: float, lat: float, parameter: str) -> None:
    if not -180 <= lon <= 180:
        raise InvalidParameter(f"{parameter}: longitude {lon:g} is outside -180..180", parameter=parameter)
    if not -90 <= lat <= 90:
        raise InvalidParameter(f"{parameter}: latitude {lat:g} is outside -90..90", parameter=parameter)


def parse_lonlat(text: str, parameter: str) -> tuple[float, float]:
    parts = text.split(",")
    if len(parts) != 2:
        raise InvalidParameter(f"{parameter} must be lon,lat in degrees (WGS84)", parameter=parameter)
    lon, lat = (parse_number(p, parameter) for p in parts)
    _check_lonlat(lon, lat, parameter)
    return lon, lat


def parse_bbox(text: str) -> tuple[float, float, float, float]:
    parts = text.split(",")
    if len(parts) != 4:
        raise InvalidParameter("bbox must be minlon,minlat,maxlon,maxlat in degrees (WGS84)", parameter="bbox")
    minx, miny, maxx, maxy = (parse_number(p, "bbox") for p in parts)
    _check_lonlat(minx, miny, "bbox")
    _check_lonlat(maxx, maxy, "bbox")
    if minx > maxx or miny > maxy:
        raise InvalidParameter(
            "bbox is inverted: it must be minlon,minlat,maxlon,maxlat with min <= max", parameter="bbox"
        )
    return minx, miny, maxx, maxy


def parse_within(reader: FeatureReader, layer_ids: Sequence[str], text: str) -> tuple[BaseGeometry, tuple[str, ...]]:
    """``<layer>/<feature id>`` (e.g. a grid cell) or a GeoJSON polygon in lon/lat; and the layer it came from."""
    if text.lstrip().startswith("{"):
        return read_area(text, parameter="within"), ()
    layer_id, _, fid_text = text.partition("/")
    if layer_id not in layer_ids:
        raise InvalidParameter(
            f"within: unknown layer {layer_id!r}; layers: {', '.join(layer_ids)}", parameter="within"
        )
    fid = parse_int(fid_text, "within")
    feature = reader.get(layer_id, fid) if 0 < fid < 2**63 else None
    if feature is None:
        raise InvalidParameter(f"within: layer {layer_id} has no feature {fid}", parameter="within")
    return feature.geometry, (layer_id,)


MAX_FID = 2**63 - 1  # SQLite's largest row id


def parse_fid(text: str) -> int | None:
    """A feature id from a URL, or None when it cannot name a feature (the caller answers 404).

    Only ASCII digits without leading zeros, 1 to 2**63-1: ``str.isdigit`` and ``int`` also accept
    Arabic-Indic (١٢) and full-width (１２) digits, which would give one feature several URLs and
    ETags that are not ASCII.
    """
    if not (text.isascii() and text.isdigit()) or len(text) > len(str(MAX_FID)) or text.startswith("0"):
        return None
    fid = int(text)
    return fid if fid <= MAX_FID else None
