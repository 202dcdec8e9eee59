"""gunicorn as ``make run`` starts it, for the benchmarks: the command, a free port, a clean stop."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from geoapp.config import PROJECT_ROOT

GUNICORN = Path(sys.executable).with_name("gunicorn")
STOP_TIMEOUT_S = 10


def gunicorn_command() -> list[str]:
    """``make run``'s server command, run from the project folder.

    No control socket: gunicorn opens one at a fixed path per user, so an instance stopping would
    remove it for every other gunicorn of this user (a test run's, another benchmark instance's).
    """
    return [str(GUNICORN), "-c", "gunicorn.conf.py", "--no-control-socket", "wsgi:app"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM to the server's process group (started with ``start_new_session``), SIGKILL if it lingers."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
            return
        except subprocess.TimeoutExpired:
            continue


def git_commit() -> str | None:
    """The commit measured, for the results file (None outside a git checkout)."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip()
