"""Browser fixtures: the app served by gunicorn on 127.0.0.1 and Debian's headless Chromium driven by Playwright.

Nothing may leave 127.0.0.1: any other request is aborted and recorded, and the tests assert none was made.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest
import shapely

from geoapp.config import PROJECT_ROOT
from geoapp.store import open_store
from tests.conftest import SETUP, demo_copy_in, start_server, stop_server

# values that would run script if any page put them into HTML or a template literal
HOSTILE_NAME = '<img src=x onerror="window.__pwned=1">'
HOSTILE_ROAD = "${window.__pwned=2}"
HOSTILE_CONTEXT = "</script><script>window.__pwned=3</script>"
HOSTILE_POINT = (113.3005, 33.7305)


@pytest.fixture(scope="module")
def demo_copy(backend, request, tmp_path_factory):
    """A copy of the demo district for one module's live server, on the backend under test: a GeoPackage file, or
    a new database copied from the ``demo_postgis`` template (dropped after the module); its path or URL."""
    with demo_copy_in(backend, tmp_path_factory.mktemp("browser"), request) as copy:
        yield copy


@pytest.fixture(scope="module")
def hostile_store(demo_copy, registry):
    """The demo district plus features whose names try to run script, in an embedded and a fetched layer:
    (its path or URL, the hostile point's fid)."""
    store = open_store(registry, str(demo_copy))
    point = store.insert(
        "waterlogging_points",
        {"name": HOSTILE_NAME, "road": HOSTILE_ROAD, "status": "dangerous", "notes": HOSTILE_NAME},
        shapely.Point(*HOSTILE_POINT),
        actor=SETUP,
    )
    store.insert(
        "roads",
        {"name": HOSTILE_CONTEXT, "kind": "branch"},
        shapely.LineString([(113.299, 33.729), (113.302, 33.729)]),
        actor=SETUP,
    )
    store.close()
    return demo_copy, point.fid


@pytest.fixture(scope="module")
def hostile_gpkg(hostile_store):
    """:func:`hostile_store` under the name the display tests use (they run on the GeoPackage only)."""
    return hostile_store


def serve(database: Path | str, log: Path, **settings: str):
    """gunicorn as `make run` starts it, with one worker, on a GeoPackage path or a database URL; return
    (process, base URL) once it answers."""
    command = [str(PROJECT_ROOT / ".venv/bin/gunicorn"), "-c", "gunicorn.conf.py", "wsgi:app"]
    return start_server(command, log, 60, GEOAPP_DATABASE=str(database), GEOAPP_WORKERS="1", **settings)


@pytest.fixture(scope="module")
def live_server(hostile_store, tmp_path_factory):
    location, _ = hostile_store
    proc, base = serve(location, tmp_path_factory.mktemp("logs") / "gunicorn.log", GEOAPP_BASEMAP="none")
    yield base
    stop_server(proc)


@dataclass
class Watched:
    """A page and what it did: console errors, page errors, dialogs, and requests that left 127.0.0.1."""

    page: object
    console_errors: list[str] = field(default_factory=list)
    outside: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def screenshot(self, directory: Path, name: str) -> Path:
        path = directory / f"{name}.png"
        self.page.screenshot(path=str(path))
        return path


def watch(context, allow_outside: tuple[str, ...] = ()) -> Watched:
    page = context.new_page()
    watched = Watched(page)

    def route(route):
        url = route.request.url
        if url.startswith("http://127.0.0.1:"):
            route.continue_()
        else:
            watched.outside.append(url)
            if url.startswith(allow_outside):
                route.fulfill(status=200, content_type="image/png", body=_BLANK_PNG)
            else:
                route.abort()

    page.route("**/*", route)
    page.on("console", lambda m: m.type == "error" and watched.console_errors.append(m.text))
    page.on("pageerror", lambda e: watched.console_errors.append(str(e)))
    page.on("request", lambda r: watched.requests.append(r.url))

    def on_dialog(dialog):
        watched.dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    return watched


_BLANK_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


@pytest.fixture
def zh(browser):
    context = browser.new_context(locale="zh-CN", viewport={"width": 1400, "height": 860})
    yield watch(context)
    context.close()


@pytest.fixture(scope="session")
def shots(tmp_path_factory):
    """Screenshots go here (the pytest temp dir), to be looked at."""
    return tmp_path_factory.mktemp("screenshots")


@pytest.fixture
def contexts(browser, request):
    """New browser contexts (each with its own cookies, Chinese, the test module's ``VIEWPORT`` or a desktop one
    unless given), closed after the test."""
    made = []
    default = getattr(request.module, "VIEWPORT", {"width": 1400, "height": 860})

    def new(viewport=None, **options):
        context = browser.new_context(locale="zh-CN", viewport=viewport or default, **options)
        made.append(context)
        return watch(context)

    yield new
    for context in made:
        context.close()


def sign_in(watched, base: str, name: str, password: str):
    """Sign in through the real form in ``watched``'s page; return the page."""
    page = watched.page
    page.goto(f"{base}/login")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", password)
    page.click("form button[type=submit]")
    page.wait_for_selector(".geoapp-user")
    return page
