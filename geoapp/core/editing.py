"""The use cases that change layers: every change from the API, the pages, the CLI and later imports goes here.

Flask-free. Each use case checks the caller's permission (``geoapp.core.permissions``), the
geometry and the district rule, then hands the change to the store, which validates the values
against the layer definition and writes the change with its audit row in one transaction. The
actor is a required argument: there is no default to be audited as.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from geoapp.core import messages, permissions
from geoapp.core.crs import STORAGE_CRS, project
from geoapp.core.layers import Layer
from geoapp.errors import InvalidFeature, InvalidParameter, VersionRequired
from geoapp.store.base import Actor, DeletedFeature, Feature, FeatureReader, Query, Store

#: how far outside the district boundary a feature may lie (boundary roads, shared sites)
DISTRICT_MARGIN_M = 2000
DISTRICT_LAYER = "district_boundary"
#: a version as an ETag or If-Match carries it: ``"7"`` (public) or ``"7-internal"`` (staff); maybe weak, and
#: with the ``:gzip`` a compressing server appends to the ETag of a compressed response
_ETAG = re.compile(r'(?:W/)?"?([0-9]{1,18})(?:-internal)?(?::[a-z0-9-]{1,16})?"?', re.ASCII)


def etag(version: int, visibility: str) -> str:
    """A feature's ETag value: its version, distinct per visibility (a cache must not mix the two)."""
    return str(version) if visibility == "public" else f"{version}-internal"


def expected_version(if_match: str | None, body_version: Any = None) -> int:
    """The feature version the caller read: an ETag from GET in ``If-Match``, or ``"version": 7`` in a body."""
    if if_match is not None and if_match.strip():
        match = _ETAG.fullmatch(if_match.strip())
        if match is None:
            raise InvalidParameter(
                f'If-Match must be the ETag a GET of the feature returned (such as "7"), not {if_match[:40]!r}',
                parameter="If-Match",
            )
        return int(match.group(1))
    if body_version is None:
        raise VersionRequired(
            "send the version you read (If-Match header or a version field) so that no change is overwritten",
            parameter="version",
        )
    if isinstance(body_version, bool) or not isinstance(body_version, int | str):
        raise InvalidParameter(f"version must be a whole number, not {body_version!r}", parameter="version")
    if isinstance(body_version, str):
        if not re.fullmatch(r"[0-9]{1,18}", body_version, re.ASCII):
            raise InvalidParameter(f"version must be a whole number, not {body_version[:40]!r}", parameter="version")
        body_version = int(body_version)
    if not 0 < body_version < 2**63:
        raise InvalidParameter("version must be a whole number from 1", parameter="version")
    return body_version


class Editing:
    """Create, update, delete, restore and batch-insert features of a store, for a caller."""

    def __init__(
        self, store: Store, reader: FeatureReader, *, closure_fields: Mapping[str, tuple[str, str]] | None = None
    ):
        self.store = store
        #: layer -> (status field, its closed value): only closing and reopening set or clear that value
        #: (geoapp.flood keeps who closed it, when and why)
        self.closure_fields = dict(closure_fields or {})
        self.reader = reader
        self.registry = store.registry
        self._district: tuple[int, BaseGeometry | None] | None = None
        self._lock = threading.Lock()

    def _layer(self, layer_id: str):
        return self.registry.require(layer_id)

    def create(self, actor: Actor, layer_id: str, properties: Mapping[str, Any], geometry: BaseGeometry) -> Feature:
        """Add a feature; return it with its fid and version 1."""
        (feature,) = self.create_many(actor, layer_id, [(properties, geometry)])
        return feature

    def create_many(
        self, actor: Actor, layer_id: str, features: Sequence[tuple[Mapping[str, Any], BaseGeometry]]
    ) -> list[Feature]:
        """Add many features in one transaction: all of them or none; an error names the first that does not fit."""
        layer = self._layer(layer_id)
        permissions.require_edit(actor, layer)
        many = len(features) > 1
        owned, closed = self.closure_fields.get(layer_id, (None, None))
        for i, (properties, geometry) in enumerate(features):
            if not isinstance(properties, Mapping):
                raise InvalidParameter("properties must be an object of field values", parameter="properties")
            position = i if many else None
            self._check_inside_district(layer, geometry, position)
            if owned and properties.get(owned) == closed:
                text = messages.message("closure_new", closed=_value_label(layer, owned, closed))
                raise InvalidFeature(
                    f"{f'feature {i}: ' if many else ''}a new feature cannot be {closed}; "
                    "close it afterwards with a reason (the flood board, or POST /api/flood/closures)",
                    parameter=owned,
                    text=text.in_batch(position),
                )
        return self.store.insert_many(layer_id, list(features), actor=actor)

    def update(
        self,
        actor: Actor,
        layer_id: str,
        fid: int,
        *,
        version: int,
        properties: Mapping[str, Any] | None = None,
        geometry: BaseGeometry | None = None,
    ) -> Feature:
        """Change fields and/or the geometry of the ``version`` the caller read (409 if it is stale)."""
        layer = self._layer(layer_id)
        permissions.require_edit(actor, layer)
        if geometry is not None:
            self._check_inside_district(layer, geometry)
        self._check_closure_field(layer_id, fid, properties or {})
        return self.store.update(layer_id, fid, properties or {}, geometry, expected_version=version, actor=actor)

    def delete(self, actor: Actor, layer_id: str, fid: int, *, version: int) -> None:
        """Remove a feature (kept, so that an administrator can restore it)."""
        layer = self._layer(layer_id)
        permissions.require_edit(actor, layer)
        self.store.delete(layer_id, fid, expected_version=version, actor=actor)

    def restore(self, actor: Actor, layer_id: str, fid: int) -> Feature:
        """Put a deleted feature back under its fid (administrators)."""
        self._layer(layer_id)
        permissions.require_restore(actor)
        return self.store.restore(layer_id, fid, actor=actor)

    def deleted(self, actor: Actor) -> list[DeletedFeature]:
        """What was deleted and may be restored, newest first (administrators)."""
        permissions.require_restore(actor)
        return [item for item in self.store.deleted() if item.feature.layer in self.registry]

    def _check_closure_field(self, layer_id: str, fid: int, properties: Mapping[str, Any]) -> None:
        """Refuse an edit of the status a closure owns: closing and reopening keep who, when and why."""
        owned, closed = self.closure_fields.get(layer_id, (None, None))
        if not owned or owned not in properties:
            return
        current = self.reader.get(layer_id, fid)
        before = None if current is None else current.properties.get(owned)
        if before != properties[owned] and closed in (before, properties[owned]):
            layer = self._layer(layer_id)
            text = messages.message(
                "closure_edit", label=layer.field(owned).label, closed=_value_label(layer, owned, closed)
            )
            raise InvalidFeature(
                f"{owned} of {layer_id} becomes or stops being {closed} by closing or reopening it with a reason "
                "(the flood board, or POST /api/flood/closures), not by an edit",
                parameter=owned,
                text=text,
            )

    # -- the district rule ----------------------------------------------------------------------

    def _district_area(self) -> BaseGeometry | None:
        """The district and its margin in the metric CRS, rebuilt when the boundary layer changes."""
        if DISTRICT_LAYER not in self.registry:
            return None
        version = self.reader.versions()[DISTRICT_LAYER]
        with self._lock:
            if self._district is None or self._district[0] != version:
                page = self.reader.select(DISTRICT_LAYER, Query(), 0, 10_000)
                parts = [self.reader.get(DISTRICT_LAYER, fid) for fid in page.ids]
                geoms = [p.geometry for p in parts if p is not None]
                area = None
                if geoms:
                    metric = project(shapely.union_all(geoms), STORAGE_CRS, self.store.metric_crs)
                    area = shapely.buffer(metric, DISTRICT_MARGIN_M)
                    shapely.prepare(area)
                self._district = (version, area)
            return self._district[1]

    def _check_inside_district(self, layer: Layer, geometry: BaseGeometry, position: int | None = None) -> None:
        """Refuse geometry that lies outside the district boundary (with a margin), measured in metres."""
        where = "" if position is None else f"feature {position}: "
        if not isinstance(geometry, BaseGeometry) or geometry.is_empty:
            text = messages.message("geometry_missing", types=messages.geometry_words(layer.geometry))
            raise InvalidFeature(f"{where}a geometry is required", parameter="geometry", text=text.in_batch(position))
        area = self._district_area()
        if area is None:
            return
        if not area.contains(project(geometry, STORAGE_CRS, self.store.metric_crs)):
            text = messages.message("outside_district", margin=DISTRICT_MARGIN_M)
            raise InvalidFeature(
                f"{where}geometry lies outside the district (more than {DISTRICT_MARGIN_M} m beyond its boundary)",
                parameter="geometry",
                text=text.in_batch(position),
            )

    # -- imports (geoapp.io.importer plans them; this writes them, all or nothing) ------------------

    def outside_district(self, geometries: Sequence[BaseGeometry | None]) -> np.ndarray:
        """Per geometry, whether it lies outside the district and its margin: one projection for all of them.

        A missing or empty geometry counts as inside (the validation says it is missing).
        """
        geoms = np.empty(len(geometries), dtype=object)
        geoms[:] = list(geometries)
        outside = np.zeros(len(geoms), dtype=bool)
        area = self._district_area()
        if area is None or not len(geoms):
            return outside
        present = np.array([isinstance(g, BaseGeometry) and not g.is_empty for g in geoms], dtype=bool)
        if present.any():
            with np.errstate(invalid="ignore"):
                metric = project(geoms[present], STORAGE_CRS, self.store.metric_crs)
            outside[present] = ~shapely.contains(area, metric)
        return outside

    def import_features(
        self,
        actor: Actor,
        layer_id: str,
        inserts: Sequence[tuple[Mapping[str, Any], BaseGeometry]],
        updates: Sequence[tuple[int, int, Mapping[str, Any], BaseGeometry | None]] = (),
        *,
        replace: bool = False,
        note: Mapping[str, Any] | None = None,
    ) -> dict[str, int]:
        """Write an import in one transaction: all of it or nothing.

        ``inserts`` are (properties, geometry); ``updates`` are (fid, the version read, the fields the
        file changes, a new geometry or None); ``replace`` first deletes every current feature (kept,
        as a delete keeps them). The permission, the district rule and the closure rule are checked as
        ``create_many`` and ``update`` check them, and an error names the first feature that does not
        fit. ``note`` (file, mode, counts) becomes one audit row of the import itself. Returns the counts
        written: inserted, updated, deleted.
        """
        layer = self._layer(layer_id)
        permissions.require_edit(actor, layer)
        many = len(inserts) > 1
        for i, (properties, geometry) in enumerate(inserts):
            if not isinstance(properties, Mapping):
                raise InvalidParameter("properties must be an object of field values", parameter="properties")
            if not isinstance(geometry, BaseGeometry) or geometry.is_empty:
                self._check_inside_district(layer, geometry, i if many else None)
        geometries = [g for _, g in inserts] + [u[3] for u in updates if u[3] is not None]
        outside = np.flatnonzero(self.outside_district(geometries))
        if len(outside):
            position = int(outside[0])
            text = messages.message("outside_district", margin=DISTRICT_MARGIN_M)
            raise InvalidFeature(
                f"feature {position}: geometry lies outside the district (more than {DISTRICT_MARGIN_M} m beyond "
                "its boundary)",
                parameter="geometry",
                text=text.in_batch(position),
            )
        owned, closed = self.closure_fields.get(layer_id, (None, None))
        if owned:
            for i, (properties, _) in enumerate(inserts):
                if properties.get(owned) == closed:
                    text = messages.message("closure_new", closed=_value_label(layer, owned, closed))
                    raise InvalidFeature(
                        f"feature {i}: a new feature cannot be {closed}; close it afterwards with a reason",
                        parameter=owned,
                        text=text.in_batch(i),
                    )
            for fid, _, properties, _ in updates:
                self._check_closure_field(layer_id, fid, properties)
        return self.store.apply_import(layer_id, inserts, updates, replace=replace, actor=actor, note=note)


def _value_label(layer: Layer, name: str, value: str):
    """A value of a field as people read it (its label; the value itself where it has none)."""
    choice = layer.field(name).choice(value)
    return choice.label if choice is not None else value
