"""The setup contract over real HTTP: `make run` builds the demo store and serves the API on 127.0.0.1."""

from __future__ import annotations

import json
import re
import urllib.parse
import urllib.request

import pytest

from geoapp.config import PROJECT_ROOT
from tests.conftest import start_server, stop_server


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """`make run` with a fresh store path, started once for the module; yields the base URL, the store and the log."""
    folder = tmp_path_factory.mktemp("run")
    log = folder / "run.log"
    proc, base = start_server(["make", "--no-print-directory", "run"], log, GEOAPP_DATABASE=str(folder / "run.gpkg"))
    yield base, folder / "run.gpkg", log
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
    from tests.conftest import PASSWORD, SETUP

    base, database, log = served
    store = open_store(registry, str(database))
    store.add_user("planner", password_hash, ("planner",), actor=SETUP)
    token, digest = new_token()
    store.add_token("script", digest, ("planner",), actor=SETUP)
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


def _pins(path) -> dict[str, str]:
    """Package name -> version of each ``name==version`` line (names normalised as pip does)."""
    pins = {}
    for line in path.read_text().splitlines():
        match = re.match(r"([A-Za-z0-9._-]+)==([^\s;\\]+)", line)
        if match:
            pins[re.sub(r"[-_.]+", "-", match.group(1)).lower()] = match.group(2)
    return pins


@pytest.mark.parametrize(
    ("human", "lock"), [("requirements.txt", "requirements.lock"), ("requirements-dev.txt", "requirements-dev.lock")]
)
def test_the_lock_files_pin_what_the_human_lists_pin_with_hashes(human, lock):
    wanted, locked = _pins(PROJECT_ROOT / human), _pins(PROJECT_ROOT / lock)
    assert wanted and {name: locked.get(name) for name in wanted} == wanted, f"run make lock after changing {human}"
    text = (PROJECT_ROOT / lock).read_text()
    blocks = re.split(r"\n(?=\S)", text.split("\n", 2)[2])  # one per package, after the two header lines
    assert all("--hash=sha256:" in block for block in blocks if "==" in block)
    assert _pins(PROJECT_ROOT / "requirements.lock").items() <= _pins(PROJECT_ROOT / "requirements-dev.lock").items()
