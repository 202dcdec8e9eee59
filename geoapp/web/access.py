"""Who is asking, as the core's permission policy sees it: the request's caller as an :class:`Actor`."""

from __future__ import annotations

from flask import g, request

from geoapp.core import permissions
from geoapp.store.base import Actor, Visibility


def caller() -> Actor:
    """The request's caller with their roles and address (the public: an anonymous actor without roles)."""
    user = g.get("user")
    if user is None:
        return Actor("anonymous", "anonymous", request.remote_addr)
    return Actor(user.name, user.kind, request.remote_addr, frozenset(user.roles))


def visibility() -> Visibility:
    """What of each layer this caller may see."""
    return permissions.visibility(g.get("user"))


def staff() -> bool:
    """Whether the caller may see internal fields: signed-in staff roles, never the public or a sensor."""
    return permissions.is_staff(g.get("user"))
