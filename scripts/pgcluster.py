"""A private PostgreSQL + PostGIS cluster under a folder, on a free loopback port: for the tests and benchmarks.

``python scripts/pgcluster.py start build/pg [DATABASE]`` prints the URL of a running cluster (starting
it, with a superuser ``geoapp`` and trust authentication on loopback only), or of its database
``DATABASE`` (created if missing); ``stop build/pg`` stops it. The
server binaries are Debian's (``postgresql-15`` and ``postgresql-15-postgis-3``, which ``make test``
installs). PostgreSQL refuses to run as root: as root, the cluster runs as the ``postgres`` user.

Durability is traded for speed (``fsync=off``): this cluster holds test data only. The port of a running
cluster is read from its ``postmaster.pid``. Two processes starting the same cluster at once must hold a lock
around :func:`start` (``tests/backends.py`` does).
"""

from __future__ import annotations

import glob
import hashlib
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SUPERUSER = "geoapp"


def bindir() -> Path:
    """The newest installed PostgreSQL server's binaries."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parts[4]))
    if not found:
        raise SystemExit("no PostgreSQL server installed: scripts/apt-install.sh postgresql-15 postgresql-15-postgis-3")
    return Path(found[-1]).parent


def _as_owner(command: list[str], folder: Path, **kwargs) -> subprocess.CompletedProcess:
    if os.geteuid() == 0:
        command = ["runuser", "-u", "postgres", "--", *command]
    return subprocess.run(command, cwd=folder, check=True, capture_output=True, text=True, **kwargs)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _home(folder: Path) -> Path:
    """Where the server's own files go: ``folder`` itself, or, when the server's user cannot reach it (as root,
    in a checkout under a directory only root may enter), a directory of that user's under /tmp named after
    ``folder`` (``folder/data`` then links to it)."""
    if os.geteuid() != 0:
        return folder
    reachable = subprocess.run(["runuser", "-u", "postgres", "--", "test", "-w", str(folder)], capture_output=True)
    if reachable.returncode == 0:
        return folder
    home = Path(tempfile.gettempdir()) / f"geoapp-pg-{hashlib.sha1(str(folder).encode()).hexdigest()[:12]}"
    home.mkdir(mode=0o700, exist_ok=True)
    owner = pwd.getpwnam("postgres")
    os.chown(home, owner.pw_uid, owner.pw_gid)
    link = folder / "data"
    if not link.is_symlink():
        shutil.rmtree(link, ignore_errors=True)
        link.symlink_to(home / "data")
    return home


def _pid_file(folder: Path) -> list[str]:
    """The lines of the running server's ``postmaster.pid`` (none when there is no server)."""
    try:
        return (folder / "data" / "postmaster.pid").read_text().splitlines()
    except OSError:
        return []


def _running_port(folder: Path) -> int | None:
    """The port of the server running under ``folder``, as it wrote it in ``postmaster.pid`` (line 1 its pid,
    line 4 its port), or None when no server runs there (no file, or one left by a server that is gone)."""
    lines = _pid_file(folder)
    if len(lines) < 4 or not lines[0].strip().isdigit() or not lines[3].strip().isdigit():
        return None  # being written by a server starting now
    try:
        os.kill(int(lines[0]), 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # alive, another user's
    return int(lines[3])


def url(folder: Path, database: str = "postgres") -> str | None:
    """The URL of the cluster running under ``folder``, or None."""
    port = _running_port(folder)
    if port is None:
        return None
    return f"postgresql://{SUPERUSER}@127.0.0.1:{port}/{database}"


def start(folder: str | os.PathLike) -> str:
    """Start the cluster under ``folder`` (creating it the first time); return its URL. Idempotent."""
    folder = Path(folder).resolve()
    running = url(folder)
    if running and _ready(folder):
        return running
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        os.chown(folder, owner.pw_uid, owner.pw_gid)
    home = _home(folder)
    data = home / "data"
    if not (data / "PG_VERSION").exists():
        shutil.rmtree(data, ignore_errors=True)
        _as_owner(
            [str(bindir() / "initdb"), "-D", str(data), "-U", SUPERUSER, "-A", "trust", "-E", "UTF8", "--no-locale"],
            home,
        )
    port = _free_port()  # the server writes it in postmaster.pid, where url() reads it
    options = (
        f"-p {port} -k {home} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off "
        "-c full_page_writes=off -c max_connections=200 -c shared_buffers=256MB"
    )
    log = home / "server.log"
    _as_owner([str(bindir() / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "start"], home)
    deadline = time.monotonic() + 60
    while not _ready(folder):
        if time.monotonic() > deadline:
            raise SystemExit(f"PostgreSQL did not start; see {log}")
        time.sleep(0.2)
    return url(folder)


def _ready(folder: Path) -> bool:
    """Whether the server under ``folder`` accepts connections: it says so on line 8 of ``postmaster.pid``
    (``starting`` until then, when a connection is refused), and its port answers."""
    port = _running_port(folder)
    if port is None:
        return False
    lines = _pid_file(folder)
    if len(lines) < 8 or lines[7].strip() != "ready":
        return False
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def stop(folder: str | os.PathLike) -> None:
    """Stop the cluster under ``folder`` if it runs (its data stays for the next start)."""
    folder = Path(folder).resolve()
    if _running_port(folder) is not None:
        home = _home(folder)
        _as_owner([str(bindir() / "pg_ctl"), "-D", str(home / "data"), "-m", "fast", "-w", "stop"], home)


def database(folder: str | os.PathLike, name: str) -> str:
    """The URL of database ``name`` in the running cluster under ``folder``, created if missing."""
    admin = url(Path(folder).resolve())
    found = subprocess.run(
        ["psql", admin, "-tAc", f"SELECT 1 FROM pg_database WHERE datname = '{name}'"],
        check=True,
        capture_output=True,
        text=True,
    )
    if not found.stdout.strip():
        subprocess.run(["psql", admin, "-qc", f'CREATE DATABASE "{name}"'], check=True, capture_output=True)
    return url(Path(folder).resolve(), name)


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4) or sys.argv[1] not in ("start", "stop"):
        raise SystemExit("usage: pgcluster.py start FOLDER [DATABASE] | stop FOLDER")
    if sys.argv[1] == "start":
        started = start(sys.argv[2])
        print(database(sys.argv[2], sys.argv[3]) if len(sys.argv) == 4 else started)
    else:
        stop(sys.argv[2])
