"""Fixtures in flaskr's manner: an app on a temporary copy of the demo store, its client and CLI runner."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from geoapp.config import PROJECT_ROOT
from geoapp.core.accounts import LoginPolicy, Passwords
from geoapp.core.layers import Registry
from geoapp.store import create_store
from geoapp.store.base import Actor
from geoapp.web import create_app
from geoapp.web.auth import _instance_secret
from tests.backends import Postgres, stop_unused

LAYERS_DIR = PROJECT_ROOT / "layers"
#: every store backend; a module marked ``@pytest.mark.backends(*BACKENDS)`` runs on each, others on the first
BACKENDS = ("gpkg", "postgis")


@pytest.hookimpl(optionalhook=True)  # pytest-xdist's hook: ``-p no:xdist`` still loads this file
def pytest_xdist_auto_num_workers(config) -> int:
    """How many pytest-xdist workers ``-n auto`` (pyproject.toml's addopts) starts: two at most (most tests wait
    on a subprocess, a browser or the database and use one core, and each worker builds its own demo district
    and browser), and none when one file or test is named: a developer's single file starts at once.
    ``-n 0`` runs serially, ``-n N`` runs N workers."""
    if len(config.args) == 1 and (config.invocation_params.dir / config.args[0].split("::")[0]).is_file():
        return 0
    given = os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS", "")  # pytest-xdist's own override, kept
    workers = int(given) if given.isdigit() else min(2, len(os.sched_getaffinity(0)))
    return workers if workers > 1 else 0  # one worker is a serial run with extra start-up


def _xdist_controller(config) -> bool:
    """Whether this process hands tests to pytest-xdist workers (and runs none itself)."""
    return not hasattr(config, "workerinput") and config.getoption("dist", "no") != "no"


def pytest_configure(config):
    if _xdist_controller(config) and not os.environ.get("GEOAPP_SECRET_KEY"):
        # the servers the tests start sign sessions with instance/secret_key: made once, before any worker
        # starts one (creating it is safe against a race, but one key from the start is simplest)
        _instance_secret(PROJECT_ROOT / "instance")


def pytest_sessionfinish(session):
    if _xdist_controller(session.config):
        stop_unused()  # a cluster left by a worker that crashed; each worker's session stops it otherwise


#: the files that take longest (a browser, servers, subprocesses, benchmarks: --durations), longest first. With
#: ``--dist loadfile`` a file stays in one worker, and pytest-xdist's own order (most tests first) left these few-test
#: files for the end, where one of them ran alone while the other worker had finished: handed out first, the two
#: workers end within seconds of each other. A file not named here runs after them, the ones with most tests first.
LONG_FILES = (
    "tests/browser/test_editing.py",
    "tests/browser/test_flood.py",
    "tests/browser/test_onemap.py",
    "tests/test_anonymous_walk.py",
    "tests/browser/test_basemaps.py",
    "tests/browser/test_public.py",
    "tests/test_deploy.py",
    "tests/test_bench_smoke.py",
    "tests/test_bench_soak.py",
    "tests/test_serve.py",
    "tests/browser/test_forms.py",
    "tests/browser/test_progress.py",
    "tests/test_postgis.py",
    "tests/test_cli.py",
)


@pytest.hookimpl(trylast=True)  # after pytest's own reordering for module-scoped parameters
def pytest_collection_modifyitems(items):
    """Hand the long files out first (pyproject.toml turns pytest-xdist's reordering off: ``--no-loadscope-reorder``);
    within a file the order stays."""
    files: dict[str, int] = {}
    for item in items:
        name = item.nodeid.split("::")[0]
        files[name] = files.get(name, 0) + 1
    long = {name: rank for rank, name in enumerate(LONG_FILES)}
    items.sort(key=lambda item: _file_rank(item.nodeid.split("::")[0], long, files))


def _file_rank(name: str, long: dict[str, int], files: dict[str, int]) -> tuple:
    if name in long:
        return (0, long[name], name)
    return (1, -files[name], name)


def pytest_generate_tests(metafunc):
    if "backend" in metafunc.fixturenames:
        marker = metafunc.definition.get_closest_marker("backends")
        metafunc.parametrize("backend", marker.args if marker else BACKENDS[:1], scope="module")


@pytest.fixture(scope="session")
def browser():
    """Debian's headless Chromium, driven by Playwright: one for the whole run (two sync Playwrights cannot be
    open at once)."""
    from playwright.sync_api import sync_playwright

    from tests.browser.chromium import CHROMIUM, CHROMIUM_ARGS

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def postgres():
    """A private PostgreSQL + PostGIS cluster for the run (see tests/backends.py)."""
    server = Postgres()
    yield server
    server.stop()


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


@pytest.fixture(scope="session")
def demo_postgis(request, registry, demo_data):
    """The demo district in a template database, built once; each test gets a copy."""
    server = request.getfixturevalue("postgres")
    url = server.create()
    create_store(registry, url, demo_data, demo=True).close()
    return url.rsplit("/", 1)[1]


@pytest.fixture
def location(backend, tmp_path, request):
    """Where a new, empty store goes on the backend under test: a file path, or an empty database's URL."""
    if backend == "gpkg":
        yield str(tmp_path / "store.gpkg")
        return
    server = request.getfixturevalue("postgres")
    url = server.create()
    yield url
    server.drop(url)


@pytest.fixture
def database(backend, tmp_path, request):
    """A copy of the demo district on the backend under test: a GeoPackage path, or a database URL."""
    with demo_copy_in(backend, tmp_path, request) as copy:
        yield copy


@contextlib.contextmanager
def demo_copy_in(backend: str, folder: Path, request):
    """A copy of the demo district: ``folder/geoapp.gpkg``, or a new database copied from the demo template
    (dropped afterwards)."""
    if backend == "gpkg":
        path = folder / "geoapp.gpkg"
        shutil.copy(request.getfixturevalue("demo_gpkg"), path)
        yield path
        return
    server = request.getfixturevalue("postgres")
    url = server.create(template=request.getfixturevalue("demo_postgis"))
    try:
        yield url
    finally:
        server.drop(url)


#: Argon2 at its cheapest: tests check what the hashing is for, not what it costs
CHEAP_ARGON2 = {"time_cost": 1, "memory_cost": 8, "parallelism": 1}


class Clock:
    """A clock that moves only when told: the sign-in policy and sessions read it, nothing sleeps."""

    def __init__(self, now: float = 1_700_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def app(database, clock):
    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "test-secret",
            "GEOAPP_DATABASE": str(database),
            "ARGON2_PARAMETERS": CHEAP_ARGON2,
            "LOGIN_POLICY": LoginPolicy(clock=clock),
            "CLOCK": clock,  # the flood board's now: readings turn stale when the test says, not when it is slow
        }
    )
    yield app
    app.extensions["geoapp"].close()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


PASSWORD = "correct-horse-battery"
#: who the audit trail names for what a test sets up, as for the command line
SETUP = Actor("tests", "cli")
ROLES = ("viewer", "planner", "commander", "sensor", "admin")


@pytest.fixture(scope="session")
def password_hash():
    return Passwords(**CHEAP_ARGON2).hash(PASSWORD)


@pytest.fixture
def users(app, password_hash):
    """One account per role, named after it (and "planner2"), all with PASSWORD."""
    store = app.extensions["geoapp"].store
    for role in ROLES:
        store.add_user(role, password_hash, (role,), actor=SETUP)
    store.add_user("planner2", password_hash, ("planner",), actor=SETUP)
    return {role: role for role in ROLES}


def csrf_token(client) -> str:
    """The CSRF token of the client's session, from the sign-in form (a light page, not the map)."""
    page = client.get("/login").get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def login(client, name: str, password: str = PASSWORD):
    """Sign in through the real form; return the response and the CSRF token of the new session."""
    response = client.post("/login", data={"name": name, "password": password, "csrf_token": csrf_token(client)})
    return response, csrf_token(client)  # signing in starts a new session, with a token of its own


def start_server(command: list[str], log: Path, timeout: float = 120, **settings: str):
    """Run a server command on a free 127.0.0.1 port; return (process, base URL) once /api/layers answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PORT": str(port), **settings}
    with open(log, "w") as out:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(
            command, cwd=PROJECT_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(f"{base}/api/layers", timeout=2)
            return proc, base
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                stop_server(proc)
                pytest.fail(f"{' '.join(command)} did not serve on {base}:\n{log.read_text()}")
            time.sleep(0.2)


def stop_server(proc) -> None:
    """Stop a server started by :func:`start_server`, with everything it started."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
