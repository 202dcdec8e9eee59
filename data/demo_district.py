"""A synthetic demo district, "XX区（演示数据）", with every layer of the one-map, seeded and reproducible.

Nothing here is real. The district sits around 113.30 E, 33.73 N only so that the map opens somewhere
plausible; its outline, roads, railway, names, codes and phone numbers are invented. Phone numbers
use the unassigned prefix ``0000-`` so that none can reach a real line, and the administrative code
``419901`` is fictional.

The counts follow the bureau's 2023 work report, reconciled where the report does not add up:

* Construction hoardings, 43 sites: 28 removed (19 by the urban-management bureau, 9 by the housing
  bureau), 9 still under construction (housing) and 3 belonging to Xinhua District (in progress).
  That is only 40; the three sites the report leaves unaccounted for are generated as ``pending``
  sites of this district.
* Heat-exchange stations, 114: the report also says "66 direct + 49 transfer", which is 115. We keep
  the total of 114 and generate 66 direct + 48 transfer stations. ``converted_to_direct`` means
  "managed as direct supply", so it is True for every station: all transfer stations were converted
  and the direct ones are direct already.
* Manhole covers, 950: 886 fixed in 2023 and 64 still to fix.
* Underpass culverts 14, waterlogging points 6, underground spaces 81, back-street repairs 10
  (8 repaired, 2 under works by the housing bureau).
* Not in the report, for the flood commander: 24 emergency resources (6 pump trucks parked at the squads'
  bases near an underpass or waterlogging point, 4 fixed pump stations beside underpasses, 4 material
  depots, 6 duty posts at the waterlogging points, 4 rescue squads), of which 3 are deployed and 2 out of
  service, and 8 rain gauges on a jittered 3 x 3 grid less one corner (6 automatic, 2 manual).

All geometry is built in EPSG:4547 (CGCS2000 Gauss-Kruger, central meridian 114E, metres), in
coordinates relative to a local origin on the 100 m grid, and converted to WGS84 (EPSG:4326) only
when the frames are assembled, so that every offset, length, area and buffer is in metres.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import Transformer
from shapely import affinity, ops
from shapely.geometry import LineString, Point, Polygon
from shapely.geometry.base import BaseGeometry

from data import demo_cases

__all__ = ["build"]

STORAGE_CRS = "EPSG:4326"
METRIC_CRS = "EPSG:4547"
CENTRE_LONLAT = (113.30, 33.73)
DISTRICT_NAME = "XX区（演示数据）"
ADMIN_CODE = "419901"  # fictional six-digit administrative code

# The declared, non-computed fields of each layer, in the order of layers/*.yaml.
FIELDS: dict[str, tuple[str, ...]] = {
    "district_boundary": ("name",),
    "roads": ("name", "kind", "numbers_from", "numbers_to"),
    "grid_cells": ("code", "community", "squad"),
    "manhole_covers": ("code", "kind", "road", "defect", "status", "fixed_on"),
    "heating_stations": ("name", "community", "supply_type", "converted_to_direct", "status", "operator_phone"),
    "backstreet_repairs": ("road_name", "repaired_area_m2", "agency", "status", "due_on", "completed_on"),
    "construction_hoardings": (
        "site",
        "agency",
        "district",
        "status",
        "due_on",
        "removed_on",
        "treatment",
        "contractor",
        "notes",
    ),
    "underground_spaces": ("name", "kind", "entrances", "barriers_fitted", "responsible_unit", "status", "contact"),
    "underpass_culverts": (
        "name",
        "road",
        "clearance_m",
        "closure_depth_cm",
        "pump_capacity_m3h",
        "status",
        "keeper_phone",
    ),
    "waterlogging_points": (
        "name",
        "road",
        "max_depth_cm",
        "ponding_rain_mmh",
        "danger_depth_cm",
        "status",
        "duty_team",
        "contact_phone",
        "notes",
    ),
    "emergency_resources": ("name", "kind", "capacity", "capacity_unit", "unit", "state", "contact", "contact_phone"),
    "rain_gauges": ("name", "code", "kind", "operator_phone"),
    "cases": (
        "code",
        "kind",
        "category",
        "subcategory",
        "component_code",
        "source",
        "status",
        "grid",
        "community",
        "squad",
        "department",
        "details",
        "address",
        "ticket",
        "geocode_confidence",
        "public_note",
        "reported_at",
        "registered_at",
        "registered_month",
        "dispatched_at",
        "disposed_at",
        "verified_at",
        "closed_at",
        "deadline_at",
        "routing",
        "report_reference",
        "last_note",
    ),
}

# -- shape of the district (metres) -----------------------------------------------------------

HALF_WIDTH, HALF_HEIGHT = 2250.0, 1750.0  # about 4.5 km east-west by 3.5 km north-south
ROAD_MARGIN = 5.0  # roads stop this far inside the boundary, so whatever sits on them is inside too
CLEARANCE = 20.0  # buildings keep this far from street centrelines (the rule checked is 15 m)
RAILWAY_CLEARANCE = 40.0
EW_OFFSETS = np.linspace(-1200, 1200, 7)  # street spacing of 400-425 m, as between urban arterials
NS_OFFSETS = np.linspace(-1700, 1700, 9)
UNDERPASSES = 14
CROSSING_SPACING = 40.0  # street-railway crossings (underpasses) lie at least this far apart
RAILWAY_CANDIDATES = 40

# -- names (synthetic) ------------------------------------------------------------------------

EW_STREETS = (
    ("南环路", "arterial"),
    ("湛南路", "arterial"),
    ("建设路", "arterial"),
    ("中兴路", "secondary"),
    ("光明路", "secondary"),
    ("人民路", "arterial"),
    ("曙光街", "secondary"),
)
NS_STREETS = (
    ("体育路", "secondary"),
    ("矿工路", "arterial"),
    ("新华路", "arterial"),
    ("和平路", "secondary"),
    ("开源路", "arterial"),
    ("长青路", "secondary"),
    ("育才路", "secondary"),
    ("团结路", "secondary"),
    ("东环路", "arterial"),
)
BRANCH_STREETS = ("文化街", "胜利街", "友谊街")
RAILWAY_NAME = "XX铁路（示意）"
MUST_HAVE_UNDERPASS = ("湛南路", "开源路")  # the report names these two underpasses
LANES = ("建新巷", "育英巷", "福兴巷", "和顺巷", "平安巷", "幸福巷", "春晖巷", "民主巷", "东风巷", "同心巷")
ESTATES = (
    "锦华", "翠苑", "阳光", "嘉和", "康乐", "金桂", "银杏", "紫荆", "兰庭", "书香",
    "和园", "瑞祥", "丰泽", "秀水", "安居", "惠民", "春晖", "朝阳", "怡景", "松柏",
    "枫林", "荷塘", "清源", "华苑", "鸿福", "景福", "盛世", "同乐", "馨园", "绿洲",
    "文苑", "泰和", "永安", "新村", "铁路", "矿务", "电力", "颐和", "桃园", "富康",
)  # fmt: skip
ESTATE_KINDS = ("小区", "花园", "家园", "苑")
PLAZAS = ("中心广场", "文化广场", "人民商城", "东方商厦", "万和广场", "金鼎广场", "百汇商城", "汇通广场")
STREET_OFFICES = ("演示西街道", "演示中街道", "演示东街道")  # west to east, as Regions.street numbers them
COMMUNITIES = (
    ("东湖社区", "南苑社区", "西城社区"),
    ("北辰社区", "中和社区", "锦绣社区"),
    ("明珠社区", "福源社区", "春华社区"),
)
SQUADS = ("第一中队", "第二中队", "第三中队", "第四中队", "第五中队", "第六中队")
CONTRACTORS = ("演示建工一公司", "演示市政工程公司", "演示城建集团二处", "演示安装工程公司")
SURNAMES = ("王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴")
TITLES = ("经理", "主任", "工", "师傅")

MANHOLE_KINDS = {  # kind: (GB/T 30428 subclass code, share of covers)
    "water_supply": ("01", 0.16),
    "sewage": ("02", 0.22),
    "storm": ("03", 0.22),
    "power": ("05", 0.10),
    "street_light": ("06", 0.08),
    "telecom": ("07", 0.10),
    "heat": ("10", 0.06),
    "gas": ("11", 0.06),
}
PUMP_TRUCK_M3H = (100, 150, 200, 300, 400, 500)
DEPOT_BAGS = (800, 1000, 1500, 2000, 3000)
DRAINAGE_UNIT = "区城管局排水中队（演示）"
PUMP_STATION_UNIT = "区市政设施维护中心（演示）"
BUREAU_UNIT = "区城管局（演示）"
GAUGE_GRID = (1500.0, 1150.0)  # spacing of the 3 x 3 grid of rain gauges, west-east and south-north
UNDERGROUND_KINDS = {"garage": 45, "mall": 8, "passage": 6, "shelter": 14, "other": 8}  # 81 in all
FOOTPRINTS = {  # kind: width range, depth range (m) of those drawn as polygons; the rest are points
    "garage": (40, 90, 30, 70),
    "mall": (60, 120, 40, 80),
    "shelter": (20, 50, 15, 40),
    "passage": (40, 100, 6, 10),
}


@dataclass(frozen=True)
class Road:
    name: str
    kind: str
    line: LineString


@dataclass(frozen=True)
class Regions:
    """Three street offices (west to east), three communities in each (south to north) and six squads.

    Borders wave a little (phases drawn from the seed) so that they do not look ruled.
    """

    phases: tuple[float, float, float]

    def street(self, x, y):
        """Index of the street office (0-2) at local metric coordinates."""
        return np.digitize(x + 90 * np.sin(y / 350 + self.phases[0]), (-750, 750))

    def community(self, x, y):
        """Index of the community (0-2) within its street office."""
        return np.digitize(y + 70 * np.sin(x / 300 + self.phases[1]), (-580, 580))

    def squad(self, x, y):
        """Index of the squad (0-5): each street office is split into a southern and a northern squad."""
        north = (y + 60 * np.sin(x / 280 + self.phases[2])) > 0
        return 2 * self.street(x, y) + north.astype(int)


def build(seed: int = 2023) -> dict[str, gpd.GeoDataFrame]:
    """Generate the synthetic district: one GeoDataFrame per layer id, in EPSG:4326.

    Each frame holds the layer's declared fields except the computed ones (lengths and areas,
    which the store fills in) and a ``geometry`` column. The same seed gives the same district;
    each layer draws from its own child generator, so changing one layer leaves the others alone.
    """
    steps = ("boundary", "roads", "regions", "culverts", "waterlogging", "lanes", "heating", "underground", "hoardings")
    steps += ("manholes", "resources", "gauges", "due", "cases")
    rng = dict(zip(steps, np.random.default_rng(seed).spawn(len(steps)), strict=True))

    boundary = _boundary(rng["boundary"])
    streets, railway = _road_network(rng["roads"], boundary)
    roads = [*streets, railway]
    regions = Regions(tuple(rng["regions"].uniform(0, 2 * np.pi, 3)))
    culverts = _culverts(rng["culverts"], streets, railway)
    lanes = _lanes(rng["lanes"], boundary, roads)
    land = _building_land(boundary, streets, railway, lanes)
    heating, estates = _heating_stations(rng["heating"], land)
    roads_union = shapely.union_all([r.line for r in roads])
    waterlogging = _waterlogging(rng["waterlogging"], boundary, streets, railway, culverts, regions)
    underground = _underground(rng["underground"], land, streets, estates, heating[1])
    buildings = [*heating[1], *underground[1]]

    layers = {
        "district_boundary": ([{"name": DISTRICT_NAME}], [boundary]),
        "roads": (
            # house numbers 1 to about a tenth of the length in metres, an even count: odd left, even right
            [
                {"name": r.name, "kind": r.kind}
                | ({} if r.kind == "railway" else {"numbers_from": 1, "numbers_to": 2 * round(r.line.length / 20)})
                for r in roads
            ],
            [r.line for r in roads],
        ),
        "grid_cells": _grid_cells(boundary, regions),
        "underpass_culverts": culverts,
        "waterlogging_points": waterlogging,
        "backstreet_repairs": _backstreet_records(rng["lanes"], lanes),
        "heating_stations": heating,
        "underground_spaces": underground,
        "construction_hoardings": _hoardings(rng["hoardings"], boundary, streets, roads_union, lanes),
        "manhole_covers": _manholes(rng["manholes"], streets),
        "emergency_resources": _emergency_resources(
            rng["resources"], boundary, streets, railway, culverts, waterlogging, regions, land, buildings
        ),
        "rain_gauges": _rain_gauges(rng["gauges"], land, regions, buildings),
    }
    layers["cases"] = demo_cases.build(
        rng["cases"], boundary, streets, layers["grid_cells"], layers["manhole_covers"], waterlogging[1]
    )
    _due_dates(rng["due"], layers["construction_hoardings"][0], layers["backstreet_repairs"][0])
    origin = _origin()
    return {layer_id: _frame(layer_id, records, geoms, origin) for layer_id, (records, geoms) in layers.items()}


# -- frame assembly ---------------------------------------------------------------------------


def _origin() -> np.ndarray:
    """Return the local origin: the district centre in EPSG:4547, snapped to the 100 m grid."""
    to_metric = Transformer.from_crs(STORAGE_CRS, METRIC_CRS, always_xy=True)
    x, y = to_metric.transform(*CENTRE_LONLAT)
    return np.round(np.array([x, y]) / 100) * 100  # snapped so that the unit grid has round coordinates


def _frame(layer_id: str, records: list[dict], geoms: list[BaseGeometry], origin: np.ndarray) -> gpd.GeoDataFrame:
    """Assemble one layer's frame, moving local metric geometry to EPSG:4547 and then to WGS84."""
    placed = shapely.transform(np.asarray(geoms, dtype=object), lambda xy: xy + origin)
    metric = gpd.GeoSeries(placed, crs=METRIC_CRS)
    table = pd.DataFrame.from_records(records, columns=list(FIELDS[layer_id]))
    return gpd.GeoDataFrame(table, geometry=metric.to_crs(STORAGE_CRS).values, crs=STORAGE_CRS)


# -- skeleton: boundary, streets, railway, lanes ----------------------------------------------


def _boundary(rng: np.random.Generator) -> Polygon:
    """Draw an irregular, roughly rectangular district outline around the local origin."""
    theta = np.linspace(0, 2 * np.pi, 96, endpoint=False)
    cos, sin = np.cos(theta), np.sin(theta)
    # A superellipse (exponent 3) is boxier than an ellipse, like a district bounded by roads and rivers.
    radius = (np.abs(cos / HALF_WIDTH) ** 3 + np.abs(sin / HALF_HEIGHT) ** 3) ** (-1 / 3)
    harmonics = np.arange(2, 7)[:, None]
    amplitude = rng.uniform(0.004, 0.02, (5, 1))
    phase = rng.uniform(0, 2 * np.pi, (5, 1))
    wobble = 1 + (amplitude * np.cos(harmonics * theta + phase)).sum(axis=0)
    wobble *= 1 + rng.uniform(-0.006, 0.006, theta.size)
    # The radius stays positive and single-valued in theta, so the ring never crosses itself.
    radius *= wobble
    return Polygon(np.column_stack([radius * cos, radius * sin]))


def _road_network(rng: np.random.Generator, boundary: Polygon) -> tuple[list[Road], Road]:
    """Lay the named streets and the diagonal railway, all clipped to just inside the boundary."""
    inner = boundary.buffer(-ROAD_MARGIN)
    ew_at = EW_OFFSETS + rng.uniform(-40, 40, EW_OFFSETS.size)
    ns_at = NS_OFFSETS + rng.uniform(-40, 40, NS_OFFSETS.size)
    ew = [Road(n, k, _clip(_street(rng, at, "ew"), inner)) for (n, k), at in zip(EW_STREETS, ew_at, strict=True)]
    ns = [Road(n, k, _clip(_street(rng, at, "ns"), inner)) for (n, k), at in zip(NS_STREETS, ns_at, strict=True)]
    # On a street grid some alignment always clips a crossroads, putting two underpasses side by side;
    # of a few dozen candidate alignments keep the one whose street crossings lie furthest apart.
    candidates = [_clip(_railway(rng), inner) for _ in range(RAILWAY_CANDIDATES)]
    spreads = [_crossing_spread(line, [*ew, *ns]) for line in candidates]
    best = int(np.argmax(spreads))
    if spreads[best] < CROSSING_SPACING:
        raise RuntimeError("could not lay a railway crossing enough streets at distinct places")
    railway = Road(RAILWAY_NAME, "railway", candidates[best])
    branches = _branch_streets(rng, ew, ns_at, railway, inner)
    return [*ew, *ns, *branches], railway


def _crossing_spread(railway: LineString, streets: list[Road]) -> float:
    """Return the smallest gap between the railway's street crossings; 0 if it misses a street it must cross."""
    crossed = [(road.name, p) for road in streets for p in _points(road.line.intersection(railway))]
    if len(crossed) < UNDERPASSES or not set(MUST_HAVE_UNDERPASS) <= {name for name, _ in crossed}:
        return 0.0
    xy = np.array([(p.x, p.y) for _, p in crossed])
    gaps = np.hypot(xy[:, None, 0] - xy[None, :, 0], xy[:, None, 1] - xy[None, :, 1])
    return float(gaps[np.triu_indices(len(xy), 1)].min())


def _street(rng: np.random.Generator, offset: float, axis: str, reach: float = 2800.0) -> LineString:
    """Draw a long, slightly tilted and wavy west-east or south-north street ``offset`` metres from the origin."""
    along = np.linspace(-reach, reach, 7)
    across = offset + rng.uniform(-0.03, 0.03) * along + rng.normal(0, 12, along.size)
    xy = np.column_stack([along, across]) if axis == "ew" else np.column_stack([across, along])
    return LineString(xy)


def _railway(rng: np.random.Generator) -> LineString:
    """Draw a smooth railway from south-west to north-east with a gentle bow, passing off-centre."""
    t = np.linspace(-1, 1, 41)
    x = 2900 * t
    # Slope ~0.7 makes it cross every street that spans the district; a railway curves, it does not kink.
    y = rng.uniform(0.66, 0.74) * x + rng.uniform(-120, 120) * np.sin(np.pi * t) + rng.uniform(-200, 200)
    return LineString(np.column_stack([x, y]))


def _clip(line: LineString, area: Polygon) -> LineString:
    """Clip a line to an area, keeping the longest piece so that every road stays one LineString."""
    piece = line.intersection(area)
    parts = [g for g in getattr(piece, "geoms", [piece]) if g.geom_type == "LineString"]
    return max(parts, key=lambda g: g.length)


def _branch_streets(
    rng: np.random.Generator, ew: list[Road], ns_at: np.ndarray, railway: Road, inner: Polygon
) -> list[Road]:
    """Add short south-north branch streets joining neighbouring west-east streets, clear of the railway."""
    blocks = [(i, j) for i in range(len(ns_at) - 1) for j in range(len(ew) - 1)]
    branches: list[Road] = []
    for index in rng.permutation(len(blocks)):
        i, j = blocks[index]
        x = (ns_at[i] + ns_at[i + 1]) / 2
        probe = LineString([(x, -3000), (x, 3000)])
        ends = [_points(probe.intersection(ew[k].line)) for k in (j, j + 1)]
        if not all(ends):
            continue
        line = LineString([ends[0][0], ends[1][0]])
        if inner.contains(line) and line.distance(railway.line) > 80:
            branches.append(Road(BRANCH_STREETS[len(branches)], "branch", line))
        if len(branches) == len(BRANCH_STREETS):
            break
    return branches


def _lanes(rng: np.random.Generator, boundary: Polygon, roads: list[Road]) -> list[LineString]:
    """Draw the back-street lanes: short, nearly straight lines inside blocks, clear of roads and of each other."""
    area = boundary.buffer(-CLEARANCE).difference(shapely.union_all([r.line.buffer(CLEARANCE) for r in roads]))
    shapely.prepare(area)
    minx, miny, maxx, maxy = area.bounds
    lanes: list[LineString] = []
    for _ in range(20_000):
        centre = rng.uniform((minx, miny), (maxx, maxy))
        length = rng.uniform(150, 330)  # blocks are about 400 m across, less the clearance on each side
        angle = rng.choice([0.0, 90.0]) + rng.uniform(-4, 4)
        kink = rng.uniform(-8, 8)
        lane = LineString([(-length / 2, 0), (rng.uniform(-length / 4, length / 4), kink), (length / 2, 0)])
        lane = affinity.translate(affinity.rotate(lane, angle, origin=(0, 0)), *centre)
        if area.contains(lane) and all(lane.distance(other) > 60 for other in lanes):
            lanes.append(lane)
            if len(lanes) == len(LANES):
                return lanes
    raise RuntimeError("could not fit the back-street lanes into the blocks")


def _building_land(boundary: Polygon, streets: list[Road], railway: Road, lanes: list[LineString]) -> BaseGeometry:
    """Return the land inside blocks where buildings may stand: clear of the edge, streets, railway and lanes."""
    blocked = [r.line.buffer(CLEARANCE) for r in streets]
    blocked += [railway.line.buffer(RAILWAY_CLEARANCE), *(lane.buffer(8.0) for lane in lanes)]
    land = boundary.buffer(-CLEARANCE).difference(shapely.union_all(blocked))
    shapely.prepare(land)
    return land


# -- points of interest -----------------------------------------------------------------------


def _culverts(rng: np.random.Generator, streets: list[Road], railway: Road) -> tuple[list[dict], list[Point]]:
    """Place the underpass culverts exactly where streets pass under the railway, one per chosen crossing."""
    crossings = [(road, p) for road in streets for p in _points(road.line.intersection(railway.line))]
    if len(crossings) < UNDERPASSES:
        raise RuntimeError(f"the railway crosses only {len(crossings)} streets; {UNDERPASSES} underpasses needed")
    must = [i for i, (road, _) in enumerate(crossings) if road.name in MUST_HAVE_UNDERPASS]
    rest = [i for i in range(len(crossings)) if i not in must]
    picked = must + list(rng.choice(rest, UNDERPASSES - len(must), replace=False))
    # Numbered along the railway from south-west to north-east, as a keeper would walk them.
    picked.sort(key=lambda i: railway.line.project(crossings[i][1]))
    deeper = set(rng.choice(UNDERPASSES, 3, replace=False).tolist())  # a few older culverts close at 30 cm
    phones = _phones(rng, UNDERPASSES)
    names = _numbered([(crossings[i][0].name, "下穿涵洞") for i in picked])
    records = [
        {
            "name": name,
            "road": crossings[i][0].name,
            "clearance_m": round(float(rng.uniform(2.8, 4.5)), 1),
            "closure_depth_cm": 30 if n in deeper else 25,
            "pump_capacity_m3h": float(rng.choice([200, 300, 400, 500, 600, 800])),
            "status": "open",
            "keeper_phone": phones[n],
        }
        for n, (name, i) in enumerate(zip(names, picked, strict=True))
    ]
    return records, [crossings[i][1] for i in picked]


def _points(geom: BaseGeometry) -> list[Point]:
    """Return the points of an intersection result, in a fixed order."""
    return sorted(
        (g for g in getattr(geom, "geoms", [geom]) if g.geom_type == "Point" and not g.is_empty),
        key=lambda p: (p.x, p.y),
    )


def _waterlogging(
    rng: np.random.Generator,
    boundary: Polygon,
    streets: list[Road],
    railway: Road,
    culverts: tuple[list[dict], list[Point]],
    regions: Regions,
) -> tuple[list[dict], list[Point]]:
    """Place six ponding spots on street centrelines: four on culvert approaches, two beside low crossroads."""
    by_name = {road.name: road for road in streets}
    records, geoms = [], []
    for k in sorted(rng.choice(len(culverts[0]), 4, replace=False).tolist()):
        culvert, at = culverts[0][k], culverts[1][k]
        # The low spot is on the approach ramp, a little way from the culvert itself.
        road = by_name[culvert["road"]]
        for _ in range(20):
            shift = rng.uniform(25, 60) * rng.choice([-1, 1])
            point = _along(road.line, road.line.project(at) + shift)
            if min(point.distance(other) for other in culverts[1]) > 20:  # not at the next culvert along
                break
        rain = round(float(rng.uniform(20, 35)), 1)
        records.append(
            {
                "name": f"{culvert['name']}引道积水点",
                "road": road.name,
                "max_depth_cm": int(rng.integers(35, 91)),
                "ponding_rain_mmh": rain,
                "danger_depth_cm": culvert["closure_depth_cm"],
                "notes": f"距涵洞约{abs(shift):.0f}米；雨强超过{rain:g}毫米/小时安排专人值守",
            }
        )
        geoms.append(point)
    ew, ns = streets[: len(EW_STREETS)], streets[len(EW_STREETS) : len(EW_STREETS) + len(NS_STREETS)]
    crossroads = [(a, b, p) for a in ew for b in ns for p in _points(a.line.intersection(b.line))]
    # Keep to crossroads well inside the district and away from the railway, so they do not echo the culverts.
    crossroads = [c for c in crossroads if c[2].distance(railway.line) > 200 and c[2].distance(boundary.exterior) > 300]
    for k in sorted(rng.choice(len(crossroads), 2, replace=False).tolist()):
        a, b, at = crossroads[k]
        point = _along(a.line, a.line.project(at) + rng.uniform(15, 40) * rng.choice([-1, 1]))
        records.append(
            {
                "name": f"{a.name}与{b.name}交叉口积水点",
                "road": a.name,
                "max_depth_cm": int(rng.integers(20, 51)),
                "ponding_rain_mmh": round(float(rng.uniform(30, 50)), 1),
                "danger_depth_cm": 40,
                "notes": "路口低洼，雨水口易堵，汛前清掏",
            }
        )
        geoms.append(point)
    phones = _phones(rng, len(records))
    for record, point, phone in zip(records, geoms, phones, strict=True):
        squad = SQUADS[int(regions.squad(point.x, point.y))]
        record.update(status="dry", duty_team=f"{squad}防汛值守组", contact_phone=phone)
    return records, geoms


def _along(line: LineString, distance: float) -> Point:
    """Return the point ``distance`` metres along a line, kept off its very ends."""
    return line.interpolate(float(np.clip(distance, 1.0, line.length - 1.0)))


def _heating_stations(rng: np.random.Generator, land: BaseGeometry) -> tuple[tuple[list[dict], list[Point]], list]:
    """Scatter 114 heat-exchange stations over the residential blocks; each serves its nearest estate.

    Returns the layer's records and points, and the estates as (name, x, y) for other layers to reuse.
    """
    centres = _scatter(rng, land, len(ESTATES), spacing=250)
    estates = [(f"{prefix}{rng.choice(ESTATE_KINDS)}", x, y) for prefix, (x, y) in zip(ESTATES, centres, strict=True)]
    xy = _scatter(rng, land, 114, spacing=60)
    served = [estates[i][0] for i in _nearest(xy, centres)]
    supply = np.array(["direct"] * 66 + ["transfer"] * 48)[rng.permutation(114)]
    phones = _phones(rng, 114)
    records = [
        {
            "name": name,
            "community": estate,
            "supply_type": str(kind),
            "converted_to_direct": True,  # every station is managed as direct supply after the 2023 conversion
            "status": "running",
            "operator_phone": phone,
        }
        for name, estate, kind, phone in zip(
            _numbered([(e, "换热站") for e in served]), served, supply, phones, strict=True
        )
    ]
    return (records, [Point(p) for p in xy]), estates


def _underground(
    rng: np.random.Generator, land: BaseGeometry, streets: list[Road], estates: list, heating: list[Point]
) -> tuple[list[dict], list[BaseGeometry]]:
    """Place 81 underground spaces in the blocks: garages under estates, malls under plazas, shelters and passages."""
    kinds = np.repeat(list(UNDERGROUND_KINDS), list(UNDERGROUND_KINDS.values()))[rng.permutation(81)]
    taken = np.array([(p.x, p.y) for p in heating])
    xy = _scatter(rng, land, 81, spacing=70, taken=taken)
    estate_names = [estates[i][0] for i in _nearest(xy, np.array([(x, y) for _, x, y in estates]))]
    stems, geoms, units = [], [], []
    for kind, (x, y), estate in zip(kinds, xy, estate_names, strict=True):
        geoms.append(_footprint(rng, land, str(kind), x, y))
        if kind == "garage":
            stems.append((estate, "地下车库"))
            units.append(f"{estate}物业服务中心")
        elif kind == "mall":
            stems.append((str(rng.choice(PLAZAS)), "地下商场"))
            units.append("")  # filled below, from the mall's own name
        elif kind == "passage":
            road = min(streets, key=lambda r: r.line.distance(Point(x, y)))
            stems.append((road.name, "地下通道"))
            units.append("区市政设施维护中心")
        elif kind == "shelter":
            stems.append((estate, "人防工程"))
            units.append("区人防办")
        else:
            stems.append((estate, "地下设备用房"))
            units.append(f"{estate}物业服务中心")
    names = _numbered(stems)
    entrances = {"garage": (1, 4), "mall": (2, 6), "passage": (2, 4), "shelter": (1, 3), "other": (1, 2)}
    contacts = _contacts(rng, 81)
    records = [
        {
            "name": name,
            "kind": str(kind),
            "entrances": int(rng.integers(entrances[kind][0], entrances[kind][1] + 1)),
            "barriers_fitted": bool(rng.random() < 0.8),
            "responsible_unit": unit or f"{name}管理处",
            "status": "open",
            "contact": contact,
        }
        for name, kind, unit, contact in zip(names, kinds, units, contacts, strict=True)
    ]
    return records, geoms


def _footprint(rng: np.random.Generator, land: BaseGeometry, kind: str, x: float, y: float) -> BaseGeometry:
    """Outline a space as a small rotated rectangle when it fits on the land; otherwise keep it a point."""
    if kind not in FOOTPRINTS or rng.random() < 0.5:
        return Point(x, y)
    w0, w1, h0, h1 = FOOTPRINTS[kind]
    width, height = rng.uniform(w0, w1), rng.uniform(h0, h1)
    angle = rng.choice([0.0, 90.0]) + rng.uniform(-8, 8)  # roughly square to the street grid
    for scale in (1.0, 0.5):
        box = shapely.box(-width * scale / 2, -height * scale / 2, width * scale / 2, height * scale / 2)
        rect = affinity.translate(affinity.rotate(box, angle, origin=(0, 0)), x, y)
        if land.contains(rect):
            return rect
    return Point(x, y)


# -- lines beside and on the streets ----------------------------------------------------------


def _backstreet_records(rng: np.random.Generator, lanes: list[LineString]) -> tuple[list[dict], list[LineString]]:
    """Describe the ten back-street lanes: eight repaired in 2023, two still under works by the housing bureau."""
    status = np.array(["repaired"] * 8 + ["under_works"] * 2)[rng.permutation(10)]
    repaired_by = iter(rng.permutation(["urban_management"] * 6 + ["housing"] * 2).tolist())
    dates = iter(_dates(rng, "2023-04-01", "2023-10-27", 8))
    records = []
    for name, lane, state in zip(LANES, lanes, status, strict=True):
        done = state == "repaired"
        width = rng.uniform(3.5, 6.0)
        records.append(
            {
                "road_name": name,
                "repaired_area_m2": round(lane.length * width, 1) if done else None,
                "agency": next(repaired_by) if done else "housing",
                "status": str(state),
                "completed_on": next(dates) if done else None,
            }
        )
    return records, lanes


def _hoarding_plan(rng: np.random.Generator) -> list[tuple[str, str, str]]:
    """List the 43 sites' (status, agency, district) in the report's breakdown, plus the three pending ones."""
    plan = [("removed", "urban_management", "local")] * 19 + [("removed", "housing", "local")] * 9
    plan += [("under_construction", "housing", "local")] * 9
    plan += [("in_progress", str(rng.choice(["urban_management", "housing"])), "xinhua") for _ in range(3)]
    plan += [("pending", str(rng.choice(["urban_management", "housing"])), "local") for _ in range(3)]
    return [plan[i] for i in rng.permutation(len(plan))]


def _hoardings(
    rng: np.random.Generator, boundary: Polygon, streets: list[Road], roads_union: BaseGeometry, lanes: list
) -> tuple[list[dict], list[BaseGeometry]]:
    """Place the 43 hoardings beside streets (8-25 m off the centreline) with the report's status breakdown."""
    inner = boundary.buffer(-ROAD_MARGIN)
    shapely.prepare(inner)
    lanes_union = shapely.union_all(lanes)
    weights = np.array([r.line.length for r in streets])
    weights /= weights.sum()
    records, geoms, taken = [], [], []
    numbering: Counter = Counter()
    for status, agency, district in _hoarding_plan(rng):
        for _ in range(5_000):
            road = streets[rng.choice(len(streets), p=weights)]
            geom = _hoarding_shape(rng, road.line)
            if (
                geom is not None
                and inner.contains(geom)
                and roads_union.distance(geom) >= 7.5  # no other road, railway included, comes closer
                and lanes_union.distance(geom) >= 5
                and all(geom.distance(other) > 15 for other in taken)
                # Xinhua's sites lie along the shared edge of the two districts.
                and (district != "xinhua" or boundary.exterior.distance(geom) < 300)
            ):
                break
        else:
            raise RuntimeError("could not place a construction hoarding")
        side = _side(road.line, geom)
        numbering[(road.name, side)] += 1
        site = f"{road.name}{side}{numbering[(road.name, side)]}号围挡"
        taken.append(geom)
        geoms.append(geom)
        records.append(_hoarding_record(rng, site, status, agency, district))
    return records, geoms


def _due_dates(rng: np.random.Generator, hoardings: list[dict], backstreets: list[dict]) -> None:
    """Give the campaign's sites their target dates (整治期限), drawn last so that every other value stays as it was.

    The campaign's sites were due by the end of October or of December 2023; a site still under
    construction has no date (it is removed when the building works end). The back streets were due by
    31 October 2023. Sites not done by then are overdue on the progress page.
    """
    for record in hoardings:
        record["due_on"] = (
            None if record["status"] == "under_construction" else str(rng.choice(["2023-10-31", "2023-12-31"]))
        )
    for record in backstreets:
        record["due_on"] = "2023-10-31"


def _hoarding_shape(rng: np.random.Generator, line: LineString) -> BaseGeometry | None:
    """Draw a hoarding parallel to a stretch of street: a fence line, or a strip-shaped site behind it."""
    length = rng.uniform(40, 250)
    if line.length < length + 20:
        return None
    start = rng.uniform(10, line.length - length - 10)
    stretch = ops.substring(line, start, start + length)
    gap = rng.uniform(8, 20) * rng.choice([-1, 1])  # positive offsets lie left of the street's direction
    if rng.random() < 0.4:
        geom = stretch.offset_curve(gap)
    else:
        depth = rng.uniform(8, 30)
        middle = stretch.offset_curve(gap + np.sign(gap) * depth / 2)
        geom = middle.buffer(depth / 2, cap_style="flat") if middle.geom_type == "LineString" else None
    if geom is None or geom.geom_type not in ("LineString", "Polygon") or not geom.is_valid:
        return None
    return geom


def _side(line: LineString, geom: BaseGeometry) -> str:
    """Name the side of a street a feature is on: 北侧/南侧 for west-east streets, 东侧/西侧 for south-north ones."""
    here = geom.centroid
    foot = line.interpolate(line.project(here))
    minx, miny, maxx, maxy = line.bounds
    if maxx - minx >= maxy - miny:
        return "北侧" if here.y > foot.y else "南侧"
    return "东侧" if here.x > foot.x else "西侧"


def _hoarding_record(rng: np.random.Generator, site: str, status: str, agency: str, district: str) -> dict:
    """Fill one hoarding's attributes for its status: removal date and treatment, contractor and notes."""
    removed = status == "removed"
    notes = {
        "removed": "拆除后已验收",
        "under_construction": "项目在建，围挡已规范设置",
        "in_progress": "位于与新华区交界处，由新华区负责整治",
        "pending": "工作报告未列明，演示数据中设为待整治",
    }
    return {
        "site": site,
        "agency": agency,
        "district": district,
        "status": status,
        "removed_on": _dates(rng, "2023-03-01", "2023-10-31", 1)[0] if removed else None,
        "treatment": str(rng.choice(["levelled", "greened"], p=[0.6, 0.4])) if removed else None,
        "contractor": str(rng.choice(CONTRACTORS)) if rng.random() < 0.6 else None,
        "notes": notes[status] if status != "removed" or rng.random() < 0.3 else None,
    }


def _manholes(rng: np.random.Generator, streets: list[Road]) -> tuple[list[dict], list[Point]]:
    """Spread 950 manhole covers along every street (not the railway): 886 fixed in 2023, 64 still to fix."""
    total = 950
    counts = _apportion(total, np.array([r.line.length for r in streets]))
    kinds = list(MANHOLE_KINDS)
    shares = np.array([share for _, share in MANHOLE_KINDS.values()])
    to_fix = set(rng.permutation(total)[:64].tolist())
    fixed_dates = iter(_dates(rng, "2023-01-05", "2023-10-27", total - len(to_fix)))
    serials: Counter = Counter()
    records, geoms = [], []
    for road, count in zip(streets, counts, strict=True):
        for point in _on_line(rng, road.line, count):
            n = len(records)
            kind = kinds[rng.choice(len(kinds), p=shares)]
            serials[kind] += 1
            broken = n in to_fix
            records.append(
                {
                    # admin code + class 01 (public utilities) + subclass by kind + serial within the subclass
                    "code": f"{ADMIN_CODE}01{MANHOLE_KINDS[kind][0]}{serials[kind]:06d}",
                    "kind": kind,
                    "road": road.name,
                    "defect": str(rng.choice(["detached", "subsided", "corroded"], p=[0.3, 0.45, 0.25]))
                    if broken
                    else "none",
                    "status": "to_fix" if broken else "fixed",
                    "fixed_on": None if broken else next(fixed_dates),
                }
            )
            geoms.append(point)
    return records, geoms


def _on_line(rng: np.random.Generator, line: LineString, count: int) -> list[Point]:
    """Scatter points along a centreline, each up to 1.5 m to one side as covers sit in the carriageway."""
    along = np.sort(rng.uniform(2, line.length - 2, count))
    here = shapely.line_interpolate_point(line, along)
    ahead = shapely.line_interpolate_point(line, along + 1.0)
    hx, hy = shapely.get_x(here), shapely.get_y(here)
    dx, dy = shapely.get_x(ahead) - hx, shapely.get_y(ahead) - hy
    norm = np.hypot(dx, dy)
    side = rng.uniform(-1.5, 1.5, count)
    return [Point(p) for p in np.column_stack([hx - dy / norm * side, hy + dx / norm * side])]


# -- flood-emergency resources and rain gauges ------------------------------------------------


def _emergency_resources(
    rng: np.random.Generator,
    boundary: Polygon,
    streets: list[Road],
    railway: Road,
    culverts: tuple[list[dict], list[Point]],
    waterlogging: tuple[list[dict], list[Point]],
    regions: Regions,
    land: BaseGeometry,
    buildings: list[BaseGeometry],
) -> tuple[list[dict], list[Point]]:
    """Place the 24 resources the flood commander sends, near the underpasses and waterlogging points they serve.

    Six pump trucks, one at each squad's base on a street near a flood spot of its area; four fixed pump
    stations beside underpasses, rated as the culvert's own pump; a duty post at each waterlogging point;
    a material depot and a rescue squad for each street office and one of each for the whole district.
    A few are deployed or out of service, so that the nearest resource is not always one that can be sent.
    """
    inner = boundary.buffer(-ROAD_MARGIN)
    shapely.prepare(inner)
    by_name = {road.name: road for road in streets}
    streets_union = shapely.union_all([road.line for road in streets])
    entries: list[tuple[dict, Point]] = []

    def clear(point: Point, railway_gap: float, gap: float) -> bool:
        return (
            inner.contains(point)
            and railway.line.distance(point) >= railway_gap
            and all(point.distance(other) >= gap for _, other in entries)
        )

    # Fixed pump stations beside four underpasses whose pump is rated 500 m3/h or more (the strongest, if fewer).
    rated = np.array([record["pump_capacity_m3h"] for record in culverts[0]])
    order = sorted(rng.permutation(len(rated)).tolist(), key=lambda i: rated[i] < 500)
    for i in sorted(order[:4]):
        culvert, at = culverts[0][i], culverts[1][i]
        line = by_name[culvert["road"]].line
        # A building, 15 m or more from every centreline like the others (so clear of the waterlogging points too).
        point = _beside_road(
            rng, line, at, (20, 50), (16, 25), lambda p: clear(p, 15, 10) and streets_union.distance(p) >= 15
        )
        record = {"name": f"{culvert['name']}泵站", "kind": "pump_station", "capacity": culvert["pump_capacity_m3h"]}
        entries.append(({**record, "capacity_unit": "m3h", "unit": PUMP_STATION_UNIT}, point))
    # A duty post on the pavement at each waterlogging point, kept by the point's own duty team.
    for spot, at in zip(*waterlogging, strict=True):
        line = by_name[spot["road"]].line
        point = _beside_road(rng, line, at, (0, 10), (6, 10), lambda p: clear(p, 8, 10))
        record = {"name": f"{spot['name'].removesuffix('积水点')}值守点", "kind": "duty_post"}
        record |= {"capacity": float(rng.integers(2, 7)), "capacity_unit": "people", "unit": spot["duty_team"]}
        entries.append((record, point))
    # Pump trucks at the squads' bases: on a street 100-300 m from the flood spot nearest the middle of each squad.
    spots = [(r["road"], p) for r, p in zip(*culverts, strict=True)]
    spots += [(r["road"], p) for r, p in zip(*waterlogging, strict=True)]
    centres = _region_centres(boundary, regions.squad, len(SQUADS))
    used: set[int] = set()
    for q, squad in enumerate(SQUADS):
        free = [k for k in range(len(spots)) if k not in used]
        mine = [k for k in free if regions.squad(spots[k][1].x, spots[k][1].y) == q] or free
        k = min(mine, key=lambda k: spots[k][1].distance(Point(centres[q])))
        used.add(k)
        road, at = spots[k]
        point = _beside_road(rng, by_name[road].line, at, (100, 300), (8, 12), lambda p: clear(p, 20, 30))
        record = {"name": f"{squad}驻点移动泵车", "kind": "pump_truck", "capacity": float(rng.choice(PUMP_TRUCK_M3H))}
        entries.append(({**record, "capacity_unit": "m3h", "unit": DRAINAGE_UNIT}, point))
    # Depots and rescue squads in the blocks, on a street front, one of each per street office and for the district.
    offices = _region_centres(boundary, regions.street, len(STREET_OFFICES))
    for s, office in [*enumerate(STREET_OFFICES), (None, "区")]:
        centre = np.zeros(2) if s is None else offices[s]
        for kind in ("depot", "squad"):
            for _ in range(5_000):
                point = Point(centre + rng.normal(0, 250, 2))
                if (
                    land.contains(point)
                    and streets_union.distance(point) <= 60
                    and (s is None or regions.street(point.x, point.y) == s)
                    and all(point.distance(b) >= 25 for b in buildings)
                    and clear(point, RAILWAY_CLEARANCE, 100)
                ):
                    break
            else:
                raise RuntimeError(f"could not place the {kind} of {office}")
            if kind == "depot":
                name = "区防汛物资中心仓库" if s is None else f"{office}防汛物资仓库"
                capacity, per = (5000.0 if s is None else float(rng.choice(DEPOT_BAGS))), "bags"
            else:
                name = "区城管局防汛抢险突击队" if s is None else f"{office}防汛抢险队"
                capacity, per = float(rng.integers(30, 41) if s is None else rng.integers(10, 26)), "people"
            unit = BUREAU_UNIT if s is None else f"{office}办事处"
            record = {"name": name, "kind": kind, "capacity": capacity, "capacity_unit": per, "unit": unit}
            entries.append((record, point))
    records = [record for record, _ in entries]
    _resource_states(rng, records)
    for record, contact in zip(records, _contacts(rng, len(records)), strict=True):
        person, phone = contact.split(" ")
        record.update(contact=person, contact_phone=phone)
    return records, [point for _, point in entries]


def _resource_states(rng: np.random.Generator, records: list[dict]) -> None:
    """Deploy two pump trucks and a street office's rescue squad; put a pump truck and a pump station under repair."""
    for record in records:
        record["state"] = "available"
    trucks = [r for r in records if r["kind"] == "pump_truck"]
    stations = [r for r in records if r["kind"] == "pump_station"]
    squads = [r for r in records if r["kind"] == "squad" and r["unit"] != BUREAU_UNIT]
    picked = rng.permutation(len(trucks))
    trucks[picked[0]]["state"] = "out_of_service"
    for i in picked[1:3]:
        trucks[i]["state"] = "deployed"
    stations[rng.integers(len(stations))]["state"] = "out_of_service"
    squads[rng.integers(len(squads))]["state"] = "deployed"


def _beside_road(
    rng: np.random.Generator,
    line: LineString,
    at: Point,
    shift: tuple[float, float],
    offset: tuple[float, float],
    accept,
) -> Point:
    """Find a point ``shift`` metres along a street from ``at`` and ``offset`` metres aside that ``accept`` takes."""
    for _ in range(200):
        along = line.project(at) + rng.uniform(*shift) * rng.choice([-1, 1])
        point = _offset_point(line, along, rng.uniform(*offset) * rng.choice([-1, 1]))
        if accept(point):
            return point
    raise RuntimeError("could not place a resource beside the street")


def _offset_point(line: LineString, distance: float, offset: float) -> Point:
    """Return the point ``distance`` metres along a line and ``offset`` metres to its left (right when negative)."""
    distance = float(np.clip(distance, 1.0, line.length - 2.0))
    here, ahead = line.interpolate(distance), line.interpolate(distance + 1.0)
    dx, dy = ahead.x - here.x, ahead.y - here.y
    norm = np.hypot(dx, dy)
    return Point(here.x - dy / norm * offset, here.y + dx / norm * offset)


def _region_centres(boundary: Polygon, label, n: int) -> np.ndarray:
    """Return the centre of each of ``n`` regions, ``label(x, y)`` telling the region of a point, from a 50 m sample."""
    minx, miny, maxx, maxy = boundary.bounds
    gx, gy = np.meshgrid(np.arange(minx, maxx, 50.0), np.arange(miny, maxy, 50.0))
    x, y = gx.ravel(), gy.ravel()
    inside = shapely.contains_xy(boundary, x, y)
    x, y = x[inside], y[inside]
    labels = label(x, y)
    return np.array([(x[labels == k].mean(), y[labels == k].mean()) for k in range(n)])


def _rain_gauges(
    rng: np.random.Generator, land: BaseGeometry, regions: Regions, buildings: list[BaseGeometry]
) -> tuple[list[dict], list[Point]]:
    """Set eight rain gauges over the district: a 3 x 3 grid less one corner, each up to 200 m off its node.

    They stand in open ground inside the blocks, clear of the streets and of the buildings, and are named
    after their community; codes RG-01 to RG-08 read from north-west to south-east. Two are manual.
    """
    dx, dy = GAUGE_GRID
    nodes = [(x, y) for y in (dy, 0.0, -dy) for x in (-dx, 0.0, dx)]  # north row first, like text
    dropped = int(rng.choice([0, 2, 6, 8]))
    points = []
    for node in [n for i, n in enumerate(nodes) if i != dropped]:
        for _ in range(1_000):
            point = Point(np.array(node) + rng.uniform(-200, 200, 2))
            if land.contains(point) and all(point.distance(b) >= 20 for b in buildings):
                points.append(point)
                break
        else:
            raise RuntimeError("could not place a rain gauge")
    communities = [COMMUNITIES[int(regions.street(p.x, p.y))][int(regions.community(p.x, p.y))] for p in points]
    names = _numbered([(community, "雨量站") for community in communities])
    manual = set(rng.choice(len(points), 2, replace=False).tolist())
    phones = _phones(rng, len(points))
    records = [
        {
            "name": name,
            "code": f"RG-{n + 1:02d}",
            "kind": "manual" if n in manual else "automatic",
            "operator_phone": phone,
        }
        for n, (name, phone) in enumerate(zip(names, phones, strict=True))
    ]
    return records, points


# -- grid -------------------------------------------------------------------------------------


def _grid_cells(boundary: Polygon, regions: Regions) -> tuple[list[dict], list[Polygon]]:
    """Cut the district into 100 m unit grid cells (GB/T 30428), coded street-community-serial."""
    minx, miny, maxx, maxy = (np.floor(np.array(boundary.bounds) / 100) * 100).tolist()
    xs = np.arange(minx, maxx + 100, 100)
    ys = np.arange(maxy, miny - 100, -100)  # north to south, so serials read like text
    gx, gy = np.meshgrid(xs, ys)
    boxes = shapely.box(gx.ravel(), gy.ravel(), gx.ravel() + 100, gy.ravel() + 100)
    cells = [_largest_polygon(c) for c in shapely.intersection(boxes, boundary)]
    cells = [c for c in cells if c is not None and c.area >= 100]  # slivers along the edge are not cells
    centres = shapely.centroid(np.array(cells, dtype=object))
    cx, cy = shapely.get_x(centres), shapely.get_y(centres)
    street, community, squad = regions.street(cx, cy), regions.community(cx, cy), regions.squad(cx, cy)
    serials: Counter = Counter()
    records = []
    for s, c, q in zip(street.tolist(), community.tolist(), squad.tolist(), strict=True):
        serials[(s, c)] += 1
        records.append(
            {
                "code": f"{ADMIN_CODE}{s + 1:03d}{c + 1:03d}{serials[(s, c)]:04d}",
                "community": COMMUNITIES[s][c],
                "squad": SQUADS[q],
            }
        )
    return records, cells


def _largest_polygon(geom: BaseGeometry) -> Polygon | None:
    """Return the largest polygon in a clipping result, or None when it has no area."""
    parts = [g for g in getattr(geom, "geoms", [geom]) if g.geom_type == "Polygon" and not g.is_empty]
    return max(parts, key=lambda g: g.area) if parts else None


# -- small helpers ----------------------------------------------------------------------------


def _scatter(
    rng: np.random.Generator, area: BaseGeometry, n: int, spacing: float, taken: np.ndarray | None = None
) -> np.ndarray:
    """Scatter ``n`` points over ``area``, each at least ``spacing`` metres from the others and from ``taken``."""
    minx, miny, maxx, maxy = area.bounds
    chosen = np.empty((0, 2)) if taken is None else np.asarray(taken, dtype=float)
    start = len(chosen)
    for _ in range(50):
        xy = rng.uniform((minx, miny), (maxx, maxy), size=(8 * n, 2))
        for p in xy[shapely.contains_xy(area, xy[:, 0], xy[:, 1])]:
            if not len(chosen) or np.hypot(*(chosen - p).T).min() >= spacing:
                chosen = np.vstack([chosen, p])
                if len(chosen) - start == n:
                    return chosen[start:]
    raise RuntimeError(f"could not scatter {n} points {spacing} m apart")


def _nearest(xy: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Index of the nearest centre for each point."""
    return np.hypot(xy[:, None, 0] - centres[None, :, 0], xy[:, None, 1] - centres[None, :, 1]).argmin(axis=1)


def _apportion(total: int, weights: np.ndarray) -> np.ndarray:
    """Split ``total`` in proportion to ``weights`` by largest remainder, so that the parts add up exactly."""
    exact = total * weights / weights.sum()
    counts = np.floor(exact).astype(int)
    remainders = np.argsort(-(exact - counts), kind="stable")
    counts[remainders[: total - counts.sum()]] += 1
    return counts


def _numbered(stems: list[tuple[str, str]]) -> list[str]:
    """Join (place, thing) pairs into names, numbering a place's things when it has several: 锦华小区2号换热站."""
    totals = Counter(stems)
    seen: Counter = Counter()
    names = []
    for place, thing in stems:
        seen[(place, thing)] += 1
        number = f"{seen[(place, thing)]}号" if totals[(place, thing)] > 1 else ""
        names.append(f"{place}{number}{thing}")
    return names


def _dates(rng: np.random.Generator, first: str, last: str, n: int) -> list[str]:
    """Draw ``n`` ISO dates uniformly from ``first`` to ``last`` inclusive."""
    start = np.datetime64(first, "D")
    days = rng.integers(0, int((np.datetime64(last, "D") - start).astype(int)) + 1, n)
    return [str(start + int(d)) for d in days]


def _phones(rng: np.random.Generator, n: int) -> list[str]:
    """Invent ``n`` phone numbers behind the unassigned prefix 0000, so that none reaches a real line."""
    return [f"0000-{int(d):07d}" for d in rng.integers(0, 10**7, n)]


def _contacts(rng: np.random.Generator, n: int) -> list[str]:
    """Invent ``n`` contacts as surname, title and phone number."""
    return [f"{rng.choice(SURNAMES)}{rng.choice(TITLES)} {phone}" for phone in _phones(rng, n)]
