"""The archive page's edit form (一盖一档), rendered by the server: every field of a layer as the input its type
and vocabulary call for, the required marks the bureau's rules add for the values shown, and a refused
save's message beside the field it names. What the form sends becomes a change of only the fields that
differ from the record the editor read; the use case (``service().editing``) checks and writes it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask_babel import gettext as _

from geoapp.core.layers import FieldDef, Layer
from geoapp.core.validate import matching_rules
from geoapp.errors import GeoappError

#: the value of a select that leaves a field empty
EMPTY = ""


@dataclass(frozen=True)
class FormField:
    name: str
    label: str
    #: text, textarea, number, date, select (a vocabulary, or yes/no) or readonly (computed from the shape)
    kind: str
    #: the value as the input holds it ("" for none)
    value: str
    required: bool
    options: tuple[tuple[str, str], ...] = ()  # (value, label) of a select
    min: float | None = None
    max: float | None = None
    step: str | None = None
    unit: str | None = None
    hint: str | None = None
    maxlength: int | None = None
    #: why the last save was refused, when it names this field
    error: str | None = None


@dataclass(frozen=True)
class EditForm:
    fields: tuple[FormField, ...]
    #: the layer's rules, as their notes say them
    rules: tuple[str, ...]
    #: a refusal that names no field of the form (the shape, say)
    error: str | None
    #: shown open: the editor is in the middle of a change
    open: bool


def build(
    layer: Layer,
    properties: Mapping[str, Any],
    lang: str,
    *,
    sent: Mapping[str, str] | None = None,
    refused: GeoappError | None = None,
) -> EditForm:
    """The form for a feature's ``properties``; after a refused save, with what was ``sent`` and why not."""
    sent = sent or {}
    shown = {f.name: sent[f.name] if f.name in sent else _input_value(f, properties.get(f.name)) for f in layer.fields}
    needed = _required_by_rules(layer, properties, shown)
    message = refused.message_in(lang) if refused is not None else None
    fields = tuple(
        _field(spec, shown[spec.name], lang, spec.required or spec.name in needed, _for(refused, spec, message))
        for spec in layer.fields
    )
    names = {f.name for f in layer.fields if not f.computed}
    loose = message if refused is not None and refused.parameter not in names else None
    notes = tuple(rule.note(lang) for rule in layer.rules if rule.note is not None)
    return EditForm(fields, notes, loose, open=refused is not None)


def changes(layer: Layer, properties: Mapping[str, Any], form: Mapping[str, str]) -> dict[str, Any]:
    """The fields whose value in ``form`` differs from ``properties`` (an empty input empties its field). A value
    the field does not take is passed on as sent: the use case refuses it, naming the field."""
    out: dict[str, Any] = {}
    for spec in layer.fields:
        if spec.computed or spec.name not in form:
            continue
        raw = form[spec.name]
        value = None if raw == EMPTY else raw
        try:
            new = spec.coerce(value)
        except ValueError:
            out[spec.name] = value
            continue
        if new != properties.get(spec.name):
            out[spec.name] = value
    return out


def _for(refused: GeoappError | None, spec: FieldDef, message: str | None) -> str | None:
    return message if refused is not None and refused.parameter == spec.name else None


def _required_by_rules(layer: Layer, properties: Mapping[str, Any], shown: Mapping[str, str]) -> set[str]:
    """Fields a rule requires for the values the form shows (what was sent, where it reads as the field's type)."""
    record = dict(properties)
    for spec in layer.fields:
        with contextlib.suppress(ValueError):  # a value refused is not one a rule depends on
            record[spec.name] = spec.coerce(shown[spec.name] or None)
    return {name for rule in matching_rules(layer, record) for name in rule.require}


def _input_value(spec: FieldDef, value: Any) -> str:
    if value is None:
        return EMPTY
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _field(spec: FieldDef, value: str, lang: str, required: bool, error: str | None) -> FormField:
    common = {"name": spec.name, "label": spec.label(lang), "value": value, "required": required, "error": error}
    if spec.computed:
        shown = f"{value} {spec.unit}" if value and spec.unit else value or "—"
        return FormField(kind="readonly", **{**common, "value": shown, "required": False})
    empty = () if spec.required else ((EMPTY, "—"),)
    if spec.values is not None:
        options = (*empty, *((c.value, c.label(lang)) for c in spec.values))
        return FormField(kind="select", options=options, **common)
    if spec.type == "boolean":
        return FormField(kind="select", options=(*empty, ("true", _("Yes")), ("false", _("No"))), **common)
    if spec.type in ("integer", "number"):
        step = "1" if spec.type == "integer" else "any"
        return FormField(kind="number", min=spec.min, max=spec.max, step=step, unit=spec.unit, **common)
    if spec.type == "date":
        return FormField(kind="date", **common)
    kind = "textarea" if spec.multiline else "text"
    hint = spec.hint(lang) if spec.hint else None
    return FormField(kind=kind, hint=hint, maxlength=spec.max_length, **common)
