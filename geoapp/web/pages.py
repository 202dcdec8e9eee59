"""HTML pages: the one map, feature archive pages, the deleted-features page and browser assets."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

import orjson
from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    send_from_directory,
    url_for,
)
from flask_babel import gettext as _
from flask_wtf.csrf import generate_csrf

from geoapp.config import PROJECT_ROOT
from geoapp.core import encode, permissions
from geoapp.core.editing import expected_version
from geoapp.core.layers import FieldDef, Layer
from geoapp.core.query import parse_fid, parse_lonlat
from geoapp.errors import InvalidFeature, NotFound, VersionConflict
from geoapp.store.base import DeletedFeature, Query
from geoapp.web import auth, edit_form, maps, photos, service
from geoapp.web.access import caller, staff, visibility
from geoapp.web.i18n import current_lang
from geoapp.web.security import nonce

bp = Blueprint("pages", __name__)

NODE_MODULES = PROJECT_ROOT / "node_modules"
#: the context layers are small (a boundary, the main roads); more than this is not embedded
MAX_CONTEXT_FEATURES = 5000
ASSET_MAX_AGE = 7 * 24 * 3600
#: the WSGI environ key under which ``geoapp publish`` asks for the public map as static files (see
#: geoapp/web/publish.py); only a caller inside the process can set it, never an HTTP client
PUBLISHED = "geoapp.published"


@dataclass(frozen=True)
class Published:
    """How ``geoapp publish`` wants the one map: each layer from a static file, pages by language."""

    data: Mapping[str, str]  # layer id -> its GeoJSON file, relative to the page
    pages: Mapping[str, str]  # language -> the page's file for that language


def ui_text() -> dict[str, str]:
    """Every string the map's script shows, in the page's language."""
    return {
        "legend": _("Legend"),
        "search": _("Search"),
        "searchPlaceholder": _("Find by name or code"),
        "noResults": _("Nothing found"),
        "archive": _("Open the archive page"),
        "distance": _("Distance"),
        "loadFailed": _("could not be loaded"),
        "tooMany": _("more features here than shown; zoom in"),
        "zoomIn": _("Zoom in"),
        "zoomOut": _("Zoom out"),
        "measure": _("Measure distance and area"),
        "measureHint": _("Click on the map to measure; click the ruler again to stop"),
        "layers": _("Layers"),
        "length": _("Length"),
        "area": _("Area"),
        "fullscreen": _("Full screen"),
        "exitFullscreen": _("Exit full screen"),
        "locate": _("Show my location"),
        "locatePopup": _("You are within {distance} {unit} of this point"),
        "yes": _("Yes"),
        "no": _("No"),
        "photos": _("Photos"),
        "photoBefore": _("Before"),
        "photoAfter": _("After"),
        **_editing_text(),
    }


def _editing_text() -> dict[str, str]:
    """The strings of the editing controls (popup form, shape editing, Leaflet-Geoman's drawing tools)."""
    return {
        "save": _("Save"),
        "saving": _("Saving…"),
        "saved": _("Saved"),
        "created": _("Added"),
        "cancel": _("Cancel"),
        "conflict": _(
            "Someone else changed this feature after you opened it. Nothing was saved; "
            "it has been reloaded with the current values."
        ),
        "saveFailed": _("Not saved: {message}"),
        "unreachable": _("the server could not be reached"),
        "signInAgain": _("Not saved: your session has ended; sign in again."),
        "notAllowed": _("Not saved: you may not change this layer, or the page is out of date; reload it."),
        "editShape": _("Edit shape"),
        # the full edit form (edit/form.js)
        "required": _("Required"),
        "computed": _("computed from the shape"),
        "noChanges": _("Nothing to save: no field was changed."),
        "willClear": _("Will be emptied: {fields}"),
        "willKeep": _("Kept as they are: {fields}"),
        "delete": _("Delete…"),
        "deleteConfirm": _(
            "Delete this feature? It leaves the map and the statistics; an administrator can restore it."
        ),
        "deleteYes": _("Yes, delete it"),
        "deleting": _("Deleting…"),
        "deleted": _("The feature was deleted."),
        "deleteFailed": _("Not deleted: {message}"),
        "editHint": _(
            "Drag the feature to move it, or its corners to reshape it (right-click a corner to remove it), then save."
        ),
        "newFeature": _("New feature: {layer}"),
        "drawLayer": _("Layer to draw in"),
        "drawLine": _("Draw a line"),
        "drawArea": _("Draw an area"),
        "drawPoint": _("Place a point"),
        "drawFinish": _("Finish"),
        "drawUndo": _("Delete last point"),
        "firstVertex": _("Click to place the first point."),
        "continueLine": _("Click to add the next point."),
        "finishLine": _("Click the last point to finish the line."),
        "finishArea": _("Click the first point to close the area."),
        "placePoint": _("Click the map to place the point."),
    }


@bp.app_context_processor
def _time_zone():
    """The name of the district's time zone as the pages' column headings say it: 北京时间 for Asia/Shanghai."""
    key = service().timezone.key
    return {"zone_name": _("Beijing time") if key == "Asia/Shanghai" else key}


def _basemap() -> maps.Basemap:
    return current_app.extensions["geoapp.basemap"]


def _context() -> dict[str, dict]:
    """The public GeoJSON of the small context layers (district boundary, roads) the pages embed."""
    reader = service().reader
    out = {}
    for layer in service().registry:
        if layer.context:
            page = reader.select(layer.id, Query(), 0, MAX_CONTEXT_FEATURES)
            out[layer.id] = orjson.loads(encode.collection(page.features))
    return out


def _may_edit(layer: Layer) -> bool:
    return permissions.may_edit(g.get("user"), layer)


@bp.get("/")
def index():
    """The one map (一张图); editors also get edit controls for the layers they may change."""
    focus = None
    if "focus" in request.args:
        lon, lat = parse_lonlat(request.args["focus"], "focus")
        focus = (lon, lat, 17)
    svc = service()
    published: Published | None = request.environ.get(PUBLISHED)
    editable = () if published else permissions.editable_layers(g.get("user"), svc.registry)

    def build(page_nonce: str) -> maps.RenderedMap:
        summary = svc.reader.summary()
        extent = summary["district_boundary"].extent if "district_boundary" in summary else None
        m = maps.one_map(
            svc.registry,
            _context(),
            lang=current_lang(),
            internal=staff() and not published,
            basemap_=_basemap(),
            text=ui_text(),
            urls={"api": f"{request.script_root}/api", "features": f"{request.script_root}/features/"},
            extent=extent,
            focus=focus,
            editable=editable,
            csrf=generate_csrf() if editable else None,
            data=published.data if published else None,
        )
        return maps.render(m, page_nonce)

    if published or staff():
        rendered = build(nonce())
    else:  # every visitor gets the same page until a layer changes: built once, with this request's nonce put in
        key = (current_lang(), focus, request.script_root, tuple(sorted(svc.reader.versions().items())))
        # (Folium takes tens of milliseconds a page; each app keeps its own, for its settings and store)
        kept = current_app.extensions.setdefault("geoapp.public_pages", maps.RenderedMaps())
        rendered = kept.get(key, build).with_nonce(nonce())
    # a published page links to its other language's file and has no sign-in (nothing behind it is dynamic)
    extra = {"published": True, "switch_url": published.pages.get} if published else {}
    return render_template("map.html", map=rendered, title=_("One Map"), **extra)


@bp.get("/features/<layer_id>/<fid>")
def feature(layer_id: str, fid: str):
    """A feature's archive page (一盖一档): its visible attributes, a small map, a permanent link."""
    return _feature_page(layer_id, _fid(layer_id, fid))


def _layer(layer_id: str) -> Layer:
    registry = service().registry
    if layer_id not in registry:
        raise NotFound(_("There is no layer %(layer)s", layer=layer_id), parameter="layer")
    return registry[layer_id]


def _fid(layer_id: str, text: str) -> int:
    fid = parse_fid(text)
    if fid is None:
        raise NotFound(_("No feature %(fid)s in the layer %(layer)s", fid=text[:40], layer=layer_id), parameter="fid")
    return fid


@bp.post("/features/<layer_id>/<fid>/status")
def change_status(layer_id: str, fid: str):
    """The archive page's edit form: change the fields the editor changed, at the version they saw (never a newer
    one); a refused change shows the page again with what was sent and why not, beside the field."""
    layer = _layer(layer_id)
    number = _fid(layer_id, fid)
    who = caller()
    permissions.require_edit(who, layer)
    version = expected_version(None, request.form.get("version") or None)
    current = service().reader.get(layer_id, number, "internal")
    if current is None:
        raise NotFound(_("No feature %(fid)s in the layer %(layer)s", fid=number, layer=layer_id), parameter="fid")
    changes = edit_form.changes(layer, current.properties, request.form)
    try:
        service().editing.update(who, layer_id, number, version=version, properties=changes)
    except VersionConflict:
        # show what the other editor saved, with its version in the form: nothing is overwritten
        return _feature_page(layer_id, number, conflict=True, status=409)
    except InvalidFeature as refused:
        g.edit_refused = (request.form.to_dict(), refused)  # read by _status_form
        return _feature_page(layer_id, number, status=400)
    if not changes:
        flash(_("Nothing to save: no field was changed."), "info")
    elif set(changes) == {layer.status_field}:
        flash(_("The status was saved."), "info")
    else:
        flash(_("The changes were saved."), "info")
    return redirect(url_for("pages.feature", layer_id=layer_id, fid=number))


@bp.post("/features/<layer_id>/<fid>/delete")
def delete_feature(layer_id: str, fid: str):
    """The archive page's delete step, once confirmed: delete the version the editor saw (kept for restoring)."""
    layer = _layer(layer_id)
    number = _fid(layer_id, fid)
    who = caller()
    permissions.require_edit(who, layer)
    version = expected_version(None, request.form.get("version") or None)
    found = service().reader.get(layer_id, number, visibility())
    if found is None:
        raise NotFound(_("No feature %(fid)s in the layer %(layer)s", fid=number, layer=layer_id), parameter="fid")
    try:
        service().editing.delete(who, layer_id, number, version=version)
    except VersionConflict:
        return _feature_page(layer_id, number, conflict=True, status=409)
    point = found.geometry.representative_point()
    lang = current_lang()
    return render_template(
        "feature_deleted.html",
        title=_("Feature deleted"),
        layer_title=layer.title(lang),
        name=str(found.properties.get(layer.title_field) or f"#{number}"),
        map_link=url_for("pages.index", focus=f"{point.x:.6f},{point.y:.6f}"),
        admin="admin" in who.roles,
    )


def _feature_page(layer_id: str, number: int, *, conflict: bool = False, status: int = 200):
    svc = service()
    layer = _layer(layer_id)
    vis = visibility()
    found = svc.reader.get(layer_id, number, vis)
    if found is None:
        raise NotFound(_("No feature %(fid)s in the layer %(layer)s", fid=number, layer=layer_id), parameter="fid")
    lang = current_lang()
    geojson = orjson.loads(encode.feature(found.fid, found.version, found.geometry, found.properties))
    rows = [
        (spec.label(lang), _display(spec, geojson["properties"].get(spec.name), lang))
        for spec in layer.visible_fields(vis == "internal")
    ]
    point = found.geometry.representative_point()
    chart = _readings_chart(layer_id, number, lang) if staff() else None
    m = maps.feature_map(
        svc.registry,
        _context(),
        layer,
        geojson,
        center=(point.x, point.y),
        lang=lang,
        basemap_=_basemap(),
        text=ui_text(),
        chart=chart,
    )
    title = geojson["properties"].get(layer.title_field) or f"#{number}"
    page = render_template(
        "feature.html",
        map=maps.render(m, nonce()),
        layer_id=layer_id,
        fid=number,
        layer_title=layer.title(lang),
        title=str(title),
        rows=rows,
        version=geojson.get("version"),
        permalink=url_for("pages.feature", layer_id=layer_id, fid=number, _external=True),
        map_link=url_for("pages.index", focus=f"{point.x:.6f},{point.y:.6f}"),
        note=layer.note(lang) if layer.note else None,
        status_form=_status_form(layer, geojson["properties"], lang),
        conflict=conflict,
        history=_history(layer, number, lang) if staff() else None,
        chart=chart is not None,
        photos=photos.section(layer, number),
    )
    return page, status


#: the hours of readings an archive page charts
CHART_HOURS = 24


def _readings_chart(layer_id: str, fid: int, lang: str) -> dict | None:
    """What the archive page's readings chart needs, for a layer that takes readings (else None)."""
    rules = service().flood_rules
    kind = rules.kind_of(layer_id) if rules else None
    if kind is None:
        return None
    limit = rules.readings.limit(kind)
    return {
        "api": f"{request.script_root}/api",
        "layer": layer_id,
        "fid": fid,
        "kind": kind,
        "unit": limit.unit,
        "axis": _("%(quantity)s (%(unit)s)", quantity=limit.label(lang), unit=limit.unit),
        "hours": CHART_HOURS,
        "text": {
            "time": _("Time (Beijing time)"),
            "empty": _("No readings in the last 24 hours."),
            "failed": _("The readings could not be loaded."),
            "downsampled": _("A long series: fewer points are shown than were measured."),
        },
    }


def _status_form(layer: Layer, properties: dict, lang: str) -> edit_form.EditForm | None:
    """The archive page's edit form (every field, the rules, delete), for editors of the layer; after a refused
    save (``change_status``), with what was sent and the message beside the field it names."""
    if not _may_edit(layer):
        return None
    sent, refused = g.get("edit_refused", (None, None))
    return edit_form.build(layer, properties, lang, sent=sent, refused=refused)


@dataclass(frozen=True)
class HistoryEntry:
    at: str
    actor: str
    action: str
    changes: list[tuple[str, str, str]]  # (field label, old, new), all shown as text


def _history(layer: Layer, fid: int, lang: str) -> list[HistoryEntry]:
    """The feature's audit trail, newest first, with labels and values as the page shows them."""
    actions = {"insert": _("Created"), "update": _("Changed"), "delete": _("Deleted"), "restore": _("Restored")}
    actions |= {"photo_add": _("Photo added"), "photo_delete": _("Photo deleted")}
    specs = {f.name: f for f in layer.fields}
    entries = []
    for entry in reversed(service().store.history(layer.id, fid)):
        if entry.action.startswith("photo_"):  # the photo, its stage and caption; never a layer's field
            changes = photos.history_changes(entry.changes)
        else:
            changes = [_change(specs.get(name), name, old, new, lang) for name, (old, new) in entry.changes.items()]
        actor = entry.actor if entry.actor_kind == "user" else f"{entry.actor} ({entry.actor_kind})"
        entries.append(HistoryEntry(_when(entry.at), actor, actions.get(entry.action, entry.action), changes))
    return entries


def _change(spec: FieldDef | None, name: str, old, new, lang: str) -> tuple[str, str, str]:
    if name == "geometry":  # the WKT says nothing to a reader; that the shape changed does
        return _("Geometry"), "—" if old is None else _("previous shape"), "—" if new is None else _("new shape")
    if name == "version":
        return _("Record version"), "—" if old is None else str(old), "—" if new is None else str(new)
    if spec is None:  # a field no longer in the layer's definition
        return name, "—" if old is None else str(old), "—" if new is None else str(new)
    return spec.label(lang), _display(spec, old, lang), _display(spec, new, lang)


def _when(at: str) -> str:
    """A stored time (ISO, UTC) as ``YYYY-MM-DD HH:MM:SS`` in the district's time zone (``GEOAPP_TIMEZONE``)."""
    try:
        stamp = dt.datetime.fromisoformat(at.replace("Z", "+00:00"))
    except ValueError:
        return at
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=dt.UTC)
    return stamp.astimezone(service().timezone).strftime("%Y-%m-%d %H:%M:%S")


def _display(spec, value, lang: str) -> str:
    if value is None or value == "":
        return "—"
    if spec.values is not None:
        choice = spec.choice(value)
        return choice.label(lang) if choice else str(value)
    if spec.type == "boolean":
        return _("Yes") if value else _("No")
    if spec.type == "number":
        value = f"{value:,.2f}".rstrip("0").rstrip(".")
    return f"{value} {spec.unit}" if spec.unit else str(value)


@dataclass(frozen=True)
class DeletedRow:
    layer_id: str
    layer_title: str
    fid: int
    title: str
    deleted_at: str
    deleted_by: str


@bp.get("/admin/deleted")
@auth.require_role("admin")
def deleted():
    """Soft-deleted features, newest first, each with a button to restore it (administrators only)."""
    svc = service()
    lang = current_lang()
    # a layer since removed from the definitions cannot take its features back
    rows = [_deleted_row(svc.registry[item.feature.layer], item, lang) for item in svc.editing.deleted(caller())]
    return render_template("deleted.html", rows=rows, title=_("Deleted features"))


def _deleted_row(layer: Layer, item: DeletedFeature, lang: str) -> DeletedRow:
    feature = item.feature
    title = feature.properties.get(layer.title_field) or f"#{feature.fid}"
    return DeletedRow(layer.id, layer.title(lang), feature.fid, str(title), _when(item.deleted_at), item.deleted_by)


@bp.post("/admin/deleted/<layer_id>/<fid>/restore")
@auth.require_role("admin")
def restore(layer_id: str, fid: str):
    _layer(layer_id)
    feature = service().editing.restore(caller(), layer_id, _fid(layer_id, fid))
    flash(_("Feature #%(fid)s was restored.", fid=feature.fid), "info")
    return redirect(url_for("pages.deleted"))


@bp.get("/static/vendor/<path:path>")
def vendor(path: str):
    """Leaflet and its plugins, installed from npm by the project's setup (never from a CDN)."""
    package = next((p for p in maps.VENDOR_PACKAGES if path.startswith(p + "/")), None)
    if package is None:
        abort(404)
    return send_from_directory(NODE_MODULES / package, path[len(package) + 1 :], max_age=ASSET_MAX_AGE)
