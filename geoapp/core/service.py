"""What a running geoapp holds: the layer registry, the store and the query engine. Flask-free."""

from __future__ import annotations

import threading

from geoapp.core.layers import Registry
from geoapp.store import Store, create_store, open_store
from geoapp.store.memindex import Engine


class Service:
    """The registry now; the store and engine opened on first use (the store may not exist yet)."""

    def __init__(self, registry: Registry, database: str, metric_crs: str = "auto"):
        self.registry = registry
        self.database = database
        self.metric_crs = metric_crs
        self._engine: Engine | None = None
        self._lock = threading.Lock()

    @property
    def engine(self) -> Engine:
        with self._lock:
            if self._engine is None:
                self._engine = Engine(open_store(self.registry, self.database))
            return self._engine

    @property
    def store(self) -> Store:
        return self.engine.store

    def create(self, data=None, *, force: bool = False, demo: bool = False) -> Store:
        """Create the store (replacing it with ``force``) and serve from the new one."""
        crs = None if self.metric_crs == "auto" else self.metric_crs
        with self._lock:
            if self._engine is not None:
                self._engine.store.close()
                self._engine = None
            store = create_store(self.registry, self.database, data, force=force, demo=demo, crs=crs)
            self._engine = Engine(store)
        return store

    def close(self) -> None:
        with self._lock:
            if self._engine is not None:
                self._engine.store.close()
                self._engine = None
