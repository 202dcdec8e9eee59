"""`geoapp import` on both backends: the must-shows of the write path (GCJ-02 onto the street, one bad row writes
nothing), the modes (append, replace, upsert by key, dry run) and the use case's own refusals."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess

import numpy as np
import pytest
import shapely

from geoapp.config import PROJECT_ROOT
from geoapp.core.crs import STORAGE_CRS, project
from geoapp.errors import InvalidFeature
from geoapp.store.base import Query
from geoapp.web import create_app
from tests.conftest import CHEAP_ARGON2, SETUP, demo_copy_in

pytestmark = pytest.mark.backends("gpkg", "postgis")

NODE = shutil.which("node") or "/usr/bin/node"
GCOORD = PROJECT_ROOT / "tests" / "js" / "gcoord_convert.js"
HEADERS = ["名称", "部件编码", "井盖类别", "所在道路", "病害", "状态", "整治日期", "经度", "纬度"]


@pytest.fixture(scope="module")
def app(backend, request, tmp_path_factory):
    with demo_copy_in(backend, tmp_path_factory.mktemp("import"), request) as database:
        app = create_app(
            {
                "TESTING": True,
                "SECRET_KEY": "test-secret",
                "GEOAPP_DATABASE": str(database),
                "ARGON2_PARAMETERS": CHEAP_ARGON2,
            }
        )
        yield app
        app.extensions["geoapp"].close()


@pytest.fixture(scope="module")
def svc(app):
    return app.extensions["geoapp"]


def run(app, *args: str):
    return app.test_cli_runner().invoke(args=["geoapp", "import", *map(str, args)])


def covers(svc) -> dict[str, object]:
    """The manhole covers by code, as stored (all fields)."""
    data = svc.store.load("manhole_covers")
    return {
        code: svc.store.get("manhole_covers", int(fid))
        for fid, code in zip(data.fids, data.columns["code"], strict=True)
    }


def audit_count(svc) -> int:
    return len(svc.store.audit("2000-01-01"))


def write_csv(path, rows, headers=HEADERS):
    with open(path, "w", newline="", encoding="utf-8-sig") as f:
        out = csv.writer(f)
        out.writerow(headers)
        out.writerows(rows)
    return path


def gcoord(points, pair="WGS84>GCJ02") -> np.ndarray:
    """Points converted by gcoord in node: the browser's library, independent of geoapp's own conversion."""
    done = subprocess.run(
        [NODE, str(GCOORD)],
        input=json.dumps({"points": [list(map(float, p)) for p in points], "pairs": [pair]}),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return np.array(json.loads(done.stdout)[pair], dtype=float)


@pytest.fixture(scope="module")
def road(svc):
    """A demo road and three points on it (WGS84), at a quarter, half and three quarters of its length."""
    reader = svc.reader
    page = reader.select("roads", Query(filters={"kind": ["arterial"]}), 0, 1, "internal")
    feature = reader.get("roads", page.ids[0], "internal")
    metric = project(feature.geometry, STORAGE_CRS, svc.store.metric_crs)
    points = [metric.interpolate(f, normalized=True) for f in (0.25, 0.5, 0.75)]
    lonlat = project(np.array(points, dtype=object), svc.store.metric_crs, STORAGE_CRS)
    return feature, metric, [(p.x, p.y) for p in lonlat]


def metres_from(metric_line, lonlat, svc) -> float:
    point = project(shapely.Point(*lonlat), STORAGE_CRS, svc.store.metric_crs)
    return metric_line.distance(point)


def amap_rows(road, first_serial: int):
    feature, _, points = road
    picked = gcoord(points)  # what a surveyor reads off Amap for these points
    return [
        [
            f"井盖{i}",
            f"41990101109{first_serial + i:05d}",
            "雨水",
            feature.properties["name"],
            "沉降",
            "已整治",
            "2023年5月1日",
            f"{lon:.7f}",
            f"{lat:.7f}",
        ]
        for i, (lon, lat) in enumerate(picked)
    ]


def test_a_gcj02_csv_with_chinese_headers_lands_on_the_road(app, svc, road, tmp_path):
    feature, metric_line, _ = road
    rows = amap_rows(road, 100)
    path = write_csv(tmp_path / "amap.csv", rows)
    result = run(app, path, "--layer", "manhole_covers", "--crs", "gcj02")
    assert result.exit_code == 0, result.output
    assert "已新增 3" in result.output and "gcj02" in result.output
    stored = covers(svc)
    for row in rows:
        cover = stored[row[1]]
        assert metres_from(metric_line, (cover.geometry.x, cover.geometry.y), svc) < 1.0
        # the same numbers taken as WGS84 lie hundreds of metres off the street
        assert metres_from(metric_line, (float(row[7]), float(row[8])), svc) > 100
        assert cover.properties["kind"] == "storm" and cover.properties["defect"] == "subsided"
        assert cover.properties["fixed_on"] == "2023-05-01" and cover.properties["road"] == feature.properties["name"]
        history = svc.store.history("manhole_covers", cover.fid)
        assert [h.action for h in history] == ["insert"] and history[0].actor == "cli"
    assert any(e.action == "import" and e.changes["inserted"] == [None, 3] for e in svc.store.audit("2000-01-01"))


def test_the_same_file_with_one_bad_row_imports_nothing_and_names_the_row(app, svc, road, tmp_path):
    rows = amap_rows(road, 200)
    rows.insert(1, ["井盖X", "4199010110900299", "火星", "南环路", "无", "待整治", "", rows[0][7], rows[0][8]])
    path = write_csv(tmp_path / "bad.csv", rows)
    before, audits = svc.reader.count("manhole_covers"), audit_count(svc)
    result = run(app, path, "--layer", "manhole_covers", "--crs", "gcj02")
    assert result.exit_code == 1
    # the header is row 1: the second record is spreadsheet row 3
    assert "第 3 行 [井盖类别] '火星'" in result.output and "须为以下之一" in result.output
    assert "未写入任何数据" in result.output
    english = run(app, path, "--layer", "manhole_covers", "--crs", "gcj02", "--lang", "en")
    assert "row 3 [井盖类别] '火星': Kind must be one of" in english.output
    assert svc.reader.count("manhole_covers") == before and audit_count(svc) == audits
    assert not any(row[1] in covers(svc) for row in rows)
    # outside the district (a row of the file moved 30 km east): named as such, nothing written
    rows[1] = list(rows[0])
    rows[1][1], rows[1][7] = "4199010110900298", f"{float(rows[0][7]) + 0.3:.7f}"
    outside = run(app, write_csv(tmp_path / "outside.csv", rows), "--layer", "manhole_covers", "--crs", "gcj02")
    assert outside.exit_code == 1 and "第 3 行 [经度/纬度]" in outside.output and "超出本区范围" in outside.output
    assert svc.reader.count("manhole_covers") == before and audit_count(svc) == audits


def test_dry_run_writes_nothing(app, svc, road, tmp_path):
    path = write_csv(tmp_path / "dry.csv", amap_rows(road, 300))
    before, audits = svc.reader.count("manhole_covers"), audit_count(svc)
    result = run(app, path, "--layer", "manhole_covers", "--crs", "gcj02", "--dry-run", "--lang", "en")
    assert result.exit_code == 0, result.output
    assert "would insert 3" in result.output and "dry run: nothing written" in result.output
    assert svc.reader.count("manhole_covers") == before and audit_count(svc) == audits


def test_upsert_by_key_updates_only_the_columns_the_file_has(app, svc, tmp_path):
    stored = covers(svc)
    codes = sorted(c for c, f in stored.items() if f.properties["defect"] == "none")[:2]
    old = {c: stored[c] for c in codes}
    new_code = "4199010110900401"
    rows = [[codes[0], "腐蚀"], [codes[1], "Detached"], [new_code, "无"]]
    path = write_csv(tmp_path / "upsert.csv", rows, headers=["部件编码", "病害"])
    # a new cover needs its kind and a place: the file has neither, so the third row is refused
    refused = run(app, path, "--layer", "manhole_covers", "--mode", "upsert", "--key", "code")
    assert refused.exit_code == 1 and "第 4 行" in refused.output
    assert all(covers(svc)[c].version == old[c].version for c in codes)
    path = write_csv(tmp_path / "upsert2.csv", rows[:2], headers=["部件编码", "病害"])
    before = svc.reader.count("manhole_covers")
    result = run(app, path, "--layer", "manhole_covers", "--mode", "upsert", "--key", "code")
    assert result.exit_code == 0, result.output
    assert "已更新 2" in result.output and "已新增 0" in result.output
    after = covers(svc)
    for code, defect in ((codes[0], "corroded"), (codes[1], "detached")):
        cover = after[code]
        assert cover.properties["defect"] == defect
        assert cover.version == old[code].version + 1
        assert {k: v for k, v in cover.properties.items() if k != "defect"} == {
            k: v for k, v in old[code].properties.items() if k != "defect"
        }
        assert cover.geometry.equals(old[code].geometry)
        last = svc.store.history("manhole_covers", cover.fid)[-1]
        assert last.action == "update" and last.changes == {"defect": ["none", defect]}
    assert svc.reader.count("manhole_covers") == before
    # the key must be unique in the file
    twice = write_csv(tmp_path / "twice.csv", [[codes[0], "无"], [codes[0], "腐蚀"]], headers=["部件编码", "病害"])
    again = run(app, twice, "--layer", "manhole_covers", "--mode", "upsert", "--key", "code")
    assert again.exit_code == 1 and "第 3 行 [部件编码]" in again.output and "与第 2 行重复" in again.output
    missing = run(app, path, "--layer", "manhole_covers", "--mode", "upsert")
    assert missing.exit_code != 0 and "--key" in missing.output


def test_replace_deletes_every_feature_and_keeps_them_restorable(app, svc, tmp_path):
    layer = "heating_stations"
    before = svc.reader.count(layer)
    data = svc.store.load(layer)
    first = svc.store.get(layer, int(data.fids[0]))
    spec = svc.registry[layer]
    lon, lat = first.geometry.x, first.geometry.y
    row = {f.name: first.properties[f.name] for f in spec.fields if not f.computed}
    headers = [*row, "lon", "lat"]
    values = [["" if v is None else v for v in row.values()] + [lon, lat]]
    path = write_csv(tmp_path / "replace.csv", values, headers=headers)
    deleted_before = len(svc.store.deleted(layer))
    result = run(app, path, "--layer", layer, "--mode", "replace", "--lang", "en")
    assert result.exit_code == 0, result.output
    assert f"delete {before}" in result.output and "insert 1" in result.output
    assert svc.reader.count(layer) == 1
    assert len(svc.store.deleted(layer)) == deleted_before + before
    assert [h.action for h in svc.store.history(layer, first.fid)][-1] == "delete"
    restored = svc.editing.restore(SETUP.__class__("admin", "user", roles=frozenset({"admin"})), layer, first.fid)
    assert restored.properties == first.properties and svc.reader.count(layer) == 2


def test_the_use_case_refuses_outside_the_district_and_writes_nothing(svc):
    admin = SETUP.__class__("admin", "user", roles=frozenset({"admin"}))
    before, audits = svc.reader.count("manhole_covers"), audit_count(svc)
    good = {"code": "4199010110900501", "kind": "storm"}
    far = shapely.Point(114.5, 33.7)
    near = svc.store.get("manhole_covers", int(svc.store.load("manhole_covers").fids[0])).geometry
    with pytest.raises(InvalidFeature) as refused:
        svc.editing.import_features(
            admin, "manhole_covers", [(good, near), ({**good, "code": "4199010110900502"}, far)]
        )
    assert refused.value.parameter == "geometry" and "feature 1" in refused.value.message
    viewer = SETUP.__class__("v", "user", roles=frozenset({"viewer"}))
    with pytest.raises(Exception) as forbidden:
        svc.editing.import_features(viewer, "manhole_covers", [(good, near)])
    assert getattr(forbidden.value, "status", None) == 403
    assert svc.reader.count("manhole_covers") == before and audit_count(svc) == audits
