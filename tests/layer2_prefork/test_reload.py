"""Reloading (SIGUSR2): every worker replaced by a new generation, nothing refused or lost.

The server is ``scripts/reload_server.py``: two workers whose `prepare`
reads a version from a file (``broken`` makes it raise), a line protocol
whose answers name the worker's PID and version, and parking between two
lines, so the master holds idle connections. The master runs with ``-s
-d``: forks, exits, retirements, ``PARK`` and ``HOLD`` are log lines, and
the tests wait on those and on answers, never on a clock.
"""

from __future__ import annotations

import os
import re
import signal
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from prefork_support import FORK, SCRIPTS, Server, connect, read_line, serve_and_reap, stats

SCRIPT = SCRIPTS / "reload_server.py"
READY = stats(total=2, idle=2, busy=0, pool=0)
ANSWER = re.compile(rb"pid=(\d+) version=(\w+)")
DONE = re.compile(rb"reload (\d+) done: (\d+) worker\(s\) replaced")
ABANDONED = re.compile(rb"reload (\d+) abandoned: pool 0: worker (\d+) of the new generation "
                       rb"exited with status 1 before it was ready")
PARK = re.compile(rb"pool 0 worker (\d+): PARK$")
HOLD = re.compile(rb"pool 0 worker (\d+): HOLD$")


@contextmanager
def reload_server(tmp_path: Path, version: str = "1") -> Iterator[tuple[Server, Path]]:
    path = tmp_path / "version"
    path.write_text(version)
    with serve_and_reap(f"version={path}", script=SCRIPT, options=("-s", "-d")) as server:
        server.wait(READY)
        yield server, path


def ask(sock: socket.socket, line: bytes = b"x") -> tuple[int, str]:
    """Send one line; return the PID and version of the worker that answered."""
    sock.sendall(line + b"\n")
    match = ANSWER.search(read_line(sock))
    assert match, line
    return int(match.group(1)), match.group(2).decode()


def answers(server: Server, count: int) -> set[tuple[int, str]]:
    """The (PID, version) of `count` new connections' answers."""
    found = set()
    for _ in range(count):
        with connect(server.port) as sock:
            found.add(ask(sock))
    return found


def reload(server: Server, pattern: re.Pattern[bytes] = DONE) -> re.Match[bytes]:
    mark = server.mark()
    server.program.proc.send_signal(signal.SIGUSR2)
    return server.wait(pattern, mark)[1]


def workers_forked(server: Server, start: int = 0) -> set[int]:
    return {int(match.group(2)) for match in server.matches(FORK, start)}


def test_a_reload_replaces_every_worker_with_one_of_a_new_generation(tmp_path: Path) -> None:
    with reload_server(tmp_path) as (server, path):
        old = workers_forked(server)
        assert {version for _, version in answers(server, 4)} == {"1"}
        path.write_text("2")
        mark = server.mark()
        done = reload(server)
        assert done.group(1) == b"1" and done.group(2) == b"2"
        for pid in old:  # both old workers left on their own (R), with status 0
            server.wait(rf"pool 0: worker {pid} exited with status 0".encode(), mark)
        new = workers_forked(server, mark)
        assert len(new) == 2 and not new & old
        assert server.matches(rb"forked worker \d+ \(generation 1\)", mark)
        assert {pid for pid, _ in answers(server, 4)} <= new
        assert {version for _, version in answers(server, 4)} == {"2"}
        path.write_text("3")
        mark = server.mark()
        os.killpg(server.program.pid, signal.SIGUSR2)  # every process: workers ignore it
        server.wait(DONE, mark)
        assert server.matches(rb"pool 0: generation 2 starts", mark)
        assert {version for _, version in answers(server, 4)} == {"3"}
        assert not server.matches(rb"killed by signal", mark)


def test_a_failing_prepare_keeps_the_old_workers_and_a_later_reload_succeeds(
        tmp_path: Path) -> None:
    with reload_server(tmp_path) as (server, path):
        old = workers_forked(server)
        path.write_text("broken")
        mark = server.mark()
        reload(server, ABANDONED)
        server.mark()
        # the traceback once, then one line; the pool is not slowed down
        assert len(server.matches(rb"RuntimeError: this version is broken", mark)) == 1
        assert len(server.matches(rb"abandoned", mark)) == 1
        assert not server.matches(rb"failed to prepare", mark)
        assert not server.matches(rb"retiring worker", mark)
        assert answers(server, 6) <= {(pid, "1") for pid in old}  # the old workers serve on
        path.write_text("4")
        mark = server.mark()
        assert reload(server).group(1) == b"2"
        assert {version for _, version in answers(server, 4)} == {"4"}
        assert not workers_forked(server, mark) & old


def test_held_parked_and_busy_connections_survive_a_reload(tmp_path: Path) -> None:
    with reload_server(tmp_path) as (server, path):
        old = workers_forked(server)
        mark = server.mark()
        with connect(server.port) as parked:
            assert ask(parked)[1] == "1"
            server.wait(PARK, mark)  # the master holds it between two lines
            mark = server.mark()
            held = connect(server.port)
            held.sendall(b"half a li")  # no newline: the request has not arrived
            server.wait(HOLD, mark)
            busy = connect(server.port)
            busy.sendall(b"slow\n")
            started = read_line(busy)
            assert started.startswith(b"started")
            working = int(ANSWER.search(started).group(1))  # type: ignore[union-attr]
            path.write_text("2")
            mark = server.mark()
            reload(server)
            for pid in old - {working}:
                server.wait(rf"pool 0: worker {pid} exited with status 0".encode(), mark)
            assert ask(parked)[1] == "2"  # the same connection, served by the new generation
            held.sendall(b"ne\n")
            line = read_line(held)
            assert b"version=2 line=half a line" in line
            busy.sendall(b"go\n")  # the old worker finishes its work, then parks and leaves
            assert read_line(busy) == f"done pid={working} version=1\n".encode()
            server.wait(rf"pool 0: worker {working} exited with status 0".encode(), mark)
            assert ask(busy)[1] == "2"
            held.close()
            busy.close()
        assert not server.matches(rb"killing worker|was killed by signal", mark)


def test_sigusr2_is_ignored_once_the_server_is_stopping(tmp_path: Path) -> None:
    with reload_server(tmp_path) as (server, _):
        with connect(server.port) as sock:
            sock.sendall(b"slow\n")
            assert read_line(sock).startswith(b"started")
            mark = server.mark()
            server.program.proc.send_signal(signal.SIGTERM)
            server.wait(rb"graceful stop \(SIGTERM\)", mark)
            server.program.proc.send_signal(signal.SIGUSR2)
            server.wait(rb"SIGUSR2 ignored: the server is stopping gracefully", mark)
            sock.sendall(b"go\n")
            assert read_line(sock).startswith(b"done")
        assert server.stop(signal.SIGTERM) == 0
