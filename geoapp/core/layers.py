"""Layer definitions: one YAML file per layer in ``layers/``, validated at start-up.

A layer is data, not code (as pygeoapi declares a collection): its id, titles, group, geometry
types, fields with their visibility and allowed values, the status vocabulary with colours and
the popup fields. Every other module reads the :class:`Registry`.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import zlib
from pathlib import Path
from typing import Any, Literal, TypeVar
from zoneinfo import ZoneInfo

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from geoapp.core.messages import Refused
from geoapp.errors import NotFound

GROUPS: dict[str, dict[str, str]] = {
    "flood": {"zh": "防汛", "en": "Flood control"},
    "roads": {"zh": "围挡与道路", "en": "Hoardings and roads"},
    "heating": {"zh": "供暖", "en": "Heating"},
    "components": {"zh": "部件", "en": "Components"},
    "cases": {"zh": "数字城管", "en": "Digital city management"},
    "base": {"zh": "底图", "en": "Base map"},
}
GEOMETRY_TYPES = ("Point", "LineString", "Polygon", "MultiPoint", "MultiLineString", "MultiPolygon")
FIELD_TYPES = ("string", "integer", "number", "boolean", "date", "datetime")
# Columns the store keeps for itself; a layer may not declare them.
RESERVED = {"fid", "geom", "geometry", "id", "_version", "distance_m"}
LANGUAGES = ("zh", "en")
#: the district's clock (GEOAPP_TIMEZONE may name another for the pages): a time read without a zone is on it
DISTRICT_ZONE = ZoneInfo("Asia/Shanghai")
MAX_SAFE_INTEGER = 2**53 - 1  # exact in SQLite, in doubles and in the browser
#: the years a date field takes (a city's records: nothing before 1900, nothing planned beyond 2100)
FIRST_YEAR, LAST_YEAR = 1900, 2100
#: characters no text field takes: C0 controls but tab and line breaks, and DEL
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


M = TypeVar("M", bound=BaseModel)


class LayerError(ValueError):
    """A layer definition is invalid; the message names the file and the field."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Label(_Model):
    zh: str = Field(min_length=1)
    en: str = Field(min_length=1)

    def __call__(self, lang: str) -> str:
        return self.en if lang == "en" else self.zh


class Choice(_Model):
    value: str = Field(min_length=1)
    label: Label
    color: str | None = Field(default=None, pattern=r"^#[0-9a-fA-F]{6}$")


class FieldDef(_Model):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")
    type: Literal["string", "integer", "number", "boolean", "date", "datetime"]
    label: Label
    visibility: Literal["public", "internal"] = "public"
    required: bool = False
    default: Any = None
    values: tuple[Choice, ...] | None = None
    pattern: str | None = None
    min: float | None = None
    max: float | None = None
    unit: str | None = None
    computed: Literal["length", "area"] | None = None
    max_length: int = Field(default=2000, ge=1)  # text fields: a note, not a document
    #: what ``pattern`` allows, in the user's words (a validation message never shows the regex)
    hint: Label | None = None
    #: text of several lines (notes): the edit forms give it a text area
    multiline: bool = False

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, name: str) -> str:
        if name in RESERVED:
            raise ValueError(f"{name!r} is reserved (reserved names: {', '.join(sorted(RESERVED))})")
        return name

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, pattern: str | None) -> str | None:
        if pattern is not None:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"not a regular expression: {exc}") from None
        return pattern

    @model_validator(mode="after")
    def _consistent(self) -> FieldDef:
        if self.values is not None:
            if self.type != "string":
                raise ValueError("allowed values are only for string fields")
            seen = [c.value for c in self.values]
            if len(set(seen)) != len(seen):
                raise ValueError(f"duplicate allowed values in {seen}")
        if self.computed and self.type != "number":
            raise ValueError("a computed field must have type number")
        if self.computed and self.required:
            raise ValueError("a computed field cannot be required: it is filled from the geometry")
        if self.pattern is not None and self.hint is None:
            raise ValueError("a field with a pattern needs a hint: what the pattern allows, in both languages")
        if self.multiline and (self.type != "string" or self.values is not None):
            raise ValueError("multiline is only for text fields without allowed values")
        if self.default is not None:
            self.coerce(self.default)
        return self

    @property
    def public(self) -> bool:
        return self.visibility == "public"

    @property
    def allowed(self) -> tuple[str, ...] | None:
        return None if self.values is None else tuple(c.value for c in self.values)

    def choice(self, value: str) -> Choice | None:
        for c in self.values or ():
            if c.value == value:
                return c
        return None

    def coerce(self, value: Any) -> Any:
        """Return ``value`` as this field's Python type, or raise :class:`~geoapp.core.messages.Refused` (a
        ``ValueError``) saying why not: in short English as ``str()``, and as the message people are shown."""
        if value is None or (isinstance(value, str) and value == "" and self.type != "string"):
            return None
        if self.type == "string":
            if not isinstance(value, str):
                raise Refused("must be text", "text")
            if self.required and not value.strip():
                # text of only spaces is as missing as no text; the value itself is kept as sent
                raise Refused("is required and must not be empty or only whitespace", "blank")
            if len(value) > self.max_length:
                raise Refused(f"must be at most {self.max_length} characters", "too_long", max=self.max_length)
            if _CONTROL.search(value):
                # NUL and other control characters cut text short in GDAL, QGIS and spreadsheets
                raise Refused("must not contain control characters (only tab and line breaks are allowed)", "control")
            if self.allowed is not None and value not in self.allowed:
                labels = [c.label for c in self.values or ()]
                raise Refused(f"must be one of: {', '.join(self.allowed)}", "choice", choices=labels)
            if self.pattern and not re.fullmatch(self.pattern, value):
                # the hint says in words what the pattern allows: no one is shown the regex
                raise Refused(f"must be {self.hint.en}", "pattern", hint=self.hint)
            return value
        if self.type == "boolean":
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
                return value.lower() in ("true", "1")
            raise Refused("must be true or false", "boolean")
        if self.type == "date":
            if isinstance(value, dt.date):
                day = dt.date(value.year, value.month, value.day)
            else:
                try:
                    day = dt.date.fromisoformat(str(value))
                except ValueError:
                    raise Refused("must be a date YYYY-MM-DD", "date") from None
            if not FIRST_YEAR <= day.year <= LAST_YEAR:
                # a year mistyped (0001, 2203) would stretch every timeline and the progress months to centuries
                raise Refused(
                    f"must be a date from {FIRST_YEAR} to {LAST_YEAR}", "date_range", first=FIRST_YEAR, last=LAST_YEAR
                )
            return day.isoformat()
        if self.type == "datetime":
            return utc_text(value)
        number = _number(value, integer=self.type == "integer")
        unit = f" {self.unit}" if self.unit else ""
        if self.min is not None and number < self.min:
            raise Refused(f"must be at least {self.min:g}", "min", min=self.min, unit=unit)
        if self.max is not None and number > self.max:
            raise Refused(f"must be at most {self.max:g}", "max", max=self.max, unit=unit)
        return number


def utc_text(value: Any) -> str:
    """A moment as stored: UTC to the second, ``2023-06-01T00:30:00Z``, or :class:`Refused` saying why not.

    Takes an aware :class:`datetime.datetime` or RFC 3339 text with its offset (``Z`` or ``+08:00``). A time
    without a zone is refused: whether it meant UTC or the district's clock cannot be told (pages and imports
    read a local time as the district's before they get here).
    """
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.strip().replace("z", "Z"))
        except ValueError:
            raise Refused("must be a date and time as YYYY-MM-DDTHH:MM:SS with its offset", "datetime") from None
    if not isinstance(value, dt.datetime):
        raise Refused("must be a date and time as YYYY-MM-DDTHH:MM:SS with its offset", "datetime")
    if value.tzinfo is None or value.utcoffset() is None:
        raise Refused("must give its time zone offset (Z or +08:00)", "datetime_zone")
    moment = value.astimezone(dt.UTC)
    if not FIRST_YEAR <= moment.year <= LAST_YEAR:
        raise Refused(
            f"must be a date from {FIRST_YEAR} to {LAST_YEAR}", "date_range", first=FIRST_YEAR, last=LAST_YEAR
        )
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _number(value: Any, *, integer: bool) -> int | float:
    if isinstance(value, bool):
        raise Refused("must be a number", "number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise Refused("must be a number", "number") from None
    if not math.isfinite(number):
        raise Refused("must be a finite number", "number")
    if abs(number) > MAX_SAFE_INTEGER:
        raise Refused(f"must be between -{MAX_SAFE_INTEGER} and {MAX_SAFE_INTEGER}", "too_big", limit=MAX_SAFE_INTEGER)
    if integer:
        if number != int(number):
            raise Refused("must be a whole number", "integer")
        return int(number)
    return number


class Style(_Model):
    color: str = Field(default="#3388ff", pattern=r"^#[0-9a-fA-F]{6}$")
    radius: float = 6
    weight: float = 3
    fill_opacity: float = Field(default=0.3, ge=0, le=1)
    icon: str | None = None
    cluster: bool = False
    by: str | None = None  # the field whose value colours decide a feature's colour


def _values(value: Any) -> Any:
    """A rule's condition names one value or a list of them: ``status: removed`` or ``status: [a, b]``."""
    if isinstance(value, dict):
        return {k: (v if isinstance(v, list | tuple) else [v]) for k, v in value.items()}
    return value


class Rule(_Model):
    """A rule of the bureau between a layer's fields, checked on every change (``geoapp.core.validate``).

    When a feature's fields hold the values in ``when`` (each field one of its listed values), the
    ``require`` fields must be filled and the ``clear`` fields are emptied: a hoarding set to 已整治
    needs its date and treatment; set back to 整治中, it loses them.
    """

    when: dict[str, tuple[str, ...]] = Field(min_length=1)
    require: tuple[str, ...] = ()
    clear: tuple[str, ...] = ()
    #: fields deliberately left as they are (said on the form, so that keeping them is a decision, not an omission)
    keep: tuple[str, ...] = ()
    #: why, in the user's words (shown with the message that names the missing field)
    note: Label | None = None

    _as_lists = field_validator("when", mode="before")(classmethod(lambda cls, v: _values(v)))

    @model_validator(mode="after")
    def _does_something(self) -> Rule:
        if not self.require and not self.clear:
            raise ValueError("a rule needs require or clear (the fields it fills or empties)")
        both = set(self.require) & set(self.clear) | set(self.keep) & (set(self.require) | set(self.clear))
        if both:
            raise ValueError(f"a field is named twice among require, clear and keep: {', '.join(sorted(both))}")
        return self


class Progress(_Model):
    """How ``/progress`` and the ledger follow a campaign on this layer (hoarding removal, repairs)."""

    #: values of the status field that count as done
    done: tuple[str, ...] = Field(min_length=1)
    #: the date a feature was done (the months chart counts these)
    date_field: str | None = None
    #: the target date: a feature not done once it has passed is overdue
    due_field: str | None = None
    #: fields the table filters by (each has allowed values)
    filters: tuple[str, ...] = ()
    #: the table's columns (the popup fields if none are given)
    columns: tuple[str, ...] = ()


class Photos(_Model):
    """Before/after photos (整治前后照片) attached to this layer's features: who may see them."""

    visibility: Literal["public", "internal"] = "internal"


class Layer(_Model):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")
    title: Label
    group: Literal["flood", "roads", "heating", "components", "cases", "base"]
    geometry: tuple[Literal[GEOMETRY_TYPES], ...] = Field(min_length=1)  # type: ignore[valid-type]
    fields: tuple[FieldDef, ...] = Field(min_length=1)
    title_field: str
    status_field: str | None = None
    popup: tuple[str, ...] = ()
    order: int = 0
    context: bool = False  # drawn under the others, small enough to embed
    #: ticked in the one map's layer list when it opens (a large layer, such as the year's cases, waits to be asked)
    shown: bool = True
    style: Style = Style()
    note: Label | None = None
    #: roles that may change the layer's features (admin always may)
    editors: tuple[Literal["viewer", "planner", "commander", "sensor", "dispatcher", "squad", "admin"], ...] = ()
    #: the bureau's rules between fields, checked on every change
    rules: tuple[Rule, ...] = ()
    #: the campaign the progress page and the ledger follow on this layer
    progress: Progress | None = None
    #: before/after photos, and whether the public sees them
    photos: Photos | None = None

    @model_validator(mode="after")
    def _references(self) -> Layer:
        names = [f.name for f in self.fields]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate field names: {', '.join(dupes)}")
        allowed = ", ".join(names)
        for key in ("title_field", "status_field"):
            name = getattr(self, key)
            if name is not None and name not in names:
                raise ValueError(f"{key} {name!r} is not a declared field (declared: {allowed})")
        if not self.field(self.title_field).public:
            raise ValueError(f"title_field {self.title_field!r} must be public: it names features for everyone")
        for name in self.popup:
            if name not in names:
                raise ValueError(f"popup field {name!r} is not a declared field (declared: {allowed})")
        for key in ("status_field", "style.by"):
            name = self.status_field if key == "status_field" else self.style.by
            if name in names and not self.field(name).public:
                raise ValueError(f"{key} {name!r} must be public: the map's colours and the statistics show it")
        if self.status_field:
            status = self.field(self.status_field)
            if not status.values or any(c.color is None for c in status.values):
                raise ValueError(f"status_field {self.status_field!r} needs allowed values, each with a colour")
        if self.style.by is not None:
            by = self.field(self.style.by) if self.style.by in names else None
            if by is None or not by.values or any(c.color is None for c in by.values):
                raise ValueError(f"style.by {self.style.by!r} must name a field whose values each have a colour")
        for f in self.fields:
            if f.computed == "area" and not set(self.geometry) <= {"Polygon", "MultiPolygon"}:
                raise ValueError(f"field {f.name!r}: an area needs polygon geometry")
            if f.computed == "length" and "Point" in self.geometry:
                raise ValueError(f"field {f.name!r}: a length needs line or polygon geometry")
        for i, rule in enumerate(self.rules):
            self._check_rule(f"rules.{i}", rule, names)
        if self.progress is not None:
            self._check_progress(names)
        return self

    def _check_rule(self, where: str, rule: Rule, names: list[str]) -> None:
        for name, values in rule.when.items():
            if name not in names:
                raise ValueError(f"{where}.when: {name!r} is not a declared field (declared: {', '.join(names)})")
            spec = self.field(name)
            for value in values:
                try:
                    spec.coerce(value)
                except ValueError as exc:
                    raise ValueError(f"{where}.when.{name}: {value!r} {exc}") from None
        for key in ("require", "clear", "keep"):
            for name in getattr(rule, key):
                if name not in names:
                    raise ValueError(f"{where}.{key}: {name!r} is not a declared field (declared: {', '.join(names)})")
                if self.field(name).computed:
                    raise ValueError(f"{where}.{key}: {name!r} is computed from the geometry")
                if key == "clear" and self.field(name).required:
                    raise ValueError(f"{where}.clear: {name!r} is required and cannot be emptied")

    def _check_progress(self, names: list[str]) -> None:
        progress = self.progress
        if self.status_field is None:
            raise ValueError("progress needs a status_field (the campaign counts its values)")
        status = self.field(self.status_field)
        for value in progress.done:
            if value not in (status.allowed or ()):
                raise ValueError(f"progress.done: {value!r} is not a value of {self.status_field}")
        for key in ("date_field", "due_field"):
            name = getattr(progress, key)
            if name is not None and (name not in names or self.field(name).type != "date"):
                raise ValueError(f"progress.{key}: {name!r} must name a declared date field")
        for name in progress.filters:
            if name not in names or self.field(name).values is None:
                raise ValueError(f"progress.filters: {name!r} must name a declared field with allowed values")
        for name in progress.columns:
            if name not in names:
                raise ValueError(f"progress.columns: {name!r} is not a declared field (declared: {', '.join(names)})")

    def field(self, name: str) -> FieldDef:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)

    def visible_fields(self, internal: bool) -> tuple[FieldDef, ...]:
        """Fields a caller may see: public ones, plus internal ones for staff."""
        return tuple(f for f in self.fields if internal or f.public)

    @property
    def style_field(self) -> str | None:
        return self.style.by or self.status_field


class Registry:
    """All layer definitions, in drawing order (context layers first)."""

    def __init__(self, layers: list[Layer]):
        self._layers = {layer.id: layer for layer in sorted(layers, key=lambda x: (x.order, x.id))}
        #: a crc of every definition, part of the ETags of answers shaped by them: a field made internal (or any
        #: other change to a definition, after a restart) is not kept by a 304
        definitions = b"\n".join(layer.model_dump_json().encode() for layer in self)
        self.fingerprint = f"{zlib.crc32(definitions):08x}"

    @classmethod
    def load(cls, directory: str | Path) -> Registry:
        """Load and validate every ``*.yaml`` in ``directory``; raise :class:`LayerError` naming file and field."""
        directory = Path(directory)
        files = sorted(directory.glob("*.yaml"))
        if not files:
            raise LayerError(f"{directory}: no layer definitions (*.yaml) found")
        layers: dict[str, Layer] = {}
        for path in files:
            layer = load_layer(path)
            if layer.id in layers:
                raise LayerError(f"{path}: id: layer id {layer.id!r} is already defined by another file")
            layers[layer.id] = layer
        return cls(list(layers.values()))

    def __iter__(self):
        return iter(self._layers.values())

    def __len__(self) -> int:
        return len(self._layers)

    def __contains__(self, layer_id: object) -> bool:
        return layer_id in self._layers

    def __getitem__(self, layer_id: str) -> Layer:
        return self._layers[layer_id]

    @property
    def ids(self) -> list[str]:
        return list(self._layers)

    def require(self, layer_id: str) -> Layer:
        """The layer with this id, or :class:`~geoapp.errors.NotFound` naming the layers there are."""
        if layer_id not in self._layers:
            known = ", ".join(self._layers)
            raise NotFound(f"unknown layer {str(layer_id)[:60]!r}; layers: {known}", parameter="layer")
        return self._layers[layer_id]


def read_model(path: Path, model: type[M], what: str) -> M:
    """A YAML file of ``layers/`` validated as ``model``, or a :class:`LayerError` naming the file and the field
    (``what`` names the file's kind in the message: "a layer definition")."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LayerError(f"{path}: {what} is missing") from None
    except yaml.YAMLError as exc:
        raise LayerError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise LayerError(f"{path}: {what} must be a mapping")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise LayerError(f"{path}: {_describe(exc, raw)}") from None


def load_layer(path: Path) -> Layer:
    """Read one layer file; the file's name must be the layer's id."""
    layer = read_model(path, Layer, "a layer definition")
    if path.stem != layer.id:
        raise LayerError(f"{path}: id: {layer.id!r} must match the file name {path.stem!r}")
    return layer


def _describe(exc: ValidationError, raw: dict) -> str:
    """Name each failing field by its path, with field names instead of list positions."""
    parts = []
    for err in exc.errors():
        path: list[str] = []
        node: Any = raw
        for key in err["loc"]:
            if isinstance(key, int) and isinstance(node, list) and key < len(node):
                node = node[key]
                name = node.get("name") if isinstance(node, dict) else None
                path.append(f"{key}({name})" if name else str(key))
            else:
                node = node.get(key) if isinstance(node, dict) else None
                path.append(str(key))
        message = err["msg"].removeprefix("Value error, ")
        parts.append(f"{'.'.join(path) or 'layer'}: {message}")
    return "; ".join(parts)
