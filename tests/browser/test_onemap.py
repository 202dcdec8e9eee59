"""The one map in headless Chromium: offline, every layer drawn, popups, language, escaping, refetch on move."""

from __future__ import annotations

import contextlib
import json
import urllib.request
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from playwright.sync_api import Error

from tests.browser.chromium import READY
from tests.browser.conftest import HOSTILE_CONTEXT, HOSTILE_NAME, HOSTILE_POINT, HOSTILE_ROAD


def _api(base: str, path: str):
    with urllib.request.urlopen(f"{base}{path}", timeout=10) as response:
        return json.load(response)


def _open(watched, url: str):
    page = watched.page
    page.goto(url)
    page.wait_for_function(READY)
    page.wait_for_load_state("networkidle")
    return page


def _drawn(page) -> dict[str, int]:
    return page.evaluate(
        "() => Object.fromEntries(Object.entries(window.geoapp.state.layers)"
        ".map(([id, l]) => [id, l.target.getLayers().length]))"
    )


def _click_feature(page, lon: float, lat: float) -> None:
    """Click where a lon/lat is drawn on the map."""
    x, y = page.evaluate(
        "([lon, lat]) => { const m = window.geoapp.state.map; const p = m.latLngToContainerPoint([lat, lon]);"
        " const r = m.getContainer().getBoundingClientRect(); return [r.left + p.x, r.top + p.y]; }",
        [lon, lat],
    )
    page.mouse.click(x, y)


def test_the_one_map_loads_offline_in_chinese_with_every_layer(live_server, zh, shots, registry):
    page = _open(zh, f"{live_server}/")
    zh.screenshot(shots, "onemap-zh")
    assert zh.outside == [], "requests left 127.0.0.1"
    assert zh.console_errors == []
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    assert page.title() == "一张图 · 城管一张图"
    control = page.locator(".leaflet-control-layers").inner_text()
    for group in ("防汛", "围挡与道路", "供暖", "部件", "底图"):
        assert group in control
    assert "图例" in page.locator(".geoapp-legend").inner_text()
    assert "演示数据" in page.locator(".geoapp-demo-badge").inner_text()

    # every operational layer draws all its features in the demo view (the whole district)
    listed = {layer["id"]: layer["count"] for layer in _api(live_server, "/api/layers")["layers"]}
    drawn = _drawn(page)
    # a layer that starts unticked (the year's cases) is fetched when it is ticked, not before
    expected = {layer.id: listed[layer.id] if layer.shown else 0 for layer in registry if not layer.context}
    assert any(not layer.shown for layer in registry)
    assert drawn == expected
    assert drawn["waterlogging_points"] == 7 and drawn["construction_hoardings"] == 43
    # the vector backdrop (boundary, roads, railway) is drawn with no tiles at all
    assert page.evaluate("() => document.querySelectorAll('.leaflet-tile').length") == 0
    assert page.locator(".leaflet-control-scale").count() == 1


def test_popup_shows_hostile_names_as_text_and_runs_nothing(live_server, zh, shots):
    page = _open(zh, f"{live_server}/?focus={HOSTILE_POINT[0]},{HOSTILE_POINT[1]}")
    _click_feature(page, *HOSTILE_POINT)
    popup = page.locator(".leaflet-popup-content")
    popup.wait_for()
    zh.screenshot(shots, "popup-hostile")
    assert popup.locator("h3").inner_text() == HOSTILE_NAME
    assert HOSTILE_ROAD in popup.inner_text()
    assert "危险积水" in popup.inner_text()  # the status label, not its code
    assert popup.locator("img").count() == 0
    assert "备注" not in popup.inner_text()  # internal fields stay out of the public popup
    assert popup.locator("a.geoapp-archive-link").get_attribute("href").startswith("/features/waterlogging_points/")
    # the tooltip, the embedded road name and the popup all ran nothing
    page.mouse.move(10, 10)
    assert page.evaluate("() => window.__pwned") is None
    assert zh.dialogs == [] and zh.console_errors == []
    roads = page.evaluate(
        "() => { const names = [];"
        " window.geoapp.state.map.eachLayer(l => l.feature && names.push(l.feature.properties.name)); return names; }"
    )
    assert HOSTILE_CONTEXT in roads


def test_archive_page_escapes_values_and_links_back(live_server, zh, shots, hostile_gpkg):
    _, fid = hostile_gpkg
    page = zh.page
    page.goto(f"{live_server}/features/waterlogging_points/{fid}")
    page.wait_for_function("() => window.geoapp && window.geoapp.state && window.geoapp.state.shape")
    zh.screenshot(shots, "archive-hostile")
    assert page.locator("h1").inner_text() == HOSTILE_NAME
    assert HOSTILE_ROAD in page.locator(".geoapp-archive-fields").inner_text()
    assert page.locator(".geoapp-archive-fields img").count() == 0
    assert page.evaluate("() => window.__pwned") is None
    assert zh.dialogs == [] and zh.console_errors == [] and zh.outside == []
    permalink = page.locator(".geoapp-permalink a").get_attribute("href")
    assert permalink == f"{live_server}/features/waterlogging_points/{fid}"
    page.locator(".geoapp-crumbs a").click()
    page.wait_for_function(READY)
    centre = page.evaluate("() => window.geoapp.state.map.getCenter()")
    assert centre["lng"] == pytest.approx(HOSTILE_POINT[0], abs=1e-4)
    assert centre["lat"] == pytest.approx(HOSTILE_POINT[1], abs=1e-4)


def test_language_switch_changes_the_ui_and_is_remembered(live_server, zh, shots):
    page = _open(zh, f"{live_server}/")
    page.get_by_role("link", name="English").click()
    page.wait_for_function(READY)
    zh.screenshot(shots, "onemap-en")
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.title() == "One Map · City Management One Map"
    control = page.locator(".leaflet-control-layers").inner_text()
    assert "Flood control" in control and "Waterlogging points" in control and "防汛" not in control
    assert page.locator(".geoapp-legend h4").inner_text() == "Legend"
    assert page.locator(".geoapp-search input").get_attribute("placeholder") == "Find by name or code"
    # remembered: the next visit without ?lang is still in English
    page.goto(f"{live_server}/")
    page.wait_for_function(READY)
    assert page.locator(".geoapp-legend h4").inner_text() == "Legend"
    page.get_by_role("link", name="中文").click()
    page.wait_for_function(READY)
    assert page.locator(".geoapp-legend h4").inner_text() == "图例"
    assert zh.console_errors == [] and zh.outside == []


def test_english_from_the_browser_language(browser, live_server, shots):
    from tests.browser.conftest import watch

    context = browser.new_context(locale="en-GB")
    watched = watch(context)
    page = _open(watched, f"{live_server}/")
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.locator(".geoapp-demo-badge").inner_text() == "Demo data: synthetic, not real"
    context.close()


def test_moving_the_view_fetches_new_data(live_server, zh, shots):
    page = _open(zh, f"{live_server}/")
    before = len([u for u in zh.requests if "/features?" in u])
    assert (
        page.evaluate("() => window.geoapp.state.layers.manhole_covers.requests") == 1
    )  # one fetch per layer to start
    page.evaluate("() => { window.geoapp.state.map.setView([33.7305, 113.3005], 18); }")
    page.wait_for_function(
        "() => window.geoapp.state.layers.manhole_covers.requests == 2"
        " && Object.values(window.geoapp.state.layers).every(l => !l.loading)"
    )
    page.wait_for_load_state("networkidle")
    zh.screenshot(shots, "zoomed-in")
    fetched = [u for u in zh.requests if "/api/layers/manhole_covers/features?" in u]
    assert len([u for u in zh.requests if "/features?" in u]) > before
    bbox = parse_qs(urlsplit(fetched[-1]).query)["bbox"][0]
    expected = _api(live_server, f"/api/layers/manhole_covers/features?bbox={bbox}&limit=10000")["numberReturned"]
    drawn = _drawn(page)["manhole_covers"]
    assert drawn == expected < 950
    minx, miny, maxx, maxy = map(float, bbox.split(","))
    assert minx < HOSTILE_POINT[0] < maxx and miny < HOSTILE_POINT[1] < maxy
    assert maxx - minx < 0.02


def test_search_finds_a_feature_by_name_and_opens_it(live_server, zh, shots):
    page = _open(zh, f"{live_server}/")
    page.locator(".geoapp-search input").fill("湛南路")
    first = page.locator(".geoapp-search-results li").first
    first.wait_for()
    title = first.locator(".geoapp-search-title").inner_text()
    assert "湛南路" in title
    first.click()
    popup = page.locator(".leaflet-popup-content h3")
    popup.wait_for(timeout=10_000)
    zh.screenshot(shots, "search")
    assert popup.inner_text() == title
    assert zh.console_errors == [] and zh.outside == []


def test_measure_tool_reports_metres(live_server, zh):
    page = _open(zh, f"{live_server}/")
    page.locator(".geoapp-measure-button").click()
    a, b = (113.29, 33.725), (113.30, 33.725)
    _click_feature(page, *a)
    _click_feature(page, *b)
    text = page.locator(".geoapp-measure-readout").inner_text()
    metres = float(text.split(":")[1].split("m")[0].replace("k", "").strip())
    metres = metres * 1000 if " km" in text else metres
    from pyproj import Geod

    geodesic = Geod(ellps="WGS84").inv(*a, *b)[2]
    assert metres == pytest.approx(geodesic, rel=0.005)


def test_a_slower_older_search_never_shows_beside_the_newer_one(live_server, zh, shots):
    """Type one road, then another while the first answer is still on its way: only the second is listed."""
    page = _open(zh, f"{live_server}/")
    older, newer = "湛南路", "矿工路"
    held, outcomes = [], []

    def hold_the_older(route):
        if parse_qs(urlsplit(route.request.url).query).get("q") == [older]:
            held.append(route)  # answered only when the test says so: slower than the newer query
        else:
            route.fallback()

    page.route("**/api/search?*", hold_the_older)
    for event in ("requestfinished", "requestfailed"):
        page.on(event, lambda r, e=event: f"q={quote(older)}" in r.url and outcomes.append(e))
    box = page.locator(".geoapp-search input")
    box.fill(older)
    while not held:
        page.wait_for_timeout(50)
    box.fill(newer)
    results = page.locator(".geoapp-search-results li .geoapp-search-title")
    results.first.wait_for()
    assert newer in results.first.inner_text()
    # now the older answer may come: it was abandoned when the newer query went out
    with contextlib.suppress(Error):  # the page may have given that request up already
        held[0].continue_()
    while not outcomes:
        page.wait_for_timeout(50)
    page.wait_for_load_state("networkidle")
    page.evaluate("() => new Promise(requestAnimationFrame)")  # anything the older answer would do is done
    zh.screenshot(shots, "search-race")
    titles = results.all_inner_texts()
    expected = [hit["title"] for hit in _api(live_server, f"/api/search?q={quote(newer)}&limit=20")["results"]]
    assert titles == expected and all(newer in title for title in titles)
    assert zh.console_errors == [] and zh.outside == []


def test_no_icon_font_nor_old_plugins_and_the_icons_show(live_server, zh, shots):
    """The locate and measure buttons draw the app's own SVG icons; nothing asks for Font Awesome or the old plugins."""
    page = _open(zh, f"{live_server}/")
    page.goto(f"{live_server}/features/waterlogging_points/1")
    page.wait_for_function("() => window.geoapp && window.geoapp.state && window.geoapp.state.shape")
    _open(zh, f"{live_server}/")
    gone = ("fontawesome", "webfonts", "leaflet-draw", "leaflet.draw", "leaflet-measure", ".woff", ".ttf")
    assert [url for url in zh.requests if any(name in url.lower() for name in gone)] == []
    for selector, svg in ((".leaflet-control-locate a", "locate.svg"), (".geoapp-measure-button", "ruler.svg")):
        button = page.locator(selector)
        icon = button.locator(".geoapp-icon")
        assert svg in icon.evaluate("i => getComputedStyle(i).maskImage")
        box, frame = icon.bounding_box(), button.bounding_box()
        assert box["width"] >= 14 and box["height"] >= 14  # drawn, not an empty box or a missing glyph
        assert frame["x"] <= box["x"] and box["x"] + box["width"] <= frame["x"] + frame["width"]  # inside its button
        assert any(url.endswith(f"/static/icons/{svg}") for url in zh.requests)
    assert zh.console_errors == [] and zh.outside == []


def _overlapping(boxes: dict[str, dict]) -> list[tuple[str, str]]:
    def meet(a, b):
        return (
            a["x"] < b["x"] + b["width"]
            and b["x"] < a["x"] + a["width"]
            and a["y"] < b["y"] + b["height"]
            and (b["y"] < a["y"] + a["height"])
        )

    names = sorted(boxes)
    return [(a, b) for i, a in enumerate(names) for b in names[i + 1 :] if meet(boxes[a], boxes[b])]


def test_on_a_phone_the_layers_and_the_legend_fold_and_no_control_covers_another(browser, live_server, shots):
    from tests.browser.conftest import watch

    phone_size = {"width": 390, "height": 844}
    context = browser.new_context(locale="zh-CN", viewport=phone_size, is_mobile=True, has_touch=True)
    phone = watch(context)
    page = _open(phone, f"{live_server}/")
    phone.screenshot(shots, "phone-folded")
    layers, legend = page.locator(".leaflet-control-layers"), page.locator(".geoapp-legend")
    # folded: a button each, the checkboxes and swatches out of the way
    assert layers.locator("input[type=checkbox]").first.is_hidden()
    assert legend.locator(".geoapp-legend-row").first.is_hidden()
    controls = page.locator(".leaflet-control:visible")
    boxes = {f"{i}:{c.get_attribute('class')}": c.bounding_box() for i, c in enumerate(controls.all())}
    assert _overlapping(boxes) == []
    top = page.locator(".geoapp-topbar").bounding_box()
    assert top["height"] <= 56  # the top bar stays one line high
    layers.locator(".geoapp-fold-toggle").tap()
    assert layers.locator("input[type=checkbox]").first.is_visible()
    assert "防汛" in layers.inner_text()
    phone.screenshot(shots, "phone-layers-open")
    legend.locator(".geoapp-fold-toggle").tap()
    assert legend.locator(".geoapp-legend-row").first.is_visible()
    legend.locator(".geoapp-fold-toggle").tap()
    # a feature under the control column: its popup opens clear of every control (the map pans for it)
    page.evaluate(
        "([lon, lat]) => { const m = window.geoapp.state.map; m.setView([lat, lon], 18, {animate: false});"
        " m.panBy(m.getSize().divideBy(2).subtract([70, 220]), {animate: false}); }",
        list(HOSTILE_POINT),
    )
    page.wait_for_function(READY)
    page.wait_for_load_state("networkidle")
    _click_feature(page, *HOSTILE_POINT)
    popup = page.locator(".leaflet-popup-content-wrapper")
    popup.first.wait_for()
    # the pan that made room fetches the view again, which redraws the popup: wait until it is settled
    settled, previous = None, None
    for _ in range(50):
        page.wait_for_function(READY)
        page.wait_for_load_state("networkidle")
        if popup.count() == 1 and (settled := popup.bounding_box()) == previous:
            break
        previous = settled
        page.wait_for_timeout(200)
    phone.screenshot(shots, "phone-popup")
    boxes = {f"{i}:{c.get_attribute('class')}": c.bounding_box() for i, c in enumerate(controls.all())}
    assert [pair for pair in _overlapping({**boxes, "popup": settled}) if "popup" in pair] == []
    assert phone.console_errors == [] and phone.outside == []
    context.close()


def test_the_download_section_gives_the_layer_or_the_view_as_a_gis_file(live_server, zh, shots, registry, tmp_path):
    import pyogrio

    layer = registry["construction_hoardings"]
    page = _open(zh, f"{live_server}/")
    section = page.locator("details.geoapp-download")
    section.locator("summary").click()
    section.locator("select[name=layer]").select_option(layer.id)
    section.locator("select[name=format]").select_option("gpkg")
    section.locator("select[name=crs]").select_option("EPSG:4547")
    zh.screenshot(shots, "onemap-download")
    assert section.locator("a.geoapp-download-link").is_visible()

    def download(name: str):
        with page.expect_download() as info:
            section.locator("a.geoapp-download-link").click()
        path = tmp_path / name
        info.value.save_as(path)
        assert info.value.suggested_filename.startswith(layer.title("zh"))
        return pyogrio.read_dataframe(path)

    # the whole layer, in Gauss-Kruger metres, with the public fields only and the Chinese text intact
    everything = _api(live_server, f"/api/layers/{layer.id}/features?limit=1000")
    frame = download("all.gpkg")
    assert len(frame) == everything["numberMatched"] == len(everything["features"])
    assert frame.crs.to_epsg() == 4547
    assert set(frame.columns) - {"geometry"} <= {"fid", *(f.name for f in layer.visible_fields(False))}
    title = layer.title_field
    names = sorted(str(f["properties"][title]) for f in everything["features"])
    assert sorted(frame[title].astype(str)) == names and any("\u4e00" <= c <= "\u9fff" for c in "".join(names))
    assert 3_000_000 < frame.geometry.centroid.y.min() < 4_500_000  # northings in metres, not degrees

    # KML is WGS84 by its specification: choosing it sets the coordinates and locks them
    section.locator("select[name=format]").select_option("kml")
    assert section.locator("select[name=crs]").input_value() == "EPSG:4326"
    assert section.locator("select[name=crs]").is_disabled()

    # only what the map shows: a smaller view, the link follows it, the file holds what the API matches there
    section.locator("select[name=format]").select_option("geojson")
    page.evaluate("() => { const map = window.geoapp.state.map; map.setZoom(map.getZoom() + 2, {animate: false}); }")
    section.locator("input[name=in_view]").check()
    href = section.locator("a.geoapp-download-link").get_attribute("href")
    bbox = parse_qs(urlsplit(href).query)["bbox"][0]
    inside = _api(live_server, f"/api/layers/{layer.id}/features?limit=1000&bbox={bbox}")
    assert 0 < inside["numberMatched"] < everything["numberMatched"]
    frame = download("view.geojson")
    assert sorted(frame[title].astype(str)) == sorted(str(f["properties"][title]) for f in inside["features"])
    assert zh.console_errors == []


def test_the_download_section_lists_the_layers_as_the_layer_list_does(live_server, zh):
    page = _open(zh, f"{live_server}/")
    control = page.locator(".leaflet-control-layers")
    listed = [t.strip() for t in control.locator(".leaflet-control-layers-overlays label span").all_text_contents()]
    options = page.locator("details.geoapp-download select[name=layer] option").all_text_contents()
    in_list = [title for title in listed if title in options]
    assert options[: len(in_list)] == in_list and len(in_list) >= 8
    assert page.locator("details.geoapp-download select[name=layer]").input_value() != "grid_cells"
