"""The public progress map (``/public``) as data: its counters and the layers its map shows. Flask-free.

Declared in ``layers/figures/public.yaml``. A counter names headline figures of ``layers/figures/report.yaml``
by id (counted from the layers by :func:`geoapp.core.stats.headline`, so the public page, the report and the map
cannot disagree): a figure, or the sum of several, optionally out of a total figure and beside a share figure
(a percentage of a target). The file is checked at start-up against the figures and the layer registry: an
unknown id stops the app with a message naming the file and the counter.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from geoapp.core.layers import Label, LayerError, Registry, read_model
from geoapp.core.stats import Figure, headline
from geoapp.store.base import FeatureReader

PUBLIC_FILE = Path("figures") / "public.yaml"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Part(_Model):
    """One figure of a counter that adds several up, with the words the page shows beside its value."""

    figure: str
    label: Label | None = None  # the figure's own label when not given


class Counter(_Model):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")
    label: Label
    #: the figure shown; or ``sum``: the figures added up (each shown as a part)
    value: str | None = None
    sum: tuple[Part, ...] = ()
    #: the figure the value is out of ("28 / 43"), drawn as a bar
    of: str | None = None
    #: a share figure (``share_of`` + ``target`` in report.yaml) shown beside the value ("110.75 % of the target")
    share: Part | None = None
    #: one line under the value, in both languages
    note: Label | None = None

    @model_validator(mode="after")
    def _one_value(self) -> Counter:
        if (self.value is None) == (not self.sum):
            raise ValueError("a counter shows one figure (value) or adds several up (sum), not both")
        return self

    def figure_ids(self) -> list[str]:
        ids = [self.value] if self.value else [p.figure for p in self.sum]
        return ids + [i for i in (self.of, self.share.figure if self.share else None) if i]


class MapLayer(_Model):
    layer: str
    #: drawn when the page opens (the layer list switches it on and off)
    shown: bool = True


class PublicPage(_Model):
    counters: tuple[Counter, ...] = Field(min_length=1)
    #: the layers of the public map (drawn in the registry's order; the context layers are always drawn)
    layers: tuple[MapLayer, ...] = Field(min_length=1)

    def layer_ids(self) -> list[str]:
        return [entry.layer for entry in self.layers]


def load(layers_dir: str | Path, registry: Registry, figures: Iterable[Figure]) -> PublicPage | None:
    """Read and check ``figures/public.yaml``: every figure and layer it names must exist (None: no file)."""
    path = Path(layers_dir) / PUBLIC_FILE
    if not path.exists():
        return None
    page = read_model(path, PublicPage, "the public map's declaration")
    by_id = {figure.id: figure for figure in figures}
    known = ", ".join(by_id) or "(none: layers/figures/report.yaml declares no figure)"
    seen: set[str] = set()
    for counter in page.counters:
        where = f"{path}: counter {counter.id}"
        if counter.id in seen:
            raise LayerError(f"{where}: the id is used twice")
        seen.add(counter.id)
        for name in counter.figure_ids():
            if name not in by_id:
                raise LayerError(f"{where}: unknown figure {name!r}; the figures of report.yaml are: {known}")
        if counter.share and by_id[counter.share.figure].share_of is None:
            raise LayerError(f"{where}: share {counter.share.figure!r} must name a share figure (share_of and target)")
    listed: set[str] = set()
    for entry in page.layers:
        if entry.layer not in registry:
            raise LayerError(f"{path}: layers: unknown layer {entry.layer!r}; layers: {', '.join(registry.ids)}")
        if registry[entry.layer].context:
            raise LayerError(f"{path}: layers: {entry.layer} is a context layer, which every map draws already")
        if entry.layer in listed:
            raise LayerError(f"{path}: layers: {entry.layer} is listed twice")
        listed.add(entry.layer)
    return page


def _needed(page: PublicPage, figures: tuple[Figure, ...]) -> tuple[Figure, ...]:
    """The figures the counters use, with those their shares are of, in the declared order."""
    wanted = {name for counter in page.counters for name in counter.figure_ids()}
    for figure in reversed(figures):  # a share names a figure above it
        if figure.id in wanted and figure.share_of:
            wanted.add(figure.share_of)
    return tuple(f for f in figures if f.id in wanted)


def counters(page: PublicPage, reader: FeatureReader, figures: tuple[Figure, ...]) -> list[dict[str, Any]]:
    """Each counter counted from the layers now: ``{"id", "label": {zh, en}, "value", "total" (or None),
    "ratio" (value / total, or None), "share" ({"id", "label", "value", "target", "unit"} or None),
    "parts": [{"id", "label", "value"}], "note" ({zh, en} or None)}``."""
    values = {item["id"]: item for item in headline(reader, _needed(page, figures))}
    labels = {figure.id: figure.label for figure in figures}
    out = []
    for counter in page.counters:
        if counter.value:
            value, parts = values[counter.value]["value"], []
        else:
            parts = [
                {
                    "id": part.figure,
                    "label": (part.label or labels[part.figure]).model_dump(),
                    "value": values[part.figure]["value"],
                }
                for part in counter.sum
            ]
            value = sum(part["value"] for part in parts)
        total = values[counter.of]["value"] if counter.of else None
        share = None
        if counter.share:
            item = values[counter.share.figure]
            share = {
                "id": counter.share.figure,
                "label": (counter.share.label or labels[counter.share.figure]).model_dump(),
                "value": item["value"],
                "target": item.get("target"),
                "unit": item.get("unit", "%"),
            }
        out.append(
            {
                "id": counter.id,
                "label": counter.label.model_dump(),
                "value": value,
                "total": total,
                "ratio": (value / total) if total else None,
                "share": share,
                "parts": parts,
                "note": counter.note.model_dump() if counter.note else None,
            }
        )
    return out
