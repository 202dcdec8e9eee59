"""A synthetic year (2023) of digitised city-management cases for the demo district (演示数据, not real cases).

The totals follow the work report: 14,183 cases due (立案, not void), 14,067 of them disposed of (99.18 %), of
which 2,183 came from the mayor's hotline and 58 from web messages. The pattern is made to look like a city's:
night-market stalls on summer evenings around a few crossroads, street vending at school gates on weekday mornings
and afternoons, waterlogging on the year's rainy days at the district's ponding spots, manhole-cover cases naming a
cover of the manhole layer by its code, and the rest spread over the streets by day. Every case is placed in local
metric coordinates (``demo_district`` moves them) and routed to the unit grid cell containing it, as the workflow
routes a new case.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import shapely
from shapely.geometry import Point, Polygon

YEAR = 2023
DUE = 14_183
DISPOSED = 14_067
HOTLINE = 2_183
WEB = 58
PUBLIC = 126
SENSOR = 214
VOID = 187
#: of the cases disposed of: still waiting for the check, checked and not yet closed, closed
DISPOSED_OPEN, VERIFIED_OPEN = 31, 17
ZONE = dt.timezone(dt.timedelta(hours=8))  # the district's clock (Asia/Shanghai has no summer time)
#: the year's rainy days (day of year), on which waterlogging cases are reported
RAIN_DAYS = (135, 168, 176, 190, 197, 201, 212, 213, 214, 226, 240, 262)
#: subclasses of the spread-out cases, with their shares
EVERYDAY = {
    "exposed_garbage": 0.20,
    "dirty_road": 0.08,
    "construction_waste": 0.06,
    "illegal_ads": 0.12,
    "banners": 0.07,
    "hoarding_damaged": 0.03,
    "site_dust": 0.04,
    "shopfront_trading": 0.14,
    "street_vending": 0.08,
    "stray_dogs": 0.03,
    "cooking_fumes": 0.05,
    "road_collapse": 0.01,
    "street_light": 0.05,
    "trash_bin": 0.03,
    "green_damaged": 0.01,
}
CLASS_HOURS = {  # as layers/cases/workflow.yaml gives them
    "exposed_garbage": 4,
    "construction_waste": 24,
    "dirty_road": 4,
    "illegal_ads": 24,
    "banners": 24,
    "hoarding_damaged": 48,
    "site_dust": 24,
    "street_vending": 2,
    "shopfront_trading": 4,
    "night_market": 2,
    "stray_dogs": 24,
    "cooking_fumes": 48,
    "waterlogging": 2,
    "road_collapse": 4,
    "manhole_cover": 4,
    "street_light": 48,
    "trash_bin": 48,
    "green_damaged": 72,
}
CATEGORY = {
    "exposed_garbage": "appearance",
    "construction_waste": "appearance",
    "dirty_road": "appearance",
    "cooking_fumes": "appearance",
    "illegal_ads": "advertising",
    "banners": "advertising",
    "hoarding_damaged": "construction",
    "site_dust": "construction",
    "street_vending": "street_order",
    "shopfront_trading": "street_order",
    "night_market": "street_order",
    "stray_dogs": "street_order",
    "waterlogging": "emergency",
    "road_collapse": "emergency",
    "manhole_cover": "utilities",
    "street_light": "utilities",
    "trash_bin": "facilities",
    "green_damaged": "greening",
}
DEPARTMENT = {"appearance": "sanitation", "emergency": "drainage", "utilities": "municipal", "facilities": "sanitation"}
DEPARTMENT |= {"greening": "parks", "advertising": "enforcement", "construction": "enforcement"}
DEPARTMENT |= {"street_order": "enforcement"}
COMPONENTS = {"manhole_cover", "street_light", "trash_bin", "green_damaged"}
SPECIAL_DEPARTMENT = {"construction_waste": "enforcement", "cooking_fumes": "enforcement", "road_collapse": "municipal"}
WORDS = {
    "exposed_garbage": "路边堆放生活垃圾",
    "construction_waste": "装修垃圾乱倒",
    "dirty_road": "路面油污、泥土",
    "illegal_ads": "电线杆上张贴小广告",
    "banners": "沿街乱扯横幅",
    "hoarding_damaged": "施工围挡倒伏破损",
    "site_dust": "工地未覆盖裸土，扬尘",
    "street_vending": "流动摊贩占道经营",
    "shopfront_trading": "商户店外摆放经营",
    "night_market": "夜市摊点超范围占道",
    "stray_dogs": "流浪犬聚集",
    "cooking_fumes": "餐饮油烟直排",
    "waterlogging": "降雨后路面积水",
    "road_collapse": "人行道局部塌陷",
    "manhole_cover": "井盖破损",
    "street_light": "路灯夜间不亮",
    "trash_bin": "垃圾箱破损",
    "green_damaged": "绿地被踩踏、毁坏",
}


def build(
    rng: np.random.Generator,
    boundary: Polygon,
    streets: list,
    cells: tuple[list[dict], list[Polygon]],
    manholes: tuple[list[dict], list[Point]],
    ponding: list[Point],
) -> tuple[list[dict], list[Point]]:
    """The year's cases: records of the ``cases`` layer's fields and their points (local metres)."""
    total = DUE + VOID
    kinds, points, hours = _draw(rng, total, boundary, streets, manholes, ponding)
    # sources: the hotline's, the web's, the public's and the sensors' cases among those due; the rest from patrols
    due = rng.permutation(total)[:DUE]
    source = np.full(total, "patrol", dtype=object)
    order = rng.permutation(due)
    counts = {"hotline": HOTLINE, "web": WEB, "public": PUBLIC, "sensor": SENSOR}
    start = 0
    for name, count in counts.items():
        source[order[start : start + count]] = name
        start += count
    source[[i for i in range(total) if kinds[i] == "waterlogging" and source[i] == "patrol"][:40]] = "sensor"
    is_due = np.zeros(total, dtype=bool)
    is_due[due] = True
    # of the due: the 116 not yet disposed of (late in the year, mostly), then the disposed still open
    late = np.argsort(-hours[due] + rng.uniform(0, 24 * 30, DUE))  # newest first, loosely
    undisposed = set(due[late[: DUE - DISPOSED]].tolist())
    rest = [i for i in due[late[DUE - DISPOSED :]].tolist()]
    waiting = set(rest[:DISPOSED_OPEN])
    checked = set(rest[DISPOSED_OPEN : DISPOSED_OPEN + VERIFIED_OPEN])
    grids = _route(points, cells)
    records = []
    codes = manholes[0]
    cover_points = manholes[1]
    cover_index = shapely.STRtree(cover_points)
    for i in range(total):
        kind = kinds[i]
        reported = dt.datetime(YEAR, 1, 1, tzinfo=ZONE) + dt.timedelta(hours=float(hours[i]))
        category = CATEGORY[kind]
        record = {
            "kind": "component" if kind in COMPONENTS else "event",
            "category": category,
            "subcategory": kind,
            "component_code": None,
            "source": source[i],
            "details": f"{WORDS[kind]}（演示数据）",
            "reported_at": _utc(reported),
            "department": SPECIAL_DEPARTMENT.get(kind, DEPARTMENT[category]),
            **grids[i],
        }
        if kind == "manhole_cover":
            record["component_code"] = codes[int(cover_index.nearest(points[i]))]["code"]
        if not is_due[i]:
            record.update(status="void", last_note="重复上报，作废（演示数据）")
            records.append(record)
            continue
        registered = reported + dt.timedelta(minutes=float(rng.uniform(3, 40)))
        dispatched = registered + dt.timedelta(minutes=float(rng.uniform(2, 25)))
        allowed = CLASS_HOURS[kind]
        record.update(
            registered_at=_utc(registered),
            registered_month=registered.strftime("%Y-%m"),
            dispatched_at=_utc(dispatched),
            deadline_at=_utc(registered + dt.timedelta(hours=allowed)),
        )
        if i in undisposed:
            record["status"] = "dispatched" if rng.random() < 0.8 else "registered"
            if record["status"] == "registered":
                record["dispatched_at"] = None
            records.append(record)
            continue
        share = rng.beta(2.2, 3.5) * (1.6 if rng.random() < 0.06 else 0.95)  # about 1 in 20 late
        disposed = dispatched + dt.timedelta(hours=float(allowed * share) + float(rng.uniform(0, 0.2)))
        verified = disposed + dt.timedelta(minutes=float(rng.uniform(10, 180)))
        closed = verified + dt.timedelta(minutes=float(rng.uniform(5, 90)))
        record["disposed_at"] = _utc(disposed)
        record["last_note"] = "已处置（演示数据）"
        if i in waiting:
            record["status"] = "disposed"
        elif i in checked:
            record.update(status="verified", verified_at=_utc(verified))
        else:
            record.update(status="closed", verified_at=_utc(verified), closed_at=_utc(closed))
        records.append(record)
    # case numbers in the order reported, as the command centre numbers them
    for serial, i in enumerate(sorted(range(total), key=lambda k: (hours[k], k)), start=1):
        records[i]["code"] = f"AJ{YEAR}-{serial:07d}"
    return records, points


def _utc(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _draw(rng, total, boundary, streets, manholes, ponding):
    """Each case's subclass, point and hour of the year (local time), with the patterns of a city."""
    days = 365
    inner = boundary.buffer(-30)
    crossroads = [
        p
        for a in streets
        for b in streets
        if a.name < b.name
        for p in _points(a.line.intersection(b.line))
        if inner.contains(p)
    ]
    markets = [crossroads[int(k)] for k in rng.choice(len(crossroads), 3, replace=False)]
    schools = [crossroads[int(k)] for k in rng.choice(len(crossroads), 5, replace=False)]
    n_night = int(total * 0.07)
    n_school = int(total * 0.05)
    n_rain = 30 * len(RAIN_DAYS)
    n_manhole = 420
    n_rest = total - n_night - n_school - n_rain - n_manhole
    kinds: list[str] = []
    points: list[Point] = []
    hours: list[float] = []
    # night markets: May to October evenings, within 120 m of three crossroads
    for _ in range(n_night):
        day = int(rng.integers(120, 300))
        kinds.append("night_market")
        points.append(_near(rng, markets[int(rng.integers(3))], 120, inner))
        hours.append(day * 24 + rng.uniform(18.5, 23.5))
    # school gates: weekday mornings and afternoons in term time
    term = [d for d in range(days) if _term(d)]
    for _ in range(n_school):
        day = int(rng.choice(term))
        kinds.append("street_vending")
        points.append(_near(rng, schools[int(rng.integers(5))], 80, inner))
        hours.append(day * 24 + (rng.uniform(7, 8.2) if rng.random() < 0.5 else rng.uniform(16.3, 18)))
    # rainy days: waterlogging at the ponding spots, and a few anywhere on a street
    for day in RAIN_DAYS:
        for _ in range(30):
            kinds.append("waterlogging")
            spot = ponding[int(rng.integers(len(ponding)))] if rng.random() < 0.7 else _on_street(rng, streets, inner)
            points.append(_near(rng, spot, 40, inner))
            hours.append(day * 24 + rng.uniform(6, 22))
    # manhole covers: a case beside a cover, any time of year
    cover_points = manholes[1]
    for _ in range(n_manhole):
        kinds.append("manhole_cover")
        points.append(_near(rng, cover_points[int(rng.integers(len(cover_points)))], 3, inner))
        hours.append(rng.uniform(0, days * 24))
    # the rest: by day on the streets, a little more in spring and autumn
    names = list(EVERYDAY)
    shares = np.array(list(EVERYDAY.values()))
    for k in rng.choice(len(names), n_rest, p=shares / shares.sum()):
        kinds.append(names[int(k)])
        points.append(_near(rng, _on_street(rng, streets, inner), 25, inner))
        day = int(rng.integers(days))
        hours.append(day * 24 + float(np.clip(rng.normal(13, 3.2), 6, 22)))
    order = rng.permutation(total)
    return [kinds[i] for i in order], [points[i] for i in order], np.array(hours)[order]


def _term(day: int) -> bool:
    date = dt.date(YEAR, 1, 1) + dt.timedelta(days=day)
    holiday = (dt.date(YEAR, 1, 14) <= date <= dt.date(YEAR, 2, 19)) or (
        dt.date(YEAR, 7, 8) <= date <= dt.date(YEAR, 8, 31)
    )
    return date.weekday() < 5 and not holiday


def _points(geom) -> list[Point]:
    return [g for g in getattr(geom, "geoms", [geom]) if g.geom_type == "Point" and not g.is_empty]


def _on_street(rng, streets, inner) -> Point:
    lengths = np.array([s.line.length for s in streets])
    road = streets[int(rng.choice(len(streets), p=lengths / lengths.sum()))]
    return road.line.interpolate(float(rng.uniform(0, road.line.length)))


def _near(rng, centre: Point, radius: float, inner: Polygon) -> Point:
    for _ in range(20):
        angle, r = rng.uniform(0, 2 * np.pi), radius * np.sqrt(rng.uniform())
        point = Point(centre.x + r * np.cos(angle), centre.y + r * np.sin(angle))
        if inner.contains(point):
            return point
    return centre if inner.contains(centre) else inner.representative_point()


def _route(points: list[Point], cells: tuple[list[dict], list[Polygon]]) -> list[dict]:
    """Each point's grid cell, community and squad (point in polygon; the lowest code on a border)."""
    records, polygons = cells
    tree = shapely.STRtree(polygons)
    hits = tree.query(np.array(points, dtype=object), predicate="covered_by")
    found: dict[int, int] = {}
    for p, c in zip(hits[0].tolist(), hits[1].tolist(), strict=True):
        if p not in found or records[c]["code"] < records[found[p]]["code"]:
            found[p] = c
    out = []
    for i in range(len(points)):
        cell = records[found[i]] if i in found else {}
        out.append({"grid": cell.get("code"), "community": cell.get("community"), "squad": cell.get("squad")})
    return out
