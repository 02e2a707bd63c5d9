"""Reloads under load: how many requests fail while every worker is replaced.

Starts ``python -m layer3_http`` on an application written to a temporary
folder (``app.py``, which imports ``version.py``), runs client threads
that send ``GET /`` in a loop, half of them on keep-alive connections and
half with ``Connection: close``, and meanwhile reloads the application
``--reloads`` times: each time it rewrites ``version.py`` with the next
version number, sends ``SIGUSR2``, waits for the master's line
``reload N done``, then for ``--between`` more answers, the last of them
from the new version (so every reload happens under load, and each one
is seen to take effect). With ``--broken``, a broken version (a syntax error) is
deployed before each good one: its reload must end in ``reload N
abandoned`` while the old workers keep serving.

    python3 bench/reload.py [--workers 4] [--clients 4] [--reloads 10] [--between 300]
        [--broken | --good]

It prints one line per scenario (and first a baseline: the same clients
for as many answers, without a reload): the requests sent, the ones that failed
(anything but a 200 with a version number: a refused or reset connection,
a 5xx), the longest wait for one answer, the reloads done and abandoned,
and the last version the clients saw (the longest wait and the 99th
percentile of the waits). The loop is bounded: it stops after
the last reload, or after ``--limit`` seconds, whichever comes first.
Standard library only.
"""

from __future__ import annotations

import argparse
import http.client
import os
import platform
import queue
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# --8<-- [start:app]
APP = '''\
import version


def app(request):
    request.send_status("200 OK")
    request.send_header("Content-Type", "text/plain")
    request.send_data(f"version {version.NUMBER}\\n")
'''
# --8<-- [end:app]
BROKEN = "NUMBER = (\n"
"""A version that cannot be imported: the reload that loads it is abandoned."""


def source(version: int) -> str:
    """The text of ``version.py`` for `version`: its size differs from every other's.

    Python's bytecode cache trusts a source whose modification time (in
    whole seconds) and size match the cached ones, and reloads come
    faster than once a second here.
    """
    return f"NUMBER = {version}\n" + "#" * version + "\n"


@dataclass
class Tally:
    """What the clients saw, added up under a lock."""

    lock: threading.Condition = field(default_factory=threading.Condition)
    sent: int = 0
    failed: int = 0
    longest: float = 0.0
    waits: list[float] = field(default_factory=list)
    versions: set[int] = field(default_factory=set)
    errors: dict[str, int] = field(default_factory=dict)

    def add(self, seconds: float, version: int | None, error: str = "") -> None:
        with self.lock:
            self.sent += 1
            self.longest = max(self.longest, seconds)
            self.waits.append(seconds)
            if version is None:
                self.failed += 1
                self.errors[error] = self.errors.get(error, 0) + 1
            else:
                self.versions.add(version)
                self.last = version
            self.lock.notify_all()

    last: int = -1

    def wait_for(self, version: int, answers: int, done: threading.Event) -> None:
        """Wait until `answers` more answers came and the last was of `version` (or `done`)."""
        with self.lock:
            target = self.sent + answers
            while not done.is_set() and (self.sent < target or self.last != version):
                self.lock.wait(1.0)


def client(port: int, keep_alive: bool, tally: Tally, done: threading.Event) -> None:
    """Send ``GET /`` until `done`; count each answer and each failure."""
    conn: http.client.HTTPConnection | None = None
    headers = {} if keep_alive else {"Connection": "close"}
    while not done.is_set():
        started = time.monotonic()
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("GET", "/", headers=headers)
            response = conn.getresponse()
            body = response.read()
            match = re.fullmatch(rb"version (\d+)\n", body)
            if response.status != 200 or match is None:
                tally.add(time.monotonic() - started, None, f"status {response.status}")
            else:
                tally.add(time.monotonic() - started, int(match.group(1)))
            if not keep_alive or response.will_close:
                conn.close()
                conn = None
        except (OSError, http.client.HTTPException) as error:
            tally.add(time.monotonic() - started, None, type(error).__name__)
            if conn is not None:
                conn.close()
            conn = None
    if conn is not None:
        conn.close()


class Server:
    """The server under test, its log read line by line in a thread."""

    def __init__(self, folder: Path, workers: int) -> None:
        argv = [sys.executable, "-m", "layer3_http", "--workers", str(workers), "-s",
                "--listen", "127.0.0.1:0", str(folder / "app.py")]
        self.proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.port = int(self.wait(r"listening on port (\d+)").group(1))
        self.wait(rf"stats total={workers} idle={workers} ")  # every worker is ready

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self.lines.put(raw.decode(errors="replace").rstrip("\n"))
        self.lines.put("")

    def wait(self, pattern: str, timeout: float = 60.0) -> re.Match[str]:
        """The first line from now on that matches `pattern`."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                break
            if (match := re.search(pattern, line)) is not None:
                return match
            if not line and self.proc.poll() is not None:
                break
        raise RuntimeError(f"the server did not log {pattern!r}")

    def reload(self, number: int, expect: str) -> float:
        """Send SIGUSR2; wait for reload `number` to end as `expect`; return the seconds."""
        started = time.monotonic()
        self.proc.send_signal(signal.SIGUSR2)
        match = self.wait(rf"reload {number} (done|abandoned)")
        if match.group(1) != expect:
            raise RuntimeError(f"reload {number} ended {match.group(1)}, not {expect}")
        return time.monotonic() - started

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


def percentile(values: list[float], share: float) -> float:
    """The value below which `share` of `values` lie (0 for none)."""
    ordered = sorted(values)
    return ordered[min(int(len(ordered) * share), len(ordered) - 1)] if ordered else 0.0


def scenario(arguments: argparse.Namespace, broken: bool | None) -> dict[str, object]:
    """Run the clients across the reloads of one scenario; return its figures.

    `broken`: a broken version before each good one; `None`: no reload at
    all, the same clients for as many answers as the reloads take (the
    baseline the waits compare with).
    """
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        (folder / "app.py").write_text(APP)
        (folder / "version.py").write_text(source(0))
        server = Server(folder, arguments.workers)
        tally, done = Tally(), threading.Event()
        threads = [threading.Thread(target=client, args=(server.port, index % 2 == 0, tally, done))
                   for index in range(arguments.clients)]
        for thread in threads:
            thread.start()
        timer = threading.Timer(arguments.limit, done.set)
        timer.start()
        reloads = abandoned = 0
        durations: list[float] = []
        try:
            tally.wait_for(0, arguments.between, done)
            if broken is None:
                tally.wait_for(0, arguments.between * arguments.reloads * 2, done)
            for version in range(1, arguments.reloads + 1 if broken is not None else 1):
                if done.is_set():
                    break
                if broken:
                    (folder / "version.py").write_text(BROKEN)
                    server.reload(reloads + abandoned + 1, "abandoned")
                    abandoned += 1
                    tally.wait_for(version - 1, arguments.between, done)  # the old one serves
                (folder / "version.py").write_text(source(version))
                durations.append(server.reload(reloads + abandoned + 1, "done"))
                reloads += 1
                tally.wait_for(version, arguments.between, done)
        finally:
            done.set()
            timer.cancel()
            for thread in threads:
                thread.join(60)
            code = server.stop()
    name = {None: "no reload (baseline)", False: "good versions only",
            True: "a broken version before each"}[broken]
    return {"scenario": name,
            "requests": tally.sent, "failed": tally.failed,
            "longest": tally.longest, "p99": percentile(tally.waits, 0.99),
            "reloads": reloads, "abandoned": abandoned,
            "reload_time": max(durations, default=0.0), "last": max(tally.versions, default=0),
            "errors": tally.errors, "exit": code}


def main(argv: list[str] | None = None) -> int:
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("--workers", type=int, default=4)
    cli.add_argument("--clients", type=int, default=4)
    cli.add_argument("--reloads", type=int, default=10)
    cli.add_argument("--between", type=int, default=300,
                     help="answers to wait for after each reload before the next")
    cli.add_argument("--limit", type=float, default=120.0,
                     help="seconds after which a scenario stops in any case")
    cli.add_argument("--broken", action="store_true", help="only the scenario with broken versions")
    cli.add_argument("--good", action="store_true", help="only the scenario without them")
    arguments = cli.parse_args(argv)
    kinds: list[bool | None] = [None, False, True]
    if arguments.broken != arguments.good:
        kinds = [arguments.broken]
    print(f"# {platform.node()}: {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"{arguments.workers} workers, {arguments.clients} clients "
          f"(half keep-alive, half Connection: close)")
    print("| scenario | requests | failed | longest wait | 99th percentile | reloads done "
          "| abandoned | slowest reload | last version seen |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    failed = 0
    for broken in kinds:
        row = scenario(arguments, broken)
        failed += int(row["failed"])  # type: ignore[call-overload]
        print(f"| {row['scenario']} | {row['requests']} | {row['failed']} "
              f"| {row['longest'] * 1000:.0f} ms | {row['p99'] * 1000:.1f} ms "  # type: ignore[operator]
              f"| {row['reloads']} | {row['abandoned']} "
              f"| {row['reload_time']:.2f} s | {row['last']} |", flush=True)
        if row["errors"]:
            print(f"#   failures: {row['errors']}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
