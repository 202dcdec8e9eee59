"""What validation tells people, in Chinese and English, in their own words. Flask-free.

Every refusal of a feature's values, of its shape and of the bureau's rules is one template in
:data:`TEMPLATES` (data, not sentences scattered through the code), filled with what the layer
definitions say: the field's label, the labels of the allowed values, the hint that says what a
pattern allows (never the pattern itself). A :class:`Message` is a template and its values; it
renders in either language, so the error carries both and the web layer answers in the caller's.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

LANGUAGES = ("zh", "en")

#: key -> {language: template}; ``{name}`` is filled with the value of the same name (see Message)
TEMPLATES: dict[str, dict[str, str]] = {
    # values of one field
    "unknown_field": {
        "zh": "“{layer}”没有字段 {name}；可填写的字段：{fields}",
        "en": "{layer} has no field {name}; its fields are: {fields}",
    },
    "computed": {
        "zh": "“{label}”由图形计算得出，不能填写",
        "en": "{label} is computed from the shape and cannot be set",
    },
    "required": {
        "zh": "请填写“{label}”",
        "en": "{label} is required",
    },
    "blank": {
        "zh": "“{label}”为必填项，不能为空，也不能只有空格",
        "en": "{label} is required and must not be empty or only spaces",
    },
    "text": {
        "zh": "“{label}”须为文字",
        "en": "{label} must be text",
    },
    "too_long": {
        "zh": "“{label}”最多 {max} 个字符",
        "en": "{label} must be at most {max} characters",
    },
    "control": {
        "zh": "“{label}”不能含控制字符（只可含制表符和换行）",
        "en": "{label} must not contain control characters (only tabs and line breaks)",
    },
    "choice": {
        "zh": "“{label}”须为以下之一：{choices}",
        "en": "{label} must be one of: {choices}",
    },
    "pattern": {
        "zh": "“{label}”须为{hint}",
        "en": "{label} must be {hint}",
    },
    "boolean": {
        "zh": "“{label}”须为“是”或“否”（true 或 false）",
        "en": "{label} must be yes or no (true or false)",
    },
    "date": {
        "zh": "“{label}”须为日期，格式为 年-月-日（如 2023-06-01）",
        "en": "{label} must be a date as YYYY-MM-DD (such as 2023-06-01)",
    },
    "datetime": {
        "zh": "“{label}”须为日期和时间（如 2023-06-01T08:30:00+08:00）",
        "en": "{label} must be a date and time (such as 2023-06-01T08:30:00+08:00)",
    },
    "datetime_zone": {
        "zh": "“{label}”须注明时区（如 +08:00 或 Z）",
        "en": "{label} must give its time zone (such as +08:00 or Z)",
    },
    "date_range": {
        "zh": "“{label}”须为 {first} 年至 {last} 年之间的日期",
        "en": "{label} must be a date from {first} to {last}",
    },
    "number": {
        "zh": "“{label}”须为数字",
        "en": "{label} must be a number",
    },
    "integer": {
        "zh": "“{label}”须为整数",
        "en": "{label} must be a whole number",
    },
    "too_big": {
        "zh": "“{label}”须在 -{limit} 到 {limit} 之间",
        "en": "{label} must be between -{limit} and {limit}",
    },
    "min": {
        "zh": "“{label}”不能小于 {min}{unit}",
        "en": "{label} must be at least {min}{unit}",
    },
    "max": {
        "zh": "“{label}”不能大于 {max}{unit}",
        "en": "{label} must be at most {max}{unit}",
    },
    # the bureau's rules (layers/*.yaml ``rules:``)
    "rule_required": {
        "zh": "请填写“{label}”：{note}",
        "en": "{label} is required: {note}",
    },
    "rule_required_when": {
        "zh": "{when}时须填写“{label}”",
        "en": "{label} is required when {when}",
    },
    "when": {
        "zh": "“{label}”为{values}",
        "en": "{label} is {values}",
    },
    # the shape
    "geometry_missing": {
        "zh": "须有图形（{types}）",
        "en": "A shape is required ({types})",
    },
    "geometry_type": {
        "zh": "“{layer}”的图形须为{allowed}，不能是{got}",
        "en": "A shape in {layer} must be {allowed}, not {got}",
    },
    "lonlat": {
        "zh": "坐标须为经纬度（WGS84，单位为度）",
        "en": "Coordinates must be longitude and latitude in degrees (WGS84)",
    },
    "geometry_invalid": {
        "zh": "图形无效：{reason}",
        "en": "The shape is not valid: {reason}",
    },
    "outside_district": {
        "zh": "图形超出本区范围（距区界超过 {margin} 米）",
        "en": "The shape lies outside the district (more than {margin} m beyond its boundary)",
    },
    # what a closure owns (geoapp.flood: closing and reopening keep who, when and why)
    "closure_edit": {
        "zh": "“{label}”只能通过封闭或解除封闭（并说明原因）变为或不再是“{closed}”，不能直接修改："
        "请在防汛指挥图上操作，或使用 POST /api/flood/closures",
        "en": "{label} becomes or stops being {closed} only by closing or reopening with a reason (the flood board, "
        "or POST /api/flood/closures), not by an edit",
    },
    "closure_new": {
        "zh": "新要素不能直接设为“{closed}”：请先添加，再在防汛指挥图上封闭并说明原因"
        "（或使用 POST /api/flood/closures）",
        "en": "A new feature cannot be {closed}; close it afterwards with a reason (the flood board, "
        "or POST /api/flood/closures)",
    },
    # one feature of several sent together
    "in_batch": {
        "zh": "要素 {position}：{message}",
        "en": "Feature {position}: {message}",
    },
    # imports (geoapp.io.importer): what is wrong with a row of a file
    "import_coordinate": {
        "zh": "“{column}”须为数字坐标",
        "en": "{column} must be a number (a coordinate)",
    },
    "import_wkt": {
        "zh": "不是有效的 WKT 图形（如 POINT (113.3 33.7)）",
        "en": "Not a valid WKT shape (such as POINT (113.3 33.7))",
    },
    "import_swapped": {
        "zh": "经度和纬度似乎填反了：对调后位于本区内",
        "en": "Longitude and latitude look swapped: swapped, the point lies in the district",
    },
    "import_key_missing": {
        "zh": "用于匹配的“{label}”为空",
        "en": "{label}, the key the rows are matched by, is empty",
    },
    "import_key_duplicate": {
        "zh": "“{label}”与第 {other} 行重复",
        "en": "{label} repeats row {other}",
    },
    "import_key_ambiguous": {
        "zh": "“{label}”对应图层中的 {count} 个要素，无法确定更新哪一个",
        "en": "{label} matches {count} features of the layer; which one to update is unclear",
    },
}

#: how a list reads: every item (、 / ,) or alternatives (或 / or)
_AND = {"zh": "、", "en": ", "}
_OR = {"zh": "或", "en": " or "}

#: geometry types as people say them (the English with its article, for "must be an area or a line")
GEOMETRY_WORDS: dict[str, dict[str, str]] = {
    "Point": {"zh": "点", "en": "a point"},
    "LineString": {"zh": "线", "en": "a line"},
    "Polygon": {"zh": "面", "en": "an area"},
    "MultiPoint": {"zh": "多点", "en": "several points"},
    "MultiLineString": {"zh": "多段线", "en": "several lines"},
    "MultiPolygon": {"zh": "多个面", "en": "several areas"},
}

#: GEOS's reasons for an invalid shape (shapely.is_valid_reason), by their first words
GEOMETRY_REASONS: dict[str, dict[str, str]] = {
    "Ring Self-intersection": {"zh": "边界自相交", "en": "its outline touches itself"},
    "Self-intersection": {"zh": "边线相互交叉", "en": "its edges cross each other"},
    "Too few points": {"zh": "点数太少", "en": "it has too few points"},
    "Hole lies outside shell": {"zh": "内洞位于外边界之外", "en": "a hole lies outside its outline"},
    "Holes are nested": {"zh": "内洞相互嵌套", "en": "one hole lies inside another"},
    "Nested shells": {"zh": "多个面相互嵌套", "en": "one area lies inside another"},
    "Interior is disconnected": {"zh": "内部被分割", "en": "its inside is cut in two"},
    "Duplicate Rings": {"zh": "边界重复", "en": "an outline is repeated"},
    "Invalid Coordinate": {"zh": "坐标无效", "en": "a coordinate is not a number"},
    "Ring is not closed": {"zh": "边界未闭合", "en": "its outline is not closed"},
}
_AT = {"zh": "（位置 {x}, {y}）", "en": " (at {x}, {y})"}
_REASON_AT = re.compile(r"^(?P<reason>.*?)\s*\[(?P<x>[-0-9.eE+]+) (?P<y>[-0-9.eE+]+)\]$")

#: something that reads in a language: a Label from a layer definition, a Message, a lambda
Localized = Callable[[str], str]


@dataclass(frozen=True)
class Words:
    """A text given in both languages (an ad hoc Label)."""

    zh: str
    en: str

    def __call__(self, lang: str) -> str:
        return self.en if lang == "en" else self.zh


@dataclass(frozen=True)
class Listed:
    """Items shown as a list: all of them (``either=False``: 待整治、整治中) or alternatives (面或线)."""

    items: tuple[Any, ...]
    either: bool = False

    def __call__(self, lang: str) -> str:
        joint = (_OR if self.either else _AND)[_lang(lang)]
        return joint.join(_text(item, lang) for item in self.items)


@dataclass(frozen=True)
class Message:
    """A template of :data:`TEMPLATES` and the values it is filled with; ``message(lang)`` reads it.

    A value may be text (shown as it is), a number, anything callable with a language (a layer's
    ``Label``, :class:`Words`, :class:`Listed`, another Message) or a list (shown as :class:`Listed`).
    """

    key: str
    values: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.key not in TEMPLATES:
            raise KeyError(f"no message template {self.key!r}")

    def __call__(self, lang: str) -> str:
        template = TEMPLATES[self.key][_lang(lang)]
        return template.format_map({name: _text(value, lang) for name, value in self.values.items()})

    def both(self) -> dict[str, str]:
        """The message in every language: ``{"zh": …, "en": …}``."""
        return {lang: self(lang) for lang in LANGUAGES}

    def in_batch(self, position: int | None) -> Message:
        """This message about the feature at ``position`` of several sent together (unchanged for one)."""
        return self if position is None else Message("in_batch", {"position": position, "message": self})


def message(key: str, **values: Any) -> Message:
    """The message ``key`` filled with ``values``."""
    return Message(key, values)


class Refused(ValueError):
    """A value a field does not take (raised by ``FieldDef.coerce``).

    ``str()`` is the short English reason other callers put after a parameter's name ("must be one of:
    pending, removed"); ``key`` and ``values`` are the :data:`TEMPLATES` message people are shown, to be
    completed with the field's ``label``.
    """

    def __init__(self, reason: str, key: str, **values: Any):
        super().__init__(reason)
        self.key = key
        self.values = values

    def about(self, label: Localized) -> Message:
        return Message(self.key, {"label": label, **self.values})


def geometry_words(types: Iterable[str]) -> Listed:
    """Geometry types as alternatives people read: 面或线, "an area or a line"."""
    return Listed(tuple(Words(**GEOMETRY_WORDS.get(t, {"zh": t, "en": t})) for t in types), either=True)


def geometry_reason(reason: str) -> Localized:
    """shapely's reason for an invalid shape ("Self-intersection[113.3 33.7]") in people's words, with where."""
    match = _REASON_AT.match(reason.strip())
    text, at = (match.group("reason"), (match.group("x"), match.group("y"))) if match else (reason.strip(), None)
    words = next((w for prefix, w in GEOMETRY_REASONS.items() if text.startswith(prefix)), None)

    def read(lang: str) -> str:
        lang = _lang(lang)
        said = words[lang] if words else text
        if at is not None:
            said += _AT[lang].format(x=_number(float(at[0])), y=_number(float(at[1])))
        return said

    return read


def _lang(lang: str) -> str:
    return "en" if lang == "en" else "zh"


def _number(value: float) -> str:
    return f"{value:.6f}".rstrip("0").rstrip(".")


def _text(value: Any, lang: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list | tuple):
        return Listed(tuple(value))(lang)
    if callable(value):
        return value(lang)
    return str(value)
