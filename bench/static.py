"""The static public map against the app under load: ``python -m bench static``.

What is measured
----------------
The demo district in a temporary store, published with ``geoapp publish``; gunicorn as ``make run``
serves it (``gunicorn.conf.py``, ``GEOAPP_WORKERS`` workers of 4 threads, default 2) and nginx with
the deploy site (``deploy/nginx/geoapp.conf``, its paths moved to the temporary folder) serving the
published folder at ``/public/``. wrk (``--connections`` keep-alive connections, 2 threads,
``--duration`` seconds, ``Accept-Encoding: gzip``) asks, one after the other:

- the map page: ``/`` of the app (rendered per request) against ``/public/`` (nginx, ``index.html.gz``);
- one layer's public GeoJSON, whole: ``/api/layers/manhole_covers/features?limit=10000`` of the app
  against ``/public/data/manhole_covers.geojson`` (nginx, the ``.gz`` file).

Printed: requests/s, latency p50 and p99 (wrk's ``--latency``), errors (socket errors and non-2xx/3xx
answers), and static over dynamic requests/s. wrk runs on the same machine as the servers, so both
sides share its cores with it. Written to ``bench/results/static.txt`` and ``static.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.serving import free_port, git_commit, gunicorn_command, stop
from geoapp.config import PROJECT_ROOT

RESULTS = PROJECT_ROOT / "bench" / "results"
SITE = PROJECT_ROOT / "deploy" / "nginx" / "geoapp.conf"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
WRK = shutil.which("wrk") or "/usr/bin/wrk"
FLASK = str(Path(sys.executable).with_name("flask"))
LAYER = "manhole_covers"
TARGETS = (
    ("map page", "/", "/public/"),
    (f"{LAYER} GeoJSON", f"/api/layers/{LAYER}/features?limit=10000", f"/public/data/{LAYER}.geojson"),
)


def nginx_config(root: Path, ports: tuple[int, int], listen: int, public: Path) -> Path:
    """The deploy site inside a minimal nginx.conf, its addresses and paths moved under ``root``.

    Also used by ``tests/test_deploy.py``: what is measured is what is tested.
    """
    site = SITE.read_text(encoding="utf-8")
    replacements = {
        "127.0.0.1:5001": f"127.0.0.1:{ports[0]}",
        "127.0.0.1:5002": f"127.0.0.1:{ports[1]}",
        "/srv/geoapp/public": str(public),
        "/var/cache/nginx/": f"{root}/cache/",
        "listen 80;": f"listen 127.0.0.1:{listen};",
        "listen [::]:80;": "",
    }
    for old, new in replacements.items():
        if old not in site:
            raise ValueError(f"{SITE} no longer has {old!r}")
        site = site.replace(old, new)
    (root / "site.conf").write_text(site, encoding="utf-8")
    user = "user root;" if os.geteuid() == 0 else ""  # root's temporary folders are 0700: workers must read them
    conf = root / "nginx.conf"
    conf.write_text(
        f"""
{user}
worker_processes auto;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log off;
    sendfile on;
    client_body_temp_path {root}/tmp/body;
    proxy_temp_path {root}/tmp/proxy;
    fastcgi_temp_path {root}/tmp/fastcgi;
    uwsgi_temp_path {root}/tmp/uwsgi;
    scgi_temp_path {root}/tmp/scgi;
    include {root}/site.conf;
}}
""",
        encoding="utf-8",
    )
    (root / "tmp").mkdir(exist_ok=True)
    (root / "cache").mkdir(exist_ok=True)  # as Debian's nginx package makes /var/cache/nginx
    return conf


@dataclass
class Run:
    target: str
    side: str
    url: str
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def wrk(url: str, connections: int, duration: int) -> tuple[float, float, float, int, int, str]:
    """wrk's requests/s, p50 and p99 in ms, errors and requests, and its whole output."""
    out = subprocess.run(
        [WRK, "-t2", f"-c{connections}", f"-d{duration}s", "--latency", "-H", "Accept-Encoding: gzip", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout

    def latency(pct: str) -> float:
        value, unit = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M).groups()
        return float(value) * _UNITS[unit]

    socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = (sum(map(int, socket.groups())) if socket else 0) + (int(non2xx.group(1)) if non2xx else 0)
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)), latency(50), latency(99), errors, requests, out


def _wait(url: str, proc: subprocess.Popen, what: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=5)
            return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{what} did not answer {url}") from None
            time.sleep(0.2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench static", description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=60, help="seconds of each wrk run (default 60)")
    parser.add_argument("--connections", type=int, default=50, help="wrk connections (default 50)")
    args = parser.parse_args(argv)
    for tool in (NGINX, WRK):
        if not os.access(tool, os.X_OK):
            raise SystemExit(f"{tool} is missing: scripts/apt-install.sh nginx wrk")

    from data import demo_district
    from geoapp.core.layers import Registry
    from geoapp.store import create_store

    with tempfile.TemporaryDirectory(prefix="bench-static-") as tmp:
        root = Path(tmp)
        database = root / "geoapp.gpkg"
        create_store(Registry.load(PROJECT_ROOT / "layers"), str(database), demo_district.build(), demo=True).close()
        env = {**os.environ, "GEOAPP_DATABASE": str(database), "GEOAPP_BASEMAP": "none", "GEOAPP_PROXIES": "1"}
        subprocess.run(
            [FLASK, "--app", "wsgi", "geoapp", "publish", "--out", str(root / "public")],
            cwd=PROJECT_ROOT,
            env=env,
            check=True,
            capture_output=True,
        )
        app_port, nginx_port = free_port(), free_port()
        app = subprocess.Popen(
            gunicorn_command(),
            cwd=PROJECT_ROOT,
            env={**env, "PORT": str(app_port)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        conf = nginx_config(root, (app_port, app_port), nginx_port, root / "public")
        web = subprocess.Popen(
            [NGINX, "-c", str(conf), "-p", str(root), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        runs: list[Run] = []
        try:
            dynamic, static = f"http://127.0.0.1:{app_port}", f"http://127.0.0.1:{nginx_port}"
            _wait(f"{dynamic}/api/layers", app, "gunicorn")
            _wait(f"{static}/public/", web, "nginx")
            for target, app_path, static_path in TARGETS:
                for side, url in (("dynamic (gunicorn)", dynamic + app_path), ("static (nginx)", static + static_path)):
                    print(f"wrk {args.connections} connections, {args.duration} s: {url}", flush=True)
                    rps, p50, p99, errors, count, _ = wrk(url, args.connections, args.duration)
                    runs.append(Run(target, side, url, rps, p50, p99, errors, count))
        finally:
            stop(web)
            stop(app)

    lines = [
        f"python -m bench static --duration {args.duration} --connections {args.connections}"
        f"  ({dt.date.today().isoformat()}, {os.cpu_count()} cores, commit {(git_commit() or '?')[:7]})",
        "",
        "| What | Served by | Requests/s | p50 | p99 | Errors | Static ÷ dynamic |",
        "|---|---|---|---|---|---|---|",
    ]
    for dyn, sta in zip(runs[::2], runs[1::2], strict=True):
        for run in (dyn, sta):
            ratio = f"{sta.requests_per_s / dyn.requests_per_s:,.0f}×" if run is sta else ""
            lines.append(
                f"| {run.target} | {run.side} | {run.requests_per_s:,.0f} | {run.p50_ms:.2f} ms | {run.p99_ms:.2f} ms "
                f"| {run.errors} of {run.requests:,} | {ratio} |"
            )
    text = "\n".join(lines)
    print(text)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "static.txt").write_text(text + "\n", encoding="utf-8")
    (RESULTS / "static.json").write_text(
        json.dumps({"args": vars(args), "commit": git_commit(), "runs": [asdict(r) for r in runs]}, indent=2) + "\n",
        encoding="utf-8",
    )
    return 0
