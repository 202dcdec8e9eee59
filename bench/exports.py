"""Exporting a large layer: ``python -m bench exports [--rows N] [--runs K] [--formats geojson,xlsx,...]``.

What is measured
----------------
A copy of the demo store (GeoPackage) with ``--rows`` (default 100,000) more manhole covers, imported once from
the CSV :mod:`bench.imports` writes. Each run exports the whole layer in each format through the same code as
``flask --app wsgi geoapp export`` and the download route (``geoapp.io.exporter.export``: every page read, every
internal field, names and labels in Chinese, WGS84), and keeps the bytes in memory.

The baseline, measured in the same run: the layer read once with geopandas (``read_dataframe`` of the store's
table, no checks) and written by pyogrio to a GeoPackage, the cheapest a complete export could be. Each
format's ratio is its median over the baseline's median. Medians of ``--runs`` runs (default 3).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import shapely

LAYER = "manhole_covers"


def baseline(store: Path, folder: Path) -> float:
    """geopandas reading the layer's table and pyogrio writing it to a new GeoPackage."""
    import pyogrio

    target = folder / "baseline.gpkg"
    target.unlink(missing_ok=True)
    start = time.perf_counter()
    frame = pyogrio.read_dataframe(store, layer=LAYER)
    pyogrio.write_dataframe(frame, target, layer=LAYER, driver="GPKG")
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    from geoapp.io import exporter

    parser = argparse.ArgumentParser(prog="python -m bench exports", description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--formats", default=",".join(exporter.FORMATS), help="Comma-separated (default: all).")
    args = parser.parse_args(argv)
    formats = args.formats.split(",")
    for fmt in formats:
        exporter.check_format(fmt)

    from bench.imports import write_csv
    from data import demo_district
    from geoapp.config import PROJECT_ROOT
    from geoapp.core.crs import parse_crs
    from geoapp.core.layers import Registry
    from geoapp.io import importer
    from geoapp.store import create_store
    from geoapp.store.base import Query
    from geoapp.web import create_app
    from geoapp.web.cli import CLI

    with tempfile.TemporaryDirectory(prefix="bench-exports-") as tmp:
        folder = Path(tmp)
        registry = Registry.load(PROJECT_ROOT / "layers")
        data = demo_district.build()
        store = folder / "store.gpkg"
        create_store(registry, str(store), data, demo=True).close()
        csv_path = folder / "covers.csv"
        write_csv(csv_path, args.rows, shapely.union_all(data["district_boundary"].geometry.values))
        svc = create_app({"GEOAPP_DATABASE": str(store), "SECRET_KEY": "bench"}).extensions["geoapp"]
        report = importer.run(csv_path, svc.editing, CLI, importer.Options(layer=LAYER))
        if not report.written:
            sys.exit("the bench import was refused:\n" + report.text("en"))
        wgs84 = parse_crs("EPSG:4326")
        times: dict[str, list[float]] = {fmt: [] for fmt in formats}
        bases: list[float] = []
        count = 0
        for run in range(args.runs):
            bases.append(baseline(store, folder))
            line = [f"run {run + 1}: baseline {bases[-1]:.2f} s"]
            for fmt in formats:
                start = time.perf_counter()
                made = exporter.export(
                    svc.reader,
                    svc.registry,
                    LAYER,
                    Query(),
                    fmt=fmt,
                    crs=wgs84,
                    visibility="internal",
                    lang="zh",
                    timezone=ZoneInfo("Asia/Shanghai"),
                    synthetic=True,
                )
                times[fmt].append(time.perf_counter() - start)
                count = made.count
                line.append(f"{fmt} {times[fmt][-1]:.2f} s")
            print(", ".join(line), flush=True)
        svc.close()
    base = statistics.median(bases)
    print(f"{count} features of {LAYER}; medians of {args.runs} runs; baseline geopandas+pyogrio GPKG {base:.2f} s")
    for fmt in formats:
        median = statistics.median(times[fmt])
        print(f"  {fmt:8} {median:6.2f} s  ratio {median / base:5.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
