"""The full edit form in a popup of the one map, in real Chromium: a planner meets the bureau's rules as they
choose (已整治 needs 整治日期 and 拆后处理; the Chinese message names the field), saves them, steps back to 整治中
(the date is gone), and deletes a feature after confirming inside the popup (no browser dialog).

One live server on its own copy of the demo district (GeoPackage: the rules themselves are checked on both
backends in tests/test_rules.py); the hoardings' notes are declared ``multiline`` (a text area in the form).
The helpers are tests/browser/test_editing.py's.
"""

from __future__ import annotations

import pytest

from tests.browser.conftest import serve, sign_in
from tests.browser.test_editing import (
    PASSWORD,
    _add_users,
    _clean,
    _feature,
    _open_map,
    _open_popup,
    _popup_saying,
    _quiet_features,
)
from tests.conftest import stop_server

HOARDINGS = "construction_hoardings"


@pytest.fixture(scope="module")
def forms_site(tmp_path_factory, demo_copy, registry):
    root = tmp_path_factory.mktemp("forms")
    assert registry[HOARDINGS].field("notes").multiline  # the form shows a text area for it
    _add_users(demo_copy)
    proc, base = serve(demo_copy, root / "gunicorn.log", GEOAPP_BASEMAP="none")
    yield base, _quiet_features(base, registry, HOARDINGS, "Polygon", 2)
    stop_server(proc)


def _row(popup, name: str):
    return popup.locator(f'.geoapp-form-row[data-field="{name}"]')


def test_a_planner_meets_the_rules_in_the_popup_form_saves_and_steps_back(forms_site, contexts, shots):
    base, quiet = forms_site
    fid, lon, lat = quiet[0]
    before = _feature(base, HOARDINGS, fid)
    planner = contexts()
    page = sign_in(planner, base, "plan", PASSWORD)
    _open_map(page, base, lon, lat)
    _open_popup(page, lon, lat)
    popup = page.locator(".leaflet-popup-content").last  # the newest: a refetch may reopen it (see below)
    # every editable field, with the input its type calls for; the computed length read-only
    assert popup.locator("select.geoapp-status-select option").all_inner_texts() == [
        "待整治",
        "整治中",
        "已整治",
        "未停工",
    ]
    assert _row(popup, "removed_on").locator("input").get_attribute("type") == "date"
    assert _row(popup, "notes").locator("textarea").count() == 1
    assert (
        _row(popup, "length_m").locator("input, select").count() == 0
        and "由图形计算" in _row(popup, "length_m").inner_text()
    )
    assert _row(popup, "removed_on").locator(".geoapp-required").is_hidden()

    # choosing 已整治 marks the date and the treatment as required and says why
    popup.locator("select.geoapp-status-select").select_option("removed")
    for name in ("removed_on", "treatment"):
        assert _row(popup, name).locator(".geoapp-required").is_visible()
    assert "已整治的围挡须填写整治日期和拆后处理" in popup.locator(".geoapp-rule-notice").inner_text()
    popup.locator("button.geoapp-save").click()
    error = _row(popup, "removed_on").locator(".geoapp-field-error")
    error.wait_for()
    planner.screenshot(shots, "forms-refused")
    assert error.inner_text() == "请填写“整治日期”：已整治的围挡须填写整治日期和拆后处理"
    assert _feature(base, HOARDINGS, fid)["version"] == before["version"]  # nothing written

    # with the date and the treatment it saves; the popup comes back with them
    _row(popup, "removed_on").locator("input").fill("2023-11-05")
    _row(popup, "treatment").locator("select").select_option("greened")
    popup.locator("button.geoapp-save").click()
    saved = _popup_saying(page, "ok")
    assert saved.locator(".geoapp-edit-message").inner_text() == "已保存"
    assert _row(saved, "removed_on").locator("input").input_value() == "2023-11-05"
    after = _feature(base, HOARDINGS, fid)
    assert after["properties"]["status"] == "removed" and after["properties"]["treatment"] == "greened"
    assert after["version"] == before["version"] + 1

    # a step back to 整治中 says what it empties; saved, the date and the treatment are gone
    # (the newest popup: a refetch of the layer may reopen it, and the closed one fades out for a moment)
    current = page.locator(".leaflet-popup-content").last
    current.locator("select.geoapp-status-select").select_option("in_progress")
    assert "将清空：整治日期、拆后处理" in current.locator(".geoapp-rule-notice").inner_text()
    assert _row(current, "removed_on").locator("input").is_disabled()
    planner.screenshot(shots, "forms-step-back")
    current.locator("button.geoapp-save").click()
    # the popup comes back from the refetched layer: its date input empty (the old one still held the date)
    date = ".leaflet-popup-content .geoapp-form-row[data-field=removed_on] input"
    page.wait_for_function(f"() => {{ const i = document.querySelector('{date}'); return i && i.value === ''; }}")
    assert _popup_saying(page, "ok").locator(".geoapp-edit-message").inner_text() == "已保存"
    stepped = _feature(base, HOARDINGS, fid)
    assert stepped["properties"]["status"] == "in_progress"
    assert stepped["properties"]["removed_on"] is None and stepped["properties"]["treatment"] is None
    _clean(planner, expected_status=400)


def test_a_planner_deletes_a_feature_after_confirming_in_the_popup(forms_site, contexts, shots):
    base, quiet = forms_site
    fid, lon, lat = quiet[1]
    planner = contexts()
    page = sign_in(planner, base, "plan", PASSWORD)
    _open_map(page, base, lon, lat)
    _open_popup(page, lon, lat)
    popup = page.locator(".leaflet-popup-content").last  # the newest: a refetch may reopen it (see below)
    popup.locator("button.geoapp-delete").click()
    step = popup.locator(".geoapp-delete-step")
    step.wait_for()
    planner.screenshot(shots, "forms-delete-step")
    assert "确定删除此要素" in step.inner_text()
    # cancelling asks nothing and deletes nothing
    step.locator("button.geoapp-cancel").click()
    assert step.is_hidden() and popup.locator("button.geoapp-delete").is_visible()
    popup.locator("button.geoapp-delete").click()
    step.locator("button.geoapp-delete-confirm").click()
    # the layer is fetched again without it (the view has not moved: it was there before)
    page.wait_for_function(f"() => !window.geoapp.state.layers.{HOARDINGS}.find({fid})")
    page.locator(".leaflet-popup").wait_for(state="detached")  # closed (it fades out), not reopened
    assert "要素已删除" in page.locator(".geoapp-status").text_content()
    response = page.request.get(f"{base}/api/layers/{HOARDINGS}/features/{fid}")
    assert response.status == 404
    _clean(planner, expected_status=404)
