"""The progress table's rows, figures and the ledger exports (台账), as JSON, XLSX and CSV."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("progress_api", __name__, url_prefix="/api")
