"""Cases over HTTP: the public reports a problem and follows it, a dispatcher moderates and works the queue from
the pages, the indicators come as JSON and as a workbook read back with openpyxl, and the hotline's XLSX is
imported with every ticket accounted for. One app on a copy of the demo district for the module.
"""

from __future__ import annotations

import io
import re

import openpyxl
import pytest

from data import demo_hotline
from geoapp.core.accounts import LoginPolicy
from geoapp.web import create_app
from tests.backends import execute
from tests.conftest import CHEAP_ARGON2, SETUP, Clock, csrf_token, demo_copy_in, login


@pytest.fixture(scope="module")
def site(request, tmp_path_factory, password_hash):
    with demo_copy_in("gpkg", tmp_path_factory.mktemp("cases-web"), request) as database:
        clock = Clock(1_796_000_000.0)  # December 2026: what is reported here is not in the demo year
        app = create_app(
            {
                "TESTING": True,
                "SECRET_KEY": "test-secret",
                "GEOAPP_DATABASE": str(database),
                "ARGON2_PARAMETERS": CHEAP_ARGON2,
                "LOGIN_POLICY": LoginPolicy(clock=clock),
                "CLOCK": clock,
            }
        )
        store = app.extensions["geoapp"].store
        store.add_user("centre", password_hash, ("dispatcher",), actor=SETUP)
        store.add_user("squad1", password_hash, ("squad", "squad:第一中队"), actor=SETUP)
        store.add_user("planner", password_hash, ("planner",), actor=SETUP)
        yield app, database
        app.extensions["geoapp"].close()


def signed_in(app, name):
    client = app.test_client()
    response, token = login(client, name)
    assert response.status_code == 302
    return client, token


def test_the_public_reports_by_form_and_follows_it_in_chinese(site):
    app, _database = site
    public = app.test_client()
    page = public.get("/report?lang=zh")
    assert page.status_code == 200 and "报告问题" in page.get_data(as_text=True)
    token = csrf_token(public)
    sent = public.post(
        "/report",
        data={
            "csrf_token": token,
            "lon": "113.30",
            "lat": "33.73",
            "subcategory": "illegal_ads",
            "description": "墙上<script>alert(1)</script>小广告",
            "phone": "",
        },
        content_type="multipart/form-data",
    )
    assert sent.status_code == 201
    body = sent.get_data(as_text=True)
    ref = re.search(r'class="geoapp-reference">([^<]+)<', body).group(1)
    follow = public.get(f"/report/follow?ref={ref.lower()}")
    assert follow.status_code == 200 and "等待审核" in follow.get_data(as_text=True)
    assert "<script>alert(1)</script>" not in public.get("/api/reports").get_data(as_text=True)
    unknown = public.get("/report/follow?ref=RZZZZZ-ZZZZZ")
    assert unknown.status_code == 404 and "未找到" in unknown.get_data(as_text=True)
    bad = public.post(
        "/report",
        data={"csrf_token": token, "lon": "", "lat": "", "subcategory": "illegal_ads", "description": "无位置"},
        content_type="multipart/form-data",
    )
    assert bad.status_code == 400 and "请在地图上点选问题位置" in bad.get_data(as_text=True)
    assert public.post("/report", data={"lon": "113.3"}).status_code in (400, 403)  # no CSRF token


def test_the_api_takes_a_report_and_refuses_bad_input_with_the_error_shape(site):
    app, _ = site
    public = app.test_client()
    sent = public.post(
        "/api/reports",
        json={"lon": 113.301, "lat": 33.731, "subcategory": "stray_dogs", "description": "小区门口流浪狗"},
    )
    assert sent.status_code == 201 and sent.json["state"] == "pending"
    assert public.get(sent.headers["Location"]).json["state"] == "pending"
    for body, parameter in (
        ({"lon": 113.3, "lat": 33.73, "subcategory": "nope", "description": "something"}, "subcategory"),
        ({"lon": 113.3, "lat": 33.73, "subcategory": "stray_dogs", "description": "x", "extra": 1}, "extra"),
        ({"lon": "a", "lat": 33.73, "subcategory": "stray_dogs", "description": "something"}, "lon"),
    ):
        refused = public.post("/api/reports", json=body)
        assert refused.status_code == 400 and refused.json["error"]["parameter"] == parameter
    assert public.post("/api/cases", json={"lon": 113.3, "lat": 33.73, "properties": {}}).status_code == 401
    for url in ("/api/cases/indicators", "/api/cases/queue", "/api/reports/pending", "/api/cases/heat"):
        assert public.get(url).status_code == 401, url
    assert public.get("/cases").status_code == 302  # to sign in


def test_a_dispatcher_accepts_a_report_and_a_squad_disposes_of_it_from_the_pages(site):
    app, database = site
    ref = (
        app.test_client()
        .post(
            "/api/reports",
            json={"lon": 113.302, "lat": 33.732, "subcategory": "exposed_garbage", "description": "路口垃圾堆放三天了"},
        )
        .json["reference"]
    )
    centre, token = signed_in(app, "centre")
    queue = centre.get("/cases/queue?lang=zh").get_data(as_text=True)
    assert ref in queue and "路口垃圾堆放三天了" in queue
    done = centre.post(
        f"/cases/reports/{ref}", data={"csrf_token": token, "action": "accept", "public_note": "已派人清理"}
    )
    assert done.status_code == 200 and "AJ" in done.get_data(as_text=True)
    ((fid, squad),) = execute(database, "SELECT fid, squad FROM cases WHERE report_reference = ?", (ref,))
    version = centre.get(f"/api/cases/{fid}").json["case"]["version"]
    for step in ("register", "dispatch"):
        response = centre.post(f"/cases/{fid}/step", data={"csrf_token": token, "step": step, "version": version})
        assert response.status_code == 200, response.get_data(as_text=True)
        version += 1
    stale = centre.post(f"/api/cases/{fid}/steps/check", json={"version": 1}, headers={"X-CSRFToken": token})
    assert stale.status_code == 409  # the version read is old
    if squad == "第一中队":
        member, mtoken = signed_in(app, "squad1")
        assert fid in [c["_fid"] for c in member.get("/api/cases/queue").json["cases"]]
        done = member.post(
            f"/api/cases/{fid}/steps/dispose",
            json={"version": version, "note": "已清运"},
            headers={"X-CSRFToken": mtoken},
        )
        assert done.status_code == 200 and done.json["properties"]["status"] == "disposed"
    shown = app.test_client().get("/api/reports").json["features"]
    assert any(f["properties"]["public_note"] == "已派人清理" for f in shown)
    assert "路口垃圾堆放三天了" not in str(shown)
    followed = app.test_client().get(f"/api/reports/{ref}").json
    assert followed["state"] == "accepted" and followed["status"] in ("dispatched", "disposed")


def test_a_planner_reads_the_indicators_but_takes_no_step(site):
    app, database = site
    planner, token = signed_in(app, "planner")
    squads = planner.get("/api/cases/indicators?by=squad").json["rows"]
    assert sum(r["due"] for r in squads) >= 14183
    assert planner.get("/api/cases/indicators?by=colour").json["error"]["parameter"] == "by"
    assert planner.get("/api/cases/indicators?from=2023-13-01").json["error"]["parameter"] == "from"
    ((fid,),) = execute(database, "SELECT fid FROM cases WHERE status = 'registered' LIMIT 1")
    version = planner.get(f"/api/cases/{fid}").json["case"]["version"]
    refused = planner.post(
        f"/api/cases/{fid}/steps/dispatch", json={"version": version}, headers={"X-CSRFToken": token}
    )
    assert refused.status_code == 403
    page = planner.get("/cases?by=department&shade=close_rate&lang=zh").get_data(as_text=True)
    assert "综合执法大队" in page and "结案率（%）" in page and "本周热点" in page


def test_the_indicators_workbook_has_a_sheet_per_dimension_in_chinese(site):
    app, _ = site
    planner, _ = signed_in(app, "planner")
    response = planner.get("/api/cases/indicators.xlsx?from=2023-01-01&to=2023-12-31&lang=zh")
    assert response.status_code == 200
    book = openpyxl.load_workbook(io.BytesIO(response.data))
    assert book.sheetnames[:3] == ["全区合计", "按网格", "按中队"]
    header, total = [c.value for c in book["全区合计"][1]], [c.value for c in book["全区合计"][2]]
    assert header[:4] == ["分组", "应处置数", "处置数", "结案数"]
    assert total[1:3] == [14183, 14067] and total[5] == 99.18
    about = {row[0].value: row[1].value for row in book["说明 About"].iter_rows()}
    assert any("合成" in str(v) or "演示" in str(v) for v in about.values())


def test_the_hotline_import_accounts_for_every_ticket(site, tmp_path):
    app, database = site
    sample = tmp_path / "hotline.xlsx"
    written = demo_hotline.write_sample(sample, rows=60, seed=7)
    centre, token = signed_in(app, "centre")
    before = execute(database, "SELECT count(*) FROM cases WHERE source = 'hotline'")[0][0]
    with sample.open("rb") as f:
        dry = centre.post(
            "/api/cases/hotline",
            data={"file": (f, "hotline.xlsx"), "dry_run": "true"},
            headers={"X-CSRFToken": token},
            content_type="multipart/form-data",
        )
    assert dry.status_code == 200
    report = dry.json
    assert report["rows"] == written
    assert report["located"] + len(report["unlocated"]) + len(report["problems"]) == written
    assert execute(database, "SELECT count(*) FROM cases WHERE source = 'hotline'")[0][0] == before
    with sample.open("rb") as f:
        done = centre.post(
            "/api/cases/hotline",
            data={"file": (f, "hotline.xlsx")},
            headers={"X-CSRFToken": token},
            content_type="multipart/form-data",
        )
    assert done.status_code == 201 and done.json["imported"] == report["located"]
    rows = execute(
        database,
        "SELECT ticket, geocode_confidence, grid, squad FROM cases WHERE source = 'hotline' AND ticket IS NOT NULL",
    )
    assert len(rows) == report["located"]
    assert all(0.5 <= confidence <= 1 and grid and squad for _, confidence, grid, squad in rows)
    with sample.open("rb") as f:
        again = centre.post(
            "/api/cases/hotline",
            data={"file": (f, "hotline.xlsx")},
            headers={"X-CSRFToken": token},
            content_type="multipart/form-data",
        )
    assert again.json["imported"] == 0 and len(again.json["already_imported"]) == report["located"]
    planner, ptoken = signed_in(app, "planner")
    with sample.open("rb") as f:
        refused = planner.post(
            "/api/cases/hotline",
            data={"file": (f, "hotline.xlsx")},
            headers={"X-CSRFToken": ptoken},
            content_type="multipart/form-data",
        )
    assert refused.status_code == 403
