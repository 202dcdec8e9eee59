"""The annual work report generated from the data: its declaration, its checks and its evaluation. Flask-free.

A year's report is data, ``layers/figures/annual_<year>.yaml``: sections following the bureau's work report,
each with the figures the map does not hold (entered with the report's sentence they come from), its
sentences as templates naming figures by id (``{hoardings_removed}``), and the checks that its figures must
pass: parts that add up to their total (``sum``), a rate against its count and base (``rate``) and what the
report states against what the map counts now (``stated``). :func:`evaluate` fills the templates and runs the
checks into a :class:`ReportDoc`, which the Markdown, Word and Excel writers (:mod:`geoapp.core.report_files`)
and the web page render alike.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from geoapp.core import stats
from geoapp.core.layers import Label, LayerError, Registry, read_model
from geoapp.errors import InvalidParameter

REPORTS_GLOB = "annual_*.yaml"
_FILE_NAME = re.compile(r"^annual_(\d{4})$")
_ID = r"^[a-z][a-z0-9_]{0,62}$"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Entered(_Model):
    """A figure the report states, with the sentence of the report it comes from."""

    id: str = Field(pattern=_ID)
    label: Label
    value: float
    #: what the value counts, in both languages, or ``%`` for a rate given in percent
    unit: Label | Literal["%"] | None = None
    #: written in 万 in Chinese, as the report writes it (10.2万); in English as a whole number (102,000)
    wan: bool = False
    source: str = Field(min_length=1)


class Sentence(_Model):
    zh: str = Field(min_length=1)
    en: str = Field(min_length=1)

    def __call__(self, lang: str) -> str:
        return self.en if lang == "en" else self.zh


class SumCheck(_Model):
    """The parts must add up to the total."""

    kind: Literal["sum"]
    id: str = Field(pattern=_ID)
    label: Label
    parts: tuple[str, ...] = Field(min_length=1)
    total: str
    tolerance: float = Field(default=0, ge=0)

    @property
    def names(self) -> tuple[str, ...]:
        return (*self.parts, self.total)


class RateCheck(_Model):
    """A stated rate (in percent) must be its count over its base, within ``tolerance`` percentage points."""

    kind: Literal["rate"]
    id: str = Field(pattern=_ID)
    label: Label
    count: str
    base: str
    rate: str
    #: rates are given to two decimals: half of the last one
    tolerance: float = Field(default=0.005, ge=0)

    @property
    def names(self) -> tuple[str, ...]:
        return (self.count, self.base, self.rate)


class StatedCheck(_Model):
    """What the report states must be what the map counts now."""

    kind: Literal["stated"]
    id: str = Field(pattern=_ID)
    label: Label
    stated: str
    counted: str
    tolerance: float = Field(default=0, ge=0)

    @property
    def names(self) -> tuple[str, ...]:
        return (self.stated, self.counted)


Check = Annotated[SumCheck | RateCheck | StatedCheck, Field(discriminator="kind")]


class Section(_Model):
    id: str = Field(pattern=_ID)
    title: Label
    entered: tuple[Entered, ...] = ()
    sentences: tuple[Sentence, ...] = ()
    checks: tuple[Check, ...] = ()


class AnnualReport(_Model):
    year: int = Field(ge=1900, le=2999)
    title: Label
    sections: tuple[Section, ...] = Field(min_length=1)

    @property
    def entered(self) -> dict[str, Entered]:
        return {e.id: e for s in self.sections for e in s.entered}


# -- loading ----------------------------------------------------------------------------------------------------


def load_reports(layers_dir: str | Path, figures: Sequence[stats.Figure]) -> dict[int, AnnualReport]:
    """Read and check every ``figures/annual_<year>.yaml``: a sentence or check naming an unknown figure stops
    the app with a message naming the file and the entry."""
    folder = Path(layers_dir) / stats.FIGURES_FILE.parent
    reports: dict[int, AnnualReport] = {}
    for path in sorted(folder.glob(REPORTS_GLOB)):
        match = _FILE_NAME.match(path.stem)
        if not match:
            raise LayerError(f"{path}: an annual report's file is named annual_<year>.yaml, e.g. annual_2023.yaml")
        annual = read_model(path, AnnualReport, "an annual report")
        if annual.year != int(match.group(1)):
            raise LayerError(f"{path}: year: {annual.year} must match the file name {path.stem!r}")
        problems = list(_problems(annual, figures))
        if problems:
            raise LayerError(f"{path}: {'; '.join(problems)}")
        reports[annual.year] = annual
    return reports


def _problems(annual: AnnualReport, figures: Sequence[stats.Figure]):
    counted = {f.id: f for f in figures}
    entered: dict[str, Entered] = {}
    sections: set[str] = set()
    checks: set[str] = set()
    for section in annual.sections:
        where = f"sections.{section.id}"
        if section.id in sections:
            yield f"{where}: the section id is used twice"
        sections.add(section.id)
        for figure in section.entered:
            if figure.id in counted:
                yield f"{where}.entered.{figure.id}: the id is a counted figure of {stats.FIGURES_FILE}; choose another"
            elif figure.id in entered:
                yield f"{where}.entered.{figure.id}: the id is used twice"
            entered[figure.id] = figure
    known = set(counted) | set(entered)

    def unknown(where: str, name: str) -> str:
        return f"{where}: unknown figure {name!r} (neither counted in {stats.FIGURES_FILE} nor entered in this file)"

    for section in annual.sections:
        where = f"sections.{section.id}"
        for i, sentence in enumerate(section.sentences):
            named = {}
            for lang in ("zh", "en"):
                try:
                    named[lang] = placeholders(sentence(lang))
                except ValueError as exc:
                    yield f"{where}.sentences.{i}.{lang}: {exc}"
                    continue
                yield from (unknown(f"{where}.sentences.{i}.{lang}", n) for n in named[lang] if n not in known)
            if len(named) == 2 and set(named["zh"]) != set(named["en"]):
                differ = sorted(set(named["zh"]) ^ set(named["en"]))
                only = ", ".join(differ)
                yield f"{where}.sentences.{i}: zh and en must name the same figures (only one names {only})"
        for check in section.checks:
            at = f"{where}.checks.{check.id}"
            if check.id in checks:
                yield f"{at}: the check id is used twice"
            checks.add(check.id)
            yield from (unknown(at, n) for n in check.names if n not in known)
            if isinstance(check, RateCheck) and check.rate in known:
                unit = entered[check.rate].unit if check.rate in entered else counted[check.rate].unit
                if unit != "%":
                    yield f"{at}: rate {check.rate!r} must be a figure in % (unit: '%')"


def placeholders(template: str) -> list[str]:
    """The figure ids a sentence names, in order; ``ValueError`` for a format the templates do not use."""
    names = []
    for _, name, spec, conversion in string.Formatter().parse(template):
        if name is None:
            continue
        if spec or conversion:
            raise ValueError(f"write a figure as {{{name}}}, without a format or conversion")
        if not re.fullmatch(_ID, name):
            raise ValueError(f"{{{name}}} is not a figure id")
        names.append(name)
    return names


def reports(figures: Sequence[stats.Figure]) -> Mapping[int, AnnualReport]:
    """The annual reports declared on these figures (see :func:`stats.load_figures`), by year."""
    return getattr(figures, "reports", {})


def choose(figures: Sequence[stats.Figure], year: Any = None) -> AnnualReport:
    """The report of ``year`` (the latest declared when none is given), or :class:`InvalidParameter` naming the
    declared years."""
    declared = reports(figures)
    allowed = ", ".join(str(y) for y in sorted(declared)) or "none (no layers/figures/annual_<year>.yaml)"
    if year is None or year == "":
        if not declared:
            raise InvalidParameter(f"no annual report is declared; years: {allowed}", parameter="year")
        return declared[max(declared)]
    try:
        number = int(str(year).strip())
    except ValueError:
        number = None
    if number not in declared:
        raise InvalidParameter(f"year must be one of {allowed}, not {str(year)[:20]!r}", parameter="year")
    return declared[number]


# -- the evaluated report -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Part:
    """A run of a filled sentence: text, or a figure's value (``figure`` its id, ``counted`` from the map)."""

    text: str
    figure: str | None = None
    counted: bool = False


@dataclass(frozen=True)
class FilledSentence:
    parts: tuple[Part, ...]

    @property
    def text(self) -> str:
        return "".join(p.text for p in self.parts)


@dataclass(frozen=True)
class FigureRow:
    id: str
    label: str
    value: float
    shown: str
    unit: str
    counted: bool
    source: str
    #: the same source as the row above (the writers may say "ditto")
    same_source: bool = False


@dataclass(frozen=True)
class CheckRow:
    id: str
    kind: str
    label: str
    #: (id, label, value shown) of every figure the check names
    figures: tuple[tuple[str, str, str], ...]
    expected: float | None
    found: float
    difference: float | None
    passed: bool
    shown_expected: str
    shown_found: str
    shown_difference: str
    text: str


@dataclass(frozen=True)
class SectionDoc:
    id: str
    number: int
    title: str
    heading: str
    sentences: tuple[FilledSentence, ...]
    figures: tuple[FigureRow, ...]
    checks: tuple[CheckRow, ...]


@dataclass(frozen=True)
class ReportDoc:
    year: int
    lang: str
    title: str
    as_of: dt.datetime
    as_of_text: str
    synthetic: bool
    sections: tuple[SectionDoc, ...]
    #: whether the consistency checks were evaluated (staff and the command line) or left out (the public)
    with_checks: bool
    words: Mapping[str, str]

    @property
    def figures(self) -> tuple[FigureRow, ...]:
        return tuple(row for s in self.sections for row in s.figures)

    @property
    def checks(self) -> tuple[CheckRow, ...]:
        return tuple(row for s in self.sections for row in s.checks)

    @property
    def failed(self) -> tuple[CheckRow, ...]:
        return tuple(row for row in self.checks if not row.passed)

    @property
    def notice(self) -> str | None:
        return self.words["synthetic"] if self.synthetic else None

    @property
    def checks_summary(self) -> str:
        return self.words["checks_summary"].format(n=len(self.checks), failed=len(self.failed))

    def word(self, key: str) -> str:
        return self.words[key]


#: the report's own words, in both languages (the core does not use the web app's message catalogue)
WORDS: dict[str, dict[str, str]] = {
    "zh": {
        "as_of": "数据截至 {time}（{zone}）",
        "synthetic": "演示数据：地图统计的数字来自合成的演示辖区，并非真实数据；其余数字取自工作报告原文。",
        "legend": "加粗的数字由地图数据即时统计，其余数字取自工作报告原文。",
        "figures": "数字一览",
        "checks": "一致性核查",
        "checks_summary": "共 {n} 项核查，{failed} 项不符。",
        "section": "部分",
        "id": "编号",
        "figure": "指标",
        "value": "数值",
        "unit": "单位",
        "kind": "类别",
        "source": "来源",
        "counted": "地图统计",
        "stated": "工作报告",
        "ditto": "同上",
        "result": "结果",
        "check": "核查",
        "named": "涉及指标",
        "expected": "应为",
        "found": "实为",
        "difference": "差值",
        "detail": "说明",
        "passed": "相符",
        "failed": "不符",
        "sum": "求和",
        "rate": "比率",
        "stated_kind": "报告与地图",
        "sheet_report": "报告",
        "sheet_figures": "数字",
        "sheet_checks": "核查",
        "from_layer": "{layer}",
        "share": "{figure} ÷ 年度任务 {target}",
        "quote": "“{text}”",
    },
    "en": {
        "as_of": "Figures as of {time} ({zone})",
        "synthetic": (
            "Demo data: the figures counted on the map come from a synthetic demo district, not real data; "
            "the others are quoted from the work report."
        ),
        "legend": "Figures in bold are counted from the map data now; the others are quoted from the work report.",
        "figures": "Figures",
        "checks": "Consistency checks",
        "checks_summary": "{n} checks, {failed} do not add up.",
        "section": "Section",
        "id": "Id",
        "figure": "Figure",
        "value": "Value",
        "unit": "Unit",
        "kind": "Kind",
        "source": "Source",
        "counted": "Counted on the map",
        "stated": "Work report",
        "ditto": "ditto",
        "result": "Result",
        "check": "Check",
        "named": "Figures",
        "expected": "Expected",
        "found": "Found",
        "difference": "Difference",
        "detail": "Detail",
        "passed": "Adds up",
        "failed": "Does not add up",
        "sum": "Sum",
        "rate": "Rate",
        "stated_kind": "Report vs map",
        "sheet_report": "Report",
        "sheet_figures": "Figures",
        "sheet_checks": "Checks",
        "from_layer": "{layer}",
        "share": "{figure} as a share of the year's target {target}",
        "quote": "“{text}”",
    },
}


@dataclass(frozen=True)
class _Figure:
    """What the evaluation needs of a figure, counted or entered."""

    id: str
    label: Label
    value: float
    counted: bool
    percent: bool
    wan: bool
    unit: Label | None
    source: Label


def build(service, year: Any = None, *, lang: str = "zh", checks: bool = True) -> ReportDoc:
    """Evaluate a year's report on a :class:`~geoapp.core.service.Service`: its figures counted now, its as-of time
    the service's clock in the district's time zone."""
    annual = choose(service.figures, year)
    counted = {item["id"]: item["value"] for item in stats.headline(service.reader, service.figures)}
    now = dt.datetime.fromtimestamp(service.clock(), service.timezone)
    return evaluate(
        annual,
        service.figures,
        counted,
        service.registry,
        lang=lang,
        now=now,
        synthetic=bool(service.store.synthetic),
        checks=checks,
    )


def evaluate(
    annual: AnnualReport,
    figures: Sequence[stats.Figure],
    counted: Mapping[str, float],
    registry: Registry,
    *,
    lang: str,
    now: dt.datetime,
    synthetic: bool,
    checks: bool,
) -> ReportDoc:
    """Fill a year's sentences with the counted and entered figures, list the figures and run the checks."""
    if lang not in WORDS:
        raise InvalidParameter(f"lang must be one of {', '.join(WORDS)}", parameter="lang")
    words = WORDS[lang]
    table = _figures(annual, figures, counted, registry, lang)
    sections = []
    for number, section in enumerate(annual.sections, start=1):
        sentences = tuple(_fill(sentence(lang), table, lang) for sentence in section.sentences)
        named: list[str] = []
        for sentence in section.sentences:
            named += placeholders(sentence(lang))
        for check in section.checks:
            named += check.names
        # the counted figures in the order the section names them, then the entered ones as declared
        order = [n for n in dict.fromkeys(named) if table[n].counted] + [e.id for e in section.entered]
        rows = _rows(order, table, lang)
        done = tuple(_check(check, table, lang) for check in section.checks) if checks else ()
        title = section.title(lang)
        heading = f"{_chinese_number(number)}、{title}" if lang == "zh" else f"{number}. {title}"
        sections.append(SectionDoc(section.id, number, title, heading, sentences, rows, done))
    zone = getattr(now.tzinfo, "key", None) or now.strftime("%Z") or "UTC"
    as_of = words["as_of"].format(time=now.strftime("%Y-%m-%d %H:%M"), zone=zone)
    return ReportDoc(annual.year, lang, annual.title(lang), now, as_of, synthetic, tuple(sections), checks, words)


def _figures(annual, figures, counted, registry, lang) -> dict[str, _Figure]:
    """Every figure a report may name, counted (now) or entered, with its source in both languages."""
    out: dict[str, _Figure] = {}
    by_id = {f.id: f for f in figures}
    for figure in figures:
        if figure.share_of is not None:
            share_of = by_id[figure.share_of].label
            source = Label(
                zh=WORDS["zh"]["share"].format(figure=share_of.zh, target=_number(figure.target, "zh")),
                en=WORDS["en"]["share"].format(figure=share_of.en, target=_number(figure.target, "en")),
            )
        else:
            source = Label(
                zh=WORDS["zh"]["from_layer"].format(layer=_where(registry, figure, "zh")),
                en=WORDS["en"]["from_layer"].format(layer=_where(registry, figure, "en")),
            )
        value = counted.get(figure.id, math.nan)
        out[figure.id] = _Figure(figure.id, figure.label, value, True, figure.unit == "%", False, None, source)
    for entered in annual.entered.values():
        unit = entered.unit if isinstance(entered.unit, Label) else None
        source = Label(
            zh=WORDS["zh"]["quote"].format(text=entered.source), en=WORDS["en"]["quote"].format(text=entered.source)
        )
        out[entered.id] = _Figure(
            entered.id, entered.label, entered.value, False, entered.unit == "%", entered.wan, unit, source
        )
    return out


def _where(registry: Registry, figure: stats.Figure, lang: str) -> str:
    """The layer a figure counts and the field values it counts, in words: 建筑围挡（状态=已整治）."""
    if figure.layer not in registry:
        return figure.layer or ""
    layer = registry[figure.layer]
    conditions = []
    for name, values in figure.filters.items():
        spec = layer.field(name)
        words = []
        for value in values:
            choice = spec.choice(value) if isinstance(value, str) else None
            if choice is not None:
                words.append(choice.label(lang))
            elif isinstance(value, bool):
                words.append(("是" if value else "否") if lang == "zh" else ("yes" if value else "no"))
            else:
                words.append(str(value))
        conditions.append(f"{spec.label(lang)}={'/'.join(words)}")
    if not conditions:
        return layer.title(lang)
    if lang == "zh":
        return f"{layer.title(lang)}（{'，'.join(conditions)}）"
    return f"{layer.title(lang)} ({', '.join(conditions)})"


def _fill(template: str, table: Mapping[str, _Figure], lang: str) -> FilledSentence:
    parts: list[Part] = []
    for literal, name, _, _ in string.Formatter().parse(template):
        if literal:
            parts.append(Part(literal))
        if name is not None:
            figure = table[name]
            parts.append(Part(_show(figure, figure.value, lang), figure.id, figure.counted))
    return FilledSentence(tuple(parts))


def _rows(names, table: Mapping[str, _Figure], lang: str) -> tuple[FigureRow, ...]:
    rows = []
    previous = None
    for name in names:
        figure = table[name]
        unit = "%" if figure.percent else (figure.unit(lang) if figure.unit else "")
        source = figure.source(lang)
        rows.append(
            FigureRow(
                figure.id,
                figure.label(lang),
                _plain(figure.value),
                _show(figure, figure.value, lang),
                unit,
                figure.counted,
                source,
                same_source=source == previous,
            )
        )
        previous = source
    return tuple(rows)


def _check(check, table: Mapping[str, _Figure], lang: str) -> CheckRow:
    zh = lang == "zh"
    named = tuple((n, table[n].label(lang), _show(table[n], table[n].value, lang)) for n in check.names)
    if isinstance(check, SumCheck):
        total = table[check.total]
        found = sum(table[p].value for p in check.parts)
        expected = total.value
        difference = found - expected
        passed = abs(difference) <= check.tolerance + 1e-9
        shown = [_show(table[p], table[p].value, lang) for p in check.parts]
        lhs = f"{' + '.join(shown)} = {_show(total, found, lang)}" if len(shown) > 1 else shown[0]
        shown_expected, shown_found = _show(total, expected, lang), _show(total, found, lang)
        shown_difference = _signed(difference, total, lang)
        if passed:
            text = f"{lhs}，与{total.label.zh} {shown_expected} 相符" if zh else f"{lhs}, as given"
        else:
            text = (
                f"{lhs}，而{total.label.zh}为 {shown_expected}（差 {shown_difference}）"
                if zh
                else f"{lhs}, not {shown_expected}: off by {shown_difference}"
            )
    elif isinstance(check, RateCheck):
        count, base, rate = table[check.count], table[check.base], table[check.rate]
        found = rate.value
        ratio = f"{_show(count, count.value, lang)} ÷ {_show(base, base.value, lang)}"
        if base.value == 0 or math.isnan(base.value):
            expected = difference = None
            passed = False
            shown_expected = shown_difference = "—"
            shown_found = _show(rate, found, lang)
            text = f"{ratio}：基数为 0，无法计算比率" if zh else f"{ratio}: the base is 0, there is no rate"
        else:
            exact = 100 * count.value / base.value
            expected = round(exact, 2)
            difference = round(found - exact, 2)
            passed = abs(found - exact) <= check.tolerance + 1e-9
            shown_expected, shown_found = _percent(expected, lang), _show(rate, found, lang)
            points = _number(abs(difference), lang)
            sign = "+" if difference > 0 else "-" if difference < 0 else "±"
            shown_difference = f"{sign}{points} 个百分点" if zh else f"{sign}{points} points"
            if passed:
                text = (
                    f"{ratio} = {shown_expected}，与{rate.label.zh} {shown_found} 相符"
                    if zh
                    else f"{ratio} = {shown_expected}, as given"
                )
            else:
                text = (
                    f"{ratio} = {shown_expected}，而{rate.label.zh}为 {shown_found}（差 {shown_difference}）"
                    if zh
                    else f"{ratio} = {shown_expected}, not {shown_found}: off by {shown_difference}"
                )
    else:
        stated, counted = table[check.stated], table[check.counted]
        expected, found = stated.value, counted.value
        difference = found - expected
        passed = abs(difference) <= check.tolerance + 1e-9
        shown_expected, shown_found = _show(stated, expected, lang), _show(counted, found, lang)
        shown_difference = _signed(difference, counted, lang)
        if passed:
            text = (
                f"报告为 {shown_expected}，地图现有 {shown_found}，相符"
                if zh
                else f"the report says {shown_expected} and the map counts {shown_found}"
            )
        else:
            text = (
                f"报告为 {shown_expected}，地图现有 {shown_found}（差 {shown_difference}）"
                if zh
                else f"the report says {shown_expected}, the map counts {shown_found} (off by {shown_difference})"
            )
    return CheckRow(
        check.id,
        check.kind,
        check.label(lang),
        named,
        None if expected is None else _plain(expected),
        _plain(found),
        None if difference is None else _plain(round(difference, 2)),
        passed,
        shown_expected,
        shown_found,
        shown_difference,
        text,
    )


# -- numbers in words -------------------------------------------------------------------------------------------


def _plain(value: float) -> float | int:
    """A whole number as an int (so that spreadsheets and JSON show 28, not 28.0)."""
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    return value


def _number(value: float, lang: str) -> str:
    """28, 7.8, 110.75; thousands separated in English (10,600), not in Chinese (10600, as the report writes)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if float(value).is_integer():
        whole = int(value)
        return f"{whole:,}" if lang == "en" else str(whole)
    text = f"{value:,.2f}" if lang == "en" else f"{value:.2f}"
    return text.rstrip("0").rstrip(".")


def _percent(value: float, lang: str) -> str:
    return f"{_number(round(value, 2), lang)}%"


def _show(figure: _Figure, value: float, lang: str) -> str:
    if figure.percent:
        return _percent(value, lang)
    if figure.wan and lang == "zh" and not math.isnan(value):
        return f"{_number(value / 10000, 'zh')}万"
    return _number(value, lang)


def _signed(value: float, figure: _Figure, lang: str) -> str:
    if value == 0:
        return "0"
    sign = "+" if value > 0 else "-"
    return sign + _show(figure, abs(value), lang)


_DIGITS = "零一二三四五六七八九"


def _chinese_number(n: int) -> str:
    """一 … 九十九, for the sections' headings (一、二、…)."""
    if n < 10:
        return _DIGITS[n]
    tens, ones = divmod(n, 10)
    return f"{'' if tens == 1 else _DIGITS[tens]}十{_DIGITS[ones] if ones else ''}"
