"""The GeoPackage store: transactional changes, versions, validation, and a file GDAL still reads."""

from __future__ import annotations

import sqlite3

import geopandas as gpd
import pyogrio
import pytest
import shapely
from pyproj import Geod

from geoapp.errors import InvalidFeature, NotFound, StoreError, VersionConflict
from geoapp.store import create_store, open_store
from geoapp.store.gpkg import decode, encode

GEOD = Geod(ellps="WGS84")


@pytest.fixture
def store(registry, tmp_path):
    hoardings = gpd.GeoDataFrame(
        {
            "site": ["湛南路东段", "开源路北侧"],
            "agency": ["urban_management", "housing"],
            "status": ["pending", "removed"],
        },
        geometry=[
            shapely.LineString([(113.300, 33.730), (113.302, 33.7305)]),
            shapely.Polygon([(113.31, 33.74), (113.311, 33.74), (113.311, 33.7405), (113.31, 33.7405)]),
        ],
        crs="EPSG:4326",
    )
    points = gpd.GeoDataFrame(
        {"name": ["建设路口"], "road": ["建设路"], "contact_phone": ["0375-1234567"]},
        geometry=[shapely.Point(113.305, 33.735)],
        crs="EPSG:4326",
    )
    store = create_store(
        registry,
        str(tmp_path / "s.gpkg"),
        {"construction_hoardings": hoardings, "waterlogging_points": points},
    )
    yield store
    store.close()


def _rows(store, layer_id):
    return sqlite3.connect(store.path).execute(f"SELECT count(*) FROM {layer_id}").fetchone()[0]


def test_blob_round_trip_keeps_geometry_and_envelope():
    for geom in (
        shapely.Point(113.3, 33.7),
        shapely.LineString([(113.3, 33.7), (113.4, 33.8)]),
        shapely.Polygon([(0, 0), (1, 0), (1, 1)]),
    ):
        assert decode(encode(geom)).equals(geom)


def test_metric_crs_is_the_gauss_kruger_zone_of_the_district(store):
    assert store.metric_crs == "EPSG:4547"


def test_computed_length_agrees_with_geodesic_length(store):
    line = store.get("construction_hoardings", 1)
    geodesic = GEOD.geometry_length(line.geometry)
    assert line.properties["length_m"] == pytest.approx(geodesic, rel=0.005)
    ring = store.get("construction_hoardings", 2)
    assert ring.properties["length_m"] == pytest.approx(GEOD.geometry_length(ring.geometry.exterior), rel=0.005)


def test_update_bumps_feature_and_layer_versions(store):
    before = store.version("construction_hoardings")
    feature = store.update("construction_hoardings", 1, {"status": "removed", "removed_on": "2023-06-01"})
    assert feature.version == 2
    assert store.get("construction_hoardings", 1).properties["status"] == "removed"
    assert store.version("construction_hoardings") == before + 1
    assert store.version("waterlogging_points") == 1


def test_stale_version_is_refused_and_nothing_changes(store):
    store.update("construction_hoardings", 1, {"status": "in_progress"}, expected_version=1)
    version = store.version("construction_hoardings")
    with pytest.raises(VersionConflict):
        store.update("construction_hoardings", 1, {"status": "removed"}, expected_version=1)
    current = store.get("construction_hoardings", 1)
    assert current.properties["status"] == "in_progress"
    assert current.version == 2
    assert store.version("construction_hoardings") == version


@pytest.mark.parametrize(
    ("properties", "geometry", "parameter"),
    [
        ({"status": "gone"}, None, "status"),
        ({"agency": "police"}, None, "agency"),
        ({"site": None}, None, "site"),
        ({"removed_on": "June"}, None, "removed_on"),
        ({"colour": "red"}, None, "colour"),
        ({"length_m": 5}, None, "length_m"),
        ({}, shapely.Point(113.3, 33.73), "geometry"),
        ({}, shapely.Polygon([(113.3, 33.7), (113.31, 33.71), (113.31, 33.7), (113.3, 33.71)]), "geometry"),
        ({}, shapely.LineString([(500, 33.7), (501, 33.8)]), "geometry"),
    ],
)
def test_invalid_update_is_refused_whole(store, properties, geometry, parameter):
    before = store.get("construction_hoardings", 1)
    version = store.version("construction_hoardings")
    with pytest.raises(InvalidFeature) as info:
        store.update("construction_hoardings", 1, {"status": "removed", **properties}, geometry=geometry)
    assert info.value.parameter == parameter
    assert store.get("construction_hoardings", 1) == before
    assert store.version("construction_hoardings") == version


def test_insert_and_delete(store):
    feature = store.insert(
        "waterlogging_points", {"name": "光明路口", "road": "光明路"}, shapely.Point(113.301, 33.731)
    )
    assert feature.properties["status"] == "dry"  # the declared default
    assert store.get("waterlogging_points", feature.fid).properties["name"] == "光明路口"
    store.delete("waterlogging_points", feature.fid)
    assert store.get("waterlogging_points", feature.fid) is None
    with pytest.raises(NotFound):
        store.delete("waterlogging_points", feature.fid)


def test_invalid_insert_writes_nothing(store):
    rows = _rows(store, "waterlogging_points")
    with pytest.raises(InvalidFeature, match="'name' is required"):
        store.insert("waterlogging_points", {"road": "光明路"}, shapely.Point(113.301, 33.731))
    assert _rows(store, "waterlogging_points") == rows
    assert store.version("waterlogging_points") == 1


def test_gdal_reads_every_layer_after_an_update(store, registry):
    moved = shapely.LineString([(113.320, 33.750), (113.323, 33.750)])
    store.update("construction_hoardings", 1, {"status": "removed"}, geometry=moved)
    store.insert("waterlogging_points", {"name": "新点", "road": "人民路"}, shapely.Point(113.36, 33.77))
    for layer in registry:
        frame = pyogrio.read_dataframe(store.path, layer=layer.id)
        assert len(frame) == len(store.query(layer.id))
    hoardings = pyogrio.read_dataframe(store.path, layer="construction_hoardings", fid_as_index=True)
    assert hoardings.loc[1, "status"] == "removed"
    assert hoardings.loc[1, "geometry"].equals(moved)
    # GDAL's spatial index follows the edit: a spatial filter finds the moved feature where it now is
    found = pyogrio.read_dataframe(store.path, layer="construction_hoardings", bbox=(113.319, 33.749, 113.324, 33.751))
    assert found["site"].tolist() == ["湛南路东段"]
    info = pyogrio.read_info(store.path, layer="waterlogging_points")
    assert info["total_bounds"][2] == pytest.approx(113.36)


def test_create_refuses_to_overwrite_without_force(store, registry):
    with pytest.raises(StoreError, match="already exists"):
        create_store(registry, str(store.path))


def test_create_with_bad_data_writes_nothing(registry, tmp_path):
    bad = gpd.GeoDataFrame(
        {"name": ["a", "b"], "road": ["x", "y"], "status": ["dry", "flooded!"]},
        geometry=[shapely.Point(113.3, 33.7), shapely.Point(113.31, 33.71)],
        crs="EPSG:4326",
    )
    target = tmp_path / "bad.gpkg"
    with pytest.raises(InvalidFeature, match="feature 1: 'status'"):
        create_store(registry, str(target), {"waterlogging_points": bad})
    assert list(tmp_path.iterdir()) == []


def test_open_refuses_a_missing_store(registry, tmp_path):
    with pytest.raises(StoreError, match="geoapp init"):
        open_store(registry, str(tmp_path / "none.gpkg"))


def test_query_returns_declared_types_with_none_for_missing(store):
    frame = store.query("construction_hoardings")
    assert frame["site"].dtype == object and frame["removed_on"].dtype == object
    assert frame.loc[1, "removed_on"] is None and frame.loc[1, "site"] == "湛南路东段"
    assert str(frame["length_m"].dtype) == "float64" and str(frame["_version"].dtype) == "int64"
