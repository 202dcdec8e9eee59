"""The public progress map (/public): counters counted from the data, nothing internal and nothing that edits
anywhere it reaches (its HTML, its config, its scripts, what it fetches), whoever is signed in; cached for the
public; its declaration checked at start-up."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from urllib.parse import urlencode

import pytest
import yaml
from lxml import html as lxml_html

from geoapp.config import PROJECT_ROOT
from geoapp.core import public, stats
from geoapp.core.layers import LayerError, Registry
from geoapp.web import create_app
from tests.conftest import CHEAP_ARGON2, SETUP, login

STATIC_JS = PROJECT_ROOT / "geoapp/web/static/js"
HOARDINGS = "/api/layers/construction_hoardings/features"


@pytest.fixture(scope="module")
def site(tmp_path_factory, demo_gpkg, password_hash):
    """One app for the read-only tests, on its own copy of the demo district, with a planner account."""
    path = tmp_path_factory.mktemp("public") / "geoapp.gpkg"
    shutil.copy(demo_gpkg, path)
    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "test-secret",
            "GEOAPP_DATABASE": str(path),
            "ARGON2_PARAMETERS": CHEAP_ARGON2,
        }
    )
    app.extensions["geoapp"].store.add_user("planner", password_hash, ("planner",), actor=SETUP)
    yield app
    app.extensions["geoapp"].close()


def _with_class(node, name: str) -> list:
    return node.xpath(f".//*[contains(concat(' ', normalize-space(@class), ' '), ' {name} ')]")


def _counters(page_html: str) -> dict[str, dict]:
    """The counters as the page shows them: {id: {"label", "value", "total", "share", "parts"}}."""
    tree = lxml_html.fromstring(page_html)
    out = {}
    for item in tree.xpath("//li[@data-counter]"):

        def text(name, node=item):
            found = _with_class(node, name)
            return found[0].text_content().strip() if found else None

        total = text("geoapp-counter-total")
        share = [b for node in _with_class(item, "geoapp-counter-share") for b in node.xpath(".//b")]
        out[item.get("data-counter")] = {
            "label": text("geoapp-counter-label"),
            "value": text("geoapp-counter-value"),
            "total": total.lstrip("/ ").strip() if total else None,
            "share": share[0].text_content().strip() if share else None,
            "parts": [
                (part.text_content().rsplit(" ", 1)[0].strip(), part.xpath(".//b")[0].text_content())
                for part in _with_class(item, "geoapp-counter-part")
            ],
        }
    return out


def _config(page_html: str) -> dict:
    (block,) = lxml_html.fromstring(page_html).xpath("//script[@id='geoapp-public-config']")
    assert block.get("type") == "application/json"
    return json.loads(block.text_content())


def _fetches(config: dict) -> list[str]:
    """The requests the page's script makes for its layers (static/js/map/layers.js on the whole district)."""
    bbox = ",".join(f"{v:.6f}" for v in config["bounds"])
    query = urlencode({"bbox": bbox, "limit": config["limit"]})
    return [f"{config['api']}/layers/{layer['id']}/features?{query}" for layer in config["layers"]]


def test_the_counters_are_the_counts_of_the_demo_data(site, demo_data):
    gdf = demo_data
    target = next(
        f["target"]
        for f in yaml.safe_load((PROJECT_ROOT / "layers/figures/report.yaml").read_text(encoding="utf-8"))["figures"]
        if f["id"] == "manholes_target_pct"
    )
    hoardings, streets = gdf["construction_hoardings"], gdf["backstreet_repairs"]
    manholes, heating = gdf["manhole_covers"], gdf["heating_stations"]
    fixed = int((manholes["status"] == "fixed").sum())
    closed = int((gdf["underpass_culverts"]["status"] == "closed").sum())
    sealed = int((gdf["underground_spaces"]["status"] == "sealed").sum())

    page = site.test_client().get("/public")
    assert page.status_code == 200 and page.mimetype == "text/html"
    shown = _counters(page.get_data(as_text=True))
    assert shown["hoardings"]["value"] == str((hoardings["status"] == "removed").sum()) == "28"
    assert shown["hoardings"]["total"] == str(len(hoardings)) == "43"
    assert shown["backstreets"]["value"] == str((streets["status"] == "repaired").sum()) == "8"
    assert shown["backstreets"]["total"] == str(len(streets)) == "10"
    assert shown["manholes"]["value"] == str(fixed) == "886"
    assert shown["manholes"]["share"] == f"{round(100 * fixed / target, 2)}%" == "110.75%"
    assert shown["heating"]["value"] == str((heating["status"] == "running").sum())
    assert shown["heating"]["total"] == str(len(heating)) == "114"
    assert shown["flood_closures"]["value"] == str(closed + sealed)
    assert shown["flood_closures"]["parts"] == [("下穿涵洞封闭", str(closed)), ("地下空间封堵", str(sealed))]
    assert shown["hoardings"]["label"] == "建筑围挡已整治"
    body = page.get_data(as_text=True)
    assert "演示数据：" in body  # the synthetic-data notice, beside the badge in the top bar

    english = site.test_client().get("/public?lang=en").get_data(as_text=True)
    assert _counters(english)["hoardings"]["label"] == "Hoardings removed"
    assert 'lang="en"' in english and "Demo data: the figures and the map are generated" in english
    # the map's layers are those public.yaml declares, each shown at first
    declared = yaml.safe_load((PROJECT_ROOT / "layers/figures/public.yaml").read_text(encoding="utf-8"))["layers"]
    layers = _config(body)["layers"]
    assert sorted(layer["id"] for layer in layers) == sorted(entry["layer"] for entry in declared)
    assert all(layer["shown"] for layer in layers)


def _internal(registry: Registry, demo_data) -> tuple[set[str], set[str]]:
    """Every internal field's name, and every value the demo data holds in one (contractors, notes, phones)."""
    names, values = set(), set()
    for layer in registry:
        frame = demo_data.get(layer.id)
        for spec in layer.fields:
            if spec.public:
                continue
            names.add(spec.name)
            if frame is not None and spec.name in frame:
                values.update(str(v) for v in frame[spec.name].dropna() if len(str(v)) >= 4)
    return names, values


def _module_graph(entry: Path) -> set[Path]:
    """Every module of geoapp's own ``entry`` imports, directly or not (static and dynamic imports)."""
    seen, todo = set(), [entry]
    while todo:
        path = todo.pop()
        if path in seen or not path.is_relative_to(STATIC_JS):  # an npm package, served from /static/vendor
            continue
        seen.add(path)
        text = path.read_text(encoding="utf-8")
        for ref in re.findall(r"""(?:from|import)\s*\(?\s*["'](\.{1,2}/[^"']+)["']""", text):
            todo.append((path.parent / ref).resolve())
    return seen


def test_nothing_internal_nor_editing_reaches_the_public_map(site, registry, demo_data):
    names, values = _internal(registry, demo_data)
    assert {"contractor", "notes", "contact_phone", "operator_phone", "keeper_phone"} <= names
    assert any(v.startswith("0000-") for v in values) and len(values) > 100
    anonymous = site.test_client()
    planner = site.test_client()
    login(planner, "planner")
    assert "planner" in planner.get("/public").get_data(as_text=True)  # signed in: their name in the top bar

    for who, client in (("the public", anonymous), ("a planner", planner)):
        body = client.get("/public").get_data(as_text=True)
        config = _config(body)
        texts = {"the page": body}
        for url in _fetches(config):
            answer = client.get(url)
            assert answer.status_code == 200, (who, url, answer.get_data(as_text=True)[:200])
            assert answer.json["features"], url  # the whole district: every layer has features there
            texts[url] = answer.get_data(as_text=True)
        for where, text in texts.items():
            leaked = [v for v in values if v in text]
            assert leaked == [], f"{who}: internal values in {where}: {leaked[:5]}"
            named = [n for n in names if re.search(rf"\b{n}\b", text)]
            assert named == [], f"{who}: internal field names in {where}: {named}"
        # nothing of editing: no form but signing out, no edit strings or flags, no CSRF token for the script
        tree = lxml_html.fromstring(body)
        forms = [form.get("action") for form in tree.xpath("//form")]
        assert forms == ([] if who == "the public" else ["/logout"])
        assert tree.xpath("//main//select | //main//input | //main//textarea | //main//button") == []
        for word in ("editable", "csrf", "rules", "editors", "geoman", "/js/edit/", 'featurePage": "'):
            assert word not in json.dumps(config), (who, word)
        scripts = [s.get("src") for s in tree.xpath("//script[@src]")]
        assert not [s for s in scripts if "geoman" in s or "/edit/" in s], scripts
        assert tree.xpath("//script[not(@src)]") == tree.xpath("//script[@id='geoapp-public-config']")
        assert all(f"{config['api']}/" in url for url in _fetches(config)) and config["api"] == "/api/public"

    # the page's module never imports the editing code, even on demand
    graph = _module_graph(STATIC_JS / "pages/public.js")
    assert STATIC_JS / "map/layers.js" in graph
    assert [p for p in graph if "edit" in p.relative_to(STATIC_JS).parts] == []
    # the public layers' API answers public fields only, whoever asks, and only for the public map's layers
    url = _fetches(config)[0]
    assert planner.get(url).get_data() == anonymous.get(url).get_data()
    refused = anonymous.get("/api/public/layers/emergency_resources/features")
    assert refused.status_code == 404 and refused.json["error"]["parameter"] == "layer"
    bad = anonymous.get("/api/public/layers/construction_hoardings/features?contractor=x")
    assert bad.status_code == 400 and bad.json["error"]["parameter"] == "contractor"
    assert "bbox, limit, offset" in bad.json["error"]["message"]


def test_the_page_is_cached_for_the_public_and_private_for_a_user(site):
    client = site.test_client()
    first = client.get("/public")
    tag = first.headers["ETag"]
    assert first.cache_control.public and 0 < first.cache_control.max_age <= 300
    assert {"Cookie", "Accept-Language"} <= set(first.vary)
    # no inline script runs, so the copy a cache keeps and the CSP of a later 304 always agree
    assert "nonce-" not in first.headers["Content-Security-Policy"]
    again = client.get("/public", headers={"If-None-Match": tag})
    assert again.status_code == 304 and again.get_data() == b"" and again.headers["ETag"] == tag
    csp = "Content-Security-Policy"
    assert again.cache_control.public and again.headers[csp] == first.headers[csp]
    zipped = client.get("/public", headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["Content-Encoding"] == "gzip"
    unchanged = client.get("/public", headers={"Accept-Encoding": "gzip", "If-None-Match": zipped.headers["ETag"]})
    assert unchanged.status_code == 304
    # another language is another page, with its own tag
    english = site.test_client().get("/public", headers={"Accept-Language": "en"})
    assert english.headers["ETag"] != tag and "Hoardings removed" in english.get_data(as_text=True)
    assert site.test_client().get("/public", headers={"If-None-Match": tag, "Accept-Language": "en"}).status_code == 200
    # the public layers: one answer for everyone, cached the same way
    url = "/api/public/layers/manhole_covers/features?limit=10"
    layer = client.get(url)
    assert layer.cache_control.public and layer.headers["ETag"] and layer.mimetype == "application/geo+json"
    assert client.get(url, headers={"If-None-Match": layer.headers["ETag"]}).status_code == 304
    # a signed-in user's page (their name in the top bar) is never stored nor answered from a tag
    planner = site.test_client()
    login(planner, "planner")
    private = planner.get("/public", headers={"If-None-Match": tag})
    assert private.status_code == 200 and private.cache_control.no_store and not private.cache_control.public


def test_a_planner_marks_a_hoarding_removed_and_the_public_counter_follows(app, users):
    public_client, planner = app.test_client(), app.test_client()
    before = public_client.get("/public")
    assert _counters(before.get_data(as_text=True))["hoardings"]["value"] == "28"
    _, csrf = login(planner, "planner")
    pending = planner.get(f"{HOARDINGS}?status=pending").json["features"][0]
    changed = planner.patch(
        f"{HOARDINGS}/{pending['id']}",
        json={"properties": {"status": "removed", "removed_on": "2023-11-20", "treatment": "greened"}},
        headers={"X-CSRFToken": csrf, "If-Match": f'"{pending["version"]}"'},
    )
    assert changed.status_code == 200, changed.json
    # the visitor's copy is out of date: asking with its tag gets the new page, not a 304
    after = public_client.get("/public", headers={"If-None-Match": before.headers["ETag"]})
    assert after.status_code == 200 and after.headers["ETag"] != before.headers["ETag"]
    shown = _counters(after.get_data(as_text=True))["hoardings"]
    assert (shown["value"], shown["total"]) == ("29", "43")
    drawn = public_client.get("/api/public/layers/construction_hoardings/features?limit=100").json["features"]
    assert next(f for f in drawn if f["id"] == pending["id"])["properties"]["status"] == "removed"


def test_a_bad_declaration_stops_the_app_naming_the_file(tmp_path, demo_gpkg):
    layers = tmp_path / "layers"
    shutil.copytree(PROJECT_ROOT / "layers", layers)
    registry = Registry.load(layers)
    figures = stats.load_figures(layers, registry)
    path = layers / "figures" / "public.yaml"
    text = path.read_text(encoding="utf-8")
    assert public.load(layers, registry, figures).counters[0].value == "hoardings_removed"
    for broken, says in (
        (text.replace("value: hoardings_removed", "value: hoardings_done"), "unknown figure 'hoardings_done'"),
        (text.replace("of: backstreets\n", "of: back_streets\n"), "counter backstreets: unknown figure"),
        (text.replace("figure: manholes_target_pct", "figure: manholes_fixed"), "must name a share figure"),
        (text.replace("- layer: heating_stations", "- layer: heating"), "unknown layer 'heating'"),
        (text.replace("- layer: heating_stations", "- layer: roads"), "roads is a context layer"),
        (text.replace("  value: manholes_fixed\n", ""), "value"),
        ("- a list\n", "must be a mapping"),
    ):
        path.write_text(broken, encoding="utf-8")
        with pytest.raises(LayerError, match=r"figures/public\.yaml") as refused:
            public.load(layers, registry, figures)
        assert says in str(refused.value), str(refused.value)
    # and the app itself does not start with it
    path.write_text(text.replace("value: hoardings_removed", "value: hoardings_done"), encoding="utf-8")
    database = tmp_path / "geoapp.gpkg"
    shutil.copy(demo_gpkg, database)
    with pytest.raises(LayerError, match=r"figures/public\.yaml: counter hoardings: unknown figure"):
        create_app({"TESTING": True, "SECRET_KEY": "x", "GEOAPP_DATABASE": str(database), "GEOAPP_LAYERS": str(layers)})
