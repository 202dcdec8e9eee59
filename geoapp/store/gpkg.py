"""The embedded store: one GeoPackage file that GDAL and QGIS open, also after edits.

Layers are created by GDAL (through pyogrio), so the file carries the standard tables, the
R-tree spatial index and its triggers. Changes go through Python's ``sqlite3`` in one
transaction each; the ``ST_*`` functions those triggers call are registered on every
connection, so the spatial index stays in step for every other reader.

geoapp's own triggers on every layer table raise the layer's version and log the changed fid
(``geoapp_changes``) whoever writes, geoapp, QGIS or ogr2ogr, so that readers follow a layer by
deltas. The accounts, tokens and audit tables are not registered in ``gpkg_contents`` and one
attributes table is, so GDAL (and QGIS) list only the layers and ``geoapp_meta``; files are 0600.
"""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
import struct
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import orjson
import pyogrio
import shapely
from shapely.geometry.base import BaseGeometry
from sqlalchemy.dialects import sqlite

from geoapp.core.crs import STORAGE_SRS_ID
from geoapp.core.layers import Registry
from geoapp.errors import StoreBusy, StoreError
from geoapp.store import tables
from geoapp.store.base import (
    VERSION_COLUMN,
    Actor,
    LayerData,
    Problem,
    Store,
)
from geoapp.store.cases import ReportSQL
from geoapp.store.features import FeatureSQL, quote
from geoapp.store.flood import FloodSQL
from geoapp.store.frames import prepared_frames
from geoapp.store.photos import PhotoSQL
from geoapp.store.records import Records, audit_row

SCHEMA_VERSION = "6"  # 5: geoapp_photos; 6: geoapp_reports
#: how long a write waits for another writer's lock before answering "busy" (503)
BUSY_TIMEOUT_S = 10.0

# geoapp's own tables beside the layers are declared once in geoapp.store.tables (not registered in
# gpkg_contents, so GIS clients list only the layers); what SQLite alone says is here: the audit
# trail is append-only. IF NOT EXISTS: opening a store made by an older geoapp adds what it lacks.
AUDIT_TRIGGERS = """
CREATE TRIGGER IF NOT EXISTS geoapp_audit_no_update BEFORE UPDATE ON geoapp_audit
    BEGIN SELECT RAISE(ABORT, 'the audit trail cannot be changed'); END;
CREATE TRIGGER IF NOT EXISTS geoapp_audit_no_delete BEFORE DELETE ON geoapp_audit
    BEGIN SELECT RAISE(ABORT, 'the audit trail cannot be changed'); END;
-- INSERT OR REPLACE deletes the old row without firing DELETE triggers: refuse a row id that exists
CREATE TRIGGER IF NOT EXISTS geoapp_audit_no_replace BEFORE INSERT ON geoapp_audit
    WHEN NEW.id IS NOT NULL AND EXISTS (SELECT 1 FROM geoapp_audit WHERE id = NEW.id)
    BEGIN SELECT RAISE(ABORT, 'the audit trail cannot be changed'); END;
"""

# Per layer: whoever inserts, updates or deletes a row raises the layer's version and logs the fid;
# a row written without geoapp's _version (GDAL appends NULL) gets 1, and an update that left
# _version as it was (QGIS) raises it, so that If-Match keeps meaning "the version I read".
_LAYER_TRIGGERS = """
CREATE TRIGGER IF NOT EXISTS "geoapp_{name}_insert" AFTER INSERT ON "{table}" BEGIN
    UPDATE geoapp_layer_versions SET version = version + 1 WHERE layer_id = '{name}';
    INSERT INTO geoapp_changes (layer, fid, version)
        SELECT '{name}', NEW.fid, version FROM geoapp_layer_versions WHERE layer_id = '{name}';
    UPDATE "{table}" SET "_version" = 1 WHERE fid = NEW.fid AND "_version" IS NULL;
END;
CREATE TRIGGER IF NOT EXISTS "geoapp_{name}_update" AFTER UPDATE ON "{table}" BEGIN
    UPDATE geoapp_layer_versions SET version = version + 1 WHERE layer_id = '{name}';
    INSERT INTO geoapp_changes (layer, fid, version)
        SELECT '{name}', NEW.fid, version FROM geoapp_layer_versions WHERE layer_id = '{name}';
    INSERT INTO geoapp_changes (layer, fid, version)
        SELECT '{name}', OLD.fid, version FROM geoapp_layer_versions WHERE layer_id = '{name}' AND OLD.fid <> NEW.fid;
    UPDATE "{table}" SET "_version" = coalesce(OLD."_version", 0) + 1
        WHERE fid = NEW.fid AND NEW."_version" IS OLD."_version";
END;
CREATE TRIGGER IF NOT EXISTS "geoapp_{name}_delete" AFTER DELETE ON "{table}" BEGIN
    UPDATE geoapp_layer_versions SET version = version + 1 WHERE layer_id = '{name}';
    INSERT INTO geoapp_changes (layer, fid, version)
        SELECT '{name}', OLD.fid, version FROM geoapp_layer_versions WHERE layer_id = '{name}';
END;
"""
_ENVELOPE_BYTES = {0: 0, 1: 32, 2: 48, 3: 48, 4: 64}
_NONE = np.array([], dtype="int64")


# -- GeoPackage geometry blobs (GeoPackage 1.3, clause 2.1.3) ---------------------------------


def encode(geom: BaseGeometry, srs_id: int = STORAGE_SRS_ID) -> bytes:
    """A GeoPackage geometry blob: header, envelope (except for points), little-endian WKB."""
    wkb = shapely.to_wkb(geom, byte_order=1, output_dimension=2)
    if geom.is_empty:
        return struct.pack("<2sBBi", b"GP", 0, 0b10001, srs_id) + wkb
    if geom.geom_type == "Point":
        return struct.pack("<2sBBi", b"GP", 0, 0b00001, srs_id) + wkb
    minx, miny, maxx, maxy = geom.bounds
    return struct.pack("<2sBBi4d", b"GP", 0, 0b00011, srs_id, minx, maxx, miny, maxy) + wkb


def _wkb(blob: bytes) -> bytes:
    if blob[:2] != b"GP":
        raise ValueError("not a GeoPackage geometry blob")
    return blob[8 + _ENVELOPE_BYTES[(blob[3] >> 1) & 0b111] :]


def decode(blob: bytes | None) -> BaseGeometry | None:
    """The shapely geometry in a GeoPackage blob (None for none, or for a blob that is not one)."""
    if blob is None:
        return None
    try:
        return shapely.from_wkb(_wkb(blob))
    except (ValueError, KeyError, IndexError, TypeError, shapely.errors.GEOSException):
        return None


def _bounds(blob: bytes | None) -> tuple[float, float, float, float] | None:
    if blob is None or blob[3] & 0b10000:
        return None
    if (blob[3] >> 1) & 0b111:
        minx, maxx, miny, maxy = struct.unpack_from("<4d", blob, 8)
        return minx, miny, maxx, maxy
    if len(blob) == 29 and blob[8:13] == b"\x01\x01\x00\x00\x00":  # a little-endian 2D point: read as it is
        x, y = struct.unpack_from("<2d", blob, 13)
        return x, y, x, y
    return shapely.from_wkb(_wkb(blob)).bounds


def _st_is_empty(blob):
    return None if blob is None else int(bool(blob[3] & 0b10000))


def _st_bound(i: int):
    def fn(blob):
        bounds = _bounds(blob)
        return None if bounds is None else bounds[i]

    return fn


# -- the store --------------------------------------------------------------------------------


class GeoPackageStore(FeatureSQL, FloodSQL, PhotoSQL, ReportSQL, Records, Store):
    backend = "gpkg"
    dialect = sqlite.dialect()
    encode_geometry = staticmethod(encode)
    decode_geometry = staticmethod(decode)

    def __init__(self, registry: Registry, location: str, *, busy_timeout: float = BUSY_TIMEOUT_S):
        super().__init__(registry, location)
        self.path = Path(location)
        self.busy_timeout = busy_timeout
        if not self.path.is_file():
            raise StoreError(
                f"no store at {self.path}; create it with `flask --app wsgi geoapp init --demo`", parameter="database"
            )
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._writing = threading.RLock()
        try:
            meta = dict(self._conn().execute("SELECT key, value FROM geoapp_meta"))
            present = {row[0] for row in self._conn().execute("SELECT layer_id FROM geoapp_layer_versions")}
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path} is not a geoapp GeoPackage ({exc})", parameter="database") from None
        missing = [layer.id for layer in registry if layer.id not in present]
        if missing:
            raise StoreError(
                f"{self.path} lacks layers {', '.join(missing)} (declared since it was made); "
                "add them with `geoapp db upgrade`",
                parameter="database",
            )
        self._metric_crs = meta["metric_crs"]
        self._synthetic = meta.get("demo") == "1"
        if meta.get("schema_version") != SCHEMA_VERSION:
            with self._transaction() as conn:
                _install_schema(conn, registry)
                conn.execute("UPDATE geoapp_meta SET value = ? WHERE key = 'schema_version'", (SCHEMA_VERSION,))

    # connections: one per thread, autocommit, with the functions GDAL's triggers call
    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None or self._local.pid != os.getpid():
            # a connection must not cross a fork (a server that loads the app before forking workers)
            conn = _connect(self.path, self.busy_timeout)
            self._local.conn, self._local.pid = conn, os.getpid()
            with self._lock:
                self._connections.append(conn)
        return conn

    def close(self) -> None:
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        self._local = threading.local()

    @property
    def metric_crs(self) -> str:
        return self._metric_crs

    @property
    def synthetic(self) -> bool:
        return self._synthetic

    def versions(self) -> dict[str, int]:
        return dict(self._conn().execute("SELECT layer_id, version FROM geoapp_layer_versions"))

    # -- reading ------------------------------------------------------------------------------

    def load(self, layer_id: str) -> LayerData:
        """The whole layer and its version, read in one transaction (so they agree).

        Vectorised: SQLite aggregates each column into one JSON array that orjson parses, and
        point geometries are decoded from the blobs with numpy; no Python object is made per row
        beyond the values themselves. GDAL is not used here: it carries its own copy of SQLite,
        and two copies holding one database in one process break each other's locks. Values
        another tool stored in a type the field does not admit come back as None and are reported
        as problems, as are rows without geometry.
        """
        layer = self._layer(layer_id)
        names = [f.name for f in layer.fields]
        table = quote(layer_id)
        # JSON holds no BLOB (json_group_array fails) and no infinity (SQLite writes a bare Inf, which is not
        # JSON): another tool's such values come as an empty object, mistyped for every field type
        aggregates = ", ".join(
            f"json_group_array(CASE typeof({c}) WHEN 'blob' THEN json_object() "
            f"WHEN 'real' THEN CASE WHEN abs({c}) = 9e999 THEN json_object() ELSE {c} END ELSE {c} END)"
            for c in map(quote, ["fid", *names, VERSION_COLUMN])
        )
        inner = ", ".join(quote(n) for n in ["fid", *names, VERSION_COLUMN])
        conn = self._conn()
        conn.execute("BEGIN")
        try:
            version = conn.execute(
                "SELECT version FROM geoapp_layer_versions WHERE layer_id = ?", (layer_id,)
            ).fetchone()[0]
            arrays = conn.execute(f"SELECT {aggregates} FROM (SELECT {inner} FROM {table} ORDER BY fid)").fetchone()
            blobs = [row[0] for row in conn.execute(f"SELECT geom FROM {table} ORDER BY fid")]
        finally:
            conn.execute("COMMIT")
        values = [orjson.loads(text) for text in arrays]
        fids = np.asarray(values[0], dtype="int64")
        order = None if np.all(fids[1:] > fids[:-1]) else np.argsort(fids, kind="stable")
        if order is not None:  # an aggregate's input order is not promised: put every column in fid order
            fids = fids[order]
            values = [[v[i] for i in order] for v in values]
        geometries = _geometries(blobs)
        missing = np.flatnonzero(shapely.is_missing(geometries))
        problems = [Problem(int(fids[i]), "geometry", "no geometry") for i in missing]
        columns = {}
        for spec, column_values in zip(layer.fields, values[1:-1], strict=True):
            column, bad = _column(spec.type, column_values)
            columns[spec.name] = column
            problems += [Problem(int(fids[i]), spec.name, f"not a {spec.type}") for i in bad]
        versions = np.array([v if type(v) is int else 1 for v in values[-1]], dtype="int64")
        return LayerData(version, fids, geometries, columns, versions, tuple(problems))

    # -- writing ------------------------------------------------------------------------------

    @contextmanager
    def _write(self, layer_id: str, geometries: Sequence[BaseGeometry]) -> Iterator[sqlite3.Connection]:
        """One transaction: the change, its audit row and the layer's extent (the triggers raise its version)."""
        self._layer(layer_id)
        with self._transaction() as conn:
            yield conn
            _touch_contents(
                conn, layer_id, shapely.union_all(shapely.envelope(geometries)) if len(geometries) else None
            )

    def _restored(self, conn: sqlite3.Connection, layer_id: str, geometry: BaseGeometry | None) -> None:
        _touch_contents(conn, layer_id, geometry)

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        yield self._conn()

    @contextmanager
    def _snapshot(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            conn.execute("COMMIT")

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        # the threads of a process queue here for the write lock, woken as soon as it is free; SQLite's busy
        # handler, which only another process's writer now meets, would have them poll it in sleeps of up to 100 ms
        if not self._writing.acquire(timeout=self.busy_timeout):
            raise StoreBusy("the store is busy with another writer; try again in a few seconds", parameter="database")
        try:
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                if "locked" in str(exc) or "busy" in str(exc):
                    raise StoreBusy(
                        "the store is busy with another writer; try again in a few seconds", parameter="database"
                    ) from None
                raise
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        finally:
            self._writing.release()

    # -- creation -----------------------------------------------------------------------------

    @classmethod
    def upgrade(cls, registry: Registry, location: str) -> str:
        """Add the layers declared since the store was made (empty, written by GDAL as ``create`` writes them),
        then open it, which brings geoapp's own tables up to date; the layers it has keep their features."""
        path = Path(location)
        if not path.is_file():
            raise StoreError(f"no store at {path}; create it with `geoapp init`", parameter="database")
        conn = _connect(path)
        try:
            present = {row[0] for row in conn.execute("SELECT layer_id FROM geoapp_layer_versions")}
            crs = dict(conn.execute("SELECT key, value FROM geoapp_meta"))["metric_crs"]
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{path} is not a geoapp GeoPackage ({exc})", parameter="database") from None
        finally:
            conn.close()
        added = [layer for layer in registry if layer.id not in present]
        columns = _add_columns(path, [layer for layer in registry if layer.id in present])
        if added:
            _, frames = prepared_frames(registry, {}, crs)
            for layer in added:
                _write_layer(path, layer, frames[layer.id])
            conn = _connect(path)
            try:
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany("INSERT INTO geoapp_layer_versions VALUES (?, 1)", [(layer.id,) for layer in added])
                _install_schema(conn, registry)
                conn.execute("COMMIT")
            finally:
                conn.close()
        cls(registry, str(path)).close()
        notes = [f"added layers {', '.join(layer.id for layer in added)}"] if added else []
        notes += [f"added fields {', '.join(columns)}"] if columns else []
        return f"{path}: {'; '.join(notes) or 'up to date'}"

    @classmethod
    def create(
        cls,
        registry: Registry,
        location: str,
        data: Mapping[str, gpd.GeoDataFrame] | None = None,
        *,
        force: bool = False,
        demo: bool = False,
        crs: str | None = None,
        keep_accounts: bool = True,
        actor: Actor | None = None,
    ) -> GeoPackageStore:
        """Write a new store holding every registered layer (empty unless ``data`` has it).

        All-or-nothing: every feature is validated first and the file is built beside the
        target, then moved into place; an existing store is kept unless ``force``. Replacing a
        store keeps its accounts, tokens and audit trail (and records the replacement in it)
        unless ``keep_accounts`` is false.
        """
        path = Path(location)
        if path.exists() and not force:
            raise StoreError(f"{path} already exists; pass --force to replace it", parameter="database")
        chosen, frames = prepared_frames(registry, data, crs)
        previous = path if path.exists() and keep_accounts else None
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.gpkg")
        tmp.unlink(missing_ok=True)
        try:
            for i, layer in enumerate(registry):
                _write_layer(tmp, layer, frames[layer.id])
                if i == 0:
                    os.chmod(tmp, 0o600)  # accounts and audit live here: only the service user reads it
            conn = _connect(tmp)
            if previous is not None:
                conn.execute("ATTACH DATABASE ? AS previous", (str(previous),))
            conn.execute("BEGIN")
            _install_schema(conn, registry, triggers=False)
            meta = {
                "schema_version": SCHEMA_VERSION,
                "metric_crs": chosen,
                "demo": "1" if demo else "0",
                "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            }
            conn.executemany("INSERT INTO geoapp_meta VALUES (?, ?)", meta.items())
            conn.executemany("INSERT INTO geoapp_layer_versions VALUES (?, 1)", [(i,) for i in registry.ids])
            _install_schema(conn, registry)
            if previous is not None:
                _copy_accounts(conn, previous)
                audit_row(
                    conn,
                    sqlite.dialect(),
                    actor or Actor("cli", "cli"),
                    "store_replace",
                    None,
                    None,
                    {"demo": [None, demo], "features": [None, int(sum(len(f) for f in frames.values()))]},
                )
            conn.execute("COMMIT")
            if previous is not None:
                conn.execute("DETACH DATABASE previous")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.close()
            for suffix in ("-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            os.replace(tmp, path)
        finally:
            for leftover in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm"), Path(f"{tmp}-journal")):
                leftover.unlink(missing_ok=True)
        return cls(registry, str(path))


def _write_layer(path: Path, layer, frame: gpd.GeoDataFrame) -> None:
    """Write one layer's table with GDAL (the standard GeoPackage tables, the R-tree and its triggers)."""
    pyogrio.write_dataframe(
        frame,
        path,
        layer=layer.id,
        driver="GPKG",
        geometry_type=layer.geometry[0] if len(layer.geometry) == 1 else "Unknown",
        promote_to_multi=False,
        layer_options={"IDENTIFIER": layer.title.zh, "DESCRIPTION": layer.title.en},
    )


#: the column type of each field type, as GDAL writes them into a GeoPackage
_COLUMN_TYPES = {
    "string": "TEXT",
    "integer": "INTEGER",
    "number": "REAL",
    "boolean": "BOOLEAN",
    "date": "DATE",
    "datetime": "DATETIME",
}


def _add_columns(path: Path, layers: list) -> list[str]:
    """Add a column for each field declared since the store was made (empty in every feature); return them
    as ``layer.field``. One transaction: all of them or none."""
    conn = _connect(path)
    added = []
    try:
        conn.execute("BEGIN IMMEDIATE")
        for layer in layers:
            table = quote(layer.id)
            have = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
            for spec in layer.fields:
                if spec.name not in have:
                    conn.execute(f"ALTER TABLE {table} ADD COLUMN {quote(spec.name)} {_COLUMN_TYPES[spec.type]}")
                    added.append(f"{layer.id}.{spec.name}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    finally:
        conn.close()
    return added


def _install_schema(conn: sqlite3.Connection, registry: Registry, *, triggers: bool = True) -> None:
    """geoapp's tables and triggers, and the one registered attributes table that hides the others from GDAL.

    The layer triggers need ``geoapp_layer_versions`` filled: a new store installs the tables first
    (``triggers=False``), fills the versions, then installs again.
    """
    for statement in tables.ddl(sqlite.dialect()):
        conn.execute(statement)
    for statement in AUDIT_TRIGGERS.split("END;"):
        if statement.strip():
            conn.execute(statement + "END;")
    if not triggers:
        return
    for layer in registry:
        for statement in _LAYER_TRIGGERS.format(name=layer.id, table=layer.id.replace('"', '""')).split("END;"):
            if statement.strip():
                conn.execute(statement + "END;")
    # with one attributes table registered, GDAL lists only what gpkg_contents names (LIST_ALL_TABLES=AUTO)
    conn.execute(
        "INSERT OR IGNORE INTO gpkg_contents (table_name, data_type, identifier, description, last_change) "
        "VALUES ('geoapp_meta', 'attributes', 'geoapp_meta', 'geoapp store settings', ?)",
        (_stamp(),),
    )


def _copy_accounts(conn: sqlite3.Connection, previous: Path) -> None:
    """Copy accounts, tokens, the audit trail and the other non-layer tables of the store being replaced.

    ``previous`` is attached as ``previous``; an older store's tables give the columns both have.
    """
    kept = [
        row[0]
        for row in conn.execute("SELECT name FROM main.sqlite_master WHERE type = 'table' AND name LIKE 'geoapp%'")
        if row[0] not in tables.LAYER_TABLES
    ]
    for table in kept:
        old = {row[1] for row in conn.execute(f"PRAGMA previous.table_info({quote(table)})")}
        columns = [row[1] for row in conn.execute(f"PRAGMA main.table_info({quote(table)})") if row[1] in old]
        if columns:
            names = ", ".join(map(quote, columns))
            conn.execute(f"INSERT INTO main.{quote(table)} ({names}) SELECT {names} FROM previous.{quote(table)}")


def _connect(path: Path, timeout: float = BUSY_TIMEOUT_S) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=timeout)
    conn.create_function("ST_IsEmpty", 1, _st_is_empty, deterministic=True)
    for i, name in enumerate(("ST_MinX", "ST_MinY", "ST_MaxX", "ST_MaxY")):
        conn.create_function(name, 1, _st_bound(i), deterministic=True)
    return conn


def _stamp() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _touch_contents(conn: sqlite3.Connection, layer_id: str, geometry: BaseGeometry | None) -> None:
    """Keep ``gpkg_contents`` (last change, extent) true for GDAL and QGIS."""
    conn.execute("UPDATE gpkg_contents SET last_change = ? WHERE table_name = ?", (_stamp(), layer_id))
    if geometry is not None and not geometry.is_empty:
        minx, miny, maxx, maxy = geometry.bounds
        conn.execute(
            "UPDATE gpkg_contents SET min_x = min(coalesce(min_x, ?1), ?1), min_y = min(coalesce(min_y, ?2), ?2), "
            "max_x = max(coalesce(max_x, ?3), ?3), max_y = max(coalesce(max_y, ?4), ?4) WHERE table_name = ?5",
            (minx, miny, maxx, maxy, layer_id),
        )


#: Python types SQLite hands back that a field type admits
_ADMITS = {
    "integer": (int,),
    "number": (int, float),
    "boolean": (int,),
    "string": (str,),
    "date": (str,),
    "datetime": (str,),
}


def _column(kind: str, values: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    """A column as an object array of the field's Python values (None where missing or mistyped), and the
    positions of mistyped values."""
    column = np.empty(len(values), dtype=object)
    column[:] = values
    admits = _ADMITS[kind]
    bad = np.flatnonzero([v is not None and type(v) not in admits for v in values]) if len(values) else _NONE
    column[bad] = None
    if kind == "boolean" and len(values):
        present = np.flatnonzero([v is not None for v in column])
        column[present] = [bool(v) for v in column[present]]
    return column, bad


def _geometries(blobs: Sequence[bytes | None]) -> np.ndarray:
    """Shapely geometries of GeoPackage blobs (None where a row has none or it is not a geometry blob).

    2D points in little-endian WKB (what GDAL and geoapp write) are read straight from the joined
    bytes with numpy; anything else goes through shapely's WKB reader blob by blob.
    """
    out = np.empty(len(blobs), dtype=object)
    present = np.flatnonzero([b is not None for b in blobs]) if len(blobs) else _NONE
    if not len(present):
        return out
    kept = [blobs[i] for i in present]
    lengths = np.fromiter(map(len, kept), dtype=np.int64, count=len(kept))
    buf = np.frombuffer(b"".join(kept), dtype=np.uint8)
    starts = np.cumsum(lengths) - lengths
    ok = lengths >= 8
    flags = np.where(ok, buf[np.minimum(starts + 3, len(buf) - 1)], 0)
    header = 8 + np.array([_ENVELOPE_BYTES.get(k, -1) for k in range(8)])[(flags >> 1) & 0b111]
    wkb = starts + header
    # a point: "GP" magic, not empty, WKB little-endian, type 1, exactly 21 bytes of WKB
    point = ok & (header >= 8) & (lengths - header == 21) & (flags & 0b10000 == 0)
    at = np.flatnonzero(point)
    if len(at):
        magic = (buf[starts[at]] == ord("G")) & (buf[starts[at] + 1] == ord("P"))
        # byte order 1 (little-endian) and geometry type 1 (Point) as a little-endian uint32
        typed = (buf[wkb[at]] == 1) & (buf[wkb[at] + 1] == 1)
        typed &= (buf[wkb[at] + 2] == 0) & (buf[wkb[at] + 3] == 0) & (buf[wkb[at] + 4] == 0)
        fast = at[magic & typed]
        coordinates = buf[(wkb[fast] + 5)[:, None] + np.arange(16)].copy().view("<f8").reshape(-1, 2)
        # NaN coordinates are how WKB writes an empty point (GeoPackage 1.3, clause 2.1.3.1.1), whether or
        # not the writer set the header's empty flag: those go to the WKB reader, as decode() reads them
        finite = ~np.isnan(coordinates).any(axis=1)
        fast, coordinates = fast[finite], coordinates[finite]
        point[:] = False
        point[fast] = True
        if len(fast):
            out[present[fast]] = shapely.points(coordinates[:, 0], coordinates[:, 1])
    slow = np.flatnonzero(~point)
    if len(slow):
        pieces = np.empty(len(slow), dtype=object)
        pieces[:] = [kept[i][header[i] :] if ok[i] and header[i] >= 8 and kept[i][:2] == b"GP" else None for i in slow]
        out[present[slow]] = shapely.from_wkb(pieces, on_invalid="ignore")
    return out
