"""Hostile and sloppy input to the real API answers 4xx in the JSON error shape, naming the parameter,
and writes nothing: no feature, no change, no audit row; on every backend."""

from __future__ import annotations

import orjson
import pytest

from geoapp.core.geojson import MAX_VERTICES
from tests.conftest import login

HOARDINGS = "/api/layers/construction_hoardings"
HOARDING = f"{HOARDINGS}/features"
POINTS = "/api/layers/waterlogging_points"
LINE = {"type": "LineString", "coordinates": [[113.300, 33.730], [113.301, 33.7302]]}
RING = [[113.300, 33.730], [113.301, 33.730], [113.301, 33.731], [113.300, 33.731], [113.300, 33.730]]
NEW = {"type": "Feature", "geometry": LINE, "properties": {"site": "新点", "agency": "housing"}}
JSON = {"Content-Type": "application/json"}


def _signed_in(app, role: str):
    client = app.test_client()
    _, csrf = login(client, role)
    return client, {"X-CSRFToken": csrf}


@pytest.fixture
def planner(app, users):
    """A planner, who may edit construction hoardings, and the headers a write needs."""
    return _signed_in(app, "planner")


def _written(app, client, layer: str = HOARDINGS) -> tuple[int, int]:
    """What a refused request must leave as it was: the layer's feature count and the audit trail's length."""
    return client.get(layer).json["count"], len(app.extensions["geoapp"].store.audit())


def _refused(response, status: int, parameter: str | None) -> dict:
    """Check the one JSON error shape; return the error."""
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    assert response.is_json, response.get_data(as_text=True)[:500]
    error = response.json["error"]
    assert set(response.json) == {"error"} and set(error) == {"code", "message", "parameter"}
    assert isinstance(error["code"], str) and isinstance(error["message"], str) and error["message"]
    assert error["parameter"] == parameter, error
    return error


def _with_geometry(geometry) -> dict:
    return {**NEW, "geometry": geometry}


BAD_GEOMETRIES = {
    "no coordinates": {"type": "LineString"},
    "a Feature": {"type": "Feature"},
    "a Feature around a geometry": {"type": "Feature", "geometry": LINE, "properties": {}},
    "Circle": {"type": "Circle", "coordinates": [113.3, 33.73], "radius": 50},
    "GeometryCollection": {"type": "GeometryCollection", "geometries": [LINE]},
    "lower-case type": {**LINE, "type": "linestring"},
    "string coordinates": {"type": "LineString", "coordinates": [["113.300", "33.730"], ["113.301", "33.7302"]]},
    "boolean coordinates": {"type": "LineString", "coordinates": [[113.3, 33.73], [True, 33.7302]]},
    "unclosed ring": {"type": "Polygon", "coordinates": [RING[:-1]]},
    "ring of three": {"type": "Polygon", "coordinates": [[*RING[:2], RING[0]]]},
    "one-position line": {"type": "LineString", "coordinates": [[113.3, 33.73]]},
    "four-number position": {"type": "LineString", "coordinates": [[113.3, 33.73, 0, 1], [113.301, 33.7302, 0, 1]]},
    "projected metres": {"type": "LineString", "coordinates": [[4547000.0, 3735000.0], [4547100.0, 3735000.0]]},
    "crs member": {**LINE, "crs": {"type": "name", "properties": {"name": "EPSG:4547"}}},
}


@pytest.mark.parametrize("geometry", BAD_GEOMETRIES.values(), ids=BAD_GEOMETRIES.keys())
def test_creating_with_bad_geometry_is_refused_and_writes_nothing(app, planner, geometry):
    client, headers = planner
    before = _written(app, client)
    _refused(client.post(HOARDING, json=_with_geometry(geometry), headers=headers), 400, "geometry")
    assert _written(app, client) == before


@pytest.mark.parametrize("geometry", BAD_GEOMETRIES.values(), ids=BAD_GEOMETRIES.keys())
def test_changing_to_bad_geometry_is_refused_and_changes_nothing(app, planner, geometry):
    client, headers = planner
    before = client.get(f"{HOARDING}/3").json
    written = _written(app, client)
    response = client.patch(
        f"{HOARDING}/3", json={"geometry": geometry}, headers={**headers, "If-Match": f'"{before["version"]}"'}
    )
    _refused(response, 400, "geometry")
    assert client.get(f"{HOARDING}/3").json == before
    assert _written(app, client) == written


def test_a_lower_case_point_is_refused_on_a_point_layer(app, users):
    client, headers = _signed_in(app, "commander")
    before = _written(app, client, POINTS)
    body = {
        "type": "Feature",
        "geometry": {"type": "point", "coordinates": [113.30, 33.73]},
        "properties": {"name": "新积水点", "road": "人民路"},
    }
    error = _refused(client.post(f"{POINTS}/features", json=body, headers=headers), 400, "geometry")
    assert "'Point'" in error["message"]
    assert _written(app, client, POINTS) == before


def test_valid_geometry_of_each_allowed_type_is_still_accepted(app, planner):
    client, headers = planner
    count, audit = _written(app, client)
    for geometry in (LINE, {"type": "Polygon", "coordinates": [RING]}):
        response = client.post(HOARDING, json=_with_geometry(geometry), headers=headers)
        assert response.status_code == 201, response.json
        assert response.json["geometry"]["type"] == geometry["type"]
    assert _written(app, client) == (count + 2, audit + 2)


def _long_line(vertices: int) -> bytes:
    """A line inside the district with ``vertices`` positions, as a POST body (built here, not in the app)."""
    # rows of 1,000 vertices 1 m apart, so that even a million stay within about 1 km
    coordinates = b",".join(
        b"[%.5f,%.6f]" % (113.30 + i % 1000 * 1e-5, 33.73 + i // 1000 * 1e-6) for i in range(vertices)
    )
    properties = orjson.dumps(NEW["properties"])
    return b'{"type":"Feature","properties":%s,"geometry":{"type":"LineString","coordinates":[%s]}}' % (
        properties,
        coordinates,
    )


def test_a_million_vertex_line_is_refused_by_size_or_by_vertex_cap(app, planner):
    client, headers = planner
    body = _long_line(1_000_000)
    assert len(body) > 19_000_000
    before = _written(app, client)
    response = client.post(HOARDING, data=body, headers={**headers, **JSON})
    if response.status_code == 413:  # MAX_CONTENT_LENGTH answers before the body is read
        _refused(response, 413, "body")
    else:
        error = _refused(response, 400, "geometry")
        assert str(MAX_VERTICES) in error["message"]
    assert _written(app, client) == before


def test_a_line_under_the_size_limit_but_over_the_vertex_cap_is_refused(app, planner):
    client, headers = planner
    vertices = 60_000
    assert vertices > MAX_VERTICES
    body = _long_line(vertices)
    assert len(body) < 4 * 1024 * 1024  # fits the bound on a request's size
    before = _written(app, client)
    error = _refused(client.post(HOARDING, data=body, headers={**headers, **JSON}), 400, "geometry")
    assert f"has {vertices} vertices" in error["message"] and str(MAX_VERTICES) in error["message"]
    assert _written(app, client) == before


DEEP = b"[" * 100_000 + b"]" * 100_000


def _with_site(site: bytes) -> bytes:
    """A new hoarding whose site is ``site``, raw JSON text as a client might send it."""
    return b'{"type":"Feature","geometry":%s,"properties":{"site":%s,"agency":"housing"}}' % (orjson.dumps(LINE), site)


BAD_BODIES = {
    "deeply nested": DEEP,
    "deeply nested, unclosed": b"[" * 100_000,
    "deep inside properties": _with_site(b"[" * 5000 + b"]" * 5000),
    "lone surrogate in a property": _with_site(b'"\\ud800"'),
    "lone low surrogate": _with_site(b'"x\\udc00"'),
    "not UTF-8": _with_site(b'"\xed\xa0\x80"'),
    "malformed": b'{"type":"Feature","geometry":',
    "NaN": b'{"type":"Feature","geometry":{"type":"LineString","coordinates":[[NaN,33.73],[113.301,33.7302]]}}',
    "an array": b"[1, 2]",
    "empty": b"",
}


@pytest.mark.parametrize("body", BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_a_bad_json_body_is_refused_naming_the_body(app, planner, body):
    client, headers = planner
    before = _written(app, client)
    _refused(client.post(HOARDING, data=body, headers={**headers, **JSON}), 400, "body")
    assert _written(app, client) == before


@pytest.mark.parametrize("body", BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_a_bad_json_body_is_refused_on_patch(app, planner, body):
    client, headers = planner
    before = client.get(f"{HOARDING}/3").json
    written = _written(app, client)
    response = client.patch(
        f"{HOARDING}/3", data=body, headers={**headers, **JSON, "If-Match": f'"{before["version"]}"'}
    )
    _refused(response, 400, "body")
    assert client.get(f"{HOARDING}/3").json == before
    assert _written(app, client) == written


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_a_body_not_sent_as_json_is_refused(app, planner, content_type):
    client, headers = planner
    before = _written(app, client)
    response = client.post(
        HOARDING,
        data=orjson.dumps(NEW),
        headers={**headers, **({"Content-Type": content_type} if content_type else {})},
    )
    _refused(response, 400, "body")
    assert _written(app, client) == before


def test_a_geojson_feature_may_be_sent_as_geo_json(app, planner):
    client, headers = planner
    response = client.post(
        HOARDING, data=orjson.dumps(NEW), headers={**headers, "Content-Type": "application/geo+json"}
    )
    assert response.status_code == 201, response.json


@pytest.mark.parametrize(
    "body",
    [
        b'{"version": 1',  # malformed
        b'{"version": "\\ud800"}',  # a lone surrogate
        DEEP,
        b"[1]",  # not an object
        b'"1"',
    ],
    ids=["malformed", "lone surrogate", "deeply nested", "an array", "a string"],
)
def test_delete_refuses_a_bad_body_instead_of_ignoring_it(app, planner, body):
    client, headers = planner
    before = client.get(f"{HOARDING}/2").json
    written = _written(app, client)
    response = client.delete(
        f"{HOARDING}/2", data=body, headers={**headers, **JSON, "If-Match": f'"{before["version"]}"'}
    )
    _refused(response, 400, "body")
    assert client.get(f"{HOARDING}/2").json == before  # still there
    assert _written(app, client) == written


def test_delete_refuses_unknown_members_as_patch_does(app, planner):
    client, headers = planner
    before = client.get(f"{HOARDING}/2").json
    written = _written(app, client)
    response = client.delete(f"{HOARDING}/2", json={"version": before["version"], "reason": "gone"}, headers=headers)
    _refused(response, 400, "reason")
    assert client.get(f"{HOARDING}/2").json == before
    assert _written(app, client) == written


def test_delete_still_needs_no_body_with_if_match(app, planner):
    client, headers = planner
    version = client.get(f"{HOARDING}/2").json["version"]
    assert client.delete(f"{HOARDING}/2", headers={**headers, "If-Match": f'"{version}"'}).status_code == 204
    assert client.get(f"{HOARDING}/2").status_code == 404


@pytest.mark.parametrize(
    ("member", "value"),
    [("propertise", {"site": "新点"}), ("geom", LINE), ("layer", "roads"), ("status", "removed")],
)
def test_create_refuses_unknown_members_as_patch_does(app, planner, member, value):
    client, headers = planner
    before = _written(app, client)
    error = _refused(client.post(HOARDING, json={**NEW, member: value}, headers=headers), 400, member)
    assert "properties" in error["message"] and "geometry" in error["message"]  # it names what is allowed
    assert _written(app, client) == before
    version = client.get(f"{HOARDING}/3").json["version"]
    patched = client.patch(f"{HOARDING}/3", json={member: value}, headers={**headers, "If-Match": f'"{version}"'})
    _refused(patched, 400, member)
    assert _written(app, client) == before


FIDS = ["١٢", "１２", "12\u0663", "²", "abc", "1.0", "0", "-1", "9223372036854775808", "9" * 40]


@pytest.mark.parametrize("fid", FIDS)
def test_a_feature_id_that_is_not_ascii_digits_answers_404_on_get(client, fid):
    _refused(client.get(f"{HOARDING}/{fid}"), 404, "fid")


@pytest.mark.parametrize("fid", FIDS)
def test_a_feature_id_that_is_not_ascii_digits_answers_404_on_patch_and_delete(app, planner, fid):
    client, headers = planner
    twelve = client.get(f"{HOARDING}/12").json
    written = _written(app, client)
    if_match = {**headers, "If-Match": f'"{twelve["version"]}"'}
    _refused(client.patch(f"{HOARDING}/{fid}", json={"properties": {"notes": "x"}}, headers=if_match), 404, "fid")
    _refused(client.delete(f"{HOARDING}/{fid}", headers=if_match), 404, "fid")
    assert client.get(f"{HOARDING}/12").json == twelve  # "١٢" is not another name for feature 12
    assert _written(app, client) == written


@pytest.mark.parametrize("fid", FIDS)
def test_a_feature_id_that_is_not_ascii_digits_answers_404_on_history_and_restore(app, users, fid):
    client, headers = _signed_in(app, "admin")
    assert client.delete(f"{HOARDING}/12", headers={**headers, "If-Match": '"1"'}).status_code == 204
    written = _written(app, client)
    _refused(client.get(f"{HOARDING}/{fid}/history"), 404, "fid")
    _refused(client.post(f"{HOARDING}/{fid}/restore", headers=headers), 404, "fid")
    assert client.get(f"{HOARDING}/12").status_code == 404  # "١٢" did not restore feature 12
    assert _written(app, client) == written


@pytest.mark.parametrize("blank", ["", "   ", "\t\n", "\u3000"], ids=["empty", "spaces", "tab-newline", "ideographic"])
def test_a_required_field_refuses_empty_and_whitespace_only_text(app, planner, blank):
    client, headers = planner
    written = _written(app, client)
    body = {**NEW, "properties": {**NEW["properties"], "site": blank}}
    error = _refused(client.post(HOARDING, json=body, headers=headers), 400, "site")
    assert "required" in error["message"]
    before = client.get(f"{HOARDING}/3").json
    response = client.patch(
        f"{HOARDING}/3", json={"properties": {"site": blank}}, headers={**headers, "If-Match": f'"{before["version"]}"'}
    )
    _refused(response, 400, "site")
    assert client.get(f"{HOARDING}/3").json == before
    assert _written(app, client) == written


@pytest.mark.parametrize(
    "within",
    [
        {"type": "polygon", "coordinates": [RING]},
        {"type": "Polygon", "coordinates": [RING[:-1]]},
        {"type": "Polygon", "coordinates": [[[str(x), str(y)] for x, y in RING]]},
        {"type": "Polygon"},
        {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [RING]}},
        {"type": "Circle", "coordinates": [113.3, 33.73]},
    ],
    ids=["lower-case", "unclosed", "string coordinates", "no coordinates", "a Feature", "Circle"],
)
def test_a_loose_within_polygon_is_refused_naming_within(client, within):
    response = client.get(f"{HOARDING}", query_string={"within": orjson.dumps(within).decode()})
    _refused(response, 400, "within")


def test_deeply_nested_or_surrogate_within_is_refused_naming_within(client):
    for text in ["[" * 100_000, '{"type":"Polygon","coordinates":[],"x":"\\ud800"}']:
        _refused(client.get(HOARDING, query_string={"within": text}), 400, "within")


@pytest.mark.parametrize("text", ["a\x00b", "报告\x1b[31m", "\x7f"])
def test_control_characters_in_text_are_refused_and_nothing_is_written(client, users, app, text):
    _, csrf = login(client, "planner")
    before = len(app.extensions["geoapp"].store.audit())
    response = client.post(
        "/api/layers/construction_hoardings/features",
        json={
            "type": "Feature",
            "geometry": {"type": "LineString", "coordinates": [[113.300, 33.730], [113.301, 33.7305]]},
            "properties": {"site": text, "agency": "housing", "status": "pending"},
        },
        headers={"X-CSRFToken": csrf},
    )
    assert response.status_code == 400
    assert response.get_json()["error"]["parameter"] == "site"
    assert len(app.extensions["geoapp"].store.audit()) == before
