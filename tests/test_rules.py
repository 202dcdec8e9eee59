"""The bureau's rules between fields (layers/*.yaml ``rules:``) and the validation messages people read.

The rules hold on every insert and update, through the real API and through the use case, on both store
backends: a hoarding set to 已整治 needs its date and treatment, set back to 整治中 it loses them (and the
audit trail shows them emptied); a fixed manhole cover needs its date. Every message of validation exists in
Chinese and English, built from the field's label, the allowed values' labels and the field's hint, never the
pattern; an API caller that states no language reads English, a page or a caller that states one reads
theirs. Last, the archive page's full edit form: every field, the message beside the field, delete.
"""

from __future__ import annotations

import re

import lxml.html
import pytest
import shapely

from geoapp.core import messages
from geoapp.core.layers import Layer
from geoapp.core.validate import prepare
from geoapp.errors import InvalidFeature
from geoapp.store.base import Actor
from geoapp.web import create_app, maps
from tests.conftest import CHEAP_ARGON2, SETUP, demo_copy_in, login

HOARDINGS = "construction_hoardings"
COVERS = "manhole_covers"
STREETS = "backstreet_repairs"
API = "/api/layers"
PLANNER = Actor("planner1", "user", roles=frozenset({"planner"}))
#: what a regular expression looks like; no message may show one
REGEX = re.compile(r"[\^$]|\[0-9\]|\{\d+(,\d*)?\}|\\d")
CLOSED = {"status": "closed"}
LINE = {"type": "LineString", "coordinates": [[113.300, 33.730], [113.301, 33.7302]]}


@pytest.fixture(scope="module")
def site(backend, request, tmp_path_factory, password_hash):
    """One app per backend on its own copy of the demo district, with a planner and a viewer."""
    with demo_copy_in(backend, tmp_path_factory.mktemp("rules"), request) as copy:
        app = create_app(
            {
                "TESTING": True,
                "SECRET_KEY": "test-secret",
                "GEOAPP_DATABASE": str(copy),
                "ARGON2_PARAMETERS": CHEAP_ARGON2,
            }
        )
        store = app.extensions["geoapp"].store
        store.add_user("planner1", password_hash, ("planner",), actor=SETUP)
        store.add_user("viewer1", password_hash, ("viewer",), actor=SETUP)
        yield app
        app.extensions["geoapp"].close()


def _planner(app):
    client = app.test_client()
    _, csrf = login(client, "planner1")
    return client, csrf


def _first(client, layer: str, status: str) -> dict:
    page = client.get(f"{API}/{layer}/features?status={status}&limit=1").json
    return client.get(f"{API}/{layer}/features/{page['features'][0]['id']}").json


def _patch(client, csrf, layer: str, feature: dict, properties: dict, **headers):
    return client.patch(
        f"{API}/{layer}/features/{feature['id']}",
        json={"properties": properties},
        headers={"X-CSRFToken": csrf, "If-Match": f'"{feature["version"]}"', **headers},
    )


@pytest.mark.backends("gpkg", "postgis")
def test_the_rules_hold_on_every_change_through_the_api_and_the_use_case(site):
    client, csrf = _planner(site)
    hoarding = _first(client, HOARDINGS, "in_progress")
    url = f"{API}/{HOARDINGS}/features/{hoarding['id']}"

    # 已整治 with no date is refused, naming the date; with the date but no treatment, naming the treatment
    refused = _patch(client, csrf, HOARDINGS, hoarding, {"status": "removed"})
    assert refused.status_code == 400
    error = refused.json["error"]
    assert error == {
        "code": "invalid_feature",
        "parameter": "removed_on",
        "message": "Removed on is required: A removed hoarding needs the date of removal and the after-removal "
        "treatment",
    }
    refused = _patch(client, csrf, HOARDINGS, hoarding, {"status": "removed", "removed_on": "2023-11-02"})
    assert refused.status_code == 400 and refused.json["error"]["parameter"] == "treatment"
    assert client.get(url).json == hoarding  # nothing was written
    saved = _patch(
        client, csrf, HOARDINGS, hoarding, {"status": "removed", "removed_on": "2023-11-02", "treatment": "greened"}
    )
    assert saved.status_code == 200, saved.json
    removed = saved.json
    assert removed["properties"]["removed_on"] == "2023-11-02" and removed["version"] == hoarding["version"] + 1

    # a step back to 整治中 empties the date and the treatment, and the audit trail shows them emptied
    back = _patch(client, csrf, HOARDINGS, removed, {"status": "in_progress"})
    assert back.status_code == 200, back.json
    assert back.json["properties"]["removed_on"] is None and back.json["properties"]["treatment"] is None
    assert client.get(url).json["properties"]["removed_on"] is None
    latest = client.get(f"{url}/history").json["history"][-1]
    assert latest["changes"]["status"] == ["removed", "in_progress"]
    assert latest["changes"]["removed_on"] == ["2023-11-02", None]
    assert latest["changes"]["treatment"] == ["greened", None]

    # a fixed manhole cover needs the day it was fixed, and loses it when set back to be fixed
    cover = _first(client, COVERS, "to_fix")
    refused = _patch(client, csrf, COVERS, cover, {"status": "fixed"})
    assert refused.status_code == 400 and refused.json["error"]["parameter"] == "fixed_on"
    assert "Fixed on is required" in refused.json["error"]["message"]
    fixed = _patch(client, csrf, COVERS, cover, {"status": "fixed", "fixed_on": "2023-12-01"})
    assert fixed.status_code == 200 and fixed.json["properties"]["fixed_on"] == "2023-12-01"
    again = _patch(client, csrf, COVERS, fixed.json, {"status": "to_fix"})
    assert again.json["properties"]["fixed_on"] is None

    # a repaired street set back to works loses its completion date and keeps its measured area (``keep``)
    street = _first(client, STREETS, "repaired")
    area = street["properties"]["repaired_area_m2"]
    assert area and street["properties"]["completed_on"]
    works = _patch(client, csrf, STREETS, street, {"status": "under_works"})
    assert works.json["properties"]["completed_on"] is None and works.json["properties"]["repaired_area_m2"] == area

    # on insert too: a new removed hoarding needs its date; a new pending one keeps no removal date
    new = {"type": "Feature", "geometry": LINE, "properties": {"site": "规则测试", "agency": "housing"}}
    headers = {"X-CSRFToken": csrf}
    refused = client.post(f"{API}/{HOARDINGS}/features", json=_with(new, status="removed"), headers=headers)
    assert refused.status_code == 400 and refused.json["error"]["parameter"] == "removed_on"
    made = client.post(f"{API}/{HOARDINGS}/features", json=_with(new, removed_on="2023-05-05"), headers=headers)
    assert made.status_code == 201 and made.json["properties"]["removed_on"] is None

    # the use case says the same, in both languages, without HTTP
    editing = site.extensions["geoapp"].editing
    current = client.get(url).json
    with pytest.raises(InvalidFeature) as info:
        editing.update(PLANNER, HOARDINGS, current["id"], version=current["version"], properties={"status": "removed"})
    assert info.value.parameter == "removed_on"
    assert info.value.text.both() == {
        "zh": "请填写“整治日期”：已整治的围挡须填写整治日期和拆后处理",
        "en": "Removed on is required: A removed hoarding needs the date of removal and the after-removal treatment",
    }
    changed = editing.update(
        PLANNER,
        HOARDINGS,
        current["id"],
        version=current["version"],
        properties={"status": "removed", "removed_on": "2023-11-03", "treatment": "levelled"},
    )
    stepped = editing.update(
        PLANNER, HOARDINGS, current["id"], version=changed.version, properties={"status": "under_construction"}
    )
    assert stepped.properties["removed_on"] is None and stepped.properties["treatment"] is None


def _with(feature: dict, **properties) -> dict:
    return {**feature, "properties": {**feature["properties"], **properties}}


def _refusal(layer: Layer, properties: dict, geometry=None) -> InvalidFeature:
    geometry = geometry if geometry is not None else shapely.LineString([(113.300, 33.730), (113.301, 33.7302)])
    with pytest.raises(InvalidFeature) as info:
        prepare(layer, [properties], [geometry], "EPSG:4547")
    return info.value


def test_every_validation_message_is_in_both_languages_in_the_users_words(registry):
    hoardings, covers, streets = registry[HOARDINGS], registry[COVERS], registry[STREETS]
    base = {"site": "某处", "agency": "housing"}
    status = _refusal(hoardings, {**base, "status": "done"})
    # the example, word for word
    assert status.text.both() == {
        "zh": "“状态”须为以下之一：待整治、整治中、已整治、未停工",
        "en": "Status must be one of: Pending, In progress, Removed, Still under construction",
    }
    # a pattern is said by the field's hint, never shown as the regex
    code = _refusal(covers, {"code": "12", "kind": "storm"}, shapely.Point(113.3, 33.73))
    assert code.parameter == "code"
    assert code.text.both() == {
        "zh": "“部件编码”须为16位数字（6位行政区划代码、2位大类、2位小类、6位序号）",
        "en": "Component code must be 16 digits (6 of the admin code, 2 of the class, 2 of the subclass, 6 of the "
        "serial)",
    }
    assert "^[0-9]{16}$" not in code.message
    # (properties, geometry, parameter, words each language must hold)
    cases = [
        ({**base, "colour": "red"}, None, "colour", ("“建筑围挡”没有字段", "has no field")),
        ({**base, "length_m": 3}, None, "length_m", ("“围挡长度”由图形计算得出", "Length is computed")),
        ({"agency": "housing"}, None, "site", ("请填写“点位”", "Site is required")),
        ({**base, "site": "  "}, None, "site", ("“点位”为必填项", "Site is required")),
        ({**base, "site": 5}, None, "site", ("“点位”须为文字", "Site must be text")),
        ({**base, "notes": "x" * 2001}, None, "notes", ("“备注”最多 2000 个字符", "Notes must be at most 2000")),
        ({**base, "notes": "a\x00b"}, None, "notes", ("“备注”不能含控制字符", "Notes must not contain control")),
        ({**base, "agency": "police"}, None, "agency", ("城管局、住建局", "Urban Management Bureau, Housing")),
        ({**base, "due_on": "June"}, None, "due_on", ("“整治期限”须为日期", "Due by must be a date")),
        ({**base, "status": "removed"}, None, "removed_on", ("已整治的围挡须填写整治日期", "Removed on is required")),
        (
            base,
            shapely.Point(113.3, 33.73),
            "geometry",
            ("须为面或线，不能是点", "must be an area or a line, not a point"),
        ),
        (base, shapely.LineString([(500, 33.7), (501, 33.8)]), "geometry", ("经纬度", "longitude and latitude")),
        (
            base,
            shapely.Polygon([(113.3, 33.7), (113.31, 33.71), (113.31, 33.7), (113.3, 33.71)]),
            "geometry",
            ("图形无效：边线相互交叉", "The shape is not valid: its edges cross each other"),
        ),
        (base, shapely.LineString(), "geometry", ("须有图形（面或线）", "A shape is required (an area or a line)")),
    ]
    street = {"road_name": "某巷", "agency": "housing"}
    for properties, geometry, parameter, (zh, en) in cases:
        refused = _refusal(hoardings, properties, geometry)
        assert refused.parameter == parameter, properties
        assert zh in refused.text("zh") and en in refused.text("en"), refused.text.both()
    numbers = [
        ({**street, "repaired_area_m2": -1}, "“修复面积”不能小于 0 m²", "Repaired area must be at least 0 m²"),
        ({**street, "repaired_area_m2": "wide"}, "“修复面积”须为数字", "Repaired area must be a number"),
        ({**street, "status": "repaired"}, "请填写“完工日期”", "Completed on is required"),
    ]
    for properties, zh, en in numbers:
        refused = _refusal(streets, properties)
        assert zh in refused.text("zh") and en in refused.text("en"), refused.text.both()
    # a layer of this test's own, for what no layer file declares: a maximum, a whole number, a yes/no, a
    # rule without a note, and the position of a feature among several
    layer = Layer.model_validate(
        {
            "id": "test_points",
            "title": {"zh": "测试点", "en": "Test points"},
            "group": "base",
            "geometry": ["Point"],
            "title_field": "name",
            "fields": [
                {"name": "name", "type": "string", "label": {"zh": "名称", "en": "Name"}},
                {"name": "floors", "type": "integer", "max": 30, "label": {"zh": "层数", "en": "Floors"}},
                {"name": "open", "type": "boolean", "label": {"zh": "开放", "en": "Open"}},
                {"name": "checked_on", "type": "date", "label": {"zh": "检查日期", "en": "Checked on"}},
            ],
            "rules": [{"when": {"open": "true"}, "require": ["checked_on"]}],
        }
    )
    point = shapely.Point(113.3, 33.73)
    said = {
        "floors=31": ({"floors": 31}, "“层数”不能大于 30", "Floors must be at most 30"),
        "floors=2.5": ({"floors": 2.5}, "“层数”须为整数", "Floors must be a whole number"),
        "open=maybe": ({"open": "maybe"}, "“开放”须为“是”或“否”", "Open must be yes or no"),
        "rule": ({"open": True}, "“开放”为“是”时须填写“检查日期”", "Checked on is required when Open is yes"),
    }
    for name, (properties, zh, en) in said.items():
        refused = _refusal(layer, properties, point)
        assert zh in refused.text("zh") and en in refused.text("en"), (name, refused.text.both())
    with pytest.raises(InvalidFeature) as info:
        prepare(layer, [{"name": "a"}, {"floors": 99}], [point, point], "EPSG:4547")
    assert info.value.text.both() == {"zh": "要素 1：“层数”不能大于 30", "en": "Feature 1: Floors must be at most 30"}
    assert info.value.message == "feature 1: 'floors' must be at most 30"  # the short English of logs and the CLI


def test_the_message_templates_are_data_in_both_languages_and_show_no_regex():
    for key, template in messages.TEMPLATES.items():
        assert set(template) == set(messages.LANGUAGES), key
        names = [set(re.findall(r"\{(\w+)\}", template[lang])) for lang in messages.LANGUAGES]
        assert names[0] == names[1], key  # both languages say the same things
        assert not REGEX.search(template["zh"] + template["en"]), key
    assert not REGEX.search(messages.message("pattern", label="x", hint="y")("zh"))
    with pytest.raises(KeyError):
        messages.message("no_such_message")


def test_the_map_config_carries_the_rules_and_what_the_forms_need(registry):
    staff = maps.layer_config(registry[HOARDINGS], "zh", True, ("是", "否"))
    assert staff["rules"] == [
        {
            "when": {"status": ["removed"]},
            "require": ["removed_on", "treatment"],
            "clear": [],
            "keep": [],
            "note": "已整治的围挡须填写整治日期和拆后处理",
        },
        {
            "when": {"status": ["pending", "in_progress", "under_construction"]},
            "require": [],
            "clear": ["removed_on", "treatment"],
            "keep": [],
            "note": "退回未整治状态时清空整治日期和拆后处理",
        },
    ]
    fields = {f["name"]: f for f in staff["fields"]}
    assert fields["contractor"]["visibility"] == "internal" and fields["site"]["maxLength"] == 2000
    code = {f["name"]: f for f in maps.layer_config(registry[COVERS], "en", False, ("", ""))["fields"]}["code"]
    assert code["hint"].startswith("16 digits") and "pattern" not in code
    area = {f["name"]: f for f in maps.layer_config(registry[STREETS], "en", False, ("", ""))["fields"]}
    assert area["repaired_area_m2"]["min"] == 0 and area["repaired_area_m2"]["max"] is None


def test_api_callers_read_english_unless_they_state_a_language_pages_read_theirs(site):
    client, csrf = _planner(site)
    hoarding = _first(client, HOARDINGS, "pending")
    english = "Removed on is required"
    chinese = "请填写“整治日期”"
    asked = {
        "no language stated": ({}, "", english),
        "Accept-Language en": ({"Accept-Language": "en-GB"}, "", english),
        "Accept-Language zh": ({"Accept-Language": "zh-CN,zh;q=0.9"}, "", chinese),
        "?lang=zh (remembered in the cookie from here on)": ({}, "?lang=zh", chinese),
        "the cookie": ({}, "", chinese),
    }
    url = f"{API}/{HOARDINGS}/features/{hoarding['id']}"
    for case, (headers, query, words) in asked.items():
        response = client.patch(
            url + query,
            json={"properties": {"status": "removed"}},
            headers={"X-CSRFToken": csrf, "If-Match": f'"{hoarding["version"]}"', **headers},
        )
        assert response.status_code == 400 and response.json["error"]["parameter"] == "removed_on", case
        assert response.json["error"]["message"].startswith(words), (case, response.json)
    shape = {"type": "LineString", "coordinates": [[120.0, 30.0], [120.01, 30.0]]}
    response = client.patch(
        url,
        json={"geometry": shape},
        headers={"X-CSRFToken": csrf, "If-Match": f'"{hoarding["version"]}"'},
    )
    assert response.json["error"] == {
        "code": "invalid_feature",
        "parameter": "geometry",
        "message": "图形超出本区范围（距区界超过 2000 米）",
    }
    # a flood closure owns the underpasses' closed status: that refusal is in both languages too
    culvert = client.get(f"{API}/underpass_culverts/features?status=open&limit=1").json["features"][0]
    commander = site.extensions["geoapp"].editing
    boss = Actor("boss", "user", roles=frozenset({"admin"}))
    with pytest.raises(InvalidFeature) as info:
        commander.update(boss, "underpass_culverts", culvert["id"], version=culvert["version"], properties=CLOSED)
    assert "只能通过封闭或解除封闭" in info.value.text("zh") and "“封闭”" in info.value.text("zh")
    assert "closing or reopening" in info.value.text("en")


# -- the archive page's full edit form --------------------------------------------------------------------


def _page(client, url: str):
    response = client.get(url)
    assert response.status_code == 200
    return lxml.html.fromstring(response.get_data(as_text=True))


def _form_data(doc, **values) -> dict:
    form = doc.xpath("//form[contains(@class, 'geoapp-status-form')]")[0]
    data = {i.get("name"): i.get("value") or "" for i in form.xpath(".//input[@name]") if i.get("type") != "submit"}
    for select in form.xpath(".//select[@name]"):
        chosen = select.xpath("option[@selected]")
        data[select.get("name")] = chosen[0].get("value") if chosen else select.xpath("option")[0].get("value")
    for area in form.xpath(".//textarea[@name]"):
        data[area.get("name")] = area.text or ""
    data.update(values)
    return data


def test_the_archive_page_has_the_full_form_with_messages_beside_the_field_and_delete(site):
    client, _ = _planner(site)
    hoarding = _first(client, HOARDINGS, "pending")
    fid = hoarding["id"]
    page = f"/features/{HOARDINGS}/{fid}"
    doc = _page(client, page)
    form = doc.xpath("//form[contains(@class, 'geoapp-status-form')]")[0]
    kinds = {node.get("name"): (node.tag, node.get("type")) for node in form.xpath(".//*[@name]")}
    assert kinds["site"] == ("input", "text") and kinds["due_on"] == ("input", "date")
    assert kinds["status"][0] == kinds["agency"][0] == kinds["treatment"][0] == "select"
    assert "length_m" not in kinds and "由图形计算" in form.text_content()  # computed: shown, not sent
    status_options = [o.text for o in form.xpath(".//select[@name='status']/option")]
    assert status_options == ["待整治", "整治中", "已整治", "未停工"]
    assert [o.text for o in form.xpath(".//select[@name='treatment']/option")] == ["—", "平整", "绿化"]
    assert "已整治的围挡须填写整治日期和拆后处理" in form.text_content()  # the rules, as their notes say them

    # 已整治 with no date: the page again, 400, the Chinese message beside 整治日期, what was chosen kept
    refused = client.post(f"{page}/status", data=_form_data(doc, status="removed"))
    assert refused.status_code == 400
    again = lxml.html.fromstring(refused.get_data(as_text=True))
    (row,) = again.xpath("//div[@data-field='removed_on']")
    assert (
        row.xpath(".//p[contains(@class, 'geoapp-field-error')]")[0].text_content()
        == "请填写“整治日期”：已整治的围挡须填写整治日期和拆后处理"
    )
    assert row.xpath(".//input")[0].get("aria-invalid") == "true"
    assert again.xpath("//select[@name='status']/option[@selected]")[0].get("value") == "removed"
    assert again.xpath("//details[contains(@class, 'geoapp-edit-details')]")[0].get("open") is not None
    assert client.get(f"{API}/{HOARDINGS}/features/{fid}").json == hoarding  # nothing written
    client.set_cookie("lang", "en")
    english = lxml.html.fromstring(client.post(f"{page}/status", data=_form_data(doc, status="removed")).data)
    assert (
        english.xpath("//p[contains(@class, 'geoapp-field-error')]")[0]
        .text_content()
        .startswith("Removed on is required: ")
    )
    client.set_cookie("lang", "zh")

    # with the date and the treatment: saved, and only what changed was sent to the use case
    saved = client.post(
        f"{page}/status", data=_form_data(doc, status="removed", removed_on="2023-09-09", treatment="levelled")
    )
    assert saved.status_code == 302
    after = client.get(f"{API}/{HOARDINGS}/features/{fid}").json
    assert [after["properties"][k] for k in ("status", "removed_on", "treatment")] == [
        "removed",
        "2023-09-09",
        "levelled",
    ]
    latest = client.get(f"{API}/{HOARDINGS}/features/{fid}/history").json["history"][-1]
    assert set(latest["changes"]) == {"status", "removed_on", "treatment"}
    assert "修改已保存" in client.get(page).get_data(as_text=True)

    # delete: a confirming step in the page, at the version read (a stale one is a conflict), then gone
    doc = _page(client, page)
    step = doc.xpath("//details[contains(@class, 'geoapp-delete-details')]//form")[0]
    data = {i.get("name"): i.get("value") for i in step.xpath(".//input[@name]")}
    assert int(data["version"]) == after["version"]
    stale = client.post(step.get("action"), data={**data, "version": str(after["version"] - 1)})
    assert stale.status_code == 409 and "其他人修改" in stale.get_data(as_text=True)
    viewer = site.test_client()
    _, token = login(viewer, "viewer1")
    assert "geoapp-status-form" not in viewer.get(page).get_data(as_text=True)
    assert viewer.post(step.get("action"), data={**data, "csrf_token": token}).status_code == 403
    assert viewer.post(f"{page}/status", data={**data, "csrf_token": token, "status": "in_progress"}).status_code == 403
    gone = client.post(step.get("action"), data=data)
    assert gone.status_code == 200 and "已删除" in gone.get_data(as_text=True)
    assert client.get(f"{API}/{HOARDINGS}/features/{fid}").status_code == 404
