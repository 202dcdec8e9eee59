"""The store backends the suite runs on: a GeoPackage file, and a database in a private PostgreSQL cluster.

The cluster (Debian's PostgreSQL and PostGIS, which ``make test`` installs) is started under
``build/pg-test`` on a free loopback port for the test run and stopped after it, unless
``GEOAPP_TEST_POSTGRES`` names a running server to use instead (a ``postgresql://`` URL of a
superuser: the tests create and drop databases). Each test that needs a store gets its own
database, copied from a template (``CREATE DATABASE ... TEMPLATE``, a file copy). A copy takes about
half a second, so the next copy of a template is made in a background thread while a test runs, and
databases are dropped there too: a test waits only for what it uses.

Several sessions share the one cluster: the pytest-xdist workers of a run, and any other run in the
same checkout. Starting it and deciding to stop it happen under an exclusive lock (``start.lock``);
each session holds ``sessions.lock`` shared while it uses the cluster, and the session ending last
stops it. Every database a session makes is named after its process (``geoapp_test_<pid>_<uuid>``),
so workers never collide, and a dead session's leftovers are dropped by the next to start.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import sqlite3
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import psycopg

from geoapp.config import PROJECT_ROOT
from scripts import pgcluster

CLUSTER = PROJECT_ROOT / "build" / "pg-test"
#: databases the tests make carry this prefix; leftovers of an interrupted run are dropped at the next start
PREFIX = "geoapp_test_"
#: this session's databases: several test sessions may share the cluster (a developer's and a helper's)
SESSION = f"{PREFIX}{os.getpid()}_"


class Postgres:
    """A PostgreSQL server for the tests: databases made (from templates) and dropped on request."""

    def __init__(self):
        self._background = ThreadPoolExecutor(max_workers=1, thread_name_prefix="postgres")
        self._spares: dict[str, Future] = {}
        given = os.environ.get("GEOAPP_TEST_POSTGRES")
        self.started = given is None
        if self.started:
            with _starting():  # two sessions starting the cluster at once would both run initdb and pg_ctl
                self.admin = pgcluster.start(CLUSTER)
                # every session holds this lock shared while it uses the cluster; the last one to end stops it
                self._users = open(CLUSTER / "sessions.lock", "w")  # noqa: SIM115 (held for the session)
                fcntl.flock(self._users, fcntl.LOCK_SH)
        else:
            self.admin = given
        for (name,) in self._execute("SELECT datname FROM pg_database WHERE datname LIKE %s", (PREFIX + "%",)):
            if not _alive(name):  # left by a session that ended without cleaning up
                self._drop(name)
        # an empty database with PostGIS installed, to copy: creating the extension takes a second, a copy does not
        self.empty = name_of(self._copy("template1"))
        with psycopg.connect(self.url(self.empty), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION postgis")

    def _execute(self, sql: str, params=()) -> list[tuple]:
        with psycopg.connect(self.admin, autocommit=True) as conn:
            cur = conn.execute(sql, params)
            return cur.fetchall() if cur.description else []

    def url(self, name: str) -> str:
        return self.admin.rsplit("/", 1)[0] + "/" + name

    def create(self, template: str | None = None) -> str:
        """A new empty database with PostGIS, or a copy of ``template``; its URL."""
        template = template or self.empty
        spare = self._spares.pop(template, None)
        url = spare.result() if spare is not None else self._copy(template)
        self._spares[template] = self._background.submit(self._copy, template)  # the next test's
        return url

    def _copy(self, template: str) -> str:
        name = SESSION + uuid.uuid4().hex[:12]
        self._execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        return self.url(name)

    def drop(self, url: str) -> None:
        self._background.submit(self._drop, name_of(url))

    def _drop(self, name: str) -> None:
        self._execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        for spare in self._spares.values():
            self._background.submit(self._drop, name_of(spare.result()))
        self._background.shutdown(wait=True)
        if self.started:
            with _starting():  # no session starts to use the cluster while this one decides to stop it
                fcntl.flock(self._users, fcntl.LOCK_UN)
                self._users.close()
                _stop_if_unused()


def stop_unused() -> None:
    """Stop the test cluster if it runs and no session uses it: one left by a session that was killed (its
    lock went with it). The pytest-xdist controller calls it at the end of a run."""
    if os.environ.get("GEOAPP_TEST_POSTGRES") or pgcluster.url(CLUSTER) is None:
        return
    with _starting():
        _stop_if_unused()


@contextlib.contextmanager
def _starting():
    """The cluster's exclusive lock, held while it is started, or while a session decides to stop it."""
    CLUSTER.mkdir(parents=True, exist_ok=True)
    with open(CLUSTER / "start.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield  # closing the file releases the lock


def _stop_if_unused() -> None:
    """Stop the cluster unless a session holds ``sessions.lock`` (call with the start lock held)."""
    with open(CLUSTER / "sessions.lock", "w") as users:
        try:
            fcntl.flock(users, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return  # another session still uses the cluster; it stops it
        pgcluster.stop(CLUSTER)


def _alive(database: str) -> bool:
    """Whether the test session that made ``database`` still runs."""
    pid = database[len(PREFIX) :].split("_", 1)[0]
    if not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def name_of(url: str) -> str:
    return url.rsplit("/", 1)[1]


def gpkg_path(tmp_path: Path, name: str = "geoapp") -> str:
    return str(tmp_path / f"{name}.gpkg")


# -- what a test does to a store beside the app, on either backend ---------------------------------
# ``database`` is what the ``database`` fixture gives: a GeoPackage path, or a ``postgresql://`` URL.


def is_postgis(database) -> bool:
    return isinstance(database, str) and database.startswith("postgresql://")


def execute(database, sql: str, params=()) -> list[tuple]:
    """Run one statement of raw SQL on the store as another tool would (sqlite3 on the file, psycopg on the
    database, committed at once); its rows. Parameters are written ``?`` (turned into ``%s`` for psycopg)."""
    if is_postgis(database):
        with psycopg.connect(database, autocommit=True) as conn:
            cur = conn.execute(sql.replace("?", "%s"), params)
            return cur.fetchall() if cur.description else []
    from geoapp.store.gpkg import _connect  # GeoPackage's R-tree triggers call ST_ functions it defines

    conn = _connect(Path(database))
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def audit_rows(database) -> int:
    """How many rows the audit trail holds, counted in the store itself."""
    return execute(database, "SELECT count(*) FROM geoapp_audit")[0][0]


def fault(database, when: str, table: str) -> str:
    """SQL for a trigger named ``fault`` that fails every ``when`` (``INSERT`` or ``UPDATE``) on ``table`` with
    'disk full', as a full disk would fail the write in the middle of a transaction."""
    if is_postgis(database):
        return (
            "CREATE FUNCTION fault() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'disk full'; END $$;"
            f" CREATE TRIGGER fault BEFORE {when} ON {table} FOR EACH ROW EXECUTE FUNCTION fault();"
        )
    return f"CREATE TRIGGER fault BEFORE {when} ON {table} BEGIN SELECT RAISE(ABORT, 'disk full'); END"


def drop_fault(database, table: str) -> str:
    """SQL removing what :func:`fault` made."""
    if is_postgis(database):
        return f"DROP TRIGGER fault ON {table}; DROP FUNCTION fault();"
    return "DROP TRIGGER fault"


def run_script(database, sql: str) -> None:
    """Run several statements (no parameters), as :func:`fault` and :func:`drop_fault` give them."""
    if is_postgis(database):
        with psycopg.connect(database, autocommit=True) as conn:
            conn.execute(sql)
        return
    from geoapp.store.gpkg import _connect

    conn = _connect(Path(database))
    try:
        conn.executescript(sql)
    finally:
        conn.close()


def refused_change(database) -> type[Exception]:
    """The error the store's own rules raise on a refused change (the audit trail's append-only trigger)."""
    if is_postgis(database):
        return psycopg.errors.InsufficientPrivilege
    return sqlite3.IntegrityError


def _tables(database) -> list[str]:
    if is_postgis(database):
        # PostGIS's own table of coordinate systems is no part of the store
        query = (
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'spatial_ref_sys' "
            "ORDER BY tablename"
        )
    else:
        query = "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
    return [name for (name,) in execute(database, query)]


def _table_texts(database) -> list[str]:
    """Every table's rows as PostgreSQL writes them out as text, in a fixed order."""
    with psycopg.connect(database, autocommit=True) as conn:
        return [
            conn.execute(
                f"SELECT coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '') FROM \"{table}\" t"
            ).fetchone()[0]
            for table in _tables(database)
        ]


def stored(database) -> bytes:
    """Everything the store keeps: the GeoPackage's files (with its journal), or every row of every table in
    the database as text. For "this secret is stored nowhere"."""
    if is_postgis(database):
        return "\n".join(_table_texts(database)).encode()
    path = Path(database)
    return b"".join(p.read_bytes() for p in sorted(path.parent.glob(path.name + "*")))


def fingerprint(database) -> str:
    """A digest of everything stored: the GeoPackage's bytes, or every table's rows and every sequence's value in
    the database. Equal before and after means nothing was written."""
    if not is_postgis(database):
        return hashlib.sha256(Path(database).read_bytes()).hexdigest()
    sequences = execute(database, "SELECT sequencename, last_value FROM pg_sequences ORDER BY 1")
    return hashlib.sha256(repr((_table_texts(database), sequences)).encode()).hexdigest()
