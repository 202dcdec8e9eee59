"""The data of a new store, whatever its backend: each declared layer's frame validated, and the metric CRS chosen."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from geoapp.core.crs import STORAGE_CRS, metric_crs
from geoapp.core.layers import Layer, Registry
from geoapp.core.validate import prepare
from geoapp.errors import StoreError
from geoapp.store.base import VERSION_COLUMN

_DTYPES = {
    "integer": "Int64",
    "number": "float64",
    "boolean": "boolean",
    "string": object,
    "date": object,
    "datetime": object,
}


def prepared_frames(
    registry: Registry, data: Mapping[str, gpd.GeoDataFrame] | None, crs: str | None
) -> tuple[str, dict[str, gpd.GeoDataFrame]]:
    """The metric CRS (``crs``, or the one of the data's place) and every registered layer's frame, validated
    (empty for a layer ``data`` lacks); data for an undeclared layer is refused."""
    data = dict(data or {})
    unknown = sorted(set(data) - set(registry.ids))
    if unknown:
        raise StoreError(f"data for undeclared layers: {', '.join(unknown)}", parameter="layer")
    chosen = crs or _metric_crs_for(data)
    return chosen, {layer.id: _prepared_frame(layer, data.get(layer.id), chosen) for layer in registry}


def _metric_crs_for(data: Mapping[str, gpd.GeoDataFrame]) -> str:
    frames = [gdf for gdf in data.values() if len(gdf)]
    if not frames:
        return "EPSG:4547"
    minx, miny, maxx, maxy = np.array([gdf.to_crs(STORAGE_CRS).total_bounds for gdf in frames]).T
    return metric_crs((minx.min() + maxx.max()) / 2, (miny.min() + maxy.max()) / 2)


def _prepared_frame(layer: Layer, gdf: gpd.GeoDataFrame | None, crs: str) -> gpd.GeoDataFrame:
    names = [f.name for f in layer.fields]
    if gdf is None or not len(gdf):
        records, geoms = [], np.array([], dtype=object)
    else:
        if gdf.crs is None:
            raise StoreError(f"{layer.id}: data has no CRS", parameter="crs")
        gdf = gdf.to_crs(STORAGE_CRS)
        records = gdf[[c for c in gdf.columns if c != gdf.geometry.name]].to_dict("records")
        records = [{k: (None if missing(v) else v) for k, v in r.items()} for r in records]
        # a new store takes its data as it is; the bureau's rules hold for every change made to it afterwards
        records, geoms = prepare(layer, records, gdf.geometry.array, crs, rules=False)
    frame = pd.DataFrame.from_records(records, columns=names)
    for spec in layer.fields:
        frame[spec.name] = frame[spec.name].astype(_DTYPES[spec.type])
    frame[VERSION_COLUMN] = pd.Series(1, index=frame.index, dtype="int64")
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geoms, index=frame.index, crs=STORAGE_CRS))


def missing(value: Any) -> bool:
    return value is None or (not isinstance(value, str) and bool(pd.isna(value)) if np.ndim(value) == 0 else False)
