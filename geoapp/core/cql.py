"""CQL2 filters (OGC API - Features Part 3): CQL2 text or JSON read into a small tree the readers apply.

:func:`parse` reads a filter for one layer and checks it against the layer definition: every
property is a field the caller may see (an internal field is refused for the public with the
message an unknown one gets, so an anonymous caller learns nothing of internal names), every
value has the field's type, geometry literals are converted from ``filter_crs`` into the stored
lon/lat. The result is this module's own immutable tree (:data:`Where`), so that the readers do
not depend on a parser's AST: the in-memory index evaluates it with numpy masks
(:func:`mask`), the PostGIS reader translates it to SQL with bound parameters.

Both parsers are written here, by hand, with limits on length, nesting, terms and vertices:
no filter can make a request slow or exhaust the stack. :func:`queryables` is the JSON Schema
of ``/queryables`` for the same fields.

Semantics follow SQL's three-valued logic, as CQL2 does: a comparison with a missing value is
unknown, ``NOT`` of unknown stays unknown, and a feature is selected only when the filter is true.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Union

import numpy as np
import pandas as pd
import shapely
from shapely.geometry.base import BaseGeometry

from geoapp.core.layers import FieldDef, Layer, utc_text
from geoapp.errors import InvalidParameter

PARAMETER = "filter"
LANGUAGES = ("cql2-text", "cql2-json")
#: longest filter accepted, in characters
MAX_LENGTH = 8192
#: deepest nesting of parentheses, arrays or logical operators
MAX_DEPTH = 20
#: most predicates and values in one filter
MAX_TERMS = 500
#: most LIKE and spatial predicates in one filter (each is a pass over every feature in memory)
MAX_COSTLY = 10
#: longest LIKE pattern (a test costs up to the text's length times the pattern's)
MAX_PATTERN = 200
#: most vertices of all geometry literals together
MAX_VERTICES = 10_000
#: most values in one IN list
MAX_IN = 500

COMPARISONS = ("=", "<>", "<", "<=", ">", ">=")
#: feature geometry <op> literal, as CQL2 names them
SPATIAL = ("s_intersects", "s_disjoint", "s_within", "s_contains", "s_equals", "s_touches", "s_crosses", "s_overlaps")
TEMPORAL = ("t_before", "t_after", "t_equals", "t_intersects", "t_disjoint", "t_during")
GEOMETRY_PROPERTY = "geometry"

#: the CQL2 conformance classes this module implements (the OGC conformance document lists them)
CONFORMANCE = (
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
    "http://www.opengis.net/spec/cql2/1.0/conf/advanced-comparison-operators",
    "http://www.opengis.net/spec/cql2/1.0/conf/case-insensitive-comparison",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions-plus",
    "http://www.opengis.net/spec/cql2/1.0/conf/spatial-functions",
)
#: what a filter may use, said in error messages and documentation
SUPPORTED = (
    "comparisons = <> < <= > >=, LIKE (% and _; ILIKE as in CQL1), IN, BETWEEN, IS NULL, AND, OR, NOT, CASEI, "
    "DATE('YYYY-MM-DD') and TIMESTAMP(...) on date fields, " + ", ".join(s.upper() for s in TEMPORAL) + ", "
    "spatial " + ", ".join(s.upper() for s in SPATIAL) + " on the property geometry with WKT or GeoJSON "
    "geometries, and BBOX"
)


# -- the tree ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Compare:
    """``name <op> value``; ``casei`` compares text lower-cased."""

    name: str
    op: str  # one of COMPARISONS
    value: Any  # str, int, float, bool; a date as "YYYY-MM-DD"
    casei: bool = False


@dataclass(frozen=True)
class Like:
    """``name LIKE pattern``: ``%`` any text, ``_`` one character, ``\\`` makes the next one literal."""

    name: str
    pattern: str
    casei: bool = False


@dataclass(frozen=True)
class In:
    name: str
    values: tuple
    casei: bool = False


@dataclass(frozen=True)
class Between:
    """``low <= name <= high``."""

    name: str
    low: Any
    high: Any


@dataclass(frozen=True)
class IsNull:
    name: str


@dataclass(frozen=True)
class Spatial:
    """The feature's geometry ``op`` a lon/lat geometry: ``within`` is "the feature lies within it"."""

    op: str  # intersects disjoint within contains equals touches crosses overlaps
    geometry: BaseGeometry


@dataclass(frozen=True)
class And:
    items: tuple


@dataclass(frozen=True)
class Or:
    items: tuple


@dataclass(frozen=True)
class Not:
    item: Any


@dataclass(frozen=True)
class Const:
    """TRUE/INCLUDE or FALSE/EXCLUDE."""

    value: bool


Where = Union[Compare, Like, In, Between, IsNull, Spatial, And, Or, Not, Const]  # noqa: UP007


def properties(where: Where) -> set[str]:
    """The field names a filter reads."""
    if isinstance(where, And | Or):
        return set().union(*(properties(i) for i in where.items))
    if isinstance(where, Not):
        return properties(where.item)
    name = getattr(where, "name", None)
    return {name} if name else set()


#: CASEI folds the letters A-Z only, the same in memory and in any database whatever its locale (Chinese
#: has no case; the bureau's Latin text is codes and road names in ASCII)
UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_FOLD = str.maketrans(UPPER, UPPER.lower())


def fold(text: str) -> str:
    """Text with A-Z lower-cased (what CASEI compares)."""
    return text.translate(_FOLD)


# -- errors ------------------------------------------------------------------------------------


def _refuse(message: str) -> InvalidParameter:
    return InvalidParameter(message, parameter=PARAMETER)


# -- intermediate values shared by both parsers ---------------------------------------------


@dataclass(frozen=True)
class _Prop:
    name: str
    casei: bool = False


@dataclass(frozen=True)
class _Date:
    value: dt.date


@dataclass(frozen=True)
class _Timestamp:
    value: dt.datetime


@dataclass(frozen=True)
class _Interval:
    start: Any  # _Date | _Timestamp | None (open)
    end: Any


@dataclass(frozen=True)
class _Geom:
    geometry: BaseGeometry


@dataclass(frozen=True)
class _Text:
    value: str
    casei: bool = False


@dataclass(frozen=True)
class _Pred:
    """A predicate as read, before its types are checked: op and operands."""

    op: str
    args: tuple


class _Budget:
    """Counts terms and vertices across one filter."""

    def __init__(self):
        self.terms = 0
        self.vertices = 0

    def term(self) -> None:
        self.terms += 1
        if self.terms > MAX_TERMS:
            raise _refuse(f"the filter has too many terms (at most {MAX_TERMS})")

    def geometry(self, geom: BaseGeometry) -> BaseGeometry:
        self.vertices += int(shapely.get_num_coordinates(geom))
        if self.vertices > MAX_VERTICES:
            raise _refuse(f"the filter's geometries have too many vertices (at most {MAX_VERTICES} in all)")
        return geom


def _date(text: Any) -> _Date:
    try:
        return _Date(dt.date.fromisoformat(str(text)))
    except ValueError:
        raise _refuse(f"DATE({str(text)[:40]!r}) is not a date YYYY-MM-DD") from None


def _timestamp(text: Any) -> _Timestamp:
    raw = str(text)
    try:
        if not re.fullmatch(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)?", raw, re.IGNORECASE):
            raise ValueError(raw)
        value = dt.datetime.fromisoformat(raw.upper().replace("Z", "+00:00"))
    except ValueError:
        raise _refuse(f"TIMESTAMP({raw[:40]!r}) is not a timestamp such as 2023-05-01T00:00:00Z") from None
    return _Timestamp(value)


def _instant(text: Any) -> Any:
    """An interval's end: '..' (open), a date or a timestamp."""
    if text in ("..", None):
        return None
    raw = str(text)
    return _date(raw) if len(raw) == 10 else _timestamp(raw)


def _bbox(numbers: list, budget: _Budget) -> _Geom:
    if len(numbers) not in (4, 6) or not all(_is_number(n) for n in numbers):
        raise _refuse("a bbox needs 4 numbers: minx, miny, maxx, maxy")
    if len(numbers) == 6:
        numbers = [numbers[0], numbers[1], numbers[3], numbers[4]]
    minx, miny, maxx, maxy = map(float, numbers)
    if not all(math.isfinite(v) for v in numbers) or minx > maxx or miny > maxy:
        raise _refuse("a bbox needs minx <= maxx and miny <= maxy, as finite numbers")
    return _Geom(budget.geometry(shapely.box(minx, miny, maxx, maxy)))


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _geometry_checked(geom: BaseGeometry, budget: _Budget) -> _Geom:
    budget.geometry(geom)
    if geom.is_empty:
        raise _refuse("a geometry in the filter is empty")
    if geom.geom_type == "GeometryCollection":
        raise _refuse("a GEOMETRYCOLLECTION is not supported in the filter; use a MULTI... geometry")
    if geom.has_z:
        geom = shapely.force_2d(geom)
    coords = shapely.get_coordinates(geom)
    if not np.all(np.isfinite(coords)):
        raise _refuse("a geometry in the filter has coordinates that are not finite numbers")
    if not geom.is_valid:
        reason = shapely.is_valid_reason(geom)
        raise _refuse(f"a geometry in the filter is not valid: {reason}")
    return _Geom(geom)


# -- CQL2 text ------------------------------------------------------------------------------


_WKT_TYPES = (
    "POINT",
    "LINESTRING",
    "POLYGON",
    "MULTIPOINT",
    "MULTILINESTRING",
    "MULTIPOLYGON",
    "GEOMETRYCOLLECTION",
)
_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<string>'(?:[^']|'')*')
  | (?P<quoted>"[^"]{1,64}")
  | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<op><>|!=|<=|>=|[=<>(),+\-*/\[\]])
  | (?P<word>[A-Za-z_][A-Za-z0-9_:.]*)
    """,
    re.VERBOSE,
)
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_:.]*")
_KEYWORDS = {
    "AND",
    "OR",
    "NOT",
    "LIKE",
    "ILIKE",
    "BETWEEN",
    "IN",
    "IS",
    "NULL",
    "TRUE",
    "FALSE",
    "INCLUDE",
    "EXCLUDE",
}


@dataclass(frozen=True)
class _Tok:
    kind: str  # string quoted number op word wkt end
    text: str
    at: int


def _tokens(text: str) -> list[_Tok]:
    out: list[_Tok] = []
    pos = 0
    while pos < len(text):
        word = _WORD.match(text, pos)
        if word and word.group(0).upper() in _WKT_TYPES:
            end = _wkt_end(text, pos + len(word.group(0)))
            if end is not None:
                out.append(_Tok("wkt", text[pos:end], pos))
                pos = end
                continue
        m = _TOKEN.match(text, pos)
        if m is None:
            raise _refuse(f"unexpected character {text[pos]!r} at position {pos + 1} of the filter")
        if m.lastgroup != "ws":
            out.append(_Tok(m.lastgroup, m.group(0), pos))
        pos = m.end()
    out.append(_Tok("end", "", len(text)))
    return out


_DIMENSIONS = re.compile(r"\s*(?:ZM|Z|M)?\s*", re.IGNORECASE)


def _wkt_end(text: str, pos: int) -> int | None:
    """Where a WKT literal whose type name ends at ``pos`` ends (balanced parentheses), or None if it is no WKT."""
    m = _DIMENSIONS.match(text, pos)
    pos = m.end()
    if text[pos : pos + 5].upper() == "EMPTY":
        return pos + 5
    if pos >= len(text) or text[pos] != "(":
        return None
    depth = 0
    for i in range(pos, len(text)):
        c = text[i]
        if c == "(":
            depth += 1
            if depth > MAX_DEPTH:
                raise _refuse(f"a geometry in the filter is nested too deeply (at most {MAX_DEPTH} levels)")
        elif c == ")":
            depth -= 1
            if depth == 0:
                return i + 1
        elif not (c.isspace() or c.isdigit() or c in ".,-+eE" or c.isalpha()):
            return None
    raise _refuse("a WKT geometry in the filter has no closing parenthesis")


class _TextParser:
    def __init__(self, text: str, budget: _Budget):
        self.toks = _tokens(text)
        self.i = 0
        self.depth = 0
        self.budget = budget

    # helpers
    @property
    def tok(self) -> _Tok:
        return self.toks[self.i]

    def word(self) -> str | None:
        return self.tok.text.upper() if self.tok.kind == "word" else None

    def take(self) -> _Tok:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def accept_word(self, *words: str) -> bool:
        if self.word() in words:
            self.i += 1
            return True
        return False

    def expect(self, text: str) -> None:
        if self.tok.kind == "op" and self.tok.text == text:
            self.i += 1
            return
        raise self.error(f"expected {text!r}")

    def error(self, what: str) -> InvalidParameter:
        tok = self.tok
        found = "the end of the filter" if tok.kind == "end" else repr(tok.text[:40])
        return _refuse(f"{what} at position {tok.at + 1}, found {found}; CQL2 text supports {SUPPORTED}")

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise _refuse(f"the filter is nested too deeply (at most {MAX_DEPTH} levels)")

    # grammar
    def parse(self) -> Any:
        node = self.or_()
        if self.tok.kind != "end":
            raise self.error("expected AND, OR or the end of the filter")
        return node

    def or_(self) -> Any:
        self.enter()
        items = [self.and_()]
        while self.accept_word("OR"):
            items.append(self.and_())
        self.depth -= 1
        return items[0] if len(items) == 1 else _Pred("or", tuple(items))

    def and_(self) -> Any:
        items = [self.not_()]
        while self.accept_word("AND"):
            items.append(self.not_())
        return items[0] if len(items) == 1 else _Pred("and", tuple(items))

    def not_(self) -> Any:
        if self.accept_word("NOT"):
            self.enter()
            node = _Pred("not", (self.not_(),))
            self.depth -= 1
            return node
        return self.primary()

    def primary(self) -> Any:
        tok = self.tok
        if tok.kind == "op" and tok.text == "(":
            self.take()
            node = self.or_()
            self.expect(")")
            return node
        word = self.word()
        if word in ("TRUE", "INCLUDE") or word in ("FALSE", "EXCLUDE"):
            self.take()
            self.budget.term()
            return Const(word in ("TRUE", "INCLUDE"))
        if word is not None and word.lower() in SPATIAL + TEMPORAL:
            return self.function_predicate(word.lower())
        if word == "BBOX" and self.toks[self.i + 1].text == "(":
            return self.bbox_predicate()
        return self.predicate()

    def function_predicate(self, op: str) -> _Pred:
        self.take()
        self.budget.term()
        self.expect("(")
        a = self.scalar()
        self.expect(",")
        b = self.scalar()
        self.expect(")")
        return _Pred(op, (a, b))

    def bbox_predicate(self) -> _Pred:
        """BBOX(geometry, minx, miny, maxx, maxy): S_INTERSECTS with that box (as CQL1 and ECQL write it)."""
        self.take()
        self.budget.term()
        self.expect("(")
        target = self.scalar()
        numbers = []
        while self.tok.text == ",":
            self.take()
            numbers.append(self.number())
        self.expect(")")
        return _Pred("s_intersects", (target, _bbox(numbers, self.budget)))

    def predicate(self) -> _Pred:
        self.budget.term()
        left = self.scalar()
        tok = self.tok
        if tok.kind == "op" and tok.text in (*COMPARISONS, "!="):
            self.take()
            op = "<>" if tok.text == "!=" else tok.text
            return _Pred(op, (left, self.scalar()))
        negated = self.accept_word("NOT")
        if self.accept_word("LIKE"):
            node = _Pred("like", (left, self.scalar()))
        elif self.word() == "ILIKE" and isinstance(left, _Prop):
            # CQL1's ILIKE, which GDAL's OAPIF driver sends: CASEI(property) LIKE CASEI(pattern)
            self.take()
            pattern = self.scalar()
            pattern = _Text(pattern, casei=True) if isinstance(pattern, str) else pattern
            node = _Pred("like", (_Prop(left.name, casei=True), pattern))
        elif self.accept_word("BETWEEN"):
            low = self.scalar()
            if not self.accept_word("AND"):
                raise self.error("expected AND in BETWEEN ... AND ...")
            node = _Pred("between", (left, low, self.scalar()))
        elif self.accept_word("IN"):
            self.expect("(")
            values = [self.scalar()]
            while self.tok.text == ",":
                self.take()
                values.append(self.scalar())
            self.expect(")")
            node = _Pred("in", (left, tuple(values)))
        elif not negated and self.accept_word("IS"):
            negated = self.accept_word("NOT")
            if not self.accept_word("NULL"):
                raise self.error("expected NULL after IS")
            node = _Pred("isNull", (left,))
        else:
            raise self.error("expected a comparison, LIKE, BETWEEN, IN or IS NULL")
        return _Pred("not", (node,)) if negated else node

    def number(self) -> float | int:
        sign = 1
        if self.tok.text in ("-", "+"):
            sign = -1 if self.take().text == "-" else 1
        if self.tok.kind != "number":
            raise self.error("expected a number")
        text = self.take().text
        if len(text) > 40:
            raise _refuse(f"the number {text[:20]}... in the filter is too long")
        value = float(text) if any(c in text for c in ".eE") else int(text)
        return sign * value

    def scalar(self) -> Any:
        value = self.operand()
        if self.tok.kind == "op" and self.tok.text in ("+", "-", "*", "/"):
            raise self.error("arithmetic is not supported")
        return value

    def operand(self) -> Any:
        self.budget.term()
        tok = self.tok
        if tok.kind == "string":
            self.take()
            return tok.text[1:-1].replace("''", "'")
        if tok.kind == "number" or (tok.kind == "op" and tok.text in ("-", "+")):
            return self.number()
        if tok.kind == "quoted":
            self.take()
            return _Prop(tok.text[1:-1])
        if tok.kind == "wkt":
            self.take()
            try:
                geom = shapely.from_wkt(tok.text)
            except shapely.errors.GEOSException as exc:
                raise _refuse(f"not a valid WKT geometry: {tok.text[:60]!r} ({exc})") from None
            return _geometry_checked(geom, self.budget)
        word = self.word()
        if word is None:
            raise self.error("expected a property name or a value")
        if word in _KEYWORDS:
            if word in ("TRUE", "FALSE"):
                self.take()
                return word == "TRUE"
            raise self.error("expected a property name or a value")
        self.take()
        if self.tok.text != "(":
            return _Prop(tok.text)
        return self.call(word, tok)

    def call(self, name: str, tok: _Tok) -> Any:
        self.take()  # (
        self.enter()
        if name in ("DATE", "TIMESTAMP"):
            arg = self.scalar()
            self.expect(")")
            self.depth -= 1
            if not isinstance(arg, str):
                raise _refuse(f"{name} takes a quoted text, such as {name}('2023-05-01')")
            return _date(arg) if name == "DATE" else _timestamp(arg)
        if name == "INTERVAL":
            start = self.scalar()
            self.expect(",")
            end = self.scalar()
            self.expect(")")
            self.depth -= 1
            if not isinstance(start, str) or not isinstance(end, str):
                raise _refuse("INTERVAL takes two quoted dates or timestamps ('..' for an open end)")
            return _Interval(_instant(start), _instant(end))
        if name == "BBOX":
            numbers = [self.number()]
            while self.tok.text == ",":
                self.take()
                numbers.append(self.number())
            self.expect(")")
            self.depth -= 1
            return _bbox(numbers, self.budget)
        if name in ("CASEI", "LOWER"):
            arg = self.scalar()
            self.expect(")")
            self.depth -= 1
            if isinstance(arg, _Prop):
                return _Prop(arg.name, casei=True)
            if isinstance(arg, str):
                return _Text(arg, casei=True)
            raise _refuse("CASEI takes a property or a quoted text")
        raise _refuse(
            f"unsupported function {tok.text[:40]!r} in the filter; supported: CASEI, DATE, TIMESTAMP, INTERVAL, BBOX, "
            + ", ".join(s.upper() for s in SPATIAL + TEMPORAL)
        )


# -- CQL2 JSON ------------------------------------------------------------------------------


_JSON_OPS = {
    "and": "and",
    "or": "or",
    "not": "not",
    "=": "=",
    "<>": "<>",
    "<": "<",
    "<=": "<=",
    ">": ">",
    ">=": ">=",
    "like": "like",
    "between": "between",
    "in": "in",
    "isnull": "isNull",
    **{op: op for op in SPATIAL + TEMPORAL},
}


class _JSONReader:
    def __init__(self, budget: _Budget):
        self.budget = budget

    def predicate(self, node: Any, depth: int = 0) -> Any:
        if depth > MAX_DEPTH:
            raise _refuse(f"the filter is nested too deeply (at most {MAX_DEPTH} levels)")
        self.budget.term()
        if isinstance(node, bool):
            return Const(node)
        if not isinstance(node, dict) or "op" not in node:
            raise _refuse(f'expected a predicate {{"op": ..., "args": [...]}}, found {_short(node)}')
        raw_op = node.get("op")
        op = _JSON_OPS.get(raw_op.lower() if isinstance(raw_op, str) else None)
        if op is None:
            raise _refuse(f"unsupported operator {_short(raw_op)} in the filter; CQL2 JSON supports {SUPPORTED}")
        args = node.get("args")
        if not isinstance(args, list):
            raise _refuse(f'operator {raw_op!r} needs "args" as an array')
        if op in ("and", "or"):
            if len(args) < 2:
                raise _refuse(f"{op} needs at least two arguments")
            return _Pred(op, tuple(self.predicate(a, depth + 1) for a in args))
        if op == "not":
            if len(args) != 1:
                raise _refuse("not needs one argument")
            return _Pred(op, (self.predicate(args[0], depth + 1),))
        want = {"isNull": 1, "between": 3, "in": 2}.get(op, 2)
        if len(args) != want:
            raise _refuse(f"{raw_op} needs {want} argument{'s' if want > 1 else ''}, found {len(args)}")
        if op == "in":
            if not isinstance(args[1], list):
                raise _refuse('in needs an array of values as its second argument: {"op": "in", "args": [p, [...]]}')
            return _Pred(op, (self.scalar(args[0], depth + 1), tuple(self.scalar(v, depth + 1) for v in args[1])))
        return _Pred(op, tuple(self.scalar(a, depth + 1) for a in args))

    def scalar(self, node: Any, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise _refuse(f"the filter is nested too deeply (at most {MAX_DEPTH} levels)")
        self.budget.term()
        if node is None or isinstance(node, str | bool) or _is_number(node):
            if isinstance(node, float) and not math.isfinite(node):
                raise _refuse("numbers in the filter must be finite")
            return node
        if not isinstance(node, dict):
            raise _refuse(f"expected a property, a value or a geometry, found {_short(node)}")
        if "property" in node:
            if not isinstance(node["property"], str):
                raise _refuse('"property" must name a property as text')
            return _Prop(node["property"])
        if "date" in node:
            return _date(node["date"])
        if "timestamp" in node:
            return _timestamp(node["timestamp"])
        if "interval" in node:
            ends = node["interval"]
            if not isinstance(ends, list) or len(ends) != 2:
                raise _refuse('"interval" needs an array of two dates or timestamps ("..": open)')
            return _Interval(_instant(ends[0]), _instant(ends[1]))
        if "bbox" in node:
            box = node["bbox"]
            return _bbox(box if isinstance(box, list) else [], self.budget)
        if "type" in node and ("coordinates" in node or "geometries" in node):
            try:
                geom = shapely.geometry.shape(node)
            except Exception as exc:  # shapely raises several kinds for a malformed GeoJSON geometry
                raise _refuse(f"not a valid GeoJSON geometry: {str(exc)[:80]}") from None
            return _geometry_checked(geom, self.budget)
        if "op" in node and isinstance(node["op"], str) and node["op"].lower() in ("casei", "lower"):
            args = node.get("args")
            if not isinstance(args, list) or len(args) != 1:
                raise _refuse("casei needs one argument")
            arg = self.scalar(args[0], depth + 1)
            if isinstance(arg, _Prop):
                return _Prop(arg.name, casei=True)
            if isinstance(arg, str):
                return _Text(arg, casei=True)
            raise _refuse("casei takes a property or a text")
        if "op" in node:
            raise _refuse(f"unsupported function {_short(node.get('op'))} in the filter; supported: casei")
        raise _refuse(f"expected a property, a value or a geometry, found {_short(node)}")


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# -- checking a read filter against the layer --------------------------------------------------


_FLIP = {"=": "=", "<>": "<>", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
_SPATIAL_FLIP = {"within": "contains", "contains": "within"}
_TYPE_WORDS = {
    "string": "text (in single quotes)",
    "integer": "a number",
    "number": "a number",
    "boolean": "TRUE or FALSE",
    "date": "a date, DATE('YYYY-MM-DD')",
    "datetime": "a timestamp, TIMESTAMP('YYYY-MM-DDTHH:MM:SSZ')",
}


class _Checker:
    def __init__(self, layer: Layer, visibility: str, to_storage: Callable[[BaseGeometry], BaseGeometry]):
        self.fields = {f.name: f for f in layer.visible_fields(visibility == "internal")}
        self.to_storage = to_storage
        self.costly = 0

    def cost(self) -> None:
        self.costly += 1
        if self.costly > MAX_COSTLY:
            raise _refuse(f"the filter has too many LIKE and spatial predicates (at most {MAX_COSTLY})")

    def unknown(self, name: str) -> InvalidParameter:
        allowed = ", ".join([*self.fields, GEOMETRY_PROPERTY])
        return _refuse(f"unknown property {name[:64]!r} in the filter; queryable properties: {allowed}")

    def field(self, prop: _Prop) -> FieldDef:
        if prop.name == GEOMETRY_PROPERTY:
            raise _refuse(f"the property {GEOMETRY_PROPERTY} is compared with spatial functions such as S_INTERSECTS")
        spec = self.fields.get(prop.name)
        if spec is None:
            raise self.unknown(prop.name)
        if prop.casei and spec.type != "string":
            raise _refuse(f"CASEI applies to text; the property {prop.name!r} is {spec.type}")
        return spec

    def moment(self, spec: FieldDef, value: Any) -> str:
        """A timestamp (or a date, as its midnight UTC) as a moment field holds it: UTC text, which sorts in time."""
        if isinstance(value, _Date):
            value = dt.datetime.combine(value.value, dt.time(0), dt.UTC)
        elif isinstance(value, _Timestamp):
            value = value.value if value.value.tzinfo else value.value.replace(tzinfo=dt.UTC)
        try:
            return utc_text(value)
        except ValueError:
            raise _refuse(
                f"the property {spec.name!r} is compared with a timestamp, TIMESTAMP('2023-06-01T08:00:00Z'); "
                f"found {_short_value(value)}"
            ) from None

    def value(self, spec: FieldDef, value: Any, *, casei: bool = False) -> Any:
        """A literal as the field's type (dates as "YYYY-MM-DD"), or a refusal naming the property."""
        wrong = _refuse(
            f"the property {spec.name!r} is compared with {_TYPE_WORDS[spec.type]}; found {_short_value(value)}"
        )
        if isinstance(value, _Text):
            if spec.type != "string":
                raise wrong
            return fold(_no_nul(value.value))
        if spec.type == "string":
            if not isinstance(value, str):
                raise wrong
            return fold(_no_nul(value)) if casei else _no_nul(value)
        if spec.type in ("integer", "number"):
            if not _is_number(value):
                raise wrong
            try:
                finite = math.isfinite(float(value))
            except OverflowError:
                finite = False
            if not finite:
                raise _refuse(f"the number compared with {spec.name!r} is too large")
            return value
        if spec.type == "boolean":
            if not isinstance(value, bool):
                raise wrong
            return value
        if spec.type == "datetime":
            return self.moment(spec, value)
        # date
        if isinstance(value, _Date):
            return value.value.isoformat()
        if isinstance(value, _Timestamp):
            stamp = value.value
            if stamp.time() != dt.time(0, 0) or (stamp.utcoffset() not in (None, dt.timedelta(0))):
                raise _refuse(
                    f"the property {spec.name!r} holds dates; compare it with DATE('YYYY-MM-DD') or a timestamp at "
                    "midnight UTC"
                )
            return stamp.date().isoformat()
        if isinstance(value, str):
            try:
                return dt.date.fromisoformat(value).isoformat()
            except ValueError:
                raise wrong from None
        raise wrong

    def check(self, node: Any) -> Where:
        if isinstance(node, Const):
            return node
        if not isinstance(node, _Pred):
            raise _refuse(f"expected a predicate, found {_short_value(node)}")
        op, args = node.op, node.args
        if op == "and":
            return And(tuple(self.check(a) for a in args))
        if op == "or":
            return Or(tuple(self.check(a) for a in args))
        if op == "not":
            return Not(self.check(args[0]))
        if op in SPATIAL:
            return self.spatial(op, *args)
        if op in TEMPORAL:
            return self.temporal(op, *args)
        if op in COMPARISONS:
            left, right = args
            if not isinstance(left, _Prop) and isinstance(right, _Prop):
                left, right, op = right, left, _FLIP[op]
            if not isinstance(left, _Prop):
                raise _refuse("a comparison needs a property on one side and a value on the other")
            if isinstance(right, _Prop):
                raise _refuse("comparing two properties is not supported; compare a property with a value")
            spec = self.field(left)
            if op not in ("=", "<>") and spec.type == "boolean":
                raise _refuse(f"the property {spec.name!r} is true or false; compare it with = or <>")
            casei = left.casei or (isinstance(right, _Text) and right.casei)
            if casei and not left.casei:
                raise _refuse("CASEI needs to be on both sides: CASEI(property) = CASEI('text')")
            return Compare(spec.name, op, self.value(spec, right, casei=casei), casei)
        prop = args[0]
        if not isinstance(prop, _Prop):
            raise _refuse(f"{op.upper() if op != 'isNull' else 'IS NULL'} needs a property on its left")
        spec = self.field(prop)
        if op == "isNull":
            return IsNull(spec.name)
        if op == "like":
            if spec.type != "string":
                raise _refuse(f"LIKE applies to text; the property {spec.name!r} is {spec.type}")
            pattern = args[1]
            if isinstance(pattern, _Text):
                pattern = fold(pattern.value)
            elif not isinstance(pattern, str):
                raise _refuse("LIKE needs a quoted pattern, such as name LIKE '%路%'")
            elif prop.casei:
                pattern = fold(pattern)
            _no_nul(pattern)
            if len(pattern) > MAX_PATTERN:
                raise _refuse(f"a LIKE pattern may have at most {MAX_PATTERN} characters")
            if _escape_at_end(pattern):
                raise _refuse("a LIKE pattern must not end with the escape character \\")
            self.cost()
            return Like(spec.name, pattern, prop.casei)
        if op == "between":
            if spec.type not in ("integer", "number", "date", "datetime"):
                raise _refuse(f"BETWEEN applies to numbers and dates; the property {spec.name!r} is {spec.type}")
            return Between(spec.name, self.value(spec, args[1]), self.value(spec, args[2]))
        if op == "in":
            values = args[1]
            if len(values) > MAX_IN:
                raise _refuse(f"IN takes at most {MAX_IN} values")
            return In(spec.name, tuple(self.value(spec, v, casei=prop.casei) for v in values), prop.casei)
        raise _refuse(f"unsupported operator {op!r}")

    def spatial(self, op: str, a: Any, b: Any) -> Where:
        name = op[2:]
        if isinstance(a, _Geom) and isinstance(b, _Prop):
            a, b, name = b, a, _SPATIAL_FLIP.get(name, name)
        if not isinstance(a, _Prop) or not isinstance(b, _Geom):
            raise _refuse(
                f"{op.upper()} compares the property {GEOMETRY_PROPERTY} with a geometry (WKT, GeoJSON or BBOX)"
            )
        if a.name != GEOMETRY_PROPERTY:
            if a.name in self.fields:
                raise _refuse(f"{op.upper()} applies to the property {GEOMETRY_PROPERTY}; {a.name!r} is not a geometry")
            raise self.unknown(a.name)
        self.cost()
        geom = self.to_storage(b.geometry)
        if not geom.is_valid:  # valid in filter-crs, not once converted (a ring folded across the CRS's edge)
            raise _refuse(f"a geometry of the filter is not valid in lon/lat: {shapely.is_valid_reason(geom)}")
        return Spatial(name, geom)

    def temporal(self, op: str, a: Any, b: Any) -> Where:
        flip = {"t_before": "t_after", "t_after": "t_before"}
        if not isinstance(a, _Prop) and isinstance(b, _Prop):
            a, b, op = b, a, flip.get(op, op)
            if op == "t_during":
                raise _refuse("T_DURING needs the property first: T_DURING(property, INTERVAL(...))")
        if not isinstance(a, _Prop):
            raise _refuse(f"{op.upper()} needs a date property and a date, timestamp or interval")
        spec = self.field(a)
        if spec.type not in ("date", "datetime"):
            raise _refuse(f"{op.upper()} applies to dates; the property {spec.name!r} is {spec.type}")
        if isinstance(b, _Interval):
            start = None if b.start is None else self.value(spec, b.start)
            end = None if b.end is None else self.value(spec, b.end)
            if start is not None and end is not None and start > end:
                raise _refuse("an INTERVAL must not end before it starts")
            inside = [Compare(spec.name, ">=", start)] if start is not None else []
            inside += [Compare(spec.name, "<=", end)] if end is not None else []
            strictly = [Compare(spec.name, ">", start)] if start is not None else []
            strictly += [Compare(spec.name, "<", end)] if end is not None else []
            everything = Not(IsNull(spec.name))
            if op == "t_before":
                return Compare(spec.name, "<", start) if start is not None else Const(False)
            if op == "t_after":
                return Compare(spec.name, ">", end) if end is not None else Const(False)
            if op in ("t_intersects", "t_disjoint"):
                hit = _and(inside) if inside else everything
                return hit if op == "t_intersects" else Not(hit)
            if op == "t_during":
                return _and(strictly) if strictly else everything
            raise _refuse(f"{op.upper()} compares a date with a date; an interval needs T_INTERSECTS or T_DURING")
        value = self.value(spec, b)
        if op == "t_during":
            raise _refuse("T_DURING needs an interval: T_DURING(property, INTERVAL('2023-01-01', '2023-12-31'))")
        ops = {"t_before": "<", "t_after": ">", "t_equals": "=", "t_intersects": "=", "t_disjoint": "<>"}
        return Compare(spec.name, ops[op], value)


def _and(items: list) -> Where:
    return items[0] if len(items) == 1 else And(tuple(items))


def _short_value(value: Any) -> str:
    if isinstance(value, _Prop):
        return f"the property {value.name[:64]!r}"
    if isinstance(value, _Text):
        return repr(value.value[:40])
    if isinstance(value, _Date):
        return f"DATE('{value.value.isoformat()}')"
    if isinstance(value, _Timestamp):
        return f"TIMESTAMP('{value.value.isoformat()}')"
    if isinstance(value, _Interval):
        return "an INTERVAL"
    if isinstance(value, _Geom):
        return "a geometry"
    if isinstance(value, _Pred):
        return f"a {value.op} predicate"
    if isinstance(value, str):
        return repr(value[:40])
    return repr(value)[:40]


def _no_nul(text: str) -> str:
    if "\x00" in text:
        raise _refuse("text in the filter must not contain the character NUL")
    return text


def _escape_at_end(pattern: str) -> bool:
    run = len(pattern) - len(pattern.rstrip("\\"))
    return run % 2 == 1


def _converter(filter_crs: Any) -> Callable[[BaseGeometry], BaseGeometry]:
    """Geometry from ``filter_crs`` (a ``geoapp.core.crs.CoordSystem``; None: CRS84) into storage lon/lat.

    Coordinates are in the axis order of ``filter_crs``, as OGC API - Features Part 3 has them (and as ``bbox-crs``
    reads them): latitude first for EPSG:4326 and 4490, northing first for the Gauss-Kruger zones."""
    code = getattr(filter_crs, "code", None)
    if filter_crs is None or code in ("OGC:CRS84", "CRS84"):
        return lambda geom: geom
    if getattr(filter_crs, "lat_first", False):
        to_xy = _converter_xy(filter_crs)
        return lambda geom: to_xy(shapely.transform(geom, lambda coords: coords[:, ::-1]))
    return _converter_xy(filter_crs)


def _converter_xy(filter_crs: Any) -> Callable[[BaseGeometry], BaseGeometry]:
    """Geometry whose coordinates are x (easting, longitude) first in ``filter_crs`` into storage lon/lat."""
    code = getattr(filter_crs, "code", None)
    if code == "EPSG:4326":
        return lambda geom: geom
    from geoapp.core import crs as crs_module

    to_storage = getattr(crs_module, "to_storage", None)
    if to_storage is None:
        raise InvalidParameter("filter-crs: only CRS84 (EPSG:4326) is supported here", parameter="filter-crs")

    def convert(geom: BaseGeometry) -> BaseGeometry:
        out = to_storage(geom, filter_crs)
        if not np.all(np.isfinite(shapely.get_coordinates(out))):
            raise InvalidParameter(f"a geometry of the filter lies outside what {code} covers", parameter="filter-crs")
        return out

    return convert


def parse(text: str | Mapping, lang: str, layer: Layer, *, visibility: str, filter_crs: Any = None) -> Where:
    """Read a CQL2 filter for ``layer``; refuse what is unknown, mistyped or unsupported.

    Parameters
    ----------
    text : str or dict
        The filter: CQL2 text, or CQL2 JSON as text (or already decoded).
    lang : {"cql2-text", "cql2-json"}
        Its language (OGC's ``filter-lang``).
    layer : Layer
        The layer whose fields the filter names.
    visibility : {"public", "internal"}
        Which fields the caller may name: internal ones are unknown to the public.
    filter_crs : geoapp.core.crs.CoordSystem, optional
        The CRS of geometry literals (``filter-crs``); CRS84 lon/lat when not given.

    Returns
    -------
    Where
        The filter as this module's tree, geometries in storage lon/lat.

    Raises
    ------
    InvalidParameter
        With ``parameter="filter"``, naming what is wrong and what is allowed.
    """
    if lang not in LANGUAGES:
        raise InvalidParameter(
            f"unknown filter-lang {str(lang)[:40]!r}; allowed: {', '.join(LANGUAGES)}", parameter="filter-lang"
        )
    to_storage = _converter(filter_crs)
    budget = _Budget()
    if isinstance(text, Mapping):
        raw: Any = dict(text)
        if lang != "cql2-json":
            raise _refuse("a decoded JSON filter needs filter-lang=cql2-json")
    else:
        if not isinstance(text, str) or not text.strip():
            raise _refuse("the filter is empty")
        if len(text) > MAX_LENGTH:
            raise _refuse(f"the filter is too long ({len(text)} characters; at most {MAX_LENGTH})")
        raw = text
    if lang == "cql2-text":
        read = _TextParser(raw, budget).parse()
    else:
        if isinstance(raw, str):
            if raw.count("[") + raw.count("{") > 4 * MAX_TERMS + MAX_VERTICES:
                raise _refuse("the filter is nested too deeply")
            try:
                raw = json.loads(raw)
            except RecursionError:
                raise _refuse(f"the filter is nested too deeply (at most {MAX_DEPTH} levels)") from None
            except ValueError as exc:
                raise _refuse(f"the filter is not valid JSON: {exc}") from None
        read = _JSONReader(budget).predicate(raw)
    return _Checker(layer, visibility, to_storage).check(read)


# -- /queryables -----------------------------------------------------------------------------


_GEOMETRY_FORMATS = {
    "Point": "geometry-point",
    "LineString": "geometry-linestring",
    "Polygon": "geometry-polygon",
    "MultiPoint": "geometry-multipoint",
    "MultiLineString": "geometry-multilinestring",
    "MultiPolygon": "geometry-multipolygon",
}


def queryables(layer: Layer, *, visibility: str, id: str | None = None) -> dict:
    """The JSON Schema of a layer's queryable properties (OGC API - Features Part 3 ``/queryables``).

    Self-contained (no external ``$ref``): the geometry as ``format: geometry-*``, each field the
    caller may see with its type, its Chinese label as ``title`` and the English one as
    ``description``, and allowed values as ``enum``. ``id`` is the document's URL (the web layer
    knows it).
    """
    kinds = set(layer.geometry)
    if len(kinds) == 1:
        fmt = _GEOMETRY_FORMATS[next(iter(kinds))]
    elif kinds <= {"Polygon", "MultiPolygon"}:
        fmt = "geometry-polygon-or-multipolygon"
    elif kinds <= {"LineString", "MultiLineString"}:
        fmt = "geometry-linestring-or-multilinestring"
    elif kinds <= {"Point", "MultiPoint"}:
        fmt = "geometry-point-or-multipoint"
    else:
        fmt = "geometry-any"
    props: dict[str, Any] = {
        GEOMETRY_PROPERTY: {
            "title": "几何 / Geometry",
            "description": "Geometry",
            "format": fmt,
            "x-ogc-role": "primary-geometry",
        }
    }
    for spec in layer.visible_fields(visibility == "internal"):
        schema: dict[str, Any] = {"title": spec.label.zh, "description": spec.label.en}
        if spec.type in ("date", "datetime"):
            schema.update(type="string", format="date" if spec.type == "date" else "date-time")
        else:
            schema["type"] = spec.type
        if spec.values is not None:
            schema["enum"] = list(spec.allowed)
        if spec.min is not None:
            schema["minimum"] = spec.min
        if spec.max is not None:
            schema["maximum"] = spec.max
        if spec.type == "string" and spec.values is None:
            schema["maxLength"] = spec.max_length
        if spec.unit:
            schema["x-unit"] = spec.unit
        props[spec.name] = schema
    out: dict[str, Any] = {"$schema": "https://json-schema.org/draft/2020-12/schema"}
    if id is not None:
        out["$id"] = id
    out.update(
        type="object",
        title=f"{layer.title.zh} / {layer.title.en}",
        description=f"Queryable properties of {layer.title.en}",
        properties=props,
        additionalProperties=False,
    )
    return out


# -- evaluating in memory ---------------------------------------------------------------------


_OPS = {
    "=": operator.eq,
    "<>": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
#: feature OP literal, as the STR-tree query of the literal answers it (predicate(literal, feature))
_TREE_PREDICATE = {
    "intersects": "intersects",
    "within": "contains",
    "contains": "within",
    "touches": "touches",
    "crosses": "crosses",
    "overlaps": "overlaps",
}
_SHAPELY = {
    "intersects": shapely.intersects,
    "disjoint": shapely.disjoint,
    "within": shapely.within,
    "contains": shapely.contains,
    "equals": shapely.equals,
    "touches": shapely.touches,
    "crosses": shapely.crosses,
    "overlaps": shapely.overlaps,
}


class Columns:
    """A layer's columns (or a few rows) typed for filtering, each conversion made once and kept.

    ``columns`` maps field names to arrays of Python values (None where missing); ``geometries``
    holds the lon/lat shapely geometries; ``tree`` an STR-tree on them, when there is one.
    """

    def __init__(self, layer: Layer, columns: Mapping[str, np.ndarray], geometries: np.ndarray, tree=None):
        self.layer = layer
        self.columns = columns
        self.geometries = geometries
        self.tree = tree
        self.size = len(geometries)
        self._typed: dict[tuple[str, bool], tuple[np.ndarray, np.ndarray]] = {}

    def typed(self, name: str, casei: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(values, present): numbers as float, dates and text as str (lower-cased for ``casei``), booleans as bool."""
        key = (name, casei)
        found = self._typed.get(key)
        if found is None:
            spec = self.layer.field(name)
            raw = pd.Series(np.asarray(self.columns[name], dtype=object), dtype=object)
            present = raw.notna().to_numpy(dtype=bool)
            if spec.type in ("integer", "number"):
                values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
                present = present & ~np.isnan(values)
            elif spec.type == "boolean":
                values = np.array([bool(v) if p else False for v, p in zip(raw, present, strict=True)], dtype=bool)
            else:
                text = [
                    (_iso(v) if spec.type == "date" else str(v)) if p else "" for v, p in zip(raw, present, strict=True)
                ]
                values = np.array([fold(t) for t in text] if casei else text, dtype=object)
            found = self._typed[key] = (values, present)
        return found

    def mask(self, where: Where) -> np.ndarray:
        """Which rows the filter holds true for (unknown counts as false)."""
        true, _ = self._eval(where)
        return true

    def _eval(self, node: Where) -> tuple[np.ndarray, np.ndarray]:
        """(true, unknown) boolean arrays: SQL's three-valued logic."""
        n = self.size
        if isinstance(node, Const):
            return np.full(n, node.value, dtype=bool), np.zeros(n, dtype=bool)
        if isinstance(node, And):
            true, unknown = np.ones(n, bool), np.zeros(n, bool)
            false = np.zeros(n, bool)
            for item in node.items:
                t, u = self._eval(item)
                false |= ~t & ~u
                true &= t
                unknown |= u
            return true, unknown & ~false
        if isinstance(node, Or):
            true, unknown = np.zeros(n, bool), np.zeros(n, bool)
            for item in node.items:
                t, u = self._eval(item)
                true |= t
                unknown |= u
            return true, unknown & ~true
        if isinstance(node, Not):
            t, u = self._eval(node.item)
            return ~t & ~u, u
        if isinstance(node, Spatial):
            return self._spatial(node), np.zeros(n, bool)
        if isinstance(node, IsNull):
            _, present = self.typed(node.name)
            return ~present, np.zeros(n, bool)
        values, present = self.typed(node.name, getattr(node, "casei", False))
        out = np.zeros(n, dtype=bool)
        if isinstance(node, Compare):
            if present.any():
                out[present] = np.asarray(_OPS[node.op](values[present], node.value), dtype=bool)
        elif isinstance(node, In):
            if present.any():
                out[present] = pd.Series(values[present]).isin(list(node.values)).to_numpy(dtype=bool)
        elif isinstance(node, Between):
            if present.any():
                sub = values[present]
                out[present] = np.asarray((sub >= node.low) & (sub <= node.high), dtype=bool)
        elif isinstance(node, Like):
            if present.any():
                test = like_matcher(node.pattern)
                out[present] = np.array([test(v) for v in values[present]], dtype=bool)
        else:
            raise TypeError(f"not a filter node: {node!r}")
        return out, ~present

    def _spatial(self, node: Spatial) -> np.ndarray:
        n = self.size
        out = np.zeros(n, dtype=bool)
        if not n:
            return out
        op, geom = node.op, node.geometry
        if self.tree is not None and op in _TREE_PREDICATE:
            out[self.tree.query(geom, predicate=_TREE_PREDICATE[op])] = True
            return out
        if self.tree is not None and op in ("equals", "disjoint"):
            hits = self.tree.query(geom, predicate="intersects")
            if op == "disjoint":
                out[:] = True
                out[hits] = False
            else:
                out[hits[shapely.equals(self.geometries[hits], geom)]] = True
            return out
        present = ~shapely.is_missing(self.geometries)
        out[present] = _SHAPELY[op](self.geometries[present], geom)
        return out


def _iso(value: Any) -> str:
    return value.isoformat()[:10] if isinstance(value, dt.date) else str(value)[:10]


def like_matcher(pattern: str) -> Callable[[str], bool]:
    """A test of text against a CQL2 LIKE pattern (``%`` any text, ``_`` one character, ``\\`` escapes).

    No backtracking regular expression (``%a%a%a...b`` would take exponential time): the pattern is
    cut at each ``%`` into pieces of fixed length; the first must start the text, the last end it,
    and each one between is found leftmost after the previous (which is correct for fixed-length
    pieces), so a test takes at most the text's length times the pattern's.
    """
    pieces: list[list[str]] = [[]]
    chars = iter(pattern)
    for c in chars:
        if c == "\\":
            pieces[-1].append(re.escape(next(chars, "\\")))
        elif c == "%":
            pieces.append([])
        elif c == "_":
            pieces[-1].append(".")
        else:
            pieces[-1].append(re.escape(c))
    compiled = [(re.compile("".join(p), re.DOTALL), len(p)) for p in pieces]
    if len(compiled) == 1:
        whole = compiled[0][0]
        return lambda text: whole.fullmatch(text) is not None
    (first, first_len), (last, last_len), middle = compiled[0], compiled[-1], compiled[1:-1]
    shortest = sum(length for _, length in compiled)

    def test(text: str) -> bool:
        end = len(text) - last_len
        if len(text) < shortest or not first.match(text) or not last.fullmatch(text, end):
            return False
        pos = first_len
        for piece, _ in middle:
            found = piece.search(text, pos, end)
            if found is None:
                return False
            pos = found.end()
        return True

    return test
