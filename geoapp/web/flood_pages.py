"""The flood commander's board (``/flood``)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("flood_pages", __name__)
