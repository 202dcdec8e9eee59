"""City management cases on both store backends: the demo year's totals, the indicators against a recomputation from
the raw table, a case routed to its grid cell's squad and worked through every step with an audit row for each, and
the public's reports held until a dispatcher moderates them.

One app per backend for the module; each test makes the cases it changes.
"""

from __future__ import annotations

import collections
import datetime as dt
import io
import json
from zoneinfo import ZoneInfo

import pytest
import shapely
from PIL import ExifTags, Image

from geoapp.cases import indicators
from geoapp.cases.reports import normal_reference
from geoapp.core.accounts import LoginPolicy, check_roles
from geoapp.errors import (
    Forbidden,
    InvalidFeature,
    InvalidParameter,
    NotFound,
    PayloadTooLarge,
    TooManyAttempts,
    Unauthorized,
    WrongStatus,
)
from geoapp.store.base import Actor, Query
from geoapp.web import create_app
from tests.backends import execute, is_postgis
from tests.conftest import CHEAP_ARGON2, demo_copy_in

pytestmark = pytest.mark.backends("gpkg", "postgis")

ZONE = ZoneInfo("Asia/Shanghai")
DISPATCHER = Actor("centre", roles=frozenset({"dispatcher"}))
VIEWER = Actor("viewer", roles=frozenset({"viewer"}))
PUBLIC = Actor("public", "anonymous")


class Clock:
    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def site(backend, request, tmp_path_factory):
    with demo_copy_in(backend, tmp_path_factory.mktemp("cases"), request) as database:
        clock = Clock(dt.datetime(2024, 3, 1, 1, 0, tzinfo=dt.UTC).timestamp())
        app = create_app(
            {
                "TESTING": True,
                "SECRET_KEY": "test-secret",
                "GEOAPP_DATABASE": str(database),
                "ARGON2_PARAMETERS": CHEAP_ARGON2,
                "LOGIN_POLICY": LoginPolicy(clock=clock),
                "CLOCK": clock,
            }
        )
        yield app.extensions["geoapp"], database, clock
        app.extensions["geoapp"].close()


def squad_member(name: str, squad: str) -> Actor:
    return Actor(name, roles=frozenset({"squad", f"squad:{squad}"}))


def _moment(value) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC)
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def _recomputed(database, by: str) -> dict[str | None, tuple]:
    """The indicators worked out here from the raw table, with plain loops (not the code under test)."""
    rows = execute(
        database,
        "SELECT status, registered_at, dispatched_at, disposed_at, deadline_at, grid, squad, department, "
        "category, subcategory, source FROM cases",
    )
    groups: dict = collections.defaultdict(lambda: [0, 0, 0, 0, 0.0, 0])
    for status, registered, dispatched, disposed, deadline, *keys in rows:
        if status not in ("registered", "dispatched", "disposed", "verified", "closed") or registered is None:
            continue
        registered, dispatched, disposed, deadline = map(_moment, (registered, dispatched, disposed, deadline))
        fields = dict(zip(("grid", "squad", "department", "category", "subcategory", "source"), keys, strict=True))
        key = {"total": None, "month": registered.astimezone(ZONE).strftime("%Y-%m")}.get(by, fields.get(by))
        group = groups[key or None]
        group[0] += 1
        if status in ("disposed", "verified", "closed"):
            group[1] += 1
            if dispatched is not None and disposed is not None:
                group[4] += (disposed - dispatched).total_seconds() / 3600
                group[5] += 1
        if status == "closed":
            group[2] += 1
            if disposed is not None and deadline is not None and disposed <= deadline:
                group[3] += 1
    return {
        key: (due, disposed, closed, on_time, None if not n else round(hours / n, 2))
        for key, (due, disposed, closed, on_time, hours, n) in groups.items()
    }


def _as_tuples(rows: list[indicators.Indicator]) -> dict:
    return {r.key: (r.due, r.disposed, r.closed, r.on_time, r.avg_disposal_h) for r in rows}


def test_the_demo_year_gives_the_work_report_totals(site):
    svc, database, _ = site
    (total,) = svc.cases.indicators(VIEWER, "total", end=dt.datetime(2024, 1, 1, tzinfo=ZONE))
    assert (total.due, total.disposed, total.disposal_rate) == (14183, 14067, 99.18)
    by_source = {r.key: r.due for r in svc.cases.indicators(VIEWER, "source")}
    assert (by_source["hotline"], by_source["web"]) == (2183, 58)
    assert execute(database, "SELECT count(*) FROM cases WHERE details NOT LIKE ?", ("%演示数据%",)) == [(0,)]


@pytest.mark.parametrize("by", indicators.DIMENSIONS)
def test_the_indicators_equal_a_recomputation_from_the_table(site, by):
    svc, database, _ = site
    expected = _recomputed(database, by)
    got = _as_tuples(svc.cases.indicators(VIEWER, by))
    assert got == expected
    if is_postgis(database):  # the database's own GROUP BY (what a million cases use) gives the same
        statuses = {"registered": svc.cases.workflow.registered, "disposed": svc.cases.workflow.disposed}
        statuses["closed"] = svc.cases.workflow.closed
        sql = svc.store.case_indicators(by, statuses)
        assert _as_tuples([indicators.indicator(k or None, *rest) for k, *rest in sql]) == expected
    rates = svc.cases.indicators(VIEWER, by)
    for row in rates:
        assert row.close_rate == round(100 * row.closed / row.due, 2)
        assert row.on_time_rate == round(100 * row.on_time / row.due, 2)


def test_a_period_counts_only_the_cases_registered_in_it(site):
    svc, _database, _ = site
    start, end = dt.datetime(2023, 7, 1, tzinfo=ZONE), dt.datetime(2023, 8, 1, tzinfo=ZONE)
    (july,) = svc.cases.indicators(VIEWER, start=start, end=end)
    by_month = {r.key: r for r in svc.cases.indicators(VIEWER, "month")}
    assert july.due == by_month["2023-07"].due and july.closed == by_month["2023-07"].closed
    assert len(by_month) == 12


def test_a_case_goes_to_its_cells_squad_and_every_step_is_audited(site):
    svc, _database, clock = site
    cases = svc.cases
    cells = cases._all(Query(), "grid_cells")
    cell = sorted(cells, key=lambda c: c["code"])[len(cells) // 3]
    geometry = svc.reader.get("grid_cells", cell["_fid"], "internal").geometry
    point = geometry.representative_point()
    created = cases.collect(DISPATCHER, {"subcategory": "street_vending", "details": "早市占道"}, point)
    props = created.properties
    assert (props["grid"], props["squad"], props["community"]) == (cell["code"], cell["squad"], cell["community"])
    assert (props["status"], props["department"], props["category"]) == ("collected", "enforcement", "street_order")
    assert props["code"].startswith("AJ2024-")
    fid, version = created.fid, created.version

    mine, other = squad_member("squad-a", cell["squad"]), squad_member("squad-b", "另一中队")
    with pytest.raises(Forbidden):
        cases.step(mine, fid, "register", version=version)  # a squad does not register
    case = cases.step(DISPATCHER, fid, "register", version=version)
    assert case.properties["deadline_at"] == "2024-03-01T03:00:00Z"  # 2 hours for street vending
    clock.now += 600
    case = cases.step(DISPATCHER, fid, "dispatch", version=case.version)
    queue = cases.queue(mine)
    assert fid in [row["_fid"] for row in queue]
    assert fid not in [row["_fid"] for row in cases.queue(other)]
    with pytest.raises(NotFound):
        cases.step(other, fid, "dispose", version=case.version, note="done")  # another squad's case
    with pytest.raises(InvalidParameter):
        cases.step(mine, fid, "dispose", version=case.version)  # what was done must be said
    clock.now += 3600
    case = cases.step(mine, fid, "dispose", version=case.version, note="摊贩已劝离")
    assert fid not in [row["_fid"] for row in cases.queue(mine)]
    case = cases.step(DISPATCHER, fid, "reject", version=case.version, note="现场仍有摊位")
    assert (case.properties["status"], case.properties["disposed_at"]) == ("dispatched", None)
    case = cases.step(mine, fid, "dispose", version=case.version, note="已清理")
    case = cases.step(DISPATCHER, fid, "check", version=case.version)
    with pytest.raises(WrongStatus):
        cases.step(DISPATCHER, fid, "dispatch", version=case.version)
    case = cases.step(DISPATCHER, fid, "close", version=case.version)
    assert case.properties["status"] == "closed" and case.properties["closed_at"] == "2024-03-01T02:10:00Z"

    history = svc.store.history("cases", fid)
    steps = [(h.actor, h.changes.get("status", [None, None])[1]) for h in history]
    assert steps == [
        ("centre", "collected"),
        ("centre", "registered"),
        ("centre", "dispatched"),
        ("squad-a", "disposed"),
        ("centre", "dispatched"),
        ("squad-a", "disposed"),
        ("centre", "verified"),
        ("centre", "closed"),
    ]
    assert history[3].changes["last_note"][1] == "摊贩已劝离"


def test_a_dispatcher_may_route_elsewhere_with_a_reason_the_audit_keeps(site):
    svc, _database, _ = site
    cases = svc.cases
    point = shapely.Point(113.305, 33.735)
    case = cases.collect(DISPATCHER, {"subcategory": "exposed_garbage"}, point)
    case = cases.step(DISPATCHER, case.fid, "register", version=case.version)
    target = next(s for s in cases.squads() if s != case.properties["squad"])
    with pytest.raises(InvalidParameter):
        cases.step(DISPATCHER, case.fid, "dispatch", version=case.version, squad=target)  # no reason
    with pytest.raises(InvalidParameter):
        cases.step(DISPATCHER, case.fid, "dispatch", version=case.version, squad="不存在中队", note="x")
    moved = cases.step(DISPATCHER, case.fid, "dispatch", version=case.version, squad=target, note="跨界路段由其负责")
    assert moved.properties["squad"] == target and target in moved.properties["routing"]
    last = svc.store.history("cases", case.fid)[-1]
    assert last.changes["squad"] == [case.properties["squad"], target]
    assert "跨界路段由其负责" in last.changes["routing"][1]
    assert case.fid in [r["_fid"] for r in cases.queue(squad_member("x", target))]


def test_only_staff_collect_and_the_public_nothing(site):
    svc, _, _ = site
    point = shapely.Point(113.30, 33.73)
    with pytest.raises(Unauthorized):
        svc.cases.collect(PUBLIC, {"subcategory": "banners"}, point)
    with pytest.raises(Forbidden):
        svc.cases.collect(Actor("p", roles=frozenset({"planner"})), {"subcategory": "banners"}, point)
    with pytest.raises(InvalidFeature):
        svc.cases.collect(DISPATCHER, {"subcategory": "banners"}, shapely.Point(114.5, 33.73))  # far outside
    with pytest.raises(InvalidParameter):
        check_roles(["squad:第一中队"])  # a squad member holds the role squad too
    assert check_roles(["squad", "squad:第一中队"]) == ("squad", "squad:第一中队")


def test_a_manhole_cover_case_names_the_nearest_cover(site):
    svc, database, _ = site
    fid, code = execute(database, "SELECT fid, code FROM manhole_covers ORDER BY fid LIMIT 1")[0]
    cover = svc.reader.get("manhole_covers", fid, "internal").geometry
    case = svc.cases.collect(DISPATCHER, {"subcategory": "manhole_cover"}, shapely.Point(cover.x + 0.00003, cover.y))
    assert case.properties["component_code"] == code and case.properties["kind"] == "component"


# -- public reports ---------------------------------------------------------------------------------


def _jpeg_with_gps() -> bytes:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "Phone"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitude] = (33.0, 44.0, 1.5)
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 40, 30)).save(out, "JPEG", exif=exif)
    return out.getvalue()


def test_a_public_report_is_hidden_until_accepted_and_can_be_followed(site):
    svc, database, _clock = site
    reports = svc.reports
    sent = reports.submit(
        "203.0.113.7",
        lon=113.301,
        lat=33.731,
        subcategory="trash_bin",
        description="垃圾箱被撞坏 <b>急</b>",
        contact="13800000000",
        photo=_jpeg_with_gps(),
    )
    ref = sent["reference"]
    assert sent["state"] == "pending" and normal_reference(ref.lower().replace("0", "o")) == ref
    followed = reports.follow(ref)
    assert followed["state"] == "pending" and followed["status"] is None
    assert "垃圾箱被撞坏" not in json.dumps(reports.public_map(), ensure_ascii=False)
    assert not execute(database, "SELECT fid FROM cases WHERE report_reference = ?", (ref,))
    media, image = reports.photo(DISPATCHER, ref)
    assert media == "image/jpeg" and not Image.open(io.BytesIO(image)).getexif()  # no GPS, no camera
    with pytest.raises(Forbidden):
        reports.queue(VIEWER)
    assert ref in [r["reference"] for r in reports.queue(DISPATCHER)]

    accepted = reports.accept(DISPATCHER, ref, public_note="已受理，将尽快更换")
    case = accepted["case"]
    assert case.properties["source"] == "public" and case.properties["status"] == "collected"
    assert case.properties["details"].startswith("垃圾箱被撞坏")  # staff read what was written
    shown = reports.public_map()
    assert [s["public_note"] for s in shown if s["public_note"] == "已受理，将尽快更换"]
    assert "垃圾箱被撞坏" not in json.dumps(shown, ensure_ascii=False)  # the public reads the moderator's words
    assert "13800000000" not in json.dumps(reports.follow(ref), ensure_ascii=False)
    case = svc.cases.step(DISPATCHER, case.fid, "register", version=case.version)
    followed = reports.follow(ref)
    assert followed["status"] == "registered" and followed["steps"]["registered_at"] is not None
    with pytest.raises(WrongStatus):
        reports.reject(DISPATCHER, ref, "重复")  # moderated once
    actions = [h.action for h in svc.store.audit() if ref in json.dumps(h.changes, ensure_ascii=False)]
    assert actions == ["report_add", "insert", "report_accepted"]  # the case made of it, in one transaction


def test_a_report_turned_down_says_why_and_never_becomes_a_case(site):
    svc, database, _ = site
    ref = svc.reports.submit("198.51.100.1", lon=113.30, lat=33.73, subcategory="stray_dogs", description="门口有狗")[
        "reference"
    ]
    with pytest.raises(InvalidParameter):
        svc.reports.reject(DISPATCHER, ref, "  ")
    svc.reports.reject(DISPATCHER, ref, "非城管职责，请联系物业")
    followed = svc.reports.follow(ref)
    assert (followed["state"], followed["reason"]) == ("rejected", "非城管职责，请联系物业")
    assert not execute(database, "SELECT fid FROM cases WHERE report_reference = ?", (ref,))


def test_reports_are_limited_and_checked(site):
    svc, _, clock = site
    reports = svc.reports
    ok = {"lon": 113.30, "lat": 33.73, "subcategory": "illegal_ads", "description": "电线杆小广告"}
    for _ in range(reports.rules.per_hour):
        reports.submit("192.0.2.99", **ok)
    with pytest.raises(TooManyAttempts):
        reports.submit("192.0.2.99", **ok)
    reports.submit("192.0.2.100", **ok)  # another address is not held up
    clock.now += 3601
    reports.submit("192.0.2.99", **ok)  # an hour later it may again
    bad = [
        {**ok, "lon": 114.9},  # outside the district
        {**ok, "lon": "east"},
        {**ok, "subcategory": "site_dust"},  # not one the public chooses
        {**ok, "description": "x" * (reports.rules.max_text + 1)},
        {**ok, "description": "ab"},
        {**ok, "description": "正常文字\u202e隐藏"},  # a bidi control
    ]
    for values in bad:
        with pytest.raises(InvalidParameter):
            reports.submit("192.0.2.50", **values)
    with pytest.raises(InvalidParameter):
        reports.submit("192.0.2.51", **ok, photo=b"MZ\x90\x00 not an image")  # nothing executable is kept
    with pytest.raises(PayloadTooLarge):
        reports.submit("192.0.2.52", **ok, photo=b"\xff" * int(reports.rules.max_photo_mb * 1024 * 1024 + 1))
    with pytest.raises(NotFound):
        reports.follow("RZZZZZ-ZZZZZ")
    with pytest.raises(NotFound):
        reports.follow("'; DROP TABLE cases; --")
