"""The annual report generated from the store: /reports/annual (a page, or Markdown, Word and Excel downloads).

The report's figures are public counts; its consistency checks are for staff, on the page and in the downloads.
"""

from __future__ import annotations

from flask import Blueprint, make_response, render_template, request, url_for
from flask_babel import gettext as _

from geoapp.core import report, report_files
from geoapp.errors import InvalidParameter
from geoapp.web import service
from geoapp.web.access import staff
from geoapp.web.i18n import current_lang

bp = Blueprint("reports", __name__)

#: what ``?format=`` may ask for: the page, or a file
FORMATS = ("html", *report_files.FORMATS)


@bp.get("/reports/annual")
def annual():
    """The year's report (``?year=``, the latest declared by default) as a page or as ``?format=md|docx|xlsx``."""
    fmt = request.args.get("format", "html")
    if fmt not in FORMATS:
        raise InvalidParameter(f"format must be one of {', '.join(FORMATS)}", parameter="format")
    svc = service()
    lang = current_lang()
    doc = report.build(svc, request.args.get("year"), lang=lang, checks=staff())
    if fmt != "html":
        response = make_response(report_files.write(doc, fmt))
        response.headers["Content-Type"] = report_files.FORMATS[fmt][0]
        response.headers["Content-Disposition"] = f'attachment; filename="{report_files.filename(doc, fmt)}"'
        return response
    years = sorted(report.reports(svc.figures), reverse=True)
    downloads = [
        (label, url_for("reports.annual", year=doc.year, format=f, lang=lang))
        for f, label in (("docx", _("Word (.docx)")), ("xlsx", _("Excel (.xlsx)")), ("md", _("Markdown (.md)")))
    ]
    return render_template(
        "report.html",
        doc=doc,
        years=[(y, url_for("reports.annual", year=y, lang=lang)) for y in years],
        downloads=downloads,
        title=_("Annual report %(year)s", year=doc.year),
    )
