"""The planners' progress page (/progress) in headless Chromium, on a live gunicorn with its own demo district.

The tests wait for what the page shows (never for a time). The figures they expect are the work report's, which the
demo district follows: 43 hoardings, 28 removed (19 by 城管局, 9 by 住建局), six past their target date (the three
pending and the three in progress at the edge of 新华区; the nine still under construction have none).
"""

from __future__ import annotations

import itertools
import json
import re
import urllib.request
from urllib.parse import parse_qs, urlsplit

import pytest

from geoapp.web import create_app
from tests.browser.conftest import serve, sign_in
from tests.conftest import stop_server

PASSWORD = "progress-page-password-1"
USERS = {"plan": ("planner",), "view": ("viewer",)}
#: a planner's desk
VIEWPORT = {"width": 1400, "height": 900}
PHONE = {"width": 390, "height": 844}
WAIT = 30_000
HOARDINGS = "construction_hoardings"
# the table and the map's set have arrived
READY = (
    "() => window.geoapp && window.geoapp.state && window.geoapp.state.loads > 0"
    " && window.geoapp.state.mapRows !== null"
)
OVERDUE_RED = "rgb(253, 236, 234)"


def _cli(database, *args: str, stdin: str | None = None) -> str:
    app = create_app({"GEOAPP_DATABASE": str(database), "SECRET_KEY": "test"})
    try:
        result = app.test_cli_runner().invoke(args=["geoapp", *args], input=stdin)
        assert result.exit_code == 0, result.output
        return result.output
    finally:
        app.extensions["geoapp"].close()


@pytest.fixture(scope="module")
def site(demo_copy, tmp_path_factory):
    """A live server on its own copy of the demo district, with a planner and a viewer."""
    for name, roles in USERS.items():
        roles_args = [a for role in roles for a in ("--role", role)]
        _cli(demo_copy, "user", "add", name, *roles_args, "--password-stdin", stdin=PASSWORD + "\n")
    proc, base = serve(demo_copy, tmp_path_factory.mktemp("progress") / "gunicorn.log", GEOAPP_BASEMAP="none")
    yield base
    stop_server(proc)


def _get(base: str, path: str):
    with urllib.request.urlopen(f"{base}{path}", timeout=30) as response:
        return json.load(response)


def _open(watched, base: str, name: str, query: str = ""):
    page = sign_in(watched, base, name, PASSWORD)
    page.goto(f"{base}/progress{query}")
    page.wait_for_function(READY, timeout=WAIT)
    return page


def _reloaded(page, act) -> None:
    """Do ``act()`` and wait until the table has been asked for again and shown."""
    before = page.evaluate("() => window.geoapp.state.loads")
    act()
    page.wait_for_function("(n) => window.geoapp.state.loads > n", arg=before, timeout=WAIT)


def _kpi(page, name: str) -> str:
    return page.locator(f".geoapp-kpi-{name} .geoapp-kpi-value").inner_text()


def _query(page) -> dict[str, list[str]]:
    return parse_qs(urlsplit(page.url).query)


def _clean(*watched) -> None:
    for w in watched:
        assert w.console_errors == [], w.console_errors
        assert w.outside == [], "requests left 127.0.0.1"
        assert w.dialogs == []


def test_the_table_follows_its_filters_and_the_map_and_marks_what_is_overdue(site, contexts, shots):
    base = site
    watched = contexts()
    page = _open(watched, base, "view")
    rows = page.locator(".geoapp-rows tbody tr")
    assert rows.count() == 43
    assert page.locator(".geoapp-rows-message").inner_text() == "第 1–43 条，共 43 条"
    assert (_kpi(page, "total"), _kpi(page, "done"), _kpi(page, "share")) == ("43", "28", "65.1 %")
    assert page.locator('.geoapp-by-status li[data-status="removed"] .geoapp-bar-count').inner_text() == "28"
    by_agency = '.geoapp-bars[data-field="agency"] li[data-value="{}"] .geoapp-bar-count'
    assert page.locator(by_agency.format("urban_management")).inner_text().startswith("19/")
    assert page.locator(by_agency.format("housing")).inner_text().startswith("9/")
    months = page.locator(".geoapp-month-count").all_inner_texts()
    assert len(months) >= 6 and sum(map(int, months)) == 28
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d", page.locator(".geoapp-asof").inner_text())

    # overdue: highlighted with a badge in the table, marked on the map, counted in the figures
    overdue = page.locator('.geoapp-rows tbody tr[data-overdue="true"]')
    assert overdue.count() == int(_kpi(page, "overdue")) == 6
    assert overdue.first.locator(".geoapp-overdue-badge").inner_text() == "逾期"
    assert overdue.first.evaluate("tr => getComputedStyle(tr).backgroundColor") == OVERDUE_RED
    on_time = page.locator(".geoapp-rows tbody tr:not([data-overdue])").first
    assert on_time.evaluate("tr => getComputedStyle(tr).backgroundColor") != OVERDUE_RED
    assert on_time.locator(".geoapp-overdue-badge").count() == 0
    assert page.locator(".leaflet-marker-pane .geoapp-overdue-mark").count() == 6

    # sortable: a click on a header sorts by it, a second the other way round
    header = page.locator('.geoapp-rows th[data-field="removed_on"]')
    _reloaded(page, header.locator("button").click)
    assert header.get_attribute("aria-sort") == "ascending"
    dates = page.evaluate("() => window.geoapp.state.answer.rows.map(r => r.properties.removed_on).filter(Boolean)")
    assert len(dates) == 28 and dates == sorted(dates)
    _reloaded(page, header.locator("button").click)
    assert header.get_attribute("aria-sort") == "descending"
    assert page.locator('.geoapp-rows th[data-field="site"]').get_attribute("aria-sort") == "none"
    dates = page.evaluate("() => window.geoapp.state.answer.rows.map(r => r.properties.removed_on).filter(Boolean)")
    assert len(dates) == 28 and dates == sorted(dates, reverse=True)
    assert _query(page)["sort"] == ["removed_on"] and _query(page)["order"] == ["desc"]

    # filter by status: 28 rows, all removed, on the map too; the link and the ledgers follow
    _reloaded(page, lambda: page.select_option("select[name=status]", "removed"))
    assert page.locator(".geoapp-rows-message").inner_text() == "第 1–28 条，共 28 条"
    assert rows.count() == 28
    assert set(page.locator(".geoapp-rows tbody .geoapp-chip").all_inner_texts()) == {"已整治"}
    page.wait_for_function("() => window.geoapp.state.layer.target.getLayers().length === 28", timeout=WAIT)
    assert _query(page)["status"] == ["removed"] and _query(page)["layer"] == [HOARDINGS]
    xlsx = page.locator(".geoapp-export-xlsx").get_attribute("href")
    assert xlsx.startswith(f"/api/progress/{HOARDINGS}/ledger.xlsx?") and "status=removed" in xlsx
    assert "offset" not in xlsx and "limit" not in xlsx
    english = page.locator('.geoapp-lang a[lang="en"]').get_attribute("href")
    assert "status=removed" in english and "lang=en" in english  # the other language keeps the view

    # a click on a row flies the map there and opens that feature's popup
    third = page.evaluate("() => window.geoapp.state.answer.rows[2]")
    rows.nth(2).click()
    popup = page.locator(".leaflet-popup-content .geoapp-popup")
    popup.wait_for(timeout=WAIT)
    assert popup.locator("h3").inner_text() == third["properties"]["site"]
    assert rows.nth(2).get_attribute("aria-selected") == "true"
    assert page.evaluate("() => window.geoapp.state.map.getZoom()") >= 17
    assert popup.locator(".geoapp-popup-edit").count() == 0  # a viewer may not edit

    # "only what the map shows": the table narrows to the zoomed-in view, and a shared link keeps it
    _reloaded(page, lambda: page.check("input[name=in_view]"))
    answer = page.evaluate("() => window.geoapp.state.answer")
    assert 1 <= answer["matched"] < 28 and third["id"] in [r["id"] for r in answer["rows"]]
    assert rows.count() == answer["matched"]
    # the rows of the features the view shows (a long one may reach in from outside): the bbox is the map's view
    bounds = page.evaluate("() => window.geoapp.state.map.getBounds().toBBoxString()")
    shown = [float(v) for v in _query(page)["bbox"][0].split(",")]
    assert shown == pytest.approx([float(v) for v in bounds.split(",")], abs=1e-5)
    assert int(page.locator('.geoapp-by-status li[data-status="removed"] .geoapp-bar-count').inner_text()) == len(
        answer["rows"]
    )
    watched.screenshot(shots, "progress-desk-in-view")
    page.goto(page.url)
    page.wait_for_function(READY, timeout=WAIT)
    assert page.is_checked("input[name=in_view]") and page.input_value("select[name=status]") == "removed"
    assert page.evaluate("() => window.geoapp.state.answer.matched") == answer["matched"]

    # a viewer gets no edit control and never loads the editing code
    assert page.locator(".geoapp-row-edit, th.geoapp-actions").count() == 0
    assert [url for url in watched.requests if "/static/js/edit/" in url or "progress/edit.js" in url] == []
    _clean(watched)

    # a phone: stacked, nothing overlapping, the table scrolls in its own box
    phone = contexts(viewport=PHONE)
    small = _open(phone, base, "view")
    boxes = small.evaluate(
        """() => Object.fromEntries(['.geoapp-progress-filters', '.geoapp-kpis', '.geoapp-progress-map',
            '.geoapp-table-scroll', '.geoapp-progress-charts'].map(s => {
              const r = document.querySelector(s).getBoundingClientRect();
              return [s, {top: r.top, bottom: r.bottom, left: r.left, right: r.right}];
            }))"""
    )
    order = list(boxes.values())
    assert all(a["bottom"] <= b["top"] + 1 for a, b in itertools.pairwise(order)), boxes
    assert all(b["left"] >= 0 and b["right"] <= PHONE["width"] for b in order), boxes
    assert boxes[".geoapp-progress-map"]["bottom"] - boxes[".geoapp-progress-map"]["top"] >= 0.45 * PHONE["height"]
    scroll = small.evaluate(
        "() => { const t = document.querySelector('.geoapp-table-scroll');"
        " return [t.scrollHeight > t.clientHeight, t.scrollWidth > t.clientWidth, getComputedStyle(t).overflowY]; }"
    )
    assert scroll == [True, True, "auto"]
    phone.screenshot(shots, "progress-phone")
    _clean(phone)


def _removed(base: str) -> int:
    """The public counter of removed hoardings (/api/stats, counted from the store)."""
    figures = {figure["id"]: figure["value"] for figure in _get(base, "/api/stats")["report"]}
    return figures["hoardings_removed"]


def test_a_planner_marks_a_pending_hoarding_removed_and_the_table_figures_map_and_public_counter_follow(
    site, contexts, shots
):
    base = site
    assert _removed(base) == 28
    watched = contexts()
    page = _open(watched, base, "plan", "?status=pending")
    rows = page.locator(".geoapp-rows tbody tr")
    assert page.locator(".geoapp-rows-message").inner_text() == "第 1–3 条，共 3 条"
    assert page.locator("th.geoapp-actions").inner_text() == "操作" and page.locator(".geoapp-row-edit").count() == 3
    target = page.evaluate("() => window.geoapp.state.answer.rows[0]")
    rows.first.click()  # an editor's popup has the edit button too
    popup = page.locator(".leaflet-popup-content .geoapp-popup")
    popup.wait_for(timeout=WAIT)
    assert popup.locator(".geoapp-popup-edit").inner_text() == "编辑"

    rows.first.locator(".geoapp-row-edit").click()
    dialog = page.locator("dialog.geoapp-progress-dialog[open]")
    form = dialog.locator("form.geoapp-form")
    form.wait_for(timeout=WAIT)
    assert dialog.locator("h2").inner_text() == f"编辑：{target['properties']['site']}"
    page.locator(".leaflet-popup").wait_for(state="detached", timeout=WAIT)  # the popup made way for the form
    form.locator("select[name=status]").select_option("removed")
    form.locator("input[name=removed_on]").fill("2023-11-20")
    form.locator("select[name=treatment]").select_option("greened")
    watched.screenshot(shots, "progress-edit-form")
    _reloaded(page, lambda: form.locator("button.geoapp-save").click())
    assert page.locator("dialog.geoapp-progress-dialog[open]").count() == 0
    # no longer pending: two rows, two overdue, on the map too
    assert page.locator(".geoapp-rows-message").inner_text() == "第 1–2 条，共 2 条"
    assert target["id"] not in page.evaluate("() => window.geoapp.state.answer.rows.map(r => r.id)")
    assert _kpi(page, "overdue") == "2"
    # the map (zoomed in on it) no longer draws it among the pending ones, nor marks it overdue
    page.wait_for_function(
        "(fid) => window.geoapp.state.layer.find(fid) === undefined && window.geoapp.state.layer.shown.size === 2"
        " && document.querySelectorAll('.leaflet-marker-pane .geoapp-overdue-mark').length === 2",
        arg=target["id"],
        timeout=WAIT,
    )

    # the whole campaign: 29 removed, one of them in November; the public counter says so too
    _reloaded(page, lambda: page.select_option("select[name=status]", ""))
    assert (_kpi(page, "total"), _kpi(page, "done"), _kpi(page, "share")) == ("43", "29", "67.4 %")
    assert page.locator('.geoapp-months li[data-month="2023-11"] .geoapp-month-count').inner_text() == "1"
    assert "status" not in _query(page)
    assert _removed(base) == 29
    feature = _get(base, f"/api/layers/{HOARDINGS}/features/{target['id']}")
    assert (feature["properties"]["status"], feature["properties"]["removed_on"]) == ("removed", "2023-11-20")
    watched.screenshot(shots, "progress-after-edit")
    _clean(watched)
