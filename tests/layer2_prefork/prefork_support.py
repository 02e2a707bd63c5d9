"""Helpers for the layer 2 tests: start a server, read its log, talk to it.

Servers run as real processes (``python -m layer2_prefork -s script ...``)
in their own session, so the finaliser of ``support.running`` kills the
master and every worker; `serve_and_reap` also checks, by PID, that none
of them is left afterwards. Waits are on log lines (each fork, exit and,
with ``-s``, every change of a pool's counts the master sees is a line),
never on sleeps. Workers write their state to a scoreboard the master
samples (every loop, and every 50 ms), so a busy spell shorter than that
may leave no ``stats`` line: wait for those only for lasting states (all
idle after start, busy in a handler that waits).
"""

from __future__ import annotations

import os
import re
import select
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from support import Program, running
from support import connect as connect  # the layer 2 tests import both from here
from support import read_line as read_line

SCRIPTS = Path(__file__).resolve().parent / "scripts"
SERVER = SCRIPTS / "server.py"

FORK = re.compile(rb"pool (\d+): forked worker (\d+)")
EXIT = re.compile(
    rb"pool (\d+): worker (\d+) (?:exited with status (\d+)|was killed by signal (\d+))")
STAMP = re.compile(rb"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ")


def stats(total: int | None = None, idle: int | None = None, busy: int | None = None,
          pool: int = 0) -> re.Pattern[bytes]:
    """A pattern for a ``--stats`` line with the given counts (None = any)."""
    def part(name: str, value: int | None) -> str:
        return f"{name}=" + (str(value) if value is not None else r"\d+")
    return re.compile(
        rf"pool {pool}: stats {part('total', total)} {part('idle', idle)} "
        rf"{part('busy', busy)} ".encode())


def stamp(line: bytes) -> float:
    """The time of a log line, in seconds (the log has millisecond resolution)."""
    match = STAMP.match(line)
    assert match, line
    return datetime.strptime(match.group(1).decode(), "%Y-%m-%d %H:%M:%S,%f").timestamp()


@dataclass
class Server:
    """A running server: its program (master PID, output) and its first TCP port."""

    program: Program
    port: int

    @property
    def lines(self) -> list[bytes]:
        return self.program.lines

    def mark(self) -> int:
        """The index of the next output line (wait for lines from here on)."""
        self.program.drain_output()
        return len(self.program.lines)

    def wait(self, pattern: bytes | re.Pattern[bytes], start: int = 0,
             timeout: float = 20.0) -> tuple[int, re.Match[bytes]]:
        """Wait for a line matching from ``start``; return its index and match."""
        regex = re.compile(pattern) if isinstance(pattern, bytes) else pattern
        self.program.wait_for_line(regex, timeout, start)
        for index in range(start, len(self.lines)):
            match = regex.search(self.lines[index])
            if match:
                return index, match
        raise AssertionError("line vanished")  # pragma: no cover

    def wait_nth(self, pattern: bytes | re.Pattern[bytes], count: int, start: int = 0,
                 timeout: float = 20.0) -> tuple[int, re.Match[bytes]]:
        """Wait for the ``count``-th line matching from ``start``; return its index and match."""
        index = start - 1
        for _ in range(count):
            index, match = self.wait(pattern, index + 1, timeout)
        return index, match

    def matches(self, pattern: bytes | re.Pattern[bytes], start: int = 0,
                stop: int | None = None) -> list[re.Match[bytes]]:
        """Every match of a pattern in the output seen so far."""
        regex = re.compile(pattern) if isinstance(pattern, bytes) else pattern
        found = (regex.search(line) for line in self.lines[start:stop])
        return [match for match in found if match]

    def stop(self, sig: int, timeout: float = 20.0) -> int:
        return self.program.stop(sig, timeout)


def cli(*arguments: str) -> list[str]:
    """The argv of ``python -m layer2_prefork`` with these arguments."""
    return [sys.executable, "-m", "layer2_prefork", *arguments]


@contextmanager
def serve(*arguments: str, options: Sequence[str] = ("-s",), script: Path = SERVER,
          cwd: Path | None = None) -> Iterator[Server]:
    """Start ``script`` under the command line; wait for its port; kill everything at the end."""
    with running(cli(*options, str(script), *arguments), cwd=cwd) as program:
        yield Server(program, program.wait_for_port())


def ask(port: int, command: str) -> bytes:
    """Send one command, return everything the server answers until it closes."""
    with connect(port) as sock:
        sock.sendall(command.encode() + b"\n")
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


def pids(server: Server) -> list[int]:
    """The master and every worker it forked so far (from the log)."""
    server.mark()
    return [server.program.pid] + [int(match.group(2)) for match in server.matches(FORK)]


def assert_gone(processes: Sequence[int], timeout: float = 20.0) -> None:
    """Every process in `processes` has exited (waits for each, by PID, up to `timeout`)."""
    for pid in processes:
        try:
            watch = os.pidfd_open(pid)
        except ProcessLookupError:
            continue  # exited and reaped
        try:
            assert select.select([watch], [], [], timeout)[0], f"process {pid} is still running"
        finally:
            os.close(watch)


@contextmanager
def serve_and_reap(*arguments: str, options: Sequence[str] = ("-s",), script: Path = SERVER,
                   cwd: Path | None = None) -> Iterator[Server]:
    """`serve`, and afterwards no process of the server is left (master and workers, by PID)."""
    seen: list[int] = []
    with serve(*arguments, options=options, script=script, cwd=cwd) as server:
        try:
            yield server
        finally:
            seen = pids(server)
    assert_gone(seen)
