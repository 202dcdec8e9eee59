"""The store contract: transactional changes, versions, validation, batch inserts, deltas.

Every test here goes through the :class:`~geoapp.store.base.Store` interface only (no SQL, no
file access), so that it runs over every backend; ``BACKENDS`` lists them. What is particular to
the GeoPackage file (GDAL reading it, other tools writing it) is in ``test_gpkg.py``.
"""

from __future__ import annotations

import geopandas as gpd
import pytest
import shapely
from pyproj import Geod

from geoapp.errors import InvalidFeature, NotFound, StoreError, VersionConflict
from geoapp.store import create_store, open_store
from geoapp.store.base import Actor

GEOD = Geod(ellps="WGS84")
ACTOR = Actor("tester", "cli", roles=frozenset({"admin"}))
pytestmark = pytest.mark.backends("gpkg", "postgis")


@pytest.fixture
def store(registry, location):
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
    store = create_store(registry, location, {"construction_hoardings": hoardings, "waterlogging_points": points})
    yield store
    store.close()


def _rows(store, layer_id):
    return len(store.load(layer_id).fids)


def _version(store, layer_id):
    return store.versions()[layer_id]


def test_metric_crs_is_the_gauss_kruger_zone_of_the_district(store):
    assert store.metric_crs == "EPSG:4547"


def test_computed_length_agrees_with_geodesic_length(store):
    line = store.get("construction_hoardings", 1)
    geodesic = GEOD.geometry_length(line.geometry)
    assert line.properties["length_m"] == pytest.approx(geodesic, rel=0.005)
    ring = store.get("construction_hoardings", 2)
    assert ring.properties["length_m"] == pytest.approx(GEOD.geometry_length(ring.geometry.exterior), rel=0.005)


def test_update_bumps_feature_and_layer_versions(store):
    before = _version(store, "construction_hoardings")
    feature = store.update(
        "construction_hoardings",
        1,
        {"status": "removed", "removed_on": "2023-06-01", "treatment": "levelled"},
        expected_version=1,
        actor=ACTOR,
    )
    assert feature.version == 2
    assert store.get("construction_hoardings", 1).properties["status"] == "removed"
    assert _version(store, "construction_hoardings") == before + 1
    assert _version(store, "waterlogging_points") == 1


def test_stale_version_is_refused_and_nothing_changes(store):
    store.update("construction_hoardings", 1, {"status": "in_progress"}, expected_version=1, actor=ACTOR)
    version = _version(store, "construction_hoardings")
    with pytest.raises(VersionConflict):
        store.update(
            "construction_hoardings",
            1,
            {"status": "removed", "removed_on": "2023-06-01", "treatment": "levelled"},
            expected_version=1,
            actor=ACTOR,
        )
    current = store.get("construction_hoardings", 1)
    assert current.properties["status"] == "in_progress"
    assert current.version == 2
    assert _version(store, "construction_hoardings") == version


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
    version = _version(store, "construction_hoardings")
    with pytest.raises(InvalidFeature) as info:
        store.update(
            "construction_hoardings",
            1,
            {"status": "removed", **properties},
            geometry=geometry,
            expected_version=1,
            actor=ACTOR,
        )
    assert info.value.parameter == parameter
    assert store.get("construction_hoardings", 1) == before
    assert _version(store, "construction_hoardings") == version


def test_insert_and_delete(store):
    feature = store.insert(
        "waterlogging_points", {"name": "光明路口", "road": "光明路"}, shapely.Point(113.301, 33.731), actor=ACTOR
    )
    assert feature.properties["status"] == "dry"  # the declared default
    assert store.get("waterlogging_points", feature.fid).properties["name"] == "光明路口"
    store.delete("waterlogging_points", feature.fid, expected_version=1, actor=ACTOR)
    assert store.get("waterlogging_points", feature.fid) is None
    with pytest.raises(NotFound):
        store.delete("waterlogging_points", feature.fid, expected_version=1, actor=ACTOR)


def test_invalid_insert_writes_nothing(store):
    rows = _rows(store, "waterlogging_points")
    with pytest.raises(InvalidFeature, match="'name' is required"):
        store.insert("waterlogging_points", {"road": "光明路"}, shapely.Point(113.301, 33.731), actor=ACTOR)
    assert _rows(store, "waterlogging_points") == rows
    assert _version(store, "waterlogging_points") == 1


def test_create_refuses_to_overwrite_without_force(store, registry):
    with pytest.raises(StoreError, match="pass --force"):
        create_store(registry, store.location)
    assert _rows(store, "construction_hoardings") == 2


def test_create_with_bad_data_writes_nothing(registry, location):
    bad = gpd.GeoDataFrame(
        {"name": ["a", "b"], "road": ["x", "y"], "status": ["dry", "flooded!"]},
        geometry=[shapely.Point(113.3, 33.7), shapely.Point(113.31, 33.71)],
        crs="EPSG:4326",
    )
    with pytest.raises(InvalidFeature, match="feature 1: 'status'"):
        create_store(registry, location, {"waterlogging_points": bad})
    with pytest.raises(StoreError, match="geoapp init"):
        open_store(registry, location)  # nothing was written: there is no store to open


def test_open_refuses_a_missing_store(registry, location):
    with pytest.raises(StoreError, match="geoapp init"):
        open_store(registry, location)


def test_load_returns_declared_python_types_with_none_for_missing(store):
    data = store.load("construction_hoardings")
    assert data.fids.tolist() == [1, 2]
    assert data.columns["site"].tolist() == ["湛南路东段", "开源路北侧"]
    assert data.columns["removed_on"].tolist() == [None, None]
    assert all(isinstance(v, float) for v in data.columns["length_m"])
    assert data.versions.tolist() == [1, 1] and data.version == _version(store, "construction_hoardings")
    assert data.problems == ()


def test_insert_many_is_one_transaction_all_or_nothing(store):
    points = [({"name": f"点{i}", "road": "光明路"}, shapely.Point(113.30 + i / 1000, 33.73)) for i in range(50)]
    version = _version(store, "waterlogging_points")
    bad = [*points[:20], ({"name": "坏点", "status": "flooded!"}, shapely.Point(113.3, 33.73)), *points[20:]]
    with pytest.raises(InvalidFeature, match="feature 20: 'status'"):
        store.insert_many("waterlogging_points", bad, actor=ACTOR)
    assert _rows(store, "waterlogging_points") == 1
    assert _version(store, "waterlogging_points") == version
    added = store.insert_many("waterlogging_points", points, actor=ACTOR)
    assert [f.properties["name"] for f in added] == [f"点{i}" for i in range(50)]
    assert _rows(store, "waterlogging_points") == 51
    assert len(store.audit()) - sum(1 for e in store.audit() if e.action != "insert") == 50


def test_changes_name_what_changed_after_a_version(store):
    start = _version(store, "construction_hoardings")
    assert store.changes("construction_hoardings", start, 100).changed == []
    store.update(
        "construction_hoardings",
        1,
        {"status": "removed", "removed_on": "2023-06-01", "treatment": "levelled"},
        expected_version=1,
        actor=ACTOR,
    )
    added = store.insert(
        "construction_hoardings",
        {"site": "新工地", "agency": "housing", "status": "pending"},
        shapely.LineString([(113.301, 33.731), (113.302, 33.731)]),
        actor=ACTOR,
    )
    store.delete("construction_hoardings", 2, expected_version=1, actor=ACTOR)
    delta = store.changes("construction_hoardings", start, 100)
    assert delta.version == _version(store, "construction_hoardings") > start
    assert [(f.fid, f.version) for f in delta.changed] == [(1, 2), (added.fid, 1)]
    assert delta.changed[0].properties["status"] == "removed"
    assert delta.deleted == [2]
    assert store.changes("construction_hoardings", delta.version, 100).changed == []
    assert store.changes("construction_hoardings", start, 1) is None  # more than the limit: load whole


def test_every_change_needs_an_actor(store):
    point = shapely.Point(113.301, 33.731)
    with pytest.raises(TypeError):
        store.insert(
            "waterlogging_points", {"name": "无名", "road": "光明路"}, point
        )  # no actor: refused, not "system"


def test_replacing_a_store_keeps_accounts_and_audit_and_records_it(store, registry):
    store.add_user("planner1", "$argon2id$x", ("planner",), actor=ACTOR)
    store.update(
        "construction_hoardings",
        1,
        {"status": "removed", "removed_on": "2023-06-01", "treatment": "levelled"},
        expected_version=1,
        actor=ACTOR,
    )
    before = store.audit()
    location = store.location
    store.close()
    replaced = create_store(registry, location, force=True, actor=ACTOR)
    try:
        assert replaced.user("planner1").roles == ("planner",)
        after = replaced.audit()
        assert [e.id for e in after[: len(before)]] == [e.id for e in before]
        assert after[-1].action == "store_replace" and after[-1].actor == "tester"
        assert _rows(replaced, "construction_hoardings") == 0
    finally:
        replaced.close()
    dropped = create_store(registry, location, force=True, keep_accounts=False)
    try:
        assert dropped.user("planner1") is None and dropped.audit() == []
    finally:
        dropped.close()
