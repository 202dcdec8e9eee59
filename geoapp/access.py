"""Who is asking: the public (anonymous) or signed-in staff who may see internal fields."""

from __future__ import annotations

from flask import g


def staff() -> bool:
    """Whether the caller may see internal fields: only signed-in staff, never the public."""
    return getattr(g, "user", None) is not None
