"""The edits benchmark runs end to end at a tiny size and reports every figure; no timing is asserted."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from geoapp.config import PROJECT_ROOT

ADDED, REPEAT, EDITS = 100, 2, 3
FIGURES = (
    "next read after edit, A",
    "next read after edit, B",
    "p99 read, no edits",
    f"p99 read during {EDITS} edits",
    "p99 during / without",
    "worker PSS before",
    f"worker PSS after {EDITS} edits",
    "PSS after / before",
    "start-up to first /api/layers",
    "reads showing the edit",
)


@pytest.mark.slow
def test_edits_benchmark_produces_every_figure(tmp_path):
    output = tmp_path / "edits.json"
    options = ["--sizes", str(ADDED), "--repeat", str(REPEAT), "--edits", str(EDITS), "--readers", "2", "--reads", "5"]
    run = subprocess.run(
        [sys.executable, "-m", "bench", "edits", *options, "--output", str(output)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    (size,) = json.loads(output.read_text())["sizes"]
    assert size["added"] == ADDED and size["covers"] > ADDED
    assert size["burst_edits"] == EDITS and size["repeats"] == REPEAT
    assert set(size["next_read"]) == set(size["startup_s"]) == {"A", "B"}
    assert all(stats["count"] == REPEAT for stats in size["next_read"].values())
    for stats in ("reads_quiet", "reads_edits", "burst_patch", "next_patch"):
        assert size[stats]["count"] > 0, stats
    assert set(size["pss_before"]) == set(size["pss_after"]) == {"A", "B"}
    for figure in ("p99_ratio", "worst_memory_ratio", "startup_median_s"):
        assert size[figure] > 0, figure
    # each burst edit read back on both instances, each next-read edit in a page on both
    assert (size["fresh"], size["stale"]) == (2 * EDITS + 2 * REPEAT, 0)
    text = output.with_suffix(".txt").read_text()
    assert text in run.stdout
    for figure in FIGURES:
        assert figure in text, figure
