"""GeoJSON text of features and geometries, as every response writes it. Flask-free.

Coordinates are rounded to :data:`COORD_DECIMALS` (about 1 cm), properties are serialised with
orjson (CJK as UTF-8, not escaped), missing values as ``null``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import orjson
import shapely

COORD_DECIMALS = 7  # about 1 cm; keeps responses short


def geometries(geoms) -> np.ndarray:
    """GeoJSON text of a geometry or an array of geometries."""
    return shapely.to_geojson(shapely.transform(geoms, lambda xy: np.round(xy, COORD_DECIMALS)))


def open_feature(fid: int, version: int, geometry: str, properties: dict[str, Any]) -> bytes:
    """A GeoJSON Feature without the closing braces of ``properties`` and of the feature (see :func:`close`)."""
    props = orjson.dumps(properties)
    return b'{"type":"Feature","id":%d,"version":%d,"geometry":%s,"properties":%s' % (
        fid,
        version,
        geometry.encode(),
        props[:-1],
    )


def close(opened: bytes, distance: float | None = None) -> bytes:
    """Close a feature from :func:`open_feature`, adding ``distance_m`` (metres) when one was measured."""
    if distance is None:
        return opened + b"}}"
    sep = b"" if opened.endswith(b"{") else b","
    return opened + sep + b'"distance_m":%.2f}}' % distance


def feature(fid: int, version: int, geometry, properties: dict[str, Any]) -> bytes:
    """One GeoJSON Feature."""
    return close(open_feature(fid, version, str(geometries(geometry)), properties))


def collection(features: Sequence[bytes], **members: Any) -> bytes:
    """A FeatureCollection of Feature texts, with further top-level members (numberMatched, links ...)."""
    extra = orjson.dumps(members)[1:] if members else b"}"
    return b'{"type":"FeatureCollection","features":[%s]%s%s' % (
        b",".join(features),
        b"," if members else b"",
        extra,
    )
