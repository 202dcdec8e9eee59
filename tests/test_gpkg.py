"""What is particular to the GeoPackage store: a file GDAL and QGIS read and write beside geoapp.

Other tools are run as other processes (as QGIS or ogr2ogr would be), writing the same file with
GDAL or with plain SQL; the app's reader must see their changes on its next read and tolerate rows
its definitions do not admit.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
import textwrap
import threading

import pyogrio
import pytest
import shapely

from geoapp.errors import StoreBusy
from geoapp.store import create_store, open_store
from geoapp.store.base import Actor, Query
from geoapp.store.gpkg import GeoPackageStore, decode, encode
from geoapp.store.memindex import MemIndex

ACTOR = Actor("tester", "cli", roles=frozenset({"admin"}))


def other_tool(script: str) -> None:
    """Run a script as another process (GDAL through pyogrio, or plain sqlite3) against the store."""
    subprocess.run([sys.executable, "-c", textwrap.dedent(script)], check=True, timeout=120)


@pytest.fixture
def demo_store(registry, database):
    store = open_store(registry, str(database))
    yield store
    store.close()


def test_blob_round_trip_keeps_geometry_and_envelope():
    for geom in (
        shapely.Point(113.3, 33.7),
        shapely.LineString([(113.3, 33.7), (113.4, 33.8)]),
        shapely.Polygon([(0, 0), (1, 0), (1, 1)]),
    ):
        assert decode(encode(geom)).equals(geom)


def test_gdal_reads_every_layer_after_an_update(demo_store, registry):
    store = demo_store
    moved = shapely.LineString([(113.320, 33.750), (113.323, 33.750)])
    site = store.get("construction_hoardings", 1).properties["site"]
    version = store.get("construction_hoardings", 1).version
    store.update(
        "construction_hoardings", 1, {"status": "removed"}, geometry=moved, expected_version=version, actor=ACTOR
    )
    store.insert("waterlogging_points", {"name": "新点", "road": "人民路"}, shapely.Point(113.36, 33.77), actor=ACTOR)
    counts = {layer.id: len(store.load(layer.id).fids) for layer in registry}
    store.close()  # GDAL carries its own SQLite: never let it share the file with open connections
    for layer in registry:
        assert len(pyogrio.read_dataframe(store.path, layer=layer.id)) == counts[layer.id]
    hoardings = pyogrio.read_dataframe(store.path, layer="construction_hoardings", fid_as_index=True)
    assert hoardings.loc[1, "status"] == "removed"
    assert hoardings.loc[1, "geometry"].equals(moved)
    # GDAL's spatial index follows the edit: a spatial filter finds the moved feature where it now is
    found = pyogrio.read_dataframe(store.path, layer="construction_hoardings", bbox=(113.319, 33.749, 113.324, 33.751))
    assert found["site"].tolist() == [site]
    info = pyogrio.read_info(store.path, layer="waterlogging_points")
    assert info["total_bounds"][2] == pytest.approx(113.36)


def test_gis_readers_see_the_layers_but_no_accounts_or_audit(demo_store, registry):
    demo_store.add_user("admin1", "$argon2id$v=19$secret", ("admin",), actor=ACTOR)
    demo_store.close()
    listed = {name for name, _ in pyogrio.list_layers(demo_store.path)}
    assert listed == {*registry.ids, "geoapp_meta"}


def test_the_store_file_is_readable_by_its_owner_only(registry, tmp_path):
    store = create_store(registry, str(tmp_path / "new.gpkg"))
    store.close()
    assert stat.S_IMODE(os.stat(tmp_path / "new.gpkg").st_mode) == 0o600


def test_insert_or_replace_cannot_overwrite_an_audit_row(demo_store):
    demo_store.record(ACTOR, "login")
    entry = demo_store.audit()[-1]
    conn = sqlite3.connect(demo_store.path)
    with pytest.raises(sqlite3.DatabaseError, match="audit trail cannot be changed"):
        conn.execute(
            "INSERT OR REPLACE INTO geoapp_audit (id, at, actor, actor_kind, action, changes) "
            "VALUES (?, 'x', 'forger', 'user', 'nothing', '{}')",
            (entry.id,),
        )
    conn.close()
    assert demo_store.audit()[-1] == entry


def test_edits_by_other_tools_reach_the_reader_on_its_next_read(demo_store):
    reader = MemIndex(demo_store)
    before = reader.select("waterlogging_points", Query(), 0, 1000)
    base = reader.snapshot("waterlogging_points").base
    # QGIS through GDAL appends a point (without geoapp's _version) ...
    other_tool(
        f"""
        import geopandas as gpd, pyogrio, shapely
        gdf = gpd.GeoDataFrame({{"name": ["QGIS 新点"], "road": ["建设路"], "status": ["dry"]}},
                               geometry=[shapely.Point(113.301, 33.732)], crs="EPSG:4326")
        pyogrio.write_dataframe(gdf, {str(demo_store.path)!r}, layer="waterlogging_points", append=True)
        """
    )
    # ... and a script changes an attribute with plain SQL, leaving _version as it was
    other_tool(
        f"""
        import sys
        sys.path.insert(0, {os.getcwd()!r})
        from pathlib import Path
        from geoapp.store.gpkg import _connect  # the R-tree triggers call ST_* functions, as GDAL has them
        conn = _connect(Path({str(demo_store.path)!r}))
        conn.execute("UPDATE waterlogging_points SET status = 'flooded' WHERE fid = 1")
        """
    )
    after = reader.select("waterlogging_points", Query(), 0, 1000)
    assert after.matched == before.matched + 1
    assert after.version > before.version
    added = reader.get("waterlogging_points", after.ids[-1])
    assert added.properties["name"] == "QGIS 新点" and added.version == 1
    changed = reader.get("waterlogging_points", 1)
    assert changed.properties["status"] == "flooded"
    assert changed.version == before_version(before, 1) + 1  # the trigger raised it: If-Match stays meaningful
    assert reader.snapshot("waterlogging_points").base is base  # a delta, not a reload


def before_version(page, fid: int) -> int:
    import orjson

    return next(orjson.loads(f)["version"] for f in page.features if orjson.loads(f)["id"] == fid)


def test_rows_the_definition_does_not_admit_are_tolerated_and_reported(demo_store, client):
    other_tool(
        f"""
        import sqlite3, sys
        sys.path.insert(0, {os.getcwd()!r})
        from pathlib import Path
        from geoapp.store.gpkg import _connect  # the R-tree triggers call ST_* functions, as GDAL has them
        conn = _connect(Path({str(demo_store.path)!r}))
        conn.execute("INSERT INTO heating_stations (geom, name, _version) VALUES (NULL, '无坐标', NULL)")
        conn.execute("UPDATE heating_stations SET converted_to_direct = 'yes', status = 'abc' WHERE fid = 3")
        conn.execute("UPDATE heating_stations SET _version = NULL WHERE fid = 4")
        """
    )
    for url in ("/api/layers", "/api/stats", "/api/search?q=换热站", "/api/layers/heating_stations/features"):
        assert client.get(url).status_code == 200, url
    reader = MemIndex(demo_store)
    problems = reader.summary()["heating_stations"].problems
    assert {(p.field, p.message) for p in problems} >= {
        ("geometry", "no geometry"),
        ("converted_to_direct", "not a boolean"),
    }
    assert any(p.fid == 3 and p.field == "status" for p in problems)
    assert reader.get("heating_stations", 3).properties["converted_to_direct"] is None
    # an edit after such rows still answers, and the feature without a version counts as version 1
    feature = demo_store.update("heating_stations", 4, {"name": "改名站"}, expected_version=1, actor=ACTOR)
    assert feature.version == 2
    assert client.get("/api/layers/heating_stations/features?limit=1000").status_code == 200


def test_a_writer_holding_the_lock_makes_edits_answer_busy(demo_store, registry):
    impatient = GeoPackageStore(registry, str(demo_store.path), busy_timeout=0.2)
    holder = sqlite3.connect(demo_store.path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreBusy) as info:
            impatient.record(ACTOR, "login")
        assert info.value.status == 503 and info.value.retry_after
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        impatient.close()


def test_a_held_lock_answers_503_with_retry_after_over_http(app, client, users, database):
    from tests.conftest import login

    app.extensions["geoapp"].store.busy_timeout = 0.2
    app.extensions["geoapp"].store.close()  # connections are made again with the short timeout
    _, csrf = login(client, "planner")
    feature = client.get("/api/layers/construction_hoardings/features/1")
    holder = sqlite3.connect(database, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    done = threading.Event()
    try:
        response = client.patch(
            "/api/layers/construction_hoardings/features/1",
            json={"properties": {"status": "removed"}},
            headers={"If-Match": feature.headers["ETag"], "X-CSRFToken": csrf},
        )
        done.set()
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert done.is_set()
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "store_busy"
    assert int(response.headers["Retry-After"]) > 0


def test_a_store_of_the_previous_schema_gains_the_triggers_and_change_log_on_open(registry, database):
    # what an older geoapp made: no change log, no geoapp triggers, schema version 2
    conn = sqlite3.connect(database, isolation_level=None)
    found = conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'geoapp%'")
    triggers = [row[0] for row in found if not row[0].startswith("geoapp_audit")]
    for name in triggers:
        conn.execute(f'DROP TRIGGER "{name}"')
    conn.execute("DROP TABLE geoapp_changes")
    conn.execute("UPDATE geoapp_meta SET value = '2' WHERE key = 'schema_version'")
    conn.close()
    store = open_store(registry, str(database))
    try:
        reader = MemIndex(store)
        before = reader.select("waterlogging_points", Query(), 0, 1000)
        other_tool(
            f"""
            import sys
            sys.path.insert(0, {os.getcwd()!r})
            from pathlib import Path
            from geoapp.store.gpkg import _connect
            _connect(Path({str(database)!r})).execute("UPDATE waterlogging_points SET name = '改名' WHERE fid = 2")
            """
        )
        after = reader.select("waterlogging_points", Query(), 0, 1000)
        assert after.version > before.version
        assert reader.get("waterlogging_points", 2).properties["name"] == "改名"
    finally:
        store.close()
