"""Security and robustness review of issue #11 (imports, exports, coordinate systems, OGC API - Features).

Each test is a finding: it fails while the defect is there, and its docstring says what is wrong and what should
happen. Real files (CSV, XLSX written with openpyxl and then altered as a hostile sender would), real HTTP through
``app.test_client()`` and the real upload page, no mocks. What the review checked and found right is listed in the
review report, not here (a test that cannot fail proves nothing).
"""

from __future__ import annotations

import io
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import zipfile
from pathlib import Path

import geopandas as gpd
import openpyxl
import pytest
import shapely

from geoapp.config import PROJECT_ROOT
from geoapp.core.accounts import LoginPolicy
from geoapp.store.base import Query
from geoapp.web import create_app
from tests.conftest import CHEAP_ARGON2, SETUP, demo_copy_in, login

COVERS, HOARDINGS = "manhole_covers", "construction_hoardings"
HEADER = ["部件编码", "井盖类别", "所在道路", "状态", "整治日期", "经度", "纬度"]
ROW = ["4199010110901001", "污水", "建设路", "已整治", "2023-05-01", 113.3, 33.73]
GOOD = ",".join(HEADER) + "\n" + ",".join(map(str, ROW)) + "\n"


@pytest.fixture(scope="module")
def site(request, tmp_path_factory, password_hash):
    """An app on a copy of the demo district with one administrator, uploads kept in a folder of the test's own."""
    folder = tmp_path_factory.mktemp("review11")
    with demo_copy_in("gpkg", folder, request) as database:
        app = create_app(
            {
                "TESTING": True,
                "SECRET_KEY": "test-secret",
                "GEOAPP_DATABASE": str(database),
                "ARGON2_PARAMETERS": CHEAP_ARGON2,
                "LOGIN_POLICY": LoginPolicy(),
                "IMPORT_FOLDER": str(folder / "uploads"),
            }
        )
        app.extensions["geoapp"].store.add_user("admin", password_hash, ("admin",), actor=SETUP)
        yield app
        app.extensions["geoapp"].close()


@pytest.fixture(scope="module")
def admin(site):
    client = site.test_client()
    _, token = login(client, "admin")
    return client, token


def _count(site) -> int:
    return site.extensions["geoapp"].reader.count(COVERS)


def _audits(site) -> int:
    return len(site.extensions["geoapp"].store.audit("2000-01-01"))


def _kept(site) -> set[str]:
    folder = Path(site.config["IMPORT_FOLDER"])
    return {p.name for p in folder.glob("*")} if folder.exists() else set()


def _upload(client, token, data: bytes, name: str, **fields):
    form = {"csrf_token": token, "layer": COVERS, "mode": "append", **fields}
    form["file"] = (io.BytesIO(data), name)
    return client.post("/admin/import?lang=en", data=form, content_type="multipart/form-data")


def _refused_cleanly(site, client, token, data: bytes, name: str, **fields) -> str:
    """Upload a hostile file: it must be refused with a 4xx page naming the problem (never a 500), write nothing
    and leave no upload behind."""
    before, trail, kept = _count(site), _audits(site), _kept(site)
    answer = _upload(client, token, data, name, **fields)
    text = answer.get_data(as_text=True)
    assert 400 <= answer.status_code < 500, f"{answer.status_code}: {text[:300]}"
    assert _count(site) == before and _audits(site) == trail
    assert _kept(site) == kept, "the refused upload was left in the upload folder"
    return text


def _xlsx(alter=None) -> bytes:
    """A good one-row ledger as XLSX; ``alter(member name, bytes) -> bytes or None`` rewrites (None: drops) the
    members of the zip as a hostile sender would."""
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(HEADER)
    sheet.append(ROW)
    out = io.BytesIO()
    book.save(out)
    if alter is None:
        return out.getvalue()
    source = zipfile.ZipFile(io.BytesIO(out.getvalue()))
    altered = io.BytesIO()
    with zipfile.ZipFile(altered, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            data = alter(info.filename, source.read(info.filename))
            if data is not None:
                target.writestr(info.filename, data)
    return altered.getvalue()


ROAD = "".join(f"&#{ord(c)};" for c in "建设路").encode()  # how openpyxl writes the cell (an inline string)
LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(
        f'<!ENTITY lol{i} "{("&lol" + ("" if i == 1 else str(i - 1)) + ";") * 10}">'.encode() for i in range(1, 10)
    )
    + b"]>"
)
EXTERNAL = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/hostname">]>'


def _in_sheet(prefix: bytes, entity: bytes):
    def alter(name: str, data: bytes) -> bytes:
        if name.endswith("worksheets/sheet1.xml"):
            return prefix + data.replace(ROAD, entity)
        return data

    return alter


def _replace(member: str, data: bytes | None):
    return lambda name, old: data if name.endswith(member) else old


# -- findings ---------------------------------------------------------------------------------------


def test_a_good_xlsx_imports_through_the_upload_page(site, admin):
    """DEFECT: the upload page keeps the file as ``<id>.data`` and ``formats._read_xlsx`` hands that path to
    ``openpyxl.load_workbook``, which refuses any name not ending in .xlsx/.xlsm/.xltx/.xltm
    (``InvalidFileException: openpyxl does not support .data file format``, not caught): every XLSX ledger, the
    bureau's most common format, answers 500 on /admin/import (the CLI works: its path keeps the name).
    Expected: the report page, "The file is ready to import". Fix: open the workbook from a file object
    (``load_workbook(open(path, 'rb'))``) or keep the upload's extension."""
    client, token = admin
    before, trail = _count(site), _audits(site)
    answer = _upload(client, token, _xlsx(), "covers.xlsx")
    assert answer.status_code == 200, answer.get_data(as_text=True)[:300]
    assert "The file is ready to import" in answer.get_data(as_text=True)
    assert _count(site) == before and _audits(site) == trail


@pytest.mark.parametrize(
    "alter",
    [
        pytest.param(_replace("worksheets/sheet1.xml", b"<worksheet><sheetData><row"), id="truncated-sheet-xml"),
        pytest.param(_replace("worksheets/sheet1.xml", None), id="no-worksheet"),
        pytest.param(_replace("xl/workbook.xml", b"<workbook"), id="broken-workbook-xml"),
        pytest.param(_replace("xl/styles.xml", b"<styleSheet"), id="broken-styles-xml"),
        pytest.param(_in_sheet(LAUGHS, b"&lol9;"), id="billion-laughs"),
        pytest.param(_in_sheet(EXTERNAL, b"&e;"), id="external-entity"),
    ],
)
def test_a_damaged_or_hostile_xlsx_is_refused_with_a_message(site, tmp_path, alter):
    """DEFECT: ``formats._read_xlsx`` catches only BadZipFile/KeyError/ValueError/OSError around
    ``load_workbook`` and nothing around ``ws.iter_rows``: a sheet whose XML is broken or uses a DTD (billion laughs:
    expat stops it, "limit on input amplification factor ... breached"; an external entity: "undefined entity &e;"),
    a broken workbook.xml/styles.xml, or a workbook without a worksheet raise ``ParseError``, ``lxml XMLSyntaxError``
    or ``IndexError`` out of ``importer.check``: ``geoapp import`` dies with a traceback (and the upload page, once
    it reads XLSX at all, answers 500). Expected: the GeoappError "cannot be read as an Excel workbook", exit 1."""
    path = tmp_path / "covers.xlsx"
    path.write_bytes(_xlsx(alter))
    before, trail = _count(site), _audits(site)
    result = site.test_cli_runner().invoke(args=["geoapp", "import", str(path), "--layer", COVERS, "--lang", "en"])
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == 1 and "Excel" in result.output
    assert _count(site) == before and _audits(site) == trail


def test_a_csv_with_a_cell_over_128_kib_is_refused_not_a_500(site, admin):
    """DEFECT: ``formats._read_csv`` iterates ``csv.reader`` without catching ``_csv.Error``; one cell longer than
    the csv module's field limit (131072 characters; a long WKT line or a pasted note) raises
    ``_csv.Error: field larger than field limit (131072)``: a 500 on the upload page, the file left behind.
    Expected: 400 naming the row (or the cell is read, and the field's own length check reports it)."""
    client, token = admin
    data = GOOD.replace("建设路", "长" * 140_000).encode()
    text = _refused_cleanly(site, client, token, data, "covers.csv")
    assert "row" in text.lower()


@pytest.mark.parametrize("encoding", ["base64", "rot13", "zlib"])
def test_a_codec_that_is_not_a_text_encoding_is_refused_not_a_500(site, admin, encoding):
    """DEFECT: ``formats.read`` checks the encoding with ``codecs.lookup``, which also knows the bytes-to-bytes and
    str-to-str codecs; ``data.decode('base64')`` then raises ``LookupError: 'base64' is not a text encoding`` (not
    the UnicodeDecodeError caught): the upload page answers 500 for the encoding field "base64", "rot13" or
    "zlib". Expected: 400 "unknown encoding" (check ``codecs.lookup(e)._is_text_encoding``)."""
    client, token = admin
    text = _refused_cleanly(site, client, token, GOOD.encode(), "covers.csv", encoding=encoding)
    assert "encoding" in text


def test_the_apps_own_csv_export_imports_back(site, admin):
    """DEFECT: a CSV export (``exporter._ledger`` -> ``ledger.csv_bytes``) starts with the ledger's "about" lines
    (Layer, Exported at, Rows, ... then a blank line, then the table), but ``formats._read_csv`` takes the first
    non-empty row as the header: re-importing the bureau's own export is refused with "no coordinate columns ...
    headers: Layer, Manhole covers" (the XLSX export, whose about block is on another sheet, imports fine).
    Expected: the importer skips the about block (or finds the header row), and the file checks clean."""
    client, token = admin
    exported = client.get(f"/api/layers/{COVERS}/export.csv?lang=en&bbox=113.29,33.72,113.30,33.73")
    assert exported.status_code == 200
    answer = _upload(client, token, exported.data, "covers.csv", mode="replace")
    assert answer.status_code == 200, re.sub(r"\s+", " ", answer.get_data(as_text=True))[-1500:]
    assert "The file is ready to import" in answer.get_data(as_text=True)


def _endless_geopackage(path: Path) -> None:
    """A valid one-point GeoPackage whose only feature table is a view over an endless recursive CTE that never
    yields a row (a few kilobytes; SQLite walks the recursion for ever to find the first row)."""
    covers = gpd.GeoDataFrame(
        {"code": ["4199010110901001"], "kind": ["sewage"], "defect": ["none"], "status": ["fixed"]},
        geometry=[shapely.Point(113.3, 33.73)],
        crs="EPSG:4326",
    )
    covers.to_file(path, layer="covers", driver="GPKG")
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE VIEW endless AS WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n) "
            "SELECT n.x AS fid, covers.geom AS geom, covers.code AS code, covers.kind AS kind, "
            "covers.defect AS defect, covers.status AS status FROM n, covers WHERE n.x < 0"
        )
        db.execute("DELETE FROM gpkg_geometry_columns")
        db.execute("DELETE FROM gpkg_contents")
        db.execute(
            "INSERT INTO gpkg_contents (table_name, data_type, identifier, srs_id) "
            "VALUES ('endless', 'features', 'endless', 4326)"
        )
        db.execute("INSERT INTO gpkg_geometry_columns VALUES ('endless', 'geom', 'POINT', 4326, 0, 0)")


@pytest.mark.slow
def test_a_geopackage_whose_table_is_an_endless_view_does_not_stall_the_import(tmp_path, demo_gpkg):
    """DEFECT: ``formats._read_ogr`` opens an uploaded GeoPackage with GDAL as it is: a feature table may be a
    view, and a view over an endless ``WITH RECURSIVE`` that never yields a row makes ``pyogrio.list_layers`` (GDAL
    looking at the table) spin at 100 % CPU for ever. A 100 KB upload on /admin/import holds a worker until the
    server's timeout kills it (every retry another one); ``geoapp import`` never returns. Expected: refused at once
    (e.g. refuse GeoPackages whose feature tables are views or have triggers, or read them through sqlite3 with a
    progress handler / ``OGR_SQLITE_PRAGMA`` limit, or in a child process with a time limit). The bound below is
    20 s where a refusal takes about 2."""
    database = tmp_path / "store.gpkg"
    shutil.copy(demo_gpkg, database)
    upload = tmp_path / "covers.gpkg"
    _endless_geopackage(upload)
    command = [sys.executable, "-m", "flask", "--app", "wsgi", "geoapp", "import", str(upload)]
    command += ["--layer", COVERS, "--dry-run", "--lang", "en"]
    env = {**os.environ, "GEOAPP_DATABASE": str(database)}
    try:
        done = subprocess.run(command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        pytest.fail("geoapp import of a 100 KB GeoPackage was still running after 20 s")
    assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr[-800:]


def test_long_chinese_text_survives_the_shapefile_export(site, tmp_path):
    """DEFECT: a DBF text field holds at most 254 bytes, 84 Chinese characters in UTF-8; ``exporter._write_gdal``
    lets GDAL cut longer values silently (a warning on the server's log only): a hoarding whose site has 101
    characters (the layer allows 2000) comes back from ``export.shp`` with 84, the last ones lost, and neither
    about.txt nor fields.csv says so. Expected: the value intact (e.g. the long text in a sidecar CSV keyed by fid),
    or the export refused / the truncation named in about.txt."""
    import pyogrio

    svc = site.extensions["geoapp"]
    fid = svc.reader.select(HOARDINGS, Query(), 0, 1, "internal").ids[0]
    before = svc.reader.get(HOARDINGS, fid, "internal")
    long = "长" * 100 + "尾"
    svc.store.update(HOARDINGS, fid, {"site": long}, expected_version=before.version, actor=SETUP)
    try:
        answer = site.test_client().get(f"/api/layers/{HOARDINGS}/export.shp?lang=en")
        assert answer.status_code == 200
        path = tmp_path / "hoardings.zip"
        path.write_bytes(answer.data)
        sites = []
        with zipfile.ZipFile(path) as archive:
            about = archive.read("about.txt").decode("utf-8")
            for name in archive.namelist():
                if name.endswith(".shp"):
                    frame = pyogrio.read_dataframe(f"/vsizip/{path}/{name}")
                    sites += [s for s in frame["site"] if s and s.startswith("长长")]
        assert sites == [long] or "254" in about or "truncat" in about.lower(), (len(sites[0]), sites[0][-3:])
    finally:
        now = svc.reader.get(HOARDINGS, fid, "internal")
        svc.store.update(HOARDINGS, fid, {"site": before.properties["site"]}, expected_version=now.version, actor=SETUP)


def _vrt(source: Path | str, sql: str | None = None, layer: str = "secret") -> bytes:
    """GDAL's virtual format (XML) reading another file of the server; GDAL opens it whatever the name ends in."""
    inner = f'<SrcSQL dialect="sqlite">{sql}</SrcSQL>' if sql else f"<SrcLayer>{layer}</SrcLayer>"
    geometry = "" if sql else '<GeometryField encoding="PointFromColumns" x="lon" y="lat"/>'
    return (
        f'<OGRVRTDataSource><OGRVRTLayer name="covers"><SrcDataSource>{source}</SrcDataSource>{inner}'
        f"<LayerSRS>EPSG:4326</LayerSRS>{geometry}</OGRVRTLayer></OGRVRTDataSource>"
    ).encode()


def _zipped(*members: tuple[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in members:
            archive.writestr(name, data)
    return out.getvalue()


WGS84_PRJ = (
    b'GEOGCS["WGS 84",DATUM["WGS_1984",SPHEROID["WGS 84",6378137,298.257223563]],PRIMEM["Greenwich",0],'
    b'UNIT["degree",0.0174532925199433]]'
)
AS_UPLOAD = {
    "covers.geojson": lambda vrt: vrt,
    "covers.json": lambda vrt: vrt,
    "covers.kml": lambda vrt: vrt,
    "covers.kmz": lambda vrt: _zipped(("doc.kml", vrt)),
    "covers.zip": lambda vrt: _zipped(
        ("c.shp", vrt), ("c.shx", b"x"), ("c.dbf", b"x"), ("c.cpg", b"UTF-8"), ("c.prj", WGS84_PRJ)
    ),
}


@pytest.mark.parametrize("name", list(AS_UPLOAD))
def test_an_upload_cannot_make_gdal_read_other_files_of_the_server(site, admin, tmp_path, name):
    """DEFECT (local file disclosure): ``formats._read_ogr`` lets GDAL pick the driver by content, so a
    ``.geojson``/``.json``/``.kml`` upload, the ``.kml`` of a KMZ or the ``.shp`` of a zipped Shapefile holding
    GDAL's VRT XML (``<OGRVRTDataSource>``, whose ``SrcDataSource`` names any path, or ``/vsicurl/`` URL, the server
    can read) is opened as VRT: the rows of that other file are imported, and the report page shows the cells that
    fail validation. Here a server-side CSV's secret comes back
    in the report. Expected: refused ("cannot be read as GeoJSON"), the secret nowhere. Fix: open with the one
    driver the extension names (GDAL ``allowed_drivers``/``GeoJSON:`` prefix) or ``GDAL_SKIP=VRT`` for imports,
    and check the first bytes (``{`` / ``<kml``)."""
    secret = tmp_path / "secret.csv"
    secret.write_text("code,kind,road,defect,status,lon,lat\nSECRET-7f3a9c,sewage,x,none,to_fix,113.3,33.73\n")
    client, token = admin
    before, trail = _count(site), _audits(site)
    answer = _upload(client, token, AS_UPLOAD[name](_vrt(secret)), name)
    assert "SECRET-7f3a9c" not in answer.get_data(as_text=True)
    assert answer.status_code == 400
    assert _count(site) == before and _audits(site) == trail


def test_an_upload_cannot_read_the_password_hashes_of_the_store(site, admin):
    """DEFECT (as above, the store itself): a VRT with ``SrcSQL`` over the app's own GeoPackage puts
    ``geoapp_users.password_hash`` into the component-code column; its 16-digit check fails and the report page
    prints every administrator's Argon2 hash (a valid cell could as well be imported into a public layer and
    published on the map)."""
    client, token = admin
    database = site.config["GEOAPP_DATABASE"]
    sql = (
        "SELECT password_hash AS code, 'sewage' AS kind, 'x' AS road, 'none' AS defect, 'to_fix' AS status, "
        "MakePoint(113.3, 33.73, 4326) AS geom FROM geoapp_users"
    )
    answer = _upload(client, token, _vrt(database, sql), "covers.geojson")
    assert "$argon2" not in answer.get_data(as_text=True)


def _import_limited(file: Path, database: Path, memory: int) -> subprocess.CompletedProcess:
    """``geoapp import FILE --dry-run`` in a child process that may use at most ``memory`` bytes of address space."""
    import resource

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))

    command = [sys.executable, "-m", "flask", "--app", "wsgi", "geoapp", "import", str(file), "--layer", COVERS]
    command += ["--dry-run", "--lang", "en"]
    env = {**os.environ, "GEOAPP_DATABASE": str(database)}
    return subprocess.run(
        command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, preexec_fn=limit, timeout=120
    )


@pytest.mark.slow
def test_a_small_csv_with_a_wide_header_cannot_exhaust_memory(tmp_path, demo_gpkg):
    """DEFECT (memory exhaustion): ``formats._read_csv`` pads every row to the header's width
    (``r + [""] * (width - len(r))``) and nothing limits the columns: a 140 KB CSV whose header is one name and
    100,000 commas, followed by 20,000 one-cell rows, asks for 2e9 list slots (16 GB) before any check. Under a
    1.2 GB limit the good one-row file imports (the control) and this one dies with ``MemoryError`` (a traceback);
    without a limit the upload page's worker, or the whole machine, runs out of memory. Expected: refused at once
    ("at most N columns"), never padded beyond the columns that map to fields. The same padding is in
    ``_read_xlsx``."""
    database = tmp_path / "store.gpkg"
    shutil.copy(demo_gpkg, database)
    memory = int(1.2 * 1024**3)
    good = tmp_path / "good.csv"
    good.write_text(GOOD, encoding="utf-8")
    control = _import_limited(good, database, memory)
    assert control.returncode == 0, control.stderr[-500:]
    wide = tmp_path / "wide.csv"
    wide.write_text("部件编码" + "," * 100_000 + "\n" + "1\n" * 20_000, encoding="utf-8")
    assert wide.stat().st_size < 150_000
    done = _import_limited(wide, database, memory)
    assert "Traceback" not in done.stderr and "MemoryError" not in done.stderr, done.stderr[-600:]
    assert done.returncode == 1 and "column" in (done.stdout + done.stderr)


def test_a_double_submitted_confirm_imports_the_file_once(site, admin):
    """DEFECT (double write): ``imports.confirm`` loads the upload, runs the whole import, and only then deletes the
    upload, so two confirms of the same upload that overlap (a double click on "Import now", a retry after a slow
    answer) both pass ``_load`` and both import: 5,000 rows are added twice (both answers 200 "features added").
    Expected: the second is refused (404/409) and the layer grows by 5,000. Fix: claim the upload atomically
    before importing (``os.rename`` of the meta file to ``<id>.running``, or an ``O_EXCL`` lock file)."""
    import threading

    client, token = admin
    rows = "".join(f"41990101109{i:05d},污水,建设路,待整治,113.3,33.73\n" for i in range(5000))
    checked = _upload(client, token, ("部件编码,井盖类别,所在道路,状态,经度,纬度\n" + rows).encode(), "covers.csv")
    assert checked.status_code == 200, checked.get_data(as_text=True)[-500:]
    confirm = re.search(r'action="(/admin/import/[0-9a-f]{32}/confirm)"', checked.get_data(as_text=True)).group(1)
    session = client.get_cookie("session").value
    before = _count(site)
    answers = []

    def press() -> None:
        twin = site.test_client()
        twin.set_cookie("session", session)
        answers.append(twin.post(confirm + "?lang=en", data={"csrf_token": token}).status_code)

    presses = [threading.Thread(target=press) for _ in range(2)]
    for thread in presses:
        thread.start()
    for thread in presses:
        thread.join()
    assert _count(site) - before == 5000, (answers, _count(site) - before)
    assert sorted(answers)[0] == 200 and sorted(answers)[1] in (404, 409)


def test_a_geojson_that_declares_its_crs_is_read_in_it(site, admin):
    """DEFECT (the CRS is guessed, not read): ``formats._read_ogr`` sets ``crs_code = "EPSG:4326"`` for every
    GeoJSON ("GeoJSON is WGS84") and drops the CRS GDAL read from the file's ``crs`` member, which GDAL, QGIS
    and this app's own ``export.geojson?crs=EPSG:4547`` write. Re-importing that export reports each feature as
    "The shape lies outside the district (more than 2000 m beyond its boundary)" at "435126.1, 3733933.1"; the
    issue asks for "a missing or implausible CRS is an error naming what was found, not a guess". Expected: the
    declared CRS used (as for a GeoPackage's srs), or a file-level refusal naming EPSG:4547."""
    client, token = admin
    exported = client.get(f"/api/layers/{COVERS}/export.geojson?crs=EPSG:4547&bbox=113.29,33.72,113.295,33.725")
    assert exported.status_code == 200 and b"EPSG::4547" in exported.data
    answer = _upload(client, token, exported.data, "covers.geojson", mode="replace")
    text = answer.get_data(as_text=True)
    assert answer.status_code == 200 or ("4547" in text and "outside the district" not in text), text[-1200:]


def test_a_filter_value_cannot_put_html_into_the_kml_document_balloon(site):
    """DEFECT (HTML injection in Google Earth / 奥维): a KML ``<description>`` is HTML (KML 2.2 §9.1.3.4; Google
    Earth renders it in the balloon, Google Earth Pro runs its scripts). ``exporter._kml`` escapes each
    Placemark's description twice (HTML, then XML) but the Document's description, the about lines, once (XML
    only), and those lines echo the request's filters: a link to ``export.kml?site=<img src=x onerror=...>``
    gives a file whose Document balloon holds a live ``<img onerror>``. Expected: the about text HTML-escaped
    too (``_xml(html.escape(...))``), so that the parsed description shows ``&lt;img``."""
    from lxml import etree

    hostile = '<img src=x onerror="alert(1)">'
    answer = site.test_client().get(f"/api/layers/{HOARDINGS}/export.kml", query_string={"site": hostile})
    assert answer.status_code == 200
    ns = {"k": "http://www.opengis.net/kml/2.2"}
    description = etree.fromstring(answer.data).find("k:Document/k:description", ns).text
    assert "<img" not in description, description


# -- the fixes' edges (each fails if its defect came back in another form) --------------------------


def _cli(site, path: Path, *extra: str):
    args = ["geoapp", "import", str(path), "--layer", COVERS, "--dry-run", "--lang", "en", *extra]
    return site.test_cli_runner().invoke(args=args)


def test_an_upload_folder_path_never_shows_in_a_gdal_message(site, admin):
    """GDAL names the file it failed to read by its path: the report shows the upload's name, never the server's
    folders."""
    client, token = admin
    text = _refused_cleanly(site, client, token, b'{"type": "FeatureCollection", "features": [', "covers.geojson")
    assert "cannot be read as GeoJSON" in text
    assert str(Path(site.config["IMPORT_FOLDER"])) not in text and ".data" not in text


def test_a_kml_with_an_xml_declaration_and_a_vrt_root_is_refused(site, admin, tmp_path):
    """A VRT behind ``<?xml ...?>`` (the root element is what counts), and a KML with a DTD, are refused."""
    secret = tmp_path / "secret.csv"
    secret.write_text("code,kind,road,defect,status,lon,lat\nSECRET-7f3a9c,sewage,x,none,to_fix,113.3,33.73\n")
    client, token = admin
    for data in (
        b'<?xml version="1.0" encoding="UTF-8"?>\n' + _vrt(secret),
        EXTERNAL + b'<kml xmlns="http://www.opengis.net/kml/2.2"><Placemark><name>&e;</name></Placemark></kml>',
    ):
        text = _refused_cleanly(site, client, token, data, "covers.kml")
        assert "SECRET-7f3a9c" not in text and "cannot be read as KML" in text


def test_a_geopackage_with_a_view_is_refused_before_gdal_opens_it(site, tmp_path):
    """The same endless view as above, refused at once in the process (the slow test runs it as a child)."""
    upload = tmp_path / "covers.gpkg"
    _endless_geopackage(upload)
    result = _cli(site, upload)
    assert result.exit_code == 1 and "views" in result.output, result.output


def test_a_declared_geojson_crs_is_named_and_crs_still_overrides_it(site, admin, tmp_path):
    """The report says which CRS was used and where it came from: the file's crs member, or --crs."""
    client, _ = admin
    exported = client.get(f"/api/layers/{COVERS}/export.geojson?crs=EPSG:4547&bbox=113.29,33.72,113.295,33.725")
    path = tmp_path / "covers.geojson"
    path.write_bytes(exported.data)
    declared = _cli(site, path, "--mode", "replace")
    assert declared.exit_code == 0 and "EPSG:4547" in declared.output and "crs member" in declared.output
    forced = _cli(site, path, "--mode", "replace", "--crs", "EPSG:4326")
    assert "EPSG:4326" in forced.output and "(--crs)" in forced.output


def test_an_xlsx_whose_used_range_reaches_xfd_reads_only_its_columns(site, tmp_path):
    """A sheet that declares its used range as A1:XFD1048576 is read as wide as its header; a header with a name
    beyond the column cap is refused naming the columns."""
    from openpyxl.utils import get_column_letter

    from geoapp.io.formats import MAX_COLUMNS

    def wide_range(name: str, data: bytes) -> bytes:
        if name.endswith("worksheets/sheet1.xml"):
            return re.sub(rb'<dimension ref="[^"]*"/>', b'<dimension ref="A1:XFD1048576"/>', data)
        return data

    path = tmp_path / "covers.xlsx"
    path.write_bytes(_xlsx(wide_range))
    assert b"XFD1048576" in zipfile.ZipFile(path).read("xl/worksheets/sheet1.xml")
    result = _cli(site, path)
    assert result.exit_code == 0 and "no problems" in result.output, result.output
    book = openpyxl.Workbook()
    book.active.append(HEADER)
    book.active.append(ROW)
    book.active[f"{get_column_letter(MAX_COLUMNS + 1)}1"] = "extra"
    book.save(path)
    result = _cli(site, path)
    assert result.exit_code == 1 and "columns" in result.output, result.output


def test_a_geojson_with_too_many_properties_is_refused(site, tmp_path):
    import json

    from geoapp.io.formats import MAX_COLUMNS

    properties = {f"p{i}": i for i in range(MAX_COLUMNS + 1)} | {"code": ROW[0]}
    feature = {
        "type": "Feature",
        "properties": properties,
        "geometry": {"type": "Point", "coordinates": [113.3, 33.73]},
    }
    path = tmp_path / "covers.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}))
    result = _cli(site, path)
    assert result.exit_code == 1 and "columns" in result.output, result.output


def test_a_cpg_naming_a_codec_that_is_not_a_text_encoding_is_refused(site, tmp_path):
    covers = gpd.GeoDataFrame(
        {"code": [ROW[0]], "kind": ["sewage"], "defect": ["none"], "status": ["fixed"]},
        geometry=[shapely.Point(113.3, 33.73)],
        crs="EPSG:4326",
    )
    covers.to_file(tmp_path / "c.shp", encoding="UTF-8")
    (tmp_path / "c.cpg").write_text("base64")
    path = tmp_path / "covers.zip"
    path.write_bytes(
        _zipped(*((f"c{ext}", (tmp_path / f"c{ext}").read_bytes()) for ext in (".shp", ".shx", ".dbf", ".prj", ".cpg")))
    )
    result = _cli(site, path)
    assert result.exit_code == 1 and "encoding" in result.output, result.output


def test_unknown_columns_are_listed_up_to_twenty_then_counted(site, tmp_path):
    path = tmp_path / "covers.csv"
    extra = [f"备注{i}" for i in range(30)]
    path.write_text(",".join(HEADER + extra) + "\n" + ",".join(map(str, ROW + [""] * 30)) + "\n", encoding="utf-8")
    result = _cli(site, path)
    assert result.exit_code == 0, result.output
    assert "30 columns match no field" in result.output and "and 10 more" in result.output
    assert "备注19" in result.output and "备注25" not in result.output


def test_underscored_numbers_and_impossible_times_are_refused(site):
    """Python reads ``11_3.3`` as 113.3 and the date pattern took anything after the day: both are refused."""
    from geoapp.core.messages import Refused
    from geoapp.io import importer

    registry = site.extensions["geoapp"].registry
    number = next(f for layer in registry for f in layer.fields if f.type == "number" and not f.computed)
    date = registry.require(COVERS).field("fixed_on")
    assert importer.convert(number, "1,234.5") == 1234.5
    with pytest.raises(Refused):
        importer.convert(number, "11_3.3")
    assert str(importer.convert(date, "2023-05-01T09:30")) == "2023-05-01"
    with pytest.raises(Refused):
        importer.convert(date, "2023-05-01T99:00")


def test_gdal_reaches_no_url_while_it_reads_an_upload(tmp_path):
    """While an import reads a file, GDAL opens no remote file: a GeoJSON served on 127.0.0.1 reads through
    ``/vsicurl/`` before (the control) and fails inside ``formats.sealed_gdal()``; the settings come back after."""
    import functools
    import http.server
    import threading

    import pyogrio

    from geoapp.io import formats

    (tmp_path / "covers.geojson").write_text(
        '{"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {"code": "1"}, '
        '"geometry": {"type": "Point", "coordinates": [113.3, 33.73]}}]}'
    )
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"/vsicurl/http://127.0.0.1:{server.server_address[1]}/covers.geojson"
    try:
        assert pyogrio.read_info(url)["features"] == 1
        with formats.sealed_gdal(), pytest.raises(pyogrio.errors.DataSourceError):
            pyogrio.read_info(url + "?sealed")  # another URL: nothing from the cache of the control
        assert pyogrio.get_gdal_config_option("GDAL_HTTP_PROXY") is None
    finally:
        server.shutdown()
