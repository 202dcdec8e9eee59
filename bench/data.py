"""Synthetic manhole covers and random query shapes, all deterministic for a given seed.

Everything is laid out in metres (the store's metric CRS) and converted to lon/lat with pyproj,
because the engine stores and is queried in lon/lat while distances are meant in metres.
"""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import Transformer

from geoapp.config import PROJECT_ROOT
from geoapp.core.layers import Layer
from geoapp.store.base import VERSION_COLUMN

LAYERS_DIR = PROJECT_ROOT / "layers"
LAYER_ID = "manhole_covers"
METRIC_CRS = "EPSG:4547"  # CGCS2000 Gauss-Kruger zone 38 (114E), the zone geoapp picks for this district
STORAGE_CRS = "EPSG:4326"
CENTRE_LONLAT = (113.30, 33.73)
SIDE_M = 20_000.0
ROADS = ["建设路", "湛南路", "开源路", "中兴路", "光明路", "矿工路", None]  # None: road is optional


class Area:
    """The square the points cover, with converters between its metres and lon/lat."""

    def __init__(self, side_m: float = SIDE_M):
        self.side_m = side_m
        self.to_lonlat = Transformer.from_crs(METRIC_CRS, STORAGE_CRS, always_xy=True)
        self.to_metric = Transformer.from_crs(STORAGE_CRS, METRIC_CRS, always_xy=True)
        self.centre_m = self.to_metric.transform(*CENTRE_LONLAT)

    @property
    def square_km2(self) -> float:
        return (self.side_m / 1000) ** 2

    def uniform_points(self, rng: np.random.Generator, n: int, margin_m: float = 0.0) -> np.ndarray:
        """``n`` points (metres, shape (n, 2)) uniform over the square shrunk by ``margin_m`` on each side."""
        half = self.side_m / 2 - margin_m
        cx, cy = self.centre_m
        return np.column_stack([rng.uniform(cx - half, cx + half, n), rng.uniform(cy - half, cy + half, n)])

    def lonlat(self, xy: np.ndarray) -> np.ndarray:
        lon, lat = self.to_lonlat.transform(xy[:, 0], xy[:, 1])
        return np.column_stack([lon, lat])


def synthetic_layer(layer: Layer, area: Area, n: int, seed: int) -> gpd.GeoDataFrame:
    """``n`` valid manhole covers shaped like ``Store.query()`` returns them.

    Index ``fid`` from 1, the declared fields (strings and dates as Python objects), ``_version``
    and point geometry in lon/lat. Categorical values come from the layer definition itself.
    """
    rng = np.random.default_rng([seed, n])
    lonlat = area.lonlat(area.uniform_points(rng, n))
    status = rng.choice(layer.field("status").allowed, n)
    fixed_dates = (np.datetime64("2023-01-01") + rng.integers(0, 700, n)).astype(str)
    fids = pd.Index(np.arange(1, n + 1, dtype="int64"), name="fid")
    columns = {
        # GB/T 30428 pattern: admin code, class 01, a subclass per million, 6-digit serial
        "code": [f"41130201{i // 1_000_000 + 1:02d}{i % 1_000_000:06d}" for i in range(n)],
        "kind": rng.choice(layer.field("kind").allowed, n),
        "road": rng.choice(np.array(ROADS, dtype=object), n),
        "defect": rng.choice(layer.field("defect").allowed, n),
        "status": status,
        "fixed_on": np.where(status == "fixed", fixed_dates, None),
    }
    # object columns, as the store returns strings and dates (pandas would otherwise infer its str dtype)
    frame = pd.DataFrame({name: pd.Series(values, index=fids, dtype=object) for name, values in columns.items()})
    assert list(frame.columns) == [f.name for f in layer.fields], "the generator must cover every declared field"
    frame[VERSION_COLUMN] = np.ones(n, dtype="int64")
    geometry = gpd.GeoSeries(shapely.points(lonlat), index=fids, crs=STORAGE_CRS)
    return gpd.GeoDataFrame(frame, geometry=geometry)


def store_input(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The same features as ``create_store`` takes them: no fid (the file numbers rows 1..n), no ``_version``."""
    return frame.drop(columns=VERSION_COLUMN).reset_index(drop=True)


# -- query shapes: each takes a centre in metres and returns its argument in lon/lat -------------


def square_bbox(area: Area, centre: np.ndarray, side_m: float) -> tuple[float, float, float, float]:
    """The lon/lat envelope of a ``side_m`` square (in metres) around ``centre``."""
    h = side_m / 2
    corners = centre + np.array([[-h, -h], [h, -h], [h, h], [-h, h]])
    lonlat = area.lonlat(corners)
    (minx, miny), (maxx, maxy) = lonlat.min(axis=0), lonlat.max(axis=0)
    return float(minx), float(miny), float(maxx), float(maxy)


def pentagon(area: Area, centre: np.ndarray, rng: np.random.Generator, area_m2: float = 1e6) -> shapely.Polygon:
    """An irregular pentagon of ``area_m2`` around ``centre``, in lon/lat.

    Vertices at jittered angles and radii around the centre make a star-shaped, hence valid,
    polygon whose envelope holds points outside it, so the exact test matters.
    """
    angles = rng.uniform(0, 2 * math.pi) + np.arange(5) * 2 * math.pi / 5 + rng.uniform(-0.3, 0.3, 5)
    radii = rng.uniform(0.7, 1.0, 5)
    ring = np.column_stack([radii * np.cos(angles), radii * np.sin(angles)])
    ring *= math.sqrt(area_m2 / shapely.Polygon(ring).area)
    return shapely.Polygon(area.lonlat(centre + ring))


def centre_lonlat(area: Area, centre: np.ndarray) -> tuple[float, float]:
    lon, lat = area.to_lonlat.transform(centre[0], centre[1])
    return float(lon), float(lat)
