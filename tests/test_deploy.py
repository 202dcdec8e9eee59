"""deploy/: the nginx site for real, in front of two gunicorn servers of the app on one store; the systemd units.

nginx runs as this user on a free loopback port, with the site's paths pointed into a temporary folder
(``nginx -t`` first). Skipped only when Debian's nginx is not installed (``make test`` installs it).
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from bench.static import nginx_config
from geoapp.config import PROJECT_ROOT
from geoapp.web.auth import _instance_secret
from tests.conftest import start_server, stop_server

DEPLOY = PROJECT_ROOT / "deploy"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
# both are Debian packages `make test` installs (SYSTEM_PACKAGES): a missing one fails, it does not skip
SYSTEMD_ANALYZE = shutil.which("systemd-analyze") or "/usr/bin/systemd-analyze"
GUNICORN = [str(PROJECT_ROOT / ".venv/bin/gunicorn"), "-c", "gunicorn.conf.py", "--no-control-socket", "wsgi:app"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def stack(tmp_path_factory, demo_gpkg):
    """Two gunicorn servers on one store, the published map, and nginx in front: yields (base URL, logs)."""
    root = tmp_path_factory.mktemp("deploy")
    database = root / "geoapp.gpkg"
    shutil.copy(demo_gpkg, database)
    settings = {
        "GEOAPP_DATABASE": str(database),
        "GEOAPP_BASEMAP": "none",
        "GEOAPP_WORKERS": "1",
        "GEOAPP_PROXIES": "1",
        "GEOAPP_SECRET_KEY": "the-same-on-every-server",
    }
    env = {**os.environ, **settings}
    subprocess.run(
        [str(PROJECT_ROOT / ".venv/bin/flask"), "--app", "wsgi", "geoapp", "publish", "--out", str(root / "public")],
        cwd=PROJECT_ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    token = subprocess.run(
        [str(PROJECT_ROOT / ".venv/bin/flask"), "--app", "wsgi", "geoapp", "token", "add", "desk", "--role", "viewer"],
        cwd=PROJECT_ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    servers, logs = [], []
    try:
        for name in ("a", "b"):
            logs.append(root / f"gunicorn-{name}.log")
            servers.append(start_server(GUNICORN, logs[-1], 60, **settings))
        yield root, database, token, servers, logs
    finally:
        for proc, _ in servers:
            stop_server(proc)


@pytest.fixture(scope="module")
def nginx(stack):
    root, _, _, servers, _ = stack
    ports = tuple(int(base.rsplit(":", 1)[1]) for _, base in servers)
    listen = _free_port()
    conf = nginx_config(root, ports, listen, root / "public")
    check = subprocess.run([NGINX, "-t", "-c", str(conf), "-p", str(root)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    proc = subprocess.Popen(
        [NGINX, "-c", str(conf), "-p", str(root), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{listen}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"{base}/public/", timeout=2)
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                stop_server(proc)
                pytest.fail(f"nginx did not serve on {base}:\n{(root / 'error.log').read_text()}")
            time.sleep(0.1)
    yield base
    stop_server(proc)


def get(url: str, **headers: str):
    """(status, headers, raw body): the body as sent, not decompressed."""
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def from_cache(url: str, tries: int = 5, **headers: str) -> list[tuple]:
    """GET ``url`` until nginx answers from its cache: every answer, the last a HIT. The answer before may be stored
    a moment after the client has it, and a loaded machine (parallel tests) can keep a request past the API's 10 s:
    each try is one more request, at most ``tries``; nothing is timed."""
    answers = []
    for _ in range(tries):
        answers.append(get(url, **headers))
        if answers[-1][1]["X-Cache-Status"] == "HIT":
            return answers
    pytest.fail(f"no answer of {url} came from the cache: {[a[1]['X-Cache-Status'] for a in answers]}")


def test_requests_are_spread_over_both_app_servers(nginx, stack):
    logs = stack[4]
    before = [log.read_text().count("GET /api/layers/roads/features") for log in logs]
    for i in range(20):  # each a different answer: none comes from the cache
        status, _, _ = get(f"{nginx}/api/layers/roads/features?limit={i + 1}")
        assert status == 200
    deadline = time.monotonic() + 30
    while True:  # gunicorn writes its access log line after the answer: wait for the last ones
        after = [log.read_text().count("GET /api/layers/roads/features") for log in logs]
        served = [a - b for a, b in zip(after, before, strict=True)]
        if sum(served) >= 20 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert sum(served) == 20 and min(served) >= 5, served


def test_answers_are_compressed_and_vendor_assets_cached_for_a_week(nginx):
    for path in ("/", "/api/layers", "/static/vendor/leaflet/dist/leaflet.js", "/static/onemap.css"):
        status, headers, body = get(f"{nginx}{path}", **{"Accept-Encoding": "gzip"})
        assert status == 200, path
        assert headers["Content-Encoding"] == "gzip", path
        assert gzip.decompress(body), path
    status, headers, body = get(f"{nginx}/static/vendor/leaflet/dist/leaflet.js")
    assert "max-age=604800" in headers["Cache-Control"] and "public" in headers["Cache-Control"]
    *_, (_, headers, cached) = from_cache(f"{nginx}/static/vendor/leaflet/dist/leaflet.js")
    assert headers["X-Cache-Status"] == "HIT" and cached == body


def test_the_public_api_is_cached_briefly_and_staff_answers_never(nginx, stack):
    token = stack[2]
    url = f"{nginx}/api/layers/waterlogging_points/features?limit=50"
    first = get(url)
    assert first[1]["X-Cache-Status"] in ("MISS", "EXPIRED")
    answers = from_cache(url)
    second = answers[-1]
    assert second[1]["X-Cache-Status"] == "HIT" and second[2] == first[2]
    assert all(b"contact_phone" not in body for _, _, body in [first, *answers])

    staff = get(url, Authorization=f"Bearer {token}")
    assert staff[0] == 200 and staff[1]["X-Cache-Status"] == "BYPASS"
    assert "no-store" in staff[1]["Cache-Control"] and "private" in staff[1]["Cache-Control"]
    assert b"contact_phone" in staff[2]
    # the staff answer was not stored for the public: no answer after it, cached or not, has the internal field
    answers = from_cache(url)
    assert answers[-1][1]["X-Cache-Status"] == "HIT"
    assert all(b"contact_phone" not in body for _, _, body in answers)
    with_cookie = get(url, Cookie="session=anything")
    assert with_cookie[1]["X-Cache-Status"] == "BYPASS"


def test_the_published_map_is_served_from_its_gzip_files(nginx, stack):
    public = stack[0] / "public"
    for path, file in (
        ("/public/", "index.html"),
        ("/public/index.en.html", "index.en.html"),
        ("/public/data/manhole_covers.geojson", "data/manhole_covers.geojson"),
        ("/public/static/js/pages/onemap.js", "static/js/pages/onemap.js"),
        ("/public/static/vendor/leaflet/dist/leaflet.js", "static/vendor/leaflet/dist/leaflet.js"),
    ):
        status, headers, body = get(f"{nginx}{path}", **{"Accept-Encoding": "gzip"})
        assert status == 200, path
        assert headers["Content-Encoding"] == "gzip", path
        assert body == (public / f"{file}.gz").read_bytes(), path  # the file publish wrote, not compressed anew
        assert headers["X-Frame-Options"] == "DENY" and headers["X-Content-Type-Options"] == "nosniff"
        max_age = re.search(r"max-age=(\d+)", headers["Cache-Control"]).group(1)
        assert max_age == ("604800" if "/vendor/" in path else "60"), path
    _, headers, body = get(f"{nginx}/public/data/manhole_covers.geojson")
    assert headers["Content-Type"] == "application/geo+json" and body.startswith(b'{"type":"FeatureCollection"')
    status, headers, _ = get(f"{nginx}/public")
    assert status == 200  # redirected to /public/


@pytest.mark.parametrize("unit", ["geoapp@5001.service", "geoapp-publish.service", "geoapp-publish.timer"])
def test_the_systemd_units_verify(tmp_path, unit):
    """Each unit with its paths pointed at this checkout; systemd-analyze prints nothing for a good unit."""
    env = tmp_path / "geoapp.env"
    env.write_text("GEOAPP_SECRET_KEY=x\n")
    for source in (DEPLOY / "systemd").glob("geoapp*"):
        text = source.read_text(encoding="utf-8").replace("/srv/geoapp/app", str(PROJECT_ROOT))
        (tmp_path / source.name).write_text(text.replace("/etc/geoapp/geoapp.env", str(env)), encoding="utf-8")
    shutil.copy(tmp_path / "geoapp@.service", tmp_path / "geoapp@5001.service")
    result = subprocess.run(
        [SYSTEMD_ANALYZE, "verify", "--man=no", str(tmp_path / unit)], capture_output=True, text=True, cwd=tmp_path
    )
    assert result.returncode == 0 and result.stdout + result.stderr == "", result.stdout + result.stderr


def _at_once(processes: int, call) -> list[str]:
    """What ``call()`` returns in each of ``processes`` forked processes, let go at the same moment."""
    start_r, start_w = os.pipe()
    children = []
    for _ in range(processes):
        out_r, out_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: wait for the start, answer, and leave without running pytest's exit handlers
            code = 0
            try:
                os.close(out_r)
                os.read(start_r, 1)
                os.write(out_w, call().encode())
            except BaseException as exc:
                os.write(out_w, f"{type(exc).__name__}: {exc}".encode())
                code = 1
            finally:
                os._exit(code)
        os.close(out_w)
        children.append((pid, out_r))
    os.write(start_w, b"x" * processes)  # every child is waiting: all go at once
    answers = []
    for pid, out_r in children:
        with os.fdopen(out_r, "rb") as answer:
            answers.append(answer.read().decode())
        os.waitpid(pid, 0)
    os.close(start_r)
    os.close(start_w)
    return answers


def _trials(folder: str, trials: int) -> None:
    """In a process of its own (see below): ``trials`` times, 8 processes forked from it ask for the key of a new
    instance folder under ``folder`` at the same moment; one JSON line of their answers per trial."""
    for trial in range(trials):
        instance = Path(folder) / f"instance{trial}"
        print(json.dumps(_at_once(8, lambda instance=instance: _instance_secret(instance))), flush=True)


def test_servers_starting_at_once_on_one_instance_folder_sign_with_one_key(tmp_path):
    """With no GEOAPP_SECRET_KEY the servers keep a key in instance/secret_key: servers (or test workers) starting
    together all end up with the same one, never an empty or half-written key nor an error for the slower ones,
    and leave no other file there. (The code before the fix failed about one trial in six.) The processes are
    forked from a new interpreter, as servers start, not from the test worker: forking a worker that had run
    half the suite took 33 s for the 240 processes, a new interpreter about 5 s."""
    trials = 30
    run = subprocess.run(
        [sys.executable, "-c", f"from tests.test_deploy import _trials; _trials({str(tmp_path)!r}, {trials})"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    answers = [json.loads(line) for line in run.stdout.splitlines()]
    assert len(answers) == trials
    for trial, keys in enumerate(answers):
        instance = tmp_path / f"instance{trial}"
        assert len(set(keys)) == 1 and re.fullmatch(r"[0-9a-f]{64}", keys[0]), set(keys)
        assert [p.name for p in instance.iterdir()] == ["secret_key"]
        assert (instance / "secret_key").stat().st_mode & 0o777 == 0o600
