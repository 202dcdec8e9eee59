"""The map pages as served: local assets only, CSP nonces, headers, basemaps, languages."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from geoapp.config import PROJECT_ROOT
from geoapp.errors import ConfigError
from geoapp.web import create_app
from tests.conftest import SETUP


class Resources(HTMLParser):
    """Collects what a page loads: scripts (with their nonces), stylesheets, images."""

    def __init__(self):
        super().__init__()
        self.loads: list[str] = []
        self.scripts: list[dict] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script":
            self.scripts.append(attrs)
            if attrs.get("src"):
                self.loads.append(attrs["src"])
        elif tag == "link" and attrs.get("href"):
            self.loads.append(attrs["href"])
        elif tag in ("img", "iframe", "source") and attrs.get("src"):
            self.loads.append(attrs["src"])


def _resources(html: str) -> Resources:
    parser = Resources()
    parser.feed(html)
    return parser


def _app(database, **settings):
    return create_app({"TESTING": True, "GEOAPP_DATABASE": str(database), **settings})


@pytest.mark.parametrize(
    ("basemap", "allowed"),
    [
        ("none", ()),
        ("osm", ("https://tile.openstreetmap.org/",)),
        ("amap", ("https://webrd0{s}.is.autonavi.com/",)),
        ("xyz:https://tiles.intranet.example/{z}/{x}/{y}.png", ("https://tiles.intranet.example/",)),
    ],
)
def test_pages_load_nothing_but_local_assets_and_the_basemap_tiles(database, basemap, allowed):
    client = _app(database, GEOAPP_BASEMAP=basemap).test_client()
    for path in ("/", "/features/manhole_covers/1", "/?lang=en"):
        html = client.get(path).get_data(as_text=True)
        loads = _resources(html).loads
        assert loads and all(url.startswith("/") and not url.startswith("//") for url in loads), loads
        external = set(re.findall(r"https?://[^\s\"'<>)\\]+", html))
        own = "http://localhost/"  # the app's own origin (the archive page's permanent link)
        assert {url for url in external if not url.startswith((*allowed, own))} == set()


STATIC_JS = PROJECT_ROOT / "geoapp/web/static/js"
# what part 6 of issue 7 removed: an icon font for two icons, a drawing plugin that cannot edit multi-part shapes,
# and an unused measuring plugin (it also needs 'unsafe-eval')
GONE = ("fontawesome", "font-awesome", "webfonts", "leaflet-draw", "leaflet.draw", "leaflet-measure")


def _css_refs(css: str) -> list[str]:
    """The files a stylesheet needs: its url(...) references, data: URIs left out (they may hold url() too)."""
    css = re.sub(r"url\(\s*(['\"])data:.*?\1\s*\)|url\(\s*data:[^)]*\)", "", css, flags=re.S)
    return re.findall(r"url\(\s*['\"]?([^'\")]+?)['\"]?\s*\)", css)


def _module_imports(js: str) -> list[str]:
    """What an ES module imports: ``import ... from "x"``, ``import "x"`` and ``import("x")``."""
    # "from" followed by a space (not `["from", "to"]`); a specifier is on one line
    return re.findall(r"""(?:\bfrom\s+|\bimport\s*\(\s*|\bimport\s+)["']([^"'\n]+)["']""", js)


def _served(client, url: str) -> list[str]:
    """Fetch an asset (it must be there); return what it needs in turn."""
    response = client.get(url)
    assert response.status_code == 200, url
    if url.endswith(".css"):
        return [urlsplit(urljoin(url, ref)).path for ref in _css_refs(response.get_data(as_text=True))]
    if url.startswith("/static/js/"):
        assert response.mimetype == "text/javascript", url  # a module script needs a JavaScript type
        return [urlsplit(urljoin(url, ref)).path for ref in _module_imports(response.get_data(as_text=True))]
    return []


def _every_asset(client, path: str) -> set[str]:
    """Every local file a page loads: its scripts and styles, what their CSS needs, what its modules import."""
    seen: set[str] = set()
    queue = list(_resources(client.get(path).get_data(as_text=True)).loads)
    while queue:
        url = queue.pop()
        if url not in seen:
            seen.add(url)
            queue.extend(_served(client, url))
    return seen


def test_every_local_asset_and_what_it_needs_is_served(client, users):
    from tests.conftest import login

    public = _every_asset(client, "/") | _every_asset(client, "/features/waterlogging_points/1")
    public |= _every_asset(client, "/public")
    login(client, "planner")
    editor = _every_asset(client, "/") | _every_asset(client, "/progress")
    login(client, "commander")  # the flood board's modules, and uPlot under a monitored feature's archive page
    editor |= _every_asset(client, "/flood") | _every_asset(client, "/features/waterlogging_points/1")
    public |= _every_asset(client, "/report")  # the public's report form; /cases is a viewer's too
    editor |= _every_asset(client, "/cases")
    for seen in (public, editor):
        assert not [url for url in seen if any(name in url.lower() for name in GONE)]
        assert not [url for url in seen if url.endswith((".woff", ".woff2", ".ttf", ".eot", ".otf"))]  # no icon font
        # the icons are the app's own SVGs, drawn by its stylesheet
        assert {"/static/icons/locate.svg", "/static/icons/ruler.svg"} <= seen
    assert not [url for url in public if "@geoman-io" in url]  # the drawing tools are for editors only
    assert "/static/vendor/@geoman-io/leaflet-geoman-free/dist/leaflet-geoman.min.js" in editor
    # every module in static/js is reached from a page's entry, and nothing else is there
    modules = {f"/static/js/{p.relative_to(STATIC_JS).as_posix()}" for p in STATIC_JS.rglob("*.js")}
    assert {url for url in public | editor if url.startswith("/static/js/")} == modules
    assert client.get("/static/vendor/leaflet/../../package.json").status_code == 404
    assert client.get("/static/vendor/left-pad/index.js").status_code == 404


def test_every_script_carries_this_requests_csp_nonce(client):
    first, second = client.get("/"), client.get("/features/waterlogging_points/1")
    for response in (first, second):
        csp = response.headers["Content-Security-Policy"]
        nonce = re.search(r"'nonce-([^']+)'", csp).group(1)
        scripts = _resources(response.get_data(as_text=True)).scripts
        assert scripts and all(s.get("nonce") == nonce for s in scripts)
        script_src = re.search(r"script-src ([^;]+)", csp).group(1)
        assert "unsafe-inline" not in script_src and "unsafe-eval" not in script_src
        assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY"
    assert re.search(r"nonce-([^']+)", first.headers["Content-Security-Policy"]).group(1) != re.search(
        r"nonce-([^']+)", second.headers["Content-Security-Policy"]
    ).group(1)
    assert client.get("/api/layers").headers["X-Content-Type-Options"] == "nosniff"


def test_hostile_context_values_cannot_close_the_script(database, registry):
    from geoapp.store import open_store

    store = open_store(registry, str(database))
    import shapely

    store.insert(
        "roads",
        {"name": "</script><script>alert(1)</script>", "kind": "branch"},
        shapely.LineString([(113.30, 33.73), (113.301, 33.73)]),
        actor=SETUP,
    )
    store.close()
    html = _app(database, GEOAPP_BASEMAP="none").test_client().get("/").get_data(as_text=True)
    assert "</script><script>alert(1)" not in html
    assert "\\u003c/script\\u003e\\u003cscript\\u003ealert(1)" in html


def _map_config(html: str) -> dict:
    """The configuration the map page hands to geoapp's script, as the browser receives it."""
    return json.JSONDecoder().raw_decode(html, html.index("config: ") + len("config: "))[0]


def _layer_control(html: str) -> dict[str, list[str]]:
    """The layer control the browser builds: group -> layer titles, both in the order shown."""
    start = html.index("L.control.groupedLayers(") + len("L.control.groupedLayers(")
    arguments = re.sub(r":\s*([A-Za-z_$][\w$]*)\s*([,}])", r': "\1"\2', html[start:])  # map objects -> names
    arguments = re.sub(r",(\s*})", r"\1", arguments)  # JavaScript's trailing commas
    overlays = json.JSONDecoder().raw_decode(arguments, arguments.index("{"))[0]
    return {group: list(layers) for group, layers in overlays.items()}


def test_the_map_offers_every_layer_in_its_group_with_its_legend(client, registry):
    html = client.get("/").get_data(as_text=True)
    control = _layer_control(html)
    assert list(control) == ["防汛", "围挡与道路", "供暖", "部件", "数字城管", "底图"]
    assert control["防汛"] == ["防汛应急资源", "雨量站", "积水点", "下穿式涵洞", "地下空间"]
    operational = {layer.title.zh for layer in registry if not layer.context}
    assert {title for titles in control.values() for title in titles} == operational
    english = _layer_control(client.get("/?lang=en").get_data(as_text=True))
    assert english["Flood control"][0] == "Emergency resources"
    config = _map_config(html)
    layers = {layer["id"]: layer for layer in config["layers"]}
    assert layers["construction_hoardings"]["legend"] == {
        "待整治": "#c62828",
        "整治中": "#f9a825",
        "已整治": "#2e7d32",
        "未停工": "#6d4c41",
    }
    assert layers["manhole_covers"]["style"]["cluster"] is True  # 900 covers arrive clustered
    assert "contractor" not in layers["construction_hoardings"]["popup"]  # the public never sees internal fields
    assert {c["id"] for c in config["context"]} == {"district_boundary", "roads"}
    assert all(c["geojson"]["features"] for c in config["context"])  # the backdrop draws without a request


def test_staff_popups_show_internal_fields(app, client, users):
    from tests.conftest import login

    login(client, "planner")
    layers = {layer["id"]: layer for layer in _map_config(client.get("/").get_data(as_text=True))["layers"]}
    assert "contractor" in layers["construction_hoardings"]["popup"]


def test_with_basemap_none_the_page_asks_for_no_tiles(database):
    html = _app(database, GEOAPP_BASEMAP="none").test_client().get("/").get_data(as_text=True)
    assert "L.tileLayer" not in html and "tile.openstreetmap.org" not in html
    assert "L.tileLayer" in _app(database, GEOAPP_BASEMAP="osm").test_client().get("/").get_data(as_text=True)


def test_page_size_stays_flat_when_a_layer_grows(tmp_path, registry, demo_data):
    import geopandas as gpd
    import numpy as np

    from geoapp.store import create_store

    sizes = {}
    for n in (1_000, 30_000):
        rng = np.random.default_rng(n)
        covers = gpd.GeoDataFrame(
            {"code": [f"4199010101{i:06d}" for i in range(n)], "kind": "storm", "status": "fixed"},
            geometry=gpd.points_from_xy(rng.uniform(113.28, 113.32, n), rng.uniform(33.71, 33.75, n)),
            crs="EPSG:4326",
        )
        data = {**demo_data, "manhole_covers": covers}
        path = tmp_path / f"{n}.gpkg"
        create_store(registry, str(path), data).close()
        sizes[n] = len(_app(path, GEOAPP_BASEMAP="none").test_client().get("/").data)
    assert sizes[30_000] < 300_000
    assert abs(sizes[30_000] - sizes[1_000]) < 2_000


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"GEOAPP_BASEMAP": "bing"}, "none, osm, tianditu, amap, xyz:<url template>"),
        ({"GEOAPP_BASEMAP": "xyz:ftp://x"}, "URL template"),
        ({"GEOAPP_BASEMAP": "tianditu"}, "GEOAPP_TIANDITU_KEY"),
    ],
)
def test_bad_basemap_settings_stop_the_app(database, settings, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        _app(database, **settings)


def test_language_from_parameter_cookie_and_browser(client):
    assert "<title>一张图 · 城管一张图</title>" in client.get("/").get_data(as_text=True)
    english = client.get("/", headers={"Accept-Language": "en-US,en;q=0.9"}).get_data(as_text=True)
    assert "<title>One Map · City Management One Map</title>" in english and 'lang="en"' in english
    chosen = client.get("/?lang=en", headers={"Accept-Language": "zh-CN"})
    assert "lang=en" in chosen.headers["Set-Cookie"]
    assert "One Map" in client.get("/", headers={"Accept-Language": "zh-CN"}).get_data(as_text=True)
    bad = client.get("/?lang=fr")
    assert bad.status_code == 400 and "zh, en" in bad.get_data(as_text=True)


def test_feature_page_shows_labels_and_refuses_unknown_features(client):
    page = client.get("/features/construction_hoardings/1?lang=zh").get_data(as_text=True)
    assert "责任单位" in page and "永久链接" in page
    assert "contractor" not in page and "施工单位" not in page  # internal field, public page
    english = client.get("/features/construction_hoardings/1?lang=en").get_data(as_text=True)
    assert "Responsible agency" in english and "责任单位" not in english
    missing = client.get("/features/construction_hoardings/99999")
    assert missing.status_code == 404 and missing.mimetype == "text/html"
    assert client.get("/features/lakes/1").status_code == 404


def test_the_chinese_catalogue_translates_every_message():
    with open(PROJECT_ROOT / "geoapp/web/translations/zh/LC_MESSAGES/messages.po", "rb") as f:
        catalogue = read_po(f)
    method_map = [("geoapp/**.py", "python"), ("templates/**.html", "jinja2")]
    found = {
        message
        for _, _, message, _, _ in extract_from_dir(PROJECT_ROOT, method_map, keywords={"_": None, "gettext": None})
        if isinstance(message, str)
    }
    missing = sorted(m for m in found if not (catalogue.get(m) and catalogue.get(m).string))
    assert found and missing == []


def test_no_asset_is_committed_as_a_copy():
    """Third-party code comes from npm (package.json, served from node_modules); static/ holds only geoapp's own."""
    static = PROJECT_ROOT / "geoapp/web/static"
    assets = [p for p in static.rglob("*") if p.suffix in (".js", ".mjs", ".css")]
    assert {p.relative_to(static).parts[0] for p in assets} == {"onemap.css", "js"}
    assert {p.relative_to(STATIC_JS).parts[0] for p in STATIC_JS.rglob("*.js")} == {"lib", "map", "edit", "pages"}
    for path in assets:
        text = path.read_text(encoding="utf-8")
        assert max(map(len, text.splitlines())) <= 300, f"{path.name} looks minified"
        assert not re.search(r"@license|@preserve|Copyright|\(c\) \d{4}", text), f"{path.name} looks copied"
        if path.suffix == ".js":  # modules import each other, or an npm package through /static/vendor
            for ref in _module_imports(text):
                assert ref.startswith(("./", "../")), f"{path.name} imports {ref}"
                target = (path.parent / ref).resolve().relative_to(static)
                assert target.parts[0] in ("js", "vendor"), f"{path.name} imports {ref}"
    assert not (Path(PROJECT_ROOT) / "geoapp/web/static/vendor").exists()


def test_the_public_page_is_built_once_and_follows_every_change(app, client):
    from tests.conftest import SETUP

    first = client.get("/").get_data(as_text=True)
    again = client.get("/").get_data(as_text=True)
    nonces = re.compile(r'nonce="[^"]+"')
    assert nonces.sub("", first) != first and nonces.sub("", first) == nonces.sub("", again)
    assert "新修测试路" not in first
    store = app.extensions["geoapp"].store
    store.insert("roads", {"name": "新修测试路", "kind": "branch"}, shapely_line(), actor=SETUP)
    assert "新修测试路" in client.get("/").get_data(as_text=True)  # a cached page never outlives a change


def shapely_line():
    import shapely

    return shapely.LineString([(113.30, 33.73), (113.302, 33.731)])
