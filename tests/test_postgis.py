"""What is particular to the PostGIS store: its schema and migrations, moving a district into it,
the append-only audit trail, edits by other tools, and several app servers on one database.

The store contract, the readers and the API run on both backends elsewhere (``backends`` marker).
"""

from __future__ import annotations

import json
import urllib.request

import psycopg
import pytest
import shapely

from geoapp.core.accounts import new_token
from geoapp.store import open_store
from geoapp.store.base import Query
from geoapp.store.memindex import MemIndex
from tests.conftest import PROJECT_ROOT, SETUP, start_server, stop_server

pytestmark = pytest.mark.backends("postgis")


def _sql(url: str, statement: str, params=()) -> list[tuple]:
    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(statement, params)
        return cur.fetchall() if cur.description else []


def test_db_upgrade_creates_the_schema_then_changes_nothing(runner, app, location, registry):
    app.extensions["geoapp"].database = location
    first = runner.invoke(args=["geoapp", "db", "upgrade"])
    assert first.exit_code == 0, first.output
    assert _sql(location, "SELECT version_num FROM geoapp_alembic_version") == [
        ("0004",)
    ]  # the newest revision: 0004, the public's reports
    for layer in registry:
        srid, kind = _sql(location, "SELECT srid, type FROM geometry_columns WHERE f_table_name = %s", (layer.id,))[0]
        assert srid == 4326
        assert kind == (layer.geometry[0].upper() if len(layer.geometry) == 1 else "GEOMETRY")
        indexes = _sql(location, "SELECT indexdef FROM pg_indexes WHERE tablename = %s", (layer.id,))
        assert any("USING gist (geom)" in row[0] for row in indexes), layer.id
    tables = _sql(location, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
    again = runner.invoke(args=["geoapp", "db", "upgrade"])
    assert again.exit_code == 0, again.output
    assert _sql(location, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == tables
    # the schema is there with no district yet: the app says how to make one, and init makes it
    opened = runner.invoke(args=["geoapp", "layers"])
    assert opened.exit_code != 0 and "geoapp init" in opened.output
    made = runner.invoke(args=["geoapp", "init", "--demo", "--if-missing"])
    assert made.exit_code == 0 and "synthetic demo district" in made.output, made.output
    store = open_store(registry, location)
    assert store.versions().keys() == set(registry.ids)
    store.close()


def test_an_unreachable_database_is_a_clear_error_not_a_traceback(runner, app):
    app.extensions["geoapp"].database = "postgresql://nobody@127.0.0.1:1/none"
    result = runner.invoke(args=["geoapp", "layers"])
    assert result.exit_code != 0
    assert "cannot connect to postgresql://nobody@127.0.0.1:1/none" in result.output
    assert "Traceback" not in result.output


def test_copy_moves_every_feature_version_account_and_audit_row(runner, app, registry, demo_gpkg, tmp_path, location):
    import shutil

    source_path = tmp_path / "district.gpkg"
    shutil.copy(demo_gpkg, source_path)
    source = open_store(registry, str(source_path))
    source.add_user("planner", "argon2-hash", ("planner",), actor=SETUP)
    _, digest = new_token()
    source.add_token("gauge-7", digest, ("sensor",), actor=SETUP)
    edited = source.update("construction_hoardings", 3, {"notes": "复查"}, expected_version=1, actor=SETUP)
    gone = source.get("manhole_covers", 5)
    source.delete("manhole_covers", 5, expected_version=gone.version, actor=SETUP)
    added = source.insert(
        "waterlogging_points",
        {"name": "新点", "road": "建设路", "status": "dry"},
        shapely.Point(113.3, 33.73),
        actor=SETUP,
    )
    expected = {layer_id: source.load(layer_id) for layer_id in registry.ids}
    versions, users, tokens, audit = source.versions(), source.users(), source.tokens(), source.audit()
    deleted = source.deleted()
    source.close()

    result = runner.invoke(args=["geoapp", "copy", "--from", str(source_path), "--to", location])
    assert result.exit_code == 0, result.output
    target = open_store(registry, location)
    try:
        assert target.versions() == versions
        for layer_id, data in expected.items():
            got = target.load(layer_id)
            assert got.fids.tolist() == data.fids.tolist(), layer_id
            assert got.versions.tolist() == data.versions.tolist(), layer_id
            for name, column in data.columns.items():
                assert got.columns[name].tolist() == column.tolist(), (layer_id, name)
            assert all(a.equals_exact(b, 1e-9) for a, b in zip(got.geometries, data.geometries, strict=True))
        assert target.get("construction_hoardings", 3).properties["notes"] == "复查"
        assert target.get("construction_hoardings", 3).version == edited.version
        assert target.users() == users and target.tokens() == tokens
        assert [(d.feature.fid, d.feature.version, d.deleted_by) for d in target.deleted()] == [
            (d.feature.fid, d.feature.version, d.deleted_by) for d in deleted
        ]
        copied = target.audit()
        assert copied[: len(audit)] == audit  # every row, ids and times kept
        assert copied[-1].action == "store_copy" and copied[-1].changes["features"][1] > 2000
        # the copy goes on where the source left off: new fids and audit ids follow the copied ones
        point = target.insert(
            "waterlogging_points",
            {"name": "再一点", "road": "建设路", "status": "dry"},
            shapely.Point(113.31, 33.74),
            actor=SETUP,
        )
        assert point.fid == added.fid + 1
        assert target.audit()[-1].id == copied[-1].id + 1
        restored = target.restore("manhole_covers", 5, actor=SETUP)
        assert restored.version == gone.version + 1
    finally:
        target.close()
    again = runner.invoke(args=["geoapp", "copy", "--from", str(source_path), "--to", location])
    assert again.exit_code != 0 and "pass --force" in again.output


def test_copy_refuses_a_geopackage_target(runner, demo_gpkg, tmp_path):
    result = runner.invoke(args=["geoapp", "copy", "--from", str(demo_gpkg), "--to", str(tmp_path / "x.gpkg")])
    assert result.exit_code != 0 and "copy writes into a PostgreSQL database" in result.output


@pytest.mark.parametrize(
    "statement",
    ["UPDATE geoapp_audit SET actor = 'someone else'", "DELETE FROM geoapp_audit", "TRUNCATE geoapp_audit"],
)
def test_the_audit_trail_is_append_only(database, registry, statement):
    store = open_store(registry, database)
    store.record(SETUP, "login", {"user": [None, "planner"]})
    store.close()
    rows = _sql(database, "SELECT count(*), max(actor) FROM geoapp_audit")
    assert rows[0][0] >= 1
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="the audit trail cannot be changed"):
        _sql(database, statement)
    assert _sql(database, "SELECT count(*), max(actor) FROM geoapp_audit") == rows


def test_an_edit_by_another_tool_raises_the_versions_and_reaches_the_reader(database, registry):
    store = open_store(registry, database)
    reader = MemIndex(store)
    try:
        before = reader.select("underground_spaces", Query(), 0, 10, "internal")
        fid = before.ids[0]
        # QGIS or psql writes without touching _version: the triggers raise it and log the change
        _sql(database, "UPDATE underground_spaces SET name = 'QGIS 改名' WHERE fid = %s", (fid,))
        after = reader.get("underground_spaces", fid, "internal")
        assert after.properties["name"] == "QGIS 改名"
        assert after.version == store.get("underground_spaces", fid).version == 2
        assert store.versions()["underground_spaces"] == before.version + 1
        _sql(database, "TRUNCATE underground_spaces")  # no row names this change: readers reload
        assert reader.count("underground_spaces") == 0
    finally:
        store.close()


def test_an_edit_on_one_app_server_is_seen_by_the_other_on_the_next_request(database, registry, tmp_path):
    store = open_store(registry, database)
    token, digest = new_token()
    store.add_token("script", digest, ("planner",), actor=SETUP)
    store.close()
    command = [str(PROJECT_ROOT / ".venv/bin/gunicorn"), "-c", "gunicorn.conf.py", "wsgi:app"]
    settings = {"GEOAPP_DATABASE": database, "GEOAPP_WORKERS": "2", "GEOAPP_SECRET_KEY": "same-on-both"}
    one, base_one = start_server(command, tmp_path / "one.log", 60, **settings)
    try:
        two, base_two = start_server(command, tmp_path / "two.log", 60, **settings)
        try:
            url = "/api/layers/construction_hoardings/features/4"
            for base in (base_one, base_two):  # both have the layer in memory before the edit
                with urllib.request.urlopen(base + url, timeout=10) as response:
                    assert json.load(response)["properties"]["status"] != "removed"
            with urllib.request.urlopen(base_one + url, timeout=10) as response:
                version = json.load(response)["version"]
            edit = urllib.request.Request(
                base_one + url,
                method="PATCH",
                data=json.dumps(
                    {"properties": {"status": "removed", "removed_on": "2026-11-30", "treatment": "greened"}}
                ).encode(),
                headers={
                    "Authorization": f"Bearer {token}",
                    "If-Match": f'"{version}"',
                    "Content-Type": "application/json",
                },
            )
            with urllib.request.urlopen(edit, timeout=10) as response:
                assert response.status == 200
            for _ in range(4):  # whichever worker of the second server answers
                with urllib.request.urlopen(base_two + url, timeout=10) as response:
                    feature = json.load(response)
                assert feature["properties"]["status"] == "removed" and feature["version"] == version + 1
        finally:
            stop_server(two)
    finally:
        stop_server(one)
