"""The store interface every backend implements, and the validation every write goes through.

A store holds one table per layer: a fid, a geometry in the storage CRS (WGS84 lon/lat), the
layer's declared fields and a per-feature ``_version``. Each layer also has a version that grows
with every change, so that readers (the spatial engine) know when to rebuild what they derived.
Each change is one transaction.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from geoapp.core.crs import STORAGE_CRS, project
from geoapp.core.layers import Layer, Registry
from geoapp.errors import InvalidFeature

VERSION_COLUMN = "_version"


@dataclass(frozen=True)
class Feature:
    layer: str
    fid: int
    geometry: BaseGeometry
    properties: dict[str, Any] = field(default_factory=dict)
    version: int = 1


@dataclass(frozen=True)
class Actor:
    """Who makes a change: a signed-in user, a machine token, or the command line; and from where."""

    name: str
    kind: str = "user"  # user | token | cli | system
    address: str | None = None


SYSTEM = Actor("system", "system")


@dataclass(frozen=True)
class User:
    name: str
    roles: tuple[str, ...]
    password_hash: str
    disabled: bool = False
    epoch: int = 0  # raised when the password changes or the user is disabled: older sessions end
    created_at: str = ""


@dataclass(frozen=True)
class Token:
    name: str
    roles: tuple[str, ...]
    token_hash: str
    created_at: str = ""
    revoked_at: str | None = None
    last_used_at: str | None = None


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: str
    actor: str
    actor_kind: str
    action: str
    layer: str | None
    fid: int | None
    changes: dict[str, list[Any]]
    address: str | None


@dataclass(frozen=True)
class DeletedFeature:
    feature: Feature
    deleted_at: str
    deleted_by: str


class Store(ABC):
    """Base class of stores: open on a location, then read and change layers feature by feature."""

    #: name used in ``GEOAPP_DATABASE`` URLs and the backend table
    backend = ""

    def __init__(self, registry: Registry, location: str):
        self.registry = registry
        self.location = location

    @abstractmethod
    def close(self) -> None:
        """Release connections."""

    @property
    @abstractmethod
    def metric_crs(self) -> str:
        """The projected CRS (metres) chosen for this store's district."""

    @abstractmethod
    def layers(self) -> list[str]:
        """Ids of the layers the store holds."""

    @abstractmethod
    def version(self, layer_id: str) -> int:
        """The layer's version; it changes with every committed change to the layer."""

    @abstractmethod
    def query(self, layer_id: str) -> gpd.GeoDataFrame:
        """Every feature of a layer: index ``fid`` (ascending), declared fields, ``_version``, geometry."""

    @abstractmethod
    def get(self, layer_id: str, fid: int) -> Feature | None:
        """One feature, or None."""

    # Every change below is one transaction together with its audit row: both or neither.

    @abstractmethod
    def insert(
        self, layer_id: str, properties: Mapping[str, Any], geometry: BaseGeometry, actor: Actor = SYSTEM
    ) -> Feature:
        """Validate and add a feature; return it with its new fid."""

    @abstractmethod
    def update(
        self,
        layer_id: str,
        fid: int,
        properties: Mapping[str, Any] | None = None,
        geometry: BaseGeometry | None = None,
        expected_version: int | None = None,
        actor: Actor = SYSTEM,
    ) -> Feature:
        """Change some fields and/or the geometry; refuse with ``VersionConflict`` if stale."""

    @abstractmethod
    def delete(self, layer_id: str, fid: int, expected_version: int | None = None, actor: Actor = SYSTEM) -> None:
        """Remove a feature from its layer, keeping it (soft delete) so that an admin can restore it."""

    @abstractmethod
    def deleted(self, layer_id: str | None = None) -> list[DeletedFeature]:
        """Soft-deleted features, newest first."""

    @abstractmethod
    def restore(self, layer_id: str, fid: int, actor: Actor = SYSTEM) -> Feature:
        """Put a soft-deleted feature back under its fid."""

    # -- accounts, machine tokens, the audit trail, login failures --------------------------

    @abstractmethod
    def add_user(self, name: str, password_hash: str, roles: tuple[str, ...], actor: Actor = SYSTEM) -> User: ...

    @abstractmethod
    def user(self, name: str) -> User | None: ...

    @abstractmethod
    def users(self) -> list[User]: ...

    @abstractmethod
    def change_user(
        self,
        name: str,
        *,
        password_hash: str | None = None,
        disabled: bool | None = None,
        actor: Actor = SYSTEM,
    ) -> User:
        """Change a password or disable a user; either ends the user's sessions (epoch + 1)."""

    @abstractmethod
    def add_token(self, name: str, token_hash: str, roles: tuple[str, ...], actor: Actor = SYSTEM) -> Token: ...

    @abstractmethod
    def token(self, token_hash: str) -> Token | None:
        """The live (not revoked) token with this hash."""

    @abstractmethod
    def tokens(self) -> list[Token]: ...

    @abstractmethod
    def revoke_token(self, name: str, actor: Actor = SYSTEM) -> Token: ...

    @abstractmethod
    def record(self, actor: Actor, action: str, changes: Mapping[str, Any] | None = None) -> None:
        """An audit row for an event that changes no feature (a login, say)."""

    @abstractmethod
    def history(self, layer_id: str, fid: int) -> list[AuditEntry]:
        """A feature's audit rows, oldest first."""

    @abstractmethod
    def audit(self, since: str | None = None) -> list[AuditEntry]:
        """Audit rows at or after an ISO date/time, oldest first."""

    # -- sign-in attempts and sessions (the policy is geoapp.core.accounts.LoginPolicy) ----------

    @abstractmethod
    def reserve_login_attempt(
        self, actor: Actor, at: float, window_s: float, check: Callable[[list[float], list[float], list[float]], None]
    ) -> str:
        """Reserve a sign-in attempt of ``actor.name`` from ``actor.address``, in one write transaction.

        Reads the times of the failures since ``at - window_s`` (of this account from this address,
        of this account, of this address), calls ``check`` with them, and counts the attempt as a
        failure until :meth:`login_succeeded` says otherwise, so that simultaneous attempts never
        pass a limit. When ``check`` raises :class:`~geoapp.errors.TooManyAttempts` the refusal is
        counted instead: the first of an account and address in a window writes a
        ``login_refused`` audit row, the rest only a count, audited when that window has passed.
        Returns the attempt's id.
        """

    @abstractmethod
    def login_succeeded(self, attempt: str) -> None:
        """The attempt was no failure: forget it and the failures of its account from its address."""

    @abstractmethod
    def clear_login_failures(self, name: str, *, actor: Actor | None = None) -> int:
        """Forget an account's failed sign-ins from every address (an unlock, audited when ``actor`` is
        given); return how many there were."""

    @abstractmethod
    def start_session(self, session_hash: str, user: str, at: float, expires_at: float) -> None:
        """Keep a new sign-in session (by the digest of its id)."""

    @abstractmethod
    def session_user(self, session_hash: str, at: float) -> str | None:
        """The user of a live session: neither ended nor expired at ``at``."""

    @abstractmethod
    def end_session(self, session_hash: str, at: float) -> None:
        """End a session; its cookie, even a copy of it, no longer signs anyone in."""


def prepare(
    layer: Layer,
    records: list[Mapping[str, Any]],
    geometries: Iterable[BaseGeometry | None],
    metric_crs: str,
    *,
    allow_computed: bool = False,
) -> tuple[list[dict[str, Any]], np.ndarray]:
    """Validate features against ``layer`` and fill computed fields; return clean records and geometries.

    Raises :class:`InvalidFeature` naming the first field (or ``geometry``) that does not fit,
    with the feature's position when there are several, so that callers can refuse the whole batch.
    """
    geoms = np.asarray(list(geometries), dtype=object)
    if len(geoms) != len(records):
        raise ValueError("records and geometries differ in length")
    declared = {f.name: f for f in layer.fields}
    many = len(records) > 1
    clean: list[dict[str, Any]] = []
    for i, record in enumerate(records):
        where = f"feature {i}: " if many else ""
        out: dict[str, Any] = {}
        for name, value in record.items():
            spec = declared.get(name)
            if spec is None:
                raise InvalidFeature(
                    f"{where}unknown field {name!r}; fields of {layer.id}: {', '.join(declared)}", parameter=name
                )
            if spec.computed and not allow_computed:
                if value is not None:
                    raise InvalidFeature(f"{where}{name!r} is computed from the geometry", parameter=name)
                continue
            try:
                out[name] = spec.coerce(value)
            except ValueError as exc:
                raise InvalidFeature(f"{where}{name!r} {exc}", parameter=name) from None
        for spec in layer.fields:
            if out.get(spec.name) is None and spec.default is not None:
                out[spec.name] = spec.coerce(spec.default)
            if spec.required and out.get(spec.name) is None:
                raise InvalidFeature(f"{where}{spec.name!r} is required", parameter=spec.name)
            out.setdefault(spec.name, None)
        _check_geometry(layer, geoms[i], where)
        clean.append(out)
    geoms = shapely.force_2d(geoms)
    computed = [f for f in layer.fields if f.computed]
    if computed and len(geoms):
        metric = project(geoms, STORAGE_CRS, metric_crs)
        measures = {"length": shapely.length(metric), "area": shapely.area(metric)}
        for spec in computed:
            values = np.round(measures[spec.computed], 2)
            for out, value in zip(clean, values, strict=True):
                out[spec.name] = float(value)
    return clean, geoms


def _check_geometry(layer: Layer, geom: Any, where: str) -> None:
    allowed = ", ".join(layer.geometry)
    if not isinstance(geom, BaseGeometry) or geom.is_empty:
        raise InvalidFeature(f"{where}a {allowed} geometry is required", parameter="geometry")
    if geom.geom_type not in layer.geometry:
        raise InvalidFeature(
            f"{where}geometry type {geom.geom_type} is not allowed in {layer.id}; allowed: {allowed}",
            parameter="geometry",
        )
    minx, miny, maxx, maxy = geom.bounds
    if not (-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90):
        raise InvalidFeature(f"{where}coordinates must be longitude/latitude in degrees (WGS84)", parameter="geometry")
    if not geom.is_valid:
        raise InvalidFeature(f"{where}invalid geometry: {shapely.is_valid_reason(geom)}", parameter="geometry")
