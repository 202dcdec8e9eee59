"""Before/after photos of features: upload, list, serve (full size and thumbnail), delete.

The API (``/api/layers/<layer>/features/<fid>/photos``, ``/api/photos/<id>``), the images
(``/photos/<id>``, ``/photos/<id>/thumb``) and the archive page's forms. Every decision (who may
see or change what, what a photo must be) is the use case's, ``geoapp.core.photos``; this module
translates requests and answers.

An upload may be larger than the body limit of every other request (``GEOAPP_MAX_BODY_MB``): the
upload routes alone take ``GEOAPP_PHOTO_MAX_MB`` and a little room for the form's other fields,
and only from a caller who may edit the layer (the session or token is looked at first, which
reads no body). The limit is raised before anything reads the body (the CSRF check reads the form
of a signed-in browser's request before the view runs), in this blueprint's URL preprocessor,
which Flask runs ahead of the app's ``before_request`` functions, and for these routes only.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import orjson
from flask import Blueprint, Response, current_app, flash, redirect, request, url_for
from flask_babel import gettext as _
from werkzeug.exceptions import RequestEntityTooLarge

from geoapp import config
from geoapp.core import permissions
from geoapp.core.layers import Layer
from geoapp.core.messages import Words
from geoapp.core.photos import MAX_CAPTION, MAX_PER_FEATURE, STAGES, THUMB_SIDE, PhotoArchive
from geoapp.core.query import parse_fid
from geoapp.errors import InvalidParameter, NotFound, PayloadTooLarge
from geoapp.store.photos import Photo
from geoapp.web import auth, service
from geoapp.web.access import allow_upload, caller, staff
from geoapp.web.i18n import current_lang

bp = Blueprint("photos", __name__)

#: the routes that take a photo, and so a larger body
UPLOADS = ("photos.upload", "photos.upload_form")
#: how long anyone may keep a public photo (a deleted one stops being served by the app at once)
PUBLIC_MAX_AGE = 600
_FORM_FIELDS = ("stage", "caption", "csrf_token")
_EXTENSIONS = {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp"}


@bp.record_once
def _settings(state) -> None:
    """Read ``GEOAPP_PHOTO_MAX_MB`` when the app is built: a bad value stops it with a message naming it."""
    app = state.app
    app.extensions["geoapp.photo_max_bytes"] = int(
        config.number(app.config, "GEOAPP_PHOTO_MAX_MB", minimum=0.01) * 1024 * 1024
    )


def max_bytes() -> int:
    return current_app.extensions["geoapp.photo_max_bytes"]


def archive() -> PhotoArchive:
    """The photo use cases on the running store (made per request: the store may be replaced by ``init``)."""
    svc = service()
    return PhotoArchive(svc.store, svc.reader, svc.registry, max_bytes=max_bytes(), clock=svc.clock)


@bp.url_value_preprocessor
def _upload_limit(endpoint: str | None, values: dict | None) -> None:
    """The larger limit for a caller who may add photos to the layer only (known from the session or the token,
    before the body is read): anyone else's body is refused at the app's limit, unread."""
    if endpoint not in UPLOADS:
        return
    registry = service().registry
    layer_id = (values or {}).get("layer_id")
    if layer_id not in registry or not permissions.may_edit(auth.principal(), registry[layer_id]):
        return
    allow_upload(max_bytes(), _too_large)


def _too_large() -> PayloadTooLarge:
    mb = f"{max_bytes() / 1024 / 1024:g}"
    return PayloadTooLarge(
        f"a photo may be at most {mb} MB",
        parameter="file",
        text=Words(f"照片最大 {mb} MB", f"a photo may be at most {mb} MB"),
    )


def _fid(layer_id: str, text: str) -> int:
    fid = parse_fid(text)
    if fid is None:
        raise NotFound(f"no feature {text[:40]!r} in layer {layer_id}", parameter="fid")
    return fid


def describe(photo: Photo, *, internal: bool) -> dict:
    """A photo as the API lists it; who uploaded it only for staff."""
    out = {
        "id": photo.id,
        "stage": photo.stage,
        "caption": photo.caption,
        "width": photo.width,
        "height": photo.height,
        "uploaded_at": photo.uploaded_at,
        "url": url_for("photos.image", photo_id=photo.id),
        "thumb": url_for("photos.thumb", photo_id=photo.id),
    }
    if internal:
        out["uploaded_by"] = photo.uploaded_by
    return out


def _json(payload, status: int = 200) -> Response:
    return Response(orjson.dumps(payload), status=status, mimetype="application/json")


def _form() -> tuple[bytes, str | None, str | None]:
    """The upload's photo, stage and caption from a multipart form; refuse a misspelt or missing field."""
    try:
        if request.mimetype != "multipart/form-data":
            raise InvalidParameter(
                "send the photo as multipart/form-data with the fields file, stage and caption",
                parameter="file",
                text=Words(
                    "请以 multipart/form-data 表单上传照片（字段 file、stage、caption）",
                    "send the photo as multipart/form-data with the fields file, stage and caption",
                ),
            )
        form, files = request.form, request.files
        for name in form:
            if name not in _FORM_FIELDS:
                raise InvalidParameter(f"unknown field {name[:40]!r}; allowed: file, stage, caption", parameter=name)
        for name in files:
            if name != "file":
                raise InvalidParameter(f"unknown file field {name[:40]!r}; send the photo as file", parameter=name)
        sent = files.getlist("file")
        if len(sent) > 1:
            raise InvalidParameter(
                "send one photo per upload",
                parameter="file",
                text=Words("每次只能上传一张照片", "send one photo per upload"),
            )
        data = sent[0].stream.read(max_bytes() + 1) if sent else b""
        return data, form.get("stage"), form.get("caption")
    except RequestEntityTooLarge:
        raise _too_large() from None


# -- the API ----------------------------------------------------------------------------------


@bp.get("/api/layers/<layer_id>/features/<fid>/photos")
def feature_photos(layer_id: str, fid: str):
    """A feature's photos, oldest first; 404 for a layer without photos or photos the caller may not see."""
    found = archive().list(caller(), layer_id, _fid(layer_id, fid))
    internal = staff()
    response = _json({"photos": [describe(p, internal=internal) for p in found]})
    response.add_etag()
    return response.make_conditional(request)


@bp.post("/api/layers/<layer_id>/features/<fid>/photos")
def upload(layer_id: str, fid: str):
    """Attach a photo (multipart: ``file``, ``stage`` before|after, ``caption``); editors of the layer."""
    who = caller()
    permissions.require_edit(who, service().registry.require(layer_id))  # before the body: the public learns nothing
    number = _fid(layer_id, fid)
    data, stage, caption = _form()
    photo = archive().add(who, layer_id, number, data=data, stage=stage, caption=caption)
    response = _json(describe(photo, internal=True), 201)
    response.headers["Location"] = url_for("photos.image", photo_id=photo.id)
    return response


@bp.delete("/api/photos/<int:photo_id>")
def delete(photo_id: int):
    archive().delete(caller(), photo_id)
    return Response(status=204)


# -- the images -------------------------------------------------------------------------------


def _image(photo_id: int, *, thumb: bool) -> Response:
    photos = archive()
    photo, data = photos.read(caller(), photo_id, thumb=thumb)
    response = Response(data, mimetype=photo.media_type)
    response.set_etag(photo.digest[:32] + ("-thumb" if thumb else ""))
    response.headers["X-Content-Type-Options"] = "nosniff"
    name = f"photo-{photo.id}{'-thumb' if thumb else ''}{_EXTENSIONS[photo.media_type]}"
    response.headers["Content-Disposition"] = f'inline; filename="{name}"'
    if photos.is_public(photo.layer, photo.fid):  # the same for everyone: any cache may keep it a while
        response.cache_control.public = True
        response.cache_control.max_age = PUBLIC_MAX_AGE
    else:
        response.cache_control.private = True
    return response.make_conditional(request)


@bp.get("/photos/<int:photo_id>")
def image(photo_id: int):
    """The photo as stored: re-encoded, without EXIF."""
    return _image(photo_id, thumb=False)


@bp.get("/photos/<int:photo_id>/thumb")
def thumb(photo_id: int):
    return _image(photo_id, thumb=True)


# -- the archive page -------------------------------------------------------------------------


def _back(layer_id: str, fid: int):
    return redirect(url_for("pages.feature", layer_id=layer_id, fid=fid, _anchor="photos"), 303)


@bp.post("/features/<layer_id>/<fid>/photos")
def upload_form(layer_id: str, fid: str):
    """The archive page's upload form: the photo is added, or what is wrong with it shown beside the photos."""
    who = caller()
    permissions.require_edit(who, service().registry.require(layer_id))
    number = _fid(layer_id, fid)
    try:
        data, stage, caption = _form()
        archive().add(who, layer_id, number, data=data, stage=stage, caption=caption)
    except (InvalidParameter, PayloadTooLarge) as exc:
        flash(exc.message_in(current_lang()), "photo-error")
        return _back(layer_id, number)
    flash(_("The photo was added."), "photo-info")
    return _back(layer_id, number)


@bp.post("/features/<layer_id>/<fid>/photos/<int:photo_id>/delete")
def delete_form(layer_id: str, fid: str, photo_id: int):
    number = _fid(layer_id, fid)
    archive().delete(caller(), photo_id, of=(layer_id, number))
    flash(_("The photo was deleted."), "photo-info")
    return _back(layer_id, number)


@dataclass(frozen=True)
class PhotoView:
    id: int
    url: str
    thumb: str
    caption: str
    uploaded_at: str
    uploaded_by: str | None
    width: int  # of the thumbnail
    height: int
    delete_url: str | None


@dataclass(frozen=True)
class PhotoSection:
    """What the archive page shows of a feature's photos, and the upload form for editors."""

    stages: list[tuple[str, str, list[PhotoView]]]  # (stage, its label, its photos)
    public: bool
    count: int
    limit: int
    upload_url: str | None  # None: the caller may not add photos
    choices: list[tuple[str, str]]
    max_mb: str
    max_caption: int


def stage_label(stage: str) -> str:
    return {"before": _("Before the works"), "after": _("After the works")}.get(stage, stage)


def section(layer: Layer, fid: int) -> PhotoSection | None:
    """The archive page's photos of a feature, or None where the caller sees no photos of its layer."""
    who = caller()
    if not PhotoArchive.layer_shows(who, layer):
        return None
    found = archive().list(who, layer.id, fid)
    editor = permissions.may_edit(who, layer)
    internal = staff()
    zone = service().timezone

    def view(photo: Photo) -> PhotoView:
        scale = min(1.0, THUMB_SIDE / max(photo.width, photo.height))
        return PhotoView(
            photo.id,
            url_for("photos.image", photo_id=photo.id),
            url_for("photos.thumb", photo_id=photo.id),
            photo.caption,
            _local(photo.uploaded_at, zone),
            photo.uploaded_by if internal else None,
            max(1, round(photo.width * scale)),
            max(1, round(photo.height * scale)),
            url_for("photos.delete_form", layer_id=layer.id, fid=fid, photo_id=photo.id) if editor else None,
        )

    stages = [(s, stage_label(s), [view(p) for p in found if p.stage == s]) for s in STAGES]
    return PhotoSection(
        stages=stages,
        public=layer.photos.visibility == "public",
        count=len(found),
        limit=MAX_PER_FEATURE,
        upload_url=url_for("photos.upload_form", layer_id=layer.id, fid=fid) if editor else None,
        choices=[(s, stage_label(s)) for s in STAGES],
        max_mb=f"{max_bytes() / 1024 / 1024:g}",
        max_caption=MAX_CAPTION,
    )


def _local(at: str, zone) -> str:
    """A stored time (ISO, UTC) as ``YYYY-MM-DD HH:MM`` in the district's time zone."""
    try:
        stamp = dt.datetime.fromisoformat(at.replace("Z", "+00:00"))
    except ValueError:
        return at
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=dt.UTC)
    return stamp.astimezone(zone).strftime("%Y-%m-%d %H:%M")


def history_changes(changes: dict) -> list[tuple[str, str, str]]:
    """A photo event of the audit trail as the archive page's history shows it: (what, old, new)."""
    rows = []
    for name, label in (("photo", _("Photo")), ("stage", _("Stage")), ("caption", _("Caption"))):
        if name not in changes:
            continue
        old, new = changes[name]
        if name == "photo":
            old, new = (None if v is None else f"#{v}" for v in (old, new))
        elif name == "stage":
            old, new = (None if v is None else stage_label(v) for v in (old, new))
        rows.append((label, "—" if old in (None, "") else str(old), "—" if new in (None, "") else str(new)))
    return rows
