"""The cases pages in headless Chromium: the public reports a problem on a phone (a tap places the pin) and follows
it by its reference; a dispatcher sees it held for moderation, and the indicators page draws the grid cells and
the heat map without a console error. Screenshots are saved at the phone's and the desk's viewports."""

from __future__ import annotations

import re

from geoapp.store import open_store
from tests.browser.conftest import sign_in
from tests.conftest import PASSWORD, SETUP

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
DESK = {"viewport": {"width": 1400, "height": 900}}
CASES_READY = "() => window.geoapp && window.geoapp.state && window.geoapp.state.ready"


def test_the_public_reports_from_a_phone_and_a_dispatcher_sees_it_held(
    contexts, live_server, hostile_store, registry, password_hash, shots
):
    store = open_store(registry, str(hostile_store[0]))
    try:
        if store.user("centre") is None:
            store.add_user("centre", password_hash, ("dispatcher",), actor=SETUP)
    finally:
        store.close()
    phone = contexts(**PHONE)
    page = phone.page
    page.goto(f"{live_server}/report")
    page.wait_for_selector(".leaflet-container")
    box = page.locator(".geoapp-problem-map .leaflet-container").bounding_box()
    page.touchscreen.tap(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    assert page.input_value("input[name=lon]") and page.input_value("input[name=lat]")
    page.select_option("select[name=subcategory]", "street_light")
    page.fill("textarea[name=description]", "路灯三天不亮<img src=x onerror=window.__pwned=1>")
    phone.screenshot(shots, "report-phone")
    page.click(".geoapp-report-form button[type=submit]")
    reference = page.locator(".geoapp-reference").inner_text()
    assert re.fullmatch(r"R[0-9A-Z]{5}-[0-9A-Z]{5}", reference)
    phone.screenshot(shots, "report-sent-phone")
    page.click("text=查询处理进度")
    assert "等待审核" in page.locator(".geoapp-follow-state").inner_text()
    phone.screenshot(shots, "report-follow-phone")
    assert not phone.console_errors and not phone.dialogs
    assert page.evaluate("window.__pwned") is None

    desk = contexts(**DESK)
    sign_in(desk, live_server, "centre", PASSWORD)
    desk.page.goto(f"{live_server}/cases/queue")
    held = desk.page.locator(f"[data-reference='{reference}']")
    assert "路灯三天不亮<img" in held.inner_text()  # shown to staff as text, never as markup
    desk.screenshot(shots, "queue-desk")
    desk.page.goto(f"{live_server}/cases?shade=close_rate")
    desk.page.wait_for_function(CASES_READY, timeout=30_000)
    state = desk.page.evaluate("() => ({cells: window.geoapp.state.cells, heat: window.geoapp.state.heatPoints})")
    assert state["cells"] > 1000 and state["heat"] > 14000
    assert desk.page.locator(".geoapp-indicators tbody tr").count() == 6  # the six squads
    desk.screenshot(shots, "cases-desk")
    assert not desk.console_errors, desk.console_errors
    assert not desk.outside
