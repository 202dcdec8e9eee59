"""The case-indicator benchmark runs end to end at a tiny size on the suite's PostgreSQL and prints every dimension;
the cases it writes by COPY are the rows geoapp's own create_store writes. No timing is asserted."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from bench import cases as bench_cases
from geoapp.cases.indicators import DIMENSIONS
from geoapp.cases.workflow import load_workflow
from geoapp.config import PROJECT_ROOT
from geoapp.store import create_store
from tests.backends import execute
from tests.conftest import LAYERS_DIR

CASES = 2000


@pytest.mark.slow
def test_the_benchmark_checks_every_dimension_of_both_periods(postgres, tmp_path):
    url = postgres.create()
    output = tmp_path / "cases.json"
    try:
        options = ["--cases", str(CASES), "--rounds", "1", "--postgis-url", url, "--output", str(output)]
        run = subprocess.run(
            [sys.executable, "-m", "bench", "cases", *options],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        assert execute(url, "SELECT count(*) FROM cases") == [(CASES,)]
    finally:
        postgres.drop(url)
    results = json.loads(output.read_text())
    measured = {(c["period"], c["by"]): c for c in results["cases_measured"]}
    assert set(measured) == {(period, by) for period in ("2014-2023", "2023") for by in DIMENSIONS}
    assert all(c["problems"] == [] and len(c["times"]) == 1 for c in measured.values())
    assert measured[("2014-2023", "month")]["groups"] == 120 and measured[("2023", "month")]["groups"] == 12
    lines = run.stdout.splitlines()
    for period, by in measured:
        assert any(line.split()[:2] == [period, by] for line in lines), (period, by)


@pytest.mark.slow
def test_the_cases_copied_are_the_rows_create_store_writes(postgres, registry, demo_data):
    workflow = load_workflow(LAYERS_DIR, registry)
    frame = bench_cases.synthetic_cases(300, 7, demo_data, workflow)
    assert set(frame["status"]) >= {"closed", "void"} and frame["code"].is_unique
    district = {layer_id: gdf for layer_id, gdf in demo_data.items() if layer_id != "cases"}
    copied, created = postgres.create(), postgres.create()
    try:
        create_store(registry, copied, district, demo=True).close()
        bench_cases.copy_cases(copied, frame, registry)
        create_store(registry, created, {**district, "cases": bench_cases.as_layer_values(frame)}, demo=True).close()
        names = ", ".join(f'"{spec.name}"' for spec in registry["cases"].fields)
        select = f"SELECT {names}, _version, ST_AsEWKT(geom) FROM cases ORDER BY code"
        assert execute(copied, select) == execute(created, select)
        assert len(execute(copied, select)) == 300
    finally:
        postgres.drop(copied)
        postgres.drop(created)
