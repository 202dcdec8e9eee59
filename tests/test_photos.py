"""Before/after photos (整治前后照片): real image files made here with Pillow, uploaded as a planner would, read back as
the public and staff would, on both store backends where the store is what is tested.

One app per backend for the module (photos added by one test stay for the next: each test uses features of its own).
"""

from __future__ import annotations

import io
import json
import re
import struct
import zlib

import numpy as np
import pytest
from PIL import ExifTags, Image, ImageCms, PngImagePlugin

from geoapp.core.accounts import LoginPolicy
from geoapp.store import create_store, open_store, upgrade_store
from geoapp.store.photos import NewPhoto
from geoapp.web import create_app, maps
from tests.backends import execute, is_postgis
from tests.conftest import CHEAP_ARGON2, SETUP, demo_copy_in, login

#: what the module's app accepts: photos up to 1 MB, every other body up to 0.5 MB
PHOTO_MB = 1
BODY_MB = 0.5
HOARDINGS, BACKSTREETS, COVERS = "construction_hoardings", "backstreet_repairs", "manhole_covers"


# -- images, made here ----------------------------------------------------------------------------


def jpeg_with_exif(size=(800, 600), orientation: int = 6) -> bytes:
    """A JPEG as a phone writes one: camera make and model, GPS position, orientation, an ICC profile, a comment."""
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "Canon"
    exif[ExifTags.Base.Model] = "EOS R5"
    exif[ExifTags.Base.Orientation] = orientation
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (33.0, 44.0, 1.5)
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (113.0, 18.0, 2.25)
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    image = Image.new("RGB", size, (200, 40, 30))
    image.paste((30, 40, 200), (0, 0, size[0] // 2, size[1]))  # left half blue: shows which way it was turned
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif, icc_profile=icc, comment=b"taken at home, 12 Jianshe Road")
    return out.getvalue()


def png(size=(400, 300), *, noise: bool = False, text: bool = False) -> bytes:
    if noise:  # incompressible: the file is about 3 bytes a pixel
        pixels = np.random.default_rng(7).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
        image = Image.fromarray(pixels, "RGB")
    else:
        image = Image.new("RGBA", size, (10, 120, 60, 200))
    info = PngImagePlugin.PngInfo()
    if text:
        info.add_text("GPS", "33.7339N 113.3006E")
        info.add_text("Author", "planner at home")
    out = io.BytesIO()
    image.save(out, "PNG", pnginfo=info)
    return out.getvalue()


def image_bytes(kind: str, size=(300, 200)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (90, 90, 200)).save(out, kind)
    return out.getvalue()


def png_bomb(width: int = 30_000, height: int = 20_000) -> bytes:
    """A PNG of a few hundred bytes whose header claims width x height pixels (billions of bytes decoded)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = zlib.compress(b"\x00" * (width * 3 + 1) * 4, 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


# -- the app --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def site(backend, request, tmp_path_factory, password_hash):
    """The demo district on the backend under test, with accounts; (app, database)."""
    with demo_copy_in(backend, tmp_path_factory.mktemp("photos"), request) as database:
        app = create_app(
            {
                "TESTING": True,
                "SECRET_KEY": "test-secret",
                "GEOAPP_DATABASE": str(database),
                "ARGON2_PARAMETERS": CHEAP_ARGON2,
                "LOGIN_POLICY": LoginPolicy(),
                "GEOAPP_PHOTO_MAX_MB": str(PHOTO_MB),
                "GEOAPP_MAX_BODY_MB": str(BODY_MB),
            }
        )
        store = app.extensions["geoapp"].store
        for role in ("viewer", "planner", "admin"):
            store.add_user(role, password_hash, (role,), actor=SETUP)
        yield app, database
        app.extensions["geoapp"].close()


@pytest.fixture(scope="module")
def planner(site):
    """A planner's signed-in client and its CSRF token."""
    client = site[0].test_client()
    _, token = login(client, "planner")
    return client, token


@pytest.fixture(scope="module")
def viewer(site):
    client = site[0].test_client()
    _, token = login(client, "viewer")
    return client, token


def _photos_url(layer: str, fid: int) -> str:
    return f"/api/layers/{layer}/features/{fid}/photos"


def upload(signed_in, layer: str, fid: int, data: bytes, *, stage="before", caption="", headers=None, **fields):
    """POST a photo as a browser's form sends it, named and typed as a JPEG whatever it holds."""
    client, token = signed_in
    form = {"file": (io.BytesIO(data), "photo.jpg", "image/jpeg"), "stage": stage, "caption": caption, **fields}
    sent = {"X-CSRFToken": token} if token else {}
    return client.post(
        _photos_url(layer, fid), data=form, headers={**sent, **(headers or {})}, content_type="multipart/form-data"
    )


def _count(database, layer: str | None = None, fid: int | None = None) -> int:
    if layer is None:
        return execute(database, "SELECT count(*) FROM geoapp_photos")[0][0]
    return execute(database, "SELECT count(*) FROM geoapp_photos WHERE layer = ? AND fid = ?", (layer, fid))[0][0]


def _audit(database) -> int:
    return execute(database, "SELECT count(*) FROM geoapp_audit")[0][0]


# -- uploading and reading back -------------------------------------------------------------------


@pytest.mark.backends("gpkg", "postgis")
def test_a_photo_is_stored_upright_without_its_location_camera_or_profile_with_a_thumbnail(site, planner):
    app, database = site
    anonymous = app.test_client()
    sent = jpeg_with_exif()
    assert Image.open(io.BytesIO(sent)).getexif().get_ifd(ExifTags.IFD.GPSInfo)  # the upload does carry them

    answer = upload(planner, HOARDINGS, 2, sent, stage="before", caption="北侧围挡，拆除前")
    assert answer.status_code == 201, answer.json
    photo = answer.json
    assert (photo["stage"], photo["caption"], photo["uploaded_by"]) == ("before", "北侧围挡，拆除前", "planner")
    assert (photo["width"], photo["height"]) == (600, 800)  # turned upright: orientation 6 is a quarter turn
    assert answer.headers["Location"] == photo["url"] == f"/photos/{photo['id']}"

    served = anonymous.get(photo["url"])  # hoardings' photos are public
    assert served.status_code == 200 and served.mimetype == "image/jpeg"
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    assert served.headers["Cache-Control"] == "public, max-age=600"
    kept = Image.open(io.BytesIO(served.data))
    assert kept.format == "JPEG" and kept.size == (600, 800)
    assert not kept.getexif() and "icc_profile" not in kept.info and "comment" not in kept.info
    for secret in (b"Canon", b"EOS R5", b"Exif", b"Jianshe", b"ICC_PROFILE"):
        assert secret not in served.data, secret
    assert kept.getpixel((300, 50))[2] > 150 and kept.getpixel((300, 750))[0] > 150  # blue on top, red below
    again = anonymous.get(photo["url"], headers={"If-None-Match": served.headers["ETag"]})
    assert again.status_code == 304

    small = anonymous.get(photo["thumb"])
    assert (
        small.status_code == 200 and small.mimetype == "image/jpeg" and small.headers["ETag"] != served.headers["ETag"]
    )
    thumb = Image.open(io.BytesIO(small.data))
    assert thumb.size == (240, 320) and not thumb.getexif()

    # a PNG with text chunks stays a PNG without them; a WebP stays a WebP
    answer = upload(planner, HOARDINGS, 2, png(text=True), stage="after", caption="拆除后")
    assert answer.status_code == 201, answer.json
    as_png = anonymous.get(answer.json["url"])
    assert as_png.mimetype == "image/png" and Image.open(io.BytesIO(as_png.data)).format == "PNG"
    assert b"planner at home" not in as_png.data and b"33.7339N" not in as_png.data
    assert Image.open(io.BytesIO(as_png.data)).mode == "RGBA"  # transparency kept
    answer = upload(planner, HOARDINGS, 2, image_bytes("WEBP"), stage="after")
    assert answer.status_code == 201, answer.json
    as_webp = anonymous.get(answer.json["thumb"])
    assert as_webp.mimetype == "image/webp" and Image.open(io.BytesIO(as_webp.data)).format == "WEBP"

    listed = anonymous.get(_photos_url(HOARDINGS, 2))
    assert [p["stage"] for p in listed.json["photos"]] == ["before", "after", "after"]
    assert all("uploaded_by" not in p for p in listed.json["photos"])  # who uploaded is for staff
    assert (
        anonymous.get(_photos_url(HOARDINGS, 2), headers={"If-None-Match": listed.headers["ETag"]}).status_code == 304
    )

    # audited, one row per photo, naming layer and feature, without the image
    history = app.extensions["geoapp"].store.history(HOARDINGS, 2)
    added = [entry for entry in history if entry.action == "photo_add"]
    assert [entry.changes["photo"][1] for entry in added] == [p["id"] for p in listed.json["photos"]]
    assert added[0].actor == "planner" and added[0].changes["caption"] == [None, "北侧围挡，拆除前"]
    rows = execute(
        database,
        "SELECT changes FROM geoapp_audit WHERE action = 'photo_add' AND layer = ? AND fid = ?",
        (HOARDINGS, 2),
    )
    assert len(rows) == 3 and all(len(text) < 500 and "Canon" not in text for (text,) in rows)


def test_what_is_not_a_photo_is_refused_naming_the_parameter_and_nothing_is_written(site, planner):
    app, database = site
    fid = 3
    photos, audit = _count(database), _audit(database)
    text_as_jpeg = b"This is not a picture, whatever its name says.\n" * 20
    refusals = {
        "a GIF": (image_bytes("GIF"), {}, 400, "file"),
        "text renamed .jpg": (text_as_jpeg, {}, 400, "file"),
        "a decompression bomb": (png_bomb(), {}, 400, "file"),
        "a bomb its decoder takes": (png_bomb(9_000, 6_000), {}, 400, "file"),
        "half a JPEG": (jpeg_with_exif()[:2000], {}, 400, "file"),
        "no file": (b"", {}, 400, "file"),
        "a stage of neither": (png(), {"stage": "during"}, 400, "stage"),
        "a caption too long": (png(), {"caption": "字" * 201}, 400, "caption"),
        "a caption of two lines": (png(), {"caption": "第一行\n第二行"}, 400, "caption"),
        "a misspelt field": (png(), {"captoin": "x"}, 400, "captoin"),
    }
    for what, (data, fields, status, parameter) in refusals.items():
        answer = upload(planner, HOARDINGS, fid, data, **fields)
        assert answer.status_code == status, (what, answer.json)
        assert answer.json["error"]["parameter"] == parameter, (what, answer.json)
    assert "JPEG, PNG or WebP" in upload(planner, HOARDINGS, fid, image_bytes("GIF")).json["error"]["message"]
    chinese = upload(planner, HOARDINGS, fid, image_bytes("GIF"), headers={"Accept-Language": "zh-CN"})
    assert "JPEG、PNG 或 WebP" in chinese.json["error"]["message"]

    # over the photo limit: refused before the body is read (a large body), or once read (a little over)
    large = png((700, 700), noise=True)
    assert len(large) > (PHOTO_MB + 0.1) * 1024 * 1024
    assert upload(planner, HOARDINGS, fid, large).status_code == 413
    just_over = png((560, 560), noise=True)
    just_over += b"\0" * (PHOTO_MB * 1024 * 1024 + 1000 - len(just_over))
    answer = upload(planner, HOARDINGS, fid, just_over)
    assert answer.status_code == 413 and answer.json["error"]["parameter"] == "file"
    assert (_count(database), _audit(database)) == (photos, audit)  # nothing written

    # the upload alone takes a body larger than GEOAPP_MAX_BODY_MB: a 0.8 MB photo goes in, a 0.8 MB edit does not
    big = png((520, 520), noise=True)
    assert BODY_MB * 1024 * 1024 < len(big) < PHOTO_MB * 1024 * 1024
    assert upload(planner, HOARDINGS, fid, big, caption="大图").status_code == 201
    client, token = planner
    edit = client.patch(
        f"/api/layers/{HOARDINGS}/features/{fid}",
        data=json.dumps({"properties": {"notes": "x" * len(big)}, "version": 1}),
        headers={"X-CSRFToken": token, "Content-Type": "application/json"},
    )
    assert edit.status_code == 413

    # at most 20 photos a feature
    for _ in range(19):
        assert upload(planner, HOARDINGS, fid, png((8, 8))).status_code == 201
    full = upload(planner, HOARDINGS, fid, png((8, 8)))
    assert (
        full.status_code == 400 and full.json["error"]["parameter"] == "file" and "20" in full.json["error"]["message"]
    )
    assert _count(database, HOARDINGS, fid) == 20

    # a layer without photos takes none
    assert upload(planner, "waterlogging_points", 1, png()).status_code == 403  # commanders edit it
    admin = app.test_client()
    _, token = login(admin, "admin")
    assert upload((admin, token), "waterlogging_points", 1, png()).status_code == 404


def test_who_sees_and_changes_photos(site, planner, viewer):
    app, _ = site
    anonymous = app.test_client()
    cover = upload(planner, COVERS, 4, png(), caption="井盖破损")
    street = upload(planner, BACKSTREETS, 1, png(), caption="路面修复前")
    assert cover.status_code == 201 and street.status_code == 201

    # the public: back streets' photos (public) without who uploaded them; manhole covers' (internal) not at all
    listed = anonymous.get(_photos_url(BACKSTREETS, 1))
    assert listed.status_code == 200 and listed.json["photos"][0]["caption"] == "路面修复前"
    assert "uploaded_by" not in listed.json["photos"][0]
    hidden = anonymous.get(_photos_url(COVERS, 4))
    assert hidden.status_code == 404 and "internal" not in hidden.get_data(as_text=True)
    # a hidden photo answers as a photo that is not there does
    as_json = {"Accept": "application/json"}
    for url in (cover.json["url"], cover.json["thumb"]):
        refused = anonymous.get(url, headers=as_json)
        missing = anonymous.get(url.replace(f"/{cover.json['id']}", "/999999"), headers=as_json)
        assert refused.status_code == missing.status_code == 404
        assert refused.json["error"]["message"].replace(str(cover.json["id"]), "N") == missing.json["error"][
            "message"
        ].replace("999999", "N")
    assert anonymous.get(_photos_url("waterlogging_points", 1)).status_code == 404  # no photos there

    # the public may not add or delete: 401; a viewer sees everything, changes nothing: 403
    assert upload((anonymous, None), BACKSTREETS, 1, png()).status_code == 401
    assert anonymous.delete(f"/api/photos/{street.json['id']}").status_code == 401
    assert upload(viewer, BACKSTREETS, 1, png()).status_code == 403
    client, token = viewer
    assert client.delete(f"/api/photos/{cover.json['id']}", headers={"X-CSRFToken": token}).status_code == 403
    staff = client.get(_photos_url(COVERS, 4))
    assert staff.status_code == 200 and staff.json["photos"][0]["uploaded_by"] == "planner"
    internal = client.get(cover.json["url"])
    assert internal.status_code == 200 and "public" not in internal.headers["Cache-Control"]
    assert "private" in internal.headers["Cache-Control"]

    # the map offers photos where this caller may see them
    registry = app.extensions["geoapp"].registry
    offered = {
        (layer_id, internal): maps.layer_config(registry[layer_id], "zh", internal, ("", ""))["photos"]
        for layer_id in (HOARDINGS, COVERS, "waterlogging_points")
        for internal in (False, True)
    }
    assert offered == {
        (HOARDINGS, False): True,
        (HOARDINGS, True): True,
        (COVERS, False): False,
        (COVERS, True): True,
        ("waterlogging_points", False): False,
        ("waterlogging_points", True): False,
    }

    # a deleted feature's photos are no longer public; staff still see them (it may be restored)
    store = app.extensions["geoapp"].store
    street_feature = store.get(BACKSTREETS, 1)
    store.delete(BACKSTREETS, 1, expected_version=street_feature.version, actor=SETUP)
    assert anonymous.get(_photos_url(BACKSTREETS, 1)).status_code == 404
    assert anonymous.get(street.json["url"]).status_code == 404
    assert anonymous.get(street.json["thumb"]).status_code == 404
    kept = client.get(street.json["url"])
    assert kept.status_code == 200 and "public" not in kept.headers["Cache-Control"]
    store.restore(BACKSTREETS, 1, actor=SETUP)
    assert anonymous.get(street.json["url"]).status_code == 200


@pytest.mark.backends("gpkg", "postgis")
def test_the_archive_page_shows_photos_and_lets_editors_add_and_delete_them(site, planner, viewer):
    app, _ = site
    client, token = planner
    page_url = f"/features/{HOARDINGS}/5"
    hostile = '<img src=x onerror="window.__pwned=1">'
    posted = client.post(
        f"{page_url}/photos",
        data={
            "file": (io.BytesIO(jpeg_with_exif()), "site.jpg"),
            "stage": "after",
            "caption": hostile,
            "csrf_token": token,
        },
        content_type="multipart/form-data",
    )
    assert posted.status_code == 303 and posted.headers["Location"].endswith(f"{page_url}#photos")
    photo = client.get(_photos_url(HOARDINGS, 5)).json["photos"][-1]

    page = client.get(page_url).get_data(as_text=True)
    section = page[page.index('id="photos"') :]
    assert "照片已添加。" in section  # the message stands beside the photos the redirect scrolls to
    assert f'<a href="{photo["url"]}"><img src="{photo["thumb"]}"' in section
    assert hostile not in page and "&lt;img src=x onerror=" in section
    at = photo["uploaded_at"]  # stored in UTC, shown in Beijing time
    hour = (int(at[11:13]) + 8) % 24
    assert re.search(rf"\d{{4}}-\d\d-\d\d {hour:02d}:{at[14:16]} · planner", section)
    assert "整治后" in section and "确认删除此照片" in section and "上传照片" in section
    assert "添加照片" in page[page.index("geoapp-archive-history") :]  # the history names the event

    # a refused upload says why beside the photos, in the page's language
    refused = client.post(
        f"{page_url}/photos",
        data={"file": (io.BytesIO(image_bytes("GIF")), "a.gif"), "stage": "after", "csrf_token": token},
        content_type="multipart/form-data",
    )
    assert refused.status_code == 303
    section = client.get(page_url).get_data(as_text=True).split('id="photos"')[1]
    assert "JPEG、PNG 或 WebP" in section

    # a viewer sees the photos and who added them, but no upload form or delete button
    seen = viewer[0].get(page_url).get_data(as_text=True).split('id="photos"')[1]
    assert photo["thumb"] in seen and "planner" in seen and "上传照片" not in seen and "确认删除此照片" not in seen
    # the public sees them without who added them
    public = app.test_client().get(page_url).get_data(as_text=True).split('id="photos"')[1]
    assert photo["thumb"] in public and "· planner" not in public

    # deleting: from the page, then through the API; audited, and gone for everyone
    deleted = client.post(f"{page_url}/photos/{photo['id']}/delete", data={"csrf_token": token})
    assert deleted.status_code == 303
    assert client.get(photo["url"]).status_code == 404
    assert client.post(f"{page_url}/photos/{photo['id']}/delete", data={"csrf_token": token}).status_code == 404
    other = upload(planner, HOARDINGS, 5, png())
    gone = client.delete(f"/api/photos/{other.json['id']}", headers={"X-CSRFToken": token})
    assert gone.status_code == 204 and client.get(other.json["thumb"]).status_code == 404
    assert client.get(_photos_url(HOARDINGS, 5)).json["photos"] == []
    history = app.extensions["geoapp"].store.history(HOARDINGS, 5)
    assert [e.action for e in history if e.action.startswith("photo_")] == ["photo_add", "photo_delete"] * 2
    removal = next(e for e in history if e.action == "photo_delete")
    assert removal.changes["photo"] == [photo["id"], None] and removal.actor == "planner"
    page = client.get(page_url).get_data(as_text=True)
    assert "删除照片" in page[page.index("geoapp-archive-history") :]


# -- the store's life: upgrade, replacement, copy ----------------------------------------------------


def _tiny_photo(caption: str = "") -> NewPhoto:
    data = image_bytes("PNG", (4, 4))
    return NewPhoto("before", caption, "image/png", 4, 4, "0" * 64, data, data)


@pytest.mark.backends("gpkg", "postgis")
def test_db_upgrade_adds_photos_to_an_older_store_and_init_force_drops_them_with_the_features(
    registry, demo_data, location
):
    store = create_store(registry, location, {COVERS: demo_data[COVERS].iloc[:2]}, actor=SETUP)
    cover = store.get(COVERS, 1)
    store.add_user("planner", "argon2-hash", ("planner",), actor=SETUP)
    store.close()
    # as geoapp made stores before photos: no table, the schema before, the revision before
    execute(location, "DROP TABLE geoapp_photos")
    execute(location, "UPDATE geoapp_meta SET value = '4' WHERE key = 'schema_version'")
    if is_postgis(location):
        execute(location, "UPDATE geoapp_alembic_version SET version_num = '0002'")
        with pytest.raises(Exception, match="upgrade"):
            open_store(registry, location)
    upgrade_store(registry, location)
    store = open_store(registry, location)
    try:
        added = store.add_photo(COVERS, cover.fid, _tiny_photo("升级后"), limit=20, actor=SETUP)
        assert [p.caption for p in store.photos(COVERS, cover.fid)] == ["升级后"]
        assert store.photo(added.id, image="image")[1] == _tiny_photo().image
    finally:
        store.close()
    # a new district (init --force) gives fids again: the old features' photos go with them; accounts stay
    store = create_store(registry, location, force=True, actor=SETUP)
    try:
        assert store.photos(COVERS, cover.fid) == [] and execute(location, "SELECT count(*) FROM geoapp_photos") == [
            (0,)
        ]
        assert store.user("planner") is not None
    finally:
        store.close()


@pytest.mark.backends("postgis")
def test_copy_into_postgis_keeps_every_photo_and_its_id(registry, demo_data, location, tmp_path):
    from geoapp.store import copy_store

    source_path = str(tmp_path / "source.gpkg")
    source = create_store(registry, source_path, {COVERS: demo_data[COVERS].iloc[:2]}, actor=SETUP)
    cover = source.get(COVERS, 2)
    first = source.add_photo(COVERS, cover.fid, _tiny_photo("一"), limit=20, actor=SETUP)
    second = source.add_photo(COVERS, cover.fid, _tiny_photo("二"), limit=20, actor=SETUP)
    source.delete_photo(first.id, actor=SETUP)
    source.close()
    target = copy_store(registry, source_path, location, actor=SETUP)
    try:
        assert target.photos(COVERS, cover.fid) == [second]
        assert target.photo(second.id, image="thumb")[1] == _tiny_photo().thumb
        third = target.add_photo(COVERS, cover.fid, _tiny_photo("三"), limit=20, actor=SETUP)
        assert third.id == second.id + 1  # ids go on where the source left off
    finally:
        target.close()
