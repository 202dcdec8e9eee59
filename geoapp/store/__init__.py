"""Stores by backend name: the one table that maps a ``GEOAPP_DATABASE`` value to a class."""

from __future__ import annotations

import importlib
from urllib.parse import urlsplit

from geoapp.core.layers import Registry
from geoapp.errors import StoreError
from geoapp.store.base import Feature, Store

#: backend name -> "module:Class"; a URL scheme or a file suffix picks the backend
BACKENDS = {"gpkg": "geoapp.store.gpkg:GeoPackageStore", "postgresql": "geoapp.store.postgis:PostGISStore"}

__all__ = [
    "BACKENDS",
    "Feature",
    "Store",
    "backend_class",
    "copy_store",
    "create_store",
    "open_store",
    "store_exists",
    "upgrade_store",
]


def backend_class(location: str) -> type[Store]:
    """The store class for a location: ``path/to/file.gpkg``, ``gpkg:path`` or ``postgresql://user@host:port/db``."""
    scheme = urlsplit(location).scheme
    name = "gpkg" if location.endswith(".gpkg") or len(scheme) <= 1 else scheme
    name = "postgresql" if name == "postgres" else name
    if name not in BACKENDS:
        raise StoreError(
            f"unknown store backend {name!r} in {location!r}; available: {', '.join(BACKENDS)} "
            "(a path ending in .gpkg, or postgresql://user@host:port/database)",
            parameter="GEOAPP_DATABASE",
        )
    module, _, cls = BACKENDS[name].partition(":")
    return getattr(importlib.import_module(module), cls)


def _path(location: str) -> str:
    return location.removeprefix("gpkg:")


def open_store(registry: Registry, location: str, *, pool_size: int | None = None) -> Store:
    """Open an existing store (``pool_size``: connections per process, for a database server)."""
    cls = backend_class(location)
    options = {"pool_size": pool_size} if pool_size and cls.backend == "postgis" else {}
    return cls(registry, _path(location), **options)


def create_store(registry: Registry, location: str, data=None, **options) -> Store:
    """Create a store (see the backend's ``create``) and return it open."""
    return backend_class(location).create(registry, _path(location), data, **options)


def store_exists(registry: Registry, location: str) -> bool:
    """Whether a store opens at ``location``."""
    try:
        open_store(registry, location).close()
    except StoreError:
        return False
    return True


def upgrade_store(registry: Registry, location: str) -> str:
    """Migrate a store's schema to this version of geoapp (``geoapp db upgrade``)."""
    return backend_class(location).upgrade(registry, _path(location))


def copy_store(registry: Registry, source: str, target: str, *, force: bool = False, actor) -> Store:
    """Move a district from one store to another: features with their fids and versions, accounts, audit trail."""
    cls = backend_class(target)
    if cls.backend != "postgis":
        raise StoreError(
            f"copy writes into a PostgreSQL database (postgresql://user@host:port/database), not {target!r}",
            parameter="to",
        )
    from geoapp.store.postgis import copy_into

    store = open_store(registry, source)
    try:
        return copy_into(store, target, force=force, actor=actor)
    finally:
        store.close()
