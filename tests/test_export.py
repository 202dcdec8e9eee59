"""Exports (issue #11, part 3): every format read back by another reader (pyogrio/GDAL, openpyxl, csv, json) with
the store's features for the filter, counted independently on the store itself (GDAL reading the GeoPackage file, SQL
on the PostGIS table); Chinese and hostile text intact; Shapefile .prj/.cpg, short names and one .shp per geometry
family; output CRS (GCJ-02, EPSG:4547) and KML refusing another; public fields only for the public; the CLI; on
both backends."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from urllib.parse import quote

import geopandas as gpd
import numpy as np
import openpyxl
import psycopg
import pyogrio
import pytest
import shapely
from pyproj import Geod
from shapely.geometry import Point, Polygon

from geoapp.core import chinacoords
from geoapp.core.accounts import LoginPolicy
from geoapp.core.crs import parse_crs, transformer
from geoapp.errors import InvalidParameter
from geoapp.io import exporter
from geoapp.store.base import Query
from geoapp.web import create_app
from geoapp.web.cli import CLI, export_command
from tests.conftest import CHEAP_ARGON2, SETUP, Clock, demo_copy_in, login

pytestmark = pytest.mark.backends("gpkg", "postgis")

NOW = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC, 2023-11-15 06:13 in Asia/Shanghai
LAYER = "construction_hoardings"
HOSTILE = '中文<b>围挡</b>&"\'=HYPERLINK("http://x")'
SECRET = "保密施工单位甲"
SECRET_NOTE = "内部备注：勿外传"
FORMATS = tuple(exporter.FORMATS)


@pytest.fixture(scope="module")
def env(backend, request, tmp_path_factory, password_hash):
    """An app on a copy of the demo district with one hostile hoarding (removed, an internal contractor and note)
    and one hostile waterlogging point; yields the app, the store (file or URL), a planner's client and the new
    fids."""
    with demo_copy_in(backend, tmp_path_factory.mktemp("export"), request) as database:
        yield from _env(database, password_hash)


def _env(path, password_hash):
    clock = Clock(NOW)
    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "test-secret",
            "GEOAPP_DATABASE": str(path),
            "ARGON2_PARAMETERS": CHEAP_ARGON2,
            "LOGIN_POLICY": LoginPolicy(clock=clock),
            "CLOCK": clock,
            "GEOAPP_TIMEZONE": "Asia/Shanghai",  # the file's name is in local time
        }
    )
    svc = app.extensions["geoapp"]
    svc.store.add_user("planner", password_hash, ("planner",), actor=SETUP)
    square = Polygon([(113.300, 33.730), (113.301, 33.730), (113.301, 33.731), (113.300, 33.731)])
    hoarding = svc.editing.create(
        CLI,
        LAYER,
        {
            "site": HOSTILE,
            "agency": "housing",
            "status": "removed",
            "removed_on": "2023-10-01",
            "treatment": "greened",
            "contractor": SECRET,
            "notes": SECRET_NOTE,
        },
        square,
    )
    point = svc.editing.create(
        CLI,
        "waterlogging_points",
        {"name": HOSTILE, "road": "建设路", "status": "ponding", "max_depth_cm": 35, "contact_phone": "0391 1234567"},
        Point(113.305, 33.725),
    )
    planner = app.test_client()
    response, _ = login(planner, "planner")
    assert response.status_code in (302, 303), response.get_data(as_text=True)[:300]
    yield app, path, planner, {"hoarding": hoarding.fid, "point": point.fid}
    svc.close()


@pytest.fixture(scope="module")
def anonymous(env):
    return env[0].test_client()


@pytest.fixture(scope="module")
def stored(env):
    """The hoardings as the store holds them, read without the app (the independent count): GDAL on the
    GeoPackage file, SQL on the PostGIS table (its current features: deleted ones are kept in another table)."""
    database = env[1]
    if not str(database).startswith("postgresql"):
        return pyogrio.read_dataframe(database, layer=LAYER, fid_as_index=True)
    with psycopg.connect(str(database)) as conn:
        cursor = conn.execute(f'SELECT *, ST_AsBinary(geom) AS wkb FROM "{LAYER}" ORDER BY fid')
        names = [column.name for column in cursor.description]
        frame = gpd.GeoDataFrame.from_records(cursor.fetchall(), columns=names, index="fid")
    frame = frame.drop(columns="geom")
    return frame.set_geometry(gpd.GeoSeries.from_wkb(frame.pop("wkb").map(bytes), index=frame.index, crs=4326))


def _get(client, url: str):
    response = client.get(url)
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    return response


def read_back(content: bytes, fmt: str, folder) -> dict[int, dict]:
    """Each feature of an export by its store fid: its attributes as the other reader gives them, and
    ``_geometry`` (a shapely geometry; None for the ledgers of lines and areas, which carry WKT)."""
    path = folder / f"export.{exporter.FORMATS[fmt].extension}"
    path.write_bytes(content)
    out: dict[int, dict] = {}
    if fmt == "geojson":
        for feature in json.loads(content)["features"]:
            out[feature["id"]] = {**feature["properties"], "_geometry": shapely.geometry.shape(feature["geometry"])}
    elif fmt in ("gpkg", "fgb", "kml", "shp"):
        sources = [str(path)]
        if fmt == "shp":
            with zipfile.ZipFile(path) as archive:
                sources = [f"/vsizip/{path}/{n}" for n in archive.namelist() if n.endswith(".shp")]
        for source in sources:
            frame = pyogrio.read_dataframe(source, fid_as_index=fmt == "gpkg")
            for fid, row in frame.iterrows():
                record = {k: v for k, v in row.items() if k != "geometry"}
                key = int(fid) if fmt == "gpkg" else int(record["fid"])
                assert key not in out, f"feature {key} written twice"
                out[key] = {**record, "_geometry": row.geometry}
    elif fmt == "csv":
        lines = content.decode("utf-8-sig").split("\r\n")
        table = lines[lines.index("") + 1 :]  # the about lines, an empty line, then the table
        reader = csv.DictReader(io.StringIO("\r\n".join(table)))
        for row in reader:
            out[int(row["编号"])] = {**row, "_geometry": None}
    elif fmt == "xlsx":
        rows = list(openpyxl.load_workbook(path).worksheets[0].iter_rows(values_only=True))
        for values in rows[1:]:
            row = dict(zip(rows[0], values, strict=True))
            out[int(row["编号"])] = {**row, "_geometry": None}
    return out


def _title(record: dict, fmt: str):
    """The hoarding's site as the format carries it (a ledger under its label, KML as the Placemark's name)."""
    if fmt in ("csv", "xlsx"):
        return record["点位"]
    if fmt == "kml":
        return record["Name"]
    return record["site"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_reads_back_with_the_features_of_the_filter(env, stored, fmt, tmp_path):
    _, _, planner, added = env
    response = _get(planner, f"/api/layers/{LAYER}/export.{fmt}?status=removed")
    expected = set(stored.index[stored["status"] == "removed"])
    assert added["hoarding"] in expected and len(expected) < len(stored)  # the filter leaves some out
    features = read_back(response.data, fmt, tmp_path)
    assert set(features) == expected
    assert response.headers["X-Feature-Count"] == str(len(expected))
    hostile = features[added["hoarding"]]
    for fid in expected:  # the hostile site too: it starts with 中, no formula character to neutralise
        assert _title(features[fid], fmt) == stored.loc[fid, "site"]
    assert _title(hostile, fmt) == HOSTILE
    if fmt in ("csv", "xlsx"):  # the ledgers: labels, and a formula is never written
        assert hostile["状态"] == "已整治" and hostile["施工单位"] == SECRET
    else:  # the GIS formats keep the stored values
        assert hostile["status"] == "removed" and hostile["contractor"] == SECRET
    if fmt in ("geojson", "gpkg", "shp", "fgb", "kml"):  # geometry as stored (WGS84 by default; a Shapefile
        for fid in expected:  # turns outer rings clockwise)
            written, source = features[fid]["_geometry"], stored.loc[fid, "geometry"]
            assert shapely.normalize(written).equals_exact(shapely.normalize(source), 1e-7)


def test_the_ledgers_hold_dates_numbers_labels_and_geometry_as_wkt(env, stored, tmp_path):
    _, _, planner, added = env
    book = openpyxl.load_workbook(io.BytesIO(_get(planner, f"/api/layers/{LAYER}/export.xlsx").data))
    rows = list(book.worksheets[0].iter_rows(values_only=True))
    header = rows[0]
    assert header[-1] == "几何（WKT）"
    record = dict(zip(header, next(r for r in rows if r[0] == added["hoarding"]), strict=True))
    assert record["整治日期"].date().isoformat() == "2023-10-01"
    assert isinstance(record["围挡长度（m）"], float) and record["拆后处理"] == "绿化"
    assert record["点位"] == HOSTILE  # a text cell: it starts with 中, not a formula character
    assert shapely.from_wkt(record["几何（WKT）"]).equals_exact(stored.loc[added["hoarding"], "geometry"], 1e-7)
    about = dict(book.worksheets[1].iter_rows(min_row=2, values_only=True))
    assert about["坐标系"].startswith("EPSG:4326") and "合成" in about["数据说明"]

    english = env[0].test_client()  # ?lang= stays with a client: not the planner's
    points = _get(english, "/api/layers/waterlogging_points/export.csv?crs=EPSG:4547&lang=en").data.decode("utf-8-sig")
    table = points.split("\r\n")
    rows = list(csv.DictReader(io.StringIO("\r\n".join(table[table.index("") + 1 :]))))
    point = next(r for r in rows if int(r["ID"]) == added["point"])
    x, y = transformer("EPSG:4326", "EPSG:4547").transform(113.305, 33.725)
    assert float(point["X"]) == pytest.approx(x, abs=0.001) and float(point["Y"]) == pytest.approx(y, abs=0.001)
    assert point["Historic max depth (cm)"] == "35" and point["Status"] == "Ponding"
    about = dict(csv.reader(table[: table.index("")]))
    assert about["Coordinate system"].startswith("EPSG:4547") and "easting" in about["Coordinate system"]


def test_the_shapefile_zip_has_prj_cpg_short_names_and_one_shp_per_geometry_family(env, stored, tmp_path):
    _, _, planner, _ = env
    content = _get(planner, f"/api/layers/{LAYER}/export.shp?crs=EPSG:4547").data
    path = tmp_path / "hoardings.shp.zip"
    path.write_bytes(content)
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        for family in ("polygon", "line"):
            for ext in ("shp", "shx", "dbf", "prj", "cpg"):
                assert f"{LAYER}_{family}.{ext}" in names
            assert archive.read(f"{LAYER}_{family}.cpg").strip() == b"UTF-8"
        about = archive.read("about.txt").decode("utf-8-sig")
        assert "坐标系: EPSG:4547" in about and "合成的虚构数据" in about  # what it is, and that the demo is synthetic
    types = stored.geometry.geom_type
    for family, kinds in (("polygon", {"Polygon", "MultiPolygon"}), ("line", {"LineString", "MultiLineString"})):
        source = f"/vsizip/{path}/{LAYER}_{family}.shp"
        assert pyogrio.read_info(source)["crs"] == "EPSG:4547"
        frame = pyogrio.read_dataframe(source)
        assert set(frame["fid"]) == set(stored.index[types.isin(kinds)])

    points = _get(planner, "/api/layers/waterlogging_points/export.shp").data
    with zipfile.ZipFile(io.BytesIO(points)) as archive:
        assert {n.rsplit(".", 1)[0] for n in archive.namelist() if n not in ("fields.csv", "about.txt")} == {
            "waterlogging_points"
        }
        mapping = list(csv.DictReader(io.StringIO(archive.read("fields.csv").decode("utf-8-sig"))))
    short = {row["field"]: row["dbf_name"] for row in mapping}
    assert all(len(name.encode()) <= 10 for name in short.values()) and len(set(short.values())) == len(short)
    assert short["ponding_rain_mmh"] == "ponding_ra" and short["name"] == "name"
    assert next(r for r in mapping if r["field"] == "max_depth_cm")["label_zh"] == "历史最大积水深度"
    (tmp_path / "points.shp.zip").write_bytes(points)
    dbf = pyogrio.read_info(f"/vsizip/{tmp_path}/points.shp.zip/waterlogging_points.shp")["fields"]
    assert set(dbf) == set(short.values())


def test_short_names_are_unique_and_the_same_every_time():
    names = ["contractor_name", "contractor_phone", "contract01", "status", "contractor_x"]
    short = exporter.short_names(names)
    assert short == exporter.short_names(names)
    assert len(set(short.values())) == len(names) and all(len(s) <= 10 for s in short.values())
    assert short["status"] == "status" and short["contract01"] == "contract01"


def test_a_gcj02_export_holds_the_forward_transform_of_the_stored_coordinates(env, stored, tmp_path):
    _, _, planner, _ = env
    features = json.loads(_get(planner, f"/api/layers/{LAYER}/export.geojson?crs=gcj02").data)["features"]
    assert {f["id"] for f in features} == set(stored.index)
    geod = Geod(ellps="WGS84")
    for feature in features:
        written = np.array(shapely.get_coordinates(shapely.geometry.shape(feature["geometry"])))
        source = shapely.get_coordinates(stored.loc[feature["id"], "geometry"])
        lon, lat = chinacoords.wgs84_to_gcj02(source[:, 0], source[:, 1])
        assert np.allclose(written[:, 0], lon, atol=1e-7) and np.allclose(written[:, 1], lat, atol=1e-7)
        _, _, metres = geod.inv(source[:, 0], source[:, 1], written[:, 0], written[:, 1])
        assert np.all((metres > 100) & (metres < 1000))  # GCJ-02 is hundreds of metres off in this district


def test_an_epsg_4547_export_is_read_by_gdal_in_that_crs(env, stored, tmp_path):
    _, _, planner, _ = env
    path = tmp_path / "metric.gpkg"
    path.write_bytes(_get(planner, f"/api/layers/{LAYER}/export.gpkg?crs=EPSG:4547").data)
    info = pyogrio.read_info(path)
    assert info["crs"] == "EPSG:4547" and "合成的虚构数据" in info["layer_metadata"]["DESCRIPTION"]
    frame = pyogrio.read_dataframe(path, fid_as_index=True)
    to_metres = transformer("EPSG:4326", "EPSG:4547")
    for fid, geometry in frame.geometry.items():
        xy = shapely.get_coordinates(stored.loc[fid, "geometry"])
        x, y = to_metres.transform(xy[:, 0], xy[:, 1])
        assert np.allclose(shapely.get_coordinates(geometry), np.column_stack([x, y]), atol=0.01)
    assert parse_crs("EPSG:4547").geographic is False


def test_kml_in_another_crs_than_wgs84_is_refused_naming_why(anonymous):
    for code in ("gcj02", "EPSG:4547"):
        response = anonymous.get(f"/api/layers/{LAYER}/export.kml?crs={code}")
        assert response.status_code == 400
        error = response.json["error"]
        assert error["parameter"] == "crs" and "WGS84" in error["message"]
    assert anonymous.get(f"/api/layers/{LAYER}/export.kml?crs=EPSG:4326").status_code == 200


def _internal(registry, layer_id: str) -> list[str]:
    return [f.name for f in registry[layer_id].fields if not f.public]


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_public_export_has_no_internal_field_and_staffs_has_them(env, anonymous, fmt, tmp_path):
    app, _, planner, added = env
    registry = app.extensions["geoapp"].registry
    internal = _internal(registry, LAYER)
    labels = [registry[LAYER].field(name).label.zh for name in internal]
    assert internal == ["contractor", "notes"]
    public = _get(anonymous, f"/api/layers/{LAYER}/export.{fmt}")
    features = read_back(public.data, fmt, tmp_path)
    assert added["hoarding"] in features
    for record in features.values():
        assert not set(record) & {*internal, *labels}
        assert SECRET not in map(str, record.values()) and SECRET_NOTE not in map(str, record.values())
    if fmt not in ("gpkg", "shp", "xlsx", "fgb"):  # text formats: not even in a description or a header
        assert SECRET.encode() not in public.data and b"contractor" not in public.data
    staff = read_back(_get(planner, f"/api/layers/{LAYER}/export.{fmt}").data, fmt, tmp_path)[added["hoarding"]]
    assert SECRET in map(str, staff.values()) and SECRET_NOTE in map(str, staff.values())
    assert public.headers["Content-Type"].startswith(exporter.FORMATS[fmt].media_type)


def test_the_file_is_named_after_the_layer_and_the_local_time(anonymous):
    response = _get(anonymous, f"/api/layers/{LAYER}/export.shp")
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="{LAYER}_20231115-0613.shp.zip"; '
        f"filename*=UTF-8''{quote('建筑围挡_20231115-0613.shp.zip', safe='')}"
    )
    again = anonymous.get(f"/api/layers/{LAYER}/export.shp", headers={"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304
    other = anonymous.get(f"/api/layers/{LAYER}/export.gpkg", headers={"If-None-Match": response.headers["ETag"]})
    assert other.status_code == 200  # another format is another file


def test_staffs_downloads_are_private_and_not_stored(env):
    response = _get(env[2], f"/api/layers/{LAYER}/export.gpkg")
    assert response.cache_control.private and response.cache_control.no_store


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("export.docx", "format"),
        ("export.geojson?crs=EPSG:999999", "crs"),
        ("export.geojson?crs=wgs84;drop", "crs"),
        ("export.geojson?status=gone", "status"),
        ("export.geojson?colour=red", "colour"),
        ("export.geojson?contractor=x", "contractor"),  # an internal field is no filter for the public
        ("export.geojson?limit=10", "limit"),
        ("export.geojson?bbox=1,2,3", "bbox"),
    ],
)
def test_bad_requests_are_400_in_the_one_error_shape(anonymous, query, parameter):
    response = anonymous.get(f"/api/layers/{LAYER}/{query}")
    assert response.status_code == 400, response.get_data(as_text=True)[:300]
    assert set(response.json) == {"error"} and response.json["error"]["parameter"] == parameter


def test_every_page_is_walked_once_by_keyset_and_by_distance(env, stored):
    app, _, _, _ = env
    svc = app.extensions["geoapp"]
    layer = svc.registry[LAYER]
    crs = parse_crs("EPSG:4326")
    data = exporter.read(svc.reader, layer, Query(), "internal", crs, page_size=7)
    assert data.fids == sorted(stored.index)  # every feature once, in fid order, over seven pages
    near = Query(near=(113.30, 33.73, 3000.0))
    by_distance = exporter.read(svc.reader, layer, near, "internal", crs, page_size=5)
    whole = exporter.read(svc.reader, layer, near, "internal", crs, page_size=10_000)
    assert by_distance.fids == whole.fids and len(set(whole.fids)) == len(whole.fids) > 5
    with pytest.raises(InvalidParameter, match="at most 10"):
        exporter.read(svc.reader, layer, Query(), "internal", crs, most=10)


def test_the_cli_writes_the_file_and_refuses_a_bad_format(env, stored, tmp_path):
    app, _, _, added = env
    runner = app.test_cli_runner()
    target = tmp_path / "removed.gpkg"
    result = runner.invoke(
        args=["geoapp", "export", "--layer", LAYER, "--format", "gpkg", "--where", "status=removed",
              "--crs", "EPSG:4490", "--output", str(target)]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    frame = pyogrio.read_dataframe(target, fid_as_index=True)
    assert set(frame.index) == set(stored.index[stored["status"] == "removed"])
    either = tmp_path / "either.gpkg"
    result = runner.invoke(
        args=["geoapp", "export", "--layer", LAYER, "--format", "gpkg", "--where", "status=removed",
              "--where", "status=pending", "--output", str(either)]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert set(pyogrio.read_dataframe(either, fid_as_index=True).index) == set(
        stored.index[stored["status"].isin(["removed", "pending"])]
    )
    assert frame.loc[added["hoarding"], "contractor"] == SECRET  # the operator sees internal fields
    assert pyogrio.read_info(target)["crs"] == "EPSG:4490"

    public = tmp_path / "public.geojson"
    result = runner.invoke(args=["geoapp", "export", "--layer", LAYER, "--format", "geojson", "--public",
                                 "--output", str(public)])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert SECRET.encode() not in public.read_bytes()
    sites = {f["id"]: f["properties"]["site"] for f in json.loads(public.read_bytes())["features"]}
    assert sites[added["hoarding"]] == HOSTILE and set(sites) == set(stored.index)

    for args, message in (
        (["--format", "docx"], "docx"),
        (["--format", "kml", "--crs", "bd09"], "WGS84"),
        (["--format", "csv", "--where", "colour=red"], "colour"),
        (["--format", "csv", "--where", "nothing"], "FIELD=VALUE"),
        (["--format", "csv", "--where", "site=a", "--where", "site=b"], "given twice"),
    ):
        result = runner.invoke(args=["geoapp", "export", "--layer", LAYER, *args, "--output", str(tmp_path / "x")])
        assert result.exit_code != 0 and message in result.output, result.output
    assert not (tmp_path / "x").exists()
    choices = next(p for p in export_command.params if p.name == "fmt").type.choices
    assert list(choices) == list(exporter.FORMATS)  # the command offers what the exporter writes


def test_an_empty_selection_is_an_empty_file_of_the_layer(anonymous, tmp_path):
    for fmt in ("gpkg", "shp", "fgb", "geojson"):
        response = _get(anonymous, f"/api/layers/{LAYER}/export.{fmt}?bbox=100,20,100.001,20.001")
        assert read_back(response.data, fmt, tmp_path) == {}
        assert response.headers["X-Feature-Count"] == "0"


def test_kml_is_well_formed_kml_2_2_with_styles_names_and_escaped_balloons(env, anonymous):
    from xml.etree import ElementTree as ET

    _, _, _, added = env
    content = _get(anonymous, f"/api/layers/{LAYER}/export.kml?status=removed").data
    assert content.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    ns = {"k": exporter.KML_NS}
    root = ET.fromstring(content)
    assert root.tag == f"{{{exporter.KML_NS}}}kml"
    styles = {s.get("id") for s in root.iterfind(".//k:Style", ns)}
    placemark = root.find(f".//k:Placemark[@id='{LAYER}.{added['hoarding']}']", ns)
    assert placemark.findtext("k:name", namespaces=ns) == HOSTILE  # text, not markup
    assert placemark.findtext("k:styleUrl", namespaces=ns) == "#s_removed" and "s_removed" in styles
    assert root.find(".//k:Style[@id='s_removed']/k:LineStyle/k:color", ns).text == "ff327d2e"  # #2e7d32 as aabbggrr
    balloon = ET.fromstring(placemark.findtext("k:description", namespaces=ns))  # HTML escaped once more for XML
    cells = [td.text for td in balloon.iter("td")]
    assert HOSTILE in cells and "已整治" in cells and "绿化" in cells
    data = {d.get("name"): d.findtext("k:value", namespaces=ns) for d in placemark.iterfind(".//k:Data", ns)}
    assert data["status"] == "removed" and data["fid"] == str(added["hoarding"]) and "contractor" not in data
    outer = placemark.find(".//k:Polygon/k:outerBoundaryIs/k:LinearRing/k:coordinates", ns).text.split()
    assert outer[0] == "113.3000000,33.7300000"


def test_no_layer_gives_the_public_an_internal_field(env, anonymous, tmp_path):
    registry = env[0].extensions["geoapp"].registry
    for layer in registry:
        internal = {f.name for f in layer.fields if not f.public}
        labels = {label for f in layer.fields if not f.public for label in (f.label.zh, f.label.en)}
        for fmt in ("geojson", "csv"):
            response = _get(anonymous, f"/api/layers/{layer.id}/export.{fmt}")
            records = read_back(response.data, fmt, tmp_path)
            assert len(records) == int(response.headers["X-Feature-Count"]) > 0
            for record in records.values():
                assert not set(record) & internal and not set(record) & labels, (layer.id, fmt)
