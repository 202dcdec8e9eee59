"""Who is asking, as the core's permission policy sees it: the request's caller as an :class:`Actor`, and what
that caller may send."""

from __future__ import annotations

from collections.abc import Callable

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


#: room in an upload's body beyond its file: the multipart boundaries and the form's other fields
FORM_ROOM = 64 * 1024


def allow_upload(file_bytes: int, too_large: Callable[[], Exception]) -> None:
    """Raise this request's body limit to a file of ``file_bytes`` and its form, for a caller already known to be
    allowed (from the session or the token, before anything reads the body): a body declared larger is refused
    unread with ``too_large()``."""
    limit = file_bytes + FORM_ROOM
    if request.content_length is not None and request.content_length > limit:
        raise too_large()
    request.max_content_length = limit
