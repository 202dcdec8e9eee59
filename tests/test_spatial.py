"""The reader's queries against independent brute-force computations over the same features.

Everything goes through the :class:`~geoapp.store.base.FeatureReader` interface (``select``), so
these run over every reader: in memory over a GeoPackage, in memory over PostGIS, and in SQL on
PostGIS (every layer sent to the database). All three agreeing with brute force, they agree
with each other; ``test_sql_and_memory_agree_on_random_queries`` compares them directly too.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
from pyproj import Geod, Transformer

from geoapp.core.crs import metric_crs
from geoapp.errors import InvalidParameter
from geoapp.store import create_store
from geoapp.store.base import Actor, Query
from geoapp.store.memindex import MemIndex

GEOD = Geod(ellps="WGS84")
TO_GK = Transformer.from_crs("EPSG:4326", "EPSG:4547", always_xy=True)
KINDS = ["water_supply", "sewage", "storm", "power"]
ACTOR = Actor("tester", "cli", roles=frozenset({"admin"}))
EVERYTHING = 10**7


def select(reader, layer_id, query):
    """Every match of a query (one page holding them all)."""
    return reader.select(layer_id, query, 0, EVERYTHING, "public")


READERS = ["gpkg", "postgis-memory", "postgis-sql"]


def _random_data():
    rng = np.random.default_rng(7)
    n = 3000
    lon = rng.uniform(113.27, 113.33, n)
    lat = rng.uniform(33.71, 33.75, n)
    covers = gpd.GeoDataFrame(
        {
            "code": [f"4199010101{i:06d}" for i in range(n)],
            "kind": rng.choice(KINDS, n),
            "status": rng.choice(["fixed", "to_fix"], n),
        },
        geometry=shapely.points(lon, lat),
        crs="EPSG:4326",
    )
    starts = np.column_stack([rng.uniform(113.27, 113.33, 2500), rng.uniform(33.71, 33.75, 2500)])
    lines = [shapely.LineString([s, s + rng.uniform(-0.002, 0.002, 2)]) for s in starts]
    hoardings = gpd.GeoDataFrame(
        {"site": [f"site {i}" for i in range(2500)], "agency": "housing", "status": "pending"},
        geometry=lines,
        crs="EPSG:4326",
    )
    return covers, hoardings


def _reader(kind: str, store):
    # sql_above=-1: every layer is answered in SQL, as a layer larger than GEOAPP_SQL_ABOVE is
    return MemIndex(store, sql=store.sql_reader(), sql_above=-1) if kind == "postgis-sql" else MemIndex(store)


@pytest.fixture(scope="module", params=READERS)
def random_store(request, registry, tmp_path_factory):
    covers, hoardings = _random_data()
    if request.param == "gpkg":
        location = str(tmp_path_factory.mktemp("spatial") / "random.gpkg")
    else:
        location = request.getfixturevalue("postgres").create()
    store = create_store(registry, location, {"manhole_covers": covers, "construction_hoardings": hoardings})
    yield _reader(request.param, store), covers, hoardings
    store.close()
    if request.param != "gpkg":
        request.getfixturevalue("postgres").drop(location)


def _projected(gdf):
    return shapely.transform(gdf.geometry.array, lambda xy: np.column_stack(TO_GK.transform(xy[:, 0], xy[:, 1])))


def test_metric_crs_choice():
    assert metric_crs(113.30, 33.73) == "EPSG:4547"
    assert metric_crs(116.4, 39.9) == "EPSG:4548"  # Beijing, central meridian 117E
    assert metric_crs(2.35, 48.85) == "EPSG:32631"  # Paris, UTM 31N


def test_bbox_equals_brute_force(random_store):
    engine, covers, _ = random_store
    rng = np.random.default_rng(1)
    lon, lat = covers.geometry.x.to_numpy(), covers.geometry.y.to_numpy()
    for _ in range(30):
        x0, y0 = rng.uniform(113.26, 113.33), rng.uniform(33.70, 33.75)
        x1, y1 = x0 + rng.uniform(0, 0.03), y0 + rng.uniform(0, 0.02)
        got = select(engine, "manhole_covers", Query(bbox=(x0, y0, x1, y1))).ids
        expected = (np.flatnonzero((lon >= x0) & (lon <= x1) & (lat >= y0) & (lat <= y1)) + 1).tolist()
        assert got == expected


@pytest.mark.parametrize("layer_id", ["manhole_covers", "construction_hoardings"])
def test_radius_equals_brute_force_and_distances_are_geodesic(random_store, layer_id):
    engine, covers, hoardings = random_store
    gdf = covers if layer_id == "manhole_covers" else hoardings
    projected = _projected(gdf)
    rng = np.random.default_rng(2)
    for _ in range(25):
        lon, lat, radius = rng.uniform(113.27, 113.33), rng.uniform(33.71, 33.75), rng.uniform(20, 1500)
        result = select(engine, layer_id, Query(near=(lon, lat, radius)))
        centre = shapely.Point(*TO_GK.transform(lon, lat))
        distances = shapely.distance(projected, centre)
        expected = np.flatnonzero(distances <= radius)
        expected = expected[np.lexsort((expected, distances[expected]))] + 1
        assert result.ids == expected.tolist()
        assert np.all(np.diff(result.distances) >= 0)
        if layer_id == "manhole_covers" and len(result.ids):
            fids = np.array(result.ids)
            _, _, geodesic = GEOD.inv(
                np.full(len(fids), lon),
                np.full(len(fids), lat),
                gdf.geometry.x.iloc[fids - 1],
                gdf.geometry.y.iloc[fids - 1],
            )
            assert np.allclose(result.distances, geodesic, rtol=0.005, atol=0.01)


@pytest.mark.parametrize("layer_id", ["manhole_covers", "construction_hoardings"])
def test_nearest_equals_brute_force(random_store, layer_id):
    engine, covers, hoardings = random_store
    gdf = covers if layer_id == "manhole_covers" else hoardings
    projected = _projected(gdf)
    rng = np.random.default_rng(3)
    for k in (1, 5, 10, 60):
        for _ in range(5):
            lon, lat = rng.uniform(113.25, 113.35), rng.uniform(33.70, 33.76)
            result = select(engine, layer_id, Query(nearest=(lon, lat, k)))
            distances = shapely.distance(projected, shapely.Point(*TO_GK.transform(lon, lat)))
            order = np.lexsort((np.arange(len(gdf)), distances))[:k]
            assert result.ids == (order + 1).tolist()
            assert np.allclose(result.distances, distances[order])


def test_nearest_with_a_filter_only_returns_matching_features(random_store):
    engine, covers, _ = random_store
    projected = _projected(covers)
    lon, lat = 113.30, 33.73
    result = select(engine, "manhole_covers", Query(nearest=(lon, lat, 10), filters={"status": ["to_fix"]}))
    distances = shapely.distance(projected, shapely.Point(*TO_GK.transform(lon, lat)))
    distances[covers["status"].to_numpy() != "to_fix"] = np.inf
    assert result.ids == (np.argsort(distances, kind="stable")[:10] + 1).tolist()


def test_within_polygon_and_filters_equal_brute_force(random_store):
    engine, covers, _ = random_store
    area = shapely.Polygon([(113.28, 33.72), (113.31, 33.715), (113.32, 33.74), (113.29, 33.745)])
    result = select(engine, "manhole_covers", Query(within=area, filters={"kind": ["storm", "power"]}))
    expected = shapely.intersects(covers.geometry.array, area) & covers["kind"].isin(["storm", "power"]).to_numpy()
    assert result.ids == (np.flatnonzero(expected) + 1).tolist()


def test_near_and_nearest_together_are_refused(random_store):
    engine, _, _ = random_store
    with pytest.raises(InvalidParameter):
        select(engine, "manhole_covers", Query(near=(113.3, 33.73, 100), nearest=(113.3, 33.73, 3)))


def test_engine_follows_store_changes(random_store):
    engine, _, _ = random_store
    store = engine.store
    far = (113.40, 33.80)
    assert select(engine, "manhole_covers", Query(nearest=(*far, 1))).distances[0] > 1000
    added = store.insert(
        "manhole_covers",
        {"code": "4199010101999999", "kind": "storm", "status": "to_fix"},
        shapely.Point(*far),
        actor=ACTOR,
    )
    try:
        result = select(engine, "manhole_covers", Query(nearest=(*far, 1)))
        assert result.ids == [added.fid]
        assert result.distances[0] == pytest.approx(0)
    finally:
        store.delete("manhole_covers", added.fid, expected_version=1, actor=ACTOR)
    assert select(engine, "manhole_covers", Query(nearest=(*far, 1))).ids != [added.fid]


def test_nearest_from_many_threads_at_once_gives_the_same_answers(random_store):
    # the k-nearest R-tree (libspatialindex) is not thread-safe; gunicorn serves with threads
    import concurrent.futures

    engine, _, _ = random_store
    rng = np.random.default_rng(11)
    points = [(rng.uniform(113.27, 113.33), rng.uniform(33.71, 33.75)) for _ in range(200)]
    expected = [select(engine, "manhole_covers", Query(nearest=(x, y, 20))).ids for x, y in points]
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        got = list(pool.map(lambda p: select(engine, "manhole_covers", Query(nearest=(*p, 20))).ids, points * 4))
    assert got == expected * 4


def test_a_new_threads_transformer_projects_exactly_as_a_freshly_resolved_one():
    # each thread builds its transformer from the pipeline resolved once per process (fast); it must
    # give the same metres as resolving the two CRSs anew
    import threading

    from geoapp.core.crs import transformer

    rng = np.random.default_rng(4)
    lon, lat = rng.uniform(113.2, 113.4, 500), rng.uniform(33.6, 33.8, 500)
    expected = np.column_stack(TO_GK.transform(lon, lat))
    got = {}
    thread = threading.Thread(target=lambda: got.update(xy=transformer("EPSG:4326", "EPSG:4547").transform(lon, lat)))
    thread.start()
    thread.join()
    assert np.array_equal(np.column_stack(got["xy"]), expected)


@pytest.fixture(scope="module")
def memory_and_sql(request, registry):
    """One PostGIS store of the random data, read both ways: from memory and in SQL."""
    covers, hoardings = _random_data()
    server = request.getfixturevalue("postgres")
    location = server.create()
    store = create_store(registry, location, {"manhole_covers": covers, "construction_hoardings": hoardings})
    yield _reader("postgis-memory", store), _reader("postgis-sql", store)
    store.close()
    server.drop(location)


def _random_queries(rng, n):
    for _ in range(n):
        lon, lat = rng.uniform(113.26, 113.34), rng.uniform(33.70, 33.76)
        kind = rng.integers(0, 5)
        filters = {"status": ["to_fix"]} if rng.random() < 0.3 else {}
        if kind == 0:
            yield Query(bbox=(lon, lat, lon + rng.uniform(0, 0.03), lat + rng.uniform(0, 0.02)), filters=filters)
        elif kind == 1:
            yield Query(near=(lon, lat, float(rng.uniform(10, 1500))), filters=filters)
        elif kind == 2:
            yield Query(nearest=(lon, lat, int(rng.integers(1, 60))), filters=filters)
        elif kind == 3:
            area = shapely.Point(lon, lat).buffer(rng.uniform(0.001, 0.01))
            yield Query(within=area, filters=filters)
        else:
            yield Query(filters={"status": ["fixed"]}, after=int(rng.integers(0, 3000)))


def test_sql_and_memory_agree_on_random_queries(memory_and_sql):
    memory, sql = memory_and_sql
    rng = np.random.default_rng(2024)
    for query in _random_queries(rng, 120):
        for layer_id in ("manhole_covers", "construction_hoardings"):
            offset, limit = int(rng.integers(0, 20)), int(rng.integers(1, 200))
            a = memory.select(layer_id, query, offset, limit, "internal")
            b = sql.select(layer_id, query, offset, limit, "internal")
            assert (a.ids, a.matched, a.more) == (b.ids, b.matched, b.more), (layer_id, query)
            if a.distances is None:
                assert a.features == b.features  # the same GeoJSON, byte for byte
                continue
            assert b.distances == pytest.approx(a.distances, abs=1e-6)
            if layer_id == "manhole_covers" and a.ids:
                lon, lat, _ = query.near or query.nearest
                points = memory.store.load(layer_id)
                at = np.searchsorted(points.fids, a.ids)
                xs = shapely.get_x(points.geometries[at])
                ys = shapely.get_y(points.geometries[at])
                _, _, geodesic = GEOD.inv(np.full(len(xs), lon), np.full(len(ys), lat), xs, ys)
                far = geodesic > 1.0  # a relative error says little about centimetres
                assert np.allclose(np.array(b.distances)[far], geodesic[far], rtol=0.005)


@pytest.mark.parametrize("step", [37, 200])
def test_keyset_pages_return_every_match_once_while_the_layer_changes(random_store, step):
    engine, _, _ = random_store
    store = engine.store
    box = (113.27, 33.71, 113.31, 33.74)
    query = Query(bbox=box)
    before = set(select(engine, "manhole_covers", query).ids)
    seen: list[int] = []
    added, removed = [], []
    after = None
    rng = np.random.default_rng(step)
    while True:
        page = engine.select("manhole_covers", Query(bbox=box, after=after), 0, step, "public")
        seen += page.ids
        if not page.more:
            break
        after = page.ids[-1]
        # between pages someone deletes a feature already seen and one not yet seen, and adds one
        for fid in (int(rng.choice(seen)), max(before - set(seen) - set(removed), default=None)):
            if fid is not None and fid not in removed:
                feature = store.get("manhole_covers", fid)
                store.delete("manhole_covers", fid, expected_version=feature.version, actor=ACTOR)
                removed.append(fid)
        point = shapely.Point(rng.uniform(box[0], box[2]), rng.uniform(box[1], box[3]))
        props = {"code": f"4199010102{len(added):06d}", "kind": "storm", "status": "to_fix"}
        added.append(store.insert("manhole_covers", props, point, actor=ACTOR).fid)
    try:
        assert len(seen) == len(set(seen)), "a feature came twice"
        unseen_survivors = before - set(removed) - set(seen)
        assert not unseen_survivors, f"{len(unseen_survivors)} features that never changed were skipped"
        assert set(added) <= set(seen)  # new fids are larger than any page's last: they come on later pages
    finally:
        for fid in added:
            store.delete("manhole_covers", fid, expected_version=1, actor=ACTOR)
        for fid in removed:
            store.restore("manhole_covers", fid, actor=ACTOR)
