"""The public progress map ``/public``: headline counters and the public layers, for a phone first; no login.

What it shows is declared in ``layers/figures/public.yaml`` (:mod:`geoapp.core.public`), read and checked when
the blueprint is registered, so that a bad declaration stops the app at start-up. The page is the public's view
whoever asks: public fields only, no editing code, no edit control, and its map reads the public layers from
``/api/public/...``, which answers public fields to everyone (a planner's session changes nothing there). For the
public it is cached: an ETag from the layers' versions and the language, 304 on If-None-Match, a short max-age.
"""

from __future__ import annotations

import hashlib
import zlib

import orjson
from flask import Blueprint, Flask, Response, current_app, g, render_template, request
from flask_babel import gettext as _

import geoapp
from geoapp.config import PROJECT_ROOT
from geoapp.core import encode, public
from geoapp.core.public import PUBLIC_FILE, PublicPage
from geoapp.core.query import features_request
from geoapp.errors import InvalidParameter, NotFound
from geoapp.web import GEOJSON, maps, service
from geoapp.web.i18n import current_lang
from geoapp.web.pages import _basemap, _context, ui_text

bp = Blueprint("public", __name__)

#: seconds a browser or a shared cache may keep the page and its layers without asking again
MAX_AGE = 60
#: what a request to the public layers may ask: the view, and paging
PARAMETERS = ("bbox", "limit", "offset")
#: the strings the public map's script shows (none of the editing ones)
TEXT_KEYS = ("legend", "layers", "zoomIn", "zoomOut", "loadFailed", "tooMany", "locate", "locatePopup", "yes", "no")
#: the page's language comes from ?lang=, the language cookie or Accept-Language; a session cookie or a token
#: (a signed-in user) gives a private page
_VARIES = ("Cookie", "Accept-Language", "Authorization")
#: files whose change changes the page: its declaration, templates and messages (part of its ETag)
_PAGE_FILES = (
    "templates/public.html",
    "templates/base.html",
    "geoapp/web/translations/zh/LC_MESSAGES/messages.mo",
)


@bp.record_once
def _load(state) -> None:
    """Read and check the declaration when the app is built: an unknown figure or layer stops it here."""
    app: Flask = state.app
    svc = service(app)
    declared = public.load(app.config["GEOAPP_LAYERS"], svc.registry, svc.figures)
    app.extensions["geoapp.public"] = declared
    digest = hashlib.sha256(geoapp.__version__.encode())
    sources = [PROJECT_ROOT / name for name in _PAGE_FILES]
    sources.append(PROJECT_ROOT / app.config["GEOAPP_LAYERS"] / PUBLIC_FILE)
    for path in sources:
        digest.update(path.read_bytes() if path.exists() else b"-")
    app.extensions["geoapp.public.build"] = digest.hexdigest()[:12]


def _declared() -> PublicPage:
    declared = current_app.extensions.get("geoapp.public")
    if declared is None:
        raise NotFound(_("There is no public progress map here."), parameter="path")
    return declared


def _text() -> dict[str, str]:
    full = ui_text()
    return {
        **{key: full[key] for key in TEXT_KEYS},
        "noLayer": _("No layer is switched on."),
    }


def _cache_for_everyone(response: Response, tag: str, *, varies: tuple[str, ...]) -> Response:
    """The same answer for every caller it varies by: an ETag, a 304 when the caller has it, a short max-age."""
    response.set_etag(tag)
    response.cache_control.public = True
    response.cache_control.max_age = MAX_AGE
    response.vary.update(varies)
    return response.make_conditional(request)


def _number(value: float) -> str:
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.2f}".rstrip("0").rstrip(".")
    return f"{int(value):,}"


def _shown(counter: dict, lang: str) -> dict:
    """A counter as the page shows it, in one language."""
    share = counter["share"]
    ratio = counter["ratio"]
    return {
        "id": counter["id"],
        "label": counter["label"][lang],
        "value": _number(counter["value"]),
        "total": None if counter["total"] is None else _number(counter["total"]),
        "percent": None if ratio is None else round(100 * ratio),
        "share": None
        if share is None
        else {"label": share["label"][lang], "value": f"{_number(share['value'])}{share['unit']}"},
        "parts": [{"label": p["label"][lang], "value": _number(p["value"])} for p in counter["parts"]],
        "note": counter["note"][lang] if counter["note"] else None,
    }


@bp.get("/public")
def page():
    """The public progress map: counters counted from the layers now, and the map of the public layers."""
    declared = _declared()
    svc = service()
    lang = current_lang()
    versions = svc.reader.versions()
    visitor = g.get("user") is None  # a signed-in user sees the same content, but their name in the top bar
    tag = "-".join(
        (
            "public",
            current_app.extensions["geoapp.public.build"],
            svc.registry.fingerprint,  # a field made internal changes the page's config
            lang,
            _basemap().kind,
            f"{zlib.crc32(request.script_root.encode()):08x}",
            f"{zlib.crc32(orjson.dumps(versions, option=orjson.OPT_SORT_KEYS)):08x}",
        )
    )
    if visitor and tag in request.if_none_match:  # what the visitor has is still right: nothing is counted
        return _cache_for_everyone(Response(status=304), tag, varies=_VARIES)
    summary = svc.reader.summary()
    extent = summary["district_boundary"].extent if "district_boundary" in summary else None
    config = maps.public_config(
        svc.registry,
        _context(),
        [(entry.layer, entry.shown) for entry in declared.layers],
        lang=lang,
        basemap_=_basemap(),
        text=_text(),
        api=f"{request.script_root}/api/public",
        extent=extent,
    )
    counters = [_shown(c, lang) for c in public.counters(declared, svc.reader, svc.figures)]
    html = render_template(
        "public.html",
        title=_("Public progress map"),
        counters=counters,
        config=config,
        synthetic=svc.store.synthetic,
    )
    response = Response(html, mimetype="text/html")
    if not visitor:
        return response  # private and not stored (geoapp.web.security), as every page a user signed in to
    # an answer that also sets a cookie (?lang= remembered, geoapp.web.i18n) is made private there
    return _cache_for_everyone(response, tag, varies=_VARIES)


@bp.get("/api/public/layers/<layer_id>/features")
def features(layer_id: str):
    """A public map layer's features in a view, public fields only whoever asks; the same for everyone."""
    declared = _declared()
    svc = service()
    if layer_id not in declared.layer_ids():
        raise NotFound(
            f"the public map has no layer {layer_id[:60]!r}; its layers: {', '.join(declared.layer_ids())}",
            parameter="layer",
        )
    args = request.args.to_dict(flat=False)
    for name in args:
        if name not in PARAMETERS:
            raise InvalidParameter(f"unknown parameter {name!r}; allowed: {', '.join(PARAMETERS)}", parameter=name)
    reader = svc.reader
    req = features_request(reader, svc.registry[layer_id], args, visibility="public")
    found = reader.select(layer_id, req.query, req.offset, req.limit, "public")
    body = encode.collection(
        found.features,
        numberMatched=found.matched,
        numberReturned=len(found.features),
        layer=layer_id,
        layerVersion=found.version,
    )
    tag = f"public-{layer_id}-{svc.registry.fingerprint}-{found.version}-{zlib.crc32(request.query_string):08x}"
    return _cache_for_everyone(Response(body, mimetype=GEOJSON), tag, varies=())
