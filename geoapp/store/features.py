"""Feature reads and writes in SQL, written once for every backend that keeps a layer as a table.

A layer table has ``fid``, ``geom``, the layer's fields and ``_version``; SQL triggers (the
backend's own dialect) raise the layer's version and log every changed fid, whoever writes. This
mixin gives a backend ``get``, ``changes``, ``insert``/``insert_many``, ``update``, ``delete``
(soft: the feature is kept in ``geoapp_deleted``) and ``restore``, each write one transaction with
its audit row. The backend says how its SQL differs:

- ``mark``: the DB-API parameter marker (``?`` or ``%s``);
- ``geometry_in`` / ``geometry_out``: SQL that takes a geometry parameter and reads a geometry
  column back as bytes, with ``encode_geometry`` / ``decode_geometry`` for those bytes;
- ``column_out(spec)``: SQL that reads a field (a date as ISO text, say);
- ``lock_row``: what makes a read of a row hold it until the transaction ends;
- ``_write(layer_id, geometry)``: a write transaction (and what a backend keeps besides);
- ``_snapshot()``: a read transaction in which the layer version and the rows agree.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any

import shapely
import sqlalchemy as sa
from shapely.geometry.base import BaseGeometry

from geoapp.core.layers import FieldDef, Layer, Registry
from geoapp.core.validate import prepare
from geoapp.errors import NotFound, VersionConflict
from geoapp.store import tables
from geoapp.store.base import VERSION_COLUMN, Actor, Delta, Feature
from geoapp.store.records import audit_row, now

#: fids read with one ``IN (...)`` list
CHUNK = 500


def quote(name: str) -> str:
    """A SQL identifier, quoted (layer ids and field names come from the layer definitions)."""
    return '"' + name.replace('"', '""') + '"'


def value(kind: str, stored: Any) -> Any:
    """A stored value as the field's Python type; None for a value of another type (written by another tool)."""
    if stored is None:
        return None
    if kind == "boolean":
        return bool(stored) if isinstance(stored, int) else None
    if kind == "integer":
        return stored if isinstance(stored, int) and not isinstance(stored, bool) else None
    if kind == "number":
        ok = isinstance(stored, int) and not isinstance(stored, bool)
        return stored if ok or (isinstance(stored, float) and math.isfinite(stored)) else None
    return stored if isinstance(stored, str) else None


class _Unchanged(Exception):
    """An update that changes nothing: roll back and return the feature as it is."""

    def __init__(self, feature: Feature):
        self.feature = feature


class FeatureSQL:
    """Feature reads and writes for a backend (see the module's docstring)."""

    registry: Registry
    dialect: sa.engine.Dialect
    mark = "?"
    geometry_in = "?"
    geometry_out = "geom"
    lock_row = ""
    encode_geometry: Callable[[BaseGeometry], bytes]
    decode_geometry: Callable[[bytes | None], BaseGeometry | None]
    _write: Callable[..., AbstractContextManager]
    _snapshot: Callable[[], AbstractContextManager]
    _reading: Callable[[], AbstractContextManager]
    metric_crs: str

    def column_out(self, spec: FieldDef) -> str:
        return quote(spec.name)

    def _layer(self, layer_id: str) -> Layer:
        return self.registry.require(layer_id)

    # -- reading ------------------------------------------------------------------------------

    def _select_list(self, layer: Layer) -> str:
        return ", ".join(["fid", f"{self.geometry_out}", *map(self.column_out, layer.fields), quote(VERSION_COLUMN)])

    def _rows(self, conn: Any, layer: Layer, fids: Sequence[int], *, lock: bool = False) -> list[Feature]:
        out = []
        for start in range(0, len(fids), CHUNK):
            chunk = [int(f) for f in fids[start : start + CHUNK]]
            marks = ", ".join([self.mark] * len(chunk))
            sql = f"SELECT {self._select_list(layer)} FROM {quote(layer.id)} WHERE fid IN ({marks})"
            for row in conn.execute(sql + (self.lock_row if lock else ""), chunk):
                out.append(self._feature(layer, row))
        return out

    def _feature(self, layer: Layer, row: Sequence[Any]) -> Feature:
        """A row ``fid, geom, *fields, _version`` as a Feature (a missing version counts as 1)."""
        props = {spec.name: value(spec.type, v) for spec, v in zip(layer.fields, row[2:-1], strict=True)}
        return Feature(layer.id, row[0], self.decode_geometry(row[1]), props, row[-1] or 1)

    def get(self, layer_id: str, fid: int) -> Feature | None:
        layer = self._layer(layer_id)
        with self._reading() as conn:
            return self._get(conn, layer, fid)

    def _get(self, conn: Any, layer: Layer, fid: int, *, lock: bool = False) -> Feature | None:
        if not 0 < fid < 2**63:
            return None  # no such fid can exist (and the database would refuse to compare it)
        rows = self._rows(conn, layer, [fid], lock=lock)
        return rows[0] if rows else None

    def changes(self, layer_id: str, since: int, limit: int) -> Delta | None:
        layer = self._layer(layer_id)
        m = self.mark
        with self._snapshot() as conn:  # the version and the rows agree
            version = conn.execute(f"SELECT version FROM geoapp_layer_versions WHERE layer_id = {m}", (layer_id,))
            version = version.fetchone()[0]
            fids = [
                row[0]
                for row in conn.execute(
                    f"SELECT DISTINCT fid FROM geoapp_changes WHERE layer = {m} AND version > {m} LIMIT {m}",
                    (layer_id, since, limit + 1),
                )
            ]
            # a fid below 1 marks a change no row names (a TRUNCATE): reload
            if len(fids) > limit or version < since or any(f < 1 for f in fids):
                return None
            found = {f.fid: f for f in self._rows(conn, layer, fids)}
        return Delta(version, [found[f] for f in sorted(found)], sorted(set(fids) - set(found)))

    # -- writing ------------------------------------------------------------------------------

    def insert(self, layer_id: str, properties: Mapping[str, Any], geometry: BaseGeometry, *, actor: Actor) -> Feature:
        (feature,) = self.insert_many(layer_id, [(properties, geometry)], actor=actor)
        return feature

    def insert_many(
        self, layer_id: str, features: Sequence[tuple[Mapping[str, Any], BaseGeometry]], *, actor: Actor
    ) -> list[Feature]:
        layer = self._layer(layer_id)
        if not features:
            return []
        records, geoms = prepare(layer, [p for p, _ in features], [g for _, g in features], self.metric_crs)
        out = []
        with self._write(layer_id, geoms) as conn:
            for record, geom in zip(records, geoms, strict=True):
                fid = self._insert_row(conn, layer_id, record, geom, 1)
                changes = {name: [None, v] for name, v in record.items() if v is not None}
                audit_row(conn, self.dialect, actor, "insert", layer_id, fid, {**changes, "geometry": [None, geom.wkt]})
                out.append(Feature(layer_id, fid, geom, record, 1))
        return out

    def _insert_row(self, conn: Any, layer_id: str, record: Mapping[str, Any], geom, version: int, fid=None) -> int:
        names = ["geom", *record, VERSION_COLUMN] + (["fid"] if fid is not None else [])
        values = [self.encode_geometry(geom), *record.values(), version]
        values += [fid] if fid is not None else []
        marks = ", ".join([self.geometry_in] + [self.mark] * (len(names) - 1))
        sql = f"INSERT INTO {quote(layer_id)} ({', '.join(map(quote, names))}) VALUES ({marks}) RETURNING fid"
        return conn.execute(sql, values).fetchone()[0]

    def update(
        self,
        layer_id: str,
        fid: int,
        properties: Mapping[str, Any] | None = None,
        geometry: BaseGeometry | None = None,
        *,
        expected_version: int,
        actor: Actor,
    ) -> Feature:
        layer = self._layer(layer_id)
        try:
            return self._update(layer, fid, properties, geometry, expected_version, actor)
        except _Unchanged as unchanged:
            return unchanged.feature  # nothing to write, nothing to audit

    def _update(self, layer: Layer, fid, properties, geometry, expected_version, actor) -> Feature:
        layer_id = layer.id
        with self._write(layer_id, [] if geometry is None else [geometry]) as conn:
            current = self._current(conn, layer, fid, expected_version)
            merged = {f.name: current.properties[f.name] for f in layer.fields if not f.computed}
            merged.update(properties or {})
            geom = current.geometry if geometry is None else geometry
            (record,), (geom,) = prepare(layer, [merged], [geom], self.metric_crs)
            changes = {k: [current.properties.get(k), v] for k, v in record.items() if current.properties.get(k) != v}
            if current.geometry is None or not geom.equals_exact(current.geometry, 0):
                changes["geometry"] = [None if current.geometry is None else current.geometry.wkt, geom.wkt]
            if not changes:
                raise _Unchanged(current)
            m = self.mark
            assignments = ", ".join([f"geom = {self.geometry_in}", *(f"{quote(n)} = {m}" for n in record)])
            conn.execute(
                f"UPDATE {quote(layer_id)} SET {assignments}, {quote(VERSION_COLUMN)} = {m} WHERE fid = {m}",
                [self.encode_geometry(geom), *record.values(), current.version + 1, fid],
            )
            audit_row(conn, self.dialect, actor, "update", layer_id, fid, changes)
        return Feature(layer_id, fid, geom, record, current.version + 1)

    def _current(self, conn: Any, layer: Layer, fid: int, expected_version: int) -> Feature:
        current = self._get(conn, layer, fid, lock=True)
        if current is None:
            raise NotFound(f"no feature {fid} in layer {layer.id}", parameter="fid")
        if expected_version != current.version:
            raise VersionConflict(
                f"feature {layer.id}/{fid} is at version {current.version}, not {expected_version}; "
                "read it again and re-apply your change",
                parameter="version",
            )
        return current

    def delete(self, layer_id: str, fid: int, *, expected_version: int, actor: Actor) -> None:
        layer = self._layer(layer_id)
        d = tables.deleted
        with self._write(layer_id, []) as conn:
            current = self._current(conn, layer, fid, expected_version)
            tables.run(conn, sa.delete(d).where(d.c.layer == layer_id, d.c.fid == fid), self.dialect)
            kept = {
                "layer": layer_id,
                "fid": fid,
                "version": current.version,
                "geom": b"" if current.geometry is None else self.encode_geometry(current.geometry),
                "properties": json.dumps(current.properties, ensure_ascii=False),
                "deleted_at": now(),
                "deleted_by": actor.name,
            }
            tables.run(conn, sa.insert(d).values(**kept), self.dialect)
            conn.execute(f"DELETE FROM {quote(layer_id)} WHERE fid = {self.mark}", (fid,))
            audit_row(conn, self.dialect, actor, "delete", layer_id, fid, {"version": [current.version, None]})

    def restore(self, layer_id: str, fid: int, *, actor: Actor) -> Feature:
        layer = self._layer(layer_id)
        d = tables.deleted
        where = (d.c.layer == layer_id, d.c.fid == fid)
        with self._write(layer_id, []) as conn:
            found = sa.select(d.c.version, d.c.geom, d.c.properties).where(*where)
            row = tables.run(conn, found, self.dialect).fetchone() if 0 < fid < 2**63 else None
            if row is None:
                raise NotFound(f"no deleted feature {fid} in layer {layer_id}", parameter="fid")
            version, blob, props = row
            geom = self.decode_geometry(bytes(blob) or None)
            # back as it was deleted: a rule added since holds for its next change, not for its return
            (record,), _ = prepare(
                layer, [json.loads(props)], [geom], self.metric_crs, allow_computed=True, rules=False
            )
            self._insert_row(conn, layer_id, record, geom, version + 1, fid=fid)
            tables.run(conn, sa.delete(d).where(*where), self.dialect)
            self._restored(conn, layer_id, geom)
            audit_row(conn, self.dialect, actor, "restore", layer_id, fid, {"version": [None, version + 1]})
        return Feature(layer_id, fid, geom, record, version + 1)

    def _restored(self, conn: Any, layer_id: str, geometry: BaseGeometry | None) -> None:
        """What a backend keeps besides when a feature comes back (the GeoPackage's extent)."""

    # -- an import: many inserts, updates and deletes in one transaction ---------------------------

    def apply_import(
        self,
        layer_id: str,
        inserts: Sequence[tuple[Mapping[str, Any], BaseGeometry]],
        updates: Sequence[tuple[int, int, Mapping[str, Any], BaseGeometry | None]] = (),
        *,
        replace: bool = False,
        actor: Actor,
        note: Mapping[str, Any] | None = None,
    ) -> dict[str, int]:
        layer = self._layer(layer_id)
        records, geoms = ([], [])
        if inserts:
            records, geoms = prepare(layer, [p for p, _ in inserts], [g for _, g in inserts], self.metric_crs)
        touched = list(geoms) + [u[3] for u in updates if u[3] is not None]
        with self._write(layer_id, touched) as conn:
            deleted = self._delete_all(conn, layer, actor) if replace else 0
            updated = self._update_many(conn, layer, updates, actor) if updates else 0
            inserted = self._insert_many_rows(conn, layer, records, geoms, actor) if records else 0
            counts = {"inserted": inserted, "updated": updated, "deleted": deleted}
            if note is not None:
                summary = {key: [None, v] for key, v in {**note, **counts}.items()}
                audit_row(conn, self.dialect, actor, "import", layer_id, None, summary)
        return counts

    def _audit_many(self, conn: Any, actor: Actor, action: str, layer_id: str, rows: list[tuple[int, dict]]) -> None:
        """Audit rows of many features at once (as ``audit_row`` writes each; a token's use is noted by the import's
        own row)."""
        m = self.mark
        at = now()
        sql = (
            "INSERT INTO geoapp_audit (at, actor, actor_kind, action, layer, fid, changes, address) "
            f"VALUES ({', '.join([m] * 8)})"
        )
        values = [
            (at, actor.name, actor.kind, action, layer_id, fid, json.dumps(changes, ensure_ascii=False), actor.address)
            for fid, changes in rows
        ]
        cursor = conn.cursor()
        for start in range(0, len(values), 5000):
            cursor.executemany(sql, values[start : start + 5000])

    def _insert_many_rows(self, conn: Any, layer: Layer, records: list[dict], geoms, actor: Actor) -> int:
        wkts = shapely.to_wkt(geoms, rounding_precision=-1)
        audits = []
        names = list(records[0])  # prepare gives every record the layer's fields, in order
        columns = ", ".join(map(quote, ["geom", *names, VERSION_COLUMN]))
        marks = ", ".join([self.geometry_in] + [self.mark] * (len(names) + 1))
        sql = f"INSERT INTO {quote(layer.id)} ({columns}) VALUES ({marks}) RETURNING fid"
        encode = self.encode_geometry
        for record, geom, wkt in zip(records, geoms, wkts, strict=True):
            fid = conn.execute(sql, [encode(geom), *(record[n] for n in names), 1]).fetchone()[0]
            changes = {name: [None, v] for name, v in record.items() if v is not None}
            changes["geometry"] = [None, wkt]
            audits.append((fid, changes))
        self._audit_many(conn, actor, "insert", layer.id, audits)
        return len(audits)

    def _update_many(self, conn: Any, layer: Layer, updates, actor: Actor) -> int:
        fids = [int(u[0]) for u in updates]
        current = {f.fid: f for f in self._rows(conn, layer, fids, lock=True)}
        merged_records, merged_geoms, befores = [], [], []
        for fid, expected, properties, geometry in updates:
            before = current.get(int(fid))
            if before is None:
                raise NotFound(f"no feature {fid} in layer {layer.id}", parameter="fid")
            if before.version != expected:
                raise VersionConflict(
                    f"feature {layer.id}/{fid} is at version {before.version}, not {expected}; "
                    "it changed while the import was checked: check the file again",
                    parameter="version",
                )
            merged = {f.name: before.properties[f.name] for f in layer.fields if not f.computed}
            merged.update(properties)
            merged_records.append(merged)
            merged_geoms.append(before.geometry if geometry is None else geometry)
            befores.append(before)
        records, geoms = prepare(layer, merged_records, merged_geoms, self.metric_crs)
        m = self.mark
        audits, rows = [], []
        sql = None
        for before, record, geom in zip(befores, records, geoms, strict=True):
            changes = {k: [before.properties.get(k), v] for k, v in record.items() if before.properties.get(k) != v}
            if before.geometry is None or not geom.equals_exact(before.geometry, 0):
                changes["geometry"] = [None if before.geometry is None else before.geometry.wkt, geom.wkt]
            if not changes:
                continue  # nothing to write, nothing to audit
            if sql is None:
                assignments = ", ".join([f"geom = {self.geometry_in}", *(f"{quote(n)} = {m}" for n in record)])
                sql = f"UPDATE {quote(layer.id)} SET {assignments}, {quote(VERSION_COLUMN)} = {m} WHERE fid = {m}"
            rows.append([self.encode_geometry(geom), *record.values(), before.version + 1, before.fid])
            audits.append((before.fid, changes))
        if rows:
            conn.cursor().executemany(sql, rows)
        self._audit_many(conn, actor, "update", layer.id, audits)
        return len(audits)

    def _delete_all(self, conn: Any, layer: Layer, actor: Actor) -> int:
        """Delete every feature of the layer, each kept in ``geoapp_deleted`` as ``delete`` keeps it."""
        table = quote(layer.id)
        fids = [row[0] for row in conn.execute(f"SELECT fid FROM {table} ORDER BY fid")]
        if not fids:
            return 0
        m = self.mark
        conn.execute(f"DELETE FROM geoapp_deleted WHERE layer = {m} AND fid IN (SELECT fid FROM {table})", (layer.id,))
        at = now()
        kept, audits = [], []
        for feature in self._rows(conn, layer, fids):
            geom = b"" if feature.geometry is None else self.encode_geometry(feature.geometry)
            props = json.dumps(feature.properties, ensure_ascii=False)
            kept.append((layer.id, feature.fid, feature.version, geom, props, at, actor.name))
            audits.append((feature.fid, {"version": [feature.version, None]}))
        sql = (
            "INSERT INTO geoapp_deleted (layer, fid, version, geom, properties, deleted_at, deleted_by) "
            f"VALUES ({', '.join([m] * 7)})"
        )
        conn.cursor().executemany(sql, kept)
        conn.execute(f"DELETE FROM {table}")
        self._audit_many(conn, actor, "delete", layer.id, audits)
        return len(audits)
