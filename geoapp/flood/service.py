"""The flood commander's use cases and queries: readings in, the situation out. Flask-free.

:class:`Flood` stores readings (sensors and commanders), keeps closures (commanders), and answers
the board: every monitored feature's level from its newest depth and its own thresholds, stale
when no reading came for the rules' age (never safe), the trend over the last hour, the closure
it has or is recommended, the nearest available pump; each gauge's rain totals and the signal
they amount to; a rain scenario; the nearest available resources of a kind; the warnings the
public feeds carry. Every change checks the caller's roles here and is one transaction with its
audit row in the store.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
import shapely

from geoapp.core import permissions
from geoapp.core.layers import Registry
from geoapp.errors import InvalidParameter, NotFound
from geoapp.flood import levels
from geoapp.flood.readings import iso, labels, parse_readings
from geoapp.flood.rules import Rules
from geoapp.store.base import Actor, Closure, FeatureReader, Query, Store, Visibility

#: who sees the board, its live data, scenarios and nearest resources (admin always may)
BOARD_ROLES = ("commander", "viewer")
#: who may post readings
READING_ROLES = ("sensor", "commander")
#: who may close and reopen
CLOSURE_ROLES = ("commander",)
#: the situation is computed again at least this often when nothing changed (a feature turns stale with time)
RECHECK_MS = 10_000
HOUR_MS = 3_600_000
#: the district's layer, and how far beyond its extent (degrees, about 50 km) a nearest-resource search may start
DISTRICT_LAYER = "district_boundary"
NEAR_DISTRICT_DEG = 0.5
_REASON = re.compile(r"[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]{1,500}")


@dataclass(frozen=True)
class Watched:
    """A monitored feature as the board shows it."""

    layer: str
    fid: int
    name: str
    lon: float
    lat: float
    status: str | None
    level: str
    depth_cm: float | None
    observed_ms: int | None
    trend_cm_h: float | None
    thresholds: dict[str, float]
    recommend: str | None
    closure: Closure | None
    nearest_pump: dict[str, Any] | None
    ponding_mmh: float

    @property
    def severity(self) -> int:
        return levels.severity(self.level)


@dataclass(frozen=True)
class Gauge:
    fid: int
    name: str
    lon: float
    lat: float
    totals: dict[int, float]
    signal: str | None
    latest_ms: int | None


@dataclass(frozen=True)
class Situation:
    """What the board shows at one moment (``at_ms``), for one visibility."""

    at_ms: int
    updated_ms: int | None
    features: list[Watched]
    gauges: list[Gauge]
    signal: str | None
    signal_gauge: int | None
    closures: list[Closure] = field(default_factory=list)


@dataclass(frozen=True)
class Warning:
    """One current warning as the public feeds carry it: public values only (no contacts, staff names or reasons).

    ``kind`` is ``level`` (a monitored feature at warning or danger), ``closure`` (an underpass closed, an
    underground space sealed) or ``signal`` (the district's rainstorm signal). ``key`` names the warning
    while it lasts (the same in every feed and poll); ``since_ms`` is when it was last confirmed: the
    newest reading, the closure's time or the newest rain reading.
    """

    key: str
    kind: str
    level: str  # warning | danger for a level; the closure action; the signal id
    since_ms: int
    layer: str | None = None
    fid: int | None = None
    name: str | None = None
    lon: float | None = None
    lat: float | None = None
    depth_cm: float | None = None
    threshold_cm: float | None = None
    recommend: str | None = None
    totals: dict[int, float] | None = None
    gauge: str | None = None


class Flood:
    """Readings, closures and the board's answers for one store (see the module's docstring)."""

    def __init__(
        self,
        store: Store,
        reader: FeatureReader,
        registry: Registry,
        rules: Rules,
        *,
        clock: Callable[[], float] = time.time,
    ):
        self.store = store
        self.reader = reader
        self.registry = registry
        self.rules = rules
        self.clock = clock
        #: per visibility: the situation kept, what it was computed from, and when its computing began
        self._kept: dict[str, tuple[tuple, float, Situation]] = {}
        self._computing = {"public": threading.Lock(), "internal": threading.Lock()}

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    # -- readings ---------------------------------------------------------------------------------

    def post_readings(self, actor: Actor, body: Mapping[str, Any]) -> tuple[int, int]:
        """Store the readings of a body (one, or a batch: all or none); return (stored, duplicates)."""
        permissions.require_role(actor, READING_ROLES)
        now = self.now_ms()
        readings = parse_readings(
            body,
            rules=self.rules,
            registry=self.registry,
            exists=lambda layer, fid: self.reader.get(layer, fid) is not None,
            actor=actor,
            now_ms=now,
        )
        return self.store.add_readings(readings, actor=actor, received_ms=now, labels=labels(body))

    def series(
        self, actor: Actor, layer_id: str, fid: int, kind: str | None, since_ms: int | None, until_ms: int | None
    ) -> dict[str, Any]:
        """A feature's readings over [since, until] (the last 24 hours by default), downsampled when long."""
        permissions.require_role(actor)
        taken = self.rules.kind_of(layer_id)
        if layer_id not in self.registry or taken is None:
            raise NotFound(f"layer {layer_id[:40]!r} takes no readings", parameter="layer")
        if kind is not None and kind != taken:
            raise InvalidParameter(f"kind: {layer_id} takes {taken} readings, not {kind[:40]!r}", parameter="kind")
        if self.reader.get(layer_id, fid) is None:
            raise NotFound(f"no feature {fid} in layer {layer_id}", parameter="feature_id")
        until = self.now_ms() if until_ms is None else until_ms
        since = until - 24 * HOUR_MS if since_ms is None else since_ms
        if since > until:
            raise InvalidParameter("since must be before until", parameter="since")
        if until - since > 366 * 24 * HOUR_MS:
            raise InvalidParameter("a series spans at most 366 days; ask for a shorter range", parameter="since")
        count, downsampled, points = self.store.series(
            layer_id, fid, taken, since, until, self.rules.readings.series_points
        )
        return {
            "layer": layer_id,
            "feature_id": fid,
            "kind": taken,
            "unit": self.rules.readings.limit(taken).unit,
            "since": iso(since),
            "until": iso(until),
            "count": count,
            "downsampled": downsampled,
            "points": [[iso(at), value] for at, value in points],
        }

    # -- closures ---------------------------------------------------------------------------------

    def _closure_rule(self, layer_id: str):
        rule = self.rules.monitored.get(layer_id)
        if layer_id not in self.registry or rule is None or rule.closure is None:
            closable = [lid for lid, r in self.rules.monitored.items() if r.closure is not None]
            raise InvalidParameter(
                f"layer {str(layer_id)[:40]!r} cannot be closed; closures are of: {', '.join(closable)}",
                parameter="layer",
            )
        return rule.closure

    def close(self, actor: Actor, layer_id: str, fid: int, reason: Any) -> Closure:
        """Close an underpass or seal an underground space's entrances, with a reason (commanders)."""
        permissions.require_role(actor, CLOSURE_ROLES)
        rule = self._closure_rule(layer_id)
        closure = self.store.close_feature(
            self.registry[layer_id],
            fid,
            action=rule.action,
            field=rule.field,
            closed=rule.closed,
            reason=_reason(reason, required=True),
            actor=actor,
        )
        return closure

    def reopen(self, actor: Actor, closure_id: int, reason: Any = None) -> Closure:
        """End a closure: the feature open again, the reopening kept with who and why (commanders)."""
        permissions.require_role(actor, CLOSURE_ROLES)
        found = self.store.closure(closure_id)
        if found is None:
            raise NotFound(f"no closure {closure_id}", parameter="closure")
        rule = self._closure_rule(found.layer)
        return self.store.reopen_closure(
            self.registry[found.layer],
            closure_id,
            field=rule.field,
            open_value=rule.open,
            reason=_reason(reason, required=False),
            actor=actor,
        )

    def closures(self, actor: Actor, *, open_only: bool = True) -> list[Closure]:
        """Closures, newest first, with their reasons and who made them (the board's roles)."""
        permissions.require_role(actor, BOARD_ROLES)
        return self.store.closures(open_only=open_only)

    def closure_fields(self) -> dict[str, tuple[str, str]]:
        """Layer -> (status field, closed value): an edit may not set or clear a closure behind its record's back."""
        return {
            lid: (r.closure.field, r.closure.closed) for lid, r in self.rules.monitored.items() if r.closure is not None
        }

    # -- nearest resources ------------------------------------------------------------------------

    def nearest(
        self, actor: Actor, lon: float, lat: float, kind: str | None, k: int | None, visibility: Visibility
    ) -> list[dict[str, Any]]:
        """The ``k`` nearest available resources (of ``kind``, or any), nearest first, with distances in metres."""
        permissions.require_role(actor, BOARD_ROLES)
        res = self.rules.resources
        spec = self.registry[res.layer]
        kinds = spec.field(res.kind_field).allowed or ()
        if kind is not None and kind not in kinds:
            raise InvalidParameter(f"kind must be one of: {', '.join(kinds)}", parameter="kind")
        limit = res.nearest_k
        k = limit.default if k is None else k
        if not 1 <= k <= limit.max:
            raise InvalidParameter(f"k must be a whole number from 1 to {limit.max}", parameter="k")
        self._check_near_district(lon, lat)
        return self._nearest(lon, lat, (kind,) if kind else None, k, visibility)

    def _check_near_district(self, lon: float, lat: float) -> None:
        """Refuse a point far from the district: distances are measured in its projected CRS, true only near it."""
        district = self.reader.summary().get(DISTRICT_LAYER)
        extent = district.extent if district else None
        if not extent:
            return
        minx, miny, maxx, maxy = extent
        pad = NEAR_DISTRICT_DEG
        if not (minx - pad <= lon <= maxx + pad and miny - pad <= lat <= maxy + pad):
            raise InvalidParameter(
                f"lon/lat {lon:g},{lat:g} lies far outside the district ({minx:.3f},{miny:.3f} to {maxx:.3f},"
                f"{maxy:.3f}); the nearest resources are searched from points in or near it",
                parameter="lon",
            )

    def _nearest(self, lon, lat, kinds, k, visibility) -> list[dict[str, Any]]:
        res = self.rules.resources
        filters = {res.state_field: [res.available]}
        if kinds:
            filters[res.kind_field] = list(kinds)
        page = self.reader.select(res.layer, Query(nearest=(lon, lat, k), filters=filters), 0, k, visibility)
        out = []
        for text in page.features:
            feature = orjson.loads(text)
            props = feature["properties"]
            lon_, lat_ = feature["geometry"]["coordinates"][:2]
            out.append({"fid": feature["id"], **props, "lon": lon_, "lat": lat_})
        return out

    def feature_point(self, layer_id: str, fid: int) -> tuple[float, float]:
        """Where a feature is (its representative point), for the nearest-resource search from it."""
        self.registry.require(layer_id)
        found = self.reader.get(layer_id, fid)
        if found is None:
            raise NotFound(f"no feature {fid} in layer {layer_id}", parameter="feature_id")
        point = found.geometry.representative_point()
        return point.x, point.y

    # -- the situation ----------------------------------------------------------------------------

    def situation(self, visibility: Visibility = "public") -> Situation:
        """The board's situation now; computed again when a reading, a closure or a layer changed, and at
        least every :data:`RECHECK_MS` (a feature turns stale as time passes).

        One thread of a process computes it at a time; a request that waited for another's computing takes
        that answer if it began after the request arrived (it holds everything committed by then), so that
        sensors posting many times a second cost one computing per burst of polls, not one per poll.
        """
        asked = time.monotonic()
        key = self._key()
        kept = self._kept.get(visibility)
        if kept is not None and kept[0] == key:
            return kept[2]
        with self._computing[visibility]:
            kept = self._kept.get(visibility)
            if kept is not None and (kept[0] == key or kept[1] >= asked):
                return kept[2]
            began = time.monotonic()
            key = self._key()  # read before the data: the situation holds at least what this key says
            found = self._situation(self.now_ms(), visibility)
            self._kept[visibility] = (key, began, found)
        return found

    def _key(self) -> tuple:
        """What the situation depends on: readings and closures, the layers it reads, and the time (staleness)."""
        versions = self.reader.versions()
        layers = (*self.rules.monitored, self.rules.gauges.layer, self.rules.resources.layer)
        return (self.store.readings_mark(), tuple(versions[lid] for lid in layers), self.now_ms() // RECHECK_MS)

    def _situation(self, now: int, visibility: Visibility) -> Situation:
        rules = self.rules
        stale_ms = rules.stale_after_minutes * 60_000
        latest = self.store.latest_readings("depth_cm")
        earliest = self.store.earliest_since("depth_cm", now - HOUR_MS)
        hour_before = self.store.readings_before_latest("depth_cm", HOUR_MS)
        held = {(c.layer, c.fid): c for c in self.store.closures(open_only=True)}
        features = []
        for layer_id, rule in rules.monitored.items():
            layer = self.registry[layer_id]
            for fid, props, (lon, lat) in self._features(layer_id, visibility):
                thresholds = rule.thresholds(props)
                reading = latest.get((layer_id, fid))
                depth = observed = trend = None
                level = levels.STALE
                if reading is not None:
                    depth, observed, _ = reading
                    if now - observed <= stale_ms:
                        level = levels.level_of(depth, thresholds)
                        trend = _trend(
                            depth, observed, hour_before.get((layer_id, fid)) or earliest.get((layer_id, fid))
                        )
                closure = held.get((layer_id, fid))
                recommend = None if closure else levels.recommends(level, rule.closure)
                pumps = self._nearest(lon, lat, rules.resources.pump_kinds, 1, visibility)
                features.append(
                    Watched(
                        layer_id,
                        fid,
                        str(props.get(layer.title_field) or f"#{fid}"),
                        lon,
                        lat,
                        props.get(layer.status_field) if layer.status_field else None,
                        level,
                        depth,
                        observed,
                        trend,
                        thresholds,
                        recommend,
                        closure,
                        pumps[0] if pumps else None,
                        rule.ponding.of(props, "mmh"),
                    )
                )
        features.sort(key=lambda w: (-w.severity, w.closure is None, -(w.depth_cm or 0), w.layer, w.fid))
        gauges = self._gauges(now, visibility)
        worst = min(
            (g for g in gauges if g.signal), key=lambda g: [s.id for s in rules.signals].index(g.signal), default=None
        )
        times = [observed for _, observed, _ in latest.values()]
        times += [g.latest_ms for g in gauges if g.latest_ms]
        updated = max(times, default=None)
        return Situation(
            now,
            updated,
            features,
            gauges,
            worst.signal if worst else None,
            worst.fid if worst else None,
            sorted(held.values(), key=lambda c: c.id, reverse=True),
        )

    def _features(self, layer_id: str, visibility: Visibility):
        """Every feature of a layer: fid, properties and its representative point (lon, lat)."""
        page = self.reader.select(layer_id, Query(), 0, 100_000, visibility)
        for text in page.features:
            feature = orjson.loads(text)
            geometry = feature.get("geometry")
            if not geometry:
                continue
            if geometry["type"] == "Point":
                lon, lat = geometry["coordinates"][:2]
            else:
                point = shapely.from_geojson(orjson.dumps(geometry)).representative_point()
                lon, lat = point.x, point.y
            yield feature["id"], feature["properties"], (lon, lat)

    def _gauges(self, now: int, visibility: Visibility) -> list[Gauge]:
        rules = self.rules
        layer_id = rules.gauges.layer
        layer = self.registry[layer_id]
        windows = rules.gauges.windows_h
        totals = self.store.rain_totals(layer_id, now, [w * HOUR_MS for w in windows])
        latest = self.store.latest_readings("rain_mm")
        out = []
        for fid, props, (lon, lat) in self._features(layer_id, visibility):
            sums = dict(zip(windows, (round(v, 1) for v in totals.get(fid, [0.0] * len(windows))), strict=True))
            reading = latest.get((layer_id, fid))
            name = str(props.get(layer.title_field) or f"#{fid}")
            signal = levels.signal_of(sums, rules)
            out.append(Gauge(fid, name, lon, lat, sums, signal, reading[1] if reading else None))
        return out

    def live(self, actor: Actor, visibility: Visibility) -> dict[str, Any]:
        """The board's live data as JSON-ready values (``generated_at`` aside, the same until something changes)."""
        permissions.require_role(actor, BOARD_ROLES)
        s = self.situation(visibility)
        return {
            "generated_at": iso(s.at_ms),
            "updated_at": iso(s.updated_ms),
            "stale_after_minutes": self.rules.stale_after_minutes,
            "signal": {"id": s.signal, "gauge": s.signal_gauge},
            "gauges": [
                {
                    "fid": g.fid,
                    "name": g.name,
                    "lon": g.lon,
                    "lat": g.lat,
                    "totals": {str(h): mm for h, mm in g.totals.items()},
                    "signal": g.signal,
                    "latest_at": iso(g.latest_ms),
                }
                for g in s.gauges
            ],
            "features": [
                {
                    "layer": w.layer,
                    "fid": w.fid,
                    "name": w.name,
                    "lon": w.lon,
                    "lat": w.lat,
                    "status": w.status,
                    "level": w.level,
                    "depth_cm": w.depth_cm,
                    "observed_at": iso(w.observed_ms),
                    "trend_cm_h": w.trend_cm_h,
                    "thresholds": w.thresholds,
                    "recommend": w.recommend,
                    "closure": closure_json(w.closure, self._name_of) if w.closure else None,
                    "nearest_pump": _resource(w.nearest_pump),
                }
                for w in s.features
            ],
            "closures": [closure_json(c, self._name_of) for c in s.closures],
        }

    def warnings(self) -> list[Warning]:
        """The warnings in force now, most severe first: the district's rainstorm signal, closures, and the
        monitored features at warning or danger (public values only: the feeds are public)."""
        s = self.situation("public")
        out: list[Warning] = []
        if s.signal:
            gauge = next(g for g in s.gauges if g.fid == s.signal_gauge)
            out.append(
                Warning(
                    f"signal-{s.signal}",
                    "signal",
                    s.signal,
                    gauge.latest_ms or s.at_ms,
                    self.rules.gauges.layer,
                    gauge.fid,
                    gauge.name,
                    gauge.lon,
                    gauge.lat,
                    totals=gauge.totals,
                    gauge=gauge.name,
                )
            )
        for w in s.features:
            if w.closure is not None:
                out.append(_about(w, f"closure-{w.closure.id}", "closure", w.closure.action, _ms(w.closure.closed_at)))
        for w in s.features:
            if w.level in ("warning", "danger"):
                key = f"level-{w.layer}-{w.fid}-{w.level}"
                out.append(_about(w, key, "level", w.level, w.observed_ms, w.thresholds[w.level], w.recommend))
        return out

    def _name_of(self, layer_id: str, fid: int) -> str:
        found = self.reader.get(layer_id, fid) if layer_id in self.registry else None
        if found is None:
            return f"#{fid}"
        return str(found.properties.get(self.registry[layer_id].title_field) or f"#{fid}")

    def scenario(self, actor: Actor, rain_mm_h: float, hours: float) -> dict[str, Any]:
        """Every monitored feature's expected level if rain falls at ``rain_mm_h`` for ``hours``, and the signal."""
        permissions.require_role(actor, BOARD_ROLES)
        if not 0 <= rain_mm_h <= 300:
            raise InvalidParameter("rain_mm_h must be a number from 0 to 300 (mm of rain an hour)", "rain_mm_h")
        if not 0 < hours <= 72:
            raise InvalidParameter("hours must be a number above 0 and at most 72", "hours")
        rules = self.rules
        totals = levels.scenario_totals(rain_mm_h, hours, rules)
        features = []
        for layer_id, rule in rules.monitored.items():
            layer = self.registry[layer_id]
            for fid, props, (lon, lat) in self._features(layer_id, "public"):
                ponding = rule.ponding.of(props, "mmh")
                level = levels.scenario_level(rain_mm_h, ponding, rules)
                features.append(
                    {
                        "layer": layer_id,
                        "fid": fid,
                        "name": str(props.get(layer.title_field) or f"#{fid}"),
                        "lon": lon,
                        "lat": lat,
                        "level": level,
                        "ponding_mmh": ponding,
                        "recommend": levels.recommends(level, rule.closure),
                    }
                )
        features.sort(key=lambda f: (-levels.severity(f["level"]), f["ponding_mmh"], f["layer"], f["fid"]))
        return {
            "scenario": {
                "rain_mm_h": rain_mm_h,
                "hours": hours,
                "totals": {str(h): round(mm, 1) for h, mm in totals.items()},
            },
            "signal": levels.signal_of(totals, rules),
            "features": features,
        }


def _about(w: Watched, key: str, kind: str, level: str, since_ms: int, *more) -> Warning:
    """A warning about a monitored feature: where it is, what it is called and how deep the water is."""
    return Warning(key, kind, level, since_ms, w.layer, w.fid, w.name, w.lon, w.lat, w.depth_cm, *more)


def _trend(depth: float, observed: int, reference: tuple[float, int] | None) -> float | None:
    """How much the water rose (+) or fell (-) over the last hour, in cm: against the reading an hour before the
    newest (or the first of the hour when none is that old); None with no earlier reading to compare."""
    if reference is None:
        return None
    if reference[1] >= observed:
        return 0.0
    return round(depth - reference[0], 1)


def _ms(at: str) -> int:
    return round(dt.datetime.fromisoformat(at).timestamp() * 1000)


def closure_json(c: Closure, name_of: Callable[[str, int], str]) -> dict[str, Any]:
    return {
        "id": c.id,
        "layer": c.layer,
        "fid": c.fid,
        "name": name_of(c.layer, c.fid),
        "action": c.action,
        "reason": c.reason,
        "closed_at": c.closed_at,
        "closed_by": c.closed_by,
        "reopened_at": c.reopened_at,
        "reopened_by": c.reopened_by,
        "reopen_reason": c.reopen_reason,
    }


def _resource(found: dict[str, Any] | None) -> dict[str, Any] | None:
    if found is None:
        return None
    keep = ("fid", "name", "kind", "distance_m", "contact", "contact_phone", "lon", "lat")
    return {k: found[k] for k in keep if k in found}


def _reason(reason: Any, *, required: bool) -> str | None:
    if reason is None or (isinstance(reason, str) and not reason.strip()):
        if required:
            raise InvalidParameter("reason is required: say why (it is kept with the closure)", parameter="reason")
        return None
    if not isinstance(reason, str) or not _REASON.fullmatch(reason):
        raise InvalidParameter("reason must be text of 1 to 500 characters, without control characters", "reason")
    return reason.strip()
