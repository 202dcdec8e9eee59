"""A layer as a GeoDataFrame, read through the store interface: what tests compare the app's answers with."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd

from geoapp.store.base import VERSION_COLUMN


def layer_frame(store, layer_id: str) -> gpd.GeoDataFrame:
    """Every feature of a layer: index ``fid``, the declared fields (None where missing), ``_version``, geometry."""
    data = store.load(layer_id)
    index = pd.Index(data.fids, name="fid")
    frame = pd.DataFrame({name: pd.Series(values, index=index, dtype=object) for name, values in data.columns.items()})
    frame[VERSION_COLUMN] = data.versions
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(data.geometries, index=index, crs="EPSG:4326"))
