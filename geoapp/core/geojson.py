"""Read JSON documents and GeoJSON geometries (RFC 7946) strictly, or refuse them saying why.

Flask-free: the API's request bodies, the ``within=`` query parameter and later the importers read
input through these functions, so that every front refuses the same things with the same words.

Strict means: exact type names (``Point``, not ``point``), JSON numbers for coordinates (not text,
not booleans), closed rings (an unclosed ring is refused, not closed silently), a cap on vertices
checked before shapely builds anything, and longitude/latitude in degrees (WGS84, the only CRS of
RFC 7946).
"""

from __future__ import annotations

import math
import re
import reprlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import orjson
import shapely
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from geoapp.errors import GeoappError, InvalidFeature, InvalidParameter

GEOMETRY_TYPES = ("Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon")
AREA_TYPES = ("Polygon", "MultiPolygon")

#: vertices one geometry may have: a district's hoarding or road has hundreds, not a data set's worth
MAX_VERTICES = 50_000

#: how deeply a JSON document may nest; a feature needs 6 (Feature > geometry > MultiPolygon's 4 arrays).
#: Python code that walks a value recursively (repr, str, json.dumps) fails near 1,000 levels.
MAX_JSON_DEPTH = 32

# how many array levels lie above a position in each type's coordinates
_POSITION_DEPTH = {"Point": 0, "MultiPoint": 1, "LineString": 1, "MultiLineString": 2, "Polygon": 2, "MultiPolygon": 3}
_OTHER_GEOJSON = {"Feature", "FeatureCollection", "GeometryCollection"}

# a JSON string in a valid document (escapes included), to blank out brackets inside text
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def read_json(data: str | bytes, *, max_depth: int = MAX_JSON_DEPTH, parameter: str = "body") -> Any:
    """Parse a JSON document, or raise :class:`InvalidParameter` naming ``parameter``.

    Refuses what Python's own parser lets through and later fails on: nesting deeper than
    ``max_depth`` (a ``RecursionError`` in code that walks the value), lone UTF-16 surrogates
    such as ``"\\ud800"`` (text that cannot be encoded or stored), ``NaN``, ``Infinity`` and
    numbers too large for a double. orjson refuses all but moderate depth itself.

    Parameters
    ----------
    data : str or bytes
        The document; bytes must be UTF-8 (RFC 8259).
    max_depth : int
        How many arrays and objects may nest inside one another.
    parameter : str
        The name the error gives the input (``body``, ``within``).

    Returns
    -------
    The parsed value: dict, list, str, int, float, bool or None.
    """
    if isinstance(data, str):
        try:
            data = data.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidParameter(_SURROGATE.format(parameter=parameter), parameter=parameter) from None
    if not data.strip():
        raise InvalidParameter(f"{parameter} is empty; send a JSON document", parameter=parameter)
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        reason = str(exc)
        if "depth limit" in reason:
            raise _too_deep(parameter, max_depth) from None
        if "surrogate" in reason:
            raise InvalidParameter(_SURROGATE.format(parameter=parameter), parameter=parameter) from None
        raise InvalidParameter(f"{parameter} is not valid JSON: {reason}", parameter=parameter) from None
    if isinstance(value, dict | list) and _depth(data) > max_depth:
        raise _too_deep(parameter, max_depth)
    return value


_SURROGATE = (
    "{parameter} holds a lone UTF-16 surrogate (\\ud800 to \\udfff) or text that is not UTF-8; "
    "send text as valid UTF-8 or as escaped pairs"
)


def _too_deep(parameter: str, max_depth: int) -> InvalidParameter:
    return InvalidParameter(f"{parameter} nests deeper than {max_depth} levels of arrays and objects", parameter)


def _depth(document: bytes) -> int:
    """How deeply the arrays and objects of a valid JSON document nest, counted at C speed."""
    brackets = _JSON_STRING.sub(b"", document).translate(None, _NOT_BRACKETS)
    codes = np.frombuffer(brackets, dtype=np.uint8)
    steps = (codes == ord("[")).astype(np.int32) + (codes == ord("{")) - (codes == ord("]")) - (codes == ord("}"))
    return int(np.cumsum(steps).max(initial=0))


def parse_geometry(value: Any, *, types: Sequence[str] = GEOMETRY_TYPES) -> BaseGeometry:
    """Read a GeoJSON geometry object (lon/lat, RFC 7946) as a 2D shapely geometry.

    Parameters
    ----------
    value : Any
        The parsed JSON value, e.g. a request body's ``geometry`` member.
    types : sequence of str
        The geometry types accepted; the error names them.

    Returns
    -------
    shapely.geometry.base.BaseGeometry
        The geometry; a third coordinate (height) is dropped.

    Raises
    ------
    InvalidFeature
        With ``parameter="geometry"`` and a message saying what is wrong and where, e.g.
        ``coordinates[0][2]: a position must be [longitude, latitude] numbers``.

    Notes
    -----
    Validity (self-intersections) is not checked here: the store checks it for features, with
    shapely's reason, and :func:`read_area` for query polygons.
    """
    return _geometry(value, tuple(types), "geometry", InvalidFeature)


def read_area(text: str | bytes, *, parameter: str = "within") -> BaseGeometry:
    """Read a GeoJSON Polygon or MultiPolygon given as text (the ``within=`` query parameter).

    Parameters
    ----------
    text : str or bytes
        A GeoJSON geometry document, e.g. ``{"type":"Polygon","coordinates":[[...]]}``.
    parameter : str
        The parameter the errors name.

    Returns
    -------
    shapely.geometry.Polygon or shapely.geometry.MultiPolygon
        A valid polygon in lon/lat.

    Raises
    ------
    InvalidParameter
        Naming ``parameter``, for malformed JSON, another type, bad coordinates or an invalid polygon.
    """
    geometry = _geometry(read_json(text, parameter=parameter), AREA_TYPES, parameter, InvalidParameter)
    if not geometry.is_valid:
        raise InvalidParameter(
            f"{parameter}: the polygon is not valid ({shapely.is_valid_reason(geometry)})", parameter=parameter
        )
    return geometry


def _geometry(value: Any, types: tuple[str, ...], parameter: str, error: type[GeoappError]) -> BaseGeometry:
    def refuse(message: str) -> GeoappError:
        return error(f"{parameter}: {message}", parameter=parameter)

    allowed = ", ".join(types)
    if not isinstance(value, dict):
        raise refuse(f"must be a GeoJSON geometry object with type and coordinates; types: {allowed}")
    kind = value.get("type")
    if not isinstance(kind, str):
        raise refuse(f"needs a type, one of: {allowed}")
    if kind not in types:
        raise refuse(_wrong_type(kind, types))
    if "crs" in value:
        raise refuse("crs is not part of GeoJSON (RFC 7946): coordinates are always WGS84 longitude, latitude")
    if "coordinates" not in value:
        raise refuse(f"a {kind} needs coordinates")
    coordinates = value["coordinates"]
    try:
        vertices = _count(coordinates, _POSITION_DEPTH[kind], kind, "coordinates")
        if vertices > MAX_VERTICES:
            raise _Refused(f"has {vertices} vertices; a geometry may have at most {MAX_VERTICES} (MAX_VERTICES)")
        clean = _clean(coordinates, kind)
    except _Refused as exc:
        raise refuse(str(exc)) from None
    return shape({"type": kind, "coordinates": clean})


def _wrong_type(kind: str, types: tuple[str, ...]) -> str:
    allowed = ", ".join(types)
    exact = {t.lower(): t for t in (*GEOMETRY_TYPES, *_OTHER_GEOJSON)}.get(kind.lower())
    if exact in types:
        return f"type {kind!r} is not a GeoJSON type name (names are case-sensitive): write {exact!r}"
    if exact in ("Feature", "FeatureCollection"):
        return f"must be a geometry object, not a {exact}; types: {allowed}"
    if exact is not None:
        return f"{exact} is not accepted here; types: {allowed}"
    return f"unknown geometry type {kind!r}; types: {allowed}"


class _Refused(ValueError):
    """Coordinates that do not fit their type; the message says where."""


def _count(node: Any, depth: int, kind: str, where: str) -> int:
    """Check the arrays above the positions and count the positions, without visiting them."""
    if depth == 0:
        return 1
    if not isinstance(node, list | tuple):
        raise _Refused(f"{where} must be an array ({_SHAPES[kind]})")
    if not node:
        raise _Refused(f"{where} is empty; a {kind} needs {_SHAPES[kind]}")
    if depth == 1:
        return len(node)
    return sum(_count(child, depth - 1, kind, f"{where}[{i}]") for i, child in enumerate(node))


_SHAPES = {
    "Point": "[longitude, latitude]",
    "MultiPoint": "an array of positions",
    "LineString": "an array of 2 or more positions",
    "MultiLineString": "an array of lines, each an array of 2 or more positions",
    "Polygon": "an array of closed rings, each 4 or more positions",
    "MultiPolygon": "an array of polygons, each an array of closed rings",
}


def _clean(coordinates: Any, kind: str) -> Any:
    """The coordinates with each position checked and made 2D; lines and rings checked for their rules."""
    if kind == "Point":
        return _position(coordinates, "coordinates")
    if kind == "MultiPoint":
        return _positions(coordinates, "coordinates")
    if kind == "LineString":
        return _line(coordinates, "coordinates")
    if kind == "MultiLineString":
        return [_line(line, f"coordinates[{i}]") for i, line in enumerate(coordinates)]
    if kind == "Polygon":
        return _polygon(coordinates, "coordinates")
    return [_polygon(polygon, f"coordinates[{i}]") for i, polygon in enumerate(coordinates)]


def _line(positions: list, where: str) -> list:
    clean = _positions(positions, where)
    if len(clean) < 2:
        raise _Refused(f"{where}: a line needs 2 or more positions, not {len(clean)}")
    return clean


def _polygon(rings: list, where: str) -> list:
    out = []
    for i, ring in enumerate(rings):
        at = f"{where}[{i}]"
        clean = _positions(ring, at)
        if len(clean) < 4:
            raise _Refused(f"{at}: a ring needs 4 or more positions (the last repeats the first), not {len(clean)}")
        if list(ring[0]) != list(ring[-1]):
            raise _Refused(f"{at}: the ring is not closed; its last position must repeat its first")
        out.append(clean)
    return out


def _positions(positions: list, where: str) -> list:
    return [_position(p, f"{where}[{i}]") for i, p in enumerate(positions)]


def _position(position: Any, where: str) -> tuple[float, float]:
    if (
        type(position) not in (list, tuple)
        or not 2 <= len(position) <= 3
        or any(type(c) not in (int, float) for c in position)  # not bool, not text
    ):
        raise _Refused(
            f"{where}: a position must be [longitude, latitude] (a height may follow) as JSON numbers,"
            f" not text or true/false; got {reprlib.repr(position)}"
        )
    lon, lat = position[0], position[1]
    # comparisons with NaN are false, so these also refuse NaN and infinities
    if not -180 <= lon <= 180:
        raise _Refused(f"{where}: longitude {lon!r} is outside -180..180 (WGS84 degrees)")
    if not -90 <= lat <= 90:
        raise _Refused(f"{where}: latitude {lat!r} is outside -90..90 (WGS84 degrees)")
    if len(position) == 3 and isinstance(position[2], float) and not math.isfinite(position[2]):
        raise _Refused(f"{where}: height {position[2]!r} is not a finite number")
    return float(lon), float(lat)
