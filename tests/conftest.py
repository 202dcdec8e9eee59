"""Fixtures in flaskr's manner: an app on a temporary copy of the demo store, its client and CLI runner."""

from __future__ import annotations

import shutil

import pytest

from geoapp import create_app
from geoapp.config import PROJECT_ROOT
from geoapp.layers import Registry
from geoapp.store import create_store

LAYERS_DIR = PROJECT_ROOT / "layers"


@pytest.fixture(scope="session")
def registry() -> Registry:
    return Registry.load(LAYERS_DIR)


@pytest.fixture(scope="session")
def demo_data():
    from data import demo_district

    return demo_district.build()


@pytest.fixture(scope="session")
def demo_gpkg(tmp_path_factory, registry, demo_data):
    """The demo district built once; tests that change it work on a copy."""
    path = tmp_path_factory.mktemp("demo") / "demo.gpkg"
    create_store(registry, str(path), demo_data, demo=True).close()
    return path


@pytest.fixture
def database(tmp_path, demo_gpkg):
    path = tmp_path / "geoapp.gpkg"
    shutil.copy(demo_gpkg, path)
    return path


@pytest.fixture
def app(database):
    app = create_app({"TESTING": True, "GEOAPP_DATABASE": str(database)})
    yield app
    app.extensions["geoapp"].close()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()
