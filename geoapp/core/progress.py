"""The progress of a campaign layer (``progress:`` in its definition): the rows a table asks for and their figures.

Flask-free. A table's request is read into a :class:`Selection` (every bad parameter refused, naming it
and what it takes). The parts the reader can answer (exact values of the filter fields, a bounding box)
are pushed down to it; the layer is then read in pages of ``MAX_LIMIT`` features in fid order (keyset
paging with ``after=``), and what the reader cannot answer is decided here, in one pass: the date range
on ``progress.date_field``, the text search, whether a feature is overdue. Every figure of the summary
is counted over all matched rows, not only the page shown.

Only the fields the caller may see take part: a public caller's text search never looks into an
internal field, and an internal date or target date counts for staff only.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import shapely.geometry

from geoapp.core.layers import FieldDef, Layer, Registry
from geoapp.core.query import MAX_LIMIT, parse_bbox, parse_int
from geoapp.errors import InvalidParameter, NotFound
from geoapp.store.base import FeatureReader, Query, Visibility

#: rows a page of the table holds by default, and at most
DEFAULT_ROWS = 50
MAX_ROWS = 500
#: the longest text search
MAX_TEXT = 100
#: features read for one answer at most (beyond it the caller narrows by bbox or a filter field)
MAX_SCAN = 200_000
#: parameters every route takes and leaves to the web layer (the language of labels)
PASSED = ("lang",)
DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)
#: how many months, up to this one, the summary's months done cover at most (ten years)
MONTHS_SHOWN = 120
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class Selection:
    """What a table (or a ledger) asks of a layer; every part is optional and they combine with AND.

    ``query`` holds what the reader answers (filter values, bbox); the rest is decided over the rows read.
    ``sort`` None keeps fid order.
    """

    query: Query = field(default_factory=Query)
    date_from: str | None = None
    date_to: str | None = None
    text: str | None = None
    overdue: bool | None = None
    sort: str | None = None
    descending: bool = False
    offset: int = 0
    limit: int = DEFAULT_ROWS


@dataclass
class Row:
    """A matched feature: its properties as the caller may see them, its GeoJSON geometry, whether it is overdue."""

    fid: int
    version: int
    geometry: dict | None
    properties: dict[str, Any]
    overdue: bool = False

    def lonlat(self) -> tuple[float, float] | tuple[None, None]:
        """A point on the feature (a point's own coordinates; a representative point of a line or an area)."""
        geometry = self.geometry
        if not geometry:
            return None, None
        if geometry.get("type") == "Point":
            lon, lat = geometry["coordinates"][:2]
            return lon, lat
        point = shapely.geometry.shape(geometry).representative_point()
        return round(point.x, 7), round(point.y, 7)


@dataclass(frozen=True)
class Matched:
    """Every row a selection matched, in the order asked for, and the layer version they were read at."""

    layer: Layer
    rows: list[Row]
    version: int
    #: today in the district when they were selected (the months of the summary end with its month)
    on: dt.date | None = None


def campaign_layers(registry: Registry) -> list[Layer]:
    """The layers that follow a campaign (``progress:`` in their definition), in registry order."""
    return [layer for layer in registry if layer.progress is not None]


def campaign_layer(registry: Registry, layer_id: str) -> Layer:
    """The campaign layer with this id, or NotFound naming the campaign layers there are."""
    layer = registry.require(layer_id)
    if layer.progress is None:
        known = ", ".join(x.id for x in campaign_layers(registry))
        raise NotFound(f"layer {layer_id} follows no campaign; campaign layers: {known}", parameter="layer")
    return layer


def today(clock: Callable[[], float], timezone: ZoneInfo) -> dt.date:
    """Today's date in the district's time zone."""
    return dt.datetime.fromtimestamp(clock(), timezone).date()


def as_of(clock: Callable[[], float]) -> str:
    """Now as ISO 8601 in UTC, to the second (``2023-11-14T22:13:20Z``)."""
    return dt.datetime.fromtimestamp(clock(), dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- parameters --------------------------------------------------------------------------------


def _visible(layer: Layer, visibility: Visibility) -> dict[str, FieldDef]:
    return {f.name: f for f in layer.visible_fields(visibility == "internal")}


def date_field(layer: Layer, visibility: Visibility) -> str | None:
    """The campaign's date done, if the caller may see it."""
    name = layer.progress.date_field if layer.progress else None
    return name if name in _visible(layer, visibility) else None


def due_field(layer: Layer, visibility: Visibility) -> str | None:
    """The campaign's target date, if the caller may see it."""
    name = layer.progress.due_field if layer.progress else None
    return name if name in _visible(layer, visibility) else None


def filter_fields(layer: Layer, visibility: Visibility) -> list[str]:
    """The campaign's filter fields the caller may see."""
    visible = _visible(layer, visibility)
    return [name for name in (layer.progress.filters if layer.progress else ()) if name in visible]


def _given(args: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """The parameters with a value (an empty value, as an emptied form field sends, is no parameter)."""
    out = {}
    for name, values in args.items():
        kept = [v for v in values if v != ""]
        if kept:
            out[name] = kept
    return out


def _once(name: str, values: list[str]) -> str:
    if len(values) > 1:
        raise InvalidParameter(f"{name} given {len(values)} times; give it once", parameter=name)
    return values[0]


def _vocabulary_values(spec: FieldDef, values: list[str]) -> list[str]:
    """Values of a field with allowed values, repeated or comma-separated (either means OR)."""
    out: list[str] = []
    for value in (part for text in values for part in text.split(",")):
        if value not in spec.allowed:
            raise InvalidParameter(
                f"{spec.name}: {value[:40]!r} is not one of its values: {', '.join(spec.allowed)}",
                parameter=spec.name,
            )
        if value not in out:
            out.append(value)
    return out


def _field_values(spec: FieldDef, values: list[str]) -> list[Any]:
    """Exact values of any field (as the features API takes them): text as given, other types read as theirs."""
    if spec.values is not None:
        return _vocabulary_values(spec, values)
    out = []
    for value in values:
        if spec.type == "string":
            out.append(value)
            continue
        try:
            out.append(spec.coerce(value))
        except ValueError:
            kind = {"date": "a date YYYY-MM-DD", "boolean": "true or false"}.get(spec.type, "a number")
            raise InvalidParameter(f"{spec.name} must be {kind}, not {value[:40]!r}", parameter=spec.name) from None
    return out


def _date(name: str, text: str) -> str:
    if DATE.fullmatch(text):
        try:
            return dt.date.fromisoformat(text).isoformat()
        except ValueError:
            pass
    raise InvalidParameter(f"{name} must be a date YYYY-MM-DD, not {text[:40]!r}", parameter=name)


def _sorting(layer: Layer, visible: Mapping[str, FieldDef], given: dict[str, str]) -> tuple[str | None, bool]:
    sort = given.get("sort")
    if sort is not None and sort not in visible:
        raise InvalidParameter(f"sort must be one of the fields: {', '.join(visible)}; not {sort[:40]!r}", "sort")
    order = given.get("order", "asc")
    if order not in ("asc", "desc"):
        raise InvalidParameter(f"order must be asc or desc, not {order[:40]!r}", parameter="order")
    return sort, order == "desc"


def parse_selection(
    layer: Layer, args: Mapping[str, Sequence[str]], *, visibility: Visibility, paged: bool = True
) -> Selection:
    """Read a progress table's parameters (``args`` maps names to given values); refuse a bad one by name.

    Parameters: each filter field of ``progress.filters`` (repeated or comma-separated values: OR),
    ``from``/``to`` (YYYY-MM-DD, inclusive, on ``progress.date_field``), ``q`` (text), ``bbox``,
    ``overdue`` (true|false, when the layer has a target date), ``sort`` (a visible field; the title
    field by default), ``order`` (asc|desc) and, for a table (``paged``), ``offset`` and ``limit``
    (1 to :data:`MAX_ROWS`). An empty value is the same as leaving the parameter out.
    """
    visible = _visible(layer, visibility)
    filters = filter_fields(layer, visibility)
    dated = date_field(layer, visibility)
    due = due_field(layer, visibility)
    singles = ["q", "bbox", "sort", "order"]
    singles += ["from", "to"] if dated else []
    singles += ["overdue"] if due else []
    singles += ["offset", "limit"] if paged else []
    args = _given(args)
    for name in args:
        if name in filters or name in singles or name in PASSED:
            continue
        if name in ("from", "to"):
            raise InvalidParameter(f"{name}: layer {layer.id} has no date done to filter by", parameter=name)
        if name == "overdue":
            raise InvalidParameter(f"overdue: layer {layer.id} has no target date", parameter=name)
        if name in ("offset", "limit"):
            raise InvalidParameter(
                f"{name}: a ledger holds every matched row; offset and limit page only the table's rows",
                parameter=name,
            )
        raise InvalidParameter(
            f"unknown parameter {name[:40]!r}; allowed: {', '.join([*filters, *singles])}", parameter=name
        )
    one = {name: _once(name, values) for name, values in args.items() if name in singles}

    values = {name: _vocabulary_values(visible[name], args[name]) for name in filters if name in args}
    bbox = parse_bbox(one["bbox"]) if "bbox" in one else None
    date_from = _date("from", one["from"]) if "from" in one else None
    date_to = _date("to", one["to"]) if "to" in one else None
    if date_from and date_to and date_from > date_to:
        raise InvalidParameter(f"from ({date_from}) is after to ({date_to})", parameter="from")
    text = one.get("q", "").strip() or None
    if text is not None and len(text) > MAX_TEXT:
        raise InvalidParameter(f"q must be at most {MAX_TEXT} characters", parameter="q")
    if text is not None and _CONTROL.search(text):
        raise InvalidParameter("q must not contain control characters", parameter="q")
    overdue = None
    if "overdue" in one:
        if one["overdue"] not in ("true", "false"):
            raise InvalidParameter(f"overdue must be true or false, not {one['overdue'][:40]!r}", parameter="overdue")
        overdue = one["overdue"] == "true"
    sort, descending = _sorting(layer, visible, one)
    offset, limit = 0, DEFAULT_ROWS
    if paged:
        offset = parse_int(one.get("offset", "0"), "offset")
        if offset < 0:
            raise InvalidParameter("offset must be a whole number >= 0", parameter="offset")
        limit = parse_int(one.get("limit", str(DEFAULT_ROWS)), "limit")
        if not 1 <= limit <= MAX_ROWS:
            raise InvalidParameter(f"limit must be a whole number from 1 to {MAX_ROWS}", parameter="limit")
    return Selection(
        query=Query(bbox=bbox, filters=values),
        date_from=date_from,
        date_to=date_to,
        text=text,
        overdue=overdue,
        sort=sort or layer.title_field,
        descending=descending,
        offset=offset,
        limit=limit,
    )


def parse_layer_selection(layer: Layer, args: Mapping[str, Sequence[str]], *, visibility: Visibility) -> Selection:
    """Read the parameters of any layer's ledger: exact values of its visible fields (``field=value``, repeated
    or, for fields with allowed values, comma-separated: OR), ``bbox``, ``sort`` and ``order`` (fid order by
    default)."""
    visible = _visible(layer, visibility)
    singles = ("bbox", "sort", "order")
    args = _given(args)
    for name in args:
        if name not in visible and name not in singles and name not in PASSED:
            raise InvalidParameter(
                f"unknown parameter {name[:40]!r}; allowed: {', '.join([*singles, *visible])}", parameter=name
            )
    one = {name: _once(name, args[name]) for name in singles if name in args}
    values = {name: _field_values(visible[name], args[name]) for name in visible if name in args}
    bbox = parse_bbox(one["bbox"]) if "bbox" in one else None
    sort, descending = _sorting(layer, visible, one)
    return Selection(query=Query(bbox=bbox, filters=values), sort=sort, descending=descending)


# -- selecting -----------------------------------------------------------------------------------


def read_layer(
    reader: FeatureReader,
    layer: Layer,
    query: Query,
    visibility: Visibility,
    *,
    most: int = MAX_SCAN,
    refuse: Callable[[int], Exception] | None = None,
    page_size: int = MAX_LIMIT,
) -> tuple[list[Row], int]:
    """Every feature ``query`` matches, read in pages of ``page_size`` in fid order, and the layer version.

    More than ``most`` matches are refused before they are read: ``refuse(matched)`` is raised (by default a
    400 naming ``bbox``).
    """
    rows: list[Row] = []
    after = None
    version = None
    while True:
        page = reader.select(layer.id, replace(query, after=after), 0, page_size, visibility)
        if version is None:
            version = page.version
            if page.matched > most and refuse is not None:
                raise refuse(page.matched)
            if page.matched > most:
                narrow = ", ".join(["bbox", *(layer.progress.filters if layer.progress else ())])
                raise InvalidParameter(
                    f"{page.matched:,} features of {layer.id} match; at most {most:,} are read at once: "
                    f"narrow them ({narrow})",
                    parameter="bbox",
                )
        for text in page.features:
            feature = orjson.loads(text)
            rows.append(Row(feature["id"], feature.get("version", 1), feature.get("geometry"), feature["properties"]))
        if not page.more or not page.ids:
            return rows, version
        after = page.ids[-1]


def _haystacks(layer: Layer, visibility: Visibility) -> list[tuple[str, dict[str, tuple[str, str]] | None]]:
    """The text fields a search looks into: each with, for a field with allowed values, its labels (casefolded)."""
    out = []
    for spec in layer.visible_fields(visibility == "internal"):
        if spec.type != "string":
            continue
        labels = None
        if spec.values is not None:
            labels = {c.value: (c.label.zh.casefold(), c.label.en.casefold()) for c in spec.values}
        out.append((spec.name, labels))
    return out


def _found(row: Row, needle: str, fields: list[tuple[str, dict | None]]) -> bool:
    props = row.properties
    for name, labels in fields:
        value = props.get(name)
        if value is None:
            continue
        if labels is not None and value in labels:
            zh, en = labels[value]
            if needle in zh or needle in en:
                return True
        elif needle in str(value).casefold():
            return True
    return False


def sort_key(spec: FieldDef) -> Callable[[Any], Any]:
    """How a field's values order: allowed values in their declared order, text case-insensitively, numbers as
    numbers (a value of another type, written by another tool, sorts with the missing ones)."""
    if spec.values is not None:
        order = {c.value: i for i, c in enumerate(spec.values)}
        return lambda v: (order.get(v, len(order)), str(v))
    if spec.type in ("integer", "number"):
        return lambda v: float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None
    if spec.type == "boolean":
        return lambda v: int(v) if isinstance(v, bool) else None
    return lambda v: (str(v).casefold(), str(v))


def order_rows(rows: list[Row], spec: FieldDef, descending: bool) -> list[Row]:
    """Rows ordered by a field, missing values last whatever the order, ties (and missing ones) by fid."""
    key = sort_key(spec)
    keyed = [(key(r.properties.get(spec.name)) if r.properties.get(spec.name) is not None else None, r) for r in rows]
    present = [(k, r) for k, r in keyed if k is not None]
    missing = [r for k, r in keyed if k is None]
    present.sort(key=lambda kr: kr[1].fid)
    present.sort(key=lambda kr: kr[0], reverse=descending)  # a stable sort: equal keys stay in fid order
    missing.sort(key=lambda r: r.fid)
    return [r for _, r in present] + missing


def select(reader: FeatureReader, layer: Layer, selection: Selection, visibility: Visibility, on: dt.date) -> Matched:
    """Every row ``selection`` matches on ``layer`` (as ``visibility`` shows it), in the order it asks for;
    ``on`` is today in the district (a target date before it, not done: overdue)."""
    rows, version = read_layer(reader, layer, selection.query, visibility)
    status = layer.status_field
    done = set(layer.progress.done) if layer.progress else set()
    dated = date_field(layer, visibility)
    due = due_field(layer, visibility)
    today_text = on.isoformat()
    needle = selection.text.casefold() if selection.text else None
    fields = _haystacks(layer, visibility) if needle else []
    kept = []
    for row in rows:
        props = row.properties
        if due is not None:
            target = props.get(due)
            row.overdue = isinstance(target, str) and target < today_text and props.get(status) not in done
        if selection.overdue is not None and row.overdue != selection.overdue:
            continue
        if selection.date_from or selection.date_to:
            when = props.get(dated) if dated else None
            if not isinstance(when, str):
                continue
            if selection.date_from and when < selection.date_from:
                continue
            if selection.date_to and when > selection.date_to:
                continue
        if needle and not _found(row, needle, fields):
            continue
        kept.append(row)
    if selection.sort is not None:
        kept = order_rows(kept, layer.field(selection.sort), selection.descending)
    return Matched(layer, kept, version, on)


# -- figures -----------------------------------------------------------------------------------


def _months(first: str, last: str) -> list[str]:
    year, month = int(first[:4]), int(first[5:7])
    out = []
    while f"{year:04d}-{month:02d}" <= last:
        out.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


def _month_span(months: Mapping[str, int], on: dt.date | None) -> tuple[str, str] | None:
    """The first and last month the summary lists: the months done within the last :data:`MONTHS_SHOWN` months up
    to this month (or up to the last month done when today is not known), so that one date mistyped decades off
    (a year 0201 for 2021) cannot make every answer list thousands of empty months; None if none is in it."""
    last = f"{on.year:04d}-{on.month:02d}" if on is not None else max(months)
    year, month = int(last[:4]), int(last[5:7])
    back = year * 12 + month - 1 - (MONTHS_SHOWN - 1)
    first = f"{back // 12:04d}-{back % 12 + 1:02d}"
    shown = [m for m in months if first <= m <= last]
    return (min(shown), max(shown)) if shown else None


def summarise(matched: Matched, visibility: Visibility) -> dict[str, Any]:
    """The figures of every matched row: total, done, overdue, by status, by each filter field (total and done),
    and the features done per month of ``progress.date_field`` (every month from the first to the last, zeros
    included, within the last :data:`MONTHS_SHOWN` months up to today: see :func:`_month_span`)."""
    layer = matched.layer
    status = layer.status_field
    done_values = set(layer.progress.done)
    by_status = {c.value: 0 for c in layer.field(status).values}
    by = {
        name: {c.value: {"total": 0, "done": 0} for c in layer.field(name).values}
        for name in filter_fields(layer, visibility)
    }
    dated = date_field(layer, visibility)
    months: dict[str, int] = {}
    done = overdue = 0
    for row in matched.rows:
        props = row.properties
        value = props.get(status)
        is_done = value in done_values
        done += is_done
        overdue += row.overdue
        if value is not None:
            by_status[value] = by_status.get(value, 0) + 1
        for name, counts in by.items():
            key = props.get(name)
            if key is None:
                continue
            cell = counts.setdefault(key, {"total": 0, "done": 0})
            cell["total"] += 1
            cell["done"] += is_done
        when = props.get(dated) if dated else None
        if is_done and isinstance(when, str) and DATE.fullmatch(when):
            months[when[:7]] = months.get(when[:7], 0) + 1
    per_month = []
    span = _month_span(months, matched.on) if months else None
    if span is not None:
        per_month = [{"month": m, "count": months.get(m, 0)} for m in _months(*span)]
    return {
        "total": len(matched.rows),
        "done": done,
        "overdue": overdue,
        "by_status": by_status,
        "by": by,
        "per_month": per_month,
    }


def rows_answer(matched: Matched, selection: Selection, visibility: Visibility, now: str) -> dict[str, Any]:
    """The answer of ``/api/progress/<layer>/rows``: the page of rows asked for and the summary of all."""
    page = matched.rows[selection.offset : selection.offset + selection.limit]
    rows = []
    for row in page:
        lon, lat = row.lonlat()
        rows.append(
            {
                "id": row.fid,
                "version": row.version,
                "lon": lon,
                "lat": lat,
                "overdue": row.overdue,
                "properties": row.properties,
            }
        )
    return {
        "layer": matched.layer.id,
        "matched": len(matched.rows),
        "offset": selection.offset,
        "limit": selection.limit,
        "rows": rows,
        "summary": summarise(matched, visibility),
        "asOf": now,
    }


def overview(
    reader: FeatureReader, registry: Registry, visibility: Visibility, on: dt.date, now: str
) -> dict[str, Any]:
    """The answer of ``/api/progress``: each campaign layer's total, done and overdue."""
    out = []
    for layer in campaign_layers(registry):
        matched = select(reader, layer, Selection(), visibility, on)
        figures = summarise(matched, visibility)
        out.append(
            {
                "id": layer.id,
                "title": layer.title.model_dump(),
                "total": figures["total"],
                "done": figures["done"],
                "overdue": figures["overdue"],
            }
        )
    return {"layers": out, "asOf": now}
