"""Who may see and change what: the one permission policy, used by the API, the pages, the map and the CLI.

Flask-free. A caller is anything with ``roles`` (a signed-in user, a machine token, the command
line, an :class:`~geoapp.store.base.Actor`), or None for the public.
"""

from __future__ import annotations

from collections.abc import Iterable

from geoapp.core.layers import Layer, Registry
from geoapp.errors import Forbidden, Unauthorized
from geoapp.store.base import Visibility

ROLES = ("viewer", "planner", "commander", "sensor", "dispatcher", "squad", "admin")
#: roles that may read internal fields (a sensor only posts readings)
STAFF = frozenset({"viewer", "planner", "commander", "dispatcher", "squad", "admin"})
#: a squad's member holds ``squad`` and ``squad:<its name>`` (the name as the grid cells give it)
SQUAD_PREFIX = "squad:"


def is_role(role: str) -> bool:
    """Whether ``role`` is one a user or token may hold: a role of :data:`ROLES`, or the squad one belongs to."""
    if role in ROLES:
        return True
    name = role.removeprefix(SQUAD_PREFIX) if role.startswith(SQUAD_PREFIX) else ""
    return 0 < len(name.strip()) == len(name) <= 60 and name.isprintable()


def squads_of(who) -> frozenset[str]:
    """The squads the caller belongs to (``squad:第一中队`` gives 第一中队)."""
    return frozenset(r.removeprefix(SQUAD_PREFIX) for r in _roles(who) if r.startswith(SQUAD_PREFIX))


def _roles(who) -> frozenset[str]:
    return frozenset(getattr(who, "roles", None) or ())


def is_staff(who) -> bool:
    """Whether the caller may see internal fields, history and staff pages: never the public or a sensor."""
    return bool(_roles(who) & STAFF)


def visibility(who) -> Visibility:
    """What of each layer the caller may see: every field for staff, the public fields for everyone else."""
    return "internal" if is_staff(who) else "public"


def may_edit(who, layer: Layer) -> bool:
    """Whether the caller may create, change and delete features of ``layer``: admin, or a role the layer names."""
    roles = _roles(who)
    return "admin" in roles or bool(roles & set(layer.editors))


def may_restore(who) -> bool:
    """Whether the caller may put deleted features back and see what was deleted: administrators."""
    return "admin" in _roles(who)


def editable_layers(who, registry: Registry) -> list[str]:
    """The operational layers the caller may change (the map gets edit controls for these)."""
    return [layer.id for layer in registry if not layer.context and may_edit(who, layer)]


def require_edit(who, layer: Layer) -> None:
    """Refuse a change of ``layer``: 401 for the public, 403 naming the roles that may."""
    if who is None or getattr(who, "kind", None) == "anonymous":
        raise Unauthorized("sign in (or send a Bearer token) to change features", parameter="Authorization")
    if not may_edit(who, layer):
        roles = ", ".join(["admin", *layer.editors])
        raise Forbidden(f"changing {layer.id} needs one of the roles: {roles}", parameter="role")


def require_role(who, roles: Iterable[str] = ()) -> None:
    """Refuse a caller without one of ``roles`` (any staff role if none are given); admin may everything."""
    wanted = frozenset(roles)
    have = _roles(who)
    if not have:
        raise Unauthorized("sign in to see this", parameter="Authorization")
    allowed = bool(have & wanted) if wanted else is_staff(who)
    if not allowed and "admin" not in have:
        raise Forbidden(f"this needs one of the roles: {', '.join(sorted(wanted)) or 'staff'}", parameter="role")


def require_restore(who) -> None:
    require_role(who, ("admin",))
