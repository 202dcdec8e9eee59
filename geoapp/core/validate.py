"""Validation of features against their layer definition and the bureau's rules: every write goes through
:func:`prepare`. Flask-free.

Each refusal is an :class:`~geoapp.errors.InvalidFeature` naming the field (or ``geometry``) as its
parameter, with a short English ``message`` for logs and the message people are shown, in Chinese and
English, as its ``text`` (templates in :mod:`geoapp.core.messages`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from geoapp.core import messages
from geoapp.core.crs import STORAGE_CRS, project
from geoapp.core.layers import FieldDef, Layer, Rule
from geoapp.core.messages import Listed, Message, Refused, Words
from geoapp.errors import InvalidFeature


def prepare(
    layer: Layer,
    records: list[Mapping[str, Any]],
    geometries: Iterable[BaseGeometry | None],
    metric_crs: str,
    *,
    allow_computed: bool = False,
    rules: bool = True,
) -> tuple[list[dict[str, Any]], np.ndarray]:
    """Validate features against ``layer`` and its rules and fill computed fields; return clean records
    and geometries.

    Each record is whole (an update passes the stored record merged with the change). With ``rules``,
    every rule of the layer whose ``when`` the record matches empties its ``clear`` fields (the change
    then shows them emptied) and needs its ``require`` fields filled. Raises :class:`InvalidFeature`
    naming the first field (or ``geometry``) that does not fit, with the feature's position when there
    are several, so that callers can refuse the whole batch.
    """
    geoms = np.asarray(list(geometries), dtype=object)
    if len(geoms) != len(records):
        raise ValueError("records and geometries differ in length")
    declared = {f.name: f for f in layer.fields}
    many = len(records) > 1
    clean: list[dict[str, Any]] = []
    for i, record in enumerate(records):
        refuse = _refusal(i if many else None)
        out: dict[str, Any] = {}
        for name, value in record.items():
            spec = declared.get(name)
            if spec is None:
                raise refuse(
                    f"unknown field {name!r}; fields of {layer.id}: {', '.join(declared)}",
                    messages.message("unknown_field", layer=layer.title, name=repr(name), fields=_field_list(layer)),
                    name,
                )
            if spec.computed and not allow_computed:
                if value is not None:
                    raise refuse(
                        f"{name!r} is computed from the geometry", messages.message("computed", label=spec.label), name
                    )
                continue
            try:
                out[name] = spec.coerce(value)
            except Refused as exc:
                raise refuse(f"{name!r} {exc}", exc.about(spec.label), name) from None
        for spec in layer.fields:
            if out.get(spec.name) is None and spec.default is not None:
                out[spec.name] = spec.coerce(spec.default)
            out.setdefault(spec.name, None)
        matching = [rule for rule in layer.rules if rules and _matches(layer, rule, out)]
        for rule in matching:
            for name in rule.clear:
                out[name] = None
        for spec in layer.fields:
            if spec.required and out.get(spec.name) is None:
                raise refuse(f"{spec.name!r} is required", messages.message("required", label=spec.label), spec.name)
        _check_geometry(layer, geoms[i], refuse)
        for rule in matching:  # the values and the shape fit: what the rules need of them
            for name in rule.require:
                if _missing(out.get(name)):
                    technical, text = _rule_refusal(layer, rule, declared[name])
                    raise refuse(technical, text, name)
        clean.append(out)
    geoms = shapely.force_2d(geoms)
    computed = [f for f in layer.fields if f.computed]
    if computed and len(geoms):
        metric = project(geoms, STORAGE_CRS, metric_crs)
        measures = {"length": shapely.length(metric), "area": shapely.area(metric)}
        for spec in computed:
            values = np.round(measures[spec.computed], 2)
            for out, value in zip(clean, values, strict=True):
                out[spec.name] = float(value)
    return clean, geoms


def _refusal(position: int | None):
    """How to refuse the feature at ``position`` of several (None: the only one)."""
    where = "" if position is None else f"feature {position}: "

    def refuse(technical: str, text: Message, parameter: str) -> InvalidFeature:
        return InvalidFeature(f"{where}{technical}", parameter=parameter, text=text.in_batch(position))

    return refuse


def matching_rules(layer: Layer, record: Mapping[str, Any]) -> list[Rule]:
    """The layer's rules whose ``when`` the record's values meet (the forms show what they require and clear)."""
    return [rule for rule in layer.rules if _matches(layer, rule, record)]


def _matches(layer: Layer, rule: Rule, record: Mapping[str, Any]) -> bool:
    # a condition's values are text in the layer file; compared as the field's type (a boolean, a number)
    return all(record.get(name) in {layer.field(name).coerce(v) for v in values} for name, values in rule.when.items())


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _rule_refusal(layer: Layer, rule: Rule, spec: FieldDef) -> tuple[str, Message]:
    """What a rule says of a field it requires: its note, or else the condition in words."""
    condition = " and ".join(f"{name} is {' or '.join(values)}" for name, values in rule.when.items())
    technical = f"{spec.name!r} is required when {condition}"
    if rule.note is not None:
        return f"{technical}: {rule.note.en}", messages.message("rule_required", label=spec.label, note=rule.note)
    return technical, messages.message("rule_required_when", label=spec.label, when=describe_when(layer, rule))


def describe_when(layer: Layer, rule: Rule) -> Listed:
    """A rule's condition in words: “状态”为“已整治”, "Status is Removed"."""
    parts = []
    for name, values in rule.when.items():
        spec = layer.field(name)
        labels = [_value_label(spec, v) for v in values]
        parts.append(messages.message("when", label=spec.label, values=Listed(tuple(labels), either=True)))
    return Listed(tuple(parts))


def _value_label(spec: FieldDef, value: str) -> Any:
    choice = spec.choice(value)
    if choice is not None:
        return Words(zh=f"“{choice.label.zh}”", en=choice.label.en)
    if spec.type == "boolean":
        return Words(zh="“是”", en="yes") if spec.coerce(value) else Words(zh="“否”", en="no")
    return value


def _field_list(layer: Layer) -> Listed:
    """The fields one may send, as "点位 (site)": labels for people, names for the API."""
    fields = [f for f in layer.fields if not f.computed]
    return Listed(tuple(Words(zh=f"{f.label.zh}（{f.name}）", en=f"{f.label.en} ({f.name})") for f in fields))


def _check_geometry(layer: Layer, geom: Any, refuse) -> None:
    allowed = ", ".join(layer.geometry)
    words = messages.geometry_words(layer.geometry)
    if not isinstance(geom, BaseGeometry) or geom.is_empty:
        raise refuse(f"a {allowed} geometry is required", messages.message("geometry_missing", types=words), "geometry")
    if geom.geom_type not in layer.geometry:
        raise refuse(
            f"geometry type {geom.geom_type} is not allowed in {layer.id}; allowed: {allowed}",
            messages.message(
                "geometry_type", layer=layer.title, allowed=words, got=messages.geometry_words([geom.geom_type])
            ),
            "geometry",
        )
    minx, miny, maxx, maxy = geom.bounds
    if not (-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90):
        raise refuse(
            "coordinates must be longitude/latitude in degrees (WGS84)", messages.message("lonlat"), "geometry"
        )
    if not geom.is_valid:
        reason = shapely.is_valid_reason(geom)
        raise refuse(
            f"invalid geometry: {reason}",
            messages.message("geometry_invalid", reason=messages.geometry_reason(reason)),
            "geometry",
        )
