"""Geocoding the postal addresses of 12345-hotline tickets on the district's road network. Flask-free.

An address is read as a house number on a named road ("XX区湛南路128号"), the crossing of two roads
("开源路与建设路交叉口", "开源路建设路口") or a road alone. House numbers are interpolated along the features
of a road by their ``numbers_from`` and ``numbers_to`` (layers/roads.yaml: they run from a feature's first
vertex to its last, odd numbers on the left, even on the right), in metres in the district's metric CRS.
Every answer carries a confidence from 0 to 1 and, when nothing or only something rough was found, a
short machine reason; nothing is dropped.
"""

from __future__ import annotations

import difflib
import math
import re
import threading
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import orjson
import shapely
from pyproj import CRS, Transformer
from shapely.geometry import LineString, MultiLineString, Point, shape
from shapely.geometry.base import BaseGeometry

from geoapp.store.base import FeatureReader, Query

__all__ = ["METHODS", "Geocoded", "Geocoder", "normalise"]

Method = Literal["house_number", "house_number_outside_range", "intersection", "road", "none"]
METHODS: tuple[Method, ...] = ("house_number", "house_number_outside_range", "intersection", "road", "none")
STORAGE_CRS = "EPSG:4326"

#: metres between a house number's point and the centreline: about half a street and a pavement
SIDE_OFFSET_M = 12.0
#: two roads whose centrelines come this close without touching still meet (a T-junction drawn short)
NEAR_CROSSING_M = 30.0
#: crossing points of the same two roads closer than this are one crossroads
ONE_CROSSING_M = 50.0

# Confidence of each kind of answer when the road names match exactly; tolerant matches multiply it.
CONFIDENCE = {
    "house_number": 0.95,
    "intersection": 0.9,
    "near_intersection": 0.8,
    "house_number_outside_range": 0.6,
    "road": 0.35,  # the middle of a road kilometres long is where to start looking, not a location
}
#: how far a road name was matched: the whole text, a known name inside it, the name without its
#: suffix, or one character off
MATCH_FACTOR = {"exact": 1.0, "contained": 0.95, "core": 0.85, "near_miss": 0.75}
#: confidence taken off when the address only says near, beside, opposite, ...
QUALIFIED_PENALTY = 0.05

_SUFFIX = r"大道|路|街|巷"
_CONNECTOR = r"与|和|及|跟|同|、|/|&|\+"
_CROSS = r"交叉路口|交叉口|交汇处|交界处|交口|十字路口|十字口|路口|口"
_CROSSINGS = (
    # A路与B路交叉口, A路和B路, A路、B路口 ...
    re.compile(rf"^(?P<a>.+?(?:{_SUFFIX}))(?:{_CONNECTOR})(?P<b>.+?(?:{_SUFFIX}))(?:(?:{_CROSS}).*)?$"),
    # A路B路口
    re.compile(rf"^(?P<a>.+?(?:{_SUFFIX}))(?P<b>.+?(?:{_SUFFIX}))(?:{_CROSS}).*$"),
)
_CN_NUMERAL = "零〇一二两三四五六七八九十百千"
# the road is whatever comes before the first number followed by 号 (or ending the address); 128-3号 is 128
_HOUSE = re.compile(rf"^(?P<road>.+?)(?P<number>\d+|[{_CN_NUMERAL}]+)(?:[-之]\d+)?(?:号(?:院|楼)?|$)")
_ROAD_HEAD = re.compile(rf"^.+?(?:{_SUFFIX})")
_NAME_SUFFIX = re.compile(rf"(?:{_SUFFIX})$")
# a leading run of administrative names: 河南省 平顶山市 XX区 ...; no road suffix or digit inside one
_ADMIN_UNIT = re.compile(r"[^省市区县路街巷号与和\d]{1,12}?(?:省|市|区|县)")
#: places named ...区 that are no district: an estate, a community, a campus, a scenic area, ...
_NOT_ADMIN = ("小区", "社区", "园区", "景区", "校区", "厂区", "院区", "街区", "片区", "矿区", "营区")
_QUALIFIERS = re.compile(r"附近|周边|一带|旁边|旁|对面|门口|门前|[东西南北]侧")
_REMARKS = re.compile(r"[(\[【][^)\]】]*[)\]】]")
_NOISE = re.compile(r"[\s,.;:!?'\"，。；：！？“”‘’]+")
_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_UNITS = {"十": 10, "百": 100, "千": 1000}


@dataclass(frozen=True)
class Geocoded:
    """Where an address was placed (WGS84 lon/lat, None when not found), how surely and how.

    ``method`` is one of :data:`METHODS`; ``reason`` is a short machine code: for ``none`` why nothing
    was found (``empty``, ``no_road``, ``ambiguous``, ``not_in_district``, ``no_crossing``), for a rough
    answer what it lacks (``outside_range``, ``no_number``, ``no_crossing``, ``unknown_crossing_road``);
    None for a house number within its road's range and for a crossing.
    """

    lon: float | None
    lat: float | None
    confidence: float
    method: Method
    road: str | None = None
    number: int | None = None
    reason: str | None = None

    @property
    def found(self) -> bool:
        return self.method != "none"


class _Ambiguous(Exception):
    """A road name matched several roads equally."""


@dataclass(frozen=True)
class _Segment:
    line: LineString  # metric
    first: float | None  # house number at the first vertex
    last: float | None  # house number at the last vertex

    @property
    def numbered(self) -> bool:
        return self.first is not None and self.last is not None


@dataclass(frozen=True)
class _Road:
    name: str
    core: str  # the name without its suffix (路, 街, 巷, 大道)
    segments: tuple[_Segment, ...]
    union: BaseGeometry

    def middle(self) -> Point:
        """The point halfway along the road, its segments taken in order."""
        half = sum(s.line.length for s in self.segments) / 2
        for s in self.segments:
            if half <= s.line.length:
                return s.line.interpolate(half)
            half -= s.line.length
        return self.segments[-1].line.interpolate(1.0, normalized=True)

    def number(self, n: int) -> tuple[Point, bool] | None:
        """Where number ``n`` stands and whether it is within a segment's range; None if no segment has a range."""
        numbered = [s for s in self.segments if s.numbered]
        if not numbered:
            return None
        for s in numbered:
            if min(s.first, s.last) <= n <= max(s.first, s.last):
                t = 0.5 if s.first == s.last else (n - s.first) / (s.last - s.first)
                return _beside(s.line, t * s.line.length, n), True
        # beyond every range (or in a gap between two): at the end whose number is nearest
        s, at_first = min(
            ((s, end is s.first) for s in numbered for end in (s.first, s.last)),
            key=lambda pair: abs((pair[0].first if pair[1] else pair[0].last) - n),
        )
        return _beside(s.line, 0.0 if at_first else s.line.length, n), False


@dataclass(frozen=True)
class _Match:
    road: _Road
    factor: float


class Geocoder:
    """Places hotline addresses on the district's roads.

    Parameters
    ----------
    roads : iterable of (name, geometry, numbers_from, numbers_to)
        One record per road feature: its name, a LineString or MultiLineString in WGS84 lon/lat
        (EPSG:4326) and its house-number range (None when it has none). Features of the same name are
        one road, numbered along each feature's own range; a multi-part feature shares its range among
        its parts by length.
    metric_crs : str
        The district's projected CRS in metres (for example ``"EPSG:4547"``): every length and offset is
        measured in it.
    districts : iterable of str, optional
        Names of the district (as "XX区"): an address whose leading district name is another one is
        ``not_in_district``. Empty: no such check.
    """

    def __init__(
        self,
        roads: Iterable[tuple[str, BaseGeometry, int | None, int | None]],
        metric_crs: str,
        *,
        districts: Iterable[str] = (),
    ):
        crs = CRS.from_user_input(metric_crs)
        if not crs.is_projected or any(axis.unit_name not in ("metre", "meter") for axis in crs.axis_info):
            raise ValueError(f"metric_crs must be a projected CRS in metres, not {metric_crs!r}")
        self.metric_crs = metric_crs
        self._local = threading.local()  # a pyproj transformer per thread (PITFALLS 11)
        to_metric = Transformer.from_crs(STORAGE_CRS, metric_crs, always_xy=True)
        grouped: dict[str, list[_Segment]] = {}
        for name, geometry, first, last in roads:
            key = _clean_name(name)
            if not key or geometry is None or geometry.is_empty:
                continue  # a road without a name cannot be addressed
            if not isinstance(geometry, LineString | MultiLineString):
                raise ValueError(f"road {name!r}: expected a LineString or MultiLineString, got {geometry.geom_type}")
            metric = shapely.transform(geometry, lambda xy: np.column_stack(to_metric.transform(xy[:, 0], xy[:, 1])))
            grouped.setdefault(key, []).extend(_segments(metric, first, last))
        self._roads = {
            name: _Road(name, _core(name), tuple(segs), shapely.union_all([s.line for s in segs]))
            for name, segs in grouped.items()
        }
        self._districts = frozenset(_district_name(d) for d in districts if _district_name(d))

    @classmethod
    def from_reader(
        cls, reader: FeatureReader, metric_crs: str, *, layer: str = "roads", page_size: int = 1000
    ) -> Geocoder:
        """Build a geocoder on the ``roads`` layer as ``reader`` holds it, and the district's name from its boundary."""
        records = [
            (p.get("name"), shape(geometry), p.get("numbers_from"), p.get("numbers_to"))
            for p, geometry in _features(reader, layer, page_size)
            if geometry is not None
        ]
        districts = [p.get("name") or "" for p, _ in _features(reader, "district_boundary", page_size)]
        return cls(records, metric_crs, districts=districts)

    @property
    def road_names(self) -> tuple[str, ...]:
        return tuple(self._roads)

    def geocode(self, address: str | None) -> Geocoded:
        """Place one address: a house number, a crossing or a road; ``none`` with a reason when it cannot be placed."""
        text, qualified = normalise(address or "")
        if not text:
            return _none("empty")
        district, text = _split_admin(text)
        if not text:
            return _none("no_road")
        if self._districts and district and district not in self._districts:
            return _none("not_in_district")
        penalty = QUALIFIED_PENALTY if qualified else 0.0
        try:
            crossing = self._crossing(text, penalty)
            if crossing is not None:
                return crossing
            house = _HOUSE.match(text)
            if house:
                match = self._resolve(house["road"], anchored=True)
                if match is not None:
                    return self._house(match, _number(house["number"]), penalty)
            match = self._resolve(text, anchored=False)
        except _Ambiguous:
            return _none("ambiguous")
        if match is None:
            return _none("no_road")
        return self._at(match.road.middle(), "road", CONFIDENCE["road"] * match.factor - penalty, match, "no_number")

    # -- the three readings of an address ------------------------------------------------------

    def _house(self, match: _Match, n: int | None, penalty: float) -> Geocoded:
        placed = match.road.number(n) if n else None
        if placed is None:
            confidence = CONFIDENCE["road"] * match.factor - penalty
            return self._at(match.road.middle(), "road", confidence, match, "no_number", number=n)
        point, within = placed
        method = "house_number" if within else "house_number_outside_range"
        return self._at(
            point, method, CONFIDENCE[method] * match.factor - penalty, match, None if within else "outside_range", n
        )

    def _crossing(self, text: str, penalty: float) -> Geocoded | None:
        """The crossing of the two roads an address names, if it reads as a crossing; None otherwise."""
        best: tuple[float, _Match | None, _Match | None] | None = None
        ambiguous = False
        for pattern in _CROSSINGS:
            parsed = pattern.match(text)
            if not parsed:
                continue
            try:
                a, b = self._resolve(parsed["a"], anchored=True), self._resolve(parsed["b"], anchored=True)
            except _Ambiguous:
                ambiguous = True
                continue
            score = (a.factor if a else 0.0) + (b.factor if b else 0.0)
            if best is None or score > best[0]:
                best = (score, a, b)
        if best is None or best[0] == 0.0:
            if ambiguous:
                raise _Ambiguous
            return None
        _, a, b = best
        if a is None or b is None:
            found = a or b
            confidence = CONFIDENCE["road"] * found.factor - penalty
            return self._at(found.road.middle(), "road", confidence, found, "unknown_crossing_road")
        both = f"{a.road.name}/{b.road.name}"
        point, near, reason = _meeting(a.road, b.road) if a.road is not b.road else (None, False, "no_crossing")
        if point is None:
            return _none(reason, road=both)
        confidence = CONFIDENCE["near_intersection" if near else "intersection"] * a.factor * b.factor - penalty
        return self._at(point, "intersection", confidence, None, None, road=both)

    # -- road names ------------------------------------------------------------------------------

    def _resolve(self, text: str, *, anchored: bool) -> _Match | None:
        """The road ``text`` names: exactly, as a known name inside it (at its end when ``anchored``), by the
        name without its suffix, or one character off; None if none; :class:`_Ambiguous` if several tie."""
        if text in self._roads:
            return _Match(self._roads[text], MATCH_FACTOR["exact"])
        inside = [n for n in self._roads if (text.endswith(n) if anchored else n in text)]
        if inside:
            longest = max(len(n) for n in inside)
            return _Match(self._roads[_one(n for n in inside if len(n) == longest)], MATCH_FACTOR["contained"])
        head = _ROAD_HEAD.match(text)
        candidate = text if anchored or head is None else head.group(0)
        core = _core(candidate)
        same_core = [r for r in self._roads.values() if r.core == core]
        if same_core:
            return _Match(self._roads[_one(r.name for r in same_core)], MATCH_FACTOR["core"])
        if len(core) < 2:
            return None
        near = [r.name for r in self._roads.values() if len(r.core) >= 2 and _edits(core, r.core) == 1]
        return _Match(self._roads[_one(near)], MATCH_FACTOR["near_miss"]) if near else None

    def _at(
        self,
        point: Point,
        method: Method,
        confidence: float,
        match: _Match | None,
        reason: str | None,
        number: int | None = None,
        *,
        road: str | None = None,
    ) -> Geocoded:
        transformer = getattr(self._local, "to_lonlat", None)
        if transformer is None:
            transformer = self._local.to_lonlat = Transformer.from_crs(self.metric_crs, STORAGE_CRS, always_xy=True)
        lon, lat = transformer.transform(point.x, point.y)
        return Geocoded(
            lon=round(lon, 7),
            lat=round(lat, 7),
            confidence=round(min(max(confidence, 0.0), 1.0), 3),
            method=method,
            road=road or (match.road.name if match else None),
            number=number,
            reason=reason,
        )


# -- addresses ---------------------------------------------------------------------------------


def normalise(address: str) -> tuple[str, bool]:
    """Return an address with full-width characters folded (NFKC), remarks in brackets, spaces, punctuation and
    qualifiers (附近, 旁, 对面, 门口, 东侧, ...) removed, and whether it had a qualifier."""
    text = unicodedata.normalize("NFKC", address)
    text = _REMARKS.sub("", text)
    text = _NOISE.sub("", text)
    stripped = _QUALIFIERS.sub("", text)
    return stripped, stripped != text


def _split_admin(text: str) -> tuple[str | None, str]:
    """Split off a leading run of administrative names (省, 市, 区, 县); return the last 区 or 县 and the rest."""
    at, district = 0, None
    while (unit := _ADMIN_UNIT.match(text, at)) and not unit.group(0).endswith(_NOT_ADMIN):
        if unit.group(0).endswith(("区", "县")):
            district = unit.group(0)
        at = unit.end()
    if at == len(text):  # nothing but names of places: no road follows, keep the text as it was
        return None, text
    return district, text[at:]


def _district_name(name: str) -> str:
    """The district's name as addresses write it: "XX区（演示数据）" is "XX区"."""
    return _NOISE.sub("", _REMARKS.sub("", unicodedata.normalize("NFKC", name or "")))


def _clean_name(name: object) -> str:
    return _NOISE.sub("", unicodedata.normalize("NFKC", name)) if isinstance(name, str) else ""


def _core(name: str) -> str:
    return _NAME_SUFFIX.sub("", name) or name


def _number(text: str) -> int | None:
    """A house number in Arabic digits or small Chinese numerals (一百二十八, 一二八, 十五); None if unreadable."""
    if text.isdigit():
        return int(text)
    if not any(ch in _UNITS for ch in text):
        return int("".join(str(_DIGITS[ch]) for ch in text)) if all(ch in _DIGITS for ch in text) else None
    total, digit = 0, None
    for ch in text:
        if ch in _DIGITS:
            digit = _DIGITS[ch]
        elif ch in _UNITS:
            total += (1 if digit is None else digit) * _UNITS[ch]
            digit = None
    return total + (digit or 0)


def _edits(a: str, b: str) -> int:
    """How many characters differ between two short names (insertions, deletions, substitutions)."""
    opcodes = difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes()
    return sum(max(i2 - i1, j2 - j1) for tag, i1, i2, j1, j2 in opcodes if tag != "equal")


def _one(names: Iterable[str]) -> str:
    distinct = set(names)
    if len(distinct) > 1:
        raise _Ambiguous
    return distinct.pop()


def _none(reason: str, road: str | None = None) -> Geocoded:
    return Geocoded(lon=None, lat=None, confidence=0.0, method="none", road=road, reason=reason)


# -- geometry (metres) -------------------------------------------------------------------------


def _segments(geometry: BaseGeometry, first: float | None, last: float | None) -> list[_Segment]:
    """A feature's segments: a multi-part line shares the feature's range among its parts by length."""
    first, last = _house_number(first), _house_number(last)
    parts = [g for g in shapely.get_parts(geometry) if g.length > 0]
    if first is None or last is None:
        return [_Segment(g, None, None) for g in parts]
    total = sum(g.length for g in parts)
    out, done = [], 0.0
    for g in parts:
        start = first + (last - first) * done / total
        done += g.length
        out.append(_Segment(g, start, first + (last - first) * done / total))
    return out


def _house_number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 1:
        return None
    return float(value)


def _beside(line: LineString, along: float, number: int) -> Point:
    """The point ``along`` metres down ``line``, moved off the centreline: odd numbers left, even right."""
    ahead = line.interpolate(min(along + 1.0, line.length))
    behind = line.interpolate(max(along - 1.0, 0.0))
    dx, dy = ahead.x - behind.x, ahead.y - behind.y
    norm = math.hypot(dx, dy) or 1.0
    side = 1.0 if number % 2 else -1.0  # left of the direction of travel is (-dy, dx)
    at = line.interpolate(along)
    return Point(at.x - side * SIDE_OFFSET_M * dy / norm, at.y + side * SIDE_OFFSET_M * dx / norm)


def _meeting(a: _Road, b: _Road) -> tuple[Point | None, bool, str | None]:
    """Where two roads cross and whether they only come near; no point and the reason when they do not meet
    (``no_crossing``) or cross at places far apart (``ambiguous``)."""
    crossing = a.union.intersection(b.union)
    points = [
        g if g.geom_type == "Point" else g.interpolate(0.5, normalized=True)
        for g in shapely.get_parts(crossing)
        if not g.is_empty
    ]
    if not points:
        if a.union.distance(b.union) > NEAR_CROSSING_M:
            return None, False, "no_crossing"
        return shapely.shortest_line(a.union, b.union).interpolate(0.5, normalized=True), True, None
    xy = np.array([(p.x, p.y) for p in points])
    if np.hypot(*(xy.max(axis=0) - xy.min(axis=0))) > ONE_CROSSING_M:
        return None, False, "ambiguous"  # they cross at several places: which one is meant is unknown
    return Point(xy.mean(axis=0)), False, None


def _features(reader: FeatureReader, layer: str, page_size: int) -> Iterable[tuple[dict, dict | None]]:
    """Every feature of a layer as (properties, GeoJSON geometry), page by page."""
    offset = 0
    while True:
        page = reader.select(layer, Query(), offset, page_size, "internal")
        for text in page.features:
            feature = orjson.loads(text)
            yield feature.get("properties") or {}, feature.get("geometry")
        if not page.more or not page.features:
            return
        offset += len(page.features)
