"""The database store: PostgreSQL with PostGIS, for a city of districts and several app servers.

``GEOAPP_DATABASE=postgresql://user@host:port/db`` selects it. One table per layer (``fid``,
``geom`` as ``geometry(<type>, 4326)`` with a GiST index, the layer's fields as typed columns,
``_version``), geoapp's own tables beside them (``geoapp.store.tables``), created and migrated by
Alembic (``flask --app wsgi geoapp db upgrade``; the revisions are in ``migrations/``). Layer
tables follow the layer definitions: a newly declared layer gets its table and a newly declared
field its column when the schema is upgraded.

As in the GeoPackage, triggers raise a layer's version and log every changed fid whoever writes
(geoapp, QGIS, ogr2ogr), every change is one transaction with its audit row, the audit trail is
append-only (a trigger refuses UPDATE, DELETE and TRUNCATE), and a deleted feature is kept for
an admin to restore. Connections come from a psycopg 3 pool, one per process (a pool must not
cross a fork). Nothing that matters lives in one process: versions, sessions, sign-in attempts
and the audit trail are rows, so several app servers on one database agree.

Reads: :class:`SQLReader` answers the read interface in SQL on the GiST index (bounding box
``&&``, radius and nearest in the metric CRS, ``<->`` for k-nearest); the service sends a layer to
it when the layer is larger than ``GEOAPP_SQL_ABOVE`` features, and keeps smaller layers in
memory (``geoapp.store.memindex``), following the versions here on every request.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import geopandas as gpd
import numpy as np
import orjson
import psycopg
import psycopg_pool
import shapely
import sqlalchemy as sa
from shapely.geometry.base import BaseGeometry
from sqlalchemy.dialects.postgresql import psycopg as pg_dialect

from geoapp.core import cql, encode
from geoapp.core.crs import STORAGE_CRS, STORAGE_SRS_ID, lonlat_envelope, project
from geoapp.core.layers import FieldDef, Layer, Registry
from geoapp.errors import StoreBusy, StoreError
from geoapp.store import tables
from geoapp.store.base import (
    VERSION_COLUMN,
    Actor,
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
from geoapp.store.cases import ReportSQL, indicator_sql
from geoapp.store.features import FeatureSQL, quote
from geoapp.store.flood import FloodSQL
from geoapp.store.frames import missing, prepared_frames
from geoapp.store.gpkg import SCHEMA_VERSION
from geoapp.store.photos import PhotoSQL
from geoapp.store.records import Records, audit_row

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
#: connections each process may hold; a request holds one for its reads or its write
POOL_SIZE = 8
#: how long a request waits for a free connection before answering "busy" (503)
POOL_TIMEOUT_S = 10.0
#: below this many matches numberMatched is counted exactly; above, estimated by the planner
EXACT_COUNT_BELOW = 10_000

_COLUMN_TYPES = {
    "string": "text",
    "integer": "bigint",
    "number": "double precision",
    "boolean": "boolean",
    "date": "date",
    "datetime": "timestamptz",
}
#: a moment read back as stored elsewhere: UTC to the second with a Z
_UTC_TEXT = """to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')"""
_LAYER_TRIGGERS = """
CREATE TRIGGER geoapp_version BEFORE INSERT OR UPDATE ON {table}
    FOR EACH ROW EXECUTE FUNCTION geoapp_stamp_version();
CREATE TRIGGER geoapp_changes AFTER INSERT OR UPDATE OR DELETE ON {table}
    FOR EACH ROW EXECUTE FUNCTION geoapp_log_change({name});
CREATE TRIGGER geoapp_truncate AFTER TRUNCATE ON {table}
    FOR EACH STATEMENT EXECUTE FUNCTION geoapp_log_change({name});
"""


def _wkb(geom: BaseGeometry) -> bytes:
    return shapely.to_wkb(geom, byte_order=1, output_dimension=2)


def _from_wkb(blob: bytes | None) -> BaseGeometry | None:
    if not blob:
        return None
    try:
        return shapely.from_wkb(bytes(blob))
    except shapely.errors.GEOSException:
        return None


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def engine(location: str) -> sa.Engine:
    """A SQLAlchemy engine on the psycopg driver (for migrations and creation; requests use the pool)."""
    rest = location.partition("://")[2]
    return sa.create_engine(f"postgresql+psycopg://{rest}", poolclass=sa.NullPool)


def upgrade(connection: sa.Connection, registry: Registry, *, triggers: bool = True) -> None:
    """Bring a database to the newest schema, in the caller's transaction: Alembic's revisions, then a table
    per declared layer and a column per declared field."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
    raw = connection.connection.driver_connection
    for layer in registry:
        _ensure_layer(raw, layer, triggers=triggers)
    raw.execute(
        "INSERT INTO geoapp_meta VALUES ('schema_version', %s) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (SCHEMA_VERSION,),
    )


def _ensure_layer(conn: psycopg.Connection, layer: Layer, *, triggers: bool = True) -> None:
    """The layer's table with its GiST index and triggers, and a column for every declared field."""
    table = quote(layer.id)
    kind = layer.geometry[0] if len(layer.geometry) == 1 else "Geometry"
    exists = conn.execute("SELECT to_regclass(%s)", (table,)).fetchone()[0]
    if not exists:
        conn.execute(
            f"CREATE TABLE {table} (fid bigserial PRIMARY KEY, geom geometry({kind}, {STORAGE_SRS_ID}), "
            f"{quote(VERSION_COLUMN)} bigint)"
        )
        conn.execute(f"CREATE INDEX {quote(layer.id + '_geom')} ON {table} USING gist (geom)")
        conn.execute("INSERT INTO geoapp_layer_versions VALUES (%s, 1) ON CONFLICT (layer_id) DO NOTHING", (layer.id,))
    for spec in layer.fields:
        conn.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {quote(spec.name)} {_COLUMN_TYPES[spec.type]}")
        if spec.values is not None:  # a vocabulary (status, kind ...): filtered on and counted by value
            index = quote(f"{layer.id}_{spec.name}")
            conn.execute(f"CREATE INDEX IF NOT EXISTS {index} ON {table} ({quote(spec.name)})")
    if triggers:
        present = conn.execute(
            "SELECT count(*) FROM pg_trigger WHERE tgrelid = %s::regclass AND tgname LIKE 'geoapp%%'", (table,)
        ).fetchone()[0]
        if not present:
            conn.execute(_LAYER_TRIGGERS.format(table=table, name=_literal(layer.id)))


class PostGISStore(FeatureSQL, FloodSQL, PhotoSQL, ReportSQL, Records, Store):
    backend = "postgis"
    dialect = pg_dialect.dialect()
    mark = "%s"
    geometry_in = f"ST_GeomFromWKB(%s, {STORAGE_SRS_ID})"
    geometry_out = "ST_AsBinary(geom)"
    lock_row = " FOR UPDATE"
    encode_geometry = staticmethod(_wkb)
    decode_geometry = staticmethod(_from_wkb)

    def __init__(self, registry: Registry, location: str, *, pool_size: int = POOL_SIZE):
        super().__init__(registry, location)
        self.pool_size = pool_size
        self._pool: psycopg_pool.ConnectionPool | None = None
        self._pid = None
        self._lock = threading.Lock()
        try:
            meta, present = self._check()
        except BaseException:
            self.close()
            raise
        if "metric_crs" not in meta:
            self.close()
            raise StoreError(
                f"{_safe(location)} has geoapp's tables but no store yet; create it with "
                "`flask --app wsgi geoapp init --demo`",
                parameter="database",
            )
        missing = [layer.id for layer in registry if layer.id not in present]
        if missing or meta.get("schema_version") != SCHEMA_VERSION:
            self.close()
            raise StoreError(
                f"{_safe(location)} needs a schema upgrade (layers missing: {', '.join(missing) or 'none'}); "
                "run `flask --app wsgi geoapp db upgrade`",
                parameter="database",
            )
        self._metric_crs = meta["metric_crs"]
        self._synthetic = meta.get("demo") == "1"
        self.metric_srid = int(self._metric_crs.split(":")[1])

    def _check(self) -> tuple[dict[str, str], set[str]]:
        try:  # one connection of its own: a pool would retry an unreachable server until its timeout
            with psycopg.connect(self.location, connect_timeout=10, autocommit=True) as conn:
                meta = dict(conn.execute("SELECT key, value FROM geoapp_meta").fetchall())
                present = {row[0] for row in conn.execute("SELECT layer_id FROM geoapp_layer_versions")}
        except psycopg.errors.UndefinedTable:
            raise StoreError(
                f"no geoapp store in {_safe(self.location)}; create it with `flask --app wsgi geoapp init --demo`",
                parameter="database",
            ) from None
        except (psycopg.OperationalError, psycopg_pool.PoolTimeout) as exc:
            raise StoreError(f"cannot connect to {_safe(self.location)}: {exc}", parameter="database") from None
        return meta, present

    # -- connections ----------------------------------------------------------------------------

    def pool(self) -> psycopg_pool.ConnectionPool:
        """This process's pool (made on first use: a server that loads the app before forking gets one per worker)."""
        with self._lock:
            if self._pool is None or self._pid != os.getpid():
                self._pool = psycopg_pool.ConnectionPool(
                    self.location,
                    min_size=1,
                    max_size=self.pool_size,
                    # JIT compiling costs 40-150 ms a query, more than the index scans of a page take
                    kwargs={"autocommit": True, "application_name": "geoapp", "options": "-c jit=off"},
                    timeout=POOL_TIMEOUT_S,
                    open=True,
                    name="geoapp",
                )
                self._pid = os.getpid()
            return self._pool

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection]:
        try:
            with self.pool().connection() as conn:
                yield conn
        except psycopg_pool.PoolTimeout:
            raise StoreBusy(
                "every database connection is busy; try again in a few seconds", parameter="database"
            ) from None

    @contextmanager
    def _reading(self) -> Iterator[psycopg.Connection]:
        with self._connection() as conn:
            yield conn

    @contextmanager
    def _snapshot(self) -> Iterator[psycopg.Connection]:
        """A read transaction that sees one moment (REPEATABLE READ): versions, counts and rows agree."""
        with self._connection() as conn:
            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            try:
                yield conn
            finally:
                conn.execute("COMMIT")

    @contextmanager
    def _transaction(self) -> Iterator[psycopg.Connection]:
        with self._connection() as conn, conn.transaction():
            yield conn

    @contextmanager
    def _write(self, layer_id: str, geometries: Sequence[BaseGeometry]) -> Iterator[psycopg.Connection]:
        self._layer(layer_id)
        with self._transaction() as conn:
            yield conn

    def _serialize_sign_in(self, conn: psycopg.Connection) -> None:
        # sign-in attempts are read and counted one at a time across every server (SQLite's writer lock does so there)
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('geoapp sign-in'))")

    def close(self) -> None:
        with self._lock:
            if self._pool is not None and self._pid == os.getpid():
                self._pool.close()
            self._pool = None

    @classmethod
    def upgrade(cls, registry: Registry, location: str) -> str:
        """Bring the database's schema to this version of geoapp (Alembic, then the layer tables)."""
        eng = engine(location)
        try:
            with eng.begin() as connection:
                upgrade(connection, registry)
        except psycopg.OperationalError as exc:
            raise StoreError(f"cannot connect to {_safe(location)}: {exc}", parameter="database") from None
        finally:
            eng.dispose()
        return f"{_safe(location)}: schema {SCHEMA_VERSION}, Alembic revision head, {len(registry)} layer tables"

    def case_indicators(
        self,
        by: str,
        statuses: Mapping[str, Sequence[str]],
        *,
        start: str | None = None,
        end: str | None = None,
    ) -> list[tuple[str, int, int, int, int, float | None]]:
        """The case indicators' counts in one GROUP BY (``geoapp.cases.indicators`` works out the rates):
        (key, due, disposed, closed, on time, mean hours from 派遣 to 处置) per group."""
        sql = indicator_sql(by, quote("cases"), start=start is not None, end=end is not None)
        params = {name: list(statuses[name]) for name in ("registered", "disposed", "closed")}
        params.update(start=start, end=end)
        with self._reading() as conn:
            rows = conn.execute(sql, params).fetchall()
        return [
            (key, due, disposed, closed, on_time, None if h is None else float(h))
            for key, due, disposed, closed, on_time, h in rows
        ]

    def sql_reader(self) -> SQLReader:
        """A reader that answers in SQL (for the layers too large to hold in memory)."""
        return SQLReader(self)

    def column_out(self, spec: FieldDef) -> str:
        return _text_column(spec)

    @property
    def metric_crs(self) -> str:
        return self._metric_crs

    @property
    def synthetic(self) -> bool:
        return self._synthetic

    def versions(self) -> dict[str, int]:
        with self._reading() as conn:
            return dict(conn.execute("SELECT layer_id, version FROM geoapp_layer_versions").fetchall())

    def estimated_count(self, layer_id: str) -> int:
        """About how many features a layer has (the planner's statistics; exact when they are missing)."""
        with self._reading() as conn:
            found = conn.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass", (quote(layer_id),))
            estimate = found.fetchone()[0]
            if estimate is None or estimate < 0:  # never analysed
                estimate = conn.execute(f"SELECT count(*) FROM {quote(layer_id)}").fetchone()[0]
        return int(estimate)

    # -- reading whole layers (for the in-memory reader) -----------------------------------------

    def load(self, layer_id: str) -> LayerData:
        """The whole layer and its version in one snapshot; each column comes as one JSON array."""
        layer = self._layer(layer_id)
        table = quote(layer_id)
        columns = ["fid", *(self.column_out(spec) for spec in layer.fields), quote(VERSION_COLUMN)]
        aggregates = ", ".join(f"coalesce(json_agg({c} ORDER BY fid), '[]')::text" for c in columns)
        with self._snapshot() as conn:
            version = conn.execute("SELECT version FROM geoapp_layer_versions WHERE layer_id = %s", (layer_id,))
            version = version.fetchone()[0]
            arrays = conn.execute(f"SELECT {aggregates} FROM {table}").fetchone()
            with conn.cursor(binary=True) as cur:
                blobs = [row[0] for row in cur.execute(f"SELECT ST_AsBinary(geom) FROM {table} ORDER BY fid")]
        values = [orjson.loads(text) for text in arrays]
        fids = np.asarray(values[0], dtype="int64")
        geometries = np.empty(len(blobs), dtype=object)
        present = [i for i, blob in enumerate(blobs) if blob is not None]
        if present:
            geometries[present] = shapely.from_wkb([blobs[i] for i in present], on_invalid="ignore")
        problems = [
            Problem(int(fids[i]), "geometry", "no geometry") for i in np.flatnonzero(shapely.is_missing(geometries))
        ]
        data = {}
        for spec, column in zip(layer.fields, values[1:-1], strict=True):
            array = np.empty(len(column), dtype=object)
            if spec.type == "number":
                # JSON writes a whole double precision without its ".0", and Infinity or NaN (another tool's) as
                # a string: read back the float it is, a value that is no number as missing, and report it
                column = [None if v is None else float(v) for v in column]
                bad = [i for i, v in enumerate(column) if v is not None and not math.isfinite(v)]
                for i in bad:
                    column[i] = None
                problems += [Problem(int(fids[i]), spec.name, f"not a {spec.type}") for i in bad]
            array[:] = column
            data[spec.name] = array
        versions = np.array([v or 1 for v in values[-1]], dtype="int64")
        return LayerData(version, fids, geometries, data, versions, tuple(problems))

    # -- creation -------------------------------------------------------------------------------

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
    ) -> PostGISStore:
        """Create (or with ``force`` replace) every layer table and fill it, in one transaction: all or nothing.

        Replacing keeps accounts, tokens and the audit trail (and records the replacement) unless
        ``keep_accounts`` is false.
        """
        chosen, frames = prepared_frames(registry, data, crs)
        meta = {
            "metric_crs": chosen,
            "demo": "1" if demo else "0",
            "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
        with _creating(location, registry, force=force, keep_accounts=keep_accounts) as (conn, replaced):
            for layer in registry:
                frame = frames[layer.id]
                _fill(conn, layer, np.asarray(frame.geometry.array, dtype=object), _frame_columns(layer, frame))
            for key, value in meta.items():
                conn.execute(
                    "INSERT INTO geoapp_meta VALUES (%s, %s) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (key, value),
                )
            if replaced:
                total = int(sum(len(f) for f in frames.values()))
                changes = {"demo": [None, demo], "features": [None, total]}
                audit_row(conn, cls.dialect, actor or Actor("cli", "cli"), "store_replace", None, None, changes)
        return cls(registry, location)


def copy_into(source: Store, location: str, *, force: bool = False, actor: Actor) -> PostGISStore:
    """Move a district into a PostGIS database: every feature with its fid and version, every layer version, the
    soft-deleted features, accounts, tokens, sessions, sign-in records, readings, closures, photos and the audit
    trail (ids kept), all or nothing.

    The change log is not copied: readers of the new store start from its layers as they are.
    """
    registry = source.registry
    meta = {"metric_crs": source.metric_crs, "demo": "1" if source.synthetic else "0"}
    meta["created_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    versions = source.versions()
    total = 0
    with _creating(location, registry, force=force, keep_accounts=False) as (conn, _):
        for layer in registry:
            data = source.load(layer.id)
            _fill(conn, layer, data.geometries, data.columns, data.fids, data.versions)
            total += len(data.fids)
            conn.execute(
                "UPDATE geoapp_layer_versions SET version = %s WHERE layer_id = %s", (versions[layer.id], layer.id)
            )
        for key, value in meta.items():
            conn.execute("INSERT INTO geoapp_meta VALUES (%s, %s)", (key, value))
        dialect = PostGISStore.dialect
        for table in tables.metadata.sorted_tables:
            if table.name in (tables.meta.name, tables.layer_versions.name, tables.changes.name):
                continue
            if table is tables.photos:  # images: a few at a time, never all of them in memory
                for rows in source.photo_rows():
                    tables.run(conn, sa.insert(table).values(rows), dialect)
                _follow_ids(conn, table)
                continue
            names = [column.name for column in table.columns]
            rows = [dict(zip(names, row, strict=True)) for row in source.rows(table)]
            if table is tables.deleted:
                for row in rows:
                    geometry = source.decode_geometry(bytes(row["geom"]) or None)
                    row["geom"] = b"" if geometry is None else _wkb(geometry)
            for start in range(0, len(rows), 1000):
                tables.run(conn, sa.insert(table).values(rows[start : start + 1000]), dialect)
            _follow_ids(conn, table)
        changes = {"from": [None, _safe(source.location)], "features": [None, total]}
        audit_row(conn, dialect, actor, "store_copy", None, None, changes)
    return PostGISStore(registry, location)


def _follow_ids(conn: psycopg.Connection, table: sa.Table) -> None:
    """Set a copied table's id sequence after the copied ids, so that new rows go on where the source left off."""
    for column in table.primary_key.columns:
        if column.autoincrement is True:
            conn.execute(
                f"SELECT setval(pg_get_serial_sequence(%s, %s), coalesce((SELECT max({quote(column.name)}) "
                f"FROM {quote(table.name)}), 0) + 1, false)",
                (table.name, column.name),
            )


@contextmanager
def _creating(location: str, registry: Registry, *, force: bool, keep_accounts: bool):
    """A transaction on a database made ready for new layers: the schema upgraded, old layer tables dropped.

    Yields the raw connection and whether a store was replaced; the layer triggers are installed
    when the caller's block ends (after the data is in, so that loading logs no change).
    """
    eng = engine(location)
    try:
        with eng.begin() as connection:
            raw = connection.connection.driver_connection
            schema = raw.execute("SELECT to_regclass('geoapp_meta')").fetchone()[0] is not None
            existing = schema and bool(raw.execute("SELECT 1 FROM geoapp_meta WHERE key = 'metric_crs'").fetchall())
            if existing and not force:
                raise StoreError(
                    f"{_safe(location)} holds a store already; pass --force to replace it", parameter="database"
                )
            if schema:  # a store to replace, or the empty tables `db upgrade` made
                for (name,) in raw.execute("SELECT layer_id FROM geoapp_layer_versions").fetchall():
                    raw.execute(f"DROP TABLE IF EXISTS {quote(name)}")
                if keep_accounts:
                    for table in tables.LAYER_TABLES:
                        raw.execute(f"DELETE FROM {quote(table)}")
                else:  # DROP, not DELETE: the audit trail's rows cannot be deleted
                    everything = [quote(t.name) for t in tables.metadata.sorted_tables]
                    raw.execute(f"DROP TABLE {', '.join(everything)}, geoapp_alembic_version")
            upgrade(connection, registry, triggers=False)
            yield raw, existing and keep_accounts
            for layer in registry:
                _ensure_layer(raw, layer)
    except psycopg.OperationalError as exc:
        raise StoreError(f"cannot connect to {_safe(location)}: {exc}", parameter="database") from None
    finally:
        eng.dispose()


def _fill(
    conn: psycopg.Connection,
    layer: Layer,
    geometries: np.ndarray,
    columns: Mapping[str, Sequence[Any]],
    fids: np.ndarray | None = None,
    versions: np.ndarray | None = None,
) -> None:
    """COPY rows into the layer's table (new fids, version 1; or the ``fids`` and ``versions`` given)."""
    if not len(geometries):
        return
    names = [spec.name for spec in layer.fields]
    header = ["geom", *names, VERSION_COLUMN] + (["fid"] if fids is not None else [])
    wkb = shapely.to_wkb(shapely.set_srid(np.asarray(geometries, dtype=object), STORAGE_SRS_ID), include_srid=True)
    values = [list(columns[name]) for name in names]
    stamp = np.ones(len(wkb), dtype="int64") if versions is None else np.asarray(versions)
    with conn.cursor().copy(f"COPY {quote(layer.id)} ({', '.join(map(quote, header))}) FROM STDIN") as copy:
        for i in range(len(wkb)):
            row = [None if wkb[i] is None else wkb[i].hex(), *(column[i] for column in values), int(stamp[i])]
            if fids is not None:
                row.append(int(fids[i]))
            copy.write_row(row)
    if fids is not None:
        sequence = "SELECT setval(pg_get_serial_sequence(%s, 'fid'), (SELECT max(fid) FROM {}))"
        conn.execute(sequence.format(quote(layer.id)), (quote(layer.id),))
    conn.execute(f"ANALYZE {quote(layer.id)}")


def _frame_columns(layer: Layer, frame: gpd.GeoDataFrame) -> dict[str, list]:
    """A prepared frame's fields as lists of Python values (None where missing)."""
    return {
        spec.name: [None if missing(v) else v for v in frame[spec.name].astype(object).tolist()]
        for spec in layer.fields
    }


def _safe(location: str) -> str:
    """A database URL without its password, for messages."""
    if "://" not in location:
        return location
    parts = urlsplit(location)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    user = f"{parts.username}@" if parts.username else ""
    return f"{parts.scheme}://{user}{host}{port}{parts.path}"


class SQLReader(FeatureReader):
    """The read interface answered in SQL on the GiST index, for layers too large to hold in memory.

    Same answers as the in-memory reader (a test compares both on random data): boxes and areas
    match in lon/lat (``&&`` then ``ST_Intersects``); radius and nearest are measured in the
    store's metric CRS (``ST_Transform``), the candidates taken from the index first (a lon/lat
    box holding the metric square; for k-nearest, ``<->`` gives k features whose farthest bounds
    the k-th nearest, then every feature within that bound is measured). Pages in fid order are
    keyset pages (``after``); ``matched`` is exact below :data:`EXACT_COUNT_BELOW` and the
    planner's estimate above (``Page.estimated``).
    """

    def __init__(self, store: PostGISStore, *, exact_below: int = EXACT_COUNT_BELOW):
        self.store = store
        self.registry = store.registry
        self.exact_below = exact_below
        self._summaries: dict[str, LayerSummary] = {}

    def _where(self, layer: Layer, query: Query) -> tuple[list[str], list[Any]]:
        where: list[str] = []
        params: list[Any] = []
        if query.bbox is not None:
            # ST_Intersects, not && alone: the index's boxes are rounded outward to single precision (a metre here)
            where.append(f"ST_Intersects(geom, ST_MakeEnvelope(%s, %s, %s, %s, {STORAGE_SRS_ID}))")
            params += list(query.bbox)
        if query.within is not None:
            where.append(f"ST_Intersects(geom, ST_GeomFromWKB(%s, {STORAGE_SRS_ID}))")
            params.append(_wkb(query.within))
        for name, values in query.filters.items():
            spec = layer.field(name)
            column = _text_column(spec) if spec.type in ("date", "datetime") else quote(name)
            where.append(f"{column} = ANY(%s)")
            params.append(list(values))
        if query.where is not None:
            where.append(_cql_sql(layer, query.where, params))
        where.append("geom IS NOT NULL AND NOT ST_IsEmpty(geom)")
        return where, params

    def _point(self, lon: float, lat: float) -> shapely.Point:
        return project(shapely.Point(lon, lat), STORAGE_CRS, self.store.metric_crs)

    def _metric_distance(self, point: shapely.Point) -> tuple[str, list[Any]]:
        srid = self.store.metric_srid
        return f"ST_Distance(ST_Transform(geom, {srid}), ST_SetSRID(ST_MakePoint(%s, %s), {srid}))", [point.x, point.y]

    def _envelope(self, point: shapely.Point, radius: float) -> tuple[str, list[Any]]:
        box = lonlat_envelope(point, radius, self.store.metric_crs)
        if box is None:
            return "false", []
        return f"geom && ST_MakeEnvelope(%s, %s, %s, %s, {STORAGE_SRS_ID})", list(box)

    def select(
        self, layer_id: str, query: Query, offset: int = 0, limit: int = 100, visibility: Visibility = "public"
    ) -> Page:
        layer = self.registry.require(layer_id)
        table = quote(layer_id)
        where, params = self._where(layer, query)
        with self.store._snapshot() as conn:
            version = _version(conn, layer_id)
            if query.near or query.nearest:
                lon, lat, _ = query.near or query.nearest
                point = self._point(lon, lat)
                distance, distance_params = self._metric_distance(point)
                if query.nearest:
                    radius = self._nearest_bound(
                        conn, table, where, params, distance, distance_params, lon, lat, query.nearest[2]
                    )
                else:
                    radius = query.near[2]
                if radius is None:
                    return Page([], [], 0, version, [], more=False)
                envelope, envelope_params = self._envelope(point, radius)
                inner = f"SELECT fid, {distance} AS d FROM {table} WHERE {' AND '.join([*where, envelope])}"
                inner_params = [*distance_params, *params, *envelope_params]
                ranked = f"SELECT fid, d FROM ({inner}) c WHERE d <= %s ORDER BY d, fid"
                ranked_params = [*inner_params, radius]
                if query.nearest:
                    ranked += " LIMIT %s"
                    ranked_params.append(query.nearest[2])
                rows = conn.execute(ranked, ranked_params).fetchall()
                matched = len(rows)
                chosen = rows[offset : offset + limit]
                ids = [row[0] for row in chosen]
                distances = [float(row[1]) for row in chosen]
                features = self._features(conn, layer, ids, visibility, distances)
                return Page(features, ids, matched, version, distances, more=offset + limit < matched)
            keyset = list(where)
            keyset_params = list(params)
            if query.after is not None:
                keyset.append("fid > %s")
                keyset_params.append(query.after)
            sql = f"SELECT fid FROM {table} WHERE {' AND '.join(keyset)} ORDER BY fid OFFSET %s LIMIT %s"
            rows = conn.execute(sql, [*keyset_params, offset, limit + 1]).fetchall()
            more = len(rows) > limit
            ids = [row[0] for row in rows[:limit]]
            matched, estimated = self._matched(conn, table, where, params)
            features = self._features(conn, layer, ids, visibility, None)
        return Page(features, ids, matched, version, None, estimated=estimated, more=more)

    def _nearest_bound(self, conn, table, where, params, distance, distance_params, lon, lat, k) -> float | None:
        """A radius in metres holding at least k matches (the farthest of the k nearest by ``<->``), or None."""
        sql = (
            f"SELECT {distance} FROM {table} WHERE {' AND '.join(where)} "
            f"ORDER BY geom <-> ST_SetSRID(ST_MakePoint(%s, %s), {STORAGE_SRS_ID}) LIMIT %s"
        )
        rows = conn.execute(sql, [*distance_params, *params, lon, lat, k]).fetchall()
        if not rows:
            return None
        return max(float(row[0]) for row in rows)

    def _matched(self, conn, table: str, where: list[str], params: list[Any]) -> tuple[int, bool]:
        condition = " AND ".join(where)
        counted = conn.execute(
            f"SELECT count(*) FROM (SELECT 1 FROM {table} WHERE {condition} LIMIT %s) c",
            [*params, self.exact_below + 1],
        ).fetchone()[0]
        if counted <= self.exact_below:
            return counted, False
        plan = conn.execute(f"EXPLAIN (FORMAT JSON) SELECT 1 FROM {table} WHERE {condition}", params).fetchone()[0]
        return max(int(plan[0]["Plan"]["Plan Rows"]), counted), True

    def _features(
        self, conn, layer: Layer, ids: list[int], visibility: Visibility, distances: list[float] | None
    ) -> list[bytes]:
        if not ids:
            return []
        names = [f.name for f in layer.visible_fields(visibility == "internal")]
        specs = [layer.field(n) for n in names]
        columns = ", ".join(["fid", quote(VERSION_COLUMN), "ST_AsBinary(geom)", *map(self.store.column_out, specs)])
        with conn.cursor(binary=True) as cur:
            rows = cur.execute(f"SELECT {columns} FROM {quote(layer.id)} WHERE fid = ANY(%s)", (ids,)).fetchall()
        by_fid = {row[0]: row for row in rows}
        ordered = [by_fid[f] for f in ids if f in by_fid]
        geometry = encode.geometries(shapely.from_wkb([row[2] for row in ordered]))
        out = []
        for i, (row, geom) in enumerate(zip(ordered, geometry, strict=True)):
            props = dict(zip(names, row[3:], strict=True))
            opened = encode.open_feature(row[0], row[1] or 1, geom, props)
            out.append(encode.close(opened, None if distances is None else distances[i]))
        return out

    def get(self, layer_id: str, fid: int, visibility: Visibility = "public") -> Feature | None:
        layer = self.registry.require(layer_id)
        feature = self.store.get(layer_id, fid)
        if feature is None or feature.geometry is None or feature.geometry.is_empty:
            return None
        names = [f.name for f in layer.visible_fields(visibility == "internal")]
        return Feature(layer_id, fid, feature.geometry, {n: feature.properties.get(n) for n in names}, feature.version)

    def count(self, layer_id: str, filters: Mapping[str, Sequence[Any]] | None = None) -> int:
        layer = self.registry.require(layer_id)
        where, params = self._where(layer, Query(filters=filters or {}))
        with self.store._reading() as conn:
            return conn.execute(
                f"SELECT count(*) FROM {quote(layer_id)} WHERE {' AND '.join(where)}", params
            ).fetchone()[0]

    def versions(self) -> dict[str, int]:
        return {k: v for k, v in self.store.versions().items() if k in self.registry}

    def layer_summary(self, layer_id: str, version: int | None = None) -> LayerSummary:
        """A layer's count, extent, counts per status and problems: counted once per layer version."""
        if version is not None:
            kept = self._summaries.get(layer_id)
            if kept is not None and kept.version == version:
                return kept
        summary = self._layer_summary(layer_id)
        self._summaries[layer_id] = summary
        return summary

    def _layer_summary(self, layer_id: str) -> LayerSummary:
        layer = self.registry.require(layer_id)
        table = quote(layer_id)
        drawn = "geom IS NOT NULL AND NOT ST_IsEmpty(geom)"
        with self.store._snapshot() as conn:
            version = _version(conn, layer_id)
            count, xmin, ymin, xmax, ymax = conn.execute(
                "SELECT n, ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) "
                f"FROM (SELECT count(*) AS n, ST_Extent(geom)::box3d AS e FROM {table} WHERE {drawn}) x"
            ).fetchone()
            by_status = None
            if layer.status_field:
                status = layer.field(layer.status_field)
                counts = dict(
                    conn.execute(
                        f"SELECT {quote(status.name)}, count(*) FROM {table} WHERE {drawn} GROUP BY 1"
                    ).fetchall()
                )
                by_status = {c.value: counts.get(c.value, 0) for c in status.values}
            problems = [
                Problem(row[0], "geometry", "no geometry")
                for row in conn.execute(
                    f"SELECT fid FROM {table} WHERE NOT ({drawn}) OR geom IS NULL ORDER BY fid LIMIT 100"
                )
            ]
            for spec in layer.fields:
                if spec.values is None:
                    continue
                allowed = [c for c in spec.allowed]
                for fid, found in conn.execute(
                    f"SELECT fid, {quote(spec.name)} FROM {table} WHERE {quote(spec.name)} IS NOT NULL "
                    f"AND NOT ({quote(spec.name)} = ANY(%s)) ORDER BY fid LIMIT 100",
                    (allowed,),
                ):
                    problems.append(Problem(fid, spec.name, f"{found!r} is not allowed"))
        extent = None if xmin is None else [xmin, ymin, xmax, ymax]
        problems.sort(key=lambda p: (p.fid, p.field))
        return LayerSummary(count, extent, version, by_status, tuple(problems))

    def summary(self) -> dict[str, LayerSummary]:
        versions = self.store.versions()
        return {layer_id: self.layer_summary(layer_id, versions[layer_id]) for layer_id in self.registry.ids}

    def search_layer(self, layer: Layer, needle: str, limit: int) -> list[tuple[bool, int, dict[str, Any]]]:
        """Features of one layer whose title contains ``needle`` (casefolded): (not exact, fid, hit), best first."""
        title = f"lower({quote(layer.title_field)}::text)"
        sql = (
            f"SELECT fid, {title} = %s AS exact, {quote(layer.title_field)}::text, "
            f"ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)) FROM {quote(layer.id)} "
            f"WHERE strpos({title}, %s) > 0 AND geom IS NOT NULL AND NOT ST_IsEmpty(geom) "
            "ORDER BY exact DESC, fid LIMIT %s"
        )
        with self.store._reading() as conn:
            rows = conn.execute(sql, (needle, needle, limit)).fetchall()
        return [
            (not exact, fid, {"layer": layer.id, "id": fid, "title": str(t), "lon": x, "lat": y})
            for fid, exact, t, x, y in rows
        ]

    def search(self, text: str, limit: int) -> list[dict[str, Any]]:
        needle = text.casefold()
        hits = []
        for rank, layer in enumerate(reversed(list(self.registry))):
            if not layer.context:
                hits += [(miss, rank, fid, hit) for miss, fid, hit in self.search_layer(layer, needle, limit)]
        return [hit for *_, hit in sorted(hits, key=lambda h: h[:3])][:limit]


_SPATIAL_SQL = {
    "intersects": "ST_Intersects",
    "disjoint": "ST_Disjoint",
    "within": "ST_Within",
    "contains": "ST_Contains",
    "equals": "ST_Equals",
    "touches": "ST_Touches",
    "crosses": "ST_Crosses",
    "overlaps": "ST_Overlaps",
}


def _cql_sql(layer: Layer, node: cql.Where, params: list[Any]) -> str:
    """A CQL2 filter (``geoapp.core.cql``) as a SQL condition; its values are appended to ``params`` (bound, never
    spliced in); text is ordered by code point (``COLLATE "C"``), as the in-memory reader orders it."""
    if isinstance(node, cql.Const):
        return "TRUE" if node.value else "FALSE"
    if isinstance(node, cql.And | cql.Or):
        joiner = " AND " if isinstance(node, cql.And) else " OR "
        return "(" + joiner.join(_cql_sql(layer, item, params) for item in node.items) + ")"
    if isinstance(node, cql.Not):
        return f"(NOT {_cql_sql(layer, node.item, params)})"
    if isinstance(node, cql.Spatial):
        params.append(_wkb(node.geometry))
        return f"{_SPATIAL_SQL[node.op]}(geom, ST_GeomFromWKB(%s, {STORAGE_SRS_ID}))"
    spec = layer.field(node.name)
    column = quote(spec.name)
    cast = {
        "date": "::date",
        "datetime": "::timestamptz",
        "integer": "::double precision",
        "number": "::double precision",
    }
    cast = cast.get(spec.type, "")
    if isinstance(node, cql.IsNull):
        return f"{column} IS NULL"
    if getattr(node, "casei", False):
        column = f"translate({column}, '{cql.UPPER}', '{cql.UPPER.lower()}')"  # A-Z only, as cql.fold
    if spec.type == "string":
        column = f'{column} COLLATE "C"'
    number = float if spec.type in ("integer", "number") else (lambda value: value)
    if isinstance(node, cql.Compare):
        params.append(number(node.value))
        return f"{column} {node.op} %s{cast}"
    if isinstance(node, cql.In):
        params.append([number(value) for value in node.values])
        array = {"date": "::date[]", "datetime": "::timestamptz[]", "integer": "::double precision[]"}
        array["number"] = array["integer"]
        return f"{column} = ANY(%s{array.get(spec.type, '')})"
    if isinstance(node, cql.Between):
        params += [number(node.low), number(node.high)]
        return f"{column} BETWEEN %s{cast} AND %s{cast}"
    if isinstance(node, cql.Like):
        params.append(node.pattern)
        return f"{column} LIKE %s ESCAPE '\\'"
    raise TypeError(f"not a filter node: {node!r}")


def _text_column(spec: FieldDef) -> str:
    """SQL reading a field as geoapp holds it: a date as ISO text, a moment as UTC text with a Z."""
    if spec.type == "datetime":
        return _UTC_TEXT.format(column=quote(spec.name))
    return f"{quote(spec.name)}::text" if spec.type == "date" else quote(spec.name)


def _version(conn: psycopg.Connection, layer_id: str) -> int:
    return conn.execute("SELECT version FROM geoapp_layer_versions WHERE layer_id = %s", (layer_id,)).fetchone()[0]
