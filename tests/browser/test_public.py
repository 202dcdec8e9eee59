"""The public progress map (/public) and the one map (/) in headless Chromium at a phone's viewport (390x844, touch)
and on a desk (1400x900): the map keeps at least 60 % of the screen, nothing overlaps (top bar, counters, the map's
controls, an opened popup), the title stays in the top bar, the legend lists only the layers shown, and the public
page loads no editing code and asks nothing but the public API, even for a signed-in planner."""

from __future__ import annotations

import pytest

from geoapp.store import open_store
from tests.browser.chromium import READY
from tests.browser.conftest import HOSTILE_NAME, HOSTILE_POINT, sign_in, watch
from tests.conftest import PASSWORD, SETUP

# every layer shown has been fetched and drawn for the view as it is now (not for the view before a pan: a move
# refetches after a short pause, and Playwright's "networkidle" does not wait for requests made after the load)
VIEW_READY = (
    "() => window.geoapp && window.geoapp.state && Object.values(window.geoapp.state.layers)"
    ".every(l => !l.visible() || (l.requests > 0 && !l.loading && l.bbox === l.bboxParam()))"
)
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
DESK = {"viewport": {"width": 1400, "height": 900}}

# every box the test compares, as {name: {x, y, width, height}}; controls are the map's visible Leaflet controls
BOXES = """() => {
  const box = (node) => {
    const r = node.getBoundingClientRect();
    return {x: r.left, y: r.top, width: r.width, height: r.height};
  };
  const shown = (node) => { const r = node.getBoundingClientRect(); return r.width > 0 && r.height > 0; };
  const one = (selector) => {
    const node = document.querySelector(selector);
    return node && shown(node) ? box(node) : null;
  };
  const controls = {};
  document.querySelectorAll('.leaflet-control-container .leaflet-control').forEach((node, i) => {
    const kind = node.className.split(' ').filter((c) => /^(geoapp|leaflet-control-)/.test(c)).join('.');
    if (shown(node)) controls[`${i}:${kind}`] = box(node);
  });
  const popup = document.querySelector('.leaflet-popup');
  return {
    topbar: one('.geoapp-topbar'), panel: one('.geoapp-public-panel'), map: one('.leaflet-container'),
    controls, popup: popup && shown(popup) ? box(popup) : null,
    viewport: {x: 0, y: 0, width: innerWidth, height: innerHeight},
  };
}"""

# the top bar holds its content on one line: nothing wider than it, nothing outside it, the brand one line high
TOPBAR = """() => {
  const node = document.querySelector('.geoapp-topbar');
  const bar = node.getBoundingClientRect();
  const out = (r) => r.left < bar.left - 0.5 || r.right > bar.right + 0.5 || r.top < bar.top - 0.5
    || r.bottom > bar.bottom + 0.5;
  const outside = [...node.children]
    .filter((child) => { const r = child.getBoundingClientRect(); return r.width > 0 && out(r); })
    .map((child) => child.className);
  const mark = document.querySelector('.geoapp-brand-mark');
  const line = parseFloat(getComputedStyle(mark).lineHeight) || parseFloat(getComputedStyle(mark).fontSize) * 1.5;
  return {height: bar.height, outside, overflows: node.scrollWidth > node.clientWidth + 1,
          brandLines: Math.round(mark.getBoundingClientRect().height / line)};
}"""
SHOWN_IN_LEGEND = (
    "() => [...document.querySelectorAll('.geoapp-legend-layer')].filter((b) => !b.hidden).map((b) => b.dataset.layer)"
)


@pytest.fixture(scope="module")
def planner(hostile_store, registry, password_hash):
    """A planner's account in the live server's store: (name, password)."""
    location, _ = hostile_store
    store = open_store(registry, str(location))
    store.add_user("planner", password_hash, ("planner",), actor=SETUP)
    store.close()
    return "planner", PASSWORD


def _meet(a: dict, b: dict) -> bool:
    return (
        a["x"] < b["x"] + b["width"] - 0.5
        and b["x"] < a["x"] + a["width"] - 0.5
        and a["y"] < b["y"] + b["height"] - 0.5
        and b["y"] < a["y"] + a["height"] - 0.5
    )


def _inside(inner: dict, outer: dict) -> bool:
    return (
        inner["x"] >= outer["x"] - 0.5
        and inner["y"] >= outer["y"] - 0.5
        and inner["x"] + inner["width"] <= outer["x"] + outer["width"] + 0.5
        and inner["y"] + inner["height"] <= outer["y"] + outer["height"] + 0.5
    )


def _overlaps(boxes: dict[str, dict]) -> list[tuple[str, str]]:
    names = sorted(boxes)
    return [(a, b) for i, a in enumerate(names) for b in names[i + 1 :] if _meet(boxes[a], boxes[b])]


def _map_share(boxes: dict) -> float:
    """The map's visible area over the viewport's."""
    m, v = boxes["map"], boxes["viewport"]
    w = min(m["x"] + m["width"], v["width"]) - max(m["x"], 0)
    h = min(m["y"] + m["height"], v["height"]) - max(m["y"], 0)
    return max(0, w) * max(0, h) / (v["width"] * v["height"])


def _check_layout(page, *, panel: bool) -> dict:
    """Nothing overlaps: the top bar, the counters and the map side by side; the map's controls inside it, apart."""
    boxes = page.evaluate(BOXES)
    parts = {name: boxes[name] for name in ("topbar", "panel", "map") if boxes[name]}
    assert ("panel" in parts) == panel
    assert _overlaps(parts) == [], parts
    assert all(_inside(parts[name], boxes["viewport"]) for name in parts), parts
    assert _overlaps(boxes["controls"]) == [], boxes["controls"]
    assert all(_inside(box, boxes["map"]) for box in boxes["controls"].values()), boxes["controls"]
    bar = page.evaluate(TOPBAR)
    assert bar["height"] <= 56 and bar["outside"] == [] and not bar["overflows"] and bar["brandLines"] == 1, bar
    return boxes


def _open(watched, url: str):
    page = watched.page
    page.goto(url)
    page.wait_for_function(READY)
    page.wait_for_load_state("networkidle")
    return page


def _tap_hostile_point_under_the_controls(page, touch: bool) -> dict:
    """Put the hostile waterlogging point just right of the control column, near the top, and tap it: its popup
    would open under the controls; return the popup's box once the map has panned it clear and settled."""
    page.evaluate(
        "([lon, lat]) => { const m = window.geoapp.state.map; m.setView([lat, lon], 18, {animate: false});"
        " m.panBy(m.getSize().divideBy(2).subtract([70, 60]), {animate: false}); }",
        list(HOSTILE_POINT),
    )
    page.wait_for_function(VIEW_READY)
    x, y = page.evaluate(
        "([lon, lat]) => { const m = window.geoapp.state.map; const p = m.latLngToContainerPoint([lat, lon]);"
        " const r = m.getContainer().getBoundingClientRect(); return [r.left + p.x, r.top + p.y]; }",
        list(HOSTILE_POINT),
    )
    (page.touchscreen.tap if touch else page.mouse.click)(x, y)
    popup = page.locator(".leaflet-popup")
    popup.first.wait_for()
    # the pan that made room fetches the view again, which redraws the popup: wait until it stays put
    settled, previous = None, None
    for _ in range(50):
        page.wait_for_function(VIEW_READY)
        page.evaluate("() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))")
        if popup.count() == 1 and (settled := popup.bounding_box()) == previous:
            break
        previous = settled
        page.wait_for_timeout(150)
    assert settled == previous, "the popup never settled"
    return settled


def _popup_clear(page) -> None:
    boxes = page.evaluate(BOXES)
    popup = boxes["popup"]
    assert popup and _inside(popup, boxes["map"]), boxes
    assert [name for name, box in boxes["controls"].items() if _meet(popup, box)] == [], boxes
    assert not _meet(popup, boxes["topbar"]) and not (boxes["panel"] and _meet(popup, boxes["panel"]))


def _legend_layers(page) -> list[str]:
    return page.evaluate(SHOWN_IN_LEGEND)


def _only_public_requests(watched, base: str) -> None:
    asked = [url.removeprefix(base) for url in watched.requests]
    assert [u for u in asked if u.startswith("/api/") and not u.startswith("/api/public/")] == [], asked
    assert [u for u in asked if "/js/edit/" in u or "geoman" in u.lower()] == [], asked
    assert any(u.startswith("/api/public/layers/") for u in asked)
    assert watched.outside == [] and watched.console_errors == [] and watched.dialogs == []


def test_the_public_map_on_a_phone(browser, live_server, shots):
    context = browser.new_context(locale="zh-CN", **PHONE)
    phone = watch(context)
    page = _open(phone, f"{live_server}/public")
    phone.screenshot(shots, "public-phone")
    boxes = _check_layout(page, panel=True)
    assert _map_share(boxes) >= 0.6, boxes
    # the counters are there, above the map, and readable
    assert page.locator(".geoapp-counter[data-counter=hoardings] .geoapp-counter-value").inner_text() == "28"
    assert "演示数据" in page.locator(".geoapp-public-notice").inner_text()
    # the layer list and the legend are buttons; the legend lists the layers shown, and follows the layer list
    layers, legend = page.locator(".leaflet-control-layers"), page.locator(".geoapp-legend")
    assert layers.locator("input[type=checkbox]").first.is_hidden()
    assert legend.locator(".geoapp-legend-row").first.is_hidden()
    shown = [layer["id"] for layer in page.evaluate("() => window.geoapp.state.cfg.layers")]
    assert sorted(_legend_layers(page)) == sorted(shown)
    layers.locator(".geoapp-fold-toggle").tap()
    layers.get_by_text("窨井盖").tap()
    page.wait_for_function("() => !window.geoapp.state.page.layers.manhole_covers.visible()")
    assert "manhole_covers" not in _legend_layers(page) and "heating_stations" in _legend_layers(page)
    legend.locator(".geoapp-fold-toggle").tap()  # one panel open at a time: the layer list folds
    assert legend.locator(".geoapp-legend-layer[data-layer=heating_stations] .geoapp-legend-row").first.is_visible()
    assert legend.locator(".geoapp-legend-layer[data-layer=manhole_covers]").is_hidden()
    assert layers.locator("input[type=checkbox]").first.is_hidden()
    phone.screenshot(shots, "public-phone-legend")
    open_legend = page.evaluate(BOXES)["controls"]
    assert _overlaps(open_legend) == [], open_legend  # held to the room below the zoom column
    legend.locator(".geoapp-fold-toggle").tap()
    layers.locator(".geoapp-fold-toggle").tap()
    layers.get_by_text("窨井盖").tap()
    layers.locator(".geoapp-fold-toggle").tap()
    page.wait_for_function(VIEW_READY)
    assert sorted(_legend_layers(page)) == sorted(shown)

    _tap_hostile_point_under_the_controls(page, touch=True)
    phone.screenshot(shots, "public-phone-popup")
    _popup_clear(page)
    popup = page.locator(".leaflet-popup-content")
    assert popup.locator("h3").inner_text() == HOSTILE_NAME  # as text
    assert popup.locator("img, a.geoapp-archive-link, select, button, input").count() == 0
    assert page.evaluate("() => window.__pwned") is None
    _only_public_requests(phone, live_server)
    context.close()


def test_the_public_map_on_a_desk_and_for_a_signed_in_planner(browser, live_server, shots, planner):
    context = browser.new_context(locale="zh-CN", **DESK)
    desk = watch(context)
    sign_in(desk, live_server, *planner)
    # off the one map the sign-in led to first: it keeps asking for its layers until another page is shown
    desk.page.goto("about:blank")
    desk.requests.clear()
    page = _open(desk, f"{live_server}/public")
    desk.screenshot(shots, "public-desk-planner")
    boxes = _check_layout(page, panel=True)
    # the counters beside the map, the legend and the layer list open (a desk has room)
    assert boxes["panel"]["x"] + boxes["panel"]["width"] <= boxes["map"]["x"] + 0.5
    assert page.locator(".geoapp-legend .geoapp-legend-row").first.is_visible()
    assert page.locator(".leaflet-control-layers input[type=checkbox]").first.is_visible()
    assert page.locator(".geoapp-fold-toggle").first.is_hidden()
    # signed in, and still the public's view: no edit control, no editing code, public fields
    assert page.locator(".geoapp-user").inner_text() == "planner"
    editing = "main select, main textarea, main input:not(.leaflet-control-layers-selector), .leaflet-pm-toolbar"
    assert page.locator(f"{editing}, .geoapp-draw-layer, .geoapp-measure").count() == 0
    assert page.evaluate("() => Boolean(window.L.PM)") is False
    _tap_hostile_point_under_the_controls(page, touch=False)
    desk.screenshot(shots, "public-desk-popup")
    _popup_clear(page)
    popup = page.locator(".leaflet-popup-content")
    assert popup.locator(".geoapp-edit, select, button, input").count() == 0
    assert "备注" not in popup.inner_text()  # the internal notes stay out, even for staff
    _only_public_requests(desk, live_server)
    context.close()


def test_the_one_map_on_a_phone_for_a_signed_in_planner(browser, live_server, shots, planner):
    context = browser.new_context(locale="zh-CN", **PHONE)
    phone = watch(context)
    sign_in(phone, live_server, *planner)
    page = _open(phone, f"{live_server}/")
    phone.screenshot(shots, "onemap-phone-planner")
    boxes = _check_layout(page, panel=False)  # with the planner's links, the bar still holds one line
    assert _map_share(boxes) >= 0.6, boxes
    # the account's links fold into the menu, which opens over the map and closes again
    links = page.locator(".geoapp-account")
    assert links.is_hidden() and page.locator(".geoapp-user").is_visible()
    page.locator(".geoapp-menu-button").tap()
    assert links.get_by_role("link", name="进度").is_visible() and links.get_by_role("button", name="退出").is_visible()
    phone.screenshot(shots, "onemap-phone-menu")
    page.keyboard.press("Escape")
    assert links.is_hidden()
    # the legend follows the layer list here too
    everything = _legend_layers(page)
    assert "grid_cells" in everything
    page.locator(".leaflet-control-layers .geoapp-fold-toggle").tap()
    page.locator(".leaflet-control-layers").get_by_role("checkbox", name="单元网格").tap()
    page.wait_for_function("() => document.querySelector('.geoapp-legend-layer[data-layer=grid_cells]').hidden")
    assert _legend_layers(page) == [layer for layer in everything if layer != "grid_cells"]
    page.locator(".leaflet-control-layers .geoapp-fold-toggle").tap()
    # a popup (with the planner's edit form) opens clear of every control
    _tap_hostile_point_under_the_controls(page, touch=True)
    phone.screenshot(shots, "onemap-phone-planner-popup")
    _popup_clear(page)
    assert phone.outside == [] and phone.console_errors == []
    context.close()


def test_the_one_map_on_a_desk_keeps_popups_clear_of_the_legend_and_layer_list(browser, live_server, shots):
    context = browser.new_context(locale="zh-CN", **DESK)
    desk = watch(context)
    page = _open(desk, f"{live_server}/")
    _check_layout(page, panel=False)
    _tap_hostile_point_under_the_controls(page, touch=False)
    desk.screenshot(shots, "onemap-desk-popup")
    _popup_clear(page)
    assert desk.outside == [] and desk.console_errors == []
    context.close()
