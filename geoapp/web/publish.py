"""``geoapp publish``: the public one map as static files, for nginx to serve when the public arrives all at once.

The page is the app's own: each language's ``/`` is asked of the app in-process, anonymously, as the
public sees it, with :data:`~geoapp.web.pages.PUBLISHED` in the WSGI environ so that each layer is
read from a static file instead of the API (no search box, no archive links, no sign-in: those need
the app). The layers' GeoJSON is what the public API answers, every page of it merged into one file.
What the tree holds::

    index.html, index.en.html      the map, in Chinese and in English
    data/<layer>.geojson           every public feature of each layer (public fields only)
    data/layers.json, stats.json   the public /api/layers and /api/stats
    static/...                     the app's scripts, styles and icons; static/vendor/<package>/ Leaflet & co.

Every text file has a gzip copy beside it (``index.html.gz``) for nginx's ``gzip_static``. Absolute links
are made relative, so the tree works under any path (``/public/``) and from ``python -m http.server``.
The inline scripts are allowed by a Content-Security-Policy ``<meta>`` with their SHA-256 hashes
instead of the app's per-request nonce (a fixed nonce would allow any script that names it).

Publishing is atomic: the tree is built in a new folder beside ``out`` and ``out`` is a symbolic link,
replaced in one ``rename`` by a link to the new folder; the previous build is kept until the next one
(a visitor who loaded its page still gets its files), older ones are removed.
"""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import hashlib
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import orjson
from flask import Flask
from markupsafe import escape

from geoapp.core.query import MAX_LIMIT
from geoapp.web import maps, pages

#: file types written with a gzip copy beside them (images are compressed already)
COMPRESSED = (".html", ".js", ".css", ".json", ".geojson", ".svg", ".map")
PAGES = {"zh": "index.html", "en": "index.en.html"}
#: npm packages the public page never loads (Leaflet-Geoman: the editors' drawing tools)
EDITORS_ONLY = ("@geoman-io/leaflet-geoman-free",)
DATA = "data"
#: build folders are named ``.<out>.build-<stamp>`` beside ``out``; this many newest are kept
KEEP_BUILDS = 2
#: times a layer is read again when it changed between two pages of the API's answer
ATTEMPTS = 5
FILE_MODE, DIR_MODE = 0o644, 0o755  # the web server's user reads the tree (the app's umask is 077)
_INLINE_SCRIPT = re.compile(r"<script(?P<attrs>[^>]*)>(?P<body>.*?)</script>", re.S)
_ABSOLUTE = re.compile(r'(?P<attr>\s(?:src|href))="/(?P<path>[^"/][^"]*)?"')


class PublishError(Exception):
    """The public map could not be published; the message says why (the previous tree is still served)."""


@dataclass(frozen=True)
class Result:
    out: Path
    build: Path
    versions: dict[str, int]
    files: int


def publish(app: Flask, out: Path) -> Result:
    """Write the public map into a new build folder and point ``out`` at it."""
    out = Path(out).absolute()
    _check_target(out)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    build = out.parent / f".{out.name}.build-{stamp}"
    build.mkdir(mode=DIR_MODE, parents=False)
    try:
        versions = _write_tree(app, build)
        files = _finish(build)
    except BaseException:
        shutil.rmtree(build, ignore_errors=True)
        raise
    _swap(out, build)
    _prune(out)
    return Result(out, build, versions, files)


def watch(app: Flask, out: Path, seconds: float, report: Callable[[str], None] = print) -> None:
    """Publish, then every ``seconds`` publish again if a layer's version has changed (runs until stopped)."""
    reader = app.extensions["geoapp"].reader
    published = None
    while True:
        versions = reader.versions()
        if versions != published:
            result = publish(app, out)
            published = result.versions
            report(f"published {result.files} files to {out} -> {result.build.name}")
        time.sleep(seconds)


def _check_target(out: Path) -> None:
    if not out.parent.is_dir():
        raise PublishError(f"{out.parent} is not a folder")
    if out.is_symlink() or not out.exists():
        return
    if out.is_dir() and not any(out.iterdir()):
        out.rmdir()  # an empty folder made for us: the link takes its place
        return
    raise PublishError(f"{out} exists and is not a link made by geoapp publish; remove it or choose another --out")


def _write_tree(app: Flask, build: Path) -> dict[str, int]:
    """Everything the public page needs, as the app answers an anonymous visitor."""
    svc = app.extensions["geoapp"]
    versions = svc.reader.versions()  # read first: a change made meanwhile is published by the next round
    data = {layer.id: f"{DATA}/{layer.id}.geojson" for layer in svc.registry if not layer.context}
    client = _Client(app, {pages.PUBLISHED: pages.Published(data, PAGES), **_host(app)})
    (build / DATA).mkdir(mode=DIR_MODE)
    for layer in svc.registry:
        (build / DATA / f"{layer.id}.geojson").write_bytes(orjson.dumps(_whole_layer(client, layer.id)))
    for name, url in (("layers.json", "/api/layers"), ("stats.json", "/api/stats")):
        (build / DATA / name).write_bytes(client.get(url).data)
    for lang, name in PAGES.items():
        (build / name).write_text(_page(client, lang), encoding="utf-8")
    _copy_assets(app, build)
    for name in PAGES.values():
        _check_links(build, build / name)
    return versions


def _host(app: Flask) -> dict[str, str]:
    """A Host the app trusts (GEOAPP_TRUSTED_HOSTS may leave out localhost), unless GEOAPP_BASE_URL names it."""
    if app.config.get("SERVER_NAME"):
        return {}
    trusted = app.config.get("TRUSTED_HOSTS") or ["localhost"]
    return {"HTTP_HOST": trusted[0].lstrip(".")}


class _Client:
    """Anonymous GETs of the app in-process, each in an app context of its own.

    The command line runs inside an app context, and a request pushed inside one shares its ``g``
    (language, CSP nonce, user) with every other request made there.
    """

    def __init__(self, app: Flask, environ: dict):
        self.app = app
        self.client = app.test_client(use_cookies=False)
        self.environ = environ

    def get(self, url: str):
        with self.app.app_context():
            response = self.client.get(url, environ_base=self.environ)
        if response.status_code != 200:
            raise PublishError(f"{url} answered {response.status_code}: {response.get_data(as_text=True)[:300]}")
        return response


def _whole_layer(client: _Client, layer_id: str) -> dict:
    """Every page of the public API's answer for a layer, as one collection (no links: there is nowhere to go)."""
    for _ in range(ATTEMPTS):
        features, versions = [], set()
        url = f"/api/layers/{layer_id}/features?limit={MAX_LIMIT}"
        while url:
            payload = orjson.loads(client.get(url).data)
            features.extend(payload["features"])
            versions.add(payload["layerVersion"])
            url = next((link["href"] for link in payload["links"] if link["rel"] == "next"), None)
        if len(versions) == 1:  # else the layer changed between two pages: read it again, as one version
            return {
                "type": "FeatureCollection",
                "features": features,
                "numberMatched": len(features),
                "numberReturned": len(features),
                "layer": layer_id,
                "layerVersion": versions.pop(),
            }
    raise PublishError(f"{layer_id} changed while it was read, {ATTEMPTS} times; try again")


def _page(client: _Client, lang: str) -> str:
    """The one map in ``lang``: links made relative, the nonce replaced by the inline scripts' hashes."""
    response = client.get(f"/?lang={lang}")
    html = response.get_data(as_text=True)
    policy = response.headers["Content-Security-Policy"]
    found = re.search(r"'nonce-([^']+)'", policy)
    if found:
        html = html.replace(f' nonce="{found.group(1)}"', "")
    html = _ABSOLUTE.sub(lambda m: f'{m.group("attr")}="{m.group("path") or "./"}"', html)
    hashes = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(m.group('body').encode()).digest()).decode()}'"
        for m in _INLINE_SCRIPT.finditer(html)
        if "src=" not in m.group("attrs") and m.group("body").strip()
    )
    policy = re.sub(r"'nonce-[^']+'", hashes, policy)
    # a <meta> policy may not carry these (the browser says so in the console); nginx sends frame-ancestors
    policy = "; ".join(p for p in policy.split("; ") if not p.startswith(("frame-ancestors", "report-")))
    meta = f'<meta http-equiv="Content-Security-Policy" content="{escape(policy)}">'
    return html.replace('<meta charset="utf-8">', f'<meta charset="utf-8">\n  {meta}', 1)


def _copy_assets(app: Flask, build: Path) -> None:
    """The app's static folder, and each npm package it serves (its ``dist`` folder, or all of a package without)."""
    static = build / "static"
    shutil.copytree(app.static_folder, static)
    for package in (p for p in maps.VENDOR_PACKAGES if p not in EDITORS_ONLY):
        source = pages.NODE_MODULES / package
        part = "dist" if (source / "dist").is_dir() else ""
        shutil.copytree(source / part, static / "vendor" / package / part, dirs_exist_ok=True)


def _check_links(build: Path, page: Path) -> None:
    """Every file the page names is in the tree, and nothing is asked of the app's origin."""
    html = page.read_text(encoding="utf-8")
    if _ABSOLUTE.search(html):
        raise PublishError(f"{page.name} still has an absolute link: {_ABSOLUTE.search(html).group(0)}")
    for ref in re.findall(r'\s(?:src|href)="([^"]+)"', html):
        if ref.startswith(("http:", "https:", "data:", "#", "./")) or ref in PAGES.values():
            continue
        if not (build / ref.split("?")[0]).is_file():
            raise PublishError(f"{page.name} names {ref}, which is not in the published tree")


def _finish(build: Path) -> int:
    """A gzip copy beside each text file; permissions the web server can read. Returns the number of files."""
    count = 0
    for path in sorted(build.rglob("*")):
        if path.is_dir():
            path.chmod(DIR_MODE)
            continue
        path.chmod(FILE_MODE)
        count += 1
        if path.suffix in COMPRESSED:
            packed = path.with_name(path.name + ".gz")
            packed.write_bytes(gzip.compress(path.read_bytes(), compresslevel=9, mtime=0))
            packed.chmod(FILE_MODE)
            count += 1
    build.chmod(DIR_MODE)
    return count


def _swap(out: Path, build: Path) -> None:
    """Point ``out`` at ``build`` in one rename: nginx serves the old tree or the new one, never a mix."""
    link = out.parent / f".{out.name}.link-{os.getpid()}"
    link.unlink(missing_ok=True)
    link.symlink_to(build.name)
    os.replace(link, out)


def _prune(out: Path) -> None:
    """Remove builds older than the last :data:`KEEP_BUILDS`, never the one ``out`` points at."""
    current = out.resolve()
    builds = sorted(p for p in out.parent.glob(f".{out.name}.build-*") if p.is_dir() and not p.is_symlink())
    for old in builds[:-KEEP_BUILDS]:
        if old.resolve() != current:
            shutil.rmtree(old, ignore_errors=True)
