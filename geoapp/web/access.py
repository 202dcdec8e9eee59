"""Who is asking: the public (anonymous) or signed-in staff who may see internal fields."""

from __future__ import annotations

from flask import g


def staff() -> bool:
    """Whether the caller may see internal fields: signed-in staff roles, never the public or a sensor."""
    user = g.get("user")
    return user is not None and user.staff
