"""The store backends the suite runs on: a GeoPackage file, and a database in a private PostgreSQL cluster.

The cluster (Debian's PostgreSQL and PostGIS, which ``make test`` installs) is started under
``build/pg-test`` on a free loopback port for the test run and stopped after it, unless
``GEOAPP_TEST_POSTGRES`` names a running server to use instead (a ``postgresql://`` URL of a
superuser: the tests create and drop databases). Each test that needs a store gets its own
database, copied from a template (``CREATE DATABASE ... TEMPLATE``: a file copy, well under a second).
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import psycopg

from geoapp.config import PROJECT_ROOT
from scripts import pgcluster

CLUSTER = PROJECT_ROOT / "build" / "pg-test"
#: databases the tests make carry this prefix; leftovers of an interrupted run are dropped at the next start
PREFIX = "geoapp_test_"


class Postgres:
    """A PostgreSQL server for the tests: databases made (from templates) and dropped on request."""

    def __init__(self):
        given = os.environ.get("GEOAPP_TEST_POSTGRES")
        self.started = given is None
        self.admin = given or pgcluster.start(CLUSTER)
        for (name,) in self._execute("SELECT datname FROM pg_database WHERE datname LIKE %s", (PREFIX + "%",)):
            self._drop(name)
        # an empty database with PostGIS installed, to copy: creating the extension takes a second, a copy does not
        self.empty = name_of(self.create(template="template1"))
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
        name = PREFIX + uuid.uuid4().hex[:12]
        self._execute(f'CREATE DATABASE "{name}" TEMPLATE "{template or self.empty}"')
        return self.url(name)

    def drop(self, url: str) -> None:
        self._drop(url.rsplit("/", 1)[1])

    def _drop(self, name: str) -> None:
        self._execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        if self.started:
            pgcluster.stop(CLUSTER)


def name_of(url: str) -> str:
    return url.rsplit("/", 1)[1]


def gpkg_path(tmp_path: Path, name: str = "geoapp") -> str:
    return str(tmp_path / f"{name}.gpkg")
