"""The case workflow (``layers/cases/workflow.yaml``): its steps, who takes each, and each subclass's deadline.

Flask-free. Checked at start-up against the ``cases`` layer, so that a step naming a status or a field the layer does
not declare stops the app with the file and the step in the message, as a bad layer definition does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from geoapp.core.layers import Label, Layer, LayerError, Registry, read_model

WORKFLOW_FILE = Path("cases") / "workflow.yaml"
LAYER = "cases"
#: the status a case starts in (信息收集) and the field that holds it
FIRST, STATUS = "collected", "status"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Step(_Model):
    id: str = Field(pattern=r"^[a-z][a-z_]{0,30}$")
    label: Label
    #: the statuses it starts from, and the one it moves to
    from_: tuple[str, ...] = Field(alias="from", min_length=1)
    to: str
    roles: tuple[Literal["dispatcher", "squad"], ...] = Field(min_length=1)
    #: the time field it stamps with now
    stamp: str | None = None
    #: fields it empties (a disposal that failed its check loses its time)
    clear: tuple[str, ...] = ()
    #: whether the one who takes it must say why or what was done
    note: bool = False


class CaseClass(_Model):
    """A subclass's class, kind, the department that disposes of it and the hours allowed from 立案 (处置时限)."""

    category: str
    kind: Literal["event", "component"]
    department: str
    hours: float = Field(gt=0, le=24 * 90)


class HotSpots(_Model):
    weeks: int = Field(ge=1, le=52)
    factor: float = Field(gt=1)
    minimum: int = Field(ge=1)


class PublicReports(_Model):
    subcategories: tuple[str, ...] = Field(min_length=1)
    per_hour: int = Field(ge=1, le=1000)
    max_text: int = Field(ge=20, le=5000)
    max_photo_mb: float = Field(gt=0, le=50)
    max_pixels: int = Field(ge=1_000_000, le=50_000_000)


class Workflow(_Model):
    steps: tuple[Step, ...] = Field(min_length=1)
    registered: tuple[str, ...] = Field(min_length=1)
    disposed: tuple[str, ...] = Field(min_length=1)
    closed: tuple[str, ...] = Field(min_length=1)
    classes: dict[str, CaseClass] = Field(min_length=1)
    hot_spots: HotSpots
    public_reports: PublicReports
    labels: dict[str, Label]

    def step(self, step_id: str) -> Step | None:
        return next((s for s in self.steps if s.id == step_id), None)

    def steps_from(self, status: str) -> list[Step]:
        """The steps a case in ``status`` may take next."""
        return [s for s in self.steps if status in s.from_]

    def check(self, layer: Layer) -> None:
        """Raise ValueError naming what the workflow says that the cases layer does not declare."""
        fields = {f.name: f for f in layer.fields}
        statuses = set(fields[STATUS].allowed or ())
        where = {"registered": self.registered, "disposed": self.disposed, "closed": self.closed}
        for step in self.steps:
            for status in (*step.from_, step.to):
                if status not in statuses:
                    raise ValueError(f"steps.{step.id}: {status!r} is not a status of {LAYER}")
            for name in (step.stamp, *step.clear):
                if name is not None and (name not in fields or fields[name].type != "datetime"):
                    raise ValueError(f"steps.{step.id}: {name!r} is not a time field of {LAYER}")
        for key, values in where.items():
            unknown = set(values) - statuses
            if unknown:
                raise ValueError(f"{key}: {', '.join(sorted(unknown))} not statuses of {LAYER}")
        for name, cls in self.classes.items():
            for field, value in (("subcategory", name), ("category", cls.category), ("department", cls.department)):
                if value not in (fields[field].allowed or ()):
                    raise ValueError(f"classes.{name}: {value!r} is not a value of {LAYER}.{field}")
        from geoapp.cases.indicators import DIMENSIONS, FIGURES

        missing = {"key", *DIMENSIONS, *FIGURES} - set(self.labels)
        if missing:
            raise ValueError(f"labels: none for {', '.join(sorted(missing))}")
        unknown = set(self.public_reports.subcategories) - set(self.classes)
        if unknown:
            raise ValueError(f"public_reports.subcategories: {', '.join(sorted(unknown))} not subclasses")
        missing = set(fields["subcategory"].allowed or ()) - set(self.classes)
        if missing:
            raise ValueError(f"classes: no deadline for the subclasses {', '.join(sorted(missing))}")


def load_workflow(layers_dir: str | Path, registry: Registry) -> Workflow | None:
    """The workflow of the ``cases`` layer, or None when the registry has no such layer."""
    if LAYER not in registry:
        return None
    path = Path(layers_dir) / WORKFLOW_FILE
    workflow = read_model(path, Workflow, "the case workflow")
    try:
        workflow.check(registry[LAYER])
    except ValueError as exc:
        raise LayerError(f"{path}: {exc}") from None
    return workflow
