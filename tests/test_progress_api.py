"""The progress API: a campaign layer's rows as the table asks for them (filters, text, dates, overdue, bbox, sort,
paging) and the figures of every matched row, checked against counts made independently from the demo district's
GeoDataFrames; bad parameters refused by name; no internal field for the public; ETags; and a planner's edit
reaching the figures."""

from __future__ import annotations

import datetime as dt
import shutil
from collections import Counter

import pytest
import shapely
from shapely.geometry import box

from geoapp.core import progress
from geoapp.core.accounts import LoginPolicy
from geoapp.core.layers import Registry
from geoapp.store.base import Query
from geoapp.web import create_app
from tests.conftest import CHEAP_ARGON2, LAYERS_DIR, SETUP, Clock, login

HOARDINGS = "/api/progress/construction_hoardings/rows"
COVERS = "/api/progress/manhole_covers/rows"
#: the module's clock: 2023-11-14T22:13:20Z, which is 2023-11-15 in Asia/Shanghai
NOW = 1_700_000_000.0
TODAY = "2023-11-15"
INTERNAL = ("contractor", "notes")


@pytest.fixture(scope="module")
def env(tmp_path_factory, demo_gpkg, password_hash):
    """One app on a copy of the demo district for the module, with a planner and a viewer; its clock."""
    path = tmp_path_factory.mktemp("progress") / "geoapp.gpkg"
    shutil.copy(demo_gpkg, path)
    clock = Clock(NOW)
    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "test-secret",
            "GEOAPP_DATABASE": str(path),
            "ARGON2_PARAMETERS": CHEAP_ARGON2,
            "LOGIN_POLICY": LoginPolicy(clock=clock),
            "CLOCK": clock,
        }
    )
    store = app.extensions["geoapp"].store
    for role in ("planner", "viewer"):
        store.add_user(role, password_hash, (role,), actor=SETUP)
    yield app, clock
    app.extensions["geoapp"].close()


@pytest.fixture(scope="module")
def anonymous(env):
    return env[0].test_client()


@pytest.fixture(scope="module")
def viewer(env):
    client = env[0].test_client()
    login(client, "viewer")
    return client


@pytest.fixture(scope="module")
def frames(demo_data):
    """The demo layers with the fid the store gives each row (rows are stored in order, from 1)."""
    out = {}
    for layer_id in ("construction_hoardings", "manhole_covers", "backstreet_repairs"):
        frame = demo_data[layer_id].copy()
        frame.index = range(1, len(frame) + 1)
        out[layer_id] = frame.astype({c: object for c in frame.columns if c != "geometry"}).where(frame.notna(), None)
    return out


def _fids(client, url) -> list[int]:
    answer = client.get(url)
    assert answer.status_code == 200, answer.json
    assert answer.json["matched"] == len(answer.json["rows"]), "ask for every row"
    return [row["id"] for row in answer.json["rows"]]


def _overdue(frame, done):
    return (frame["due_on"].notna() & (frame["due_on"] < TODAY) & ~frame["status"].isin(done)).fillna(False)


def test_the_overview_counts_each_campaign_layer(anonymous, frames, registry):
    answer = anonymous.get("/api/progress")
    assert answer.status_code == 200
    campaign = [layer.id for layer in registry if layer.progress is not None]
    assert [layer["id"] for layer in answer.json["layers"]] == campaign
    assert answer.json["asOf"] == "2023-11-14T22:13:20Z"
    got = {layer["id"]: layer for layer in answer.json["layers"]}
    hoardings = frames["construction_hoardings"]
    assert got["construction_hoardings"]["title"] == {"zh": "建筑围挡", "en": "Construction hoardings"}
    assert (got["construction_hoardings"]["total"], got["construction_hoardings"]["done"]) == (43, 28)
    assert got["construction_hoardings"]["overdue"] == int(_overdue(hoardings, ["removed"]).sum()) > 0
    covers = frames["manhole_covers"]
    assert got["manhole_covers"]["total"] == len(covers) == 950
    assert got["manhole_covers"]["done"] == int((covers["status"] == "fixed").sum()) == 886
    assert got["manhole_covers"]["overdue"] == 0  # no target date
    streets = frames["backstreet_repairs"]
    assert got["backstreet_repairs"]["done"] == int((streets["status"] == "repaired").sum()) == 8
    assert got["backstreet_repairs"]["overdue"] == int(_overdue(streets, ["repaired"]).sum())

    again = anonymous.get("/api/progress", headers={"If-None-Match": answer.headers["ETag"]})
    assert again.status_code == 304


def test_filters_dates_text_and_overdue_select_what_the_frames_count(anonymous, viewer, frames):
    h = frames["construction_hoardings"]
    removed = h["status"] == "removed"

    answer = anonymous.get(f"{HOARDINGS}?status=removed&agency=urban_management&limit=500").json
    expected = h.index[removed & (h["agency"] == "urban_management")].tolist()
    assert [r["id"] for r in answer["rows"]] != [] and sorted(r["id"] for r in answer["rows"]) == expected
    assert answer["matched"] == len(expected) == 19  # the work report's 19 by the Urban Management Bureau
    summary = answer["summary"]
    assert (summary["total"], summary["done"]) == (19, 19)
    assert summary["by"]["agency"] == {
        "urban_management": {"total": 19, "done": 19},
        "housing": {"total": 0, "done": 0},
    }

    # a filter field repeated, or its values comma-separated, means either
    either = h.index[h["status"].isin(["pending", "in_progress"])].tolist()
    assert sorted(_fids(anonymous, f"{HOARDINGS}?status=pending&status=in_progress&limit=500")) == either
    assert sorted(_fids(anonymous, f"{HOARDINGS}?status=pending,in_progress&limit=500")) == either

    # the date range is inclusive, on the date done
    october = h.index[h["removed_on"].between("2023-10-01", "2023-10-31")].tolist()
    assert sorted(_fids(anonymous, f"{HOARDINGS}?from=2023-10-01&to=2023-10-31&limit=500")) == october
    assert sorted(_fids(anonymous, f"{HOARDINGS}?from=2023-10-18&to=2023-10-18&limit=500")) == sorted(
        h.index[h["removed_on"] == "2023-10-18"].tolist()
    )

    # text: a substring of the visible text, and the labels of values in both languages
    assert (
        sorted(_fids(anonymous, f"{HOARDINGS}?q=团结路&limit=500"))
        == h.index[h["site"].str.contains("团结路")].tolist()
    )
    assert sorted(_fids(anonymous, f"{HOARDINGS}?q=已整治&limit=500")) == h.index[removed].tolist()
    assert sorted(_fids(anonymous, f"{HOARDINGS}?q=REMOVED&limit=500")) == h.index[removed].tolist()
    assert sorted(_fids(anonymous, f"{HOARDINGS}?q=住建&limit=500")) == h.index[h["agency"] == "housing"].tolist()
    # an internal field is searched for staff only
    noted = h.index[h["notes"].fillna("").str.contains("验收")].tolist()
    assert noted and sorted(_fids(viewer, f"{HOARDINGS}?q=验收&limit=500")) == noted
    assert anonymous.get(f"{HOARDINGS}?q=验收").json["matched"] == 0

    # overdue: a target date before today in the district, not done
    late = h.index[_overdue(h, ["removed"])].tolist()
    rows = anonymous.get(f"{HOARDINGS}?overdue=true&limit=500").json["rows"]
    assert late and sorted(r["id"] for r in rows) == late and all(r["overdue"] for r in rows)
    on_time = anonymous.get(f"{HOARDINGS}?overdue=false&limit=500").json
    assert on_time["matched"] == 43 - len(late) and not any(r["overdue"] for r in on_time["rows"])
    assert on_time["summary"]["overdue"] == 0

    # a bbox keeps what intersects it (the reader answers it)
    bbox = (113.27, 33.70, 113.30, 33.73)
    inside = h.index[h.intersects(box(*bbox))].tolist()
    assert 0 < len(inside) < 43
    assert sorted(_fids(anonymous, f"{HOARDINGS}?bbox={','.join(map(str, bbox))}&limit=500")) == inside
    c = frames["manhole_covers"]
    covered = c.index[c.intersects(box(*bbox)) & (c["kind"] == "sewage") & (c["status"] == "to_fix")].tolist()
    url = f"{COVERS}?bbox={','.join(map(str, bbox))}&kind=sewage&status=to_fix&limit=500"
    assert covered and sorted(_fids(anonymous, url)) == covered


def test_sort_paging_and_the_summary_of_every_matched_row(anonymous, frames):
    h = frames["construction_hoardings"]
    # by the date removed, latest first; hoardings without one last; ties in fid order
    dated = sorted(h.index[h["removed_on"].notna()], key=lambda fid: (h.at[fid, "removed_on"], -fid), reverse=True)
    undated = h.index[h["removed_on"].isna()].tolist()
    expected = dated + undated
    assert _fids(anonymous, f"{HOARDINGS}?sort=removed_on&order=desc&limit=500") == expected
    ascending = sorted(h.index[h["removed_on"].notna()], key=lambda fid: (h.at[fid, "removed_on"], fid))
    assert _fids(anonymous, f"{HOARDINGS}?sort=removed_on&limit=500") == ascending + undated
    # status sorts in the vocabulary's order (待整治, 整治中, 已整治, 未停工)
    order = {"pending": 0, "in_progress": 1, "removed": 2, "under_construction": 3}
    assert _fids(anonymous, f"{HOARDINGS}?sort=status&limit=500") == sorted(
        h.index, key=lambda fid: (order[h.at[fid, "status"]], fid)
    )

    page = anonymous.get(f"{HOARDINGS}?sort=removed_on&order=desc&offset=40&limit=10").json
    assert (page["matched"], page["offset"], page["limit"]) == (43, 40, 10)
    assert [r["id"] for r in page["rows"]] == expected[40:]
    # the summary counts every matched row, not the page
    assert page["summary"]["total"] == 43 and page["summary"]["done"] == 28
    assert page["summary"]["by_status"] == dict(Counter(h["status"])) | {
        s: 0 for s in order if s not in set(h["status"])
    }
    assert list(page["summary"]["by_status"]) == list(order)  # in the vocabulary's order

    # the default order is the title field; per month counts the date done of what is done, gaps as zeros
    c = frames["manhole_covers"]
    answer = anonymous.get(f"{COVERS}?kind=sewage,storm&limit=500").json
    chosen = c[c["kind"].isin(["sewage", "storm"])]
    assert answer["matched"] == len(chosen)
    assert [r["properties"]["code"] for r in answer["rows"]] == sorted(chosen["code"])[:500]
    fixed = chosen[chosen["status"] == "fixed"]
    months = Counter(d[:7] for d in fixed["fixed_on"])
    per_month = answer["summary"]["per_month"]
    assert [m["month"] for m in per_month] == sorted({*months, *_between(min(months), max(months))})
    assert {m["month"]: m["count"] for m in per_month} == {m["month"]: months.get(m["month"], 0) for m in per_month}
    assert sum(m["count"] for m in per_month) == len(fixed) == answer["summary"]["done"]
    assert answer["summary"]["by"]["kind"]["sewage"] == {
        "total": int((chosen["kind"] == "sewage").sum()),
        "done": int(((chosen["kind"] == "sewage") & (chosen["status"] == "fixed")).sum()),
    }
    assert answer["summary"]["by"]["kind"]["gas"] == {"total": 0, "done": 0}

    # lon/lat: a point's own coordinates; a point on a line or an area otherwise
    row = answer["rows"][0]
    point = c.geometry[row["id"]]
    assert (row["lon"], row["lat"]) == pytest.approx((point.x, point.y), abs=1e-7)
    for row in anonymous.get(f"{HOARDINGS}?limit=5").json["rows"]:
        assert shapely.distance(h.geometry[row["id"]], shapely.Point(row["lon"], row["lat"])) < 1e-6


def _between(first: str, last: str) -> list[str]:
    out, day = [], dt.date(int(first[:4]), int(first[5:]), 1)
    while day.strftime("%Y-%m") <= last:
        out.append(day.strftime("%Y-%m"))
        day = (day + dt.timedelta(days=32)).replace(day=1)
    return out


BAD = [
    ("foo=1", "foo"),
    ("status=gone", "status"),
    ("agency=urban_management,nobody", "agency"),
    ("from=2023-02-30", "from"),
    ("to=20231001", "to"),
    ("from=2023-10-02&to=2023-10-01", "from"),
    ("q=" + "x" * 101, "q"),
    ("q=a&q=b", "q"),
    ("bbox=113,33,114", "bbox"),
    ("bbox=114,33,113,34", "bbox"),
    ("overdue=yes", "overdue"),
    ("sort=nope", "sort"),
    ("sort=notes", "sort"),  # internal: the public cannot sort by it
    ("order=up", "order"),
    ("offset=-1", "offset"),
    ("limit=0", "limit"),
    ("limit=501", "limit"),
    ("limit=ten", "limit"),
    ("contractor=x", "contractor"),  # not a filter field
    ("lang=fr", "lang"),
]


def test_every_bad_parameter_is_a_400_naming_it(anonymous):
    for query, parameter in BAD:
        answer = anonymous.get(f"{HOARDINGS}?{query}")
        assert answer.status_code == 400, query
        assert answer.json["error"]["parameter"] == parameter, (query, answer.json)
    unknown = anonymous.get(f"{HOARDINGS}?foo=1").json["error"]["message"]
    assert "status, agency, district, treatment" in unknown and "overdue" in unknown  # says what is allowed
    assert "pending, in_progress, removed" in anonymous.get(f"{HOARDINGS}?status=gone").json["error"]["message"]
    # the covers have no target date: overdue is not theirs
    assert anonymous.get(f"{COVERS}?overdue=true").json["error"]["parameter"] == "overdue"
    for url, parameter in [
        ("/api/progress/roads/rows", "layer"),  # no campaign
        ("/api/progress/nothing/rows", "layer"),
        ("/api/progress/construction_hoardings/ledger.pdf", "format"),
    ]:
        answer = anonymous.get(url)
        assert answer.status_code == 404 and answer.json["error"]["parameter"] == parameter, url
    assert "construction_hoardings" in anonymous.get("/api/progress/roads/rows").json["error"]["message"]
    assert anonymous.get("/api/progress?x=1").json["error"]["parameter"] == "x"
    ledger = anonymous.get("/api/progress/construction_hoardings/ledger.csv?limit=10")
    assert ledger.status_code == 400 and ledger.json["error"]["parameter"] == "limit"
    # an empty value is no parameter (an emptied form field)
    assert anonymous.get(f"{HOARDINGS}?q=&status=&from=").json["matched"] == 43


def test_the_public_gets_no_internal_field(anonymous, viewer):
    public = anonymous.get(f"{HOARDINGS}?limit=500").json
    assert public["rows"] and all(not set(INTERNAL) & set(r["properties"]) for r in public["rows"])
    assert b"contractor" not in anonymous.get(f"{HOARDINGS}?limit=500").data
    staff = viewer.get(f"{HOARDINGS}?limit=500").json
    assert any(r["properties"].get("contractor") for r in staff["rows"])
    assert set(staff["rows"][0]["properties"]) >= set(INTERNAL)
    assert viewer.get(f"{HOARDINGS}?sort=notes").status_code == 200
    # the same URL, another caller: another ETag
    assert anonymous.get(HOARDINGS).headers["ETag"] != viewer.get(HOARDINGS).headers["ETag"]


def test_the_core_reads_a_layer_page_by_page_and_refuses_too_many(env, registry):
    svc = env[0].extensions["geoapp"]
    layer = registry["manhole_covers"]
    query = Query(filters={"status": ["fixed"]})
    whole, _ = progress.read_layer(svc.reader, layer, query, "public")
    paged, _ = progress.read_layer(svc.reader, layer, query, "public", page_size=100)
    assert [r.fid for r in paged] == [r.fid for r in whole] and len(whole) == 886
    with pytest.raises(progress.InvalidParameter) as refused:
        progress.read_layer(svc.reader, layer, query, "public", most=500)
    assert refused.value.parameter == "bbox" and "886" in refused.value.message


def test_a_planner_marks_a_hoarding_removed_and_the_figures_follow(env, anonymous, frames):
    app, clock = env
    h = frames["construction_hoardings"]
    fid = int(h.index[_overdue(h, ["removed"])][0])  # a late one
    before = anonymous.get(f"{HOARDINGS}?limit=1")
    tag = before.headers["ETag"]
    assert anonymous.get(f"{HOARDINGS}?limit=1", headers={"If-None-Match": tag}).status_code == 304

    planner = app.test_client()
    _, csrf = login(planner, "planner")
    url = f"/api/layers/construction_hoardings/features/{fid}"
    version = planner.get(url).json["version"]
    changed = planner.patch(
        url,
        json={"properties": {"status": "removed", "removed_on": TODAY, "treatment": "greened"}, "version": version},
        headers={"X-CSRFToken": csrf},
    )
    assert changed.status_code == 200, changed.json
    try:
        after = anonymous.get(f"{HOARDINGS}?limit=1", headers={"If-None-Match": tag})
        assert after.status_code == 200 and after.headers["ETag"] != tag
        was, now = before.json["summary"], after.json["summary"]
        assert now["done"] == was["done"] + 1 == 29
        assert now["overdue"] == was["overdue"] - 1
        assert now["by_status"]["removed"] == 29
        assert now["by_status"][h.at[fid, "status"]] == was["by_status"][h.at[fid, "status"]] - 1
        assert now["by"]["agency"][h.at[fid, "agency"]]["done"] == was["by"]["agency"][h.at[fid, "agency"]]["done"] + 1
        assert now["per_month"][-1] == {"month": "2023-11", "count": 1}
        assert {"month": "2023-10", "count": 9} in now["per_month"]
        assert anonymous.get("/api/progress").json["layers"][-1]["done"] == 29
        row = anonymous.get(f"{HOARDINGS}?q={h.at[fid, 'site']}").json["rows"][0]
        assert (row["id"], row["overdue"], row["properties"]["status"]) == (fid, False, "removed")

        # what is overdue changes with the day: the ETag too
        tag = after.headers["ETag"]
        clock.advance(24 * 3600)
        assert anonymous.get(f"{HOARDINGS}?limit=1", headers={"If-None-Match": tag}).status_code == 200
    finally:
        clock.now = NOW
        back = planner.patch(
            url,
            json={"properties": {"status": h.at[fid, "status"]}, "version": changed.json["version"]},
            headers={"X-CSRFToken": csrf},
        )
        assert back.status_code == 200, back.json
    assert anonymous.get("/api/progress").json["layers"][-1]["done"] == 28


@pytest.mark.backends("gpkg", "postgis")
def test_the_rows_are_the_same_when_the_database_answers_in_sql(backend, database, frames):
    """On PostGIS with GEOAPP_SQL_ABOVE=0 every layer is read in SQL (filters, bbox and keyset pages)."""
    app = create_app({"TESTING": True, "GEOAPP_DATABASE": str(database), "GEOAPP_SQL_ABOVE": "0", "CLOCK": Clock(NOW)})
    try:
        client = app.test_client()
        h, c = frames["construction_hoardings"], frames["manhole_covers"]
        answer = client.get(f"{HOARDINGS}?status=removed&agency=urban_management&sort=removed_on&order=desc").json
        expected = sorted(
            h.index[(h["status"] == "removed") & (h["agency"] == "urban_management")],
            key=lambda fid: (h.at[fid, "removed_on"], -fid),
            reverse=True,
        )
        assert [r["id"] for r in answer["rows"]] == expected and answer["summary"]["done"] == 19
        assert all(isinstance(r["properties"]["removed_on"], str) for r in answer["rows"])
        assert all(isinstance(r["properties"]["length_m"], float) for r in answer["rows"])
        overview = {x["id"]: x for x in client.get("/api/progress").json["layers"]}
        assert overview["manhole_covers"]["done"] == 886
        assert overview["construction_hoardings"]["overdue"] == int(_overdue(h, ["removed"]).sum())

        svc = app.extensions["geoapp"]
        bbox = (113.27, 33.70, 113.30, 33.73)
        query = Query(bbox=bbox, filters={"status": ["fixed"]})
        layer = Registry.load(LAYERS_DIR)["manhole_covers"]
        paged, _ = progress.read_layer(svc.reader, layer, query, "public", page_size=50)
        inside = c.index[c.intersects(box(*bbox)) & (c["status"] == "fixed")].tolist()
        assert len(inside) > 100 and [r.fid for r in paged] == inside
    finally:
        app.extensions["geoapp"].close()
