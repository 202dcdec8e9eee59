"""Before/after photos of features in SQL, written once for SQLite and PostgreSQL (mixed into both stores).

A photo is a row of ``geoapp_photos``: the feature it shows (layer and fid), its stage (before or
after the works), a caption, the image as geoapp re-encoded it (no EXIF) and its thumbnail. Adding
one locks the feature's row, counts its photos and writes the photo with its audit row in one
transaction, so two planners uploading at once cannot pass the per-feature limit and a feature
deleted meanwhile takes none. Deleting one is one transaction with its audit row too. The audit
names the photo, its layer and fid, never the image. Photos touch no layer: no version moves and no
map reloads. A deleted feature keeps its photos (it may be restored); whether anyone may see them
is the use case's decision (``geoapp.core.photos``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from geoapp.errors import InvalidParameter, NotFound
from geoapp.store import tables
from geoapp.store.base import Actor
from geoapp.store.records import audit_row, now

#: the columns a photo's description is read from (the image columns are not among them)
_META = ("id", "layer", "fid", "stage", "caption", "media_type", "width", "height", "size", "digest")
_META += ("uploaded_at", "uploaded_by")
#: largest photo id SQLite and PostgreSQL both compare without an error
_MAX_ID = 2**63


@dataclass(frozen=True)
class Photo:
    """A photo's description (what a list shows); the image and thumbnail are read on their own."""

    id: int
    layer: str
    fid: int
    stage: str  # before | after
    caption: str
    media_type: str  # image/jpeg | image/png | image/webp
    width: int
    height: int
    size: int  # bytes of the stored image
    digest: str  # SHA-256 of the stored image, hex
    uploaded_at: str  # ISO 8601, UTC
    uploaded_by: str


@dataclass(frozen=True)
class NewPhoto:
    """What the use case hands the store: the processed image, its thumbnail and what describes them."""

    stage: str
    caption: str
    media_type: str
    width: int
    height: int
    digest: str
    image: bytes
    thumb: bytes
    #: when it was uploaded (ISO 8601, UTC), by the service's clock; now if not given
    uploaded_at: str | None = None


def _photo(row: Any) -> Photo:
    return Photo(*(row[i] for i in range(len(_META))))


class PhotoSQL:
    """Photos for a backend that has :class:`~geoapp.store.features.FeatureSQL` and Records."""

    mark: str

    def add_photo(self, layer_id: str, fid: int, photo: NewPhoto, *, limit: int, actor: Actor) -> Photo:
        """Attach a photo to an existing feature, with its audit row; refuse a feature that has ``limit`` already."""
        layer = self._layer(layer_id)
        m = self.mark
        with self._transaction() as conn:
            if self._get(conn, layer, fid, lock=True) is None:  # locked: the count below holds until commit
                raise NotFound(f"no feature {fid} in layer {layer_id}", parameter="fid")
            (count,) = conn.execute(
                f"SELECT count(*) FROM geoapp_photos WHERE layer = {m} AND fid = {m}", (layer_id, fid)
            ).fetchone()
            if count >= limit:
                raise InvalidParameter(
                    f"this feature has {count} photos already, the most it may have; delete one first",
                    parameter="file",
                )
            values = {
                "layer": layer_id,
                "fid": fid,
                "stage": photo.stage,
                "caption": photo.caption,
                "media_type": photo.media_type,
                "width": photo.width,
                "height": photo.height,
                "size": len(photo.image),
                "digest": photo.digest,
                "uploaded_at": photo.uploaded_at or now(),
                "uploaded_by": actor.name,
                "thumb": photo.thumb,
                "image": photo.image,
            }
            inserted = sa.insert(tables.photos).values(**values).returning(*(tables.photos.c[n] for n in _META))
            added = _photo(tables.run(conn, inserted, self.dialect).fetchone())
            changes = {
                "photo": [None, added.id],
                "stage": [None, added.stage],
                "caption": [None, added.caption],
                "media_type": [None, added.media_type],
                "pixels": [None, f"{added.width}x{added.height}"],
                "bytes": [None, added.size],
            }
            audit_row(conn, self.dialect, actor, "photo_add", layer_id, fid, changes)
        return added

    def delete_photo(self, photo_id: int, *, actor: Actor) -> Photo:
        """Remove a photo for good, with its audit row (which keeps what it showed, not the image)."""
        t = tables.photos
        with self._transaction() as conn:
            gone = None
            if 0 < photo_id < _MAX_ID:
                statement = sa.delete(t).where(t.c.id == photo_id).returning(*(t.c[n] for n in _META))
                gone = tables.run(conn, statement, self.dialect).fetchone()
            if gone is None:
                raise NotFound(f"no photo {photo_id}", parameter="photo")
            photo = _photo(gone)
            changes = {"photo": [photo.id, None], "stage": [photo.stage, None], "caption": [photo.caption, None]}
            audit_row(conn, self.dialect, actor, "photo_delete", photo.layer, photo.fid, changes)
        return photo

    def photos(self, layer_id: str, fid: int) -> list[Photo]:
        """A feature's photos, oldest first (their descriptions, not the images)."""
        t = tables.photos
        if not 0 < fid < _MAX_ID:
            return []
        statement = sa.select(*(t.c[n] for n in _META)).where(t.c.layer == layer_id, t.c.fid == fid).order_by(t.c.id)
        with self._reading() as conn:
            return [_photo(row) for row in tables.rows(conn, statement, self.dialect)]

    def photo_count(self, layer_id: str, fid: int) -> int:
        t = tables.photos
        statement = sa.select(sa.func.count()).select_from(t).where(t.c.layer == layer_id, t.c.fid == fid)
        with self._reading() as conn:
            return tables.rows(conn, statement, self.dialect)[0][0]

    def photo(self, photo_id: int, *, image: str | None = None) -> tuple[Photo, bytes | None] | None:
        """A photo's description and, with ``image`` ("image" or "thumb"), those bytes; None if there is none."""
        t = tables.photos
        if not 0 < photo_id < _MAX_ID:
            return None
        columns = [t.c[n] for n in _META] + ([t.c[image]] if image else [])
        with self._reading() as conn:
            row = tables.run(conn, sa.select(*columns).where(t.c.id == photo_id), self.dialect).fetchone()
        if row is None:
            return None
        return _photo(row), (bytes(row[len(_META)]) if image else None)

    def photo_rows(self, batch: int = 20) -> Iterator[list[dict[str, Any]]]:
        """Every row of ``geoapp_photos``, images included, a few at a time in id order (for moving a store to
        another backend without holding every image in memory at once)."""
        t = tables.photos
        names = [column.name for column in t.columns]
        after = 0
        while True:
            statement = sa.select(t).where(t.c.id > after).order_by(t.c.id).limit(batch)
            with self._reading() as conn:
                rows = [dict(zip(names, row, strict=True)) for row in tables.rows(conn, statement, self.dialect)]
            if not rows:
                return
            for row in rows:
                row["image"], row["thumb"] = bytes(row["image"]), bytes(row["thumb"])
            yield rows
            after = rows[-1]["id"]
