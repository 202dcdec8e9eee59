"""geoapp's own tables beside the layers, declared once for SQLite and PostgreSQL (SQLAlchemy Core).

Accounts, tokens, sign-in attempts and sessions, the audit trail, soft-deleted features, the
change log and layer versions, readings, closures, photos and the public's reports. A backend runs the statements built
here on its own DB-API connection (:func:`run`), so that a change and its audit row stay in one
transaction with the backend's feature writes; what only one dialect can say (SQLite's triggers
that keep the audit trail append-only) stays with that backend.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.schema import CreateIndex, CreateTable

metadata = sa.MetaData()

meta = sa.Table(
    "geoapp_meta",
    metadata,
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)
layer_versions = sa.Table(
    "geoapp_layer_versions",
    metadata,
    sa.Column("layer_id", sa.Text, primary_key=True),
    sa.Column("version", sa.BigInteger, nullable=False),
)
changes = sa.Table(
    "geoapp_changes",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("layer", sa.Text, nullable=False),
    sa.Column("fid", sa.BigInteger, nullable=False),
    sa.Column("version", sa.BigInteger, nullable=False),
    sa.Index("geoapp_changes_layer", "layer", "version"),
    sqlite_autoincrement=True,
)
users = sa.Table(
    "geoapp_users",
    metadata,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("password_hash", sa.Text, nullable=False),
    sa.Column("roles", sa.Text, nullable=False),
    sa.Column("disabled", sa.Integer, nullable=False, server_default="0"),
    sa.Column("epoch", sa.Integer, nullable=False, server_default="0"),
    sa.Column("created_at", sa.Text, nullable=False),
)
tokens = sa.Table(
    "geoapp_tokens",
    metadata,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("token_hash", sa.Text, nullable=False, unique=True),
    sa.Column("roles", sa.Text, nullable=False),
    sa.Column("created_at", sa.Text, nullable=False),
    sa.Column("revoked_at", sa.Text),
    sa.Column("last_used_at", sa.Text),
)
audit = sa.Table(
    "geoapp_audit",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.Text, nullable=False),
    sa.Column("actor", sa.Text, nullable=False),
    sa.Column("actor_kind", sa.Text, nullable=False),
    sa.Column("action", sa.Text, nullable=False),
    sa.Column("layer", sa.Text),
    sa.Column("fid", sa.BigInteger),
    sa.Column("changes", sa.Text, nullable=False),
    sa.Column("address", sa.Text),
    sa.Index("geoapp_audit_feature", "layer", "fid"),
    sa.Index("geoapp_audit_at", "at"),
    sqlite_autoincrement=True,
)
deleted = sa.Table(
    "geoapp_deleted",
    metadata,
    sa.Column("layer", sa.Text, primary_key=True),
    sa.Column("fid", sa.BigInteger, primary_key=True),
    sa.Column("version", sa.BigInteger, nullable=False),
    sa.Column("geom", sa.LargeBinary, nullable=False),
    sa.Column("properties", sa.Text, nullable=False),
    sa.Column("deleted_at", sa.Text, nullable=False),
    sa.Column("deleted_by", sa.Text, nullable=False),
)
login_attempts = sa.Table(
    "geoapp_login_attempts",
    metadata,
    sa.Column("attempt", sa.Text, nullable=False),
    sa.Column("account", sa.Text, nullable=False),
    sa.Column("address", sa.Text, nullable=False),
    sa.Column("at", sa.Float, nullable=False),
    sa.Index("geoapp_login_attempts_pair", "account", "address", "at"),
    sa.Index("geoapp_login_attempts_address", "address", "at"),
    sa.Index("geoapp_login_attempts_at", "at"),
    sa.Index("geoapp_login_attempts_attempt", "attempt"),
)
login_refusals = sa.Table(
    "geoapp_login_refusals",
    metadata,
    sa.Column("account", sa.Text, primary_key=True),
    sa.Column("address", sa.Text, primary_key=True),
    sa.Column("first_at", sa.Float, nullable=False),
    sa.Column("last_at", sa.Float, nullable=False),
    sa.Column("count", sa.Integer, nullable=False),
    sa.Index("geoapp_login_refusals_first", "first_at"),
)
sessions = sa.Table(
    "geoapp_sessions",
    metadata,
    sa.Column("session_hash", sa.Text, primary_key=True),
    sa.Column("user", sa.Text, nullable=False),
    sa.Column("started_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
    sa.Column("ended_at", sa.Float),
    sa.Index("geoapp_sessions_expires", "expires_at"),
)

#: readings of monitored features and rain gauges: a time series, never a layer (a reading rebuilds nothing).
#: Times are milliseconds since the epoch, UTC: windows, ranges and downsampling buckets are integer arithmetic
#: that SQLite and PostgreSQL do alike.
readings = sa.Table(
    "geoapp_readings",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("layer", sa.Text, nullable=False),
    sa.Column("fid", sa.BigInteger, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("value", sa.Float, nullable=False),
    sa.Column("observed_ms", sa.BigInteger, nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("received_ms", sa.BigInteger, nullable=False),
    # a reading sent again (a sensor retrying after a lost answer) is the same reading, not a second one
    sa.UniqueConstraint("source", "layer", "fid", "kind", "observed_ms", name="geoapp_readings_once"),
    sa.Index("geoapp_readings_series", "layer", "fid", "kind", "observed_ms"),
    sa.Index("geoapp_readings_kind_at", "kind", "observed_ms"),
    sqlite_autoincrement=True,
)
#: each feature's newest reading of each kind, kept in the transaction that stores it (the board reads this)
latest_readings = sa.Table(
    "geoapp_latest_readings",
    metadata,
    sa.Column("layer", sa.Text, primary_key=True),
    sa.Column("fid", sa.BigInteger, primary_key=True),
    sa.Column("kind", sa.Text, primary_key=True),
    sa.Column("value", sa.Float, nullable=False),
    sa.Column("observed_ms", sa.BigInteger, nullable=False),
    sa.Column("source", sa.Text, nullable=False),
)
#: closures of underpasses and sealed underground entrances: who, when, why, and who reopened them when
closures = sa.Table(
    "geoapp_closures",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("layer", sa.Text, nullable=False),
    sa.Column("fid", sa.BigInteger, nullable=False),
    sa.Column("action", sa.Text, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("closed_at", sa.Text, nullable=False),
    sa.Column("closed_by", sa.Text, nullable=False),
    sa.Column("reopened_at", sa.Text),
    sa.Column("reopened_by", sa.Text),
    sa.Column("reopen_reason", sa.Text),
    sa.Index("geoapp_closures_feature", "layer", "fid"),
    sqlite_autoincrement=True,
)
#: before/after photos (整治前后照片) of features: the re-encoded image (no EXIF) and its thumbnail, with who added
#: it when. The image columns come last: listing a feature's photos reads the columns before them only.
photos = sa.Table(
    "geoapp_photos",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("layer", sa.Text, nullable=False),
    sa.Column("fid", sa.BigInteger, nullable=False),
    sa.Column("stage", sa.Text, nullable=False),
    sa.Column("caption", sa.Text, nullable=False),
    sa.Column("media_type", sa.Text, nullable=False),
    sa.Column("width", sa.Integer, nullable=False),
    sa.Column("height", sa.Integer, nullable=False),
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("digest", sa.Text, nullable=False),
    sa.Column("uploaded_at", sa.Text, nullable=False),
    sa.Column("uploaded_by", sa.Text, nullable=False),
    sa.Column("thumb", sa.LargeBinary, nullable=False),
    sa.Column("image", sa.LargeBinary, nullable=False),
    sa.Index("geoapp_photos_feature", "layer", "fid"),
    sqlite_autoincrement=True,  # an id is never given again: a cached /photos/<id> can only be that photo
)

#: problems the public reports on the public map (FixMyStreet's way): held here, shown to no one but staff until a
#: moderator accepts one (it becomes a case, ``case_fid``) or turns it down. ``reference`` is what the reporter
#: follows it by; ``address`` is a keyed hash of where it came from (the rate limit counts it, nobody reads it).
reports = sa.Table(
    "geoapp_reports",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("reference", sa.Text, nullable=False, unique=True),
    sa.Column("created_at", sa.Text, nullable=False),
    sa.Column("address", sa.Text, nullable=False),
    sa.Column("lon", sa.Float, nullable=False),
    sa.Column("lat", sa.Float, nullable=False),
    sa.Column("subcategory", sa.Text, nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("contact", sa.Text),
    sa.Column("state", sa.Text, nullable=False),  # pending | accepted | rejected
    sa.Column("moderated_at", sa.Text),
    sa.Column("moderated_by", sa.Text),
    sa.Column("reason", sa.Text),  # why it was turned down, as the reporter is told
    sa.Column("public_text", sa.Text),  # what the public map shows of it, as the moderator worded it
    sa.Column("case_fid", sa.BigInteger),
    sa.Column("media_type", sa.Text),
    sa.Column("image", sa.LargeBinary),
    sa.Index("geoapp_reports_state", "state", "created_at"),
    sa.Index("geoapp_reports_address", "address", "created_at"),
    sqlite_autoincrement=True,
)

#: the tables that belong to a store's layers; a store replaced with ``init --force`` keeps the others (photos
#: belong to features, whose fids a new district gives again)
LAYER_TABLES = frozenset(
    {
        meta.name,
        layer_versions.name,
        changes.name,
        deleted.name,
        readings.name,
        latest_readings.name,
        closures.name,
        photos.name,
    }
)


def ddl(dialect: Dialect, tables: Iterable[sa.Table] | None = None) -> list[str]:
    """CREATE TABLE and CREATE INDEX statements (IF NOT EXISTS) for ``tables`` (default: all)."""
    out = []
    for table in tables if tables is not None else metadata.sorted_tables:
        out.append(str(CreateTable(table, if_not_exists=True).compile(dialect=dialect)))
        out += [str(CreateIndex(index, if_not_exists=True).compile(dialect=dialect)) for index in table.indexes]
    return out


def run(conn: Any, statement: sa.Executable, dialect: Dialect) -> Any:
    """Run a Core statement on a DB-API connection (in its transaction); return the cursor."""
    compiled = statement.compile(dialect=dialect)
    params = compiled.construct_params()
    processors = compiled._bind_processors
    values = {key: processors[key](value) if key in processors else value for key, value in params.items()}
    if dialect.paramstyle in ("qmark", "numeric"):
        return conn.execute(str(compiled), [values[key] for key in compiled.positiontup])
    return conn.execute(str(compiled), values)


def rows(conn: Any, statement: sa.Executable, dialect: Dialect) -> Sequence[tuple]:
    """The rows a Core SELECT gives."""
    return run(conn, statement, dialect).fetchall()
