"""The hotline's XLSX exports: read by their headers, bad rows named, every ticket located or told why not."""

from __future__ import annotations

import re
import shutil
import zipfile
from datetime import datetime

import pytest
import shapely
from openpyxl import Workbook, load_workbook
from pyproj import Transformer
from shapely.geometry import Point

from data.demo_hotline import write_sample
from geoapp.cases.geocode import Geocoder
from geoapp.cases.hotline import MAX_BYTES, MAX_ROWS, Categories, locate, read_hotline
from geoapp.errors import InvalidParameter
from geoapp.web import create_app

UTC_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


@pytest.fixture(scope="module")
def geocoder(demo_gpkg, tmp_path_factory) -> Geocoder:
    path = tmp_path_factory.mktemp("hotline") / "geoapp.gpkg"
    shutil.copy(demo_gpkg, path)
    app = create_app({"TESTING": True, "SECRET_KEY": "test-secret", "GEOAPP_DATABASE": str(path)})
    svc = app.extensions["geoapp"]
    yield Geocoder.from_reader(svc.reader, svc.store.metric_crs)
    svc.close()


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    path = tmp_path_factory.mktemp("sample") / "hotline.xlsx"
    return path, write_sample(path, rows=200)


def workbook(path, rows, headers=("Ticket", "Received", "Address", "Description", "Category"), title=None):
    book = Workbook()
    sheet = book.active
    if title:
        sheet.append([title])
    sheet.append(list(headers))
    for row in rows:
        sheet.append(list(row))
    book.save(path)
    return path


def test_the_sample_says_it_is_synthetic(sample):
    path, _ = sample
    book = load_workbook(path, read_only=True)
    assert "合成数据" in book.properties.title and "synthetic" in book.properties.description
    first = next(book.worksheets[0].iter_rows(values_only=True))
    assert "合成数据" in first[0]


def test_every_ticket_of_the_sample_is_located_or_reported(sample, geocoder, demo_data):
    path, written = sample
    batch = read_hotline(path)
    located, unlocated = locate(batch, geocoder)
    assert len(located) + len(unlocated) + len(batch.problem_rows) == written == 200
    assert len(located) >= 0.75 * written
    assert all(found.reason for _, found in unlocated)
    assert {found.reason for _, found in unlocated} >= {"no_road", "not_in_district", "no_number"}
    # what is located lies on the district's streets (house numbers stand 12 m off the centreline)
    to_metric = Transformer.from_crs("EPSG:4326", "EPSG:4547", always_xy=True)
    roads = shapely.union_all(demo_data["roads"].to_crs("EPSG:4547").geometry.values)
    for row, found in located:
        assert found.confidence >= 0.5
        assert roads.distance(Point(to_metric.transform(found.lon, found.lat))) <= 15, (row.address, found)
    assert all(UTC_TIME.match(row.received_at) for row in batch.rows)
    # an empty address is the row's problem, under the file's own header
    assert batch.problems and {(p.column, p.code) for p in batch.problems} == {("诉求地址", "missing")}


def test_the_sample_maps_every_category_to_a_case_subcategory(sample, registry):
    path, _ = sample
    allowed = {v.value for v in registry["cases"].field("subcategory").values}
    rows = read_hotline(path).rows
    assert {row.subcategory for row in rows} <= allowed
    assert {row.subcategory for row in rows} >= {"street_vending", "night_market", "manhole_cover", "stray_dogs"}


@pytest.mark.parametrize(
    ("category", "description", "subcategory"),
    [
        ("市容环境/占道经营", "", "street_vending"),
        ("市容环境/夜市占道", "", "night_market"),  # not street_vending: the more specific word first
        ("垃圾箱破损", "", "trash_bin"),
        ("环境卫生/暴露垃圾", "", "exposed_garbage"),
        ("其他", "小区门口有流浪犬", "stray_dogs"),  # the description when the category says nothing
        ("其他", "无法归类", "exposed_garbage"),  # the default
    ],
)
def test_categories_follow_the_table(registry, category, description, subcategory):
    allowed = [v.value for v in registry["cases"].field("subcategory").values]
    table = Categories.load(allowed=allowed)
    assert table.subcategory(category, description) == subcategory


def test_a_row_without_an_address_is_named_by_its_row_and_header(tmp_path):
    path = workbook(
        tmp_path / "t.xlsx",
        [
            ("A1", datetime(2023, 5, 1, 8, 30), "湛南路128号", "摆摊", "占道经营"),
            ("A2", "2023-05-01 08:30", None, "垃圾", "垃圾"),
            ("A3", "yesterday", "湛南路12号", "", ""),
            (None, "2023/05/02 09:00", "湛南路14号", "", ""),
            ("A1", "2023-05-02 10:00", "湛南路16号", "", ""),
            (None, None, None, None, None),  # an empty row is no ticket
            (20230001, "2023-05-03 00:15:00", "开源路与建设路交叉口", "", ""),
        ],
        title="12345 export",
    )
    batch = read_hotline(path)
    assert [(p.row, p.column, p.code) for p in batch.problems] == [
        (4, "Address", "missing"),
        (5, "Received", "bad_time"),
        (6, "Ticket", "missing"),
        (7, "Ticket", "duplicate"),
    ]
    assert "row 3" in batch.problems[-1].reason
    first, last = batch.rows
    assert (first.row, first.ticket, first.received_at, first.subcategory) == (
        3,
        "A1",
        "2023-05-01T00:30:00Z",
        "street_vending",
    )
    assert (last.row, last.ticket, last.received_at) == (9, "20230001", "2023-05-02T16:15:00Z")


def test_chinese_headers_in_any_order_are_read(tmp_path):
    path = workbook(
        tmp_path / "t.xlsx",
        [("湛南路128号", "2023-05-01 08:30", "HL-1", "井盖")],
        headers=("诉求地址", "来电时间", "工单编号", "诉求类别"),
    )
    (row,) = read_hotline(path).rows
    assert (row.ticket, row.address, row.description, row.subcategory) == ("HL-1", "湛南路128号", "", "manhole_cover")


def test_a_missing_column_or_header_is_refused(tmp_path):
    no_address = workbook(tmp_path / "a.xlsx", [("A1", "2023-05-01 08:30")], headers=("工单编号", "来电时间"))
    with pytest.raises(InvalidParameter, match="has no header row"):
        read_hotline(no_address)
    no_time = workbook(tmp_path / "b.xlsx", [("A1", "湛南路1号")], headers=("工单编号", "诉求地址"))
    with pytest.raises(InvalidParameter, match="no column 来电时间"):
        read_hotline(no_time)


def test_a_file_that_is_no_xlsx_is_refused(tmp_path):
    csv = tmp_path / "tickets.xlsx"
    csv.write_text("工单编号,来电时间,诉求地址\nA1,2023-05-01 08:30,湛南路1号\n", encoding="utf-8")
    with pytest.raises(InvalidParameter, match="not an XLSX workbook"):
        read_hotline(csv)
    other_zip = tmp_path / "other.xlsx"
    with zipfile.ZipFile(other_zip, "w") as archive:
        archive.writestr("readme.txt", "not a workbook")
    with pytest.raises(InvalidParameter, match="cannot be read as an Excel workbook"):
        read_hotline(other_zip)


def test_an_oversized_file_is_refused_before_it_is_opened(tmp_path):
    big = tmp_path / "big.xlsx"
    with open(big, "wb") as f:
        f.truncate(MAX_BYTES + 1)  # sparse: no content to read, only a size
    with pytest.raises(InvalidParameter, match="at most 20 MB"):
        read_hotline(big)


def test_a_sheet_of_too_many_rows_is_refused(tmp_path):
    path = tmp_path / "long.xlsx"
    book = Workbook(write_only=True)
    sheet = book.create_sheet()
    sheet.append(["工单编号", "来电时间", "诉求地址"])
    for i in range(MAX_ROWS + 1):
        sheet.append([f"T{i}", "2023-05-01 08:30", "湛南路1号"])
    book.save(path)
    with pytest.raises(InvalidParameter, match=f"more than {MAX_ROWS} rows"):
        read_hotline(path)
