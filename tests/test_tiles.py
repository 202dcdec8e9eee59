"""The Tianditu tile proxy against real upstream servers on 127.0.0.1: the key stays on the server, each tile is
fetched once, and a slow, redirecting, oversized or non-image upstream costs a few seconds and is never relayed."""

from __future__ import annotations

import contextlib
import os
import stat
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from geoapp.web import create_app
from geoapp.web.tiles import MAX_TILE_BYTES

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(document.domain)</script></svg>'
KEY = "tk-secret-0123456789"
#: the proxy's deadline in these tests; an upstream trickling one byte a second would take a minute or more
DEADLINE = 1.0


class Upstream:
    """An HTTP server on 127.0.0.1 whose answer each test chooses: ``answer(handler)`` writes the response."""

    def __init__(self, answer):
        upstream = self
        self.answer = answer
        self.seen: list[str] = []
        self.stop = threading.Event()  # ends trickling answers when the test is over
        self.release = threading.Event()  # for answers that wait until the test lets them go
        self.asked = threading.Event()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                upstream.seen.append(self.path)
                upstream.asked.set()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the proxy hung up
                    upstream.answer(self)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.stop.set()
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def trickle(self, handler, data: bytes, every: float = 1.0):
        """Send ``data`` one byte at a time, ``every`` seconds apart, until done or the test ends."""
        for i in range(len(data)):
            if self.stop.is_set():
                return
            handler.wfile.write(data[i : i + 1])
            handler.wfile.flush()
            self.stop.wait(every)


def image(handler, body: bytes = PNG, content_type: str = "image/png", status: int = 200, **headers):
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(body)))
    for name, value in headers.items():
        handler.send_header(name.replace("_", "-"), value)
    handler.end_headers()
    handler.wfile.write(body)


@pytest.fixture
def upstreams():
    made: list[Upstream] = []

    def make(answer=image) -> Upstream:
        made.append(Upstream(answer))
        return made[-1]

    yield make
    for upstream in made:
        upstream.close()


@pytest.fixture
def tiles_app(database, tmp_path):
    """An app on Tianditu whose upstream each test sets with ``point_at(upstream)``."""
    apps = []

    def make(upstream: Upstream, **settings):
        app = create_app(
            {
                "TESTING": True,
                "GEOAPP_DATABASE": str(database),
                "GEOAPP_BASEMAP": "tianditu",
                "GEOAPP_TIANDITU_KEY": KEY,
                "GEOAPP_TIANDITU_URL": upstream.url + "/{layer}_w/wmts?server={s}",
                "GEOAPP_TILE_TIMEOUT": str(DEADLINE),
                "GEOAPP_TILE_CACHE": str(tmp_path / "tiles"),
                **settings,
            }
        )
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.extensions["geoapp"].close()


def _json(client, url):
    return client.get(url, headers={"Accept": "application/json"})


def test_tiles_come_through_the_app_and_the_key_stays_on_the_server(tiles_app, upstreams):
    upstream = upstreams()
    client = tiles_app(upstream).test_client()
    page = client.get("/").get_data(as_text=True)
    assert KEY not in page
    assert "/tiles/tianditu/vec/{z}/{x}/{y}" in page and "/tiles/tianditu/cva/{z}/{x}/{y}" in page
    tile = client.get("/tiles/tianditu/vec/3/6/2")
    assert tile.status_code == 200 and tile.mimetype == "image/png" and tile.data == PNG
    assert tile.cache_control.public and tile.cache_control.max_age == 86400
    asked = urlsplit(upstream.seen[-1])
    query = parse_qs(asked.query)
    assert asked.path == "/vec_w/wmts" and query["server"] == ["0"]
    assert query["tk"] == [KEY] and query["TILEMATRIX"] == ["3"] and query["TILECOL"] == ["6"]
    assert query["TILEROW"] == ["2"] and query["TILEMATRIXSET"] == ["w"] and query["LAYER"] == ["vec"]
    assert client.get("/tiles/tianditu/xyz/3/6/2").status_code == 400
    assert client.get("/tiles/tianditu/vec/3/9/2").status_code == 400


def test_the_proxy_is_off_for_other_basemaps(client):
    assert client.get("/tiles/tianditu/vec/3/6/2").status_code == 404


def test_each_tile_is_fetched_once_and_kept_in_private_files(tiles_app, upstreams, tmp_path):
    upstream = upstreams()
    client = tiles_app(upstream).test_client()
    for _ in range(3):
        tile = client.get("/tiles/tianditu/img/5/20/11")
        assert tile.status_code == 200 and tile.data == PNG and tile.cache_control.public
    assert len(upstream.seen) == 1  # the key was spent once
    (kept,) = (tmp_path / "tiles").rglob("*.tile")
    assert kept.read_bytes() == PNG and stat.S_IMODE(kept.stat().st_mode) == 0o600
    # another worker (another app on the same folder) serves it without asking the upstream
    upstream.close()
    again = tiles_app(upstream).test_client().get("/tiles/tianditu/img/5/20/11")
    assert again.status_code == 200 and again.data == PNG and len(upstream.seen) == 1


def test_the_cache_stays_within_its_size(tiles_app, upstreams, tmp_path):
    big = PNG + b"\0" * (40 * 1024)  # still a PNG to the sniffer: 40 KB a tile
    upstream = upstreams(lambda h: image(h, big))
    client = tiles_app(upstream, GEOAPP_TILE_CACHE_MB="0.1").test_client()  # about 100 KB: two tiles
    for x in range(8):
        assert client.get(f"/tiles/tianditu/vec/4/{x}/3").status_code == 200
    kept = list((tmp_path / "tiles").rglob("*.tile"))
    assert 0 < sum(p.stat().st_size for p in kept) <= 0.1 * 1024 * 1024
    assert (tmp_path / "tiles/vec/4/7/3.tile").exists()  # the newest stays, the oldest went


@pytest.mark.parametrize("where", ["body", "headers"])
def test_a_trickling_upstream_gets_a_total_deadline(tiles_app, upstreams, where):
    def trickle(handler):
        head = b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: %d\r\n\r\n" % len(PNG)
        if where == "body":
            handler.wfile.write(head)
            upstream.trickle(handler, PNG)  # 67 bytes, one a second
        else:
            upstream.trickle(handler, head + PNG)

    upstream = upstreams(trickle)
    client = tiles_app(upstream).test_client()
    failed = _json(client, "/tiles/tianditu/vec/3/6/2")
    # without a total deadline the trickle (a byte a second) completes and the tile answers 200
    assert failed.status_code == 502 and failed.json["error"]["code"] == "tile_unavailable"
    assert KEY not in failed.get_data(as_text=True)


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(lambda h: image(h, SVG, "image/svg+xml"), id="svg"),
        pytest.param(lambda h: image(h, SVG, "image/png"), id="svg-labelled-png"),
        pytest.param(lambda h: image(h, b"<html>quota exceeded</html>", "text/html"), id="html"),
        pytest.param(lambda h: image(h, b"no", "text/plain", 500), id="server-error"),
        pytest.param(lambda h: image(h, b"", "image/png", 204), id="no-content"),
    ],
)
def test_only_images_are_relayed(tiles_app, upstreams, answer):
    client = tiles_app(upstreams(answer)).test_client()
    failed = client.get("/tiles/tianditu/vec/3/6/2")
    assert failed.status_code == 502 and failed.mimetype == "text/html"
    assert b"<svg" not in failed.data and b"<script>alert" not in failed.data
    assert _json(client, "/tiles/tianditu/vec/3/6/2").json["error"]["code"] == "tile_unavailable"


def test_redirects_are_not_followed(tiles_app, upstreams):
    target = upstreams()
    redirecting = upstreams(lambda h: image(h, b"", "text/plain", 302, Location=target.url + "/vec_w/wmts"))
    failed = _json(tiles_app(redirecting).test_client(), "/tiles/tianditu/vec/3/6/2")
    assert failed.status_code == 502
    assert redirecting.seen and target.seen == []


def _huge_unannounced(handler):
    """A body with no Content-Length: it ends when the connection does."""
    handler.send_response(200)
    handler.send_header("Content-Type", "image/png")
    handler.send_header("Connection", "close")
    handler.end_headers()
    handler.wfile.write(PNG)
    chunk = b"\0" * 65536
    for _ in range(8 * MAX_TILE_BYTES // len(chunk)):
        handler.wfile.write(chunk)


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(lambda h: image(h, PNG + b"\0" * (5 * MAX_TILE_BYTES)), id="announced"),
        pytest.param(_huge_unannounced, id="unannounced"),
    ],
)
def test_a_huge_upstream_answer_is_cut_off(tiles_app, upstreams, answer):
    failed = _json(tiles_app(upstreams(answer)).test_client(), "/tiles/tianditu/vec/3/6/2")
    assert failed.status_code == 502


def test_when_every_slot_is_busy_the_proxy_answers_503_at_once(tiles_app, upstreams):
    def held(handler):
        upstream.release.wait(30)
        image(handler)

    upstream = upstreams(held)
    app = tiles_app(upstream, GEOAPP_TILE_CONCURRENCY="1", GEOAPP_TILE_TIMEOUT="30")
    first: dict = {}
    thread = threading.Thread(target=lambda: first.update(r=app.test_client().get("/tiles/tianditu/vec/3/6/2")))
    thread.start()
    try:
        assert upstream.asked.wait(10)  # the one slot is taken, waiting on the upstream
        busy = _json(app.test_client(), "/tiles/tianditu/vec/3/5/2")
        # answered while the held request still waits (it is released only below): not queued behind it
        assert "r" not in first
        assert busy.status_code == 503 and busy.json["error"]["code"] == "tiles_busy"
        assert int(busy.headers["Retry-After"]) > 0
        assert len(upstream.seen) == 1
    finally:
        upstream.release.set()
        thread.join(30)
    assert first["r"].status_code == 200
    # the slot is free again
    assert app.test_client().get("/tiles/tianditu/vec/3/5/2").status_code == 200


def test_a_stale_tile_is_served_when_the_upstream_fails(tiles_app, upstreams, tmp_path):
    upstream = upstreams()
    client = tiles_app(upstream).test_client()
    assert client.get("/tiles/tianditu/cia/2/1/1").status_code == 200
    (kept,) = (tmp_path / "tiles").rglob("*.tile")
    old = time.time() - 60 * 24 * 3600
    os.utime(kept, (old, old))  # older than the cache keeps a tile fresh
    upstream.answer = lambda h: image(h, b"down", "text/plain", 503)
    stale = client.get("/tiles/tianditu/cia/2/1/1")
    assert stale.status_code == 200 and stale.data == PNG and stale.cache_control.max_age == 300
    assert len(upstream.seen) == 2  # it did ask again


@pytest.mark.parametrize(
    ("settings", "parameter"),
    [
        ({"GEOAPP_TILE_TIMEOUT": "soon"}, "GEOAPP_TILE_TIMEOUT"),
        ({"GEOAPP_TILE_CONCURRENCY": "0"}, "GEOAPP_TILE_CONCURRENCY"),
        ({"GEOAPP_TILE_CACHE_MB": "-1"}, "GEOAPP_TILE_CACHE_MB"),
    ],
)
def test_bad_tile_settings_stop_the_app(tiles_app, upstreams, settings, parameter):
    from geoapp.errors import ConfigError

    with pytest.raises(ConfigError, match=parameter):
        tiles_app(upstreams(), **settings)
