"""Ledgers (台账): a layer's rows as an Excel workbook or a CSV file, for people who work in spreadsheets.

Flask-free. The columns are the fields the caller may see, headed by their labels in the caller's
language, after an id column (and lon/lat for points; lines and areas carry their computed length
or area fields). Values are written as what they are: dates as Excel dates, numbers as numbers,
yes/no in words, values of a vocabulary as their labels. Every text that a spreadsheet would read as
a formula (starting with ``= + - @``, a tab or a carriage return) is prefixed with ``'`` (OWASP's CSV
injection advice), in both formats, and no XLSX cell is ever written as a formula. What was exported
when, with which filters, and whether the data is the synthetic demo is said beside the rows: a second
sheet in the workbook, the first lines of the CSV.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import unicodedata
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter

from geoapp.core import progress
from geoapp.core.layers import FieldDef, Layer
from geoapp.core.progress import Row, Selection
from geoapp.errors import InvalidParameter
from geoapp.store.base import FeatureReader, Visibility

#: rows a ledger holds at most (a larger one is refused: narrow the filters)
MAX_ROWS = 100_000
FORMATS = ("xlsx", "csv")
MIMETYPES = {
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "csv": "text/csv",
}
#: first characters that make a spreadsheet read a cell as a formula (OWASP, CSV injection)
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
DATE_FORMAT = "yyyy-mm-dd"
#: a moment, in the district's time (the sheet's header says which)
DATETIME_FORMAT = "yyyy-mm-dd hh:mm"
MAX_WIDTH = 60
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)
#: characters no sheet name may hold
_SHEET_NAME = re.compile(r"[\[\]:*?/\\]")

WORDS = {
    "id": {"zh": "编号", "en": "ID"},
    "lon": {"zh": "经度", "en": "Longitude"},
    "lat": {"zh": "纬度", "en": "Latitude"},
    "overdue": {"zh": "逾期", "en": "Overdue"},
    "yes": {"zh": "是", "en": "Yes"},
    "no": {"zh": "否", "en": "No"},
    "about": {"zh": "说明", "en": "About"},
    "item": {"zh": "项目", "en": "Item"},
    "value": {"zh": "内容", "en": "Value"},
    "layer": {"zh": "图层", "en": "Layer"},
    "exported": {"zh": "导出时间", "en": "Exported at"},
    "rows": {"zh": "行数", "en": "Rows"},
    "filters": {"zh": "筛选条件", "en": "Filters"},
    "none": {"zh": "无（全部要素）", "en": "None (every feature)"},
    "sorted": {"zh": "排序", "en": "Sorted by"},
    "fid_order": {"zh": "编号", "en": "ID"},
    "asc": {"zh": "升序", "en": "ascending"},
    "desc": {"zh": "降序", "en": "descending"},
    "fields": {"zh": "字段", "en": "Fields"},
    "public": {"zh": "仅公开字段", "en": "Public fields only"},
    "internal": {"zh": "含内部字段（内部资料，请勿外传）", "en": "Including internal fields (for staff only)"},
    "data": {"zh": "数据说明", "en": "Data"},
    "synthetic": {
        "zh": "演示数据：本台账数据为合成的虚构数据，不是真实记录",
        "en": "Demo data: the rows of this ledger are synthetic, not real records",
    },
    "text": {"zh": "文本包含", "en": "Text contains"},
    "bbox": {"zh": "范围（经纬度）", "en": "Area (lon/lat)"},
    "from_to": {"zh": "至", "en": "to"},
    "ledger": {"zh": "台账", "en": " ledger"},
}


def word(key: str, lang: str) -> str:
    return WORDS[key]["en" if lang == "en" else "zh"]


def neutralise(text: str) -> str:
    """Text a spreadsheet shows as text: a leading formula character gets a ``'`` before it."""
    text = ILLEGAL_CHARACTERS_RE.sub("", text)  # control characters another tool may have stored
    if text.startswith(FORMULA_START) or text.lstrip(" \n").startswith(FORMULA_START):
        return "'" + text
    return text


@dataclass(frozen=True)
class Column:
    key: str  # a field name, or id / lon / lat / overdue
    header: str
    spec: FieldDef | None = None


def _header(spec: FieldDef, lang: str) -> str:
    """A field's label, with its unit: 围挡长度（m）."""
    if not spec.unit:
        return spec.label(lang)
    return f"{spec.label(lang)}（{spec.unit}）" if lang == "zh" else f"{spec.label(lang)} ({spec.unit})"


def columns(layer: Layer, visibility: Visibility, lang: str, *, overdue: bool) -> list[Column]:
    """The ledger's columns: the id, every field the caller may see, lon/lat for points, and overdue for a
    campaign with a target date."""
    out = [Column("id", word("id", lang))]
    out += [Column(f.name, _header(f, lang), f) for f in layer.visible_fields(visibility == "internal")]
    if set(layer.geometry) <= {"Point", "MultiPoint"}:
        out += [Column("lon", word("lon", lang)), Column("lat", word("lat", lang))]
    if overdue:
        out.append(Column("overdue", word("overdue", lang)))
    return out


def _value(column: Column, row: Row, lang: str, lonlat: tuple, zone: dt.tzinfo | None = None) -> Any:
    """A cell's value as it is: a date, a number, yes/no in words, a label; None for nothing."""
    if column.key == "id":
        return row.fid
    if column.key in ("lon", "lat"):
        return lonlat[0] if column.key == "lon" else lonlat[1]
    if column.key == "overdue":
        return word("yes" if row.overdue else "no", lang)
    spec = column.spec
    value = row.properties.get(spec.name)
    if value is None:
        return None
    if spec.type == "boolean" and isinstance(value, bool):
        return word("yes" if value else "no", lang)
    if spec.type in ("integer", "number") and isinstance(value, int | float) and not isinstance(value, bool):
        return value
    if spec.type == "datetime" and isinstance(value, str):
        try:  # a spreadsheet keeps no zone: the district's clock, to the minute
            return dt.datetime.fromisoformat(value).astimezone(zone).replace(tzinfo=None, second=0)
        except ValueError:
            pass
    if spec.type == "date" and isinstance(value, str) and _DATE.fullmatch(value):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    if spec.values is not None:
        choice = spec.choice(value) if isinstance(value, str) else None
        if choice is not None:
            return choice.label(lang)
    return str(value)  # text, or a value of another type that another tool wrote


def _width(text: str) -> int:
    """How many columns of a spreadsheet a text takes: two for a Chinese (wide) character, one for others."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _shown(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float):
        return f"{value:g}"
    return "" if value is None else str(value)


@dataclass(frozen=True)
class Ledger:
    content: bytes
    mimetype: str
    filename: str  # in the request's language (建筑围挡台账_2026-12-02.xlsx)
    fallback: str  # ASCII, for clients without RFC 5987

    def disposition(self) -> str:
        """``Content-Disposition``: an attachment named in ASCII and, by RFC 5987, in UTF-8."""
        return f"attachment; filename=\"{self.fallback}\"; filename*=UTF-8''{quote(self.filename, safe='')}"


def _describe(layer: Layer, selection: Selection, lang: str) -> list[str]:
    """The filters of a selection in words: ``状态：已整治、整治中``."""
    sep = "、" if lang == "zh" else ", "
    colon = "：" if lang == "zh" else ": "
    out = []
    for name, values in selection.query.filters.items():
        spec = layer.field(name)
        shown = []
        for v in values:
            choice = spec.choice(v) if spec.values is not None else None
            shown.append(choice.label(lang) if choice else _shown(v))
        out.append(f"{spec.label(lang)}{colon}{sep.join(shown)}")
    if selection.date_from or selection.date_to:
        spec = layer.field(layer.progress.date_field)
        out.append(
            f"{spec.label(lang)}{colon}{selection.date_from or '…'} {word('from_to', lang)} {selection.date_to or '…'}"
        )
    if selection.overdue is not None:
        out.append(f"{word('overdue', lang)}{colon}{word('yes' if selection.overdue else 'no', lang)}")
    if selection.text:
        out.append(f"{word('text', lang)}{colon}“{selection.text}”")
    if selection.query.bbox:
        out.append(f"{word('bbox', lang)}{colon}{','.join(f'{x:g}' for x in selection.query.bbox)}")
    return out


def _about(
    layer: Layer,
    selection: Selection,
    rows: int,
    visibility: Visibility,
    lang: str,
    now: dt.datetime,
    synthetic: bool,
    joiner: str = "\n",
) -> list[tuple[str, Any]]:
    filters = _describe(layer, selection, lang)
    if selection.sort:
        order = word("desc" if selection.descending else "asc", lang)
        sort = f"{layer.field(selection.sort).label(lang)} {order}"
    else:
        sort = f"{word('fid_order', lang)} {word('asc', lang)}"
    offset = now.strftime("%z")
    about = [
        (word("layer", lang), layer.title(lang)),
        (word("exported", lang), f"{now:%Y-%m-%d %H:%M:%S} ({now.tzinfo}, UTC{offset[:3]}:{offset[3:]})"),
        (word("rows", lang), rows),
        (word("filters", lang), joiner.join(filters) if filters else word("none", lang)),
        (word("sorted", lang), sort),
        (word("fields", lang), word(visibility, lang)),
    ]
    if synthetic:
        about.append((word("data", lang), word("synthetic", lang)))
    return about


def _sheet_title(title: str) -> str:
    return _SHEET_NAME.sub(" ", title)[:31] or "Sheet"


def _cell(ws, value: Any, *, bold: bool = False, wrap: bool = False) -> WriteOnlyCell:
    if isinstance(value, str):
        cell = WriteOnlyCell(ws, value=neutralise(value))
        cell.data_type = "s"  # text, whatever it holds: openpyxl takes a leading = for a formula
    else:
        cell = WriteOnlyCell(ws, value=value)
        if isinstance(value, dt.date):
            cell.number_format = DATETIME_FORMAT if isinstance(value, dt.datetime) else DATE_FORMAT
    if bold:
        cell.font = Font(bold=True)
    if wrap:
        cell.alignment = Alignment(wrap_text=True, vertical="top")
    return cell


def _body_cell(ws, value: Any):
    """A cell of the table as cheaply as it can be written: text (neutralised, so it never starts with ``=`` and
    openpyxl keeps it text), numbers and blanks as they are; only dates need a cell with their format."""
    if isinstance(value, str):
        return neutralise(value)
    if isinstance(value, dt.date):
        return _cell(ws, value)
    return value


def xlsx(table: list[list[Any]], title: str, about: list[tuple[str, Any]], lang: str) -> bytes:
    """A workbook: the table on a sheet named ``title`` (header bold, frozen, with an autofilter; columns wide
    enough for their text), and a second sheet saying what the export is."""
    wb = Workbook(write_only=True)
    ws = wb.create_sheet(_sheet_title(title))
    header, body = table[0], table[1:]
    widths = [_width(str(h)) for h in header]
    for values in body:
        for i, value in enumerate(values):
            widths[i] = max(widths[i], _width(_shown(value)))
    for i, width in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(i)].width = min(max(width, 6) + 2, MAX_WIDTH)
    ws.freeze_panes = "A2"
    ws.auto_filter.ref = f"A1:{get_column_letter(len(header))}{len(table)}"
    ws.append([_cell(ws, h, bold=True) for h in header])
    for values in body:
        ws.append([_body_cell(ws, v) for v in values])

    info = wb.create_sheet(_sheet_title(word("about", lang)))
    info.column_dimensions["A"].width = 14
    info.column_dimensions["B"].width = MAX_WIDTH
    info.append([_cell(info, word("item", lang), bold=True), _cell(info, word("value", lang), bold=True)])
    for name, text in about:
        info.append([_cell(info, name, bold=True), _cell(info, text, wrap=True)])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def csv_bytes(table: list[list[Any]], about: list[tuple[str, Any]]) -> bytes:
    """CSV as Excel opens it: UTF-8 with a BOM, CRLF line ends, RFC 4180 quoting; what the export is on the first
    lines, then an empty line, then the table."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)

    def text(value: Any) -> str:
        if isinstance(value, str):
            return neutralise(value)
        return _shown(value) if not isinstance(value, float) else repr(value)

    for name, value in about:
        writer.writerow([text(name), text(value)])
    writer.writerow([])
    for values in table:
        writer.writerow([text(v) for v in values])
    return out.getvalue().encode("utf-8-sig")


def _too_many(matched: int) -> InvalidParameter:
    return InvalidParameter(
        f"a ledger holds at most {MAX_ROWS:,} rows and {matched:,} match: narrow the filters or the bbox",
        parameter="limit",
    )


def _ascii(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)


def export(
    reader: FeatureReader,
    layer: Layer,
    selection: Selection,
    visibility: Visibility,
    lang: str,
    fmt: str,
    *,
    now: dt.datetime,
    synthetic: bool,
    campaign: bool,
) -> Ledger:
    """The ledger of ``layer``'s rows that ``selection`` matches, as ``fmt`` (xlsx or csv).

    ``campaign``: the layer is read as its progress table is (date range, text, overdue, and an overdue
    column when it has a target date); otherwise only the reader's exact filters and bbox apply. ``now``
    is the export time in the district's time zone (it also dates the file name).
    """
    if fmt not in FORMATS:
        raise InvalidParameter(f"a ledger is one of: {', '.join(FORMATS)}; not {fmt[:20]!r}", parameter="format")
    if campaign:
        matched = progress.select(reader, layer, selection, visibility, now.date())
        rows = matched.rows
    else:
        rows, _ = progress.read_layer(reader, layer, selection.query, visibility, most=MAX_ROWS, refuse=_too_many)
        if selection.sort:
            rows = progress.order_rows(rows, layer.field(selection.sort), selection.descending)
    if len(rows) > MAX_ROWS:
        raise _too_many(len(rows))
    overdue = campaign and progress.due_field(layer, visibility) is not None
    cols = columns(layer, visibility, lang, overdue=overdue)
    points = any(c.key == "lon" for c in cols)
    table: list[list[Any]] = [[c.header for c in cols]]
    for row in rows:
        lonlat = row.lonlat() if points else (None, None)
        table.append([_value(c, row, lang, lonlat, now.tzinfo) for c in cols])
    # the filters one to a line on the workbook's sheet; on one line in a CSV (one record, one line)
    joiner = "\n" if fmt == "xlsx" else ("；" if lang == "zh" else "; ")
    about = _about(layer, selection, len(rows), visibility, lang, now, synthetic, joiner)
    content = xlsx(table, layer.title(lang), about, lang) if fmt == "xlsx" else csv_bytes(table, about)
    day = now.date().isoformat()
    return Ledger(
        content=content,
        mimetype=MIMETYPES[fmt],
        filename=f"{layer.title(lang)}{word('ledger', lang)}_{day}.{fmt}",
        fallback=_ascii(f"{layer.id}_ledger_{day}.{fmt}"),
    )
