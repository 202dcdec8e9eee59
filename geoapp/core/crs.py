"""Coordinate systems: the stored CRS, the metric CRS for distances and areas, and transformers.

Geometry is stored in WGS84 longitude/latitude (treated as identical to CGCS2000 for mapping).
Anything in metres (distances, buffers, lengths, areas) is computed in a projected CRS: the
CGCS2000 3-degree Gauss-Kruger zone that holds the district inside China, an estimated UTM zone
elsewhere.
"""

from __future__ import annotations

import threading

import numpy as np
import shapely
from pyproj import CRS, Transformer
from pyproj.aoi import AreaOfInterest
from pyproj.database import query_utm_crs_info

STORAGE_CRS = "EPSG:4326"
STORAGE_SRS_ID = 4326

_local = threading.local()
_pipelines: dict[tuple[str, str], str] = {}
_pipelines_lock = threading.Lock()


def metric_crs(lon: float, lat: float) -> str:
    """Choose a projected CRS in metres for work around ``(lon, lat)``.

    Inside China's CGCS2000 Gauss-Kruger range this is the 3-degree zone whose central meridian
    is nearest (EPSG:4534 for 75E up to EPSG:4554 for 135E; EPSG:4547 for 114E); elsewhere the
    UTM zone pyproj estimates for the point.
    """
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise ValueError(f"lon/lat out of range: {lon}, {lat}")
    if 73.5 <= lon <= 136.5 and 3 <= lat <= 54:
        return f"EPSG:{4534 + round((lon - 75) / 3)}"
    infos = query_utm_crs_info(datum_name="WGS 84", area_of_interest=AreaOfInterest(lon, lat, lon, lat), contains=True)
    if not infos:
        raise ValueError(f"no UTM zone found for {lon}, {lat}")
    return f"{infos[0].auth_name}:{infos[0].code}"


def transformer(src: str, dst: str) -> Transformer:
    """A cached ``always_xy`` transformer for this thread (pyproj transformers are not thread-safe).

    Resolving two CRSs into an operation takes PROJ tens of milliseconds; it is done once per
    process, and each thread builds its own transformer from the resulting pipeline in well under
    a millisecond (a server's pooled threads would otherwise each pay on their first edit).
    """
    cache = _local.__dict__.setdefault("transformers", {})
    key = (src, dst)
    if key not in cache:
        with _pipelines_lock:
            definition = _pipelines.get(key)
            if definition is None:
                definition = _pipelines[key] = Transformer.from_crs(CRS(src), CRS(dst), always_xy=True).definition
        cache[key] = Transformer.from_pipeline(definition)
    return cache[key]


def project(geoms, src: str, dst: str):
    """Transform a shapely geometry or array of geometries from ``src`` to ``dst``."""
    tr = transformer(src, dst)

    def _xy(coords: np.ndarray) -> np.ndarray:
        x, y = tr.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    return shapely.transform(geoms, _xy)


def lonlat_envelope(point, radius: float, metric: str) -> tuple[float, float, float, float] | None:
    """A lon/lat box holding the square of ``radius`` metres around a point of the metric CRS, or None where
    that CRS says nothing.

    The square's image is slightly curved; nine samples an edge and a 1 % pad hold it whole (every
    candidate inside is then measured exactly in metres).
    """
    steps = np.linspace(-1.0, 1.0, 9)
    ones = np.ones(9)
    xs = point.x + radius * np.concatenate([steps, steps, -ones, ones])
    ys = point.y + radius * np.concatenate([-ones, ones, steps, steps])
    lon, lat = transformer(metric, STORAGE_CRS).transform(xs, ys)
    if not (np.all(np.isfinite(lon)) and np.all(np.isfinite(lat))):
        return None
    pad_x = 0.01 * (lon.max() - lon.min()) + 1e-9
    pad_y = 0.01 * (lat.max() - lat.min()) + 1e-9
    return lon.min() - pad_x, lat.min() - pad_y, lon.max() + pad_x, lat.max() + pad_y
