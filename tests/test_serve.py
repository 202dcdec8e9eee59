"""The setup contract over real HTTP: `make run` builds the demo store and serves the API on 127.0.0.1."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request

import pytest

from tests.conftest import start_server, stop_server


@pytest.fixture
def served(tmp_path):
    """`make run` with a fresh store path; yields the base URL, the store and the server's log."""
    log = tmp_path / "run.log"
    proc, base = start_server(["make", "--no-print-directory", "run"], log, GEOAPP_DATABASE=str(tmp_path / "run.gpkg"))
    yield base, tmp_path / "run.gpkg", log
    stop_server(proc)


def test_make_run_builds_the_demo_and_serves_every_layer(served, registry):
    base, database, _ = served
    assert database.is_file()
    with urllib.request.urlopen(f"{base}/api/layers", timeout=10) as response:
        payload = json.load(response)
    counts = {layer["id"]: layer["count"] for layer in payload["layers"]}
    assert set(counts) == set(registry.ids)
    assert counts["waterlogging_points"] == 6
    assert counts["underpass_culverts"] == 14
    assert counts["underground_spaces"] == 81
    assert counts["construction_hoardings"] == 43
    assert counts["heating_stations"] == 114
    assert counts["backstreet_repairs"] == 10
    assert counts["manhole_covers"] > 886
    request = urllib.request.Request(f"{base}/api/layers/heating_stations/features?near=113.3,33.73&radius=abc")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=10)
    assert info.value.code == 400
    assert json.load(info.value)["error"]["parameter"] == "radius"


def test_no_password_or_token_reaches_the_server_log(served, registry, password_hash):
    from geoapp.core.accounts import new_token
    from geoapp.store import open_store
    from tests.conftest import PASSWORD

    base, database, log = served
    store = open_store(registry, str(database))
    store.add_user("planner", password_hash, ("planner",))
    token, digest = new_token()
    store.add_token("script", digest, ("planner",))
    store.close()
    request = urllib.request.Request(
        f"{base}/api/layers/construction_hoardings/features/1",
        data=json.dumps({"properties": {"notes": "checked"}, "version": 1}).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="PATCH",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
    # a failed sign-in through the form, with the password in the body
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
    page = opener.open(f"{base}/login", timeout=10).read().decode()
    csrf = page.split('name="csrf_token" value="')[1].split('"')[0]
    form = urllib.parse.urlencode({"name": "planner", "password": PASSWORD + "x", "csrf_token": csrf}).encode()
    with pytest.raises(urllib.error.HTTPError):
        opener.open(f"{base}/login", data=form, timeout=10)
    text = log.read_text(encoding="utf-8")
    assert "PATCH /api/layers/construction_hoardings/features/1" in text  # the access log is there
    assert token not in text and PASSWORD not in text
