"""Scale figures per backend: ``python -m bench scale [--quick] [--backend gpkg|postgis|both]``.

What is measured
----------------
For each backend and size (default 10,000, 100,000 and 1,000,000 synthetic manhole covers added
to the demo district's 950, as :mod:`bench.edits` builds them) one store is written: a GeoPackage
file in a temporary folder, or one PostgreSQL database per size on a private cluster of
``scripts/pgcluster.py`` under ``build/pg-scale``, started and stopped by this run (``build/pg``
is ``make run-postgis``'s; a run stopping a shared cluster would end another's). Every server is
gunicorn as ``make run`` starts it (``gunicorn.conf.py``: the app preloaded and warmed in
``when_ready``, then :data:`WORKERS` gthread workers forked), on its own port. With PostGIS,
layers above ``GEOAPP_SQL_ABOVE`` features (250,000 by default) are answered in SQL on the GiST
index and smaller ones from memory: of the default sizes only 1M is in SQL, so step 2 also runs
servers with ``GEOAPP_SQL_ABOVE=0`` at the smaller sizes, for the SQL path's growth with n.

1. *Start-up and memory* at the largest size: from launching gunicorn to its first 200 of
   ``/api/layers``, ``--startups`` times (the median is quoted); then the PSS and RSS of the
   master and of each worker from ``/proc/PID/smaps_rollup``, after the first answer and again
   after the load of step 3. PSS adds up across processes (shared pages are split between them);
   RSS does not (each process counts every shared page), so only the PSS total is the memory used.
2. *Bbox latency* at every size: all the sizes' servers run at once and one keep-alive client per
   server asks bbox pages of ``manhole_covers`` sized to hold about :data:`bench.edits.FEATURES`
   covers at that size (the answer's size is fixed, so only the search should grow with n), the
   sizes taking turns request by request so that a change of load on the shared machine falls on
   every size alike. Each page is asked once untimed first. Every answer's ``numberMatched`` is
   compared with a count over the covers' coordinates. The ratio of the largest size's median to
   the smallest's says whether the search grows like log n: below :data:`TARGET_GROWTH` passes.
3. *Load* at the largest size: Debian's ``wrk`` with :data:`CONNECTIONS` connections for
   ``--duration`` seconds (:data:`WRK_THREADS` threads, a request timing out after
   :data:`WRK_TIMEOUT_S` s) on the public map page ``/``, then on the bbox pages of step 2 (a Lua
   script cycles through them and reports requests, latency percentiles and errors as JSON).
   Non-2xx/3xx answers and socket errors (connect, read, write, timeout) must be 0. wrk runs on the
   same two cores as the server, so requests/s is what the pair manages, not the server alone.
4. *Edits on one server, reads on another*: a second gunicorn (B) is started on the same store;
   :data:`bench.edits.READERS` readers read bbox pages from B on a fixed schedule (timed from when
   each read was due, see :func:`bench.edits.read_pages`), first at rest, then while one writer
   sends ``--edits`` PATCHes (a cover's status, with ``If-Match`` and an admin token) to the first
   server (A) as fast as they are answered. Then B's next request, on a new connection, reads the
   last cover edited and must show the edit; so must every edited cover read on B afterwards.

How to read the numbers
-----------------------
The machine has two cores and is shared; medians and ratios carry over better than absolute
times, and the load average (``uptime``) is printed at the start and after each backend. Targets
are printed as PASS or MISS; only a wrong answer (a bbox count that differs, a read on B not showing
an edit) makes the run exit 1. Results are printed and written to ``bench/results/scale.json``
and ``scale.txt``.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import orjson

from bench import edits
from bench.serving import Instance, Memory, MemoryGuard, connection, git_commit, memory, run_parallel
from bench.tables import count, duration, ratio, size_bytes, table
from bench.timing import Stats
from geoapp.config import PROJECT_ROOT
from geoapp.core.layers import Registry
from geoapp.store import BACKENDS, create_store

SIZES = (10_000, 100_000, 1_000_000)
QUICK_SIZES = (10_000, 100_000)
WORKERS = 2  # make run's default (GEOAPP_WORKERS)
STARTUPS = 3
REPEAT = 300  # timed bbox pages per size
BOXES = 64  # distinct bbox pages per size
PAGE_EVERY = 10  # one map page per this many bbox pages, per size
CONNECTIONS = 50
DURATION_S = 60
QUICK_DURATION_S = 10
WRK_THREADS = 2
WRK_TIMEOUT_S = 10
EDITS = 100
BUDGET_S = 120.0  # per timed step of the edits part
SETTLE_TIMEOUT_S = 60.0  # longest wait for a server to finish the previous step's requests
SEED = 20240711
TARGET_GROWTH = 3.0  # bbox median, largest size over smallest
READERS = ("memory", "SQL")
DEMO_COVERS = 950  # the demo district's own manhole covers
TARGET_BURST_P99_RATIO = edits.TARGET_P99_RATIO
TARGET_STARTUP_S = edits.TARGET_STARTUP_S
# a cluster of its own, as the tests and bench pygeoapi have: whoever stops a shared one ends the others' runs
PG_FOLDER = PROJECT_ROOT / "build" / "pg-scale"
WRK = shutil.which("wrk") or "/usr/bin/wrk"
RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_OUTPUT = RESULTS / "scale.json"

#: wrk's Lua script: cycle through PATHS (one list per wrk thread), report the summary as one JSON line
WRK_SCRIPT = """
local paths = {%s}
local i = 0
request = function()
  i = i %% #paths + 1
  return wrk.format("GET", paths[i])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %%d, "duration_us": %%d, "bytes": %%d, "connect": %%d, "read": %%d, "write": %%d, ' ..
    '"status": %%d, "timeout": %%d, "p50_us": %%d, "p99_us": %%d, "max_us": %%d}\\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
"""


# -- results ---------------------------------------------------------------------------------------


@dataclass
class Processes:
    """The memory of a gunicorn master and its workers (and, for PostGIS, of the server processes
    serving the store's database)."""

    master: Memory
    workers: list[Memory]
    database: list[Memory] = field(default_factory=list)

    @property
    def pss(self) -> int:
        return self.master.pss + sum(w.pss for w in self.workers)

    @property
    def rss(self) -> int:
        return self.master.rss + sum(w.rss for w in self.workers)

    @property
    def database_pss(self) -> int | None:
        return sum(m.pss for m in self.database) if self.database else None


@dataclass
class Bbox:
    added: int
    reader: str  # "memory" (the in-memory index) or "SQL" (PostGIS's GiST index)
    covers: int
    returned_mean: float
    stats: Stats
    checked: int
    mismatches: int
    map_page: Stats | None = None  # GET / (every PAGE_EVERY-th turn)
    map_page_bytes: int = 0


@dataclass
class Load:
    target: str  # "/" or the layer's API
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    non_2xx_3xx: int
    socket_errors: dict[str, int]
    output: str = ""  # wrk's own report
    memory_after: Processes | None = None  # the server's, once it has answered every request

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds

    @property
    def errors(self) -> int:
        return self.non_2xx_3xx + sum(self.socket_errors.values())


@dataclass
class Burst:
    edits: int = 0
    seconds: float | None = None
    patch: Stats | None = None
    reads_rest: Stats | None = None
    reads_during: Stats | None = None
    final_seen: bool | None = None  # B's next request showed the last edit
    final_ms: float | None = None
    fresh: int = 0  # edited covers B showed as edited, read after the burst
    stale: int = 0

    @property
    def p99_ratio(self) -> float | None:
        if self.reads_rest is None or self.reads_during is None:
            return None
        return self.reads_during.p99_ms / self.reads_rest.p99_ms


@dataclass
class BackendResult:
    backend: str
    covers: int = 0  # at the largest size
    written_s: dict[int, float] = field(default_factory=dict)  # added covers -> seconds to write the store
    startup_s: list[float] = field(default_factory=list)
    memory_started: Processes | None = None
    memory_loaded: Processes | None = None
    bbox: list[Bbox] = field(default_factory=list)
    load: list[Load] = field(default_factory=list)
    burst: Burst = field(default_factory=Burst)
    uptime: list[str] = field(default_factory=list)
    loads: dict[str, float] = field(default_factory=dict)  # step -> 1-minute load average as it began
    reader: str = "memory"  # the reader of the largest size's covers with the default settings (server A, B)
    notes: list[str] = field(default_factory=list)

    @property
    def startup_median_s(self) -> float | None:
        return float(np.median(self.startup_s)) if self.startup_s else None

    def extremes(self, reader: str) -> tuple[Bbox, Bbox] | None:
        """The smallest and the largest size measured with ``reader``."""
        found = sorted((b for b in self.bbox if b.reader == reader), key=lambda b: b.covers)
        return (found[0], found[-1]) if len(found) > 1 else None

    @property
    def growth(self) -> dict[str, float]:
        """Per reader, the bbox median at the largest size over the smallest's."""
        pairs = {reader: self.extremes(reader) for reader in READERS}
        return {reader: pair[1].stats.median_ms / pair[0].stats.median_ms for reader, pair in pairs.items() if pair}

    @property
    def wrong(self) -> int:
        return sum(b.mismatches for b in self.bbox) + self.burst.stale + (self.burst.final_seen is False)


@dataclass
class Settings:
    backends: tuple[str, ...] = ("gpkg", "postgis")
    sizes: tuple[int, ...] = SIZES
    startups: int = STARTUPS
    repeat: int = REPEAT
    connections: int = CONNECTIONS
    duration_s: int = DURATION_S
    burst_edits: int = EDITS
    readers: int = edits.READERS
    reads: int = edits.READS
    interval_s: float = edits.INTERVAL_S
    budget_s: float = BUDGET_S
    seed: int = SEED
    quick: bool = False


# -- backends --------------------------------------------------------------------------------------


def available(backend: str) -> str | None:
    """Why ``backend`` cannot be measured, or None."""
    if backend == "postgis" and "postgresql" not in BACKENDS and "postgis" not in BACKENDS:
        return "geoapp.store has no PostGIS backend yet (geoapp/store/postgis.py has not landed)"
    return None


class Stores:
    """Where a backend keeps one store per size: a GeoPackage file, or a PostgreSQL database."""

    def __init__(self, backend: str, folder: Path):
        self.backend = backend
        self.folder = folder
        self.base = None
        self.started_cluster = False
        if backend == "postgis":
            from scripts import pgcluster

            self.started_cluster = pgcluster.url(PG_FOLDER) is None
            self.base = pgcluster.start(PG_FOLDER)

    def close(self) -> None:
        """Stop the PostgreSQL cluster if this run started it."""
        if self.started_cluster:
            from scripts import pgcluster

            pgcluster.stop(PG_FOLDER)

    def location(self, added: int) -> str:
        if self.base is None:
            return str(self.folder / f"scale-{added}.gpkg")
        parts = urlsplit(self.base)
        return urlunsplit(parts._replace(path=f"/{self._database(added)}"))

    @staticmethod
    def _database(added: int) -> str:
        return f"scale_{added}"

    def database(self, added: int) -> str | None:
        """The PostgreSQL database of a size (None for a GeoPackage)."""
        return None if self.base is None else self._database(added)

    def write(self, place: edits.District, added: int) -> None:
        if self.base is not None:
            self._sql(f"DROP DATABASE IF EXISTS {self._database(added)}", f"CREATE DATABASE {self._database(added)}")
            self._sql("CREATE EXTENSION IF NOT EXISTS postgis", database=self._database(added))
        create_store(Registry.load(edits.LAYERS_DIR), self.location(added), place.layers, demo=True).close()

    def drop(self, added: int) -> None:
        if self.base is not None:
            self._sql(f"DROP DATABASE IF EXISTS {self._database(added)} WITH (FORCE)")

    def _sql(self, *statements: str, database: str | None = None) -> None:
        import psycopg

        url = self.base if database is None else urlunsplit(urlsplit(self.base)._replace(path=f"/{database}"))
        with psycopg.connect(url, autocommit=True) as conn:
            for statement in statements:
                conn.execute(statement)


# -- the steps -------------------------------------------------------------------------------------


def sql_above() -> int:
    """``GEOAPP_SQL_ABOVE`` as a server started now reads it (its default may change while a run goes on)."""
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "from geoapp.config import SETTINGS; print(*(s.default for s in SETTINGS if s.name == 'GEOAPP_SQL_ABOVE'))",
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return int(os.environ.get("GEOAPP_SQL_ABOVE", out.stdout.strip()))


def reader_of(backend: str, added: int) -> str:
    """Which reader answers the covers of a store of ``added`` synthetic covers, by default."""
    covers = added + DEMO_COVERS
    return "SQL" if backend == "postgis" and covers > sql_above() else "memory"


def readers_at(backend: str) -> tuple[str, ...]:
    """The readers measured: PostGIS's in-memory index and its SQL, each at every size."""
    return READERS if backend == "postgis" else ("memory",)


#: the setting that makes a PostGIS server use a reader for every layer
FORCE_READER = {"memory": {"GEOAPP_SQL_ABOVE": str(10**12)}, "SQL": {"GEOAPP_SQL_ABOVE": "0"}}


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def processes(instance: Instance, database: str | None = None) -> Processes:
    assert instance.proc is not None
    found = Processes(memory(instance.proc.pid), [memory(pid) for pid in instance.worker_pids()])
    if database is not None:
        found.database = [memory(pid) for pid in database_backends(database)]
    return found


def database_backends(database: str) -> list[int]:
    """PostgreSQL's processes serving ``database`` (their title is ``postgres: USER DATABASE ...``)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").split()
        except OSError:  # gone meanwhile
            continue
        if len(title) >= 3 and title[0] == "postgres:" and title[2] == database:
            pids.append(int(entry.name))
    return sorted(pids)


def cpu_seconds(pids: Sequence[int]) -> float:
    """User and system CPU time of the processes so far."""
    total = 0
    for pid in pids:
        with suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / os.sysconf("SC_CLK_TCK")


def settle(instances: Sequence[Instance], busy: float = 0.05, timeout_s: float = SETTLE_TIMEOUT_S) -> float:
    """Wait until the instances' processes use under ``busy`` of a core (requests of a previous
    step's closed connections still being answered would otherwise fall on the next step); the wait."""
    start = time.perf_counter()
    pids = [pid for i in instances for pid in [i.proc.pid, *i.worker_pids()] if i.proc is not None]
    before = cpu_seconds(pids)
    while time.perf_counter() - start < timeout_s:
        time.sleep(0.5)
        now = cpu_seconds(pids)
        if now - before < busy * 0.5:
            break
        before = now
    return time.perf_counter() - start


def matched(place: edits.District, path: str) -> int:
    """Covers inside the bbox of ``path``, counted over their coordinates."""
    query = path.partition("bbox=")[2].partition("&")[0]
    minx, miny, maxx, maxy = map(float, query.split(","))
    lon, lat = place.lonlat[:, 0], place.lonlat[:, 1]
    return int(np.count_nonzero((lon >= minx) & (lon <= maxx) & (lat >= miny) & (lat <= maxy)))


def bbox_pages(place: edits.District, added: int, seed: int) -> list[str]:
    rng = np.random.default_rng([seed, added, 3])
    minx, miny, maxx, maxy = place.bounds
    centres = np.column_stack([rng.uniform(minx, maxx, BOXES), rng.uniform(miny, maxy, BOXES)])
    return [edits.box_path(place, c) for c in centres]


def measure_bbox(
    servers: dict[tuple[int, str], Instance],
    places: dict[int, edits.District],
    pages: dict[int, list[str]],
    repeat: int,
) -> list[Bbox]:
    """Every server's pages once untimed, then ``repeat`` timed, the servers (a size and a reader each)
    taking turns request by request; every :data:`PAGE_EVERY`-th turn the map page ``/`` too."""
    durations: dict[tuple[int, str], list[int]] = {key: [] for key in servers}
    map_page: dict[tuple[int, str], list[int]] = {key: [] for key in servers}
    map_bytes: dict[tuple[int, str], int] = dict.fromkeys(servers, 0)
    returned: dict[tuple[int, str], list[int]] = {key: [] for key in servers}
    wrong: dict[tuple[int, str], int] = dict.fromkeys(servers, 0)
    expected = {added: [matched(places[added], path) for path in pages[added]] for added, _ in servers}
    order = list(servers)
    with ExitStack() as stack:
        clients = {key: stack.enter_context(connection(i.port)) for key, i in servers.items()}
        for (added, _), client in clients.items():
            for path in [*pages[added], "/"]:
                client.get(path)
        for r in range(repeat):
            for key in order[r % len(order) :] + order[: r % len(order)]:
                added = key[0]
                if r % PAGE_EVERY == 0:
                    body, elapsed = clients[key].get("/")
                    map_page[key].append(elapsed)
                    map_bytes[key] = len(body)
                k = r % len(pages[added])
                body, elapsed = clients[key].get(pages[added][k])
                page = orjson.loads(body)
                durations[key].append(elapsed)
                returned[key].append(page["numberReturned"])
                wrong[key] += page["numberMatched"] != expected[added][k]
    return [
        Bbox(
            added=added,
            reader=reader,
            covers=len(places[added].codes),
            returned_mean=float(np.mean(returned[added, reader])),
            stats=Stats.of(durations[added, reader]),
            checked=len(durations[added, reader]),
            mismatches=wrong[added, reader],
            map_page=Stats.of(map_page[added, reader]),
            map_page_bytes=map_bytes[added, reader],
        )
        for added, reader in sorted(servers, key=lambda key: (READERS.index(key[1]), key[0]))
    ]


def run_wrk(port: int, target: str, paths: Sequence[str], settings: Settings, folder: Path) -> Load:
    script = folder / f"wrk-{port}-{len(paths)}.lua"
    script.write_text(WRK_SCRIPT % ", ".join(orjson.dumps(p).decode() for p in paths))
    command = [
        WRK,
        f"-t{WRK_THREADS}",
        f"-c{settings.connections}",
        f"-d{settings.duration_s}s",
        f"--timeout={WRK_TIMEOUT_S}s",
        "--latency",
        "-s",
        str(script),
        f"http://127.0.0.1:{port}",
    ]
    out = subprocess.run(command, capture_output=True, text=True, timeout=settings.duration_s + 120)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("WRK_JSON ")), None)
    if out.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({out.returncode}):\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    got = orjson.loads(line.removeprefix("WRK_JSON "))
    return Load(
        target=target,
        requests=got["requests"],
        seconds=got["duration_us"] / 1e6,
        p50_ms=got["p50_us"] / 1000,
        p99_ms=got["p99_us"] / 1000,
        max_ms=got["max_us"] / 1000,
        non_2xx_3xx=got["status"],
        socket_errors={k: got[k] for k in ("connect", "read", "write", "timeout")},
        output=out.stdout.replace(line, "").strip(),
    )


def measure_burst(
    result: Burst,
    a: Instance,
    b: Instance,
    place: edits.District,
    pages: list[str],
    token: str,
    settings: Settings,
    progress: Callable[[str], None],
) -> None:
    """Edits through A, reads from B (at rest, then during the edits), then B's next request."""
    rng = np.random.default_rng([settings.seed, len(place.codes), 5])
    fids = [int(p) + 1 for p in rng.choice(len(place.codes), settings.burst_edits, replace=False)]
    editor = edits.Editor(token)
    with connection(a.port) as client:
        for fid in fids:
            editor.learn(orjson.loads(client.get(edits.feature_path(fid))[0]))
    with connection(b.port) as client:
        for path in pages:
            client.get(path)
    readers = edits.Settings(readers=settings.readers, reads=settings.reads, interval_s=settings.interval_s)

    progress(f"scale: {settings.readers} readers on B x {settings.reads} bbox pages, at rest")
    done = threading.Event()
    done.set()
    rest = edits.read_pages([b.port], pages, readers, done, time.perf_counter() + settings.budget_s)
    edits.raise_failures(rest)
    result.reads_rest = Stats.of(rest.durations_ns)

    progress(f"scale: the same readers on B while {len(fids)} edits go to A")
    done = threading.Event()
    deadline = time.perf_counter() + settings.budget_s
    writer: dict[str, Any] = {}

    def write() -> None:
        try:
            writer["durations"], writer["seconds"] = edits.burst([a.port], editor, fids, done, deadline)
        except BaseException as error:  # re-raised below, in the main thread
            writer["error"] = error
            done.set()

    thread = threading.Thread(target=write, name="writer")
    thread.start()
    during = edits.read_pages([b.port], pages, readers, done, deadline)
    thread.join()
    if "error" in writer:
        raise writer["error"]
    edits.raise_failures(during)
    result.reads_during = Stats.of(during.durations_ns)
    result.edits, result.seconds = len(writer["durations"]), writer["seconds"]
    result.patch = Stats.of(writer["durations"]) if writer["durations"] else None

    edited = fids[: result.edits]
    if not edited:
        return
    last = edited[-1]
    with connection(b.port) as client:
        body, elapsed = client.get(edits.feature_path(last))
    result.final_seen = orjson.loads(body)["properties"]["status"] == editor.status[last]
    result.final_ms = elapsed / 1e6
    with connection(b.port) as client:
        for fid in edited:
            shown = orjson.loads(client.get(edits.feature_path(fid))[0])["properties"]["status"]
            if shown == editor.status[fid]:
                result.fresh += 1
            else:
                result.stale += 1


def measure_backend(
    backend: str,
    places: dict[int, edits.District],
    settings: Settings,
    folder: Path,
    progress: Callable[[str], None],
) -> BackendResult:
    result = BackendResult(backend=backend, uptime=[uptime()])
    largest = max(places)
    result.reader = reader_of(backend, largest)
    stores = Stores(backend, folder)
    for added, place in places.items():
        progress(f"scale, {backend}: writing the store with {len(place.codes):,} covers")
        started = time.perf_counter()
        stores.write(place, added)
        result.written_s[added] = time.perf_counter() - started
    result.covers = len(places[largest].codes)
    envs = {
        added: {
            **os.environ,
            "GEOAPP_DATABASE": stores.location(added),
            "GEOAPP_LAYERS": str(edits.LAYERS_DIR),
            "GEOAPP_SECRET_KEY": secrets.token_hex(16),  # every worker alike, nothing written to instance/
        }
        for added in places
    }
    pages = {added: bbox_pages(place, added, settings.seed) for added, place in places.items()}
    token = edits.add_token(envs[largest])

    def instance(name: str, added: int, env: dict[str, str] | None = None) -> Instance:
        log = folder / f"gunicorn-{backend}-{added}-{name}.log"
        return Instance(name, {**envs[added], **(env or {})}, log, workers=WORKERS)

    def step(name: str) -> None:
        result.loads[name] = os.getloadavg()[0]

    started: list[Instance] = []
    try:
        with MemoryGuard(started) as guard:
            try:
                for k in range(settings.startups):
                    step("start-up" if k == 0 else f"start-up {k + 1}")
                    progress(f"scale, {backend}: start-up {k + 1} of {settings.startups} at {result.covers:,} covers")
                    a = instance("A", largest)
                    started.append(a)
                    result.startup_s.append(a.start())
                    if k + 1 < settings.startups:
                        a.stop()
                        started.remove(a)
                result.memory_started = processes(a, stores.database(largest))

                step("bbox")
                progress(f"scale, {backend}: bbox latency at {', '.join(count(n) for n in places)} covers added")
                # PostGIS servers are told which reader to use, so that each row says which answered it
                servers = {(largest, "memory"): a} if backend == "gpkg" else {}
                for added in places:
                    for reader in readers_at(backend):
                        if (added, reader) not in servers:
                            server = instance(f"bbox-{added}-{reader}", added, FORCE_READER[reader])
                            started.append(server)
                            server.start()
                            servers[added, reader] = server
                result.bbox = measure_bbox(servers, places, pages, settings.repeat)
                for server in servers.values():
                    if server is not a:
                        server.stop()
                        started.remove(server)

                for target, paths in (("/", ["/"]), (f"/api/layers/{edits.LAYER_ID}/features?bbox=…", pages[largest])):
                    if settle([a]) >= SETTLE_TIMEOUT_S:
                        result.notes.append(f"server A still busy {SETTLE_TIMEOUT_S:.0f} s after the previous step")
                    step(f"wrk {target.partition('?')[0]}")
                    progress(f"scale, {backend}: wrk -c{settings.connections} -d{settings.duration_s}s {target}")
                    load = run_wrk(a.port, target, paths, settings, folder)
                    settle([a])
                    load.memory_after = processes(a, stores.database(largest))
                    result.load.append(load)
                result.memory_loaded = result.load[-1].memory_after

                step("edits")
                progress(f"scale, {backend}: second server B on the same store")
                b = instance("B", largest)
                started.append(b)
                b.start()
                settle([a, b])
                measure_burst(result.burst, a, b, places[largest], pages[largest], token, settings, progress)
            except (OSError, RuntimeError) as error:
                if guard.tripped is None:
                    raise
                result.notes.append(f"{guard.tripped} ({type(error).__name__}); later figures are missing")
    finally:
        run_parallel([i.stop for i in started])
        for added in places:
            stores.drop(added)
        stores.close()
    result.uptime.append(uptime())
    return result


# -- report ----------------------------------------------------------------------------------------


def _verdict(value: float | None, limit: float) -> str:
    return "-" if value is None else "PASS" if value < limit else "MISS"


def _mb(value: float | None) -> str:
    return "-" if value is None else size_bytes(value) if value < 1e9 else f"{value / 1e9:.2f} GB"


def startup_table(results: list[BackendResult]) -> str:
    rows = []
    for r in results:
        started, loaded = r.memory_started, r.memory_loaded
        rows.append(
            [
                f"{r.backend}, {r.reader}",
                count(r.covers),
                duration(r.startup_median_s and r.startup_median_s * 1000),
                " / ".join(f"{s:.1f}" for s in r.startup_s) or "-",
                _mb(started and started.master.pss),
                " / ".join(_mb(w.pss) for w in started.workers) if started else "-",
                _mb(started and started.pss),
                _mb(started and started.rss),
                _mb(loaded and loaded.pss),
                _mb(loaded and loaded.rss),
                " / ".join(_mb(m and m.database_pss) for m in (started, loaded)) if r.backend == "postgis" else "-",
                _verdict(r.startup_median_s, TARGET_STARTUP_S),
            ]
        )
    headers = [
        "backend, reader",
        "covers",
        "start-up med",
        "runs (s)",
        "master PSS",
        "workers PSS",
        "PSS total",
        "RSS sum",
        "PSS after load",
        "RSS after",
        "PostgreSQL PSS",
        f"start < {TARGET_STARTUP_S:.0f} s",
    ]
    title = f"Start-up to the first /api/layers (gunicorn, when_ready warm-up, {WORKERS} workers) and memory"
    note = (
        "memory after the first answer, and after the wrk load below; PSS adds up across processes, the RSS sum "
        "counts every shared page once per process; PostgreSQL PSS: its processes serving the store's database "
        "(after the first answer / after the load), not in the totals"
    )
    return f"{table(title, headers, rows, left=[0, 3])}\n{note}"


def bbox_table(results: list[BackendResult]) -> str:
    rows = []
    for r in results:
        for b in r.bbox:
            stats, page = b.stats, b.map_page
            rows.append(
                [
                    r.backend,
                    b.reader,
                    count(b.covers),
                    f"{b.returned_mean:.0f}",
                    duration(stats.median_ms),
                    duration(stats.p99_ms),
                    count(stats.count),
                    f"{b.checked - b.mismatches}/{b.checked}",
                    duration(page and page.median_ms),
                    duration(page and page.p99_ms),
                    size_bytes(b.map_page_bytes),
                ]
            )
    title = f"bbox pages of manhole_covers through gunicorn ({WORKERS} workers, keep-alive, servers interleaved)"
    headers = ["backend", "reader", "covers", "returned", "median", "p99", "requests", "count match"]
    headers += ["/ median", "/ p99", "/ size"]
    text = table(title, headers, rows, left=[0, 1])
    for r in results:
        for reader, growth in r.growth.items():
            small, large = r.extremes(reader)
            sizes = f"{count(large.covers)} / {count(small.covers)} covers"
            text += (
                f"\n{r.backend}, {reader}: bbox median at {sizes} = {ratio(growth)} (log n grows "
                f"{np.log(large.covers) / np.log(small.covers):.2f}x; target < {TARGET_GROWTH:.0f}x): "
                f"{_verdict(growth, TARGET_GROWTH)}"
            )
            if large.map_page and small.map_page:
                text += (
                    f"\n{r.backend}, {reader}: map page / median at {sizes} = "
                    f"{ratio(large.map_page.median_ms / small.map_page.median_ms)} (it embeds no covers: flat is 1.0x)"
                )
    if any(r.backend == "postgis" for r in results):
        text += (
            f"\npostgis: by default layers above GEOAPP_SQL_ABOVE = {sql_above():,} features are answered in SQL, "
            "smaller ones from memory; here each PostGIS server was started with GEOAPP_SQL_ABOVE=0 (SQL) or 10^12 "
            "(memory)"
        )
    return text


def load_table(results: list[BackendResult], settings: Settings) -> str:
    rows = []
    for r in results:
        for load in r.load:
            socket = ", ".join(f"{k} {v}" for k, v in load.socket_errors.items() if v) or "0"
            rows.append(
                [
                    f"{r.backend}, {r.reader}",
                    load.target,
                    f"{load.per_second:,.0f}",
                    duration(load.p50_ms),
                    duration(load.p99_ms),
                    count(load.requests),
                    count(load.non_2xx_3xx),
                    socket,
                    "PASS" if load.errors == 0 else "MISS",
                    _mb(load.memory_after and load.memory_after.pss),
                ]
            )
    title = (
        f"wrk -t{WRK_THREADS} -c{settings.connections} -d{settings.duration_s}s --timeout {WRK_TIMEOUT_S}s at "
        f"{count(results[0].covers) if results else '-'} covers (gunicorn, {WORKERS} workers x 4 threads; wrk on the "
        "same 2 cores)"
    )
    headers = ["backend, reader", "target", "req/s", "p50", "p99", "requests", "non-2xx/3xx", "socket errors"]
    headers += ["no errors", "app PSS after"]
    return table(title, headers, rows, left=[0, 1, 7])


def burst_table(results: list[BackendResult]) -> str:
    rows = []
    for r in results:
        b = r.burst
        final = "-" if b.final_seen is None else ("yes" if b.final_seen else "NO") + f" ({duration(b.final_ms)})"
        rows.append(
            [
                f"{r.backend}, {r.reader}",
                duration(b.reads_rest and b.reads_rest.p99_ms),
                duration(b.reads_during and b.reads_during.p99_ms),
                ratio(b.p99_ratio),
                _verdict(b.p99_ratio, TARGET_BURST_P99_RATIO),
                count(b.edits),
                duration(b.patch and b.patch.median_ms),
                duration(b.patch and b.patch.p99_ms),
                final,
                f"{b.fresh}/{b.fresh + b.stale}",
            ]
        )
    headers = [
        "backend, reader",
        "read p99 rest",
        "during",
        "ratio",
        f"< {TARGET_BURST_P99_RATIO:.0f}x",
        "edits",
        "edit p50",
        "edit p99",
        "B's next read shows last",
        "edits seen on B",
    ]
    title = "Edits through server A while server B (same store) serves reads; both gunicorn, 2 workers"
    return table(title, headers, rows, left=[0, 8])


def render(results: list[BackendResult], skipped: dict[str, str], settings: Settings, meta: dict[str, Any]) -> str:
    head = [
        f"Scale figures ({'--quick' if settings.quick else 'full run'}), commit {meta['commit'] or '?'}, "
        f"{meta['cpus']} CPUs, started {meta['started_at']}",
        f"sizes: {', '.join(count(n) for n in settings.sizes)} covers added to the demo's 950; "
        f"{settings.startups} start-up(s), {settings.repeat} timed bbox pages per size, wrk {settings.duration_s} s "
        f"per target, {settings.burst_edits} edits",
    ]
    for r in results:
        head.append(f"load, {r.backend}: before: {r.uptime[0]}")
        if len(r.uptime) > 1:
            head.append(f"load, {r.backend}: after:  {r.uptime[1]}")
        if r.loads:
            steps = ", ".join(f"{name} {load:.1f}" for name, load in r.loads.items())
            head.append(f"load, {r.backend}: 1-min load average as each step began: {steps}")
    head += [f"{name}: not measured: {why}" for name, why in skipped.items()]
    sections = ["\n".join(head)]
    if results:
        sections += [startup_table(results), bbox_table(results), load_table(results, settings), burst_table(results)]
        writes = [
            f"{r.backend}: stores written in " + ", ".join(f"{s:.0f} s" for s in r.written_s.values()) for r in results
        ]
        notes = [f"{r.backend}: {note}" for r in results for note in r.notes]
        sections.append("\n".join(writes + notes))
    return "\n\n".join(sections)


def write(results: list[BackendResult], skipped: dict[str, str], meta: dict[str, Any], text: str, output: Path) -> None:
    payload = {
        "meta": meta,
        "skipped": skipped,
        "backends": [
            dataclasses.asdict(r)
            | {
                "startup_median_s": r.startup_median_s,
                "growth": r.growth,
                "burst_p99_ratio": r.burst.p99_ratio,
                "load_per_second": {load.target: load.per_second for load in r.load},
                "memory_started_pss": r.memory_started and r.memory_started.pss,
                "memory_loaded_pss": r.memory_loaded and r.memory_loaded.pss,
            }
            for r in results
        ],
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_bytes(
        orjson.dumps(payload, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)
    )
    output.with_suffix(".txt").write_text(text + "\n")


# -- command line ----------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> tuple[Settings, Path]:
    parser = argparse.ArgumentParser(prog="python -m bench scale", description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    positive = edits.at_least_one
    add("--quick", action="store_true", help=f"sizes {', '.join(map(count, QUICK_SIZES))}, 1 start-up, shorter wrk")
    add("--backend", choices=("gpkg", "postgis", "both"), default="both", help="which store(s) (default both)")
    add("--sizes", type=edits.size_list, default=None, help="synthetic covers added to the demo's, comma-separated")
    add("--startups", type=positive, default=None, help=f"start-ups timed (default {STARTUPS}, quick 1)")
    add("--repeat", type=positive, default=None, help=f"timed bbox pages per size (default {REPEAT}, quick 100)")
    add("--connections", type=positive, default=CONNECTIONS, help=f"wrk connections (default {CONNECTIONS})")
    add("--duration", type=positive, default=None, help=f"wrk seconds per target (default {DURATION_S}, quick 10)")
    add("--edits", type=positive, default=EDITS, help=f"edits in the burst (default {EDITS})")
    add("--seed", type=int, default=SEED, help="seed of the synthetic covers, pages and edits")
    add("--output", type=Path, default=DEFAULT_OUTPUT, help="JSON results; the tables go beside it as .txt")
    args = parser.parse_args(argv)
    quick = args.quick
    settings = Settings(
        backends=("gpkg", "postgis") if args.backend == "both" else (args.backend,),
        sizes=args.sizes or (QUICK_SIZES if quick else SIZES),
        startups=args.startups or (1 if quick else STARTUPS),
        repeat=args.repeat or (100 if quick else REPEAT),
        connections=args.connections,
        duration_s=args.duration or (QUICK_DURATION_S if quick else DURATION_S),
        burst_edits=args.edits,
        seed=args.seed,
        quick=quick,
    )
    return settings, args.output


def main(argv: list[str] | None = None) -> int:
    settings, output = parse_args(argv)
    started = time.perf_counter()

    def progress(message: str) -> None:
        print(f"[{time.perf_counter() - started:6.1f} s] {message}", file=sys.stderr, flush=True)

    meta = {
        "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "settings": dataclasses.asdict(settings),
        "commit": git_commit(),
        "cpus": os.cpu_count(),
    }
    skipped = {b: why for b in settings.backends if (why := available(b))}
    results: list[BackendResult] = []
    if len(skipped) < len(settings.backends):
        places = {}
        for added in sorted(settings.sizes):
            progress(f"scale: demo district and {added:,} synthetic covers")
            places[added] = edits.district(added, settings.seed)
        with tempfile.TemporaryDirectory(prefix="geoapp-bench-scale-") as tmp:
            for backend in settings.backends:
                if backend not in skipped:
                    results.append(measure_backend(backend, places, settings, Path(tmp), progress))
    text = render(results, skipped, settings, meta)
    print(text)
    write(results, skipped, meta, text, output)
    print(
        f"\nScale part finished in {time.perf_counter() - started:.0f} s; written to {output} and "
        f"{output.with_suffix('.txt')}"
    )
    return 1 if any(r.wrong for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
