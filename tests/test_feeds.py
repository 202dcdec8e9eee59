"""The public warning feeds: an Atom feed indexing one CAP 1.2 alert per warning, valid against the OASIS schema,
with public values only, on both store backends."""

from __future__ import annotations

import datetime as dt
import re
from urllib.parse import urlsplit

import pytest
from lxml import etree

from geoapp.core.accounts import new_token
from geoapp.errors import ConfigError
from geoapp.flood import alerts
from geoapp.flood.service import Warning
from geoapp.web import create_app
from tests.conftest import CHEAP_ARGON2, SETUP

pytestmark = pytest.mark.backends("gpkg", "postgis")

CAP = {"cap": alerts.CAP_NS}
ATOM = {"a": alerts.ATOM_NS, "georss": alerts.GEORSS_NS, "cap": alerts.CAP_NS}
FEED = "/flood/warnings.atom"
PONDING = "waterlogging_points"
UNDERPASS = "underpass_culverts"
GAUGES = "rain_gauges"
CAP_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+08:00")
RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)")
REASON = "内部：涵洞管护员王某报告，电话 13912345678"
SOURCE = "gauge-secret-device-7"
HOSTILE = "<script>alert(\"x\")</script> & ]]> 'q' <!-- --> &amp;"


def _token(app, role: str) -> dict[str, str]:
    token, digest = new_token()
    app.extensions["geoapp"].store.add_token(f"{role}-feeds-token", digest, (role,), actor=SETUP)
    return {"Authorization": f"Bearer {token}"}


def _ago(clock, minutes: float) -> str:
    """A time ``minutes`` before the flood board's now (the test's clock)."""
    return (dt.datetime.fromtimestamp(clock(), dt.UTC) - dt.timedelta(minutes=minutes)).isoformat(timespec="seconds")


def _features(client, layer: str, headers=None) -> list[dict]:
    found = client.get(f"/api/layers/{layer}/features?limit=1000", headers=headers or {})
    assert found.status_code == 200, found.json
    return found.json["features"]


def _path(url: str) -> str:
    parts = urlsplit(url)
    assert parts.scheme in ("http", "https") and parts.netloc  # absolute, as a subscriber needs
    return parts.path


def check_atom(body: bytes) -> etree._Element:
    """The feed parses and has what RFC 4287 requires of a feed and of each entry."""
    root = etree.fromstring(body)
    assert root.tag == f"{{{alerts.ATOM_NS}}}feed"
    for name in ("id", "title", "updated"):
        assert len(root.findall(f"a:{name}", ATOM)) == 1, name
    assert RFC3339.fullmatch(root.findtext("a:updated", namespaces=ATOM))
    assert root.findall("a:author/a:name", ATOM)  # a feed names an author when its entries do not
    assert root.find("a:link[@rel='self']", ATOM).get("type") == "application/atom+xml"
    ids = []
    for entry in root.findall("a:entry", ATOM):
        for name in ("id", "title", "updated"):
            assert len(entry.findall(f"a:{name}", ATOM)) == 1, name
        assert RFC3339.fullmatch(entry.findtext("a:updated", namespaces=ATOM))
        assert entry.findtext("a:id", namespaces=ATOM).startswith("tag:")
        alternate = entry.findall("a:link[@rel='alternate']", ATOM)  # no content: an alternate link is required
        assert len(alternate) == 1 and alternate[0].get("type") == "application/cap+xml"
        ids.append(entry.findtext("a:id", namespaces=ATOM))
    assert len(ids) == len(set(ids))
    return root


def check_cap(body: bytes) -> etree._Element:
    """The alert validates against the vendored OASIS CAP 1.2 schema."""
    doc = etree.fromstring(body)
    alerts.cap_schema().assertValid(doc)
    return doc


@pytest.fixture
def storm(app, client, clock):
    """An underpass in danger and closed, a waterlogging point at warning, a red rainstorm signal."""
    sensor, commander = _token(app, "sensor"), _token(app, "commander")
    underpass = _features(client, UNDERPASS)[0]
    point = next(f for f in _features(client, PONDING) if (f["properties"].get("danger_depth_cm") or 30) > 20)
    gauge = _features(client, GAUGES)[0]
    readings = [
        {
            "layer": UNDERPASS,
            "feature_id": underpass["id"],
            "kind": "depth_cm",
            "value": 120,
            "observed_at": _ago(clock, 3),
        },
        {"layer": PONDING, "feature_id": point["id"], "kind": "depth_cm", "value": 18, "observed_at": _ago(clock, 2)},
    ]
    readings += [
        {"layer": GAUGES, "feature_id": gauge["id"], "kind": "rain_mm", "value": 30, "observed_at": _ago(clock, m)}
        for m in (40, 30, 20, 10)
    ]
    posted = client.post(
        "/api/readings", json={"readings": [{**r, "source": SOURCE} for r in readings]}, headers=sensor
    )
    assert posted.status_code == 201, posted.json
    closed = client.post(
        "/api/flood/closures",
        json={"layer": UNDERPASS, "feature_id": underpass["id"], "reason": REASON},
        headers=commander,
    )
    assert closed.status_code == 201, closed.json
    return {"underpass": underpass, "point": point, "gauge": gauge, "closure": closed.json, "commander": commander}


def _alerts(client, feed) -> dict[str, etree._Element]:
    """Every alert the feed links to, fetched and validated, by the key in its address."""
    out = {}
    for entry in feed.findall("a:entry", ATOM):
        url = entry.find("a:link[@rel='alternate']", ATOM).get("href")
        got = client.get(url)
        assert got.status_code == 200
        assert got.mimetype == "application/cap+xml"
        assert got.headers["Cache-Control"] in ("public, max-age=30", "max-age=30, public")
        out[_path(url).rsplit("/", 1)[1].removesuffix(".cap")] = check_cap(got.data)
    return out


def _circle(info) -> tuple[float, float, float]:
    text = info.findtext("cap:area/cap:circle", namespaces=CAP)
    point, radius = text.split(" ")
    lat, lon = point.split(",")
    return float(lat), float(lon), float(radius)


def test_the_feed_lists_each_warning_and_every_alert_is_valid_cap(app, client, storm):
    flood = app.extensions["geoapp"].flood
    warnings = {w.key: w for w in flood.warnings()}
    underpass, point, closure = storm["underpass"], storm["point"], storm["closure"]
    expected = {
        "signal-red",
        f"closure-{closure['id']}",
        f"level-{UNDERPASS}-{underpass['id']}-danger",
        f"level-{PONDING}-{point['id']}-warning",
    }
    assert expected <= set(warnings)

    got = client.get(FEED)
    assert got.status_code == 200
    assert got.headers["Content-Type"] == "application/atom+xml; charset=utf-8"
    assert got.headers["Cache-Control"] in ("public, max-age=30", "max-age=30, public")
    assert got.headers["ETag"]
    assert client.get(FEED, headers={"If-None-Match": got.headers["ETag"]}).status_code == 304
    feed = check_atom(got.data)
    entries = feed.findall("a:entry", ATOM)
    assert len(entries) == len(warnings)  # one entry per warning
    entry_ids = {e.findtext("a:id", namespaces=ATOM) for e in entries}
    assert entry_ids == {alerts.tag("geoapp@district.example", f"flood/warnings/{key}") for key in warnings}
    for entry in entries:
        assert RFC3339.fullmatch(entry.findtext("a:updated", namespaces=ATOM))
        assert entry.findtext("cap:status", namespaces=ATOM) == "Exercise"

    cap = _alerts(client, feed)
    assert set(cap) == set(warnings)
    severity = {
        "signal-red": "Extreme",
        f"closure-{closure['id']}": "Severe",
        f"level-{UNDERPASS}-{underpass['id']}-danger": "Severe",
        f"level-{PONDING}-{point['id']}-warning": "Moderate",
    }
    for key, doc in cap.items():
        w = warnings[key]
        assert doc.findtext("cap:sender", namespaces=CAP) == "geoapp@district.example"
        assert CAP_TIME.fullmatch(doc.findtext("cap:sent", namespaces=CAP))
        assert doc.findtext("cap:sent", namespaces=CAP) == alerts.cap_time(w.since_ms)
        assert doc.findtext("cap:identifier", namespaces=CAP) == alerts.identifier(w, "geoapp@district.example")
        assert not re.search(r"[\s,<&]", doc.findtext("cap:identifier", namespaces=CAP))
        # the demo district is synthetic: its alerts are an exercise, and say so
        assert doc.findtext("cap:status", namespaces=CAP) == "Exercise"
        assert "Synthetic demo data" in doc.findtext("cap:note", namespaces=CAP)
        assert doc.findtext("cap:msgType", namespaces=CAP) == "Alert"
        assert doc.findtext("cap:scope", namespaces=CAP) == "Public"
        infos = doc.findall("cap:info", CAP)
        assert [i.findtext("cap:language", namespaces=CAP) for i in infos] == ["zh-CN", "en-US"]
        for info in infos:
            if key in severity:
                assert info.findtext("cap:severity", namespaces=CAP) == severity[key]
            assert info.findtext("cap:certainty", namespaces=CAP) == "Observed"
            assert _path(info.findtext("cap:web", namespaces=CAP)) == f"/features/{w.layer}/{w.fid}"
        zh, en = infos
        assert re.search(r"[\u4e00-\u9fff]", zh.findtext("cap:headline", namespaces=CAP))
        assert not re.search(r"[\u4e00-\u9fff]", en.findtext("cap:event", namespaces=CAP))

    red = cap["signal-red"]
    for info in red.findall("cap:info", CAP):
        assert info.findtext("cap:category", namespaces=CAP) == "Met"
        assert info.findtext("cap:responseType", namespaces=CAP) == "Shelter"
        assert info.findtext("cap:area/cap:areaDesc", namespaces=CAP) == "XX区（演示数据）"
        for polygon in info.findall("cap:area/cap:polygon", CAP):
            pairs = polygon.text.split(" ")
            assert 4 <= len(pairs) <= alerts.MAX_POLYGON_POINTS and pairs[0] == pairs[-1]
            for pair in pairs:
                lat, lon = map(float, pair.split(","))
                assert 33 < lat < 34.5 and 112.5 < lon < 114  # lat first, around the demo district
        assert info.findall("cap:area/cap:polygon", CAP)
    assert "暴雨红色预警" in red.findtext("cap:info/cap:event", namespaces=CAP)
    assert red.findall("cap:info", CAP)[1].findtext("cap:event", namespaces=CAP) == "Red rainstorm warning"

    # a point warning: a 0.2 km circle around the feature
    lon, lat = point["geometry"]["coordinates"][:2]
    ponding = cap[f"level-{PONDING}-{point['id']}-warning"]
    for info in ponding.findall("cap:info", CAP):
        c_lat, c_lon, radius = _circle(info)
        assert (c_lat, c_lon, radius) == (pytest.approx(lat, abs=1e-6), pytest.approx(lon, abs=1e-6), 0.2)
        assert info.findtext("cap:responseType", namespaces=CAP) == "Monitor"
        assert info.findtext("cap:urgency", namespaces=CAP) == "Expected"
        assert info.findtext("cap:category", namespaces=CAP) == "Safety"
        assert CAP_TIME.fullmatch(info.findtext("cap:expires", namespaces=CAP))
    danger = cap[f"level-{UNDERPASS}-{underpass['id']}-danger"]
    w = warnings[f"level-{UNDERPASS}-{underpass['id']}-danger"]
    for info in danger.findall("cap:info", CAP):
        assert _circle(info)[:2] == (pytest.approx(w.lat, abs=1e-6), pytest.approx(w.lon, abs=1e-6))
        assert info.findtext("cap:responseType", namespaces=CAP) == "Avoid"
        assert info.findtext("cap:urgency", namespaces=CAP) == "Immediate"
    closed = cap[f"closure-{closure['id']}"]
    assert [c.text for c in closed.findall("cap:info/cap:category", CAP)] == ["Safety", "Infra"] * 2
    assert closed.findtext("cap:info/cap:responseType", namespaces=CAP) == "Avoid"
    # the entry carries a GeoRSS point "lat lon"
    entry = next(e for e in entries if e.findtext("a:id", namespaces=ATOM).endswith(f"-{point['id']}-warning"))
    g_lat, g_lon = map(float, entry.findtext("georss:point", namespaces=ATOM).split())
    assert (g_lat, g_lon) == (pytest.approx(lat, abs=1e-6), pytest.approx(lon, abs=1e-6))


def test_no_internal_value_reaches_either_feed(app, client, storm):
    staff = storm["commander"]
    secrets = {REASON, SOURCE, "13912345678", "commander-feeds-token", "sensor-feeds-token", "tests"}
    internal = (
        (PONDING, ("contact_phone", "notes")),
        (UNDERPASS, ("keeper_phone",)),
        ("underground_spaces", ("contact",)),
    )
    for layer, fields in internal:
        for feature in _features(client, layer, staff):
            secrets.update(str(feature["properties"][f]) for f in fields if feature["properties"].get(f))
    resources = _features(client, "emergency_resources", staff)
    secrets.update(
        str(r["properties"][f]) for r in resources for f in ("contact", "contact_phone") if r["properties"].get(f)
    )
    secrets = {s for s in secrets if len(s) >= 5}
    assert len(secrets) > 10  # the demo's phone numbers and notes are among them
    feed = client.get(FEED)
    texts = [feed.get_data(as_text=True)]
    for entry in check_atom(feed.data).findall("a:entry", ATOM):
        texts.append(client.get(entry.find("a:link[@rel='alternate']", ATOM).get("href")).get_data(as_text=True))
    assert len(texts) >= 5
    for text in texts:
        leaked = {s for s in secrets if s in text}
        assert leaked == set()


def test_a_hostile_feature_name_is_text_in_both_feeds(app, client, storm):
    point = storm["point"]
    url = f"/api/layers/{PONDING}/features/{point['id']}"
    version = client.get(url).json["version"]
    changed = client.patch(
        url, json={"properties": {"name": HOSTILE}}, headers={**storm["commander"], "If-Match": f'"{version}"'}
    )
    assert changed.status_code == 200, changed.json
    feed = client.get(FEED)
    root = check_atom(feed.data)
    assert b"<script>" not in feed.data
    entry = next(
        e for e in root.findall("a:entry", ATOM) if f"-{point['id']}-warning" in e.findtext("a:id", namespaces=ATOM)
    )
    assert HOSTILE in entry.findtext("a:title", namespaces=ATOM)
    assert HOSTILE in entry.findtext("a:summary", namespaces=ATOM)
    alert = client.get(entry.find("a:link[@rel='alternate']", ATOM).get("href"))
    assert b"<script>" not in alert.data
    doc = check_cap(alert.data)  # still parses and validates
    for info in doc.findall("cap:info", CAP):
        assert HOSTILE in info.findtext("cap:headline", namespaces=CAP)
        assert HOSTILE in info.findtext("cap:area/cap:areaDesc", namespaces=CAP)


def test_all_clear_is_an_empty_valid_feed_and_an_unknown_key_is_404(app, client):
    got = client.get(FEED)
    assert got.status_code == 200
    feed = check_atom(got.data)
    assert feed.findall("a:entry", ATOM) == []
    assert "Synthetic demo data" in feed.findtext("a:subtitle", namespaces=ATOM)
    again = client.get(FEED, headers={"If-None-Match": got.headers["ETag"]})
    assert again.status_code == 304  # the empty feed's ETag follows the warnings, not the clock
    for key in ("signal-red", "no-such-warning", "level-x-1-danger"):
        missing = client.get(f"/flood/warnings/{key}.cap", headers={"Accept": "text/html"})
        assert missing.status_code == 404
        assert missing.mimetype == "application/json"
        assert missing.json["error"]["code"] == "not_found"
        assert missing.json["error"]["parameter"] == "key"


def test_the_feeds_need_no_sign_in_and_keep_public_caching(client, storm):
    for url in (FEED, f"/flood/warnings/closure-{storm['closure']['id']}.cap"):
        for headers in ({}, storm["commander"]):
            got = client.get(url, headers=headers)
            assert got.status_code == 200
            assert "no-store" not in got.headers["Cache-Control"]
            assert got.headers["X-Content-Type-Options"] == "nosniff"


def test_a_real_districts_alerts_are_actual_and_the_sender_is_checked(app, database):
    """Outside the synthetic demo the status is Actual and no exercise note is given; a bad sender stops the app."""
    svc = app.extensions["geoapp"]
    links = alerts.Links(
        feed="https://onemap.example/flood/warnings.atom",
        home="https://onemap.example/",
        alert=lambda key: f"https://onemap.example/flood/warnings/{key}.cap",
        feature=lambda layer, fid: f"https://onemap.example/features/{layer}/{fid}",
    )
    ctx = alerts.Context("bureau.example.gov.cn", False, svc.flood.rules, svc.registry, None, links)
    w = Warning(
        key="level-waterlogging_points-1-danger",
        kind="level",
        level="danger",
        since_ms=1_784_507_400_123,  # 2026-07-20T08:30:00.123+08:00
        layer=PONDING,
        fid=1,
        name="点\x01一",
        lon=113.3,
        lat=33.7,
        depth_cm=31.0,
        threshold_cm=30.0,
    )
    doc = check_cap(alerts.cap_alert(w, ctx))
    assert doc.findtext("cap:status", namespaces=CAP) == "Actual"
    assert doc.find("cap:note", CAP) is None
    assert doc.findtext("cap:sent", namespaces=CAP) == "2026-07-20T08:30:00+08:00"
    assert (
        doc.findtext("cap:identifier", namespaces=CAP)
        == "bureau.example.gov.cn.level-waterlogging_points-1-danger.20260720T083000123"
    )
    assert "点一" in doc.findtext("cap:info/cap:headline", namespaces=CAP)  # a control character is dropped
    check_atom(alerts.atom_feed([w], ctx, 0))
    for bad in ("a b", "x,y@z.example", "<a>@b.example", "localhost", ""):
        with pytest.raises(ConfigError):
            create_app(
                {
                    "TESTING": True,
                    "GEOAPP_DATABASE": str(database),
                    "GEOAPP_CAP_SENDER": bad,
                    "ARGON2_PARAMETERS": CHEAP_ARGON2,
                }
            )
