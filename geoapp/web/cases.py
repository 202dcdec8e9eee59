"""Cases on the web: the staff's indicators page and work queue, the public's report form, and their JSON API.

Views translate a request into a call of the use cases (:mod:`geoapp.cases.service`, :mod:`geoapp.cases.reports`),
which check the caller's role and the values, and their answer into JSON or a page; nothing here writes to the
store. What the public sends goes to ``POST /report`` (the form) or ``POST /api/reports``; what the public reads
is its own report by reference (``/report/follow``, ``GET /api/reports/<reference>``) and the accepted reports as
the moderator worded them (``GET /api/reports``).
"""

from __future__ import annotations

import datetime as dt
import tempfile
from typing import Any

import orjson
import shapely
from flask import Blueprint, Response, render_template, request, url_for
from flask_babel import gettext as _
from flask_wtf.csrf import generate_csrf

from geoapp.cases import hotline, indicators
from geoapp.cases.reports import normal_reference
from geoapp.cases.service import COLLECT_ROLES, READ_ROLES
from geoapp.core import encode, permissions
from geoapp.core.editing import expected_version
from geoapp.core.layers import utc_text
from geoapp.core.messages import Words
from geoapp.core.query import parse_fid
from geoapp.errors import GeoappError, InvalidParameter, NotFound, PayloadTooLarge
from geoapp.store.base import Query
from geoapp.web import auth, maps, service
from geoapp.web.access import allow_upload, caller
from geoapp.web.body import check_members, json_body, query_args
from geoapp.web.i18n import current_lang
from geoapp.web.pages import _basemap, _context, ui_text
from geoapp.web.security import nonce

bp = Blueprint("cases", __name__)

PAGE_ROLES = (*READ_ROLES, "admin")
LAYER = "cases"
#: the figure a grid cell is coloured by on the indicators map, and those it may be
SHADES = ("due", "close_rate", "on_time_rate", "avg_disposal_h")


def _json(payload: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(payload), status=status, mimetype="application/json")


def _args(allowed: tuple[str, ...]) -> dict[str, str]:
    return query_args(request, allowed)


def _day(text: str | None, parameter: str) -> dt.date | None:
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise InvalidParameter(
            f"{parameter} must be a date YYYY-MM-DD, not {text[:20]!r}", parameter=parameter
        ) from None


def _period(args: dict[str, str]) -> tuple[dt.datetime | None, dt.datetime | None]:
    """``from`` and ``to`` (dates, both included, on the district's clock) as [start, end)."""
    zone = service().timezone
    first, last = _day(args.get("from"), "from"), _day(args.get("to"), "to")
    if first and last and last < first:
        raise InvalidParameter("to must not be before from", parameter="to")
    start = dt.datetime.combine(first, dt.time(0), zone) if first else None
    end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(0), zone) if last else None
    return start, end


def _labels(by: str, lang: str) -> dict[str, str]:
    """How a group's key is read: a value's label for the fields with a vocabulary."""
    layer = service().registry[LAYER]
    if by in ("department", "category", "subcategory", "source"):
        return {c.value: c.label(lang) for c in layer.field(by).values or ()}
    return {}


def _rows(by: str, lang: str, start, end) -> list[dict[str, Any]]:
    labels = _labels(by, lang)
    words = service().cases.workflow.labels
    found = service().cases.indicators(caller(), by, start=start, end=end)
    return [
        {**r.as_dict(), "label": words["total"](lang) if r.key is None else labels.get(r.key, r.key)} for r in found
    ]


# -- the indicators -------------------------------------------------------------------------------


@bp.get("/api/cases/indicators")
def indicators_json():
    """The indicators of the cases registered from ``from`` to ``to``, grouped ``by`` a dimension."""
    args = _args(("by", "from", "to"))
    by = indicators.dimension(args.get("by"))
    start, end = _period(args)
    return _json(
        {"by": by, "from": args.get("from"), "to": args.get("to"), "rows": _rows(by, current_lang(), start, end)}
    )


@bp.get("/api/cases/indicators.xlsx")
def indicators_xlsx():
    """Every dimension's indicators in a workbook, a sheet each."""
    args = _args(("from", "to"))
    start, end = _period(args)
    lang = current_lang()
    words = service().cases.workflow.labels
    header = [words[name](lang) for name in ("key", *indicators.FIGURES)]
    sections = []
    for by in indicators.DIMENSIONS:
        rows = _rows(by, lang, start, end)
        table = [header] + [[r["label"], *(r[name] for name in indicators.FIGURES)] for r in rows]
        sections.append((words[by](lang), table))
    zone = service().timezone
    now = dt.datetime.fromtimestamp(service().clock(), zone)
    about = [
        (_("Cases registered from"), args.get("from") or _("the first case")),
        (_("Cases registered to"), args.get("to") or _("the last case")),
        (_("Made at"), f"{now:%Y-%m-%d %H:%M} ({zone.key})"),
    ]
    if service().store.synthetic:
        about.append((_("Data"), _("Synthetic demo data, not real cases")))
    content = indicators.xlsx(sections, about)
    name = f"case-indicators_{now:%Y-%m-%d}.xlsx"
    response = Response(content, mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@bp.get("/api/cases/grid")
def grid_json():
    """The grid cells with their indicators (a choropleth at low zoom): GeoJSON, a cell's figures in properties."""
    args = _args(("from", "to"))
    start, end = _period(args)
    rows = {r["key"]: r for r in _rows("grid", current_lang(), start, end)}
    reader = service().reader
    features = []
    offset = 0
    while True:
        page = reader.select("grid_cells", Query(), offset, 10_000, "internal")
        for text in page.features:
            cell = orjson.loads(text)
            code = cell["properties"].get("code")
            figures = rows.get(code, {"due": 0})
            props = {
                "code": code,
                "squad": cell["properties"].get("squad"),
                "community": cell["properties"].get("community"),
            }
            props.update({k: figures.get(k) for k in indicators.FIGURES})
            features.append(
                {"type": "Feature", "id": cell.get("id"), "geometry": cell["geometry"], "properties": props}
            )
        offset += len(page.ids)
        if not page.more or not page.ids:
            break
    return _json({"type": "FeatureCollection", "features": features})


@bp.get("/api/cases/heat")
def heat_json():
    """Where the cases of the period were reported, for a heat map: ``[[lat, lon], ...]``."""
    permissions.require_role(caller(), READ_ROLES)
    args = _args(("from", "to"))
    start, end = (None if t is None else utc_text(t) for t in _period(args))
    reader = service().reader
    points = []
    offset = 0
    while True:
        page = reader.select(LAYER, Query(), offset, 10_000, "internal")
        for text in page.features:
            case = orjson.loads(text)
            reported = case["properties"].get("reported_at") or ""
            if (start is None or reported >= start) and (end is None or reported < end) and case.get("geometry"):
                lon, lat = case["geometry"]["coordinates"][:2]
                points.append([round(lat, 5), round(lon, 5)])
        offset += len(page.ids)
        if not page.more or not page.ids:
            return _json({"points": points})


@bp.get("/api/cases/hotspots")
def hotspots_json():
    args = _args(("as_of",))
    as_of = _as_of(args.get("as_of"))
    spots = service().cases.hot_spots(caller(), as_of)
    return _json({"as_of": as_of.isoformat(), "hot_spots": [s.__dict__ for s in spots]})


def _as_of(text: str | None) -> dt.datetime:
    """The end of the week asked for: the day given (its end, on the district's clock), else now; the demo's
    year ended long ago, so without a day the latest case's day is taken when no case is newer than a week."""
    zone = service().timezone
    day = _day(text, "as_of")
    if day is not None:
        return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), zone)
    now = dt.datetime.fromtimestamp(service().clock(), zone)
    latest = service().cases.table()["reported_at"].max()
    if latest is not None and latest == latest and latest.to_pydatetime() < now - dt.timedelta(days=7):
        return latest.to_pydatetime().astimezone(zone)
    return now


# -- the work ------------------------------------------------------------------------------------


def _case_json(feature) -> dict[str, Any]:
    return orjson.loads(encode.feature(feature.fid, feature.version, feature.geometry, feature.properties))


@bp.get("/api/cases/queue")
def queue_json():
    args = _args(("squad",))
    return _json({"cases": service().cases.queue(caller(), squad=args.get("squad"))})


@bp.post("/api/cases")
def collect_json():
    """Record a case: ``{"lon", "lat", "properties"}``; 201 with the case, numbered and routed."""
    who = caller()
    permissions.require_role(who, COLLECT_ROLES)
    body = json_body(request)
    check_members(body, ("lon", "lat", "properties"))
    point = _point(body.get("lon"), body.get("lat"))
    case = service().cases.collect(who, body.get("properties") or {}, point)
    return _json(_case_json(case), 201)


def _point(lon: Any, lat: Any) -> shapely.Point:
    ok = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (lon, lat))
    if not ok or not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise InvalidParameter("lon and lat must be numbers: the case's place in WGS84", parameter="lon")
    return shapely.Point(float(lon), float(lat))


def _case_fid(text: str) -> int:
    fid = parse_fid(text)
    if fid is None:
        raise NotFound(f"no case {text[:40]!r}", parameter="fid")
    return fid


@bp.get("/api/cases/<fid>")
def case_json(fid: str):
    """A case as staff see it, the steps the caller may take and its history."""
    cases = service().cases
    case = cases.case(caller(), _case_fid(fid))
    history = [
        {"at": h.at, "actor": h.actor, "action": h.action, "changes": h.changes}
        for h in service().store.history(LAYER, case.fid)
    ]
    steps = [s.id for s in cases.steps_for(caller(), case)]
    return _json({"case": _case_json(case), "steps": steps, "history": history})


@bp.post("/api/cases/<fid>/steps/<step>")
def step_json(fid: str, step: str):
    """Take a step: ``{"version", "note", "squad"}`` (``squad`` routes a dispatch elsewhere; then ``note`` says why)."""
    who = caller()
    permissions.require_role(who, PAGE_ROLES)
    body = json_body(request)
    check_members(body, ("version", "note", "squad"))
    version = expected_version(request.headers.get("If-Match"), body.get("version"))
    for name in ("note", "squad"):
        if body.get(name) is not None and not isinstance(body[name], str):
            raise InvalidParameter(f"{name} must be text", parameter=name)
    case = service().cases.step(
        who, _case_fid(fid), step, version=version, note=body.get("note"), squad=body.get("squad")
    )
    return _json(_case_json(case))


@bp.post("/api/cases/hotline")
def hotline_json():
    """A 12345 hotline XLSX (multipart ``file``; ``dry_run=true`` writes nothing): the import's report, naming every
    row not read and every ticket not located."""
    who = caller()
    permissions.require_role(who, ("dispatcher",))  # before the body: nobody else learns anything from it
    allow_upload(
        hotline.MAX_BYTES, lambda: PayloadTooLarge("a hotline export may have at most 20 MB", parameter="file")
    )
    files = request.files.getlist("file")
    if len(files) != 1 or not files[0].filename:
        raise InvalidParameter("send the hotline's XLSX as the multipart field file", parameter="file")
    dry = request.form.get("dry_run", "false")
    if dry not in ("true", "false"):
        raise InvalidParameter("dry_run must be true or false", parameter="dry_run")
    with tempfile.NamedTemporaryFile(suffix=".xlsx") as held:
        files[0].save(held)
        held.flush()
        report = service().cases.import_hotline(who, held.name, name=files[0].filename[:200], dry_run=dry == "true")
    return _json(report, 200 if dry == "true" else 201)


# -- public reports ------------------------------------------------------------------------------


def _report_form() -> dict[str, Any]:
    """What a report form or a multipart POST sends: its fields and the photo's bytes (checked by the use case)."""
    rules = service().cases.workflow.public_reports
    allow_upload(int(rules.max_photo_mb * 1024 * 1024), lambda: _photo_too_large(rules.max_photo_mb))
    if request.mimetype == "application/json":
        body = json_body(request)
        check_members(body, ("lon", "lat", "subcategory", "description", "phone"))
        return {**{k: v for k, v in body.items() if k != "phone"}, "contact": body.get("phone"), "photo": None}
    allowed = ("lon", "lat", "subcategory", "description", "phone", "csrf_token", "lang")
    for name in request.form:
        if name not in allowed:
            raise InvalidParameter(
                f"unknown field {name[:40]!r}; allowed: {', '.join(allowed[:5])}, photo", parameter=name
            )
    for name in request.files:
        if name != "photo":
            raise InvalidParameter(f"unknown file field {name[:40]!r}; send the photo as photo", parameter=name)
    files = request.files.getlist("photo")
    if len(files) > 1:
        raise InvalidParameter("send one photo", parameter="photo")
    photo = files[0].read() if files and files[0].filename else None
    return {
        **{name: request.form.get(name) for name in ("lon", "lat", "subcategory", "description")},
        "contact": request.form.get("phone"),
        "photo": photo,
    }


def _photo_too_large(mb: float) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"a photo may have at most {mb:g} MB",
        parameter="photo",
        text=Words(f"照片最大 {mb:g} MB", f"a photo may have at most {mb:g} MB"),
    )


@bp.post("/api/reports")
def report_json():
    """A problem reported by anyone: 201 with its reference (follow it at ``/api/reports/<reference>``)."""
    sent = service().reports.submit(request.remote_addr or "-", **_report_form())
    response = _json(sent, 201)
    response.headers["Location"] = url_for("cases.follow_json", reference=sent["reference"])
    return response


@bp.get("/api/reports/<reference>")
def follow_json(reference: str):
    response = _json(service().reports.follow(reference))
    response.cache_control.no_store = True
    return response


@bp.get("/api/reports")
def reports_json():
    """The accepted reports, as the moderator worded them: GeoJSON for the public map."""
    registry = service().registry
    labels = {c.value: c.label(current_lang()) for c in registry[LAYER].field("subcategory").values or ()}
    statuses = {c.value: c.label(current_lang()) for c in registry[LAYER].field("status").values or ()}
    features = [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [r["lon"], r["lat"]]},
            "properties": {
                "subcategory": labels.get(r["subcategory"], r["subcategory"]),
                "status": statuses.get(r["status"], r["status"]),
                "reported_at": r["reported_at"],
                "public_note": r["public_note"],
            },
        }
        for r in service().reports.public_map()
    ]
    return _json({"type": "FeatureCollection", "features": features})


@bp.get("/api/reports/pending")
def pending_json():
    return _json({"reports": service().reports.queue(caller())})


@bp.post("/api/reports/<reference>/accept")
def accept_json(reference: str):
    body = json_body(request, optional=True)
    check_members(body, ("public_note", "subcategory"))
    out = service().reports.accept(
        caller(), reference, public_note=body.get("public_note"), subcategory=body.get("subcategory")
    )
    return _json({"report": out["report"], "case": _case_json(out["case"])})


@bp.post("/api/reports/<reference>/reject")
def reject_json(reference: str):
    body = json_body(request)
    check_members(body, ("reason",))
    return _json({"report": service().reports.reject(caller(), reference, body.get("reason"))})


@bp.get("/api/reports/<reference>/photo")
def report_photo(reference: str):
    media, data = service().reports.photo(caller(), reference)
    response = Response(data, mimetype=media)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.cache_control.private = True
    return response


# -- pages ---------------------------------------------------------------------------------------


def _choices(lang: str, names) -> list[tuple[str, str]]:
    layer = service().registry[LAYER]
    labels = {c.value: c.label(lang) for c in layer.field("subcategory").values or ()}
    return [(name, labels[name]) for name in names]


@bp.get("/cases")
@auth.require_role(*PAGE_ROLES)
def page():
    """The indicators: a table by the dimension chosen, a map of grid cells coloured by one figure and a heat
    map of where cases were reported, the week's hot spots, and the workbook of them all."""
    args = _args(("by", "from", "to", "shade"))
    lang = current_lang()
    by = indicators.dimension(args.get("by") or "squad")
    shade = args.get("shade") or "due"
    if shade not in SHADES:
        raise InvalidParameter(f"shade must be one of {', '.join(SHADES)}", parameter="shade")
    start, end = _period(args)
    svc = service()
    words = svc.cases.workflow.labels
    rows = _rows(by, lang, start, end)
    (total,) = _rows("total", lang, start, end)
    spots = svc.cases.hot_spots(caller(), _as_of(None))
    summary = svc.reader.summary()
    extent = summary["district_boundary"].extent if "district_boundary" in summary else None
    query = {k: v for k, v in args.items() if k in ("from", "to")}
    text = {
        **ui_text(),
        "hotSpot": _("Hot spot this week"),
        "gridLayer": _("Grid cells (%(figure)s)", figure=words[shade](lang)),
        "heatLayer": _("Heat map of cases"),
    }
    m = maps.cases_map(
        svc.registry,
        _context(),
        lang=lang,
        basemap_=_basemap(),
        text=text,
        extent=extent,
        config={
            "grid": url_for("cases.grid_json", **query),
            "heat": url_for("cases.heat_json", **query),
            "shade": shade,
            "shadeLabel": words[shade](lang),
            "hot": [s.grid for s in spots],
            "labels": {name: words[name](lang) for name in indicators.FIGURES},
        },
    )
    return render_template(
        "cases.html",
        map=maps.render(m, nonce()),
        title=_("Cases"),
        by=by,
        dimensions=[(name, words[name](lang)) for name in indicators.DIMENSIONS if name != "total"],
        shades=[(name, words[name](lang)) for name in SHADES],
        shade=shade,
        figures=[(name, words[name](lang)) for name in indicators.FIGURES],
        rows=rows,
        total=total,
        spots=spots[:12],
        period={"from": args.get("from", ""), "to": args.get("to", "")},
        xlsx=url_for("cases.indicators_xlsx", **query),
        synthetic=svc.store.synthetic,
    )


def _queue_page(message: str | None = None, error: str | None = None, status: int = 200):
    svc = service()
    who = caller()
    lang = current_lang()
    layer = svc.registry[LAYER]
    roles = set(who.roles)
    squad = request.values.get("squad") or None
    rows = svc.cases.queue(who, squad=squad, limit=200)
    status_labels = {c.value: c.label(lang) for c in layer.field("status").values or ()}
    sub_labels = {c.value: c.label(lang) for c in layer.field("subcategory").values or ()}
    cases = []
    for row in rows:
        feature = svc.reader.get(LAYER, row["_fid"], "internal")
        steps = svc.cases.steps_for(who, feature) if feature else []
        cases.append(
            {
                "fid": row["_fid"],
                "version": feature.version if feature else None,
                "code": row.get("code"),
                "status": status_labels.get(row.get("status"), row.get("status")),
                "subcategory": sub_labels.get(row.get("subcategory"), row.get("subcategory")),
                "grid": row.get("grid"),
                "squad": row.get("squad"),
                "description": row.get("details"),
                "reported_at": _local(row.get("reported_at")),
                "deadline_at": _local(row.get("deadline_at")),
                "overdue": bool(row.get("deadline_at"))
                and row["deadline_at"] < dt.datetime.fromtimestamp(svc.clock(), dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "steps": [(s.id, s.label(lang), s.note) for s in steps],
            }
        )
    moderator = bool(roles & {"dispatcher", "admin"})
    reports = svc.reports.queue(who) if moderator else []
    for r in reports:
        r["subcategory_label"] = sub_labels.get(r["subcategory"], r["subcategory"])
        r["submitted"] = _local(r["created_at"])
    return render_template(
        "case_queue.html",
        title=_("Case queue"),
        cases=cases,
        reports=reports,
        squads=svc.cases.squads() if moderator else [],
        squad=squad,
        message=message,
        error=error,
        csrf=generate_csrf(),
    ), status


def _local(text: str | None) -> str:
    if not text:
        return "—"
    moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(service().timezone)
    return f"{moment:%Y-%m-%d %H:%M}"


@bp.get("/cases/queue")
@auth.require_role(*PAGE_ROLES)
def queue_page():
    return _queue_page()


@bp.post("/cases/<fid>/step")
@auth.require_role(*PAGE_ROLES)
def step_form(fid: str):
    """A step taken from the queue's form; the queue again, saying what was done or what was wrong."""
    lang = current_lang()
    try:
        version = expected_version(None, request.form.get("version"))
        case = service().cases.step(
            caller(),
            _case_fid(fid),
            request.form.get("step", ""),
            version=version,
            note=request.form.get("note") or None,
            squad=request.form.get("route_to") or None,
        )
    except GeoappError as exc:
        return _queue_page(error=exc.message_in(lang), status=exc.status)
    return _queue_page(message=_("Case %(code)s: done", code=case.properties.get("code")))


@bp.post("/cases/reports/<reference>")
@auth.require_role(*PAGE_ROLES)
def moderate_form(reference: str):
    lang = current_lang()
    reports = service().reports
    try:
        if request.form.get("action") == "accept":
            out = reports.accept(caller(), reference, public_note=request.form.get("public_note") or None)
            message = _("Report %(ref)s is case %(code)s", ref=reference, code=out["case"].properties.get("code"))
        elif request.form.get("action") == "reject":
            reports.reject(caller(), reference, request.form.get("reason"))
            message = _("Report %(ref)s turned down", ref=reference)
        else:
            raise InvalidParameter("action must be accept or reject", parameter="action")
    except GeoappError as exc:
        return _queue_page(error=exc.message_in(lang), status=exc.status)
    return _queue_page(message=message)


def _report_page(status: int = 200, **values):
    svc = service()
    lang = current_lang()
    summary = svc.reader.summary()
    extent = summary["district_boundary"].extent if "district_boundary" in summary else None
    m = maps.report_map(
        svc.registry,
        _context(),
        lang=lang,
        basemap_=_basemap(),
        text=ui_text(),
        extent=extent,
        config={"reports": url_for("cases.reports_json")},
    )
    rules = svc.cases.workflow.public_reports
    return render_template(
        "problem_report.html",
        map=maps.render(m, nonce()),
        title=_("Report a problem"),
        choices=_choices(lang, rules.subcategories),
        max_text=rules.max_text,
        max_photo_mb=rules.max_photo_mb,
        synthetic=svc.store.synthetic,
        form=values.get("form") or {},
        error=values.get("error"),
        sent=values.get("sent"),
    ), status


@bp.get("/report")
def report_page():
    return _report_page()


@bp.post("/report")
def report_form():
    """The public's form: on success its reference; otherwise the form again with what was wrong."""
    lang = current_lang()
    try:
        values = _report_form()
        sent = service().reports.submit(request.remote_addr or "-", **values)
    except GeoappError as exc:
        form = {k: request.form.get(k, "") for k in ("lon", "lat", "subcategory", "description", "phone")}
        return _report_page(exc.status, form=form, error=exc.message_in(lang))
    return _report_page(201, sent=sent)


@bp.get("/report/follow")
def follow_page():
    """A report followed by its reference: its state, and as a case its status and the times of its steps."""
    ref = request.args.get("ref", "")
    lang = current_lang()
    found = error = None
    if ref:
        try:
            found = service().reports.follow(ref)
        except GeoappError as exc:
            error = exc.message_in(lang)
    layer = service().registry[LAYER]
    labels = {c.value: c.label(lang) for c in layer.field("status").values or ()}
    subs = {c.value: c.label(lang) for c in layer.field("subcategory").values or ()}
    steps = []
    if found:
        names = {
            "reported_at": _("Reported"),
            "registered_at": _("Registered"),
            "disposed_at": _("Disposed of"),
            "closed_at": _("Closed"),
        }
        steps = [(names[k], _local(v)) for k, v in found["steps"].items() if v]
    response = Response(
        render_template(
            "problem_follow.html",
            title=_("Follow a report"),
            ref=ref,
            found=found,
            error=error,
            status=labels.get(found["status"]) if found and found["status"] else None,
            subcategory=subs.get(found["subcategory"]) if found else None,
            submitted=_local(found["submitted_at"]) if found else None,
            steps=steps,
            reference=normal_reference(ref),
        ),
        status=404 if error else 200,
    )
    response.cache_control.no_store = True
    return response
