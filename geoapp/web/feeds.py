"""Public warning feeds (Atom and CAP 1.2): placeholder until they land."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("feeds", __name__)
