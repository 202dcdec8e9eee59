"""What a running geoapp holds: the layer registry, the store, the reader in front of it and the use cases.

Flask-free: the web app, the CLI and the benchmarks all hold one :class:`Service`.
"""

from __future__ import annotations

import threading
import time
from zoneinfo import ZoneInfo

from geoapp.cases.reports import Reports
from geoapp.cases.service import Cases
from geoapp.core.editing import Editing
from geoapp.core.layers import DISTRICT_ZONE, Registry
from geoapp.errors import ConfigError
from geoapp.flood.rules import Rules
from geoapp.flood.service import Flood
from geoapp.store import Store, create_store, open_store
from geoapp.store.base import Actor, FeatureReader
from geoapp.store.memindex import MemIndex


class Service:
    """The registry now; the store, its reader and the use cases opened on first use (the store may not exist yet)."""

    def __init__(
        self,
        registry: Registry,
        database: str,
        metric_crs: str = "auto",
        *,
        figures: tuple = (),
        sql_above: int = 2_000_000,
        pool_size: int | None = None,
        flood_rules: Rules | None = None,
        clock=time.time,
        timezone: ZoneInfo | None = None,
        workflow=None,
        secret: bytes = b"",
    ):
        self.registry = registry
        #: a database store answers layers of more features than this in SQL (see ``GEOAPP_SQL_ABOVE``)
        self.sql_above = sql_above
        self.pool_size = pool_size
        #: the work report's headline figures (``geoapp.core.stats``), counted from the layers
        self.figures = figures
        self.database = database
        self.metric_crs = metric_crs
        self._store: Store | None = None
        self._reader: FeatureReader | None = None
        self._editing: Editing | None = None
        self._flood: Flood | None = None
        #: the flood-control rules (``layers/flood/rules.yaml``), checked against the registry at start-up
        self.flood_rules = flood_rules
        #: what the flood board takes as now (tests move it instead of sleeping)
        self.clock = clock
        #: the district's time zone: times are shown in it (and "today" is its date), stored in UTC
        self.timezone = timezone or DISTRICT_ZONE
        #: the case workflow (``layers/cases/workflow.yaml``), when the registry has the cases layer
        self.workflow = workflow
        self._cases = None
        self._reports = None
        #: keys the hashes of reporters' addresses (the rate limit counts them; nobody reads them)
        self.secret = secret
        self._lock = threading.Lock()

    def _open(self, store: Store) -> None:
        self._store = store
        # layers are read from indexes in memory that follow the store's versions; a database answers the
        # large ones itself, in SQL
        sql = store.sql_reader() if hasattr(store, "sql_reader") else None
        self._reader = MemIndex(store, sql=sql, sql_above=self.sql_above)
        self._flood = (
            Flood(store, self._reader, self.registry, self.flood_rules, clock=self.clock) if self.flood_rules else None
        )
        closure_fields = self._flood.closure_fields() if self._flood else {}
        self._editing = Editing(store, self._reader, closure_fields=closure_fields)
        self._cases = (
            Cases(store, self._reader, self._editing, self.workflow, clock=self.clock) if self.workflow else None
        )
        self._reports = Reports(self._cases, secret=self.secret, clock=self.clock) if self._cases else None

    def _ensure(self) -> None:
        with self._lock:
            if self._store is None:
                self._open(open_store(self.registry, self.database, pool_size=self.pool_size))

    @property
    def store(self) -> Store:
        self._ensure()
        return self._store

    @property
    def reader(self) -> FeatureReader:
        self._ensure()
        return self._reader

    @property
    def editing(self) -> Editing:
        self._ensure()
        return self._editing

    @property
    def flood(self) -> Flood:
        self._ensure()
        if self._flood is None:
            raise ConfigError("no flood rules were loaded (layers/flood/rules.yaml)", parameter="GEOAPP_LAYERS")
        return self._flood

    @property
    def cases(self) -> Cases:
        self._ensure()
        if self._cases is None:
            raise ConfigError("no case workflow was loaded (layers/cases/workflow.yaml)", parameter="GEOAPP_LAYERS")
        return self._cases

    @property
    def reports(self) -> Reports:
        self.cases  # noqa: B018 - the same refusal when there is no workflow
        return self._reports

    def warm(self) -> None:
        """Load every layer and build its indexes now (a server does this before forking its workers)."""
        reader = self.reader
        if isinstance(reader, MemIndex):
            reader.warm()

    def create(
        self, data=None, *, force: bool = False, demo: bool = False, keep_accounts: bool = True, actor: Actor
    ) -> Store:
        """Create the store (replacing its layers with ``force``) and serve from the new one."""
        crs = None if self.metric_crs == "auto" else self.metric_crs
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None
            store = create_store(
                self.registry,
                self.database,
                data,
                force=force,
                demo=demo,
                crs=crs,
                keep_accounts=keep_accounts,
                actor=actor,
            )
            self._open(store)
        return store

    def close(self) -> None:
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None
