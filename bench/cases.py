"""The case indicators of ten years of a city: ``python -m bench cases [--cases N] [--rounds R] [--quick]``.

The store
---------
A database ``bench_cases_<n>_<seed>`` of a private PostgreSQL cluster under ``build/bench-cases/pg``
(``scripts/pgcluster.py``, started and stopped by the run; ``--postgis-url`` names an empty database to use
instead, as the smoke test does with the suite's cluster) holds the demo district's layers and a ``cases`` layer
of ``--cases`` synthetic cases (default 1,000,000) reported over 2014-2023, more each year. It is built once and
kept: a later run with the same N and seed finds its mark in ``geoapp_meta`` and reuses it.

The cases are drawn with numpy, column by column (:func:`synthetic_cases`): the demo's subclasses in the demo
year's shares with their class, kind and department from ``layers/cases/workflow.yaml``; points uniform over the
demo district, each routed to the unit grid cell holding it (its code, community and squad); sources in the demo's
shares; reported by day (a night-market stall in the evening), registered 3-40 minutes later, dispatched 2-25
minutes after that, disposed within the class's hours (about 1 in 20 late), checked and closed; about 1.3 % void,
1 % registered or dispatched and not yet disposed, a few disposed or checked and still open, a few collected and not
registered. Case numbers run per year in the order reported.

How it is loaded: the demo district (its own 14,370 cases left out) goes through geoapp's ``create_store``, then the
N cases are written with PostgreSQL ``COPY`` into the ``cases`` table geoapp created (typed columns,
``geom geometry(Point,4326)``, ``_version`` 1) and the table ANALYZEd; the layer's version is moved on once, as a
bulk change. ``create_store``'s own path checks each feature in Python (``geoapp.core.validate.prepare``): 26 s per
100,000 cases here, over four minutes for a million before a row is written, where drawing and COPY take about
1.5 minutes in all. The rows are the same either way: ``tests/test_bench_cases.py`` writes 300 cases both ways and
compares the tables.

What is measured
----------------
A :class:`geoapp.core.service.Service` on the database as the app opens it, with ``sql_above=0`` so that the cases
are answered in SQL (a million cases are over ``GEOAPP_SQL_ABOVE``'s 2,000,000 default only for a larger city: the
app would hold this layer in memory) and the workflow of ``load_workflow``. Each round times
``svc.cases.indicators(actor, by)`` for every dimension of ``geoapp.cases.indicators.DIMENSIONS``, over the ten years
and over 2023 alone (start/end on the district's clock), as a dispatcher; one warm-up round first, then medians of
``--rounds`` rounds (7).

The baseline, in the same rounds on the same connection pool: ``SELECT count(*) FROM cases``, a full scan of the
table. Each case is printed with its median and its ratio to the baseline. Every answer is checked: the total's
``due`` equals a count of the registered statuses (``registered_at`` in the period) made here with its own SQL, and
every dimension's ``due`` sums to it. The exit status is 1 if a check fails or a median exceeds the 2.0 s target.
Results: printed, and written to ``bench/results/cases.json`` and ``cases.txt`` (``--output``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import io
import json
import os
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from bench.tables import duration, ratio, table
from geoapp.config import PROJECT_ROOT

PG_FOLDER = PROJECT_ROOT / "build" / "bench-cases" / "pg"
RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_OUTPUT = RESULTS / "cases.json"
SEED = 20140101
FIRST_YEAR, LAST_YEAR = 2014, 2023
ZONE = ZoneInfo("Asia/Shanghai")
TARGET_S = 2.0
#: written in geoapp_meta once the cases are in: a store with another mark (or none) is built again
MARK_KEY = "bench_cases"
#: bump when synthetic_cases draws differently, so that an old store is not taken for the new one
GENERATOR = 1
ACTOR_ROLES = frozenset({"dispatcher"})
#: the shares of the cases' sources (the demo year's)
SOURCES = {"patrol": 0.818, "hotline": 0.152, "sensor": 0.017, "public": 0.009, "web": 0.004}
VOID_SHARE, UNDISPOSED_SHARE, DISPOSED_OPEN_SHARE, VERIFIED_OPEN_SHARE = 0.013, 0.01, 0.0022, 0.0012


# -- the cases --------------------------------------------------------------------------------------


def synthetic_cases(n: int, seed: int, demo: dict, workflow) -> Any:
    """``n`` cases over 2014-2023 in the demo district, as a GeoDataFrame of the cases layer's fields (lon/lat;
    times as ``datetime64[s]`` in UTC, NaT where missing: :func:`as_layer_values` gives the layer's text), drawn
    column by column. Fields no synthetic case fills (address, public note, routing ...) are left out."""
    import geopandas as gpd
    import pandas as pd
    import shapely

    from data import demo_cases

    rng = np.random.default_rng(seed)
    # subclasses in the demo year's shares, their class, kind and department as the workflow gives them
    shares = demo["cases"]["subcategory"].value_counts(normalize=True)
    names = np.array(shares.index.tolist(), dtype=object)
    kind_index = rng.choice(len(names), n, p=shares.to_numpy() / shares.sum())
    subcategory = names[kind_index]
    classes = [workflow.classes[name] for name in names]
    category = np.array([c.category for c in classes], dtype=object)[kind_index]
    kind = np.array([c.kind for c in classes], dtype=object)[kind_index]
    department = np.array([c.department for c in classes], dtype=object)[kind_index]
    allowed_h = np.array([c.hours for c in classes])[kind_index]
    # points uniform over the district, each in the grid cell holding it (the lowest code on a border)
    cells = demo["grid_cells"].sort_values("code").reset_index(drop=True)
    area = shapely.union_all(cells.geometry.values)
    shapely.prepare(area)
    minx, miny, maxx, maxy = area.bounds
    xs, ys, have = [], [], 0
    while have < n:
        x, y = rng.uniform(minx, maxx, n), rng.uniform(miny, maxy, n)
        inside = shapely.contains_xy(area, x, y)
        xs.append(x[inside])
        ys.append(y[inside])
        have += int(inside.sum())
    points = shapely.points(np.concatenate(xs)[:n], np.concatenate(ys)[:n])
    hit_point, hit_cell = shapely.STRtree(cells.geometry.values).query(points, predicate="intersects")
    cell = np.full(n, -1)
    order = np.lexsort((hit_cell, hit_point))  # by point, then by cell: the first of each point is its lowest code
    first = np.unique(hit_point[order], return_index=True)[1]
    cell[hit_point[order][first]] = hit_cell[order][first]

    def of_cell(column: str) -> np.ndarray:
        values = np.append(cells[column].to_numpy(dtype=object), None)
        return values[cell]  # -1 (no cell) picks the None at the end

    # reported: a day of the ten years (more cases each year, as a city adds patrols), by day on the district's
    # clock; night-market stalls in the evening
    first_day = np.datetime64(f"{FIRST_YEAR}-01-01")
    days = int((np.datetime64(f"{LAST_YEAR + 1}-01-01") - first_day).astype(int))
    year_of_day = (first_day + np.arange(days)).astype("datetime64[Y]").astype(int) + 1970
    weight = 0.6 + 0.09 * (year_of_day - FIRST_YEAR)
    day = rng.choice(days, n, p=weight / weight.sum())
    hour = np.clip(rng.normal(13, 3.2, n), 6, 22)
    night = subcategory == "night_market"
    hour[night] = rng.uniform(18.5, 23.5, int(night.sum()))
    local = first_day.astype("datetime64[s]") + day * 86400 + (hour * 3600).astype(np.int64)
    reported = local - np.timedelta64(8 * 3600, "s")  # the district's clock is UTC+8 all year
    hour_s = 3600.0
    registered = reported + (rng.uniform(3, 40, n) * 60).astype(np.int64) * np.timedelta64(1, "s")
    dispatched = registered + (rng.uniform(2, 25, n) * 60).astype(np.int64) * np.timedelta64(1, "s")
    late = rng.random(n) < 0.06  # about 1 in 20 disposed of after the deadline
    share = rng.beta(2.2, 3.5, n) * np.where(late, 1.6, 0.95)
    disposal_s = allowed_h * share * hour_s + rng.uniform(0, 0.2, n) * hour_s
    disposed = dispatched + disposal_s.astype(np.int64) * np.timedelta64(1, "s")
    verified = disposed + (rng.uniform(10, 180, n) * 60).astype(np.int64) * np.timedelta64(1, "s")
    closed = verified + (rng.uniform(5, 90, n) * 60).astype(np.int64) * np.timedelta64(1, "s")
    deadline = registered + (allowed_h * hour_s).astype(np.int64) * np.timedelta64(1, "s")
    # statuses: void; collected (the last day's reports, not yet registered); due and not disposed of; disposed of
    # and waiting for the check; checked and not closed; closed
    u = rng.random(n)
    end = np.datetime64(f"{LAST_YEAR + 1}-01-01T00:00:00") - np.timedelta64(8 * 3600, "s")
    status = np.full(n, "closed", dtype=object)
    bounds = np.cumsum([VOID_SHARE, UNDISPOSED_SHARE, DISPOSED_OPEN_SHARE, VERIFIED_OPEN_SHARE])
    status[u < bounds[3]] = "verified"
    status[u < bounds[2]] = "disposed"
    undisposed = u < bounds[1]
    status[undisposed] = np.where(rng.random(int(undisposed.sum())) < 0.8, "dispatched", "registered")
    status[u < bounds[0]] = "void"
    status[(reported > end - np.timedelta64(86400, "s")) & (status != "void")] = "collected"

    def stamp(moments: np.ndarray, keep: np.ndarray) -> np.ndarray:
        return np.where(keep, moments, np.datetime64("NaT", "s"))

    registered_ok = ~np.isin(status, ["void", "collected"])
    disposed_ok = np.isin(status, workflow.disposed)
    verified_ok = np.isin(status, ["verified", "closed"])
    notes = {"void": "重复上报，作废（合成数据）", "disposed": "已处置（合成数据）"}
    last_note = np.where(status == "void", notes["void"], np.where(disposed_ok, notes["disposed"], None))
    # case numbers: per year of the report on the district's clock, in the order reported
    year = local.astype("datetime64[Y]").astype(int) + 1970
    by_time = np.lexsort((np.arange(n), reported))
    serial = np.empty(n, dtype=np.int64)
    sorted_year = year[by_time]
    starts = np.searchsorted(sorted_year, sorted_year, side="left")
    serial[by_time] = np.arange(n) - starts + 1
    code = "AJ" + pd.Series(year).astype(str) + "-" + pd.Series(serial).astype(str).str.zfill(7)
    covers = demo["manhole_covers"]["code"].to_numpy(dtype=object)
    manhole = subcategory == "manhole_cover"
    component = np.full(n, None, dtype=object)
    component[manhole] = covers[rng.integers(len(covers), size=int(manhole.sum()))]
    words = {name: f"{text}（合成数据）" for name, text in demo_cases.WORDS.items()}
    frame = pd.DataFrame(
        {
            "code": code.to_numpy(dtype=object),
            "kind": kind,
            "category": category,
            "subcategory": subcategory,
            "component_code": component,
            "source": rng.choice(list(SOURCES), n, p=np.array(list(SOURCES.values())) / sum(SOURCES.values())),
            "status": status,
            "grid": of_cell("code"),
            "community": of_cell("community"),
            "squad": of_cell("squad"),
            "department": department,
            "details": pd.Series(subcategory).map(words).to_numpy(dtype=object),
            "reported_at": stamp(reported, np.ones(n, dtype=bool)),
            "registered_at": stamp(registered, registered_ok),
            "registered_month": np.where(
                registered_ok,
                np.datetime_as_string((registered + np.timedelta64(8 * 3600, "s")).astype("datetime64[M]")),
                None,
            ).astype(object),
            "dispatched_at": stamp(dispatched, registered_ok & (status != "registered")),
            "disposed_at": stamp(disposed, disposed_ok),
            "verified_at": stamp(verified, verified_ok),
            "closed_at": stamp(closed, status == "closed"),
            "deadline_at": stamp(deadline, registered_ok),
            "last_note": last_note,
        }
    )
    return gpd.GeoDataFrame(frame, geometry=points, crs="EPSG:4326")


TIMES = ("reported_at", "registered_at", "dispatched_at", "disposed_at", "verified_at", "closed_at", "deadline_at")


def as_layer_values(frame: Any) -> Any:
    """The frame with its times as the layer's values (UTC text with a Z, None where missing), as geoapp's
    ``create_store`` takes them."""
    out = frame.copy()
    for name in TIMES:
        text = np.strings.add(np.datetime_as_string(frame[name].to_numpy(), unit="s"), "Z").astype(object)
        text[frame[name].isna().to_numpy()] = None
        out[name] = text
    return out


def copy_cases(url: str, frame: Any, registry) -> None:
    """Write the cases with COPY into the ``cases`` table geoapp made, in one transaction: the layer's per-row
    triggers held off (a store's creation loads its data before it installs them), then the layer's version moved on
    once with a change row naming no feature (readers reload the layer, as after a TRUNCATE), and ANALYZE."""
    import psycopg
    import shapely

    from geoapp.store.base import VERSION_COLUMN
    from geoapp.store.features import quote

    names = [spec.name for spec in registry["cases"].fields]
    out = frame.reindex(columns=names)  # a field the generator does not know (added to the layer since) stays NULL
    out.insert(0, "geom", shapely.to_wkb(shapely.set_srid(frame.geometry.values, 4326), hex=True, include_srid=True))
    out[VERSION_COLUMN] = 1
    buffer = io.StringIO()
    out.to_csv(buffer, index=False, header=False, date_format="%Y-%m-%d %H:%M:%S+00")
    header = ", ".join(quote(c) for c in ["geom", *names, VERSION_COLUMN])
    with psycopg.connect(url) as conn:
        conn.execute("ALTER TABLE cases DISABLE TRIGGER USER")
        with conn.cursor().copy(f"COPY cases ({header}) FROM STDIN (FORMAT csv)") as copy:
            copy.write(buffer.getvalue())
        conn.execute("ALTER TABLE cases ENABLE TRIGGER USER")
        (version,) = conn.execute(
            "UPDATE geoapp_layer_versions SET version = version + 1 WHERE layer_id = 'cases' RETURNING version"
        ).fetchone()
        conn.execute("INSERT INTO geoapp_changes (layer, fid, version) VALUES ('cases', 0, %s)", (version,))
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE cases")


def _meta(url: str, key: str) -> str | None:
    """A value of the store's ``geoapp_meta`` (None when there is no store or no such key)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        if conn.execute("SELECT to_regclass('geoapp_meta')").fetchone()[0] is None:
            return None
        row = conn.execute("SELECT value FROM geoapp_meta WHERE key = %s", (key,)).fetchone()
    return None if row is None else row[0]


def ensure_store(url: str, n: int, seed: int, registry, workflow, progress) -> dict[str, Any]:
    """The store of ``n`` cases drawn from ``seed`` at ``url``: reused when its mark says so, else built (the demo
    district through ``create_store``, then the cases by COPY). What was done and how long each part took."""
    import psycopg

    from data import demo_district
    from geoapp.store import create_store

    fields = ",".join(spec.name for spec in registry["cases"].fields)  # a store of other fields is built again
    mark = f"{n}:{seed}:{GENERATOR}:{hashlib.sha1(fields.encode()).hexdigest()[:12]}"
    if _meta(url, MARK_KEY) == mark:
        progress(f"reusing the store of {n:,} cases (seed {seed})")
        return {"built": False}
    started = time.perf_counter()
    demo = demo_district.build()
    frame = synthetic_cases(n, seed, demo, workflow)
    drawn = time.perf_counter()
    progress(f"{n:,} cases drawn in {drawn - started:.1f} s (with the demo district)")
    district = {layer_id: gdf for layer_id, gdf in demo.items() if layer_id != "cases"}
    create_store(registry, url, district, demo=True, force=True).close()
    created = time.perf_counter()
    progress(f"demo district stored by create_store in {created - drawn:.1f} s")
    copy_cases(url, frame, registry)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO geoapp_meta VALUES (%s, %s)", (MARK_KEY, mark))
    copied = time.perf_counter()
    progress(f"{n:,} cases written by COPY and analyzed in {copied - created:.1f} s")
    return {
        "built": True,
        "draw_s": round(drawn - started, 1),
        "create_store_s": round(created - drawn, 1),
        "copy_s": round(copied - created, 1),
        "total_s": round(copied - started, 1),
    }


# -- the measurement --------------------------------------------------------------------------------


@dataclass
class Case:
    period: str
    by: str
    times: list[float] = field(default_factory=list)
    groups: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.times)


def periods() -> list[tuple[str, dt.datetime | None, dt.datetime | None]]:
    """The whole ten years, and the last year alone (on the district's clock)."""
    last = (dt.datetime(LAST_YEAR, 1, 1, tzinfo=ZONE), dt.datetime(LAST_YEAR + 1, 1, 1, tzinfo=ZONE))
    return [(f"{FIRST_YEAR}-{LAST_YEAR}", None, None), (str(LAST_YEAR), *last)]


def expected_due(url: str, registered: tuple[str, ...], start, end) -> int:
    """The cases due in [start, end), counted here with SQL of this file's own (not geoapp's)."""
    import psycopg

    sql = "SELECT count(*) FROM cases WHERE status = ANY(%s) AND registered_at IS NOT NULL"
    params: list[Any] = [list(registered)]
    if start is not None:
        sql += " AND registered_at >= %s AND registered_at < %s"
        params += [start, end]
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(sql, params).fetchone()[0]


def check(rows, by: str, due: int) -> list[str]:
    """What is wrong with one answer: the total's due against the count made here, and every dimension's sums."""
    problems = []
    sums = [sum(getattr(r, name) for r in rows) for name in ("due", "disposed", "closed", "on_time")]
    if by == "total" and len(rows) != 1:
        problems.append(f"{len(rows)} total rows")
    if sums[0] != due:
        problems.append(f"due sums to {sums[0]:,}, counted {due:,}")
    if len({r.key for r in rows}) != len(rows):
        problems.append("a group twice")
    return problems


def measure(svc, url: str, rounds: int, progress) -> tuple[list[float], list[Case]]:
    """The baseline's times and each case's, over one warm-up round and ``rounds`` timed ones."""
    from geoapp.cases.indicators import DIMENSIONS
    from geoapp.store.base import Actor

    actor = Actor("bench", roles=ACTOR_ROLES)
    workflow = svc.cases.workflow
    chosen = periods()
    due = {label: expected_due(url, workflow.registered, start, end) for label, start, end in chosen}
    cases = [Case(label, by) for label, _, _ in chosen for by in DIMENSIONS]
    totals: dict[str, tuple] = {}
    baseline: list[float] = []
    for round_no in range(rounds + 1):
        began = time.perf_counter()
        with svc.store._reading() as conn:  # the same pool the indicators use
            start_s = time.perf_counter()
            conn.execute("SELECT count(*) FROM cases").fetchone()
            scan = time.perf_counter() - start_s
        if round_no:
            baseline.append(scan)
        for case in cases:
            _, start, end = next(p for p in chosen if p[0] == case.period)
            start_s = time.perf_counter()
            rows = svc.cases.indicators(actor, case.by, start=start, end=end)
            elapsed = time.perf_counter() - start_s
            if round_no:
                case.times.append(elapsed)
            case.groups = len(rows)
            sums = tuple(sum(getattr(r, n) for r in rows) for n in ("due", "disposed", "closed", "on_time"))
            if case.by == "total":
                totals[case.period] = sums
            problems = check(rows, case.by, due[case.period])
            if case.period in totals and sums != totals[case.period]:
                problems.append(f"sums {sums} differ from the total's {totals[case.period]}")
            case.problems = sorted(set(case.problems) | set(problems))
        label = "warm-up" if not round_no else f"round {round_no}/{rounds}"
        progress(f"{label}: {time.perf_counter() - began:.1f} s (baseline {scan * 1000:.0f} ms)")
    return baseline, cases


def render(meta: dict[str, Any], baseline: float, cases: list[Case]) -> str:
    rows = []
    for case in cases:
        verdict = "; ".join(case.problems) or ("PASS" if case.median <= TARGET_S else f"MISS (> {TARGET_S:.1f} s)")
        rows.append(
            [
                case.period,
                case.by,
                f"{case.groups:,}",
                duration(case.median * 1000),
                duration(min(case.times) * 1000),
                duration(max(case.times) * 1000),
                ratio(case.median / baseline),
                verdict,
            ]
        )
    title = (
        f"Case indicators in SQL: {meta['cases']:,} cases {FIRST_YEAR}-{LAST_YEAR} on PostGIS, medians of "
        f"{meta['rounds']} rounds after one warm-up; baseline SELECT count(*) FROM cases {duration(baseline * 1000)}"
        f" (ratio = median / baseline); target {TARGET_S:.1f} s"
    )
    headers = ["period", "by", "groups", "median", "min", "max", "/ count(*)", "result"]
    lines = [table(title, headers, rows, left=[0, 1, 7])]
    lines.append(
        f"commit {meta['commit']}, {meta['cpus']} CPUs, load {meta['load_before']} -> {meta['load_after']}; "
        f"PostgreSQL {meta['server']}, " + ", ".join(f"{k}={v}" for k, v in meta["settings"].items())
    )
    lines.append(f"baseline plan: {meta['baseline_plan']} (an all-visible table is counted from an index)")
    store = meta["store"]
    if store.get("built"):
        lines.append(
            f"store built in {store['total_s']:.0f} s: cases drawn {store['draw_s']:.0f} s, demo district by "
            f"create_store {store['create_store_s']:.0f} s, COPY + VACUUM ANALYZE {store['copy_s']:.0f} s"
        )
    else:
        lines.append("store reused (built by an earlier run with the same cases and seed)")
    return "\n".join(lines)


def _load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench cases", description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="100,000 cases, 3 rounds")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--postgis-url", help="a PostgreSQL database to use instead of one in build/bench-cases/pg")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="JSON results; the table beside, .txt")
    args = parser.parse_args(argv)
    if args.quick:
        args.cases, args.rounds = 100_000, 3

    from bench.serving import git_commit
    from geoapp.cases.workflow import load_workflow
    from geoapp.core.layers import Registry
    from geoapp.core.service import Service

    def progress(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    layers = PROJECT_ROOT / "layers"
    registry = Registry.load(layers)
    workflow = load_workflow(layers, registry)
    started_cluster = False
    if args.postgis_url:
        url = args.postgis_url
    else:
        from scripts import pgcluster

        started_cluster = pgcluster.url(PG_FOLDER) is None
        pgcluster.start(PG_FOLDER)
        url = pgcluster.database(PG_FOLDER, f"bench_cases_{args.cases}_{args.seed}")
    try:
        meta: dict[str, Any] = {"cases": args.cases, "rounds": args.rounds, "seed": args.seed}
        meta["store"] = ensure_store(url, args.cases, args.seed, registry, workflow, progress)
        meta.update(commit=git_commit(), cpus=os.cpu_count(), load_before=_load())
        meta["started_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        svc = Service(registry, url, sql_above=0, workflow=workflow)
        try:
            if not svc.reader.answers_in_sql("cases"):
                sys.exit("the cases layer is not answered in SQL: nothing to measure")
            with svc.store._reading() as conn:
                meta["server"] = conn.execute("SHOW server_version").fetchone()[0]
                names = ("max_parallel_workers_per_gather", "jit", "work_mem", "shared_buffers")
                meta["settings"] = {name: conn.execute(f"SHOW {name}").fetchone()[0] for name in names}
                plan = [row[0] for row in conn.execute("EXPLAIN SELECT count(*) FROM cases").fetchall()]
                meta["baseline_plan"] = next((line.strip(" ->").split("  (")[0] for line in plan if "Scan" in line), "")
            baseline_times, cases = measure(svc, url, args.rounds, progress)
        finally:
            svc.close()
        meta["load_after"] = _load()
    finally:
        if started_cluster:
            pgcluster.stop(PG_FOLDER)
    baseline = statistics.median(baseline_times)
    text = render(meta, baseline, cases)
    print(text)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    results = {
        **meta,
        "baseline_s": baseline_times,
        "cases_measured": [asdict(c) | {"median_s": c.median, "ratio": c.median / baseline} for c in cases],
    }
    args.output.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    args.output.with_suffix(".txt").write_text(text + "\n")
    failed = [c for c in cases if c.problems or c.median > TARGET_S]
    for c in failed:
        print(f"FAILED: {c.period} by {c.by}: " + ("; ".join(c.problems) or f"median {c.median:.2f} s"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
