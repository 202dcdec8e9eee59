"""Reading the 12345 hotline's XLSX exports of tickets and placing them on the map. Flask-free.

:func:`read_hotline` reads one workbook's first sheet: a header row (found among the first rows, below
any title) naming the columns in Chinese or English, then one ticket a row. A row without a ticket
number, a time received or an address is a :class:`RowProblem` naming its row and the column as headed
in the file; the others become :class:`HotlineRow`, their time in UTC and their category mapped to a
case subcategory by layers/cases/hotline.yaml. :func:`locate` geocodes every row and splits them into
located and unlocated, each with its :class:`~geoapp.cases.geocode.Geocoded`: nothing is dropped.
"""

from __future__ import annotations

import dataclasses
import os
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml

from geoapp.cases.geocode import Geocoded, Geocoder
from geoapp.config import PROJECT_ROOT
from geoapp.errors import GeoappError
from geoapp.io.archives import check_members, open_zip, refuse

__all__ = [
    "MAX_BYTES",
    "MAX_ROWS",
    "Categories",
    "HotlineBatch",
    "HotlineRow",
    "RowProblem",
    "locate",
    "read_hotline",
]

MAX_BYTES = 20 * 2**20  # 20 MB; a year of a district's tickets is a few MB
MAX_ROWS = 20_000
#: rows searched for the header, below a title or a note the export may start with
HEADER_SEARCH_ROWS = 10
#: columns read of each row: an export has a dozen or two; a used range reaching column XFD pads nothing
MAX_COLUMNS = 64
CATEGORIES_FILE = PROJECT_ROOT / "layers" / "cases" / "hotline.yaml"
TIMEZONE = "Asia/Shanghai"

#: each column's accepted headers, Chinese and English (compared without case, spaces or full-width forms)
COLUMNS: dict[str, tuple[str, ...]] = {
    "ticket": ("工单编号", "工单号", "ticket", "ticket_no"),
    "received": ("来电时间", "受理时间", "received", "received_at"),
    "address": ("诉求地址", "事发地址", "address"),
    "description": ("诉求内容", "description"),
    "category": ("诉求类别", "诉求分类", "category"),
}
REQUIRED = ("ticket", "received", "address")
_TIME_FORMATS = ("%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y/%m/%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S")


@dataclass(frozen=True)
class HotlineRow:
    """One ticket: its spreadsheet row number, the time received (UTC, ``YYYY-MM-DDTHH:MM:SSZ``) and its texts."""

    row: int
    ticket: str
    received_at: str
    address: str
    description: str
    category: str
    subcategory: str  # a value of the cases layer's subcategory, from layers/cases/hotline.yaml


@dataclass(frozen=True)
class RowProblem:
    """Why a row was not read: its row number, the column as headed in the file, a code and a sentence."""

    row: int
    column: str
    code: str  # missing | bad_time | duplicate
    reason: str


@dataclass(frozen=True)
class HotlineBatch:
    rows: tuple[HotlineRow, ...]
    problems: tuple[RowProblem, ...]

    @property
    def problem_rows(self) -> set[int]:
        return {p.row for p in self.problems}


@dataclass(frozen=True)
class Categories:
    """Hotline category texts to case subcategories: keyword rules in order, then a default."""

    rules: tuple[tuple[str, tuple[str, ...]], ...]
    default: str

    @classmethod
    def load(cls, path: str | os.PathLike = CATEGORIES_FILE, allowed: Iterable[str] | None = None) -> Categories:
        """Read the table; with ``allowed`` (the layer's subcategory values) refuse a value outside them."""
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        rules = tuple(
            (str(rule["subcategory"]), tuple(_fold(str(k)) for k in rule["keywords"])) for rule in data.get("rules", ())
        )
        default = str(data.get("default", ""))
        if allowed is not None:
            allowed = set(allowed)
            unknown = sorted({default, *(s for s, _ in rules)} - allowed)
            if unknown:
                raise ValueError(
                    f"{path}: unknown subcategory {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}"
                )
        if not default:
            raise ValueError(f"{path}: no default subcategory")
        return cls(rules, default)

    def subcategory(self, category: str, description: str = "") -> str:
        """The subcategory of a ticket: by its category text, else by its description, else the default."""
        for text in (_fold(category), _fold(description)):
            for value, keywords in self.rules:
                if any(k in text for k in keywords):
                    return value
        return self.default


def read_hotline(
    path: str | os.PathLike,
    *,
    name: str | None = None,
    categories: Categories | None = None,
    max_bytes: int = MAX_BYTES,
    max_rows: int = MAX_ROWS,
    timezone: str = TIMEZONE,
) -> HotlineBatch:
    """Read a hotline XLSX export.

    Parameters
    ----------
    path : path-like
        The workbook; its first sheet is read.
    name : str, optional
        How the user named the file (an upload keeps a random name), for messages.
    categories : Categories, optional
        The category table; layers/cases/hotline.yaml by default.
    max_bytes, max_rows : int
        A larger file, or a sheet of more data rows, is refused before any row is returned.
    timezone : str
        The IANA zone in which the export writes its times.

    Returns
    -------
    HotlineBatch
        The rows read and the problems of the rows that could not be (by row number and header).

    Raises
    ------
    geoapp.errors.InvalidParameter
        The file is too large, not an XLSX workbook, has no header row or lacks a required column, or
        holds more than ``max_rows`` rows.
    """
    from openpyxl import load_workbook

    path = Path(path)
    shown = (name or path.name)[:80]
    size = path.stat().st_size
    if size > max_bytes:
        limit = f"{max_bytes / 2**20:g} MB"
        raise refuse(
            f"{shown!r} is {size:,} bytes; a hotline export may be at most {limit}",
            f"{shown!r} 大小 {size:,} 字节，热线工单文件最大 {limit}",
        )
    with open(path, "rb") as handle:
        if handle.read(4) != b"PK\x03\x04":
            raise refuse(
                f"{shown!r} is not an XLSX workbook (an .xls or CSV must be saved as .xlsx first)",
                f"{shown!r} 不是 XLSX 工作簿（.xls 或 CSV 请先另存为 .xlsx）",
            )
    with open_zip(path) as archive:  # an XLSX is a zip: the archive checks against bombs first
        check_members(archive)
    categories = categories or Categories.load()
    zone = ZoneInfo(timezone)
    with open(path, "rb") as handle:
        try:
            book = load_workbook(handle, read_only=True, data_only=True)
            try:
                return _read_sheet(book.worksheets[0], shown, categories, zone, max_rows)
            finally:
                book.close()
        except GeoappError:
            raise
        except Exception as exc:  # a damaged or hostile workbook: broken XML, no worksheet, ...
            reason = str(exc).replace(str(path), shown)[:200]
            raise refuse(
                f"{shown!r} cannot be read as an Excel workbook: {reason}",
                f"无法按 Excel 工作簿读取 {shown!r}：{reason}",
            ) from None


def locate(
    batch: HotlineBatch, geocoder: Geocoder, min_confidence: float = 0.5
) -> tuple[list[tuple[HotlineRow, Geocoded]], list[tuple[HotlineRow, Geocoded]]]:
    """Geocode every row: located at ``min_confidence`` or above; unlocated, each with the reason, below it.

    A row placed but less surely than ``min_confidence`` is unlocated with its confidence, and with the
    reason ``low_confidence`` when its answer gave none.
    """
    located, unlocated = [], []
    for row in batch.rows:
        found = geocoder.geocode(row.address)
        if found.found and found.confidence >= min_confidence:
            located.append((row, found))
        else:
            if found.reason is None:
                found = dataclasses.replace(found, reason="low_confidence")
            unlocated.append((row, found))
    return located, unlocated


# -- the sheet ---------------------------------------------------------------------------------


def _read_sheet(ws, shown: str, categories: Categories, zone: ZoneInfo, max_rows: int) -> HotlineBatch:
    at: dict[str, int] | None = None
    headers: list[str] = []
    rows: list[HotlineRow] = []
    problems: list[RowProblem] = []
    first_row_of: dict[str, int] = {}
    count = 0
    for row_no, values in enumerate(ws.iter_rows(values_only=True, max_col=MAX_COLUMNS), start=1):
        if not any(_text(v) for v in values):
            continue
        if at is None:
            headers = [_text(v) for v in values]
            at = _header(headers)
            if at is None and row_no >= HEADER_SEARCH_ROWS:
                break
            if at is not None:
                missing = [COLUMNS[c][0] for c in REQUIRED if c not in at]
                if missing:
                    raise refuse(
                        f"{shown!r} has no column {', '.join(missing)} in its header (row {row_no})",
                        f"{shown!r} 的表头（第 {row_no} 行）缺少列：{'、'.join(missing)}",
                    )
            continue
        count += 1
        if count > max_rows:
            raise refuse(
                f"{shown!r} holds more than {max_rows} rows; split the export",
                f"{shown!r} 超过 {max_rows} 行，请分批导出",
            )
        cell = {key: values[i] if i < len(values) else None for key, i in at.items()}
        bad = [RowProblem(row_no, headers[at[c]], "missing", "is empty") for c in REQUIRED if not _text(cell[c])]
        received = None
        if _text(cell["received"]):
            received = _utc(cell["received"], zone)
            if received is None:
                shown_value = _text(cell["received"])[:40]
                reason = f"{shown_value!r} is not a date and time (as 2023-05-01 08:30)"
                bad.append(RowProblem(row_no, headers[at["received"]], "bad_time", reason))
        ticket = _text(cell["ticket"])
        if ticket and ticket in first_row_of:
            reason = f"ticket {ticket[:40]!r} was already given in row {first_row_of[ticket]}"
            bad.append(RowProblem(row_no, headers[at["ticket"]], "duplicate", reason))
        if bad:
            problems.extend(bad)
            continue
        first_row_of[ticket] = row_no
        description, category = _text(cell.get("description")), _text(cell.get("category"))
        rows.append(
            HotlineRow(
                row=row_no,
                ticket=ticket,
                received_at=received,
                address=_text(cell["address"]),
                description=description,
                category=category,
                subcategory=categories.subcategory(category, description),
            )
        )
    if at is None:
        names = "、".join(COLUMNS[c][0] for c in REQUIRED)
        raise refuse(
            f"{shown!r} has no header row naming {', '.join(COLUMNS[c][1] for c in REQUIRED)} ({names}) "
            f"in its first {HEADER_SEARCH_ROWS} rows",
            f"{shown!r} 的前 {HEADER_SEARCH_ROWS} 行中没有含 {names} 的表头",
        )
    return HotlineBatch(tuple(rows), tuple(problems))


def _header(cells: list[str]) -> dict[str, int] | None:
    """The column of each known header in a row; None unless it names a ticket and an address."""
    accepted = {_fold(h): key for key, names in COLUMNS.items() for h in names}
    at: dict[str, int] = {}
    for i, cell in enumerate(cells):
        key = accepted.get(_fold(cell))
        if key is not None and key not in at:
            at[key] = i
    return at if {"ticket", "address"} <= set(at) else None


def _utc(value: object, zone: ZoneInfo) -> str | None:
    """A cell's time as UTC ``YYYY-MM-DDTHH:MM:SSZ``: a datetime cell or text, local time in ``zone``."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        text = unicodedata.normalize("NFKC", value).strip().replace("Z", "+00:00")
        moment = None
        for fmt in _TIME_FORMATS:
            try:
                moment = datetime.strptime(text, fmt)
                break
            except ValueError:
                continue
        if moment is None:
            try:
                moment = datetime.fromisoformat(text)
            except ValueError:
                return None
    else:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _text(value: object) -> str:
    """A cell as text: stripped, a whole number without its ``.0`` (ticket numbers typed as numbers)."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _fold(text: str) -> str:
    return "".join(unicodedata.normalize("NFKC", text).split()).casefold()
