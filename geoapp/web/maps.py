"""Build the Folium maps every page shares, from the layer definitions. Flask-free.

The map page carries no feature data of the operational layers: each layer is a folium
``FeatureGroup`` that the page's ES module (``static/js/pages/onemap.js``) fills from the query
API for the current view, so the page stays small whatever the layer size. Only the small context
layers (district boundary, roads) are embedded, as the vector backdrop that makes the map readable
without tiles. Every value is handed to the browser as JSON inside the page's script (made safe
for HTML with ``htmlsafe_json_dumps``) and drawn through DOM text, never as HTML.
"""

from __future__ import annotations

import html
import threading
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

import folium
import folium.plugins
import orjson
from branca.element import Figure, MacroElement
from folium.elements import JSCSSMixin
from jinja2 import Template
from jinja2.utils import htmlsafe_json_dumps
from markupsafe import Markup
from markupsafe import escape as _escape

from geoapp.core.layers import GROUPS, Layer, Registry
from geoapp.core.query import MAX_LIMIT
from geoapp.flood.rules import Rules

VENDOR = "/static/vendor"
STATIC = "/static"
#: one ES module per page under static/js/pages/ (static/js/README.md says how the tree is laid out)
PAGE_MODULES = f"{STATIC}/js/pages"

#: the npm packages served from /static/vendor (see package.json)
VENDOR_PACKAGES = (
    "@geoman-io/leaflet-geoman-free",
    "gcoord",
    "leaflet",
    "leaflet-groupedlayercontrol",
    "leaflet.fullscreen",
    "leaflet.heat",
    "leaflet.locatecontrol",
    "leaflet.markercluster",
    "uplot",
)

BASEMAPS = ("none", "osm", "tianditu", "amap", "xyz:<url template>")


@dataclass(frozen=True)
class Tiles:
    url: str
    attribution: str
    subdomains: str = "abc"
    overlay: bool = False


@dataclass(frozen=True)
class Basemap:
    """The configured basemap: its tile layers, whether overlays need GCJ-02, and the hosts it loads from."""

    kind: str
    tiles: tuple[Tiles, ...] = ()
    gcj02: bool = False
    origins: tuple[str, ...] = field(default=())


def basemap(setting: str) -> Basemap:
    """Read ``GEOAPP_BASEMAP``; raise ``ValueError`` naming the allowed values."""
    osm = "© OpenStreetMap contributors"
    if setting == "none":
        return Basemap("none")
    if setting == "osm":
        return Basemap(
            "osm",
            (Tiles("https://tile.openstreetmap.org/{z}/{x}/{y}.png", osm),),
            origins=("https://tile.openstreetmap.org",),
        )
    if setting == "tianditu":
        # served through the app, so that the key never reaches a page
        return Basemap(
            "tianditu",
            (
                Tiles("/tiles/tianditu/vec/{z}/{x}/{y}", "天地图 © 国家地理信息公共服务平台"),
                Tiles("/tiles/tianditu/cva/{z}/{x}/{y}", "天地图", overlay=True),
            ),
        )
    if setting == "amap":
        return Basemap(
            "amap",
            (
                Tiles(
                    "https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1&style=8&x={x}&y={y}&z={z}",
                    "© 高德地图 AutoNavi",
                    subdomains="1234",
                ),
            ),
            gcj02=True,
            origins=("https://*.is.autonavi.com",),
        )
    if setting.startswith("xyz:"):
        url = setting.removeprefix("xyz:")
        if not url.startswith(("http://", "https://", "/")) or "{z}" not in url:
            raise ValueError(f"GEOAPP_BASEMAP xyz: needs a URL template with {{z}}, {{x}}, {{y}}, not {url!r}")
        origin = "/".join(url.split("/")[:3]) if url.startswith("http") else None
        return Basemap("xyz", (Tiles(url, "", subdomains="abc"),), origins=(origin,) if origin else ())
    raise ValueError(f"GEOAPP_BASEMAP must be one of {', '.join(BASEMAPS)}, not {setting!r}")


def configure_assets() -> None:
    """Point folium's classes at the assets the app serves, instead of public CDNs (once, at start-up)."""
    folium.Map.default_js = [("leaflet", f"{VENDOR}/leaflet/dist/leaflet.js")]
    folium.Map.default_css = [("leaflet_css", f"{VENDOR}/leaflet/dist/leaflet.css")]
    folium.plugins.LocateControl.default_js = [
        ("locate_js", f"{VENDOR}/leaflet.locatecontrol/dist/L.Control.Locate.min.js")
    ]
    folium.plugins.LocateControl.default_css = [
        ("locate_css", f"{VENDOR}/leaflet.locatecontrol/dist/L.Control.Locate.min.css")
    ]
    folium.plugins.Fullscreen.default_js = [("fullscreen_js", f"{VENDOR}/leaflet.fullscreen/Control.FullScreen.js")]
    folium.plugins.Fullscreen.default_css = [("fullscreen_css", f"{VENDOR}/leaflet.fullscreen/Control.FullScreen.css")]
    folium.plugins.GroupedLayerControl.default_js = [
        ("grouped_js", f"{VENDOR}/leaflet-groupedlayercontrol/dist/leaflet.groupedlayercontrol.min.js")
    ]
    folium.plugins.GroupedLayerControl.default_css = [
        ("grouped_css", f"{VENDOR}/leaflet-groupedlayercontrol/dist/leaflet.groupedlayercontrol.min.css")
    ]


class _GeoappScript(JSCSSMixin, MacroElement):
    """Starts the page's ES module (``static/js/pages/<page>.js``) on this map, its groups and a JSON config.

    folium's inline script, which carries the CSP nonce, builds the map; this element's part of it
    pushes ``{page, map, groups, config}`` onto ``window.geoapp.maps``. The module, loaded with
    ``type="module"`` from the app's own origin (deferred, so it runs after that script), takes it
    from there (``static/js/lib/boot.js``).
    """

    default_js = [("markercluster_js", f"{VENDOR}/leaflet.markercluster/dist/leaflet.markercluster.js")]
    default_css = [
        ("markercluster_css", f"{VENDOR}/leaflet.markercluster/dist/MarkerCluster.css"),
        ("markercluster_default_css", f"{VENDOR}/leaflet.markercluster/dist/MarkerCluster.Default.css"),
    ]
    _template = Template(
        """{% macro header(this, kwargs) %}
        <script type="module" src="{{ this.module }}"></script>
        {% endmacro %}
        {% macro script(this, kwargs) %}
        (function (geoapp) {
            (geoapp.maps = geoapp.maps || []).push({
                page: {{ this.page|tojson }},
                map: {{ this._parent.get_name() }},
                groups: {
                {%- for layer_id, group in this.groups.items() %}
                    {{ layer_id|tojson }}: {{ group.get_name() }},
                {%- endfor %}
                },
                config: {{ this.config }},
            });
        })(window.geoapp = window.geoapp || {});
        {% endmacro %}"""
    )

    def __init__(self, page: str, groups: Mapping[str, folium.FeatureGroup], config: dict):
        super().__init__()
        self._name = "GeoappScript"
        self.page = page
        self.module = f"{PAGE_MODULES}/{page}.js"
        self.groups = dict(groups)
        self.config = Markup(_htmlsafe_json(config))


class _EditingTools(JSCSSMixin, MacroElement):
    """Leaflet-Geoman's script and styles, only on an editor's map.

    ``static/js/edit/`` builds the drawing and shape-editing tools from them; the public never loads them.
    """

    default_js = [("geoman_js", f"{VENDOR}/@geoman-io/leaflet-geoman-free/dist/leaflet-geoman.min.js")]
    default_css = [("geoman_css", f"{VENDOR}/@geoman-io/leaflet-geoman-free/dist/leaflet-geoman.css")]
    _template = Template("")

    def __init__(self):
        super().__init__()
        self._name = "EditingTools"


def _htmlsafe_json(value) -> str:
    return str(htmlsafe_json_dumps(value, dumps=lambda v, **_: orjson.dumps(v).decode()))


def _kind(layer: Layer) -> str:
    types = {t.removeprefix("Multi") for t in layer.geometry}
    return "point" if types == {"Point"} else "line" if types == {"LineString"} else "area"


def layer_config(layer: Layer, lang: str, internal: bool, yes_no: tuple[str, str]) -> dict:
    """What the browser needs to draw and describe a layer, in one language."""
    style_field = layer.style_field
    colours, legend = {}, {}
    if style_field:
        for choice in layer.field(style_field).values:
            colours[choice.value] = choice.color
            legend[choice.label(lang)] = choice.color
    visible = layer.visible_fields(internal)
    names = {f.name for f in visible}
    return {
        "id": layer.id,
        "title": layer.title(lang),
        "group": GROUPS[layer.group][lang],
        "kind": _kind(layer),
        "titleField": layer.title_field,
        "statusField": layer.status_field,
        "styleField": style_field,
        "geometry": list(layer.geometry),
        "colours": colours,
        "legend": legend,
        "style": layer.style.model_dump(),
        "popup": [name for name in layer.popup if name in names],
        # whether this caller may see the layer's photos (the popup fetches them when it opens)
        "photos": layer.photos is not None and (internal or layer.photos.visibility == "public"),
        "fields": [
            {
                "name": f.name,
                "label": f.label(lang),
                "type": f.type,
                "unit": f.unit,
                "required": f.required,
                "default": f.default,
                "computed": f.computed,
                "yes": yes_no[0],
                "no": yes_no[1],
                "values": None if f.values is None else [{"value": c.value, "label": c.label(lang)} for c in f.values],
                "min": f.min,
                "max": f.max,
                "maxLength": f.max_length if f.type == "string" else None,
                "hint": f.hint(lang) if f.hint else None,
                "multiline": f.multiline,
                "visibility": f.visibility,
            }
            for f in visible
        ],
        "rules": _rules(layer, lang, names),
    }


def _rules(layer: Layer, lang: str, names: set[str]) -> list[dict]:
    """The layer's rules as the edit forms show them, naming only fields this caller sees (a rule about a field
    it does not see is left out)."""
    return [
        {
            "when": {name: list(values) for name, values in rule.when.items()},
            "require": [n for n in rule.require if n in names],
            "clear": [n for n in rule.clear if n in names],
            "keep": [n for n in rule.keep if n in names],
            "note": rule.note(lang) if rule.note else None,
        }
        for rule in layer.rules
        if set(rule.when) <= names
    ]


def _context(registry: Registry, context: Mapping[str, dict], lang: str) -> list[dict]:
    """The small context layers embedded in the page: their drawing config and their public GeoJSON."""
    return [
        {**layer_config(layer, lang, False, ("", "")), "geojson": context[layer.id]}
        for layer in registry
        if layer.context and layer.id in context
    ]


def _base(
    basemap_: Basemap,
    center: tuple[float, float],
    zoom: int,
    height: str,
) -> folium.Map:
    m = folium.Map(
        location=[center[1], center[0]],
        zoom_start=zoom,
        tiles=None,
        prefer_canvas=True,
        zoom_control=False,
        control_scale=False,
        max_zoom=19,
        height=height,
    )
    m.options["max_zoom"] = 19
    for tiles in basemap_.tiles:
        folium.TileLayer(
            tiles=tiles.url,
            attr=tiles.attribution,
            name=basemap_.kind,
            overlay=tiles.overlay,
            control=False,
            subdomains=tiles.subdomains,
            max_zoom=19,
        ).add_to(m)
    return m


#: where the maps open when the store has no district boundary
DEMO_EXTENT = (113.27, 33.71, 113.33, 33.75)


def _page_map(basemap_: Basemap, extent: list[float] | None, text: Mapping[str, str]):
    """A map that fills its page, on the district's extent, with the full-screen button; and that extent."""
    minx, miny, maxx, maxy = extent or DEMO_EXTENT
    m = _base(basemap_, ((minx + maxx) / 2, (miny + maxy) / 2), 14, "100%")
    folium.plugins.Fullscreen(position="topleft", title=text["fullscreen"], title_cancel=text["exitFullscreen"]).add_to(
        m
    )
    return m, (minx, miny, maxx, maxy)


def one_map(
    registry: Registry,
    context: Mapping[str, dict],
    *,
    lang: str,
    internal: bool,
    basemap_: Basemap,
    text: Mapping[str, str],
    urls: Mapping[str, str],
    extent: list[float] | None,
    focus: tuple[float, float, int] | None = None,
    editable: Collection[str] = (),
    csrf: str | None = None,
    data: Mapping[str, str] | None = None,
) -> folium.Map:
    """The one map: every layer in a grouped layer control, filled by the browser from the API.

    ``editable`` names the layers the signed-in user may change (decided by the server, never by the
    script); their popups get edit controls and the map gets drawing tools. ``csrf`` is the token the
    script sends with each change. ``data`` (for ``geoapp publish``) gives each layer a static GeoJSON
    file, fetched once whole instead of the API per view; such a page has no search box and no
    archive links, which need the app.
    """
    m, (minx, miny, maxx, maxy) = _page_map(basemap_, extent, text)
    _locate(m, text)
    groups: dict[str, folium.FeatureGroup] = {}
    by_group: dict[str, list[folium.FeatureGroup]] = {}
    for layer in reversed(list(registry)):  # the layer control lists the top layer first
        if layer.context:
            continue
        group = folium.FeatureGroup(name=html.escape(layer.title(lang)), show=layer.shown)
        group.add_to(m)
        groups[layer.id] = group
        by_group.setdefault(GROUPS[layer.group][lang], []).append(group)
    ordered = {GROUPS[g][lang]: by_group[GROUPS[g][lang]] for g in GROUPS if GROUPS[g][lang] in by_group}
    folium.plugins.GroupedLayerControl(ordered, exclusive_groups=False, collapsed=False, position="topright").add_to(m)
    yes_no = (text["yes"], text["no"])
    config = {
        "lang": lang,
        "api": "" if data else urls["api"],
        "featurePage": None if data else urls["features"],
        "data": dict(data) if data else None,
        "limit": MAX_LIMIT,
        "gcj02": basemap_.gcj02,
        "bounds": [minx, miny, maxx, maxy] if focus is None else None,
        "focus": list(focus) if focus else None,
        "context": _context(registry, context, lang),
        "layers": [
            {**layer_config(registry[i], lang, internal, yes_no), "editable": i in editable}
            for i in reversed(list(groups))
        ],
        "csrf": csrf if editable else None,
        "text": dict(text),
    }
    if editable:
        _EditingTools().add_to(m)
    _GeoappScript("onemap", groups, config).add_to(m)
    return m


def feature_map(
    registry: Registry,
    context: Mapping[str, dict],
    layer: Layer,
    feature_geojson: dict,
    *,
    center: tuple[float, float],
    lang: str,
    basemap_: Basemap,
    text: Mapping[str, str],
    chart: Mapping | None = None,
) -> folium.Map:
    """A small map centred on one feature, for its archive page.

    ``chart`` (staff, on a monitored feature or a rain gauge): the readings series the page draws under the
    map, ``{"api", "layer", "fid", "kind", "unit", "label", "hours"}``.
    """
    m = _base(basemap_, center, 16, "360px")
    config = {
        "lang": lang,
        "gcj02": basemap_.gcj02,
        "context": _context(registry, context, lang),
        "feature": {"layer": layer_config(layer, lang, False, ("", "")), "geojson": feature_geojson},
        "text": dict(text),
        "chart": dict(chart) if chart else None,
    }
    _GeoappScript("featuremap", {}, config).add_to(m)
    return m


#: what of a layer's config the public map's script reads: drawing and popups, nothing an editor uses
PUBLIC_LAYER_KEYS = (
    "id",
    "title",
    "group",
    "kind",
    "titleField",
    "statusField",
    "styleField",
    "geometry",
    "colours",
    "legend",
    "style",
    "popup",
)
PUBLIC_FIELD_KEYS = ("name", "label", "type", "unit", "yes", "no", "values")


def _public_layer(layer: Layer, lang: str, yes_no: tuple[str, str]) -> dict:
    config = layer_config(layer, lang, False, yes_no)
    out = {key: config[key] for key in PUBLIC_LAYER_KEYS}
    out["fields"] = [{key: f[key] for key in PUBLIC_FIELD_KEYS} for f in config["fields"] if f["name"] in out["popup"]]
    return out


def public_config(
    registry: Registry,
    context: Mapping[str, dict],
    layers: Collection[tuple[str, bool]],
    *,
    lang: str,
    basemap_: Basemap,
    text: Mapping[str, str],
    api: str,
    extent: list[float] | None,
) -> dict:
    """The public progress map as its script (``static/js/pages/public.js``) reads it: no Folium here.

    The page is the same for every visitor and cached (ETag, a short max-age), so it has no inline script (a
    script's CSP nonce would differ between a cached copy and the headers of a 304): its script builds the
    Leaflet map from this config, carried in a JSON block. ``layers``: (layer id, shown at first), drawn in the
    registry's order. Each layer carries its public popup fields only, and nothing of editing (no rules, hints,
    editors or archive links), whoever asks.
    """
    minx, miny, maxx, maxy = extent or DEMO_EXTENT
    shown = dict(layers)
    yes_no = (text["yes"], text["no"])
    contexts = [
        {
            **{key: c[key] for key in ("id", "title", "kind", "styleField", "colours", "style")},
            "geojson": c["geojson"],
        }
        for c in _context(registry, context, lang)
    ]
    return {
        "lang": lang,
        "api": api,
        "featurePage": None,
        "limit": MAX_LIMIT,
        "gcj02": basemap_.gcj02,
        "tiles": [
            {"url": t.url, "attribution": t.attribution, "subdomains": t.subdomains, "overlay": t.overlay}
            for t in basemap_.tiles
        ],
        "bounds": [minx, miny, maxx, maxy],
        "focus": None,
        "context": contexts,
        "layers": [
            {**_public_layer(layer, lang, yes_no), "shown": shown[layer.id]} for layer in registry if layer.id in shown
        ],
        "text": dict(text),
    }


def flood_config(rules: Rules, lang: str) -> dict:
    """What the board's script needs of the flood rules, in one language: level, stale and signal colours
    and labels, which layers may be closed (and how), the age at which a reading is stale."""
    return {
        "staleAfterMinutes": rules.stale_after_minutes,
        "levels": {level.id: {"label": level.label(lang), "color": level.color} for level in rules.levels},
        "stale": {"label": rules.stale.label(lang), "color": rules.stale.color},
        "signals": {
            s.id: {"label": s.label(lang), "color": s.color, "hours": s.hours, "mm": s.mm} for s in rules.signals
        },
        "noSignal": {"label": rules.no_signal.label(lang), "color": rules.no_signal.color},
        "windows": list(rules.gauges.windows_h),
        "closures": {
            layer_id: {"action": rule.closure.action, "closed": rule.closure.closed, "open": rule.closure.open}
            for layer_id, rule in rules.monitored.items()
            if rule.closure is not None
        },
        "monitored": list(rules.monitored),
        "gauges": rules.gauges.layer,
        "resources": {
            "layer": rules.resources.layer,
            "kindField": rules.resources.kind_field,
            "stateField": rules.resources.state_field,
            "available": rules.resources.available,
            "pumpKinds": list(rules.resources.pump_kinds),
        },
    }


def flood_map(
    registry: Registry,
    context: Mapping[str, dict],
    rules: Rules,
    *,
    lang: str,
    internal: bool,
    basemap_: Basemap,
    text: Mapping[str, str],
    urls: Mapping[str, str],
    extent: list[float] | None,
    may_close: bool = False,
    may_report: bool = False,
    csrf: str | None = None,
    poll_ms: int = 5000,
    time_zone: str = "Asia/Shanghai",
) -> folium.Map:
    """The flood commander's board: the monitored features by level, resources and rain gauges, all fetched by
    the browser (``static/js/pages/flood.js``) from the flood API and redrawn in place as it polls.

    ``may_close`` and ``may_report`` (decided by the server from the caller's roles, never by the script)
    give popups the close/seal/reopen buttons and the manual depth report; ``csrf`` is sent with them.
    """
    m, (minx, miny, maxx, maxy) = _page_map(basemap_, extent, text)
    ids = [*rules.monitored, rules.gauges.layer, rules.resources.layer]
    shown = [layer for layer in registry if layer.id in ids]
    groups: dict[str, folium.FeatureGroup] = {}
    for layer in reversed(shown):  # the layer control lists the top layer first
        group = folium.FeatureGroup(name=html.escape(layer.title(lang)), show=layer.shown)
        group.add_to(m)
        groups[layer.id] = group
    folium.LayerControl(position="topright", collapsed=True).add_to(m)
    yes_no = (text["yes"], text["no"])
    writes = may_close or may_report
    config = {
        "lang": lang,
        "api": urls["api"],
        "featurePage": urls["features"],
        "gcj02": basemap_.gcj02,
        "bounds": [minx, miny, maxx, maxy],
        "context": _context(registry, context, lang),
        "layers": [layer_config(layer, lang, internal, yes_no) for layer in shown],
        "rules": flood_config(rules, lang),
        "mayClose": may_close,
        "mayReport": may_report,
        "csrf": csrf if writes else None,
        "pollMs": poll_ms,
        "timeZone": time_zone,
        "text": dict(text),
    }
    _GeoappScript("flood", groups, config).add_to(m)
    return m


def progress_config(layer: Layer, internal: bool) -> dict:
    """What the progress page's script needs of a layer's campaign (``progress:``): the done values, the date and
    target-date fields, the filters, and the table's columns (the popup fields if none are declared), visible
    ones only."""
    spec = layer.progress
    names = {f.name for f in layer.visible_fields(internal)}
    columns = [name for name in (spec.columns or layer.popup) if name in names]
    return {
        "done": list(spec.done),
        "dateField": spec.date_field if spec.date_field in names else None,
        "dueField": spec.due_field if spec.due_field in names else None,
        "filters": [name for name in spec.filters if name in names],
        "columns": columns or [layer.title_field],
    }


def progress_map(
    registry: Registry,
    context: Mapping[str, dict],
    layer: Layer,
    *,
    lang: str,
    internal: bool,
    basemap_: Basemap,
    text: Mapping[str, str],
    urls: Mapping[str, str],
    extent: list[float] | None,
    view: Mapping,
    editable: bool = False,
    csrf: str | None = None,
    time_zone: str = "Asia/Shanghai",
    page_size: int = 50,
) -> folium.Map:
    """The planners' progress map: one campaign layer (``layer.progress``), fetched by the browser
    (``static/js/pages/progress.js``) beside the table of its rows, which it follows.

    ``view``: the table's sort, order, offset and the map's bbox a shared link asked for. ``editable`` (decided
    by the server from the caller's roles, never by the script) gives rows and popups an edit button; ``csrf``
    is sent with the changes.
    """
    m, (minx, miny, maxx, maxy) = _page_map(basemap_, extent, text)
    group = folium.FeatureGroup(name=html.escape(layer.title(lang)), show=True, control=False)
    group.add_to(m)
    yes_no = (text["yes"], text["no"])
    config = {
        "lang": lang,
        "api": urls["api"],
        "featurePage": urls["features"],
        "limit": MAX_LIMIT,
        "pageSize": page_size,
        "gcj02": basemap_.gcj02,
        "bounds": [minx, miny, maxx, maxy],
        "focus": None,
        "context": _context(registry, context, lang),
        "layer": {
            **layer_config(layer, lang, internal, yes_no),
            "editable": editable,
            "progress": progress_config(layer, internal),
        },
        "view": dict(view),
        "csrf": csrf if editable else None,
        "timeZone": time_zone,
        "text": dict(text),
    }
    _GeoappScript("progress", {layer.id: group}, config).add_to(m)
    return m


class _HeatScript(JSCSSMixin, MacroElement):
    """Leaflet.heat's script, served by the app (the cases page's heat map)."""

    default_js = [("heat_js", f"{VENDOR}/leaflet.heat/dist/leaflet-heat.js")]
    _template = Template("")

    def __init__(self):
        super().__init__()
        self._name = "HeatScript"


def cases_map(
    registry: Registry,
    context: Mapping[str, dict],
    *,
    lang: str,
    basemap_: Basemap,
    text: Mapping[str, str],
    extent: list[float] | None,
    config: Mapping,
) -> folium.Map:
    """The cases page's map (``static/js/pages/cases.js``): the grid cells coloured by an indicator, which is how
    the cases show at low zoom (never 14,000 markers), and a heat map of where they were reported."""
    return _module_map("cases", registry, context, lang, basemap_, text, extent, config, heat=True)


def report_map(
    registry: Registry,
    context: Mapping[str, dict],
    *,
    lang: str,
    basemap_: Basemap,
    text: Mapping[str, str],
    extent: list[float] | None,
    config: Mapping,
) -> folium.Map:
    """The public report form's map (``static/js/pages/report.js``): a tap places the pin, "my location" too; the
    accepted reports are drawn as the moderators worded them."""
    return _module_map("report", registry, context, lang, basemap_, text, extent, config, locate=True)


def _locate(m: folium.Map, text: Mapping[str, str]) -> None:
    """The "my location" button (the browser's geolocation)."""
    folium.plugins.LocateControl(
        position="topleft",
        strings={"title": text["locate"], "popup": text["locatePopup"]},
        # the icon is drawn by static/onemap.css (an SVG of the app's own), not by an icon font
        icon="geoapp-icon geoapp-icon-locate",
        iconLoading="geoapp-icon geoapp-icon-locate geoapp-icon-busy",
        flyTo=True,
    ).add_to(m)


def _module_map(page, registry, context, lang, basemap_, text, extent, config, *, heat=False, locate=False):
    """A page's map whose module draws everything from ``config`` (no layer groups of folium's)."""
    m, (minx, miny, maxx, maxy) = _page_map(basemap_, extent, text)
    if heat:
        _HeatScript().add_to(m)
    if locate:
        _locate(m, text)
    full = {
        **config,
        "lang": lang,
        "gcj02": basemap_.gcj02,
        "bounds": [minx, miny, maxx, maxy],
        "context": _context(registry, context, lang),
        "text": dict(text),
    }
    _GeoappScript(page, {}, full).add_to(m)
    return m


@dataclass(frozen=True)
class RenderedMap:
    header: Markup
    html: Markup
    script: Markup

    def with_nonce(self, nonce: str) -> RenderedMap:
        """The same map with another request's nonce on its scripts (made by :class:`RenderedMaps`)."""
        header = str(self.header).replace(f'nonce="{_PLACEHOLDER}"', f'nonce="{_escape(nonce)}"')
        return RenderedMap(Markup(header), self.html, self.script)


#: the nonce a kept map is rendered with, replaced by each request's own
_PLACEHOLDER = "geoapp-kept-map"


class RenderedMaps:
    """Rendered maps kept by key (a page the same for every visitor until a layer changes), the newest few."""

    def __init__(self, size: int = 8):
        self.size = size
        self._maps: dict[object, RenderedMap] = {}
        self._lock = threading.Lock()

    def get(self, key: object, build) -> RenderedMap:
        """The map kept under ``key``, or ``build(nonce)`` kept now; its scripts carry a placeholder nonce."""
        found = self._maps.get(key)
        if found is None:
            found = build(_PLACEHOLDER)
            with self._lock:
                self._maps[key] = found
                while len(self._maps) > self.size:
                    self._maps.pop(next(iter(self._maps)))
        return found


def render(m: folium.Map, nonce: str) -> RenderedMap:
    """The map's head, body and script, with the CSP nonce on every script element."""
    root: Figure = m.get_root()
    root.render()
    attribute = f'<script nonce="{_escape(nonce)}"'
    header = root.header.render().replace("<script", attribute)
    return RenderedMap(Markup(header), Markup(root.html.render()), Markup(root.script.render()))
