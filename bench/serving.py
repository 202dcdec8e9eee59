"""gunicorn as ``make run`` starts it, for the benchmarks: the command, a free port, a clean stop; an
instance timed from launch to its first answer, a keep-alive client, and the memory of its processes."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from bench.tables import size_bytes
from geoapp.config import PROJECT_ROOT

GUNICORN = Path(sys.executable).with_name("gunicorn")
STOP_TIMEOUT_S = 10
REQUEST_TIMEOUT_S = 180.0
STARTUP_TIMEOUT_S = 180.0
LOW_MEMORY_BYTES = 2 * 2**30


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


# -- a client ---------------------------------------------------------------------------------------


class Client:
    """Requests on one keep-alive loopback connection, each body read in full.

    A connection the server closed while idle (gthread's keep-alive timeout) is reopened and the
    request sent again; only the attempt that was answered is timed.
    """

    def __init__(self, port: int, timeout_s: float = REQUEST_TIMEOUT_S):
        self.port = port
        self._conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout_s)

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, bytes, int]:
        """(status, body, nanoseconds from sending to the last byte)."""
        for attempt in (1, 2):
            start = time.perf_counter_ns()
            try:
                self._conn.request(method, path, body=body, headers=headers or {})
                response = self._conn.getresponse()
                data = response.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self._conn.close()
                if attempt == 2:
                    raise
                continue
            return response.status, data, time.perf_counter_ns() - start
        raise AssertionError("unreachable")

    def get(self, path: str) -> tuple[bytes, int]:
        status, data, elapsed = self.request("GET", path)
        if status != 200:
            raise RuntimeError(f"GET {path} on :{self.port}: HTTP {status}: {data[:300]!r}")
        return data, elapsed

    def close(self) -> None:
        self._conn.close()


@contextmanager
def connection(port: int, timeout_s: float = REQUEST_TIMEOUT_S) -> Iterator[Client]:
    client = Client(port, timeout_s)
    try:
        yield client
    finally:
        client.close()


# -- an instance and its memory -----------------------------------------------------------------------


class Instance:
    """One gunicorn serving the store as ``make run`` does, with ``workers`` workers, on its own port."""

    def __init__(self, name: str, env: dict[str, str], log: Path, workers: int = 1):
        self.name = name
        self.port = free_port()
        self.workers = workers
        self.env = {**env, "GEOAPP_WORKERS": str(workers), "PORT": str(self.port)}
        self.log = log
        self.proc: subprocess.Popen | None = None

    def start(self) -> float:
        """Launch; return the seconds until the first 200 of ``/api/layers``."""
        with open(self.log, "wb") as stderr:
            start = time.perf_counter()
            # its own session, so that stopping the process group ends the master and its worker
            self.proc = subprocess.Popen(
                gunicorn_command(),
                cwd=PROJECT_ROOT,
                env=self.env,
                stdout=subprocess.DEVNULL,  # the access log: one line per request
                stderr=stderr,
                start_new_session=True,
            )
        deadline = start + STARTUP_TIMEOUT_S
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"instance {self.name} exited with {self.proc.returncode}:\n{self.tail()}")
            try:
                # the socket is bound before the app is warmed: the request waits until a worker answers it
                with connection(self.port, max(1.0, deadline - time.perf_counter())) as client:
                    client.get("/api/layers")
                return time.perf_counter() - start
            except ConnectionRefusedError:
                if time.perf_counter() > deadline:
                    raise RuntimeError(f"instance {self.name} did not answer in {STARTUP_TIMEOUT_S:.0f} s") from None
                time.sleep(0.02)

    def worker(self) -> int:
        """The pid of the master's one worker."""
        (pid,) = self.worker_pids()
        return pid

    def worker_pids(self) -> list[int]:
        """The pids of the master's workers, waiting a little for any still being forked."""
        assert self.proc is not None
        deadline = time.perf_counter() + STOP_TIMEOUT_S
        while len(children := child_pids(self.proc.pid)) < self.workers and time.perf_counter() < deadline:
            time.sleep(0.05)
        if len(children) != self.workers:
            raise RuntimeError(f"instance {self.name}: expected {self.workers} workers, found {children}")
        return children

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-2000:]


def child_pids(pid: int) -> list[int]:
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # gone meanwhile
            continue
        # pid (comm) state ppid ...: comm may hold spaces and parentheses, so split after the last ")"
        if int(stat.rpartition(")")[2].split()[1]) == pid:
            children.append(int(entry.name))
    return sorted(children)


@dataclass
class Memory:
    """One process's memory from ``/proc``, in bytes."""

    pss: int
    rss: int
    private: int
    peak_rss: int  # VmHWM: the largest RSS the process has had


def memory(pid: int) -> Memory:
    fields: dict[str, int] = {}
    for name in ("smaps_rollup", "status"):
        for line in Path(f"/proc/{pid}/{name}").read_text().splitlines():
            key, _, value = line.partition(":")
            parts = value.split()
            if len(parts) == 2 and parts[1] == "kB":
                fields[key] = int(parts[0]) * 1024
    return Memory(
        pss=fields["Pss"],
        rss=fields["Rss"],
        private=fields["Private_Clean"] + fields["Private_Dirty"],
        peak_rss=fields["VmHWM"],
    )


def available_memory() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no MemAvailable in /proc/meminfo")


class MemoryGuard:
    """Kill the instances if the machine runs short of memory (it is shared): a size then ends early."""

    def __init__(self, instances: Sequence[Instance], low: int = LOW_MEMORY_BYTES):
        self.instances = instances
        self.low = low
        self.tripped: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="memory-guard", daemon=True)

    def _watch(self) -> None:
        while not self._stop.wait(0.25):
            free = available_memory()
            if free < self.low:
                self.tripped = f"stopped: MemAvailable fell to {size_bytes(free)}"
                for instance in self.instances:
                    instance.kill()
                return

    def __enter__(self) -> MemoryGuard:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def run_parallel(tasks: Sequence[Callable[[], None]]) -> None:
    """Run each task in its own thread; re-raise the first failure."""
    errors: list[BaseException] = []

    def run(task: Callable[[], None]) -> None:
        try:
            task()
        except BaseException as error:  # re-raised in the caller's thread
            errors.append(error)

    threads = [threading.Thread(target=run, args=(task,)) for task in tasks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
