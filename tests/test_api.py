"""The JSON API over the demo district: listing, queries, paging, errors and field visibility, on every backend."""

from __future__ import annotations

from urllib.parse import urlsplit

import numpy as np
import pytest
import shapely

from tests.backends import fingerprint
from tests.conftest import SETUP
from tests.frames import layer_frame

DEMO_COUNTS = {
    "waterlogging_points": 6,
    "underpass_culverts": 14,
    "underground_spaces": 81,
    "construction_hoardings": 43,
    "heating_stations": 114,
    "backstreet_repairs": 10,
}
pytestmark = pytest.mark.backends("gpkg", "postgis")


def _features(client, layer_id, query=""):
    response = client.get(f"/api/layers/{layer_id}/features?limit=10000&{query}")
    assert response.status_code == 200, response.json
    assert response.mimetype == "application/geo+json"
    return response.json


def test_layers_lists_every_layer_with_counts_extent_and_vocabulary(client, registry):
    payload = client.get("/api/layers").json
    listed = {layer["id"]: layer for layer in payload["layers"]}
    assert list(listed) == registry.ids
    for layer_id, count in DEMO_COUNTS.items():
        assert listed[layer_id]["count"] == count
    covers = listed["manhole_covers"]
    assert covers["count"] >= 886
    assert covers["title"] == {"zh": "窨井盖", "en": "Manhole covers"}
    assert covers["group"]["title"]["zh"] == "部件"
    minx, miny, maxx, maxy = covers["extent"]
    assert 113.2 < minx < maxx < 113.4 and 33.6 < miny < maxy < 33.8
    assert [v["value"] for v in listed["construction_hoardings"]["status"]["values"]] == [
        "pending",
        "in_progress",
        "removed",
        "under_construction",
    ]
    assert all(v["color"].startswith("#") for v in covers["status"]["values"])
    assert payload["synthetic"] is True


def test_stats_gives_the_reports_headline_figures_from_the_data(client):
    payload = client.get("/api/stats").json
    figures = {f["id"]: f["value"] for f in payload["report"]}
    assert figures["hoardings"] == 43
    assert figures["hoardings_removed"] == 28
    assert figures["hoardings_removed_urban_management"] == 19
    assert figures["hoardings_removed_housing"] == 9
    assert figures["hoardings_under_construction"] == 9
    assert figures["hoardings_xinhua"] == 3
    assert figures["hoardings_pending"] == 3
    assert figures["heating_stations"] == 114
    assert figures["heating_direct"] + figures["heating_transfer"] == 114
    assert figures["heating_transfer_converted"] == figures["heating_transfer"]
    assert (figures["backstreets"], figures["backstreets_repaired"], figures["backstreets_under_works"]) == (10, 8, 2)
    assert figures["manholes_fixed"] == 886
    assert figures["manholes_target_pct"] == 110.75
    hoardings = payload["layers"]["construction_hoardings"]
    assert hoardings["count"] == 43 and sum(hoardings["by_status"].values()) == 43


def test_paging_through_a_bbox_returns_every_match_exactly_once(client, app):
    bbox = "113.27,33.70,113.32,33.75"
    url = f"/api/layers/manhole_covers/features?bbox={bbox}&limit=37"
    seen, matched = [], None
    while url:
        payload = client.get(url).json
        matched = payload["numberMatched"] if matched is None else matched
        assert payload["numberMatched"] == matched
        assert payload["numberReturned"] == len(payload["features"]) <= 37
        seen += [f["id"] for f in payload["features"]]
        nxt = [link["href"] for link in payload["links"] if link["rel"] == "next"]
        url = "{0.path}?{0.query}".format(urlsplit(nxt[0])) if nxt else None
    assert len(seen) == len(set(seen)) == matched
    gdf = layer_frame(app.extensions["geoapp"].store, "manhole_covers")
    minx, miny, maxx, maxy = map(float, bbox.split(","))
    x, y = gdf.geometry.x, gdf.geometry.y
    expected = gdf.index[(x >= minx) & (x <= maxx) & (y >= miny) & (y <= maxy)]
    assert sorted(seen) == sorted(expected.tolist())
    assert 37 < matched < len(gdf)


def test_near_returns_distances_in_metres_nearest_first(client):
    payload = _features(client, "heating_stations", "near=113.30,33.73&radius=800")
    distances = [f["properties"]["distance_m"] for f in payload["features"]]
    assert distances == sorted(distances) and all(d <= 800 for d in distances)
    assert payload["numberMatched"] == len(distances) > 0


def test_nearest_returns_k_features(client):
    payload = _features(client, "underpass_culverts", "nearest=113.30,33.73&k=3")
    assert payload["numberReturned"] == 3
    distances = [f["properties"]["distance_m"] for f in payload["features"]]
    assert distances == sorted(distances)
    everything = _features(client, "underpass_culverts", "nearest=113.30,33.73&k=1000")
    assert [f["id"] for f in everything["features"][:3]] == [f["id"] for f in payload["features"]]


def test_within_a_grid_cell_equals_brute_force(client, app):
    store = app.extensions["geoapp"].store
    cells = layer_frame(store, "grid_cells")
    covers = layer_frame(store, "manhole_covers")
    # the cell holding the most covers, so the comparison is not trivially empty
    counts = [int(shapely.intersects(covers.geometry.array, cell).sum()) for cell in cells.geometry.array]
    fid = int(cells.index[int(np.argmax(counts))])
    payload = _features(client, "manhole_covers", f"within=grid_cells/{fid}")
    expected = covers.index[shapely.intersects(covers.geometry.array, cells.geometry.loc[fid])]
    assert [f["id"] for f in payload["features"]] == expected.tolist()
    assert payload["numberMatched"] == max(counts) > 0


def test_attribute_filters(client):
    removed = _features(client, "construction_hoardings", "status=removed")
    assert removed["numberMatched"] == 28
    by_housing = _features(client, "construction_hoardings", "status=removed,under_construction&agency=housing")
    assert by_housing["numberMatched"] == 18
    assert {f["properties"]["agency"] for f in by_housing["features"]} == {"housing"}


def test_single_feature_and_conditional_get(client):
    response = client.get("/api/layers/waterlogging_points/features/1")
    assert response.status_code == 200
    assert response.json["id"] == 1 and response.json["geometry"]["type"] == "Point"
    again = client.get(
        "/api/layers/waterlogging_points/features/1", headers={"If-None-Match": response.headers["ETag"]}
    )
    assert again.status_code == 304


BAD_REQUESTS = [
    ("waterlogging_points/features?bbox=113,33,114", 400, "bbox"),
    ("waterlogging_points/features?bbox=a,b,c,d", 400, "bbox"),
    ("waterlogging_points/features?bbox=114,34,113,33", 400, "bbox"),
    ("waterlogging_points/features?bbox=113,33,114,95", 400, "bbox"),
    ("waterlogging_points/features?near=181,33&radius=10", 400, "near"),
    ("waterlogging_points/features?near=113,-91&radius=10", 400, "near"),
    ("waterlogging_points/features?near=113,33&radius=0", 400, "radius"),
    ("waterlogging_points/features?near=113,33&radius=50001", 400, "radius"),
    ("waterlogging_points/features?near=113,33", 400, "radius"),
    ("waterlogging_points/features?nearest=113,33&k=0", 400, "k"),
    ("waterlogging_points/features?nearest=113,33&k=1001", 400, "k"),
    ("waterlogging_points/features?nearest=113,33&near=113,33&radius=5", 400, "nearest"),
    ("waterlogging_points/features?limit=10001", 400, "limit"),
    ("waterlogging_points/features?limit=ten", 400, "limit"),
    ("waterlogging_points/features?offset=-1", 400, "offset"),
    ("waterlogging_points/features?colour=red", 400, "colour"),
    ("waterlogging_points/features?status=flooded", 400, "status"),
    ("waterlogging_points/features?max_depth_cm=deep", 400, "max_depth_cm"),
    ("waterlogging_points/features?contact_phone=1", 400, "contact_phone"),
    ("waterlogging_points/features?within=lakes/1", 400, "within"),
    ("waterlogging_points/features?within=grid_cells/999999", 400, "within"),
    ("waterlogging_points/features?within={nope", 400, "within"),
    ("waterlogging_points/features?bbox=1,1,2,2&bbox=1,1,3,3", 400, "bbox"),
    ("lakes/features", 404, "layer"),
    ("waterlogging_points/features/999999", 404, "fid"),
    ("waterlogging_points/features/abc", 404, "fid"),  # an id that is not a number names no feature
]


@pytest.mark.parametrize(("path", "status", "parameter"), BAD_REQUESTS, ids=[b[0] for b in BAD_REQUESTS])
def test_bad_input_answers_the_json_error_shape(client, database, path, status, parameter):
    before = fingerprint(database)
    response = client.get(f"/api/layers/{path}")
    assert response.status_code == status
    assert response.mimetype == "application/json"
    error = response.json["error"]
    assert set(error) == {"code", "message", "parameter"}
    assert error["parameter"] == parameter
    assert error["message"] and "Traceback" not in response.text
    assert fingerprint(database) == before


def test_messages_name_the_allowed_values(client):
    status = client.get("/api/layers/construction_hoardings/features?status=done").json["error"]["message"]
    assert "pending, in_progress, removed, under_construction" in status
    unknown = client.get("/api/layers/construction_hoardings/features?colour=red").json["error"]["message"]
    assert "bbox" in unknown and "status" in unknown and "contractor" not in unknown


def test_unexpected_errors_answer_json_without_a_traceback(app):
    @app.get("/api/boom")
    def boom():
        raise RuntimeError("secret internals")

    response = app.test_client().get("/api/boom")
    assert response.status_code == 500
    assert response.json["error"]["code"] == "internal_error"
    assert "secret internals" not in response.text and "Traceback" not in response.text


def test_unknown_path_answers_json_404(client):
    response = client.get("/api/nothing-here")
    assert response.status_code == 404
    assert set(response.json["error"]) == {"code", "message", "parameter"}


def test_anonymous_responses_contain_no_internal_field(client, registry):
    layers = {layer["id"]: layer for layer in client.get("/api/layers").json["layers"]}
    for layer in registry:
        public = {f.name for f in layer.fields if f.public}
        internal = {f.name for f in layer.fields if not f.public}
        assert {f["name"] for f in layers[layer.id]["fields"]} == public
        assert not internal & set(layers[layer.id]["popup"])
        payload = _features(client, layer.id, "nearest=113.30,33.73&k=1000")
        assert payload["features"], layer.id
        for feature in payload["features"]:
            assert set(feature["properties"]) <= public | {"distance_m"}
        one = client.get(f"/api/layers/{layer.id}/features/{payload['features'][0]['id']}").json
        assert set(one["properties"]) <= public
        described = client.get(f"/api/layers/{layer.id}").json
        assert not internal & {f["name"] for f in described["fields"]}


def test_internal_values_appear_nowhere_in_public_responses(client, app):
    store = app.extensions["geoapp"].store
    for layer_id, field in [("waterlogging_points", "contact_phone"), ("heating_stations", "operator_phone")]:
        secrets = [v for v in layer_frame(store, layer_id)[field] if v]
        assert secrets, f"the demo should fill {layer_id}.{field}"
        body = client.get(f"/api/layers/{layer_id}/features?limit=10000").get_data(as_text=True)
        assert not [v for v in secrets if v in body]


def test_search_finds_features_by_name_or_code_across_layers(client):
    payload = client.get("/api/search?q=湛南路").json
    assert payload["results"]
    layers = {hit["layer"] for hit in payload["results"]}
    assert "roads" not in layers  # context layers are not search results
    for hit in payload["results"]:
        assert "湛南路" in hit["title"]
        feature = client.get(f"/api/layers/{hit['layer']}/features/{hit['id']}").json
        assert feature["id"] == hit["id"]
    code = client.get("/api/layers/manhole_covers/features/1").json["properties"]["code"]
    (hit,) = client.get(f"/api/search?q={code}").json["results"]
    assert (hit["layer"], hit["id"]) == ("manhole_covers", 1)


@pytest.mark.parametrize(
    ("query", "parameter"), [("", "q"), ("q=" + "x" * 101, "q"), ("q=a&limit=0", "limit"), ("q=a&x=1", "x")]
)
def test_search_refuses_bad_input(client, query, parameter):
    response = client.get(f"/api/search?{query}")
    assert response.status_code == 400
    assert response.json["error"]["parameter"] == parameter


def test_etag_of_a_within_query_follows_the_referenced_feature(client, app):
    store = app.extensions["geoapp"].store
    url = "/api/layers/manhole_covers/features?within=grid_cells/100"
    first = client.get(url)
    cell = store.get("grid_cells", 100)
    import shapely.affinity

    store.update(
        "grid_cells",
        100,
        geometry=shapely.affinity.translate(cell.geometry, 0.003),
        expected_version=cell.version,
        actor=SETUP,
    )
    again = client.get(url, headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 200  # not a stale 304: the cell moved


def test_search_ranks_exact_matches_first(client, app):
    store = app.extensions["geoapp"].store
    store.insert(
        "heating_stations", {"name": "换热站", "supply_type": "direct"}, shapely.Point(113.30, 33.73), actor=SETUP
    )
    results = client.get("/api/search?q=换热站&limit=3").json["results"]
    assert results[0]["title"] == "换热站"


def test_reserved_arguments_in_a_page_url_do_not_break_it(client):
    response = client.get("/?_method=POST&_external=1")
    assert response.status_code == 200
    assert "lang=en" in response.get_data(as_text=True)
