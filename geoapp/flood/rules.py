"""The flood-control rules (``layers/flood/rules.yaml``): levels, thresholds, closures, gauges, signals, resources.

Flask-free. Validated at start-up against the layer registry, so that a rule naming a layer or a field that does not
exist stops the app with the file and the rule in the message, as a bad layer definition does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from geoapp.core.layers import Label, Layer, LayerError, Registry, read_model

RULES_FILE = Path("flood") / "rules.yaml"
LEVELS = ("normal", "attention", "warning", "danger")
KINDS = ("depth_cm", "rain_mm")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Limit(_Model):
    min: float
    max: float
    unit: str
    label: Label


class ReadingRules(_Model):
    depth_cm: Limit
    rain_mm: Limit
    future_minutes: float = Field(ge=0)
    batch: int = Field(ge=1)
    series_points: int = Field(ge=10)

    def limit(self, kind: str) -> Limit:
        return getattr(self, kind)


class Level(_Model):
    id: Literal["normal", "attention", "warning", "danger"]
    label: Label
    color: str = Field(pattern=r"^#[0-9a-fA-F]{6}$")


class Shown(_Model):
    label: Label
    color: str = Field(pattern=r"^#[0-9a-fA-F]{6}$")


class Threshold(_Model):
    """A depth (or a rain rate): the feature's own ``field`` when it has a value there, else the layer's ``cm``."""

    field: str | None = None
    cm: float | None = Field(default=None, ge=0)
    mmh: float | None = Field(default=None, gt=0)

    def of(self, properties: dict[str, Any], default_key: str = "cm") -> float:
        own = properties.get(self.field) if self.field else None
        if isinstance(own, int | float) and not isinstance(own, bool) and own > 0:
            return float(own)
        return float(getattr(self, default_key))


class Depths(_Model):
    attention: Threshold
    warning: Threshold
    danger: Threshold


class Closure(_Model):
    action: Literal["close", "seal"]
    field: str
    closed: str
    open: str
    recommend_at: Literal["attention", "warning", "danger"]


class Monitored(_Model):
    depth: Depths
    ponding: Threshold
    closure: Closure | None = None

    def thresholds(self, properties: dict[str, Any]) -> dict[str, float]:
        """The depths (cm) at which each level starts for this feature; a higher level never starts below a lower."""
        out: dict[str, float] = {}
        floor = 0.0
        for level in LEVELS[1:]:
            floor = max(floor, getattr(self.depth, level).of(properties))
            out[level] = floor
        return out


class Scenario(_Model):
    attention: float = Field(gt=0)
    warning: float = Field(gt=0)
    danger: float = Field(gt=0)


class Gauges(_Model):
    layer: str
    windows_h: tuple[int, ...] = Field(min_length=1)


class Signal(_Model):
    id: Literal["red", "orange", "yellow", "blue"]
    hours: int = Field(ge=1)
    mm: float = Field(gt=0)
    color: str = Field(pattern=r"^#[0-9a-fA-F]{6}$")
    label: Label


class NearestK(_Model):
    default: int = Field(ge=1)
    max: int = Field(ge=1)


class Resources(_Model):
    layer: str
    kind_field: str
    state_field: str
    available: str
    pump_kinds: tuple[str, ...]
    nearest_k: NearestK


class Rules(_Model):
    stale_after_minutes: float = Field(gt=0)
    readings: ReadingRules
    levels: tuple[Level, ...]
    stale: Shown
    monitored: dict[str, Monitored]
    scenario: Scenario
    gauges: Gauges
    signals: tuple[Signal, ...] = Field(min_length=1)
    no_signal: Shown
    resources: Resources

    @model_validator(mode="after")
    def _ordered(self) -> Rules:
        if tuple(level.id for level in self.levels) != LEVELS:
            raise ValueError(f"levels must be, lowest first: {', '.join(LEVELS)}")
        if not self.scenario.attention <= self.scenario.warning <= self.scenario.danger:
            raise ValueError("scenario: the ratios must grow from attention to warning to danger")
        severity = [(s.mm / s.hours) for s in self.signals]
        if severity != sorted(severity, reverse=True):
            raise ValueError("signals must be listed most severe (highest rain rate) first")
        return self

    def level(self, level_id: str) -> Level:
        return next(level for level in self.levels if level.id == level_id)

    def signal(self, signal_id: str) -> Signal:
        return next(s for s in self.signals if s.id == signal_id)

    def kind_of(self, layer_id: str) -> str | None:
        """What a layer's readings measure: depth for a monitored layer, rain for the gauges, None otherwise."""
        if layer_id in self.monitored:
            return "depth_cm"
        return "rain_mm" if layer_id == self.gauges.layer else None


def load(directory: str | Path, registry: Registry) -> Rules:
    """Read and check ``<layers>/flood/rules.yaml`` against the registry; raise :class:`LayerError` naming the rule."""
    path = Path(directory) / RULES_FILE
    rules = read_model(path, Rules, "the flood rules file")
    problems = list(_check(rules, registry))
    if problems:
        raise LayerError(f"{path}: {'; '.join(problems)}")
    return rules


def _check(rules: Rules, registry: Registry):
    def layer(where: str, layer_id: str) -> Layer | None:
        if layer_id not in registry:
            return None
        return registry[layer_id]

    def field(where: str, spec: Layer, name: str | None, kinds: tuple[str, ...]) -> str | None:
        if name is None:
            return None
        names = [f.name for f in spec.fields]
        if name not in names:
            return f"{where}: {name!r} is not a field of {spec.id} (fields: {', '.join(names)})"
        if spec.field(name).type not in kinds:
            return f"{where}: {spec.id}.{name} must be of type {' or '.join(kinds)}"
        return None

    for layer_id, rule in rules.monitored.items():
        spec = layer(f"monitored.{layer_id}", layer_id)
        if spec is None:
            yield f"monitored.{layer_id}: no such layer"
            continue
        for level in LEVELS[1:]:
            threshold = getattr(rule.depth, level)
            if threshold.cm is None:
                yield f"monitored.{layer_id}.depth.{level}: give cm (the depth when a feature has none of its own)"
            yield from filter(None, [field(f"monitored.{layer_id}.depth.{level}", spec, threshold.field, _NUMBERS)])
        if rule.ponding.mmh is None:
            yield f"monitored.{layer_id}.ponding: give mmh (the rain rate when a feature has none of its own)"
        yield from filter(None, [field(f"monitored.{layer_id}.ponding", spec, rule.ponding.field, _NUMBERS)])
        if rule.closure is not None:
            where = f"monitored.{layer_id}.closure"
            problem = field(where, spec, rule.closure.field, ("string",))
            if problem:
                yield problem
            else:
                allowed = spec.field(rule.closure.field).allowed or ()
                for value in (rule.closure.closed, rule.closure.open):
                    if value not in allowed:
                        yield f"{where}: {value!r} is not a value of {layer_id}.{rule.closure.field}"
    gauges = layer("gauges.layer", rules.gauges.layer)
    if gauges is None:
        yield f"gauges.layer: no such layer {rules.gauges.layer!r}"
    if sorted(rules.gauges.windows_h) != list(rules.gauges.windows_h):
        yield "gauges.windows_h: list the windows shortest first"
    for signal in rules.signals:
        if signal.hours not in rules.gauges.windows_h:
            windows = list(rules.gauges.windows_h)
            yield f"signals.{signal.id}: {signal.hours} h is not one of the gauge windows {windows}"
    res = rules.resources
    spec = layer("resources.layer", res.layer)
    if spec is None:
        yield f"resources.layer: no such layer {res.layer!r}"
        return
    for key in ("kind_field", "state_field"):
        problem = field(f"resources.{key}", spec, getattr(res, key), ("string",))
        if problem:
            yield problem
    names = [f.name for f in spec.fields]
    if res.state_field in names and res.available not in (spec.field(res.state_field).allowed or ()):
        yield f"resources.available: {res.available!r} is not a value of {res.layer}.{res.state_field}"
    if res.kind_field in names:
        kinds = spec.field(res.kind_field).allowed or ()
        for kind in res.pump_kinds:
            if kind not in kinds:
                yield f"resources.pump_kinds: {kind!r} is not a value of {res.layer}.{res.kind_field}"


_NUMBERS = ("integer", "number")
