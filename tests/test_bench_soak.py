"""The soak benchmark runs end to end for a few seconds on each backend and reports every figure; every reading
acknowledged is stored once. No timing is asserted."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from geoapp.config import PROJECT_ROOT

# one backend here (the PostGIS path of the benchmark was run in full, see bench/README.md): each run costs ~20 s
pytestmark = pytest.mark.backends("gpkg")

SENSORS, POLLERS, MINUTES = 4, 2, 0.12  # about 7 s of posts: the 4th sensor resends its 3rd post
FIGURES = (
    "posts sent",
    "post latency p50",
    "post latency p99",
    "resends after a 201",
    "polls",
    "304 share",
    "poll latency p50",
    "poll latency p99",
    "poll with its ETag at rest",
    "readings sent",
    "readings stored",
    "readings lost",
    "readings doubled",
    "rows added to geoapp_readings",
    "5xx answers",
)


@pytest.mark.slow
def test_soak_benchmark_reports_every_figure_and_loses_nothing(backend, tmp_path, request):
    output = tmp_path / "soak.json"
    options = ["--minutes", str(MINUTES), "--sensors", str(SENSORS), "--pollers", str(POLLERS), "--backends", backend]
    url = None
    if backend == "postgis":
        server = request.getfixturevalue("postgres")
        url = server.create()
        options += ["--postgis-url", url]
    try:
        run = subprocess.run(
            [sys.executable, "-m", "bench", "soak", *options, "--output", str(output)],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        if url is not None:
            server.drop(url)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    (result,) = json.loads(output.read_text())["backends"]
    assert result["backend"] == backend and result["failed"] == []
    assert (result["sensors"], result["pollers"]) == (SENSORS, POLLERS)
    # every sensor posted, some posts were batches and some were sent again after their 201
    assert result["posts"] >= SENSORS and result["batches"] > 0
    assert result["resends"] > 0 and result["resends_all_duplicate"] == result["resends"]
    assert result["post"]["count"] >= result["posts"] and result["post"]["p99_ms"] > 0
    assert result["polls"] >= POLLERS and result["polls_200"] > 0 and result["poll"]["p99_ms"] > 0
    assert result["share_304"] is not None and result["at_rest"] == 304
    stored = result["stored"]
    assert stored["sent"] >= result["posts"] + result["batches"]
    assert stored["stored"] == stored["sent"] == stored["table_added"]
    assert stored["lost"] == stored["doubled"] == 0
    assert result["server_5xx"] == result["undelivered"] == result["refused"] == 0
    text = output.with_suffix(".txt").read_text()
    assert text in run.stdout
    for figure in FIGURES:
        assert figure in text, figure
