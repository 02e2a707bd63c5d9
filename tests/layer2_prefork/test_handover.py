"""The waits at a connection's end go to the master: `linger` and `send_rest`; and stopping.

The server is ``scripts/accepting_server.py`` under ``python -m
layer2_prefork -s -d``, with one or two workers. Its ``linger`` command
answers, then calls `layer2_prefork.linger`; its ``send`` command writes a
header line, then hands a file to the master with
`layer2_prefork.send_rest`. The master's debug log shows each hand-over
(``pool 0 worker PID: LINGER``, ``SEND``). A worker that handed a
connection over is free at once: the tests show it by having the same,
only worker answer another client while the first one still waits.

When the master closes a lingering connection, a TCP client sees nothing
(it already has the server's end), so the lingering tests use the pool's
Unix listener, whose client sees the full close as ``POLLHUP``. That the
master is done with a file it sent from is seen with inotify: the last
descriptor of the file's open description is closed (``IN_CLOSE_NOWRITE``).

Stopping, with connections in every state at once (held in the master,
queued for a worker, in the listen backlog, lingering, being sent, and busy
in both workers): a graceful stop serves or finishes each within its
limits and exits 0; a fast stop closes every one at once and exits 0.
After every test no process of the server is left (by PID).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import re
import select
import signal
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from prefork_support import (
    FORK,
    SCRIPTS,
    Server,
    connect,
    pids,
    read_line,
    serve_and_reap,
    stats,
)

from layer2_prefork import ExitCode

SCRIPT = SCRIPTS / "accepting_server.py"
HOLD = re.compile(rb"pool 0 worker (\d+): HOLD$")
QUEUED = re.compile(rb"pool 0: CONNECT 0 queued$")
LINGER = re.compile(rb"pool 0 worker (\d+): LINGER$")
SEND = re.compile(rb"pool 0 worker (\d+): SEND$")
TIMEOUT = 20.0
SLACK = 8.0  # generous upper bounds: the machine is shared
PROMPT = 5.0  # "at once", on a loaded machine
IN_CLOSE_NOWRITE = 0x10


def pattern(count: int) -> bytes:
    """What the server's ``send`` command sends (as in the script)."""
    block = bytes(range(251)) * 261
    return (block * (count // len(block) + 1))[:count]


@contextmanager
def handing(tmp_path: Path, *arguments: str, workers: int = 1,
            graceful: float = 20.0) -> Iterator[tuple[Server, list[int], Path]]:
    """Start the server (a TCP and a Unix listener); yield it, its workers and the Unix path."""
    path = tmp_path / "server.sock"
    with serve_and_reap(f"workers={workers}", f"local={path}", f"marker={tmp_path}",
                        *arguments, options=("-s", "-d", "-g", str(graceful)),
                        script=SCRIPT) as server:
        server.wait(stats(total=workers, idle=workers))
        yield server, [int(match.group(2)) for match in server.matches(FORK)], path


def local_client(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(TIMEOUT)
    sock.connect(str(path))
    return sock


def hung_up(sock: socket.socket, timeout: float) -> bool:
    """Whether the server closed the Unix connection fully (POLLHUP) within `timeout`."""
    watch = select.poll()
    watch.register(sock, 0)  # POLLHUP and POLLERR only: the server's end is readable already
    return bool(watch.poll(int(timeout * 1000)))


def ask(port: int, line: bytes) -> bytes:
    with connect(port) as sock:
        sock.sendall(line + b"\n")
        return read_line(sock)


def rest(sock: socket.socket) -> bytes:
    """Everything until the server's end (a reset ends it too)."""
    chunks = []
    try:
        while chunk := sock.recv(1 << 20):
            chunks.append(chunk)
    except ConnectionResetError:
        pass
    return b"".join(chunks)


class Closes:
    """inotify: wait until the last open description of a file opened for reading is closed."""

    def __init__(self, path: Path) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        self.fd = libc.inotify_init1(os.O_CLOEXEC)
        assert self.fd >= 0, ctypes.get_errno()
        assert libc.inotify_add_watch(self.fd, os.fsencode(path), IN_CLOSE_NOWRITE) >= 0

    def wait(self, timeout: float) -> bool:
        return bool(select.select([self.fd], [], [], timeout)[0])

    def close(self) -> None:
        os.close(self.fd)


# --- linger ------------------------------------------------------------------------

def test_a_client_that_never_closes_is_closed_by_the_master_within_the_timeout(
        tmp_path: Path) -> None:
    with handing(tmp_path) as (server, (worker,), path):
        mark = server.mark()
        with local_client(path) as lingering:
            lingering.sendall(b"linger 1.5 1048576\n")
            assert read_line(lingering) == f"lingering {worker}\n".encode()
            assert lingering.recv(100) == b""  # the server's end: the response is complete
            started = time.monotonic()
            server.wait(rf"^lingered {worker} True$".encode(), mark)
            server.wait(LINGER, mark)
            # The only worker is free at once, while the master waits for the client.
            assert ask(server.port, b"pid") == f"pid={worker}\n".encode()
            assert not hung_up(lingering, 0)
            assert hung_up(lingering, 1.5 + SLACK)
            assert 1.5 * 0.8 <= time.monotonic() - started < 1.5 + SLACK


def test_a_client_that_sends_past_the_limit_is_closed_at_once(tmp_path: Path) -> None:
    with handing(tmp_path) as (server, (worker,), path):
        mark = server.mark()
        with local_client(path) as lingering:
            lingering.sendall(b"linger 30 1000\n")
            assert read_line(lingering) == f"lingering {worker}\n".encode()
            assert lingering.recv(100) == b""
            server.wait(LINGER, mark)
            assert not hung_up(lingering, 0)
            started = time.monotonic()
            lingering.sendall(b"x" * 5000)  # discarded by the master, past its 1000 bytes
            assert hung_up(lingering, PROMPT)
            assert time.monotonic() - started < PROMPT  # not at the 30 s deadline


def test_a_client_that_closes_right_after_the_response_never_reaches_the_master(
        tmp_path: Path) -> None:
    """The lazy lingering close: the worker waits a moment (idle, in its poll) for the end."""
    rounds = 20
    with handing(tmp_path) as (server, (worker,), path):
        mark = server.mark()
        for _ in range(rounds):
            with local_client(path) as client:
                client.sendall(b"linger 30 1048576\n")
                assert read_line(client) == f"lingering {worker}\n".encode()
                assert client.recv(100) == b""  # the server half-closed
                client.shutdown(socket.SHUT_WR)  # the client's end follows at once
                assert hung_up(client, PROMPT)  # closed by whoever had it
        server.mark()
        # without the lazy close every one of them goes to the master; a loaded
        # machine may delay a few clients past the worker's moment
        assert len(server.matches(LINGER, mark)) < rounds // 2


def test_a_client_that_closed_early_is_closed_by_the_worker_at_once(tmp_path: Path) -> None:
    with handing(tmp_path) as (server, (worker,), _):
        mark = server.mark()
        with connect(server.port) as early:
            early.sendall(b"linger 30 1048576\n")
            early.shutdown(socket.SHUT_WR)  # its end is there before the response is
            assert read_line(early) == f"lingering {worker}\n".encode()
            assert early.recv(100) == b""
        server.wait(rf"^lingered {worker} True$".encode(), mark)
        with connect(server.port) as later:  # a hop through the master after it
            later.sendall(b"pi")
            server.wait(HOLD, mark)
            later.sendall(b"d\n")
            assert read_line(later) == f"pid={worker}\n".encode()
        server.mark()
        assert not server.matches(LINGER, mark)  # the master never had it


# --- send_rest -----------------------------------------------------------------------

def test_a_slow_reader_gets_the_whole_file_from_the_master(tmp_path: Path) -> None:
    count = 20_000_000  # far more than the socket buffers take
    with handing(tmp_path) as (server, (worker,), _):
        mark = server.mark()
        with connect(server.port) as slow:
            slow.sendall(f"send {count} close 30\n".encode())
            assert read_line(slow) == f"sending {count} {worker}\n".encode()
            server.wait(rf"^sent {worker} True$".encode(), mark)
            server.wait(SEND, mark)
            # Nothing read yet: the master holds the rest, the worker serves others.
            assert ask(server.port, b"pid") == f"pid={worker}\n".encode()
            body = rest(slow)
        assert len(body) == count
        assert hashlib.sha256(body).digest() == hashlib.sha256(pattern(count)).digest()


def test_keep_alive_parks_the_connection_after_the_file(tmp_path: Path) -> None:
    count = 3_000_000
    with handing(tmp_path, workers=2) as (server, workers, _):
        mark = server.mark()
        with connect(server.port) as client:
            client.sendall(f"send {count} keep 30\n".encode())
            sender = int(read_line(client).split()[2])
            body = b""
            while len(body) < count:
                chunk = client.recv(1 << 20)
                assert chunk, "the connection ended before the whole file"
                body += chunk
            assert body == pattern(count)
            server.wait(SEND, mark)
            second = server.mark()
            client.sendall(b"pid\n")  # the next request on the same connection
            answer = read_line(client)
            assert re.fullmatch(rb"pid=(\d+)\n", answer) and int(answer[4:]) in workers
            server.wait(QUEUED, second)  # parked by the master, queued when it spoke
        assert sender in workers


def test_a_reader_that_stalls_past_the_limit_is_cut_off(tmp_path: Path) -> None:
    count = 50_000_000
    with handing(tmp_path) as (server, (worker,), _):
        mark = server.mark()
        with connect(server.port) as stalled:
            stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
            stalled.sendall(f"send {count} close 0.5\n".encode())
            assert read_line(stalled) == f"sending {count} {worker}\n".encode()
            closes = Closes(tmp_path / f"body-{worker}")
            try:
                server.wait(SEND, mark)
                started = time.monotonic()
                assert closes.wait(0.5 + SLACK), "the master never gave up on the file"
                assert time.monotonic() - started >= 0.5 * 0.8
            finally:
                closes.close()
            body = rest(stalled)  # what was on its way, then the end
        assert len(body) < count
        assert body == pattern(len(body))
        assert ask(server.port, b"pid") == f"pid={worker}\n".encode()


# --- stopping with connections in every state ---------------------------------------

def left_by_themselves(processes: list[int]) -> None:
    """The master has exited: it reaped every worker before, so none is left, not even a zombie."""
    for pid in processes:
        assert not os.path.exists(f"/proc/{pid}"), f"process {pid} is left"


class Every:
    """Connections in every state, on a pool of two workers (see the module docstring)."""

    COUNT = 20_000_000

    def __init__(self, server: Server, path: Path) -> None:
        self.server = server
        mark = server.mark()
        self.lingering = local_client(path)
        self.lingering.sendall(b"linger 2 1048576\n")
        assert read_line(self.lingering).startswith(b"lingering ")
        assert self.lingering.recv(100) == b""
        server.wait(LINGER, mark)
        self.sending = connect(server.port)
        self.sending.sendall(f"send {self.COUNT} close 30\n".encode())
        assert read_line(self.sending).startswith(b"sending ")
        server.wait(SEND, mark)
        self.held = connect(server.port)
        self.held.sendall(b"pi")
        held_index, _ = server.wait(HOLD, mark)
        self.queued = connect(server.port)
        self.queued.sendall(b"pi")
        server.wait(HOLD, held_index + 1)
        self.busy = [connect(server.port) for _ in range(2)]
        for sock in self.busy:
            sock.sendall(b"hold\n")
        assert len({read_line(sock) for sock in self.busy}) == 2  # both workers taken
        queued_mark = server.mark()
        self.queued.sendall(b"d\n")  # complete: queued, and no worker free
        server.wait(QUEUED, queued_mark)
        self.backlog = connect(server.port)  # no worker accepts: the listen backlog
        self.backlog.sendall(b"pid\n")

    def all(self) -> list[socket.socket]:
        return [self.lingering, self.sending, self.held, self.queued, *self.busy, self.backlog]

    def close(self) -> None:
        for sock in self.all():
            sock.close()


def test_a_graceful_stop_finishes_connections_in_every_state(tmp_path: Path) -> None:
    with handing(tmp_path, workers=2) as (server, _, path):
        every = Every(server, path)
        try:
            mark = server.mark()
            stopped = time.monotonic()
            os.kill(server.program.pid, signal.SIGTERM)
            server.wait(rb"graceful stop \(SIGTERM\)", mark)
            for sock in every.busy:  # busy workers finish their requests
                sock.sendall(b"go\n")
                assert read_line(sock).startswith(b"done ")
            assert read_line(every.queued).startswith(b"pid=")  # queued: served
            assert read_line(every.backlog).startswith(b"pid=")  # accepted before: served
            every.held.sendall(b"d\n")  # a request under way is still served
            assert read_line(every.held).startswith(b"pid=")
            body = rest(every.sending)  # the master sends the rest to its end
            assert len(body) == Every.COUNT and body == pattern(Every.COUNT)
            assert hung_up(every.lingering, 2 + SLACK)  # closed at its 2 s deadline
            everyone = pids(server)
            assert server.program.proc.wait(TIMEOUT) == ExitCode.STOP
            assert 2 * 0.8 <= time.monotonic() - stopped < 20  # its limits, not the deadline
            left_by_themselves(everyone)
            server.mark()
            assert not server.matches(rb"ERROR|Traceback|killed by signal|fast stop")
        finally:
            every.close()


def test_a_fast_stop_closes_connections_in_every_state(tmp_path: Path) -> None:
    with handing(tmp_path, workers=2) as (server, _, path):
        every = Every(server, path)
        try:
            stopped = time.monotonic()
            os.kill(server.program.pid, signal.SIGINT)
            assert hung_up(every.lingering, PROMPT)
            body = rest(every.sending)  # what was on its way, then the end
            assert len(body) < Every.COUNT
            for sock in [every.held, every.queued, *every.busy, every.backlog]:
                assert rest(sock) == b""  # closed, unanswered
            everyone = pids(server)
            assert server.program.proc.wait(TIMEOUT) == ExitCode.STOP
            assert time.monotonic() - stopped < PROMPT
            left_by_themselves(everyone)
            server.wait(rb"fast stop \(SIGINT\)")
        finally:
            every.close()
