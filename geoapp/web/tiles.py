"""The Tianditu tile proxy: the key stays on the server, each tile is asked of the upstream once and then served
from a cache on disk, and a slow or hostile upstream costs a request thread a few seconds at most.

The upstream is fetched with ``http.client`` under a watchdog that shuts the socket at the deadline: the
timeouts of ``requests``, urllib3 and httpx bound each socket read, not the whole response, so a server
trickling bytes (even in its headers) would hold the thread for as long as it likes.
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import os
import socket
import ssl
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode, urlsplit

from flask import Blueprint, Flask, Response, current_app
from flask_babel import gettext as _

from geoapp import config
from geoapp.errors import InvalidParameter, NotFound, TilesBusy, TileUnavailable

bp = Blueprint("tiles", __name__)

TIANDITU_LAYERS = ("vec", "cva", "img", "cia")
#: a Tianditu tile is 5-100 KB; anything near this is not a tile
MAX_TILE_BYTES = 1024 * 1024
#: how long a browser or proxy may keep a tile, and how long the cache serves one before asking again
TILE_MAX_AGE = 24 * 3600
CACHE_FRESH = 30 * 24 * 3600
USER_AGENT = "geoapp tile proxy"


def sniff(data: bytes) -> str | None:
    """The image type the bytes are (PNG, JPEG or WebP), or None: only these are ever served."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


IMAGE_TYPES = ("image/png", "image/jpeg", "image/webp")


class UpstreamError(Exception):
    """The upstream did not give a tile: the reason goes to the log, never to the visitor."""


class _Watchdog:
    """Shut a connection's socket once ``seconds`` have passed, waking whatever read is blocked on it."""

    def __init__(self, conn: http.client.HTTPConnection, seconds: float):
        self._conn = conn
        self._lock = threading.Lock()
        self._done = False
        self.fired = False
        self._timer = threading.Timer(seconds, self._cut)
        self._timer.daemon = True
        self._timer.start()

    def _cut(self) -> None:
        with self._lock:
            if self._done:
                return
            self.fired = True  # before reading conn.sock: a socket made after this is checked by the caller
            sock = self._conn.sock
            if sock is not None:
                # the plain socket's shutdown, also for TLS: it wakes a blocked read with end-of-file
                with contextlib.suppress(OSError):
                    socket.socket.shutdown(sock, socket.SHUT_RDWR)

    def stop(self) -> None:
        with self._lock:
            self._done = True
        self._timer.cancel()


def fetch(url: str, *, deadline: float, max_bytes: int = MAX_TILE_BYTES) -> tuple[bytes, str]:
    """GET an image within ``deadline`` seconds in all; return its bytes and type.

    No redirect is followed; the answer must be 200 with an allowed image type whose bytes are that type,
    and at most ``max_bytes`` long. Anything else raises :class:`UpstreamError`.
    """
    parts = urlsplit(url)
    if parts.scheme == "https":
        conn = http.client.HTTPSConnection(parts.hostname, parts.port, timeout=deadline, context=_tls())
    elif parts.scheme == "http":
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=deadline)
    else:
        raise UpstreamError(f"not an http(s) URL: {parts.scheme}")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    watchdog = _Watchdog(conn, deadline)
    try:
        conn.connect()
        if watchdog.fired:
            raise UpstreamError(f"no tile within {deadline:g} s")
        conn.request("GET", path, headers={"User-Agent": USER_AGENT, "Accept": ", ".join(IMAGE_TYPES)})
        response = conn.getresponse()
        if response.status != 200:  # a redirect too: its target is not asked
            raise UpstreamError(f"upstream answered {response.status}")
        declared = (response.getheader("Content-Type") or "").split(";")[0].strip().lower()
        if declared not in IMAGE_TYPES:
            raise UpstreamError(f"upstream sent {declared or 'no content type'}, not an allowed image type")
        length = response.getheader("Content-Length")
        # ASCII digits only: str.isdigit() is also true of "²", which int() refuses
        if length is not None and length.isascii() and length.isdigit() and int(length) > max_bytes:
            raise UpstreamError(f"upstream announced {length} bytes, more than {max_bytes}")
        body = response.read(max_bytes + 1)
        if watchdog.fired:
            raise UpstreamError(f"no tile within {deadline:g} s")
        if len(body) > max_bytes:
            raise UpstreamError(f"upstream sent more than {max_bytes} bytes")
        if response.length:  # the connection ended before the announced length
            raise UpstreamError("upstream sent a truncated tile")
        if sniff(body) != declared:
            raise UpstreamError(f"upstream sent bytes that are not {declared}")
        return body, declared
    except (OSError, http.client.HTTPException) as exc:
        reason = f"no tile within {deadline:g} s" if watchdog.fired else f"{type(exc).__name__}: {exc}"
        raise UpstreamError(reason) from None
    finally:
        watchdog.stop()
        conn.close()


@functools.cache
def _tls() -> ssl.SSLContext:
    """One TLS context (the system's CA certificates, host names checked) for every fetch."""
    return ssl.create_default_context()


@dataclass(frozen=True)
class Cached:
    data: bytes
    mimetype: str
    fresh: bool


class TileCache:
    """Tiles on disk under one folder, one file per tile (mode 0600), the oldest removed past ``max_bytes``.

    Several worker processes share the folder: a tile is written beside its place and moved in, and the size
    is counted again from the folder before anything is removed.
    """

    def __init__(self, root: Path, max_bytes: int, fresh_s: float = CACHE_FRESH):
        self.root = Path(root)
        self.max_bytes = max_bytes
        self.fresh_s = fresh_s
        self._lock = threading.Lock()
        self._size: int | None = None  # this process's estimate, counted from the folder when first needed

    def path(self, layer: str, z: int, x: int, y: int) -> Path:
        return self.root / layer / str(z) / str(x) / f"{y}.tile"

    def get(self, layer: str, z: int, x: int, y: int) -> Cached | None:
        path = self.path(layer, z, x, y)
        try:
            data = path.read_bytes()
            age = time.time() - path.stat().st_mtime
        except OSError:
            return None
        mimetype = sniff(data)
        return Cached(data, mimetype, age < self.fresh_s) if mimetype else None

    def put(self, layer: str, z: int, x: int, y: int, data: bytes) -> None:
        if self.max_bytes <= 0:
            return
        path = self.path(layer, z, x, y)
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".part")  # mkstemp makes it 0600
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except OSError:
            Path(tmp).unlink(missing_ok=True)
            raise
        with self._lock:
            if self._size is None:
                self._size = self._count()
            else:
                self._size += len(data)
            if self._size > self.max_bytes:
                self._size = self._evict(int(self.max_bytes * 0.8))

    def _files(self) -> list[tuple[float, int, Path]]:
        found = []
        for path in self.root.rglob("*.tile"):
            try:
                info = path.stat()
            except OSError:  # removed by another worker meanwhile
                continue
            found.append((info.st_mtime, info.st_size, path))
        return found

    def _count(self) -> int:
        return sum(size for _mtime, size, _path in self._files())

    def _evict(self, target: int) -> int:
        """Remove the oldest tiles until at most ``target`` bytes are left; return what is left."""
        files = sorted(self._files())
        total = sum(size for _mtime, size, _path in files)
        for _mtime, size, path in files:
            if total <= target:
                break
            path.unlink(missing_ok=True)
            total -= size
        return total


class TileProxy:
    """What the tile view needs: the upstream, the deadline, the concurrency limit and the cache."""

    def __init__(self, url: str, key: str, *, deadline: float, concurrency: int, cache: TileCache):
        self.url = url
        self.key = key
        self.deadline = deadline
        self.cache = cache
        self._slots = threading.BoundedSemaphore(concurrency)

    def upstream_url(self, layer: str, z: int, x: int, y: int) -> str:
        params = {
            "SERVICE": "WMTS",
            "REQUEST": "GetTile",
            "VERSION": "1.0.0",
            "LAYER": layer,
            "STYLE": "default",
            "TILEMATRIXSET": "w",
            "FORMAT": "tiles",
            "TILEMATRIX": z,
            "TILEROW": y,
            "TILECOL": x,
            "tk": self.key,
        }
        base = self.url.format(s=(x + y) % 8, layer=layer)
        return f"{base}{'&' if '?' in base else '?'}{urlencode(params)}"

    def tile(self, layer: str, z: int, x: int, y: int) -> Cached:
        """The tile from the cache, or fetched once and kept; a stale copy when the upstream fails."""
        cached = self.cache.get(layer, z, x, y)
        if cached is not None and cached.fresh:
            return cached
        if not self._slots.acquire(blocking=False):
            if cached is not None:
                return cached
            raise TilesBusy(_("The tile server is busy; try again in a moment"), parameter="tile")
        try:
            data, mimetype = fetch(self.upstream_url(layer, z, x, y), deadline=self.deadline)
        except UpstreamError as exc:
            current_app.logger.warning("tianditu tile %s/%s/%s/%s: %s", layer, z, x, y, exc)
            if cached is not None:
                return cached
            raise TileUnavailable(_("The tile server did not answer"), parameter="tile") from None
        finally:
            self._slots.release()
        try:
            self.cache.put(layer, z, x, y, data)
        except OSError as exc:  # a full disk costs the cache, not the tile
            current_app.logger.warning("tile cache: %s", exc)
        return Cached(data, mimetype, True)


def init_app(app: Flask) -> None:
    """Set up the proxy when the basemap is Tianditu, and register its route (404 otherwise)."""
    values = app.config
    if app.extensions["geoapp.basemap"].kind == "tianditu":
        cache_mb = config.number(values, "GEOAPP_TILE_CACHE_MB")
        app.extensions["geoapp.tiles"] = TileProxy(
            values["GEOAPP_TIANDITU_URL"],
            values["GEOAPP_TIANDITU_KEY"],
            deadline=config.number(values, "GEOAPP_TILE_TIMEOUT", minimum=0.1),
            concurrency=config.number(values, "GEOAPP_TILE_CONCURRENCY", minimum=1, integer=True),
            cache=TileCache(Path(values["GEOAPP_TILE_CACHE"]), int(cache_mb * 1024 * 1024)),
        )
    app.register_blueprint(bp)


@bp.get("/tiles/tianditu/<layer>/<int:z>/<int:x>/<int:y>")
def tianditu(layer: str, z: int, x: int, y: int):
    """Tianditu tiles fetched by the server, so that the key stays out of every page."""
    proxy: TileProxy | None = current_app.extensions.get("geoapp.tiles")
    if proxy is None:
        raise NotFound(_("The Tianditu basemap is not configured"), parameter="layer")
    if layer not in TIANDITU_LAYERS:
        raise InvalidParameter(f"layer must be one of {', '.join(TIANDITU_LAYERS)}", parameter="layer")
    if not (0 <= z <= 18 and 0 <= x < 2**z and 0 <= y < 2**z):
        raise InvalidParameter("z must be 0 to 18 and x, y inside the zoom level's tile matrix", parameter="z")
    tile = proxy.tile(layer, z, x, y)
    response = Response(tile.data, mimetype=tile.mimetype)
    response.cache_control.public = True
    response.cache_control.max_age = TILE_MAX_AGE if tile.fresh else 300
    return response
