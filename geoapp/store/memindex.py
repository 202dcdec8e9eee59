"""The reader the embedded store answers from: per layer a base built from one full load, plus the
features changed since. Flask-free.

A base holds the layer's arrays, two STR-trees (lon/lat and the metric CRS), coordinate arrays
for point layers and each feature's JSON once built; it is never changed. An edit reaches every
process as a delta: the next read asks the store which features changed after the version it
holds (the change log kept by SQL triggers), reads only those, and lays them over the base as an
overlay that hides their old rows. The base's memory is never rewritten for an edit, so a
server's forked workers keep sharing it copy-on-write. Once many features have changed, a new
base is built in a background thread and swapped in.

Bounding boxes and polygons are matched in the stored longitude/latitude, as clients give them;
anything in metres (radius, nearest, distances) is computed in the store's projected metric CRS.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import rtree
import shapely
from shapely.geometry.base import BaseGeometry

from geoapp.core import cql, encode
from geoapp.core.crs import STORAGE_CRS, lonlat_envelope, project, transformer
from geoapp.core.layers import Layer
from geoapp.store.base import (
    Delta,
    Feature,
    FeatureReader,
    LayerData,
    LayerSummary,
    Page,
    Problem,
    Query,
    Store,
    Visibility,
)

log = logging.getLogger(__name__)

BRUTE_FORCE_NEAREST = 2000  # up to this many candidates, k-nearest measures them all
#: changed features an overlay carries before a new base is built in the background
MERGE_AFTER = 2000
#: more changed features than this since a base, and the layer is loaded whole instead of by delta
DELTA_LIMIT = 50_000

_EMPTY = np.array([], dtype="int64")


def _members(positions: np.ndarray, selected: np.ndarray) -> np.ndarray:
    """Which ``positions`` are in the sorted array ``selected`` (a boolean array)."""
    if not len(selected) or not len(positions):
        return np.zeros(len(positions), dtype=bool)
    at = np.minimum(np.searchsorted(selected, positions), len(selected) - 1)
    return selected[at] == positions


def _names(layer: Layer, visibility: Visibility) -> list[str]:
    return [f.name for f in layer.visible_fields(visibility == "internal")]


class Base:
    """One full load of a layer with its indexes; immutable but for caches filled on demand."""

    def __init__(self, layer: Layer, data: LayerData, metric_crs: str, problems: Sequence[Problem] = ()):
        self.layer = layer
        self.version = data.version
        self.metric_crs = metric_crs
        geoms = np.asarray(data.geometries, dtype=object)
        present = ~shapely.is_missing(geoms) & ~shapely.is_empty(geoms) if len(geoms) else np.zeros(0, bool)
        self.problems: list[Problem] = list(problems)
        self.fids = data.fids[present]
        self.geoms = geoms[present]
        self.columns = {name: values[present] for name, values in data.columns.items()}
        self.versions = data.versions[present]
        self.tree = shapely.STRtree(self.geoms)
        self.bounds = shapely.bounds(self.geoms) if len(self.geoms) else np.zeros((0, 4))
        # point layers are answered from coordinate arrays: envelope tests are exact for points, numpy on
        # packed coordinates beats a GEOS call per feature, and no metric geometries or second tree are built
        # (only if every geometry is one point: another tool may have written a multi-point, whose several
        # coordinates would shift every later feature's row in the coordinate arrays)
        self.points = set(layer.geometry) == {"Point"} and bool(np.all(shapely.get_type_id(self.geoms) == 0))
        if self.points:
            self.lonlat = shapely.get_coordinates(self.geoms)
            x, y = transformer(STORAGE_CRS, metric_crs).transform(self.lonlat[:, 0], self.lonlat[:, 1])
            self.xy = np.column_stack([x, y])
            self.xy_bounds = (*self.xy.min(axis=0), *self.xy.max(axis=0)) if len(self.xy) else (0.0, 0.0, 0.0, 0.0)
            self.metric = None
            self.metric_tree = None
        else:
            self.metric = project(self.geoms, STORAGE_CRS, metric_crs) if len(self.geoms) else self.geoms
            self.metric_tree = shapely.STRtree(self.metric)
        self._knn: rtree.index.Index | None = None
        self._knn_lock = threading.Lock()
        self._json: dict[Visibility, np.ndarray] = {}
        self._codes: dict[str, tuple[np.ndarray, list]] = {}
        self._titles: np.ndarray | None = None
        self._filtering: cql.Columns | None = None
        self._lock = threading.Lock()
        self.problems += self._vocabulary_problems()

    def __len__(self) -> int:
        return len(self.fids)

    def _vocabulary_problems(self) -> list[Problem]:
        out = []
        for spec in self.layer.fields:
            if spec.values is None:
                continue
            codes, uniques = self.codes(spec.name)
            bad = [i for i, value in enumerate(uniques) if value not in spec.allowed]
            for pos in np.flatnonzero(np.isin(codes, bad)) if bad else ():
                out.append(Problem(int(self.fids[pos]), spec.name, f"{self.columns[spec.name][pos]!r} is not allowed"))
        return out

    def position(self, fid: int) -> int | None:
        pos = int(np.searchsorted(self.fids, fid))
        return pos if pos < len(self.fids) and self.fids[pos] == fid else None

    def codes(self, name: str) -> tuple[np.ndarray, list]:
        """The column as integer codes and the distinct values they stand for (missing: -1)."""
        found = self._codes.get(name)
        if found is None:
            codes, uniques = pd.factorize(pd.Series(self.columns[name], dtype=object), use_na_sentinel=True)
            found = self._codes[name] = (codes, list(uniques))
        return found

    def passing(self, name: str, values: Sequence[Any]) -> np.ndarray:
        """Sorted positions whose ``name`` is one of ``values``."""
        codes, uniques = self.codes(name)
        wanted = [i for i, value in enumerate(uniques) if value in values]
        return np.flatnonzero(np.isin(codes, wanted)) if wanted else _EMPTY

    def filtering(self) -> cql.Columns:
        """The columns typed for CQL2 filters (converted on first use, kept with the base)."""
        if self._filtering is None:
            self._filtering = cql.Columns(self.layer, self.columns, self.geoms, self.tree)
        return self._filtering

    def titles(self) -> np.ndarray:
        if self._titles is None:
            self._titles = (
                pd.Series(self.columns[self.layer.title_field], dtype=object).astype("string").str.casefold().to_numpy()
            )
        return self._titles

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
        if self.points:
            candidates = self.tree.query(self._lonlat_envelope(point, radius))
        else:
            candidates = self.metric_tree.query(shapely.box(x - radius, y - radius, x + radius, y + radius))
        distances = self.distances(candidates, point)
        keep = distances <= radius
        return candidates[keep], distances[keep]

    def _lonlat_envelope(self, point: shapely.Point, radius: float) -> BaseGeometry:
        box = lonlat_envelope(point, radius, self.metric_crs)
        return shapely.box(0, 0, 0, 0).buffer(-1) if box is None else shapely.box(*box)  # None: nothing

    def nearest_points(self, point: shapely.Point, k: int, allowed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The k nearest of the sorted positions ``allowed`` (a point layer), by a growing exact radius search.

        Everything within the radius is measured, so once k allowed points lie within it they are
        the k nearest; the radius starts from the layer's density and doubles, and at last covers
        every point.
        """
        xmin, ymin = self.xy.min(axis=0)
        xmax, ymax = self.xy.max(axis=0)
        farthest = float(
            np.hypot(max(abs(point.x - xmin), abs(point.x - xmax)), max(abs(point.y - ymin), abs(point.y - ymax)))
        )
        area = max((xmax - xmin) * (ymax - ymin), 1.0)
        radius = 1.5 * float(np.sqrt(k * area / (np.pi * max(len(allowed), 1)))) + 1.0
        while True:
            radius = min(radius, farthest + 1.0)
            if radius > farthest:
                # the radius covers every point: measure them all (far from the layer, the metric square
                # may have no lon/lat envelope, and a radius search would find nothing)
                distances = self.distances(allowed, point)
                order = np.lexsort((self.fids[allowed], distances))[:k]
                return allowed[order], distances[order]
            candidates, distances = self.within_distance(point, radius)
            keep = _members(candidates, allowed)
            candidates, distances = candidates[keep], distances[keep]
            if len(candidates) >= k:
                order = np.lexsort((self.fids[candidates], distances))[:k]
                return candidates[order], distances[order]
            radius *= 2

    def nearest_by_bounds(self, point: shapely.Point, count: int) -> np.ndarray:
        """Positions of about ``count`` features nearest by bounding box, from an R-tree (the STR-tree has no k-NN).

        The R-tree is built on first use (or by :meth:`MemIndex.warm`); libspatialindex is not
        thread-safe even for reads, so building and querying both hold the lock.
        """
        with self._knn_lock:
            if self._knn is None:
                bounds = shapely.bounds(self.metric)
                self._knn = rtree.index.Index((np.arange(len(self), dtype="int64"), bounds[:, :2], bounds[:, 2:]))
            return np.fromiter(self._knn.nearest(point.bounds, count), dtype="int64")

    def opened_json(self, positions: np.ndarray, visibility: Visibility) -> list[bytes]:
        """Each feature's GeoJSON (see :func:`encode.open_feature`), built once per visibility and kept."""
        positions = np.asarray(positions, dtype=np.intp)
        with self._lock:
            cache = self._json.get(visibility)
            if cache is None:
                cache = self._json[visibility] = np.full(len(self), None, dtype=object)
        todo = np.unique(positions[np.equal(cache[positions], None)])
        if len(todo):
            names = _names(self.layer, visibility)
            columns = [self.columns[name][todo].tolist() for name in names]
            geometry = encode.geometries(self.geoms[todo])
            built = np.empty(len(todo), dtype=object)
            for i, (fid, version, geom) in enumerate(zip(self.fids[todo], self.versions[todo], geometry, strict=True)):
                props = {name: col[i] for name, col in zip(names, columns, strict=True)}
                built[i] = encode.open_feature(int(fid), int(version), geom, props)
            cache[todo] = built
        return cache[positions].tolist()


def _problems(layer: Layer, feature: Feature) -> tuple[Problem, ...]:
    """What the definition does not admit in a changed row: no geometry, or a value outside a vocabulary."""
    out = []
    if feature.geometry is None or feature.geometry.is_empty:
        out.append(Problem(feature.fid, "geometry", "no geometry"))
    for spec in layer.fields:
        value = feature.properties.get(spec.name)
        if spec.values is not None and value is not None and value not in spec.allowed:
            out.append(Problem(feature.fid, spec.name, f"{value!r} is not allowed"))
    return tuple(out)


@dataclass(frozen=True)
class _Row:
    """A feature changed since the base, as it is now."""

    feature: Feature
    metric: BaseGeometry
    json: dict[Visibility, bytes] = field(default_factory=dict, compare=False)

    def opened_json(self, layer: Layer, visibility: Visibility) -> bytes:
        found = self.json.get(visibility)
        if found is None:
            f = self.feature
            props = {name: f.properties.get(name) for name in _names(layer, visibility)}
            found = self.json[visibility] = encode.open_feature(
                f.fid, f.version, str(encode.geometries(f.geometry)), props
            )
        return found


class Snapshot:
    """One version of a layer: a base, and the features changed since it (``None`` where deleted)."""

    def __init__(
        self,
        base: Base,
        version: int,
        changed: Mapping[int, _Row | None],
        problems: Mapping[int, tuple[Problem, ...]] | None = None,
    ):
        self.layer = base.layer
        self.base = base
        self.version = version
        self.changed = dict(changed)
        #: what is wrong with changed rows (another tool wrote them): no geometry, a value outside the vocabulary
        self.problems = {fid: found for fid, found in (problems or {}).items() if found}
        in_base = np.array(sorted(f for f in self.changed if base.position(f) is not None), dtype="int64")
        #: sorted base positions whose rows the overlay replaces or deletes
        self.hidden = np.searchsorted(base.fids, in_base) if len(in_base) else _EMPTY
        live = sorted((f, row) for f, row in self.changed.items() if row is not None)
        self.rows = [row for _, row in live]
        self.fids = np.array([f for f, _ in live], dtype="int64")
        self.geoms = np.array([row.feature.geometry for row in self.rows], dtype=object)
        self.metric = np.array([row.metric for row in self.rows], dtype=object)
        self._visible: np.ndarray | None = None
        self._counts: dict[Any, int] = {}

    def __len__(self) -> int:
        return len(self.base) - len(self.hidden) + len(self.rows)

    def apply(self, delta: Delta, metric_crs: str) -> Snapshot:
        """This snapshot with a delta laid over it."""
        changed = dict(self.changed)
        problems = dict(self.problems)
        for feature in delta.changed:
            problems[feature.fid] = _problems(self.layer, feature)
            if feature.geometry is None or feature.geometry.is_empty:
                changed[feature.fid] = None  # a row another tool left without geometry cannot be drawn or found
            else:
                changed[feature.fid] = _Row(feature, project(feature.geometry, STORAGE_CRS, metric_crs))
        for fid in delta.deleted:
            changed[fid] = None
            problems.pop(fid, None)
        return Snapshot(self.base, delta.version, changed, problems)

    # -- selection ----------------------------------------------------------------------------

    def visible(self) -> np.ndarray:
        """Sorted base positions not hidden by the overlay."""
        if self._visible is None:
            everything = np.arange(len(self.base))
            self._visible = np.delete(everything, self.hidden) if len(self.hidden) else everything
        return self._visible

    def _base_select(self, query: Query) -> np.ndarray | None:
        """Sorted base positions passing bbox, within and filters and not hidden; None: every visible one."""
        base = self.base
        selected = None
        areas = [(shapely.box(*query.bbox), True)] if query.bbox is not None else []
        if query.within is not None:
            areas.append((query.within, False))
        for area, rectangle in areas:
            hits = base.intersecting(area, rectangle)
            selected = hits if selected is None else np.intersect1d(selected, hits, assume_unique=True)
        for name, values in query.filters.items():
            passing = base.passing(name, values)
            selected = passing if selected is None else np.intersect1d(selected, passing, assume_unique=True)
        if query.where is not None:
            passing = np.flatnonzero(base.filtering().mask(query.where))
            selected = passing if selected is None else np.intersect1d(selected, passing, assume_unique=True)
        if selected is not None and len(self.hidden):
            selected = selected[~_members(selected, self.hidden)]
        return selected

    def _overlay_select(self, query: Query) -> np.ndarray:
        """Indexes of overlay rows passing bbox, within and filters."""
        keep = np.ones(len(self.rows), dtype=bool)
        if not len(self.rows):
            return np.flatnonzero(keep)
        if query.bbox is not None:
            keep &= shapely.intersects(self.geoms, shapely.box(*query.bbox))
        if query.within is not None:
            keep &= shapely.intersects(self.geoms, query.within)
        for name, values in query.filters.items():
            keep &= np.array([row.feature.properties.get(name) in values for row in self.rows], dtype=bool)
        if query.where is not None:
            columns = {
                name: np.array([row.feature.properties.get(name) for row in self.rows], dtype=object)
                for name in cql.properties(query.where)
            }
            keep &= cql.Columns(self.layer, columns, self.geoms).mask(query.where)
        return np.flatnonzero(keep)

    def match(self, query: Query) -> tuple[np.ndarray, np.ndarray | None]:
        """Matching fids in result order (by fid; by distance then fid from a point) and the distances in metres."""
        base = self.base
        selected = self._base_select(query)
        extra = self._overlay_select(query)
        if query.near or query.nearest:
            lon, lat, _ = query.near or query.nearest
            point = project(shapely.Point(lon, lat), STORAGE_CRS, base.metric_crs)
            if query.nearest:
                positions, distances = self._nearest(point, query.nearest[2], selected)
            else:
                positions, distances = base.within_distance(point, query.near[2])
                keep = _members(positions, selected if selected is not None else self.visible())
                positions, distances = positions[keep], distances[keep]
            over = shapely.distance(self.metric[extra], point) if len(extra) else np.zeros(0)
            if query.near:
                extra, over = extra[over <= query.near[2]], over[over <= query.near[2]]
            fids = np.concatenate([base.fids[positions], self.fids[extra]])
            dist = np.concatenate([distances, over])
            order = np.lexsort((fids, dist))
            if query.nearest:
                order = order[: query.nearest[2]]
            return fids[order], dist[order]
        positions = self.visible() if selected is None else selected
        fids = base.fids[positions]
        if len(extra):
            added = self.fids[extra]
            fids = np.insert(fids, np.searchsorted(fids, added), added)
        return fids, None

    def _nearest(self, point: shapely.Point, k: int, selected: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        base = self.base
        allowed = self.visible() if selected is None else selected
        if base.points and len(allowed) > BRUTE_FORCE_NEAREST:
            return base.nearest_points(point, k, allowed)
        if len(allowed) <= max(4 * k, BRUTE_FORCE_NEAREST):
            distances = base.distances(allowed, point)
            order = np.lexsort((base.fids[allowed], distances))[:k]
            return allowed[order], distances[order]
        # the R-tree gives the nearest by bounding box; the true distances of k of them bound the
        # k-th nearest, and every feature within that bound is measured exactly
        want, found = k, _EMPTY
        while len(found) < k:
            want *= 4
            found = base.nearest_by_bounds(point, want)
            found = found[_members(found, allowed)]
            if want >= len(base):
                break
        bound = np.sort(base.distances(found, point))[min(k, len(found)) - 1]
        candidates, distances = base.within_distance(point, bound)
        keep = _members(candidates, allowed)
        candidates, distances = candidates[keep], distances[keep]
        order = np.lexsort((base.fids[candidates], distances))[:k]
        return candidates[order], distances[order]

    def features(self, fids: np.ndarray, distances: np.ndarray | None, visibility: Visibility) -> list[bytes]:
        """GeoJSON Features of these fids, in order."""
        base = self.base
        rows = {f: row for f, row in zip(self.fids.tolist(), self.rows, strict=True)}
        in_base = [i for i, f in enumerate(fids.tolist()) if f not in rows]
        opened: list[bytes | None] = [None] * len(fids)
        if in_base:
            positions = np.searchsorted(base.fids, fids[in_base])
            for i, text in zip(in_base, base.opened_json(positions, visibility), strict=True):
                opened[i] = text
        for i, f in enumerate(fids.tolist()):
            if opened[i] is None:
                opened[i] = rows[f].opened_json(self.layer, visibility)
        if distances is None:
            return [encode.close(text) for text in opened]
        return [encode.close(text, d) for text, d in zip(opened, distances.tolist(), strict=True)]

    def get(self, fid: int) -> Feature | None:
        if fid in self.changed:
            row = self.changed[fid]
            return None if row is None else row.feature
        pos = self.base.position(fid)
        if pos is None:
            return None
        base = self.base
        props = {name: values[pos] for name, values in base.columns.items()}
        return Feature(self.layer.id, fid, base.geoms[pos], props, int(base.versions[pos]))

    def count(self, filters: Mapping[str, Sequence[Any]]) -> int:
        key = tuple(sorted((name, tuple(values)) for name, values in filters.items()))
        if key not in self._counts:
            self._counts[key] = len(self.match(Query(filters=filters))[0])
        return self._counts[key]

    def summary(self) -> LayerSummary:
        base = self.base
        visible = self.visible()
        bounds = [base.bounds[visible]] if len(visible) else []
        if self.rows:
            bounds.append(shapely.bounds(self.geoms))
        extent = None
        if bounds:
            stacked = np.concatenate(bounds)
            extent = [*map(float, stacked[:, :2].min(axis=0)), *map(float, stacked[:, 2:].max(axis=0))]
        by_status = None
        if self.layer.status_field:
            status = self.layer.field(self.layer.status_field)
            by_status = {c.value: self.count({status.name: [c.value]}) for c in status.values}
        # the base's problems of rows changed since are superseded by what the changed rows say
        problems = [p for p in base.problems if p.fid not in self.changed]
        problems += [p for found in self.problems.values() for p in found]
        problems.sort(key=lambda p: (p.fid, p.field))
        return LayerSummary(len(self), extent, self.version, by_status, tuple(problems))

    def search(self, needle: str) -> tuple[np.ndarray, np.ndarray]:
        """Fids whose title contains ``needle`` (casefolded), exact matches first; and whether each is exact."""
        base = self.base
        titles = base.titles()
        visible = self.visible()
        contains = pd.Series(titles[visible], dtype="string").str.contains(needle, regex=False).fillna(False)
        exact_mask = (titles[visible] == needle) if len(visible) else np.zeros(0, bool)
        exact_mask = pd.array(exact_mask, dtype="boolean").fillna(False).to_numpy(dtype=bool)
        hits = visible[contains.to_numpy(dtype=bool)]
        exact = visible[exact_mask]
        over_titles = [str(row.feature.properties.get(self.layer.title_field) or "").casefold() for row in self.rows]
        over_hits = self.fids[[i for i, t in enumerate(over_titles) if needle in t]]
        over_exact = self.fids[[i for i, t in enumerate(over_titles) if needle == t]]
        fids = np.concatenate([base.fids[hits], over_hits])
        is_exact = np.isin(fids, np.concatenate([base.fids[exact], over_exact]))
        order = np.lexsort((fids, ~is_exact))
        return fids[order], is_exact[order]


class MemIndex(FeatureReader):
    """Answers reads of a store's layers from in-memory snapshots kept in step with the store's versions."""

    def __init__(
        self, store: Store, *, merge_after: int = MERGE_AFTER, sql: FeatureReader | None = None, sql_above: int = 0
    ):
        self.store = store
        self.registry = store.registry
        self.merge_after = merge_after
        #: a reader that answers in the database, for layers of more than ``sql_above`` features
        self.sql = sql
        self.sql_above = sql_above
        self._sql_layers: dict[str, bool] = {}
        self._snapshots: dict[str, Snapshot] = {}
        self._locks = {layer_id: threading.Lock() for layer_id in self.registry.ids}
        self._merging: dict[str, threading.Thread] = {}

    def layer(self, layer_id: str) -> Layer:
        return self.registry.require(layer_id)

    def _in_sql(self, layer_id: str) -> bool:
        """Whether the database answers this layer (decided once per process, from the layer's size)."""
        found = self._sql_layers.get(layer_id)
        if found is None:
            self.layer(layer_id)
            found = self.sql is not None and self.store.estimated_count(layer_id) > self.sql_above
            self._sql_layers[layer_id] = found
        return found

    def answers_in_sql(self, layer_id: str) -> bool:
        """Whether the database answers this layer's reads (it is larger than ``sql_above``)."""
        return self._in_sql(layer_id)

    def _base(self, layer_id: str) -> Base:
        data = self.store.load(layer_id)
        for problem in data.problems[:5]:
            log.warning("layer %s, feature %s: %s: %s", layer_id, problem.fid, problem.field, problem.message)
        return Base(self.layer(layer_id), data, self.store.metric_crs, data.problems)

    def snapshot(self, layer_id: str, version: int | None = None) -> Snapshot:
        """The layer as it is at the store's current version (or ``version``, read by the caller)."""
        self.layer(layer_id)
        if version is None:
            version = self.store.versions()[layer_id]
        snap = self._snapshots.get(layer_id)
        if snap is not None and snap.version == version:
            return snap
        with self._locks[layer_id]:
            snap = self._snapshots.get(layer_id)
            if snap is None:
                base = self._base(layer_id)
                snap = Snapshot(base, base.version, {})
            if snap.version != version:
                delta = self.store.changes(layer_id, snap.version, DELTA_LIMIT)
                if delta is None:
                    base = self._base(layer_id)
                    snap = Snapshot(base, base.version, {})
                    delta = self.store.changes(layer_id, base.version, DELTA_LIMIT)
                if delta is not None and (delta.changed or delta.deleted or delta.version != snap.version):
                    snap = snap.apply(delta, self.store.metric_crs)
            self._snapshots[layer_id] = snap
            if len(snap.changed) > self.merge_after and layer_id not in self._merging:
                thread = threading.Thread(target=self._merge, args=(layer_id,), name=f"merge-{layer_id}", daemon=True)
                self._merging[layer_id] = thread
                thread.start()
            return snap

    def _merge(self, layer_id: str) -> None:
        """Build a new base from a full load and swap it in, with the changes made meanwhile laid over it."""
        try:
            base = self._base(layer_id)
            with self._locks[layer_id]:
                snap = Snapshot(base, base.version, {})
                delta = self.store.changes(layer_id, base.version, DELTA_LIMIT)
                if delta is not None:
                    snap = snap.apply(delta, self.store.metric_crs)
                    self._snapshots[layer_id] = snap
        except Exception:
            log.exception("building a new base of %s failed; the current one stays", layer_id)
        finally:
            self._merging.pop(layer_id, None)

    def wait_for_merges(self) -> None:
        """Wait until background merges end (for tests and orderly shutdown)."""
        for thread in list(self._merging.values()):
            thread.join()

    def warm(self) -> None:
        """Build every layer's snapshot and k-nearest index now (before a server forks its workers)."""
        versions = self.store.versions()
        for layer_id in self.registry.ids:
            if self._in_sql(layer_id):
                continue
            snap = self.snapshot(layer_id, versions[layer_id])
            if len(snap.base) > BRUTE_FORCE_NEAREST and not snap.base.points:
                snap.base.nearest_by_bounds(shapely.Point(0, 0), 1)  # builds the R-tree (lines and areas)

    # -- FeatureReader ------------------------------------------------------------------------

    def select(
        self, layer_id: str, query: Query, offset: int = 0, limit: int = 100, visibility: Visibility = "public"
    ) -> Page:
        """Select features of a layer.

        Parameters
        ----------
        layer_id : str
            A registered layer.
        query : Query
            ``bbox`` and ``within`` match geometries intersecting them (lon/lat); ``near`` keeps
            features within a radius in metres; ``nearest`` keeps the k nearest; ``filters``
            keep features whose field equals one of the given values.
        offset, limit : int
            The page: ``limit`` matches from position ``offset`` of the result order.
        visibility : {"public", "internal"}
            Which fields the features carry.

        Returns
        -------
        Page
            Features ordered by fid, or by distance then fid when ``near`` or ``nearest`` is given
            (with ``distance_m`` in metres, measured in the metric CRS).
        """
        if self._in_sql(layer_id):
            return self.sql.select(layer_id, query, offset, limit, visibility)
        snap = self.snapshot(layer_id)
        fids, distances = snap.match(query)
        matched = len(fids)
        if query.after is not None:
            fids = fids[np.searchsorted(fids, query.after, side="right") :]
        cut = slice(offset, offset + limit)
        page_fids = fids[cut]
        page_distances = None if distances is None else distances[cut]
        return Page(
            features=snap.features(page_fids, page_distances, visibility),
            ids=page_fids.tolist(),
            matched=matched,
            version=snap.version,
            distances=None if page_distances is None else page_distances.tolist(),
            more=offset + limit < len(fids),
        )

    def get(self, layer_id: str, fid: int, visibility: Visibility = "public") -> Feature | None:
        if self._in_sql(layer_id):
            return self.sql.get(layer_id, fid, visibility)
        feature = self.snapshot(layer_id).get(fid)
        if feature is None:
            return None
        names = _names(self.layer(layer_id), visibility)
        return Feature(layer_id, fid, feature.geometry, {n: feature.properties.get(n) for n in names}, feature.version)

    def count(self, layer_id: str, filters: Mapping[str, Sequence[Any]] | None = None) -> int:
        if self._in_sql(layer_id):
            return self.sql.count(layer_id, filters)
        snap = self.snapshot(layer_id)
        return snap.count(filters) if filters else len(snap)

    def versions(self) -> dict[str, int]:
        return {layer_id: v for layer_id, v in self.store.versions().items() if layer_id in self.registry}

    def summary(self) -> dict[str, LayerSummary]:
        versions = self.store.versions()
        return {
            layer_id: self.sql.layer_summary(layer_id, versions[layer_id])
            if self._in_sql(layer_id)
            else self.snapshot(layer_id, versions[layer_id]).summary()
            for layer_id in self.registry.ids
        }

    def search(self, text: str, limit: int) -> list[dict[str, Any]]:
        """Features whose title (name, site, code ...) contains ``text``, across the operational layers.

        Exact matches come first, then by layer drawing order (top layers first) and fid.
        """
        needle = text.casefold()
        hits: list[tuple[bool, int, int, dict[str, Any]]] = []
        for rank, layer in enumerate(reversed(list(self.registry))):
            if layer.context:
                continue
            if self._in_sql(layer.id):
                hits += [(miss, rank, fid, hit) for miss, fid, hit in self.sql.search_layer(layer, needle, limit)]
                continue
            snap = self.snapshot(layer.id)
            fids, exact = snap.search(needle)
            for fid, is_exact in zip(fids[:limit].tolist(), exact[:limit].tolist(), strict=True):
                feature = snap.get(fid)
                point = shapely.point_on_surface(feature.geometry)
                title = feature.properties.get(layer.title_field)
                hit = {"layer": layer.id, "id": fid, "title": str(title), "lon": point.x, "lat": point.y}
                hits.append((not is_exact, rank, fid, hit))
        return [hit for *_, hit in sorted(hits, key=lambda h: h[:3])][:limit]
