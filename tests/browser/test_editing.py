"""Editing in the browser: the popup's status form, the 409 conflict, moving and drawing shapes, who sees what.

The module has its own copy of the demo district and its own live server, so that its changes
never reach the other browser tests. The last tests use Flask's test client for the archive
page's status form and the administrators' page of deleted features.
"""

from __future__ import annotations

import json
import re
import shutil
import urllib.request

import pytest
import shapely

from geoapp.core.accounts import hash_password
from geoapp.store import open_store
from tests.browser.chromium import READY
from tests.browser.conftest import serve, watch
from tests.conftest import stop_server

PASSWORD = "password-123"
HOARDINGS = "construction_hoardings"
STATIONS = "heating_stations"
# two planners (to collide), a viewer (staff who may not edit) and an administrator
USERS = {"plan": ("planner",), "plan2": ("planner",), "view": ("viewer",), "boss": ("admin",)}


def _quiet_features(store, registry, layer_id: str, geom_type: str, count: int) -> list[tuple[int, float, float]]:
    """Features not yet removed, as (fid, lon, lat) of a point on them with no other feature within ~20 m.

    Only layers drawn above (later in the registry) count: a click there opens this feature's popup.
    """
    ids = [layer.id for layer in registry]
    above = ids[ids.index(layer_id) :]
    tree = shapely.STRtree([g for layer in above for g in store.query(layer).geometry])
    own = store.query(layer_id)
    picked = []
    for fid, geom, status in zip(own.index, own.geometry, own["status"], strict=True):
        if geom.geom_type != geom_type or status == "removed":
            continue
        point = geom.representative_point()
        if len(tree.query(point.buffer(0.0002), predicate="intersects")) == 1:  # itself only
            picked.append((int(fid), point.x, point.y))
        if len(picked) == count:
            return picked
    raise AssertionError(f"fewer than {count} quiet {geom_type} features in {layer_id}")


@pytest.fixture(scope="module")
def editing_site(tmp_path_factory, demo_gpkg, registry):
    """A live server on its own copy of the demo district, with the users above and features to edit."""
    path = tmp_path_factory.mktemp("editing") / "editing.gpkg"
    shutil.copy(demo_gpkg, path)
    store = open_store(registry, str(path))
    digest = hash_password(PASSWORD)
    for name, roles in USERS.items():
        store.add_user(name, digest, roles)
    features = {
        "polygons": _quiet_features(store, registry, HOARDINGS, "Polygon", 3),
        "stations": _quiet_features(store, registry, STATIONS, "Point", 1),
    }
    store.close()
    proc, base = serve(path, tmp_path_factory.mktemp("editing-logs") / "gunicorn.log", GEOAPP_BASEMAP="none")
    yield base, features
    stop_server(proc)


@pytest.fixture
def contexts(browser):
    """New browser contexts (each with its own cookies), closed after the test."""
    made = []

    def new():
        context = browser.new_context(locale="zh-CN", viewport={"width": 1400, "height": 860})
        made.append(context)
        return watch(context)

    yield new
    for context in made:
        context.close()


def _sign_in(watched, base: str, name: str):
    page = watched.page
    page.goto(f"{base}/login")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("form button[type=submit]")
    page.wait_for_selector(".geoapp-user")
    return page


def _open_map(page, base: str, lon: float, lat: float) -> None:
    page.goto(f"{base}/?focus={lon},{lat}")
    page.wait_for_function(READY)
    page.wait_for_load_state("networkidle")


def _screen(page, lon: float, lat: float) -> tuple[float, float]:
    return page.evaluate(
        "([lon, lat]) => { const m = window.geoapp.state.map; const p = m.latLngToContainerPoint([lat, lon]);"
        " const r = m.getContainer().getBoundingClientRect(); return [r.left + p.x, r.top + p.y]; }",
        [lon, lat],
    )


def _open_popup(page, lon: float, lat: float):
    page.mouse.click(*_screen(page, lon, lat))
    popup = page.locator(".leaflet-popup-content")
    popup.wait_for()
    return popup


def _popup_saying(page, kind: str):
    """The popup whose message is of ``kind``, once it shows (a closed popup fades out for a moment)."""
    popup = page.locator(".leaflet-popup-content").filter(has=page.locator(f'.geoapp-edit-message[data-kind="{kind}"]'))
    popup.wait_for()
    return popup


def _feature(base: str, layer: str, fid: int) -> dict:
    with urllib.request.urlopen(f"{base}/api/layers/{layer}/features/{fid}", timeout=10) as response:
        return json.load(response)


def _clean(*watched, expected_status: int | None = None) -> None:
    """No script errors, dialogs or requests off 127.0.0.1 (Chromium logs an expected refusal as an error)."""
    refused = f"the server responded with a status of {expected_status}"
    for w in watched:
        errors = [e for e in w.console_errors if not (expected_status and refused in e)]
        assert errors == [], errors
        assert w.outside == [], "requests left 127.0.0.1"
        assert w.dialogs == []


def test_a_planner_changes_a_status_in_the_popup_and_the_history_shows_it(editing_site, contexts, shots):
    base, features = editing_site
    fid, lon, lat = features["polygons"][0]
    before = _feature(base, HOARDINGS, fid)
    assert before["properties"]["status"] != "removed"
    planner = contexts()
    page = _sign_in(planner, base, "plan")
    _open_map(page, base, lon, lat)
    popup = _open_popup(page, lon, lat)
    assert popup.locator("h3").inner_text() == before["properties"]["site"]
    assert "施工单位" in popup.inner_text()  # staff see the internal popup fields
    select = popup.locator("select.geoapp-status-select")
    assert select.locator("option").all_inner_texts() == ["待整治", "整治中", "已整治", "未停工"]
    select.select_option("removed")
    popup.locator("button.geoapp-save").click()
    reopened = _popup_saying(page, "ok")
    planner.screenshot(shots, "editing-saved")
    assert reopened.locator(".geoapp-edit-message").inner_text() == "已保存"
    # the layer was fetched again: the reopened popup shows the new value
    assert reopened.locator("select.geoapp-status-select").input_value() == "removed"
    assert "已整治" in reopened.locator("table").inner_text()
    after = _feature(base, HOARDINGS, fid)
    assert after["properties"]["status"] == "removed"
    assert after["version"] == before["version"] + 1

    page.goto(f"{base}/features/{HOARDINGS}/{fid}")
    history = page.locator(".geoapp-history")
    planner.screenshot(shots, "editing-history")
    row = history.locator("tbody tr").first.inner_text()
    assert "plan" in row and "修改" in row and "状态" in row
    assert history.locator(".geoapp-old").first.inner_text() in ("待整治", "整治中", "未停工")
    assert history.locator(".geoapp-new").first.inner_text() == "已整治"
    _clean(planner)


def test_a_stale_popup_gets_the_conflict_message_and_overwrites_nothing(editing_site, contexts, shots):
    base, features = editing_site
    fid, lon, lat = features["polygons"][1]
    first, second = contexts(), contexts()
    popups = []
    for watched, name in ((first, "plan"), (second, "plan2")):
        page = _sign_in(watched, base, name)
        _open_map(page, base, lon, lat)
        popups.append(_open_popup(page, lon, lat))
    # the first planner saves while the second still has the old version open
    popups[0].locator("select.geoapp-status-select").select_option("in_progress")
    popups[0].locator("button.geoapp-save").click()
    _popup_saying(first.page, "ok")
    popups[1].locator("select.geoapp-status-select").select_option("under_construction")
    popups[1].locator("button.geoapp-save").click()
    reloaded = _popup_saying(second.page, "conflict")
    second.screenshot(shots, "editing-conflict")
    message = reloaded.locator(".geoapp-edit-message").inner_text()
    assert "其他人修改" in message and "未保存" in message
    # reloaded: the second planner now sees the first one's value, which stands
    assert reloaded.locator("select.geoapp-status-select").input_value() == "in_progress"
    assert _feature(base, HOARDINGS, fid)["properties"]["status"] == "in_progress"
    _clean(first, second, expected_status=409)


def test_viewers_and_the_public_get_no_edit_controls(editing_site, contexts):
    base, features = editing_site
    fid, lon, lat = features["polygons"][2]
    viewer, public = contexts(), contexts()
    _sign_in(viewer, base, "view")
    for watched, staff in ((viewer, True), (public, False)):
        page = watched.page
        _open_map(page, base, lon, lat)
        popup = _open_popup(page, lon, lat)
        assert ("施工单位" in popup.inner_text()) is staff
        assert popup.locator(".geoapp-edit, select, button").count() == 0
        assert page.locator(".leaflet-draw, .geoapp-draw-layer").count() == 0
        assert page.evaluate("() => window.L.Draw === undefined")  # the drawing tools are not even loaded
        assert page.evaluate("() => window.geoapp.state.cfg.csrf") is None
        page.goto(f"{base}/features/{HOARDINGS}/{fid}")
        assert page.locator(".geoapp-status-form").count() == 0
        assert page.locator(".geoapp-archive-history").count() == (1 if staff else 0)
    _clean(viewer, public)


def test_a_planner_moves_a_point_with_the_shape_editor(editing_site, contexts, shots):
    base, features = editing_site
    fid, lon, lat = features["stations"][0]
    before = _feature(base, STATIONS, fid)
    planner = contexts()
    page = _sign_in(planner, base, "plan")
    _open_map(page, base, lon, lat)
    popup = _open_popup(page, lon, lat)
    popup.locator("button.geoapp-edit-shape").click()
    handle = page.locator(".leaflet-edit-move")
    handle.wait_for()
    box = handle.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 60, y - 30, steps=6)
    page.mouse.up()
    planner.screenshot(shots, "editing-move")
    page.locator(".geoapp-editbar button.geoapp-save").click()
    _popup_saying(page, "ok")
    assert page.locator(".geoapp-editbar").count() == 0
    # where the point now is, as the map itself converts 60 px east and 30 px north
    moved = page.evaluate(
        "([x, y]) => { const m = window.geoapp.state.map; const r = m.getContainer().getBoundingClientRect();"
        " const p = m.containerPointToLatLng([x - r.left, y - r.top]); return [p.lng, p.lat]; }",
        [x + 60, y - 30],
    )
    after = _feature(base, STATIONS, fid)
    assert after["version"] == before["version"] + 1
    assert after["geometry"]["coordinates"] == pytest.approx(moved, abs=2e-5)
    assert after["geometry"]["coordinates"] != pytest.approx(before["geometry"]["coordinates"], abs=1e-5)
    _clean(planner)


def test_a_planner_draws_a_new_hoarding_and_fills_its_form(editing_site, contexts, shots):
    base, features = editing_site
    _, lon, lat = features["polygons"][0]
    planner = contexts()
    page = _sign_in(planner, base, "plan")
    _open_map(page, base, lon, lat)
    count = page.evaluate(f"() => window.geoapp.state.layers.{HOARDINGS}.count")
    page.locator(".geoapp-draw-layer select").select_option(HOARDINGS)
    page.locator(".leaflet-draw-draw-polygon").click()
    # a small triangle south-west of the quiet hoarding
    box = page.locator(".leaflet-container").bounding_box()
    points = [(0.30, 0.75), (0.40, 0.75), (0.35, 0.65)]
    for fx, fy in [*points, points[0]]:  # the first point again closes the area
        page.mouse.click(box["x"] + box["width"] * fx, box["y"] + box["height"] * fy)
        page.wait_for_timeout(120)  # Leaflet.draw takes a new vertex only after a short pause
    form = page.locator(".geoapp-new-feature")
    form.wait_for()
    planner.screenshot(shots, "editing-draw-form")
    assert form.locator("h3").inner_text() == "新增要素：建筑围挡"
    assert form.locator("select[name=status]").input_value() == "pending"  # the layer's default
    form.locator("input[name=site]").fill("测试新增围挡")
    form.locator("select[name=agency]").select_option("housing")
    form.locator("button.geoapp-save").click()
    assert _popup_saying(page, "ok").locator("h3").inner_text() == "测试新增围挡"
    page.wait_for_function(f"() => window.geoapp.state.layers.{HOARDINGS}.count === {count + 1}")
    with urllib.request.urlopen(f"{base}/api/search?q=%E6%B5%8B%E8%AF%95%E6%96%B0%E5%A2%9E", timeout=10) as response:
        (hit,) = json.load(response)["results"]
    created = _feature(base, HOARDINGS, hit["id"])
    assert created["geometry"]["type"] == "Polygon"
    assert created["properties"]["agency"] == "housing" and created["properties"]["status"] == "pending"
    _clean(planner)


# -- the archive page's status form and the administrators' page, through Flask's test client ------


@pytest.fixture(scope="module")
def digest():
    return hash_password(PASSWORD)  # Argon2 is slow on purpose: once for the module


@pytest.fixture
def signed_in(app, client, digest):
    """Sign the test client in as one of USERS through the real form; return the store."""
    store = app.extensions["geoapp"].store
    for name, roles in USERS.items():
        store.add_user(name, digest, roles)

    def sign_in(name: str):
        token = _form_token(client.get("/login").get_data(as_text=True))
        response = client.post("/login", data={"name": name, "password": PASSWORD, "csrf_token": token})
        assert response.status_code == 302
        return store

    return sign_in


def _form_token(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def test_the_archive_status_form_saves_and_refuses_a_stale_version(client, signed_in):
    store = signed_in("plan")
    fid = int(store.query(HOARDINGS).index[0])
    current = store.get(HOARDINGS, fid)
    page = client.get(f"/features/{HOARDINGS}/{fid}").get_data(as_text=True)
    assert 'class="geoapp-edit geoapp-status-form"' in page
    token = _form_token(page)
    target = "in_progress" if current.properties["status"] != "in_progress" else "pending"

    stale = client.post(
        f"/features/{HOARDINGS}/{fid}/status",
        data={"csrf_token": token, "version": current.version - 1, "status": target},
    )
    assert stale.status_code == 409
    body = stale.get_data(as_text=True)
    assert "geoapp-conflict" in body and "其他人修改" in body
    assert f'name="version" value="{current.version}"' in body  # the form now carries the current version
    assert store.get(HOARDINGS, fid) == current  # nothing changed

    saved = client.post(
        f"/features/{HOARDINGS}/{fid}/status",
        data={"csrf_token": token, "version": current.version, "status": target},
    )
    assert saved.status_code == 302 and saved.headers["Location"].endswith(f"/features/{HOARDINGS}/{fid}")
    assert store.get(HOARDINGS, fid).properties["status"] == target
    page = client.get(f"/features/{HOARDINGS}/{fid}").get_data(as_text=True)
    assert "状态已保存" in page and "geoapp-history" in page


def test_the_archive_status_form_needs_an_editor(client, signed_in):
    signed_in("view")
    page = client.get(f"/features/{HOARDINGS}/1").get_data(as_text=True)
    assert "geoapp-status-form" not in page and "geoapp-archive-history" in page
    response = client.post(
        f"/features/{HOARDINGS}/1/status", data={"csrf_token": _form_token(page), "version": 1, "status": "pending"}
    )
    assert response.status_code == 403


def test_deleted_features_are_listed_for_admins_and_restored(client, signed_in):
    assert client.get("/admin/deleted").headers["Location"].startswith("/login")
    store = signed_in("boss")
    store.delete(HOARDINGS, 2)
    page = client.get("/admin/deleted").get_data(as_text=True)
    assert f'action="/admin/deleted/{HOARDINGS}/2/restore"' in page
    response = client.post(f"/admin/deleted/{HOARDINGS}/2/restore", data={"csrf_token": _form_token(page)})
    assert response.status_code == 302
    assert store.get(HOARDINGS, 2) is not None
    assert "已恢复" in client.get("/admin/deleted").get_data(as_text=True)
    assert store.history(HOARDINGS, 2)[-1].actor == "boss"
