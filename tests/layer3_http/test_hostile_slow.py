"""Slow and idle clients, and handlers that never end: every one of them is cut off in time.

A pre-forking server gives each connection a whole worker, so a client that
dribbles its request (slowloris), connects and says nothing, or trickles a
body, holds that worker until a timeout ends it. These tests run a server
with two workers and short timeouts (``--idle-timeout 1``,
``--request-header-timeout 2``, ``--stall-timeout 1``,
``--response-timeout 3``) and prove, with real sockets:

* each slow or silent connection is ended when its timeout expires (408 for
  a head that never completes, a silent close for a connection that never
  starts a request, a killed worker for a body that never completes or a
  handler that never answers), never much later;
* slow heads and silent connections are held by the master, not by a
  worker (layer 3's dispatch filter): a normal client is served at once
  beside twice as many of them as there are workers, the master ends them
  when their timeout expires, and afterwards the same workers serve on;
* what does reach a worker (a trickled body, a handler that hangs) holds
  it until the response timeout kills the worker, which is replaced.

Pacing is a bounded wait on the sockets (a client sends its next byte when
the server has said nothing for 0.25 s); nothing sleeps. Neighbouring
tests in ``test_e2e_errors.py`` cover one slow client alone (408 for a late
or slowly sent head, the quiet close of an idle connection, a stalled body,
a client that never reads its response).
"""

from __future__ import annotations

import json
import re
import selectors
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from http_support import Server, http_server

RECORDER = Path(__file__).resolve().parent.parent / "hostile_apps" / "recorder.py"
IDLE, HEAD, STALL, RESPONSE = 1.0, 2.0, 1.0, 3.0
PACE = 0.25
SLACK = 8.0  # generous: the machine is shared
TIMEOUT = 20.0
BUSY = re.compile(rb"pool 0: stats total=2 idle=0 busy=2 ")
READY = re.compile(rb"pool 0: stats total=2 idle=2 busy=0 ")
REQUEST = b"GET /front HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.fixture
def server() -> Iterator[Server]:
    """A fresh server per test: each test starts with two idle workers."""
    with http_server("--workers", "2", "--stats", "--idle-timeout", str(IDLE),
                     "--request-header-timeout", str(HEAD), "--stall-timeout", str(STALL),
                     "--response-timeout", str(RESPONSE), "--drain-timeout", "1",
                     app=RECORDER) as running_:
        running_.program.wait_for_line(READY, TIMEOUT)
        yield running_


def connect(server: Server) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def logged(server: Server, pattern: re.Pattern[bytes], start: int) -> bool:
    """Whether a line the server logged from index `start` on matches `pattern`."""
    server.program.drain_output()
    return any(pattern.search(line) for line in server.program.lines[start:])


def read_to_end(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes (a reset ends it too)."""
    received = bytearray()
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass
    return bytes(received)


def served_pid(server: Server) -> int:
    """One request on a new connection; the PID of the worker that answered it."""
    with connect(server) as sock:
        sock.sendall(b"GET /front HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        head, _, body = read_to_end(sock).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 "), head
    return int(json.loads(body)["pid"])


def both_workers_serve(server: Server) -> set[int]:
    """Requests two at a time on two connections until two workers have answered.

    Idle workers accept for themselves and the first one awake wins, so one
    fast worker may take both of a pair; a few pairs show both workers.
    """
    pids: set[int] = set()
    for _ in range(40):
        socks = [connect(server) for _ in range(2)]
        try:
            for sock in socks:
                sock.sendall(b"GET /front HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            answers = [read_to_end(sock).partition(b"\r\n\r\n") for sock in socks]
        finally:
            for sock in socks:
                sock.close()
        assert all(head.startswith(b"HTTP/1.1 200 ") for head, _, _ in answers), answers
        pids |= {int(json.loads(body)["pid"]) for _, _, body in answers}
        if len(pids) >= 2:
            break
    return pids


def dribble(socks: list[socket.socket], data: bytes,
            watch: tuple[socket.socket, ...] = ()) -> dict[socket.socket, float]:
    """Send `data` a byte at a time on every socket, one byte per PACE seconds of silence.

    Args:
        socks: The slow clients.
        data: What each of them sends.
        watch: Other sockets to watch (they send nothing).

    Returns:
        When each socket became readable (the server answered or closed),
        in monotonic seconds.
    """
    ended: dict[socket.socket, float] = {}
    position = dict.fromkeys(socks, 0)
    socks = [*socks, *watch]
    deadline = time.monotonic() + TIMEOUT
    with selectors.DefaultSelector() as selector:
        for sock in socks:
            selector.register(sock, selectors.EVENT_READ)
        while len(ended) < len(socks) and time.monotonic() < deadline:
            for key, _ in selector.select(PACE):
                ended[key.fileobj] = time.monotonic()  # type: ignore[index]
                selector.unregister(key.fileobj)
            for sock in socks:
                if sock not in ended and position.get(sock, len(data)) < len(data):
                    try:
                        sock.send(data[position[sock] : position[sock] + 1])
                    except OSError:
                        continue
                    position[sock] += 1
    assert len(ended) == len(socks), "a slow client was never cut off"
    return ended


def settled(server: Server) -> int:
    """Wait until both workers are idle again; return the index of the next log line."""
    server.program.wait_for_line(READY, TIMEOUT, len(server.program.lines))
    return len(server.program.lines)


def test_slowloris_clients_get_408_from_the_master_and_cost_no_worker(server: Server) -> None:
    before = both_workers_serve(server)
    mark = settled(server)
    slow = [connect(server) for _ in range(4)]  # twice as many as there are workers
    waiting = connect(server)
    try:
        started = time.monotonic()
        for sock in slow:
            sock.send(b"G")  # the first byte starts the head timeout
        waiting.sendall(REQUEST)  # the slow heads are held by the master: a worker is free
        waiting.settimeout(SLACK)
        assert waiting.recv(65536).startswith(b"HTTP/1.1 200 ")
        served = time.monotonic()
        ended = dribble(slow, b"ET /front HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"y" * 200)
        for sock in slow:
            assert read_to_end(sock).startswith(b"HTTP/1.1 408 ")
        first_cut, last_cut = min(ended.values()), max(ended.values())
        assert first_cut - started >= HEAD * 0.8
        assert last_cut - started < HEAD + SLACK  # all at once, not in turns
        assert served < first_cut  # served while the slow clients were still sending
    finally:
        for sock in [*slow, waiting]:
            sock.close()
    assert not logged(server, BUSY, mark)  # never were both workers taken
    assert server.program.wait_for_line(
        rb"a held request did not complete within 2 s; closed", TIMEOUT, mark)
    assert both_workers_serve(server) == before  # the same two workers
    assert server.worker_exits() == []


def test_silent_connections_are_closed_by_the_master_without_a_word(server: Server) -> None:
    before = both_workers_serve(server)
    mark = settled(server)
    started = time.monotonic()
    silent = [connect(server) for _ in range(4)]  # twice as many as there are workers
    waiting = connect(server)
    try:
        waiting.sendall(REQUEST)
        waiting.settimeout(SLACK)
        assert waiting.recv(65536).startswith(b"HTTP/1.1 200 ")  # at once: no worker is pinned
        served = time.monotonic()
        ended = dribble(silent, b"")
        for sock in silent:
            assert read_to_end(sock) == b""  # an idle connection gets no 408, only the end
        first_cut = min(ended.values())
        assert served < first_cut
        assert first_cut - started >= IDLE * 0.8
        assert max(ended.values()) - started < IDLE + SLACK  # all at once, not in turns
    finally:
        for sock in [*silent, waiting]:
            sock.close()
    assert not logged(server, BUSY, mark)
    assert both_workers_serve(server) == before
    assert server.worker_exits() == []


def test_a_kept_alive_connection_that_goes_quiet_frees_its_worker(server: Server) -> None:
    before = both_workers_serve(server)
    quiet = [connect(server) for _ in range(2)]
    try:
        for sock in quiet:
            sock.sendall(REQUEST)
            assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
        started = time.monotonic()
        ended = dribble(quiet, b"")
        assert max(ended.values()) - started < IDLE + SLACK
        assert all(read_to_end(sock) == b"" for sock in quiet)
    finally:
        for sock in quiet:
            sock.close()
    assert both_workers_serve(server) == before


def test_a_trickled_body_is_ended_by_the_minimum_rate(server: Server) -> None:
    """One byte per 0.25 s never stalls, but is far below the minimum rate (1024 bytes/s).

    The worker cuts it off once `stall_timeout` plus the bytes' share of the
    rate have passed, with a 408, and lives on (no watchdog needed).
    """
    before = both_workers_serve(server)
    with connect(server) as slow:
        slow.sendall(b"POST /front HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")
        started = time.monotonic()
        dribble([slow], b"z" * 100000)  # one byte per 0.25 s: never a stall, never done
        elapsed = time.monotonic() - started
        assert read_to_end(slow).startswith(b"HTTP/1.1 408 ")
    assert STALL * 0.8 <= elapsed < STALL + SLACK
    assert both_workers_serve(server) == before  # nobody was killed


def test_a_handler_that_hangs_is_ended_by_the_response_timeout(server: Server) -> None:
    before = both_workers_serve(server)
    mark = len(server.program.lines)
    with connect(server) as hanging:
        hanging.sendall(b"GET /hang HTTP/1.1\r\nHost: x\r\n\r\n")
        started = time.monotonic()
        server.program.wait_for_line(rb"^RECORDED \d+ GET /hang ", TIMEOUT, mark)
        other = served_pid(server)  # the other worker serves meanwhile
        assert read_to_end(hanging) == b""  # the watchdog ends the worker, no answer
        elapsed = time.monotonic() - started
    assert RESPONSE * 0.8 <= elapsed < RESPONSE + SLACK
    killed = int(server.program.wait_for_line(
        rb"worker (\d+) was killed by signal 14 \(SIGALRM\)", TIMEOUT, mark)[1])
    assert killed in before and other in before and killed != other
    server.program.wait_for_line(READY, TIMEOUT, mark)
    after = both_workers_serve(server)
    assert other in after and killed not in after
