"""The flood board page (/flood) and the archive page's readings chart, through Flask's test client: who may see
them, what the page gives the script (permissions decided by the server), escaping, assets, languages."""

from __future__ import annotations

import re

import pytest
import shapely

from geoapp.core.accounts import new_token
from tests.conftest import SETUP, login

HOSTILE = "</script><script>alert(1)</script>${alert(1)}"


def _page(client, path: str = "/flood"):
    response = client.get(path)
    return response, response.get_data(as_text=True)


def test_anonymous_visitors_are_sent_to_sign_in(client):
    response = client.get("/flood")
    assert response.status_code == 302
    assert "/login?next=/flood" in response.headers["Location"].replace("%2F", "/")


def test_a_planner_gets_the_403_page_and_no_link(client, users):
    login(client, "planner")
    response, _ = _page(client)
    assert response.status_code == 403
    assert "text/html" in response.content_type
    assert 'class="geoapp-nav-flood"' not in client.get("/login").get_data(as_text=True)


def test_a_sensor_token_may_post_readings_but_not_see_the_board(app, client):
    token, digest = new_token()
    app.extensions["geoapp"].store.add_token("gauge", digest, ("sensor",), actor=SETUP)
    response = client.get("/flood", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 403


@pytest.mark.parametrize(("role", "may_close"), [("viewer", False), ("commander", True), ("admin", True)])
def test_board_roles_see_the_board_and_only_commanders_get_the_controls(client, users, role, may_close):
    login(client, role)
    response, page = _page(client)
    assert response.status_code == 200
    assert "/static/js/pages/flood.js" in page
    assert f'"mayClose":{"true" if may_close else "false"}' in page
    assert f'"mayReport":{"true" if may_close else "false"}' in page
    assert ('"csrf":null' in page) is (not may_close)
    assert 'class="geoapp-nav-flood"' in page
    assert "情景推演，非实时数据" in page  # the banner, hidden until a scenario is run
    assert response.headers["Cache-Control"].startswith("no-store") or "no-store" in response.headers["Cache-Control"]


def test_the_board_passes_the_rule_colours_and_speaks_english(client, users):
    login(client, "viewer")
    _, page = _page(client)
    assert '"danger":{"label":"危险","color":"#c62828"}' in page
    assert '"stale":{"label":"无数据","color":"#9e9e9e"}' in page
    assert '"icon":"tint"' in page and '"icon":"road"' in page and '"icon":"building"' in page
    _, english = _page(client, "/flood?lang=en")
    assert "<title>Flood board" in english
    assert '"scenarioBanner":"Scenario — not live data"' in english


def test_hostile_names_in_the_embedded_layers_do_not_break_out_of_the_script(app, client, users):
    store = app.extensions["geoapp"].store
    line = shapely.LineString([(113.299, 33.729), (113.302, 33.729)])
    store.insert("roads", {"name": HOSTILE, "kind": "branch"}, line, actor=SETUP)
    login(client, "viewer")
    _, page = _page(client)
    assert "<script>alert(1)" not in page
    assert HOSTILE not in page
    nonce = re.search(r'<script nonce="([^"]+)"', page).group(1)
    # every script element carries the nonce, or is a module of the app's own
    for tag in re.findall(r"<script[^>]*>", page):
        assert f'nonce="{nonce}"' in tag or 'type="module" src="/static/js/' in tag, tag


def test_the_archive_page_charts_readings_for_staff_only(client, users):
    _, public = _page(client, "/features/waterlogging_points/1")
    assert "uPlot.min.css" not in public and "geoapp-readings-chart" not in public
    login(client, "viewer")
    _, staff = _page(client, "/features/waterlogging_points/1")
    assert "/static/vendor/uplot/dist/uPlot.min.css" in staff
    assert 'class="geoapp-readings-chart"' in staff
    assert '"chart":{"api":"/api","layer":"waterlogging_points","fid":1,"kind":"depth_cm"' in staff
    _, gauge = _page(client, "/features/rain_gauges/1")
    assert '"kind":"rain_mm"' in gauge
    _, station = _page(client, "/features/heating_stations/1")
    assert '"chart":null' in station and "uPlot" not in station


def test_uplot_is_served_from_npm(client):
    for path in ("uplot/dist/uPlot.esm.js", "uplot/dist/uPlot.min.css"):
        assert client.get(f"/static/vendor/{path}").status_code == 200


@pytest.mark.parametrize("role, shown", [("admin", True), ("planner", False), ("commander", False)])
def test_the_header_links_to_the_deleted_features_for_administrators_only(client, users, role, shown):
    login(client, role)
    header = client.get("/login").get_data(as_text=True)
    assert ('href="/admin/deleted"' in header) is shown
