"""Opening the bureau's files: which format a file is, its rows, geometries, CRS and encoding. Flask-free.

Every format is read into one shape, a :class:`Source`: the columns as the file names them, the
rows (cell values in column order) with the number each row has *for the user* (the spreadsheet
row, counting the header as row 1; the feature's position from 1 in GeoJSON, GeoPackage,
Shapefile and KML), and for files with geometry the geometries in the file's own CRS, with that
CRS and where it came from. CSV and XLSX carry no geometry: :mod:`geoapp.io.importer` finds the
coordinate columns.

GDAL (through pyogrio) reads GeoJSON, GeoPackage, Shapefile and KML; openpyxl reads XLSX (dates
arrive as datetimes); the csv module reads CSV. A zipped Shapefile or a KMZ is checked and
extracted by :mod:`geoapp.io.archives` first.
"""

from __future__ import annotations

import codecs
import csv
import io
import math
import os
import re
import sqlite3
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from geoapp.core.messages import Words
from geoapp.io.archives import ExtractedZip, refuse

#: format -> (zh, en) names as the report shows them
FORMATS = {
    "geojson": ("GeoJSON", "GeoJSON"),
    "gpkg": ("GeoPackage", "GeoPackage"),
    "shp": ("Shapefile（zip 压缩）", "zipped Shapefile"),
    "csv": ("CSV", "CSV"),
    "xlsx": ("Excel（XLSX）", "Excel (XLSX)"),
    "kml": ("KML", "KML"),
    "kmz": ("KMZ", "KMZ"),
}
EXTENSIONS = {
    ".geojson": "geojson",
    ".json": "geojson",
    ".gpkg": "gpkg",
    ".zip": "shp",
    ".csv": "csv",
    ".txt": "csv",
    ".xlsx": "xlsx",
    ".kml": "kml",
    ".kmz": "kmz",
}
#: what the first bytes of a file say it is
_MAGIC = ((b"PK\x03\x04", "zip"), (b"SQLite format 3\x00", "gpkg"))
#: the most columns (CSV, XLSX) or properties (GeoJSON, ...) a file may have: each row is held as wide as this
MAX_COLUMNS = 1000
#: the GDAL drivers that may open each format, and the prefix that pins the driver where GDAL has one
DRIVERS = {
    "geojson": ("GeoJSON",),
    "gpkg": ("GPKG",),
    "shp": ("ESRI Shapefile",),
    "kml": ("LIBKML", "KML"),
    "kmz": ("LIBKML", "KML"),
}
_PREFIX = {"geojson": "GeoJSON:", "gpkg": "GPKG:"}
#: GeoPackage application ids (GPKG, and GP10/GP11 of the 1.0/1.1 drafts)
_GPKG_IDS = (b"GPKG", b"GP10", b"GP11")
#: the SQLite steps (progress-handler calls of 1000 instructions) a GeoPackage's schema check may take
SQLITE_BUDGET = 20_000
_KML_ROOT = re.compile(rb"^(?:<\?xml[^>]*\?>)?\s*(?:<!--.*?-->\s*)*<(?:[A-Za-z_][\w.-]*:)?kml[\s>/]", re.DOTALL)


@dataclass
class Source:
    """A file read into rows (see the module's docstring)."""

    name: str
    format: str
    columns: list[str]
    rows: list[list[Any]]
    numbers: list[int]  # the row or feature number the user sees, per row
    geometries: np.ndarray | None = None  # shapely objects in the file's CRS (None where a row has none)
    crs_wkt: str | None = None  # the file's own CRS (a .prj, a GeoPackage's srs)
    crs_code: str | None = None  # where the format fixes it: EPSG:4326 for GeoJSON and KML
    crs_origin: str | None = None  # where the CRS came from, for the report ("the .prj file")
    encoding: str | None = None
    warnings: list[Words] = field(default_factory=list)
    #: CSV/XLSX coordinates as the file gives them, and the CRS they are in (set by the importer)
    raw_xy: tuple | None = None

    @property
    def tabular(self) -> bool:
        """Whether coordinates come from columns (CSV, XLSX) rather than the file's geometry."""
        return self.geometries is None


def detect(path: Path, name: str | None = None) -> str:
    """The format of a file, from its extension and its first bytes (which must agree)."""
    name = name or path.name
    ext = Path(name).suffix.lower()
    fmt = EXTENSIONS.get(ext)
    with open(path, "rb") as f:
        head = f.read(16)
    magic = next((kind for prefix, kind in _MAGIC if head.startswith(prefix)), None)
    if fmt is None:
        known = ", ".join(sorted(EXTENSIONS))
        raise refuse(
            f"cannot tell the format of {name[:80]!r}: the name ends in {ext or 'nothing'!r}; accepted: {known}",
            f"无法识别文件 {name[:80]!r} 的格式（扩展名 {ext or '无'}）；可导入：{known}",
        )
    expects_zip = fmt in ("shp", "kmz", "xlsx")
    if (magic == "zip") != expects_zip or (fmt == "gpkg") != (magic == "gpkg"):
        raise refuse(
            f"{name[:80]!r} is named as {FORMATS[fmt][1]} but its content is not",
            f"文件 {name[:80]!r} 的扩展名表明是{FORMATS[fmt][0]}，但内容不是",
        )
    return fmt


def read(
    path: str | os.PathLike,
    *,
    name: str | None = None,
    encoding: str | None = None,
    source_layer: str | None = None,
    max_rows: int | None = None,
) -> Source:
    """Read a file into a :class:`Source`; ``name`` is how the user named it (an upload keeps a random name)."""
    path = Path(path)
    name = name or path.name
    fmt = detect(path, name)
    options_encoding = encoding or ""
    if encoding is not None:
        encoding = text_encoding(encoding)
        if encoding is None:
            shown = options_encoding[:40]
            raise refuse(
                f"unknown encoding {shown!r}; use for example UTF-8, GBK or GB18030",
                f"未知的编码 {shown!r}；可用 UTF-8、GBK 或 GB18030 等",
                "encoding",
            )
    if fmt == "csv":
        source = _read_csv(path, name, encoding, max_rows)
    elif fmt == "xlsx":
        source = _read_xlsx(path, name, source_layer, max_rows)
    elif fmt == "shp":
        with ExtractedZip(path) as extracted:
            source = _read_shapefile(extracted.files, name, encoding, max_rows)
    elif fmt == "kmz":
        with ExtractedZip(path) as extracted:
            kml = [p for p in extracted.files if p.suffix.lower() == ".kml"]
            if len(kml) != 1:
                raise refuse("a KMZ must hold one .kml file", "KMZ 内须有且只有一个 .kml 文件")
            source = _read_ogr(kml[0], name, "kmz", None, None, max_rows)
    else:
        source = _read_ogr(path, name, fmt, encoding, source_layer, max_rows)
    return source


def text_encoding(encoding: str) -> str | None:
    """A codec's Python name if it decodes bytes to text (not base64, rot13, zlib, ...), else None."""
    try:
        info = codecs.lookup(encoding)
    except (LookupError, TypeError, ValueError):
        return None
    if not getattr(info, "_is_text_encoding", True):
        return None
    return info.name


# -- files with geometry (GDAL) ------------------------------------------------------------------


def _read_shapefile(files: list[Path], name: str, encoding: str | None, max_rows: int | None) -> Source:
    by_ext: dict[str, list[Path]] = {}
    for p in files:
        by_ext.setdefault(p.suffix.lower(), []).append(p)
    shp = by_ext.get(".shp", [])
    if len(shp) != 1:
        found = ", ".join(p.name for p in files[:10]) or "nothing"
        raise refuse(
            f"the zip must hold exactly one .shp (with its .shx and .dbf); found: {found}",
            f"zip 内须有且只有一个 .shp 文件（及其 .shx、.dbf）；实际：{found}",
        )
    stem = shp[0].stem
    for ext in (".shx", ".dbf"):
        if not any(p.stem == stem for p in by_ext.get(ext, [])):
            raise refuse(
                f"the Shapefile {stem}.shp comes without its {ext} file",
                f"Shapefile {stem}.shp 缺少 {ext} 文件",
            )
    prj = next((p for p in by_ext.get(".prj", []) if p.stem == stem), None)
    cpg = next((p for p in by_ext.get(".cpg", []) if p.stem == stem), None)
    dbf = next(p for p in by_ext[".dbf"] if p.stem == stem)
    warnings: list[Words] = []
    origin = "--encoding"
    if encoding is None:
        if cpg is not None:
            declared = cpg.read_text("ascii", errors="replace").strip()
            encoding = _cpg_encoding(declared)
            origin = f"{stem}.cpg"
        else:
            encoding, origin = _dbf_encoding(dbf)
    source = _read_ogr(shp[0], name, "shp", encoding, None, max_rows)
    source.encoding = f"{encoding} ({origin})"
    if prj is not None:
        source.crs_wkt = prj.read_text("utf-8", errors="replace")
        source.crs_origin = f"{stem}.prj"
    else:
        source.crs_wkt = None
        source.crs_origin = None
    source.warnings[:0] = warnings
    return source


def _cpg_encoding(declared: str) -> str:
    """A .cpg's code page as a Python codec name (ArcGIS writes 936 for GBK, 65001 for UTF-8)."""
    aliases = {"936": "gbk", "cp936": "gbk", "65001": "utf-8", "utf8": "utf-8", "54936": "gb18030"}
    text = aliases.get(declared.lower(), declared)
    known = text_encoding(text)
    if known is None:
        raise refuse(
            f"the .cpg names the encoding {declared[:40]!r}, which is unknown; give --encoding",
            f".cpg 文件给出的编码 {declared[:40]!r} 无法识别；请指定编码",
            "encoding",
        )
    return known


def _dbf_encoding(dbf: Path) -> tuple[str, str]:
    """The encoding of a .dbf that comes without a .cpg: UTF-8 if its bytes are, else a refusal naming GBK."""
    data = dbf.read_bytes()
    start = int.from_bytes(data[8:10], "little") if len(data) >= 32 else 0
    body = data[start:]
    try:
        body.decode("utf-8")
        return "utf-8", "its text is valid UTF-8; no .cpg"
    except UnicodeDecodeError:
        pass
    try:
        body.decode("gb18030")
        guess = "GBK"
    except UnicodeDecodeError:
        guess = None
    hint_en = f" (it reads as {guess})" if guess else ""
    hint_zh = f"（看起来是 {guess}）" if guess else ""
    raise refuse(
        f"the Shapefile has no .cpg and its text is not UTF-8{hint_en}: give its encoding (--encoding GBK)",
        f"Shapefile 没有 .cpg 文件，其文字也不是 UTF-8{hint_zh}：请指定编码（如 --encoding GBK）",
        "encoding",
    )


def _unreadable(name: str, fmt: str, reason: str, reason_zh: str | None = None) -> Exception:
    return refuse(
        f"{name[:80]!r} cannot be read as {FORMATS[fmt][1]}: {reason[:200]}",
        f"无法按{FORMATS[fmt][0]}读取 {name[:80]!r}：{(reason_zh or reason)[:200]}",
    )


def _not_the_format(name: str, fmt: str) -> Exception:
    return _unreadable(name, fmt, f"its content is not {FORMATS[fmt][1]}", f"其内容不是{FORMATS[fmt][0]}")


def _gdal_reason(exc: Exception, path: Path) -> str:
    """GDAL's message without the server's paths (the private temporary folder, the upload folder)."""
    text = str(exc)
    for where in (str(path), str(path.parent)):
        text = text.replace(where + "/", "").replace(where, path.name)
    return re.sub(r"(/[\w.+-]+){2,}", "…", text)


def check_content(path: Path, name: str, fmt: str) -> None:
    """Refuse a file whose content is not the format its name says, before GDAL sees it.

    GDAL picks a driver by content: a ``.geojson`` holding GDAL's virtual format (VRT XML) would be
    read as a VRT, which opens any file or URL it names. So each format's first bytes are checked
    (GeoJSON starts with ``{``, KML's root element is ``kml`` and it has no DTD, a .shp has file code
    9994, a GeoPackage is SQLite with the GeoPackage application id), and GDAL is then told the one
    driver it may use (:data:`DRIVERS`)."""
    with open(path, "rb") as f:
        head = f.read(64 * 1024)
    bare = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    wrong = False
    if fmt in ("geojson", "kml", "kmz", "shp") and b"ogrvrtdatasource" in head.lower():
        wrong = True
    elif fmt == "geojson":
        wrong = not bare.startswith(b"{")
    elif fmt in ("kml", "kmz"):
        lowered = bare.lower()
        wrong = not _KML_ROOT.match(bare) or b"<!doctype" in lowered or b"<!entity" in lowered
        if not wrong:
            with open(path, "rb") as f:
                wrong = b"networklink" in f.read().lower()  # KML that points at other files or URLs
    elif fmt == "shp":
        wrong = len(head) < 100 or head[:4] != b"\x00\x00\x27\x0a"
    elif fmt == "gpkg":
        wrong = len(head) < 100 or not head.startswith(b"SQLite format 3\x00") or head[68:72] not in _GPKG_IDS
    if wrong:
        raise _not_the_format(name, fmt)
    if fmt == "gpkg":
        _check_geopackage(path, name)


def _check_geopackage(path: Path, name: str) -> None:
    """Every table GDAL would read is a real table (no view, no virtual table but an R-tree index, no generated
    column): a view may run an endless query, which GDAL would run for ever. Read-only, with a step budget."""
    uri = "file:" + urllib.parse.quote(str(path.resolve())) + "?mode=ro&immutable=1"
    steps = [0]

    def budget() -> int:
        steps[0] += 1
        return 1 if steps[0] > SQLITE_BUDGET else 0

    problem = None
    try:
        db = sqlite3.connect(uri, uri=True, check_same_thread=False)
    except sqlite3.Error as exc:
        raise _unreadable(name, "gpkg", str(exc)) from None
    try:
        db.set_progress_handler(budget, 1000)
        db.execute("PRAGMA query_only = 1")
        db.execute("PRAGMA trusted_schema = 0")
        schema = db.execute("SELECT type, name, sql FROM sqlite_master").fetchall()
        kinds = {n: (t, (sql or "").lstrip().upper()) for t, n, sql in schema}
        views = [n for t, n, _ in schema if t == "view"]
        virtual = [
            n
            for t, n, sql in schema
            if t == "table"
            and (sql or "").lstrip().upper().startswith("CREATE VIRTUAL")
            and "USING RTREE" not in re.sub(r"\s+", " ", (sql or "").upper())
        ]
        if views or virtual:
            listed = ", ".join((views + virtual)[:5])[:120]
            problem = (
                f"it holds views or virtual tables ({listed}); export plain tables",
                f"其中含有视图或虚拟表（{listed}）；请导出为普通数据表",
            )
        elif kinds.get("gpkg_contents", ("",))[0] != "table":
            problem = ("it has no gpkg_contents table", "缺少 gpkg_contents 表")
        else:
            for (table,) in db.execute("SELECT table_name FROM gpkg_contents").fetchall():
                if kinds.get(str(table), ("",))[0] != "table":
                    shown = str(table)[:60]
                    problem = (f"gpkg_contents names {shown!r}, which is not a table", f"图层 {shown!r} 不是数据表")
                    break
                hidden = db.execute("SELECT count(*) FROM pragma_table_xinfo(?) WHERE hidden IN (2, 3)", (table,))
                if hidden.fetchone()[0]:
                    shown = str(table)[:60]
                    problem = (f"the table {shown!r} has generated columns", f"数据表 {shown!r} 含有生成列")
                    break
    except sqlite3.Error as exc:
        if "interrupt" in str(exc):
            problem = ("its schema takes too long to read", "读取其结构耗时过长")
        else:
            problem = ("its schema cannot be read", "无法读取其结构")
    finally:
        db.close()
    if problem:
        raise _unreadable(name, "gpkg", *problem)


#: GDAL settings while an import reads a file: no /vsicurl/ file, every HTTP request to a closed port at once
SEALED = {
    "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".geoapp-no-remote-files",
    "GDAL_HTTP_PROXY": "127.0.0.1:9",
    "GDAL_HTTP_TIMEOUT": "1",
    "GDAL_HTTP_CONNECTTIMEOUT": "1",
    "GDAL_HTTP_MAX_RETRY": "0",
    "LIBKML_RESOLVE_STYLE": "NO",
    "LIBKML_EXTERNAL_STYLE": "NO",
}


@contextmanager
def sealed_gdal() -> Iterator[None]:
    """GDAL cut off from the network (and remote files) while it reads an uploaded file; the settings before
    are restored after (the app's other GDAL work, exports, writes local files only)."""
    import pyogrio

    before = {key: pyogrio.get_gdal_config_option(key) for key in SEALED}
    pyogrio.set_gdal_config_options(SEALED)
    try:
        yield
    finally:
        pyogrio.set_gdal_config_options(before)


def _read_ogr(
    path: Path, name: str, fmt: str, encoding: str | None, source_layer: str | None, max_rows: int | None
) -> Source:
    check_content(path, name, fmt)
    with sealed_gdal():
        return _read_gdal(path, name, fmt, encoding, source_layer, max_rows)


def _read_gdal(
    path: Path, name: str, fmt: str, encoding: str | None, source_layer: str | None, max_rows: int | None
) -> Source:
    import pyogrio
    import pyogrio.raw
    import shapely

    # the driver pinned where GDAL has a prefix for it (a path with a colon would confuse the GPKG prefix)
    target = (_PREFIX.get(fmt, "") if ":" not in str(path) else "") + str(path)
    try:
        layers = [(str(n), g) for n, g in pyogrio.list_layers(target)]
    except Exception as exc:  # GDAL's errors are DataSourceError and friends: the file is unreadable
        raise _unreadable(name, fmt, _gdal_reason(exc, path)) from None
    spatial = [n for n, g in layers if g is not None]
    if fmt in ("kml", "kmz"):
        chosen = spatial or [n for n, _ in layers]
    elif source_layer is not None:
        if source_layer not in [n for n, _ in layers]:
            raise refuse(
                f"{name[:80]!r} has no table {source_layer[:60]!r}; its tables: {', '.join(spatial)}",
                f"{name[:80]!r} 中没有图层 {source_layer[:60]!r}；其图层：{', '.join(spatial)}",
                "source_layer",
            )
        chosen = [source_layer]
    elif len(spatial) == 1 or (len(spatial) == 0 and len(layers) == 1):
        chosen = spatial or [layers[0][0]]
    else:
        raise refuse(
            f"{name[:80]!r} holds {len(spatial)} tables ({', '.join(spatial[:20])}): name one with --source-layer",
            f"{name[:80]!r} 中有 {len(spatial)} 个图层（{'、'.join(spatial[:20])}）：请指定要导入的图层",
            "source_layer",
        )
    columns: list[str] = []
    rows: list[list[Any]] = []
    geoms: list[Any] = []
    crs_wkt = None
    for layer in chosen:
        kwargs: dict[str, Any] = {"layer": layer}
        if encoding and fmt == "shp":
            kwargs["encoding"] = encoding
        if max_rows is not None:
            kwargs["max_features"] = max_rows + 1 - len(rows)
        try:
            info = pyogrio.read_info(target, layer=layer, **({"encoding": encoding} if "encoding" in kwargs else {}))
        except Exception as exc:
            raise _unreadable(name, fmt, _gdal_reason(exc, path)) from None
        if info.get("driver") not in DRIVERS[fmt]:
            raise _not_the_format(name, fmt)
        if len(info.get("fields", ())) > MAX_COLUMNS:
            raise _too_wide(name, len(info["fields"]))
        try:
            meta, _, geometry, values = pyogrio.raw.read(target, **kwargs)
        except UnicodeDecodeError:
            raise refuse(
                f"the text of {name[:80]!r} is not {encoding}: give the right encoding",
                f"{name[:80]!r} 的文字不是 {encoding} 编码：请指定正确的编码",
                "encoding",
            ) from None
        except Exception as exc:
            raise _unreadable(name, fmt, _gdal_reason(exc, path)) from None
        names = [str(n) for n in meta["fields"]]
        for n in names:
            if n not in columns:
                columns.append(n)
        crs_wkt = crs_wkt or meta.get("crs")
        shapes = shapely.from_wkb(geometry) if geometry is not None else np.full(len(values[0]) if values else 0, None)
        cols = [_plain(v) for v in values]
        index = [columns.index(n) for n in names]
        count = len(shapes)
        for i in range(count):
            row = [None] * len(columns)
            for j, col in zip(index, cols, strict=True):
                row[j] = col[i]
            rows.append(row)
        geoms.extend(shapes)
        _limit(len(rows), max_rows)
    width = len(columns)
    rows = [r + [None] * (width - len(r)) for r in rows]
    source = Source(
        name=name,
        format=fmt,
        columns=columns,
        rows=rows,
        numbers=list(range(1, len(rows) + 1)),
        geometries=np.asarray(geoms, dtype=object),
    )
    if fmt == "geojson" and crs_wkt and crs_wkt != "EPSG:4326":
        # the file's own crs member (GDAL, QGIS and this app's export with ?crs= write it)
        if str(crs_wkt).upper().startswith("EPSG:"):
            source.crs_code = str(crs_wkt).upper()
        else:
            source.crs_wkt = crs_wkt
        source.crs_origin = "the GeoJSON's crs member"
        source.encoding = "utf-8"
    elif fmt in ("geojson", "kml", "kmz"):
        source.crs_code = "EPSG:4326"
        source.crs_origin = {"geojson": "GeoJSON is WGS84", "kml": "KML is WGS84", "kmz": "KML is WGS84"}[fmt]
        source.encoding = "utf-8"
    elif fmt == "gpkg":
        source.crs_wkt = crs_wkt
        source.crs_origin = "the GeoPackage's srs" if crs_wkt else None
        source.encoding = "utf-8"
    return source


def _plain(values: np.ndarray) -> list[Any]:
    """A column GDAL read as plain Python values: None for nulls and NaN, datetimes for dates."""
    if values.dtype.kind == "M":
        out = values.astype("datetime64[us]").tolist()
        return [None if v is None else v for v in out]
    out = values.tolist()
    if values.dtype.kind == "f":
        return [None if (v is None or (isinstance(v, float) and math.isnan(v))) else v for v in out]
    return out


def _too_wide(name: str, count: int) -> Exception:
    return refuse(
        f"{name[:80]!r} has {count} columns; at most {MAX_COLUMNS} are accepted",
        f"{name[:80]!r} 有 {count} 列，最多接受 {MAX_COLUMNS} 列",
    )


def _limit(count: int, max_rows: int | None) -> None:
    if max_rows is not None and count > max_rows:
        raise refuse(
            f"the file has more than {max_rows} rows, the most one import takes (GEOAPP_IMPORT_MAX_ROWS)",
            f"文件超过 {max_rows} 行，单次导入最多 {max_rows} 行",
        )


# -- tables (CSV, XLSX) ---------------------------------------------------------------------------


def _read_csv(path: Path, name: str, encoding: str | None, max_rows: int | None) -> Source:
    data = path.read_bytes()
    origin = "--encoding"
    if encoding is None:
        try:
            text = data.decode("utf-8-sig")
            encoding, origin = "utf-8", "detected"
        except UnicodeDecodeError:
            try:
                data.decode("gb18030")
                guess = " (it reads as GBK/GB18030)"
                guess_zh = "（看起来是 GBK/GB18030）"
            except UnicodeDecodeError:
                guess = guess_zh = ""
            raise refuse(
                f"{name[:80]!r} is not UTF-8{guess}: give its encoding (--encoding GBK)",
                f"{name[:80]!r} 不是 UTF-8 编码{guess_zh}：请指定编码（如 GBK）",
                "encoding",
            ) from None
    else:
        try:
            text = data.decode(encoding)
        except UnicodeError as exc:
            line = data[: getattr(exc, "start", 0)].count(b"\n") + 1
            raise refuse(
                f"{name[:80]!r} is not {encoding} (line {line}): give the right encoding",
                f"{name[:80]!r} 不是 {encoding} 编码（第 {line} 行）：请指定正确的编码",
                "encoding",
            ) from None
        text = text.removeprefix("\ufeff")
    sample = text[:8192]
    try:
        dialect = csv.Sniffer().sniff(sample.split("\n", 1)[0] or ",", delimiters=",;\t|")
        delimiter = dialect.delimiter
    except csv.Error:
        delimiter = ","
    # a cell may be as long as the file (a long WKT line): the field's own length check reports it
    csv.field_size_limit(max(csv.field_size_limit(), len(text) + 1))
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header: list[str] | None = None
    rows, numbers = [], []
    row_no = 0  # as a spreadsheet opening the CSV numbers it: one row per record, empty ones too
    about = False  # the app's own export: "about" lines (two cells each), an empty line, then the table
    skipped_about = False  # then the rows keep the numbers a spreadsheet shows
    width = 0
    try:
        for row in reader:
            row_no += 1
            if about:
                if not any(cell.strip() for cell in row):
                    about = False
                continue
            if not any(cell.strip() for cell in row):
                continue
            if header is None:
                if not skipped_about and len(row) == 2 and row[0].strip() in _ABOUT_FIRST and _has_blank_record(text):
                    about = skipped_about = True
                    continue
                if len(row) > MAX_COLUMNS:  # counted as written: 100,000 commas are refused, not trimmed
                    raise _too_wide(name, len(row))
                header = [c.strip() for c in row]
                while header and not header[-1]:
                    header.pop()
                width = len(header)
                if not skipped_about:
                    row_no = 1
                continue
            rows.append(row if len(row) <= width else row[:width])
            numbers.append(row_no)
            _limit(len(rows), max_rows)
    except csv.Error as exc:
        raise refuse(
            f"{name[:80]!r} cannot be read as CSV at row {row_no + 1}: {str(exc)[:120]}",
            f"{name[:80]!r} 第 {row_no + 1} 行无法按 CSV 读取：{str(exc)[:120]}",
        ) from None
    if header is None:
        raise refuse(f"{name[:80]!r} is empty", f"文件 {name[:80]!r} 为空")
    return Source(
        name=name, format="csv", columns=header, rows=rows, numbers=numbers, encoding=f"{encoding} ({origin})"
    )


#: the first cell of the app's own CSV export (the ledger's "about" lines: 图层/Layer, then the title)
_ABOUT_FIRST = ("图层", "Layer", "'图层", "'Layer")


def _has_blank_record(text: str) -> bool:
    return bool(re.search(r"\n\s*\n", text[:200_000]))


def _read_xlsx(path: Path, name: str, sheet: str | None, max_rows: int | None) -> Source:
    from openpyxl import load_workbook

    from geoapp.errors import GeoappError
    from geoapp.io.archives import check_members, open_zip

    with open_zip(path) as archive:  # an XLSX is a zip: the same bomb checks first
        check_members(archive)
    header: list[str] | None = None
    rows, numbers = [], []
    width = 0
    # a file object: openpyxl refuses a path whose name does not end in .xlsx (an upload's is <id>.data)
    with open(path, "rb") as handle:
        try:
            book = load_workbook(handle, read_only=True, data_only=True)
            try:
                if sheet is not None:
                    if sheet not in book.sheetnames:
                        raise refuse(
                            f"{name[:80]!r} has no sheet {sheet[:60]!r}; its sheets: {', '.join(book.sheetnames)}",
                            f"{name[:80]!r} 中没有工作表 {sheet[:60]!r}；其工作表：{'、'.join(book.sheetnames)}",
                            "source_layer",
                        )
                    ws = book[sheet]
                else:
                    ws = book.worksheets[0]
                # at most one column beyond the cap is read: a used range reaching XFD pads nothing
                for row_no, values in enumerate(ws.iter_rows(values_only=True, max_col=MAX_COLUMNS + 1), start=1):
                    if not any(v is not None and str(v).strip() for v in values):
                        continue
                    if header is None:
                        header = ["" if v is None else str(v).strip() for v in values]
                        while header and not header[-1]:
                            header.pop()
                        if len(header) > MAX_COLUMNS:
                            raise _too_wide(name, f"more than {MAX_COLUMNS}")
                        width = len(header)
                        continue
                    rows.append(list(values[:width]))
                    numbers.append(row_no)
                    _limit(len(rows), max_rows)
            finally:
                book.close()
        except GeoappError:
            raise
        except Exception as exc:  # a damaged or hostile workbook: broken XML, a DTD, no worksheet, ...
            reason = str(exc).replace(str(path), name)[:200]
            raise refuse(
                f"{name[:80]!r} cannot be read as an Excel workbook: {reason}",
                f"无法按 Excel 工作簿读取 {name[:80]!r}：{reason}",
            ) from None
    if header is None:
        raise refuse(f"the sheet of {name[:80]!r} is empty", f"{name[:80]!r} 的工作表为空")
    return Source(name=name, format="xlsx", columns=header, rows=rows, numbers=numbers, encoding=None)
