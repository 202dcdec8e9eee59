"""`flask --app wsgi geoapp ...`: the store, layers, statistics, accounts, tokens and the audit export."""

from __future__ import annotations

import csv
import io
import sqlite3

from geoapp.core.accounts import token_digest
from geoapp.core.permissions import ROLES
from tests.conftest import SETUP


def test_init_demo_layers_and_stats(runner, tmp_path):
    app = runner.app
    app.extensions["geoapp"].database = str(tmp_path / "new.gpkg")
    created = runner.invoke(args=["geoapp", "init", "--demo"])
    assert created.exit_code == 0, created.output
    assert "synthetic demo district" in created.output
    assert "geoapp user add NAME --role admin" in created.output  # how to create the first admin
    again = runner.invoke(args=["geoapp", "init"])
    assert again.exit_code != 0 and "--force" in again.output
    kept = runner.invoke(args=["geoapp", "init", "--demo", "--if-missing"])
    assert kept.exit_code == 0 and "exists" in kept.output
    layers = runner.invoke(args=["geoapp", "layers"])
    assert "construction_hoardings" in layers.output and "     43" in layers.output
    stats = runner.invoke(args=["geoapp", "stats"])
    assert "已整治围挡: 28" in stats.output and "窨井盖年度任务完成率: 110.75%" in stats.output
    emptied = runner.invoke(args=["geoapp", "init", "--force"])
    assert emptied.exit_code == 0 and "empty layers" in emptied.output
    assert "waterlogging_points" in runner.invoke(args=["geoapp", "layers"]).output


def test_layers_without_a_store_is_a_clear_error(runner, tmp_path):
    runner.app.extensions["geoapp"].database = str(tmp_path / "none.gpkg")
    result = runner.invoke(args=["geoapp", "layers"])
    assert result.exit_code != 0 and "geoapp init" in result.output


def test_users(runner, database):
    added = runner.invoke(
        args=["geoapp", "user", "add", "li", "--role", "planner", "--password-stdin"], input="s3cret-passw0rd\n"
    )
    assert added.exit_code == 0, added.output
    assert (
        runner.invoke(
            args=["geoapp", "user", "add", "li", "--role", "viewer", "--password-stdin"], input="another-password\n"
        ).exit_code
        != 0
    )
    short = runner.invoke(args=["geoapp", "user", "add", "wu", "--role", "viewer", "--password-stdin"], input="short\n")
    assert short.exit_code != 0 and "at least 10" in short.output
    bad_role = runner.invoke(
        args=["geoapp", "user", "add", "wu", "--role", "mayor", "--password-stdin"], input="x" * 12
    )
    assert bad_role.exit_code != 0 and ", ".join(ROLES) in bad_role.output
    prompted = runner.invoke(
        args=["geoapp", "user", "add", "zhao", "--role", "admin"], input="long-enough-pw\nlong-enough-pw\n"
    )
    assert prompted.exit_code == 0, prompted.output
    listing = runner.invoke(args=["geoapp", "user", "list"]).output
    assert "li" in listing and "planner" in listing and "zhao" in listing
    store = runner.app.extensions["geoapp"].store
    epoch = store.user("li").epoch
    assert (
        runner.invoke(args=["geoapp", "user", "passwd", "li", "--password-stdin"], input="new-password-1\n").exit_code
        == 0
    )
    assert store.user("li").epoch == epoch + 1
    assert runner.invoke(args=["geoapp", "user", "disable", "li"]).exit_code == 0
    assert store.user("li").disabled and "disabled" in runner.invoke(args=["geoapp", "user", "list"]).output
    assert runner.invoke(args=["geoapp", "user", "disable", "nobody"]).exit_code != 0
    stored = b"".join(p.read_bytes() for p in database.parent.glob(database.name + "*"))
    assert b"s3cret-passw0rd" not in stored and b"new-password-1" not in stored


def test_tokens_are_shown_once_and_kept_as_digests(runner, database):
    result = runner.invoke(args=["geoapp", "token", "add", "gauge-7", "--role", "sensor"])
    assert result.exit_code == 0
    token = result.stdout.strip()
    assert token.startswith("gat_") and len(token) > 40
    row = sqlite3.connect(database).execute("SELECT token_hash FROM geoapp_tokens WHERE name = 'gauge-7'").fetchone()
    assert row == (token_digest(token),)
    assert "gauge-7" in runner.invoke(args=["geoapp", "token", "list"]).output
    assert token not in runner.invoke(args=["geoapp", "token", "list"]).output
    assert runner.invoke(args=["geoapp", "token", "revoke", "gauge-7"]).exit_code == 0
    assert runner.app.extensions["geoapp"].store.token(token_digest(token)) is None
    assert runner.invoke(args=["geoapp", "token", "revoke", "gauge-7"]).exit_code != 0


def test_audit_export_writes_csv_since_a_day(runner, tmp_path):
    store = runner.app.extensions["geoapp"].store
    feature = store.get("construction_hoardings", 1)
    store.update("construction_hoardings", 1, {"notes": "复查完毕"}, expected_version=feature.version, actor=SETUP)
    out = tmp_path / "audit.csv"
    result = runner.invoke(args=["geoapp", "audit", "export", "--since", "2023-01-01", "--output", str(out)])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    (row,) = [r for r in rows if r["field"] == "notes"]
    assert (row["action"], row["layer"], row["fid"], row["new"]) == (
        "update",
        "construction_hoardings",
        "1",
        "复查完毕",
    )
    later = runner.invoke(args=["geoapp", "audit", "export", "--since", "2999-01-01"])
    assert later.output.strip().count("\n") == 0  # the header alone
    bad = runner.invoke(args=["geoapp", "audit", "export", "--since", "last week"])
    assert bad.exit_code != 0 and "YYYY-MM-DD" in bad.output
