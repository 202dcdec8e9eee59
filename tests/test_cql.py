"""CQL2 filters: parsing and refusals (``geoapp.core.cql``), and every reader applying them.

The readers (in memory over a GeoPackage, in memory over PostGIS, and in SQL on PostGIS) are
checked against an independent computation: the layer read straight from the store's file or
database with geopandas, each filter written out as a pandas/shapely expression by hand.
"""

from __future__ import annotations

import json
import string

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
import sqlalchemy as sa

from geoapp.core import cql
from geoapp.core.crs import parse_crs, to_storage
from geoapp.errors import InvalidParameter
from geoapp.store import create_store
from geoapp.store.base import Actor, Query
from geoapp.store.memindex import MemIndex
from tests.backends import execute, is_postgis

pytestmark = pytest.mark.backends("gpkg", "postgis")

EVERYTHING = 10**7
ACTOR = Actor("tester", "cli", roles=frozenset({"admin"}))
INJECTION = "x'; DROP TABLE construction_hoardings; --"
SITES = [
    "建设路围挡",
    "Road A fence",
    "road b fence",
    "ROADWORKS",
    "100% done",
    "100 done",
    "人民路 东段",
    "Ärger Road",
    INJECTION,
]
CONTRACTORS = ["甲建设公司", "乙工程队", None]
AREA = shapely.Polygon([(113.28, 33.715), (113.31, 33.715), (113.31, 33.74), (113.28, 33.74)])


def _data():
    rng = np.random.default_rng(11)
    n = 600
    starts = np.column_stack([rng.uniform(113.27, 113.33, n), rng.uniform(33.71, 33.75, n)])
    geoms = [
        shapely.LineString([s, s + rng.uniform(-0.003, 0.003, 2)])
        if i % 3
        else shapely.box(*s, *(s + rng.uniform(0.0005, 0.004, 2)))
        for i, s in enumerate(starts)
    ]
    days = pd.to_datetime("2023-01-01") + pd.to_timedelta(rng.integers(0, 365, n), unit="D")
    due = [d.date().isoformat() if rng.random() > 0.2 else None for d in days]
    hoardings = gpd.GeoDataFrame(
        {
            "site": [SITES[i % len(SITES)] for i in range(n)],
            "agency": rng.choice(["urban_management", "housing"], n),
            "status": rng.choice(["pending", "in_progress", "removed", "under_construction"], n),
            "due_on": due,
            "treatment": [rng.choice(["levelled", "greened", None]) for _ in range(n)],
            "contractor": [CONTRACTORS[i % 3] for i in range(n)],
        },
        geometry=geoms,
        crs="EPSG:4326",
    )
    m = 400
    points = shapely.points(rng.uniform(113.27, 113.33, m), rng.uniform(33.71, 33.75, m))
    spaces = gpd.GeoDataFrame(
        {
            "name": [f"地下空间{i}" for i in range(m)],
            "kind": rng.choice(["garage", "mall", "passage", "shelter", "other"], m),
            "entrances": pd.array([None if i % 7 == 0 else int(i % 6) for i in range(m)], dtype="Int64"),
            "barriers_fitted": pd.array([None if i % 5 == 0 else bool(i % 2) for i in range(m)], dtype="boolean"),
            "responsible_unit": "物业",
            "status": rng.choice(["open", "sealed", "flooded"], m),
        },
        geometry=points,
        crs="EPSG:4326",
    )
    return {"construction_hoardings": hoardings, "underground_spaces": spaces}


def _read_back(location: str, layer_id: str) -> gpd.GeoDataFrame:
    """The layer as geopandas reads it from the store itself, dates as "YYYY-MM-DD" text."""
    if is_postgis(location):
        engine = sa.create_engine("postgresql+psycopg://" + location.partition("://")[2], poolclass=sa.NullPool)
        with engine.connect() as conn:
            gdf = gpd.read_postgis(f'SELECT * FROM "{layer_id}"', conn, geom_col="geom", index_col="fid")
        engine.dispose()
    else:
        gdf = gpd.read_file(location, layer=layer_id, fid_as_index=True, engine="pyogrio")
    gdf = gdf.sort_index()
    for name in ("due_on", "removed_on"):
        if name in gdf:
            gdf[name] = [None if pd.isna(v) else str(v)[:10] for v in gdf[name]]
    return gdf


@pytest.fixture(scope="module")
def district(backend, registry, tmp_path_factory, request):
    """A store of synthetic features, its readers, and its layers read back independently."""
    if backend == "gpkg":
        location = str(tmp_path_factory.mktemp("cql") / "cql.gpkg")
    else:
        location = request.getfixturevalue("postgres").create()
    store = create_store(registry, location, _data())
    readers = {"memory": MemIndex(store)}
    if backend == "postgis":
        # sql_above=-1: every layer is answered in SQL, as a layer larger than GEOAPP_SQL_ABOVE is
        readers["sql"] = MemIndex(store, sql=store.sql_reader(), sql_above=-1)
        assert readers["sql"]._in_sql("construction_hoardings") and not readers["memory"]._in_sql("underground_spaces")
    frames = {layer_id: _read_back(location, layer_id) for layer_id in ("construction_hoardings", "underground_spaces")}
    yield location, readers, frames, store
    store.close()
    if backend == "postgis":
        request.getfixturevalue("postgres").drop(location)


def _ids(reader, layer_id: str, query: Query, visibility="internal") -> list[int]:
    return reader.select(layer_id, query, 0, EVERYTHING, visibility).ids


def _prop(name):
    return {"property": name}


def _notna(s):
    return s.notna().to_numpy(dtype=bool)


def _ascii_lower(s):
    return s.str.translate(str.maketrans(string.ascii_uppercase, string.ascii_lowercase))


# (CQL2 text, the same in CQL2 JSON, the expected mask from the frame read back)
HOARDINGS = [
    ("status = 'removed'", {"op": "=", "args": [_prop("status"), "removed"]}, lambda f: f.status == "removed"),
    ("'removed' <> status", {"op": "<>", "args": ["removed", _prop("status")]}, lambda f: f.status != "removed"),
    ("length_m > 150", {"op": ">", "args": [_prop("length_m"), 150]}, lambda f: f.length_m > 150),
    (
        "length_m BETWEEN 100 AND 200.5",
        {"op": "between", "args": [_prop("length_m"), 100, 200.5]},
        lambda f: (f.length_m >= 100) & (f.length_m <= 200.5),
    ),
    (
        "due_on < DATE('2023-06-01')",
        {"op": "<", "args": [_prop("due_on"), {"date": "2023-06-01"}]},
        lambda f: _notna(f.due_on) & (f.due_on.fillna("9") < "2023-06-01"),
    ),
    ("due_on IS NULL", {"op": "isNull", "args": [_prop("due_on")]}, lambda f: f.due_on.isna()),
    (
        "due_on IS NOT NULL AND due_on >= DATE('2023-10-01')",
        {
            "op": "and",
            "args": [
                {"op": "not", "args": [{"op": "isNull", "args": [_prop("due_on")]}]},
                {"op": ">=", "args": [_prop("due_on"), {"date": "2023-10-01"}]},
            ],
        },
        lambda f: _notna(f.due_on) & (f.due_on.fillna("") >= "2023-10-01"),
    ),
    (
        # three-valued logic: NOT of a comparison with a missing date is not true
        "NOT (due_on < DATE('2023-06-01'))",
        {"op": "not", "args": [{"op": "<", "args": [_prop("due_on"), {"date": "2023-06-01"}]}]},
        lambda f: _notna(f.due_on) & (f.due_on.fillna("") >= "2023-06-01"),
    ),
    (
        "NOT treatment IN ('levelled')",
        {"op": "not", "args": [{"op": "in", "args": [_prop("treatment"), ["levelled"]]}]},
        lambda f: _notna(f.treatment) & (f.treatment != "levelled"),
    ),
    (
        "treatment IN ('levelled', 'greened') OR agency = 'housing'",
        {
            "op": "or",
            "args": [
                {"op": "in", "args": [_prop("treatment"), ["levelled", "greened"]]},
                {"op": "=", "args": [_prop("agency"), "housing"]},
            ],
        },
        lambda f: f.treatment.isin(["levelled", "greened"]) | (f.agency == "housing"),
    ),
    (
        "NOT (treatment = 'levelled' OR due_on < DATE('2023-03-01'))",
        {
            "op": "not",
            "args": [
                {
                    "op": "or",
                    "args": [
                        {"op": "=", "args": [_prop("treatment"), "levelled"]},
                        {"op": "<", "args": [_prop("due_on"), {"date": "2023-03-01"}]},
                    ],
                }
            ],
        },
        lambda f: (
            (_notna(f.treatment) & (f.treatment != "levelled"))
            & (_notna(f.due_on) & (f.due_on.fillna("") >= "2023-03-01"))
        ),
    ),
    ("site LIKE '%路%'", {"op": "like", "args": [_prop("site"), "%路%"]}, lambda f: f.site.str.contains("路")),
    ("site LIKE '_oad%'", {"op": "like", "args": [_prop("site"), "_oad%"]}, lambda f: f.site.str.match(r"^.oad")),
    (
        "site LIKE '100\\%%'",
        {"op": "like", "args": [_prop("site"), "100\\%%"]},
        lambda f: f.site.str.startswith("100%"),
    ),
    (
        "site NOT LIKE '%fence'",
        {"op": "not", "args": [{"op": "like", "args": [_prop("site"), "%fence"]}]},
        lambda f: ~f.site.str.endswith("fence"),
    ),
    (
        "CASEI(site) LIKE CASEI('ROAD%')",
        {"op": "like", "args": [{"op": "casei", "args": [_prop("site")]}, {"op": "casei", "args": ["ROAD%"]}]},
        lambda f: _ascii_lower(f.site).str.startswith("road"),
    ),
    (
        "site ILIKE 'road%'",  # CQL1, as GDAL sends it
        {"op": "like", "args": [{"op": "casei", "args": [_prop("site")]}, {"op": "casei", "args": ["road%"]}]},
        lambda f: _ascii_lower(f.site).str.startswith("road"),
    ),
    (
        "CASEI(site) = casei('road b FENCE')",
        {"op": "=", "args": [{"op": "casei", "args": [_prop("site")]}, {"op": "casei", "args": ["road b FENCE"]}]},
        lambda f: _ascii_lower(f.site) == "road b fence",
    ),
    (
        # CASEI folds A-Z only, in memory and in any database locale alike: Ä stays
        "CASEI(site) IN (CASEI('äRGER road'), CASEI('Ärger ROAD'))",
        {
            "op": "in",
            "args": [
                {"op": "casei", "args": [_prop("site")]},
                [{"op": "casei", "args": ["äRGER road"]}, {"op": "casei", "args": ["Ärger ROAD"]}],
            ],
        },
        lambda f: _ascii_lower(f.site) == "Ärger road",
    ),
    (
        "site = 'x''; DROP TABLE construction_hoardings; --'",
        {"op": "=", "args": [_prop("site"), INJECTION]},
        lambda f: f.site == INJECTION,
    ),
    ("site > 'Road'", {"op": ">", "args": [_prop("site"), "Road"]}, lambda f: f.site > "Road"),  # code point order
    (
        "S_INTERSECTS(geometry, POLYGON((113.28 33.715, 113.31 33.715, 113.31 33.74, 113.28 33.74, 113.28 33.715)))",
        {"op": "s_intersects", "args": [_prop("geometry"), shapely.geometry.mapping(AREA)]},
        lambda f: f.intersects(AREA),
    ),
    (
        "S_WITHIN(geometry, POLYGON((113.28 33.715, 113.31 33.715, 113.31 33.74, 113.28 33.74, 113.28 33.715)))",
        {"op": "s_within", "args": [_prop("geometry"), shapely.geometry.mapping(AREA)]},
        lambda f: f.within(AREA),
    ),
    (
        "S_DISJOINT(geometry, BBOX(113.28, 33.715, 113.31, 33.74))",
        {"op": "s_disjoint", "args": [_prop("geometry"), {"bbox": [113.28, 33.715, 113.31, 33.74]}]},
        lambda f: f.disjoint(AREA),
    ),
    (
        "BBOX(geometry, 113.28, 33.715, 113.31, 33.74) AND status = 'pending'",
        {
            "op": "and",
            "args": [
                {"op": "s_intersects", "args": [_prop("geometry"), {"bbox": [113.28, 33.715, 113.31, 33.74]}]},
                {"op": "=", "args": [_prop("status"), "pending"]},
            ],
        },
        lambda f: f.intersects(AREA) & (f.status == "pending"),
    ),
    (
        "S_CROSSES(geometry, LINESTRING(113.27 33.73, 113.33 33.73))",
        {
            "op": "s_crosses",
            "args": [_prop("geometry"), {"type": "LineString", "coordinates": [[113.27, 33.73], [113.33, 33.73]]}],
        },
        lambda f: f.crosses(shapely.LineString([(113.27, 33.73), (113.33, 33.73)])),
    ),
    (
        "S_OVERLAPS(geometry, POLYGON((113.28 33.715, 113.31 33.715, 113.31 33.74, 113.28 33.74, 113.28 33.715)))",
        {"op": "s_overlaps", "args": [_prop("geometry"), shapely.geometry.mapping(AREA)]},
        lambda f: f.overlaps(AREA),
    ),
    (
        "T_INTERSECTS(due_on, INTERVAL('2023-03-01', '2023-05-31'))",
        {"op": "t_intersects", "args": [_prop("due_on"), {"interval": ["2023-03-01", "2023-05-31"]}]},
        lambda f: _notna(f.due_on) & f.due_on.fillna("").between("2023-03-01", "2023-05-31"),
    ),
    (
        "T_AFTER(due_on, DATE('2023-11-30'))",
        {"op": "t_after", "args": [_prop("due_on"), {"date": "2023-11-30"}]},
        lambda f: _notna(f.due_on) & (f.due_on.fillna("") > "2023-11-30"),
    ),
    (
        "T_BEFORE(due_on, TIMESTAMP('2023-02-01T00:00:00Z'))",
        {"op": "t_before", "args": [_prop("due_on"), {"timestamp": "2023-02-01T00:00:00Z"}]},
        lambda f: _notna(f.due_on) & (f.due_on.fillna("9") < "2023-02-01"),
    ),
    (
        "T_DURING(due_on, INTERVAL('2023-12-01', '..'))",
        {"op": "t_during", "args": [_prop("due_on"), {"interval": ["2023-12-01", ".."]}]},
        lambda f: _notna(f.due_on) & (f.due_on.fillna("") > "2023-12-01"),
    ),
    (
        "contractor = '甲建设公司' OR contractor IS NULL",
        {
            "op": "or",
            "args": [
                {"op": "=", "args": [_prop("contractor"), "甲建设公司"]},
                {"op": "isNull", "args": [_prop("contractor")]},
            ],
        },
        lambda f: (f.contractor == "甲建设公司") | f.contractor.isna(),
    ),
    ("TRUE", True, lambda f: np.ones(len(f), bool)),
    (
        "NOT (treatment IN ('levelled') AND FALSE)",  # false AND unknown is false: NOT makes it true
        {
            "op": "not",
            "args": [{"op": "and", "args": [{"op": "in", "args": [_prop("treatment"), ["levelled"]]}, False]}],
        },
        lambda f: np.ones(len(f), bool),
    ),
    (
        "treatment IN ('levelled') OR TRUE",  # unknown OR true is true
        {"op": "or", "args": [{"op": "in", "args": [_prop("treatment"), ["levelled"]]}, True]},
        lambda f: np.ones(len(f), bool),
    ),
    ("EXCLUDE", False, lambda f: np.zeros(len(f), bool)),
]
SPACES = [
    ("entrances >= 3", {"op": ">=", "args": [_prop("entrances"), 3]}, lambda f: f.entrances >= 3),
    (
        "entrances IN (1, 2) AND barriers_fitted = TRUE",
        {
            "op": "and",
            "args": [
                {"op": "in", "args": [_prop("entrances"), [1, 2]]},
                {"op": "=", "args": [_prop("barriers_fitted"), True]},
            ],
        },
        lambda f: f.entrances.isin([1, 2]) & (f.barriers_fitted == True),  # noqa: E712
    ),
    (
        "NOT barriers_fitted = FALSE",
        {"op": "not", "args": [{"op": "=", "args": [_prop("barriers_fitted"), False]}]},
        lambda f: f.barriers_fitted.notna() & (f.barriers_fitted == True),  # noqa: E712
    ),
    (
        "entrances <> 0 OR entrances IS NULL",
        {
            "op": "or",
            "args": [
                {"op": "<>", "args": [_prop("entrances"), 0]},
                {"op": "isNull", "args": [_prop("entrances")]},
            ],
        },
        lambda f: (f.entrances != 0) | f.entrances.isna(),
    ),
    (
        "S_INTERSECTS(geometry, POINT(113.3 33.73)) OR S_WITHIN(geometry, POLYGON((113.28 33.715, 113.31 33.715, "
        "113.31 33.74, 113.28 33.74, 113.28 33.715)))",
        {
            "op": "or",
            "args": [
                {"op": "s_intersects", "args": [_prop("geometry"), {"type": "Point", "coordinates": [113.3, 33.73]}]},
                {"op": "s_within", "args": [_prop("geometry"), shapely.geometry.mapping(AREA)]},
            ],
        },
        lambda f: f.within(AREA),
    ),
]
CASES = [("construction_hoardings", *case) for case in HOARDINGS] + [("underground_spaces", *case) for case in SPACES]


def _expected(frames, layer_id, expect) -> list[int]:
    frame = frames[layer_id]
    mask = np.asarray(pd.Series(expect(frame)).fillna(False), dtype=bool)
    return frame.index[mask].astype(int).tolist()


@pytest.mark.parametrize(("layer_id", "text", "as_json", "expect"), CASES, ids=[c[1][:60] for c in CASES])
def test_every_reader_matches_an_independent_computation(district, registry, layer_id, text, as_json, expect):
    _, readers, frames, _ = district
    layer = registry[layer_id]
    where = cql.parse(text, "cql2-text", layer, visibility="internal")
    # the JSON encoding of the same filter reads into the same tree
    assert cql.parse(json.dumps(as_json), "cql2-json", layer, visibility="internal") == where
    expected = _expected(frames, layer_id, expect)
    for name, reader in readers.items():
        assert _ids(reader, layer_id, Query(where=where)) == expected, name


def test_the_sample_is_not_trivial(district):
    """The filters above select some features and leave others: they can fail."""
    _, _, frames, _ = district
    for layer_id, text, _, expect in CASES:
        if text in ("TRUE", "EXCLUDE") or "POINT(113.3 33.73)" in text or text.endswith(("AND FALSE)", "OR TRUE")):
            continue
        found = len(_expected(frames, layer_id, expect))
        assert 0 < found < len(frames[layer_id]), text


def test_the_injection_looking_value_is_just_a_value_and_the_table_stays(district, registry):
    location, readers, frames, _ = district
    layer = registry["construction_hoardings"]
    where = cql.parse(f"site = '{INJECTION.replace(chr(39), chr(39) * 2)}'", "cql2-text", layer, visibility="public")
    expected = _expected(frames, "construction_hoardings", lambda f: f.site == INJECTION)
    assert expected
    for reader in readers.values():
        assert _ids(reader, "construction_hoardings", Query(where=where), "public") == expected
    assert execute(location, "SELECT count(*) FROM construction_hoardings")[0][0] == len(
        frames["construction_hoardings"]
    )


def test_where_combines_with_bbox_and_filters_and_pages_count_only_matches(district, registry):
    _, readers, frames, _ = district
    layer = registry["construction_hoardings"]
    where = cql.parse("length_m < 250 OR due_on IS NULL", "cql2-text", layer, visibility="public")
    box = (113.28, 33.715, 113.31, 33.74)
    query = Query(bbox=box, filters={"status": ["pending", "removed"]}, where=where)
    expected = _expected(
        frames,
        "construction_hoardings",
        lambda f: f.intersects(AREA) & f.status.isin(["pending", "removed"]) & ((f.length_m < 250) | f.due_on.isna()),
    )
    assert len(expected) > 20
    for name, reader in readers.items():
        seen, offset = [], 0
        while True:
            page = reader.select("construction_hoardings", query, offset, 7, "public")
            assert page.matched == len(expected), name
            seen += page.ids
            offset += 7
            if not page.more:
                break
        assert seen == expected, name
        # keyset pages (after=) walk the same matches
        seen, after = [], None
        while True:
            page = reader.select("construction_hoardings", Query(bbox=box, where=where, after=after), 0, 11, "public")
            seen += page.ids
            if not page.more:
                break
            after = page.ids[-1]
        assert seen == _expected(
            frames, "construction_hoardings", lambda f: f.intersects(AREA) & ((f.length_m < 250) | f.due_on.isna())
        ), name


def test_an_edit_is_filtered_too(district, registry):
    """A feature changed since the in-memory base sits in the overlay: the filter applies there as well."""
    _, readers, frames, store = district
    try:
        fid = int(frames["construction_hoardings"].index[0])
        feature = store.get("construction_hoardings", fid)
        where = cql.parse("site = '改过的围挡'", "cql2-text", registry["construction_hoardings"], visibility="public")
        for reader in readers.values():
            assert _ids(reader, "construction_hoardings", Query(where=where)) == []
        store.update(
            "construction_hoardings",
            fid,
            {"site": "改过的围挡"},
            expected_version=feature.version,
            actor=ACTOR,
        )
        for reader in readers.values():
            assert _ids(reader, "construction_hoardings", Query(where=where)) == [fid]
    finally:
        store.update(
            "construction_hoardings",
            fid,
            {"site": feature.properties["site"]},
            expected_version=feature.version + 1,
            actor=ACTOR,
        )


def test_a_filter_in_a_projected_crs_is_converted_to_lon_lat(district, registry):
    _, readers, frames, _ = district
    layer = registry["construction_hoardings"]
    gk = parse_crs("EPSG:4547")
    from geoapp.core.crs import from_storage

    projected = from_storage(AREA, gk)
    northing_first = shapely.transform(projected, lambda coords: coords[:, ::-1])  # EPSG:4547's own axis order
    where = cql.parse(
        f"S_INTERSECTS(geometry, {northing_first.wkt})", "cql2-text", layer, visibility="public", filter_crs=gk
    )
    assert where.geometry.equals_exact(to_storage(projected, gk), 1e-9)
    # EPSG:4326 is latitude first too; CRS84 longitude first
    lat_lon = shapely.transform(AREA, lambda coords: coords[:, ::-1])
    as_4326 = cql.parse(
        f"S_INTERSECTS(geometry, {lat_lon.wkt})",
        "cql2-text",
        layer,
        visibility="public",
        filter_crs=parse_crs("EPSG:4326"),
    )
    assert as_4326.geometry.equals_exact(AREA, 1e-9)
    expected = _expected(frames, "construction_hoardings", lambda f: f.intersects(where.geometry))
    for reader in readers.values():
        assert _ids(reader, "construction_hoardings", Query(where=where)) == expected


# -- refusals (no store needed) ----------------------------------------------------------------------


def _refusal(registry, text, lang="cql2-text", visibility="public", layer_id="construction_hoardings") -> str:
    with pytest.raises(InvalidParameter) as caught:
        cql.parse(text, lang, registry[layer_id], visibility=visibility)
    assert caught.value.parameter == "filter", caught.value.message
    return caught.value.message


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("nosuch = 'x'", "unknown property 'nosuch'"),
        ("site = 5", "'site' is compared with text"),
        ("length_m = 'long'", "'length_m' is compared with a number"),
        ("due_on = 'soon'", "'due_on' is compared with a date"),
        ("due_on > DATE('2023-13-01')", "not a date"),
        ("length_m LIKE '1%'", "LIKE applies to text"),
        ("status BETWEEN 'a' AND 'b'", "BETWEEN applies to numbers and dates"),
        ("status = ", "expected a property name or a value"),
        ("status == 'x'", "expected a property name or a value"),
        ("status = 'x' AND", "expected a property name or a value"),
        ("(status = 'x'", "expected ')'"),
        ("status = 'x')", "expected AND, OR or the end"),
        ("status = 'unterminated", "unexpected character"),
        ("length_m + 1 > 3", "arithmetic is not supported"),
        ("foo(site) = 'x'", "unsupported function 'foo'"),
        ("site = agency", "comparing two properties is not supported"),
        ("S_INTERSECTS(site, POINT(1 2))", "applies to the property geometry"),
        ("S_INTERSECTS(geometry, 'x')", "with a geometry"),
        ("S_INTERSECTS(geometry, POLYGON((0 0, 1 1, 1 0, 0 1, 0 0)))", "not valid"),
        ("S_INTERSECTS(geometry, POLYGON((0 0, 1 1)))", "not a valid WKT"),
        ("BBOX(geometry, 3, 0, 1, 1)", "minx <= maxx"),
        ("T_BEFORE(length_m, DATE('2023-01-01'))", "applies to dates"),
        ("T_DURING(due_on, DATE('2023-01-01'))", "needs an interval"),
        ("due_on = TIMESTAMP('2023-01-01T12:00:00Z')", "holds dates"),
        ("CASEI(length_m) = 3", "CASEI applies to text"),
        ("site LIKE 'abc\\'", "must not end with the escape character"),
        ("site = 'a\x00b'", "NUL"),
        ("site LIKE '" + "_" * 201 + "'", "at most 200 characters"),
        ("length_m > 1" + "0" * 5000, "too long"),
        ("length_m > 1e999", "too large"),
        ("S_INTERSECTS(geometry, GEOMETRYCOLLECTION(POINT(1 2)))", "GEOMETRYCOLLECTION is not supported"),
        ("S_INTERSECTS(geometry, POINT(1 2)) AND S_WITHIN(POINT(1 2), POINT(1 2))", "compares the property geometry"),
    ],
)
def test_bad_text_filters_are_refused_naming_the_problem(registry, text, says):
    assert says in _refusal(registry, text)


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ("{", "not valid JSON"),
        ('{"op": "s_relate", "args": []}', "unsupported operator 's_relate'"),
        ('{"op": "=", "args": [{"property": "site"}]}', "needs 2 arguments"),
        ('{"op": "in", "args": [{"property": "site"}, "x"]}', "an array of values"),
        ('{"op": "=", "args": [{"property": "nosuch"}, 1]}', "unknown property 'nosuch'"),
        ('{"op": "=", "args": [{"property": "site"}, {"op": "upper", "args": ["x"]}]}', "unsupported function"),
        (
            '{"op": "s_intersects", "args": [{"property": "geometry"}, {"type": "Point", "coordinates": []}]}',
            "geometry",
        ),
        ('"status"', "expected a predicate"),
        ('{"op": ">", "args": [{"property": "length_m"}, 1' + "0" * 400 + "]}", "too large"),
        ('{"op": ">", "args": [{"property": "length_m"}, 1' + "0" * 5000 + "]}", "not valid JSON"),
    ],
)
def test_bad_json_filters_are_refused_naming_the_problem(registry, given, says):
    assert says in _refusal(registry, given, "cql2-json")


def test_an_internal_property_is_refused_for_the_public_exactly_as_an_unknown_one(registry):
    internal = _refusal(registry, "contractor = 'x'")
    unknown = _refusal(registry, "zzzzzzzzzz = 'x'")
    assert internal.replace("contractor", "?") == unknown.replace("zzzzzzzzzz", "?")
    assert "notes" not in internal  # the list of queryable properties holds public ones only
    # staff may name it
    layer = registry["construction_hoardings"]
    assert cql.parse("contractor = 'x'", "cql2-text", layer, visibility="internal") == cql.Compare(
        "contractor", "=", "x"
    )


def test_an_unknown_filter_language_is_refused(registry):
    with pytest.raises(InvalidParameter) as caught:
        cql.parse("status = 'x'", "ecql", registry["construction_hoardings"], visibility="public")
    assert caught.value.parameter == "filter-lang" and "cql2-text, cql2-json" in caught.value.message


@pytest.mark.parametrize(
    ("text", "lang", "says"),
    [
        ("(" * 5000 + "status = 'x'" + ")" * 5000, "cql2-text", "too long"),
        ("(" * 1000 + "status = 'x'" + ")" * 1000, "cql2-text", "nested too deeply"),
        ("NOT " * 1500 + "status = 'x'", "cql2-text", "nested too deeply"),
        (" OR ".join(["status = 'x'"] * 300), "cql2-text", "too many terms"),
        (" OR ".join(["site LIKE '%x%'"] * 11), "cql2-text", "too many LIKE and spatial predicates"),
        (" OR ".join(["BBOX(geometry, 1, 2, 3, 4)"] * 11), "cql2-text", "too many LIKE and spatial predicates"),
        ("status IN (" + ", ".join(["'x'"] * 1500) + ")", "cql2-text", "too many terms"),
        ('{"op": "not", "args": [' * 100 + "true" + "]}" * 100, "cql2-json", "nested too deeply"),
        ("[" * 4000 + "]" * 4000, "cql2-json", "nested too deeply"),
        ("x" * 100_000, "cql2-text", "too long"),
    ],
)
def test_huge_or_deeply_nested_filters_are_refused(registry, text, lang, says):
    assert says in _refusal(registry, text, lang)


def test_too_many_vertices_are_refused_even_in_decoded_json(registry):
    ring = shapely.Point(113.3, 33.73).buffer(0.01, quad_segs=4000)
    decoded = {"op": "s_intersects", "args": [{"property": "geometry"}, shapely.geometry.mapping(ring)]}
    with pytest.raises(InvalidParameter, match="too many vertices"):
        cql.parse(decoded, "cql2-json", registry["construction_hoardings"], visibility="public")
    nested = {"op": "not", "args": [True]}
    for _ in range(100):
        nested = {"op": "not", "args": [nested]}
    with pytest.raises(InvalidParameter, match="nested too deeply"):
        cql.parse(nested, "cql2-json", registry["construction_hoardings"], visibility="public")


def test_queryables_is_a_self_contained_schema_of_the_visible_fields(registry):
    layer = registry["construction_hoardings"]
    public = cql.queryables(layer, visibility="public", id="http://x/ogc/collections/construction_hoardings/queryables")
    assert public["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert public["$id"].endswith("/queryables") and public["type"] == "object"
    props = public["properties"]
    assert props["geometry"]["format"] == "geometry-any"  # lines and polygons
    assert props["status"] == {
        "title": "状态",
        "description": "Status",
        "type": "string",
        "enum": ["pending", "in_progress", "removed", "under_construction"],
    }
    assert props["due_on"]["type"] == "string" and props["due_on"]["format"] == "date"
    assert props["length_m"]["type"] == "number"
    assert "contractor" not in props and "notes" not in props
    assert "$ref" not in json.dumps(public)
    staff = cql.queryables(layer, visibility="internal")
    assert {"contractor", "notes"} <= set(staff["properties"])
    spaces = cql.queryables(registry["underground_spaces"], visibility="public")["properties"]
    assert spaces["entrances"]["type"] == "integer" and spaces["barriers_fitted"]["type"] == "boolean"
    assert cql.queryables(registry["heating_stations"], visibility="public")["properties"]["geometry"]["format"] == (
        "geometry-point"
    )
    # every queryable property parses in a filter, and nothing else does
    for name in props:
        if name == "geometry":
            cql.parse("S_INTERSECTS(geometry, POINT(113.3 33.73))", "cql2-text", layer, visibility="public")
        else:
            cql.parse(f"{name} IS NULL", "cql2-text", layer, visibility="public")
    for name in {f.name for f in layer.fields} - set(props):
        with pytest.raises(InvalidParameter, match="unknown property"):
            cql.parse(f"{name} IS NULL", "cql2-text", layer, visibility="public")


def test_like_matches_as_a_regular_expression_would(registry):
    """The LIKE test (no backtracking) agrees with a regular expression on random patterns and texts."""
    import random
    import re

    def reference(pattern):
        out, chars = [], iter(pattern)
        for c in chars:
            out.append(re.escape(next(chars, "\\")) if c == "\\" else {"%": ".*", "_": "."}.get(c, re.escape(c)))
        return re.compile("".join(out), re.DOTALL)

    rng = random.Random(5)
    for _ in range(5000):
        pattern = "".join(rng.choice("ab路%_\\") for _ in range(rng.randint(0, 7)))
        text = "".join(rng.choice("ab路%_\\") for _ in range(rng.randint(0, 9)))
        assert cql.like_matcher(pattern)(text) == (reference(pattern).fullmatch(text) is not None), (pattern, text)


def test_a_pathological_like_pattern_is_answered(district, registry):
    """'%a%a%a...%b' takes a backtracking regular expression exponential time on a long text of a's; the LIKE
    test answers at once, and so does every reader."""
    pattern = "%a" * 99 + "%b"
    assert cql.like_matcher(pattern)("a" * 2000) is False
    assert cql.like_matcher(pattern)("a" * 2000 + "b") is True
    _, readers, _, _ = district
    layer = registry["construction_hoardings"]
    where = cql.parse(f"site LIKE '{pattern}'", "cql2-text", layer, visibility="public")
    for reader in readers.values():
        assert _ids(reader, "construction_hoardings", Query(where=where)) == []


def test_spatial_functions_against_the_layers_own_geometries(district, registry):
    """S_EQUALS, S_CONTAINS and S_TOUCHES on literals taken from stored features (so that they hold for some)."""
    _, readers, frames, _ = district
    layer = registry["construction_hoardings"]
    frame = frames["construction_hoardings"]
    polygons = frame[frame.geom_type == "Polygon"]
    target = polygons.geometry.iloc[0]
    inside = target.representative_point()
    corner = shapely.box(*target.bounds).exterior.coords[0]
    neighbour = shapely.box(corner[0], corner[1], corner[0] + 0.001, corner[1] + 0.001)
    lines = frame[frame.geom_type == "LineString"]
    line = lines.geometry.iloc[0]
    checks = [
        (f"S_EQUALS(geometry, {target.wkt})", lambda f: f.geom_equals(target)),
        (f"S_CONTAINS(geometry, {inside.wkt})", lambda f: f.contains(inside)),
        (f"S_WITHIN({inside.wkt}, geometry)", lambda f: f.contains(inside)),  # the same, written the other way
        (f"S_TOUCHES(geometry, {neighbour.wkt})", lambda f: f.touches(neighbour)),
        (
            f"S_INTERSECTS(geometry, {line.wkt}) AND NOT S_EQUALS(geometry, {line.wkt})",
            lambda f: f.intersects(line) & ~f.geom_equals(line),
        ),
    ]
    for text, expect in checks:
        where = cql.parse(text, "cql2-text", layer, visibility="public")
        expected = _expected(frames, "construction_hoardings", expect)
        assert expected, text
        for name, reader in readers.items():
            assert _ids(reader, "construction_hoardings", Query(where=where)) == expected, (name, text)


def test_an_empty_in_list_selects_nothing(district, registry):
    _, readers, _, _ = district
    for layer_id, name in (
        ("construction_hoardings", "site"),
        ("construction_hoardings", "due_on"),
        ("underground_spaces", "entrances"),
    ):
        where = cql.parse(
            {"op": "in", "args": [{"property": name}, []]}, "cql2-json", registry[layer_id], visibility="public"
        )
        for reader in readers.values():
            assert _ids(reader, layer_id, Query(where=where)) == []


def test_where_keeps_the_distance_order_of_near_and_nearest(district, registry):
    """With a point query the filter removes features from the distance-ordered result and keeps the order
    (the radius and k-nearest searches themselves are checked against brute force in test_spatial.py)."""
    _, readers, frames, _ = district
    layer = registry["construction_hoardings"]
    where = cql.parse("status IN ('pending', 'removed') OR due_on IS NULL", "cql2-text", layer, visibility="public")
    keep = set(
        _expected(frames, "construction_hoardings", lambda f: f.status.isin(["pending", "removed"]) | f.due_on.isna())
    )
    for name, reader in readers.items():
        near = _ids(reader, "construction_hoardings", Query(near=(113.30, 33.73, 1500)))
        assert _ids(reader, "construction_hoardings", Query(near=(113.30, 33.73, 1500), where=where)) == [
            fid for fid in near if fid in keep
        ], name
        nearest = _ids(reader, "construction_hoardings", Query(nearest=(113.30, 33.73, 15), where=where))
        everything = _ids(reader, "construction_hoardings", Query(nearest=(113.30, 33.73, 600)))
        assert nearest == [fid for fid in everything if fid in keep][:15], name
