"""Real OGC API clients against the app served by gunicorn on 127.0.0.1: GDAL's OAPIF driver (through pyogrio)
and OWSLib's ``Features``. Every count is checked against the GeoPackage itself, read by GDAL's GPKG driver.

What GDAL 3.12 sends was read from the server's access log: while an API declares no CQL, a simple equality
becomes a property filter (``status=removed``); this one declares ``cql-text`` (the draft's name, which is all GDAL
3.12 knows), so every comparison GDAL can write goes as ``filter=...&filter-lang=cql-text``, dates as strings ending
in ``T``; a spatial filter goes as ``bbox`` with ``bbox-crs``, the CRS open option as ``crs``.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pyogrio
import pytest
import requests
import shapely
from pyproj import Transformer

from geoapp.config import PROJECT_ROOT
from tests.browser.conftest import serve
from tests.conftest import demo_copy_in, stop_server

pytestmark = pytest.mark.slow

HOARDINGS, COVERS = "construction_hoardings", "manhole_covers"


@pytest.fixture(scope="module")
def served(request, tmp_path_factory):
    """(base URL, GeoPackage path, a viewer's token, the access log) of gunicorn on a copy of the demo district."""
    folder = tmp_path_factory.mktemp("ogc_clients")
    with demo_copy_in("gpkg", folder, request) as copy:
        flask = [str(PROJECT_ROOT / ".venv/bin/flask"), "--app", "wsgi", "geoapp", "token", "add", "gis-desk"]
        made = subprocess.run(
            [*flask, "--role", "viewer"],
            cwd=PROJECT_ROOT,
            env={"GEOAPP_DATABASE": str(copy), "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            check=True,
        )
        token = made.stdout.strip().splitlines()[-1]
        log = folder / "gunicorn.log"
        proc, base = serve(copy, log, GEOAPP_BASEMAP="none")
        yield base, copy, token, log
        stop_server(proc)


def _stored(path, layer_id: str, **kwargs):
    return pyogrio.read_dataframe(str(path), layer=layer_id, **kwargs)


def test_gdal_lists_and_reads_every_collection_with_the_stores_counts(served, registry):
    base, path, _, _ = served
    listed = pyogrio.list_layers(f"OAPIF:{base}/ogc")
    assert [name for name, _ in listed] == registry.ids
    for layer in registry:
        served_frame = pyogrio.read_dataframe(f"OAPIF:{base}/ogc", layer=layer.id)
        stored = _stored(path, layer.id)
        assert len(served_frame) == len(stored) > 0, layer.id
        public = [f.name for f in layer.fields if f.public]
        assert [c for c in served_frame.columns if c != "geometry"] == public, layer.id
    # GDAL following the next links page by page gets every feature once
    paged = pyogrio.read_dataframe(f"OAPIF:{base}/ogc", layer=COVERS, PAGE_SIZE="50")
    stored = _stored(path, COVERS)
    assert len(paged) == len(stored) and sorted(paged["code"]) == sorted(stored["code"])
    assert paged["code"].is_unique
    # Chinese text arrives intact
    hoardings = pyogrio.read_dataframe(f"OAPIF:{base}/ogc", layer=HOARDINGS)
    assert sorted(hoardings["site"]) == sorted(_stored(path, HOARDINGS)["site"])


def test_gdal_with_a_bbox_a_property_filter_a_cql_filter_and_a_crs(served):
    base, path, _, log = served
    url = f"OAPIF:{base}/ogc"
    stored = _stored(path, COVERS)
    box = (113.285, 33.715, 113.305, 33.735)
    got = pyogrio.read_dataframe(url, layer=COVERS, bbox=box)
    assert len(got) == int(stored.intersects(shapely.box(*box)).sum()) > 0
    assert "bbox=113.28" in log.read_text()

    hoardings = _stored(path, HOARDINGS)
    got = pyogrio.read_dataframe(url, layer=HOARDINGS, where="status = 'removed'")
    assert len(got) == int((hoardings["status"] == "removed").sum()) > 0
    assert "filter=status%20%3D%20'removed'&filter-lang=cql-text" in log.read_text()  # asked of the server

    got = pyogrio.read_dataframe(url, layer=HOARDINGS, where="length_m > 100 AND removed_on >= '2023-09-01'")
    removed = hoardings["removed_on"].astype("string").fillna("")
    expected = int(((hoardings["length_m"] > 100) & (removed >= "2023-09-01")).sum())
    assert len(got) == expected > 0
    assert "filter-lang=cql-text" in log.read_text()

    got = pyogrio.read_dataframe(url, layer=COVERS, CRS="EPSG:4547")
    assert got.crs.to_epsg() == 4547 and len(got) == len(stored)
    east, north = Transformer.from_crs("OGC:CRS84", "EPSG:4547", always_xy=True).transform(
        stored.geometry.x.to_numpy(), stored.geometry.y.to_numpy()
    )
    order = np.argsort(got["code"].to_numpy())
    expected_order = np.argsort(stored["code"].to_numpy())
    assert got.geometry.x.to_numpy()[order] == pytest.approx(east[expected_order], abs=0.01)
    assert got.geometry.y.to_numpy()[order] == pytest.approx(north[expected_order], abs=0.01)
    assert "crs=http://www.opengis.net/def/crs/EPSG/0/4547" in log.read_text()


def _features(base: str, headers: dict | None = None):
    """OWSLib's client with headers of its own: OWSLib adds the headers given to its module-wide defaults, which
    every later client would then send (a token handed to one would reach all)."""
    from owslib import ogcapi
    from owslib.ogcapi.features import Features

    saved = dict(ogcapi.REQUEST_HEADERS)
    try:
        client = Features(f"{base}/ogc", headers=headers)
        client.headers = dict(client.headers)
    finally:
        ogcapi.REQUEST_HEADERS.clear()
        ogcapi.REQUEST_HEADERS.update(saved)
    return client


def test_owslib_reads_collections_items_and_single_items(served, registry):
    base, path, _, _ = served
    w = _features(base)
    assert w.feature_collections() == registry.ids
    for layer in registry:
        assert w.collection(layer.id)["id"] == layer.id
    stored = _stored(path, COVERS)
    box = [113.285, 33.715, 113.305, 33.735]
    page = w.collection_items(COVERS, limit=10, bbox=box)
    assert page["numberMatched"] == int(stored.intersects(shapely.box(*box)).sum())
    assert page["numberReturned"] == len(page["features"]) == 10
    hoardings = _stored(path, HOARDINGS)
    removed = w.collection_items(HOARDINGS, limit=100, status="removed")  # a property filter
    assert removed["numberMatched"] == len(removed["features"]) == int((hoardings["status"] == "removed").sum())
    total = w.collection_items(COVERS, limit=10_000)
    assert total["numberMatched"] == total["numberReturned"] == len(stored)
    first = page["features"][0]
    one = w.collection_item(COVERS, str(first["id"]))
    assert one["id"] == first["id"] and one["properties"] == first["properties"]
    assert set(w.collection_queryables(HOARDINGS)["properties"]) >= {"geometry", "status", "site"}
    assert "paths" in w.api()


def test_a_token_shows_internal_fields_and_anonymous_does_not(served, registry):
    base, _, token, _ = served
    internal = {f.name for f in registry[HOARDINGS].fields if not f.public}
    staff = _features(base, {"Authorization": f"Bearer {token}"})
    items = staff.collection_items(HOARDINGS, limit=100)
    assert internal <= {k for f in items["features"] for k in f["properties"]}
    anonymous = _features(base)
    items = anonymous.collection_items(HOARDINGS, limit=100)
    assert not internal & {k for f in items["features"] for k in f["properties"]}
    # and with plain requests, the queryables and the OpenAPI document follow the same rule
    plain = requests.get(f"{base}/ogc/collections/{HOARDINGS}/queryables", timeout=30).json()
    assert not internal & set(plain["properties"])
    asked = requests.get(
        f"{base}/ogc/collections/{HOARDINGS}/queryables", headers={"Authorization": f"Bearer {token}"}, timeout=30
    ).json()
    assert internal <= set(asked["properties"])
    assert sys.modules["owslib.ogcapi"].REQUEST_HEADERS.get("Authorization") is None
