"""Importing a large CSV: ``python -m bench imports [--rows N] [--runs K]``.

What is measured
----------------
A CSV of ``--rows`` (default 100,000) manhole covers is written once: Chinese headers
(部件编码/井盖类别/所在道路/病害/状态/整治日期/经度/纬度), valid 16-digit codes, vocabulary values given
by their Chinese labels, dates as 2023/5/1, and points uniform over the demo district (inside
its boundary, from a fixed seed). Each run copies the demo store (GeoPackage) and imports the
file into it through the same code as ``flask --app wsgi geoapp import`` (``geoapp.io.importer.run``
with the CLI's actor): read, map, check every row (values, rules, the district rule), then one
transaction writing the features and an audit row for each.

The baseline, measured in the same run on the same file: geopandas reading the CSV (pandas'
C parser, ``points_from_xy``) and pyogrio writing those rows to a fresh GeoPackage, no checks,
no audit. The ratio is import over baseline. Medians of ``--runs`` runs (default 3); the target
is an import under 30 s.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import shapely

KINDS = ["上水", "污水", "雨水", "电力", "路灯", "通讯", "热力", "燃气"]
DEFECTS = ["无", "脱落", "沉降", "腐蚀"]
TARGET_S = 30.0


def write_csv(path: Path, rows: int, district, seed: int = 11) -> None:
    """``rows`` covers inside ``district`` (a lon/lat polygon) as the bureau's CSV."""
    rng = np.random.default_rng(seed)
    minx, miny, maxx, maxy = district.bounds
    xs, ys = [], []
    shapely.prepare(district)
    while sum(map(len, xs)) < rows:
        x = rng.uniform(minx, maxx, rows)
        y = rng.uniform(miny, maxy, rows)
        inside = shapely.contains_xy(district, x, y)
        xs.append(x[inside])
        ys.append(y[inside])
    x = np.concatenate(xs)[:rows]
    y = np.concatenate(ys)[:rows]
    with open(path, "w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(["部件编码", "井盖类别", "所在道路", "病害", "状态", "整治日期", "经度", "纬度"])
        for i in range(rows):
            fixed = i % 3 == 0
            out.writerow(
                [
                    f"419901{(i % 8) + 1:02d}01{800000 + i:06d}"[:16],
                    KINDS[i % len(KINDS)],
                    f"测试路{i % 50}",
                    DEFECTS[i % len(DEFECTS)],
                    "已整治" if fixed else "待整治",
                    f"2023/{i % 12 + 1}/{i % 28 + 1}" if fixed else "",
                    f"{x[i]:.7f}",
                    f"{y[i]:.7f}",
                ]
            )


def baseline(csv_path: Path, folder: Path) -> float:
    """geopandas reading the CSV and pyogrio writing it to a new GeoPackage."""
    import geopandas as gpd
    import pandas as pd
    import pyogrio

    target = folder / "baseline.gpkg"
    target.unlink(missing_ok=True)
    start = time.perf_counter()
    frame = pd.read_csv(csv_path, dtype={"部件编码": str})
    gdf = gpd.GeoDataFrame(frame, geometry=gpd.points_from_xy(frame["经度"], frame["纬度"]), crs="EPSG:4326")
    pyogrio.write_dataframe(gdf, target, layer="covers", driver="GPKG")
    return time.perf_counter() - start


def one_import(csv_path: Path, demo: Path, folder: Path) -> tuple[float, int]:
    """Import the CSV into a fresh copy of the demo store; (seconds, features inserted)."""
    from geoapp.io import importer
    from geoapp.web import create_app
    from geoapp.web.cli import CLI

    store = folder / "store.gpkg"
    shutil.copy(demo, store)
    svc = create_app({"GEOAPP_DATABASE": str(store), "SECRET_KEY": "bench"}).extensions["geoapp"]
    svc.reader.versions()  # the store opened and its layers indexed, as in a running app
    start = time.perf_counter()
    report = importer.run(csv_path, svc.editing, CLI, importer.Options(layer="manhole_covers"))
    elapsed = time.perf_counter() - start
    if not report.written:
        sys.exit("the bench import was refused:\n" + report.text("en"))
    svc.close()
    return elapsed, report.inserts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench imports", description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--profile", type=Path, help="Write a cProfile of the last import here.")
    args = parser.parse_args(argv)

    from data import demo_district
    from geoapp.config import PROJECT_ROOT
    from geoapp.core.layers import Registry
    from geoapp.store import create_store

    with tempfile.TemporaryDirectory(prefix="bench-imports-") as tmp:
        folder = Path(tmp)
        registry = Registry.load(PROJECT_ROOT / "layers")
        data = demo_district.build()
        demo = folder / "demo.gpkg"
        create_store(registry, str(demo), data, demo=True).close()
        district = shapely.union_all(data["district_boundary"].geometry.values)
        csv_path = folder / "covers.csv"
        write_csv(csv_path, args.rows, district)
        size_mb = csv_path.stat().st_size / 1024 / 1024
        imports, bases = [], []
        for run in range(args.runs):
            bases.append(baseline(csv_path, folder))
            if args.profile and run == args.runs - 1:
                import cProfile

                profiler = cProfile.Profile()
                profiler.enable()
                seconds, inserted = one_import(csv_path, demo, folder)
                profiler.disable()
                profiler.dump_stats(args.profile)
            else:
                seconds, inserted = one_import(csv_path, demo, folder)
            imports.append(seconds)
            print(f"run {run + 1}: import {seconds:.2f} s ({inserted} rows), baseline {bases[-1]:.2f} s", flush=True)
        median, base = statistics.median(imports), statistics.median(bases)
        verdict = "met" if median < TARGET_S else "MISSED"
        print(
            f"{args.rows} rows ({size_mb:.1f} MB CSV): import median {median:.2f} s over {args.runs} runs "
            f"(target < {TARGET_S:.0f} s: {verdict}); baseline geopandas+pyogrio {base:.2f} s; "
            f"ratio {median / base:.1f}x"
        )
    return 0 if median < TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
