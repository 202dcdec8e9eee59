"""Validation of features against their layer definition: every write goes through :func:`prepare`. Flask-free."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from geoapp.core.crs import STORAGE_CRS, project
from geoapp.core.layers import Layer
from geoapp.errors import InvalidFeature


def prepare(
    layer: Layer,
    records: list[Mapping[str, Any]],
    geometries: Iterable[BaseGeometry | None],
    metric_crs: str,
    *,
    allow_computed: bool = False,
) -> tuple[list[dict[str, Any]], np.ndarray]:
    """Validate features against ``layer`` and fill computed fields; return clean records and geometries.

    Raises :class:`InvalidFeature` naming the first field (or ``geometry``) that does not fit,
    with the feature's position when there are several, so that callers can refuse the whole batch.
    """
    geoms = np.asarray(list(geometries), dtype=object)
    if len(geoms) != len(records):
        raise ValueError("records and geometries differ in length")
    declared = {f.name: f for f in layer.fields}
    many = len(records) > 1
    clean: list[dict[str, Any]] = []
    for i, record in enumerate(records):
        where = f"feature {i}: " if many else ""
        out: dict[str, Any] = {}
        for name, value in record.items():
            spec = declared.get(name)
            if spec is None:
                raise InvalidFeature(
                    f"{where}unknown field {name!r}; fields of {layer.id}: {', '.join(declared)}", parameter=name
                )
            if spec.computed and not allow_computed:
                if value is not None:
                    raise InvalidFeature(f"{where}{name!r} is computed from the geometry", parameter=name)
                continue
            try:
                out[name] = spec.coerce(value)
            except ValueError as exc:
                raise InvalidFeature(f"{where}{name!r} {exc}", parameter=name) from None
        for spec in layer.fields:
            if out.get(spec.name) is None and spec.default is not None:
                out[spec.name] = spec.coerce(spec.default)
            if spec.required and out.get(spec.name) is None:
                raise InvalidFeature(f"{where}{spec.name!r} is required", parameter=spec.name)
            out.setdefault(spec.name, None)
        _check_geometry(layer, geoms[i], where)
        clean.append(out)
    geoms = shapely.force_2d(geoms)
    computed = [f for f in layer.fields if f.computed]
    if computed and len(geoms):
        metric = project(geoms, STORAGE_CRS, metric_crs)
        measures = {"length": shapely.length(metric), "area": shapely.area(metric)}
        for spec in computed:
            values = np.round(measures[spec.computed], 2)
            for out, value in zip(clean, values, strict=True):
                out[spec.name] = float(value)
    return clean, geoms


def _check_geometry(layer: Layer, geom: Any, where: str) -> None:
    allowed = ", ".join(layer.geometry)
    if not isinstance(geom, BaseGeometry) or geom.is_empty:
        raise InvalidFeature(f"{where}a {allowed} geometry is required", parameter="geometry")
    if geom.geom_type not in layer.geometry:
        raise InvalidFeature(
            f"{where}geometry type {geom.geom_type} is not allowed in {layer.id}; allowed: {allowed}",
            parameter="geometry",
        )
    minx, miny, maxx, maxy = geom.bounds
    if not (-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90):
        raise InvalidFeature(f"{where}coordinates must be longitude/latitude in degrees (WGS84)", parameter="geometry")
    if not geom.is_valid:
        raise InvalidFeature(f"{where}invalid geometry: {shapely.is_valid_reason(geom)}", parameter="geometry")
