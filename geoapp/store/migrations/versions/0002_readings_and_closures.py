"""Readings as a time series, each feature's newest reading, and closures.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "geoapp_readings",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("layer", sa.Text(), nullable=False),
        sa.Column("fid", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("observed_ms", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("received_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("source", "layer", "fid", "kind", "observed_ms", name="geoapp_readings_once"),
    )
    op.create_index("geoapp_readings_series", "geoapp_readings", ["layer", "fid", "kind", "observed_ms"])
    op.create_index("geoapp_readings_kind_at", "geoapp_readings", ["kind", "observed_ms"])
    op.create_table(
        "geoapp_latest_readings",
        sa.Column("layer", sa.Text(), nullable=False),
        sa.Column("fid", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("observed_ms", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("layer", "fid", "kind"),
    )
    op.create_table(
        "geoapp_closures",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("layer", sa.Text(), nullable=False),
        sa.Column("fid", sa.BigInteger(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("closed_at", sa.Text(), nullable=False),
        sa.Column("closed_by", sa.Text(), nullable=False),
        sa.Column("reopened_at", sa.Text(), nullable=True),
        sa.Column("reopened_by", sa.Text(), nullable=True),
        sa.Column("reopen_reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("geoapp_closures_feature", "geoapp_closures", ["layer", "fid"])


def downgrade() -> None:
    op.drop_table("geoapp_closures")
    op.drop_table("geoapp_latest_readings")
    op.drop_table("geoapp_readings")
