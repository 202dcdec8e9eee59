"""In-process measurements: building a layer's snapshot, then each query kind against a full scan.

Every query kind is one row of :data:`KINDS`: how to draw its argument from a random centre,
the :class:`~geoapp.store.memindex.Query` field it sets and the brute-force method answering the same
question. One loop times both sides and compares every answer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import shapely

from bench import timing
from bench.data import LAYER_ID, METRIC_CRS, Area, centre_lonlat, pentagon, square_bbox, synthetic_layer
from bench.timing import Stats
from geoapp.core.layers import Registry
from geoapp.store.memindex import Engine, Query

BBOX_SIDE_M = 1000.0
RADIUS_M = 500.0
K = 10
QUERY_MARGIN_M = 1000.0  # query centres stay this far inside the square, so every query sees full density
WARMUP = 3


class FrameStore:
    """Just enough of a :class:`~geoapp.store.Store` for :class:`Engine`: in-memory frames at version 1.

    Writing a million features through ``create_store`` takes about a minute; the engine only reads these members.
    """

    metric_crs = METRIC_CRS

    def __init__(self, registry: Registry, frames: dict[str, gpd.GeoDataFrame]):
        self.registry = registry
        self._frames = frames

    def version(self, layer_id: str) -> int:
        return 1

    def query(self, layer_id: str) -> gpd.GeoDataFrame:
        return self._frames[layer_id]


class BruteForce:
    """Full scans over plain arrays of the same features: what each index has to beat.

    The arrays are prepared once and not timed, so the baseline is the strongest simple scan,
    not one that pays for extracting coordinates on every query. Each method returns positions
    in the engine's order: by position (= fid), or by distance then position.
    """

    def __init__(self, frame: gpd.GeoDataFrame, area: Area):
        self.geoms = np.asarray(frame.geometry.array, dtype=object)
        self.lon, self.lat = shapely.get_x(self.geoms), shapely.get_y(self.geoms)
        self._to_metric = area.to_metric
        self.x, self.y = self._to_metric.transform(self.lon, self.lat)

    def _distances(self, lon: float, lat: float) -> np.ndarray:
        cx, cy = self._to_metric.transform(lon, lat)
        return np.hypot(self.x - cx, self.y - cy)

    def bbox(self, bbox: tuple[float, float, float, float]) -> np.ndarray:
        minx, miny, maxx, maxy = bbox
        return np.flatnonzero((self.lon >= minx) & (self.lon <= maxx) & (self.lat >= miny) & (self.lat <= maxy))

    def near(self, near: tuple[float, float, float]) -> np.ndarray:
        lon, lat, radius = near
        distances = self._distances(lon, lat)
        hits = np.flatnonzero(distances <= radius)
        return hits[np.argsort(distances[hits], kind="stable")]

    def nearest(self, nearest: tuple[float, float, int]) -> np.ndarray:
        lon, lat, k = nearest
        distances = self._distances(lon, lat)
        # a tie at the k-th distance could pick another member than the engine's fid order; with
        # continuous random coordinates that does not happen
        chosen = np.argpartition(distances, k)[:k] if k < len(distances) else np.arange(len(distances))
        return chosen[np.lexsort((chosen, distances[chosen]))]

    def within(self, polygon: shapely.Polygon) -> np.ndarray:
        return np.flatnonzero(shapely.intersects(self.geoms, polygon))


@dataclass(frozen=True)
class QueryKind:
    """One row of the query table."""

    name: str
    parameter: str  # the Query field this kind sets
    make: Callable[[Area, np.ndarray, np.random.Generator], Any]  # (area, centre in metres, rng) -> argument
    brute: Callable[[BruteForce, Any], np.ndarray]

    def query(self, arg: Any) -> Query:
        return Query(**{self.parameter: arg})


BBOX = QueryKind("bbox 1 km", "bbox", lambda area, c, _: square_bbox(area, c, BBOX_SIDE_M), BruteForce.bbox)
KINDS = (
    BBOX,
    QueryKind("radius 500 m", "near", lambda area, c, _: (*centre_lonlat(area, c), RADIUS_M), BruteForce.near),
    QueryKind("nearest k=10", "nearest", lambda area, c, _: (*centre_lonlat(area, c), K), BruteForce.nearest),
    QueryKind("within 1 km² pentagon", "within", pentagon, BruteForce.within),
)


@dataclass(frozen=True)
class KindResult:
    kind: str
    matched_mean: float
    indexed: Stats
    brute: Stats
    ratio: float  # brute median / indexed median: how many times faster the index is
    checked: int
    mismatches: int


@dataclass(frozen=True)
class SizeResult:
    size: int
    build_ms: float  # Snapshot: features, both STR-trees, the projection to metres
    first_nearest_ms: float  # the first k-nearest query, which also builds the R-tree (used above 2,000 features)
    queries: list[KindResult]

    def query(self, kind: QueryKind) -> KindResult:
        return next(q for q in self.queries if q.kind == kind.name)


def prime(registry: Registry, area: Area, seed: int) -> None:
    """Run every path once on a few features, so that one-off costs (pyproj transformers, lazy
    imports) are not charged to the first size's build."""
    frame = synthetic_layer(registry[LAYER_ID], area, 100, seed)
    engine = Engine(FrameStore(registry, {LAYER_ID: frame}))
    brute = BruteForce(frame, area)
    rng = np.random.default_rng(seed)
    for kind, centre in zip(KINDS, area.uniform_points(rng, len(KINDS), QUERY_MARGIN_M), strict=True):
        arg = kind.make(area, centre, rng)
        engine.query(LAYER_ID, kind.query(arg))
        kind.brute(brute, arg)


def run_size(registry: Registry, area: Area, frame: gpd.GeoDataFrame, repeat: int, seed: int) -> SizeResult:
    """Build the snapshot of ``frame``, then time every query kind at ``repeat`` random centres."""
    n = len(frame)
    engine = Engine(FrameStore(registry, {LAYER_ID: frame}))
    # on a fresh engine this is exactly Snapshot(layer, 1, frame, METRIC_CRS): the harness store costs nothing
    build_ms, _ = timing.once(lambda: engine.snapshot(LAYER_ID))
    rng = np.random.default_rng([seed, n, 1])
    centres = area.uniform_points(rng, repeat, QUERY_MARGIN_M)
    first = Query(nearest=(*centre_lonlat(area, centres[0]), K))
    first_nearest_ms, _ = timing.once(lambda: engine.query(LAYER_ID, first))
    brute = BruteForce(frame, area)
    queries = [measure_kind(kind, engine, brute, [kind.make(area, c, rng) for c in centres]) for kind in KINDS]
    return SizeResult(n, build_ms, first_nearest_ms, queries)


def measure_kind(kind: QueryKind, engine: Engine, brute: BruteForce, args: list[Any]) -> KindResult:
    """Time the engine and the full scan on the same arguments, and compare every answer."""
    queries = [kind.query(arg) for arg in args]
    indexed, got = timing.each(lambda q: engine.query(LAYER_ID, q).positions, queries, WARMUP)
    baseline, expected = timing.each(lambda arg: kind.brute(brute, arg), args, WARMUP)
    mismatches = sum(not np.array_equal(g, e) for g, e in zip(got, expected, strict=True))
    return KindResult(
        kind=kind.name,
        matched_mean=float(np.mean([len(g) for g in got])),
        indexed=indexed,
        brute=baseline,
        ratio=baseline.median_ms / indexed.median_ms,
        checked=len(args),
        mismatches=mismatches,
    )
