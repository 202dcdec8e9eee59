"""OGC API - Features under /ogc: documents, paging, CRSs, filters, errors and who sees what, on both backends.

Every count is checked against the store's own answer (``reader.select(...).matched`` for the same query, or the
features read whole and counted here); paging follows the ``next`` links the service writes.
"""

from __future__ import annotations

import datetime as dt
from urllib.parse import parse_qs, urlencode, urlsplit

import numpy as np
import orjson
import pytest
import shapely
from openapi_spec_validator import validate
from pyproj import Transformer

from geoapp.core import cql, ogc
from geoapp.core.accounts import new_token
from geoapp.store.base import Query
from geoapp.web import create_app
from tests.conftest import CHEAP_ARGON2, SETUP, demo_copy_in

pytestmark = pytest.mark.backends("gpkg", "postgis")

HOARDINGS, COVERS, BOUNDARY = "construction_hoardings", "manhole_covers", "district_boundary"
HOSTILE = '<img src=x onerror="window.__pwned=1">'
CRS84, EPSG4326 = ogc.CRS84, "http://www.opengis.net/def/crs/EPSG/0/4326"


@pytest.fixture(scope="module")
def site(backend, request, tmp_path_factory):
    """An app on a copy of the demo district with a hostile name in one hoarding, and a staff token."""
    with demo_copy_in(backend, tmp_path_factory.mktemp("ogc"), request) as copy:
        app = create_app(
            {"TESTING": True, "SECRET_KEY": "t", "GEOAPP_DATABASE": str(copy), "ARGON2_PARAMETERS": CHEAP_ARGON2}
        )
        svc = app.extensions["geoapp"]
        first = svc.reader.get(HOARDINGS, svc.reader.select(HOARDINGS, Query(), 0, 1, "internal").ids[0], "internal")
        svc.store.update(HOARDINGS, first.fid, {"site": HOSTILE}, expected_version=first.version, actor=SETUP)
        token, digest = new_token()
        svc.store.add_token("ogc-viewer", digest, ("viewer",), actor=SETUP)
        yield app, token
        svc.close()


@pytest.fixture(scope="module")
def app(site):
    return site[0]


@pytest.fixture(scope="module")
def client(app):
    return app.test_client()


@pytest.fixture(scope="module")
def staff_headers(site):
    return {"Authorization": f"Bearer {site[1]}"}


def _json(response) -> dict:
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    return orjson.loads(response.data)


def _path(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


def _all(app, layer_id: str, vis: str = "internal") -> list[dict]:
    reader = app.extensions["geoapp"].reader
    return [orjson.loads(t) for t in reader.select(layer_id, Query(), 0, 100_000, vis).features]


def _walk(client, url: str, headers=None) -> tuple[list[int], list[dict]]:
    """Follow ``next`` from ``url``: every fid in page order, and each page."""
    fids, pages = [], []
    while url:
        page = _json(client.get(_path(url), headers=headers))
        pages.append(page)
        fids += [f["id"] for f in page["features"]]
        url = next((link["href"] for link in page["links"] if link["rel"] == "next"), None)
    return fids, pages


# -- documents ---------------------------------------------------------------------------------------


def test_landing_page_links_to_api_conformance_and_data(client):
    for url in ("/ogc", "/ogc/"):
        doc = _json(client.get(url))
        links = {link["rel"]: link for link in doc["links"]}
        assert links["service-desc"]["type"] == "application/vnd.oai.openapi+json;version=3.0"
        assert links["service-doc"]["type"] == "text/html"
        assert {"self", "alternate", "conformance", "data"} <= set(links)
        for rel in ("service-desc", "service-doc", "conformance", "data"):
            assert client.get(_path(links[rel]["href"])).status_code == 200


def test_conformance_declares_the_classes_implemented(client):
    classes = _json(client.get("/ogc/conformance"))["conformsTo"]
    core = "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/"
    assert {core + c for c in ("core", "geojson", "html", "oas30")} <= set(classes)
    assert "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs" in classes
    assert "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter" in classes
    assert set(cql.CONFORMANCE) <= set(classes)
    assert len(classes) == len(set(classes))
    assert not [c for c in classes if "ogcapi-features-4" in c or "/sorting" in c]  # nothing not implemented


def test_collections_list_every_layer_with_extents_and_crs(app, client):
    svc = app.extensions["geoapp"]
    summary = svc.reader.summary()
    doc = _json(client.get("/ogc/collections"))
    assert [c["id"] for c in doc["collections"]] == svc.registry.ids
    metric = f"http://www.opengis.net/def/crs/EPSG/0/{svc.store.metric_crs.split(':')[1]}"
    for c in doc["collections"]:
        assert c["crs"][0] == CRS84 and EPSG4326 in c["crs"] and metric in c["crs"]
        assert c["itemType"] == "feature" and c["storageCrs"] == CRS84
        assert c["extent"]["spatial"]["bbox"][0] == pytest.approx(summary[c["id"]].extent)
        assert c["numberOfFeatures"] == summary[c["id"]].count
    hoardings = next(c for c in doc["collections"] if c["id"] == HOARDINGS)
    dates = sorted(f["properties"]["removed_on"] for f in _all(app, HOARDINGS) if f["properties"]["removed_on"])
    assert hoardings["extent"]["temporal"]["interval"] == [[f"{dates[0]}T00:00:00Z", f"{dates[-1]}T23:59:59Z"]]
    assert "temporal" not in next(c for c in doc["collections"] if c["id"] == BOUNDARY)["extent"]
    one = _json(client.get(f"/ogc/collections/{HOARDINGS}"))
    assert one == hoardings | {"links": one["links"]}


def test_openapi_is_valid_self_contained_and_from_the_parameter_list(app, client):
    doc = _json(client.get("/ogc/api"))
    validate(doc)
    text = client.get("/ogc/api").get_data(as_text=True)
    refs = {r.split('"')[0] for r in text.split('"$ref":"')[1:]}
    assert refs and all(r.startswith("#/") for r in refs)
    assert "schemas.opengis.net" not in text and "geojson.org/schema" not in text
    items = doc["paths"][f"/collections/{HOARDINGS}/items"]["get"]["parameters"]
    names = [
        doc["components"]["parameters"][p["$ref"].rsplit("/", 1)[1]]["name"] if "$ref" in p else p["name"]
        for p in items
    ]
    layer = app.extensions["geoapp"].registry[HOARDINGS]
    assert names == [p.name for p in ogc.parameters(ogc.ITEMS)] + [f.name for f in layer.fields if f.public]
    limit = doc["components"]["parameters"]["limit"]["schema"]
    assert limit["maximum"] == ogc.MAX_LIMIT
    # every name the document gives is read; any other is refused
    for name in names:
        value = {"f": "json", "lang": "en", "limit": "5", "offset": "0", "bbox": "113,33,114,34"}.get(name)
        if value:
            assert client.get(f"/ogc/collections/{HOARDINGS}/items", query_string={name: value}).status_code == 200
    assert client.get(f"/ogc/collections/{HOARDINGS}/items?sortby=site").status_code == 400


# -- paging ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("limit", [7, 100])
def test_next_links_walk_every_feature_exactly_once(app, client, limit):
    reader = app.extensions["geoapp"].reader
    for layer in app.extensions["geoapp"].registry:
        fids, pages = _walk(client, f"/ogc/collections/{layer.id}/items?limit={limit}")
        stored = reader.select(layer.id, Query(), 0, 100_000, "public").ids
        assert fids == stored, layer.id
        assert all(p["numberMatched"] == len(stored) for p in pages)
        assert sum(p["numberReturned"] for p in pages) == len(stored)
        assert all("timeStamp" in p for p in pages)
        if len(pages) > 1:
            prev = next(link["href"] for link in pages[1]["links"] if link["rel"] == "prev")
            assert parse_qs(urlsplit(prev).query)["offset"] == ["0"]


def test_paging_with_filters_keeps_them_and_counts_matches(app, client):
    reader = app.extensions["geoapp"].reader
    box = (113.285, 33.715, 113.315, 33.74)
    url = f"/ogc/collections/{HOARDINGS}/items?limit=3&status=removed&bbox={','.join(map(str, box))}"
    fids, pages = _walk(client, url)
    expected = reader.select(HOARDINGS, Query(bbox=box, filters={"status": ["removed"]}), 0, 1000, "public")
    assert fids == expected.ids and len(pages) > 1
    assert pages[0]["numberMatched"] == expected.matched
    for page in pages:
        for link in page["links"]:
            if link["rel"] in ("next", "prev", "self"):
                query = parse_qs(urlsplit(link["href"]).query)
                assert query["status"] == ["removed"] and query["bbox"] == [",".join(map(str, box))]


def test_offset_past_the_end_is_an_empty_page_without_next(app, client):
    count = app.extensions["geoapp"].reader.count(HOARDINGS)
    for offset in (100_000, ogc.MAX_OFFSET):
        page = _json(client.get(f"/ogc/collections/{HOARDINGS}/items?offset={offset}"))
        assert page["features"] == [] and page["numberReturned"] == 0 and page["numberMatched"] == count
        assert "next" not in {link["rel"] for link in page["links"]}


# -- coordinate systems ----------------------------------------------------------------------------


def test_crs_answers_in_each_crs_in_its_axis_order(app, client):
    metric = app.extensions["geoapp"].store.metric_crs
    base = _json(client.get(f"/ogc/collections/{COVERS}/items?limit=20"))
    lonlat = np.array([f["geometry"]["coordinates"] for f in base["features"]])
    for code in ("EPSG:4326", "EPSG:4490"):
        uri = ogc.crs_uri(code)
        response = client.get(f"/ogc/collections/{COVERS}/items?limit=20&crs={uri}")
        assert response.headers["Content-Crs"] == f"<{uri}>"
        got = np.array([f["geometry"]["coordinates"] for f in _json(response)["features"]])
        assert got == pytest.approx(lonlat[:, ::-1])  # latitude first
    uri = ogc.crs_uri(metric)
    response = client.get(f"/ogc/collections/{COVERS}/items?limit=20&crs={uri}")
    assert response.headers["Content-Crs"] == f"<{uri}>"
    got = np.array([f["geometry"]["coordinates"] for f in _json(response)["features"]])
    east, north = Transformer.from_crs("OGC:CRS84", metric, always_xy=True).transform(lonlat[:, 0], lonlat[:, 1])
    assert got[:, 0] == pytest.approx(north, abs=0.002) and got[:, 1] == pytest.approx(east, abs=0.002)
    assert client.get(f"/ogc/collections/{COVERS}/items").headers["Content-Crs"] == f"<{CRS84}>"
    item = client.get(f"/ogc/collections/{COVERS}/items/{base['features'][0]['id']}?crs={uri}")
    assert item.headers["Content-Crs"] == f"<{uri}>"
    assert _json(item)["geometry"]["coordinates"] == pytest.approx(got[0].tolist(), abs=0.002)


def _between(values: np.ndarray, share: float) -> float:
    """A value halfway between two neighbouring values, about ``share`` of the way up (no point on an edge)."""
    ordered = np.sort(values)
    i = int(share * len(ordered))
    return float((ordered[i] + ordered[i + 1]) / 2)


def test_bbox_crs_reads_the_box_in_that_crs_and_axis_order(app, client):
    metric = app.extensions["geoapp"].store.metric_crs
    covers = _all(app, COVERS, "public")
    lon = np.array([f["geometry"]["coordinates"][0] for f in covers])
    lat = np.array([f["geometry"]["coordinates"][1] for f in covers])
    east, north = Transformer.from_crs("OGC:CRS84", metric, always_xy=True).transform(lon, lat)
    e0, e1 = _between(east, 0.2), _between(east, 0.7)
    n0, n1 = _between(north, 0.3), _between(north, 0.8)
    inside = sorted(f["id"] for f, e, n in zip(covers, east, north, strict=True) if e0 <= e <= e1 and n0 <= n <= n1)
    box = f"{n0},{e0},{n1},{e1}"  # EPSG:4547: northing, easting
    fids, _ = _walk(client, f"/ogc/collections/{COVERS}/items?limit=1000&bbox={box}&bbox-crs={ogc.crs_uri(metric)}")
    assert sorted(fids) == inside and len(inside) > 10
    pad = 1e-6  # the coordinates served are rounded to 7 decimals
    lat_first = f"{lat.min() - pad},{lon.min() - pad},{lat.max() + pad},{lon.max() + pad}"
    fids, _ = _walk(client, f"/ogc/collections/{COVERS}/items?limit=1000&bbox={lat_first}&bbox-crs={EPSG4326}")
    assert len(fids) == len(covers)


@pytest.mark.parametrize(
    "query",
    [
        "crs=EPSG:3857",
        "crs=http://www.opengis.net/def/crs/EPSG/0/999999",
        "crs=nonsense",
        "bbox-crs=EPSG:4326",  # without bbox
        "bbox=1,2,3",
        "bbox=113,33,0,114,34,10",
        "bbox=114,33,113,34",
        "bbox=a,b,c,d",
        "bbox=113,33,114,95",
        "bbox=33,113,34,114&bbox-crs=OGC:CRS84",
        "limit=10001",
        "limit=0",
        "limit=ten",
        "offset=-1",
        "offset=9999999999999999999",
        "datetime=yesterday",
        "datetime=../..",
        "datetime=2023-06-01/2023-01-01",
        "status=nonsense",
        "unknown=1",
        "f=xml",
        "limit=5&limit=6",
        "filter=status===1",
        "filter=notes='x'",  # an internal field, for the public
        "filter-lang=cql2-text",  # without filter
        "filter=status='removed'&filter-lang=cql9",
        "notes=x",
    ],
)
def test_bad_parameters_answer_400_with_ogc_exception_json(client, query):
    response = client.get(f"/ogc/collections/{HOARDINGS}/items?{query}")
    assert response.status_code == 400, response.get_data(as_text=True)
    body = orjson.loads(response.data)
    assert body["code"] == "InvalidParameterValue" and body["description"]
    assert body["parameter"] and body["error"]["code"] == "invalid_parameter"


def test_unknown_collection_and_feature_answer_404(client):
    for url in (
        "/ogc/collections/nowhere",
        "/ogc/collections/nowhere/items",
        f"/ogc/collections/{HOARDINGS}/items/999999999",
        f"/ogc/collections/{HOARDINGS}/items/0",
        f"/ogc/collections/{HOARDINGS}/items/01",
        f"/ogc/collections/{HOARDINGS}/items/abc",
        f"/ogc/collections/{HOARDINGS}/items/１２",
    ):
        response = client.get(url)
        assert response.status_code == 404, url
        assert orjson.loads(response.data)["code"] == "NotFound"


def test_datetime_on_a_layer_without_a_date_is_refused(client):
    response = client.get(f"/ogc/collections/{BOUNDARY}/items?datetime=2023-01-01")
    assert response.status_code == 400 and orjson.loads(response.data)["parameter"] == "datetime"


# -- filters ---------------------------------------------------------------------------------------


def _count(app, layer_id, keep) -> list[int]:
    return [f["id"] for f in _all(app, layer_id, "public") if keep(f["properties"])]


@pytest.mark.parametrize(
    ("datetime", "first", "last"),
    [
        ("2023-06-01/2023-08-31", "2023-06-01", "2023-08-31"),
        ("2023-07-01/..", "2023-07-01", "9999"),
        ("../2023-06-30", "0000", "2023-06-30"),
        ("/2023-06-30", "0000", "2023-06-30"),
        ("2023-05-01T00:00:00Z/2023-09-30T12:00:00+08:00", "2023-05-01", "2023-09-30"),
    ],
)
def test_datetime_filters_by_the_layers_date(app, client, datetime, first, last):
    expected = _count(app, HOARDINGS, lambda p: p["removed_on"] is not None and first <= p["removed_on"] <= last)
    fids, pages = _walk(client, f"/ogc/collections/{HOARDINGS}/items?{urlencode({'limit': 5, 'datetime': datetime})}")
    assert fids == expected and pages[0]["numberMatched"] == len(expected) and expected


def test_datetime_instant(app, client):
    day = next(f["properties"]["removed_on"] for f in _all(app, HOARDINGS) if f["properties"]["removed_on"])
    expected = _count(app, HOARDINGS, lambda p: p["removed_on"] == day)
    for value in (day, f"{day}T10:00:00Z"):
        fids, _ = _walk(client, f"/ogc/collections/{HOARDINGS}/items?datetime={value}")
        assert fids == expected


@pytest.mark.parametrize(
    ("params", "keep"),
    [
        (
            {"filter": "status = 'removed' AND length_m > 100"},
            lambda p: p["status"] == "removed" and p["length_m"] > 100,
        ),
        (
            {
                "filter": '{"op":"in","args":[{"property":"status"},["pending","in_progress"]]}',
                "filter-lang": "cql2-json",
            },
            lambda p: p["status"] in ("pending", "in_progress"),
        ),
        ({"filter": "removed_on >= DATE('2023-09-01')"}, lambda p: (p["removed_on"] or "") >= "2023-09-01"),
        # the draft's CQL text, as GDAL writes it: dates compared with strings ending in T
        (
            {"filter": "(removed_on >= '2023-09-01T')", "filter-lang": "cql-text"},
            lambda p: (p["removed_on"] or "") >= "2023-09-01",
        ),
        (
            {"filter": "site LIKE '%1号%'", "agency": "housing"},
            lambda p: "1号" in p["site"] and p["agency"] == "housing",
        ),
        ({"filter": "status <> 'removed'", "datetime": "../2023-12-31"}, lambda p: False),
    ],
)
def test_cql2_filters_and_property_filters_count_the_matches(app, client, params, keep):
    expected = _count(app, HOARDINGS, keep)
    fids, pages = _walk(
        client, client.get(f"/ogc/collections/{HOARDINGS}/items", query_string={**params, "limit": 4}).request.url
    )
    assert fids == expected and pages[0]["numberMatched"] == len(expected)


def test_filter_with_a_geometry_in_filter_crs(app, client):
    metric = app.extensions["geoapp"].store.metric_crs
    boundary = shapely.from_geojson(orjson.dumps(_all(app, BOUNDARY)[0]["geometry"]))
    west_half = shapely.box(boundary.bounds[0], boundary.bounds[1], boundary.centroid.x, boundary.bounds[3])
    expected = [
        f["id"]
        for f in _all(app, COVERS, "public")
        if west_half.intersects(shapely.from_geojson(orjson.dumps(f["geometry"])))
    ]
    fids, _ = _walk(
        client, f"/ogc/collections/{COVERS}/items?limit=1000&filter=S_INTERSECTS(geometry,{shapely.to_wkt(west_half)})"
    )
    assert fids == expected and len(expected) > 0
    to_metric = Transformer.from_crs("OGC:CRS84", metric, always_xy=True)
    projected = shapely.transform(
        west_half.segmentize(0.0005), lambda xy: np.column_stack(to_metric.transform(xy[:, 0], xy[:, 1]))
    )
    northing_first = shapely.transform(projected, lambda xy: xy[:, ::-1])  # the axis order of the metric CRS
    params = {
        "filter": f"S_INTERSECTS(geometry,{shapely.to_wkt(northing_first)})",
        "filter-crs": ogc.crs_uri(metric),
        "limit": 1000,
    }
    got = _json(client.get(f"/ogc/collections/{COVERS}/items", query_string=params))
    assert abs(got["numberMatched"] - len(expected)) <= 2  # the edge, projected and back, moves by centimetres


# -- who sees what ---------------------------------------------------------------------------------


def test_anonymous_clients_see_public_fields_and_a_token_its_roles_view(app, client, staff_headers):
    layer = app.extensions["geoapp"].registry[HOARDINGS]
    internal = {f.name for f in layer.fields if not f.public}
    assert internal
    public = _json(client.get(f"/ogc/collections/{HOARDINGS}/items?limit=100"))
    assert not internal & {k for f in public["features"] for k in f["properties"]}
    staff = _json(client.get(f"/ogc/collections/{HOARDINGS}/items?limit=100", headers=staff_headers))
    assert internal <= {k for f in staff["features"] for k in f["properties"]}
    fid = public["features"][0]["id"]
    assert not internal & set(_json(client.get(f"/ogc/collections/{HOARDINGS}/items/{fid}"))["properties"])
    assert internal <= set(
        _json(client.get(f"/ogc/collections/{HOARDINGS}/items/{fid}", headers=staff_headers))["properties"]
    )
    assert not internal & set(_json(client.get(f"/ogc/collections/{HOARDINGS}/queryables"))["properties"])
    assert internal <= set(
        _json(client.get(f"/ogc/collections/{HOARDINGS}/queryables", headers=staff_headers))["properties"]
    )
    api = client.get("/ogc/api").get_data(as_text=True)
    assert not [name for name in internal if f'"name":"{name}"' in api]
    assert all(
        f'"name":"{name}"' in client.get("/ogc/api", headers=staff_headers).get_data(as_text=True) for name in internal
    )
    # staff may filter by an internal field; the public is told it does not exist
    name = sorted(internal)[0]
    assert (
        client.get(f"/ogc/collections/{HOARDINGS}/items?filter={name} IS NULL", headers=staff_headers).status_code
        == 200
    )
    assert client.get(f"/ogc/collections/{HOARDINGS}/items?filter={name} IS NULL").status_code == 400
    response = client.get(f"/ogc/collections/{HOARDINGS}/items")
    assert "Authorization" in response.headers["Vary"] and "Accept" in response.headers["Vary"]
    assert client.get("/ogc/collections", headers={"Authorization": "Bearer nonsense"}).status_code == 401


# -- HTML ------------------------------------------------------------------------------------------


def test_accept_header_and_f_choose_the_format(client):
    url = f"/ogc/collections/{HOARDINGS}/items"
    assert client.get(url).mimetype == "application/geo+json"
    assert client.get(url, headers={"Accept": "*/*"}).mimetype == "application/geo+json"
    assert client.get(url, headers={"Accept": "application/geo+json"}).mimetype == "application/geo+json"
    browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    assert client.get(url, headers={"Accept": browser}).mimetype == "text/html"
    assert client.get(url + "?f=json", headers={"Accept": browser}).mimetype == "application/geo+json"
    assert client.get(url + "?f=html").mimetype == "text/html"
    assert client.get("/ogc/api").mimetype == "application/vnd.oai.openapi+json"
    assert client.get("/ogc/api?f=html").mimetype == "text/html"
    # a browser is shown the error page, a client the exception JSON
    assert client.get(url + "?limit=0", headers={"Accept": browser}).mimetype == "text/html"
    assert client.get(url + "?limit=0").mimetype == "application/json"


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_html_pages_in_both_languages_escape_values(app, client, lang):
    svc = app.extensions["geoapp"]
    hostile = next(f for f in _all(app, HOARDINGS) if f["properties"]["site"] == HOSTILE)
    pages = [
        "/ogc/",
        "/ogc/conformance",
        "/ogc/collections",
        f"/ogc/collections/{HOARDINGS}",
        f"/ogc/collections/{HOARDINGS}/queryables",
        f"/ogc/collections/{HOARDINGS}/items",
        f"/ogc/collections/{HOARDINGS}/items/{hostile['id']}",
        "/ogc/api",
    ]
    words = {"zh": ("集合", "建筑围挡"), "en": ("Collections", "Construction hoardings")}[lang]
    for url in pages:
        response = client.get(url, query_string={"f": "html", "lang": lang})
        assert response.status_code == 200 and response.mimetype == "text/html", url
        text = response.get_data(as_text=True)
        assert HOSTILE not in text and "window.__pwned" not in text.replace("window.__pwned=1&#34;", "")
        assert f'lang="{"zh-CN" if lang == "zh" else "en"}"' in text
    items = client.get(f"/ogc/collections/{HOARDINGS}/items", query_string={"f": "html", "lang": lang, "limit": 100})
    text = items.get_data(as_text=True)
    assert "&lt;img src=x" in text
    assert words[0] in client.get("/ogc/collections", query_string={"f": "html", "lang": lang}).get_data(as_text=True)
    assert words[1] in text
    assert svc.registry[HOARDINGS].field("contractor").label(lang) not in text  # internal: not for the public
    page = client.get(f"/ogc/collections/{HOARDINGS}/items", query_string={"f": "html", "limit": 10, "offset": 10})
    html = page.get_data(as_text=True)
    assert 'rel="next"' in html and 'rel="prev"' in html


def test_item_links_to_its_collection(client):
    page = _json(client.get(f"/ogc/collections/{COVERS}/items?limit=1"))
    fid = page["features"][0]["id"]
    item = _json(client.get(f"/ogc/collections/{COVERS}/items/{fid}"))
    assert item["type"] == "Feature" and item["id"] == fid
    rels = {link["rel"]: link["href"] for link in item["links"]}
    assert urlsplit(rels["collection"]).path == f"/ogc/collections/{COVERS}"
    assert {"self", "alternate"} <= set(rels)
    assert item["properties"] == page["features"][0]["properties"]


def test_datetime_parser():
    assert ogc.parse_datetime("2023-05-01") == (dt.date(2023, 5, 1), dt.date(2023, 5, 1))
    assert ogc.parse_datetime("2023-05-01T") == (dt.date(2023, 5, 1), dt.date(2023, 5, 1))
    assert ogc.parse_datetime("../2023-05-01") == (None, dt.date(2023, 5, 1))
    assert ogc.parse_datetime("2023-05-01/") == (dt.date(2023, 5, 1), None)
    assert ogc.from_draft_cql("d >= '2023-01-02T' AND t < '2023-01-02T08:00:00Z' AND s = 'x'") == (
        "d >= DATE('2023-01-02') AND t < TIMESTAMP('2023-01-02T08:00:00Z') AND s = 'x'"
    )
