"""The work report's headline figures, counted from the map data itself (so they cannot disagree). Flask-free.

The figures are data, declared in ``layers/figures/report.yaml``: a count of a layer's features
with given field values, or a share of another figure against a target. The annual reports built on them
(``layers/figures/annual_<year>.yaml``, see :mod:`geoapp.core.report`) are read and checked with them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from geoapp.core.layers import Label, LayerError, Registry
from geoapp.store.base import FeatureReader

FIGURES_FILE = Path("figures") / "report.yaml"


class Figures(tuple):
    """The declared figures (a tuple of :class:`Figure`) and the annual reports declared on them, by year."""

    reports: dict[int, Any]

    def __new__(cls, figures: tuple = (), reports: dict[int, Any] | None = None) -> Figures:
        self = super().__new__(cls, figures)
        self.reports = dict(reports or {})
        return self


class Figure(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")
    label: Label
    layer: str | None = None
    where: dict[str, Any] = {}
    share_of: str | None = None
    target: float | None = Field(default=None, gt=0)
    unit: str | None = None

    @property
    def filters(self) -> dict[str, list[Any]]:
        """What the figure counts: per field, the values any of which counts (``status: [a, b]`` or one)."""
        return {k: list(v) if isinstance(v, list) else [v] for k, v in self.where.items()}

    @model_validator(mode="after")
    def _one_kind(self) -> Figure:
        if (self.layer is None) == (self.share_of is None):
            raise ValueError(
                "a figure counts a layer (layer, where) or is a share of another figure (share_of, target)"
            )
        if self.share_of is not None and self.target is None:
            raise ValueError("a share needs a target")
        return self


def load_figures(layers_dir: str | Path, registry: Registry) -> Figures:
    """Read and check the figures, then the annual reports built on them (every figure a report names must exist)."""
    from geoapp.core import report

    figures = _load_counted(Path(layers_dir), registry)
    return Figures(figures, report.load_reports(layers_dir, figures))


def _load_counted(layers_dir: Path, registry: Registry) -> tuple[Figure, ...]:
    """Read and check the counted figures: every layer, field and value they name must be declared."""
    path = layers_dir / FIGURES_FILE
    if not path.exists():
        return ()
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        figures = tuple(Figure.model_validate(item) for item in raw.get("figures", ()))
    except (yaml.YAMLError, ValidationError, AttributeError) as exc:
        raise LayerError(f"{path}: {exc}") from None
    seen: set[str] = set()
    for figure in figures:
        where = f"{path}: figure {figure.id}"
        if figure.id in seen:
            raise LayerError(f"{where}: the id is used twice")
        if figure.share_of is not None and figure.share_of not in seen:
            raise LayerError(f"{where}: share_of {figure.share_of!r} must name a figure above it")
        seen.add(figure.id)
        if figure.layer is None:
            continue
        if figure.layer not in registry:
            raise LayerError(f"{where}: unknown layer {figure.layer!r}")
        layer = registry[figure.layer]
        for name, value in figure.where.items():
            try:
                spec = layer.field(name)
            except KeyError:
                raise LayerError(f"{where}: {figure.layer} has no field {name!r}") from None
            try:
                for one in value if isinstance(value, list) else [value]:
                    spec.coerce(one)
            except ValueError as exc:
                raise LayerError(f"{where}: {name} {exc}") from None
    return figures


def headline(reader: FeatureReader, figures: tuple[Figure, ...]) -> list[dict[str, Any]]:
    """Each headline figure: id, zh/en label and value counted from the layers now."""
    out: list[dict[str, Any]] = []
    values: dict[str, float] = {}
    for figure in figures:
        item: dict[str, Any] = {"id": figure.id, "label": figure.label.model_dump()}
        if figure.layer is not None:
            value: float = reader.count(figure.layer, figure.filters)
        else:
            value = round(100 * values[figure.share_of] / figure.target, 2)
            item["target"] = int(figure.target) if figure.target.is_integer() else figure.target
        values[figure.id] = value
        item["value"] = value
        if figure.unit:
            item["unit"] = figure.unit
        out.append(item)
    return out
