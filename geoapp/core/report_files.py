"""The annual report as files: Markdown, Word (python-docx) and Excel (openpyxl), each rendering one
:class:`~geoapp.core.report.ReportDoc` (its checks only when the document holds them). Flask-free."""

from __future__ import annotations

import io

from geoapp.core.report import CheckRow, FigureRow, ReportDoc

#: what the writers make: format -> (media type, file suffix)
FORMATS = {
    "md": ("text/markdown; charset=utf-8", "md"),
    "docx": ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", "docx"),
    "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx"),
}
#: what makes a spreadsheet read a text cell as a formula
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def write(doc: ReportDoc, fmt: str) -> bytes:
    """The report as ``md``, ``docx`` or ``xlsx`` bytes."""
    if fmt == "md":
        return markdown(doc).encode("utf-8")
    if fmt == "docx":
        return docx(doc)
    if fmt == "xlsx":
        return xlsx(doc)
    raise ValueError(f"format must be one of {', '.join(FORMATS)}")


def filename(doc: ReportDoc, fmt: str) -> str:
    return f"annual-report-{doc.year}-{doc.lang}.{FORMATS[fmt][1]}"


def _source(doc: ReportDoc, row: FigureRow) -> str:
    return doc.word("ditto") if row.same_source else row.source


def _unit(row: FigureRow) -> str:
    """The unit beside a value already shown with its % sign."""
    return "" if row.unit == "%" else row.unit


def _kind(doc: ReportDoc, row: FigureRow) -> str:
    return doc.word("counted") if row.counted else doc.word("stated")


def _check_kind(doc: ReportDoc, row: CheckRow) -> str:
    return doc.word("stated_kind" if row.kind == "stated" else row.kind)


def _result(doc: ReportDoc, row: CheckRow) -> str:
    return doc.word("passed") if row.passed else doc.word("failed")


# -- Markdown ---------------------------------------------------------------------------------------------------


def _cell(text: object) -> str:
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _table(header: list[str], rows: list[list[object]]) -> list[str]:
    lines = ["| " + " | ".join(_cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


def markdown(doc: ReportDoc) -> str:
    """The report in Markdown: title, as-of, sections with their sentences, the figures, the checks if any."""
    w = doc.word
    lines = [f"# {doc.title}", "", doc.as_of_text, ""]
    if doc.notice:
        lines += [f"> {doc.notice}", ""]
    for section in doc.sections:
        lines += [f"## {section.heading}", ""]
        for sentence in section.sentences:
            lines += [sentence.text, ""]
    lines += [f"## {w('figures')}", ""]
    rows = [
        [section.title, row.label, row.shown, _unit(row), _kind(doc, row), _source(doc, row)]
        for section in doc.sections
        for row in section.figures
    ]
    lines += _table([w("section"), w("figure"), w("value"), w("unit"), w("kind"), w("source")], rows)
    lines.append("")
    if doc.with_checks:
        lines += [f"## {w('checks')}", "", doc.checks_summary, ""]
        rows = [
            [_result(doc, row), section.title, row.label, row.shown_expected, row.shown_found, row.shown_difference,
             row.text]
            for section in doc.sections
            for row in section.checks
        ]  # fmt: skip
        header = [w("result"), w("section"), w("check"), w("expected"), w("found"), w("difference"), w("detail")]
        lines += _table(header, rows)
        lines.append("")
    return "\n".join(lines)


# -- Word -------------------------------------------------------------------------------------------------------


def docx(doc: ReportDoc) -> bytes:
    """The report as a Word document: headings, paragraphs (figures counted on the map in bold), a table of the
    figures and, when the document holds them, the checks."""
    from docx import Document
    from docx.oxml.ns import qn
    from docx.shared import Pt, RGBColor

    document = Document()
    for name in ("Normal", "Title", "Heading 1", "Heading 2", "Table Grid"):
        style = document.styles[name]
        fonts = style.element.get_or_add_rPr().get_or_add_rFonts()
        fonts.set(qn("w:eastAsia"), "SimSun" if name == "Normal" else "SimHei")
    document.styles["Normal"].font.size = Pt(10.5)
    props = document.core_properties
    props.title = doc.title
    props.author = "geoapp"
    props.language = "zh-CN" if doc.lang == "zh" else "en"

    w = doc.word
    document.add_heading(doc.title, 0)
    document.add_paragraph(doc.as_of_text)
    if doc.notice:
        note = document.add_paragraph().add_run(doc.notice)
        note.italic = True
        note.font.color.rgb = RGBColor(0x8A, 0x1C, 0x1C)
    document.add_paragraph().add_run(w("legend")).font.color.rgb = RGBColor(0x5F, 0x6B, 0x76)
    for section in doc.sections:
        document.add_heading(section.heading, 1)
        for sentence in section.sentences:
            paragraph = document.add_paragraph()
            for part in sentence.parts:
                run = paragraph.add_run(part.text)
                run.bold = part.counted

    document.add_heading(w("figures"), 1)
    _docx_table(
        document,
        [w("figure"), w("value"), w("unit"), w("kind"), w("source")],
        [
            [row.label, row.shown, _unit(row), _kind(doc, row), _source(doc, row)]
            for section in doc.sections
            for row in section.figures
        ],
        sections=[(section.heading, len(section.figures)) for section in doc.sections],
    )
    if doc.with_checks:
        document.add_heading(w("checks"), 1)
        document.add_paragraph(doc.checks_summary)
        _docx_table(
            document,
            [w("result"), w("check"), w("expected"), w("found"), w("difference"), w("detail")],
            [
                [_result(doc, row), row.label, row.shown_expected, row.shown_found, row.shown_difference, row.text]
                for section in doc.sections
                for row in section.checks
            ],
            sections=[(section.heading, len(section.checks)) for section in doc.sections],
            flag=0,
            passed=[row.passed for row in doc.checks],
        )
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def _docx_table(document, header, rows, *, sections, flag=None, passed=None) -> None:
    """A table with a bold header row and a full-width row naming each section before its rows."""
    from docx.shared import Pt, RGBColor

    table = document.add_table(rows=1, cols=len(header))
    table.style = document.styles["Table Grid"]
    for cell, text in zip(table.rows[0].cells, header, strict=True):
        run = cell.paragraphs[0].add_run(text)
        run.bold = True
    position = 0
    for heading, count in sections:
        if not count:
            continue
        cells = table.add_row().cells
        merged = cells[0].merge(cells[-1])
        merged.paragraphs[0].add_run(heading).bold = True
        for row in rows[position : position + count]:
            cells = table.add_row().cells
            for cell, text in zip(cells, row, strict=True):
                run = cell.paragraphs[0].add_run(str(text))
                run.font.size = Pt(9)
            if flag is not None and passed is not None and not passed[position]:
                mark = cells[flag].paragraphs[0].runs[0]
                mark.bold = True
                mark.font.color.rgb = RGBColor(0xC6, 0x28, 0x28)
            position += 1


# -- Excel ------------------------------------------------------------------------------------------------------


def _text(value):
    """A cell value: numbers stay numbers; text a spreadsheet would run as a formula starts with an apostrophe."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def xlsx(doc: ReportDoc) -> bytes:
    """The report as a workbook: the report's sentences, a sheet of the figures and, when the document holds them,
    a sheet of the checks; values, expected and found values and differences are numbers."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill

    w = doc.word
    book = Workbook()
    bold = Font(bold=True)
    wrap = Alignment(wrap_text=True, vertical="top")

    sheet = book.active
    sheet.title = w("sheet_report")
    sheet.append([_text(doc.title)])
    sheet["A1"].font = Font(bold=True, size=14)
    sheet.append([_text(doc.as_of_text)])
    if doc.notice:
        sheet.append([_text(doc.notice)])
    sheet.append([])
    sheet.append([w("section"), w("detail")])
    for cell in sheet[sheet.max_row]:
        cell.font = bold
    for section in doc.sections:
        for sentence in section.sentences:
            sheet.append([_text(section.heading), _text(sentence.text)])
            sheet.cell(sheet.max_row, 2).alignment = wrap
    sheet.column_dimensions["A"].width = 24
    sheet.column_dimensions["B"].width = 110

    figures = book.create_sheet(w("sheet_figures"))
    header = [w("section"), w("id"), w("figure"), w("value"), w("unit"), w("kind"), w("source")]
    figures.append(header)
    for section in doc.sections:
        for row in section.figures:
            figures.append(
                [_text(section.title), row.id, _text(row.label), row.value, row.unit, _kind(doc, row),
                 _text(row.source)]
            )  # fmt: skip
    _sheet_layout(figures, [18, 36, 36, 12, 10, 14, 90], bold)

    if doc.with_checks:
        checks = book.create_sheet(w("sheet_checks"))
        header = [
            w("section"), w("id"), w("check"), w("kind"), w("named"), w("expected"), w("found"), w("difference"),
            w("result"), w("detail"),
        ]  # fmt: skip
        checks.append(header)
        failed = PatternFill("solid", fgColor="FDECEA")
        for section in doc.sections:
            for row in section.checks:
                named = "; ".join(f"{label} ({fid}) {shown}" for fid, label, shown in row.figures)
                checks.append(
                    [_text(section.title), row.id, _text(row.label), _check_kind(doc, row), _text(named),
                     row.expected, row.found, row.difference, _result(doc, row), _text(row.text)]
                )  # fmt: skip
                if not row.passed:
                    for cell in checks[checks.max_row]:
                        cell.fill = failed
        _sheet_layout(checks, [18, 34, 40, 14, 60, 12, 12, 12, 14, 70], bold)

    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _sheet_layout(sheet, widths, bold) -> None:
    from openpyxl.utils import get_column_letter

    for cell in sheet[1]:
        cell.font = bold
    sheet.freeze_panes = "A2"
    sheet.auto_filter.ref = sheet.dimensions
    for i, width in enumerate(widths, start=1):
        sheet.column_dimensions[get_column_letter(i)].width = width
