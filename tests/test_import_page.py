"""The administrators' import page: who may use it, check -> report -> confirm of the same upload, the limits, and
hostile archives refused with nothing written."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import pytest

from geoapp.core.accounts import LoginPolicy
from geoapp.web import create_app
from tests.conftest import CHEAP_ARGON2, SETUP, demo_copy_in, login

IMPORT_MB = 0.05  # 50 KB: an upload over it is refused
BODY_MB = 0.02  # every other request: 20 KB
GOOD = "部件编码,井盖类别,所在道路,状态,整治日期,经度,纬度\n4199010110901001,污水,建设路,已整治,2023/5/1,113.3,33.73\n"
BAD = GOOD + "4199010110901002,火星,建设路,待整治,,113.301,33.731\n"


@pytest.fixture(scope="module")
def site(request, tmp_path_factory, password_hash):
    folder = tmp_path_factory.mktemp("import_page")
    with demo_copy_in("gpkg", folder, request) as database:
        app = create_app(
            {
                "TESTING": True,
                "SECRET_KEY": "test-secret",
                "GEOAPP_DATABASE": str(database),
                "ARGON2_PARAMETERS": CHEAP_ARGON2,
                "LOGIN_POLICY": LoginPolicy(),
                "GEOAPP_IMPORT_MAX_MB": str(IMPORT_MB),
                "GEOAPP_MAX_BODY_MB": str(BODY_MB),
                "IMPORT_FOLDER": str(folder / "uploads"),
            }
        )
        store = app.extensions["geoapp"].store
        for role in ("planner", "admin"):
            store.add_user(role, password_hash, (role,), actor=SETUP)
        store.add_user("admin2", password_hash, ("admin",), actor=SETUP)
        yield app
        app.extensions["geoapp"].close()


def signed_in(site, name: str):
    client = site.test_client()
    _, token = login(client, name)
    return client, token


@pytest.fixture(scope="module")
def admin(site):
    return signed_in(site, "admin")


def count(site) -> int:
    return site.extensions["geoapp"].reader.count("manhole_covers")


def audits(site) -> int:
    return len(site.extensions["geoapp"].store.audit("2000-01-01"))


def uploads(site) -> set[str]:
    return {p.name for p in Path(site.config["IMPORT_FOLDER"]).glob("*.data")}


def upload(client, token, data: bytes, name: str = "covers.csv", **fields):
    form = {"csrf_token": token, "layer": "manhole_covers", "mode": "append", **fields}
    form["file"] = (io.BytesIO(data), name)
    return client.post("/admin/import?lang=en", data=form, content_type="multipart/form-data")


def test_only_administrators_see_the_page(site):
    anonymous = site.test_client().get("/admin/import")
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]
    planner, token = signed_in(site, "planner")
    assert planner.get("/admin/import").status_code == 403
    assert upload(planner, token, GOOD.encode()).status_code in (403, 413)
    client, _ = signed_in(site, "admin")
    page = client.get("/admin/import")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'enctype="multipart/form-data"' in html and 'name="csrf_token"' in html
    assert 'href="/admin/import"' in client.get("/admin/deleted").get_data(as_text=True)  # the nav link
    assert "导入文件" in html  # Chinese by default


def test_a_bad_row_is_reported_and_nothing_written(site, admin):
    client, token = admin
    before, trail = count(site), audits(site)
    answer = upload(client, token, BAD.encode())
    assert answer.status_code == 400
    html = answer.get_data(as_text=True)
    assert "nothing was written" in html
    row = re.search(r"<tr><td>3</td><td>井盖类别</td><td[^>]*>火星</td><td>([^<]+)</td></tr>", html)
    assert row and "Kind must be one of" in row.group(1)
    assert "Import now" not in html  # no confirm button for a file with problems
    assert count(site) == before and audits(site) == trail


def test_check_then_confirm_imports_the_same_upload(site, admin):
    client, token = admin
    before = count(site)
    checked = upload(client, token, GOOD.encode())
    assert checked.status_code == 200
    html = checked.get_data(as_text=True)
    assert "The file is ready to import" in html and count(site) == before  # checking writes nothing
    confirm = re.search(r'action="(/admin/import/([0-9a-f]{32})/confirm)"', html)
    assert confirm
    folder = Path(site.config["IMPORT_FOLDER"])
    assert (folder / f"{confirm.group(2)}.data").read_bytes() == GOOD.encode()
    # another administrator cannot confirm it
    other, other_token = signed_in(site, "admin2")
    assert other.post(confirm.group(1), data={"csrf_token": other_token}).status_code == 404
    assert client.post(confirm.group(1)).status_code == 403  # no CSRF token
    done = client.post(confirm.group(1) + "?lang=en", data={"csrf_token": token})
    assert done.status_code == 200, done.get_data(as_text=True)
    assert "1 features added" in done.get_data(as_text=True)
    assert count(site) == before + 1
    assert not (folder / f"{confirm.group(2)}.data").exists()  # deleted after the import
    assert client.post(confirm.group(1), data={"csrf_token": token}).status_code == 404  # once only
    assert client.post("/admin/import/../../etc/confirm", data={"csrf_token": token}).status_code == 404


def test_an_oversize_upload_is_refused_and_nothing_written(site, admin):
    client, token = admin
    planner, planner_token = signed_in(site, "planner")
    before, trail = count(site), audits(site)
    big = GOOD.encode() + b"#" * int(IMPORT_MB * 1024 * 1024 + 100 * 1024)
    answer = upload(client, token, big)
    assert answer.status_code == 413
    assert "at most 0.05 MB" in answer.get_data(as_text=True)
    # between the app's limit and the import's: an administrator's upload is accepted (and checked)
    medium = GOOD.encode() + ("\n" * int(BODY_MB * 1024 * 1024 * 1.5)).encode()
    assert upload(client, token, medium).status_code == 200
    # nobody else gets the larger limit
    assert upload(planner, planner_token, medium).status_code == 413
    assert count(site) == before and audits(site) == trail


def test_too_many_rows_on_the_page(site, admin, monkeypatch):
    client, token = admin
    monkeypatch.setitem(site.extensions, "geoapp.import_max_rows", 1)
    answer = upload(client, token, BAD.encode())
    assert answer.status_code == 400 and "more than 1 rows" in answer.get_data(as_text=True)


def _zip(members) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members:
            z.writestr(name, data)
    return out.getvalue()


@pytest.mark.parametrize(
    "members, says",
    [
        ([("covers.dbf", b"\0" * (40 * 1024 * 1024))], "zip bomb"),
        ([("../covers.shp", b"x")], "outside the archive"),
        ([("inner.zip", b"PK\x03\x04")], "itself an archive"),
    ],
)
def test_hostile_archives_on_the_page(site, admin, members, says):
    client, token = admin
    before, trail, kept = count(site), audits(site), uploads(site)
    answer = upload(client, token, _zip(members), name="covers.zip")
    assert answer.status_code == 400 and says in answer.get_data(as_text=True)
    assert count(site) == before and audits(site) == trail
    assert uploads(site) == kept  # the refused file is not kept


def test_bad_options_come_back_on_the_form(site, admin):
    client, token = admin
    answer = upload(client, token, GOOD.encode(), crs="EPSG:99999")
    assert answer.status_code == 400
    html = answer.get_data(as_text=True)
    assert "EPSG:99999" in html and 'name="file"' in html  # the form again, with what was wrong
    # no layer chosen (the form starts with none, so that nothing goes into the first by mistake)
    assert 'value="" disabled selected' in client.get("/admin/import").get_data(as_text=True)
    unchosen = upload(client, token, GOOD.encode(), layer="")
    assert unchosen.status_code == 400 and 'name="file"' in unchosen.get_data(as_text=True)
    script = upload(client, token, GOOD.encode(), name="<script>alert(1)</script>.csv")
    assert "<script>alert(1)" not in script.get_data(as_text=True)


def test_cancel_forgets_the_upload(site, admin):
    client, token = admin
    before = count(site)
    html = upload(client, token, GOOD.replace("4199010110901001", "4199010110901011").encode()).get_data(as_text=True)
    upload_id = re.search(r'action="/admin/import/([0-9a-f]{32})/cancel"', html).group(1)
    assert upload_id + ".data" in uploads(site)
    cancelled = client.post(f"/admin/import/{upload_id}/cancel", data={"csrf_token": token})
    assert cancelled.status_code == 303 and cancelled.headers["Location"].endswith("/admin/import")
    assert upload_id + ".data" not in uploads(site)
    assert client.post(f"/admin/import/{upload_id}/confirm", data={"csrf_token": token}).status_code == 404
    assert count(site) == before


def test_an_upload_older_than_an_hour_is_gone(site, admin):
    import os
    import time

    client, token = admin
    html = upload(client, token, GOOD.replace("4199010110901001", "4199010110901021").encode()).get_data(as_text=True)
    upload_id = re.search(r'action="/admin/import/([0-9a-f]{32})/confirm"', html).group(1)
    folder = Path(site.config["IMPORT_FOLDER"])
    old = time.time() - 3601
    for path in folder.glob(f"{upload_id}.*"):
        os.utime(path, (old, old))
    assert client.post(f"/admin/import/{upload_id}/confirm", data={"csrf_token": token}).status_code == 404
    assert not list(folder.glob(f"{upload_id}.*"))
