"""The indicators of the case workflow (GB/T 30428 evaluation), by grid cell, squad, department, class or month.

Flask-free. Over the cases registered (立案, not void) in a period:

- 应处置 ``due``: the cases registered; 处置 ``disposed``: those disposed of (处置, checked or closed);
  结案 ``closed``: those closed; 按期结案 ``on_time``: those closed whose disposal came by the deadline;
- 处置率, 结案率, 按期结案率: each of those over ``due`` (in %, None where nothing is due);
- 平均处置用时 ``avg_disposal_h``: the mean hours from 派遣 to 处置 of the cases disposed of.

A month is the month of 立案 on the district's clock, which the register step keeps in ``registered_month`` (a
column the database groups by as it groups by any field, instead of working out each row's month). The same
figures come from :func:`compute` (in memory, over the rows a reader gives) and from the database's SQL
(``geoapp.store.cases``) for a layer too large to hold; the tests hold both to a recomputation of their own.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from geoapp.cases.workflow import Workflow
from geoapp.errors import InvalidParameter

#: what the indicators group by: one total, or a field of the cases layer, or the month of 立案
DIMENSIONS = ("total", "grid", "squad", "department", "category", "subcategory", "source", "month")
#: the figures of an indicator row, in the order tables show them
FIGURES = ("due", "disposed", "closed", "on_time", "disposal_rate", "close_rate", "on_time_rate", "avg_disposal_h")
COLUMNS = ("status", "registered_at", "dispatched_at", "disposed_at", "deadline_at", "reported_at")
COLUMNS += ("grid", "squad", "department", "category", "subcategory", "source", "registered_month")


@dataclass(frozen=True)
class Indicator:
    key: str | None
    due: int
    disposed: int
    closed: int
    on_time: int
    disposal_rate: float | None
    close_rate: float | None
    on_time_rate: float | None
    avg_disposal_h: float | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def dimension(by: str | None) -> str:
    """``by`` checked: one of :data:`DIMENSIONS` (``total`` when none is given)."""
    by = by or "total"
    if by not in DIMENSIONS:
        raise InvalidParameter(f"by must be one of {', '.join(DIMENSIONS)}; not {str(by)[:30]!r}", parameter="by")
    return by


def rate(count: int, due: int) -> float | None:
    """A share in percent, to two decimals (99.18), or None where nothing is due."""
    return None if not due else round(100.0 * count / due, 2)


def frame(rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """The columns the indicators read, from case properties; times as UTC timestamps."""
    table = pd.DataFrame.from_records(list(rows), columns=list(COLUMNS))
    for name in ("registered_at", "dispatched_at", "disposed_at", "deadline_at", "reported_at"):
        table[name] = pd.to_datetime(table[name], utc=True, errors="coerce", format="ISO8601")
    return table


def compute(
    table: pd.DataFrame,
    workflow: Workflow,
    by: str = "total",
    *,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
) -> list[Indicator]:
    """The indicators of the cases in ``table`` registered in [start, end), one per value of ``by`` (sorted)."""
    by = dimension(by)
    rows = table[table["status"].isin(workflow.registered) & table["registered_at"].notna()]
    if start is not None:
        rows = rows[rows["registered_at"] >= pd.Timestamp(start)]
    if end is not None:
        rows = rows[rows["registered_at"] < pd.Timestamp(end)]
    disposed = rows["status"].isin(workflow.disposed)
    closed = rows["status"].isin(workflow.closed)
    on_time = closed & rows["disposed_at"].notna() & (rows["disposed_at"] <= rows["deadline_at"])
    hours = (rows["disposed_at"] - rows["dispatched_at"]).dt.total_seconds() / 3600
    hours = hours.where(disposed)
    if by == "total":
        key = pd.Series("", index=rows.index)
    elif by == "month":
        key = rows["registered_month"].fillna("")
    else:
        key = rows[by].fillna("")
    parts = pd.DataFrame(
        {"key": key, "due": 1, "disposed": disposed, "closed": closed, "on_time": on_time, "hours": hours}
    )
    grouped = parts.groupby("key", sort=True).agg(
        due=("due", "sum"),
        disposed=("disposed", "sum"),
        closed=("closed", "sum"),
        on_time=("on_time", "sum"),
        hours=("hours", "mean"),
    )
    if by == "total" and grouped.empty:
        grouped = pd.DataFrame({"due": [0], "disposed": [0], "closed": [0], "on_time": [0], "hours": [np.nan]})
        grouped.index = pd.Index([""], name="key")
    return [
        indicator(
            None if by == "total" or k == "" else str(k),
            int(r.due),
            int(r.disposed),
            int(r.closed),
            int(r.on_time),
            None if pd.isna(r.hours) else float(r.hours),
        )
        for k, r in grouped.iterrows()
    ]


def indicator(key, due: int, disposed: int, closed: int, on_time: int, hours: float | None) -> Indicator:
    """One row of indicators from its counts (the one place the rates are worked out)."""
    return Indicator(
        key=key,
        due=due,
        disposed=disposed,
        closed=closed,
        on_time=on_time,
        disposal_rate=rate(disposed, due),
        close_rate=rate(closed, due),
        on_time_rate=rate(on_time, due),
        avg_disposal_h=None if hours is None else round(hours, 2),
    )


@dataclass(frozen=True)
class HotSpot:
    grid: str
    week: int  # cases reported in the 7 days up to the moment asked
    usual: float  # the mean week of the weeks before
    factor: float | None  # week / usual (None where the cell had none before)


def hot_spots(table: pd.DataFrame, workflow: Workflow, as_of: dt.datetime) -> list[HotSpot]:
    """Grid cells whose cases of the last 7 days reach the workflow's factor times their usual week (and its
    minimum), most out of the ordinary first. Void cases count: a report is a report."""
    rule = workflow.hot_spots
    end = pd.Timestamp(as_of)
    week_start = end - pd.Timedelta(days=7)
    history_start = week_start - pd.Timedelta(days=7 * rule.weeks)
    reported = table["reported_at"]
    cells = table["grid"].fillna("")
    this_week = cells[(reported > week_start) & (reported <= end)].value_counts()
    before = cells[(reported > history_start) & (reported <= week_start)].value_counts() / rule.weeks
    spots = []
    for grid, week in this_week.items():
        if not grid:
            continue
        usual = float(before.get(grid, 0.0))
        if week >= rule.minimum and week >= rule.factor * usual:
            spots.append(HotSpot(str(grid), int(week), round(usual, 2), None if not usual else round(week / usual, 2)))
    return sorted(spots, key=lambda s: (-(s.factor or float("inf")), -s.week, s.grid))


def xlsx(sections: list[tuple[str, list[list[Any]]]], about: list[tuple[str, Any]]) -> bytes:
    """A workbook of indicator tables: a sheet per section (its title, then a header row and the rows), and a
    sheet saying what it is (``about``: the period, when it was made, that the demo data is synthetic)."""
    from io import BytesIO

    from openpyxl import Workbook
    from openpyxl.styles import Font

    from geoapp.core.ledger import _cell, _sheet_title

    book = Workbook(write_only=True)
    for title, table in sections:
        sheet = book.create_sheet(_sheet_title(title))
        sheet.freeze_panes = "B2"
        for i, row in enumerate(table):
            sheet.append([_cell(sheet, value, bold=i == 0) for value in row])
    sheet = book.create_sheet("说明 About")
    for key, value in about:
        name = _cell(sheet, key)
        name.font = Font(bold=True)
        sheet.append([name, _cell(sheet, value)])
    out = BytesIO()
    book.save(out)
    return out.getvalue()
