"""Basemaps in the browser: Amap tiles are GCJ-02, so overlays are shifted onto them and clicks shifted back."""

from __future__ import annotations

import json
import urllib.request

import pytest
from pyproj import Geod

from tests.browser.chromium import READY
from tests.browser.conftest import serve, watch
from tests.conftest import stop_server

GEOD = Geod(ellps="WGS84")


@pytest.fixture(scope="module")
def amap_server(demo_gpkg, tmp_path_factory):
    proc, base = serve(demo_gpkg, tmp_path_factory.mktemp("amap") / "gunicorn.log", GEOAPP_BASEMAP="amap")
    yield base
    stop_server(proc)


def test_amap_overlays_are_shifted_to_gcj02_and_views_shifted_back(browser, amap_server, shots):
    with urllib.request.urlopen(f"{amap_server}/api/layers/underpass_culverts/features/1") as response:
        lon, lat = json.load(response)["geometry"]["coordinates"]
    context = browser.new_context(locale="zh-CN", viewport={"width": 1200, "height": 800})
    watched = watch(context, allow_outside=("https://webrd0",))
    page = watched.page
    page.goto(f"{amap_server}/?focus={lon},{lat}")
    page.wait_for_function(READY)
    page.screenshot(path=str(shots / "amap-gcj02.png"))
    assert watched.console_errors == []
    # the only requests leaving 127.0.0.1 are the configured basemap's tiles
    assert watched.outside and all(url.startswith("https://webrd0") for url in watched.outside)

    drawn = page.evaluate("() => window.geoapp.state.layers.underpass_culverts.find(1).getLatLng()")
    shift = GEOD.inv(lon, lat, drawn["lng"], drawn["lat"])[2]
    assert 100 < shift < 1000  # GCJ-02 moves WGS84 points by a few hundred metres here

    # the view is centred on the GCJ-02 position of the focus, and converts back to WGS84 within a metre
    back = page.evaluate(
        "() => { const s = window.geoapp.state; const c = s.map.getCenter(); return s.shift.toData(c.lng, c.lat); }"
    )
    assert GEOD.inv(lon, lat, *back)[2] < 1
    centre = page.evaluate("() => window.geoapp.state.map.getCenter()")
    assert GEOD.inv(drawn["lng"], drawn["lat"], centre["lng"], centre["lat"])[2] < 1

    # the API is asked for WGS84: the requested bbox holds the feature's stored coordinates
    requested = [u for u in watched.requests if "/api/layers/underpass_culverts/features?" in u][-1]
    bbox = [float(v) for v in requested.split("bbox=")[1].split("&")[0].split(",")]
    assert bbox[0] < lon < bbox[2] and bbox[1] < lat < bbox[3]
    context.close()


def test_osm_basemap_loads_only_its_tiles_from_outside(browser, demo_gpkg, tmp_path_factory):
    proc, base = serve(demo_gpkg, tmp_path_factory.mktemp("osm") / "gunicorn.log", GEOAPP_BASEMAP="osm")
    try:
        context = browser.new_context(locale="zh-CN")
        watched = watch(context, allow_outside=("https://tile.openstreetmap.org/",))
        watched.page.goto(f"{base}/")
        watched.page.wait_for_function(READY)
        assert watched.outside and all(u.startswith("https://tile.openstreetmap.org/") for u in watched.outside)
        assert watched.page.evaluate("() => document.querySelectorAll('.leaflet-tile').length") > 0
        assert watched.console_errors == []
        context.close()
    finally:
        stop_server(proc)


def test_tianditu_tiles_reach_the_page_through_the_proxy_and_the_key_does_not(browser, demo_gpkg, tmp_path_factory):
    from tests.test_tiles import Upstream, image

    key = "tk-browser-0123456789"
    upstream = Upstream(image)
    folder = tmp_path_factory.mktemp("tianditu")
    proc, base = serve(
        demo_gpkg,
        folder / "gunicorn.log",
        GEOAPP_BASEMAP="tianditu",
        GEOAPP_TIANDITU_KEY=key,
        GEOAPP_TIANDITU_URL=upstream.url + "/{layer}_w/wmts",
        GEOAPP_TILE_CACHE=str(folder / "tiles"),
    )
    busy = "the server responded with a status of 503"
    try:
        context = browser.new_context(locale="zh-CN", viewport={"width": 1200, "height": 800})
        # a first view on an empty cache: the proxy fetches two tiles at a time and answers 503 past that
        first = watch(context)
        first.page.goto(f"{base}/")
        first.page.wait_for_function(READY)
        first.page.wait_for_function("() => document.querySelectorAll('.leaflet-tile-loaded').length > 0")
        assert first.outside == [] and [e for e in first.console_errors if busy not in e] == []
        tiles = [u for u in first.requests if "/tiles/tianditu/" in u]
        assert any("/vec/" in u for u in tiles) and any("/cva/" in u for u in tiles)
        assert not any(key in u for u in first.requests) and key not in first.page.content()
        assert upstream.seen and all(f"tk={key}" in path for path in upstream.seen)  # the server added it
        first.page.close()
        # the tiles answered 503 are fetched one at a time, as a reload would ask for them again (a reload of the
        # whole map fetched only two more each, and took three or more reloads: 8 s)
        for url in dict.fromkeys(tiles):
            with urllib.request.urlopen(url) as response:
                assert response.status == 200 and response.headers["Content-Type"] == "image/png"
        # the tiles fetched are kept: the same view again loads every tile, none from the upstream twice
        seen = len(upstream.seen)
        for _ in range(10):  # each view keeps what it fetched; tiles answered 503 are asked again
            again = watch(context)
            again.page.goto(f"{base}/")
            again.page.wait_for_function(READY)
            if again.console_errors == []:
                break
            again.page.close()
        assert again.console_errors == [] and again.outside == []
        again.page.wait_for_function(
            "() => [...document.querySelectorAll('img.leaflet-tile')].every(t => t.complete && t.naturalWidth > 0)"
        )
        assert len(set(upstream.seen)) == len(upstream.seen) >= seen
        context.close()
    finally:
        stop_server(proc)
        upstream.close()
