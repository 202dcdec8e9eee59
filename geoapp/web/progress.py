"""The planners' progress page /progress: the campaign layers on a map beside a table that follows it.

The page carries no rows: its script (``static/js/pages/progress.js``) asks the progress API
(``/api/progress/<layer>/rows``) for the table, its summary and the map's set, and the features API for the
shapes. What the page does hold is decided here: which campaign layer is shown (``?layer=``), the filters a
shared link names (each checked against the layer's definition: a value the layer does not know is dropped,
as a select cannot show it), and whether the caller may edit the layer (the API checks that again).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from flask import Blueprint, g, render_template, request, url_for
from flask_babel import gettext as _
from flask_wtf.csrf import generate_csrf

from geoapp.core import permissions
from geoapp.core.layers import Layer
from geoapp.core.query import parse_bbox, parse_int
from geoapp.errors import InvalidParameter
from geoapp.web import auth, maps, service
from geoapp.web.access import staff
from geoapp.web.i18n import current_lang
from geoapp.web.pages import _basemap, _context, ui_text
from geoapp.web.security import nonce

bp = Blueprint("progress", __name__)

#: who follows the campaigns: planners run them, viewers watch them, administrators may everything
PAGE_ROLES = ("planner", "viewer", "admin")
#: rows a page of the table holds (the manhole covers are 950)
PAGE_SIZE = 50
#: the longest free text kept from a shared link (as long as the API takes)
MAX_TEXT = 100
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def progress_text() -> dict[str, str]:
    """Every string the progress page's script shows, in the page's language."""
    return {
        "asOf": _("Figures as of"),
        "loading": _("Loading…"),
        "loadFailed": _("The rows could not be loaded: {message}"),
        "noRows": _("No row matches these filters."),
        "rowsShown": _("Rows {first}–{last} of {matched}"),
        "pageOf": _("Page {page} of {pages}"),
        "previous": _("Previous page"),
        "next": _("Next page"),
        "overdue": _("Overdue"),
        "overdueSince": _("Past its target date ({date})"),
        "edit": _("Edit"),
        "editTitle": _("Edit: {title}"),
        "closeForm": _("Close the form"),
        "actions": _("Actions"),
        "total": _("Total"),
        "doneShare": _("Completion"),
        "byStatus": _("By status"),
        "byField": _("By {field}"),
        "doneOfTotal": _("{done} of {total} done"),
        "perMonth": _("Done per month ({field})"),
        "noMonths": _("Nothing dated done yet."),
        "notSet": _("Not set"),
        "savedRow": _("Saved: the table, the figures and the map are up to date."),
        "deletedRow": _("Deleted: the table, the figures and the map are up to date."),
        "notOnMap": _("This feature is not on the map."),
    }


def _page_text() -> dict[str, str]:
    # the map's strings and the edit form's (ui_text carries the editing strings) with the page's own
    return {**ui_text(), **progress_text()}


@dataclass(frozen=True)
class Tab:
    id: str
    title: str
    href: str
    current: bool


@dataclass(frozen=True)
class Filter:
    name: str
    label: str
    current: str
    options: list[tuple[str, str]]  # (value, label in the page's language)


@dataclass(frozen=True)
class Form:
    """The filter bar as the page opens: what a shared link asked for, each value one the layer knows."""

    layer: str
    filters: list[Filter]
    date_label: str | None
    date_from: str
    date_to: str
    text: str
    overdue: bool | None  # None: the layer has no target date
    in_view: bool


def campaign_layers() -> list[Layer]:
    """The layers that follow a campaign (``progress:`` in their definition), the top one first, as the one map's
    layer control lists them (hoardings, back streets, manhole covers)."""
    return [layer for layer in reversed(list(service().registry)) if layer.progress is not None]


def _chosen(layers: list[Layer]) -> Layer:
    wanted = request.args.get("layer")
    if wanted is None:
        return layers[0]
    for layer in layers:
        if layer.id == wanted:
            return layer
    allowed = ", ".join(layer.id for layer in layers)
    raise InvalidParameter(f"layer must be one of {allowed}, not {wanted[:60]!r}", parameter="layer")


def _date(name: str) -> str:
    text = request.args.get(name, "")
    if not DATE.match(text):
        return ""
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        return ""
    return text


def _form(layer: Layer, lang: str, bbox: list[float] | None) -> Form:
    filters = []
    for name in layer.progress.filters:
        spec = layer.field(name)
        options = [(c.value, c.label(lang)) for c in spec.values or ()]
        # the API takes several values of a field; the select shows one: the first the layer knows
        asked = [v for v in request.args.getlist(name) if v in {value for value, _ in options}]
        filters.append(Filter(name, spec.label(lang), asked[0] if asked else "", options))
    date_field = layer.progress.date_field
    return Form(
        layer=layer.id,
        filters=filters,
        date_label=layer.field(date_field).label(lang) if date_field else None,
        date_from=_date("from") if date_field else "",
        date_to=_date("to") if date_field else "",
        text=request.args.get("q", "")[:MAX_TEXT],
        overdue=(request.args.get("overdue") == "true") if layer.progress.due_field else None,
        in_view=bbox is not None,
    )


def _offset(text: str) -> int:
    """A shared link's row offset: ASCII digits up to 99,999,999 (not "²", which ``str.isdigit`` takes), else 0."""
    try:
        offset = parse_int(text, "offset")
    except InvalidParameter:
        return 0
    return offset if 0 <= offset < 10**8 else 0


def _view(layer: Layer, internal: bool) -> tuple[dict, list[float] | None]:
    """The table's sort, page and map view a shared link asks for (what is not valid is left out)."""
    names = {f.name for f in layer.visible_fields(internal)}
    sort = request.args.get("sort")
    order = request.args.get("order")
    bbox = None
    if "bbox" in request.args:
        try:
            bbox = list(parse_bbox(request.args["bbox"]))
        except InvalidParameter:
            bbox = None
    view = {
        "sort": sort if sort in names else layer.title_field,
        "order": order if order in ("asc", "desc") else "asc",
        "offset": _offset(request.args.get("offset", "")),
        "bbox": bbox,
    }
    return view, bbox


@bp.get("/progress")
@auth.require_role(*PAGE_ROLES)
def page():
    """The campaign on a map beside its table, its figures by status and agency, and its months."""
    svc = service()
    layers = campaign_layers()
    layer = _chosen(layers)
    lang = current_lang()
    internal = staff()
    editable = permissions.may_edit(g.get("user"), layer)
    view, bbox = _view(layer, internal)
    summary = svc.reader.summary()
    # the campaign's features, as large as they fit (the whole district would open a zoom level further out)
    extent = summary[layer.id].extent if layer.id in summary else None
    if extent is None and "district_boundary" in summary:
        extent = summary["district_boundary"].extent
    m = maps.progress_map(
        svc.registry,
        _context(),
        layer,
        lang=lang,
        internal=internal,
        basemap_=_basemap(),
        text=_page_text(),
        urls={"api": f"{request.script_root}/api", "features": f"{request.script_root}/features/"},
        extent=extent,
        view=view,
        editable=editable,
        csrf=generate_csrf() if editable else None,
        time_zone=svc.timezone.key,
        page_size=PAGE_SIZE,
    )
    tabs = [
        Tab(item.id, item.title(lang), url_for("progress.page", layer=item.id), item.id == layer.id) for item in layers
    ]
    return render_template(
        "progress.html",
        map=maps.render(m, nonce()),
        title=f"{_('Progress')} · {layer.title(lang)}",
        tabs=tabs,
        form=_form(layer, lang, bbox),
        layer_title=layer.title(lang),
        reset=url_for("progress.page", layer=layer.id),
        # the ledgers of the whole layer; the script gives them the table's filters as they change
        exports={kind: f"{request.script_root}/api/progress/{layer.id}/ledger.{kind}" for kind in ("xlsx", "csv")},
    )
