"""HTML pages: the one map, feature archive pages, the app's own browser assets and the tile proxy."""

from __future__ import annotations

import orjson
import requests
from flask import Blueprint, Response, abort, current_app, render_template, request, send_from_directory, url_for
from flask_babel import gettext as _

from geoapp import maps, service
from geoapp.access import staff
from geoapp.config import PROJECT_ROOT
from geoapp.errors import GeoappError, InvalidParameter, NotFound
from geoapp.i18n import current_lang
from geoapp.params import parse_int, parse_lonlat
from geoapp.security import nonce

bp = Blueprint("pages", __name__)

NODE_MODULES = PROJECT_ROOT / "node_modules"
TIANDITU_LAYERS = ("vec", "cva", "img", "cia")
ASSET_MAX_AGE = 7 * 24 * 3600


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
        "length": _("Length"),
        "area": _("Area"),
        "fullscreen": _("Full screen"),
        "exitFullscreen": _("Exit full screen"),
        "locate": _("Show my location"),
        "locatePopup": _("You are within {distance} {unit} of this point"),
        "yes": _("Yes"),
        "no": _("No"),
    }


def _basemap() -> maps.Basemap:
    return current_app.extensions["geoapp.basemap"]


def _snapshots():
    engine = service().engine
    return {layer.id: engine.snapshot(layer.id) for layer in engine.registry if layer.context}


@bp.get("/")
def index():
    """The one map (一张图)."""
    focus = None
    if "focus" in request.args:
        lon, lat = parse_lonlat(request.args["focus"], "focus")
        focus = (lon, lat, 17)
    engine = service().engine
    snapshots = _snapshots()
    extent = snapshots["district_boundary"].extent if "district_boundary" in snapshots else None
    m = maps.one_map(
        engine.registry,
        snapshots,
        lang=current_lang(),
        internal=staff(),
        basemap_=_basemap(),
        text=ui_text(),
        urls={"api": f"{request.script_root}/api", "features": f"{request.script_root}/features/"},
        extent=extent,
        focus=focus,
    )
    return render_template("map.html", map=maps.render(m, nonce()), title=_("One Map"))


@bp.get("/features/<layer_id>/<fid>")
def feature(layer_id: str, fid: str):
    """A feature's archive page (一盖一档): its visible attributes, a small map, a permanent link."""
    engine = service().engine
    layer = engine.layer(layer_id)
    snap = engine.snapshot(layer_id)
    number = parse_int(fid, "fid")
    pos = snap.position(number)
    if pos is None:
        raise NotFound(_("No feature %(fid)s in the layer %(layer)s", fid=number, layer=layer_id), parameter="fid")
    lang = current_lang()
    (raw,) = snap.features_json([pos], staff())
    geojson = orjson.loads(raw + b"}}")
    rows = [
        (spec.label(lang), _display(spec, geojson["properties"].get(spec.name), lang))
        for spec in layer.visible_fields(staff())
    ]
    point = snap.geoms[pos].representative_point()
    m = maps.feature_map(
        engine.registry,
        _snapshots(),
        layer,
        geojson,
        center=(point.x, point.y),
        lang=lang,
        basemap_=_basemap(),
        text=ui_text(),
    )
    title = geojson["properties"].get(layer.title_field) or f"#{number}"
    return render_template(
        "feature.html",
        map=maps.render(m, nonce()),
        layer_title=layer.title(lang),
        title=str(title),
        rows=rows,
        version=geojson.get("version"),
        permalink=url_for("pages.feature", layer_id=layer_id, fid=number, _external=True),
        map_link=url_for("pages.index", focus=f"{point.x:.6f},{point.y:.6f}"),
        note=layer.note(lang) if layer.note else None,
    )


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


@bp.get("/static/vendor/<path:path>")
def vendor(path: str):
    """Leaflet and its plugins, installed from npm by the project's setup (never from a CDN)."""
    package = next((p for p in maps.VENDOR_PACKAGES if path.startswith(p + "/")), None)
    if package is None:
        abort(404)
    return send_from_directory(NODE_MODULES / package, path[len(package) + 1 :], max_age=ASSET_MAX_AGE)


class TileUnavailable(GeoappError):
    status = 502
    code = "tile_unavailable"


@bp.get("/tiles/tianditu/<layer>/<int:z>/<int:x>/<int:y>")
def tianditu(layer: str, z: int, x: int, y: int):
    """Tianditu tiles fetched by the server, so that the key stays out of every page."""
    if _basemap().kind != "tianditu":
        raise NotFound(_("The Tianditu basemap is not configured"), parameter="layer")
    if layer not in TIANDITU_LAYERS:
        raise InvalidParameter(f"layer must be one of {', '.join(TIANDITU_LAYERS)}", parameter="layer")
    if not (0 <= z <= 18 and 0 <= x < 2**z and 0 <= y < 2**z):
        raise InvalidParameter("z must be 0 to 18 and x, y inside the zoom level's tile matrix", parameter="z")
    config = current_app.config
    url = config["GEOAPP_TIANDITU_URL"].format(s=(x + y) % 8, layer=layer)
    params = {
        "SERVICE": "WMTS",
        "REQUEST": "GetTile",
        "VERSION": "1.0.0",
        "LAYER": layer,
        "STYLE": "default",
        "TILEMATRIXSET": "w",
        "FORMAT": "tiles",
        "TILEMATRIX": z,
        "TILEROW": y,
        "TILECOL": x,
        "tk": config["GEOAPP_TIANDITU_KEY"],
    }
    try:
        upstream = requests.get(url, params=params, timeout=10, headers={"User-Agent": "geoapp tile proxy"})
    except requests.RequestException:
        current_app.logger.warning("tianditu tile %s/%s/%s/%s: upstream unreachable", layer, z, x, y)
        raise TileUnavailable(_("The tile server did not answer"), parameter="tile") from None
    content_type = upstream.headers.get("Content-Type", "")
    if upstream.status_code != 200 or not content_type.startswith("image/"):
        current_app.logger.warning("tianditu tile %s/%s/%s/%s: upstream %s", layer, z, x, y, upstream.status_code)
        raise TileUnavailable(_("The tile server did not answer"), parameter="tile")
    response = Response(upstream.content, mimetype=content_type)
    response.cache_control.public = True
    response.cache_control.max_age = 86400
    return response
