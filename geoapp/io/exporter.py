"""Exports of a layer's features in the bureau's exchange formats, in an output coordinate system.

Flask-free. Every feature a query matches is read from the :class:`~geoapp.store.base.FeatureReader` in pages
(keyset ``after=``, or offsets for a query by distance), with the fields the caller may see, and written as
GeoJSON, GeoPackage, a zipped Shapefile, FlatGeobuf (all four by GDAL, through pyogrio, into a private
temporary folder), KML 2.2 (written here, for Google Earth and 奥维) or a CSV/XLSX ledger (by
:mod:`geoapp.core.ledger`, with coordinates added).

Fields keep their types: dates as dates (FlatGeobuf knows only date-times: midnight), numbers as numbers,
text as UTF-8. GIS formats keep a vocabulary's stored values (``removed``); the ledgers show its labels
(已整治), as KML's description does. The store's feature id is the GeoPackage's fid, the GeoJSON ``id`` and a
``fid`` column elsewhere.

Coordinates are converted from the store's WGS84 by :func:`geoapp.core.crs.from_storage`. GCJ-02 and BD-09
have no EPSG code: their files are labelled WGS84 (what the tools that use them expect) and the ledger's
about sheet names the system. GeoJSON in another CRS than WGS84 is outside RFC 7946; it carries the ``crs``
member as GDAL writes it. KML is WGS84 by its specification: another CRS is refused.
"""

from __future__ import annotations

import csv
import datetime as dt
import html
import io
import shutil
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote
from xml.sax.saxutils import escape as xml_escape
from zoneinfo import ZoneInfo

import numpy as np
import orjson
import pyogrio.raw
import shapely
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

from geoapp.core import ledger
from geoapp.core.crs import CoordSystem, from_storage, parse_crs
from geoapp.core.layers import FieldDef, Layer, Registry
from geoapp.core.progress import Row, Selection
from geoapp.errors import InvalidParameter
from geoapp.store.base import FeatureReader, Query, Visibility


@dataclass(frozen=True)
class Format:
    media_type: str
    extension: str
    title: str  # what the download control calls it
    driver: str | None = None  # the GDAL driver, for the formats GDAL writes


FORMATS: dict[str, Format] = {
    "geojson": Format("application/geo+json", "geojson", "GeoJSON", "GeoJSON"),
    "gpkg": Format("application/geopackage+sqlite3", "gpkg", "GeoPackage", "GPKG"),
    "shp": Format("application/zip", "shp.zip", "Shapefile (zip)", "ESRI Shapefile"),
    "csv": Format("text/csv", "csv", "CSV"),
    "xlsx": Format(ledger.MIMETYPES["xlsx"], "xlsx", "Excel (XLSX)"),
    "kml": Format("application/vnd.google-earth.kml+xml", "kml", "KML"),
    "fgb": Format("application/vnd.flatgeobuf", "fgb", "FlatGeobuf", "FlatGeobuf"),
}
#: features one export holds at most (a layer is far smaller; beyond it the caller narrows with a filter or bbox)
MAX_FEATURES = 250_000
#: features read from the reader at once
PAGE_SIZE = 10_000
#: the id column of the GIS formats (a layer may not declare a field of this name)
FID = "fid"
#: the output CRS when none is given
WGS84 = "EPSG:4326"
#: the CRSs KML may be written in (OGC KML 2.2: WGS84 longitude, latitude)
KML_CRS = ("EPSG:4326", "OGC:CRS84")
#: a DBF field name's length (bytes) at most
DBF_NAME = 10
#: the most bytes a DBF text field holds; longer values are cut in the .dbf and kept whole in LONG_VALUES
DBF_TEXT_BYTES = 254
LONG_VALUES = "long_values.csv"
#: geometry families of a Shapefile: one .shp each
SHP_FAMILIES = {
    "Point": "point",
    "MultiPoint": "multipoint",
    "LineString": "line",
    "MultiLineString": "line",
    "Polygon": "polygon",
    "MultiPolygon": "polygon",
}
SHP_TYPES = {"point": "Point", "multipoint": "MultiPoint", "line": "LineString", "polygon": "Polygon"}
KML_NS = "http://www.opengis.net/kml/2.2"

WORDS = {
    "crs": {"zh": "坐标系", "en": "Coordinate system"},
    "x": {"zh": "X坐标", "en": "X"},
    "y": {"zh": "Y坐标", "en": "Y"},
    "xy": {
        "zh": "X 为东向坐标、Y 为北向坐标（米）",
        "en": "X is the easting, Y the northing (metres)",
    },
    "wkt": {"zh": "几何（WKT）", "en": "Geometry (WKT)"},
    "long_values": {
        "zh": "{count} 个文字值超过 DBF 的 {most} 字节上限，在 .dbf 中被截短；"
        "完整的值见 long_values.csv（按 fid 和字段）",
        "en": "{count} text values exceed the DBF limit of {most} bytes and are cut in the .dbf; "
        "long_values.csv holds them whole (by fid and field)",
    },
    "near": {"zh": "距离范围", "en": "Within a distance"},
    "nearest": {"zh": "最近要素", "en": "Nearest features"},
    "within": {"zh": "区域内", "en": "Inside an area"},
    "synthetic": {
        "zh": "演示数据：本文件的要素为合成的虚构数据，不是真实记录",
        "en": "Demo data: the features of this file are synthetic, not real records",
    },
    "unlabelled": {
        "zh": "该坐标系没有 EPSG 编号：文件标注为 WGS84，坐标为 {code}",
        "en": "This system has no EPSG code: the file is labelled WGS84, its coordinates are {code}",
    },
}


def word(key: str, lang: str) -> str:
    return WORDS[key]["en" if lang == "en" else "zh"]


@dataclass(frozen=True)
class Export:
    """A written export: its bytes, its names (in the caller's language, and in ASCII), what it holds."""

    content: bytes
    filename: str  # 建筑围挡_20231115-1413.gpkg
    fallback: str  # construction_hoardings_20231115-1413.gpkg
    media_type: str
    count: int
    version: int

    def disposition(self) -> str:
        """``Content-Disposition``: an attachment named in ASCII and, by RFC 5987, in UTF-8."""
        return f"attachment; filename=\"{self.fallback}\"; filename*=UTF-8''{quote(self.filename, safe='')}"


@dataclass
class Read:
    """Every matching feature, column by column, in the output CRS."""

    fids: list[int]
    geometries: np.ndarray  # shapely objects in the output CRS (None where a feature has none)
    properties: list[dict[str, Any]]
    version: int


def check_format(fmt: str) -> Format:
    """The format named ``fmt``, or InvalidParameter naming the formats there are."""
    if fmt not in FORMATS:
        raise InvalidParameter(f"unknown export format {fmt[:20]!r}; formats: {', '.join(FORMATS)}", parameter="format")
    return FORMATS[fmt]


def output_crs(text: str | None, fmt: str) -> CoordSystem:
    """The output CRS given as ``crs=`` (WGS84 when none), refused for KML unless it is WGS84."""
    crs = parse_crs(text or WGS84, "crs")
    if fmt == "kml" and crs.code not in KML_CRS:
        raise InvalidParameter(
            f"KML is WGS84 longitude/latitude by its specification (OGC KML 2.2) and Google Earth and 奥维 read it "
            f"so: it cannot be written in {crs.code}; leave crs out, or choose another format for {crs.code}",
            parameter="crs",
        )
    return crs


def read(
    reader: FeatureReader,
    layer: Layer,
    query: Query,
    visibility: Visibility,
    crs: CoordSystem,
    *,
    most: int = MAX_FEATURES,
    page_size: int = PAGE_SIZE,
) -> Read:
    """Every feature ``query`` matches (as ``visibility`` shows it), read page by page, geometry in ``crs``."""
    by_distance = query.near is not None or query.nearest is not None
    visible = [f.name for f in layer.visible_fields(visibility == "internal")]
    fids: list[int] = []
    texts: list[bytes] = []
    properties: list[dict[str, Any]] = []
    version = None
    after, offset = None, 0
    while True:
        page_query = query if by_distance else replace(query, after=after)
        page = reader.select(layer.id, page_query, offset if by_distance else 0, page_size, visibility)
        if version is None:
            version = page.version
            if page.matched > most:
                raise InvalidParameter(
                    f"{page.matched:,} features of {layer.id} match; an export holds at most {most:,}: "
                    "narrow them with a field filter or bbox",
                    parameter="bbox",
                )
        for text in page.features:
            feature = orjson.loads(text)
            fids.append(feature["id"])
            geometry = feature.get("geometry")
            texts.append(orjson.dumps(geometry) if geometry else None)
            props = feature["properties"]
            properties.append({name: props.get(name) for name in visible})  # no distance_m or other extras
        if not page.more or not page.ids:
            break
        after, offset = page.ids[-1], offset + len(page.ids)
    geometries = shapely.from_geojson(np.array(texts, dtype=object)) if texts else np.array([], dtype=object)
    if len(geometries):
        geometries = from_storage(geometries, crs)
    return Read(fids, np.asarray(geometries, dtype=object), properties, version if version is not None else 0)


# -- GDAL formats --------------------------------------------------------------------------------


def _column(spec: FieldDef, values: list[Any]) -> tuple[np.ndarray, np.ndarray | None]:
    """A field's values as the array GDAL writes with its type, and the mask of missing values (or None)."""
    missing = np.array([v is None for v in values], dtype=bool)
    if spec.type == "date":
        days = [v if isinstance(v, str) and ledger._DATE.fullmatch(v) else None for v in values]
        return np.array([d or "NaT" for d in days], dtype="datetime64[D]"), None
    if spec.type == "number":
        return np.array([_float(v) for v in values], dtype="float64"), None
    if spec.type == "integer":
        numbers = [_int(v) for v in values]
        mask = np.array([n is None for n in numbers], dtype=bool)
        return np.array([0 if n is None else n for n in numbers], dtype="int64"), mask
    if spec.type == "boolean":
        flags = [v if isinstance(v, bool) else None for v in values]
        mask = np.array([f is None for f in flags], dtype=bool)
        return np.array([bool(f) for f in flags], dtype=bool), mask
    return np.array([None if m else str(v) for v, m in zip(values, missing, strict=True)], dtype=object), None


def _float(value: Any) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return float("nan")  # missing, or a value of another type another tool wrote


def _int(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def short_names(names: list[str], most: int = DBF_NAME) -> dict[str, str]:
    """Unique DBF field names of at most ``most`` bytes, the same for the same names: a name that fits stays,
    a longer one is cut, and a cut name already taken ends in a number (``contractor_n`` -> ``contract01``)."""
    out: dict[str, str] = {}
    taken = {name for name in names if len(name) <= most}
    for name in names:
        if len(name) <= most:
            out[name] = name
            continue
        short = name[:most]
        n = 0
        while short in taken:
            n += 1
            suffix = f"{n:02d}"
            short = name[: most - len(suffix)] + suffix
        taken.add(short)
        out[name] = short
    return out


def _geometry_type(layer: Layer, geometries: np.ndarray) -> tuple[str, bool]:
    """The GDAL layer's geometry type for these geometries (and whether to promote single parts to multi)."""
    present = {g.geom_type for g in geometries if g is not None} or set(layer.geometry)
    if len(present) == 1:
        return next(iter(present)), False
    bases = {t.removeprefix("Multi") for t in present}
    if len(bases) == 1:
        return f"Multi{next(iter(bases))}", True
    return "Unknown", False


def _gdal_crs(crs: CoordSystem) -> str:
    """What GDAL labels a file with: the EPSG code, or WGS84 for a system without one (GCJ-02, BD-09)."""
    return crs.code if crs.code.startswith(("EPSG:", "OGC:")) else WGS84


def _write_gdal(
    path: Path,
    layer: Layer,
    data: Read,
    rows: np.ndarray,
    fields: list[FieldDef],
    crs: CoordSystem,
    fmt: str,
    *,
    names: dict[str, str] | None = None,
    geometry_type: str | None = None,
    title: str = "",
    description: str = "",
) -> None:
    """Write the features at positions ``rows`` of ``data`` to ``path`` in format ``fmt`` with GDAL, with a title
    and what the export is as the layer's metadata where the format has a place for it."""
    names = names or {}
    geometries = data.geometries[rows] if len(rows) else np.array([], dtype=object)
    promote = False
    if geometry_type is None:
        geometry_type, promote = _geometry_type(layer, geometries)
    columns = [np.array([data.fids[i] for i in rows], dtype="int64")]
    masks: list[np.ndarray | None] = [None]
    for spec in fields:
        values, mask = _column(spec, [data.properties[i].get(spec.name) for i in rows])
        if fmt == "shp" and spec.type == "string":  # cut here, on a character (whole in LONG_VALUES)
            values = np.array([_dbf_text(v) for v in values], dtype=object)
        columns.append(values)
        masks.append(mask)
    options: dict[str, str] = {}
    if fmt == "gpkg":
        options = {"FID": FID, "IDENTIFIER": title, "DESCRIPTION": description}
    elif fmt == "geojson":
        # RFC 7946 where the CRS is WGS84; in another, GDAL's older form with its crs member (RFC 7946 would
        # move the coordinates back to WGS84)
        options = {"ID_FIELD": FID, "RFC7946": "YES" if crs.code in KML_CRS else "NO", "DESCRIPTION": description}
    elif fmt == "fgb":
        options = {"TITLE": title, "DESCRIPTION": description}
    pyogrio.raw.write(
        str(path),
        shapely.to_wkb(geometries) if len(geometries) else np.array([], dtype=object),
        columns,
        [FID, *(names.get(spec.name, spec.name) for spec in fields)],
        field_mask=masks if any(m is not None for m in masks) else None,
        layer=layer.id,
        driver=FORMATS[fmt].driver,
        geometry_type=geometry_type,
        crs=_gdal_crs(crs),
        encoding="UTF-8" if fmt == "shp" else None,
        promote_to_multi=promote or None,
        layer_options=options,
    )


def _shapefile_zip(
    folder: Path, layer: Layer, data: Read, fields: list[FieldDef], crs: CoordSystem, base: str, about: str, lang: str
) -> bytes:
    """A zip of one Shapefile per geometry family (``<base>_polygon.shp``, ``<base>_line.shp`` when a layer has
    several; ``<base>.shp`` otherwise), with .prj and .cpg, ``fields.csv`` mapping each DBF name to its
    field and labels, and ``about.txt`` saying what the export is."""
    names = short_names([FID, *(f.name for f in fields)])
    declared = list(dict.fromkeys(SHP_FAMILIES[t] for t in layer.geometry))
    families: dict[str, list[int]] = {}
    for i, geometry in enumerate(data.geometries):  # a feature without geometry goes with the first declared type
        family = declared[0] if geometry is None else SHP_FAMILIES.get(geometry.geom_type, declared[0])
        families.setdefault(family, []).append(i)
    if not families:  # an empty export is still a Shapefile of the layer's first declared type
        families = {declared[0]: []}
    several = len(declared) > 1 or len(families) > 1
    written = folder / "shp"
    written.mkdir()
    for family, rows in families.items():
        stem = f"{base}_{family}" if several else base
        _write_gdal(
            written / f"{stem}.shp",
            layer,
            data,
            np.array(rows, dtype="int64"),
            fields,
            crs,
            "shp",
            names=names,
            geometry_type=SHP_TYPES[family],
        )
    long_values = _long_values(data, fields)
    if long_values:
        about += "\n" + word("long_values", lang).format(count=len(long_values) - 1, most=DBF_TEXT_BYTES)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for member in sorted(written.iterdir()):
            archive.write(member, member.name)
        archive.writestr("fields.csv", _fields_csv(names, fields))
        if long_values:
            archive.writestr(LONG_VALUES, _csv_bytes(long_values))
        archive.writestr("about.txt", about.encode("utf-8-sig"))
    return out.getvalue()


def _dbf_text(value: Any) -> Any:
    """A text value cut to what a DBF field holds, at a whole UTF-8 character."""
    if not isinstance(value, str) or len(raw := value.encode("utf-8")) <= DBF_TEXT_BYTES:
        return value
    return raw[:DBF_TEXT_BYTES].decode("utf-8", errors="ignore")


def _long_values(data: Read, fields: list[FieldDef]) -> list[list[Any]]:
    """The text values a DBF cannot hold whole (more than 254 bytes: 84 Chinese characters in UTF-8), as rows of
    ``long_values.csv`` (fid, field, the whole value) under a header; none when every value fits."""
    text = [spec.name for spec in fields if spec.type == "string"]
    rows = [
        [fid, name, value]
        for fid, props in zip(data.fids, data.properties, strict=True)
        for name in text
        if isinstance(value := props.get(name), str) and len(value.encode("utf-8")) > DBF_TEXT_BYTES
    ]
    return [["fid", "field", "value"], *rows] if rows else []


def _csv_bytes(rows: list[list[Any]]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return out.getvalue().encode("utf-8-sig")


def _fields_csv(names: dict[str, str], fields: list[FieldDef]) -> bytes:
    """What each DBF column is: its short name, the field's name, its labels, its type (UTF-8 with a BOM)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["dbf_name", "field", "label_zh", "label_en", "type", "unit"])
    writer.writerow([names[FID], FID, "编号", "Feature ID", "integer", ""])
    for spec in fields:
        writer.writerow([names[spec.name], spec.name, spec.label.zh, spec.label.en, spec.type, spec.unit or ""])
    return out.getvalue().encode("utf-8-sig")


# -- KML -------------------------------------------------------------------------------------------


def _kml_color(hex_rgb: str, alpha: str = "ff") -> str:
    """KML's aabbggrr from #rrggbb."""
    rgb = hex_rgb.lstrip("#").lower()
    return f"{alpha}{rgb[4:6]}{rgb[2:4]}{rgb[0:2]}"


def _kml_coords(coords) -> str:
    return " ".join(f"{x:.7f},{y:.7f}" for x, y, *_ in coords)


def _kml_geometry(geometry) -> str:
    """A geometry as KML (Multi* and collections as MultiGeometry)."""
    kind = geometry.geom_type
    if kind == "Point":
        return f"<Point><coordinates>{_kml_coords(geometry.coords)}</coordinates></Point>"
    if kind == "LineString":
        coordinates = _kml_coords(geometry.coords)
        return f"<LineString><tessellate>1</tessellate><coordinates>{coordinates}</coordinates></LineString>"
    if kind == "Polygon":
        rings = [
            f"<outerBoundaryIs><LinearRing><coordinates>{_kml_coords(geometry.exterior.coords)}</coordinates>"
            "</LinearRing></outerBoundaryIs>"
        ]
        rings += [
            f"<innerBoundaryIs><LinearRing><coordinates>{_kml_coords(hole.coords)}</coordinates>"
            "</LinearRing></innerBoundaryIs>"
            for hole in geometry.interiors
        ]
        return f"<Polygon>{''.join(rings)}</Polygon>"
    return f"<MultiGeometry>{''.join(_kml_geometry(part) for part in geometry.geoms)}</MultiGeometry>"


def _shown(spec: FieldDef, value: Any, lang: str) -> str:
    """A value as people read it in a KML balloon: a label for a vocabulary value, yes/no, text."""
    if spec.values is not None and isinstance(value, str) and (choice := spec.choice(value)) is not None:
        return choice.label(lang)
    if isinstance(value, bool):
        return ledger.word("yes" if value else "no", lang)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _xml(text: str) -> str:
    """Text for an XML element or a double-quoted attribute; characters XML 1.0 cannot hold are dropped."""
    return xml_escape(ILLEGAL_CHARACTERS_RE.sub("", text), {'"': "&quot;"})


def _kml(layer: Layer, data: Read, fields: list[FieldDef], lang: str, about: list[tuple[str, Any]]) -> bytes:
    """KML 2.2 in UTF-8: a Document with a style per status colour and a Placemark per feature, named by the
    layer's title field, its fields in ExtendedData (stored values, labels as display names) and in the
    description (a table of labels and values, as HTML escaped once for HTML and once for XML), geometry as
    MultiGeometry where it has parts. Every text goes through :func:`_xml` (and ``html.escape`` inside the
    description): written as text, it is never markup."""
    colour_field = layer.field(layer.style_field) if layer.style_field else None
    if colour_field is not None and colour_field.name not in {f.name for f in fields}:
        colour_field = None
    styles = {None: ("default", layer.style.color)}
    for choice in colour_field.values if colour_field else ():
        styles[choice.value] = (f"s_{choice.value}", choice.color or layer.style.color)
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>\n',
        f'<kml xmlns="{KML_NS}"><Document><name>{_xml(layer.title(lang))}</name>',
        # a KML description is HTML (Google Earth renders it): the about lines, which echo the request's filters,
        # are escaped for HTML and then for XML, as the placemarks' are
        f"<description>{_xml(html.escape(chr(10).join(f'{name}: {value}' for name, value in about)))}</description>",
    ]
    fill = f"{round(layer.style.fill_opacity * 255):02x}"
    for style_id, colour in styles.values():
        out.append(
            f'<Style id="{style_id}"><IconStyle><color>{_kml_color(colour)}</color></IconStyle>'
            f"<LineStyle><color>{_kml_color(colour)}</color><width>{layer.style.weight:g}</width></LineStyle>"
            f"<PolyStyle><color>{_kml_color(colour, fill)}</color></PolyStyle></Style>"
        )
    out.append(f"<Folder><name>{_xml(layer.title(lang))}</name>")
    headers = {spec.name: ledger._header(spec, lang) for spec in fields}
    names = {spec.name: _xml(headers[spec.name]) for spec in fields}
    for i, fid in enumerate(data.fids):
        props = data.properties[i]
        rows = [(spec, props[spec.name]) for spec in fields if props.get(spec.name) is not None]
        table = "".join(
            f"<tr><th>{html.escape(headers[spec.name])}</th><td>{html.escape(_shown(spec, value, lang))}</td></tr>"
            for spec, value in rows
        )
        key = props.get(colour_field.name) if colour_field else None
        extended = "".join(
            f'<Data name="{spec.name}"><displayName>{names[spec.name]}</displayName>'
            f"<value>{_xml(value if isinstance(value, str) else _shown(spec, value, 'en'))}</value></Data>"
            for spec, value in rows
        )
        geometry = data.geometries[i]
        out.append(
            f'<Placemark id="{layer.id}.{fid}"><name>{_xml(str(props.get(layer.title_field) or fid))}</name>'
            f"<description>{_xml(f'<table>{table}</table>')}</description>"
            f"<styleUrl>#{styles.get(key, styles[None])[0]}</styleUrl>"
            f'<ExtendedData><Data name="{FID}"><value>{fid}</value></Data>{extended}</ExtendedData>'
            f"{_kml_geometry(geometry) if geometry is not None and not geometry.is_empty else ''}</Placemark>\n"
        )
    out.append("</Folder></Document></kml>\n")
    return "".join(out).encode("utf-8")


# -- ledgers (CSV, XLSX) -----------------------------------------------------------------------------


def _ledger(
    layer: Layer,
    data: Read,
    visibility: Visibility,
    lang: str,
    fmt: str,
    crs: CoordSystem,
    about: list[tuple[str, Any]],
) -> bytes:
    """The ledger of the features (labels as headers and values, real dates), with coordinates in ``crs``:
    longitude/latitude (or X/Y) for points, WKT for lines and areas."""
    columns = ledger.columns(layer, visibility, lang, overdue=False)
    points = any(c.key == "lon" for c in columns)
    if points and not crs.geographic:
        columns = [
            ledger.Column(c.key, word("x" if c.key == "lon" else "y", lang)) if c.key in ("lon", "lat") else c
            for c in columns
        ]
    decimals = 7 if crs.geographic else 3
    wkts = None
    if not points:
        columns.append(ledger.Column("wkt", word("wkt", lang)))
        wkts = shapely.to_wkt(data.geometries, rounding_precision=decimals, trim=True) if data.fids else []
    table: list[list[Any]] = [[c.header for c in columns]]
    for i, fid in enumerate(data.fids):
        row = Row(fid, 1, None, data.properties[i])
        geometry = data.geometries[i]
        lonlat = (None, None)
        if points and geometry is not None and not geometry.is_empty:
            point = geometry if geometry.geom_type == "Point" else geometry.representative_point()
            lonlat = (round(point.x, decimals), round(point.y, decimals))
        values = []
        for c in columns:
            if c.key == "wkt":
                values.append(wkts[i] if geometry is not None else None)
            else:
                values.append(ledger._value(c, row, lang, lonlat))
        table.append(values)
    if fmt == "xlsx":
        return ledger.xlsx(table, layer.title(lang), about, lang)
    return ledger.csv_bytes(table, about)


def _about(
    layer: Layer,
    query: Query,
    count: int,
    visibility: Visibility,
    lang: str,
    now: dt.datetime,
    synthetic: bool,
    crs: CoordSystem,
    fmt: str,
) -> list[tuple[str, Any]]:
    """What the export is: the ledger's lines (layer, time, rows, filters, fields, demo data) and the CRS."""
    joiner = "\n" if fmt == "xlsx" else ("；" if lang == "zh" else "; ")
    about = ledger._about(layer, Selection(query=query), count, visibility, lang, now, synthetic, joiner)
    about = [item for item in about if item[0] != ledger.word("sorted", lang)]  # always fid order
    if fmt not in ("csv", "xlsx"):  # a GIS file is no ledger (台账)
        data = ledger.word("data", lang)
        about = [(name, word("synthetic", lang) if name == data else text) for name, text in about]
    crs_text = f"{crs.code} {crs.name}"
    if not crs.geographic:
        crs_text += f" ({word('xy', lang)})"
    if not crs.code.startswith(("EPSG:", "OGC:")):
        crs_text += f" ({word('unlabelled', lang).format(code=crs.code)})"
    if crs.note_in(lang):
        crs_text += f" ({crs.note_in(lang)})"
    about.insert(3, (word("crs", lang), crs_text))
    spatial = []
    if query.near:
        spatial.append(f"{word('near', lang)} {query.near[2]:g} m: {query.near[0]:g},{query.near[1]:g}")
    if query.nearest:
        spatial.append(f"{word('nearest', lang)} {query.nearest[2]}: {query.nearest[0]:g},{query.nearest[1]:g}")
    if query.within is not None:
        spatial.append(word("within", lang))
    if spatial:
        index = next(i for i, item in enumerate(about) if item[0] == ledger.word("filters", lang))
        name, text = about[index]
        shown = [] if text == ledger.word("none", lang) else [text]
        about[index] = (name, joiner.join([*shown, *spatial]))
    return about


# -- the export ----------------------------------------------------------------------------------------


def filename(layer: Layer, fmt: str, now: dt.datetime, lang: str) -> tuple[str, str]:
    """``<title>_<YYYYMMDD-HHMM>.<ext>`` in the caller's language and ``<layer id>_<YYYYMMDD-HHMM>.<ext>``."""
    stamp = now.strftime("%Y%m%d-%H%M")
    extension = FORMATS[fmt].extension
    return f"{layer.title(lang)}_{stamp}.{extension}", f"{layer.id}_{stamp}.{extension}"


def export(
    reader: FeatureReader,
    registry: Registry,
    layer_id: str,
    query: Query,
    *,
    fmt: str,
    crs: CoordSystem,
    visibility: Visibility,
    lang: str,
    timezone: ZoneInfo,
    clock: Callable[[], float] = time.time,
    synthetic: bool = False,
) -> Export:
    """Every feature of ``layer_id`` that ``query`` matches, as ``fmt`` with coordinates in ``crs``.

    Parameters
    ----------
    reader, registry
        Where the features and the layer definition come from.
    query
        What the features API would select (``geoapp.core.query.features_request``); its ``after`` is ignored:
        every page is walked.
    fmt
        One of :data:`FORMATS`.
    crs
        The output coordinate system (:func:`output_crs` checks it for the format).
    visibility
        ``public``: the public fields only; ``internal``: every field.
    lang
        The language of names, labels and the ledgers' headers.
    timezone, clock
        The district's time zone and now: the file's name and the ledgers' export time.
    synthetic
        The store holds the synthetic demo (said in the ledgers and the KML).
    """
    form = check_format(fmt)
    if fmt == "kml":
        output_crs(crs.code, fmt)
    layer = registry.require(layer_id)
    data = read(reader, layer, replace(query, after=None), visibility, crs)
    fields = list(layer.visible_fields(visibility == "internal"))
    now = dt.datetime.fromtimestamp(clock(), timezone)
    title, fallback = filename(layer, fmt, now, lang)
    about = _about(layer, query, len(data.fids), visibility, lang, now, synthetic, crs, fmt)
    if fmt in ("csv", "xlsx", "kml"):
        if fmt == "kml":
            content = _kml(layer, data, fields, lang, about)
        else:
            content = _ledger(layer, data, visibility, lang, fmt, crs, about)
    else:
        folder = Path(tempfile.mkdtemp(prefix="geoapp-export-"))  # private: mkdtemp makes it 0700
        text = "\n".join(f"{name}: {value}" for name, value in about)
        try:
            if fmt == "shp":
                content = _shapefile_zip(folder, layer, data, fields, crs, layer.id, text, lang)
            else:
                path = folder / f"{layer.id}.{form.extension}"
                rows = np.arange(len(data.fids))
                _write_gdal(path, layer, data, rows, fields, crs, fmt, title=layer.title(lang), description=text)
                content = path.read_bytes()
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    return Export(content, title, fallback, form.media_type, len(data.fids), data.version)
