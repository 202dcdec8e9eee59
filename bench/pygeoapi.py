"""geoapp beside pygeoapi on the same data: ``python -m bench pygeoapi [--quick]``.

What is measured
----------------
For each size (default 100,000 and 1,000,000) the same synthetic manhole covers
(:func:`bench.data.synthetic_layer`, fixed seed) are written once by geoapp into a GeoPackage and,
when geoapp has a PostGIS store, into a PostGIS database of a private cluster. geoapp serves each
store through gunicorn as ``make run`` does; pygeoapi (its own venv, see :mod:`bench.pygeoapi_setup`)
serves the same file through its OGR and its SQLiteGPKG providers and the same table through its
PostgreSQL provider, configured as its documentation shows. Both run under gunicorn with
:data:`~bench.pygeoapi_setup.WORKERS` gthread workers of :data:`~bench.pygeoapi_setup.THREADS`
threads, on loopback, and answer plain GeoJSON (no gzip: ``http.client`` asks for identity).

Cases, each timed on every server of a backend:

- ``page 400`` and ``page 1000``: the first page (``limit``) of a bbox holding about :data:`MATCHES`
  covers (:data:`BOXES` boxes, cycled); every answer is checked: that many features, no id twice,
  each inside the box (against geopandas on the generated frame);
- ``item``: one feature by id (random ids), checked to be that feature;
- ``paging``: every page of such a bbox, ``limit`` :data:`WALK_LIMIT`, following each server's
  ``next`` links; one walk is one timed operation, and it is exact when the ids returned are the
  bbox's true set, each once.

Each case runs at 1 and at 4 concurrent clients (threads, each on its own keep-alive connection).
The servers take turns round by round, in a rotating order (at 1 client a round is one request),
so that noise on this shared machine falls on all alike; each server first answers every box and a
few items untimed. Per server: median and p99 latency, requests per second (operations over the
summed wall time of its rounds), and the speed-up geoapp over each pygeoapi provider (ratio of
medians). A case stops taking rounds after ``--budget`` seconds.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import math
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import orjson
import shapely

from bench import pygeoapi_setup as setup
from bench import timing
from bench.data import LAYER_ID, LAYERS_DIR, Area, square_bbox, synthetic_layer
from bench.serving import Client, Instance, git_commit
from bench.tables import count, duration, ratio, table
from bench.timing import Stats
from geoapp.config import PROJECT_ROOT
from geoapp.core.layers import Registry

SIZES = (100_000, 1_000_000)
MATCHES = 9_000  # covers in each bbox
BOXES = 8
PAGE_LIMITS = (400, 1000)
WALK_LIMIT = 1000
CLIENTS = (1, 4)
ROUNDS = 30  # per case; at 4 clients each client sends one request per round
WALK_ROUNDS = 4
BUDGET_S = 60.0  # per case, all servers together
SEED = 20261201
TARGETS = {"page": 50.0, "item": 20.0}  # geoapp over pygeoapi, median latency
RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_OUTPUT = RESULTS / "pygeoapi.json"
GEOAPP = "geoapp"


@dataclass
class Settings:
    sizes: tuple[int, ...] = SIZES
    clients: tuple[int, ...] = CLIENTS
    rounds: int = ROUNDS
    walk_rounds: int = WALK_ROUNDS
    budget_s: float = BUDGET_S
    backends: tuple[str, ...] = ("gpkg", "postgis")
    seed: int = SEED
    geoapp_env: tuple[str, ...] = ()  # NAME=VALUE settings for geoapp, e.g. GEOAPP_SQL_ABOVE=2000000


QUICK = dict(sizes=(100_000,), rounds=10, walk_rounds=2, budget_s=30.0)


# -- the servers as the client sees them ----------------------------------------------------------


@dataclass(frozen=True)
class Side:
    """One server of one backend: how to ask it for a page, an item, and where its next page is."""

    name: str  # "geoapp" or a pygeoapi provider
    port: int
    collection: str | None = None  # pygeoapi's collection id; None for geoapp

    def page(self, bbox: Sequence[float], limit: int) -> str:
        box = ",".join(map(repr, bbox))  # repr round-trips, so both parse exactly the same box
        if self.collection is None:
            return f"/api/layers/{LAYER_ID}/features?bbox={box}&limit={limit}"
        return f"/collections/{self.collection}/items?bbox={box}&limit={limit}&f=json"

    def item(self, fid: int) -> str:
        if self.collection is None:
            return f"/api/layers/{LAYER_ID}/features/{fid}"
        return f"/collections/{self.collection}/items/{fid}?f=json"


def next_path(document: dict) -> str | None:
    for link in document.get("links", ()):
        if link.get("rel") == "next":
            parts = urlsplit(link["href"])
            return f"{parts.path}?{parts.query}"
    return None


def feature_ids(document: dict) -> list[int]:
    return [int(feature["id"]) for feature in document["features"]]


# -- operations: each returns (nanoseconds, what to check) ----------------------------------------


@dataclass(frozen=True)
class Failed:
    """An answer other than 200: counted apart, left out of the latencies."""

    status: int
    body: bytes


def get_once(client: Client, path: str) -> tuple[int, bytes | Failed]:
    status, body, elapsed = client.request("GET", path)
    return elapsed, body if status == 200 else Failed(status, body[:300])


def walk(client: Client, first: str, max_pages: int) -> tuple[int, list[int] | Failed]:
    """Every page from ``first`` on, following ``next``; the time of them all and every id returned."""
    ids: list[int] = []
    total, path, pages = 0, first, 0
    while path is not None and pages < max_pages:
        status, body, elapsed = client.request("GET", path)
        if status != 200:
            return total + elapsed, Failed(status, body[:300])
        total += elapsed
        document = orjson.loads(body)  # between requests: only the requests are timed
        ids += feature_ids(document)
        path, pages = next_path(document), pages + 1
    return total, ids


@dataclass
class Sample:
    durations_ns: list[int] = field(default_factory=list)
    wall_ns: int = 0
    results: list[Any] = field(default_factory=list)


def interleaved(
    sides: Sequence[Side],
    operation: Callable[[Side, Client, int], tuple[int, Any]],
    clients: int,
    rounds: int,
    budget_s: float,
    connections: dict[tuple[str, int], Client],
) -> tuple[dict[str, Sample], int]:
    """``rounds`` rounds; in each, every side in turn (rotating order) serves one operation per client at once.

    ``operation(side, client, k)`` does the k-th operation of the case; every side gets the same k's.
    Returns each side's sample and the rounds done (fewer when the budget ran out).
    """
    samples = {side.name: Sample() for side in sides}
    deadline = time.perf_counter() + budget_s
    done = 0
    for r in range(rounds):
        if r and time.perf_counter() > deadline:
            break
        for j in range(len(sides)):
            side = sides[(r + j) % len(sides)]
            sample = samples[side.name]
            ks = [r * clients + c for c in range(clients)]
            if clients == 1:
                elapsed, result = operation(side, connections[(side.name, 0)], ks[0])
                sample.durations_ns.append(elapsed)
                sample.results.append((ks[0], result))
                sample.wall_ns += elapsed
                continue
            start, end, outcomes = concurrently(
                side, operation, [connections[(side.name, c)] for c in range(clients)], ks
            )
            sample.wall_ns += end - start
            for k, (elapsed, result) in zip(ks, outcomes, strict=True):
                sample.durations_ns.append(elapsed)
                sample.results.append((k, result))
        done += 1
    return samples, done


def concurrently(
    side: Side, operation: Callable[[Side, Client, int], tuple[int, Any]], clients: Sequence[Client], ks: Sequence[int]
) -> tuple[int, int, list[tuple[int, Any]]]:
    """Operation ``ks[c]`` on client ``c``, all at once (released together); first start, last end, the outcomes."""
    outcomes: list[Any] = [None] * len(clients)
    barrier = threading.Barrier(len(clients))

    def run(c: int) -> None:
        barrier.wait()
        start = time.perf_counter_ns()
        try:
            elapsed, result = operation(side, clients[c], ks[c])
            outcomes[c] = (start, elapsed, result, time.perf_counter_ns())
        except BaseException as error:  # re-raised below, in the caller's thread
            outcomes[c] = error

    threads = [threading.Thread(target=run, args=(c,)) for c in range(len(clients))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
    return min(o[0] for o in outcomes), max(o[3] for o in outcomes), [(o[1], o[2]) for o in outcomes]


# -- results ----------------------------------------------------------------------------------------


@dataclass
class SideResult:
    side: str
    stats: Stats
    per_s: float
    checked: int
    wrong: int  # answers that were not what the case asks (a page of other features, a walk not exact)
    failed: dict[str, int] = field(default_factory=dict)  # HTTP status -> answers (not 200), not in the latencies
    walk: dict[str, int] | None = None  # paging: ids returned, unique, true count (the worst walk)
    notes: list[str] = field(default_factory=list)


@dataclass
class CaseResult:
    size: int
    backend: str
    case: str  # "page 400", "page 1000", "item", "paging"
    clients: int
    rounds: int
    matched_mean: float  # true matches of the boxes (items: 1)
    sides: list[SideResult] = field(default_factory=list)

    def side(self, name: str) -> SideResult | None:
        return next((s for s in self.sides if s.side == name), None)

    def speedup(self, name: str) -> float | None:
        ours, theirs = self.side(GEOAPP), self.side(name)
        if ours is None or theirs is None:
            return None
        return theirs.stats.median_ms / ours.stats.median_ms

    def throughput_ratio(self, name: str) -> float | None:
        ours, theirs = self.side(GEOAPP), self.side(name)
        if ours is None or theirs is None or not theirs.per_s:
            return None
        return ours.per_s / theirs.per_s


@dataclass
class Run:
    meta: dict[str, Any]
    cases: list[CaseResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# -- one backend at one size ------------------------------------------------------------------------


class Truth:
    """The generated covers, and which of them each box holds (geopandas, independent of both servers)."""

    def __init__(self, frame, boxes: list[tuple[float, float, float, float]]):
        self.fids = frame.index.to_numpy()
        self.boxes = boxes
        tree = frame.sindex
        self.inside = [set(self.fids[tree.query(shapely.box(*b), predicate="intersects")].tolist()) for b in boxes]

    def box(self, k: int) -> int:
        return k % len(self.boxes)


def check_page(truth: Truth, k: int, body: bytes, limit: int) -> bool:
    ids = feature_ids(orjson.loads(body))
    inside = truth.inside[truth.box(k)]
    return len(ids) == min(limit, len(inside)) and len(set(ids)) == len(ids) and set(ids) <= inside


def measure_backend(
    size: int,
    backend: str,
    sides: list[Side],
    truth: Truth,
    item_ids: np.ndarray,
    settings: Settings,
    progress: Callable[[str], None],
) -> list[CaseResult]:
    results: list[CaseResult] = []
    matched = float(np.mean([len(s) for s in truth.inside]))
    max_pages = 3 * math.ceil(max(len(s) for s in truth.inside) / WALK_LIMIT) + 5
    with ExitStack() as stack:
        connections: dict[tuple[str, int], Client] = {}
        for side in sides:
            for c in range(max(settings.clients)):
                connections[(side.name, c)] = client = Client(side.port)
                stack.callback(client.close)
        progress(f"{size:,} {backend}: warm-up (every box and 20 items on each server)")
        for side in sides:
            client = connections[(side.name, 0)]
            for bbox in truth.boxes:
                client.get(side.page(bbox, max(PAGE_LIMITS)))
            for fid in item_ids[:20]:
                client.get(side.item(int(fid)))

        cases: list[tuple[str, Callable[[Side, Client, int], tuple[int, Any]], Callable[[int, Any], bool], int]] = []
        for limit in PAGE_LIMITS:
            cases.append(
                (
                    f"page {limit}",
                    lambda side, client, k, limit=limit: get_once(client, side.page(truth.boxes[truth.box(k)], limit)),
                    lambda k, body, limit=limit: check_page(truth, k, body, limit),
                    settings.rounds,
                )
            )
        cases.append(
            (
                "item",
                lambda side, client, k: get_once(client, side.item(int(item_ids[k % len(item_ids)]))),
                lambda k, body: feature_ids({"features": [orjson.loads(body)]}) == [int(item_ids[k % len(item_ids)])],
                settings.rounds,
            )
        )
        cases.append(
            (
                "paging",
                lambda side, client, k: walk(client, side.page(truth.boxes[truth.box(k)], WALK_LIMIT), max_pages),
                lambda k, ids: len(ids) == len(truth.inside[truth.box(k)]) and set(ids) == truth.inside[truth.box(k)],
                settings.walk_rounds,
            )
        )
        for name, operation, check, rounds in cases:
            for clients in settings.clients:
                progress(f"{size:,} {backend}: {name}, {clients} client(s), up to {rounds} rounds")
                with timing.no_gc():
                    samples, done = interleaved(sides, operation, clients, rounds, settings.budget_s, connections)
                case = CaseResult(size, backend, name, clients, done, 1.0 if name == "item" else matched)
                for side in sides:
                    case.sides.append(side_result(side.name, samples[side.name], check, truth, name == "paging"))
                results.append(case)
    return results


def side_result(name: str, sample: Sample, check: Callable[[int, Any], bool], truth: Truth, paging: bool) -> SideResult:
    """One server's figures for a case: latencies of the answered operations, checks of every answer."""
    answered = [(k, r) for k, r in sample.results if not isinstance(r, Failed)]
    durations = [d for d, (_, r) in zip(sample.durations_ns, sample.results, strict=True) if not isinstance(r, Failed)]
    failed: dict[str, int] = {}
    for _, r in sample.results:
        if isinstance(r, Failed):
            failed[str(r.status)] = failed.get(str(r.status), 0) + 1
    verdicts = [check(k, r) for k, r in answered]
    walk_figures = None
    if paging and answered:
        k, ids = min(answered, key=lambda kr: len(set(kr[1])) / len(truth.inside[truth.box(kr[0])]))
        inside = truth.inside[truth.box(k)]
        walk_figures = {
            "returned": len(ids),
            "unique": len(set(ids)),
            "correct": len(set(ids) & inside),
            "true": len(inside),
        }
    return SideResult(
        side=name,
        stats=Stats.of(durations) if durations else Stats(math.nan, math.nan, 0),
        per_s=len(durations) / (sample.wall_ns / 1e9),
        checked=len(verdicts),
        wrong=verdicts.count(False),
        failed=failed,
        walk=walk_figures,
    )


def measure_size(size: int, settings: Settings, run: Run, progress: Callable[[str], None]) -> None:
    registry = Registry.load(LAYERS_DIR)
    area = Area()
    frame = synthetic_layer(registry[LAYER_ID], area, size, settings.seed)
    side_m = 1000 * math.sqrt(MATCHES / (size / area.square_km2))
    rng = np.random.default_rng([settings.seed, size, 1])
    boxes = [square_bbox(area, centre, side_m) for centre in area.uniform_points(rng, BOXES, side_m / 2)]
    truth = Truth(frame, boxes)
    item_ids = rng.choice(frame.index.to_numpy(), 4 * settings.rounds * max(settings.clients) + 20, replace=False)
    extent = tuple(float(v) for v in frame.total_bounds)
    folder = setup.ROOT / f"run-{size}"
    folder.mkdir(parents=True, exist_ok=True)
    stores: dict[str, tuple[str, dict[str, dict]]] = {}
    if "gpkg" in settings.backends:
        gpkg = setup.gpkg_store(registry, frame, settings.seed, progress)
        stores["gpkg"] = (str(gpkg), {setup.OGR: setup.ogr_provider(gpkg), setup.SQLITE: setup.sqlite_provider(gpkg)})
    if "postgis" in settings.backends:
        if setup.postgis_available():
            url = setup.postgis_store(registry, frame, settings.seed, progress)
            stores["postgis"] = (url, {setup.POSTGRESQL: setup.postgresql_provider(url)})
        else:
            note = "PostGIS: skipped, geoapp has no PostGIS store yet (geoapp.store.BACKENDS has no postgresql)"
            if note not in run.notes:
                run.notes.append(note)
    for backend, (location, providers) in stores.items():
        env = {**os.environ, "GEOAPP_DATABASE": location, "GEOAPP_LAYERS": str(LAYERS_DIR)}
        env["GEOAPP_SECRET_KEY"] = "bench-pygeoapi"
        env.update(setting.split("=", 1) for setting in settings.geoapp_env)
        geoapp = Instance(GEOAPP, env, folder / f"geoapp-{backend}.log", workers=setup.WORKERS)
        pygeoapi = setup.PygeoapiServer(folder / backend, providers, extent)
        try:
            progress(f"{size:,} {backend}: starting geoapp and pygeoapi")
            geoapp.start()
            pygeoapi.start()
            sides = [Side(GEOAPP, geoapp.port)]
            sides += [Side(name, pygeoapi.port, setup.collection_id(name)) for name in providers]
            run.cases += measure_backend(size, backend, sides, truth, item_ids, settings, progress)
        finally:
            pygeoapi.stop()
            geoapp.stop()


# -- report -----------------------------------------------------------------------------------------


def _answers(side: SideResult) -> str:
    if side.walk is not None:
        w = side.walk
        mark = "exact" if not side.wrong else f"NOT exact ({side.wrong} of {side.checked}); worst"
        text = f"{mark}: {w['unique']:,} unique of {w['true']:,} in {w['returned']:,} returned"
    else:
        text = "all right" if not side.wrong else f"{side.wrong} of {side.checked} wrong"
    failed = ", ".join(f"{n} HTTP {status}" for status, n in sorted(side.failed.items()))
    return f"{text}; {failed} (not timed)" if failed else text


def case_rows(run: Run) -> list[list[str]]:
    rows = []
    for case in run.cases:
        for side in case.sides:
            ours = side.side == GEOAPP
            speed = "" if ours else ratio(case.speedup(side.side))
            rate = "" if ours else ratio(case.throughput_ratio(side.side))
            rows.append(
                [
                    count(case.size),
                    case.backend,
                    case.case,
                    str(case.clients),
                    side.side,
                    count(side.stats.count),
                    duration(side.stats.median_ms),
                    duration(side.stats.p99_ms),
                    f"{side.per_s:,.1f}",
                    speed,
                    rate,
                    _answers(side),
                ]
            )
    return rows


def evaluate(run: Run) -> list[dict[str, Any]]:
    """Each target against each pygeoapi provider, case and client count."""
    verdicts = []
    for case in run.cases:
        kind = case.case.split()[0]
        if kind not in TARGETS:
            continue
        for side in case.sides:
            if side.side == GEOAPP:
                continue
            value = case.speedup(side.side)
            verdicts.append(
                {
                    "size": case.size,
                    "backend": case.backend,
                    "case": case.case,
                    "clients": case.clients,
                    "versus": side.side,
                    "speedup": value,
                    "target": TARGETS[kind],
                    "status": "PASS" if value is not None and value >= TARGETS[kind] else "MISS",
                }
            )
    return verdicts


def render(run: Run) -> str:
    headers = ["points", "backend", "case", "clients", "server", "n", "median", "p99", "req/s", "speed-up", "req/s x"]
    headers.append("answers")
    meta = run.meta
    title = (
        f"geoapp beside pygeoapi {meta['versions'].get('pygeoapi', '?')} on loopback, same data "
        f"({setup.WORKERS} gunicorn workers x {setup.THREADS} threads each; bbox of ~{MATCHES:,} matches; "
        f"speed-up = pygeoapi median / geoapp median; req/s x = geoapp req/s / pygeoapi req/s)"
    )
    sections = [table(title, headers, case_rows(run), left=[1, 2, 4, 11])]
    target_rows = [
        [
            v["status"],
            f"{count(v['size'])} {v['backend']} {v['case']}, {v['clients']} client(s), vs {v['versus']}",
            ratio(v["speedup"]),
            f">= {v['target']:.0f}x",
        ]
        for v in evaluate(run)
    ]
    sections.append(
        table(
            "Targets (geoapp / pygeoapi, medians)", ["result", "target", "measured", "limit"], target_rows, left=[0, 1]
        )
    )
    lines = [
        f"load average before: {meta['load_before']}, after: {meta.get('load_after', '-')}; "
        f"pygeoapi venv: {', '.join(f'{k} {v}' for k, v in meta['versions'].items())}"
    ]
    dirty = meta.get("uncommitted") or []
    lines.append(
        f"geoapp: commit {str(meta.get('commit'))[:7]}"
        + (f" with {len(dirty)} uncommitted files in geoapp/" if dirty else "")
        + f"; command: {meta['command']}; started {meta['started_at']}"
    )
    if meta["settings"].get("geoapp_env"):
        lines.append(f"geoapp settings: {' '.join(meta['settings']['geoapp_env'])}")
    lines += run.notes
    sections.append("\n".join(lines))
    return "\n\n".join(sections)


def write(run: Run, text: str, output: Path) -> None:
    payload = dataclasses.asdict(run) | {"targets": evaluate(run)}
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_bytes(orjson.dumps(payload, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY))
    output.with_suffix(".txt").write_text(text + "\n")


# -- command line ---------------------------------------------------------------------------------


def _list(kind: Callable[[str], Any]) -> Callable[[str], tuple]:
    def parse(text: str) -> tuple:
        try:
            return tuple(kind(part) for part in text.split(","))
        except ValueError:
            raise argparse.ArgumentTypeError(f"a comma-separated list, not {text!r}") from None

    return parse


def _backend(text: str) -> str:
    if text not in ("gpkg", "postgis"):
        raise ValueError(text)
    return text


def _setting(text: str) -> str:
    name, sep, _ = text.partition("=")
    if not sep or not name.startswith("GEOAPP_"):
        raise argparse.ArgumentTypeError(f"a GEOAPP_NAME=VALUE setting, not {text!r}")
    return text


def parse_args(argv: list[str] | None) -> tuple[Settings, Path]:
    parser = argparse.ArgumentParser(prog="python -m bench pygeoapi", description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--quick", action="store_true", help="100k points only, fewer rounds")
    add("--sizes", type=_list(int), help=f"points, comma-separated (default {','.join(map(str, SIZES))})")
    add("--clients", type=_list(int), default=CLIENTS, help="concurrent clients, comma-separated (default 1,4)")
    add("--backends", type=_list(_backend), default=("gpkg", "postgis"), help="gpkg,postgis (default both)")
    add("--rounds", type=int, help=f"rounds per case (default {ROUNDS}, quick {QUICK['rounds']})")
    add("--walk-rounds", type=int, help=f"rounds of the paging case (default {WALK_ROUNDS})")
    add("--budget", type=float, help=f"seconds per case (default {BUDGET_S:.0f})")
    add("--seed", type=int, default=SEED)
    add(
        "--geoapp-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        type=_setting,
        help="a setting for geoapp (repeatable), e.g. GEOAPP_SQL_ABOVE=2000000: 1M in memory on PostGIS",
    )
    add("--output", type=Path, default=DEFAULT_OUTPUT, help="JSON results; the table goes beside it as .txt")
    args = parser.parse_args(argv)
    base = Settings(**QUICK) if args.quick else Settings()
    settings = dataclasses.replace(
        base,
        sizes=args.sizes or base.sizes,
        clients=args.clients,
        backends=args.backends,
        rounds=args.rounds or base.rounds,
        walk_rounds=args.walk_rounds or base.walk_rounds,
        budget_s=args.budget or base.budget_s,
        seed=args.seed,
        geoapp_env=tuple(args.geoapp_env),
    )
    return settings, args.output


def uncommitted() -> list[str]:
    """geoapp's files that differ from the commit: the tree is shared, and what runs is the working copy."""
    out = subprocess.run(
        ["git", "status", "--short", "--", "geoapp", "gunicorn.conf.py", "wsgi.py"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
    )
    return out.stdout.split("\n")[:-1] if out.returncode == 0 else []


def main(argv: list[str] | None = None) -> int:
    settings, output = parse_args(argv)
    started = time.perf_counter()

    def progress(message: str) -> None:
        print(f"[{time.perf_counter() - started:6.1f} s] {message}", file=sys.stderr, flush=True)

    setup.install(progress)
    run = Run(
        meta={
            "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "command": " ".join(["python -m bench pygeoapi", *(sys.argv[2:] if argv is None else argv)]),
            "settings": dataclasses.asdict(settings),
            "commit": git_commit(),
            "uncommitted": uncommitted(),
            "cpus": os.cpu_count(),
            "load_before": " ".join(f"{v:.2f}" for v in os.getloadavg()),
            "versions": setup.versions(),
        }
    )
    try:
        for size in settings.sizes:
            measure_size(size, settings, run, progress)
    finally:
        if "postgis" in settings.backends:
            setup.stop_postgis()
    run.meta["load_after"] = " ".join(f"{v:.2f}" for v in os.getloadavg())
    text = render(run)
    print(text)
    write(run, text, output)
    print(f"\nwritten to {output} and {output.with_suffix('.txt')} in {time.perf_counter() - started:.0f} s")
    wrong_geoapp = [c for c in run.cases if (s := c.side(GEOAPP)) is not None and (s.wrong or s.failed)]
    return 1 if wrong_geoapp else 0


if __name__ == "__main__":
    sys.exit(main())
