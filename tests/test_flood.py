"""The flood commander's API on every backend: readings in (and every bad one refused, nothing stored), levels,
staleness, rain totals and signals, scenarios, nearest resources measured against the geodesic, and closures."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from pyproj import Geod

from geoapp.core.accounts import new_token
from geoapp.flood import levels
from geoapp.flood.rules import LEVELS
from tests.backends import audit_rows, drop_fault, execute, fault, run_script
from tests.conftest import SETUP, login

pytestmark = pytest.mark.backends("gpkg", "postgis")

READINGS = "/api/readings"
LIVE = "/api/flood/live"
CLOSURES = "/api/flood/closures"
GEOD = Geod(ellps="WGS84")


def _token(app, role: str, name: str | None = None) -> dict[str, str]:
    token, digest = new_token()
    app.extensions["geoapp"].store.add_token(name or f"{role}-token", digest, (role,), actor=SETUP)
    return {"Authorization": f"Bearer {token}"}


def _at(clock, minutes: float = 0) -> str:
    """A time ``minutes`` after the test clock's now, as a sensor writes it (district time, +08:00)."""
    stamp = dt.datetime.fromtimestamp(clock() + minutes * 60, dt.timezone(dt.timedelta(hours=8)))
    return stamp.isoformat()


def _depth(layer: str, fid: int, value, at: str, **extra) -> dict:
    return {"layer": layer, "feature_id": fid, "kind": "depth_cm", "value": value, "observed_at": at, **extra}


def _rain(fid: int, value, at: str) -> dict:
    return {"layer": "rain_gauges", "feature_id": fid, "kind": "rain_mm", "value": value, "observed_at": at}


def _stored(database) -> int:
    return execute(database, "SELECT count(*) FROM geoapp_readings")[0][0]


def _feature(payload: dict, layer: str, fid: int) -> dict:
    return next(f for f in payload["features"] if f["layer"] == layer and f["fid"] == fid)


@pytest.fixture
def sensor(app):
    return _token(app, "sensor", "gauge-7")


@pytest.fixture
def commander(app):
    return _token(app, "commander", "duty-commander")


# -- readings in ----------------------------------------------------------------------------------


def test_a_reading_changes_the_level_and_a_resend_is_not_stored_twice(client, sensor, commander, clock, database):
    before = _feature(client.get(LIVE, headers=commander).json, "underpass_culverts", 2)
    assert before["level"] == "stale" and before["depth_cm"] is None  # no reading yet: not "normal", not safe
    reading = _depth("underpass_culverts", 2, 31, _at(clock, -1))
    assert client.post(READINGS, json=reading, headers=sensor).json == {"stored": 1, "duplicates": 0}
    assert client.post(READINGS, json=reading, headers=sensor).json == {"stored": 0, "duplicates": 1}
    assert _stored(database) == 1
    after = _feature(client.get(LIVE, headers=commander).json, "underpass_culverts", 2)
    closure_depth = after["thresholds"]["danger"]
    assert closure_depth <= 31 and after["level"] == "danger" and after["depth_cm"] == 31
    assert after["recommend"] == "close"  # at the closure depth an underpass is to be closed
    assert after["observed_at"].startswith(dt.datetime.fromtimestamp(clock() - 60, dt.UTC).strftime("%Y-%m-%dT%H:%M"))


def test_a_batch_is_stored_whole_and_counts_its_duplicates(client, sensor, clock, database):
    batch = [_depth("waterlogging_points", 1, v, _at(clock, -10 + i)) for i, v in enumerate((0, 4, 9, 16))]
    batch.append(batch[0])  # the same reading twice in one batch
    response = client.post(READINGS, json={"readings": batch}, headers=sensor)
    assert response.status_code == 201 and response.json == {"stored": 4, "duplicates": 1}
    assert _stored(database) == 4


def test_the_same_time_from_another_source_is_another_reading(client, sensor, app, clock, database):
    other = _token(app, "sensor", "gauge-8")
    at = _at(clock, -2)
    client.post(READINGS, json=_depth("waterlogging_points", 1, 10, at), headers=sensor)
    client.post(READINGS, json=_depth("waterlogging_points", 1, 12, at), headers=other)
    sources = execute(database, "SELECT source FROM geoapp_readings ORDER BY source")
    assert [row[0] for row in sources] == ["gauge-7", "gauge-8"]  # the token names the device


def _bad_readings(clock) -> dict[str, tuple[object, str]]:
    """Every reading the issue lists as refused, and the parameter its error must name."""
    now = _at(clock)
    ok = _depth("waterlogging_points", 1, 10, now)
    return {
        "unknown layer": ({**ok, "layer": "no_such_layer"}, "layer"),
        "unknown feature": ({**ok, "feature_id": 999_999}, "feature_id"),
        "a layer that is not monitored": ({**ok, "layer": "manhole_covers"}, "layer"),
        "negative depth": ({**ok, "value": -1}, "value"),
        "depth over 500 cm": ({**ok, "value": 500.5}, "value"),
        "negative rain": (_rain(1, -0.1, now), "value"),
        "rain over 300 mm": (_rain(1, 300.1, now), "value"),
        "more than 5 minutes ahead": ({**ok, "observed_at": _at(clock, 5.5)}, "observed_at"),
        "unparseable time": ({**ok, "observed_at": "yesterday at noon"}, "observed_at"),
        "no time zone": ({**ok, "observed_at": now[:19]}, "observed_at"),
        "a depth for a rain gauge": ({**_rain(1, 3, now), "kind": "depth_cm"}, "kind"),
        "a value that is text": ({**ok, "value": "12"}, "value"),
        "no value": ({k: v for k, v in ok.items() if k != "value"}, "value"),
        "an unknown member": ({**ok, "depth": 3}, "depth"),
        "a batch over 1,000": ({"readings": [ok] * 1001}, "readings"),
        "an empty batch": ({"readings": []}, "readings"),
        "one bad reading in a batch": ({"readings": [ok, {**ok, "value": 900}]}, "readings[1].value"),
    }


def test_every_bad_reading_is_refused_with_a_clear_error_and_nothing_is_stored(client, sensor, clock, database):
    audit = audit_rows(database)
    for case, (body, parameter) in _bad_readings(clock).items():  # one store: each case must leave it as it was
        response = client.post(READINGS, json=body, headers=sensor)
        assert response.status_code == 400, (case, response.json)
        error = response.json["error"]
        assert error["code"] == "invalid_parameter" and error["parameter"] == parameter, case
        assert len(error["message"]) > 20, case
        assert _stored(database) == 0 and audit_rows(database) == audit, case


def test_malformed_json_and_a_body_that_is_not_json_are_refused(client, sensor, database):
    for data, content_type in (('{"layer": ', "application/json"), ("layer=x", "application/x-www-form-urlencoded")):
        response = client.post(READINGS, data=data, headers={**sensor, "Content-Type": content_type})
        assert response.status_code == 400 and response.json["error"]["parameter"] == "body"
    assert _stored(database) == 0


@pytest.mark.backends("gpkg")  # roles are checked before the store is asked: one backend says it
@pytest.mark.parametrize(
    "role, status", [("anonymous", 401), ("viewer", 403), ("planner", 403), ("sensor", 201), ("commander", 201)]
)
def test_readings_need_a_token_or_a_sign_in_with_the_role(app, client, clock, database, role, status):
    headers = {} if role == "anonymous" else _token(app, role)
    response = client.post(READINGS, json=_depth("waterlogging_points", 1, 3, _at(clock)), headers=headers)
    assert response.status_code == status
    assert _stored(database) == (1 if status == 201 else 0)


def test_a_commanders_report_from_the_page_is_a_reading_under_their_name(app, users, clock, database):
    client = app.test_client()
    _, csrf = login(client, "commander")
    headers = {"X-CSRFToken": csrf}
    refused = client.post(
        READINGS, json=_depth("waterlogging_points", 2, 8, _at(clock), source="gauge-7"), headers=headers
    )
    assert refused.status_code == 400 and refused.json["error"]["parameter"] == "source"
    assert (
        client.post(READINGS, json=_depth("waterlogging_points", 2, 8, _at(clock)), headers=headers).status_code == 201
    )
    assert execute(database, "SELECT source FROM geoapp_readings") == [("commander",)]
    no_csrf = client.post(READINGS, json=_depth("waterlogging_points", 2, 9, _at(clock)))
    assert no_csrf.status_code == 403 and _stored(database) == 1


def test_a_batch_that_fails_in_the_store_stores_nothing(app, client, sensor, clock, database):
    batch = [_depth("waterlogging_points", 1, 10 + i, _at(clock, -i)) for i in range(5)]
    run_script(database, fault(database, "INSERT", "geoapp_audit"))  # the audit row is written last
    response = client.post(READINGS, json={"readings": batch}, headers=sensor)
    run_script(database, drop_fault(database, "geoapp_audit"))
    assert response.status_code == 500
    assert _stored(database) == 0
    assert execute(database, "SELECT count(*) FROM geoapp_latest_readings")[0][0] == 0


def test_a_reading_rebuilds_no_layer(app, client, sensor, clock):
    versions = app.extensions["geoapp"].reader.versions()
    client.post(READINGS, json=_depth("waterlogging_points", 1, 20, _at(clock)), headers=sensor)
    assert app.extensions["geoapp"].reader.versions() == versions


# -- the series -----------------------------------------------------------------------------------


def test_the_series_is_returned_in_order_and_downsampled_when_long(app, client, sensor, commander, clock):
    rules = app.extensions["geoapp"].flood_rules
    points = rules.readings.series_points
    depths = [(i * 7) % 60 for i in range(points * 2)]
    for start in range(0, len(depths), 1000):
        batch = [
            _depth("waterlogging_points", 3, d, _at(clock, -(len(depths) - i) / 60))
            for i, d in enumerate(depths[start : start + 1000], start)
        ]
        assert client.post(READINGS, json={"readings": batch}, headers=sensor).status_code == 201
    short = client.get(
        READINGS,
        query_string={"layer": "waterlogging_points", "feature_id": 3, "since": _at(clock, -5)},
        headers=commander,
    ).json
    assert not short["downsampled"] and [p[1] for p in short["points"]] == depths[-len(short["points"]) :]
    assert short["count"] == len(short["points"]) and 290 <= short["count"] <= 301
    long = client.get(READINGS, query_string={"layer": "waterlogging_points", "feature_id": 3}, headers=commander).json
    assert long["count"] == len(depths) and long["downsampled"]
    assert len(long["points"]) <= points
    assert max(p[1] for p in long["points"]) == max(depths)  # downsampling keeps the deepest water
    times = [p[0] for p in long["points"]]
    assert times == sorted(times)


def test_the_series_refuses_what_it_cannot_answer(client, commander, sensor):
    cases = [
        ({"layer": "manhole_covers", "feature_id": 1}, 404, "layer"),
        ({"layer": "waterlogging_points", "feature_id": 99999}, 404, "feature_id"),
        ({"layer": "waterlogging_points"}, 400, "feature_id"),
        ({"layer": "waterlogging_points", "feature_id": 1, "since": "soon"}, 400, "since"),
        ({"layer": "waterlogging_points", "feature_id": 1, "colour": "red"}, 400, "colour"),
    ]
    for params, status, parameter in cases:
        response = client.get(READINGS, query_string=params, headers=commander)
        assert (response.status_code, response.json["error"]["parameter"]) == (status, parameter), params
    assert client.get(READINGS, query_string={"layer": "waterlogging_points", "feature_id": 1}).status_code == 401
    sensor_get = client.get(READINGS, query_string={"layer": "waterlogging_points", "feature_id": 1}, headers=sensor)
    assert sensor_get.status_code == 403  # a sensor posts; it does not read the series


# -- levels and staleness -------------------------------------------------------------------------


def test_each_level_starts_at_the_features_own_threshold(client, sensor, commander, clock, app):
    feature = client.get("/api/layers/waterlogging_points/features/4").json
    danger = feature["properties"]["danger_depth_cm"]
    rules = app.extensions["geoapp"].flood_rules.monitored["waterlogging_points"]
    expected = rules.thresholds(feature["properties"])
    assert expected["danger"] == danger  # its own dangerous depth, not the layer's default
    for depth in sorted({0, 4.9, 5, 14.9, 15, danger - 0.5, danger, danger + 20}):
        clock.advance(60)
        client.post(READINGS, json=_depth("waterlogging_points", 4, depth, _at(clock)), headers=sensor)
        live = _feature(client.get(LIVE, headers=commander).json, "waterlogging_points", 4)
        reached = [level for level in LEVELS[1:] if depth >= expected[level]]
        assert live["level"] == (reached[-1] if reached else "normal"), depth
        assert live["thresholds"] == expected


def test_a_feature_without_a_recent_reading_is_stale_never_safe(client, sensor, commander, clock, app):
    stale_after = app.extensions["geoapp"].flood_rules.stale_after_minutes
    client.post(READINGS, json=_depth("waterlogging_points", 5, 0, _at(clock, -stale_after - 90)), headers=sensor)
    old = _feature(client.get(LIVE, headers=commander).json, "waterlogging_points", 5)
    assert old["level"] == "stale" and old["depth_cm"] == 0 and old["observed_at"]  # "no data since ..."
    client.post(READINGS, json=_depth("waterlogging_points", 5, 0, _at(clock)), headers=sensor)
    assert _feature(client.get(LIVE, headers=commander).json, "waterlogging_points", 5)["level"] == "normal"
    clock.advance((stale_after + 1) * 60)  # no news for longer than the rules allow
    assert _feature(client.get(LIVE, headers=commander).json, "waterlogging_points", 5)["level"] == "stale"


def test_the_trend_is_the_rise_over_the_last_hour_and_the_list_is_by_severity(client, sensor, commander, clock):
    readings = [
        _depth("waterlogging_points", 1, 5, _at(clock, -70)),
        _depth("waterlogging_points", 1, 8, _at(clock, -50)),
    ]
    readings += [_depth("waterlogging_points", 1, 21, _at(clock, -1)), _depth("underpass_culverts", 1, 40, _at(clock))]
    client.post(READINGS, json={"readings": readings}, headers=sensor)
    live = client.get(LIVE, headers=commander).json
    point = _feature(live, "waterlogging_points", 1)
    assert point["trend_cm_h"] == 21 - 5  # against the reading an hour before the newest
    severities = [levels.severity(f["level"]) for f in live["features"]]
    assert severities == sorted(severities, reverse=True)
    assert live["features"][0]["layer"] == "underpass_culverts" and live["features"][0]["level"] == "danger"
    assert live["updated_at"].startswith(dt.datetime.fromtimestamp(clock(), dt.UTC).strftime("%Y-%m-%dT%H:%M"))


def test_live_data_answers_304_until_something_changes(client, sensor, commander, clock):
    first = client.get(LIVE, headers=commander)
    etag = first.headers["ETag"]
    assert client.get(LIVE, headers={**commander, "If-None-Match": etag}).status_code == 304
    client.post(READINGS, json=_depth("waterlogging_points", 2, 30, _at(clock)), headers=sensor)
    changed = client.get(LIVE, headers={**commander, "If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    assert _feature(changed.json, "waterlogging_points", 2)["depth_cm"] == 30


@pytest.mark.backends("gpkg")  # roles are checked before the store is asked: one backend says it
@pytest.mark.parametrize("role, status", [("anonymous", 401), ("planner", 403), ("sensor", 403), ("viewer", 200)])
def test_the_board_data_is_for_the_board_roles(app, client, role, status):
    headers = {} if role == "anonymous" else _token(app, role)
    for path in (LIVE, "/api/flood/scenario?rain_mm_h=30", "/api/flood/nearest?lon=113.3&lat=33.73"):
        assert client.get(path, headers=headers).status_code == status, path


# -- rain, signals and scenarios ------------------------------------------------------------------


def _expected_signal(totals: dict[int, float]) -> str | None:
    """The rainstorm signals as the national standard words them, written out here independently of the rules."""
    if totals[3] >= 100:
        return "red"
    if totals[3] >= 50:
        return "orange"
    if totals[6] >= 50:
        return "yellow"
    if totals[12] >= 50:
        return "blue"
    return None


@pytest.mark.backends("gpkg")  # the scenario reads the layers' thresholds only, through the reader both share
def test_scenario_signals_and_states_match_the_thresholds(client, commander, app):
    for rate, hours in itertools.product([0, 4, 8.4, 16.7, 25, 33.4, 49.9, 50, 80, 100, 150], [0.5, 1, 3, 6, 12, 24]):
        _check_scenario(client, commander, app, rate, hours)


def _check_scenario(client, commander, app, rate, hours):
    rules = app.extensions["geoapp"].flood_rules
    answer = client.get("/api/flood/scenario", query_string={"rain_mm_h": rate, "hours": hours}, headers=commander).json
    totals = {w: rate * min(hours, w) for w in (1, 3, 6, 12, 24)}
    assert answer["scenario"]["totals"] == {str(w): round(mm, 1) for w, mm in totals.items()}, (rate, hours)
    assert answer["signal"] == _expected_signal(totals), (rate, hours)
    ratios = rules.scenario
    for feature in answer["features"]:
        ratio = rate / feature["ponding_mmh"]
        expected = (
            "danger"
            if ratio >= ratios.danger
            else "warning"
            if ratio >= ratios.warning
            else "attention"
            if ratio >= ratios.attention
            else "normal"
        )
        assert feature["level"] == expected, (rate, hours, feature)
    assert len(answer["features"]) == sum(app.extensions["geoapp"].reader.count(lid) for lid in rules.monitored)


@pytest.mark.backends("gpkg")  # the scenario reads the layers' thresholds only, through the reader both share
def test_each_waterlogging_point_ponds_at_its_own_rain_rate(client, commander):
    rates = {
        f["id"]: f["properties"]["ponding_rain_mmh"]
        for f in client.get("/api/layers/waterlogging_points/features").json["features"]
    }
    answer = client.get("/api/flood/scenario", query_string={"rain_mm_h": 30, "hours": 1}, headers=commander).json
    ours = {f["fid"]: f["ponding_mmh"] for f in answer["features"] if f["layer"] == "waterlogging_points"}
    assert ours == rates


def test_gauge_totals_and_signals_follow_the_readings(client, sensor, app, commander, clock):
    # gauge 1: 10 mm every 10 minutes for 4 hours; gauge 2: 60 mm spread over the last 5 hours by one source, and
    # the same rain reported again by hand (a second source): counted once
    rain = [_rain(1, 10, _at(clock, -10 * i)) for i in range(24)]
    rain += [_rain(2, 12, _at(clock, -60 * i - 30)) for i in range(5)]
    client.post(READINGS, json={"readings": rain}, headers=sensor)
    by_hand = _token(app, "sensor", "manual-gauge-2")
    client.post(
        READINGS, json={"readings": [_rain(2, 12, _at(clock, -60 * i - 29)) for i in range(5)]}, headers=by_hand
    )
    gauges = {g["fid"]: g for g in client.get(LIVE, headers=commander).json["gauges"]}
    one = gauges[1]["totals"]
    assert one == {"1": 60.0, "3": 180.0, "6": 240.0, "12": 240.0, "24": 240.0}  # (now-1h, now]: 6 readings
    assert gauges[1]["signal"] == _expected_signal({int(k): v for k, v in one.items()}) == "red"
    two = gauges[2]["totals"]
    assert two == {"1": 12.0, "3": 36.0, "6": 60.0, "12": 60.0, "24": 60.0}
    assert gauges[2]["signal"] == "yellow"
    live = client.get(LIVE, headers=commander).json
    assert live["signal"] == {"id": "red", "gauge": 1}  # the district's signal is its most severe gauge's


@pytest.mark.backends("gpkg")  # the scenario reads the layers' thresholds only, through the reader both share
def test_the_scenario_refuses_rain_it_cannot_model(client, commander):
    for params, parameter in (
        ({"rain_mm_h": -1}, "rain_mm_h"),
        ({"rain_mm_h": 301}, "rain_mm_h"),
        ({"rain_mm_h": "lots"}, "rain_mm_h"),
        ({"hours": 3}, "rain_mm_h"),
        ({"rain_mm_h": 30, "hours": 0}, "hours"),
        ({"rain_mm_h": 30, "hours": 100}, "hours"),
    ):
        response = client.get("/api/flood/scenario", query_string=params, headers=commander)
        assert response.status_code == 400 and response.json["error"]["parameter"] == parameter, params


# -- nearest resources ----------------------------------------------------------------------------


@pytest.mark.backends("gpkg")  # the reader answers nearest alike over either store (tests/test_spatial.py)
def test_nearest_resources_are_available_ones_and_their_distances_agree_with_the_geodesic(client, commander):
    every = client.get("/api/layers/emergency_resources/features", query_string={"limit": 1000}).json["features"]
    lon, lat = 113.2950, 33.7290
    for kind in (None, "pump_truck", "depot", "squad"):
        params = {"lon": lon, "lat": lat, "k": 4, **({"kind": kind} if kind else {})}
        found = client.get("/api/flood/nearest", query_string=params, headers=commander).json["resources"]
        candidates = [
            f for f in every if f["properties"]["state"] == "available" and kind in (None, f["properties"]["kind"])
        ]
        geodesic = sorted((GEOD.inv(lon, lat, *f["geometry"]["coordinates"])[2], f["id"]) for f in candidates)
        assert [r["fid"] for r in found] == [fid for _, fid in geodesic[:4]], kind
        for resource, (metres, _) in zip(found, geodesic, strict=False):
            assert resource["distance_m"] == pytest.approx(metres, rel=0.005)
            assert resource["state"] == "available"
            assert "contact_phone" in resource  # staff see whom to call


@pytest.mark.backends("gpkg")  # the reader answers nearest alike over either store (tests/test_spatial.py)
def test_nearest_from_a_feature_and_contacts_only_for_staff(app, client, commander):
    from_feature = client.get(
        "/api/flood/nearest", query_string={"layer": "underpass_culverts", "feature_id": 2, "k": 2}, headers=commander
    ).json
    underpass = client.get("/api/layers/underpass_culverts/features/2").json["geometry"]["coordinates"]
    assert from_feature["from"]["lon"] == pytest.approx(underpass[0]) and len(from_feature["resources"]) == 2
    for bad, parameter in (
        ({"lon": 113.3}, "lat"),
        ({"lon": 200, "lat": 33}, "lon"),
        ({"lon": 113.3, "lat": 33.7, "k": 99}, "k"),
    ):
        response = client.get("/api/flood/nearest", query_string=bad, headers=commander)
        assert response.status_code == 400 and response.json["error"]["parameter"] == parameter
    kind = client.get("/api/flood/nearest", query_string={"lon": 113.3, "lat": 33.7, "kind": "boat"}, headers=commander)
    assert kind.status_code == 400 and "pump_truck" in kind.json["error"]["message"]


# -- closures -------------------------------------------------------------------------------------


def test_a_commander_closes_and_reopens_an_underpass_with_its_record_and_audit(client, commander, database):
    audit = audit_rows(database)
    closed = client.post(
        CLOSURES, json={"layer": "underpass_culverts", "feature_id": 4, "reason": "积水 32 cm"}, headers=commander
    )
    assert closed.status_code == 201
    closure = closed.json
    assert (closure["action"], closure["reason"], closure["closed_by"]) == ("close", "积水 32 cm", "duty-commander")
    public = client.get("/api/layers/underpass_culverts/features/4").json  # anonymous: the public map's source
    assert public["properties"]["status"] == "closed"
    assert audit_rows(database) == audit + 1
    again = client.post(
        CLOSURES, json={"layer": "underpass_culverts", "feature_id": 4, "reason": "again"}, headers=commander
    )
    assert again.status_code == 409  # one closure at a time, not two
    listed = client.get(CLOSURES, headers=commander).json["closures"]
    assert [c["id"] for c in listed] == [closure["id"]]
    reopened = client.post(f"{CLOSURES}/{closure['id']}/reopen", json={"reason": "退水"}, headers=commander).json
    assert reopened["reopened_by"] == "duty-commander" and reopened["reopen_reason"] == "退水"
    assert client.get("/api/layers/underpass_culverts/features/4").json["properties"]["status"] == "open"
    assert client.get(CLOSURES, headers=commander).json["closures"] == []
    history = client.get(CLOSURES, query_string={"state": "all"}, headers=commander).json["closures"]
    assert history[0]["closed_at"] < history[0]["reopened_at"]
    feature_history = client.get("/api/layers/underpass_culverts/features/4/history", headers=commander).json["history"]
    assert [e["action"] for e in feature_history[-2:]] == ["close", "reopen"]
    assert client.post(f"{CLOSURES}/{closure['id']}/reopen", json={}, headers=commander).status_code == 409


def test_sealing_an_underground_space_and_what_cannot_be_closed(client, commander):
    sealed = client.post(
        CLOSURES, json={"layer": "underground_spaces", "feature_id": 3, "reason": "入口进水"}, headers=commander
    )
    assert sealed.status_code == 201 and sealed.json["action"] == "seal"
    assert client.get("/api/layers/underground_spaces/features/3").json["properties"]["status"] == "sealed"
    for body, status, parameter in (
        ({"layer": "waterlogging_points", "feature_id": 1, "reason": "x"}, 400, "layer"),
        ({"layer": "underpass_culverts", "feature_id": 99999, "reason": "x"}, 404, "feature_id"),
        ({"layer": "underpass_culverts", "feature_id": 1}, 400, "reason"),
        ({"layer": "underpass_culverts", "feature_id": 1, "reason": "   "}, 400, "reason"),
        ({"layer": "underpass_culverts", "feature_id": "1", "reason": "x"}, 400, "feature_id"),
        ({"layer": "underpass_culverts", "feature_id": 1, "reason": "x", "until": "later"}, 400, "until"),
    ):
        response = client.post(CLOSURES, json=body, headers=commander)
        assert (response.status_code, response.json["error"]["parameter"]) == (status, parameter), body


@pytest.mark.backends("gpkg")  # roles are checked before the store is asked: one backend says it
@pytest.mark.parametrize("role, status", [("anonymous", 401), ("viewer", 403), ("planner", 403), ("sensor", 403)])
def test_a_closure_without_the_commander_role_is_refused_and_changes_nothing(
    app, client, commander, database, role, status
):
    headers = {} if role == "anonymous" else _token(app, role)
    audit = audit_rows(database)
    response = client.post(
        CLOSURES, json={"layer": "underpass_culverts", "feature_id": 5, "reason": "x"}, headers=headers
    )
    assert response.status_code == status
    assert client.get("/api/layers/underpass_culverts/features/5").json["properties"]["status"] == "open"
    assert audit_rows(database) == audit
    held = client.post(
        CLOSURES, json={"layer": "underpass_culverts", "feature_id": 5, "reason": "y"}, headers=commander
    )
    reopen = client.post(f"{CLOSURES}/{held.json['id']}/reopen", json={}, headers=headers)
    assert reopen.status_code == status
    assert client.get("/api/layers/underpass_culverts/features/5").json["properties"]["status"] == "closed"


def test_an_edit_cannot_close_or_reopen_behind_the_closure_record(client, commander):
    feature = client.get("/api/layers/underpass_culverts/features/6")
    response = client.patch(
        "/api/layers/underpass_culverts/features/6",
        json={"properties": {"status": "closed"}},
        headers={**commander, "If-Match": feature.headers["ETag"]},
    )
    assert response.status_code == 400 and response.json["error"]["parameter"] == "status"
    assert "clos" in response.json["error"]["message"]
    assert client.get("/api/layers/underpass_culverts/features/6").json["properties"]["status"] == "open"
    # other fields of an underpass are edited as before
    edited = client.patch(
        "/api/layers/underpass_culverts/features/6",
        json={"properties": {"closure_depth_cm": 28}},
        headers={**commander, "If-Match": feature.headers["ETag"]},
    )
    assert edited.status_code == 200 and edited.json["properties"]["closure_depth_cm"] == 28


def test_a_closed_underpass_is_on_the_live_board_without_a_recommendation(client, sensor, commander, clock):
    client.post(READINGS, json=_depth("underpass_culverts", 7, 45, _at(clock)), headers=sensor)
    assert _feature(client.get(LIVE, headers=commander).json, "underpass_culverts", 7)["recommend"] == "close"
    client.post(CLOSURES, json={"layer": "underpass_culverts", "feature_id": 7, "reason": "45 cm"}, headers=commander)
    live = client.get(LIVE, headers=commander).json
    board = _feature(live, "underpass_culverts", 7)
    assert board["closure"]["reason"] == "45 cm" and board["recommend"] is None and board["status"] == "closed"
    assert [c["fid"] for c in live["closures"]] == [7]


# -- a store made before the flood layers -----------------------------------------------------------


def test_a_store_made_before_the_flood_parts_is_upgraded_in_place_keeping_its_features(registry, demo_data, location):
    from geoapp.core.layers import Registry
    from geoapp.store import create_store, open_store, upgrade_store
    from geoapp.store.base import Reading

    new = {"emergency_resources", "rain_gauges"}
    older = Registry([layer for layer in registry if layer.id not in new])
    data = {k: v for k, v in demo_data.items() if k not in new}
    store = create_store(older, location, data, demo=True, actor=SETUP)
    store.update("construction_hoardings", 1, {"notes": "edited before the upgrade"}, expected_version=1, actor=SETUP)
    store.close()
    for table in ("geoapp_readings", "geoapp_latest_readings", "geoapp_closures"):
        execute(location, f"DROP TABLE {table}")
    execute(location, "UPDATE geoapp_meta SET value = '3' WHERE key = 'schema_version'")
    if str(location).startswith("postgresql://"):  # as a database at the revision before them
        execute(location, "UPDATE geoapp_alembic_version SET version_num = '0001'")
    with pytest.raises(Exception, match="upgrade"):
        open_store(registry, location)
    said = upgrade_store(registry, location)
    assert "emergency_resources" in said or "schema" in said
    store = open_store(registry, location)
    try:
        assert store.get("construction_hoardings", 1).properties["notes"] == "edited before the upgrade"
        assert store.load("emergency_resources").fids.size == 0  # declared since: added empty
        assert store.add_readings(
            [Reading("waterlogging_points", 1, "depth_cm", 3.0, 1_700_000_000_000, "s")], actor=SETUP, received_ms=0
        ) == (1, 0)
        assert store.closures() == []
    finally:
        store.close()
    assert upgrade_store(registry, location)  # again: changes nothing


@pytest.mark.backends("gpkg")  # the reader answers nearest alike over either store (tests/test_spatial.py)
def test_nearest_from_far_outside_the_district_is_refused(client, commander):
    # distances are measured in the district's projected CRS: from the other side of the world they would be wrong
    for lon, lat in ((0, 0), (116.4, 39.9), (113.3, 34.4)):
        response = client.get("/api/flood/nearest", query_string={"lon": lon, "lat": lat}, headers=commander)
        assert response.status_code == 400 and response.json["error"]["parameter"] == "lon", (lon, lat)
    near = client.get("/api/flood/nearest", query_string={"lon": 113.40, "lat": 33.80}, headers=commander)
    assert near.status_code == 200 and near.json["resources"]  # just outside the boundary: a boundary road


def test_a_bad_rule_stops_the_app_naming_the_file_and_the_rule(tmp_path):
    import shutil

    from geoapp.config import PROJECT_ROOT
    from geoapp.core.layers import LayerError, Registry
    from geoapp.flood import rules

    layers = tmp_path / "layers"
    shutil.copytree(PROJECT_ROOT / "layers", layers)
    registry = Registry.load(layers)
    text = (layers / "flood" / "rules.yaml").read_text(encoding="utf-8")
    for broken, says in (
        (text.replace("field: closure_depth_cm", "field: closure_depth"), "'closure_depth' is not a field"),
        (text.replace("stale_after_minutes: 30", "stale_after_minutes: -5"), "stale_after_minutes"),
        (text.replace("recommend_at: danger", "recommend_at: soon"), "recommend_at"),
        ("- just a list\n", "must be a mapping"),
    ):
        (layers / "flood" / "rules.yaml").write_text(broken, encoding="utf-8")
        with pytest.raises(LayerError, match=r"flood/rules\.yaml") as refused:
            rules.load(layers, registry)
        assert says in str(refused.value), str(refused.value)
    (layers / "flood" / "rules.yaml").unlink()
    with pytest.raises(LayerError, match="the flood rules file is missing"):
        rules.load(layers, registry)
