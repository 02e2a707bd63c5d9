"""Upgrading the server itself (SIGURG): a new master on the same sockets, nothing lost.

A real server runs from the command line with an application whose file
says its version. The test rewrites the file, sends the master
``SIGURG``, and keeps two clients asking all along: one on a keep-alive
connection, one with a new connection (``Connection: close``) per request.
None of their requests fails, none of their connections is refused; the
new master answers with the new version on the same port; the old master
and every old worker are gone, by PID.

A keep-alive client must be ready for the server to close an idle
connection (RFC 9112, section 9.3.1): the old workers close theirs as they
leave. That client reconnects and sends its request again when a reused
connection ends before any byte of the answer, as `http.client` users and
browsers do; such a retry is counted, not a failure. Any other error is a
failure, and so is an answer of the wrong kind.
"""

from __future__ import annotations

import http.client
import os
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from support import Program, running

APP = '''\
from layer3_http import Request

VERSION = "{version}"


def app(request: Request) -> None:
    request.send_status("200 OK")
    request.send_header("Content-Type", "text/plain")
    request.send_data(f"{{VERSION}} {{__import__('os').getpid()}}\\n")
'''
FORK = re.compile(rb"pool 0: forked worker (\d+)")
WORKERS = 2
LOOP_LIMIT = 20.0
"""Seconds the clients may run at most, twice (during the upgrade, then until both saw it)."""


def write_app(path: Path, version: str) -> None:
    path.write_text(APP.format(version=version))


@dataclass
class Tally:
    """What one client loop saw."""

    answers: dict[str, int] = field(default_factory=dict)
    retries: int = 0
    failures: list[str] = field(default_factory=list)

    def count(self, body: bytes) -> None:
        version = body.split()[0].decode()
        self.answers[version] = self.answers.get(version, 0) + 1


def keep_alive_loop(port: int, stop: threading.Event, tally: Tally) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    reused = False
    deadline = time.monotonic() + 2 * LOOP_LIMIT
    while not stop.is_set() and time.monotonic() < deadline:
        try:
            connection.request("GET", "/")
            response = connection.getresponse()
            body = response.read()
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as error:
            connection.close()
            if not reused:
                tally.failures.append(f"keep-alive, new connection: {error!r}")
            tally.retries += 1
            reused = False
            continue
        except Exception as error:
            tally.failures.append(f"keep-alive: {error!r}")
            connection.close()
            reused = False
            continue
        if response.status != 200:
            tally.failures.append(f"keep-alive: status {response.status}")
        tally.count(body)
        reused = not response.will_close
        if response.will_close:
            connection.close()
    connection.close()


def close_loop(port: int, stop: threading.Event, tally: Tally) -> None:
    deadline = time.monotonic() + 2 * LOOP_LIMIT
    while not stop.is_set() and time.monotonic() < deadline:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
        try:
            connection.request("GET", "/", headers={"Connection": "close"})
            response = connection.getresponse()
            body = response.read()
        except Exception as error:
            tally.failures.append(f"close: {error!r}")
            continue
        finally:
            connection.close()
        if response.status != 200:
            tally.failures.append(f"close: status {response.status}")
        tally.count(body)


def answer(port: int) -> bytes:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        connection.request("GET", "/")
        return connection.getresponse().read()
    finally:
        connection.close()


def gone(pid: int, timeout: float = 20.0) -> bool:
    """Whether process `pid` ends within `timeout` (watched by its pidfd)."""
    try:
        watch = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        return bool(select.select([watch], [], [], timeout)[0])
    finally:
        os.close(watch)


def forked(program: Program, start: int = 0) -> list[int]:
    program.drain_output()
    return [int(match.group(1)) for line in program.lines[start:]
            if (match := FORK.search(line))]


def listening_inode(port: int) -> int:
    """The inode of the socket listening on 127.0.0.1:`port` (from /proc/net/tcp)."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == "0A" and int(fields[1].split(":")[1], 16) == port:
            return int(fields[9])
    raise AssertionError(f"nothing listens on port {port}")


def children(pid: int) -> list[int]:
    """The PIDs of a process's children (from /proc)."""
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(child) for child in text.split()]


def exit_status(program: Program, timeout: float = 20.0) -> int:
    """The program's exit status once it ended (its output in the error if it does not)."""
    try:
        return program.proc.wait(timeout)
    except subprocess.TimeoutExpired:
        program.drain_output()
        raise AssertionError(f"{program.pid} still runs: {program.output()}") from None


def run_loops(port: int, action: Callable[[], None]) -> tuple[Tally, Tally]:
    """Both client loops around `action`; their tallies."""
    stop = threading.Event()
    kept, closed = Tally(), Tally()
    threads = [threading.Thread(target=keep_alive_loop, args=(port, stop, kept)),
               threading.Thread(target=close_loop, args=(port, stop, closed))]
    for thread in threads:
        thread.start()
    try:
        action()
        deadline = time.monotonic() + LOOP_LIMIT  # then on, until both saw the new code
        while not ("v2" in kept.answers and "v2" in closed.answers) and (
                time.monotonic() < deadline and any(thread.is_alive() for thread in threads)):
            threads[0].join(0.01)
    finally:
        stop.set()
        for thread in threads:
            thread.join(LOOP_LIMIT + 25)
    return kept, closed


def test_an_upgrade_loses_no_request_and_keeps_the_socket(tmp_path: Path) -> None:
    app, pidfile = tmp_path / "app.py", tmp_path / "server.pid"
    write_app(app, "v1")
    argv = [sys.executable, "-m", "layer3_http", str(app), "--listen", "127.0.0.1:0",
            "--workers", str(WORKERS), "-p", str(pidfile)]
    with running(argv, cwd=tmp_path) as program:
        port = program.wait_for_port()
        program.wait_for_line(rb"forked worker")
        old_master = program.pid
        new_master = 0
        socket_before = listening_inode(port)

        def upgrade() -> None:
            nonlocal new_master
            while len(old_workers := forked(program)) < WORKERS:
                program.wait_for_line(FORK, 20, len(program.lines))
            write_app(app, "v2")
            mark = len(program.lines)
            os.kill(old_master, signal.SIGURG)
            match = program.wait_for_line(
                rb"upgrade \(SIGURG\): starting a new master, (\d+),", 20, mark)
            new_master = int(match.group(1))
            program.wait_for_line(rb"graceful stop \(upgraded: master \d+ serves\)", 20, mark)
            assert exit_status(program) == 0  # the old master stopped...
            for pid in old_workers:  # ...and every old worker is gone
                assert gone(pid), f"old worker {pid} is still running"
            with socket.create_connection(("127.0.0.1", port), timeout=20):
                pass  # still listening: the new master's workers take it

        kept, closed = run_loops(port, upgrade)
        assert not kept.failures and not closed.failures, (kept, closed, program.output())
        for tally in (kept, closed):
            assert tally.answers.get("v1", 0) > 0 and tally.answers.get("v2", 0) > 0, tally
        assert new_master != old_master and not gone(new_master, 0)
        assert listening_inode(port) == socket_before  # the very socket, not a new one
        assert int(pidfile.read_text()) == new_master  # the pidfile names the new master
        with socket.create_connection(("127.0.0.1", port), timeout=20) as client:
            client.sendall(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            answer = b""
            while chunk := client.recv(65536):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 200") and b"\r\n\r\nv2 " in answer
        while len(new_workers := children(new_master)) < WORKERS:
            program.wait_for_line(FORK, 20, len(program.lines))  # the new master's log
        assert len(new_workers) == WORKERS and not any(gone(pid, 0) for pid in new_workers), (
            program.output())
        os.kill(new_master, signal.SIGTERM)
        assert gone(new_master)
        for pid in new_workers:
            assert gone(pid)
        assert not pidfile.exists()  # removed by the master that wrote it last


def test_a_new_master_that_cannot_start_leaves_the_old_one_serving(tmp_path: Path) -> None:
    app, pidfile = tmp_path / "app.py", tmp_path / "server.pid"
    write_app(app, "v1")
    argv = [sys.executable, "-m", "layer3_http", str(app), "--listen", "127.0.0.1:0",
            "--workers", "1", "-p", str(pidfile)]
    with running(argv, cwd=tmp_path) as program:
        port = program.wait_for_port()
        program.wait_for_line(rb"forked worker")
        assert answer(port).startswith(b"v1 ")  # the worker has loaded the application
        app.write_text("this is not Python\n")
        mark = len(program.lines)
        os.kill(program.pid, signal.SIGURG)
        program.wait_for_line(rb"ERROR upgrade failed: the new master ended before it served",
                              20, mark)
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
        try:
            connection.request("GET", "/")
            assert connection.getresponse().read().startswith(b"v1 ")
        except OSError as error:
            program.drain_output()
            raise AssertionError(program.output()) from error
        finally:
            connection.close()
        assert program.proc.poll() is None
        assert int(pidfile.read_text()) == program.pid  # its own again
        assert program.stop(signal.SIGTERM) == 0
        assert not pidfile.exists()


def test_the_service_manager_learns_the_new_main_pid(tmp_path: Path) -> None:
    app, address = tmp_path / "app.py", str(tmp_path / "notify")
    write_app(app, "v1")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as manager:
        manager.bind(address)
        manager.settimeout(20)
        argv = [sys.executable, "-m", "layer3_http", str(app), "--listen", "127.0.0.1:0",
                "--workers", "1"]
        with running(argv, cwd=tmp_path, env={"NOTIFY_SOCKET": address}) as program:
            program.wait_for_port()
            program.wait_for_line(rb"forked worker")
            os.kill(program.pid, signal.SIGURG)
            match = program.wait_for_line(rb"starting a new master, (\d+),")
            assert manager.recv(4096) == b"MAINPID=%s" % match.group(1)
            assert program.proc.wait(20) == 0
            new_master = int(match.group(1))
            os.kill(new_master, signal.SIGTERM)
            assert gone(new_master)


@pytest.mark.parametrize("signal_number", [signal.SIGURG])
def test_an_upgrade_while_stopping_is_refused(signal_number: int) -> None:
    app = Path(__file__).resolve().parent / "apps" / "testapp.py"
    argv = [sys.executable, "-m", "layer3_http", str(app), "--listen", "127.0.0.1:0",
            "--workers", "1", "-g", "20"]
    with running(argv) as program:
        port = program.wait_for_port()
        program.wait_for_line(rb"forked worker")
        with socket.create_connection(("127.0.0.1", port), timeout=20) as busy:
            busy.sendall(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nab")
            os.kill(program.pid, signal.SIGTERM)
            program.wait_for_line(rb"graceful stop \(SIGTERM\)")
            os.kill(program.pid, signal_number)
            program.wait_for_line(rb"SIGURG: no upgrade, the server is stopping")
            busy.sendall(b"cde")
        assert program.proc.wait(20) == 0
