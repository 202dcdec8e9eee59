"""Anonymous clients reach no internal field anywhere: a walk of every GET route of the app's URL map.

The routes come from ``app.url_map`` itself, so a route added later is walked too; each route's arguments are
filled with real values (every layer, a real feature of each, a public and an internal photo, the report's
year, every export format, the keys of the flood warnings in force). A route whose arguments the walk does not
know how to fill fails the test, saying what to add: nothing is skipped silently (only the static files are
skipped, by pattern).

Before the walk, staff leave traces a leak would show: a planner (with a name of its own) uploads a public and
an internal photo with captions, edits a hoarding's internal fields and deletes a feature; a sensor posts
readings with a source; a commander closes an underpass with an internal reason. Every answer the public gets
(JSON, HTML, XML feeds, CSV, XLSX read with openpyxl, DOCX read with python-docx, Markdown; headers only for
images) must then hold no internal field's name as a key or column, no internal field's label (Chinese or
English) as a label, no internal value from the store, and no staff name; internal photos and staff pages
answer 401/403/404 or send the visitor to sign in.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import openpyxl
import orjson
import pytest
from docx import Document
from lxml import etree
from lxml import html as lxml_html
from PIL import Image
from werkzeug.routing import Map, Rule

from geoapp.core import ledger, report, report_files
from geoapp.core.accounts import LoginPolicy, new_token
from geoapp.core.query import MAX_LIMIT
from geoapp.io import exporter
from geoapp.store.base import Actor, Query
from geoapp.web import create_app
from tests.conftest import CHEAP_ARGON2, SETUP, Clock, demo_copy_in, login

#: staff names distinctive enough to be found wherever they leak
PLANNER = "plnr_zhang7"
COMMANDER = "cmdr_li3"
SENSOR_TOKEN = "sensor-token-qx41"
READING_SOURCE = "gauge-secret-device-7"
CLOSURE_REASON = "内部：涵洞管护员王某报告，电话 13912345678"
INTERNAL_CAPTION = "井盖内部照片：施工队陈某现场"
PUBLIC_CAPTION = "北侧围挡，拆除前"
NEW_NOTES = "内部复核：质检员赵某 13800001111"
NEW_CONTRACTOR = "演示秘密施工队丙"
REPORT_TEXT = "楼下垃圾箱坏了，举报人住3单元502"
ACCEPTED_TEXT = "电线杆小广告，张贴者电话在上面"
REPORT_PHONE = "13700002222"
HOARDINGS, COVERS, UNDERPASS, GAUGES = "construction_hoardings", "manhole_covers", "underpass_culverts", "rain_gauges"
#: static files: the same bytes for everyone, and no data in them
STATIC = re.compile(r"^/static/")
#: what an answer to the public may be when it is refused: not allowed, not there, or sign in first
REFUSED = (401, 403, 404)


# -- the site and the traces staff leave in it ------------------------------------------------------


def _png(size=(64, 48)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (30, 120, 200)).save(out, "PNG")
    return out.getvalue()


def _token(store, name: str, roles: tuple[str, ...]) -> dict[str, str]:
    token, digest = new_token()
    store.add_token(name, digest, roles, actor=SETUP)
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Site:
    app: object
    clock: Clock
    photos: dict[str, int]  # "public" / "internal" -> photo id
    fids: dict[str, int]  # layer -> the fid walked
    deleted: tuple[str, int]
    warning_keys: list[str]
    years: list[int]
    references: list[str] = field(default_factory=list)  # the public's reports: one held, one accepted
    case_fid: int = 0
    forbidden_values: set[str] = field(default_factory=set)
    forbidden_labels: set[str] = field(default_factory=set)
    forbidden_names: set[str] = field(default_factory=set)


@pytest.fixture(scope="module")
def site(request, tmp_path_factory, password_hash) -> Iterator[Site]:
    with demo_copy_in("gpkg", tmp_path_factory.mktemp("walk"), request) as database:
        clock = Clock()
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
        try:
            yield _traces(app, clock, password_hash)
        finally:
            app.extensions["geoapp"].close()


def _first_fid(reader, layer_id: str) -> int:
    page = reader.select(layer_id, Query(), 0, 1, "internal")
    return orjson.loads(page.features[0])["id"]


def _traces(app, clock: Clock, password_hash: str) -> Site:
    svc = app.extensions["geoapp"]
    store, reader, registry = svc.store, svc.reader, svc.registry
    store.add_user(PLANNER, password_hash, ("planner",), actor=SETUP)
    planner = app.test_client()
    response, token = login(planner, PLANNER)
    assert response.status_code == 302
    headers = {"X-CSRFToken": token}

    fids = {layer.id: _first_fid(reader, layer.id) for layer in registry}
    hoarding = fids[HOARDINGS]
    # a planner marks the hoarding removed and writes its internal fields
    current = planner.get(f"/api/layers/{HOARDINGS}/features/{hoarding}").json
    edit = {
        "properties": {
            "status": "removed",
            "removed_on": "2023-10-09",
            "treatment": "greened",
            "notes": NEW_NOTES,
            "contractor": NEW_CONTRACTOR,
        },
        "version": current["version"],
    }
    edited = planner.patch(f"/api/layers/{HOARDINGS}/features/{hoarding}", json=edit, headers=headers)
    assert edited.status_code == 200, edited.json

    # a public photo (hoardings) and an internal one (manhole covers), as tests/test_photos.py uploads them
    photos = {}
    for kind, layer_id, caption in (("public", HOARDINGS, PUBLIC_CAPTION), ("internal", COVERS, INTERNAL_CAPTION)):
        form = {"file": (io.BytesIO(_png()), "photo.jpg", "image/jpeg"), "stage": "before", "caption": caption}
        sent = planner.post(
            f"/api/layers/{layer_id}/features/{fids[layer_id]}/photos",
            data=form,
            headers=headers,
            content_type="multipart/form-data",
        )
        assert sent.status_code == 201, sent.json
        photos[kind] = sent.json["id"]

    # a deleted feature (a back street other than the one walked), which the deleted list names with its deleter
    backstreets = reader.select("backstreet_repairs", Query(), 0, 2, "internal")
    gone = orjson.loads(backstreets.features[1])
    deleted = planner.delete(
        f"/api/layers/backstreet_repairs/features/{gone['id']}",
        headers={**headers, "If-Match": f'"{gone["version"]}"'},
    )
    assert deleted.status_code in (200, 204), deleted.get_data(as_text=True)

    # a sensor's readings (with a source) and a commander's closure (with an internal reason): flood warnings
    store.add_user(COMMANDER, password_hash, ("commander",), actor=SETUP)
    sensor = _token(store, SENSOR_TOKEN, ("sensor",))
    machine = app.test_client()

    def ago(minutes: float) -> str:
        return (dt.datetime.fromtimestamp(clock(), dt.UTC) - dt.timedelta(minutes=minutes)).isoformat(
            timespec="seconds"
        )

    readings = [
        {"layer": UNDERPASS, "feature_id": fids[UNDERPASS], "kind": "depth_cm", "value": 120, "observed_at": ago(3)}
    ]
    readings += [
        {"layer": GAUGES, "feature_id": fids[GAUGES], "kind": "rain_mm", "value": 30, "observed_at": ago(m)}
        for m in (40, 30, 20, 10)
    ]
    posted = machine.post(
        "/api/readings", json={"readings": [{**r, "source": READING_SOURCE} for r in readings]}, headers=sensor
    )
    assert posted.status_code == 201, posted.json
    commander = app.test_client()
    _, ctoken = login(commander, COMMANDER)
    closed = commander.post(
        "/api/flood/closures",
        json={"layer": UNDERPASS, "feature_id": fids[UNDERPASS], "reason": CLOSURE_REASON},
        headers={"X-CSRFToken": ctoken},
    )
    assert closed.status_code == 201, closed.json
    # the public reports a problem twice; a dispatcher accepts one (as a case, with a public note) and not the other
    held = svc.reports.submit(
        "203.0.113.9",
        lon=113.30,
        lat=33.73,
        subcategory="trash_bin",
        description=REPORT_TEXT,
        contact=REPORT_PHONE,
        photo=_png(),
    )
    taken = svc.reports.submit(
        "203.0.113.9",
        lon=113.301,
        lat=33.731,
        subcategory="illegal_ads",
        description=ACCEPTED_TEXT,
        contact=REPORT_PHONE,
    )
    dispatcher = Actor("centre-" + PLANNER, roles=frozenset({"dispatcher"}))
    case_fid = svc.reports.accept(dispatcher, taken["reference"], public_note="已受理")["case"].fid
    warning_keys = [w.key for w in svc.flood.warnings()]
    assert warning_keys, "the storm made no flood warning: the feed's alerts would not be walked"

    site = Site(
        app=app,
        clock=clock,
        photos=photos,
        fids=fids,
        deleted=("backstreet_repairs", gone["id"]),
        warning_keys=warning_keys,
        years=sorted(report.reports(svc.figures)),
        references=[held["reference"], taken["reference"]],
        case_fid=case_fid,
    )
    # what the public must never be shown: taken from the store and the definitions, not written out here
    for layer in registry:
        internal = [f for f in layer.fields if f.visibility == "internal"]
        if not internal:
            continue
        for spec in internal:
            site.forbidden_names.add(spec.name)
            site.forbidden_labels |= {spec.label.zh, spec.label.en}
        page = reader.select(layer.id, Query(), 0, 100_000, "internal")
        for text in page.features:
            props = orjson.loads(text)["properties"]
            for spec in internal:
                value = props.get(spec.name)
                # a time is looked for by its field's name (a key, a label), not its value: 40,000 moments of the
                # year's cases would be 40,000 strings to look for in every answer
                if spec.type != "datetime" and isinstance(value, str) and len(value.strip()) >= 2:
                    site.forbidden_values.add(value.strip())
    # a name that is a public field of another layer cannot be told apart as a key (its values and labels still are)
    public_names = {f.name for layer in registry for f in layer.fields if f.visibility == "public"}
    site.forbidden_names -= public_names
    site.forbidden_values |= {PLANNER, COMMANDER, SENSOR_TOKEN, READING_SOURCE, CLOSURE_REASON, INTERNAL_CAPTION}
    site.forbidden_values |= {REPORT_TEXT, ACCEPTED_TEXT, REPORT_PHONE, dispatcher.name}
    assert NEW_NOTES in site.forbidden_values and NEW_CONTRACTOR in site.forbidden_values
    return site


# -- the routes ------------------------------------------------------------------------------------


def _argument_values(site: Site, rule) -> list[dict[str, object]] | None:
    """Every set of values the walk gives ``rule``'s arguments; None when it does not know them all."""
    app = site.app
    registry = app.extensions["geoapp"].registry
    names = set(rule.arguments)
    layers = [layer.id for layer in registry]
    if names == set():
        return [{}]
    if names == {"layer_id"}:
        return [{"layer_id": layer} for layer in layers]
    if names == {"layer_id", "fid"}:
        out = [{"layer_id": layer, "fid": site.fids[layer]} for layer in layers]
        out.append({"layer_id": site.deleted[0], "fid": site.deleted[1]})  # a deleted feature: gone for the public
        return out
    if names == {"layer_id", "fmt"}:
        formats = exporter.FORMATS if rule.endpoint == "exports.export" else ledger.FORMATS
        return [{"layer_id": layer, "fmt": fmt} for layer in layers for fmt in formats]
    if names == {"photo_id"}:
        return [{"photo_id": photo} for photo in site.photos.values()]
    if names == {"reference"}:
        return [{"reference": ref} for ref in site.references]
    if names == {"fid"}:
        return [{"fid": site.case_fid}]
    if names == {"key"}:
        return [{"key": key} for key in site.warning_keys]
    if names == {"layer", "z", "x", "y"}:  # the Tianditu proxy (404 here: the demo has no Tianditu key)
        return [{"layer": "vec", "z": 1, "x": 0, "y": 0}]
    return None


def _queries(site: Site, endpoint: str, values: dict) -> list[dict[str, str]]:
    """The query variants that matter for an endpoint (every URL is also walked in English)."""
    base = [{}, {"lang": "en"}]
    layer = values.get("layer_id")
    if endpoint in PROBED and layer is not None:
        # asking by an internal field: refused, and the refusal must not list the internal fields either
        registry = site.app.extensions["geoapp"].registry
        hidden = [f.name for f in registry[layer].fields if f.visibility == "internal"] or ["notes"]
        base = [*base, {"sort": hidden[0]}, {hidden[0]: "x"}, {"zzz": "1"}]
    if endpoint == "reports.annual":
        return [
            {"year": str(year), "format": fmt, **lang}
            for year in site.years
            for fmt in ("html", *report_files.FORMATS)
            for lang in ({}, {"lang": "en"})
        ] + base
    if endpoint in ("progress_api.progress_ledger", "progress_api.rows"):
        english = values.get("fmt", "csv") == "csv"  # the rows, and the CSV ledger, in English too
        variants = (base if english else [{}]) + [{"sort": "site" if layer == HOARDINGS else "", "order": "desc"}]
        if layer == HOARDINGS:
            variants += [{"status": "removed", "q": "演示"}, {"overdue": "true"}, {"from": "2023-01-01"}]
        if endpoint == "progress_api.rows":
            variants.append({"limit": "500"})
        return variants
    if endpoint == "progress_api.layer_ledger":
        # English headers once a layer (the CSV: the columns are the same in both formats, and it reads faster)
        variants = [{}] + ([{"lang": "en"}] if values.get("fmt") == "csv" else [])
        return variants + ([{"status": "removed", "sort": "site", "order": "desc"}] if layer == HOARDINGS else [])
    if endpoint == "api.features":
        return [*base, {"limit": str(MAX_LIMIT)}]
    if endpoint == "api.search":
        return [*base, {"q": "演示"}, {"q": "0000"}]
    if endpoint == "progress.page":
        return [*base, {"layer": HOARDINGS}]
    return base


@dataclass(frozen=True)
class Visit:
    endpoint: str
    url: str
    internal_only: bool  # the public must be refused (or sent to sign in)


def walk(site: Site) -> tuple[list[Visit], list[str]]:
    """Every GET URL to visit, and the routes the walk does not know how to fill."""
    app = site.app
    visits: list[Visit] = []
    unknown: list[str] = []
    internal_photo = site.photos["internal"]
    with app.test_request_context():
        for rule in app.url_map.iter_rules():
            if "GET" not in rule.methods or STATIC.match(rule.rule):
                continue
            every = _argument_values(site, rule)
            if every is None:
                unknown.append(f"{rule.rule} ({rule.endpoint}, arguments {sorted(rule.arguments)})")
                continue
            for values in every:
                path = app.url_map.bind("localhost").build(rule.endpoint, values, force_external=False)
                hidden = rule.endpoint in STAFF_ONLY or values.get("photo_id") == internal_photo
                if values.get("layer_id") == COVERS and rule.endpoint == "photos.feature_photos":
                    hidden = True  # manhole covers' photos are internal
                if (values.get("layer_id"), values.get("fid")) == site.deleted and rule.endpoint in PUBLIC_FEATURE:
                    hidden = True  # a deleted feature is gone for the public
                for query in _queries(site, rule.endpoint, values):
                    kept = {k: v for k, v in query.items() if v != ""}
                    visits.append(Visit(rule.endpoint, f"{path}?{urlencode(kept)}" if kept else path, hidden))
    return visits, unknown


#: endpoints asked by field (sort, filters): the walk also asks them by internal fields
PROBED = {"api.features", "public.features", "progress_api.rows", "progress_api.progress_ledger"}
PROBED |= {"progress_api.layer_ledger"}
#: endpoints only staff may use: the public is refused or sent to sign in
STAFF_ONLY = {
    "pages.deleted",
    "api.deleted_features",
    "api.feature_history",
    "flood_api.live",
    "flood_api.readings",
    "flood_api.scenario",
    "flood_api.nearest",
    "flood_api.closures",
    "flood_pages.board",
    "progress.page",
    "cases.page",
    "cases.queue_page",
    "cases.indicators_json",
    "cases.indicators_xlsx",
    "cases.grid_json",
    "cases.heat_json",
    "cases.hotspots_json",
    "cases.queue_json",
    "cases.case_json",
    "cases.pending_json",
    "cases.report_photo",
}
#: endpoints that show one feature (404 for the public once it is deleted)
PUBLIC_FEATURE = {"api.feature", "pages.feature", "photos.feature_photos"}


# -- reading an answer as text ------------------------------------------------------------------------


@dataclass
class Seen:
    """What an answer shows: its text (everything), its keys and labels (names a reader sees as such)."""

    text: list[str] = field(default_factory=list)
    keys: set[str] = field(default_factory=set)  # JSON keys, table columns, field names in config and markup
    labels: set[str] = field(default_factory=set)  # texts standing alone: a cell, a heading, an element's text


def _json_into(value, seen: Seen) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            seen.keys.add(str(key))
            _json_into(item, seen)
    elif isinstance(value, list):
        for item in value:
            _json_into(item, seen)
    elif isinstance(value, str):
        seen.text.append(value)
        seen.labels.add(value.strip())
        seen.keys.add(value.strip())  # a field named in a list ("popup": ["notes"]) is a key too


def _label_of(text: str) -> str:
    """A label as a heading or cell shows it, without a colon, unit or required mark after it."""
    text = re.sub(r"\s+", " ", text).strip()
    text = re.sub(r"\s*[（(][^）)]*[）)]\s*$", "", text)
    return text.rstrip(":：*").strip()


_JSON_IN_SCRIPT = re.compile(r"config:\s*(\{.*?\}),\s*\}\);\s*\}\)\(window\.geoapp", re.S)


def _html_into(body: str, seen: Seen) -> None:
    seen.text.append(body)
    tree = lxml_html.fromstring(body)
    for node in tree.iter():
        if not isinstance(node.tag, str):
            continue
        if node.tag == "script":
            script = node.text or ""
            if node.get("type") == "application/json":
                _json_into(json.loads(script), seen)
            for block in _JSON_IN_SCRIPT.findall(script):
                _json_into(json.loads(block), seen)
            # a field's name quoted anywhere in a script
            seen.keys |= set(re.findall(r"[\"']([a-z][a-z0-9_]*)[\"']", script))
            continue
        if node.tag == "style":
            continue
        for name, value in node.attrib.items():
            if name in ("name", "data-field", "for", "id", "value"):
                seen.keys.add(value.removeprefix("edit-"))
            if name in ("title", "aria-label", "alt", "placeholder", "value"):
                seen.labels.add(_label_of(value))
        own = (node.text or "").strip()
        if own:
            seen.labels.add(_label_of(own))
        whole = node.text_content().strip() if node.tag in ("th", "td", "label", "dt", "dd", "option", "li") else ""
        if whole:
            seen.labels.add(_label_of(whole))


def _cells_into(rows, seen: Seen) -> None:
    for row in rows:
        for cell in row:
            if cell is None:
                continue
            text = str(cell)
            seen.text.append(text)
            seen.labels.add(_label_of(text))
            seen.keys.add(text.strip())


def _gis_into(data: bytes, mimetype: str, seen: Seen) -> None:
    """A GIS file read back by GDAL: its column names, values and layer description; a zip's members too (each
    Shapefile, and the text files beside them)."""
    import pyogrio

    with tempfile.TemporaryDirectory() as folder:
        suffix = {"application/zip": ".zip", "application/vnd.flatgeobuf": ".fgb"}.get(mimetype, ".gpkg")
        path = Path(folder) / f"export{suffix}"
        path.write_bytes(data)
        sources = [str(path)]
        if mimetype == "application/zip":
            with zipfile.ZipFile(path) as archive:
                for name in archive.namelist():
                    if name.endswith(".shp"):
                        sources = [f"/vsizip/{path}/{name}" for name in archive.namelist() if name.endswith(".shp")]
                    elif name.endswith((".csv", ".txt")):
                        text = archive.read(name).decode("utf-8-sig")
                        seen.text.append(text)
                        _cells_into(csv.reader(io.StringIO(text)), seen)
        for source in sources:
            for layer_name, _ in pyogrio.list_layers(source):
                info = pyogrio.read_info(source, layer=layer_name)
                seen.text.append(str(info.get("layer_metadata") or "") + str(info.get("dataset_metadata") or ""))
                seen.keys.update(str(name) for name in info["fields"])
                frame = pyogrio.read_dataframe(source, layer=layer_name, read_geometry=False)
                _cells_into(frame.itertuples(index=False), seen)


def read(response) -> Seen | None:
    """What a response shows the public; None for an image (its bytes are not text)."""
    seen = Seen()
    mimetype = response.mimetype or ""
    data = response.get_data()
    if mimetype.startswith("image/"):
        return None
    if mimetype in ("application/json", "application/geo+json") or mimetype.endswith("+json"):  # OpenAPI, schema
        _json_into(json.loads(data), seen)
        seen.text.append(data.decode())
    elif mimetype == "text/html":
        if data.strip():
            _html_into(data.decode(), seen)
    elif mimetype.endswith("+xml") or mimetype in ("application/xml", "text/xml"):
        root = etree.fromstring(data)
        seen.text.append(data.decode())
        for node in root.iter():
            if isinstance(node.tag, str) and node.text and node.text.strip():
                seen.labels.add(_label_of(node.text))
    elif mimetype == "text/csv":
        text = data.decode("utf-8-sig")
        _cells_into(csv.reader(io.StringIO(text)), seen)
    elif mimetype == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet":
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True)
        for sheet in book.worksheets:
            seen.labels.add(_label_of(sheet.title))
            _cells_into(sheet.iter_rows(values_only=True), seen)
        _docprops_into(data, seen)
    elif mimetype == "application/vnd.openxmlformats-officedocument.wordprocessingml.document":
        doc = Document(io.BytesIO(data))
        for paragraph in doc.paragraphs:
            seen.text.append(paragraph.text)
            seen.labels.add(_label_of(paragraph.text))
        for table in doc.tables:
            _cells_into(([cell.text for cell in row.cells] for row in table.rows), seen)
        _docprops_into(data, seen)
    elif mimetype in ("text/markdown", "text/plain"):
        text = data.decode()
        seen.text.append(text)
        for line in text.splitlines():
            for cell in line.strip().strip("|").split("|") if line.lstrip().startswith("|") else [line]:
                seen.labels.add(_label_of(cell.strip("#*- ")))
    elif mimetype in ("application/geopackage+sqlite3", "application/vnd.flatgeobuf", "application/zip"):
        _gis_into(data, mimetype, seen)
    elif not data:
        pass
    else:
        raise AssertionError(f"the walk cannot read {mimetype!r} ({response.request.url}): teach read() this type")
    return seen


def _docprops_into(data: bytes, seen: Seen) -> None:
    """An Office file's document properties (author, last modified by): who made it must not be staff."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for name in archive.namelist():
            if name.startswith("docProps/"):
                seen.text.append(archive.read(name).decode("utf-8", "replace"))


def leaks(site: Site, response, sent: set[str] = frozenset()) -> list[str]:
    """What of the staff's an answer shows the public (``sent``: the names the request asked by, which a refusal
    may name back)."""
    found = []
    headers = "\n".join(f"{k}: {v}" for k, v in response.headers.items())
    for value in site.forbidden_values:
        if value in headers:
            found.append(f"internal value {value!r} in a header")
    seen = read(response)
    if seen is None:
        return found
    text = "\n".join(seen.text)
    found += [f"internal value {value!r}" for value in sorted(site.forbidden_values) if value in text]
    found += [f"internal field {name!r} as a key" for name in sorted((site.forbidden_names & seen.keys) - sent)]
    found += [f"internal field's label {label!r}" for label in sorted(site.forbidden_labels & seen.labels)]
    return found


# -- the walk ---------------------------------------------------------------------------------------


def test_every_get_route_is_known_to_the_walk(site):
    # a route with an argument the walk has never seen is not walked with a guess: it is reported
    rule = Rule("/api/things/<thing_id>", endpoint="things")
    Map([rule])  # bound to a map, a rule knows its arguments
    assert rule.arguments == {"thing_id"} and _argument_values(site, rule) is None
    _, unknown = walk(site)
    assert not unknown, (
        "the anonymous walk does not know how to fill these routes' arguments: add them to "
        f"_argument_values() in tests/test_anonymous_walk.py: {unknown}"
    )


def test_anonymous_clients_reach_no_internal_field_anywhere(site):
    visits, _ = walk(site)
    # no cookie jar: each visit as a new visitor (a ?lang=en visit would otherwise set English for every later one)
    anonymous = site.app.test_client(use_cookies=False)
    problems: list[str] = []
    statuses: dict[str, set[int]] = {}
    for visit in visits:
        response = anonymous.get(visit.url)
        status = response.status_code
        statuses.setdefault(visit.endpoint, set()).add(status)
        where = f"{visit.url} ({status})"
        if status >= 500:
            problems.append(f"{where}: a server error")
            continue
        if visit.internal_only:
            to_login = status in (302, 303) and urlsplit(response.headers["Location"]).path == "/login"
            if status not in REFUSED and not to_login:
                problems.append(f"{where}: an internal-only URL answered the public")
        if status in (301, 302, 303, 307, 308):
            target = urlsplit(response.headers["Location"])
            assert not target.netloc or target.netloc == "localhost", f"{where}: redirects off the site"
        cache = response.headers.get("Cache-Control", "")
        query = parse_qs(urlsplit(visit.url).query, keep_blank_values=True)
        sent = set(query) | {v for values in query.values() for v in values}
        problems += [f"{where}: {leak}" for leak in leaks(site, response, sent)]
        if response.mimetype and response.mimetype.startswith("image/") and status == 200:
            for name in (PLANNER, COMMANDER):
                assert name not in str(response.headers), f"{where}: a staff name in the image's headers"
            assert "nosniff" in response.headers.get("X-Content-Type-Options", "")
            assert "private" not in cache or visit.internal_only
    # the walk did reach what it is for: the public pages, the exports and the public photo answered
    reached = {endpoint for endpoint, seen in statuses.items() if 200 in seen}
    for endpoint in (
        "public.page",
        "public.features",
        "pages.index",
        "pages.feature",
        "reports.annual",
        "progress_api.layer_ledger",
        "progress_api.progress_ledger",
        "progress_api.rows",
        "photos.image",
        "photos.thumb",
        "photos.feature_photos",
        "feeds.atom",
        "feeds.cap",
    ):
        assert endpoint in reached, f"{endpoint} never answered 200 to the public: {statuses.get(endpoint)}"
    assert not problems, f"{len(problems)} problems in {len(visits)} anonymous visits:\n" + "\n".join(problems)


def test_the_walk_finds_a_leak_when_there_is_one(site):
    """The checks themselves: the same answers as staff see them show what the public must not see, each kind of
    answer read as the walk reads it (JSON keys, page labels, XLSX and CSV columns, values, staff names)."""
    planner = site.app.test_client()
    login(planner, PLANNER)
    fid = site.fids[HOARDINGS]
    expected = {
        f"/api/layers/{HOARDINGS}/features/{fid}": ("internal field 'notes' as a key", NEW_NOTES),
        f"/features/{HOARDINGS}/{fid}": ("internal field's label '备注'", PLANNER),
        f"/api/progress/{HOARDINGS}/ledger.xlsx": ("internal field's label '施工单位'", NEW_CONTRACTOR),
        f"/api/layers/{HOARDINGS}/ledger.csv?lang=en": ("internal field's label 'Contractor'", NEW_NOTES),
        f"/api/layers/{COVERS}/features/{site.fids[COVERS]}/photos": (INTERNAL_CAPTION, PLANNER),
        "/?lang=en": ("internal field's label 'Contact phone'", "internal field 'keeper_phone' as a key"),
    }
    for url, wanted in expected.items():
        response = planner.get(url)
        assert response.status_code == 200, url
        found = "\n".join(leaks(site, response))
        for what in wanted:
            assert what in found, f"the walk's checks miss {what!r} in {url} as a planner sees it:\n{found}"
    assert planner.get(f"/photos/{site.photos['internal']}").status_code == 200


def test_a_staff_answer_is_private_unless_it_is_what_the_public_gets(site):
    """The reverse: what a planner is answered on every GET route is ``private``/``no-store``, or byte for byte the
    public's answer (a public photo, a public layer, a feed): a shared cache never keeps staff content."""
    visits, _ = walk(site)
    planner = site.app.test_client()
    login(planner, PLANNER)
    anonymous = site.app.test_client(use_cookies=False)
    shared = []
    for visit in visits:
        answer = planner.get(visit.url)
        cache = answer.headers.get("Cache-Control", "")
        if answer.status_code != 200 or "private" in cache or "no-store" in cache:
            continue
        public = anonymous.get(visit.url)
        if public.status_code != 200 or public.get_data() != answer.get_data():
            shared.append(f"{visit.url}: {cache or 'no Cache-Control'}, and not what the public gets")
    assert not shared, "\n".join(shared)
