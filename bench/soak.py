"""Flood readings under a steady load: ``python -m bench soak [--minutes 5] [--backends gpkg,postgis]``.

What is measured
----------------
For each backend a store of the demo district is made as an operator makes one
(``flask --app wsgi geoapp init --demo``): a GeoPackage file in a temporary folder, or a database on
a private PostgreSQL cluster of ``scripts/pgcluster.py`` under ``build/pg-soak`` (started and
stopped by this run; ``--postgis-url`` names an empty database to use instead). Two tokens are made
with ``geoapp token add``: one of role ``sensor`` for every sensor, one ``viewer`` for the board's
pollers and the final count. gunicorn serves the store as ``make run`` does (``gunicorn.conf.py``,
:data:`WORKERS` workers of 4 threads) on a free loopback port.

- *Sensors* (``--sensors``, 50): each is bound to one monitored feature (the features of
  ``waterlogging_points``, ``underpass_culverts``, ``underground_spaces`` and ``rain_gauges`` as
  ``/api/layers/<layer>/features`` lists them, the layers taking turns) and names itself in
  ``source``. Every ``--interval`` seconds (2) it POSTs ``/api/readings`` on a fixed schedule (open
  loop: a sensor held up by a slow answer sends what it owes at once): one reading observed at that
  moment (``depth_cm``, or ``rain_mm`` for a gauge, times with +08:00), or one post in
  :data:`BATCH_EVERY` a batch of 2-4 readings, the extra ones observed a fraction of an interval
  earlier. A post that timed out (:data:`POST_TIMEOUT_S`), failed on the connection or was answered
  503 is sent again with the same body (what idempotency is for) until answered, for at most
  :data:`RETRY_FOR_S` s. One post in 20 (``RESEND_SHARE``) is sent once more after its 201, as a
  sensor does that lost the answer: that answer must say ``stored: 0`` and every reading a duplicate.
- *Pollers* (``--pollers``, 20): the board's live data, ``GET /api/flood/live`` with the ETag of the
  last 200 in ``If-None-Match``, 2-5 s after the previous answer (uniform, as the board polls);
  200s and 304s are counted.
- *The count*: when the last sensor is answered, each sensor's feature is read back with
  ``GET /api/readings?layer=&feature_id=&kind=&since=&until=`` over the run (a window answered
  downsampled is split until it is not), and the observation times stored are compared with the
  ones the server acknowledged: *lost* is a reading acknowledged but not stored, *doubled* a stored
  row more than one per reading. What the feature held in that window before the run is left out.
  The rows of ``geoapp_readings`` are also counted in the store itself (sqlite3 on the GeoPackage,
  psycopg on the database), before and after.

The run exits 1 if a reading was lost or doubled, any answer was a 5xx, a post was refused (4xx) or
never answered, or a resend was not answered as all duplicates. Latencies are from sending a post's
first attempt (retries included) or a poll to the last byte of its answer, as medians and p99
(``perf_counter_ns``); the clients run in this process, on the same cores as the server. Results are
printed and written to ``bench/results/soak.json`` and ``soak.txt`` (or ``--output``).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import http.client
import math
import os
import random
import secrets
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import orjson

from bench.serving import Instance, connection, git_commit, run_parallel
from bench.tables import count, duration, table
from bench.timing import Stats
from geoapp.config import PROJECT_ROOT

SENSORS = 50
POLLERS = 20
MINUTES = 5.0
INTERVAL_S = 2.0
POLL_EVERY_S = (2.0, 5.0)  # the board asks again this long after an answer (uniform)
BATCH_EVERY = 10  # one post in this many is a batch
BATCH_SIZES = (2, 3, 4)
RESEND_SHARE = 0.05  # posts sent once more after their 201
POST_TIMEOUT_S = 10.0
POLL_TIMEOUT_S = 30.0
RETRY_FOR_S = 60.0  # a post is sent again for at most this long after its first attempt
WINDOW_SLACK_S = 60.0  # the readings' window reaches this far past the last post due
RETRY_WAIT_S = (0.25, 4.0)  # first wait before a retry, doubling up to the second (or Retry-After, capped)
REUSE_S = 1.0  # a connection idle longer is not reused: gunicorn closes idle keep-alive ones after 2 s
WORKERS = 2  # make run's default (GEOAPP_WORKERS)
LAYERS = {  # monitored layers and the reading kind each takes
    "waterlogging_points": "depth_cm",
    "underpass_culverts": "depth_cm",
    "underground_spaces": "depth_cm",
    "rain_gauges": "rain_mm",
}
CST = dt.timezone(dt.timedelta(hours=8))  # sensors report local time: the API must take any offset
SEED = 20261202
FLASK = Path(sys.executable).with_name("flask")
LAYERS_DIR = PROJECT_ROOT / "layers"
PG_FOLDER = PROJECT_ROOT / "build" / "pg-soak"  # its own cluster: stopping a shared one would end another's run
RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_OUTPUT = RESULTS / "soak.json"
ERRORS_KEPT = 10  # messages kept per kind of problem


# -- settings and results --------------------------------------------------------------------------


@dataclass
class Settings:
    minutes: float = MINUTES
    sensors: int = SENSORS
    pollers: int = POLLERS
    interval_s: float = INTERVAL_S
    backends: tuple[str, ...] = ("gpkg", "postgis")
    postgis_url: str | None = None  # an empty database to use instead of a private cluster's
    seed: int = SEED


@dataclass(frozen=True)
class Sensor:
    index: int
    source: str
    layer: str
    fid: int
    kind: str


@dataclass
class SensorLog:
    """What one sensor sent and was told."""

    sensor: Sensor
    posts: int = 0  # posts answered 201 (resends not included)
    batches: int = 0
    acknowledged: dict[int, float] = field(default_factory=dict)  # observed_at (ms since epoch) -> value
    undelivered: dict[int, float] = field(default_factory=dict)  # readings of posts never answered 201
    latencies_ns: list[int] = field(default_factory=list)  # every post answered 201, resends included
    said_stored: int = 0  # the 201s' "stored", originals (with their retries)
    said_duplicates: int = 0
    retries: Counter = field(default_factory=Counter)  # cause -> attempts sent again
    resends: int = 0
    resends_all_duplicate: int = 0
    statuses: Counter = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)


@dataclass
class PollLog:
    latencies_ns: list[int] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    failures: int = 0  # no answer (timeout, connection)
    errors: list[str] = field(default_factory=list)


@dataclass
class Stored:
    """The readings of the sensors' features found in the store after the run, against what was acknowledged."""

    sent: int = 0  # distinct readings acknowledged
    stored: int = 0  # rows the API lists in the run's window, less what was there before
    lost: int = 0
    doubled: int = 0
    stored_unacknowledged: int = 0  # rows of readings whose post was never answered 201 (not counted as doubled)
    unexpected: int = 0  # rows at a time no sensor sent (also counted in doubled)
    values_differ: int = 0
    before: int = 0  # rows already in the window before the run
    windows: int = 0  # GET /api/readings asked
    split: int = 0  # windows answered downsampled, asked again in halves
    count_mismatch: int = 0  # answers whose count was not the number of points given
    table_before: int | None = None  # rows of geoapp_readings in the store itself
    table_after: int | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def table_added(self) -> int | None:
        if self.table_before is None or self.table_after is None:
            return None
        return self.table_after - self.table_before


@dataclass
class BackendResult:
    backend: str
    sensors: int = 0
    pollers: int = 0
    features: dict[str, int] = field(default_factory=dict)  # layer -> sensors bound to its features
    duration_s: float = 0.0  # first post due to the last sensor done
    posts: int = 0
    batches: int = 0
    post: Stats | None = None
    post_max_ms: float | None = None
    retries: dict[str, int] = field(default_factory=dict)
    resends: int = 0
    resends_all_duplicate: int = 0
    said_stored: int = 0
    said_duplicates: int = 0
    undelivered: int = 0
    refused: int = 0  # posts answered 4xx
    polls: int = 0
    polls_200: int = 0
    polls_304: int = 0
    poll: Stats | None = None
    poll_max_ms: float | None = None
    poll_failures: int = 0
    at_rest: int | None = None  # the status of a poll with the ETag just given, after the sensors stopped (304)
    statuses: dict[str, int] = field(default_factory=dict)  # "POST 201" ... -> answers
    server_5xx: int = 0
    stored: Stored = field(default_factory=Stored)
    server_log_errors: int = 0  # tracebacks and [ERROR] lines in gunicorn's log
    startup_s: float | None = None
    uncommitted: list[str] = field(default_factory=list)  # geoapp's files changed from the commit at the start
    init_s: float | None = None
    load: list[float] = field(default_factory=list)  # 1-minute load average before and after
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def share_304(self) -> float | None:
        answered = self.polls_200 + self.polls_304
        return self.polls_304 / answered if answered else None

    @property
    def failed(self) -> list[str]:
        """Why this backend's run fails, if it does."""
        s = self.stored
        reasons = [
            f"{s.lost} readings lost" if s.lost else "",
            f"{s.doubled} readings doubled" if s.doubled else "",
            f"{self.server_5xx} answers 5xx" if self.server_5xx else "",
            f"{self.undelivered} readings never acknowledged" if self.undelivered else "",
            f"{self.refused} posts refused" if self.refused else "",
            f"{self.resends - self.resends_all_duplicate} resends not answered as duplicates"
            if self.resends != self.resends_all_duplicate
            else "",
            f"{self.poll_failures} polls unanswered" if self.poll_failures else "",
            f"{self.polls - self.polls_200 - self.polls_304 - self.poll_failures} polls answered neither 200 nor 304"
            if self.polls - self.polls_200 - self.polls_304 - self.poll_failures
            else "",
            "no reading sent" if not s.sent else "",
            f"{s.table_added - s.stored} rows added to geoapp_readings outside the sensors' series"
            if s.table_added is not None and s.table_added != s.stored
            else "",
        ]
        return [r for r in reasons if r]


# -- HTTP ------------------------------------------------------------------------------------------


class Link:
    """Requests to the server on a keep-alive connection that is reused only while fresh: gunicorn closes one
    idle for 2 s, and a request sent just as it does fails without an answer (a sensor posting every 2 s would
    meet that race all the time). Any failure closes the connection; the next request opens another."""

    def __init__(self, port: int, timeout_s: float):
        self.port = port
        self.timeout_s = timeout_s
        self._conn: http.client.HTTPConnection | None = None
        self._used = 0.0

    def request(
        self, method: str, path: str, body: bytes | None, headers: dict[str, str]
    ) -> tuple[int, http.client.HTTPResponse, bytes]:
        if self._conn is not None and time.monotonic() - self._used > REUSE_S:
            self.close()
        if self._conn is None:
            self._conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout_s)
        try:
            self._conn.request(method, path, body=body, headers=headers)
            response = self._conn.getresponse()
            data = response.read()
        except BaseException:
            self.close()
            raise
        self._used = time.monotonic()
        if response.will_close:
            self.close()
        return response.status, response, data

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def get_json(port: int, path: str, token: str) -> Any:
    with connection(port, POLL_TIMEOUT_S) as client:
        status, data, _ = client.request("GET", path, headers={"Authorization": f"Bearer {token}"})
    if status != 200:
        raise RuntimeError(f"GET {path}: HTTP {status}: {data[:300]!r}")
    return orjson.loads(data)


def _short(data: bytes) -> str:
    return data[:200].decode(errors="replace")


# -- the sensors -----------------------------------------------------------------------------------


def iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, tz=CST).isoformat(timespec="milliseconds")


def epoch_ms(text: str) -> int:
    return round(dt.datetime.fromisoformat(text).timestamp() * 1000)


def is_batch(sensor: Sensor, j: int) -> bool:
    return (j + sensor.index) % BATCH_EVERY == 0


def is_resent(sensor: Sensor, j: int, sensors: int) -> bool:
    """One post in 1/RESEND_SHARE, each sensor at its own phase (so a short run resends some posts too)."""
    phase = (sensor.index + 0.5) / sensors
    return math.floor((j + 1) * RESEND_SHARE + phase) > math.floor(j * RESEND_SHARE + phase)


def readings_of(sensor: Sensor, j: int, observed_ms: int, interval_ms: int, rng: random.Random) -> list[dict]:
    """The post ``j`` of a sensor: its reading at ``observed_ms`` and, for a batch, earlier ones within the
    interval (never at the time of another post's reading)."""
    n = BATCH_SIZES[(j // BATCH_EVERY + sensor.index) % len(BATCH_SIZES)] if is_batch(sensor, j) else 1
    step = interval_ms // (max(BATCH_SIZES) + 1)
    out = []
    for k in reversed(range(n)):
        value = round(rng.uniform(0, 5), 1) if sensor.kind == "rain_mm" else round(rng.uniform(0, 40), 1)
        out.append(
            {
                "layer": sensor.layer,
                "feature_id": sensor.fid,
                "kind": sensor.kind,
                "value": value,
                "observed_at": iso(observed_ms - k * step),
                "source": sensor.source,
            }
        )
    return out


class Poster:
    """One sensor's posts: sent until answered, retried with the same body on a timeout, a failed connection or
    a 503."""

    def __init__(self, port: int, token: str, log: SensorLog):
        self.link = Link(port, POST_TIMEOUT_S)
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self.log = log

    def post(self, body: bytes) -> dict | None:
        """The 201's JSON, or None if the post was refused or never answered."""
        log = self.log
        first = time.perf_counter_ns()
        give_up = time.monotonic() + RETRY_FOR_S
        wait = RETRY_WAIT_S[0]
        while True:
            try:
                status, response, data = self.link.request("POST", "/api/readings", body, self.headers)
            except TimeoutError:
                cause = "timeout"
            except (OSError, http.client.HTTPException) as error:
                cause = f"connection ({type(error).__name__})"
            else:
                log.statuses[f"POST {status}"] += 1
                if status == 201:
                    log.latencies_ns.append(time.perf_counter_ns() - first)
                    return orjson.loads(data)
                if status != 503:
                    if len(log.errors) < ERRORS_KEPT:
                        log.errors.append(f"{log.sensor.source}: POST HTTP {status}: {_short(data)}")
                    return None
                cause = "503"
                after = response.getheader("Retry-After")
                if after and after.isdigit():
                    wait = min(float(after), RETRY_WAIT_S[1])
            log.retries[cause] += 1
            if time.monotonic() + wait > give_up:
                if len(log.errors) < ERRORS_KEPT:
                    log.errors.append(f"{log.sensor.source}: gave up a post after {RETRY_FOR_S:.0f} s ({cause})")
                return None
            time.sleep(wait)
            wait = min(wait * 2, RETRY_WAIT_S[1])

    def close(self) -> None:
        self.link.close()


def run_sensor(
    log: SensorLog, port: int, token: str, settings: Settings, start_ns: int, start_ms: int, end_ns: int
) -> None:
    sensor = log.sensor
    rng = random.Random(f"{settings.seed}-{sensor.index}")
    interval_ns = round(settings.interval_s * 1e9)
    offset_ns = sensor.index * interval_ns // settings.sensors  # the sensors' posts spread over an interval
    poster = Poster(port, token, log)
    try:
        j = 0
        while (due := start_ns + offset_ns + j * interval_ns) < end_ns:
            ahead = due - time.perf_counter_ns()
            if ahead > 0:
                time.sleep(ahead / 1e9)
            observed = start_ms + (offset_ns + j * interval_ns) // 1_000_000
            readings = readings_of(sensor, j, observed, interval_ns // 1_000_000, rng)
            body = orjson.dumps(readings[0] if len(readings) == 1 else {"readings": readings})
            answer = poster.post(body)
            values = {epoch_ms(r["observed_at"]): r["value"] for r in readings}
            if answer is None:
                log.undelivered.update(values)
            else:
                log.posts += 1
                log.batches += len(readings) > 1
                log.acknowledged.update(values)
                log.said_stored += int(answer.get("stored", 0))
                log.said_duplicates += int(answer.get("duplicates", 0))
                if is_resent(sensor, j, settings.sensors):
                    log.resends += 1
                    again = poster.post(body)
                    if again is not None and (again.get("stored"), again.get("duplicates")) == (0, len(readings)):
                        log.resends_all_duplicate += 1
                    elif len(log.errors) < ERRORS_KEPT:
                        log.errors.append(f"{sensor.source}: resend of {len(readings)} answered {again}")
            j += 1
    finally:
        poster.close()


# -- the board -------------------------------------------------------------------------------------


def run_poller(i: int, log: PollLog, port: int, token: str, settings: Settings, end: float) -> None:
    rng = random.Random(f"{settings.seed}-poller-{i}")
    link = Link(port, POLL_TIMEOUT_S)
    etag: str | None = None
    low, high = POLL_EVERY_S
    due = time.monotonic() + rng.uniform(0, high)  # the boards were opened at different times
    try:
        while due < end:
            time.sleep(max(0.0, due - time.monotonic()))
            headers = {"Authorization": f"Bearer {token}"}
            if etag:
                headers["If-None-Match"] = etag
            start = time.perf_counter_ns()
            try:
                status, response, data = link.request("GET", "/api/flood/live", None, headers)
            except (OSError, http.client.HTTPException) as error:
                log.failures += 1
                if len(log.errors) < ERRORS_KEPT:
                    log.errors.append(f"poller {i}: no answer ({type(error).__name__}: {error})")
            else:
                log.latencies_ns.append(time.perf_counter_ns() - start)
                log.statuses[f"GET {status}"] += 1
                if status == 200:
                    etag = response.getheader("ETag") or etag
                    live = orjson.loads(data)
                    if not isinstance(live.get("features"), list) and len(log.errors) < ERRORS_KEPT:
                        log.errors.append(f"poller {i}: a 200 without features: {_short(data)}")
                elif status != 304 and len(log.errors) < ERRORS_KEPT:
                    log.errors.append(f"poller {i}: HTTP {status}: {_short(data)}")
            due = time.monotonic() + rng.uniform(low, high)
    finally:
        link.close()


def poll_at_rest(port: int, token: str) -> int:
    """A poll, then one more with its ETag while no reading arrives: the status of the second (304 if the
    ETag works)."""
    link = Link(port, POLL_TIMEOUT_S)
    headers = {"Authorization": f"Bearer {token}"}
    try:
        status, response, _ = link.request("GET", "/api/flood/live", None, headers)
        etag = response.getheader("ETag")
        if status != 200 or not etag:
            return status
        return link.request("GET", "/api/flood/live", None, {**headers, "If-None-Match": etag})[0]
    finally:
        link.close()


# -- the store -------------------------------------------------------------------------------------


class Store:
    """Where a backend's store goes: a GeoPackage file, or a new database (on a private cluster unless a URL is
    given), made by ``geoapp init --demo``."""

    def __init__(self, backend: str, folder: Path, settings: Settings):
        self.backend = backend
        self.admin: str | None = None
        self.started_cluster = False
        self.dropped = False
        if backend == "gpkg":
            self.location = str(folder / "soak.gpkg")
        elif settings.postgis_url:
            self.location = settings.postgis_url
        else:
            from scripts import pgcluster

            self.started_cluster = pgcluster.url(PG_FOLDER) is None
            self.admin = pgcluster.start(PG_FOLDER)
            name = f"soak_{uuid.uuid4().hex[:12]}"
            self._sql(self.admin, f'CREATE DATABASE "{name}"')
            self.location = urlunsplit(urlsplit(self.admin)._replace(path=f"/{name}"))
            self._sql(self.location, "CREATE EXTENSION IF NOT EXISTS postgis")

    @staticmethod
    def _sql(url: str, *statements: str) -> list[tuple]:
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            rows: list[tuple] = []
            for statement in statements:
                cur = conn.execute(statement)
                rows = cur.fetchall() if cur.description else []
            return rows

    def readings_rows(self) -> int | None:
        """Rows of ``geoapp_readings``, counted in the store itself (None if it has no such table)."""
        if self.backend == "gpkg":
            conn = sqlite3.connect(f"file:{self.location}?mode=ro", uri=True, timeout=30)
            try:
                return conn.execute("SELECT count(*) FROM geoapp_readings").fetchone()[0]
            except sqlite3.OperationalError:
                return None
            finally:
                conn.close()
        import psycopg

        try:
            return self._sql(self.location, "SELECT count(*) FROM geoapp_readings")[0][0]
        except psycopg.errors.UndefinedTable:
            return None

    def close(self) -> None:
        """Drop the database and stop the cluster if this run made them."""
        if self.admin is not None:
            name = urlsplit(self.location).path.lstrip("/")
            self._sql(self.admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            if self.started_cluster:
                from scripts import pgcluster

                pgcluster.stop(PG_FOLDER)


def geoapp(env: dict[str, str], *args: str) -> str:
    """``flask --app wsgi geoapp ARGS`` on the store of ``env``; its standard output."""
    out = subprocess.run(
        [str(FLASK), "--app", "wsgi", "geoapp", *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if out.returncode != 0:
        raise RuntimeError(f"geoapp {' '.join(args)} failed:\n{out.stderr[-2000:]}")
    return out.stdout


def uncommitted() -> list[str]:
    """geoapp's files that differ from the commit as a server starts: the tree is shared, and the working copy
    is what runs."""
    out = subprocess.run(
        ["git", "status", "--short", "--", "geoapp", "gunicorn.conf.py", "wsgi.py"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
    )
    return out.stdout.splitlines() if out.returncode == 0 else []


def add_token(env: dict[str, str], name: str, role: str) -> str:
    return geoapp(env, "token", "add", name, "--role", role).split()[0]


def monitored(port: int, token: str) -> dict[str, list[int]]:
    """The monitored layers this store has and their feature ids."""
    present = {layer["id"] for layer in get_json(port, "/api/layers", token)["layers"]}
    out = {}
    for layer in LAYERS:
        if layer in present:
            collection = get_json(port, f"/api/layers/{layer}/features?limit=10000", token)
            out[layer] = sorted(f["id"] for f in collection["features"])
    return out


def bind(features: dict[str, list[int]], n: int) -> list[Sensor]:
    """``n`` sensors, each on one feature, the layers taking turns (a feature gets a second sensor only when
    every feature has one)."""
    order: list[tuple[str, int]] = []
    queues = {layer: list(fids) for layer, fids in features.items() if fids}
    while queues:
        for layer in list(queues):
            order.append((layer, queues[layer].pop(0)))
            if not queues[layer]:
                del queues[layer]
    if not order:
        raise RuntimeError(f"the store has no features in {', '.join(LAYERS)}")
    return [
        Sensor(i, f"soak-sensor-{i:03d}", layer, fid, LAYERS[layer])
        for i, (layer, fid) in ((i, order[i % len(order)]) for i in range(n))
    ]


def stored_points(
    port: int,
    token: str,
    key: tuple[str, int, str],
    window: tuple[int, int],
    s: Stored | None = None,
    avoid: frozenset[int] = frozenset(),
) -> list[tuple[int, float]]:
    """Every (observed_at ms, value) the API lists for a feature and kind in the window, splitting a window
    answered downsampled in halves at a millisecond no reading sent has (``avoid``), so that it makes no
    difference whether the API's ``until`` includes its instant."""
    layer, fid, kind = key
    since_ms, until_ms = window
    query = urlencode({"layer": layer, "feature_id": fid, "kind": kind, "since": iso(since_ms), "until": iso(until_ms)})
    answer = get_json(port, f"/api/readings?{query}", token)
    if s is not None:
        s.windows += 1
    if answer.get("downsampled"):
        middle = (since_ms + until_ms) // 2
        while middle in avoid:
            middle += 1
        if not since_ms < middle < until_ms:
            raise RuntimeError(f"/api/readings?{query} is downsampled over a window too short to split")
        if s is not None:
            s.split += 1
        return stored_points(port, token, key, (since_ms, middle), s, avoid) + stored_points(
            port, token, key, (middle, until_ms), s, avoid
        )
    points = [(epoch_ms(t), float(v)) for t, v in answer["points"]]
    if s is not None and answer.get("count") != len(points):
        s.count_mismatch += 1
        if len(s.notes) < ERRORS_KEPT:
            s.notes.append(f"/api/readings?{query}: count {answer.get('count')} for {len(points)} points")
    return points


def count_stored(
    port: int,
    token: str,
    logs: Sequence[SensorLog],
    window: tuple[int, int],
    before: dict[tuple[str, int, str], Counter],
    s: Stored,
) -> None:
    """Compare what the API lists for each sensor's feature with what its sensors were told was stored."""
    by_feature: dict[tuple[str, int, str], list[SensorLog]] = {}
    for log in logs:
        by_feature.setdefault((log.sensor.layer, log.sensor.fid, log.sensor.kind), []).append(log)
    for key, group in by_feature.items():
        expected = Counter(t for log in group for t in log.acknowledged)
        unacknowledged = Counter(t for log in group for t in log.undelivered)
        values = {t: v for log in group for t, v in log.acknowledged.items()}
        points = stored_points(port, token, key, window, s, frozenset(expected) | frozenset(unacknowledged))
        found = Counter(t for t, _ in points) - before[key]
        s.sent += sum(expected.values())
        s.stored += sum(found.values())
        s.lost += sum((expected - found).values())
        extra = found - expected
        late = extra & unacknowledged  # a post that was stored though its answer never came
        s.stored_unacknowledged += sum(late.values())
        extra -= late
        s.doubled += sum(extra.values())
        s.unexpected += sum(n for t, n in extra.items() if t not in expected)
        if len(group) == 1:
            s.values_differ += sum(1 for t, v in points if t in values and abs(v - values[t]) > 1e-9)


# -- one backend -----------------------------------------------------------------------------------


def measure_backend(backend: str, settings: Settings, folder: Path, progress: Callable[[str], None]) -> BackendResult:
    result = BackendResult(backend=backend, sensors=settings.sensors, pollers=settings.pollers)
    result.load.append(os.getloadavg()[0])
    store = Store(backend, folder, settings)
    try:
        env = {
            **os.environ,
            "GEOAPP_DATABASE": store.location,
            "GEOAPP_LAYERS": str(LAYERS_DIR),
            "GEOAPP_SECRET_KEY": secrets.token_hex(16),  # every worker alike, nothing written to instance/
        }
        progress(f"soak, {backend}: geoapp init --demo")
        started = time.perf_counter()
        geoapp(env, "init", "--demo")
        result.init_s = time.perf_counter() - started
        sensor_token = add_token(env, "soak-sensors", "sensor")
        board_token = add_token(env, "soak-board", "viewer")
        server = Instance(f"soak-{backend}", env, folder / f"gunicorn-{backend}.log", workers=WORKERS)
        try:
            progress(f"soak, {backend}: gunicorn, {WORKERS} workers")
            result.uncommitted = uncommitted()
            result.startup_s = server.start()
            run_load(result, server, store, settings, sensor_token, board_token, progress)
        finally:
            server.stop()
            log = server.log.read_text(errors="replace") if server.log.exists() else ""
            result.server_log_errors = sum(
                1 for line in log.splitlines() if line.startswith("Traceback") or "[ERROR]" in line
            )
            if result.server_log_errors:
                result.notes.append(f"gunicorn's log has {result.server_log_errors} errors; its end:\n{log[-1500:]}")
    finally:
        store.close()
    result.load.append(os.getloadavg()[0])
    return result


def run_load(
    result: BackendResult,
    server: Instance,
    store: Store,
    settings: Settings,
    sensor_token: str,
    board_token: str,
    progress: Callable[[str], None],
) -> None:
    port = server.port
    features = monitored(port, board_token)
    missing = [layer for layer in LAYERS if not features.get(layer)]
    if missing:
        result.notes.append(f"no features in {', '.join(missing)}: no sensor on them")
    sensors = bind(features, settings.sensors)
    result.features = dict(Counter(s.layer for s in sensors))
    logs = [SensorLog(s) for s in sensors]
    polls = [PollLog() for _ in range(settings.pollers)]

    seconds = settings.minutes * 60
    lead_s = 1.0  # the threads start this long before the first post is due
    interval_ms = round(settings.interval_s * 1000)
    # the run's window for /api/readings: from before a batch's earliest reading to well after the last post,
    # the same before the run (what the features held already is left out) and after it
    now_ms = round(time.time() * 1000)
    window = (now_ms - 2 * interval_ms, now_ms + round((lead_s + seconds + WINDOW_SLACK_S) * 1000))
    keys = {(s.layer, s.fid, s.kind) for s in sensors}
    before = {key: Counter(t for t, _ in stored_points(port, board_token, key, window)) for key in keys}
    result.stored.before = sum(sum(c.values()) for c in before.values())
    result.stored.table_before = store.readings_rows()
    if result.stored.table_before is None:
        result.stored.notes.append("the store has no table geoapp_readings")
    start_wall_ms = round((time.time() + lead_s) * 1000)
    start_ns = time.perf_counter_ns() + round(lead_s * 1e9)
    end_ns = start_ns + round(seconds * 1e9)
    if start_wall_ms + round(seconds * 1000) > window[1]:
        raise RuntimeError(f"reading back what the features held took more than {WINDOW_SLACK_S:.0f} s")
    progress(
        f"soak, {result.backend}: {settings.sensors} sensors every {settings.interval_s:g} s and "
        f"{settings.pollers} pollers for {seconds:.0f} s"
    )
    end_monotonic = time.monotonic() + lead_s + seconds
    tasks: list[Callable[[], None]] = [
        lambda log=log: run_sensor(log, port, sensor_token, settings, start_ns, start_wall_ms, end_ns) for log in logs
    ]
    tasks += [
        lambda i=i, log=log: run_poller(i, log, port, board_token, settings, end_monotonic)
        for i, log in enumerate(polls)
    ]
    run_parallel(tasks)
    result.duration_s = (time.perf_counter_ns() - start_ns) / 1e9

    result.at_rest = poll_at_rest(port, board_token)
    progress(f"soak, {result.backend}: counting what was stored")
    count_stored(port, board_token, logs, window, before, result.stored)
    result.stored.table_after = store.readings_rows()

    statuses: Counter = Counter()
    retries: Counter = Counter()
    post_ns: list[int] = []
    for log in logs:
        statuses.update(log.statuses)
        retries.update(log.retries)
        post_ns += log.latencies_ns
        result.posts += log.posts
        result.batches += log.batches
        result.resends += log.resends
        result.resends_all_duplicate += log.resends_all_duplicate
        result.said_stored += log.said_stored
        result.said_duplicates += log.said_duplicates
        result.undelivered += len(log.undelivered)
        result.errors += log.errors[: max(0, ERRORS_KEPT - len(result.errors))]
    poll_ns: list[int] = []
    for log in polls:
        statuses.update(log.statuses)
        poll_ns += log.latencies_ns
        result.poll_failures += log.failures
        result.errors += log.errors[: max(0, ERRORS_KEPT - len(result.errors))]
    result.statuses = dict(sorted(statuses.items()))
    result.retries = dict(retries)
    result.refused = sum(n for k, n in statuses.items() if k.startswith("POST 4"))
    result.server_5xx = sum(n for k, n in statuses.items() if k.split()[1].startswith("5"))
    result.polls = sum(n for k, n in statuses.items() if k.startswith("GET ")) + result.poll_failures
    result.polls_200 = statuses.get("GET 200", 0)
    result.polls_304 = statuses.get("GET 304", 0)
    result.post = Stats.of(post_ns) if post_ns else None
    result.poll = Stats.of(poll_ns) if poll_ns else None
    result.post_max_ms = max(post_ns) / 1e6 if post_ns else None
    result.poll_max_ms = max(poll_ns) / 1e6 if poll_ns else None


# -- report ----------------------------------------------------------------------------------------


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f} %"


def _retries(r: BackendResult) -> str:
    return ", ".join(f"{n} {cause}" for cause, n in sorted(r.retries.items())) or "0"


def rows(results: Sequence[BackendResult]) -> list[list[str]]:
    """figure, then one column per backend."""

    def row(label: str, value: Callable[[BackendResult], str]) -> list[str]:
        return [label, *(value(r) for r in results)]

    def stat(stats: Stats | None, which: str) -> str:
        return "-" if stats is None else duration(getattr(stats, which))

    def added(r: BackendResult) -> str:
        return "-" if r.stored.table_added is None else count(r.stored.table_added)

    return [
        row("sensors / pollers", lambda r: f"{r.sensors} / {r.pollers}"),
        row("posts sent (answered 201)", lambda r: count(r.posts)),
        row("  of them batches", lambda r: count(r.batches)),
        row("post latency p50", lambda r: stat(r.post, "median_ms")),
        row("post latency p99", lambda r: stat(r.post, "p99_ms")),
        row("retries (same body)", _retries),
        row("resends after a 201", lambda r: count(r.resends)),
        row("  answered all duplicates", lambda r: count(r.resends_all_duplicate)),
        row("polls", lambda r: count(r.polls)),
        row("304 share", lambda r: _share(r.share_304)),
        row("poll latency p50", lambda r: stat(r.poll, "median_ms")),
        row("poll latency p99", lambda r: stat(r.poll, "p99_ms")),
        row("poll with its ETag at rest", lambda r: "-" if r.at_rest is None else f"HTTP {r.at_rest}"),
        row("readings sent", lambda r: count(r.stored.sent)),
        row("readings stored", lambda r: count(r.stored.stored)),
        row("readings lost", lambda r: count(r.stored.lost)),
        row("readings doubled", lambda r: count(r.stored.doubled)),
        row("rows added to geoapp_readings", added),
        row("server said stored / duplicates", lambda r: f"{count(r.said_stored)} / {count(r.said_duplicates)}"),
        row("never acknowledged", lambda r: count(r.undelivered)),
        row("5xx answers", lambda r: count(r.server_5xx)),
        row("result", lambda r: "FAIL" if r.failed else "PASS"),
    ]


def render(results: Sequence[BackendResult], settings: Settings, meta: dict[str, Any]) -> str:
    head = (
        f"Soak: flood readings, commit {meta['commit']}, {meta['cpus']} CPUs, started {meta['started_at']}\n"
        f"{settings.sensors} sensors posting every {settings.interval_s:g} s (1 post in {BATCH_EVERY} a batch of "
        f"{BATCH_SIZES[0]}-{BATCH_SIZES[-1]}, {RESEND_SHARE:.0%} sent again after the 201) and {settings.pollers} "
        f"pollers of /api/flood/live (If-None-Match, every {POLL_EVERY_S[0]:g}-{POLL_EVERY_S[1]:g} s) for "
        f"{settings.minutes:g} min; gunicorn, {WORKERS} workers x 4 threads, on 127.0.0.1"
    )
    if not results:
        return head
    text = table("Per backend", ["figure", *(r.backend for r in results)], rows(results), left=[0])
    details = []
    for r in results:
        layers = ", ".join(f"{n} on {layer}" for layer, n in r.features.items())
        details.append(
            f"{r.backend}: sensors {layers}; init {r.init_s or 0:.1f} s, start-up {r.startup_s or 0:.1f} s, "
            f"load went {r.load[0]:.1f} -> {r.load[-1]:.1f}; ran {r.duration_s:.1f} s; slowest post "
            f"{duration(r.post_max_ms)}, poll {duration(r.poll_max_ms)}; answers "
            + ", ".join(f"{k}: {count(n)}" for k, n in r.statuses.items())
        )
        s = r.stored
        details.append(
            f"{r.backend}: {s.windows} windows of /api/readings ({s.split} split as downsampled); {s.before} rows "
            f"there before the run; rows of geoapp_readings {s.table_before} -> {s.table_after}; stored though "
            f"unacknowledged {s.stored_unacknowledged}, at a time never sent {s.unexpected}, values differing "
            f"{s.values_differ}, count != points {s.count_mismatch}; server log errors {r.server_log_errors}"
        )
        if r.uncommitted:
            details.append(
                f"{r.backend}: the server ran {len(r.uncommitted)} files of geoapp/ changed from the commit: "
                + ", ".join(line.split()[-1] for line in r.uncommitted)
            )
        details += [f"{r.backend}: {line}" for line in r.failed]
        details += [f"{r.backend}: {line}" for line in [*s.notes, *r.notes, *r.errors]]
    return head + "\n\n" + text + "\n" + "\n".join(details)


def write(results: Sequence[BackendResult], meta: dict[str, Any], text: str, output: Path) -> None:
    payload = {
        "meta": meta,
        "backends": [
            dataclasses.asdict(r)
            | {
                "share_304": r.share_304,
                "failed": r.failed,
                "stored": dataclasses.asdict(r.stored) | {"table_added": r.stored.table_added},
            }
            for r in results
        ],
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_bytes(orjson.dumps(payload, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS))
    output.with_suffix(".txt").write_text(text + "\n")


# -- command line ----------------------------------------------------------------------------------


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError("must be more than 0")
    return value


def _backends(text: str) -> tuple[str, ...]:
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    wrong = [n for n in names if n not in ("gpkg", "postgis")]
    if wrong or not names:
        raise argparse.ArgumentTypeError(f"backends are gpkg and/or postgis, comma-separated, not {text!r}")
    return names


def parse_args(argv: list[str] | None = None) -> tuple[Settings, Path]:
    parser = argparse.ArgumentParser(prog="python -m bench soak", description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--minutes", type=_seconds, default=MINUTES, help=f"how long the sensors post (default {MINUTES:g})")
    add("--sensors", type=_positive, default=SENSORS, help=f"simulated sensors (default {SENSORS})")
    add("--pollers", type=_positive, default=POLLERS, help=f"clients polling /api/flood/live (default {POLLERS})")
    add(
        "--interval",
        type=_seconds,
        default=INTERVAL_S,
        help=f"seconds between a sensor's posts (default {INTERVAL_S:g})",
    )
    add("--backends", type=_backends, default=("gpkg", "postgis"), help="gpkg and/or postgis (default both)")
    add("--postgis-url", help="an empty PostgreSQL database to use instead of a private cluster under build/pg-soak")
    add("--seed", type=int, default=SEED, help="seed of the readings' values and the polls' intervals")
    add("--output", type=Path, default=DEFAULT_OUTPUT, help="JSON results; the table goes beside it as .txt")
    args = parser.parse_args(argv)
    if args.interval < 0.05:
        parser.error("--interval must be at least 0.05 s")
    settings = Settings(
        minutes=args.minutes,
        sensors=args.sensors,
        pollers=args.pollers,
        interval_s=args.interval,
        backends=args.backends,
        postgis_url=args.postgis_url,
        seed=args.seed,
    )
    return settings, args.output


def main(argv: list[str] | None = None) -> int:
    settings, output = parse_args(argv)
    started = time.perf_counter()

    def progress(message: str) -> None:
        print(f"[{time.perf_counter() - started:6.1f} s] {message}", file=sys.stderr, flush=True)

    meta = {
        "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "settings": dataclasses.asdict(settings) | {"postgis_url": bool(settings.postgis_url)},
        "commit": git_commit(),
        "cpus": os.cpu_count(),
    }
    results: list[BackendResult] = []
    with tempfile.TemporaryDirectory(prefix="geoapp-bench-soak-") as tmp:
        for backend in settings.backends:
            results.append(measure_backend(backend, settings, Path(tmp), progress))
    text = render(results, settings, meta)
    print(text)
    write(results, meta, text, output)
    print(
        f"\nSoak finished in {time.perf_counter() - started:.0f} s; written to {output} and "
        f"{output.with_suffix('.txt')}"
    )
    return 1 if any(r.failed for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
