"""The HTTP API on loopback: gunicorn serving a real GeoPackage, beside in-process baselines.

The server runs exactly as ``make run`` starts it (``gunicorn -c gunicorn.conf.py wsgi:app``, which
preloads the app and warms the engine before forking), with one worker. A client on one
keep-alive connection requests bounding boxes sized to hold about :data:`FEATURES` features.
"""

from __future__ import annotations

import http.client
import math
import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import orjson
import pandas as pd
import shapely

from bench import timing
from bench.data import LAYER_ID, LAYERS_DIR, METRIC_CRS, Area, square_bbox, store_input
from bench.inprocess import BruteForce
from bench.serving import free_port, gunicorn_command, stop
from bench.timing import Stats
from geoapp.config import PROJECT_ROOT
from geoapp.core.layers import Registry
from geoapp.core.query import MAX_LIMIT
from geoapp.store import create_store, open_store
from geoapp.store.memindex import Engine, Query

FEATURES = 300  # features per response that the API target speaks of
MAX_SIZE = 100_000  # the API target's size; create_store validates each feature, so 1M takes a minute to write
STARTUP_TIMEOUT_S = 120
WARMUP = 3


@dataclass(frozen=True)
class HttpResult:
    size: int
    box_side_m: float
    returned_mean: float
    cold: Stats  # first request for each bbox: every feature's JSON built on the way
    warm: Stats  # the same requests again: features' JSON come from the snapshot's cache
    engine: Stats  # in process, Engine.query alone
    rebuilt: Stats  # in process, Engine.query then gdf.iloc[positions].to_json() per request
    ratio: float  # rebuilt median / warm API median
    checked: int  # API answers compared with a brute-force bbox over the same features
    mismatches: int


def box_side_m(size: int, area: Area) -> float:
    """The side of a square holding about :data:`FEATURES` of ``size`` uniform points (at most half the area's)."""
    per_km2 = size / area.square_km2
    return min(1000 * math.sqrt(FEATURES / per_km2), area.side_m / 2)


def run_http(registry: Registry, area: Area, frame: gpd.GeoDataFrame, repeat: int, seed: int) -> HttpResult:
    """Serve ``frame`` from a fresh GeoPackage, time the API, then the in-process baselines on the same file."""
    side = box_side_m(len(frame), area)
    rng = np.random.default_rng([seed, len(frame), 2])
    boxes = [square_bbox(area, centre, side) for centre in area.uniform_points(rng, repeat, side / 2)]
    with tempfile.TemporaryDirectory(prefix="geoapp-bench-") as tmp:
        database = Path(tmp) / "bench.gpkg"
        create_store(registry, str(database), {LAYER_ID: store_input(frame)}, crs=METRIC_CRS).close()
        with gunicorn(database, Path(tmp) / "gunicorn.log") as port:
            cold, warm, bodies = measure_api(port, boxes)
        # after the server stopped, so that both do not compete for the two cores
        with closing(open_store(registry, str(database))) as store:
            engine = Engine(store)
            _check_as_stored(engine.snapshot(LAYER_ID).gdf, frame)
            engine_alone, rebuilt = measure_in_process(engine, boxes)
    brute = BruteForce(frame, area)
    expected = [frame.index[brute.bbox(bbox)].tolist() for bbox in boxes]
    returned = [_ids(body) for body in bodies]
    return HttpResult(
        size=len(frame),
        box_side_m=side,
        returned_mean=float(np.mean([len(ids) for ids in returned])),
        cold=cold,
        warm=warm,
        engine=engine_alone,
        rebuilt=rebuilt,
        ratio=rebuilt.median_ms / warm.median_ms,
        checked=len(boxes),
        mismatches=sum(got != want for got, want in zip(returned, expected, strict=True)),
    )


def _check_as_stored(stored: gpd.GeoDataFrame, frame: gpd.GeoDataFrame) -> None:
    """The in-process harness hands ``frame`` to the engine as if a store had read it: check one reads it so."""
    geometry = frame.geometry.name
    pd.testing.assert_frame_equal(_none_for_missing(stored.drop(columns=geometry)), frame.drop(columns=geometry))
    if not shapely.equals_exact(stored.geometry.array, frame.geometry.array, tolerance=0).all():
        raise AssertionError("the store returned other geometries than it was given")


def _none_for_missing(frame: pd.DataFrame) -> pd.DataFrame:
    # the store gives NaN for a missing string (pandas 3 infers its str dtype before the cast to object)
    return frame.where(frame.notna(), None)


def features_path(bbox: tuple[float, float, float, float]) -> str:
    # repr() round-trips each float, so the server parses exactly the box the in-process baseline uses
    return f"/api/layers/{LAYER_ID}/features?bbox={','.join(map(repr, bbox))}&limit={MAX_LIMIT}"


def measure_api(port: int, boxes: list[tuple[float, float, float, float]]) -> tuple[Stats, Stats, list[bytes]]:
    """Every box once cold, then once more warm; the warm bodies are returned for checking."""
    paths = [features_path(bbox) for bbox in boxes]
    with closing(Client(port)) as client:
        cold, _ = timing.each(client.get, paths)
        warm, bodies = timing.each(client.get, paths)
    return cold, warm, bodies


def measure_in_process(engine: Engine, boxes: list[tuple[float, float, float, float]]) -> tuple[Stats, Stats]:
    """The engine call alone, and with the selection serialised afresh per request."""
    queries = [Query(bbox=bbox) for bbox in boxes]
    engine.snapshot(LAYER_ID)  # load the layer from the file now, not in the first timed call
    alone, _ = timing.each(lambda q: engine.query(LAYER_ID, q), queries, WARMUP)
    rebuilt, _ = timing.each(lambda q: _rebuilt_json(engine, q), queries, WARMUP)
    return alone, rebuilt


def _rebuilt_json(engine: Engine, query: Query) -> str:
    result = engine.query(LAYER_ID, query)
    return result.snapshot.gdf.iloc[result.positions].to_json()


def _ids(body: bytes) -> list[int]:
    return [feature["id"] for feature in orjson.loads(body)["features"]]


class Client:
    """GETs on one keep-alive loopback connection, reading every body in full.

    ``http.client`` sends ``Accept-Encoding: identity``, so responses are not gzipped.
    """

    def __init__(self, port: int, timeout_s: float = 30):
        self._conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout_s)

    def get(self, path: str) -> bytes:
        self._conn.request("GET", path)
        response = self._conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"GET {path}: HTTP {response.status}: {body[:300]!r}")
        return body

    def close(self) -> None:
        self._conn.close()


@contextmanager
def gunicorn(database: Path, log: Path, **settings: str) -> Iterator[int]:
    """Serve ``database`` with one gunicorn worker on a free port; yield the port once it answers.

    ``settings`` are further ``GEOAPP_*`` environment variables, such as ``GEOAPP_BASEMAP``.
    """
    port = free_port()
    env = {
        **os.environ,
        "GEOAPP_DATABASE": str(database),
        "GEOAPP_LAYERS": str(LAYERS_DIR),
        "GEOAPP_WORKERS": "1",
        "PORT": str(port),
        **settings,
    }
    with open(log, "wb") as stderr:
        # its own session, so that stopping the process group ends the master and its worker
        proc = subprocess.Popen(
            gunicorn_command(),
            cwd=PROJECT_ROOT,
            env=env,
            stdout=subprocess.DEVNULL,  # the access log: one line per request
            stderr=stderr,
            start_new_session=True,
        )
        try:
            _wait_ready(proc, port, log)
            yield port
        finally:
            stop(proc)


def _wait_ready(proc: subprocess.Popen, port: int, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {proc.returncode}:\n{log.read_text(errors='replace')[-2000:]}")
        try:
            with closing(Client(port, timeout_s=5)) as client:
                client.get("/api/layers")
            return
        except OSError:  # not listening yet
            time.sleep(0.1)
    raise RuntimeError(f"gunicorn did not answer within {STARTUP_TIMEOUT_S} s:\n{log.read_text(errors='replace')}")
