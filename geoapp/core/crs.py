"""Coordinate systems: the stored CRS, the metric CRS for distances and areas, and transformers.

Geometry is stored in WGS84 longitude/latitude (treated as identical to CGCS2000 for mapping).
Anything in metres (distances, buffers, lengths, areas) is computed in a projected CRS: the
CGCS2000 3-degree Gauss-Kruger zone that holds the district inside China, an estimated UTM zone
elsewhere.

The coordinate systems data arrives in and leaves in (imports, exports, OGC API) are
:class:`CoordSystem` values from :func:`parse_crs` or :func:`crs_from_wkt`: any EPSG geographic or
projected 2D CRS PROJ knows (WGS84, CGCS2000 and its Gauss-Kruger zones, Xian 1980, Beijing 1954,
UTM ...), OGC's CRS84, and GCJ-02 and BD-09 (not in PROJ; see :mod:`geoapp.core.chinacoords`).
:func:`to_storage`, :func:`from_storage` and :func:`xy_to_storage` convert between them and the
stored lon/lat, vectorised.
"""

from __future__ import annotations

import functools
import re
import threading
from dataclasses import dataclass

import numpy as np
import shapely
from pyproj import CRS, Transformer
from pyproj.aoi import AreaOfInterest
from pyproj.database import query_utm_crs_info
from pyproj.exceptions import CRSError
from pyproj.transformer import TransformerGroup

from geoapp.core import chinacoords
from geoapp.errors import InvalidParameter

STORAGE_CRS = "EPSG:4326"
STORAGE_SRS_ID = 4326

_local = threading.local()
_pipelines: dict[tuple[str, str], str] = {}
_pipelines_lock = threading.Lock()


def metric_crs(lon: float, lat: float) -> str:
    """Choose a projected CRS in metres for work around ``(lon, lat)``.

    Inside China's CGCS2000 Gauss-Kruger range this is the 3-degree zone whose central meridian
    is nearest (EPSG:4534 for 75E up to EPSG:4554 for 135E; EPSG:4547 for 114E); elsewhere the
    UTM zone pyproj estimates for the point.
    """
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise ValueError(f"lon/lat out of range: {lon}, {lat}")
    if 73.5 <= lon <= 136.5 and 3 <= lat <= 54:
        return f"EPSG:{4534 + round((lon - 75) / 3)}"
    infos = query_utm_crs_info(datum_name="WGS 84", area_of_interest=AreaOfInterest(lon, lat, lon, lat), contains=True)
    if not infos:
        raise ValueError(f"no UTM zone found for {lon}, {lat}")
    return f"{infos[0].auth_name}:{infos[0].code}"


def transformer(src: str, dst: str) -> Transformer:
    """A cached ``always_xy`` transformer for this thread (pyproj transformers are not thread-safe).

    Resolving two CRSs into an operation takes PROJ tens of milliseconds; it is done once per
    process, and each thread builds its own transformer from the resulting pipeline in well under
    a millisecond (a server's pooled threads would otherwise each pay on their first edit).
    """
    cache = _local.__dict__.setdefault("transformers", {})
    key = (src, dst)
    if key not in cache:
        with _pipelines_lock:
            definition = _pipelines.get(key)
            if definition is None:
                definition = _pipelines[key] = _pipeline(src, dst)
        cache[key] = Transformer.from_pipeline(definition)
    return cache[key]


def _pipeline(src: str, dst: str) -> str:
    """The PROJ pipeline from ``src`` to ``dst`` (x/y order)."""
    return _operation(src, dst)[0]


def _operation(src: str, dst: str) -> tuple[str, bool]:
    """The PROJ pipeline from ``src`` to ``dst`` (x/y order), and whether it leaves out the datum shift.

    Where PROJ knows several operations, each for its own region (Beijing 1954 -> WGS84 has
    Helmert parameters for a few oil basins and the sea, and none elsewhere), it only picks one
    point by point when transforming, which moves points across a region's edge by tens of metres
    and has no single pipeline. Then the one operation valid everywhere (PROJ's "ballpark": the
    datum shift left out, see :attr:`CoordSystem.note`) is taken, the same for every point.
    """
    best = Transformer.from_crs(CRS(src), CRS(dst), always_xy=True)
    if best.definition.startswith(("proj=", "+proj=")):
        return best.definition, "Ballpark" in best.description
    group = TransformerGroup(CRS(src), CRS(dst), always_xy=True)
    for candidate in group.transformers:
        if "Ballpark" in candidate.description:
            return candidate.definition, True
    if group.transformers:
        return group.transformers[0].definition, "Ballpark" in group.transformers[0].description
    raise ValueError(f"PROJ has no transformation from {src} to {dst}")


def project(geoms, src: str, dst: str):
    """Transform a shapely geometry or array of geometries from ``src`` to ``dst``."""
    tr = transformer(src, dst)

    def _xy(coords: np.ndarray) -> np.ndarray:
        x, y = tr.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    return shapely.transform(geoms, _xy)


def lonlat_envelope(point, radius: float, metric: str) -> tuple[float, float, float, float] | None:
    """A lon/lat box holding the square of ``radius`` metres around a point of the metric CRS, or None where
    that CRS says nothing.

    The square's image is slightly curved; nine samples an edge and a 1 % pad hold it whole (every
    candidate inside is then measured exactly in metres).
    """
    steps = np.linspace(-1.0, 1.0, 9)
    ones = np.ones(9)
    xs = point.x + radius * np.concatenate([steps, steps, -ones, ones])
    ys = point.y + radius * np.concatenate([-ones, ones, steps, steps])
    lon, lat = transformer(metric, STORAGE_CRS).transform(xs, ys)
    if not (np.all(np.isfinite(lon)) and np.all(np.isfinite(lat))):
        return None
    pad_x = 0.01 * (lon.max() - lon.min()) + 1e-9
    pad_y = 0.01 * (lat.max() - lat.min()) + 1e-9
    return lon.min() - pad_x, lat.min() - pad_y, lon.max() + pad_x, lat.max() + pad_y


# --- coordinate systems of data coming in and going out -------------------------------------------------------

OGC_EPSG_URI = "http://www.opengis.net/def/crs/EPSG/0/{}"
CRS84_URI = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"

#: what parse_crs accepts, for error messages
ALLOWED = (
    "EPSG:n for a geographic or projected 2D CRS (EPSG:4326 WGS84, EPSG:4490 CGCS2000, EPSG:4513-4554 CGCS2000 "
    "3-degree Gauss-Kruger, EPSG:2349-2390 Xian 1980, EPSG:2401-2442 Beijing 1954, EPSG:326xx/327xx UTM), "
    "its OGC URI http://www.opengis.net/def/crs/EPSG/0/n, OGC:CRS84, gcj02 (Amap, Tencent) or bd09 (Baidu)"
)
ALLOWED_ZH = (
    "EPSG:n（二维地理或投影坐标系，如 EPSG:4326 WGS84、EPSG:4490 CGCS2000、EPSG:4513-4554 CGCS2000 三度带高斯-克吕格、"
    "EPSG:2349-2390 西安80、EPSG:2401-2442 北京54、EPSG:326xx/327xx UTM）、其 OGC URI "
    "http://www.opengis.net/def/crs/EPSG/0/n、OGC:CRS84、gcj02（高德、腾讯）或 bd09（百度）"
)


@dataclass(frozen=True)
class CoordSystem:
    """A coordinate system data can be read in or written out in.

    ``code`` is canonical ("EPSG:4547", "OGC:CRS84", "gcj02", "bd09") and is what
    :func:`parse_crs` gives back for itself. ``note`` (English) and ``note_zh`` (Chinese) are a
    caution about accuracy where the conversion to WGS84 leaves out a datum shift (Xian 1980,
    Beijing 1954: PROJ has no parameters valid across China), None otherwise; :meth:`note_in`
    picks one by language. ``lat_first`` says the CRS's own axis order is latitude/northing first
    (EPSG:4326, 4490, the Gauss-Kruger zones): everything here works in x/y (lon/lat,
    easting/northing) order regardless; it is for output that must follow the authority's order.
    """

    code: str
    name: str
    geographic: bool
    uri: str | None
    note: str | None = None
    note_zh: str | None = None
    lat_first: bool = False

    @property
    def epsg(self) -> int | None:
        """The EPSG number, None for CRS84, GCJ-02 and BD-09."""
        return int(self.code[5:]) if self.code.startswith("EPSG:") else None

    @property
    def is_storage(self) -> bool:
        """True where coordinates are the stored lon/lat as they are (WGS84, CRS84, CGCS2000)."""
        return self.code in _IDENTICAL

    def note_in(self, lang: str) -> str | None:
        """The accuracy caution in ``lang`` ("zh" or "en")."""
        return self.note_zh if lang == "zh" else self.note

    def __str__(self) -> str:
        return self.code


#: codes whose coordinates are the stored lon/lat unchanged (CGCS2000 is WGS84 to well under a metre for mapping)
_IDENTICAL = frozenset({STORAGE_CRS, "OGC:CRS84", "EPSG:4490"})

GCJ02 = CoordSystem("gcj02", "GCJ-02 (Amap, Tencent)", True, None)
BD09 = CoordSystem("bd09", "BD-09 (Baidu)", True, None)
CRS84 = CoordSystem("OGC:CRS84", "WGS 84 (CRS84, longitude/latitude)", True, CRS84_URI)

_CHINA_DATUMS = {
    "Xian 1980": ("Xian 1980", "西安80"),
    "Beijing 1954": ("Beijing 1954", "北京54"),
    "New Beijing": ("New Beijing", "新北京54"),
}

_ALIASES = {
    "gcj02": GCJ02,
    "gcj-02": GCJ02,
    "gcj_02": GCJ02,
    "amap": GCJ02,
    "bd09": BD09,
    "bd-09": BD09,
    "bd_09": BD09,
    "bd09ll": BD09,
    "baidu": BD09,
    "crs84": CRS84,
    "ogc:crs84": CRS84,
    "[ogc:crs84]": CRS84,
    CRS84_URI.lower(): CRS84,
    "https://www.opengis.net/def/crs/ogc/1.3/crs84": CRS84,
    "urn:ogc:def:crs:ogc:1.3:crs84": CRS84,
    "urn:ogc:def:crs:ogc::crs84": CRS84,
}
_ALIAS_EPSG = {"wgs84": 4326, "cgcs2000": 4490}

_EPSG_FORMS = (
    re.compile(r"^\[?epsg:(\d{1,9})\]?$"),
    re.compile(r"^https?://www\.opengis\.net/def/crs/epsg/0/(\d{1,9})$"),
    re.compile(r"^urn:ogc:def:crs:epsg:[0-9.]*:(\d{1,9})$"),
)


def _refuse(given: str, parameter: str, why_en: str, why_zh: str) -> InvalidParameter:
    shown = given if len(given) <= 80 else given[:77] + "..."
    en = f"{parameter}: {why_en} ({shown!r}); allowed: {ALLOWED}"
    zh = f"{parameter}：{why_zh}（{shown}）；可用：{ALLOWED_ZH}"
    return InvalidParameter(en, parameter=parameter, text=lambda lang: zh if lang == "zh" else en)


def parse_crs(text: str, parameter: str = "crs") -> CoordSystem:
    """The coordinate system named by ``text``.

    Parameters
    ----------
    text : str
        ``EPSG:n`` (any case, also ``[EPSG:n]``), the OGC URI ``http://www.opengis.net/def/crs/EPSG/0/n``
        or ``urn:ogc:def:crs:EPSG::n``, ``OGC:CRS84`` / ``CRS84`` / its URI, ``gcj02`` / ``GCJ-02``,
        ``bd09`` / ``BD-09``, ``wgs84``, ``cgcs2000``.
    parameter : str
        The name the caller knows the value by, for the error (``crs``, ``bbox-crs``, ``--crs``).

    Returns
    -------
    CoordSystem
        Equal for every spelling of one system; ``parse_crs(system.code) == system``.

    Raises
    ------
    InvalidParameter
        For anything else, an EPSG code PROJ does not know, or one that is not a geographic or
        projected 2D CRS (geocentric, vertical, 3D, compound), naming what was given and
        :data:`ALLOWED`, in English and Chinese.
    """
    if not isinstance(text, str) or not text.strip():
        raise _refuse(str(text or ""), parameter, "no coordinate system given", "未指定坐标系")
    key = text.strip().lower()
    if key in _ALIAS_EPSG:
        return _epsg(_ALIAS_EPSG[key], text, parameter)
    if key in _ALIASES:
        return _ALIASES[key]
    for form in _EPSG_FORMS:
        match = form.match(key)
        if match:
            return _epsg(int(match.group(1)), text, parameter)
    if key.isdigit():
        raise _refuse(text, parameter, f"a bare number; write EPSG:{int(key)}", f"只有数字，请写作 EPSG:{int(key)}")
    raise _refuse(text, parameter, "unknown coordinate system", "无法识别的坐标系")


def _epsg(number: int, given: str, parameter: str) -> CoordSystem:
    system = _epsg_system(number)
    if isinstance(system, tuple):
        raise _refuse(given, parameter, *system)
    return system


_KINDS_ZH = {
    "Geocentric CRS": "地心坐标系",
    "Geographic 3D CRS": "三维地理坐标系",
    "Vertical CRS": "高程坐标系",
    "Compound CRS": "复合坐标系",
    "Engineering CRS": "工程坐标系",
    "Temporal CRS": "时间坐标系",
    "Derived Projected CRS": "派生投影坐标系",
}


@functools.lru_cache(maxsize=512)
def _epsg_system(number: int) -> CoordSystem | tuple[str, str]:
    """The CoordSystem of an EPSG code, or (why not in English, in Chinese)."""
    try:
        crs = CRS.from_epsg(number)
    except CRSError:
        return f"EPSG:{number} is not in PROJ's EPSG database", f"PROJ 的 EPSG 库中没有 EPSG:{number}"
    kind = crs.type_name
    if kind not in ("Geographic 2D CRS", "Projected CRS") or len(crs.axis_info) != 2:
        return (
            f"EPSG:{number} ({crs.name}) is a {kind}, not a geographic or projected 2D CRS",
            f"EPSG:{number}（{crs.name}）是{_KINDS_ZH.get(kind, kind)}，不是二维地理或投影坐标系",
        )
    code = f"EPSG:{number}"
    first = crs.axis_info[0].direction.lower()
    note = note_zh = None
    geodetic = crs.geodetic_crs
    datum = geodetic.datum.name if geodetic is not None and geodetic.datum is not None else ""
    if code not in _IDENTICAL:
        try:
            definition, ballpark = _operation(code, STORAGE_CRS)
        except (CRSError, ValueError):
            return f"PROJ cannot convert EPSG:{number} to WGS84", f"PROJ 无法将 EPSG:{number} 转换为 WGS84"
        with _pipelines_lock:
            _pipelines.setdefault((code, STORAGE_CRS), definition)
        if datum in _CHINA_DATUMS:
            en_name, zh_name = _CHINA_DATUMS[datum]
            note = (
                f"{en_name} coordinates are converted to WGS84 without a datum shift (PROJ has no parameters valid "
                "across China): positions can be off by tens of metres or more. Prefer data in CGCS2000, or convert "
                "it with the surveyor's local parameters first."
            )
            note_zh = (
                f"{zh_name}坐标转换为 WGS84 时未做基准转换（PROJ 没有适用于全国的转换参数），"
                "位置可能偏差数十米甚至更多；请尽量使用 CGCS2000 数据，或先用测绘单位提供的本地参数转换。"
            )
        elif ballpark and "World Geodetic System 1984" not in datum and datum != "China 2000":
            note = (
                f"PROJ converts {crs.name} to WGS84 without a datum shift: positions can be off by tens of metres or "
                "more."
            )
            note_zh = f"PROJ 将 {crs.name} 转换为 WGS84 时未做基准转换，位置可能偏差数十米甚至更多。"
    return CoordSystem(
        code=code,
        name=crs.name,
        geographic=crs.is_geographic,
        uri=OGC_EPSG_URI.format(number),
        note=note,
        note_zh=note_zh,
        lat_first=first in ("north", "south"),
    )


def crs_from_wkt(wkt: str, parameter: str = "crs") -> CoordSystem:
    """The coordinate system a WKT (a Shapefile's .prj, ESRI or OGC flavour) describes, identified by its EPSG code.

    A WKT PROJ cannot read, or one that matches no EPSG code closely enough to be sure, is
    refused naming what it says (its name), so the caller can ask for ``--crs``.
    """
    text = (wkt or "").strip()
    if not text:
        raise _refuse("", parameter, "the projection file is empty", "投影文件（.prj）为空")
    try:
        crs = CRS.from_user_input(text)
    except CRSError:
        raise _refuse(text, parameter, "the projection (.prj) cannot be read", "无法读取投影文件（.prj）") from None
    if crs.is_geographic and crs.name in ("WGS 84 (CRS84)",):
        return CRS84
    number = crs.to_epsg(min_confidence=70)
    if number is None:
        found = crs.to_epsg(min_confidence=25)
        hint_en = f"; closest is EPSG:{found}, give it with --crs if that is right" if found else ""
        hint_zh = f"；最接近的是 EPSG:{found}，如确认无误请用 --crs 指定" if found else ""
        raise _refuse(
            crs.name,
            parameter,
            f"the projection file names a CRS with no certain EPSG code{hint_en}",
            f"投影文件中的坐标系无法确定对应的 EPSG 代码{hint_zh}",
        )
    return _epsg(number, crs.name, parameter)


# --- conversions ----------------------------------------------------------------------------------------------


def xy_to_storage(x, y, crs: CoordSystem) -> tuple[np.ndarray, np.ndarray]:
    """Columns of x/y in ``crs`` to the stored lon/lat (WGS84).

    Parameters
    ----------
    x, y : array-like of float
        Longitude/latitude or easting/northing, in that order whatever the authority's axis
        order; NaN stays NaN.
    crs : CoordSystem

    Returns
    -------
    lon, lat : numpy.ndarray
        New float arrays of the same shape (vectorised: 100,000 GCJ-02 points in about 0.15 s).
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if crs.is_storage:
        return x.copy(), y.copy()
    if crs.code == "gcj02":
        return chinacoords.gcj02_to_wgs84(x, y)
    if crs.code == "bd09":
        return chinacoords.bd09_to_wgs84(x, y)
    lon, lat = transformer(crs.code, STORAGE_CRS).transform(x, y)
    return np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)


def xy_from_storage(lon, lat, crs: CoordSystem) -> tuple[np.ndarray, np.ndarray]:
    """Stored lon/lat -> x/y in ``crs`` (lon/lat or easting/northing order), as float arrays."""
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    if crs.is_storage:
        return lon.copy(), lat.copy()
    if crs.code == "gcj02":
        return chinacoords.wgs84_to_gcj02(lon, lat)
    if crs.code == "bd09":
        return chinacoords.wgs84_to_bd09(lon, lat)
    x, y = transformer(STORAGE_CRS, crs.code).transform(lon, lat)
    return np.asarray(x, dtype=float), np.asarray(y, dtype=float)


def _apply(geoms, convert):
    def _xy(coords: np.ndarray) -> np.ndarray:
        x, y = convert(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    return shapely.transform(geoms, _xy)


def to_storage(geoms, crs: CoordSystem):
    """A shapely geometry or array of them from ``crs`` into the stored EPSG:4326 lon/lat.

    Parameters
    ----------
    geoms : shapely.Geometry or numpy.ndarray of them (None allowed)
        Coordinates in x/y order (lon/lat, easting/northing).
    crs : CoordSystem

    Returns
    -------
    The same shape of geometries, converted ones 2D (a Z is dropped, as :func:`project` does);
    ``geoms`` itself, untouched, where ``crs`` is the stored lon/lat (EPSG:4326, CRS84, CGCS2000).
    """
    if crs.is_storage:
        return geoms
    return _apply(geoms, lambda x, y: xy_to_storage(x, y, crs))


def from_storage(geoms, crs: CoordSystem):
    """A shapely geometry or array of them from the stored lon/lat into ``crs`` (x/y order; GCJ-02 and BD-09 too)."""
    if crs.is_storage:
        return geoms
    return _apply(geoms, lambda x, y: xy_from_storage(x, y, crs))


# --- what a pair of numbers looks like ------------------------------------------------------------------------


#: what :func:`coordinate_kind` tells apart
KINDS = (
    "lonlat",  # longitude/latitude in degrees, in China's range
    "latlon",  # the same swapped
    "lonlat_abroad",  # degrees, outside China
    "latlon_abroad",  # degrees swapped, outside China
    "gk3_zone",  # 3-degree Gauss-Kruger easting with its zone prefix (25..45)
    "gk6_zone",  # 6-degree Gauss-Kruger easting with its zone prefix (13..23)
    "transverse_mercator",  # Gauss-Kruger or UTM easting without prefix (central meridian unknown)
    "web_mercator",  # EPSG:3857 metres over China
)


def coordinate_kind(x: float, y: float) -> tuple[str, int | None] | None:
    """What a pair of numbers looks like: one of :data:`KINDS` and the zone prefix where there is one, or None.

    Parameters
    ----------
    x, y : float
        The first and second number of a position as a file gives them.

    Returns
    -------
    (kind, zone) or None
        ``zone`` is the Gauss-Kruger zone number read from the easting's prefix for ``gk3_zone``
        and ``gk6_zone``, None otherwise. Never a CRS to act on: the words name the likely
        system so that a person can give one.
    """
    try:
        x = float(x)
        y = float(y)
    except (TypeError, ValueError):
        return None
    if not (np.isfinite(x) and np.isfinite(y)):
        return None
    if 73 <= x <= 136 and 3 <= y <= 54:
        return "lonlat", None
    if 73 <= y <= 136 and 3 <= x <= 54:
        return "latlon", None
    if -180 <= x <= 180 and -90 <= y <= 90:
        return "lonlat_abroad", None
    if -90 <= x <= 90 and -180 <= y <= 180:
        return "latlon_abroad", None
    zone, easting = divmod(x, 1_000_000)
    zone = int(zone)
    if 0 < y < 6_500_000 and 50_000 <= easting <= 950_000:
        if 25 <= zone <= 45:
            return "gk3_zone", zone
        if 13 <= zone <= 23:
            return "gk6_zone", zone
        if zone == 0 and 100_000 <= x <= 900_000 and 300_000 <= y <= 6_200_000:
            return "transverse_mercator", None
    if _looks_mercator(x, y):
        return "web_mercator", None
    return None


def describe_coordinates(x: float, y: float, lang: str = "en") -> str | None:
    """What a pair of numbers looks like, in words for an error about a missing or implausible CRS, or None.

    See :func:`coordinate_kind`; ``lang`` is "en" or "zh". The English words of the first kinds
    are fixed: "longitude/latitude in degrees", "latitude/longitude (swapped)".
    """
    found = coordinate_kind(x, y)
    if found is None:
        return None
    kind, zone = found
    zh = lang == "zh"
    if kind == "gk3_zone":
        cgcs, xian, beijing = 4513 + zone - 25, 2349 + zone - 25, 2401 + zone - 25
        if zh:
            return (
                f"带带号 {zone} 的三度带高斯-克吕格坐标（CGCS2000 为 EPSG:{cgcs}；"
                f"西安80 为 EPSG:{xian}，北京54 为 EPSG:{beijing}）"
            )
        return (
            f"CGCS2000 3-degree Gauss-Kruger with zone prefix {zone} (EPSG:{cgcs}; "
            f"Xian 1980 EPSG:{xian}, Beijing 1954 EPSG:{beijing})"
        )
    if kind == "gk6_zone":
        cgcs = 4491 + zone - 13
        mercator = _looks_mercator(float(x), float(y))
        if zh:
            return f"带带号 {zone} 的六度带高斯-克吕格坐标（CGCS2000 为 EPSG:{cgcs}）" + (
                "，或 Web 墨卡托（EPSG:3857）" if mercator else ""
            )
        return f"CGCS2000 6-degree Gauss-Kruger with zone prefix {zone} (EPSG:{cgcs})" + (
            " or Web Mercator (EPSG:3857)" if mercator else ""
        )
    return _WORDS[kind][1 if zh else 0]


_WORDS = {
    "lonlat": ("longitude/latitude in degrees", "经纬度（度）"),
    "latlon": ("latitude/longitude (swapped)", "纬度/经度（顺序颠倒）"),
    "lonlat_abroad": ("longitude/latitude in degrees, outside China", "经纬度（度），但不在中国范围内"),
    "latlon_abroad": ("latitude/longitude (swapped), outside China", "纬度/经度（顺序颠倒），但不在中国范围内"),
    "transverse_mercator": (
        "Gauss-Kruger or UTM easting/northing without zone prefix (EPSG:4534-4554 for CGCS2000 3-degree zones, "
        "central meridian needed; UTM EPSG:326xx)",
        "不带带号的高斯-克吕格或 UTM 坐标（CGCS2000 三度带为 EPSG:4534-4554，需知道中央经线；UTM 为 EPSG:326xx）",
    ),
    "web_mercator": ("Web Mercator metres (EPSG:3857)", "Web 墨卡托米制坐标（EPSG:3857）"),
}


def _looks_mercator(x: float, y: float) -> bool:
    # China's box (73..136E, 3..54N) in EPSG:3857
    return 8_126_000 <= x <= 15_140_000 and 334_000 <= y <= 7_170_000


WGS84 = _epsg_system(4326)
CGCS2000 = _epsg_system(4490)
