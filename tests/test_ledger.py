"""Ledgers (台账): XLSX read back with openpyxl and CSV with the csv module. Labels as headers, real dates and
numbers, vocabulary labels, a frozen bold header; hostile text neutralised and never a formula; no internal field for
the public; the filters of the progress table; any layer of the registry."""

from __future__ import annotations

import csv
import datetime as dt
import io
import shutil
import zipfile
from urllib.parse import quote

import openpyxl
import pytest
from shapely.geometry import box

from geoapp.core.accounts import LoginPolicy
from geoapp.web import create_app
from tests.conftest import CHEAP_ARGON2, SETUP, Clock, login

NOW = 1_700_000_000.0  # 2023-11-15 06:13:20 in Asia/Shanghai
XLSX = "/api/progress/construction_hoardings/ledger.xlsx"
CSV = "/api/progress/construction_hoardings/ledger.csv"
HOSTILE = ['=HYPERLINK("http://x")', "+1", "-1+2", "@SUM(A1)", "\tcmd", "\rcmd"]
SECRET = "保密施工单位甲"  # a contractor (internal) of the hostile rows
LINE = {"type": "LineString", "coordinates": [[113.300, 33.730], [113.301, 33.7302]]}
HEADERS = ["编号", "点位", "责任单位", "所属区", "状态", "围挡长度（m）", "整治期限", "整治日期", "拆后处理"]
INTERNAL_HEADERS = ["施工单位", "备注"]


@pytest.fixture(scope="module")
def env(tmp_path_factory, demo_gpkg, password_hash):
    """One app on a copy of the demo district, with the hostile hoardings a planner added through the API;
    yields the app, a planner's client and the fids added."""
    path = tmp_path_factory.mktemp("ledger") / "geoapp.gpkg"
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
    app.extensions["geoapp"].store.add_user("planner", password_hash, ("planner",), actor=SETUP)
    planner = app.test_client()
    _, csrf = login(planner, "planner")
    added = []
    for text in HOSTILE:
        feature = {
            "type": "Feature",
            "geometry": LINE,
            "properties": {"site": text, "agency": "housing", "contractor": SECRET, "notes": text},
        }
        made = planner.post("/api/layers/construction_hoardings/features", json=feature, headers={"X-CSRFToken": csrf})
        assert made.status_code == 201, made.json
        added.append(made.json["id"])
    yield app, planner, added
    app.extensions["geoapp"].close()


@pytest.fixture(scope="module")
def anonymous(env):
    return env[0].test_client()


@pytest.fixture(scope="module")
def hoardings(demo_data):
    frame = demo_data["construction_hoardings"].copy()
    frame.index = range(1, len(frame) + 1)
    return frame


def _workbook(response):
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    return openpyxl.load_workbook(io.BytesIO(response.data))


def _records(sheet) -> tuple[list[str], dict[int, dict[str, openpyxl.cell.Cell]]]:
    """The header and each row's cells by header, keyed by the id column."""
    rows = list(sheet.iter_rows())
    header = [c.value for c in rows[0]]
    return header, {row[0].value: dict(zip(header, row, strict=True)) for row in rows[1:]}


def test_the_xlsx_ledger_has_labels_dates_numbers_and_a_frozen_header(env, hoardings):
    _, planner, added = env
    book = _workbook(planner.get(XLSX))
    sheet = book.worksheets[0]
    assert sheet.title == "建筑围挡"
    header, rows = _records(sheet)
    assert header == [*HEADERS, *INTERNAL_HEADERS, "逾期"]  # staff: the internal fields too
    assert all(c.font.b for c in sheet[1])
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == f"A1:L{len(hoardings) + len(added) + 1}"
    assert sheet.column_dimensions["B"].width >= 2 * len("团结路西侧1号围挡")  # Chinese is two columns wide
    assert set(rows) == {*hoardings.index, *added}

    lengths = {
        r["id"]: r["properties"]["length_m"]
        for r in planner.get("/api/progress/construction_hoardings/rows?limit=500").json["rows"]
    }
    for fid, record in hoardings.iterrows():
        cells = rows[fid]
        assert cells["点位"].value == record["site"]
        if record["status"] == "removed":
            assert cells["状态"].value == "已整治"
            removed = cells["整治日期"]
            assert isinstance(removed.value, dt.datetime) and removed.is_date
            assert removed.number_format == "yyyy-mm-dd"
            assert removed.value.date().isoformat() == record["removed_on"]
        else:
            assert cells["整治日期"].value is None
        length = cells["围挡长度（m）"]
        assert isinstance(length.value, float) and length.data_type == "n" and length.value == lengths[fid]
        assert cells["责任单位"].value == {"urban_management": "城管局", "housing": "住建局"}[record["agency"]]
    assert sum(rows[fid]["状态"].value == "已整治" for fid in hoardings.index) == 28

    about = {row[0]: row[1] for row in book.worksheets[1].iter_rows(min_row=2, values_only=True)}
    assert book.worksheets[1].title == "说明"
    assert about["图层"] == "建筑围挡"
    assert about["导出时间"].startswith("2023-11-15 06:13:20 (Asia/Shanghai")
    assert about["行数"] == len(rows)
    assert "合成" in about["数据说明"]  # the demo is synthetic, and says so
    assert "内部" in about["字段"]


def test_hostile_text_is_neutralised_and_never_a_formula(env):
    _, planner, added = env
    response = planner.get(XLSX)
    _, rows = _records(_workbook(response).worksheets[0])
    for fid, text in zip(added, HOSTILE, strict=True):
        for column in ("点位", "备注"):
            cell = rows[fid][column]
            assert cell.value == "'" + text and cell.data_type == "s", (column, text)
        assert rows[fid]["施工单位"].value == SECRET
    with zipfile.ZipFile(io.BytesIO(response.data)) as archive:
        sheets = [n for n in archive.namelist() if n.startswith("xl/worksheets/")]
        assert sheets and not any(b"<f>" in archive.read(n) or b"<f " in archive.read(n) for n in sheets)

    text = planner.get(CSV).data
    assert text.startswith(b"\xef\xbb\xbf")
    table = _csv_table(text)
    by_id = {int(row[0]): row for row in table[1:]}
    site, notes = table[0].index("点位"), table[0].index("备注")
    for fid, value in zip(added, HOSTILE, strict=True):
        assert by_id[fid][site] == by_id[fid][notes] == "'" + value
    # nothing in the file starts a cell as a formula
    assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for row in table for cell in row)


def _csv_table(data: bytes) -> list[list[str]]:
    """The table of a CSV ledger: after the lines that say what it is and the empty line."""
    assert b"\r\n" in data and b"\n" not in data.replace(b"\r\n", b"")  # CRLF line ends
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    return rows[rows.index([]) + 1 :]


def test_the_csv_ledger_in_english_and_what_it_says_about_itself(env, hoardings):
    _, planner, _ = env
    response = planner.get(f"{CSV}?lang=en&status=removed&agency=housing&sort=removed_on&order=desc")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(response.data.decode("utf-8-sig"), newline="")))
    about = dict(row for row in rows[: rows.index([])])
    assert about["Layer"] == "Construction hoardings" and "synthetic" in about["Data"]
    assert (
        "Status: Removed" in about["Filters"]
        and "Responsible agency: Housing and Construction Bureau" in about["Filters"]
    )
    assert about["Sorted by"] == "Removed on descending"
    table = _csv_table(response.data)
    assert table[0][:6] == ["ID", "Site", "Responsible agency", "District", "Status", "Length (m)"]
    chosen = hoardings[(hoardings["status"] == "removed") & (hoardings["agency"] == "housing")]
    expected = sorted(chosen.index, key=lambda fid: (chosen.at[fid, "removed_on"], -fid), reverse=True)
    assert [int(row[0]) for row in table[1:]] == expected and len(expected) == 9
    removed_on = table[0].index("Removed on")
    assert [row[removed_on] for row in table[1:]] == [chosen.at[fid, "removed_on"] for fid in expected]
    assert {row[4] for row in table[1:]} == {"Removed"} and {row[-1] for row in table[1:]} == {"No"}
    assert all(float(row[5]) > 0 for row in table[1:])

    disposition = planner.get(f"{XLSX}?lang=zh").headers["Content-Disposition"]  # (the client now remembers en)
    assert disposition.startswith('attachment; filename="construction_hoardings_ledger_2023-11-15.xlsx"')
    assert f"filename*=UTF-8''{quote('建筑围挡台账_2023-11-15.xlsx')}" in disposition


def test_the_public_gets_no_internal_field_in_any_ledger(env, anonymous, registry):
    _, _, added = env
    _, rows = _records(_workbook(anonymous.get(XLSX)).worksheets[0])
    header = list(rows[added[0]])
    assert header == [*HEADERS, "逾期"]
    book = _workbook(anonymous.get(XLSX))
    values = [c for sheet in book.worksheets for row in sheet.iter_rows(values_only=True) for c in row]
    assert SECRET not in values and "演示建工一公司" not in values
    assert "仅公开字段" in values
    for url in (CSV, "/api/layers/construction_hoardings/ledger.csv", "/api/layers/construction_hoardings/ledger.xlsx"):
        data = anonymous.get(url).data
        assert data and SECRET.encode() not in data and "演示建工一公司".encode() not in data, url
        assert "施工单位".encode() not in data and "备注".encode() not in data, url
    # every layer of the registry has a ledger; none shows the public an internal field's label
    for layer in registry:
        table = _csv_table(anonymous.get(f"/api/layers/{layer.id}/ledger.csv").data)
        internal = {f.label.zh for f in layer.fields if not f.public}
        assert table[0][0] == "编号" and not internal & set(table[0]), layer.id
        assert table[0][1 : 1 + len(layer.visible_fields(False))] == [
            f.label.zh + (f"（{f.unit}）" if f.unit else "") for f in layer.visible_fields(False)
        ]


def test_any_layers_ledger_takes_exact_filters_and_a_bbox(anonymous, demo_data):
    covers = demo_data["manhole_covers"].copy()
    covers.index = range(1, len(covers) + 1)
    bbox = (113.27, 33.70, 113.30, 33.73)
    response = anonymous.get(
        f"/api/layers/manhole_covers/ledger.xlsx?kind=sewage&road=南环路&bbox={','.join(map(str, bbox))}"
    )
    header, rows = _records(_workbook(response).worksheets[0])
    assert header == ["编号", "部件编码", "井盖类别", "所在道路", "病害", "状态", "整治日期", "经度", "纬度"]
    inside = covers[covers.intersects(box(*bbox)) & (covers["kind"] == "sewage") & (covers["road"] == "南环路")]
    assert len(inside) > 0 and sorted(rows) == inside.index.tolist()
    for fid, cells in rows.items():
        point = covers.geometry[fid]
        assert (cells["经度"].value, cells["纬度"].value) == pytest.approx((point.x, point.y), abs=1e-7)
        assert cells["井盖类别"].value == "污水"
        assert cells["部件编码"].data_type == "s" and cells["部件编码"].value == covers.at[fid, "code"]  # not a number
    lines = _workbook(anonymous.get("/api/layers/backstreet_repairs/ledger.xlsx")).worksheets[0]
    length = [c.value for c in lines[1]].index("长度（m）")
    assert all(isinstance(row[length], float) for row in lines.iter_rows(min_row=2, values_only=True))

    for url, parameter, status in [
        ("/api/layers/manhole_covers/ledger.csv?kind=lava", "kind", 400),
        ("/api/layers/manhole_covers/ledger.csv?colour=red", "colour", 400),
        ("/api/layers/manhole_covers/ledger.csv?bbox=1,2", "bbox", 400),
        ("/api/layers/manhole_covers/ledger.csv?sort=x", "sort", 400),
        ("/api/layers/construction_hoardings/ledger.csv?notes=x", "notes", 400),  # internal
        ("/api/layers/backstreet_repairs/ledger.csv?repaired_area_m2=big", "repaired_area_m2", 400),
        ("/api/layers/manhole_covers/ledger.csv?lang=fr", "lang", 400),
        ("/api/layers/manhole_covers/ledger.docx", "format", 404),
        ("/api/layers/nothing/ledger.csv", "layer", 404),
        (f"{XLSX}?offset=5", "offset", 400),
        (f"{XLSX}?overdue=perhaps", "overdue", 400),
    ]:
        answer = anonymous.get(url)
        assert answer.status_code == status and answer.json["error"]["parameter"] == parameter, (url, answer.json)
