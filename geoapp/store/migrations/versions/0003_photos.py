"""Before/after photos of features (整治前后照片): the re-encoded image, its thumbnail and who added it when.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-10
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # a database whose revision was set back by hand (or restored from a dump of tables only) may hold it already
    if sa.inspect(op.get_bind()).has_table("geoapp_photos"):
        return
    op.create_table(
        "geoapp_photos",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("layer", sa.Text(), nullable=False),
        sa.Column("fid", sa.BigInteger(), nullable=False),
        sa.Column("stage", sa.Text(), nullable=False),
        sa.Column("caption", sa.Text(), nullable=False),
        sa.Column("media_type", sa.Text(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("digest", sa.Text(), nullable=False),
        sa.Column("uploaded_at", sa.Text(), nullable=False),
        sa.Column("uploaded_by", sa.Text(), nullable=False),
        sa.Column("thumb", sa.LargeBinary(), nullable=False),
        sa.Column("image", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("geoapp_photos_feature", "geoapp_photos", ["layer", "fid"])
    # JPEG, PNG and WebP are compressed already: kept out of line as they are, not compressed again
    op.execute(
        "ALTER TABLE geoapp_photos ALTER COLUMN image SET STORAGE EXTERNAL, ALTER COLUMN thumb SET STORAGE EXTERNAL"
    )


def downgrade() -> None:
    op.drop_table("geoapp_photos")
