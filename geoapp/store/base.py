"""The store interfaces every backend implements.

A store holds one table per layer: a fid, a geometry in the storage CRS (WGS84 lon/lat), the
layer's declared fields and a per-feature ``_version``. Each layer also has a version that grows
with every committed change, whoever made it (SQL triggers keep it, so an edit made in QGIS or
ogr2ogr counts too), and a change log saying which features changed at which layer version, so
that readers can follow a layer by deltas instead of reloading it.

Two interfaces:

- :class:`Store` writes (every change is one transaction together with its audit row) and keeps
  accounts, tokens and the audit trail;
- :class:`FeatureReader` answers queries: ``select`` pages, single features, counts, search, and
  every layer's count, extent and version in one call. The embedded backend answers it from
  in-memory indexes (``geoapp.store.memindex``); a database backend may answer it in SQL.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from shapely.geometry.base import BaseGeometry

from geoapp.core.cql import Where
from geoapp.core.layers import Registry
from geoapp.errors import InvalidParameter

VERSION_COLUMN = "_version"

#: what a caller may see of a layer: its public fields, or every field (staff)
Visibility = Literal["public", "internal"]


@dataclass(frozen=True)
class Feature:
    layer: str
    fid: int
    geometry: BaseGeometry
    properties: dict[str, Any] = field(default_factory=dict)
    version: int = 1


@dataclass(frozen=True)
class Actor:
    """Who makes a change: a signed-in user, a machine token, or the command line; their roles; and from where."""

    name: str
    kind: str = "user"  # user | token | cli | anonymous
    address: str | None = None
    roles: frozenset[str] = frozenset()


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


@dataclass(frozen=True)
class Reading:
    """One observation of a monitored feature or a rain gauge: a depth (cm) or the rain of an interval (mm).

    ``observed_ms`` is milliseconds since the epoch (UTC); (source, layer, fid, kind, observed_ms) names it once.
    """

    layer: str
    fid: int
    kind: str  # depth_cm | rain_mm
    value: float
    observed_ms: int
    source: str


@dataclass(frozen=True)
class Closure:
    """An underpass closed or an underground space's entrances sealed: by whom, when, why; and its reopening."""

    id: int
    layer: str
    fid: int
    action: str  # close | seal
    reason: str
    closed_at: str
    closed_by: str
    reopened_at: str | None = None
    reopened_by: str | None = None
    reopen_reason: str | None = None

    @property
    def open(self) -> bool:
        """Whether the closure still holds (the feature is closed or sealed)."""
        return self.reopened_at is None


# -- reading -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Query:
    """What to select from a layer; every part is optional and they combine with AND."""

    bbox: tuple[float, float, float, float] | None = None
    near: tuple[float, float, float] | None = None  # lon, lat, radius in metres
    nearest: tuple[float, float, int] | None = None  # lon, lat, k
    within: BaseGeometry | None = None  # lon/lat polygon
    filters: Mapping[str, Sequence[Any]] = field(default_factory=dict)  # field -> accepted values
    after: int | None = None  # keyset paging in fid order: only features whose fid is greater
    where: Where | None = None  # a CQL2 filter (geoapp.core.cql.parse), in storage lon/lat

    def __post_init__(self):
        if self.near and self.nearest:
            raise InvalidParameter("give either near (with radius) or nearest (with k), not both", parameter="near")
        if self.after is not None and (self.near or self.nearest):
            raise InvalidParameter("after pages in fid order; results by distance page with offset", parameter="after")


@dataclass(frozen=True)
class Page:
    """A page of a selection: GeoJSON Feature texts in result order, how many matched in all, and at which version.

    Results are ordered by fid, or by distance then fid when the query gave a point (``near`` or
    ``nearest``); then each feature carries ``distance_m`` in its properties and ``distances``
    lists them in metres. ``matched`` counts every match of the query whatever the page (``after``
    does not change it); ``estimated`` says it is the database planner's estimate (a very large selection);
    ``more`` says whether matches follow this page.
    """

    features: list[bytes]
    ids: list[int]
    matched: int
    version: int
    distances: list[float] | None = None
    estimated: bool = False
    more: bool = False


@dataclass(frozen=True)
class Problem:
    """A stored row the layer definition does not admit (written by another tool): reported, never fatal."""

    fid: int
    field: str
    message: str


@dataclass(frozen=True)
class LayerSummary:
    count: int
    extent: list[float] | None
    version: int
    by_status: dict[str, int] | None
    problems: tuple[Problem, ...] = ()


class FeatureReader(ABC):
    """Answers every read of the layers: what views, reports and maps use, and nothing else."""

    @abstractmethod
    def select(
        self, layer_id: str, query: Query, offset: int = 0, limit: int = 100, visibility: Visibility = "public"
    ) -> Page:
        """A page of the features matching ``query``."""

    @abstractmethod
    def get(self, layer_id: str, fid: int, visibility: Visibility = "public") -> Feature | None:
        """One feature with the fields ``visibility`` shows, or None."""

    @abstractmethod
    def count(self, layer_id: str, filters: Mapping[str, Sequence[Any]] | None = None) -> int:
        """How many features have, for each field in ``filters``, one of the given values."""

    @abstractmethod
    def summary(self) -> dict[str, LayerSummary]:
        """Every layer's count, extent, version, counts per status and problems, read at one moment."""

    @abstractmethod
    def versions(self) -> dict[str, int]:
        """Every layer's version."""

    @abstractmethod
    def search(self, text: str, limit: int) -> list[dict[str, Any]]:
        """Features whose title contains ``text`` across the operational layers: layer, id, title, lon, lat."""


@dataclass(frozen=True)
class LayerData:
    """One layer read whole, column by column: what an in-memory index is built from."""

    version: int
    fids: np.ndarray  # int64, ascending
    geometries: np.ndarray  # shapely objects (None where a row has none)
    columns: dict[str, np.ndarray]  # field -> Python values (None where missing)
    versions: np.ndarray  # int64 per feature
    problems: tuple[Problem, ...] = ()  # rows another tool wrote that the definition does not admit


@dataclass(frozen=True)
class Delta:
    """What changed in a layer after a version: the changed features as they are now, and the fids deleted."""

    version: int
    changed: list[Feature]
    deleted: list[int]


# -- writing -----------------------------------------------------------------------------------


class Store(ABC):
    """Base class of stores: open on a location, then read and change layers feature by feature.

    Every change takes the ``actor`` who makes it (no default: a forgotten actor is an error, not
    "system") and is one transaction with its audit row.
    """

    #: name used in ``GEOAPP_DATABASE`` URLs and the backend table
    backend = ""

    def __init__(self, registry: Registry, location: str):
        self.registry = registry
        self.location = location

    @classmethod
    @abstractmethod
    def create(
        cls,
        registry: Registry,
        location: str,
        data: Mapping[str, Any] | None = None,
        *,
        force: bool = False,
        demo: bool = False,
        crs: str | None = None,
        keep_accounts: bool = True,
        actor: Actor | None = None,
    ) -> Store:
        """Make a store holding every registered layer (``data``: GeoDataFrames by layer id), all or nothing.

        An existing store is replaced only with ``force``; its accounts, tokens and audit trail are kept
        (and the replacement recorded) unless ``keep_accounts`` is false.
        """

    @classmethod
    def upgrade(cls, registry: Registry, location: str) -> str:
        """Bring an existing store's schema to this version of geoapp; say what it is now."""
        cls(registry, location).close()  # a store that migrates itself when opened
        return f"{location}: up to date"

    @abstractmethod
    def close(self) -> None:
        """Release connections."""

    @property
    @abstractmethod
    def metric_crs(self) -> str:
        """The projected CRS (metres) chosen for this store's district."""

    @property
    @abstractmethod
    def synthetic(self) -> bool:
        """Whether the store holds the synthetic demo district."""

    @abstractmethod
    def versions(self) -> dict[str, int]:
        """Every layer's version, read at one moment."""

    @abstractmethod
    def load(self, layer_id: str) -> LayerData:
        """A whole layer, read consistently with the version it reports."""

    @abstractmethod
    def changes(self, layer_id: str, since: int, limit: int) -> Delta | None:
        """What changed after version ``since``; None when more than ``limit`` features changed (reload instead)."""

    @abstractmethod
    def get(self, layer_id: str, fid: int) -> Feature | None:
        """One feature with every field, or None."""

    @abstractmethod
    def insert(self, layer_id: str, properties: Mapping[str, Any], geometry: BaseGeometry, *, actor: Actor) -> Feature:
        """Validate and add a feature; return it with its new fid."""

    @abstractmethod
    def insert_many(
        self, layer_id: str, features: Sequence[tuple[Mapping[str, Any], BaseGeometry]], *, actor: Actor
    ) -> list[Feature]:
        """Validate and add many features in one transaction: all of them, or none (the error names the first)."""

    @abstractmethod
    def update(
        self,
        layer_id: str,
        fid: int,
        properties: Mapping[str, Any] | None = None,
        geometry: BaseGeometry | None = None,
        *,
        expected_version: int,
        actor: Actor,
    ) -> Feature:
        """Change some fields and/or the geometry; refuse with ``VersionConflict`` if stale."""

    @abstractmethod
    def apply_import(
        self,
        layer_id: str,
        inserts: Sequence[tuple[Mapping[str, Any], BaseGeometry]],
        updates: Sequence[tuple[int, int, Mapping[str, Any], BaseGeometry | None]] = (),
        *,
        replace: bool = False,
        actor: Actor,
        note: Mapping[str, Any] | None = None,
    ) -> dict[str, int]:
        """Write an import in one transaction, all or nothing: with ``replace`` delete (keep) every current feature,
        apply ``updates`` (fid, expected version, changed fields, new geometry or None: version + 1), add
        ``inserts``; one audit row per feature as the single writes have them, and one for the import (``note``).
        Returns the counts: inserted, updated, deleted."""

    @abstractmethod
    def delete(self, layer_id: str, fid: int, *, expected_version: int, actor: Actor) -> None:
        """Remove a feature from its layer, keeping it (soft delete) so that an admin can restore it."""

    @abstractmethod
    def deleted(self, layer_id: str | None = None) -> list[DeletedFeature]:
        """Soft-deleted features, newest first."""

    @abstractmethod
    def restore(self, layer_id: str, fid: int, *, actor: Actor) -> Feature:
        """Put a soft-deleted feature back under its fid."""

    # -- accounts, machine tokens, the audit trail, login failures --------------------------

    @abstractmethod
    def add_user(self, name: str, password_hash: str, roles: tuple[str, ...], *, actor: Actor) -> User: ...

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
        actor: Actor,
    ) -> User:
        """Change a password or disable a user; either ends the user's sessions (epoch + 1)."""

    @abstractmethod
    def add_token(self, name: str, token_hash: str, roles: tuple[str, ...], *, actor: Actor) -> Token: ...

    @abstractmethod
    def token(self, token_hash: str) -> Token | None:
        """The live (not revoked) token with this hash."""

    @abstractmethod
    def tokens(self) -> list[Token]: ...

    @abstractmethod
    def revoke_token(self, name: str, *, actor: Actor) -> Token: ...

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
