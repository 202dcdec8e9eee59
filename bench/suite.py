"""The whole benchmark (``python -m bench``): run every part, print the tables, write ``bench/results/latest.json``.

The edits part comes last (its own files, see :mod:`bench.edits`), unless ``--no-edits``.
Exits 1 if any indexed answer differs from brute force; missed targets are reported, not fatal.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import os
import platform
import sys
import time
from pathlib import Path

import shapely

from bench import edits, http_api, inprocess, pages, report
from bench.data import CENTRE_LONLAT, LAYER_ID, LAYERS_DIR, SIDE_M, Area, synthetic_layer
from bench.serving import git_commit
from geoapp.core.layers import Registry

DEFAULT_SIZES = (10_000, 100_000, 1_000_000)
QUICK_SIZES = (10_000, 100_000)
DEFAULT_REPEAT = 200
QUICK_REPEAT = 50
DEFAULT_SEED = 20240601
DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "latest.json"
PACKAGES = (
    "geopandas",
    "shapely",
    "pyproj",
    "rtree",
    "numpy",
    "pandas",
    "orjson",
    "flask",
    "gunicorn",
    "folium",
    "playwright",
)


def _sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"sizes must be whole numbers separated by commas, not {text!r}") from None
    if any(size < 100 for size in sizes):
        raise argparse.ArgumentTypeError("each size must be at least 100 points")
    return sizes


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--sizes", type=_sizes, help=f"point counts, comma-separated (default {','.join(map(str, DEFAULT_SIZES))})"
    )
    parser.add_argument("--repeat", type=_positive, help=f"queries per measurement (default {DEFAULT_REPEAT})")
    parser.add_argument(
        "--quick", action="store_true", help=f"smoke run: sizes {QUICK_SIZES}, {QUICK_REPEAT} queries per measurement"
    )
    parser.add_argument("--no-http", dest="http", action="store_false", help="skip the gunicorn / HTTP measurements")
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument("--no-pages", dest="pages", action="store_false", help="skip the map page measurements")
    scope.add_argument(
        "--pages-only", action="store_true", help="measure the map page alone (no engine, no API, no edits)"
    )
    parser.add_argument(
        "--no-edits", dest="edits", action="store_false", help="skip the edits part (alone: python -m bench edits)"
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="seed of the synthetic data and queries")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="where to write the JSON results")
    args = parser.parse_args(argv)
    # explicit --sizes / --repeat win over --quick; --pages-only runs no engine size at all
    args.sizes = () if args.pages_only else args.sizes or (QUICK_SIZES if args.quick else DEFAULT_SIZES)
    args.repeat = args.repeat or (QUICK_REPEAT if args.quick else DEFAULT_REPEAT)
    args.renders = pages.QUICK_RENDERS if args.quick else pages.RENDERS
    args.loads = pages.QUICK_LOADS if args.quick else pages.LOADS
    args.edits = args.edits and not args.pages_only
    return args


class Progress:
    """Timestamped progress lines on stderr, so that stdout holds only the report."""

    def __init__(self) -> None:
        self.start = time.monotonic()

    @property
    def elapsed_s(self) -> float:
        return time.monotonic() - self.start

    def __call__(self, message: str) -> None:
        print(f"[{self.elapsed_s:6.1f} s] {message}", file=sys.stderr, flush=True)


def environment(args: argparse.Namespace) -> dict:
    """What the numbers depend on, recorded beside them."""
    return {
        "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "sizes": list(args.sizes),
        "repeat": args.repeat,
        "seed": args.seed,
        "http": args.http,
        "pages": args.pages,
        "page_renders": args.renders,
        "page_loads": args.loads,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "geos": shapely.geos_version_string,
        "packages": {name: importlib.metadata.version(name) for name in PACKAGES},
        "commit": git_commit(),
    }


def run(args: argparse.Namespace, progress: Progress) -> report.Results:
    registry = Registry.load(LAYERS_DIR)
    area = Area()
    results = report.Results(meta=environment(args))
    inprocess.prime(registry, area, args.seed)
    for size in args.sizes:
        progress(f"{size:,} points: generating")
        frame = synthetic_layer(registry[LAYER_ID], area, size, args.seed)
        progress(f"{size:,} points: snapshot build and in-process queries")
        results.sizes.append(inprocess.run_size(registry, area, frame, args.repeat, args.seed))
        if args.http and size <= http_api.MAX_SIZE:
            progress(f"{size:,} points: GeoPackage, gunicorn, HTTP requests")
            results.http.append(http_api.run_http(registry, area, frame, args.repeat, args.seed))
    if args.pages:
        results.pages, results.browser = pages.run(registry, args.seed, args.renders, args.loads, progress)
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    progress = Progress()
    results = run(args, progress)
    results.meta["duration_s"] = round(progress.elapsed_s, 1)
    lon, lat = CENTRE_LONLAT
    if args.sizes:
        print(
            f"geoapp benchmark: {LAYER_ID}, uniform points over {SIDE_M / 1000:g} km x {SIDE_M / 1000:g} km "
            f"around {lon:.2f}E {lat:.2f}N; {args.repeat} random queries per measurement; seed {args.seed}\n"
        )
    print(report.render(results))
    report.write_json(results, args.output)
    print(f"\nFinished in {results.meta['duration_s']:.0f} s; JSON written to {args.output}")
    stale = 0
    if args.edits:
        print()
        settings = edits.QUICK if args.quick else edits.Settings()
        stale = edits.measure_and_report(settings, edits.DEFAULT_OUTPUT, progress)
    return 1 if results.mismatches or stale else 0
