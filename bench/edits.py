"""Snapshots that absorb edits: ``python -m bench edits`` (also part of ``python -m bench``).

What is measured
----------------
For each size (default 100,000 and 1,000,000) a store is built in a temporary folder: the demo
district as it is, with that many synthetic manhole covers added to its own 950 (uniform over
the district's bounding box, from a fixed seed), so 100,950 and 1,000,950 covers as in the issue
that set the targets. Two gunicorn instances serve the one file as ``make run`` serves it
(``gunicorn.conf.py``: app preloaded, gthread), with one worker each, on two ports: each worker
keeps its own in-memory snapshot of a layer, so two instances on one file are what two workers
are to the store, and each can be addressed alone. Edits are PATCHes of a cover's ``status``
(to the other value) with ``If-Match``, sent with an admin token made by ``geoapp token add``.
Reads are anonymous bbox pages of ``manhole_covers`` holding about :data:`FEATURES` covers.

1. *Start-up*: from launching each instance to its first 200 of ``/api/layers``.
2. *Warm-up*: every bbox page used below and every cover that will be edited, read once on each
   instance; then each worker's PSS (``/proc/PID/smaps_rollup``; the worker is the gunicorn
   master's child).
3. *Reads without edits*: :data:`READERS` threads, each a client of one instance (half of them
   of each) on a keep-alive connection, :data:`READS` bbox GETs each, one due every :data:`INTERVAL_S`.
   A read's latency runs from when it was due (open loop): a reader held up by a stalled worker
   owes the reads it could not send, and each counts its wait, so a stall of seconds weighs as
   what clients on a map would see rather than as one slow read per reader.
4. *Reads during 100 edits*: the same readers while one writer sends :data:`EDITS` PATCHes, as
   fast as they are answered, alternately to each instance; the readers go on until the writer
   is done and each has made its :data:`READS`. The ratio is p99 during over p99 without.
5. *After the edits*: every edited cover read on both instances (each must show its last
   status), every bbox page once more, then each worker's PSS again: after over before.
6. *Next read after an edit*: PATCH one cover through instance A, then the first GET of a bbox
   page centred on it, on A and then on B, each on a new connection; :data:`REPEAT` times, a
   different cover each time. Each answer must show the new status.

Every read that should show an edit is checked; a stale one makes the run exit with status 1.
Each timed step stops after ``--budget`` seconds (finishing the request under way) and says how
far it got; a request waits at most :data:`bench.serving.REQUEST_TIMEOUT_S`. Should the machine run
short of memory (MemAvailable below :data:`bench.serving.LOW_MEMORY_BYTES`), both instances are
killed and the size reports what it had measured. Everything runs on 127.0.0.1.

How to read the numbers
-----------------------
Medians and p99 of single requests (``perf_counter_ns``), ratios of two figures of the same run,
beside the targets and the figures the issue measured on the code before this rewrite. The
figures are printed and written to ``bench/results/edits.txt`` and ``edits.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import http.client
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import orjson
import pandas as pd
import shapely

from bench import timing
from bench.serving import (
    Client,
    Instance,
    Memory,
    MemoryGuard,
    connection,
    git_commit,
    memory,
    run_parallel,
)
from bench.tables import count, duration, ratio, size_bytes, table
from bench.timing import Stats
from data import demo_district
from geoapp.config import PROJECT_ROOT
from geoapp.core.layers import Registry
from geoapp.store import create_store

LAYER_ID = "manhole_covers"
LAYERS_DIR = PROJECT_ROOT / "layers"
STORAGE_CRS = "EPSG:4326"
SIZES = (100_000, 1_000_000)
FEATURES = 300  # covers per bbox page
PAGE_LIMIT = 1000  # page size asked for: a whole bbox page fits
BOXES = 64  # bbox pages the readers cycle through
READERS = 4
READS = 100  # per reader
INTERVAL_S = 0.05  # between one reader's reads: 40 pages a second for each of the two workers
EDITS = 100
REPEAT = 30
BUDGET_S = 90.0  # per timed step and size
SEED = 20240607
CODE_SUBCLASS = 90  # synthetic covers' codes use subclasses 90+, which the demo's kinds never do
FLASK = Path(sys.executable).with_name("flask")
RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_OUTPUT = RESULTS / "edits.json"

# the figures, measured on the code before the rewrite (demo + 100k and + 1M covers)
TODAY_NEXT_READ = {100_000: "2-8 s", 1_000_000: "15-35 s"}
TODAY_PSS = {1_000_000: ("1.6 GB", "6.8 GB after 2 edits", "4.3x")}
TODAY_STARTUP = {1_000_000: "18-31 s"}
TARGET_NEXT_READ_MS = 50.0
TARGET_P99_RATIO = 3.0
TARGET_MEMORY_RATIO = 1.2
TARGET_STARTUP_S = 8.0
STARTUP_TARGET_SIZE = 1_000_000


class Stale(AssertionError):
    """A read after an edit did not show it."""


# -- results ---------------------------------------------------------------------------------------


@dataclass
class SizeResult:
    added: int  # synthetic covers added to the demo's
    covers: int  # covers in the layer
    startup_s: dict[str, float] = field(default_factory=dict)  # instance -> seconds
    workers: dict[str, int] = field(default_factory=dict)  # instance -> worker pid at start
    pss_before: dict[str, Memory] = field(default_factory=dict)
    pss_after: dict[str, Memory] = field(default_factory=dict)
    reads_quiet: Stats | None = None
    reads_edits: Stats | None = None
    slowest_ms: dict[str, float] = field(default_factory=dict)  # "quiet", "edits" -> the slowest read
    service: dict[str, Stats] = field(default_factory=dict)  # "quiet", "edits" -> send to answer, waits left out
    burst_edits: int = 0  # edits sent during the reads (of EDITS)
    burst_s: float | None = None  # the writer's time from first to last answer
    burst_patch: Stats | None = None
    next_read: dict[str, Stats] = field(default_factory=dict)  # instance -> first GET after a PATCH through A
    next_patch: Stats | None = None  # the PATCH through A itself
    repeats: int = 0
    fresh: int = 0  # reads that showed the edit they should
    stale: int = 0
    restarted: list[str] = field(default_factory=list)  # instances whose worker was replaced during the run
    notes: list[str] = field(default_factory=list)

    @property
    def p99_ratio(self) -> float | None:
        if self.reads_quiet is None or self.reads_edits is None:
            return None
        return self.reads_edits.p99_ms / self.reads_quiet.p99_ms

    def memory_ratio(self, instance: str) -> float | None:
        before, after = self.pss_before.get(instance), self.pss_after.get(instance)
        return None if before is None or after is None else after.pss / before.pss

    @property
    def worst_memory_ratio(self) -> float | None:
        ratios = [r for r in map(self.memory_ratio, self.pss_before) if r is not None]
        return max(ratios) if ratios else None

    @property
    def startup_median_s(self) -> float | None:
        return float(np.median(list(self.startup_s.values()))) if self.startup_s else None


@dataclass
class Settings:
    sizes: tuple[int, ...] = SIZES
    repeat: int = REPEAT
    edits: int = EDITS
    readers: int = READERS
    reads: int = READS
    interval_s: float = INTERVAL_S
    budget_s: float = BUDGET_S
    seed: int = SEED
    note: str = ""  # what was measured, e.g. which code: printed above the tables and kept in the JSON


QUICK = Settings(sizes=(100_000,), repeat=10)  # python -m bench --quick


# -- data ------------------------------------------------------------------------------------------


def district_covers(layer, bounds: Sequence[float], n: int, seed: int) -> gpd.GeoDataFrame:
    """``n`` valid covers uniform over the lon/lat ``bounds``, their values drawn from the layer's own."""
    rng = np.random.default_rng([seed, n])
    minx, miny, maxx, maxy = bounds
    serial = np.arange(n)
    columns = {
        "code": [f"41990101{CODE_SUBCLASS + i // 1_000_000:02d}{i % 1_000_000:06d}" for i in serial],
        "kind": rng.choice(layer.field("kind").allowed, n),
        "defect": rng.choice(layer.field("defect").allowed, n),
        "status": rng.choice(layer.field("status").allowed, n),
    }
    points = shapely.points(rng.uniform(minx, maxx, n), rng.uniform(miny, maxy, n))
    frame = pd.DataFrame({k: pd.Series(v, dtype=object) for k, v in columns.items()})
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(points, crs=STORAGE_CRS))


@dataclass(frozen=True)
class District:
    """The demo district's layers with ``added`` covers more, and where each cover lies."""

    layers: dict[str, gpd.GeoDataFrame]
    bounds: tuple[float, float, float, float]
    codes: list[str]  # by position; the store numbers a layer's rows 1..n, so fid = position + 1
    lonlat: np.ndarray


def district(added: int, seed: int) -> District:
    registry = Registry.load(LAYERS_DIR)
    demo = demo_district.build()
    bounds = tuple(float(v) for v in demo["district_boundary"].total_bounds)
    extra = district_covers(registry[LAYER_ID], bounds, added, seed)
    covers = pd.concat([demo[LAYER_ID].to_crs(STORAGE_CRS), extra], ignore_index=True)
    covers = gpd.GeoDataFrame(covers, geometry="geometry", crs=STORAGE_CRS)
    return District(
        layers={**demo, LAYER_ID: covers},
        bounds=bounds,
        codes=covers["code"].tolist(),
        lonlat=shapely.get_coordinates(covers.geometry.array),
    )


def write_store(place: District, path: Path) -> None:
    create_store(Registry.load(LAYERS_DIR), str(path), place.layers, demo=True).close()


def add_token(env: dict[str, str]) -> str:
    """An admin token, made as an administrator would make one (``geoapp token add``)."""
    out = subprocess.run(
        [str(FLASK), "--app", "wsgi", "geoapp", "token", "add", "bench-edits", "--role", "admin"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if out.returncode != 0:
        raise RuntimeError(f"geoapp token add failed:\n{out.stderr[-2000:]}")
    return out.stdout.split()[-1]


def box_path(place: District, centre: Sequence[float]) -> str:
    """A bbox page of about :data:`FEATURES` covers around a lon/lat ``centre``."""
    minx, miny, maxx, maxy = place.bounds
    share = np.sqrt(FEATURES / len(place.codes)) / 2
    dx, dy = (maxx - minx) * share, (maxy - miny) * share
    lon, lat = centre
    bbox = ",".join(f"{v:.6f}" for v in (lon - dx, lat - dy, lon + dx, lat + dy))
    return f"/api/layers/{LAYER_ID}/features?bbox={bbox}&limit={PAGE_LIMIT}"


def feature_path(fid: int) -> str:
    return f"/api/layers/{LAYER_ID}/features/{fid}"


# -- HTTP ------------------------------------------------------------------------------------------


class Editor:
    """Toggles covers' status with PATCH and If-Match, keeping each cover's version and status."""

    def __init__(self, token: str):
        self.token = token
        self.version: dict[int, int] = {}
        self.status: dict[int, str] = {}
        self._lock = threading.Lock()

    def learn(self, feature: dict) -> None:
        with self._lock:
            self.version[feature["id"]] = feature["version"]
            self.status[feature["id"]] = feature["properties"]["status"]

    def toggle(self, client: Client, fid: int) -> int:
        """Give ``fid`` the other status; return the PATCH's nanoseconds."""
        with self._lock:
            version, new = self.version[fid], "fixed" if self.status[fid] != "fixed" else "to_fix"
        headers = {
            "Authorization": f"Bearer {self.token}",
            "If-Match": f'"{version}"',
            "Content-Type": "application/json",
        }
        # the bureau's rule: a fixed cover carries the date it was fixed (setting it back empties the date)
        changes = {"status": new, **({"fixed_on": "2023-06-01"} if new == "fixed" else {})}
        body = orjson.dumps({"properties": changes})
        status, data, elapsed = client.request("PATCH", feature_path(fid), body, headers)
        if status != 200:
            raise RuntimeError(f"PATCH {feature_path(fid)} on :{client.port}: HTTP {status}: {data[:300]!r}")
        feature = orjson.loads(data)
        if feature["properties"].get("status") != new:
            raise Stale(f"PATCH of {fid} answered status {feature['properties'].get('status')!r}, not {new!r}")
        self.learn(feature)
        return elapsed


def status_in_page(body: bytes, fid: int) -> str | None:
    for feature in orjson.loads(body)["features"]:
        if feature["id"] == fid:
            return feature["properties"]["status"]
    return None


# -- the steps -------------------------------------------------------------------------------------


@dataclass
class Reads:
    durations_ns: list[int]  # from when each read was due to its last byte
    service_ns: list[int]  # from sending to the last byte
    failures: list[str]


def read_pages(
    ports: Sequence[int],
    paths: Sequence[str],
    settings: Settings,
    writer_done: threading.Event,
    deadline: float,
) -> Reads:
    """Reader threads requesting bbox pages on a schedule, each of one instance (the instances take
    turns), until the writer is done and each made its ``settings.reads`` (or until ``deadline``).

    Each reader's requests are due every ``settings.interval_s`` (readers staggered), and a read's
    latency runs from when it was due, not from when it could be sent: a reader held up by a slow
    answer sends the requests it owes at once, and each counts the wait. Timing from the send
    instead would let a worker that stalls for seconds show as one slow read per reader.
    """
    readers, reads = settings.readers, settings.reads
    interval_ns = round(settings.interval_s * 1e9)
    durations: list[list[int]] = [[] for _ in range(readers)]
    service: list[list[int]] = [[] for _ in range(readers)]
    failures: list[str] = []
    start = time.perf_counter_ns()

    def reader(i: int) -> None:
        first = start + i * interval_ns // readers
        with connection(ports[i % len(ports)]) as client:
            j = 0
            while j < 50 * reads and time.perf_counter() < deadline and not (j >= reads and writer_done.is_set()):
                due = first + j * interval_ns
                ahead = due - time.perf_counter_ns()
                if ahead > 0:
                    time.sleep(ahead / 1e9)
                try:
                    _, elapsed = client.get(paths[(i * reads + j) % len(paths)])
                except (OSError, http.client.HTTPException, RuntimeError) as error:
                    failures.append(f"reader {i}: {error}")
                    return
                durations[i].append(time.perf_counter_ns() - due)
                service[i].append(elapsed)
                j += 1

    threads = [threading.Thread(target=reader, args=(i,), name=f"reader-{i}") for i in range(readers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return Reads([d for per in durations for d in per], [d for per in service for d in per], failures)


def burst(
    ports: Sequence[int], editor: Editor, fids: Sequence[int], done: threading.Event, deadline: float
) -> tuple[list[int], float]:
    """PATCH each of ``fids`` in turn, alternating instances; the PATCHes' nanoseconds and the seconds taken."""
    durations: list[int] = []
    start = time.perf_counter()
    try:
        with ExitStack() as stack:
            clients = [stack.enter_context(connection(port)) for port in ports]
            for k, fid in enumerate(fids):
                if time.perf_counter() > deadline:
                    break
                durations.append(editor.toggle(clients[k % len(clients)], fid))
    finally:
        done.set()
    return durations, time.perf_counter() - start


def measure_size(added: int, settings: Settings, folder: Path, progress: Callable[[str], None]) -> SizeResult:
    """Every step of the module docstring at one size."""
    label = f"{added:,} covers added"
    progress(f"edits, {label}: demo district and synthetic covers")
    place = district(added, settings.seed)
    result = SizeResult(added=added, covers=len(place.codes))
    database = folder / f"edits-{added}.gpkg"
    progress(f"edits, {label}: writing the store ({result.covers:,} covers)")
    write_store(place, database)
    env = {
        **os.environ,
        "GEOAPP_DATABASE": str(database),
        "GEOAPP_LAYERS": str(LAYERS_DIR),
        "GEOAPP_SECRET_KEY": secrets.token_hex(16),  # both instances alike, and nothing written to instance/
    }
    editor = Editor(add_token(env))

    rng = np.random.default_rng([settings.seed, added, 7])
    chosen = rng.choice(len(place.codes), settings.edits + settings.repeat, replace=False)
    burst_fids = [int(p) + 1 for p in chosen[: settings.edits]]
    next_fids = [int(p) + 1 for p in chosen[settings.edits :]]
    minx, miny, maxx, maxy = place.bounds
    centres = np.column_stack([rng.uniform(minx, maxx, BOXES), rng.uniform(miny, maxy, BOXES)])
    pages = [box_path(place, c) for c in centres]
    next_pages = {fid: box_path(place, place.lonlat[fid - 1]) for fid in next_fids}

    instances = [Instance(name, env, folder / f"gunicorn-{added}-{name}.log") for name in ("A", "B")]
    try:
        with MemoryGuard(instances) as guard:
            try:
                run_steps(result, settings, instances, editor, place, pages, burst_fids, next_pages, progress)
            except (OSError, http.client.HTTPException, RuntimeError) as error:
                if guard.tripped is None:
                    raise
                result.notes.append(f"{guard.tripped} ({type(error).__name__}); later figures are missing")
                progress(f"edits, {label}: {guard.tripped}")
    finally:
        run_parallel([instance.stop for instance in instances])
    return result


def run_steps(
    result: SizeResult,
    settings: Settings,
    instances: list[Instance],
    editor: Editor,
    place: District,
    pages: list[str],
    burst_fids: list[int],
    next_pages: dict[int, str],
    progress: Callable[[str], None],
) -> None:
    label = f"{result.added:,} covers added"
    ports = [instance.port for instance in instances]
    for instance in instances:
        progress(f"edits, {label}: starting instance {instance.name}")
        result.startup_s[instance.name] = instance.start()
        result.workers[instance.name] = instance.worker()

    progress(f"edits, {label}: warm-up, then worker memory")
    for instance in instances:
        with connection(instance.port) as client:
            for path in [*pages, *next_pages.values()]:
                client.get(path)
            for fid in [*burst_fids, *next_pages]:
                feature = orjson.loads(client.get(feature_path(fid))[0])
                if feature["properties"]["code"] != place.codes[fid - 1]:
                    raise RuntimeError(f"feature {fid} is not the cover written at position {fid - 1}")
                editor.learn(feature)
    result.pss_before = {i.name: memory(i.worker()) for i in instances}

    done = threading.Event()
    done.set()
    progress(f"edits, {label}: {settings.readers} readers x {settings.reads} bbox pages, no edits")
    with timing.no_gc():
        quiet = read_pages(ports, pages, settings, done, time.perf_counter() + settings.budget_s)
    raise_failures(quiet)
    result.reads_quiet = Stats.of(quiet.durations_ns)
    result.slowest_ms["quiet"] = max(quiet.durations_ns) / 1e6
    result.service["quiet"] = Stats.of(quiet.service_ns)

    progress(f"edits, {label}: the same readers during {len(burst_fids)} edits")
    done = threading.Event()
    deadline = time.perf_counter() + settings.budget_s
    writer: dict[str, Any] = {}

    def write() -> None:
        try:
            writer["durations"], writer["seconds"] = burst(ports, editor, burst_fids, done, deadline)
        except BaseException as error:  # reported below, in the main thread
            writer["error"] = error

    thread = threading.Thread(target=write, name="writer")
    with timing.no_gc():
        thread.start()
        during = read_pages(ports, pages, settings, done, deadline)
        thread.join()
    if "error" in writer:
        raise writer["error"]
    raise_failures(during)
    result.reads_edits = Stats.of(during.durations_ns)
    result.slowest_ms["edits"] = max(during.durations_ns) / 1e6
    result.service["edits"] = Stats.of(during.service_ns)
    result.burst_edits, result.burst_s = len(writer["durations"]), writer["seconds"]
    result.burst_patch = Stats.of(writer["durations"]) if writer["durations"] else None
    if result.burst_edits < len(burst_fids):
        result.notes.append(
            f"budget of {settings.budget_s:.0f} s reached after {result.burst_edits} of {len(burst_fids)} edits"
        )

    progress(f"edits, {label}: every edited cover and bbox page on both instances, then worker memory")
    edited = burst_fids[: result.burst_edits]

    def catch_up(instance: Instance) -> None:
        with connection(instance.port) as client:
            for fid in edited:
                feature = orjson.loads(client.get(feature_path(fid))[0])
                result_check(result, feature["properties"]["status"] == editor.status[fid], instance, fid)
            for path in pages:
                client.get(path)

    run_parallel([lambda i=i: catch_up(i) for i in instances])
    result.pss_after = {i.name: memory(i.worker()) for i in instances}

    progress(f"edits, {label}: next read after an edit, up to {len(next_pages)} times")
    deadline = time.perf_counter() + settings.budget_s
    patches: list[int] = []
    reads: dict[str, list[int]] = {i.name: [] for i in instances}
    for fid, path in next_pages.items():
        if time.perf_counter() > deadline:
            result.notes.append(
                f"budget of {settings.budget_s:.0f} s reached after {len(patches)} of {len(next_pages)} "
                "next-read repeats"
            )
            break
        with timing.no_gc():
            with connection(instances[0].port) as client:
                patches.append(editor.toggle(client, fid))
            for instance in instances:
                with connection(instance.port) as client:
                    body, elapsed = client.get(path)
                reads[instance.name].append(elapsed)
                result_check(result, status_in_page(body, fid) == editor.status[fid], instance, fid)
    result.repeats = len(patches)
    result.next_patch = Stats.of(patches) if patches else None
    result.next_read = {name: Stats.of(durations) for name, durations in reads.items() if durations}
    result.restarted = [i.name for i in instances if i.worker() != result.workers[i.name]]
    if result.restarted:
        result.notes.append(f"worker replaced during the run on {', '.join(result.restarted)} (see its log)")


def result_check(result: SizeResult, fresh: bool, instance: Instance, fid: int) -> None:
    if fresh:
        result.fresh += 1
    else:
        result.stale += 1
        result.notes.append(f"stale: instance {instance.name} did not show the edit of cover {fid}")


def raise_failures(reads: Reads) -> None:
    if reads.failures:
        raise RuntimeError("; ".join(reads.failures[:3]))


# -- report ----------------------------------------------------------------------------------------


def _pair(values: dict[str, Any], fmt: Callable[[Any], str]) -> str:
    return " / ".join(fmt(v) for v in values.values()) if values else "-"


def _gb(value: float) -> str:
    return size_bytes(value) if value < 1e9 else f"{value / 1e9:.2f} GB"


def _verdict(value: float | None, limit: float) -> str:
    return "-" if value is None else "PASS" if value <= limit else "MISS"


def rows(r: SizeResult) -> list[list[str]]:
    """figure, measured, target, issue (before the rewrite), result."""
    a, b = (r.next_read.get(name) for name in ("A", "B"))
    today = TODAY_NEXT_READ.get(r.added, "-")
    pss_today = TODAY_PSS.get(r.added, ("-", "-", "-"))
    quiet, edits = r.reads_quiet, r.reads_edits
    startup_target = f"<= {TARGET_STARTUP_S:.0f} s" if r.added == STARTUP_TARGET_SIZE else "-"
    startup = r.startup_median_s
    edits_label = f"p99 read during {r.burst_edits} edits" if r.burst_edits else "p99 read during the edits"
    return [
        [
            "next read after edit, A (edited), median",
            duration(a and a.median_ms),
            f"<= {TARGET_NEXT_READ_MS:.0f} ms",
            today,
            _verdict(a and a.median_ms, TARGET_NEXT_READ_MS),
        ],
        ["next read after edit, A, p99", duration(a and a.p99_ms), "-", "-", ""],
        [
            "next read after edit, B (other), median",
            duration(b and b.median_ms),
            f"<= {TARGET_NEXT_READ_MS:.0f} ms",
            today,
            _verdict(b and b.median_ms, TARGET_NEXT_READ_MS),
        ],
        ["next read after edit, B, p99", duration(b and b.p99_ms), "-", "-", ""],
        ["PATCH itself (through A), median", duration(r.next_patch and r.next_patch.median_ms), "-", "-", ""],
        ["p99 read, no edits", duration(quiet and quiet.p99_ms), "-", "-", ""],
        [edits_label, duration(edits and edits.p99_ms), "-", "-", ""],
        [
            "p99 during / without",
            ratio(r.p99_ratio),
            f"<= {TARGET_P99_RATIO:.0f}x",
            "-",
            _verdict(r.p99_ratio, TARGET_P99_RATIO),
        ],
        ["worker PSS before, A / B", _pair(r.pss_before, lambda m: _gb(m.pss)), "-", pss_today[0], ""],
        [
            f"worker PSS after {r.burst_edits} edits, A / B",
            _pair(r.pss_after, lambda m: _gb(m.pss)),
            "-",
            pss_today[1],
            "",
        ],
        [
            "PSS after / before, worse worker",
            ratio(r.worst_memory_ratio),
            f"<= {TARGET_MEMORY_RATIO}x",
            pss_today[2],
            _verdict(r.worst_memory_ratio, TARGET_MEMORY_RATIO),
        ],
        [
            "start-up to first /api/layers, A / B",
            _pair(r.startup_s, lambda s: duration(s * 1000)),
            startup_target,
            TODAY_STARTUP.get(r.added, "-"),
            _verdict(startup, TARGET_STARTUP_S) if r.added == STARTUP_TARGET_SIZE else "",
        ],
        [
            "reads showing the edit",
            f"{r.fresh}/{r.fresh + r.stale}",
            "all",
            "-",
            "-" if not r.fresh + r.stale else "PASS" if not r.stale else "FAIL",
        ],
    ]


def render(results: list[SizeResult], settings: Settings) -> str:
    sections = [settings.note] if settings.note else []
    for r in results:
        title = (
            f"Edits and snapshots, {r.covers:,} covers (demo + {r.added:,}); 2 gunicorn instances x 1 worker"
            f" on one store; next read: {r.repeats} edits through A"
        )
        text = table(title, ["figure", "measured", "target", "issue (before)", "result"], rows(r), left=[0, 2, 3, 4])
        details = [
            f"reads: {settings.readers} readers, each of one instance, a page of ~{FEATURES} covers every "
            f"{settings.interval_s * 1000:g} ms, timed from when due (send to answer: the server's share)"
        ]
        for key, label, stats in (("quiet", "no edits", r.reads_quiet), ("edits", "during edits", r.reads_edits)):
            if stats is not None:
                service = r.service[key]
                details.append(
                    f"  {label}: {count(stats.count)} reads, median {duration(stats.median_ms)}, "
                    f"slowest {duration(r.slowest_ms[key])}; send to answer median "
                    f"{duration(service.median_ms)}, p99 {duration(service.p99_ms)}"
                )
        if r.burst_s is not None:
            details.append(
                f"writer: {r.burst_edits} PATCHes in {r.burst_s:.1f} s, "
                f"median {duration(r.burst_patch and r.burst_patch.median_ms)}, "
                f"p99 {duration(r.burst_patch and r.burst_patch.p99_ms)}"
            )
        if r.pss_after:
            peaks = {name: m.peak_rss for name, m in r.pss_after.items()}
            details.append(f"worker peak RSS (VmHWM), A / B: {_pair(peaks, _gb)}")
        details += r.notes
        sections.append(text + "\n" + "\n".join(details))
    return "\n\n".join(sections)


def failed(results: list[SizeResult]) -> bool:
    return any(r.stale for r in results)


def write(results: list[SizeResult], settings: Settings, text: str, output: Path) -> None:
    payload = {
        "meta": {
            "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "settings": dataclasses.asdict(settings),
            "commit": git_commit(),
            "cpus": os.cpu_count(),
        },
        "sizes": [
            dataclasses.asdict(r)
            | {
                "p99_ratio": r.p99_ratio,
                "worst_memory_ratio": r.worst_memory_ratio,
                "startup_median_s": r.startup_median_s,
            }
            for r in results
        ],
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_bytes(orjson.dumps(payload, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY))
    output.with_suffix(".txt").write_text(text + "\n")


def run(settings: Settings, progress: Callable[[str], None]) -> list[SizeResult]:
    with tempfile.TemporaryDirectory(prefix="geoapp-bench-edits-") as tmp:
        return [measure_size(added, settings, Path(tmp), progress) for added in settings.sizes]


# -- command line ----------------------------------------------------------------------------------


def at_least_one(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def size_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(at_least_one(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"sizes must be whole numbers separated by commas, not {text!r}") from None


def parse_args(argv: list[str] | None = None) -> tuple[Settings, Path]:
    parser = argparse.ArgumentParser(prog="python -m bench edits", description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--sizes", type=size_list, default=SIZES, help="synthetic covers added to the demo's, comma-separated")
    add("--repeat", type=at_least_one, default=REPEAT, help=f"edits timed for the next read (default {REPEAT})")
    add("--edits", type=at_least_one, default=EDITS, help=f"edits in the burst (default {EDITS})")
    add("--readers", type=at_least_one, default=READERS, help=f"reader threads (default {READERS})")
    add("--reads", type=at_least_one, default=READS, help=f"bbox pages per reader (default {READS})")
    add("--interval", type=float, default=INTERVAL_S, help=f"seconds between a reader's reads (default {INTERVAL_S})")
    add("--budget", type=float, default=BUDGET_S, help=f"seconds per timed step and size (default {BUDGET_S:.0f})")
    add("--seed", type=int, default=SEED, help="seed of the synthetic covers, pages and edits")
    add("--note", default="", help="a line printed above the tables and kept in the JSON (which code was measured)")
    add("--output", type=Path, default=DEFAULT_OUTPUT, help="JSON results; the table goes beside it as .txt")
    args = parser.parse_args(argv)
    settings = Settings(
        sizes=args.sizes,
        repeat=args.repeat,
        edits=args.edits,
        readers=args.readers,
        reads=args.reads,
        interval_s=args.interval,
        budget_s=args.budget,
        seed=args.seed,
        note=args.note,
    )
    return settings, args.output


def main(argv: list[str] | None = None) -> int:
    settings, output = parse_args(argv)
    started = time.perf_counter()

    def progress(message: str) -> None:
        print(f"[{time.perf_counter() - started:6.1f} s] {message}", file=sys.stderr, flush=True)

    return measure_and_report(settings, output, progress)


def measure_and_report(settings: Settings, output: Path, progress: Callable[[str], None]) -> int:
    """Run, print the tables, write the files; 1 if a read missed an edit."""
    started = time.perf_counter()
    results = run(settings, progress)
    text = render(results, settings)
    print(text)
    write(results, settings, text, output)
    took = time.perf_counter() - started
    print(f"\nEdits part finished in {took:.0f} s; written to {output} and {output.with_suffix('.txt')}")
    return 1 if failed(results) else 0


if __name__ == "__main__":
    sys.exit(main())
