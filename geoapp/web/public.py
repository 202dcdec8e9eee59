"""The public progress map /public: headline counters and the public layers, for a phone first."""

from __future__ import annotations

from flask import Blueprint

from geoapp.errors import NotFound

bp = Blueprint("public", __name__)


@bp.get("/public")
def page():
    raise NotFound("the public map is being built", parameter="path")
