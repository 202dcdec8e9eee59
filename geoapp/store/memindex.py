"""The spatial query engine: per layer a GeoDataFrame with spatial indexes, rebuilt when the layer changes.

Flask-free. Bounding boxes and polygons are matched in the stored longitude/latitude, as
clients give them; anything in metres (radius, nearest, distances) is computed in the store's
projected metric CRS. Results are positions into the layer's snapshot, in a stable order, so
that paging walks every match exactly once.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import orjson
import pandas as pd
import rtree
import shapely
from shapely.geometry.base import BaseGeometry

from geoapp.core.crs import STORAGE_CRS, project
from geoapp.core.layers import Layer
from geoapp.errors import InvalidParameter, NotFound
from geoapp.store import Store
from geoapp.store.base import VERSION_COLUMN

MAX_RADIUS_M = 50_000
MAX_K = 1000
BRUTE_FORCE_NEAREST = 2000  # up to this many candidates, k-nearest measures them all
COORD_DECIMALS = 7  # about 1 cm; keeps responses short


@dataclass(frozen=True)
class Query:
    """What to select from a layer; every part is optional and they combine with AND."""

    bbox: tuple[float, float, float, float] | None = None
    near: tuple[float, float, float] | None = None  # lon, lat, radius in metres
    nearest: tuple[float, float, int] | None = None  # lon, lat, k
    within: BaseGeometry | None = None  # lon/lat polygon
    filters: Mapping[str, Sequence[Any]] = field(default_factory=dict)  # field -> accepted values


@dataclass(frozen=True)
class Result:
    """Matches as snapshot positions in result order; distances in metres where a point was given."""

    snapshot: Snapshot
    positions: np.ndarray
    distances: np.ndarray | None = None

    @property
    def matched(self) -> int:
        return len(self.positions)

    def page(self, offset: int, limit: int) -> Result:
        cut = slice(offset, offset + limit)
        return Result(self.snapshot, self.positions[cut], None if self.distances is None else self.distances[cut])

    def fids(self) -> list[int]:
        return self.snapshot.fids[self.positions].tolist()


class Snapshot:
    """One version of a layer: its features, two STR-trees, and each feature's JSON once built.

    Immutable but for caches filled on demand; a new version of the layer gets a new snapshot.
    """

    def __init__(self, layer: Layer, version: int, gdf: gpd.GeoDataFrame, metric_crs: str):
        self.layer = layer
        self.version = version
        self.gdf = gdf
        self.metric_crs = metric_crs
        self.fids = gdf.index.to_numpy(dtype="int64")
        self.geoms = np.asarray(gdf.geometry.array, dtype=object)
        self.tree = shapely.STRtree(self.geoms)
        self.metric = project(self.geoms, STORAGE_CRS, metric_crs) if len(gdf) else self.geoms
        self.metric_tree = shapely.STRtree(self.metric)
        # point layers are answered from coordinate arrays: envelope tests are exact for points,
        # and numpy on packed coordinates beats a GEOS call per feature
        self.points = set(layer.geometry) == {"Point"}
        if self.points:
            self.lonlat = shapely.get_coordinates(self.geoms)
            self.xy = shapely.get_coordinates(self.metric)
        self._knn: rtree.index.Index | None = None
        self._knn_lock = threading.Lock()
        self._json: dict[bool, np.ndarray] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.fids)

    def intersecting(self, area: BaseGeometry, rectangle: bool = False) -> np.ndarray:
        """Sorted positions of features intersecting a lon/lat area (``rectangle``: an axis-aligned box)."""
        hits = self.tree.query(area)
        if self.points:
            if not rectangle:
                hits = hits[shapely.intersects_xy(area, self.lonlat[hits, 0], self.lonlat[hits, 1])]
        else:
            hits = hits[shapely.intersects(self.geoms[hits], area)]
        return np.sort(hits)

    def distances(self, positions: np.ndarray, point: shapely.Point) -> np.ndarray:
        """Distances in metres from a point in the metric CRS."""
        if self.points:
            return np.hypot(self.xy[positions, 0] - point.x, self.xy[positions, 1] - point.y)
        return shapely.distance(self.metric[positions], point)

    def within_distance(self, point: shapely.Point, radius: float) -> tuple[np.ndarray, np.ndarray]:
        """Positions within ``radius`` metres of a metric point, with their distances (each measured once)."""
        x, y = point.x, point.y
        candidates = self.metric_tree.query(shapely.box(x - radius, y - radius, x + radius, y + radius))
        distances = self.distances(candidates, point)
        keep = distances <= radius
        return candidates[keep], distances[keep]

    @property
    def extent(self) -> list[float] | None:
        return None if not len(self) else [float(v) for v in shapely.total_bounds(self.geoms)]

    def position(self, fid: int) -> int | None:
        pos = int(np.searchsorted(self.fids, fid))
        return pos if pos < len(self.fids) and self.fids[pos] == fid else None

    def nearest_by_bounds(self, point: shapely.Point, count: int) -> np.ndarray:
        """Positions of about ``count`` features nearest by bounding box, from an R-tree (the STR-tree has no k-NN).

        The R-tree is built on first use (or by :meth:`Engine.warm`); libspatialindex is not
        thread-safe even for reads, so building and querying both hold the lock.
        """
        with self._knn_lock:
            if self._knn is None:
                bounds = shapely.bounds(self.metric)
                self._knn = rtree.index.Index((np.arange(len(self), dtype="int64"), bounds[:, :2], bounds[:, 2:]))
            return np.fromiter(self._knn.nearest(point.bounds, count), dtype="int64")

    def features_json(self, positions: Sequence[int] | np.ndarray, internal: bool) -> list[bytes]:
        """GeoJSON Feature bytes without the closing brace of ``properties`` and of the feature.

        Built once per feature and visibility, then reused until the layer changes.
        """
        positions = np.asarray(positions, dtype=np.intp)
        with self._lock:
            cache = self._json.get(internal)
            if cache is None:
                cache = self._json[internal] = np.full(len(self), None, dtype=object)
        todo = np.unique(positions[np.equal(cache[positions], None)])
        if len(todo):
            cache[todo] = self._build_json(todo, internal)
        return cache[positions].tolist()

    def _build_json(self, positions: np.ndarray, internal: bool) -> np.ndarray:
        names = [f.name for f in self.layer.visible_fields(internal)]
        sub = self.gdf.iloc[positions]
        columns = [_plain(sub[name]) for name in names]
        geometry = geojson_geometries(self.geoms[positions])
        out = np.empty(len(positions), dtype=object)
        for i, (fid, version, geom) in enumerate(
            zip(self.fids[positions], sub[VERSION_COLUMN].to_numpy(), geometry, strict=True)
        ):
            props = orjson.dumps({name: col[i] for name, col in zip(names, columns, strict=True)})
            out[i] = b'{"type":"Feature","id":%d,"version":%d,"geometry":%s,"properties":%s' % (
                fid,
                version,
                geom.encode(),
                props[:-1],
            )
        return out


def geojson_geometries(geoms):
    """GeoJSON text of geometries, coordinates rounded to :data:`COORD_DECIMALS` (about 1 cm)."""
    return shapely.to_geojson(shapely.transform(geoms, lambda xy: np.round(xy, COORD_DECIMALS)))


def _members(positions: np.ndarray, selected: np.ndarray) -> np.ndarray:
    """Which ``positions`` are in the sorted array ``selected`` (a boolean array)."""
    if not len(selected):
        return np.zeros(len(positions), dtype=bool)
    at = np.minimum(np.searchsorted(selected, positions), len(selected) - 1)
    return selected[at] == positions


def _plain(series: pd.Series) -> list:
    """Column values as JSON-ready Python objects, missing ones as None."""
    values = series.astype(object).tolist()
    return [None if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA else v for v in values]


class Engine:
    """Answers queries over a store's layers, keeping one snapshot per layer in step with its version."""

    def __init__(self, store: Store):
        self.store = store
        self.registry = store.registry
        self._snapshots: dict[str, Snapshot] = {}
        self._locks = {layer_id: threading.Lock() for layer_id in self.registry.ids}

    def layer(self, layer_id: str) -> Layer:
        if layer_id not in self.registry:
            raise NotFound(f"unknown layer {layer_id!r}; layers: {', '.join(self.registry.ids)}", parameter="layer")
        return self.registry[layer_id]

    def snapshot(self, layer_id: str) -> Snapshot:
        """The current snapshot, rebuilt if the store's version of the layer moved on."""
        layer = self.layer(layer_id)
        version = self.store.version(layer_id)
        snap = self._snapshots.get(layer_id)
        if snap is not None and snap.version == version:
            return snap
        with self._locks[layer_id]:
            snap = self._snapshots.get(layer_id)
            if snap is None or snap.version != version:
                # the version is read again after the data so that a change made in between is not missed
                while True:
                    gdf = self.store.query(layer_id)
                    after = self.store.version(layer_id)
                    if after == version:
                        break
                    version = after
                snap = self._snapshots[layer_id] = Snapshot(layer, version, gdf, self.store.metric_crs)
            return snap

    def warm(self) -> None:
        """Build every layer's snapshot and k-nearest index now (before a server forks its workers)."""
        for layer_id in self.registry.ids:
            snap = self.snapshot(layer_id)
            if len(snap) > BRUTE_FORCE_NEAREST:
                snap.nearest_by_bounds(shapely.Point(0, 0), 1)  # builds the R-tree

    def query(self, layer_id: str, query: Query) -> Result:
        """Select features of a layer.

        Parameters
        ----------
        layer_id : str
            A registered layer.
        query : Query
            ``bbox`` and ``within`` match geometries intersecting them (lon/lat); ``near`` keeps
            features within a radius in metres; ``nearest`` keeps the k nearest; ``filters``
            keep features whose field equals one of the given values.

        Returns
        -------
        Result
            Positions ordered by fid, or by distance then fid when ``near`` or ``nearest`` is
            given (with ``distances`` in metres, measured in the metric CRS).
        """
        snap = self.snapshot(layer_id)
        if query.near and query.nearest:
            raise InvalidParameter("give either near (with radius) or nearest (with k), not both", parameter="near")
        selected = self._select(snap, query)
        if query.nearest:
            lon, lat, k = query.nearest
            return self._nearest(snap, lon, lat, k, selected)
        if query.near:
            lon, lat, radius = query.near
            point = project(shapely.Point(lon, lat), STORAGE_CRS, snap.metric_crs)
            candidates, distances = snap.within_distance(point, radius)
            if selected is not None:
                keep = _members(candidates, selected)
                candidates, distances = candidates[keep], distances[keep]
            order = np.lexsort((snap.fids[candidates], distances))
            return Result(snap, candidates[order], distances[order])
        return Result(snap, np.arange(len(snap)) if selected is None else selected)

    def _select(self, snap: Snapshot, query: Query) -> np.ndarray | None:
        """Sorted positions passing bbox, within and attribute filters; None when nothing restricts.

        Spatial parts go first, so that filters are evaluated on their few candidates only.
        """
        selected = None
        areas = [(shapely.box(*query.bbox), True)] if query.bbox is not None else []
        if query.within is not None:
            areas.append((query.within, False))
        for area, rectangle in areas:
            hits = snap.intersecting(area, rectangle)
            selected = hits if selected is None else np.intersect1d(selected, hits, assume_unique=True)
        for name, values in query.filters.items():
            column = snap.gdf[name] if selected is None else snap.gdf[name].iloc[selected]
            passing = column.isin(list(values)).to_numpy(dtype=bool, na_value=False)
            selected = np.flatnonzero(passing) if selected is None else selected[passing]
        return selected

    def _nearest(self, snap: Snapshot, lon: float, lat: float, k: int, selected: np.ndarray | None) -> Result:
        point = project(shapely.Point(lon, lat), STORAGE_CRS, snap.metric_crs)
        pool = len(snap) if selected is None else len(selected)
        if pool <= max(4 * k, BRUTE_FORCE_NEAREST):
            # few candidates: measure them all
            candidates = np.arange(len(snap)) if selected is None else selected
            distances = snap.distances(candidates, point)
        else:
            # the R-tree gives the nearest by bounding box; the true distances of k of them bound
            # the k-th nearest, and every feature within that bound is measured exactly
            want, found = k, np.array([], dtype="int64")
            while len(found) < k:
                want *= 4
                found = snap.nearest_by_bounds(point, want)
                if selected is not None:
                    found = found[_members(found, selected)]
            bound = np.sort(snap.distances(found, point))[k - 1]
            candidates, distances = snap.within_distance(point, bound)
            if selected is not None:
                keep = _members(candidates, selected)
                candidates, distances = candidates[keep], distances[keep]
        order = np.lexsort((snap.fids[candidates], distances))[:k]
        return Result(snap, candidates[order], distances[order])

    def search(self, text: str, limit: int) -> list[dict[str, Any]]:
        """Features whose title (name, site, code ...) contains ``text``, across the operational layers.

        Exact matches come first, then by layer drawing order (top layers first) and fid.
        """
        needle = text.casefold()
        hits: list[tuple[int, int, int, dict[str, Any]]] = []
        for rank, layer in enumerate(reversed(list(self.registry))):
            if layer.context:
                continue
            snap = self.snapshot(layer.id)
            titles = snap.gdf[layer.title_field].astype("string").str.casefold()
            contains = titles.str.contains(needle, regex=False).fillna(False).to_numpy(dtype=bool)
            exact = (titles == needle).fillna(False).to_numpy(dtype=bool)
            # exact matches first, so that a long list of partial matches cannot push them out
            positions = np.concatenate([np.flatnonzero(exact), np.flatnonzero(contains & ~exact)])
            for pos in positions[:limit]:
                title = snap.gdf[layer.title_field].iat[pos]
                point = shapely.point_on_surface(snap.geoms[pos])
                hit = {
                    "layer": layer.id,
                    "id": int(snap.fids[pos]),
                    "title": str(title),
                    "lon": point.x,
                    "lat": point.y,
                }
                hits.append((titles.iat[pos] != needle, rank, int(snap.fids[pos]), hit))
        return [hit for *_, hit in sorted(hits, key=lambda h: h[:3])][:limit]

    def counts(self, layer_id: str) -> dict[str, Any]:
        """Feature count and, when the layer has a status, counts per status value (all values listed)."""
        snap = self.snapshot(layer_id)
        out: dict[str, Any] = {"count": len(snap)}
        if snap.layer.status_field:
            found = snap.gdf[snap.layer.status_field].value_counts()
            status = snap.layer.field(snap.layer.status_field)
            out["by_status"] = {c.value: int(found.get(c.value, 0)) for c in status.values}
        return out
