"""The annual report generated from the store: /reports/annual (Markdown, Word, Excel) with its checks."""

from __future__ import annotations

from flask import Blueprint

from geoapp.errors import NotFound

bp = Blueprint("reports", __name__)


@bp.get("/reports/annual")
def annual():
    raise NotFound("the annual report is being built", parameter="path")
