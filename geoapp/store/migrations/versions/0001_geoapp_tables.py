"""geoapp's own tables, the audit trail's append-only rule and the functions the layer triggers call.

The layer tables themselves follow the layer definitions in ``layers/`` (``geoapp.store.postgis``
creates a table for each declared layer and adds the columns of newly declared fields); these
revisions carry what does not depend on them.

Revision ID: 0001
Revises:
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

FUNCTIONS = """
CREATE OR REPLACE FUNCTION geoapp_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit trail cannot be changed' USING ERRCODE = 'insufficient_privilege';
END $$;

-- before a row is written: a row written without geoapp's _version (another tool) gets 1, and an
-- update that left _version as it was (QGIS) raises it, so that If-Match keeps meaning "the version I read"
CREATE OR REPLACE FUNCTION geoapp_stamp_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        NEW._version := coalesce(NEW._version, 1);
    ELSIF NEW._version IS NOT DISTINCT FROM OLD._version THEN
        NEW._version := coalesce(OLD._version, 0) + 1;
    END IF;
    RETURN NEW;
END $$;

-- after a row is written, whoever wrote it: raise the layer's version and log the fid. The version row
-- is locked until the transaction ends, so versions grow in commit order.
CREATE OR REPLACE FUNCTION geoapp_log_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v bigint;
BEGIN
    UPDATE geoapp_layer_versions SET version = version + 1 WHERE layer_id = TG_ARGV[0] RETURNING version INTO v;
    IF TG_OP = 'TRUNCATE' THEN
        INSERT INTO geoapp_changes (layer, fid, version) VALUES (TG_ARGV[0], 0, v);  -- no row names it: reload
        RETURN NULL;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        INSERT INTO geoapp_changes (layer, fid, version) VALUES (TG_ARGV[0], NEW.fid, v);
    END IF;
    IF TG_OP = 'DELETE' OR (TG_OP = 'UPDATE' AND OLD.fid <> NEW.fid) THEN
        INSERT INTO geoapp_changes (layer, fid, version) VALUES (TG_ARGV[0], OLD.fid, v);
    END IF;
    RETURN NULL;
END $$;
"""

AUDIT_TRIGGERS = """
CREATE TRIGGER geoapp_audit_no_change BEFORE UPDATE OR DELETE ON geoapp_audit
    FOR EACH ROW EXECUTE FUNCTION geoapp_audit_append_only();
CREATE TRIGGER geoapp_audit_no_truncate BEFORE TRUNCATE ON geoapp_audit
    FOR EACH STATEMENT EXECUTE FUNCTION geoapp_audit_append_only();
"""


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    op.create_table(
        "geoapp_audit",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", sa.Text(), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("actor_kind", sa.Text(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("layer", sa.Text(), nullable=True),
        sa.Column("fid", sa.BigInteger(), nullable=True),
        sa.Column("changes", sa.Text(), nullable=False),
        sa.Column("address", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    op.create_index("geoapp_audit_at", "geoapp_audit", ["at"], unique=False)
    op.create_index("geoapp_audit_feature", "geoapp_audit", ["layer", "fid"], unique=False)
    op.create_table(
        "geoapp_changes",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("layer", sa.Text(), nullable=False),
        sa.Column("fid", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
        sqlite_autoincrement=True,
    )
    op.create_index("geoapp_changes_layer", "geoapp_changes", ["layer", "version"], unique=False)
    op.create_table(
        "geoapp_deleted",
        sa.Column("layer", sa.Text(), nullable=False),
        sa.Column("fid", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("geom", sa.LargeBinary(), nullable=False),
        sa.Column("properties", sa.Text(), nullable=False),
        sa.Column("deleted_at", sa.Text(), nullable=False),
        sa.Column("deleted_by", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("layer", "fid"),
    )
    op.create_table(
        "geoapp_layer_versions",
        sa.Column("layer_id", sa.Text(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("layer_id"),
    )
    op.create_table(
        "geoapp_login_attempts",
        sa.Column("attempt", sa.Text(), nullable=False),
        sa.Column("account", sa.Text(), nullable=False),
        sa.Column("address", sa.Text(), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
    )
    op.create_index("geoapp_login_attempts_address", "geoapp_login_attempts", ["address", "at"], unique=False)
    op.create_index("geoapp_login_attempts_at", "geoapp_login_attempts", ["at"], unique=False)
    op.create_index("geoapp_login_attempts_attempt", "geoapp_login_attempts", ["attempt"], unique=False)
    op.create_index("geoapp_login_attempts_pair", "geoapp_login_attempts", ["account", "address", "at"], unique=False)
    op.create_table(
        "geoapp_login_refusals",
        sa.Column("account", sa.Text(), nullable=False),
        sa.Column("address", sa.Text(), nullable=False),
        sa.Column("first_at", sa.Float(), nullable=False),
        sa.Column("last_at", sa.Float(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("account", "address"),
    )
    op.create_index("geoapp_login_refusals_first", "geoapp_login_refusals", ["first_at"], unique=False)
    op.create_table(
        "geoapp_meta",
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_table(
        "geoapp_sessions",
        sa.Column("session_hash", sa.Text(), nullable=False),
        sa.Column("user", sa.Text(), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.Column("ended_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("session_hash"),
    )
    op.create_index("geoapp_sessions_expires", "geoapp_sessions", ["expires_at"], unique=False)
    op.create_table(
        "geoapp_tokens",
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("token_hash", sa.Text(), nullable=False),
        sa.Column("roles", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Text(), nullable=False),
        sa.Column("revoked_at", sa.Text(), nullable=True),
        sa.Column("last_used_at", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("name"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_table(
        "geoapp_users",
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("roles", sa.Text(), nullable=False),
        sa.Column("disabled", sa.Integer(), server_default="0", nullable=False),
        sa.Column("epoch", sa.Integer(), server_default="0", nullable=False),
        sa.Column("created_at", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )

    op.execute(FUNCTIONS)
    op.execute(AUDIT_TRIGGERS)


def downgrade() -> None:
    for table in (
        "geoapp_users",
        "geoapp_tokens",
        "geoapp_sessions",
        "geoapp_meta",
        "geoapp_login_refusals",
        "geoapp_login_attempts",
        "geoapp_layer_versions",
        "geoapp_deleted",
        "geoapp_changes",
        "geoapp_audit",
    ):
        op.drop_table(table)
    for function in ("geoapp_log_change", "geoapp_stamp_version", "geoapp_audit_append_only"):
        op.execute(f"DROP FUNCTION {function}()")
