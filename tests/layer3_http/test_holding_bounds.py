"""The master's holding of slow heads: any size up to the limit, within a memory bound.

Before, the master held at most 65,534 bytes of a head (one control
message's payload) and then handed the connection to a worker, which
waited for the rest under a fresh `request_header_timeout`: two large,
slow heads pinned both workers. Now bytes past one payload travel in a
memory file, so no head reaches a worker before it is complete or over
`request_header_size_limit`; and the bytes the master holds have bounds
of their own, in all and per client address, past which a connection is
answered 503 and closed while everybody else is still served.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from http_support import APPS, Server, http_server
from prod_apps.prod_support import get_json

APP = APPS / "parking_app.py"
PROMPT = 2.0  # "at once", on a loaded machine
READY = re.compile(rb"pool 0: stats total=2 idle=2 busy=0 ")


@pytest.fixture
def server() -> Iterator[Server]:
    with http_server("--workers", "2", "--stats", app=APP) as running_:
        running_.program.wait_for_line(READY, 20.0)
        yield running_


def head_part(size: int) -> bytes:
    """The start of a request head of about `size` bytes, without its end."""
    pad = b"X-Pad: " + b"p" * 9990 + b"\r\n"  # 90 lines at most: within 100 fields
    return b"GET /slow HTTP/1.1\r\nHost: x\r\n" + pad * (size // len(pad))


def normal_request_time(server: Server) -> float:
    began = time.monotonic()
    answer = get_json(server.port, "/normal")
    assert answer["path"] == "/normal"
    return time.monotonic() - began


def read_answer(sock: socket.socket) -> bytes:
    sock.settimeout(20)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = re.search(rb"Content-Length: (\d+)", head, re.I)
    while length and len(body) < int(length[1]):
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def test_large_slow_heads_stay_in_the_master_until_they_are_complete(server: Server) -> None:
    """Two 200 KB heads, sent in two halves with a pause: the workers stay free meanwhile."""
    slow = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(2)]
    try:
        for sock in slow:
            sock.sendall(head_part(200_000))  # far past one message's 65,534 bytes
        for _ in range(5):  # both workers are free: nobody waits for the rest of a head
            assert normal_request_time(server) < PROMPT
        for sock in slow:
            sock.sendall(b"X-Last: 1\r\n\r\n")
        for sock in slow:
            head, _, body = read_answer(sock).partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200 "), head[:200]
            assert json.loads(body)["path"] == "/slow"
    finally:
        for sock in slow:
            sock.close()


def master_resident_kib(server: Server) -> int:
    with open(f"/proc/{server.program.pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_one_address_cannot_fill_the_masters_memory(server: Server) -> None:
    """44 incomplete heads of 900 KB from one address: past 32 MiB they get 503, others go on."""
    before = master_resident_kib(server)
    socks = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(44)]
    refused = 0
    try:
        for sock in socks:
            sock.sendall(head_part(900_000))
        assert normal_request_time(server) < PROMPT  # a complete head never waits in the master
        answered: set[socket.socket] = set()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(answered) < 5:
            ready, _, _ = select.select([s for s in socks if s not in answered], [], [], 1.0)
            for sock in ready:
                answered.add(sock)
                try:
                    refused += sock.recv(65536).startswith(b"HTTP/1.1 503 ")
                except ConnectionResetError:
                    refused += 1
        assert 5 <= refused <= 8  # 44 x 900 KB = 39.6 MB against the 32 MiB bound
        assert len(answered) == refused  # the others are still held, not answered
        grown = master_resident_kib(server) - before
        assert grown < 48 * 1024, f"the master grew by {grown} KiB"
        assert normal_request_time(server) < PROMPT
    finally:
        for sock in socks:
            sock.close()


def test_a_filter_sees_where_the_new_bytes_begin() -> None:
    """The head filter searches only the new bytes (and three before them)."""
    from layer3_http._handler import head_arrived

    head = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"
    for cut in range(1, len(head)):
        assert not head_arrived(head[:cut], max(cut - 1, 0)) or b"\r\n\r\n" in head[:cut]
        assert head_arrived(head, cut)  # the end is among the new bytes, or just before
    assert not head_arrived(b"GET / HTTP/1.1\r\nHost: a\r\n", 16)  # CRLF cut by the window


def test_a_stopped_worker_is_killed_and_replaced(server: Server) -> None:
    """SIGSTOP on a worker: the other serves meanwhile; within 2 s it is killed and replaced."""
    children = Path(f"/proc/{server.program.pid}/task/{server.program.pid}/children")
    workers = [int(pid) for pid in children.read_text().split()]
    assert len(workers) == 2
    mark = len(server.program.lines)
    os.kill(workers[0], signal.SIGSTOP)
    try:
        for _ in range(5):
            assert normal_request_time(server) < PROMPT  # the other worker takes everything
        server.program.wait_for_line(
            rb"killing worker %d \(it was stopped for more than" % workers[0], 10.0, mark)
        server.program.wait_for_line(rb"pool 0: forked worker", 10.0, mark)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(workers[0], signal.SIGCONT)
    assert {answer for answer in (get_json(server.port, "/after")["pid"] for _ in range(3))} <= set(
        int(pid) for pid in children.read_text().split())
