"""The servers under test: how each is started, watched, measured and stopped.

Each `Server` names a command line; `Running` is one started instance. A
server runs in its own session (so its process group holds exactly it and
its workers), with its output in a log file. Readiness is an answered
``GET /`` and the expected number of worker processes; a worker is a child
of the server's process (a server without worker processes is its own
worker).

Peak memory is read from ``/proc``: before an upload each worker's peak is
reset (``/proc/PID/clear_refs``, value 5) so that ``VmHWM`` afterwards
is the peak during that upload; the growth reported is the largest
``VmHWM`` after minus ``VmRSS`` before over the workers. The master's
resident memory (``VmRSS`` of the server's own process) shows what
holding many idle connections costs it.

Invariants: `Running.stop` always leaves no process behind: SIGTERM to the
server, SIGKILL after a grace period, then SIGKILL to each remembered
worker PID and to the server's own process group (whose ID is the server's
PID, which we started), and every child of ours reaped.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from _clients import ClientError, get

ROOT = Path(__file__).resolve().parent.parent
SERVERS_DIR = ROOT / "bench" / "servers"
HELLO = b"Hello, World!"
WORKERS = 2
BODY_LIMIT = 1 << 30
PIECE = 64 * 1024
"""The body pieces every application takes (`wsgi_app.PIECE`; ours: `maximum_input_chunk_size`)."""
TICKS = os.sysconf("SC_CLK_TCK")


Command = Callable[[str, int, Path], list[str]]
"""Builds a server's argument list from the interpreter, its port and the static-files folder."""


@dataclass(frozen=True)
class Server:
    """One server under test.

    Attributes:
        name: The short name used on the command line and in the tables.
        label: What the tables call it.
        command: Builds the argument list (see `Command`).
        workers: Worker processes to wait for (0: a single process).
        hello: Whether it takes part in the small-request workloads.
        upload: Whether it takes part in the upload workloads.
        package: The distribution it needs from the benchmark venv (a peer), or "".
        module: The module that shows the package is installed (default: `package`).
        static_url: Where it serves the 16 MiB file of the static-files folder, or None
            (it serves no files).
        only: When not empty, the only workloads it takes part in.
        companion_of: Added to the run whenever that server is, for `only`'s workloads.
    """

    name: str
    label: str
    command: Command
    workers: int
    hello: bool = True
    upload: bool = True
    package: str = ""
    module: str = ""
    static_url: str | None = None
    only: tuple[str, ...] = ()
    companion_of: str = ""

    @property
    def peer(self) -> bool:
        """Whether it needs the benchmark venv's packages."""
        return bool(self.package)

    @property
    def import_name(self) -> str:
        return self.module or self.package

    def takes_part(self, workload: str, upload: bool, static: bool) -> bool:
        """Whether it is measured in `workload` (an upload, or one that needs static files)."""
        if self.only and workload not in self.only:
            return False
        if static and self.static_url is None:
            return False
        return self.upload if upload else self.hello


def _gunicorn(kind: str, *extra: str) -> Command:
    def command(python: str, port: int, _files: Path) -> list[str]:
        return [python, "-m", "gunicorn", "--workers", str(WORKERS), "--worker-class", kind,
                *extra, "--bind", f"127.0.0.1:{port}", "--timeout", "300",
                "--chdir", str(SERVERS_DIR), "wsgi_app:app"]
    return command


def _granian(python: str, port: int, files: Path) -> list[str]:
    return [python, "-m", "granian", "--interface", "wsgi", "--workers", str(WORKERS),
            "--host", "127.0.0.1", "--port", str(port), "--http", "1", "--no-ws",
            "--backlog", "1024", "--log-level", "warning",
            "--static-path-route", "/static", "--static-path-mount", str(files),
            "--working-dir", str(SERVERS_DIR), "wsgi_app:app"]


def _uwsgi(python: str, port: int, files: Path) -> list[str]:
    # pyuwsgi's entry point is pyuwsgi.run(), which reads sys.argv like the uwsgi command.
    return [python, "-c", "import sys, pyuwsgi; sys.exit(pyuwsgi.run())",
            "--http-socket", f"127.0.0.1:{port}", "--master", "--processes", str(WORKERS),
            "--module", "wsgi_app:app", "--chdir", str(SERVERS_DIR), "--die-on-term",
            "--listen", "1024", "--disable-logging", "--static-map", f"/static={files}"]


STATIC_FILE = "big.bin"
"""The 16 MiB file in the static-files folder (beside an ``index.html`` saying Hello)."""


SERVERS: dict[str, Server] = {server.name: server for server in (
    Server("limit", "limit (epoll loop)", lambda python, port, _files: [
        python, str(SERVERS_DIR / "limit.py"), "--listen", f"127.0.0.1:{port}",
        "--workers", str(WORKERS)], WORKERS, upload=False),
    Server("sink", "raw byte sink", lambda python, port, _files: [
        python, str(SERVERS_DIR / "sink.py"), "--listen", f"127.0.0.1:{port}",
        "--workers", str(WORKERS)], WORKERS, hello=False),
    Server("ours", "ours (layer3_http)", lambda python, port, _files: [
        python, "-m", "layer3_http", str(SERVERS_DIR / "moonbridge_app.py") + ":app",
        "--listen", f"127.0.0.1:{port}", "--workers", str(WORKERS),
        "--request-body-size-limit", str(BODY_LIMIT),
        "--maximum-input-chunk-size", str(PIECE)], WORKERS),
    Server("ours-static", "ours --static", lambda python, port, files: [
        python, "-m", "layer3_http", "--static", str(files),
        "--listen", f"127.0.0.1:{port}", "--workers", str(WORKERS)], WORKERS,
           upload=False, static_url="/" + STATIC_FILE, only=("slow-reader-static",),
           companion_of="ours"),
    Server("gunicorn-sync", "gunicorn sync", _gunicorn("sync"), WORKERS, package="gunicorn"),
    Server("gunicorn-gthread", "gunicorn gthread (4 threads)",
           _gunicorn("gthread", "--threads", "4"), WORKERS, package="gunicorn"),
    Server("waitress", "waitress (4 threads)", lambda python, port, _files: [
        python, "-m", "waitress", f"--listen=127.0.0.1:{port}", "--threads=4",
        f"--max-request-body-size={BODY_LIMIT}", "wsgi_app:app"], 0, package="waitress"),
    Server("granian", "granian (Rust, WSGI)", _granian, WORKERS, package="granian",
           static_url="/static/" + STATIC_FILE),
    Server("uwsgi", "uWSGI (C, pyuwsgi)", _uwsgi, WORKERS, package="pyuwsgi",
           static_url="/static/" + STATIC_FILE),
    Server("bjoern", "bjoern (C, libev, 2 processes)", lambda python, port, _files: [
        python, str(SERVERS_DIR / "bjoern_server.py"), "--listen", f"127.0.0.1:{port}",
        "--workers", str(WORKERS)], WORKERS, package="bjoern"),
    Server("stdlib", "http.server (threaded)", lambda python, port, _files: [
        python, str(SERVERS_DIR / "stdlib_server.py"), "--listen", f"127.0.0.1:{port}"], 0),
)}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def children_of(pid: int) -> list[int]:
    """The PIDs whose parent is `pid` (read from ``/proc``)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        if int(fields[1]) == pid:
            found.append(int(entry))
    return sorted(found)


def _cpu(pid: int) -> float:
    """Seconds of user and system time of process `pid` (0 if it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rfind(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


class Running:
    """A started server: its process, its port, its log.

    Args:
        server: What to start.
        python: The interpreter to start it with.
        log: The file that receives its output.
        env: The environment to start it in.
        files: The static-files folder (for the servers that serve files).
    """

    def __init__(self, server: Server, python: str, log: Path, env: dict[str, str],
                 files: Path = SERVERS_DIR) -> None:
        self.server = server
        self.port = free_port()
        self.log = log
        self.workers: list[int] = []
        with open(log, "wb") as out:  # cwd: never the checkout, so PYTHONPATH picks our code
            self.proc = subprocess.Popen(server.command(python, self.port, files),
                                         cwd=SERVERS_DIR,
                                         env=env,
                                         stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Wait until ``GET /`` is answered and the workers are there.

        Raises:
            RuntimeError: The server exited or was not ready in time.
        """
        deadline = time.monotonic() + timeout
        answered = False
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"{self.server.name} exited ({self.proc.returncode}); "
                                   f"log: {self.log_tail()}")
            if not answered:
                answered = self.answers()
            if answered:
                self.workers = children_of(self.pid) if self.server.workers else [self.pid]
                if len(self.workers) >= max(self.server.workers, 1):
                    return
            time.sleep(0.05)
        raise RuntimeError(f"{self.server.name} not ready after {timeout} s; "
                           f"log: {self.log_tail()}")

    def answers(self) -> bool:
        """Whether ``GET /`` on a new connection gets ``Hello, World!`` within 2 s."""
        try:
            status, body = get(self.port, "/", timeout=2.0)
        except (OSError, ClientError):
            return False
        return status == 200 and body == HELLO

    def worker_pids(self) -> list[int]:
        """The current workers (a single-process server is its own worker)."""
        if not self.server.workers:
            return [self.pid]
        current = children_of(self.pid)
        self.workers = sorted(set(self.workers) | set(current))
        return current

    def cpu_seconds(self) -> tuple[float, float]:
        """CPU time (user and system) used so far: (the server's own process, its workers)."""
        own = _cpu(self.pid)
        if not self.server.workers:
            return own, 0.0
        return own, sum(_cpu(pid) for pid in self.worker_pids())

    def reset_peaks(self) -> dict[int, int]:
        """Reset each worker's peak RSS; return each one's RSS now (KiB)."""
        baseline = {}
        for pid in self.worker_pids():
            try:
                try:
                    Path(f"/proc/{pid}/clear_refs").write_text("5")
                    baseline[pid] = _status_kib(pid, "VmRSS")
                except PermissionError:
                    baseline[pid] = _status_kib(pid, "VmHWM")
            except (OSError, KeyError):
                continue
        return baseline

    def peak_growth_kib(self, baseline: dict[int, int]) -> int:
        """The largest rise of a worker's peak RSS since `reset_peaks` (KiB)."""
        growth = 0
        for pid, before in baseline.items():
            try:
                growth = max(growth, _status_kib(pid, "VmHWM") - before)
            except (OSError, KeyError):
                continue
        return growth

    def rss_kib(self) -> int | None:
        """The resident memory of the server's own process (its master), KiB; None if gone."""
        try:
            return _status_kib(self.pid, "VmRSS")
        except (OSError, KeyError):
            return None

    def recovers(self, within: float) -> float | None:
        """Wait until ``GET /`` is answered again; return the seconds, or None after `within`."""
        start = time.monotonic()
        while time.monotonic() - start < within:
            if not self.alive():
                return None
            if self.answers():
                return time.monotonic() - start
            time.sleep(0.05)
        return None

    def log_tail(self, size: int = 600) -> str:
        try:
            return self.log.read_bytes()[-size:].decode(errors="replace")
        except OSError:
            return ""

    def stop(self, grace: float = 5.0) -> None:
        """Stop the server and everything it started; reap it."""
        if self.alive():
            self.worker_pids()
            _signal(self.pid, signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                _signal(self.pid, signal.SIGKILL)
                self.proc.wait(grace)
        for pid in self.workers:
            if pid != self.pid and _in_session(pid, self.pid):
                _signal(pid, signal.SIGKILL)
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait(grace)


def _in_session(pid: int, session: int) -> bool:
    """Whether `pid` still runs in the session we started (so it is one of ours)."""
    try:
        return os.getsid(pid) == session
    except OSError:
        return False


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass
