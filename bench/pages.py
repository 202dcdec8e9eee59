"""The one-map page (``/``): its cost must not grow with the layers, and the map must be usable quickly.

Run with ``python -m bench`` or alone with ``python -m bench --pages-only``; ``--no-pages`` skips it.

What is measured
----------------
The stores are the demo district (``data.demo_district``) with its ``manhole_covers`` layer
replaced by :data:`SIZES` synthetic covers (1,000 and 100,000), uniform over the district's
bounding box, every other layer as the demo has it; the browser also opens the demo district
as it is (950 covers along its streets). Tiles are off (``GEOAPP_BASEMAP=none``), so nothing
but the app is timed and nothing leaves the machine.

1. *Server side, in process*: ``create_app`` on each store and ``GET /`` through Flask's test
   client (no network, no gzip), one untimed request per store and then :data:`RENDERS` timed
   ones, the stores taking turns: the HTML's size (and gzipped, what a browser downloads),
   render time median and p99.
2. *Naive baseline*: the same covers embedded the usual folium way, ``folium.GeoJson(covers)``
   on a bare ``folium.Map``, built and rendered to HTML (``m.get_root().render()``) once, in a
   child process stopped after :data:`NAIVE_CAP_S` (reported as "> 60 s").
3. *Browser*: the store served by gunicorn as ``make run`` starts it (one worker, see
   :func:`bench.http_api.gunicorn`) and opened :data:`LOADS` times in headless Chromium, each
   time in a fresh context (empty cache, 1400x860, zh-CN) after one untimed load. *ready* is
   the wall time from ``page.goto`` until every operational layer has fetched and drawn its
   features for the first view (the browser tests' ready condition, :data:`READY`); DOMContentLoaded
   comes from the page's navigation timing. Playwright routes every request, aborting and
   counting any not to 127.0.0.1: there must be none. The first view shows the whole
   district, and the page asks for at most 10,000 features per layer and view (the API's
   ``MAX_LIMIT``): with 100,000 covers, 10,000 are fetched and drawn, the others matched
   but not sent.

How to read the ratios
----------------------
* *100k/1k* ("flat"): HTML size and median render time with 100,000 covers divided by the same
  with 1,000. About 1.0 means the page does not grow with a layer: operational layers are not
  in the page but fetched per view, so the size ratio should be exactly 1.0 and the time ratio
  differs from it only by noise.
* *naive/page*: what embedding the covers would cost divided by what the page costs. The naive
  map holds nothing but the covers, and its time is one build against the page's median, so
  the ratio understates what embedding would cost the real page. It also leaves out the
  browser's share (parsing megabytes of script, a marker per cover), which is not measured.
"""

from __future__ import annotations

import gzip
import multiprocessing
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import folium
import geopandas as gpd
import numpy as np
import shapely
from flask.testing import FlaskClient
from playwright.sync_api import Browser, Route, sync_playwright

from bench import http_api, timing
from bench.data import LAYER_ID, STORAGE_CRS
from bench.timing import NS_PER_MS, Stats
from data import demo_district
from geoapp.core.layers import Registry
from geoapp.store import create_store
from geoapp.web import create_app, service
from tests.browser.chromium import CHROMIUM, CHROMIUM_ARGS, READY

T = TypeVar("T")

SIZES = (1_000, 100_000)
RENDERS, QUICK_RENDERS = 30, 10
LOADS, QUICK_LOADS = 7, 3
NAIVE_CAP_S = 60
SETTINGS = {"GEOAPP_BASEMAP": "none"}  # no tiles: offline, and only the app's own work is timed
CODE_PREFIX = "4199010101"  # the demo's fictional admin code 419901, class 01, subclass 01: 6 digits left

VIEWPORT = {"width": 1400, "height": 860}
LOCALE = "zh-CN"
LOCAL = "http://127.0.0.1:"
AFTER_READY = """(layer) => {
  const covers = window.geoapp.state.layers[layer];
  const navigation = performance.getEntriesByType("navigation")[0];
  return {domContentLoaded: navigation.domContentLoadedEventEnd, drawn: covers.count, matched: covers.matched};
}"""
READY_TIMEOUT_MS = 60_000


@dataclass(frozen=True)
class PageResult:
    """``GET /`` on a store with ``size`` synthetic covers, beside embedding those covers with folium."""

    size: int
    html_bytes: int
    gzip_bytes: int
    render: Stats
    naive_bytes: int | None  # None: the naive map took longer than NAIVE_CAP_S
    naive_ms: float | None
    naive_size_ratio: float | None  # naive HTML bytes / page HTML bytes
    naive_time_ratio: float | None  # naive build and render (once) / page render median


@dataclass(frozen=True)
class BrowserResult:
    """The map page opened in headless Chromium until every layer is drawn."""

    size: int | None  # synthetic covers in the store; None: the demo district's own
    ready: Stats
    dom_content_loaded: Stats
    covers_drawn: int  # in the first view, which shows the whole district
    covers_matched: int
    outside_requests: int  # requests not to 127.0.0.1, all aborted; over every load, the untimed one too


@dataclass(frozen=True)
class Load:
    ready_ns: int
    dom_content_loaded_ms: float
    drawn: int
    matched: int
    outside: int


def run(
    registry: Registry, seed: int, renders: int, loads: int, progress: Callable[[str], None]
) -> tuple[list[PageResult], list[BrowserResult]]:
    """Every measurement of the module docstring, on stores written to a temporary folder."""
    demo = demo_district.build()
    bounds = tuple(demo["district_boundary"].total_bounds)
    covers = {size: synthetic_covers(bounds, size, seed) for size in SIZES}
    with tempfile.TemporaryDirectory(prefix="geoapp-bench-pages-") as tmp:
        folder = Path(tmp)
        progress(f"map page: GeoPackages of the demo district, as it is and with {' and '.join(map(label, SIZES))}")
        stores = {
            size: write_store(registry, folder / f"covers-{size}.gpkg", {**demo, LAYER_ID: covers[size]})
            for size in SIZES
        }
        demo_store = write_store(registry, folder / "demo.gpkg", demo)
        progress(f"map page: {renders} renders per store in process, then the naive embeddings")
        # the naive baseline forks, so it runs before Playwright starts its threads
        pages = measure_pages(stores, covers, renders)
        browsers = []
        with chromium() as browser:
            for size, path in ((None, demo_store), (SIZES[-1], stores[SIZES[-1]])):
                progress(f"map page in Chromium, {store_label(size)}: gunicorn, {loads} loads")
                log = folder / f"gunicorn-{size or 'demo'}.log"
                browsers.append(measure_browser(browser, path, size, loads, log))
    return pages, browsers


def label(size: int) -> str:
    return f"{size:,} covers"


def store_label(size: int | None) -> str:
    return "demo district" if size is None else f"demo + {label(size)}"


def flatness(pages: list[PageResult]) -> dict[str, Any] | None:
    """The largest size's HTML bytes and median render time over the smallest's: 1.0 is flat."""
    if len(pages) < 2:
        return None
    small, large = min(pages, key=lambda p: p.size), max(pages, key=lambda p: p.size)
    return {
        "sizes": [small.size, large.size],
        "html_ratio": large.html_bytes / small.html_bytes,
        "render_ratio": large.render.median_ms / small.render.median_ms,
    }


# -- data ----------------------------------------------------------------------------------------


def synthetic_covers(bounds: tuple[float, ...], n: int, seed: int) -> gpd.GeoDataFrame:
    """``n`` valid manhole covers uniform over the lon/lat ``bounds``, alike but for their code and place.

    Optional fields are left out (the store fills them with nulls): the page benchmark is about
    the number of features, not their content.
    """
    rng = np.random.default_rng([seed, n])
    minx, miny, maxx, maxy = bounds
    points = shapely.points(rng.uniform(minx, maxx, n), rng.uniform(miny, maxy, n))
    columns = {
        "code": [f"{CODE_PREFIX}{i:06d}" for i in range(n)],
        "kind": "storm",
        "defect": "none",
        "status": "fixed",
    }
    return gpd.GeoDataFrame(columns, geometry=gpd.GeoSeries(points, crs=STORAGE_CRS))


def write_store(registry: Registry, path: Path, data: dict[str, gpd.GeoDataFrame]) -> Path:
    create_store(registry, str(path), data, demo=True).close()
    return path


# -- server side: the page against the naive embedding --------------------------------------------


def measure_pages(stores: dict[int, Path], covers: dict[int, gpd.GeoDataFrame], renders: int) -> list[PageResult]:
    rendered = time_pages(list(stores.values()), renders)
    return [page_result(html, render, covers[size]) for size, (html, render) in zip(stores, rendered, strict=True)]


def page_result(html: bytes, render: Stats, covers: gpd.GeoDataFrame) -> PageResult:
    naive = capped(partial(naive_embedding, covers), NAIVE_CAP_S)
    naive_ms, naive_bytes = naive if naive else (None, None)
    return PageResult(
        size=len(covers),
        html_bytes=len(html),
        gzip_bytes=len(gzip.compress(html)),
        render=render,
        naive_bytes=naive_bytes,
        naive_ms=naive_ms,
        naive_size_ratio=naive_bytes / len(html) if naive_bytes else None,
        naive_time_ratio=naive_ms / render.median_ms if naive_ms else None,
    )


def time_pages(databases: list[Path], renders: int) -> list[tuple[bytes, Stats]]:
    """Each store's map page, and the latency of ``renders`` requests for it.

    The stores take turns, request by request, so that a busy spell on the machine weighs on all
    of them alike: the flat ratio compares them.
    """
    apps = [create_app({"GEOAPP_DATABASE": str(database), **SETTINGS}) for database in databases]
    try:
        clients = [app.test_client() for app in apps]
        # one untimed round first: it opens each store, builds its context layers and compiles the templates
        durations, bodies = timing.timed(_get_page, clients * renders, warmup=len(clients))
    finally:
        for app in apps:
            service(app).close()
    turns = len(clients)
    return [(bodies[i], Stats.of(durations[i::turns])) for i in range(turns)]


def _get_page(client: FlaskClient) -> bytes:
    response = client.get("/")
    if response.status_code != 200:
        raise RuntimeError(f"GET /: HTTP {response.status_code}: {response.data[:300]!r}")
    return response.data


def naive_embedding(covers: gpd.GeoDataFrame) -> tuple[float, int]:
    """Milliseconds to build and render a map embedding every cover, and its HTML bytes."""
    elapsed_ms, html = timing.once(lambda: naive_map(covers).get_root().render())
    return elapsed_ms, len(html.encode())


def naive_map(covers: gpd.GeoDataFrame) -> folium.Map:
    minx, miny, maxx, maxy = covers.total_bounds
    m = folium.Map(location=[(miny + maxy) / 2, (minx + maxx) / 2], zoom_start=14, tiles=None)
    folium.GeoJson(covers, name=LAYER_ID).add_to(m)
    return m


def capped(fn: Callable[[], T], limit_s: float) -> T | None:
    """``fn()`` run in a forked child process; None if it has not returned within ``limit_s``.

    A child, because a thread cannot be stopped: the naive baseline may run for minutes.
    """
    context = multiprocessing.get_context("fork")  # fork: the child inherits fn's data, nothing is pickled
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=lambda: sender.send(fn()), daemon=True)
    child.start()
    sender.close()  # only the child writes now, so a child dying unanswered reads as EOF, not as a wait
    try:
        if not receiver.poll(limit_s):
            child.kill()
            return None
        try:
            return receiver.recv()
        except EOFError:
            raise RuntimeError("the child process failed; its traceback is above") from None
    finally:
        child.join()
        receiver.close()


# -- browser --------------------------------------------------------------------------------------


@contextmanager
def chromium() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def measure_browser(browser: Browser, database: Path, size: int | None, loads: int, log: Path) -> BrowserResult:
    with http_api.gunicorn(database, log, **SETTINGS) as port:
        url = f"{LOCAL}{port}/"
        # untimed: the worker's first page (templates, translations) and the files' first reads
        first = load(browser, url)
        timed = [load(browser, url) for _ in range(loads)]
    return BrowserResult(
        size=size,
        ready=Stats.of([t.ready_ns for t in timed]),
        dom_content_loaded=Stats.of([round(t.dom_content_loaded_ms * NS_PER_MS) for t in timed]),
        covers_drawn=timed[-1].drawn,
        covers_matched=timed[-1].matched,
        outside_requests=first.outside + sum(t.outside for t in timed),
    )


def load(browser: Browser, url: str) -> Load:
    """Open ``url`` in a fresh context (empty cache) and wait until every layer has drawn its first view."""
    context = browser.new_context(locale=LOCALE, viewport=VIEWPORT)
    outside: list[str] = []
    context.route("**/*", lambda route: _local_only(route, outside))
    try:
        page = context.new_page()
        start = time.perf_counter_ns()
        # "commit": return as soon as the response starts; the ready condition is the wait, not the load event
        page.goto(url, wait_until="commit")
        page.wait_for_function(READY, timeout=READY_TIMEOUT_MS)
        ready_ns = time.perf_counter_ns() - start
        page.wait_for_load_state("domcontentloaded")  # so that navigation timing has the event's time
        facts = page.evaluate(AFTER_READY, LAYER_ID)
    finally:
        context.close()
    return Load(ready_ns, facts["domContentLoaded"], facts["drawn"], facts["matched"], len(outside))


def _local_only(route: Route, outside: list[str]) -> None:
    """Let requests to the app through; abort and record any other: the page must need none."""
    if route.request.url.startswith(LOCAL):
        route.continue_()
    else:
        outside.append(route.request.url)
        route.abort()
