"""``geoapp publish``: the public map as static files, served by a plain file server and drawn in headless Chromium."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import time
import urllib.request
from html.parser import HTMLParser
from pathlib import Path

import pytest
import shapely

from geoapp.config import PROJECT_ROOT
from geoapp.store import open_store
from geoapp.store.base import Query
from geoapp.web import create_app
from tests.browser.chromium import READY
from tests.conftest import SETUP, stop_server

HOSTILE_NAME = '<img src=x onerror="window.__pwned=1">'
SECRET_PHONE = "0375-99887766"


@pytest.fixture
def hostile_database(database, registry):
    """The demo district plus a public name that tries to run script and an internal phone number."""
    store = open_store(registry, str(database))
    store.insert(
        "waterlogging_points",
        {"name": HOSTILE_NAME, "road": "测试路", "status": "dangerous", "contact_phone": SECRET_PHONE},
        shapely.Point(113.3005, 33.7305),
        actor=SETUP,
    )
    store.close()
    return database


@pytest.fixture
def public_app(hostile_database):
    app = create_app(
        {"TESTING": True, "SECRET_KEY": "test", "GEOAPP_DATABASE": str(hostile_database), "GEOAPP_BASEMAP": "none"}
    )
    yield app
    app.extensions["geoapp"].close()


def _publish(app, out: Path) -> str:
    result = app.test_cli_runner().invoke(args=["geoapp", "publish", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture
def published(public_app, tmp_path) -> Path:
    out = tmp_path / "public"
    _publish(public_app, out)
    return out


class _Tags(HTMLParser):
    def __init__(self, text: str):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def test_each_layer_is_published_as_the_public_api_gives_it(published, public_app):
    client = public_app.test_client()
    registry = public_app.extensions["geoapp"].registry
    for layer in registry:
        answer = client.get(f"/api/layers/{layer.id}/features?limit=10000").get_json()
        features = answer["features"]
        while next_page := next((link["href"] for link in answer["links"] if link["rel"] == "next"), None):
            answer = client.get(next_page).get_json()  # the year's cases are more than a page
            features += answer["features"]
        static = json.loads((published / "data" / f"{layer.id}.geojson").read_bytes())
        assert static["features"] == features, layer.id
        assert static["numberMatched"] == answer["numberMatched"] == len(static["features"])
        public = {f.name for f in layer.visible_fields(False)}
        for feature in static["features"]:
            assert set(feature["properties"]) <= public, layer.id
    assert json.loads((published / "data" / "stats.json").read_bytes())["synthetic"] is True
    assert json.loads((published / "data" / "layers.json").read_bytes()) == client.get("/api/layers").get_json()


def test_no_internal_value_reaches_any_published_file(published, public_app):
    svc = public_app.extensions["geoapp"]
    secrets = {SECRET_PHONE}
    for layer in svc.registry:
        # a time is no secret by itself (and one case's may be another's public one): looked for by field name
        internal = [f.name for f in layer.fields if f.visibility == "internal" and f.type != "datetime"]
        page = svc.reader.select(layer.id, Query(), 0, 100_000, "internal")
        for feature in page.features:
            props = json.loads(feature)["properties"]
            secrets |= {str(props[n]) for n in internal if len(str(props.get(n) or "")) >= 8}
    assert len(secrets) > 20  # the demo's phone numbers, notes and contractors
    for path in published.rglob("*"):
        if path.is_file():
            text = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
            text = text.decode("utf-8", "replace")
            found = [s for s in secrets if s in text or json.dumps(s)[1:-1] in text]
            assert found == [], f"{path.relative_to(published)} holds internal values {found[:3]}"


def test_the_page_has_no_staff_controls_and_only_relative_links(published):
    for name, lang in (("index.html", "zh-CN"), ("index.en.html", "en")):
        text = (published / name).read_text(encoding="utf-8")
        tags = _Tags(text).tags
        assert ("html", {"lang": lang}) in tags
        links = [a.get("href") or a.get("src") for _, a in tags if a.get("href") or a.get("src")]
        assert links and all(not link.startswith("/") for link in links), links
        assert not any("login" in link for link in links)
        assert not any(a.get("name") == "csrf-token" for t, a in tags if t == "meta")
        assert not any("nonce" in a for _, a in tags)
        policy = next(a["content"] for t, a in tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy")
        assert "'sha256-" in policy and "unsafe-inline" not in policy.split("script-src", 1)[1].split(";")[0]
        assert {"index.html", "index.en.html"} <= set(links)  # the language switch
        for link in links:
            if not link.startswith(("http", "data:", "./")):
                assert (published / link).is_file(), link
    assert "演示数据" in (published / "index.html").read_text(encoding="utf-8")  # the demo data is synthetic
    assert "synthetic" in (published / "index.en.html").read_text(encoding="utf-8")


def test_every_text_file_has_a_gzip_copy_and_the_web_server_may_read_everything(published):
    files = [p for p in published.rglob("*") if p.is_file()]
    texts = [p for p in files if p.suffix in (".html", ".js", ".css", ".json", ".geojson", ".svg")]
    assert len(texts) > 30
    for path in texts:
        assert gzip.decompress(path.with_name(path.name + ".gz").read_bytes()) == path.read_bytes(), path
    for path in [published.resolve(), *published.rglob("*")]:
        mode = path.stat().st_mode & 0o777
        assert mode == (0o755 if path.is_dir() else 0o644), (path, oct(mode))
    assert not (published / "static" / "vendor" / "@geoman-io").exists()  # editors only


def test_publishing_again_swaps_the_whole_tree_at_once(public_app, published, tmp_path):
    first = published.resolve()
    assert published.is_symlink() and first.parent == tmp_path
    _publish(public_app, published)
    second = published.resolve()
    assert second != first and first.is_dir()  # the previous tree stays for pages still loading
    _publish(public_app, published)
    assert published.resolve() not in (first, second) and second.is_dir() and not first.exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".public")) == sorted(
        [second.name, published.resolve().name]
    )


def test_publish_refuses_a_folder_it_did_not_make(public_app, tmp_path):
    out = tmp_path / "site"
    out.mkdir()
    (out / "keep.txt").write_text("someone's file")
    result = public_app.test_cli_runner().invoke(args=["geoapp", "publish", "--out", str(out)])
    assert result.exit_code != 0
    assert "not a link made by geoapp publish" in result.output
    assert (out / "keep.txt").read_text() == "someone's file"


def _wait(condition, what: str, timeout: float = 90):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.2)


def test_watch_publishes_again_when_a_layer_changes(hostile_database, registry, tmp_path):
    out = tmp_path / "public"
    env = {**os.environ, "GEOAPP_DATABASE": str(hostile_database), "GEOAPP_BASEMAP": "none"}
    command = [str(PROJECT_ROOT / ".venv/bin/flask"), "--app", "wsgi", "geoapp", "publish", "--out", str(out)]
    log = (tmp_path / "watch.log").open("w")
    proc = subprocess.Popen([*command, "--watch", "1"], cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        points = out / "data" / "waterlogging_points.geojson"
        _wait(points.exists, "the first publication")
        first = out.resolve()
        store = open_store(registry, str(hostile_database))
        store.insert(
            "waterlogging_points",
            {"name": "新增积水点", "road": "测试路", "status": "ponding"},
            shapely.Point(113.301, 33.731),
            actor=SETUP,
        )
        store.close()
        _wait(lambda: "新增积水点" in points.read_text(encoding="utf-8"), "the edit to be published")
        assert out.resolve() != first
        assert proc.poll() is None  # still watching
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


# -- in a browser, from a plain file server -----------------------------------------------------------


@pytest.fixture
def file_server(published, tmp_path):
    """``python -m http.server`` on the published folder, on a free 127.0.0.1 port."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = (tmp_path / "http.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(published)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}/"

    def answers():
        try:
            return urllib.request.urlopen(base, timeout=2).status == 200
        except OSError:
            return False

    _wait(answers, "the file server")
    yield base
    stop_server(proc)
    log.close()


@pytest.mark.parametrize(
    "name, viewport, page_file, lang",
    [
        ("desktop-zh", {"width": 1400, "height": 900}, "", "zh-CN"),
        ("phone-zh", {"width": 390, "height": 844}, "", "zh-CN"),
        ("desktop-en", {"width": 1400, "height": 900}, "index.en.html", "en"),
    ],
)
def test_the_published_map_draws_every_layer_from_a_plain_file_server(
    browser, file_server, published, registry, tmp_path_factory, name, viewport, page_file, lang
):
    context = browser.new_context(locale="zh-CN", viewport=viewport)
    page = context.new_page()
    requests, errors, outside = [], [], []

    def route(r):
        if r.request.url.startswith(file_server):
            r.continue_()
        else:
            outside.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.on("request", lambda r: requests.append(r.url))
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(file_server + page_file)
        page.wait_for_function(READY)
        page.wait_for_load_state("networkidle")
        page.screenshot(path=str(tmp_path_factory.mktemp("screenshots") / f"published-{name}.png"))
        drawn = page.evaluate(
            "() => Object.fromEntries(Object.entries(window.geoapp.state.layers).map(([id, l]) => [id, l.count]))"
        )
        shown = {layer.id for layer in registry if layer.shown}
        for layer_id, count in drawn.items():
            features = json.loads((published / "data" / f"{layer_id}.geojson").read_bytes())["features"]
            # a layer that starts unticked (the year's cases) is fetched when it is ticked
            assert count == (len(features) if layer_id in shown else 0) and len(features) > 0, layer_id
        assert page.locator("html").get_attribute("lang") == lang
        assert page.locator(".geoapp-demo-badge").is_visible()
        assert page.locator(".geoapp-search").count() == 0  # search asks the app: not on a published map
        assert page.locator("a[href*=login]").count() == 0
        # a hostile name is shown as text in its popup, and nothing runs
        fid = next(
            f["id"]
            for f in json.loads((published / "data" / "waterlogging_points.geojson").read_bytes())["features"]
            if f["properties"]["name"] == HOSTILE_NAME
        )
        page.evaluate("(fid) => window.geoapp.state.layers.waterlogging_points.open(fid)", fid)
        popup = page.locator(".leaflet-popup-content")
        popup.wait_for()
        assert HOSTILE_NAME in popup.inner_text()
        assert popup.locator(".geoapp-archive-link").count() == 0  # archive pages are the app's
        assert page.evaluate("() => window.__pwned") is None
        assert errors == []
        assert outside == []
        assert all(url.startswith(file_server) for url in requests)
        assert not any("/api/" in url for url in requests)
    finally:
        context.close()
