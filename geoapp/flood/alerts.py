"""The public warning feeds as documents: one CAP 1.2 alert per warning, and an Atom feed indexing them. Flask-free.

How they are served together (``geoapp/web/feeds.py``):

- ``/flood/warnings/<key>.cap``: one warning's CAP 1.2 alert (``application/cap+xml``). CAP lets an alert hold
  several ``<info>`` blocks, but only about one event (one block per language or audience), so every warning
  is an alert of its own: a closure, a flooded point and the rainstorm signal are three alerts. Each alert has
  an ``<info>`` in ``zh-CN`` and one in ``en-US``.
- ``/flood/warnings.atom``: an Atom 1.0 feed (RFC 4287) with one entry per warning in force, each linking
  (``rel="alternate"``, ``type="application/cap+xml"``) to its alert: how alert hubs (Google Public Alerts, the
  national aggregators) subscribe to a CAP source. Entries carry the alert's main CAP fields (``cap:`` elements)
  and a GeoRSS point or polygon. With nothing in force the feed is valid and empty: the all-clear.

Identity: an entry's ``id`` is a tag URI on the warning's ``key`` (the same while the warning lasts); the CAP
``identifier`` adds the warning's ``since`` time, so that a consumer keeping identifiers sees each confirmation
of a warning (a newer reading, a later rain total) as a new alert and no identifier is reused for another
message (CAP requires identifiers unique for the sender).

Every value is put into the documents by lxml as text or as an attribute value: escaped by construction, never
concatenated into markup; characters XML cannot carry are dropped. Only the public values of
:class:`geoapp.flood.service.Warning` are used (no contacts, no staff names, no closure reasons).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import orjson
import shapely
from lxml import etree

from geoapp.core.layers import Label, Registry
from geoapp.errors import ConfigError
from geoapp.flood.rules import Rules
from geoapp.flood.service import Warning
from geoapp.store.base import FeatureReader, Query

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
ATOM_NS = "http://www.w3.org/2005/Atom"
GEORSS_NS = "http://www.georss.org/georss"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
CAP_TYPE = "application/cap+xml"
ATOM_TYPE = "application/atom+xml"
#: the official CAP 1.2 schema (see schemas/README.md); the tests validate every served alert against it
CAP_XSD = Path(__file__).parent / "schemas" / "CAP-v1.2.xsd"

#: the district's time: CAP times are written with this offset (``2026-07-20T08:30:00+08:00``)
CHINA = dt.timezone(dt.timedelta(hours=8), "CST")
#: the layer whose polygon is the area of a district-wide warning (the rainstorm signal)
DISTRICT_LAYER = "district_boundary"
#: a CAP polygon is at most this many points (the district's outline is simplified until it fits)
MAX_POLYGON_POINTS = 100
#: the radius of the circle around a point warning, in km
POINT_RADIUS_KM = 0.2
#: the date in the feed's tag URIs (RFC 4151: a day on which the sender's name was held)
TAG_DATE = "2026"
#: a sender is a DNS name, or an address at one (CAP: no spaces, commas, < or &; the tag URIs need this form)
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
SENDER = re.compile(rf"(?:[A-Za-z0-9._-]+@)?{_LABEL}(?:\.{_LABEL})+")
#: characters XML 1.0 cannot carry (a name typed with a control character must not break the feed)
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
LANGUAGES = (("zh", "zh-CN"), ("en", "en-US"))

# -- what each warning is, in CAP's terms ---------------------------------------------------------------------
# Kept here, not in layers/flood/rules.yaml: they are CAP's vocabulary for the app's warnings, not flood rules.
# A warning's ``level`` is the level reached (kind "level"), the closure action (kind "closure") or the signal id
# (kind "signal").
#
#   warning               category      responseType  urgency    severity  certainty
#   level warning         Safety        Monitor       Expected   Moderate  Observed
#   level danger          Safety        Avoid         Immediate  Severe    Observed
#   closure close/seal    Safety, Infra Avoid         Immediate  Severe    Observed
#   signal red            Met           Shelter       Immediate  Extreme   Observed
#   signal orange         Met           Avoid         Immediate  Severe    Observed
#   signal yellow         Met           Monitor       Expected   Moderate  Observed
#   signal blue           Met           Monitor       Expected   Minor     Observed

CATEGORY = {"level": ("Safety",), "closure": ("Safety", "Infra"), "signal": ("Met",)}
SEVERITY = {
    ("level", "warning"): "Moderate",
    ("level", "danger"): "Severe",
    ("signal", "red"): "Extreme",
    ("signal", "orange"): "Severe",
    ("signal", "yellow"): "Moderate",
    ("signal", "blue"): "Minor",
}
RESPONSE = {
    ("level", "warning"): "Monitor",
    ("level", "danger"): "Avoid",
    ("signal", "red"): "Shelter",
    ("signal", "orange"): "Avoid",
    ("signal", "yellow"): "Monitor",
    ("signal", "blue"): "Monitor",
}
URGENCY = {
    ("level", "warning"): "Expected",
    ("level", "danger"): "Immediate",
    ("signal", "red"): "Immediate",
    ("signal", "orange"): "Immediate",
    ("signal", "yellow"): "Expected",
    ("signal", "blue"): "Expected",
}
#: a closure (any action) is as severe as the danger that calls for it
CLOSURE = {"severity": "Severe", "response": "Avoid", "urgency": "Immediate"}
ACTIONS = {
    "close": Label(zh="封闭", en="closed"),
    "seal": Label(zh="封堵", en="sealed"),
}
INSTRUCTIONS = {
    "danger": Label(
        zh="请勿涉水或驾车通过，绕道通行。", en="Do not walk or drive through the water; take another way."
    ),
    "warning": Label(
        zh="注意积水，谨慎通行，关注最新预警。", en="Mind the water, pass with care and watch for updates."
    ),
    "close": Label(zh="已封闭，禁止通行，请绕道。", en="Closed to traffic: take another way."),
    "seal": Label(zh="出入口已封堵，请勿进入。", en="Its entrances are sealed: do not enter."),
    "red": Label(
        zh="停止户外活动，留在安全场所；远离低洼地带、下穿通道和地下空间。",
        en="Stop outdoor activities and stay in a safe place; keep away from low ground, underpasses and basements.",
    ),
    "orange": Label(
        zh="避免外出，远离低洼地带、下穿通道和地下空间。",
        en="Avoid going out; keep away from low ground, underpasses and basements.",
    ),
    "yellow": Label(zh="注意防范暴雨，关注最新预警。", en="Take care in the heavy rain and watch for updates."),
    "blue": Label(zh="注意防范降雨，关注最新预警。", en="Take care in the rain and watch for updates."),
}
EXERCISE_NOTE = (
    "演示数据（合成）：本警报为演练，不是真实预警。 Synthetic demo data: this alert is an exercise, not a real warning."
)


@dataclass(frozen=True)
class Links:
    """The absolute addresses the documents point at; the web layer makes them (this module knows no Flask)."""

    feed: str  # the Atom feed itself
    home: str  # the one map
    alert: Callable[[str], str]  # warning key -> its CAP alert
    feature: Callable[[str, int], str]  # layer, feature id -> its archive page


@dataclass(frozen=True)
class District:
    """The district's name and outline: each ring (lon, lat) closed, at most :data:`MAX_POLYGON_POINTS` points."""

    name: str
    rings: tuple[tuple[tuple[float, float], ...], ...]


@dataclass(frozen=True)
class Context:
    """What the documents need besides the warnings."""

    sender: str
    synthetic: bool
    rules: Rules
    registry: Registry
    district: District | None
    links: Links

    @property
    def status(self) -> str:
        """CAP status: the synthetic demo district's warnings are an ``Exercise``, a real district's ``Actual``."""
        return "Exercise" if self.synthetic else "Actual"


def check_sender(sender: str) -> str:
    """The CAP sender (``GEOAPP_CAP_SENDER``), or a :class:`ConfigError`: a DNS name or an address at one."""
    if not isinstance(sender, str) or not SENDER.fullmatch(sender):
        raise ConfigError(
            f"GEOAPP_CAP_SENDER must be a DNS name or an address like geoapp@district.example, not {sender!r}",
            parameter="GEOAPP_CAP_SENDER",
        )
    return sender


def district(reader: FeatureReader) -> District | None:
    """The district from its boundary layer (the union of its features), simplified to fit a CAP polygon."""
    page = reader.select(DISTRICT_LAYER, Query(), 0, 100, "public")
    shapes, names = [], []
    for text in page.features:
        feature = orjson.loads(text)
        if feature.get("geometry"):
            shapes.append(shapely.from_geojson(orjson.dumps(feature["geometry"])))
        if feature["properties"].get("name"):
            names.append(str(feature["properties"]["name"]))
    if not shapes:
        return None
    whole = shapely.union_all(shapes)
    polygons = [g for g in getattr(whole, "geoms", [whole]) if g.geom_type == "Polygon" and not g.is_empty]
    rings = tuple(_ring(p) for p in sorted(polygons, key=lambda p: -p.area))
    return District("、".join(dict.fromkeys(names)) or DISTRICT_LAYER, rings)


def _ring(polygon) -> tuple[tuple[float, float], ...]:
    """The outline of a polygon (holes dropped: CAP cannot say them) in at most MAX_POLYGON_POINTS points."""
    outline = shapely.Polygon(polygon.exterior)
    tolerance = 0.0
    bounds = polygon.bounds
    step = max(bounds[2] - bounds[0], bounds[3] - bounds[1]) / 2000 or 1e-6
    while len(outline.exterior.coords) > MAX_POLYGON_POINTS:
        tolerance = tolerance * 2 if tolerance else step
        outline = shapely.Polygon(polygon.exterior).simplify(tolerance, preserve_topology=True)
    return tuple((round(x, 6), round(y, 6)) for x, y, *_ in outline.exterior.coords)


# -- times ----------------------------------------------------------------------------------------------------


def cap_time(ms: int) -> str:
    """A time as CAP writes it: whole seconds with the district's offset (``2026-07-20T08:30:00+08:00``)."""
    return dt.datetime.fromtimestamp(ms // 1000, CHINA).isoformat(timespec="seconds")


def _shown_time(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms // 1000, CHINA).strftime("%Y-%m-%d %H:%M")


def identifier(warning: Warning, sender: str) -> str:
    """The CAP identifier of a warning as confirmed at ``since``: ``<sender>.<key>.<since, to the ms>``."""
    at = dt.datetime.fromtimestamp(warning.since_ms // 1000, CHINA)
    return f"{sender}.{warning.key}.{at:%Y%m%dT%H%M%S}{warning.since_ms % 1000:03d}"


def tag(sender: str, specific: str) -> str:
    """A tag URI (RFC 4151) on the sender's name: the feed's and each entry's stable ``id``."""
    return f"tag:{sender.lower()},{TAG_DATE}:{specific}"


def fingerprint(warnings: Sequence[Warning], ctx: Context) -> bytes:
    """What the documents depend on, to make an ETag from (the empty feed's ``updated`` aside)."""
    parts = [ctx.sender, ctx.synthetic, ctx.links.feed, ctx.district.rings if ctx.district else None]
    return orjson.dumps([parts, [dataclasses.asdict(w) for w in warnings]], option=orjson.OPT_NON_STR_KEYS)


# -- the words of each warning --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Words:
    event: str
    headline: str
    description: str
    instruction: str
    area: str


def _num(value: float | None) -> str:
    return "?" if value is None else f"{value:g}"


def _words(w: Warning, ctx: Context, lang: str) -> _Words:
    zh = lang == "zh"
    when = _shown_time(w.since_ms)
    name = w.name or (f"#{w.fid}" if w.fid is not None else "")
    layer = ctx.registry[w.layer].title(lang) if w.layer in ctx.registry else (w.layer or "")
    area = f"{name}（{layer}）" if zh else f"{name} ({layer})"
    if w.kind == "signal":
        signal = ctx.rules.signal(w.level)
        label = signal.label(lang)
        fallen = (w.totals or {}).get(signal.hours)
        sums = sorted((w.totals or {}).items())
        district = ctx.district.name if ctx.district else area
        if zh:
            totals = "，".join(f"{h} 小时 {_num(mm)} 毫米" for h, mm in sums)
            return _Words(
                label,
                f"{label}：雨量站「{w.gauge}」{signal.hours} 小时降雨 {_num(fallen)} 毫米",
                f"截至 {when}，雨量站「{w.gauge}」{signal.hours} 小时累计降雨 {_num(fallen)} 毫米，"
                f"达到{label}标准（{signal.hours} 小时 {_num(signal.mm)} 毫米）。各时段雨量：{totals}。"
                "本信号按本区雨量站实测计算，以气象部门发布为准。",
                INSTRUCTIONS[w.level].zh,
                district,
            )
        totals = ", ".join(f"{_num(mm)} mm in {h} h" for h, mm in sums)
        return _Words(
            label,
            f"{label}: {_num(fallen)} mm of rain in {signal.hours} h at gauge {w.gauge}",
            f"By {when} (UTC+8) the rain gauge {w.gauge} had measured {_num(fallen)} mm in {signal.hours} h, "
            f"at or above the {label.lower()} criterion ({_num(signal.mm)} mm in {signal.hours} h). "
            f"Rain totals: {totals}. Computed from the district's rain gauges; the meteorological service's "
            "signal is authoritative.",
            INSTRUCTIONS[w.level].en,
            district,
        )
    if w.kind == "closure":
        action = ACTIONS.get(w.level, Label(zh=w.level, en=w.level))
        if zh:
            depth = "" if w.depth_cm is None else f"最近水深 {_num(w.depth_cm)} 厘米。"
            return _Words(
                f"{layer}{action.zh}",
                f"{layer}「{name}」已{action.zh}",
                f"{when} 起，{layer}「{name}」已{action.zh}。{depth}",
                INSTRUCTIONS.get(w.level, INSTRUCTIONS["close"]).zh,
                area,
            )
        depth = "" if w.depth_cm is None else f" The latest depth measured there is {_num(w.depth_cm)} cm."
        return _Words(
            f"{layer}: {action.en}",
            f"{action.en.capitalize()}: {name} ({layer})",
            f"{name} ({layer}) has been {action.en} since {when} (UTC+8).{depth}",
            INSTRUCTIONS.get(w.level, INSTRUCTIONS["close"]).en,
            area,
        )
    level = ctx.rules.level(w.level).label(lang)
    recommend = ACTIONS.get(w.recommend or "")
    if zh:
        advice = f"建议{recommend.zh}。" if recommend else ""
        return _Words(
            f"积水{level}",
            f"{layer}「{name}」积水{level}：水深 {_num(w.depth_cm)} 厘米",
            f"{when} 观测到{layer}「{name}」水深 {_num(w.depth_cm)} 厘米，"
            f"已达{level}水位（{_num(w.threshold_cm)} 厘米）。{advice}",
            INSTRUCTIONS[w.level].zh,
            area,
        )
    advice = f" It should be {recommend.en}." if recommend else ""
    return _Words(
        f"Flooding {level.lower()}",
        f"{level}: {_num(w.depth_cm)} cm of water at {name} ({layer})",
        f"At {when} (UTC+8) {_num(w.depth_cm)} cm of water was measured at {name} ({layer}), at or above "
        f"its {level.lower()} level of {_num(w.threshold_cm)} cm.{advice}",
        INSTRUCTIONS[w.level].en,
        area,
    )


def _terms(w: Warning) -> dict[str, str]:
    if w.kind == "closure":
        return CLOSURE
    key = (w.kind, w.level)
    return {"severity": SEVERITY[key], "response": RESPONSE[key], "urgency": URGENCY[key]}


def _sender_name(ctx: Context, lang: str) -> str:
    name = ctx.district.name if ctx.district else ""
    return f"{name}城市管理局（城管一张图）" if lang == "zh" else f"{name} City Management Bureau (one map)".strip()


# -- building XML ---------------------------------------------------------------------------------------------


def _text(value: object) -> str:
    return _NOT_XML.sub("", str(value))


def _add(parent, tag_: str, text: object = None, **attrib: str):
    child = etree.SubElement(parent, tag_, {k: _text(v) for k, v in attrib.items()})
    if text is not None:
        child.text = _text(text)
    return child


def _circle(lon: float, lat: float, radius_km: float = POINT_RADIUS_KM) -> str:
    return f"{lat:.6f},{lon:.6f} {radius_km:g}"


def _polygon(ring: Iterable[tuple[float, float]]) -> str:
    return " ".join(f"{lat:.6f},{lon:.6f}" for lon, lat in ring)


def cap_alert(w: Warning, ctx: Context) -> bytes:
    """One warning's CAP 1.2 alert: UTF-8 XML with its declaration."""
    c = f"{{{CAP_NS}}}"
    alert = etree.Element(c + "alert", nsmap={None: CAP_NS})
    _add(alert, c + "identifier", identifier(w, ctx.sender))
    _add(alert, c + "sender", ctx.sender)
    _add(alert, c + "sent", cap_time(w.since_ms))
    _add(alert, c + "status", ctx.status)
    _add(alert, c + "msgType", "Alert")
    _add(alert, c + "scope", "Public")
    if ctx.synthetic:
        _add(alert, c + "note", EXERCISE_NOTE)
    terms = _terms(w)
    web = ctx.links.feature(w.layer, w.fid) if w.layer and w.fid is not None else ctx.links.home
    expires = None
    if w.kind == "level":  # a depth unconfirmed for the rules' age turns stale: the warning ends then
        expires = w.since_ms + int(ctx.rules.stale_after_minutes * 60_000)
    for lang, language in LANGUAGES:
        words = _words(w, ctx, lang)
        info = _add(alert, c + "info")
        _add(info, c + "language", language)
        for category in CATEGORY[w.kind]:
            _add(info, c + "category", category)
        _add(info, c + "event", words.event)
        _add(info, c + "responseType", terms["response"])
        _add(info, c + "urgency", terms["urgency"])
        _add(info, c + "severity", terms["severity"])
        _add(info, c + "certainty", "Observed")
        if expires is not None:
            _add(info, c + "expires", cap_time(expires))
        _add(info, c + "senderName", _sender_name(ctx, lang))
        _add(info, c + "headline", words.headline)
        _add(info, c + "description", words.description)
        _add(info, c + "instruction", words.instruction)
        _add(info, c + "web", web)
        area = _add(info, c + "area")
        _add(area, c + "areaDesc", words.area)
        if w.kind == "signal" and ctx.district and ctx.district.rings:
            for ring in ctx.district.rings:
                _add(area, c + "polygon", _polygon(ring))
        elif w.lon is not None and w.lat is not None:
            _add(area, c + "circle", _circle(w.lon, w.lat))
    return etree.tostring(alert, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def atom_feed(warnings: Sequence[Warning], ctx: Context, now_ms: int) -> bytes:
    """The Atom feed of the warnings in force, one entry per warning linking to its CAP alert; empty: all clear."""
    a, c, g = f"{{{ATOM_NS}}}", f"{{{CAP_NS}}}", f"{{{GEORSS_NS}}}"
    feed = etree.Element(a + "feed", nsmap={None: ATOM_NS, "cap": CAP_NS, "georss": GEORSS_NS})
    feed.set(XML_LANG, "zh-CN")
    district = ctx.district.name if ctx.district else ""
    _add(feed, a + "id", tag(ctx.sender, "flood/warnings"))
    _add(feed, a + "title", f"{district}防汛预警 · Flood warnings")
    subtitle = "积水、封闭与暴雨预警（CAP 1.2）· Flooding, closures and rainstorm warnings (CAP 1.2)"
    _add(feed, a + "subtitle", f"{subtitle}. {EXERCISE_NOTE}" if ctx.synthetic else subtitle)
    _add(feed, a + "updated", cap_time(max((w.since_ms for w in warnings), default=now_ms)))
    author = _add(feed, a + "author")
    _add(author, a + "name", _sender_name(ctx, "zh"))
    _add(feed, a + "link", rel="self", type=ATOM_TYPE, href=ctx.links.feed)
    _add(feed, a + "link", rel="alternate", type="text/html", href=ctx.links.home)
    _add(feed, a + "generator", "geoapp")
    for w in warnings:
        zh, en = _words(w, ctx, "zh"), _words(w, ctx, "en")
        terms = _terms(w)
        entry = _add(feed, a + "entry")
        _add(entry, a + "id", tag(ctx.sender, f"flood/warnings/{w.key}"))
        _add(entry, a + "title", zh.headline)
        _add(entry, a + "updated", cap_time(w.since_ms))
        summary = _add(entry, a + "summary", f"{zh.description}\n\n{en.headline}. {en.description}", type="text")
        summary.set(XML_LANG, "zh-CN")
        _add(entry, a + "category", term=w.kind)
        _add(entry, a + "link", rel="alternate", type=CAP_TYPE, href=ctx.links.alert(w.key))
        if w.layer and w.fid is not None:
            _add(entry, a + "link", rel="related", type="text/html", href=ctx.links.feature(w.layer, w.fid))
        if w.kind == "signal" and ctx.district and ctx.district.rings:
            ring = ctx.district.rings[0]
            _add(entry, g + "polygon", " ".join(f"{lat:.6f} {lon:.6f}" for lon, lat in ring))
        elif w.lon is not None and w.lat is not None:
            _add(entry, g + "point", f"{w.lat:.6f} {w.lon:.6f}")
        _add(entry, c + "identifier", identifier(w, ctx.sender))
        _add(entry, c + "sent", cap_time(w.since_ms))
        _add(entry, c + "status", ctx.status)
        _add(entry, c + "msgType", "Alert")
        _add(entry, c + "event", zh.event)
        _add(entry, c + "urgency", terms["urgency"])
        _add(entry, c + "severity", terms["severity"])
        _add(entry, c + "certainty", "Observed")
        _add(entry, c + "areaDesc", zh.area)
    return etree.tostring(feed, xml_declaration=True, encoding="UTF-8", pretty_print=True)


@cache
def cap_schema() -> etree.XMLSchema:
    """The vendored CAP 1.2 schema, loaded once (for tests and checks; serving does not need it)."""
    return etree.XMLSchema(etree.parse(str(CAP_XSD)))
