"""Before/after photos of features: upload, list, serve (full size and thumbnail), delete."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("photos", __name__)
