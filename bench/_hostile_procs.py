"""The servers the hostile suite attacks: starting them, watching them in /proc, stopping them.

A `Target` is a server seen from outside: an address on the loopback and
the PID of its master. Its workers are the master's children
(``/proc/<master>/task/<master>/children``); its memory is ``VmHWM`` and
``VmRSS`` from ``/proc/PID/status``; its descriptors are the entries of
``/proc/PID/fd``. `Watch` samples all of it in a thread while an attack
runs, after resetting every peak (``/proc/PID/clear_refs``, value 5), so
the peaks it reports are the attack's own.

`own_servers` starts the two servers of the default run, each
``python -m layer3_http ... --listen 127.0.0.1:0 --workers 2`` in its own
session with its log collected by a reader thread: the static one serves a
temporary folder (a page, a 16 MiB file, a dotfile, a subfolder) and the
other one runs `_hostile_app`.

Invariants: every wait is bounded; `own_servers` always stops what it
started, also on an error: SIGTERM to the master, SIGKILL to its process
group after a grace period, the master reaped; `Server.pids` remembers
every process of the server ever seen, so a caller can check that none is
left.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APP = Path(__file__).resolve().parent / "_hostile_app.py"
BIG_FILE = 16 * 1024 * 1024
WORKERS = 2
START_TIMEOUT = 20.0
STOP_GRACE = 10.0
PORT_LINE = re.compile(r"listening on port (\d+)")
DEATH_LINE = re.compile(r"worker \d+ (?:was killed|exited with status [1-9])")


def proc_status(pid: int) -> dict[str, int]:
    """``VmHWM`` and ``VmRSS`` of `pid` in KiB (empty if it is gone)."""
    values: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                name, _, rest = line.partition(":")
                if name in ("VmHWM", "VmRSS"):
                    values[name] = int(rest.split()[0])
    except (OSError, ValueError):
        pass
    return values


def children(pid: int) -> list[int]:
    """The direct children of `pid` (its workers), empty if it is gone."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as file:
            return [int(part) for part in file.read().split()]
    except OSError:
        return []


def descriptors(pid: int) -> int:
    """How many descriptors `pid` holds (0 if it is gone)."""
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def reset_peak(pid: int) -> None:
    """Set `pid`'s ``VmHWM`` back to its ``VmRSS`` (when we may)."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as file:
            file.write("5")
    except OSError:
        pass


def alive(pid: int) -> bool:
    """Whether `pid` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as file:
            return file.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


@dataclass
class Target:
    """A server under attack: where it listens and its master's PID.

    Attributes:
        host: A loopback address.
        port: Its TCP port.
        master: The master's PID.
        log: The master's output lines so far (only for a server we started).
    """

    host: str
    port: int
    master: int
    log: list[str] | None = None

    def workers(self) -> list[int]:
        return children(self.master)

    def descriptors(self) -> int:
        """Descriptors of the master and all its workers together."""
        return sum(descriptors(pid) for pid in [self.master, *self.workers()])

    def deaths(self) -> int:
        """Log lines so far saying that a worker died (0 without a log)."""
        return sum(bool(DEATH_LINE.search(line)) for line in list(self.log or ()))


@dataclass
class Peaks:
    """What a `Watch` saw, memory in KiB; a worker's growth is its own peak minus its start."""

    master_before: int = 0
    master_peak: int = 0
    worker_before: dict[int, int] = field(default_factory=dict)
    worker_peaks: dict[int, int] = field(default_factory=dict)

    @property
    def worker_peak(self) -> int:
        return max(self.worker_peaks.values(), default=0)

    @property
    def worker_growth(self) -> int:
        return max((peak - self.worker_before.get(pid, peak)
                    for pid, peak in self.worker_peaks.items()), default=0)


class Watch:
    """Sample a target's memory every 50 ms in a thread (a context manager)."""

    def __init__(self, target: Target, interval: float = 0.05) -> None:
        self.target = target
        self.interval = interval
        self.peaks = Peaks()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="watch", daemon=True)

    def __enter__(self) -> Watch:
        master = self.target.master
        for pid in [master, *self.target.workers()]:
            reset_peak(pid)
        self.peaks.master_before = proc_status(master).get("VmRSS", 0)
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self._sample()

    def _sample(self) -> None:
        master = proc_status(self.target.master)
        self.peaks.master_peak = max(self.peaks.master_peak, master.get("VmHWM", 0))
        for pid in self.target.workers():
            worker = proc_status(pid)
            if "VmRSS" not in worker:
                continue
            self.peaks.worker_before.setdefault(pid, worker["VmRSS"])
            self.peaks.worker_peaks[pid] = max(self.peaks.worker_peaks.get(pid, 0),
                                               worker["VmHWM"])

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()


@dataclass
class Server:
    """A server we started: its process, its target and every PID seen."""

    name: str
    process: subprocess.Popen[str]
    target: Target
    pids: set[int] = field(default_factory=set)

    def remember(self) -> None:
        self.pids.update([self.process.pid, *self.target.workers()])


def _reader(process: subprocess.Popen[str], lines: list[str], port: threading.Event) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        lines.append(line.rstrip("\n"))
        if PORT_LINE.search(line):
            port.set()


def _start(name: str, arguments: list[str]) -> Server:
    """Start ``python -m layer3_http ARGUMENTS``; return once both workers are forked."""
    argv = [sys.executable, "-m", "layer3_http", *arguments,
            "--listen", "127.0.0.1:0", "--workers", str(WORKERS)]
    env = dict(os.environ, PYTHONUNBUFFERED="1",
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    process = subprocess.Popen(argv, cwd=ROOT, env=env, text=True, errors="replace",
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, start_new_session=True)
    lines: list[str] = []
    announced = threading.Event()
    threading.Thread(target=_reader, args=(process, lines, announced), daemon=True).start()
    server = Server(name, process, Target("127.0.0.1", 0, process.pid, lines))
    if not announced.wait(START_TIMEOUT):
        stop(server)
        raise RuntimeError(f"{name} server did not start: {lines[-5:]}")
    match = next(m for m in map(PORT_LINE.search, lines) if m)
    server.target.port = int(match.group(1))
    deadline = time.monotonic() + START_TIMEOUT
    while len(server.target.workers()) < WORKERS and time.monotonic() < deadline:
        time.sleep(0.05)  # the master forks its workers right after it announces the port
    server.remember()
    return server


def stop(server: Server) -> None:
    """Stop a server we started: SIGTERM, then SIGKILL to its group; reap the master."""
    server.remember()
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGTERM)
    try:
        server.process.wait(STOP_GRACE)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(server.process.pid, signal.SIGKILL)  # its own session: only its processes
    except (ProcessLookupError, PermissionError):
        pass
    try:
        server.process.wait(5)
    except subprocess.TimeoutExpired:
        pass


def make_folder(root: Path) -> Path:
    """The static folder: a page, a 16 MiB file, a dotfile and a subfolder."""
    (root / "index.html").write_text("<p>hello</p>\n")
    with open(root / "big.bin", "wb") as big:
        block = bytes(range(256)) * 4096
        for _ in range(BIG_FILE // len(block)):
            big.write(block)
    (root / ".env").write_text("SECRET_KEY=do-not-serve-me\n")
    (root / "docs").mkdir()
    (root / "docs" / "index.html").write_text("<p>docs</p>\n")
    return root


@contextmanager
def own_servers(stopped: list[Server] | None = None) -> Iterator[dict[str, Server]]:
    """Start the static and the application servers; stop them on the way out.

    Args:
        stopped: If given, the stopped servers are appended to it (to check
            afterwards that none of their processes is left).
    """
    servers: dict[str, Server] = {}
    with tempfile.TemporaryDirectory(prefix="hostile-") as folder:
        try:
            servers["static"] = _start("static", ["--static", str(make_folder(Path(folder)))])
            servers["app"] = _start("app", [f"{APP}:app"])
            yield servers
        finally:
            for server in servers.values():
                stop(server)
                if stopped is not None:
                    stopped.append(server)
