"""Importing a file into a layer: column mapping, every row checked, the report, and the plan. Flask-free.

:func:`check` reads a file (:mod:`geoapp.io.formats`), maps its columns onto the layer's fields
and coordinates, converts every value as the bureau writes it (vocabularies by value or label,
dates as 2023/5/1 or 2023年5月1日, numbers with thousands separators), brings the geometry into
the stored lon/lat, and checks every row the way an edit is checked (``geoapp.core.validate``, the
district rule with its margin, swapped lon/lat recognised) so that the report names each bad row
by the number the user sees, with the column as the file names it and the reason in either
language. The result is a :class:`Plan`; :func:`apply` writes a clean plan through the one use
case ``Editing.import_features`` (all or nothing). A dry run is a plan that is not applied.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from geoapp.core import messages
from geoapp.core.crs import WGS84, CoordSystem, crs_from_wkt, describe_coordinates, parse_crs, to_storage, xy_to_storage
from geoapp.core.editing import DISTRICT_MARGIN_M, Editing
from geoapp.core.layers import DISTRICT_ZONE, FieldDef, Layer
from geoapp.core.messages import Localized, Refused, Words
from geoapp.core.validate import prepare
from geoapp.errors import GeoappError, InvalidFeature, InvalidParameter
from geoapp.io import formats
from geoapp.store.base import Actor

MODES = ("append", "replace", "upsert")
#: bad rows listed in a report (the rest are counted)
MAX_LISTED = 1000
#: unknown columns named one by one in the report's warnings (the rest are counted)
MAX_UNKNOWN = 20
#: rows validated together; a chunk with a bad row is checked again row by row
CHUNK = 1000

#: coordinate columns by what their header says (compared case-insensitively, spaces removed)
LON = ("经度", "lon", "lng", "long", "longitude", "x经度", "经度x")
LAT = ("纬度", "lat", "latitude", "y纬度", "纬度y")
EAST = ("东坐标", "easting", "east", "横坐标", "e")
NORTH = ("北坐标", "northing", "north", "纵坐标", "n")
X_OR_Y = ("x坐标", "y坐标", "x", "y", "坐标x", "坐标y", "x_coord", "y_coord")
WKT = ("wkt", "几何", "geometry", "图形", "geom", "形状", "shape")
#: what ``--column HEADER=TARGET`` may name besides a field: x is the easting (or longitude), y the northing
TARGETS = ("lon", "lat", "easting", "northing", "x", "y", "wkt")
TRUE = {"true", "1", "yes", "y", "是", "对", "有", "t"}
FALSE = {"false", "0", "no", "n", "否", "错", "无", "f"}
_THOUSANDS = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d+)?$")
_DATE = re.compile(
    r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?"
    r"(?:[ T]\s*(?:[01]?\d|2[0-3])(?::[0-5]\d(?::[0-5]\d(?:\.\d+)?)?)?)?$"
)
#: northings of China in metres, and eastings without and with a zone prefix (Gauss-Kruger, UTM)
NORTHING = (2.0e5, 6.2e6)
EASTING = ((1.0e5, 9.0e5), (13.0e6, 46.0e6))


def _key(text: str) -> str:
    return re.sub(r"[\s_\-（）()]", "", str(text)).casefold()


@dataclass(frozen=True)
class Options:
    """What the user asked for (the CLI's options, the upload form's fields)."""

    layer: str
    mode: str = "append"
    key: str | None = None
    crs: str | None = None
    encoding: str | None = None
    columns: Mapping[str, str] = field(default_factory=dict)  # header -> field (or lon/lat/x/y/wkt)
    source_layer: str | None = None  # a GeoPackage's table, an XLSX's sheet


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one row (``row`` None: the file as a whole)."""

    row: int | None
    column: str | None
    value: str | None
    reason: Localized

    def to_dict(self, lang: str) -> dict:
        return {"row": self.row, "column": self.column, "value": self.value, "reason": self.reason(lang)}


@dataclass
class Report:
    """What an import found and would do (or did)."""

    file: str
    format: str
    layer: str
    mode: str
    crs: str | None = None
    crs_name: str | None = None
    crs_origin: str | None = None
    encoding: str | None = None
    rows: int = 0
    inserts: int = 0
    updates: int = 0
    unchanged: int = 0
    deletes: int = 0
    mapping: list[tuple[str, str]] = field(default_factory=list)  # header -> field or coordinate
    warnings: list[Localized] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    problem_count: int = 0
    bad_rows: int = 0
    written: bool = False
    dry_run: bool = False

    @property
    def ok(self) -> bool:
        return self.problem_count == 0

    def add(self, problem: Problem) -> None:
        self.problem_count += 1
        if len(self.problems) < MAX_LISTED:
            self.problems.append(problem)

    def to_dict(self, lang: str = "en") -> dict:
        return {
            "file": self.file,
            "format": self.format,
            "layer": self.layer,
            "mode": self.mode,
            "crs": self.crs,
            "crs_name": self.crs_name,
            "crs_origin": self.crs_origin,
            "encoding": self.encoding,
            "rows": self.rows,
            "inserts": self.inserts,
            "updates": self.updates,
            "unchanged": self.unchanged,
            "deletes": self.deletes,
            "mapping": [{"column": c, "target": t} for c, t in self.mapping],
            "warnings": [w(lang) for w in self.warnings],
            "problems": [p.to_dict(lang) for p in self.problems],
            "problem_count": self.problem_count,
            "bad_rows": self.bad_rows,
            "ok": self.ok,
            "written": self.written,
            "dry_run": self.dry_run,
        }

    def text(self, lang: str = "en") -> str:
        """The report as the CLI prints it."""
        zh = lang == "zh"
        fmt = formats.FORMATS.get(self.format, (self.format, self.format))[0 if zh else 1]
        lines = [
            f"{'文件' if zh else 'file'}: {self.file} ({fmt})",
            f"{'图层' if zh else 'layer'}: {self.layer}   {'方式' if zh else 'mode'}: {self.mode}",
        ]
        if self.crs:
            lines.append(f"{'坐标系' if zh else 'CRS'}: {self.crs} {self.crs_name or ''} ({self.crs_origin})")
        if self.encoding:
            lines.append(f"{'编码' if zh else 'encoding'}: {self.encoding}")
        if self.mapping:
            pairs = ", ".join(f"{c} -> {t}" for c, t in self.mapping)
            lines.append(f"{'列' if zh else 'columns'}: {pairs}")
        lines.append(f"{'读取行数' if zh else 'rows read'}: {self.rows}")
        verb = ("已" if self.written else "将") if zh else ("" if self.written else "would ")
        if zh:
            lines.append(
                f"{verb}新增 {self.inserts}，{verb}更新 {self.updates}（无变化 {self.unchanged}），"
                f"{verb}删除 {self.deletes}"
            )
        else:
            lines.append(
                f"{verb}insert {self.inserts}, {verb}update {self.updates} ({self.unchanged} unchanged), "
                f"{verb}delete {self.deletes}"
            )
        for warning in self.warnings:
            lines.append(f"{'提示' if zh else 'warning'}: {warning(lang)}")
        if self.problem_count:
            if zh:
                lines.append(f"有问题 {self.problem_count} 处（{self.bad_rows} 行），未写入任何数据：")
            else:
                lines.append(f"{self.problem_count} problem(s) in {self.bad_rows} row(s); nothing was written:")
            for p in self.problems:
                where = (
                    (f"第 {p.row} 行" if zh else f"row {p.row}") if p.row is not None else ("文件" if zh else "file")
                )
                column = f" [{p.column}]" if p.column else ""
                value = f" {p.value!r}" if p.value not in (None, "") else ""
                lines.append(f"  {where}{column}{value}: {p.reason(lang)}")
            if self.problem_count > len(self.problems):
                more = self.problem_count - len(self.problems)
                lines.append(f"  ……另有 {more} 处" if zh else f"  ... and {more} more")
        elif self.dry_run:
            lines.append("检查通过（试运行，未写入）" if zh else "no problems (dry run: nothing written)")
        elif self.written:
            lines.append("导入完成" if zh else "imported")
        return "\n".join(lines)


@dataclass
class Plan:
    """A checked import: the report and, if it is clean, what to write."""

    report: Report
    inserts: list[tuple[dict, BaseGeometry]] = field(default_factory=list)
    updates: list[tuple[int, int, dict, BaseGeometry | None]] = field(default_factory=list)
    replace: bool = False


#: how a caller follows the work: ``progress(stage, done, total)``
Progress = Callable[[str, int, int], None]


def _short(value: Any) -> str | None:
    if value is None:
        return None
    text = value.isoformat() if isinstance(value, dt.date) else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _file_problem(report: Report, en: str, zh: str) -> None:
    report.add(Problem(None, None, None, Words(zh=zh, en=en)))


# -- the columns ----------------------------------------------------------------------------------


@dataclass
class Columns:
    fields: dict[int, FieldDef] = field(default_factory=dict)  # column index -> field
    x: int | None = None
    y: int | None = None
    wkt: int | None = None
    kind: str | None = None  # "lonlat" or "xy" for coordinate columns


def map_columns(layer: Layer, source: formats.Source, options: Options, report: Report) -> Columns:
    """Which column holds which field or coordinate: names, zh and en labels, then ``--column``."""
    aliases: dict[str, FieldDef] = {}
    for spec in layer.fields:
        for alias in (spec.name, spec.label.zh, spec.label.en):
            aliases.setdefault(_key(alias), spec)
    cols = Columns()
    named: dict[str, str] = {}
    for header, target in options.columns.items():
        if header not in source.columns:
            found = ", ".join(source.columns[:30])
            raise InvalidParameter(
                f"--column names the header {header[:60]!r}, which the file does not have; its headers: {found}",
                parameter="column",
                text=Words(
                    zh=f"列映射中的表头 {header[:60]!r} 在文件中不存在；文件的表头：{found}",
                    en=f"--column names the header {header[:60]!r}, which the file does not have; its headers: {found}",
                ),
            )
        named[header] = target
    xy_candidates: list[int] = []
    unknown: list[str] = []
    for i, header in enumerate(source.columns):
        target = named.get(header)
        key = _key(header)
        if target is not None:
            if target in TARGETS and target not in {f.name for f in layer.fields}:
                kind = {"lon": "x", "lat": "y", "easting": "x", "northing": "y"}.get(target, target)
                setattr(cols, kind, i)
                if target in ("lon", "lat"):
                    cols.kind = "lonlat"
                elif target != "wkt":
                    cols.kind = cols.kind or "xy"
                continue
            spec = next((f for f in layer.fields if f.name == target), None) or aliases.get(_key(target))
            if spec is None:
                allowed = ", ".join([f.name for f in layer.fields if not f.computed] + list(TARGETS))
                raise InvalidParameter(
                    f"--column {header}={target}: {layer.id} has no field {target[:60]!r}; allowed: {allowed}",
                    parameter="column",
                    text=Words(
                        zh=f"列映射 {header}={target}：图层“{layer.title.zh}”没有字段 {target[:60]!r}；可用：{allowed}",
                        en=f"--column {header}={target}: {layer.id} has no field {target[:60]!r}; allowed: {allowed}",
                    ),
                )
            cols.fields[i] = spec
            continue
        if key in aliases:
            cols.fields[i] = aliases[key]
        elif source.tabular and key in map(_key, LON) and cols.x is None:
            cols.x, cols.kind = i, "lonlat"
        elif source.tabular and key in map(_key, LAT) and cols.y is None:
            cols.y, cols.kind = i, "lonlat"
        elif source.tabular and key in map(_key, EAST) and cols.x is None:
            cols.x, cols.kind = i, "xy"
        elif source.tabular and key in map(_key, NORTH) and cols.y is None:
            cols.y, cols.kind = i, "xy"
        elif source.tabular and key in map(_key, X_OR_Y):
            xy_candidates.append(i)
        elif source.tabular and key in map(_key, WKT) and cols.wkt is None:
            cols.wkt = i
        elif header:
            unknown.append(header)
    if len(unknown) <= MAX_UNKNOWN:
        for header in unknown:
            report.warnings.append(
                Words(
                    zh=f"列“{header}”不对应图层的任何字段，已忽略",
                    en=f"column {header!r} matches no field of the layer and is ignored",
                )
            )
    else:
        shown = [str(h)[:40] for h in unknown[:MAX_UNKNOWN]]
        more = len(unknown) - MAX_UNKNOWN
        report.warnings.append(
            Words(
                zh=f"{len(unknown)} 列不对应图层的任何字段，已忽略：{'、'.join(shown)} 等（另有 {more} 列）",
                en=f"{len(unknown)} columns match no field of the layer and are ignored: "
                f"{', '.join(map(repr, shown))} and {more} more",
            )
        )
    seen: dict[str, int] = {}
    for i, spec in list(cols.fields.items()):
        if spec.name in seen:
            first = source.columns[seen[spec.name]]
            raise InvalidParameter(
                f"columns {first!r} and {source.columns[i]!r} both hold {spec.name}; map one with --column",
                parameter="column",
                text=Words(
                    zh=f"列“{first}”和“{source.columns[i]}”都对应“{spec.label.zh}”；请用列映射指定一列",
                    en=f"columns {first!r} and {source.columns[i]!r} both hold {spec.label.en}; map one with --column",
                ),
            )
        seen[spec.name] = i
        if spec.computed:
            del cols.fields[i]
            report.warnings.append(
                Words(
                    zh=f"列“{source.columns[i]}”（{spec.label.zh}）由图形计算得出，文件中的值已忽略",
                    en=f"column {source.columns[i]!r} ({spec.label.en}) is computed from the shape; "
                    "its values are ignored",
                )
            )
    if xy_candidates and cols.x is None and cols.y is None and len(xy_candidates) == 2:
        _assign_xy(cols, xy_candidates, source, report)
    elif xy_candidates:
        for i in xy_candidates:
            report.warnings.append(
                Words(zh=f"列“{source.columns[i]}”未使用", en=f"column {source.columns[i]!r} is not used")
            )
    report.mapping = [(source.columns[i], spec.name) for i, spec in sorted(cols.fields.items())]
    for name, index in (("x", cols.x), ("y", cols.y), ("wkt", cols.wkt)):
        if index is not None:
            label = {
                "x": "lon" if cols.kind == "lonlat" else "easting",
                "y": "lat" if cols.kind == "lonlat" else "northing",
            }
            report.mapping.append((source.columns[index], label.get(name, "geometry (WKT)")))
    return cols


def _assign_xy(cols: Columns, pair: list[int], source: formats.Source, report: Report) -> None:
    """X坐标/Y坐标: which is the easting, decided by magnitude (Chinese surveying writes X for the northing)."""
    a, b = pair
    first = next(
        (row for row in source.rows if _float(_at(row, a)) is not None and _float(_at(row, b)) is not None),
        None,
    )
    cols.kind = "xy"
    if first is None:
        cols.x, cols.y = a, b
        return
    va, vb = abs(_float(first[a])), abs(_float(first[b]))

    def easting(v: float) -> bool:
        return any(lo <= v <= hi for lo, hi in EASTING)

    def northing(v: float) -> bool:
        return NORTHING[0] <= v <= NORTHING[1] and not (EASTING[0][0] <= v <= EASTING[0][1] and v < 1e6)

    if 70 <= va <= 140 and 3 <= vb <= 60:
        cols.x, cols.y, cols.kind = a, b, "lonlat"
    elif 70 <= vb <= 140 and 3 <= va <= 60:
        cols.x, cols.y, cols.kind = b, a, "lonlat"
    elif easting(va) and northing(vb) and not (easting(vb) and northing(va)):
        cols.x, cols.y = a, b
    elif easting(vb) and northing(va):
        cols.x, cols.y = b, a
    else:
        cols.x, cols.y = a, b
    east, north = source.columns[cols.x], source.columns[cols.y]
    if cols.kind == "lonlat":
        report.warnings.append(
            Words(
                zh=f"按数值大小，列“{east}”作为经度，“{north}”作为纬度",
                en=f"by their values, {east!r} is taken as longitude and {north!r} as latitude",
            )
        )
    else:
        report.warnings.append(
            Words(
                zh=f"按数值大小，列“{east}”作为东坐标（横坐标），“{north}”作为北坐标（纵坐标）",
                en=f"by their values, {east!r} is taken as the easting and {north!r} as the northing",
            )
        )


def _at(row: Sequence, index: int) -> Any:
    return row[index] if index < len(row) else None


def _narrow(source: formats.Source, cols: Columns) -> None:
    """Keep only the columns that map to a field or a coordinate, each row exactly that wide (a short row padded
    with empty cells): a file with many columns holds no more than it uses."""
    keep = sorted({*cols.fields, *(i for i in (cols.x, cols.y, cols.wkt) if i is not None)})
    where = {old: new for new, old in enumerate(keep)}
    empty = None if not source.tabular else ""
    source.rows = [[row[i] if i < len(row) else empty for i in keep] for row in source.rows]
    source.columns = [source.columns[i] for i in keep]
    cols.fields = {where[i]: spec for i, spec in cols.fields.items()}
    cols.x, cols.y, cols.wkt = (None if i is None else where[i] for i in (cols.x, cols.y, cols.wkt))


# -- values ---------------------------------------------------------------------------------------


def _float(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        f = float(value)
        return f if np.isfinite(f) else None
    text = str(value).strip().replace("，", ",")
    if "_" in text:  # Python reads 11_3.3 as 113.3; nobody writes a number so
        return None
    if _THOUSANDS.match(text):
        text = text.replace(",", "")
    try:
        f = float(text)
    except ValueError:
        return None
    return f if np.isfinite(f) else None


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def local_moment(value: Any) -> Any:
    """A time as the bureau writes it (a spreadsheet's datetime, "2023-05-01 08:30"), read on the district's clock
    when it names no zone; anything else is left for the field to refuse."""
    if isinstance(value, str):
        text = value.replace("/", "-")
        try:
            value = dt.datetime.fromisoformat(text.replace("z", "Z"))
        except ValueError:
            return value
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        value = value.replace(tzinfo=DISTRICT_ZONE)
    return value


def convert(spec: FieldDef, value: Any, *, excel: bool = False) -> Any:
    """A cell as the bureau writes it -> the field's value (then ``spec.coerce``; raises ``Refused``)."""
    if _blank(value):
        return None
    if isinstance(value, str):
        value = value.strip()
    if spec.type == "string":
        if isinstance(value, dt.datetime):
            value = value.date().isoformat() if value.time() == dt.time() else value.isoformat(" ")
        elif isinstance(value, dt.date):
            value = value.isoformat()
        elif isinstance(value, float) and value.is_integer():
            value = str(int(value))
        elif isinstance(value, int | float):
            value = str(value)
        if spec.values is not None and value not in (spec.allowed or ()):
            key = _key(value)
            for choice in spec.values:
                if key in (_key(choice.value), _key(choice.label.zh), _key(choice.label.en)):
                    value = choice.value
                    break
    elif spec.type == "date":
        if isinstance(value, dt.datetime):
            value = value.date()
        elif isinstance(value, int | float) and not isinstance(value, bool) and excel and 1 <= value < 2958466:
            value = dt.date(1899, 12, 30) + dt.timedelta(days=int(value))  # an Excel serial day
        elif isinstance(value, str):
            match = _DATE.match(value)
            if match:
                with contextlib.suppress(ValueError):  # 2023/2/30 stays text: the field refuses it
                    value = dt.date(*map(int, match.groups()))
    elif spec.type == "datetime":
        value = local_moment(value)
    elif spec.type in ("integer", "number"):
        if isinstance(value, str):
            if "_" in value:
                raise Refused("must be a number", "number")
            number = _float(value)
            value = value if number is None else number
    elif spec.type == "boolean" and not isinstance(value, bool):
        text = str(value).strip().casefold()
        if isinstance(value, int | float) and value in (0, 1):
            value = bool(value)
        elif text in TRUE:
            value = True
        elif text in FALSE:
            value = False
    return spec.coerce(value)


# -- the check --------------------------------------------------------------------------------------


def check(
    path: str | Path,
    editing: Editing,
    options: Options,
    *,
    name: str | None = None,
    max_rows: int | None = None,
    progress: Progress | None = None,
) -> Plan:
    """Read and check a file for an import into ``options.layer``; return the plan (see the module's docstring).

    Refusals of the file as a whole (format, encoding, CRS, archive, a missing column, too many rows)
    raise :class:`~geoapp.errors.InvalidParameter`; problems of rows are collected in the report.
    """
    registry = editing.registry
    layer = registry.require(options.layer)
    if options.mode not in MODES:
        raise InvalidParameter(
            f"mode must be one of: {', '.join(MODES)}",
            parameter="mode",
            text=Words(zh=f"导入方式须为：{'、'.join(MODES)}", en=f"mode must be one of: {', '.join(MODES)}"),
        )
    key_spec = _key_field(layer, options)
    given_crs = parse_crs(options.crs) if options.crs else None
    source = formats.read(
        path, name=name, encoding=options.encoding, source_layer=options.source_layer, max_rows=max_rows
    )
    report = Report(file=source.name, format=source.format, layer=layer.id, mode=options.mode, encoding=source.encoding)
    report.warnings.extend(source.warnings)
    report.rows = len(source.rows)
    if not source.rows:
        raise InvalidParameter(
            "the file has no rows to import",
            parameter="file",
            text=Words(zh="文件中没有可导入的行", en="the file has no rows to import"),
        )
    if progress:
        progress("read", report.rows, report.rows)
    cols = map_columns(layer, source, options, report)
    if key_spec is not None and key_spec.name not in {s.name for s in cols.fields.values()}:
        raise InvalidParameter(
            f"--key {key_spec.name}: the file has no column for it ({key_spec.label.zh}/{key_spec.label.en})",
            parameter="key",
            text=Words(
                zh=f"匹配键“{key_spec.label.zh}”在文件中没有对应的列",
                en=f"the key {key_spec.label.en} ({key_spec.name}) has no column in the file",
            ),
        )
    geometry_given = not source.tabular or cols.wkt is not None or (cols.x is not None and cols.y is not None)
    if source.tabular and not geometry_given:
        half = cols.x is not None or cols.y is not None
        if options.mode != "upsert" or half:
            found = ", ".join(source.columns[:30])
            raise InvalidParameter(
                f"no coordinate columns: expected 经度/纬度 (lon/lat), X坐标/Y坐标 (x/y) or WKT; headers: {found}",
                parameter="column",
                text=Words(
                    zh=f"找不到坐标列：需要“经度/纬度”、“X坐标/Y坐标”或 WKT 列；文件的表头：{found}",
                    en="no coordinate columns: expected 经度/纬度 (lon/lat), X坐标/Y坐标 (x/y) or WKT; "
                    f"headers: {found}",
                ),
            )
    missing = [
        s
        for s in layer.fields
        if s.required and s.default is None and s.name not in {c.name for c in cols.fields.values()}
    ]
    if missing and options.mode != "upsert":
        names = ", ".join(f"{s.label.zh}/{s.label.en} ({s.name})" for s in missing)
        raise InvalidParameter(
            f"the file has no column for the required fields: {names}",
            parameter="column",
            text=Words(
                zh=f"文件缺少必填字段的列：{'、'.join(s.label.zh for s in missing)}",
                en=f"the file has no column for the required fields: {', '.join(s.label.en for s in missing)}",
            ),
        )
    _narrow(source, cols)
    n = len(source.rows)
    bad = np.zeros(n, dtype=bool)
    geoms = _geometries(source, cols, given_crs, report, bad) if geometry_given else np.full(n, None, dtype=object)
    if report.crs is None and not geometry_given:
        report.crs_origin = "no coordinates in the file"
    unplaced = bad.copy()  # rows whose coordinates could not be read: no district check (their other cells are)
    records = _records(source, cols, report, bad)
    _fix_types(layer, geoms)
    _district(editing, layer, source, cols, geoms, report, bad, unplaced)
    if progress:
        progress("check", n // 2, n)
    plan = Plan(report, replace=options.mode == "replace")
    current = _current_by_key(editing, layer, key_spec) if key_spec is not None else None
    _validate(editing, layer, source, cols, records, geoms, report, bad, plan, key_spec, current, progress)
    report.bad_rows = int(bad.sum())
    report.problems.sort(key=lambda p: -1 if p.row is None else p.row)  # stable: a row's problems keep their order
    if report.problem_count and report.bad_rows == n and n and geometry_given and source.tabular:
        _hint_crs(source, cols, report)
    if plan.replace:
        report.deletes = editing.reader.count(layer.id)
    report.inserts, report.updates = len(plan.inserts), len(plan.updates)
    if not report.ok:
        plan.inserts, plan.updates = [], []
    if progress:
        progress("check", n, n)
    return plan


def _key_field(layer: Layer, options: Options) -> FieldDef | None:
    if options.mode != "upsert":
        if options.key:
            raise InvalidParameter("--key is for --mode upsert", parameter="key")
        return None
    names = [f.name for f in layer.fields if not f.computed]
    if not options.key or options.key not in names:
        raise InvalidParameter(
            f"upsert needs --key, a field of {layer.id}: {', '.join(names)}",
            parameter="key",
            text=Words(
                zh=f"按键更新须指定匹配键（--key），为图层的字段之一：{', '.join(names)}",
                en=f"upsert needs --key, a field of {layer.id}: {', '.join(names)}",
            ),
        )
    return layer.field(options.key)


def _geometries(source, cols: Columns, given: CoordSystem | None, report: Report, bad: np.ndarray) -> np.ndarray:
    """Every row's geometry in the stored lon/lat (None where a row has none or its coordinates are bad)."""
    n = len(source.rows)
    if not source.tabular:
        raw = source.geometries
        crs = given
        if crs is not None:
            origin = "--crs"
        elif source.crs_code:
            crs, origin = parse_crs(source.crs_code), source.crs_origin
        elif source.crs_wkt:
            crs, origin = crs_from_wkt(source.crs_wkt), source.crs_origin
        else:
            _no_crs(source.format, _first_xy(raw))
        return _stored(raw, crs, origin, report)
    if cols.wkt is not None and (cols.x is None or cols.y is None):
        texts = [row[cols.wkt] for row in source.rows]
        raw = np.empty(n, dtype=object)
        for i, text in enumerate(texts):
            if _blank(text):
                continue
            try:
                raw[i] = shapely.from_wkt(str(text).strip())
            except shapely.errors.GEOSException:
                bad[i] = True
                report.add(
                    Problem(source.numbers[i], source.columns[cols.wkt], _short(text), messages.message("import_wkt"))
                )
        if given is None:
            first = _first_xy(raw)
            if first is not None and describe_coordinates(*first) == "longitude/latitude in degrees":
                crs, origin = WGS84, "WKT in degrees: WGS84"
            else:
                _no_crs("csv", first, source.columns[cols.wkt])
        else:
            crs, origin = given, "--crs"
        return _stored(raw, crs, origin, report)
    xs = np.full(n, np.nan)
    ys = np.full(n, np.nan)
    for i, row in enumerate(source.rows):
        for index, out in ((cols.x, xs), (cols.y, ys)):
            cell = row[index]
            if _blank(cell):
                continue
            number = _float(cell)
            if number is None:
                bad[i] = True
                report.add(
                    Problem(
                        source.numbers[i],
                        source.columns[index],
                        _short(cell),
                        messages.message("import_coordinate", column=source.columns[index]),
                    )
                )
            else:
                out[i] = number
    if given is not None:
        crs, origin = given, "--crs"
    elif cols.kind == "lonlat":
        crs, origin = WGS84, "longitude/latitude columns: WGS84"
        sample = _first_pair(xs, ys)
        if sample is not None and not (abs(sample[0]) <= 180 and abs(sample[1]) <= 180):  # not degrees at all
            _no_crs("csv", sample, f"{source.columns[cols.x]}/{source.columns[cols.y]}")
    else:
        _no_crs("csv", _first_pair(xs, ys), f"{source.columns[cols.x]}/{source.columns[cols.y]}")
    report.crs, report.crs_name, report.crs_origin = crs.code, crs.name, origin
    _note(crs, report)
    have = np.isfinite(xs) & np.isfinite(ys)
    lon, lat = xy_to_storage(xs[have], ys[have], crs)
    out = np.full(n, None, dtype=object)
    out[have] = shapely.points(lon, lat)
    # remembered for the swap check: the coordinates as the file gave them
    source.raw_xy = (xs, ys, crs)
    return out


def _stored(raw: np.ndarray, crs: CoordSystem, origin: str, report: Report) -> np.ndarray:
    report.crs, report.crs_name, report.crs_origin = crs.code, crs.name, origin
    _note(crs, report)
    out = np.asarray(raw, dtype=object).copy()
    present = np.array([isinstance(g, BaseGeometry) and not g.is_empty for g in out], dtype=bool)
    if present.any():
        with np.errstate(invalid="ignore"):
            out[present] = to_storage(out[present], crs)
    return out


def _note(crs: CoordSystem, report: Report) -> None:
    if crs.note:
        report.warnings.append(Words(zh=crs.note_zh or crs.note, en=crs.note))


def _first_xy(geoms) -> tuple[float, float] | None:
    for g in geoms:
        if isinstance(g, BaseGeometry) and not g.is_empty:
            x, y = shapely.get_coordinates(g)[0]
            return float(x), float(y)
    return None


def _first_pair(xs: np.ndarray, ys: np.ndarray) -> tuple[float, float] | None:
    have = np.flatnonzero(np.isfinite(xs) & np.isfinite(ys))
    return (float(xs[have[0]]), float(ys[have[0]])) if len(have) else None


def _no_crs(fmt: str, sample: tuple[float, float] | None, columns: str | None = None):
    """Refuse coordinates whose CRS is unknown, saying what the numbers look like (never a guess)."""
    where = {"shp": "the Shapefile has no .prj", "gpkg": "the GeoPackage table has no CRS"}.get(fmt)
    where_zh = {"shp": "Shapefile 没有 .prj 文件", "gpkg": "GeoPackage 图层没有坐标系"}.get(fmt)
    if columns is not None:
        where, where_zh = f"{columns} hold projected coordinates", f"“{columns}”是投影坐标"
    en = f"{where or 'the coordinate system is unknown'}"
    zh = f"{where_zh or '坐标系未知'}"
    if sample is not None:
        x, y = sample
        looks_en = describe_coordinates(x, y, "en")
        looks_zh = describe_coordinates(x, y, "zh")
        en += f": values like {x:.1f}, {y:.1f}" + (f" look like {looks_en}" if looks_en else "")
        zh += f"：数值如 {x:.1f}、{y:.1f}" + (f"，看起来是{looks_zh}" if looks_zh else "")
    en += "; give the coordinate system (--crs EPSG:n, gcj02 or bd09)"
    zh += "；请指定坐标系（--crs EPSG:n、gcj02 或 bd09）"
    raise InvalidParameter(en, parameter="crs", text=Words(zh=zh, en=en))


def _hint_crs(source, cols: Columns, report: Report) -> None:
    """Every row failed: say what the coordinates look like (a wrong --crs shows this way)."""
    raw = source.raw_xy
    if raw is None:
        return
    sample = _first_pair(raw[0], raw[1])
    if sample is None:
        return
    en_looks, zh_looks = describe_coordinates(*sample, "en"), describe_coordinates(*sample, "zh")
    if en_looks:
        report.warnings.insert(
            0,
            Words(
                zh=f"所有行都未通过检查；坐标数值如 {sample[0]:.6g}、{sample[1]:.6g}，看起来是{zh_looks}，"
                f"而所用坐标系为 {raw[2].code}",
                en=f"every row failed; coordinates like {sample[0]:.6g}, {sample[1]:.6g} look like {en_looks}, "
                f"but the CRS used is {raw[2].code}",
            ),
        )


def _records(source, cols: Columns, report: Report, bad: np.ndarray) -> list[dict]:
    """Each row's field values converted (a cell a field does not take is a problem of its row and column)."""
    excel = source.format == "xlsx"
    items = [(index, spec, spec.name, {}) for index, spec in sorted(cols.fields.items())]
    out = []
    for i, row in enumerate(source.rows):
        record = {}
        for index, spec, name, seen in items:
            cell = row[index]
            # a column repeats its values (kinds, statuses, roads, dates): each distinct cell is converted once
            try:
                result = seen[cell]
            except KeyError:
                try:
                    result = convert(spec, cell, excel=excel)
                except Refused as exc:
                    result = exc
                if len(seen) < 50_000:
                    seen[cell] = result
            except TypeError:  # a cell that is no dictionary key
                try:
                    result = convert(spec, cell, excel=excel)
                except Refused as exc:
                    result = exc
            if isinstance(result, Refused):
                bad[i] = True
                report.add(Problem(source.numbers[i], source.columns[index], _short(cell), result.about(spec.label)))
            else:
                record[name] = result
        out.append(record)
    return out


def _fix_types(layer: Layer, geoms: np.ndarray) -> None:
    """A one-part Multi* where the layer wants the simple type, a simple one where it wants Multi*."""
    allowed = set(layer.geometry)
    for i, g in enumerate(geoms):
        if not isinstance(g, BaseGeometry) or g.geom_type in allowed:
            continue
        kind = g.geom_type
        if kind.startswith("Multi") and kind[5:] in allowed and shapely.get_num_geometries(g) == 1:
            geoms[i] = shapely.get_geometry(g, 0)
        elif f"Multi{kind}" in allowed:
            geoms[i] = {
                "Point": shapely.MultiPoint,
                "LineString": shapely.MultiLineString,
                "Polygon": shapely.MultiPolygon,
            }[kind]([g])


def _district(editing: Editing, layer: Layer, source, cols: Columns, geoms, report: Report, bad, unplaced) -> None:
    """The district rule for every row at once, but those in ``unplaced`` (a row with a bad value is checked too, so
    that the report names all its problems); an outside point that fits once swapped is said to be swapped."""
    outside = np.flatnonzero(editing.outside_district(geoms) & ~unplaced)
    if not len(outside):
        return
    swapped = np.empty(len(outside), dtype=object)
    raw = source.raw_xy
    if raw is not None:
        xs, ys, crs = raw
        have = np.isfinite(xs[outside]) & np.isfinite(ys[outside])
        lon, lat = xy_to_storage(ys[outside][have], xs[outside][have], crs)
        swapped[have] = shapely.points(lon, lat)
    else:
        swapped[:] = [shapely.transform(g, lambda c: c[:, ::-1]) for g in geoms[outside]]
    fits = ~editing.outside_district(swapped)
    column = None
    if cols.x is not None:
        column = f"{source.columns[cols.x]}/{source.columns[cols.y]}"
    elif cols.wkt is not None:
        column = source.columns[cols.wkt]
    for i, ok_swapped in zip(outside, fits, strict=True):
        bad[i] = True
        where = _first_xy([geoms[i]])
        value = None
        if raw is not None:
            value = f"{raw[0][i]:g}, {raw[1][i]:g}"
        elif where is not None:
            value = f"{where[0]:.6f}, {where[1]:.6f}"
        reason = (
            messages.message("import_swapped")
            if ok_swapped
            else messages.message("outside_district", margin=DISTRICT_MARGIN_M)
        )
        report.add(Problem(source.numbers[i], column or "geometry", value, reason))


def _current_by_key(editing: Editing, layer: Layer, key_spec: FieldDef) -> dict[Any, list[tuple[int, int]]]:
    """The layer's features by their key value: value -> [(fid, version)]."""
    data = editing.store.load(layer.id)
    out: dict[Any, list[tuple[int, int]]] = {}
    for fid, value, version in zip(data.fids, data.columns[key_spec.name], data.versions, strict=True):
        if value is not None:
            out.setdefault(value, []).append((int(fid), int(version)))
    return out


def _validate(editing, layer, source, cols, records, geoms, report, bad, plan, key_spec, current, progress) -> None:
    """The layer's own validation (``prepare``) and the upsert's key, collecting every bad row."""
    column_of = {spec.name: source.columns[i] for i, spec in cols.fields.items()}
    geometry_column = "geometry"
    if cols.x is not None and cols.y is not None:
        geometry_column = f"{source.columns[cols.x]}/{source.columns[cols.y]}"
    elif cols.wkt is not None:
        geometry_column = source.columns[cols.wkt]
    metric = editing.store.metric_crs
    owned, closed = editing.closure_fields.get(layer.id, (None, None))

    def problem(i: int, exc: InvalidFeature) -> None:
        bad[i] = True
        parameter = exc.parameter or ""
        column = geometry_column if parameter == "geometry" else column_of.get(parameter, parameter)
        value = records[i].get(parameter) if parameter != "geometry" else None
        reason = exc.text if exc.text is not None else Words(zh=exc.message, en=exc.message)
        report.add(Problem(source.numbers[i], column, _short(value), reason))

    # which rows insert and which update (upsert), and the record each is validated as
    kinds: list[tuple[str, Any]] = []  # ("insert", None) or ("update", (fid, version))
    seen_keys: dict[Any, int] = {}
    merged_updates: dict[int, dict] = {}
    for i in range(len(records)):
        if key_spec is None:
            kinds.append(("insert", None))
            continue
        value = records[i].get(key_spec.name)
        if bad[i]:
            kinds.append(("skip", None))
            continue
        column = column_of[key_spec.name]
        if value is None:
            bad[i] = True
            report.add(
                Problem(source.numbers[i], column, None, messages.message("import_key_missing", label=key_spec.label))
            )
            kinds.append(("skip", None))
            continue
        if value in seen_keys:
            bad[i] = True
            other = source.numbers[seen_keys[value]]
            report.add(
                Problem(
                    source.numbers[i],
                    column,
                    _short(value),
                    messages.message("import_key_duplicate", label=key_spec.label, other=other),
                )
            )
            kinds.append(("skip", None))
            continue
        seen_keys[value] = i
        matches = current.get(value, [])
        if len(matches) > 1:
            bad[i] = True
            report.add(
                Problem(
                    source.numbers[i],
                    column,
                    _short(value),
                    messages.message("import_key_ambiguous", label=key_spec.label, count=len(matches)),
                )
            )
            kinds.append(("skip", None))
        elif matches:
            kinds.append(("update", matches[0]))
        else:
            kinds.append(("insert", None))
    updates_at = [i for i, (k, _) in enumerate(kinds) if k == "update" and not bad[i]]
    if updates_at:
        fids = [kinds[i][1][0] for i in updates_at]
        found = {}
        for start in range(0, len(fids), 500):
            for fid in fids[start : start + 500]:
                feature = editing.store.get(layer.id, fid)
                if feature is not None:
                    found[fid] = feature
        for i in updates_at:
            fid, _ = kinds[i][1]
            feature = found.get(fid)
            if feature is None:
                kinds[i] = ("insert", None)
                continue
            merged = {f.name: feature.properties.get(f.name) for f in layer.fields if not f.computed}
            merged.update(records[i])
            merged_updates[i] = merged
            if geoms[i] is None:
                geoms[i] = feature.geometry
                kinds[i] = ("update", (fid, feature.version, False))
            else:
                kinds[i] = ("update", (fid, feature.version, True))
    if owned:
        for i, (kind, _) in enumerate(kinds):
            if kind == "insert" and not bad[i] and records[i].get(owned) == closed:
                problem(
                    i,
                    InvalidFeature(
                        "closed",
                        parameter=owned,
                        text=messages.message("closure_new", closed=_choice_label(layer, owned, closed)),
                    ),
                )
    todo = [i for i in range(len(records)) if not bad[i] and kinds[i][0] in ("insert", "update")]
    for start in range(0, len(todo), CHUNK):
        if progress:
            progress("check", len(records) // 2 + start // 2, len(records))
        chunk = todo[start : start + CHUNK]
        batch = [merged_updates.get(i, records[i]) for i in chunk]
        try:
            prepare(layer, batch, geoms[chunk], metric)
        except InvalidFeature:
            for i, record in zip(chunk, batch, strict=True):
                try:
                    prepare(layer, [record], [geoms[i]], metric)
                except InvalidFeature as exc:
                    problem(i, exc)
        except GeoappError as exc:  # anything else the validation says is about the file as a whole
            _file_problem(report, exc.message, exc.message_in("zh"))
            return
    for i in todo:
        if bad[i]:
            continue
        kind, info = kinds[i]
        if kind == "insert":
            plan.inserts.append((records[i], geoms[i]))
        else:
            fid, version, new_geometry = info
            plan.updates.append((fid, version, records[i], geoms[i] if new_geometry else None))


def _choice_label(layer: Layer, name: str, value: str):
    choice = layer.field(name).choice(value)
    return choice.label if choice is not None else value


# -- writing ------------------------------------------------------------------------------------------


def apply(editing: Editing, actor: Actor, plan: Plan) -> Report:
    """Write a clean plan through ``Editing.import_features`` (one transaction); refuse a plan with problems."""
    report = plan.report
    if not report.ok:
        raise InvalidFeature(
            f"the file has {report.problem_count} problems; nothing was written",
            parameter="file",
            text=Words(
                zh=f"文件有 {report.problem_count} 处问题，未写入任何数据",
                en=f"the file has {report.problem_count} problems; nothing was written",
            ),
        )
    note = {"file": report.file, "format": report.format, "mode": report.mode, "crs": report.crs}
    counts = editing.import_features(actor, report.layer, plan.inserts, plan.updates, replace=plan.replace, note=note)
    report.inserts, report.deletes = counts["inserted"], counts["deleted"]
    report.unchanged = len(plan.updates) - counts["updated"]
    report.updates = counts["updated"]
    report.written = True
    return report


def run(
    path: str | Path,
    editing: Editing,
    actor: Actor,
    options: Options,
    *,
    dry_run: bool = False,
    name: str | None = None,
    max_rows: int | None = None,
    progress: Progress | None = None,
) -> Report:
    """Check a file and, unless ``dry_run`` or it has problems, import it; return the report."""
    from geoapp.core import permissions

    permissions.require_edit(actor, editing.registry.require(options.layer))
    plan = check(path, editing, options, name=name, max_rows=max_rows, progress=progress)
    plan.report.dry_run = dry_run
    if dry_run or not plan.report.ok:
        return plan.report
    report = apply(editing, actor, plan)
    if progress:
        progress("write", report.rows, report.rows)
    return report


def parse_columns(pairs: Sequence[str]) -> dict[str, str]:
    """``HEADER=FIELD`` pairs (the CLI's ``--column``) as a mapping."""
    out = {}
    for pair in pairs:
        header, sep, target = pair.partition("=")
        if not sep or not header.strip() or not target.strip():
            raise InvalidParameter(
                f"--column takes HEADER=FIELD, not {pair[:60]!r}",
                parameter="column",
                text=Words(
                    zh=f"列映射须写作 表头=字段，而不是 {pair[:60]!r}",
                    en=f"--column takes HEADER=FIELD, not {pair[:60]!r}",
                ),
            )
        out[header.strip()] = target.strip()
    return out
