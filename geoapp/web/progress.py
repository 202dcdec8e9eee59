"""The planners' progress page /progress: the campaign layers on a map beside a table that follows it."""

from __future__ import annotations

from flask import Blueprint

from geoapp.errors import NotFound

bp = Blueprint("progress", __name__)


@bp.get("/progress")
def page():
    raise NotFound("the progress page is being built", parameter="path")
