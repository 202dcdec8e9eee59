"""The flood commander's board (/flood) in headless Chromium, on a live gunicorn with its own demo district.

Readings, closures and names are changed over HTTP as a sensor, a script or another commander would (Bearer
tokens made with ``geoapp token add``); the open board must show them on its next poll, without a reload. The
tests wait for what the page shows (never for a time); a ``window`` mark set after the page opened must still be
there afterwards, and the page must have been navigated to once.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import urllib.error
import urllib.request
from zoneinfo import ZoneInfo

import pytest

from geoapp.web import create_app
from tests.browser.conftest import serve, sign_in
from tests.conftest import stop_server

PASSWORD = "flood-board-password-1"
USERS = {"cmd": ("commander",), "view": ("viewer",), "plan": ("planner",)}
#: the commander's laptop
VIEWPORT = {"width": 1366, "height": 768}
WAIT = 30_000  # ms: polls come every 5 s; this leaves room for a slow machine
DISTRICT_TZ = ZoneInfo("Asia/Shanghai")
HOSTILE = "<img src=x onerror=alert(1)> ${alert(1)}"
POINTS, UNDERPASSES, SPACES = "waterlogging_points", "underpass_culverts", "underground_spaces"


def _cli(database, *args: str, stdin: str | None = None) -> str:
    app = create_app({"GEOAPP_DATABASE": str(database), "SECRET_KEY": "test"})
    try:
        result = app.test_cli_runner().invoke(args=["geoapp", *args], input=stdin)
        assert result.exit_code == 0, result.output
        return result.output
    finally:
        app.extensions["geoapp"].close()


@pytest.fixture(scope="module")
def board_site(demo_copy, tmp_path_factory):
    """A live server on its own demo district, with the USERS and two tokens: (base URL, {token name: token})."""
    for name, roles in USERS.items():
        roles_args = [a for role in roles for a in ("--role", role)]
        _cli(demo_copy, "user", "add", name, *roles_args, "--password-stdin", stdin=PASSWORD + "\n")
    tokens = {
        "sensor": _cli(demo_copy, "token", "add", "gauge-test", "--role", "sensor").splitlines()[0].strip(),
        "commander": _cli(demo_copy, "token", "add", "duty-script", "--role", "commander").splitlines()[0].strip(),
    }
    root = tmp_path_factory.mktemp("flood")
    # the board asks every second here (5 s by default): the tests wait for what a refresh shows, not for a time
    proc, base = serve(demo_copy, root / "gunicorn.log", GEOAPP_BASEMAP="none", GEOAPP_BOARD_REFRESH_S="1")
    yield base, tokens
    stop_server(proc)


def _call(base: str, method: str, path: str, token: str | None = None, body=None, headers=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{base}{path}", data=data, method=method)
    request.add_header("Accept", "application/json")
    if body is not None:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def _reading(base, tokens, layer: str, fid: int, value: float, observed: dt.datetime):
    body = {"layer": layer, "feature_id": fid, "kind": "depth_cm", "value": value, "observed_at": observed.isoformat()}
    status, answer = _call(base, "POST", "/api/readings", tokens["sensor"], body)
    assert status == 201, answer
    return answer


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


BOARD_READY = "() => window.geoapp && window.geoapp.state && window.geoapp.state.live !== null"


def _open_board(watched, base: str, name: str):
    page = sign_in(watched, base, name, PASSWORD)
    page.goto(f"{base}/flood")
    page.wait_for_function(BOARD_READY, timeout=WAIT)
    page.evaluate("() => { window.__sameDocument = 'kept'; }")  # gone if the page were reloaded
    return page


def _not_reloaded(page) -> None:
    assert page.evaluate("() => window.__sameDocument") == "kept"
    assert page.evaluate("() => performance.getEntriesByType('navigation').length") == 1


def _marker(layer: str, fid: int) -> str:
    return f'.geoapp-sym-body[data-layer="{layer}"][data-fid="{fid}"]'


def _row(layer: str, fid: int) -> str:
    return f'li.geoapp-row[data-layer="{layer}"][data-fid="{fid}"]'


def _wait_attr(page, selector: str, name: str, value: str) -> None:
    page.wait_for_function(
        "([s, n, v]) => { const e = document.querySelector(s); return e !== null && e.getAttribute(n) === v; }",
        arg=[selector, name, value],
        timeout=WAIT,
    )


def _clean(*watched) -> None:
    for w in watched:
        assert w.console_errors == [], w.console_errors
        assert w.outside == [], "requests left 127.0.0.1"
        assert w.dialogs == []


def test_a_posted_reading_changes_the_level_on_the_open_board_without_a_reload_and_old_ones_go_stale(
    board_site, contexts, shots
):
    base, tokens = board_site
    watched = contexts()
    page = _open_board(watched, base, "view")
    fid, stale_fid = 4, 5
    # no reading yet: never shown as safe
    assert page.locator(_marker(POINTS, fid)).get_attribute("data-level") == "stale"
    polls = page.evaluate("() => window.geoapp.state.polls")

    _reading(base, tokens, POINTS, fid, 42, _now())
    _wait_attr(page, _marker(POINTS, fid), "data-level", "danger")
    _wait_attr(page, _row(POINTS, fid), "data-level", "danger")
    row = page.locator(_row(POINTS, fid))
    assert "42 cm" in row.inner_text() and "危险" in row.inner_text()
    # a dangerous point sits in the pane above every other marker, never in a cluster
    assert page.locator(f".leaflet-geoapp-alert-pane {_marker(POINTS, fid)}").count() == 1
    assert page.locator(".geoapp-situation-list li").first.get_attribute("data-level") == "danger"
    assert page.evaluate("() => window.geoapp.state.polls") > polls
    _not_reloaded(page)

    # the newest reading is two hours old: stale (grey, "no data since <local time>"), not warning
    observed = _now() - dt.timedelta(hours=2)
    _reading(base, tokens, POINTS, stale_fid, 20, observed)
    local = observed.astimezone(DISTRICT_TZ).strftime("%m-%d %H:%M:%S")
    page.wait_for_function(
        "([s, t]) => { const e = document.querySelector(s); return e !== null && e.innerText.includes(t); }",
        arg=[_row(POINTS, stale_fid), local],
        timeout=WAIT,
    )
    stale_row = page.locator(_row(POINTS, stale_fid))
    assert stale_row.get_attribute("data-level") == "stale"
    assert f"自 {local} 起无数据" in stale_row.inner_text()
    assert page.locator(_marker(POINTS, stale_fid)).get_attribute("data-level") == "stale"
    grey = page.evaluate("() => window.geoapp.state.cfg.rules.stale.color")
    fill = page.locator(f"{_marker(POINTS, stale_fid)} svg > :first-child").get_attribute("fill")
    assert fill == grey
    # the times the board shows are the district's local time
    updated = page.locator(".geoapp-updated-at").inner_text()
    assert re.fullmatch(r"\d\d-\d\d \d\d:\d\d:\d\d", updated)
    _not_reloaded(page)
    watched.screenshot(shots, "flood-reading")
    _clean(watched)


def test_a_closure_made_through_the_api_shows_on_the_board_and_on_the_public_one_map(board_site, contexts):
    base, tokens = board_site
    board, public = contexts(), contexts()
    page = _open_board(board, base, "view")
    fid = 7
    body = {"layer": UNDERPASSES, "feature_id": fid, "reason": "积水"}
    status, closure = _call(base, "POST", "/api/flood/closures", tokens["commander"], body)
    assert status == 201, closure
    _wait_attr(page, _marker(UNDERPASSES, fid), "data-closed", "close")
    assert page.locator(f".leaflet-geoapp-alert-pane {_marker(UNDERPASSES, fid)}").count() == 1
    assert "已封闭" in page.locator(_row(UNDERPASSES, fid)).inner_text()
    assert closure["name"] in page.locator(".geoapp-closure-list").inner_text()
    _not_reloaded(page)

    one_map = public.page
    one_map.goto(f"{base}/")
    one_map.wait_for_function(
        f"() => window.geoapp && window.geoapp.state && window.geoapp.state.layers.{UNDERPASSES}.find({fid})",
        timeout=WAIT,
    )
    assert one_map.locator(".geoapp-user").count() == 0  # anonymous
    drawn = one_map.evaluate(f"() => window.geoapp.state.layers.{UNDERPASSES}.find({fid}).feature.properties.status")
    assert drawn == "closed"
    assert one_map.locator(_marker(UNDERPASSES, fid)).get_attribute("data-status") == "closed"
    status, _ = _call(base, "POST", f"/api/flood/closures/{closure['id']}/reopen", tokens["commander"], {})
    assert status == 200
    _wait_attr(page, _marker(UNDERPASSES, fid), "data-closed", "")
    _clean(board, public)


def test_the_scenario_recolours_without_a_reload_under_a_banner_and_back_to_live_removes_it(
    board_site, contexts, shots
):
    base, _ = board_site
    watched = contexts()
    page = _open_board(watched, base, "view")
    banner = page.locator(".geoapp-scenario-banner")
    assert banner.is_hidden()
    page.fill("input[name=rain_mm_h]", "80")
    page.fill("input[name=hours]", "3")
    page.click(".geoapp-scenario-run")
    page.wait_for_function("() => window.geoapp.state.scenario !== null", timeout=WAIT)
    banner.wait_for(state="visible")
    assert "情景推演，非实时数据" in banner.inner_text()
    # 80 mm/h is past every ponding rate of the demo district: every monitored feature is recoloured
    expected = page.evaluate("() => window.geoapp.state.scenario.features[0]")
    marker = _marker(expected["layer"], expected["fid"])
    _wait_attr(page, marker, "data-scenario", "1")
    assert page.locator(marker).get_attribute("data-level") == expected["level"] == "danger"
    assert page.locator(".geoapp-board-signal").get_attribute("data-signal") == "red"
    watched.screenshot(shots, "flood-scenario")
    _not_reloaded(page)
    page.click(".geoapp-back-to-live")
    banner.wait_for(state="hidden")
    _wait_attr(page, marker, "data-scenario", "")
    assert page.evaluate("() => window.geoapp.state.scenario") is None
    _not_reloaded(page)
    _clean(watched)


def test_right_click_on_the_map_draws_the_nearest_resources_with_distances(board_site, contexts, shots):
    base, _ = board_site
    watched = contexts()
    page = _open_board(watched, base, "cmd")
    box = page.locator(".geoapp-board-map .folium-map").bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.45, box["y"] + box["height"] * 0.55, button="right")
    page.wait_for_function(
        "() => window.geoapp.state.nearest && document.querySelectorAll('.geoapp-distance').length === 3",
        timeout=WAIT,
    )
    distances = page.locator(".geoapp-distance").all_inner_texts()
    assert all(re.fullmatch(r"\d · \d+(\.\d)? k?m", d) for d in distances), distances
    resources = page.evaluate("() => window.geoapp.state.nearest.resources")
    assert len(resources) == 3 and [r["distance_m"] for r in resources] == sorted(r["distance_m"] for r in resources)
    items = page.locator(".geoapp-nearest-item")
    assert items.count() == 3
    assert resources[0]["name"] in items.first.inner_text()
    assert "联系人" in items.first.inner_text()  # staff get the contacts (the API decides)
    watched.screenshot(shots, "flood-nearest")
    _clean(watched)


def test_a_hostile_name_shows_as_text_in_the_list_the_popup_and_the_tooltip(board_site, contexts):
    base, tokens = board_site
    fid = 6
    status, feature = _call(base, "GET", f"/api/layers/{POINTS}/features/{fid}")
    assert status == 200
    status, answer = _call(
        base,
        "PATCH",
        f"/api/layers/{POINTS}/features/{fid}",
        tokens["commander"],
        {"properties": {"name": HOSTILE}},
        {"If-Match": f'"{feature["version"]}"'},
    )
    assert status == 200, answer
    _reading(base, tokens, POINTS, fid, 45, _now())  # at the top of the list
    watched = contexts()
    page = _open_board(watched, base, "cmd")
    row = page.locator(_row(POINTS, fid))
    row.wait_for()
    assert row.locator(".geoapp-row-name").inner_text() == HOSTILE
    row.click()  # flies there and opens the popup
    popup = page.locator(".leaflet-popup-content .geoapp-flood-popup")
    popup.wait_for(timeout=WAIT)
    assert popup.locator("h3").inner_text() == HOSTILE
    page.locator(_marker(POINTS, fid)).hover()
    tooltip = page.locator(".leaflet-tooltip .geoapp-watch-tooltip")
    tooltip.wait_for(timeout=WAIT)
    assert HOSTILE in tooltip.inner_text()
    assert page.locator(".geoapp-board img, .leaflet-popup img, .leaflet-tooltip img").count() == 0
    assert watched.dialogs == []
    _clean(watched)


def test_roles_decide_who_sees_the_board_and_who_gets_the_buttons(board_site, contexts, shots):
    base, _ = board_site
    anonymous, planner, viewer, commander = contexts(), contexts(), contexts(), contexts()
    page = anonymous.page
    page.goto(f"{base}/flood")
    assert "/login" in page.url and "next=/flood" in page.url.replace("%2F", "/")

    page = sign_in(planner, base, "plan", PASSWORD)
    response = page.goto(f"{base}/flood")
    assert response.status == 403
    assert page.locator(".geoapp-nav-flood").count() == 0

    fid = 9
    for watched, name, may in ((viewer, "view", False), (commander, "cmd", True)):
        page = _open_board(watched, base, name)
        assert page.locator(".geoapp-nav-flood").count() == 1
        assert (page.evaluate("() => window.geoapp.state.cfg.csrf") is not None) is may
        page.locator(_row(UNDERPASSES, fid)).click()
        popup = page.locator(f'.leaflet-popup-content .geoapp-flood-popup[data-layer="{UNDERPASSES}"]')
        popup.wait_for(timeout=WAIT)
        assert popup.locator("button.geoapp-close").count() == (1 if may else 0)
        assert popup.locator(".geoapp-report-form").count() == (1 if may else 0)

    # the commander closes it from the popup with a reason, reports a depth, and reopens it
    page = commander.page
    popup = page.locator(f'.leaflet-popup-content .geoapp-flood-popup[data-layer="{UNDERPASSES}"]')
    popup.locator("button.geoapp-close").click()
    assert popup.locator(".geoapp-edit-message").first.inner_text() == "请填写原因"
    popup.locator("input.geoapp-reason").fill("积水过深，封闭")
    popup.locator("button.geoapp-close").click()
    _wait_attr(page, _marker(UNDERPASSES, fid), "data-closed", "close")
    popup = page.locator(f'.leaflet-popup-content .geoapp-flood-popup[data-layer="{UNDERPASSES}"]')
    popup.locator("button.geoapp-reopen").wait_for(timeout=WAIT)
    popup.locator("input.geoapp-report-value").fill("33")
    popup.locator("button.geoapp-report-send").click()
    _wait_attr(page, _marker(UNDERPASSES, fid), "data-level", "danger")
    commander.screenshot(shots, "flood-commander-popup")
    popup.locator("button.geoapp-reopen").click()
    _wait_attr(page, _marker(UNDERPASSES, fid), "data-closed", "")
    _not_reloaded(page)
    _clean(viewer, commander)


def test_the_archive_page_charts_the_last_readings_for_staff(board_site, contexts, shots):
    base, tokens = board_site
    fid = 3
    now = _now()
    for minutes, value in ((50, 4), (40, 9), (30, 14), (20, 18), (10, 22), (0, 26)):
        _reading(base, tokens, POINTS, fid, value, now - dt.timedelta(minutes=minutes))
    watched = contexts(viewport={"width": 1400, "height": 900})
    page = sign_in(watched, base, "view", PASSWORD)
    page.goto(f"{base}/features/{POINTS}/{fid}")
    page.wait_for_function("() => window.geoapp && window.geoapp.state && window.geoapp.state.chart", timeout=WAIT)
    assert page.evaluate("() => window.geoapp.state.chart.points") >= 6
    assert page.locator(".geoapp-readings-chart .uplot canvas").count() == 1
    assert "时间（北京时间）" in page.locator(".geoapp-readings-chart").inner_text()
    assert "水深（cm）" in page.locator(".geoapp-readings-chart").inner_text()
    watched.screenshot(shots, "archive-chart")
    public = contexts()
    public.page.goto(f"{base}/features/{POINTS}/{fid}")
    public.page.wait_for_function("() => window.geoapp && window.geoapp.state && window.geoapp.state.shape")
    assert public.page.locator(".geoapp-readings").count() == 0
    assert [u for u in public.requests if "uplot" in u.lower()] == []
    _clean(watched, public)
