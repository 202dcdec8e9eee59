"""Coordinate systems for data in and out: naming them, identifying a .prj, converting, and describing numbers."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
from pyproj import CRS, Geod, Transformer

from geoapp.core import chinacoords
from geoapp.core.crs import (
    BD09,
    CRS84,
    GCJ02,
    KINDS,
    STORAGE_CRS,
    coordinate_kind,
    crs_from_wkt,
    describe_coordinates,
    from_storage,
    parse_crs,
    project,
    to_storage,
    transformer,
    xy_from_storage,
    xy_to_storage,
)
from geoapp.errors import InvalidParameter

GEOD = Geod(ellps="WGS84")
#: near the (synthetic) demo district
LON, LAT = 113.3, 33.73

#: one of each family the bureau meets, with what it is
FAMILIES = {
    "EPSG:4326": "WGS 84",
    "EPSG:4490": "China Geodetic Coordinate System 2000",
    "EPSG:4526": "CGCS2000 / 3-degree Gauss-Kruger zone 38",
    "EPSG:4547": "CGCS2000 / 3-degree Gauss-Kruger CM 114E",
    "EPSG:2362": "Xian 1980 / 3-degree Gauss-Kruger zone 38",
    "EPSG:2383": "Xian 1980 / 3-degree Gauss-Kruger CM 114E",
    "EPSG:2414": "Beijing 1954 / 3-degree Gauss-Kruger zone 38",
    "EPSG:2435": "Beijing 1954 / 3-degree Gauss-Kruger CM 114E",
    "EPSG:32649": "WGS 84 / UTM zone 49N",
    "EPSG:3857": "WGS 84 / Pseudo-Mercator",
}


def _metres(a, b) -> float:
    return GEOD.inv(a[0], a[1], b[0], b[1])[2]


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("EPSG:4547", "EPSG:4547"),
        ("epsg:4547", "EPSG:4547"),
        (" EPSG:4490 ", "EPSG:4490"),
        ("[EPSG:4326]", "EPSG:4326"),
        ("http://www.opengis.net/def/crs/EPSG/0/4547", "EPSG:4547"),
        ("https://www.opengis.net/def/crs/EPSG/0/4326", "EPSG:4326"),
        ("urn:ogc:def:crs:EPSG::4490", "EPSG:4490"),
        ("http://www.opengis.net/def/crs/OGC/1.3/CRS84", "OGC:CRS84"),
        ("CRS84", "OGC:CRS84"),
        ("OGC:CRS84", "OGC:CRS84"),
        ("urn:ogc:def:crs:OGC:1.3:CRS84", "OGC:CRS84"),
        ("gcj02", "gcj02"),
        ("GCJ-02", "gcj02"),
        ("gcj-02", "gcj02"),
        ("bd09", "bd09"),
        ("BD-09", "bd09"),
        ("wgs84", "EPSG:4326"),
        ("CGCS2000", "EPSG:4490"),
    ],
)
def test_every_accepted_spelling_names_its_canonical_code(text, code):
    system = parse_crs(text)
    assert system.code == code
    assert parse_crs(system.code) == system


def test_the_families_parse_with_their_names_uris_and_axis_orders():
    for code, name in FAMILIES.items():
        system = parse_crs(code)
        assert system.name == name
        assert system.uri == f"http://www.opengis.net/def/crs/EPSG/0/{code[5:]}"
        assert system.epsg == int(code[5:])
    assert parse_crs("EPSG:4326").geographic and parse_crs("EPSG:4490").geographic
    assert not parse_crs("EPSG:4547").geographic
    # the authority's order: latitude (northing) first for these, x/y for UTM, Web Mercator and CRS84
    assert [parse_crs(c).lat_first for c in ("EPSG:4326", "EPSG:4490", "EPSG:4547", "EPSG:4526")] == [True] * 4
    assert [parse_crs(c).lat_first for c in ("EPSG:32649", "EPSG:3857")] == [False, False]
    assert CRS84.uri == "http://www.opengis.net/def/crs/OGC/1.3/CRS84" and not CRS84.lat_first
    assert GCJ02.geographic and BD09.geographic and GCJ02.uri is None and BD09.epsg is None


@pytest.mark.parametrize("code", sorted(FAMILIES))
def test_a_point_near_the_district_lands_where_pyproj_puts_it_and_comes_back(code):
    system = parse_crs(code)
    expected = Transformer.from_crs("EPSG:4326", code, always_xy=True).transform(LON, LAT)
    out = from_storage(shapely.Point(LON, LAT), system)
    # within a millimetre of PROJ's own answer (for Beijing 1954 PROJ's best here is also its ballpark)
    assert abs(out.x - expected[0]) < 0.001 and abs(out.y - expected[1]) < 0.001
    back = to_storage(out, system)
    assert _metres((LON, LAT), (back.x, back.y)) < 0.001


def test_the_same_point_in_the_prefixed_zone_is_the_unprefixed_one_plus_the_zone():
    # zone 38 has its central meridian at 114E: the same numbers with 38,000,000 added to the easting
    plain = from_storage(shapely.Point(LON, LAT), parse_crs("EPSG:4547"))
    prefixed = from_storage(shapely.Point(LON, LAT), parse_crs("EPSG:4526"))
    assert prefixed.x - 38_000_000 == pytest.approx(plain.x, abs=1e-6)
    assert prefixed.y == pytest.approx(plain.y, abs=1e-6)
    # and the district is about 65 km west of 114E
    assert 60_000 < 500_000 - plain.x < 70_000


def test_gcj02_and_bd09_go_through_chinacoords_exactly():
    point = shapely.Point(LON, LAT)
    gcj = from_storage(point, GCJ02)
    assert (gcj.x, gcj.y) == chinacoords.wgs84_to_gcj02(LON, LAT)
    bd = from_storage(point, BD09)
    assert (bd.x, bd.y) == chinacoords.wgs84_to_bd09(LON, LAT)
    for system, shifted in ((GCJ02, gcj), (BD09, bd)):
        assert 300 < _metres((LON, LAT), (shifted.x, shifted.y)) < 2000
        back = to_storage(shifted, system)
        assert _metres((LON, LAT), (back.x, back.y)) < 0.001


def test_geometries_and_arrays_of_them_convert_whole():
    square = shapely.box(LON - 0.01, LAT - 0.01, LON + 0.01, LAT + 0.01)
    line = shapely.LineString([(LON, LAT), (LON + 0.02, LAT + 0.01)])
    geoms = np.array([square, line, None], dtype=object)
    for code in ("EPSG:4547", "gcj02", "bd09", "EPSG:32649"):
        system = parse_crs(code)
        out = from_storage(geoms, system)
        assert out[2] is None and out[0].geom_type == "Polygon" and out[1].geom_type == "LineString"
        back = to_storage(out, system)
        assert shapely.equals_exact(back[0], square, tolerance=1e-9)
        assert shapely.equals_exact(back[1], line, tolerance=1e-9)
    # the stored systems themselves pass through untouched
    for code in ("EPSG:4326", "OGC:CRS84", "EPSG:4490"):
        assert to_storage(geoms, parse_crs(code)) is geoms and parse_crs(code).is_storage


def test_coordinate_columns_convert_as_arrays():
    rng = np.random.default_rng(3)
    lon = LON + rng.uniform(-0.3, 0.3, 10_000)
    lat = LAT + rng.uniform(-0.3, 0.3, 10_000)
    for code in ("EPSG:4547", "EPSG:4526", "gcj02", "bd09", "EPSG:2383"):
        system = parse_crs(code)
        x, y = xy_from_storage(lon, lat, system)
        back_lon, back_lat = xy_to_storage(x, y, system)
        assert back_lon.shape == lon.shape
        assert GEOD.inv(lon, lat, back_lon, back_lat)[2].max() < 0.001, code
    x, y = xy_to_storage([LON, np.nan], [LAT, LAT], parse_crs("EPSG:4326"))
    assert x[0] == LON and np.isnan(x[1])


def test_xian_1980_and_beijing_1954_carry_an_accuracy_note_in_both_languages():
    for code in ("EPSG:2383", "EPSG:2362", "EPSG:2435", "EPSG:2414", "EPSG:4610", "EPSG:4214"):
        system = parse_crs(code)
        assert system.note and "datum shift" in system.note
        assert system.note_zh and "基准转换" in system.note_zh
        assert system.note_in("zh") == system.note_zh and system.note_in("en") == system.note
    for code in ("EPSG:4326", "EPSG:4490", "EPSG:4547", "EPSG:4526", "EPSG:32649", "gcj02", "bd09", "CRS84"):
        assert parse_crs(code).note is None and parse_crs(code).note_zh is None


def test_beijing_1954_converts_the_same_way_everywhere():
    # PROJ has Helmert parameters for Beijing 1954 only in a few basins and at sea and would switch point by
    # point (a jump of tens of metres at a basin's edge, and no single pipeline); one conversion is used instead
    tr = transformer("EPSG:2435", STORAGE_CRS)
    inside_ordos = parse_crs("EPSG:4214")
    lon, lat = xy_to_storage(np.array([108.0, 112.0]), np.array([36.0, 36.0]), inside_ordos)
    assert lon.tolist() == [108.0, 112.0] and lat.tolist() == [36.0, 36.0]
    x, y = Transformer.from_crs("EPSG:4214", "EPSG:2435", always_xy=True).transform(LON, LAT)
    assert _metres((LON, LAT), tr.transform(x, y)) < 0.001


def test_project_still_works_between_metric_systems():
    point = project(shapely.Point(LON, LAT), STORAGE_CRS, "EPSG:4547")
    other = project(point, "EPSG:4547", "EPSG:32649")
    direct = from_storage(shapely.Point(LON, LAT), parse_crs("EPSG:32649"))
    assert other.distance(direct) < 0.01


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("EPSG:4978", "Geocentric"),
        ("EPSG:4979", "Geographic 3D"),
        ("EPSG:5773", "Vertical"),
        ("EPSG:7405", "Compound"),
        ("EPSG:99999999", "not in PROJ"),
        ("EPSG:0", "not in PROJ"),
        ("4547", "write EPSG:4547"),
        ("gcj", "unknown"),
        ("WGS 1984", "unknown"),
        ("EPSG:4547;drop", "unknown"),
        ("", "no coordinate system"),
        ("   ", "no coordinate system"),
    ],
)
def test_anything_else_is_refused_naming_what_was_given_and_what_is_allowed(text, words):
    with pytest.raises(InvalidParameter) as caught:
        parse_crs(text, parameter="bbox-crs")
    error = caught.value
    assert error.parameter == "bbox-crs"
    assert words in error.message
    assert repr(text.strip()) in error.message or repr(text) in error.message
    assert "allowed:" in error.message and "gcj02" in error.message
    assert "可用" in error.message_in("zh") and error.message_in("en") == error.message
    assert error.status == 400


def test_a_non_string_is_refused_too():
    with pytest.raises(InvalidParameter):
        parse_crs(None)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def prj_files(tmp_path_factory):
    """.prj files as GDAL writes them (ESRI flavour) for a Shapefile in each family."""
    folder = tmp_path_factory.mktemp("prj")
    out = {}
    for code in ("EPSG:4547", "EPSG:4526", "EPSG:4490", "EPSG:4326", "EPSG:2383", "EPSG:2435", "EPSG:32649"):
        path = folder / f"{code.replace(':', '_')}.shp"
        gpd.GeoDataFrame({"名称": ["井盖"]}, geometry=[shapely.Point(1, 2)], crs=code).to_file(path)
        out[code] = path.with_suffix(".prj").read_text()
    return out


def test_a_shapefiles_prj_is_identified_by_its_epsg_code(prj_files):
    for code, wkt in prj_files.items():
        assert crs_from_wkt(wkt).code == code
    assert "CGCS2000_3_Degree_GK_CM_114E" in prj_files["EPSG:4547"]
    assert crs_from_wkt(CRS("EPSG:4547").to_wkt()).code == "EPSG:4547"
    assert crs_from_wkt(CRS("OGC:CRS84").to_wkt()).code == "OGC:CRS84"
    assert crs_from_wkt(prj_files["EPSG:2435"]).note is not None


def test_a_prj_that_is_no_known_crs_is_refused_not_guessed():
    custom = CRS("+proj=tmerc +lon_0=113.5 +k=1 +x_0=500000 +ellps=GRS80 +units=m").to_wkt("WKT1_ESRI")
    with pytest.raises(InvalidParameter, match="no certain EPSG code"):
        crs_from_wkt(custom)
    with pytest.raises(InvalidParameter, match="cannot be read"):
        crs_from_wkt("PROJCS[garbage")
    with pytest.raises(InvalidParameter, match="empty"):
        crs_from_wkt("  ")
    geocentric = CRS("EPSG:4978").to_wkt()
    with pytest.raises(InvalidParameter, match="Geocentric"):
        crs_from_wkt(geocentric, parameter="prj")


@pytest.mark.parametrize(
    ("x", "y", "en", "zh"),
    [
        (113.3, 33.73, "longitude/latitude in degrees", "经纬度"),
        (33.73, 113.3, "latitude/longitude (swapped)", "顺序颠倒"),
        (2.35, 48.85, "outside China", "不在中国"),
        (38_435_126.1, 3_733_933.1, "prefix 38 (EPSG:4526; Xian 1980 EPSG:2362, Beijing 1954 EPSG:2414)", "带号 38"),
        (25_500_000.0, 4_000_000.0, "zone prefix 25 (EPSG:4513", "EPSG:4513"),
        (45_500_000.0, 5_000_000.0, "zone prefix 45 (EPSG:4533", "EPSG:4533"),
        (19_500_000.0, 3_700_000.0, "6-degree Gauss-Kruger with zone prefix 19 (EPSG:4497)", "六度带"),
        (435_126.1, 3_733_933.1, "without zone prefix (EPSG:4534-4554", "不带带号"),
        (713_091.8, 3_734_595.3, "UTM", "UTM"),
        (12_612_000.0, 3_990_000.0, "Web Mercator", "墨卡托"),
    ],
)
def test_numbers_are_described_by_what_they_look_like(x, y, en, zh):
    assert en in describe_coordinates(x, y)
    assert zh in describe_coordinates(x, y, lang="zh")


def test_the_kinds_behind_the_words():
    assert coordinate_kind(113.3, 33.73) == ("lonlat", None)
    assert coordinate_kind(33.73, 113.3) == ("latlon", None)
    assert coordinate_kind(38_435_126.1, 3_733_933.1) == ("gk3_zone", 38)
    assert coordinate_kind(19_500_000.0, 3_700_000.0) == ("gk6_zone", 19)
    assert coordinate_kind(435_126.1, 3_733_933.1) == ("transverse_mercator", None)
    assert coordinate_kind(12_612_000.0, 3_990_000.0) == ("web_mercator", None)
    assert coordinate_kind(1e9, 1e9) is None
    # the importer compares the English words of degrees as they are
    assert describe_coordinates(113.3, 33.73) == "longitude/latitude in degrees"
    assert describe_coordinates(33.73, 113.3) == "latitude/longitude (swapped)"
    samples = [(113.3, 33.73), (33.73, 113.3), (-74.0, 40.7), (40.7, -120.0), (38_435_126.1, 3_733_933.1)]
    samples += [(19_500_000.0, 3_700_000.0), (435_126.1, 3_733_933.1), (12_612_000.0, 3_990_000.0)]
    assert sorted({coordinate_kind(x, y)[0] for x, y in samples}) == sorted(KINDS)
    for x, y in samples:
        assert describe_coordinates(x, y, "zh") != describe_coordinates(x, y, "en")


@pytest.mark.parametrize(("x", "y"), [(1e9, 1e9), (-5e6, 3e6), (0.0, -1e7), (float("nan"), 1.0), ("abc", 1.0)])
def test_numbers_that_look_like_nothing_known_are_described_as_nothing(x, y):
    assert describe_coordinates(x, y) is None


def test_the_real_zone_of_the_district_is_what_describe_names():
    x, y = xy_from_storage(np.array([LON]), np.array([LAT]), parse_crs("EPSG:4526"))
    words = describe_coordinates(x[0], y[0])
    assert "EPSG:4526" in words
    lon, lat = xy_to_storage(x, y, parse_crs(words.split("(")[1].split(";")[0]))
    assert _metres((LON, LAT), (lon[0], lat[0])) < 0.001


def test_the_epsg_ranges_named_in_messages_and_the_readme_are_the_zones_they_claim():
    # PROJ's database names them (parse_crs gives the same names: test_the_families_parse_...)
    for zone in range(25, 46):
        cm = 75 + 3 * (zone - 25)
        assert CRS.from_epsg(4513 + zone - 25).name == f"CGCS2000 / 3-degree Gauss-Kruger zone {zone}"
        assert CRS.from_epsg(4534 + zone - 25).name == f"CGCS2000 / 3-degree Gauss-Kruger CM {cm}E"
        assert CRS.from_epsg(2349 + zone - 25).name == f"Xian 1980 / 3-degree Gauss-Kruger zone {zone}"
        assert CRS.from_epsg(2370 + zone - 25).name == f"Xian 1980 / 3-degree Gauss-Kruger CM {cm}E"
        assert CRS.from_epsg(2401 + zone - 25).name == f"Beijing 1954 / 3-degree Gauss-Kruger zone {zone}"
        assert CRS.from_epsg(2422 + zone - 25).name == f"Beijing 1954 / 3-degree Gauss-Kruger CM {cm}E"
        # what describe_coordinates names for a prefixed easting is that zone's code
        words = describe_coordinates(zone * 1_000_000 + 500_000.0, 3_700_000.0)
        assert f"(EPSG:{4513 + zone - 25};" in words and f"Xian 1980 EPSG:{2349 + zone - 25}," in words
        assert f"Beijing 1954 EPSG:{2401 + zone - 25})" in words
    for zone in range(13, 24):
        assert CRS.from_epsg(4491 + zone - 13).name == f"CGCS2000 / Gauss-Kruger zone {zone}"
        assert f"(EPSG:{4491 + zone - 13})" in describe_coordinates(zone * 1_000_000 + 500_000.0, 3_700_000.0)
    assert parse_crs("EPSG:32649").name == "WGS 84 / UTM zone 49N" and parse_crs("EPSG:32749").name.endswith("49S")
