"""The strict JSON and GeoJSON readers of geoapp.core.geojson on their own, without the app."""

from __future__ import annotations

import orjson
import pytest
import shapely
from shapely.geometry import mapping

from geoapp.core import geojson
from geoapp.core.geojson import MAX_JSON_DEPTH, MAX_VERTICES, parse_geometry, read_area, read_json
from geoapp.core.layers import FieldDef
from geoapp.core.query import parse_fid
from geoapp.errors import InvalidFeature, InvalidParameter

SQUARE = [[113.30, 33.73], [113.31, 33.73], [113.31, 33.74], [113.30, 33.74], [113.30, 33.73]]
HOLE = [[113.302, 33.732], [113.304, 33.732], [113.304, 33.734], [113.302, 33.734], [113.302, 33.732]]
EVERY_TYPE = [
    "POINT (113.3 33.73)",
    "MULTIPOINT ((113.3 33.73), (113.31 33.74))",
    "LINESTRING (113.3 33.73, 113.301 33.7302, 113.302 33.7301)",
    "MULTILINESTRING ((113.3 33.73, 113.301 33.7302), (113.31 33.74, 113.311 33.741))",
    "POLYGON ((113.3 33.73, 113.31 33.73, 113.31 33.74, 113.3 33.74, 113.3 33.73), "
    "(113.302 33.732, 113.304 33.732, 113.304 33.734, 113.302 33.732))",
    "MULTIPOLYGON (((113.3 33.73, 113.31 33.73, 113.31 33.74, 113.3 33.73)), "
    "((113.32 33.75, 113.33 33.75, 113.33 33.76, 113.32 33.75)))",
]


def _geojson(wkt: str) -> dict:
    return orjson.loads(shapely.to_geojson(shapely.from_wkt(wkt)))


@pytest.mark.parametrize("wkt", EVERY_TYPE, ids=lambda w: w.split(" ")[0])
def test_every_geometry_type_round_trips(wkt):
    expected = shapely.from_wkt(wkt)
    read = parse_geometry(_geojson(wkt))
    assert read.geom_type == expected.geom_type
    assert read.equals_exact(expected, tolerance=0)


@pytest.mark.parametrize("wkt", EVERY_TYPE, ids=lambda w: w.split(" ")[0])
def test_shapely_mappings_with_tuples_are_read_too(wkt):
    expected = shapely.from_wkt(wkt)
    assert parse_geometry(mapping(expected)).equals_exact(expected, tolerance=0)


def test_a_height_is_dropped_and_integers_are_numbers():
    read = parse_geometry({"type": "LineString", "coordinates": [[113, 33, 12.5], [114, 34, 0]]})
    assert not read.has_z
    assert list(read.coords) == [(113.0, 33.0), (114.0, 34.0)]


def test_foreign_members_and_bbox_are_allowed_as_rfc_7946_says():
    value = {"type": "Point", "coordinates": [113.3, 33.73], "bbox": [113.3, 33.73, 113.3, 33.73], "title": "x"}
    assert parse_geometry(value).equals(shapely.Point(113.3, 33.73))


ALLOWED = "Point, MultiPoint, LineString, MultiLineString, Polygon, MultiPolygon"


@pytest.mark.parametrize(
    ("value", "says"),
    [
        (None, "must be a GeoJSON geometry object"),
        ([113.3, 33.73], "must be a GeoJSON geometry object"),
        ({"coordinates": [113.3, 33.73]}, f"needs a type, one of: {ALLOWED}"),
        ({"type": "Point"}, "a Point needs coordinates"),
        ({"type": "Feature"}, f"not a Feature; types: {ALLOWED}"),
        ({"type": "Feature", "geometry": {"type": "Point", "coordinates": [1, 2]}}, "not a Feature"),
        ({"type": "FeatureCollection", "features": []}, "not a FeatureCollection"),
        (
            {"type": "GeometryCollection", "geometries": []},
            f"GeometryCollection is not accepted here; types: {ALLOWED}",
        ),
        (
            {"type": "Circle", "coordinates": [113.3, 33.73], "radius": 5},
            f"unknown geometry type 'Circle'; types: {ALLOWED}",
        ),
        ({"type": "point", "coordinates": [113.3, 33.73]}, "case-sensitive): write 'Point'"),
        ({"type": "POLYGON", "coordinates": [SQUARE]}, "write 'Polygon'"),
        ({"type": "Point", "coordinates": ["113.3", "33.73"]}, "as JSON numbers, not text or true/false"),
        ({"type": "Point", "coordinates": [True, 33.73]}, "as JSON numbers"),
        ({"type": "Point", "coordinates": [113.3, None]}, "as JSON numbers"),
        ({"type": "Point", "coordinates": [113.3]}, "a position must be [longitude, latitude]"),
        ({"type": "Point", "coordinates": [113.3, 33.73, 1, 2]}, "a position must be [longitude, latitude]"),
        ({"type": "Point", "coordinates": [113.3, 33.73, float("inf")]}, "height inf is not a finite number"),
        ({"type": "Point", "coordinates": "113.3,33.73"}, "a position must be"),
        ({"type": "Point", "coordinates": [float("nan"), 33.73]}, "longitude nan is outside -180..180"),
        ({"type": "Point", "coordinates": [181, 33.73]}, "longitude 181 is outside -180..180"),
        ({"type": "Point", "coordinates": [113.3, -90.5]}, "latitude -90.5 is outside -90..90"),
        ({"type": "Point", "coordinates": [10**400, 0]}, "outside -180..180"),
        ({"type": "Point", "coordinates": [4547000.0, 3735000.0]}, "outside -180..180 (WGS84 degrees)"),
        ({"type": "Point", "coordinates": [113.3, 33.73], "crs": {"type": "name"}}, "crs is not part of GeoJSON"),
        ({"type": "MultiPoint", "coordinates": []}, "coordinates is empty"),
        ({"type": "LineString", "coordinates": "nope"}, "coordinates must be an array"),
        ({"type": "LineString", "coordinates": [[113.3, 33.73]]}, "a line needs 2 or more positions, not 1"),
        ({"type": "LineString", "coordinates": [[113.3, 33.73], ["113.31", 33.74]]}, "coordinates[1]: a position"),
        ({"type": "MultiLineString", "coordinates": [[[113.3, 33.73]]]}, "coordinates[0]: a line needs 2"),
        ({"type": "Polygon", "coordinates": [SQUARE[:-1]]}, "coordinates[0]: the ring is not closed"),
        ({"type": "Polygon", "coordinates": [SQUARE, HOLE[:-1]]}, "coordinates[1]: the ring is not closed"),
        ({"type": "Polygon", "coordinates": [SQUARE[:2] + SQUARE[:1]]}, "a ring needs 4 or more positions"),
        ({"type": "Polygon", "coordinates": [[]]}, "coordinates[0] is empty"),
        ({"type": "Polygon", "coordinates": [SQUARE[0]]}, "coordinates[0][0]: a position must be"),
        ({"type": "Polygon", "coordinates": ["ring"]}, "coordinates[0] must be an array"),
        ({"type": "MultiPolygon", "coordinates": [[SQUARE], [SQUARE[:-1]]]}, "coordinates[1][0]: the ring is not"),
    ],
)
def test_loose_or_wrong_geojson_is_refused_saying_why(value, says):
    with pytest.raises(InvalidFeature) as refused:
        parse_geometry(value)
    assert refused.value.parameter == "geometry"
    assert says in refused.value.message


def test_types_can_be_narrowed_and_the_message_names_them():
    with pytest.raises(InvalidFeature, match=r"types: Polygon$"):
        parse_geometry({"type": "Point", "coordinates": [1, 2]}, types=("Polygon",))


def test_a_line_over_the_vertex_cap_is_refused_before_shapely_builds_it(monkeypatch):
    def no_building(*args, **kwargs):
        raise AssertionError("shapely was asked to build the geometry")

    monkeypatch.setattr(geojson, "shape", no_building)
    line = {"type": "LineString", "coordinates": [[113.3 + i * 1e-7, 33.73] for i in range(1_000_000)]}
    with pytest.raises(InvalidFeature) as refused:
        parse_geometry(line)
    assert refused.value.parameter == "geometry"
    assert f"has 1000000 vertices; a geometry may have at most {MAX_VERTICES} (MAX_VERTICES)" in refused.value.message


def test_the_vertex_cap_counts_every_part_and_ring():
    ring = [[113.3 + i * 1e-6, 33.73 + (i % 2) * 1e-6] for i in range(MAX_VERTICES // 2)]
    ring.append(ring[0])
    with pytest.raises(InvalidFeature, match=f"has {2 * len(ring)} vertices"):
        parse_geometry({"type": "MultiPolygon", "coordinates": [[ring], [ring]]})
    line = [[113.3 + i * 1e-7, 33.73] for i in range(MAX_VERTICES)]
    assert len(parse_geometry({"type": "LineString", "coordinates": line}).coords) == MAX_VERTICES


def test_validity_is_left_to_the_store_but_checked_for_query_areas():
    bowtie = {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}
    assert not parse_geometry(bowtie).is_valid  # the store refuses it with shapely's reason
    with pytest.raises(InvalidParameter, match="within: the polygon is not valid") as refused:
        read_area(orjson.dumps(bowtie))
    assert refused.value.parameter == "within"


def test_read_area_gives_a_valid_polygon_or_multipolygon():
    polygon = read_area(orjson.dumps({"type": "Polygon", "coordinates": [SQUARE, HOLE]}))
    assert polygon.geom_type == "Polygon" and len(polygon.interiors) == 1
    multi = read_area(orjson.dumps(_geojson(EVERY_TYPE[-1])).decode())
    assert multi.geom_type == "MultiPolygon"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ('{"type":"Point","coordinates":[113.3,33.73]}', "Point is not accepted here; types: Polygon, MultiPolygon"),
        ('{"type":"polygon","coordinates":[]}', "write 'Polygon'"),
        (orjson.dumps({"type": "Polygon", "coordinates": [SQUARE[:-1]]}), "the ring is not closed"),
        ('{"type":"Polygon","coordinates":[[["113.3","33.73"]]]}', "as JSON numbers"),
        ('{"type":"Polygon"', "within is not valid JSON"),
        ("grid_cells/1", "within is not valid JSON"),
    ],
)
def test_read_area_refuses_with_the_parameter_name(text, says):
    with pytest.raises(InvalidParameter) as refused:
        read_area(text)
    assert refused.value.parameter == "within"
    assert says in refused.value.message


def test_read_json_reads_every_json_value():
    assert read_json(b'{"site": "\xe6\x96\xb0\xe7\x82\xb9", "n": [1, 2.5, true, null]}') == {
        "site": "新点",
        "n": [1, 2.5, True, None],
    }
    assert read_json('"\\ud83d\\ude00"') == "\U0001f600"  # an escaped surrogate pair is one character
    assert read_json("3") == 3


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize(
    ("document", "says"),
    [
        ("[" * 100_000, f"nests deeper than {MAX_JSON_DEPTH} levels"),
        (_nested(100_000), f"nests deeper than {MAX_JSON_DEPTH} levels"),
        (_nested(1000), f"nests deeper than {MAX_JSON_DEPTH} levels"),  # orjson's own limit is 1024
        (_nested(MAX_JSON_DEPTH + 1), f"nests deeper than {MAX_JSON_DEPTH} levels"),
        ('{"a":' * 40 + "1" + "}" * 40, f"nests deeper than {MAX_JSON_DEPTH} levels"),
        ('{"site": "\\ud800"}', "lone UTF-16 surrogate"),
        ('{"site": "x\\udfffy"}', "lone UTF-16 surrogate"),
        ('["\\ud83d"]', "lone UTF-16 surrogate"),
        ('"\ud800"', "lone UTF-16 surrogate"),  # a Python str holding one
        (b'"\xff\xfe"', "not UTF-8"),
        ("", "body is empty"),
        (b"  \n", "body is empty"),
        ('{"a": 1', "body is not valid JSON"),
        ("{'a': 1}", "body is not valid JSON"),
        ("[NaN]", "body is not valid JSON"),
        ("[Infinity]", "body is not valid JSON"),
        ("[1e400]", "body is not valid JSON"),
    ],
)
def test_read_json_refuses_what_would_fail_later(document, says):
    with pytest.raises(InvalidParameter) as refused:
        read_json(document)
    assert refused.value.parameter == "body"
    assert says in refused.value.message


def test_read_json_counts_depth_of_arrays_and_objects_not_brackets_in_text():
    assert read_json(_nested(MAX_JSON_DEPTH)) is not None
    assert read_json(orjson.dumps({"notes": "[" * 10_000 + '\\"{' * 100})) == {"notes": "[" * 10_000 + '\\"{' * 100}
    with pytest.raises(InvalidParameter, match="nests deeper than 3 levels"):
        read_json('{"a": [{"b": [1]}]}', max_depth=3)
    assert read_json('{"a": [{"b": 1}]}', max_depth=3) == {"a": [{"b": 1}]}
    with pytest.raises(InvalidParameter) as refused:
        read_json("[", parameter="within")
    assert refused.value.parameter == "within"


@pytest.mark.parametrize(
    ("text", "fid"),
    [
        ("1", 1),
        ("12", 12),
        (str(2**63 - 1), 2**63 - 1),
        (str(2**63), None),
        ("9" * 5000, None),
        ("0", None),
        ("012", None),
        ("-1", None),
        ("+1", None),
        (" 1", None),
        ("1.0", None),
        ("abc", None),
        ("", None),
        ("١٢", None),  # Arabic-Indic digits: str.isdigit() and int() accept them
        ("１２", None),  # full-width digits
        ("²", None),
    ],
)
def test_parse_fid_takes_ascii_digits_only(text, fid):
    assert parse_fid(text) == fid


def _field(**settings) -> FieldDef:
    return FieldDef(name="site", type="string", label={"zh": "点位", "en": "Site"}, **settings)


@pytest.mark.parametrize("blank", ["", " ", "   ", "\t\n", "\u3000"])
def test_a_required_text_field_refuses_empty_and_whitespace_only_text(blank):
    with pytest.raises(ValueError, match="is required and must not be empty or only whitespace"):
        _field(required=True).coerce(blank)
    assert _field().coerce(blank) == blank  # an optional field keeps what was sent


def test_a_required_text_field_keeps_text_as_sent():
    assert _field(required=True).coerce(" 新点 ") == " 新点 "
