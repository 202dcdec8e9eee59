"""`geoapp import` reading the bureau's files: Shapefiles in EPSG:4547 with GBK text, XLSX, GeoJSON, KML, GeoPackage,
CSV encodings, x/y columns and their CRS, swapped lon/lat, and hostile archives refused with nothing written."""

from __future__ import annotations

import datetime as dt
import io
import json
import stat
import zipfile

import geopandas as gpd
import pyogrio
import pytest
import shapely
from openpyxl import Workbook

from geoapp.core.crs import STORAGE_CRS, project
from geoapp.io import archives
from geoapp.web import create_app
from tests.conftest import CHEAP_ARGON2, demo_copy_in

#: inside the demo district (lon, lat)
INSIDE = [(113.30, 33.73), (113.31, 33.735), (113.305, 33.74)]


@pytest.fixture(scope="module")
def app(request, tmp_path_factory):
    with demo_copy_in("gpkg", tmp_path_factory.mktemp("formats"), request) as database:
        app = create_app(
            {
                "TESTING": True,
                "SECRET_KEY": "test-secret",
                "GEOAPP_DATABASE": str(database),
                "ARGON2_PARAMETERS": CHEAP_ARGON2,
                "GEOAPP_IMPORT_MAX_ROWS": "50",
            }
        )
        yield app
        app.extensions["geoapp"].close()


@pytest.fixture(scope="module")
def svc(app):
    return app.extensions["geoapp"]


def run(app, *args):
    return app.test_cli_runner().invoke(args=["geoapp", "import", *map(str, args)])


def by_code(svc) -> dict:
    data = svc.store.load("manhole_covers")
    return {c: svc.store.get("manhole_covers", int(f)) for f, c in zip(data.fids, data.columns["code"], strict=True)}


def frame(serial: int, crs: str = STORAGE_CRS) -> gpd.GeoDataFrame:
    """Three covers with Chinese text, in ``crs``."""
    points = [shapely.Point(p) for p in INSIDE]
    if crs != STORAGE_CRS:
        points = list(project(shapely.points(INSIDE), STORAGE_CRS, crs))
    return gpd.GeoDataFrame(
        {
            "code": [f"41990101109{serial + i:05d}" for i in range(3)],
            "kind": ["污水", "雨水", "燃气"],
            "road": ["建设路", "人民路（东段）", "解放大道"],
            "defect": ["无", "破损" if False else "沉降", "腐蚀"],
        },
        geometry=points,
        crs=crs,
    )


def zipped(folder, name: str, *, keep=(".shp", ".shx", ".dbf", ".prj", ".cpg")) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for path in sorted(folder.glob(f"{name}.*")):
            if path.suffix.lower() in keep:
                z.write(path, path.name)
    return out.getvalue()


# -- Shapefiles ---------------------------------------------------------------------------------


def test_a_shapefile_in_epsg_4547_with_gbk_text_imports_intact(app, svc, tmp_path):
    gdf = frame(600, "EPSG:4547")
    shp = tmp_path / "covers.shp"
    pyogrio.write_dataframe(gdf, shp, encoding="GBK")
    assert (tmp_path / "covers.cpg").read_text().strip().upper() in ("GBK", "CP936", "936")
    assert "建设路".encode("gbk") in (tmp_path / "covers.dbf").read_bytes()  # the text really is GBK
    archive = tmp_path / "covers.zip"
    archive.write_bytes(zipped(tmp_path, "covers"))
    result = run(app, archive, "--layer", "manhole_covers")
    assert result.exit_code == 0, result.output
    assert "EPSG:4547" in result.output and "covers.prj" in result.output
    stored = by_code(svc)
    for i, row in gdf.iterrows():
        cover = stored[row["code"]]
        assert cover.properties["road"] == row["road"]
        assert shapely.Point(INSIDE[i]).distance(cover.geometry) < 1e-7  # about a centimetre
    assert stored[gdf["code"][1]].properties["defect"] == "subsided"


def test_a_shapefile_without_cpg_needs_its_encoding(app, svc, tmp_path):
    gdf = frame(610, "EPSG:4547")
    pyogrio.write_dataframe(gdf, tmp_path / "nocpg.shp", encoding="GBK")
    archive = tmp_path / "nocpg.zip"
    archive.write_bytes(zipped(tmp_path, "nocpg", keep=(".shp", ".shx", ".dbf", ".prj")))
    refused = run(app, archive, "--layer", "manhole_covers", "--lang", "en")
    assert refused.exit_code != 0 and "no .cpg" in refused.output and "GBK" in refused.output
    assert gdf["code"][0] not in by_code(svc)
    result = run(app, archive, "--layer", "manhole_covers", "--encoding", "GBK")
    assert result.exit_code == 0, result.output
    assert by_code(svc)[gdf["code"][2]].properties["road"] == "解放大道"


def test_a_shapefile_without_prj_needs_a_crs_and_says_what_it_sees(app, svc, tmp_path):
    gdf = frame(620, "EPSG:4526")  # with the zone prefix 38
    pyogrio.write_dataframe(gdf, tmp_path / "noprj.shp", encoding="UTF-8")
    archive = tmp_path / "noprj.zip"
    archive.write_bytes(zipped(tmp_path, "noprj", keep=(".shp", ".shx", ".dbf", ".cpg")))
    refused = run(app, archive, "--layer", "manhole_covers", "--lang", "en")
    assert refused.exit_code != 0
    assert "no .prj" in refused.output and "zone prefix 38 (EPSG:4526" in refused.output
    result = run(app, archive, "--layer", "manhole_covers", "--crs", "EPSG:4526")
    assert result.exit_code == 0, result.output
    assert shapely.Point(INSIDE[0]).distance(by_code(svc)[gdf["code"][0]].geometry) < 1e-7


# -- hostile archives ------------------------------------------------------------------------------


def _zip(members: list[tuple[zipfile.ZipInfo | str, bytes]]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for info, data in members:
            z.writestr(info, data)
    return out.getvalue()


def _symlink(name: str, target: str) -> tuple[zipfile.ZipInfo, bytes]:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info, target.encode()


HOSTILE = {
    "bomb": ([("covers.dbf", b"\0" * (300 * 1024 * 1024))], "zip bomb"),
    "traversal": ([("../../covers.shp", b"x"), ("covers.dbf", b"x")], "outside the archive"),
    "absolute": ([("/etc/covers.shp", b"x")], "outside the archive"),
    "drive": ([("C:/covers.shp", b"x")], "outside the archive"),
    "backslash": ([("..\\covers.shp", b"x")], "outside the archive"),
    "symlink": ([_symlink("covers.shp", "/etc/passwd")], "symbolic link"),
    "nested": ([("inner.zip", b"PK\x03\x04")], "itself an archive"),
}


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile")
    out = {}
    for name, (members, _) in HOSTILE.items():
        path = folder / f"{name}.zip"
        path.write_bytes(_zip(members))
        out[name] = path
    return out


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_hostile_archives_are_refused_with_nothing_written(app, svc, hostile, kind, tmp_path):
    before = svc.reader.count("manhole_covers")
    result = run(app, hostile[kind], "--layer", "manhole_covers", "--lang", "en")
    assert result.exit_code != 0
    assert HOSTILE[kind][1] in result.output, result.output
    assert svc.reader.count("manhole_covers") == before


def test_extraction_stops_at_the_size_the_header_claims(tmp_path):
    path = tmp_path / "liar.zip"
    path.write_bytes(_zip([("covers.dbf", b"\0" * 100_000)]))
    with zipfile.ZipFile(path) as z:
        members = archives.check_members(z)
        lie = [archives.Member(members[0].name, 1000)]
        folder = tmp_path / "out"
        folder.mkdir()
        with pytest.raises(Exception, match="beyond what its header says"):
            archives.extract(z, lie, folder)


# -- tables -----------------------------------------------------------------------------------------


def test_xlsx_with_excel_dates_labels_and_swapped_coordinates(app, svc, tmp_path):
    book = Workbook()
    sheet = book.active
    sheet.append(["部件编码", "井盖类别", "病害", "状态", "整治日期", "经度", "纬度", "备注"])
    sheet.append([4199010110900701, "Storm water", "无", "已整治", dt.datetime(2023, 5, 1), 113.30, 33.73, "x"])
    sheet.append(["4199010110900702", "污水", "沉降", "fixed", 45000, "113.31", "33.735", ""])
    book.save(tmp_path / "ledger.xlsx")
    result = run(app, tmp_path / "ledger.xlsx", "--layer", "manhole_covers")
    assert result.exit_code == 0, result.output
    assert "列“备注”不对应图层的任何字段" in result.output  # an unknown header is a warning
    stored = by_code(svc)
    assert stored["4199010110900701"].properties["fixed_on"] == "2023-05-01"
    assert stored["4199010110900701"].properties["kind"] == "storm"
    assert stored["4199010110900702"].properties["fixed_on"] == "2023-03-15"  # Excel's day 45000
    swapped = Workbook()
    swapped.active.append(["部件编码", "井盖类别", "经度", "纬度"])
    swapped.active.append(["4199010110900703", "污水", 33.73, 113.30])
    swapped.save(tmp_path / "swapped.xlsx")
    refused = run(app, tmp_path / "swapped.xlsx", "--layer", "manhole_covers", "--lang", "en")
    assert refused.exit_code == 1 and "row 2 [经度/纬度]" in refused.output and "look swapped" in refused.output
    assert "4199010110900703" not in by_code(svc)


def test_xy_columns_need_a_crs_and_the_easting_is_found_by_magnitude(app, svc, tmp_path):
    east, north = project(shapely.Point(INSIDE[0]), STORAGE_CRS, "EPSG:4526").coords[0]
    # Chinese surveying: X is the northing, Y the easting (with its zone prefix)
    text = f'部件编码,井盖类别,X坐标,Y坐标\n4199010110900801,污水,"{north:,.3f}",{east:.3f}\n'
    path = tmp_path / "survey.csv"
    path.write_text(text, encoding="utf-8")
    refused = run(app, path, "--layer", "manhole_covers", "--lang", "en")
    assert refused.exit_code != 0
    assert "zone prefix 38 (EPSG:4526" in refused.output and "--crs" in refused.output
    # a CRS that does not fit the numbers: every row fails, and the report says what the numbers look like
    wrong = run(app, path, "--layer", "manhole_covers", "--crs", "EPSG:4326", "--lang", "en")
    assert wrong.exit_code == 1 and "every row failed" in wrong.output
    assert "zone prefix 38 (EPSG:4526" in wrong.output and "the CRS used is EPSG:4326" in wrong.output
    result = run(app, path, "--layer", "manhole_covers", "--crs", "EPSG:4526")
    assert result.exit_code == 0, result.output
    assert "“Y坐标”作为东坐标" in result.output
    assert shapely.Point(INSIDE[0]).distance(by_code(svc)["4199010110900801"].geometry) < 1e-7


def test_csv_in_gbk_needs_its_encoding(app, svc, tmp_path):
    path = tmp_path / "gbk.csv"
    path.write_bytes("部件编码,井盖类别,所在道路,经度,纬度\n4199010110900901,污水,建设路,113.3,33.73\n".encode("gbk"))
    refused = run(app, path, "--layer", "manhole_covers", "--lang", "en")
    assert refused.exit_code != 0 and "not UTF-8" in refused.output and "GBK" in refused.output
    result = run(app, path, "--layer", "manhole_covers", "--encoding", "GBK")
    assert result.exit_code == 0, result.output
    assert by_code(svc)["4199010110900901"].properties["road"] == "建设路"


def test_a_row_with_a_bad_value_and_swapped_coordinates_is_told_both(app, svc, tmp_path):
    path = tmp_path / "two_problems.csv"
    path.write_text(
        "部件编码,井盖类别,所在道路,经度,纬度\n4199010110900921,污水,建设路,113.3,33.73\n"
        "4199010110900922,火星,建设路,33.731,113.301\n",
        encoding="utf-8",
    )
    refused = run(app, path, "--layer", "manhole_covers", "--lang", "en")
    assert refused.exit_code != 0 and "2 problem(s) in 1 row(s)" in refused.output, refused.output
    row3 = [line for line in refused.output.splitlines() if "row 3" in line]
    assert any("火星" in line for line in row3) and any("swapped" in line for line in row3), refused.output
    assert "4199010110900921" not in by_code(svc)  # nothing written


def test_a_missing_required_column_and_a_mapping(app, svc, tmp_path):
    path = tmp_path / "mapped.csv"
    path.write_text("井号,类别,lng,lat\n4199010110900911,雨水,113.3,33.73\n", encoding="utf-8")
    refused = run(app, path, "--layer", "manhole_covers", "--lang", "en")
    assert refused.exit_code != 0 and "required fields" in refused.output and "Component code" in refused.output
    result = run(app, path, "--layer", "manhole_covers", "--column", "井号=code", "--column", "类别=kind")
    assert result.exit_code == 0, result.output
    assert by_code(svc)["4199010110900911"].properties["kind"] == "storm"


def test_too_many_rows_are_refused_before_checking(app, svc, tmp_path):
    lines = ["部件编码,井盖类别,经度,纬度"] + [f"41990101109{9000 + i:05d},污水,113.3,33.73" for i in range(51)]
    path = tmp_path / "many.csv"
    path.write_text("\n".join(lines), encoding="utf-8")
    before = svc.reader.count("manhole_covers")
    result = run(app, path, "--layer", "manhole_covers", "--lang", "en")
    assert result.exit_code != 0 and "more than 50 rows" in result.output
    assert svc.reader.count("manhole_covers") == before


# -- GeoJSON, KML, GeoPackage -------------------------------------------------------------------------


def test_geojson_kml_and_geopackage(app, svc, tmp_path):
    gdf = frame(950)
    gdf.to_file(tmp_path / "covers.geojson", driver="GeoJSON")
    result = run(app, tmp_path / "covers.geojson", "--layer", "manhole_covers")
    assert result.exit_code == 0, result.output
    assert by_code(svc)[gdf["code"][1]].properties["road"] == "人民路（东段）"

    kml = frame(960).rename(columns={"code": "Name"})
    pyogrio.write_dataframe(kml, tmp_path / "covers.kml", driver="LIBKML")
    result = run(app, tmp_path / "covers.kml", "--layer", "manhole_covers", "--column", "Name=code")
    assert result.exit_code == 0, result.output
    assert by_code(svc)[kml["Name"][2]].properties["road"] == "解放大道"

    two = tmp_path / "two.gpkg"
    frame(970, "EPSG:4547").to_file(two, layer="a", driver="GPKG")
    frame(980).to_file(two, layer="b", driver="GPKG")
    refused = run(app, two, "--layer", "manhole_covers", "--lang", "en")
    assert refused.exit_code != 0 and "--source-layer" in refused.output
    result = run(app, two, "--layer", "manhole_covers", "--source-layer", "a")
    assert result.exit_code == 0, result.output
    assert "EPSG:4547" in result.output
    assert shapely.Point(INSIDE[2]).distance(by_code(svc)["4199010110900972"].geometry) < 1e-7


def test_a_file_that_is_not_what_its_name_says(app, tmp_path):
    path = tmp_path / "covers.zip"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": []}))
    result = run(app, path, "--layer", "manhole_covers", "--lang", "en")
    assert result.exit_code != 0 and "content is not" in result.output


def test_wkt_columns_lines_polygons_and_invalid_shapes(app, svc, tmp_path):
    (x0, y0), (x1, y1) = INSIDE[0], INSIDE[1]
    square = f"POLYGON (({x0} {y0}, {x0 + 0.001} {y0}, {x0 + 0.001} {y0 + 0.001}, {x0} {y0 + 0.001}, {x0} {y0}))"
    bowtie = f"POLYGON (({x0} {y0}, {x0 + 0.001} {y0 + 0.001}, {x0 + 0.001} {y0}, {x0} {y0 + 0.001}, {x0} {y0}))"
    multi = f"MULTIPOLYGON ((({x1} {y1}, {x1 + 0.001} {y1}, {x1 + 0.001} {y1 + 0.001}, {x1} {y1})))"
    path = tmp_path / "cells.csv"
    path.write_text(
        f'网格编码,社区,面积,WKT\nG-T-1,东城社区,1,"{square}"\nG-T-2,东城社区,,"{bowtie}"\nG-T-3,,,"not a shape"\n',
        encoding="utf-8",
    )
    before = svc.reader.count("grid_cells")
    refused = run(app, path, "--layer", "grid_cells", "--lang", "en")
    assert refused.exit_code == 1
    assert "row 3 [WKT]" in refused.output and "edges cross each other" in refused.output
    assert "row 4 [WKT] 'not a shape': Not a valid WKT shape" in refused.output
    assert "is computed from the shape" in refused.output  # the 面积 column: a warning, not a value
    assert svc.reader.count("grid_cells") == before
    path.write_text(f'网格编码,WKT\nG-T-1,"{square}"\nG-T-3,"{multi}"\n', encoding="utf-8")
    result = run(app, path, "--layer", "grid_cells")
    assert result.exit_code == 0, result.output
    data = svc.store.load("grid_cells")
    cells = {c: svc.store.get("grid_cells", int(f)) for f, c in zip(data.fids, data.columns["code"], strict=True)}
    assert cells["G-T-3"].geometry.geom_type == "Polygon"  # a one-part MultiPolygon taken as its polygon
    assert 9_000 < cells["G-T-1"].properties["area_m2"] < 12_000  # computed in metres, about 93 m x 111 m
    line = f"LINESTRING ({x0} {y0}, {x1} {y1})"
    roads = tmp_path / "roads.csv"
    roads.write_text(f'名称,等级,几何\n测试路,支路,"{line}"\n', encoding="utf-8")
    result = run(app, roads, "--layer", "roads")
    assert result.exit_code == 0, result.output


def test_kmz_and_a_cautioned_crs(app, svc, tmp_path):
    kml = frame(990).rename(columns={"code": "Name"})
    pyogrio.write_dataframe(kml, tmp_path / "doc.kml", driver="LIBKML")
    with zipfile.ZipFile(tmp_path / "covers.kmz", "w") as z:
        z.write(tmp_path / "doc.kml", "doc.kml")
    result = run(app, tmp_path / "covers.kmz", "--layer", "manhole_covers", "--column", "Name=code")
    assert result.exit_code == 0, result.output
    assert by_code(svc)[kml["Name"][0]].properties["road"] == "建设路"
    # Xian 1980 3-degree zone 38 with prefix: imported, with the caution in the report
    east, north = project(shapely.Point(INSIDE[0]), STORAGE_CRS, "EPSG:2362").coords[0]
    path = tmp_path / "xian80.csv"
    path.write_text(
        f"部件编码,井盖类别,东坐标,北坐标\n4199010110900995,污水,{east:.2f},{north:.2f}\n", encoding="utf-8"
    )
    checked = run(app, path, "--layer", "manhole_covers", "--crs", "EPSG:2362", "--dry-run", "--lang", "en")
    assert checked.exit_code == 0, checked.output
    assert "warning: Xian 1980 coordinates are converted to WGS84 without a datum shift" in checked.output


def test_imported_points_are_in_the_geopackage_spatial_index(app, svc, tmp_path):
    """GIS clients read the R-tree: every imported cover is in it at its own position."""
    import sqlite3

    lines = ["部件编码,井盖类别,经度,纬度"] + [f"41990101109070{i:02d},污水,{x},{y}" for i, (x, y) in enumerate(INSIDE)]
    path = tmp_path / "indexed.csv"
    path.write_text("\n".join(lines), encoding="utf-8")
    assert run(app, path, "--layer", "manhole_covers").exit_code == 0
    stored = {c: f for c, f in by_code(svc).items() if c.startswith("41990101109070")}
    assert len(stored) == 3
    conn = sqlite3.connect(app.config["GEOAPP_DATABASE"])
    try:
        for cover in stored.values():
            row = conn.execute(
                "SELECT minx, maxx, miny, maxy FROM rtree_manhole_covers_geom WHERE id = ?", (cover.fid,)
            ).fetchone()
            x, y = cover.geometry.x, cover.geometry.y
            # SQLite's R-tree keeps 32-bit floats, rounded outwards: a box of a few metres around the point
            assert row is not None and row[0] <= x <= row[1] and row[2] <= y <= row[3]
            assert row[1] - row[0] < 1e-4 and row[3] - row[2] < 1e-4
    finally:
        conn.close()


def test_columns_named_as_easting_and_northing(app, svc, tmp_path):
    east, north = project(shapely.Point(INSIDE[1]), STORAGE_CRS, "EPSG:4547").coords[0]
    path = tmp_path / "en.csv"
    path.write_text(f"no,type,E,N\n4199010110907101,sewage,{east:.3f},{north:.3f}\n", encoding="utf-8")
    args = ["--layer", "manhole_covers", "--crs", "EPSG:4547", "--column", "no=code", "--column", "type=kind"]
    result = run(app, path, *args, "--column", "E=easting", "--column", "N=northing")
    assert result.exit_code == 0, result.output
    assert shapely.Point(INSIDE[1]).distance(by_code(svc)["4199010110907101"].geometry) < 1e-7
    empty = tmp_path / "empty.csv"
    empty.write_text("部件编码,井盖类别,经度,纬度\n", encoding="utf-8")
    refused = run(app, empty, "--layer", "manhole_covers", "--lang", "en")
    assert refused.exit_code != 0 and "no rows" in refused.output
