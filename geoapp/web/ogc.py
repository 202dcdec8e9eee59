"""(being built)"""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("ogc", __name__, url_prefix="/ogc")
