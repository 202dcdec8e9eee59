"""What another tool may leave in a store, and queries far from the data: a reader answers as a fresh one would.

Rows are written with plain SQL on the store (as QGIS, ogr2ogr or a script would write them), after a
following reader has built its base; a fresh reader then loads the same store whole. On every backend, but for
what only a GeoPackage file can hold (a blob in a text column, a MultiPoint in a Point layer, a GeoPackage
geometry blob's own encoding of an empty point).
"""

from __future__ import annotations

import struct

import numpy as np
import orjson
import pytest
import shapely

from geoapp.core.crs import STORAGE_CRS, project
from geoapp.store import open_store
from geoapp.store.base import Actor, Query
from geoapp.store.gpkg import encode
from geoapp.store.memindex import BRUTE_FORCE_NEAREST, MemIndex
from tests.backends import execute

ACTOR = Actor("tester", "cli", roles=frozenset({"admin"}))
QUERIES = [
    Query(),
    Query(bbox=(113.27, 33.71, 113.33, 33.75)),
    Query(bbox=(113.29, 33.72, 113.31, 33.74)),
    Query(near=(113.3, 33.73, 800.0)),
    Query(nearest=(113.3, 33.73, 9)),
    Query(within=shapely.box(113.29, 33.72, 113.31, 33.74)),
]
pytestmark = pytest.mark.backends("gpkg", "postgis")


def _answers(reader: MemIndex, layer_id: str):
    out = []
    for query in QUERIES:
        page = reader.select(layer_id, query, 0, 100_000, "internal")
        distances = None if page.distances is None else np.round(page.distances, 6).tolist()
        out.append((page.ids, distances, [orjson.loads(f) for f in page.features]))
    return out


def _write(database, sql: str, *params) -> None:
    execute(database, sql, params)


def _nan_point() -> bytes:
    """A point blob as some writers make an empty point: NaN coordinates, the header's empty flag not set."""
    return struct.pack("<2sBBi", b"GP", 0, 0b00001, 4326) + struct.pack("<BIdd", 1, 1, np.nan, np.nan)


def _follower(registry, database, layer_id: str) -> MemIndex:
    reader = MemIndex(open_store(registry, str(database)), merge_after=10**6)
    _answers(reader, layer_id)  # builds its base before the other tool writes
    return reader


def _assert_like_fresh(registry, database, following: MemIndex, layer_id: str) -> MemIndex:
    fresh = MemIndex(open_store(registry, str(database)))
    assert _answers(following, layer_id) == _answers(fresh, layer_id)
    assert following.count(layer_id) == fresh.count(layer_id)
    assert following.summary()[layer_id].extent == fresh.summary()[layer_id].extent
    return fresh


@pytest.mark.backends("gpkg")
def test_a_point_with_nan_coordinates_is_an_empty_point_in_a_full_load_as_in_a_delta(registry, database):
    layer_id = "manhole_covers"
    following = _follower(registry, database, layer_id)
    before = following.count(layer_id)
    _write(database, "UPDATE manhole_covers SET geom = ? WHERE fid = 5", _nan_point())
    fresh = _assert_like_fresh(registry, database, following, layer_id)
    assert fresh.count(layer_id) == before - 1
    assert all(np.isfinite(fresh.summary()[layer_id].extent))


@pytest.mark.backends("gpkg")
@pytest.mark.parametrize("field", ["road", "fixed_on"])
def test_a_blob_in_a_field_is_a_problem_not_a_layer_that_cannot_load(registry, database, field):
    layer_id = "manhole_covers"
    following = _follower(registry, database, layer_id)
    _write(database, f'UPDATE manhole_covers SET "{field}" = ? WHERE fid = 7', b"\x00\xff")
    fresh = _assert_like_fresh(registry, database, following, layer_id)
    assert fresh.get(layer_id, 7, "internal").properties[field] is None
    assert any(p.fid == 7 and p.field == field for p in fresh.summary()[layer_id].problems)


def test_an_infinite_number_reads_as_missing_in_a_delta_as_in_a_full_load(registry, database):
    layer_id = "underpass_culverts"
    following = _follower(registry, database, layer_id)
    fid = following.select(layer_id, Query(), 0, 1).ids[0]
    _write(database, "UPDATE underpass_culverts SET clearance_m = ? WHERE fid = ?", float("inf"), fid)
    fresh = _assert_like_fresh(registry, database, following, layer_id)  # a full load failed on the bare Inf
    assert any(p.fid == fid and p.field == "clearance_m" for p in fresh.summary()[layer_id].problems)
    assert following.get(layer_id, fid, "internal").properties["clearance_m"] is None
    assert fresh.get(layer_id, fid, "internal").properties["clearance_m"] is None


@pytest.mark.backends("gpkg")
def test_a_multipoint_another_tool_wrote_in_a_point_layer_does_not_shift_the_other_points(registry, database):
    layer_id = "manhole_covers"
    following = _follower(registry, database, layer_id)
    far_apart = shapely.MultiPoint([(113.2701, 33.7101), (113.3299, 33.7499), (113.3, 33.73)])
    _write(database, "UPDATE manhole_covers SET geom = ? WHERE fid = 3", encode(far_apart))
    fresh = _assert_like_fresh(registry, database, following, layer_id)
    page = fresh.select(layer_id, Query(bbox=(113.2999, 33.7299, 113.3001, 33.7301)), 0, 10)
    assert 3 in page.ids


def test_nearest_far_from_a_large_point_layer_finds_the_k_nearest(registry, database):
    layer_id = "manhole_covers"
    writer = open_store(registry, str(database))
    rng = np.random.default_rng(3)
    n = BRUTE_FORCE_NEAREST + 200 - len(writer.load(layer_id).fids)
    props = {"code": "4199010101900001", "kind": "storm", "status": "to_fix"}
    points = shapely.points(rng.uniform(113.28, 113.32, n), rng.uniform(33.72, 33.74, n))
    writer.insert_many(layer_id, [(props, p) for p in points], actor=ACTOR)
    reader = MemIndex(open_store(registry, str(database)))
    assert len(reader.snapshot(layer_id).base) > BRUTE_FORCE_NEAREST and reader.snapshot(layer_id).base.points
    for lon, lat in [(0.0, 0.0), (-120.0, 10.0)]:
        page = reader.select(layer_id, Query(nearest=(lon, lat, 3)), 0, 10)
        assert page.matched == 3, (lon, lat)
        # the same three as measuring every feature
        base = reader.snapshot(layer_id).base
        distances = base.distances(np.arange(len(base)), project(shapely.Point(lon, lat), STORAGE_CRS, base.metric_crs))
        assert page.ids == base.fids[np.lexsort((base.fids, distances))[:3]].tolist()
    writer.close()


def test_problems_written_after_the_base_are_reported_and_fixed_ones_are_not(registry, database):
    following = _follower(registry, database, "heating_stations")
    _write(database, "UPDATE heating_stations SET status = 'abc' WHERE fid = 3")
    _write(database, "UPDATE heating_stations SET geom = NULL WHERE fid = 4")
    problems = {(p.fid, p.field) for p in following.summary()["heating_stations"].problems}
    assert {(3, "status"), (4, "geometry")} <= problems
    fresh = MemIndex(open_store(registry, str(database)))
    assert following.summary()["heating_stations"].problems == fresh.summary()["heating_stations"].problems
    _write(database, "UPDATE heating_stations SET status = 'running' WHERE fid = 3")  # someone fixed it
    problems = {(p.fid, p.field) for p in following.summary()["heating_stations"].problems}
    assert (3, "status") not in problems and (4, "geometry") in problems
