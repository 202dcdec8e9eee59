"""The flood API under hostile, odd and concurrent input: every bad request a clear 4xx naming its parameter and
no 500, the public learning nothing before it is told to sign in, nothing stored halfway or twice, no internal
value in a public answer, and the board's cached situation following what was stored.

Most tests run on the GeoPackage; those where the backend matters (transactions, concurrency) on both."""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
import time

import psycopg
import pytest

from geoapp.core.accounts import new_token
from tests.backends import execute, is_postgis, run_script
from tests.conftest import SETUP, login

READINGS = "/api/readings"
LIVE = "/api/flood/live"
CLOSURES = "/api/flood/closures"
NEAREST = "/api/flood/nearest"
SCENARIO = "/api/flood/scenario"
FEED = "/flood/warnings.atom"
CST = dt.timezone(dt.timedelta(hours=8))


def _token(app, role: str, name: str | None = None) -> dict[str, str]:
    token, digest = new_token()
    app.extensions["geoapp"].store.add_token(name or f"{role}-hardening", digest, (role,), actor=SETUP)
    return {"Authorization": f"Bearer {token}"}


def _at(clock, minutes: float = 0, tz: dt.tzinfo = CST) -> str:
    return dt.datetime.fromtimestamp(clock() + minutes * 60, tz).isoformat()


def _depth(layer: str, fid: int, value, at: str, **extra) -> dict:
    return {"layer": layer, "feature_id": fid, "kind": "depth_cm", "value": value, "observed_at": at, **extra}


def _rain(fid: int, value, at: str, **extra) -> dict:
    return {"layer": "rain_gauges", "feature_id": fid, "kind": "rain_mm", "value": value, "observed_at": at, **extra}


def _stored(database) -> int:
    return execute(database, "SELECT count(*) FROM geoapp_readings")[0][0]


def _feature(payload: dict, layer: str, fid: int) -> dict:
    return next(f for f in payload["features"] if f["layer"] == layer and f["fid"] == fid)


def _refused(response, status: int, parameter: str) -> None:
    """The one error shape, with the status and the parameter it names, and a message a person can act on."""
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True)[:300])
    error = response.json["error"]
    assert set(error) == {"code", "message", "parameter"}
    assert error["parameter"] == parameter, error
    assert 10 < len(error["message"]) < 400, error["message"][:400]


@pytest.fixture
def sensor(app):
    return _token(app, "sensor", "gauge-7")


@pytest.fixture
def commander(app):
    return _token(app, "commander", "duty-commander")


# -- readings in: every odd value a 400 naming it ---------------------------------------------------


@contextlib.contextmanager
def _case(name: str):
    """Name the case of a loop in its failure (one app and store for many cases: each setup costs a second)."""
    try:
        yield
    except AssertionError as exc:
        raise AssertionError(f"{name}: {exc}") from exc


def _odd_readings(now: str) -> dict[str, tuple[object, str]]:
    ok = _depth("waterlogging_points", 1, 10, now)
    return {
        "feature_id 0": ({**ok, "feature_id": 0}, "feature_id"),
        "feature_id -1": ({**ok, "feature_id": -1}, "feature_id"),
        "feature_id 2**63 - 1 (none such)": ({**ok, "feature_id": 2**63 - 1}, "feature_id"),
        "feature_id 2**63": ({**ok, "feature_id": 2**63}, "feature_id"),
        "feature_id true": ({**ok, "feature_id": True}, "feature_id"),
        "feature_id 1.0": ({**ok, "feature_id": 1.0}, "feature_id"),
        "feature_id a list": ({**ok, "feature_id": [1]}, "feature_id"),
        "feature_id text": ({**ok, "feature_id": "1"}, "feature_id"),
        "layer a list": ({**ok, "layer": ["waterlogging_points"]}, "layer"),
        "layer an object": ({**ok, "layer": {"id": "waterlogging_points"}}, "layer"),
        "layer that looks like SQL": ({**ok, "layer": "waterlogging_points' OR '1'='1"}, "layer"),
        "kind a list": ({**ok, "kind": ["depth_cm"]}, "kind"),
        "kind an object": ({**ok, "kind": {"depth_cm": 1}}, "kind"),
        "value true": ({**ok, "value": True}, "value"),
        "value 1e308": ({**ok, "value": 1e308}, "value"),
        "value 2**63": ({**ok, "value": 2**63}, "value"),
        "value a list": ({**ok, "value": [10]}, "value"),
        "observed_at a number": ({**ok, "observed_at": 1_700_000_000}, "observed_at"),
        "observed_at T24:00": ({**ok, "observed_at": "2023-11-14T24:00:00+08:00"}, "observed_at"),
        "observed_at a leap second": ({**ok, "observed_at": "2016-12-31T23:59:60Z"}, "observed_at"),
        "observed_at offset +24:00": ({**ok, "observed_at": "2023-11-14T08:00:00+24:00"}, "observed_at"),
        "observed_at year 9999": ({**ok, "observed_at": "9999-12-31T23:59:59-12:00"}, "observed_at"),
        "observed_at year 0001": ({**ok, "observed_at": "0001-01-01T00:00:00+14:00"}, "observed_at"),
        "observed_at date only": ({**ok, "observed_at": "2023-11-14"}, "observed_at"),
        "observed_at 1,000 characters": ({**ok, "observed_at": now + " " * 1000}, "observed_at"),
        "source 101 characters": ({**ok, "source": "s" * 101}, "source"),
        "source a newline": ({**ok, "source": "gauge\n7"}, "source"),
        "source blank": ({**ok, "source": "   "}, "source"),
        "source a number": ({**ok, "source": 7}, "source"),
        "readings an object": ({"readings": {"0": ok}}, "readings"),
        "readings null": ({"readings": None}, "readings"),
        "a batch item that is text": ({"readings": [ok, "x"]}, "readings[1]"),
        "a batch item that is a list": ({"readings": [[ok]]}, "readings[0]"),
        "a batch with another member": ({"readings": [ok], "source": "x"}, "source"),
    }


def test_odd_values_in_a_reading_are_a_400_naming_them_and_store_nothing(client, sensor, clock, database):
    for case, (body, parameter) in _odd_readings(_at(clock)).items():  # one store for all: each must leave it empty
        with _case(case):
            _refused(client.post(READINGS, json=body, headers=sensor), 400, parameter)
            assert _stored(database) == 0


@pytest.mark.parametrize(
    "raw, parameter",
    [
        ('"feature_id": 1000000000000000000000000000000', "feature_id"),  # beyond 64 bits
        ('"feature_id": 1, "value": 100000000000000000000000000000000000', "value"),
        ('"feature_id": 1, "value": 1e400', "body"),
        ('"feature_id": 1, "value": NaN', "body"),
        ('"feature_id": 1, "value": 1, "source": "\\ud800"', "body"),  # a lone surrogate
    ],
)
def test_numbers_json_cannot_hold_and_lone_surrogates_are_a_400(client, sensor, clock, database, raw, parameter):
    body = f'{{"layer": "waterlogging_points", "kind": "depth_cm", "observed_at": "{_at(clock)}", {raw}'
    body += "}" if "value" in raw else ', "value": 1}'
    response = client.post(READINGS, data=body, headers={**sensor, "Content-Type": "application/json"})
    _refused(response, 400, parameter)
    assert _stored(database) == 0


def test_one_instant_written_in_any_offset_is_one_reading(client, sensor, clock, database):
    instant = [
        _at(clock, tz=dt.timezone(dt.timedelta(hours=14))),
        _at(clock, tz=dt.timezone(dt.timedelta(hours=-12))),
        _at(clock, tz=dt.UTC).replace("+00:00", "Z"),
        _at(clock, tz=dt.timezone(dt.timedelta(hours=5, minutes=45))),  # Nepal: not a whole hour
    ]
    answers = [client.post(READINGS, json=_depth("waterlogging_points", 2, 7, at), headers=sensor) for at in instant]
    assert [a.json for a in answers] == [{"stored": 1, "duplicates": 0}] + [{"stored": 0, "duplicates": 1}] * 3
    assert _stored(database) == 1


def test_a_resend_with_another_value_is_not_silently_dropped(client, sensor, clock, database):
    """(source, feature, kind, time) names a reading: the same name with another value is a contradiction the
    sensor must hear about, not a "duplicate" whose value quietly disappears."""
    at = _at(clock, -1)
    first = client.post(READINGS, json=_depth("underpass_culverts", 3, 10, at), headers=sensor)
    assert first.json == {"stored": 1, "duplicates": 0}
    assert client.post(READINGS, json=_depth("underpass_culverts", 3, 10, at), headers=sensor).json == {
        "stored": 0,
        "duplicates": 1,
    }  # the very same reading again: a duplicate, as documented
    other = client.post(READINGS, json=_depth("underpass_culverts", 3, 40, at), headers=sensor)
    assert other.status_code == 409, other.json  # now 201 {"stored": 0, "duplicates": 1}: 40 cm is lost unseen
    assert other.json["error"]["parameter"] in ("value", "observed_at")
    in_batch = client.post(
        READINGS,
        json={"readings": [_depth("underpass_culverts", 4, 5, at), _depth("underpass_culverts", 4, 50, at)]},
        headers=sensor,
    )
    assert in_batch.status_code in (400, 409), in_batch.json  # now 201: one of the two values kept at random
    assert in_batch.json["error"]["parameter"].startswith("readings[")
    assert execute(database, "SELECT value FROM geoapp_readings WHERE fid = 3") == [(10.0,)]


def test_a_batch_of_1000_readings_is_stored_quickly_and_its_resend_too(client, sensor, clock, database):
    batch = [_depth("underground_spaces", 1 + i % 80, i % 300, _at(clock, -i / 30)) for i in range(1000)]
    started = time.perf_counter()
    assert client.post(READINGS, json={"readings": batch}, headers=sensor).json == {"stored": 1000, "duplicates": 0}
    assert client.post(READINGS, json={"readings": batch}, headers=sensor).json == {"stored": 0, "duplicates": 1000}
    assert time.perf_counter() - started < 10
    assert _stored(database) == 1000


# -- the series ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params, parameter",
    [
        ({"until": "9999-12-31T23:59:59-12:00"}, "until"),  # year 10000 in UTC
        ({"since": "9999-12-31T00:00:00-12:00", "until": "9999-12-31T23:59:59-12:00"}, "until"),
        ({"since": "0001-01-01T00:00:00+14:00", "until": "0001-01-02T00:00:00+14:00"}, "since"),  # year 0 in UTC
    ],
)
def test_series_times_at_the_ends_of_the_calendar_are_a_400_not_a_500(client, commander, params, parameter):
    response = client.get(
        READINGS, query_string={"layer": "waterlogging_points", "feature_id": 1, **params}, headers=commander
    )
    _refused(response, 400, parameter)  # now: 500, "year 10000 is out of range" / "year 0 is out of range"


def test_series_range_edges(client, commander, clock):
    base = {"layer": "waterlogging_points", "feature_id": 1}
    at = _at(clock)
    same = client.get(READINGS, query_string={**base, "since": at, "until": at}, headers=commander)
    assert same.status_code == 200 and same.json["count"] == 0 and same.json["points"] == []
    year = {"since": _at(clock, -366 * 24 * 60), "until": at}
    assert client.get(READINGS, query_string={**base, **year}, headers=commander).status_code == 200
    longer = {"since": _at(clock, -367 * 24 * 60), "until": at}
    _refused(client.get(READINGS, query_string={**base, **longer}, headers=commander), 400, "since")
    backwards = {"since": at, "until": _at(clock, -1)}
    _refused(client.get(READINGS, query_string={**base, **backwards}, headers=commander), 400, "since")
    for fid in ("0", "-1", "9223372036854775808", "1.0", "１", "01"):
        response = client.get(READINGS, query_string={**base, "feature_id": fid}, headers=commander)
        _refused(response, 400, "feature_id")
    _refused(
        client.get(READINGS, query_string={**base, "feature_id": "9223372036854775807"}, headers=commander),
        404,
        "feature_id",
    )
    sql = client.get(READINGS, query_string={**base, "layer": "waterlogging_points' OR '1'='1"}, headers=commander)
    _refused(sql, 404, "layer")


def test_a_series_of_one_instant_from_many_sources_is_downsampled_to_one_point(app, client, sensor, clock):
    """More readings than the series' points at a single instant (since == until): one bucket, the deepest water."""
    points = app.extensions["geoapp"].flood_rules.readings.series_points
    at = _at(clock, -1)
    batch = [_depth("waterlogging_points", 2, i % 97, at, source=f"logger-{i}") for i in range(points + 10)]
    assert client.post(READINGS, json={"readings": batch}, headers=sensor).json["stored"] == points + 10
    commander = _token(app, "commander")
    series = client.get(
        READINGS,
        query_string={"layer": "waterlogging_points", "feature_id": 2, "since": at, "until": at},
        headers=commander,
    ).json
    assert series["count"] == points + 10 and series["downsampled"]
    assert len(series["points"]) == 1 and series["points"][0][1] == 96


def test_a_downsampled_rain_series_adds_up_to_the_boards_total(app, client, sensor, commander, clock):
    """A gauge read by its logger and again by hand: the board counts the rain once (the larger source's total);
    the series downsampled "so totals stay right" must not count it twice."""
    by_hand = _token(app, "sensor", "manual-gauge-2")
    for headers in (sensor, by_hand):
        rain = [_rain(2, 0.5, _at(clock, -2 * i)) for i in range(600)]  # 300 mm over the last 20 hours
        assert client.post(READINGS, json={"readings": rain}, headers=headers).json["stored"] == 600
    board = next(g for g in client.get(LIVE, headers=commander).json["gauges"] if g["fid"] == 2)
    assert board["totals"]["24"] == 300.0
    series = client.get(READINGS, query_string={"layer": "rain_gauges", "feature_id": 2}, headers=commander).json
    assert series["downsampled"]
    assert sum(p[1] for p in series["points"]) == pytest.approx(300.0)  # now 600: both sources summed


def test_the_series_error_does_not_echo_a_huge_input(client, commander):
    huge = "x" * 5000
    for params, parameter, status in (
        ({"layer": huge, "feature_id": 1}, "layer", 404),
        ({"layer": "waterlogging_points", "feature_id": 1, "kind": huge}, "kind", 400),
    ):
        _refused(client.get(READINGS, query_string=params, headers=commander), status, parameter)  # now ~5,050 chars
    _refused(client.get(NEAREST, query_string={"layer": huge, "feature_id": 1}, headers=commander), 404, "layer")


# -- who may ask: the public and sensors are told to sign in before anything else ------------------


@pytest.mark.parametrize(
    "path, params",
    [
        (NEAREST, {"layer": "underpass_culverts", "feature_id": 99999}),
        (NEAREST, {"layer": "no_such_layer", "feature_id": 1}),
        (NEAREST, {"lon": "east", "lat": 33.7}),
        (SCENARIO, {"rain_mm_h": "lots"}),
        (READINGS, {"layer": "waterlogging_points", "feature_id": 1, "since": "soon"}),
        (READINGS, {"layer": "waterlogging_points", "feature_id": "abc"}),
    ],
)
def test_the_public_and_a_sensor_are_refused_before_their_parameters_are_looked_at(app, client, path, params):
    """A caller without the role learns nothing from the answer: not whether a feature exists, not how a parameter
    is checked (as POST /api/readings checks the role before the body)."""
    _refused(client.get(path, query_string=params), 401, "Authorization")  # now 404 or 400
    _refused(client.get(path, query_string=params, headers=_token(app, "sensor")), 403, "role")


@pytest.mark.parametrize("path", [LIVE, CLOSURES, READINGS + "?layer=waterlogging_points&feature_id=1"])
def test_a_sensor_token_reads_no_internal_flood_data(app, client, path):
    _refused(client.get(path, headers=_token(app, "sensor")), 403, "role")
    _refused(client.get(path), 401, "Authorization")


def test_a_commanders_session_cannot_close_or_reopen_without_the_csrf_token(app, client, users):
    browser = app.test_client()
    _, csrf = login(browser, "commander")
    body = {"layer": "underpass_culverts", "feature_id": 8, "reason": "积水"}
    _refused(browser.post(CLOSURES, json=body), 403, "csrf_token")
    assert client.get("/api/layers/underpass_culverts/features/8").json["properties"]["status"] == "open"
    closed = browser.post(CLOSURES, json=body, headers={"X-CSRFToken": csrf})
    assert closed.status_code == 201 and closed.json["closed_by"] == "commander"
    _refused(browser.post(f"{CLOSURES}/{closed.json['id']}/reopen", json={}), 403, "csrf_token")
    assert client.get("/api/layers/underpass_culverts/features/8").json["properties"]["status"] == "closed"
    reopened = browser.post(f"{CLOSURES}/{closed.json['id']}/reopen", json={}, headers={"X-CSRFToken": csrf})
    assert reopened.status_code == 200


# -- closures: odd input -------------------------------------------------------------------------


ODD_CLOSURES = [
    ({"layer": 5, "feature_id": 1, "reason": "x"}, 400, "layer"),
    ({"layer": ["underpass_culverts"], "feature_id": 1, "reason": "x"}, 400, "layer"),
    ({"layer": "u" * 100_000, "feature_id": 1, "reason": "x"}, 400, "layer"),
    (
        {"layer": "underpass_culverts'; DROP TABLE geoapp_closures; --", "feature_id": 1, "reason": "x"},
        400,
        "layer",
    ),
    ({"layer": "district_boundary", "feature_id": 1, "reason": "x"}, 400, "layer"),
    ({"layer": "underpass_culverts", "feature_id": 0, "reason": "x"}, 400, "feature_id"),
    ({"layer": "underpass_culverts", "feature_id": 2**63, "reason": "x"}, 400, "feature_id"),
    ({"layer": "underpass_culverts", "feature_id": True, "reason": "x"}, 400, "feature_id"),
    ({"layer": "underpass_culverts", "feature_id": 1.0, "reason": "x"}, 400, "feature_id"),
    ({"layer": "underpass_culverts", "feature_id": 2**63 - 1, "reason": "x"}, 404, "feature_id"),
    ({"layer": "underpass_culverts", "feature_id": 2**31, "reason": "x"}, 404, "feature_id"),
    ({"layer": "underpass_culverts", "feature_id": 1, "reason": "x" * 501}, 400, "reason"),
    ({"layer": "underpass_culverts", "feature_id": 1, "reason": "a\x00b"}, 400, "reason"),
    ({"layer": "underpass_culverts", "feature_id": 1, "reason": ["x"]}, 400, "reason"),
    ({"layer": "underpass_culverts", "feature_id": 1, "reason": False}, 400, "reason"),
]


def test_odd_closures_are_refused_and_change_nothing(client, commander, database):
    for i, (body, status, parameter) in enumerate(ODD_CLOSURES):
        with _case(f"case {i} ({parameter})"):
            _refused(client.post(CLOSURES, json=body, headers=commander), status, parameter)
            assert execute(database, "SELECT count(*) FROM geoapp_closures")[0][0] == 0
            assert client.get("/api/layers/underpass_culverts/features/1").json["properties"]["status"] == "open"


@pytest.mark.parametrize("closure_id", ["2147483648", "9223372036854775808", "１", "99999"])
def test_reopening_a_closure_that_cannot_exist_is_a_404(client, commander, closure_id):
    _refused(client.post(f"{CLOSURES}/{closure_id}/reopen", json={}, headers=commander), 404, "closure")


@pytest.mark.parametrize("closure_id", ["abc", "-1", "01", "0"])
def test_the_404_for_an_unreadable_closure_id_names_what_was_sent(client, commander, closure_id):
    response = client.post(f"{CLOSURES}/{closure_id}/reopen", json={}, headers=commander)
    _refused(response, 404, "closure")
    assert closure_id in response.json["error"]["message"]  # now "no closure 0" for every one of them


# -- scenario and nearest: edges -----------------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        {"rain_mm_h": 300, "hours": "1e-300"},
        {"rain_mm_h": 30, "hours": 0.0001},
        {"rain_mm_h": 0, "hours": 72},
        {"rain_mm_h": 300, "hours": 72},
        {"rain_mm_h": "1e-320", "hours": 1},
    ],
)
def test_scenario_edges_answer(client, commander, params):
    answer = client.get(SCENARIO, query_string=params, headers=commander)
    assert answer.status_code == 200 and answer.json["features"]


def test_scenario_refuses_what_is_not_a_number(client, commander):
    for params, parameter in (
        ({"rain_mm_h": "nan"}, "rain_mm_h"),
        ({"rain_mm_h": "inf"}, "rain_mm_h"),
        ({"rain_mm_h": "1e309"}, "rain_mm_h"),
        ({"rain_mm_h": 30, "hours": "-inf"}, "hours"),
        ({"rain_mm_h": 30, "hours": "1e-400"}, "hours"),  # 0.0 once parsed
        ({"rain_mm_h": 30, "hours": 72.0001}, "hours"),
        ([("rain_mm_h", 1), ("rain_mm_h", 2)], "rain_mm_h"),
    ):
        _refused(client.get(SCENARIO, query_string=params, headers=commander), 400, parameter)


def test_nearest_from_the_ends_of_the_world_is_a_400_not_a_500(client, commander):
    for params in ({"lon": 180, "lat": 90}, {"lon": -180, "lat": -90}, {"lon": 180, "lat": 0}):
        _refused(client.get(NEAREST, query_string=params, headers=commander), 400, "lon")


@pytest.mark.parametrize(
    "params",
    [
        {"lon": 113.3, "lat": 33.7, "k": 20},
        {"lon": 113.3, "lat": 33.7, "k": 20, "kind": "squad"},
        {"layer": "underground_spaces", "feature_id": 1, "k": 20},  # a polygon
        {"layer": "district_boundary", "feature_id": 1},
    ],
)
def test_nearest_at_the_edges_answers(client, commander, params):
    answer = client.get(NEAREST, query_string=params, headers=commander)
    assert answer.status_code == 200, answer.json
    distances = [r["distance_m"] for r in answer.json["resources"]]
    assert distances == sorted(distances) and all(isinstance(d, float) for d in distances)


def test_nearest_refuses_odd_k(client, commander):
    for k in ("0", "-1", "21", "1.5", "9" * 19, "9" * 30, "１"):
        _refused(client.get(NEAREST, query_string={"lon": 113.3, "lat": 33.7, "k": k}, headers=commander), 400, "k")


# -- public answers and the situation cache ------------------------------------------------------


def test_the_public_and_the_internal_situation_never_mix(app, client, sensor, commander, clock):
    """The feeds (public) and the board (internal) are computed from one cache keyed by visibility: whichever is
    asked first, the board keeps its contacts and the feeds never carry them."""
    client.post(READINGS, json=_depth("underpass_culverts", 2, 80, _at(clock)), headers=sensor)
    closed = client.post(
        CLOSURES, json={"layer": "underpass_culverts", "feature_id": 2, "reason": "内部 13912345678"}, headers=commander
    )
    assert closed.status_code == 201
    first_feed = client.get(FEED)  # the public situation is computed (and kept) first
    board = client.get(LIVE, headers=commander)
    underpass = _feature(board.json, "underpass_culverts", 2)
    assert "contact_phone" in underpass["nearest_pump"] and underpass["closure"]["reason"] == "内部 13912345678"
    assert board.headers["ETag"].endswith('-internal"')
    assert "no-store" in board.headers["Cache-Control"]
    second_feed = client.get(FEED)
    assert second_feed.data == first_feed.data
    texts = [second_feed.get_data(as_text=True)]
    texts += [client.get(f"/flood/warnings/{key}.cap").get_data(as_text=True) for key in _keys(app)]
    phone = underpass["nearest_pump"]["contact_phone"]
    for text in texts:
        for secret in ("13912345678", "duty-commander", phone, "gauge-7", "contact"):
            assert secret not in text
    # asked by a commander, the feed is still the public one (not the board's situation)
    assert client.get(FEED, headers=commander).data == first_feed.data


def _keys(app) -> list[str]:
    return [w.key for w in app.extensions["geoapp"].flood.warnings()]


def test_a_poll_sees_a_reading_stored_after_the_situation_was_kept(client, sensor, commander, clock):
    """The kept situation follows every stored reading, even one observed before the newest (an older id order)."""
    client.post(READINGS, json=_depth("waterlogging_points", 3, 2, _at(clock)), headers=sensor)
    etag = client.get(LIVE, headers=commander).headers["ETag"]
    late = client.post(READINGS, json=_depth("waterlogging_points", 4, 40, _at(clock, -3)), headers=sensor)
    assert late.json["stored"] == 1
    again = client.get(LIVE, headers={**commander, "If-None-Match": etag})
    assert again.status_code == 200 and _feature(again.json, "waterlogging_points", 4)["depth_cm"] == 40


# -- transactions and concurrency: both backends ---------------------------------------------------


@pytest.mark.backends("gpkg", "postgis")
def test_a_batch_failing_in_its_middle_stores_nothing(client, sensor, clock, database):
    """The store fails on the third reading of five (as a full disk would): none is kept, nor the newest value."""
    if is_postgis(database):
        fault = (
            "CREATE FUNCTION fault() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'disk full'; END $$;"
            " CREATE TRIGGER fault BEFORE INSERT ON geoapp_readings FOR EACH ROW WHEN (NEW.value = 13)"
            " EXECUTE FUNCTION fault();"
        )
        drop = "DROP TRIGGER fault ON geoapp_readings; DROP FUNCTION fault();"
    else:
        fault = (
            "CREATE TRIGGER fault BEFORE INSERT ON geoapp_readings WHEN NEW.value = 13 "
            "BEGIN SELECT RAISE(ABORT, 'disk full'); END"
        )
        drop = "DROP TRIGGER fault"
    batch = [_depth("waterlogging_points", 1, 10 + i, _at(clock, -5 + i)) for i in range(5)]
    run_script(database, fault)
    try:
        response = client.post(READINGS, json={"readings": batch}, headers=sensor)
    finally:
        run_script(database, drop)
    assert response.status_code >= 500 and set(response.json["error"]) == {"code", "message", "parameter"}
    assert "disk full" not in response.get_data(as_text=True)  # the database's words stay in the log
    assert _stored(database) == 0
    assert execute(database, "SELECT count(*) FROM geoapp_latest_readings")[0][0] == 0
    assert client.post(READINGS, json={"readings": batch}, headers=sensor).json == {"stored": 5, "duplicates": 0}


@pytest.mark.backends("gpkg", "postgis")
def test_two_senders_racing_with_the_same_batch_store_it_once(app, sensor, clock, database):
    batch = {"readings": [_depth("underground_spaces", 1 + i % 80, i % 50, _at(clock, -i / 10)) for i in range(300)]}
    barrier = threading.Barrier(4)
    answers: list = []

    def send():
        client = app.test_client()
        barrier.wait()
        response = client.post(READINGS, json=batch, headers=sensor)
        answers.append((response.status_code, response.json))

    threads = [threading.Thread(target=send) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(status for status, _ in answers) == [201] * 4, answers
    assert sum(body["stored"] for _, body in answers) == 300
    assert all(body["stored"] + body["duplicates"] == 300 for _, body in answers)
    assert _stored(database) == 300


@pytest.mark.backends("postgis")
def test_a_reading_committed_after_a_later_one_reaches_the_board(app, client, sensor, commander, clock, database):
    """Two servers storing at once commit in either order: the board must not miss the reading whose id is lower
    than one it has seen. Each write counts itself in geoapp_meta in its transaction, as the store does, so the
    count follows the commit order."""
    observed = round((clock() - 60) * 1000)
    slow = psycopg.connect(database)  # another server's transaction, still open
    answers = []
    try:
        slow.execute(
            "INSERT INTO geoapp_readings (layer, fid, kind, value, observed_ms, source, received_ms) "
            "VALUES ('waterlogging_points', 5, 'depth_cm', 44, %s, 'gauge-9', %s)",
            (observed, observed),
        )
        slow.execute(
            "INSERT INTO geoapp_latest_readings (layer, fid, kind, value, observed_ms, source) "
            "VALUES ('waterlogging_points', 5, 'depth_cm', 44, %s, 'gauge-9')",
            (observed,),
        )
        slow.execute(
            "INSERT INTO geoapp_meta (key, value) VALUES ('flood_version', '1') ON CONFLICT (key) DO UPDATE "
            "SET value = CAST(CAST(geoapp_meta.value AS BIGINT) + 1 AS TEXT)"
        )
        later = threading.Thread(
            target=lambda: answers.append(
                app.test_client().post(READINGS, json=_depth("waterlogging_points", 6, 1, _at(clock)), headers=sensor)
            )
        )
        later.start()  # its reading gets a higher id, and commits after the slow one
        assert _feature(client.get(LIVE, headers=commander).json, "waterlogging_points", 5)["depth_cm"] is None
        slow.commit()
        later.join(30)
    finally:
        slow.close()
    assert answers and answers[0].json == {"stored": 1, "duplicates": 0}
    board = client.get(LIVE, headers=commander).json
    assert _feature(board, "waterlogging_points", 5)["depth_cm"] == 44
    assert _feature(board, "waterlogging_points", 6)["depth_cm"] == 1
