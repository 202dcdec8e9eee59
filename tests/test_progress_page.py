"""The planners' progress page (/progress) through Flask's test client: who may see it, what it gives its script (the
campaign layer, its columns and filters, whether the caller may edit it: decided by the server), a shared link's
filters as the page opens, the languages. What the page then does is tested in Chromium
(tests/browser/test_progress.py).
"""

from __future__ import annotations

import re
import shutil
from urllib.parse import unquote, urljoin, urlsplit

import orjson
import pytest

from geoapp.core.accounts import new_token
from geoapp.web import create_app
from tests.conftest import CHEAP_ARGON2, ROLES, SETUP, login

HOARDINGS = "construction_hoardings"


@pytest.fixture(scope="module")
def site(demo_gpkg, tmp_path_factory, password_hash):
    """One app for the module, on its own copy of the demo district, with an account per role."""
    path = tmp_path_factory.mktemp("progress-page") / "geoapp.gpkg"
    shutil.copy(demo_gpkg, path)
    app = create_app(
        {"TESTING": True, "SECRET_KEY": "test-secret", "GEOAPP_DATABASE": str(path), "ARGON2_PARAMETERS": CHEAP_ARGON2}
    )
    store = app.extensions["geoapp"].store
    for role in ROLES:
        store.add_user(role, password_hash, (role,), actor=SETUP)
    yield app
    app.extensions["geoapp"].close()


def _as(site, role: str | None):
    client = site.test_client()
    if role:
        login(client, role)
    return client


def _config(page: str) -> dict:
    """The config the page's inline script hands to static/js/pages/progress.js."""
    return orjson.loads(re.search(r"^\s*config: (\{.*\}),$", page, re.M).group(1))


def _static_imports(client, url: str, seen: set[str]) -> set[str]:
    """Every module ``url`` loads before it runs (``import … from``), not what it may import later (``import()``)."""
    if url in seen:
        return seen
    seen.add(url)
    source = client.get(url).get_data(as_text=True)
    for ref in re.findall(r"""^\s*(?:import|export)\b[^()]*?\bfrom\s*["']([^"']+)["']""", source, re.M):
        _static_imports(client, urlsplit(urljoin(url, ref)).path, seen)
    return seen


def test_planners_viewers_and_administrators_see_it_others_do_not(site):
    anonymous = _as(site, None).get("/progress?layer=manhole_covers")
    assert anonymous.status_code == 302
    assert "/login?next=/progress?layer=manhole_covers" in unquote(anonymous.headers["Location"])
    for role in ("planner", "viewer", "admin"):
        response = _as(site, role).get("/progress")
        assert response.status_code == 200, role
        page = response.get_data(as_text=True)
        assert 'type="module" src="/static/js/pages/progress.js"' in page
        assert 'class="geoapp-nav-progress" href="/progress" aria-current="page"' in page
        assert "演示数据" in page  # the synthetic-data badge, as on every page
        assert "no-store" in response.headers["Cache-Control"]
    commander = _as(site, "commander").get("/progress")
    assert commander.status_code == 403 and "text/html" in commander.content_type
    assert "geoapp-nav-progress" not in commander.get_data(as_text=True)
    token, digest = new_token()
    site.extensions["geoapp"].store.add_token("gauge", digest, ("sensor",), actor=SETUP)
    assert site.test_client().get("/progress", headers={"Authorization": f"Bearer {token}"}).status_code == 403


def test_the_server_decides_who_may_edit_and_viewers_get_no_editing_code(site):
    planner, viewer, admin = (_as(site, role) for role in ("planner", "viewer", "admin"))
    for client, may in ((planner, True), (admin, True), (viewer, False)):
        page = client.get("/progress").get_data(as_text=True)
        cfg = _config(page)
        assert cfg["layer"]["editable"] is may
        assert (cfg["csrf"] is not None) is may
        assert "/static/js/edit/" not in page and "leaflet-geoman" not in page
    # what the page's entry loads before it runs: the progress parts and the shared map code, never edit/
    modules = _static_imports(viewer, "/static/js/pages/progress.js", set())
    assert "/static/js/map/progress/table.js" in modules and "/static/js/map/layers.js" in modules
    assert [m for m in modules if m.startswith("/static/js/edit/") or m.endswith("/progress/edit.js")] == []
    # the form and its dialog come only with import(), which the entry makes for an editable layer
    entry = viewer.get("/static/js/pages/progress.js").get_data(as_text=True)
    assert 'import("../edit/form.js")' in entry and 'import("../map/progress/edit.js")' in entry


def test_each_campaign_layer_has_a_tab_and_its_table_columns_and_filters(site):
    client = _as(site, "viewer")
    page = client.get("/progress").get_data(as_text=True)
    tabs = re.findall(r'<a href="/progress\?layer=(\w+)" data-layer="\w+"( aria-current="page")?>([^<]+)</a>', page)
    assert [(layer, title) for layer, _, title in tabs] == [
        (HOARDINGS, "建筑围挡"),
        ("backstreet_repairs", "背街小巷修复"),
        ("manhole_covers", "窨井盖"),
    ]
    assert [layer for layer, current, _ in tabs if current] == [HOARDINGS]  # the first is shown by default
    cfg = _config(page)
    assert cfg["layer"]["id"] == HOARDINGS and cfg["pageSize"] == 50
    campaign = cfg["layer"]["progress"]
    assert campaign["done"] == ["removed"]
    assert campaign["dateField"] == "removed_on" and campaign["dueField"] == "due_on"
    assert campaign["filters"] == ["status", "agency", "district", "treatment"]
    assert campaign["columns"][:3] == ["site", "status", "agency"] and "contractor" in campaign["columns"]  # staff
    assert '<option value="housing">住建局</option>' in page and '<option value="xinhua">新华区</option>' in page
    assert 'href="/api/progress/construction_hoardings/ledger.xlsx"' in page
    assert 'href="/api/progress/construction_hoardings/ledger.csv"' in page

    covers = _config(client.get("/progress?layer=manhole_covers").get_data(as_text=True))["layer"]
    assert covers["progress"]["dueField"] is None and covers["progress"]["columns"] == covers["popup"]
    lanes = client.get("/progress?layer=backstreet_repairs").get_data(as_text=True)
    assert 'aria-current="page">背街小巷修复</a>' in lanes and 'name="overdue"' in lanes
    assert 'name="overdue"' not in client.get("/progress?layer=manhole_covers").get_data(as_text=True)

    wrong = client.get("/progress?layer=roads", headers={"Accept": "application/json"})
    assert wrong.status_code == 400
    error = wrong.get_json()["error"]
    assert error["parameter"] == "layer" and HOARDINGS in error["message"] and "manhole_covers" in error["message"]


def test_a_shared_link_opens_on_its_filters_and_what_is_not_valid_is_left_out(site):
    client = _as(site, "planner")
    link = (
        f"/progress?layer={HOARDINGS}&status=removed&agency=nobody&district=xinhua&district=local"
        "&from=2023-03-01&to=2023-02-30&q=南环路&overdue=true&sort=removed_on&order=desc&offset=50"
        "&bbox=113.29,33.72,113.31,33.74"
    )
    page = client.get(link).get_data(as_text=True)
    assert '<option value="removed" selected>已整治</option>' in page
    agency = r'<select name="agency">\s*<option value="">全部</option>\s*(<option value="\w+">[^<]+</option>\s*)+<'
    assert re.search(agency, page)  # nothing chosen: the layer has no agency "nobody"
    assert '<option value="xinhua" selected>新华区</option>' in page  # a select shows the first of several
    assert 'name="from" value="2023-03-01"' in page and 'name="to" value=""' in page  # 30 February is no date
    assert 'name="q" value="南环路"' in page
    assert 'name="overdue" value="true" checked' in page and 'class="geoapp-in-view" checked' in page
    view = _config(page)["view"]
    assert view == {"sort": "removed_on", "order": "desc", "offset": 50, "bbox": [113.29, 33.72, 113.31, 33.74]}

    odd = _config(client.get(f"/progress?layer={HOARDINGS}&sort=password&order=up&offset=-5&bbox=1,2").get_data(True))
    assert odd["view"] == {"sort": "site", "order": "asc", "offset": 0, "bbox": None}


def test_the_page_speaks_chinese_by_default_and_english_on_request(site):
    client = _as(site, "viewer")
    chinese = client.get("/progress").get_data(as_text=True)
    assert "<title>进度 · 建筑围挡" in chinese
    for words in ("数据截至", "只看地图范围内", "只看逾期", "导出 Excel", "清除筛选", "整治日期"):
        assert words in chinese, words
    text = _config(chinese)["text"]
    assert text["overdue"] == "逾期" and text["edit"] == "编辑"
    assert text["rowsShown"] == "第 {first}–{last} 条，共 {matched} 条"
    english = client.get("/progress?lang=en").get_data(as_text=True)
    assert "<title>Progress · Construction hoardings" in english
    for words in ("Figures as of", "Only what the map shows", "Export XLSX", "Removed on", "Responsible agency"):
        assert words in english, words
    cfg = _config(english)
    assert cfg["lang"] == "en" and cfg["text"]["overdue"] == "Overdue" and cfg["timeZone"] == "Asia/Shanghai"
    assert cfg["layer"]["fields"][0]["label"] == "Site"
