"""Hotline addresses placed on the demo district's roads, checked against points computed here from the roads."""

from __future__ import annotations

import shutil

import pytest
import shapely
from pyproj import Transformer
from shapely.geometry import LineString, Point

from geoapp.cases.geocode import Geocoder
from geoapp.web import create_app

METRIC_CRS = "EPSG:4547"
TO_METRIC = Transformer.from_crs("EPSG:4326", METRIC_CRS, always_xy=True)


@pytest.fixture(scope="module")
def service(demo_gpkg, tmp_path_factory):
    """The app's service on a private copy of the demo district: geocoding reads the roads as the app does."""
    path = tmp_path_factory.mktemp("geocode") / "geoapp.gpkg"
    shutil.copy(demo_gpkg, path)
    app = create_app({"TESTING": True, "SECRET_KEY": "test-secret", "GEOAPP_DATABASE": str(path)})
    yield app.extensions["geoapp"]
    app.extensions["geoapp"].close()


@pytest.fixture(scope="module")
def geocoder(service) -> Geocoder:
    return Geocoder.from_reader(service.reader, service.store.metric_crs)


@pytest.fixture(scope="module")
def roads(demo_data):
    """The generated roads in metres, by name, with their house-number ranges."""
    metric = demo_data["roads"].to_crs(METRIC_CRS)
    return {row.name: row for row in metric.itertuples()}


def metric(found) -> Point:
    assert found.lon is not None and found.lat is not None, found
    return Point(TO_METRIC.transform(found.lon, found.lat))


def expected_point(road, number: int) -> Point:
    """Where ``number`` lies on the centreline: numbers run evenly from the first vertex to the last."""
    fraction = (number - road.numbers_from) / (road.numbers_to - road.numbers_from)
    return shapely.line_interpolate_point(road.geometry, fraction, normalized=True)


def side(line: LineString, point: Point) -> str:
    """Which side of the line, walking from its first vertex to its last, the point lies on."""
    along = line.project(point)
    a, b = line.interpolate(max(along - 1, 0)), line.interpolate(min(along + 1, line.length))
    cross = (b.x - a.x) * (point.y - a.y) - (b.y - a.y) * (point.x - a.x)
    return "left" if cross > 0 else "right"


@pytest.mark.parametrize(
    ("road_name", "number", "expected_side"),
    [("湛南路", 128, "right"), ("湛南路", 127, "left"), ("开源路", 40, "right"), ("人民路", 311, "left")],
)
def test_a_house_number_lands_beside_its_road_on_the_side_of_its_parity(
    geocoder, roads, road_name, number, expected_side
):
    found = geocoder.geocode(f"XX区{road_name}{number}号")
    assert (found.method, found.road, found.number, found.reason) == ("house_number", road_name, number, None)
    assert found.confidence >= 0.9
    road = roads[road_name]
    point = metric(found)
    assert point.distance(expected_point(road, number)) <= 20
    assert 8 <= point.distance(road.geometry) <= 16  # off the centreline, in front of the houses
    assert side(road.geometry, point) == expected_side
    nearest = min(roads.values(), key=lambda r: r.geometry.distance(point))
    assert nearest.name == road_name


def test_odd_and_even_numbers_face_each_other_across_the_street(geocoder, roads):
    even, odd = metric(geocoder.geocode("湛南路128号")), metric(geocoder.geocode("湛南路127号"))
    line = roads["湛南路"].geometry
    assert {side(line, even), side(line, odd)} == {"left", "right"}
    assert 15 <= even.distance(odd) <= 35


@pytest.mark.parametrize(
    "address", ["开源路与建设路交叉口", "开源路建设路口", "建设路和开源路", "ＸＸ区开源路、建设路交叉口附近"]
)
def test_a_crossing_lands_where_the_two_roads_cross(geocoder, roads, address):
    found = geocoder.geocode(address)
    assert found.method == "intersection" and found.confidence >= 0.8, found
    crossing = roads["开源路"].geometry.intersection(roads["建设路"].geometry)
    assert crossing.geom_type == "Point"
    assert metric(found).distance(crossing) <= 3


def test_an_unknown_road_is_not_found_and_says_so(geocoder):
    found = geocoder.geocode("花园路12号")
    assert (found.lon, found.lat, found.method, found.reason, found.confidence) == (None, None, "none", "no_road", 0)


@pytest.mark.parametrize(
    ("address", "reason"),
    [("", "empty"), ("  附近 ", "empty"), ("锦华小区3号楼", "no_road"), ("YY区湛南路128号", "not_in_district")],
)
def test_what_cannot_be_placed_has_a_reason(geocoder, address, reason):
    found = geocoder.geocode(address)
    assert (found.method, found.reason, found.lon) == ("none", reason, None)


@pytest.mark.parametrize("address", ["湛兰路128号", "湛南街128号", "湛南128号"])
def test_a_near_miss_is_placed_on_the_road_with_less_confidence(geocoder, address):
    exact = geocoder.geocode("湛南路128号")
    near = geocoder.geocode(address)
    assert (near.method, near.road, near.number) == ("house_number", "湛南路", 128)
    assert 0.5 <= near.confidence < exact.confidence
    assert metric(near).distance(metric(exact)) < 0.01


@pytest.mark.parametrize(
    "address",
    ["湛南路１２８号", "ＸＸ区湛南路128号", "河南省某市XX区湛南路128号", "湛南路一百二十八号", "湛南路128号院3号楼"],
)
def test_full_width_digits_prefixes_chinese_numerals_and_courtyards_read_the_same(geocoder, address):
    plain = geocoder.geocode("湛南路128号")
    found = geocoder.geocode(address)
    assert (found.method, found.number, found.confidence) == ("house_number", 128, plain.confidence)
    assert metric(found).distance(metric(plain)) < 0.01


@pytest.mark.parametrize("qualifier", ["附近", "门口", "对面", "旁", "东侧"])
def test_a_qualifier_is_read_past_and_lowers_the_confidence(geocoder, qualifier):
    plain = geocoder.geocode("湛南路128号")
    found = geocoder.geocode(f"湛南路128号{qualifier}")
    assert found.method == "house_number" and found.confidence < plain.confidence
    assert metric(found).distance(metric(plain)) < 0.01


def test_a_number_beyond_the_range_is_clamped_to_the_road_end(geocoder, roads):
    road = roads["湛南路"]
    found = geocoder.geocode(f"湛南路{road.numbers_to + 500}号")
    assert (found.method, found.reason) == ("house_number_outside_range", "outside_range")
    assert found.confidence < geocoder.geocode("湛南路128号").confidence
    end = Point(road.geometry.coords[-1])
    assert metric(found).distance(end) <= 20


def test_a_road_without_a_number_is_its_middle_with_low_confidence(geocoder, roads):
    found = geocoder.geocode("湛南路中段")
    assert (found.method, found.road, found.reason) == ("road", "湛南路", "no_number")
    assert found.confidence < 0.5
    line = roads["湛南路"].geometry
    assert metric(found).distance(line.interpolate(0.5, normalized=True)) <= 5


def _lonlat_line(*xy: tuple[float, float]) -> LineString:
    """A line at metres from the demo district's centre, in lon/lat."""
    to_lonlat = Transformer.from_crs(METRIC_CRS, "EPSG:4326", always_xy=True)
    x0, y0 = TO_METRIC.transform(113.30, 33.73)
    return LineString([to_lonlat.transform(x0 + x, y0 + y) for x, y in xy])


def test_a_road_of_several_features_is_numbered_along_their_ranges():
    # 幸福路 drawn as two features end to end: 1-100 over the first kilometre, 101-200 over the second
    roads = [
        ("幸福路", _lonlat_line((0, 0), (1000, 0)), 1, 100),
        ("幸福路", _lonlat_line((1000, 0), (2000, 0)), 101, 200),
    ]
    geocoder = Geocoder(roads, METRIC_CRS)
    found = geocoder.geocode("幸福路150号")
    assert found.method == "house_number"
    x0, y0 = TO_METRIC.transform(113.30, 33.73)
    expected = Point(x0 + 1000 + 1000 * 49 / 99, y0 - 12)  # even: on the right of a road running east
    assert metric(found).distance(expected) <= 1


def test_a_name_two_roads_match_equally_is_ambiguous():
    roads = [
        ("建设路", _lonlat_line((0, 0), (1000, 0)), 1, 100),
        ("建设街", _lonlat_line((0, 500), (1000, 500)), 1, 100),
    ]
    geocoder = Geocoder(roads, METRIC_CRS)
    assert geocoder.geocode("建设路18号").method == "house_number"
    found = geocoder.geocode("建设大道18号")
    assert (found.method, found.reason) == ("none", "ambiguous")


def test_distances_need_a_metric_crs():
    with pytest.raises(ValueError, match="metres"):
        Geocoder([], "EPSG:4326")
