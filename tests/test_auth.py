"""Accounts, roles, tokens, sign-in, CSRF and the audit trail of every change, on every backend."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
import threading
import time

import pytest

from geoapp.config import PROJECT_ROOT
from geoapp.core.accounts import LoginPolicy, new_token
from geoapp.web import create_app
from tests.backends import audit_rows, drop_fault, execute, fault, is_postgis, refused_change, run_script, stored
from tests.conftest import CHEAP_ARGON2, PASSWORD, ROLES, SETUP, csrf_token, login

HOARDING = "/api/layers/construction_hoardings/features"
PONDING = "/api/layers/waterlogging_points/features"
INSIDE = {"type": "Point", "coordinates": [113.30, 33.73]}
LINE = {"type": "LineString", "coordinates": [[113.300, 33.730], [113.301, 33.7302]]}
pytestmark = pytest.mark.backends("gpkg", "postgis")


def _feature(client, url):
    return client.get(url).json


def _signed_in(app, role):
    client = app.test_client()
    if role == "anonymous":
        return client, {}
    _, csrf = login(client, role)
    return client, {"X-CSRFToken": csrf}


def _token_client(app, role):
    token, digest = new_token()
    app.extensions["geoapp"].store.add_token(f"{role}-token", digest, (role,), actor=SETUP)
    return app.test_client(), {"Authorization": f"Bearer {token}"}


# (method, path, body or None, which roles succeed)
WRITES = [
    ("patch", f"{HOARDING}/1", {"properties": {"notes": "checked"}}, {"planner", "admin"}),
    ("patch", f"{PONDING}/1", {"properties": {"status": "ponding"}}, {"commander", "admin"}),
    (
        "post",
        HOARDING,
        {"type": "Feature", "geometry": LINE, "properties": {"site": "新点", "agency": "housing"}},
        {"planner", "admin"},
    ),
    ("delete", f"{HOARDING}/2", None, {"planner", "admin"}),
    ("patch", "/api/layers/grid_cells/features/1", {"properties": {"squad": "演示测试中队"}}, {"admin"}),
]


# every role signed in with a session, every role as a machine token, and the anonymous public
CALLERS = [("session", "anonymous")] + [(via, role) for via in ("session", "token") for role in ROLES]


# who may do what is the permission policy's, the same on every backend (the audit row's transaction is
# checked on both by test_change_and_audit_row_commit_or_roll_back_together)
@pytest.mark.backends("gpkg")
@pytest.mark.parametrize(("via", "role"), CALLERS, ids=[f"{v}-{r}" for v, r in CALLERS])
@pytest.mark.parametrize(("method", "path", "body", "allowed"), WRITES, ids=[f"{w[0]} {w[1]}" for w in WRITES])
def test_every_write_is_allowed_or_refused_by_role(app, users, database, via, role, method, path, body, allowed):
    client, headers = _token_client(app, role) if via == "token" else _signed_in(app, role)
    version = client.get(path if method != "post" else f"{HOARDING}/1").json["version"]
    before = audit_rows(database)
    response = getattr(client, method)(path, json=body, headers={**headers, "If-Match": f'"{version}"'})
    if role in allowed:
        assert response.status_code in (200, 201, 204), response.json
        assert audit_rows(database) == before + 1
    else:
        assert response.status_code == (401 if role == "anonymous" else 403)
        assert response.json["error"]["code"] in ("unauthorized", "forbidden")
        assert audit_rows(database) == before


@pytest.mark.parametrize("role", ["anonymous", *ROLES])
def test_reading_history_and_deleted_needs_staff_or_admin(app, users, role):
    client, _ = _signed_in(app, role)
    history = client.get(f"{HOARDING}/1/history").status_code
    deleted = client.get("/api/deleted").status_code
    restore = client.post(f"{HOARDING}/1/restore", headers=_).status_code
    staff = role in ("viewer", "planner", "commander", "admin")
    assert history == (200 if staff else 401 if role == "anonymous" else 403)
    assert deleted == (200 if role == "admin" else 401 if role == "anonymous" else 403)
    assert restore in ((404,) if role == "admin" else (401, 403))  # feature 1 is not deleted


def test_planner_marks_a_hoarding_removed_and_history_shows_who_when_old_new(app, users):
    client, headers = _signed_in(app, "planner")
    pending = _feature(client, f"{HOARDING}?status=pending")["features"][0]
    url = f"{HOARDING}/{pending['id']}"
    changed = client.patch(
        url,
        json={"properties": {"status": "removed", "removed_on": "2023-11-01", "treatment": "greened"}},
        headers={**headers, "If-Match": f'"{pending["version"]}"'},
    )
    assert changed.status_code == 200
    assert changed.json["properties"]["status"] == "removed" and changed.json["version"] == pending["version"] + 1
    assert app.test_client().get(url).json["properties"]["status"] == "removed"  # the public sees the result
    (entry,) = client.get(f"{url}/history").json["history"]
    assert entry["actor"] == "planner" and entry["action"] == "update" and entry["address"] == "127.0.0.1"
    assert entry["changes"]["status"] == ["pending", "removed"]
    assert entry["changes"]["treatment"] == [None, "greened"]
    assert entry["at"][:4] == time.strftime("%Y")
    for role in ("viewer", "anonymous"):
        other, other_headers = _signed_in(app, role)
        refused = other.patch(
            url, json={"properties": {"status": "pending"}}, headers={**other_headers, "If-Match": '"2"'}
        )
        assert refused.status_code in (401, 403)
    assert client.get(url).json["properties"]["status"] == "removed"


def test_a_stale_update_answers_409_and_nothing_is_lost(app, users):
    first, h1 = _signed_in(app, "planner")
    second, h2 = _signed_in(app, "planner2")
    read = _feature(first, f"{HOARDING}/3")
    ok = first.patch(f"{HOARDING}/3", json={"properties": {"notes": "first"}, "version": read["version"]}, headers=h1)
    assert ok.status_code == 200
    stale = second.patch(
        f"{HOARDING}/3", json={"properties": {"notes": "second"}, "version": read["version"]}, headers=h2
    )
    assert stale.status_code == 409 and stale.json["error"]["code"] == "version_conflict"
    assert first.get(f"{HOARDING}/3").json["properties"]["notes"] == "first"
    missing = second.patch(f"{HOARDING}/3", json={"properties": {"notes": "x"}}, headers=h2)
    assert missing.status_code == 428 and missing.json["error"]["parameter"] == "version"


def test_two_concurrent_editors_one_wins_one_gets_409(app, users):
    clients = [_signed_in(app, name) for name in ("planner", "planner2")]
    version = clients[0][0].get(f"{HOARDING}/4").json["version"]
    barrier = threading.Barrier(2)
    results = {}

    def edit(i):
        client, headers = clients[i]
        barrier.wait()
        results[i] = client.patch(
            f"{HOARDING}/4",
            json={"properties": {"notes": f"editor {i}"}},
            headers={**headers, "If-Match": f'"{version}"'},
        )

    threads = [threading.Thread(target=edit, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.status_code for r in results.values()) == [200, 409]
    winner = next(i for i, r in results.items() if r.status_code == 200)
    assert clients[0][0].get(f"{HOARDING}/4").json["properties"]["notes"] == f"editor {winner}"
    history = clients[0][0].get(f"{HOARDING}/4/history").json["history"]
    assert len(history) == 1


@pytest.mark.parametrize(
    ("body", "parameter"),
    [
        ({"properties": {"status": "done"}}, "status"),
        ({"properties": {"removed_on": "yesterday"}}, "removed_on"),
        ({"properties": {"site": None}}, "site"),
        ({"properties": {"length_m": 5}}, "length_m"),
        ({"properties": {"colour": "red"}}, "colour"),
        ({"geometry": {"type": "Point", "coordinates": [113.3, 33.73]}}, "geometry"),
        ({"geometry": {"type": "LineString", "coordinates": [[116.4, 39.9], [116.41, 39.9]]}}, "geometry"),
        ({"geometry": {"type": "LineString", "coordinates": "nope"}}, "geometry"),
        ({"properties": ["status"]}, "properties"),
    ],
)
def test_an_invalid_edit_changes_nothing_and_writes_no_audit_row(app, users, database, body, parameter):
    client, headers = _signed_in(app, "planner")
    before = client.get(f"{HOARDING}/5").json
    rows = audit_rows(database)
    response = client.patch(f"{HOARDING}/5", json={**body, "version": before["version"]}, headers=headers)
    assert response.status_code == 400
    assert response.json["error"]["parameter"] == parameter
    assert client.get(f"{HOARDING}/5").json == before
    assert audit_rows(database) == rows


@pytest.mark.parametrize(
    ("when", "table"),
    [
        # the audit row fails after the feature row was written
        ("INSERT", "geoapp_audit"),
        # the layer version fails after the feature and audit rows were written
        ("UPDATE", "geoapp_layer_versions"),
    ],
    ids=["audit-row", "after-audit-row"],
)
def test_change_and_audit_row_commit_or_roll_back_together(app, users, database, when, table):
    client, headers = _signed_in(app, "planner")
    before = client.get(f"{HOARDING}/6").json
    rows = audit_rows(database)
    run_script(database, fault(database, when, table))
    response = client.patch(
        f"{HOARDING}/6", json={"properties": {"notes": "fault test"}, "version": before["version"]}, headers=headers
    )
    assert response.status_code == 500 and "disk full" not in response.get_data(as_text=True)
    run_script(database, drop_fault(database, table))
    assert client.get(f"{HOARDING}/6").json == before
    assert audit_rows(database) == rows


def test_the_audit_trail_cannot_be_edited(app, users, database):
    client, headers = _signed_in(app, "planner")
    client.patch(f"{HOARDING}/7", json={"properties": {"notes": "x"}, "version": 1}, headers=headers)
    rows = audit_rows(database)
    assert rows > 0
    refused = refused_change(database)
    with pytest.raises(refused, match="cannot be changed"):
        execute(database, "UPDATE geoapp_audit SET actor = 'someone else'")
    with pytest.raises(refused, match="cannot be changed"):
        execute(database, "DELETE FROM geoapp_audit")
    if is_postgis(database):  # SQLite has no TRUNCATE (its DELETE without WHERE is refused above)
        with pytest.raises(refused, match="cannot be changed"):
            execute(database, "TRUNCATE geoapp_audit")
    assert audit_rows(database) == rows
    assert not execute(database, "SELECT 1 FROM geoapp_audit WHERE actor = 'someone else'")


def test_delete_is_soft_and_an_admin_restores(app, users):
    planner, ph = _signed_in(app, "planner")
    admin, ah = _signed_in(app, "admin")
    before = planner.get(f"{HOARDING}/8").json
    assert planner.delete(f"{HOARDING}/8", headers={**ph, "If-Match": f'"{before["version"]}"'}).status_code == 204
    assert planner.get(f"{HOARDING}/8").status_code == 404
    (gone,) = [d for d in admin.get("/api/deleted").json["deleted"] if d["id"] == 8]
    assert gone["deleted_by"] == "planner" and gone["properties"]["site"] == before["properties"]["site"]
    assert planner.post(f"{HOARDING}/8/restore", headers=ph).status_code == 403
    restored = admin.post(f"{HOARDING}/8/restore", headers=ah)
    assert restored.status_code == 200
    after = planner.get(f"{HOARDING}/8").json
    assert after["properties"] == before["properties"] and after["geometry"] == before["geometry"]
    assert [e["action"] for e in admin.get(f"{HOARDING}/8/history").json["history"]] == ["delete", "restore"]


def test_create_returns_the_feature_and_refuses_outside_the_district(app, users):
    client, headers = _signed_in(app, "planner")
    body = {"type": "Feature", "geometry": LINE, "properties": {"site": "开源路南侧", "agency": "housing"}}
    created = client.post(HOARDING, json=body, headers=headers)
    assert created.status_code == 201
    assert client.get(created.headers["Location"]).json["properties"]["site"] == "开源路南侧"
    assert created.json["properties"]["length_m"] > 0 and created.json["properties"]["status"] == "pending"
    far = {**body, "geometry": {"type": "LineString", "coordinates": [[113.5, 33.9], [113.501, 33.9]]}}
    refused = client.post(HOARDING, json=far, headers=headers)
    assert refused.status_code == 400 and "outside the district" in refused.json["error"]["message"]


def test_staff_see_internal_fields_and_the_public_and_sensors_do_not(app, users):
    for role, sees in [("viewer", True), ("planner", True), ("sensor", False), ("anonymous", False)]:
        client, _ = _signed_in(app, role)
        properties = client.get(f"{HOARDING}/1").json["properties"]
        assert ("contractor" in properties) is sees, role
        fields = {f["name"] for f in client.get("/api/layers/construction_hoardings").json["fields"]}
        assert ("contractor" in fields) is sees, role


def test_writes_need_csrf_with_a_session_but_not_with_a_token(app, users):
    client, _ = _signed_in(app, "planner")
    no_csrf = client.patch(f"{HOARDING}/9", json={"properties": {"notes": "x"}, "version": 1})
    assert no_csrf.status_code == 403 and no_csrf.json["error"]["parameter"] == "csrf_token"
    wrong = client.patch(
        f"{HOARDING}/9", json={"properties": {"notes": "x"}, "version": 1}, headers={"X-CSRFToken": "x"}
    )
    assert wrong.status_code == 403
    token_client, token_headers = _token_client(app, "planner")
    by_token = token_client.patch(
        f"{HOARDING}/9", json={"properties": {"notes": "x"}, "version": 1}, headers=token_headers
    )
    assert by_token.status_code == 200
    (entry,) = client.get(f"{HOARDING}/9/history").json["history"]
    assert (entry["actor"], entry["actor_kind"]) == ("planner-token", "token")
    form = app.test_client().post("/login", data={"name": "planner", "password": PASSWORD})
    assert form.status_code == 403  # the sign-in form is protected too
    logout = client.post("/logout")
    assert logout.status_code == 403


def test_session_cookie_flags(app, users):
    client = app.test_client()
    response, _ = login(client, "viewer")
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    https = app.test_client()
    page = https.get("/login", base_url="https://localhost").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    secure = https.post(
        "/login",
        data={"name": "viewer", "password": PASSWORD, "csrf_token": csrf},
        base_url="https://localhost",
        headers={"Referer": "https://localhost/login"},
    )
    assert secure.status_code == 302 and "Secure" in secure.headers["Set-Cookie"]


def test_disabling_a_user_or_revoking_a_token_ends_access(app, users):
    client, headers = _signed_in(app, "planner")
    store = app.extensions["geoapp"].store
    store.change_user("planner", disabled=True, actor=SETUP)
    refused = client.patch(f"{HOARDING}/1", json={"properties": {"notes": "x"}, "version": 1}, headers=headers)
    assert refused.status_code == 401
    assert "contractor" not in client.get(f"{HOARDING}/1").json["properties"]
    token_client, token_headers = _token_client(app, "planner")
    store.revoke_token("planner-token", actor=SETUP)
    assert token_client.get(f"{HOARDING}/1", headers=token_headers).status_code == 401


def _attempt(app, name, password, address="127.0.0.1", **headers):
    """One sign-in through the form from ``address``, by a new visitor."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client.post(
        "/login", data={"name": name, "password": password, "csrf_token": csrf_token(client)}, headers=headers
    )


def _actions(app, action):
    return [e for e in app.extensions["geoapp"].store.audit() if e.action == action]


def test_brute_force_sign_in_is_slowed_then_refused(app, users, clock):
    """One address guessing one account: answered at once, told to wait (429, Retry-After), then refused."""
    for _ in range(3):  # the first failures answer at once
        failed = _attempt(app, "planner", "wrong-password-1")
        assert failed.status_code == 401 and "用户名或密码错误" in failed.get_data(as_text=True)
    waits = []
    for failures in range(3, 10):
        early = _attempt(app, "planner", PASSWORD)  # even the right password, while it must wait
        assert early.status_code == 429
        waits.append(int(early.headers["Retry-After"]))
        assert f"请{waits[-1]}秒钟后再试" in early.get_data(as_text=True)
        clock.advance(waits[-1])
        assert _attempt(app, "planner", "wrong-password-1").status_code == 401, failures
    assert waits == [2, 4, 6, 8, 10, 12, 14]  # each failure past the third adds two seconds
    locked = _attempt(app, "planner", PASSWORD)
    # refused until the first of the ten failures leaves the 15-minute window
    assert locked.status_code == 429 and int(locked.headers["Retry-After"]) == 15 * 60 - sum(waits)
    assert "请15分钟后再试或联系管理员" in locked.get_data(as_text=True)
    english = _attempt(app, "planner", PASSWORD, **{"Accept-Language": "en"}).get_data(as_text=True)
    assert "Try again in 15 minutes or ask an administrator" in english
    assert _attempt(app, "viewer", PASSWORD).status_code == 302  # another account is not locked by it
    clock.advance(int(locked.headers["Retry-After"]))
    assert _attempt(app, "planner", PASSWORD).status_code == 302  # the window passed
    assert len(_actions(app, "login_failed")) == 10 and _actions(app, "login_refused")


def _another_server(database, clock):
    """A second app server on the same store, as the ``app`` fixture makes the first: nothing shared in memory."""
    return create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "test-secret",
            "GEOAPP_DATABASE": str(database),
            "ARGON2_PARAMETERS": CHEAP_ARGON2,
            "LOGIN_POLICY": LoginPolicy(clock=clock),
        }
    )


def test_sign_in_failures_count_across_servers(app, users, database, clock):
    """Guesses spread over two servers behind a balancer meet the same waits and the same lock as on one."""
    other = _another_server(database, clock)
    servers = [app, other]
    try:
        for i in range(3):  # the first failures answer at once, wherever they land
            assert _attempt(servers[i % 2], "planner", "wrong-password-1").status_code == 401
        waits = []
        for failures in range(3, 10):
            # the server that did not see the last failure makes the visitor wait for it
            early = _attempt(servers[(failures + 1) % 2], "planner", PASSWORD)
            assert early.status_code == 429, failures
            waits.append(int(early.headers["Retry-After"]))
            clock.advance(waits[-1])
            assert _attempt(servers[failures % 2], "planner", "wrong-password-1").status_code == 401, failures
        assert waits == [2, 4, 6, 8, 10, 12, 14]  # as on one server: each failure past the third adds two seconds
        for server in servers:  # ten failures in all, five through each: locked on both
            locked = _attempt(server, "planner", PASSWORD)
            assert locked.status_code == 429 and int(locked.headers["Retry-After"]) == 15 * 60 - sum(waits)
        assert _attempt(other, "viewer", PASSWORD).status_code == 302  # another account is not locked by it
        clock.advance(15 * 60 - sum(waits))
        assert _attempt(other, "planner", PASSWORD).status_code == 302
        assert len(_actions(other, "login_failed")) == len(_actions(app, "login_failed")) == 10
    finally:
        other.extensions["geoapp"].close()


def test_a_refused_sign_in_answers_the_json_shape_with_retry_after(app, users):
    for _ in range(3):
        _attempt(app, "planner", "wrong-password-1")
    refused = _attempt(app, "planner", PASSWORD, Accept="application/json")
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "2"
    assert refused.json["error"]["code"] == "too_many_attempts"
    assert refused.json["error"]["parameter"] == "name" and "2 seconds" in refused.json["error"]["message"]


def test_a_locked_account_signs_in_from_elsewhere_and_an_administrator_unlocks_it(app, users, clock, runner):
    policy = LoginPolicy(slow_after=100, clock=clock)  # no waits: ten failures in a row
    app.extensions["geoapp.login_policy"] = policy
    for _ in range(10):
        assert _attempt(app, "planner", "wrong-password-1", "10.1.1.7").status_code == 401
    assert _attempt(app, "planner", PASSWORD, "10.1.1.7").status_code == 429
    # whoever guessed from 10.1.1.7 does not lock the planner out of the office
    assert _attempt(app, "planner", PASSWORD, "10.2.2.2").status_code == 302
    unlocked = runner.invoke(args=["geoapp", "user", "unlock", "planner"])
    assert unlocked.exit_code == 0 and "10 failed sign-ins" in unlocked.output
    assert _attempt(app, "planner", PASSWORD, "10.1.1.7").status_code == 302
    (entry,) = _actions(app, "user_unlock")
    assert (entry.actor, entry.actor_kind, entry.changes["user"]) == ("cli", "cli", ["planner", "planner"])
    assert runner.invoke(args=["geoapp", "user", "unlock", "nobody"]).exit_code != 0


def test_a_new_password_clears_the_failed_sign_ins(app, users, clock, runner):
    app.extensions["geoapp.login_policy"] = LoginPolicy(slow_after=100, clock=clock)
    for _ in range(10):
        _attempt(app, "planner", "wrong-password-1")
    assert _attempt(app, "planner", PASSWORD).status_code == 429
    changed = runner.invoke(args=["geoapp", "user", "passwd", "planner", "--password-stdin"], input="a-new-password\n")
    assert changed.exit_code == 0, changed.output
    assert _attempt(app, "planner", "a-new-password").status_code == 302


def test_mistakes_behind_one_office_address_do_not_lock_out_everyone(app, users, clock):
    office = "10.0.0.1"  # every staff member's requests arrive from the office NAT
    # names that are no account count too: 30 failures from the office in all
    for name in ("planner", "viewer", "commander", "sensor", "admin", "li", "wang", "zhang", "liu", "chen"):
        for _ in range(3):
            assert _attempt(app, name, "wrong-password-1", office).status_code == 401
    # the others still sign in at once, and those who mistyped after a short wait
    assert _attempt(app, "planner2", PASSWORD, office).status_code == 302
    assert _attempt(app, "planner", PASSWORD, office).status_code == 429
    clock.advance(2)
    assert _attempt(app, "planner", PASSWORD, office).status_code == 302


def test_one_address_trying_many_accounts_meets_a_ceiling(app, users, clock):
    app.extensions["geoapp.login_policy"] = LoginPolicy(address_lock_after=12, clock=clock)
    for i in range(12):
        assert _attempt(app, f"guess{i}", "wrong-password-1", "203.0.113.9").status_code == 401
    ceiling = _attempt(app, "planner", PASSWORD, "203.0.113.9")
    assert ceiling.status_code == 429 and int(ceiling.headers["Retry-After"]) == 15 * 60
    assert _attempt(app, "planner", PASSWORD, "10.0.0.1").status_code == 302  # other addresses are not touched


def test_guessing_one_account_from_many_addresses_is_slowed_not_locked(app, users, clock):
    app.extensions["geoapp.login_policy"] = LoginPolicy(account_slow_after=20, account_delay_s=10, clock=clock)
    for i in range(20):
        assert _attempt(app, "planner", "wrong-password-1", f"198.51.100.{i}").status_code == 401
    slowed = _attempt(app, "planner", PASSWORD, "10.0.0.1")
    assert slowed.status_code == 429 and slowed.headers["Retry-After"] == "10"
    clock.advance(10)
    assert _attempt(app, "planner", PASSWORD, "10.0.0.1").status_code == 302


def test_simultaneous_guesses_get_no_more_password_checks_than_the_limit(app, users, clock):
    app.extensions["geoapp.login_policy"] = LoginPolicy(slow_after=100, clock=clock)
    clients = []
    for _ in range(40):
        client = app.test_client()
        clients.append((client, csrf_token(client)))
    barrier = threading.Barrier(len(clients))
    statuses = []

    def guess(client, csrf):
        barrier.wait()
        body = {"name": "planner", "password": "wrong-password-1", "csrf_token": csrf}
        statuses.append(client.post("/login", data=body).status_code)

    threads = [threading.Thread(target=guess, args=pair) for pair in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [401] * 10 + [429] * 30
    assert len(_actions(app, "login_failed")) == 10


def test_repeated_refusals_write_one_audit_row_with_a_count(app, users, clock):
    app.extensions["geoapp.login_policy"] = LoginPolicy(slow_after=100, clock=clock)
    for _ in range(10):
        _attempt(app, "planner", "wrong-password-1", "192.0.2.1")
    before = _audit_rows_of(app)
    for _ in range(50):
        assert _attempt(app, "planner", PASSWORD, "192.0.2.1").status_code == 429
    (first,) = _actions(app, "login_refused")
    assert (first.actor, first.address, first.changes) == ("planner", "192.0.2.1", {"refused": [None, 1]})
    assert _audit_rows_of(app) == before + 1
    clock.advance(15 * 60 + 1)  # the window passed: the next sign-in anywhere writes the count down
    assert _attempt(app, "viewer", PASSWORD, "10.0.0.1").status_code == 302
    first, total = _actions(app, "login_refused")
    assert total.address == "192.0.2.1" and total.changes["refused"] == [1, 50]


def _audit_rows_of(app) -> int:
    return len(app.extensions["geoapp"].store.audit())


def test_signing_out_ends_the_session_for_every_copy_of_the_cookie(app, users):
    client, headers = _signed_in(app, "admin")
    copy = app.test_client()
    copy.set_cookie("session", client.get_cookie("session").value)
    patch = {"json": {"properties": {"notes": "after sign-out"}}, "headers": {**headers, "If-Match": '"1"'}}
    assert copy.get("/admin/deleted").status_code == 200  # the copy works while the session lives
    assert client.post("/logout", headers=headers).status_code == 302
    assert copy.patch(f"{HOARDING}/1", **patch).status_code == 401
    staff_page = copy.get("/admin/deleted")
    assert staff_page.status_code == 302 and staff_page.headers["Location"].startswith("/login")
    assert "contractor" not in copy.get(f"{HOARDING}/1").json["properties"]
    assert [e.actor for e in _actions(app, "logout")] == ["admin"]


def test_a_session_ends_when_it_expires_even_if_the_cookie_is_kept(app, users, clock):
    client, _ = _signed_in(app, "admin")
    assert client.get("/admin/deleted").status_code == 200
    clock.advance(12 * 3600 + 1)
    assert client.get("/admin/deleted").status_code == 302


def test_importing_the_accounts_module_computes_no_hash():
    code = (
        "import argon2\n"
        "def refuse(*args, **kwargs):\n"
        "    raise SystemExit('hashed at import')\n"
        "argon2.PasswordHasher.hash = refuse\n"
        "import geoapp.core.accounts\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr + done.stdout


def test_no_password_or_token_is_stored_or_logged_in_clear(app, users, database, caplog):
    caplog.set_level(logging.DEBUG)
    token_client, token_headers = _token_client(app, "planner")
    token = token_headers["Authorization"].removeprefix("Bearer ")
    token_client.patch(f"{HOARDING}/1", json={"properties": {"notes": "x"}, "version": 1}, headers=token_headers)
    login(app.test_client(), "viewer")
    login(app.test_client(), "viewer", "a-wrong-password")
    app.extensions["geoapp"].store.close()
    kept = stored(database)
    assert b"planner-token" in kept  # what is stored is there to be searched
    for secret in (PASSWORD, token, "a-wrong-password"):
        assert secret.encode() not in kept
        assert secret not in caplog.text
    users_table = execute(database, "SELECT password_hash FROM geoapp_users")
    assert users_table and all(h.startswith("$argon2id$") for (h,) in users_table)


@pytest.mark.parametrize(
    "target", ["/%09/evil.example", "/%0a/evil.example", "//evil.example", "https://evil.example/", "/\\evil.example"]
)
def test_sign_in_never_redirects_off_the_site(app, users, target):
    client = app.test_client()
    page = client.get(f"/login?next={target}").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    kept = re.search(r'name="next" value="([^"]*)"', page).group(1)
    response = client.post("/login", data={"name": "viewer", "password": PASSWORD, "csrf_token": csrf, "next": kept})
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").get_data(as_text=True)).group(1)
    local = client.post(
        "/login", data={"name": "viewer", "password": PASSWORD, "csrf_token": csrf, "next": "/?lang=en"}
    )
    assert local.headers["Location"] == "/?lang=en"  # a path on this site is kept


def test_names_unlike_accounts_never_reach_the_audit_trail(app, users, database):
    client = app.test_client()
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").get_data(as_text=True)).group(1)
    rows = audit_rows(database)
    for name in ("A" * 400, "名字\n带换行", "<script>"):
        response = client.post("/login", data={"name": name, "password": "x", "csrf_token": csrf})
        assert response.status_code == 401
    assert audit_rows(database) == rows


@pytest.mark.parametrize(
    ("body", "status", "parameter"),
    [
        ({"properties": {"notes": "x" * 2001}, "version": 1}, 400, "notes"),
        ({"properties": {"entrances": 1e30}, "version": 1}, 400, "entrances"),
        ({"properties": {"notes": "x"}, "version": True}, 400, "version"),
        ({"properties": {"notes": "x"}, "version": 1.5}, 400, "version"),
    ],
)
def test_out_of_range_values_are_refused_not_crashing(app, users, body, status, parameter):
    client, headers = _signed_in(app, "commander")
    response = client.patch("/api/layers/underground_spaces/features/1", json=body, headers=headers)
    assert response.status_code == status
    assert response.json["error"]["parameter"] == parameter


def test_huge_feature_ids_are_not_found(app, users):
    client, headers = _signed_in(app, "admin")
    huge = "99999999999999999999999"
    assert client.get(f"{HOARDING}/{huge}").status_code in (400, 404)
    assert client.get(f"{HOARDING}/{huge}/history").status_code == 404
    assert client.patch(f"{HOARDING}/{huge}", json={"version": 1}, headers=headers).status_code == 404
    assert client.post(f"{HOARDING}/{huge}/restore", headers=headers).status_code == 404
