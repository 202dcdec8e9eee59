"""Results: the printed tables, the targets with PASS/MISS, and the JSON file."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from bench.http_api import FEATURES, HttpResult
from bench.inprocess import BBOX, KindResult, SizeResult
from bench.pages import NAIVE_CAP_S, BrowserResult, PageResult, flatness, store_label
from bench.tables import count, duration, ratio, size_bytes, table
from geoapp.core.query import MAX_LIMIT


@dataclass
class Results:
    meta: dict[str, Any]
    sizes: list[SizeResult] = field(default_factory=list)
    http: list[HttpResult] = field(default_factory=list)
    pages: list[PageResult] = field(default_factory=list)
    browser: list[BrowserResult] = field(default_factory=list)

    def _compared(self) -> list[KindResult | HttpResult]:
        """Every batch of answers that was compared with an independent computation."""
        return [q for s in self.sizes for q in s.queries] + list(self.http)

    @property
    def checked(self) -> int:
        return sum(batch.checked for batch in self._compared())

    @property
    def mismatches(self) -> int:
        return sum(batch.mismatches for batch in self._compared())

    def find(self, section: str, size: int | None) -> Any:
        return next((r for r in getattr(self, section) if r.size == size), None)


@dataclass(frozen=True)
class Target:
    label: str
    section: str  # the Results list it reads: "sizes", "http", "pages" or "browser"
    size: int | None  # the record's size (None: the browser's demo district)
    value: Callable[[Any], float]
    limit: float  # PASS when value <= limit
    unit: str = "ms"  # a key of UNITS

    def evaluate(self, results: Results) -> dict[str, Any]:
        found = results.find(self.section, self.size)
        value = None if found is None else self.value(found)
        status = "SKIP" if value is None else "PASS" if value <= self.limit else "MISS"
        return {"target": self.label, "value": value, "limit": self.limit, "unit": self.unit, "status": status}


TARGETS = (
    Target("index build, 1M points", "sizes", 1_000_000, lambda s: s.build_ms, 5000),
    Target(f"{BBOX.name} at 1M, median", "sizes", 1_000_000, lambda s: s.query(BBOX).indexed.median_ms, 1),
    Target(f"API ~{FEATURES} of 100k, warm median", "http", 100_000, lambda h: h.warm.median_ms, 2),
    Target("map page HTML, 100k covers", "pages", 100_000, lambda p: p.html_bytes, 300_000, "bytes"),
    Target("map page render, 100k covers, median", "pages", 100_000, lambda p: p.render.median_ms, 200),
    Target("demo map ready in Chromium, median", "browser", None, lambda b: b.ready.median_ms, 2000),
    Target("requests off 127.0.0.1, demo", "browser", None, lambda b: b.outside_requests, 0, "count"),
    Target("requests off 127.0.0.1, 100k", "browser", 100_000, lambda b: b.outside_requests, 0, "count"),
)


UNITS: dict[str, Callable[[float | None], str]] = {
    "ms": duration,
    "bytes": size_bytes,
    "count": lambda value: "-" if value is None else count(value),
}


def build_table(results: Results) -> str:
    rows = [[count(s.size), duration(s.build_ms), duration(s.first_nearest_ms)] for s in results.sizes]
    return table("Index build (one build per size)", ["points", "snapshot", "first nearest (+R-tree)"], rows)


def query_table(results: Results) -> str:
    rows = [
        [
            count(s.size),
            q.kind,
            count(q.matched_mean),
            duration(q.indexed.median_ms),
            duration(q.indexed.p99_ms),
            duration(q.brute.median_ms),
            duration(q.brute.p99_ms),
            ratio(q.ratio),
            f"{q.checked - q.mismatches}/{q.checked}",
        ]
        for s in results.sizes
        for q in s.queries
    ]
    headers = ["points", "query", "matched", "index med", "p99", "brute med", "p99", "brute/index", "match"]
    return table("In-process Engine.query vs brute force (same data, same run)", headers, rows, left=[1])


def http_table(results: Results) -> str:
    rows = [
        [
            count(h.size),
            f"{h.box_side_m:,.0f} m",
            count(h.returned_mean),
            duration(h.warm.median_ms),
            duration(h.warm.p99_ms),
            duration(h.cold.median_ms),
            duration(h.engine.median_ms),
            duration(h.rebuilt.median_ms),
            ratio(h.ratio),
            f"{h.checked - h.mismatches}/{h.checked}",
        ]
        for h in results.http
    ]
    headers = [
        "points",
        "bbox",
        "returned",
        "API med",
        "p99",
        "cold med",
        "engine only",
        "+to_json",
        "rebuilt/API",
        "match",
    ]
    return table("HTTP API on loopback (gunicorn, 1 worker, keep-alive, no gzip)", headers, rows)


def page_table(results: Results) -> str:
    rows = [
        [
            count(p.size),
            size_bytes(p.html_bytes),
            size_bytes(p.gzip_bytes),
            duration(p.render.median_ms),
            duration(p.render.p99_ms),
            size_bytes(p.naive_bytes),
            duration(p.naive_ms) if p.naive_ms is not None else f"> {NAIVE_CAP_S} s",
            ratio(p.naive_size_ratio),
            ratio(p.naive_time_ratio),
        ]
        for p in results.pages
    ]
    headers = [
        "covers",
        "HTML",
        "gzipped",
        "render med",
        "p99",
        "naive HTML",
        "naive once",
        "naive/page HTML",
        "naive/page time",
    ]
    title = f"Map page GET / in process ({results.pages[0].render.count} renders; test client, no gzip)"
    text = table(title, headers, rows)
    text += "\nnaive: the same covers embedded with folium.GeoJson on a bare folium.Map, built and rendered once"
    flat = flatness(results.pages)
    if flat:
        small, large = flat["sizes"]
        text += (
            f"\n{count(large)}/{count(small)} covers (flat is 1.00x): "
            f"HTML {flat['html_ratio']:.2f}x, median render {flat['render_ratio']:.2f}x"
        )
    return text


def browser_table(results: Results) -> str:
    rows = [
        [
            store_label(b.size),
            count(b.covers_matched),
            count(b.covers_drawn),
            duration(b.ready.median_ms),
            duration(b.ready.p99_ms),
            duration(b.dom_content_loaded.median_ms),
            duration(b.dom_content_loaded.p99_ms),
            count(b.outside_requests),
        ]
        for b in results.browser
    ]
    headers = ["store", "covers in view", "drawn", "ready med", "p99", "DOMContentLoaded", "p99", "off 127.0.0.1"]
    title = (
        f"Map page in headless Chromium ({results.browser[0].ready.count} loads, fresh context each;"
        " gunicorn, 1 worker; no tiles)"
    )
    note = (
        "ready: from page.goto to every layer drawn for the first view (the whole district); "
        f"at most {MAX_LIMIT:,} features per layer are asked for: where drawn < covers in view, the rest were not sent."
    )
    return f"{table(title, headers, rows, left=[0])}\n{note}"


def target_lines(evaluated: list[dict[str, Any]]) -> str:
    rows = [
        [t["status"], t["target"], UNITS[t["unit"]](t["value"]), f"<= {UNITS[t['unit']](t['limit'])}"]
        for t in evaluated
    ]
    return table("Targets", ["result", "target", "measured", "limit"], rows, left=[0, 1, 3])


def verdict(results: Results) -> str:
    if results.mismatches:
        return f"FAILED: {results.mismatches} of {results.checked} answers differ from brute force (see 'match')."
    return f"All {results.checked:,} answers match brute force."


def render(results: Results) -> str:
    sections = [build_table(results), query_table(results)] if results.sizes else []
    if results.http:
        sections.append(http_table(results))
    if results.pages:
        sections.append(page_table(results))
    if results.browser:
        sections.append(browser_table(results))
    sections.append(target_lines([t.evaluate(results) for t in TARGETS]))
    if results.checked:  # nothing is compared with brute force when only the map page ran
        sections.append(verdict(results))
    return "\n\n".join(sections)


def write_json(results: Results, path: Path) -> None:
    payload = dataclasses.asdict(results) | {
        "targets": [t.evaluate(results) for t in TARGETS],
        "checked": results.checked,
        "mismatches": results.mismatches,
        "page_flatness": flatness(results.pages),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps(payload, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY))
