"""What an edit must carry and where it may put a feature. Flask-free: views translate requests to these."""

from __future__ import annotations

from typing import Any

import shapely
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from geoapp.core.crs import STORAGE_CRS, project
from geoapp.errors import InvalidFeature, InvalidParameter, VersionRequired
from geoapp.store.memindex import Engine

#: how far outside the district boundary a feature may lie (boundary roads, shared sites)
DISTRICT_MARGIN_M = 2000


def parse_geometry(value: Any) -> BaseGeometry:
    """A GeoJSON geometry object (lon/lat) as shapely, or :class:`InvalidFeature` naming ``geometry``."""
    if not isinstance(value, dict) or "type" not in value:
        raise InvalidFeature("geometry must be a GeoJSON geometry object", parameter="geometry")
    try:
        return shape(value)
    except (ValueError, TypeError, AttributeError, IndexError, shapely.errors.GEOSException) as exc:
        raise InvalidFeature(f"geometry is not valid GeoJSON: {exc}", parameter="geometry") from None


def expected_version(if_match: str | None, body: dict) -> int:
    """The feature version the caller read: ``If-Match: "7"`` or ``"version": 7`` in the body."""
    raw: Any = body.get("version")
    if if_match:
        raw = if_match.strip().removeprefix("W/").strip('"')
    if raw is None or isinstance(raw, bool):
        raise VersionRequired(
            "send the version you read (If-Match header or a version field) so that no change is overwritten",
            parameter="version",
        )
    try:
        if isinstance(raw, float) or (isinstance(raw, str) and not raw.isdigit()):
            raise ValueError
        return int(raw)
    except (TypeError, ValueError):
        raise InvalidParameter(f"version must be a whole number, not {raw!r}", parameter="version") from None


def check_inside_district(engine: Engine, geometry: BaseGeometry) -> None:
    """Refuse geometry that lies outside the district boundary (with a margin), measured in metres."""
    boundary = engine.snapshot("district_boundary") if "district_boundary" in engine.registry else None
    if boundary is None or not len(boundary):
        return
    crs = boundary.metric_crs
    area = shapely.union_all(boundary.metric).buffer(DISTRICT_MARGIN_M)
    if not area.contains(project(geometry, STORAGE_CRS, crs)):
        raise InvalidFeature(
            f"geometry lies outside the district (more than {DISTRICT_MARGIN_M} m beyond its boundary)",
            parameter="geometry",
        )
