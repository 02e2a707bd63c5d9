"""Flow control: what the non-blocking writes report when the peer does not read.

Small kernel buffers (``SO_SNDBUF`` on the writer, ``SO_RCVBUF`` on the
reader) make the kernel refuse most of a large write, so the queue and the
return values of `write_nb` and `flush_nb` can be watched while the peer
reads a little at a time. Also here: the ``*_call`` forms with a waiting
function of our own, and the TCP options the socket sets.
"""

from __future__ import annotations

import socket

import pytest
from sockets_support import TCP_KINDS, TIMEOUT, Background, wait_readable, wait_writable

from layer1_sockets import BufferedSocket, poll, wait_ready

Pair = tuple[BufferedSocket, BufferedSocket]
DATA = bytes(range(256)) * 16384  # 4 MiB, far more than the small buffers hold
BLOCK = 64 * 1024


def shrink(pair: Pair) -> None:
    client, server = pair
    client.set_sndbuf(4096)
    server.set_rcvbuf(65536)  # smaller makes loopback TCP crawl (64 KiB segments)


def read_until(sock: BufferedSocket, size: int) -> bytes:
    parts, have = [], 0
    while have < size:
        piece = sock.read_nb(size - have)
        if piece is None:
            wait_readable(sock)
            continue
        assert piece, "EOF before all data arrived"
        parts.append(piece)
        have += len(piece)
    return b"".join(parts)


def test_write_nb_keeps_a_small_tail_and_reports_zero(pair: Pair) -> None:
    client, server = pair
    assert client.write_nb(b"x" * 1000) == 0  # all but a small tail "went out": 0
    assert client.queued == 1000  # ... and the tail is still here
    assert server.read_nb() is None  # nothing was sent yet
    assert client.flush_nb() == 0
    assert client.queued == 0
    assert read_until(server, 1000) == b"x" * 1000


def test_write_nb_and_flush_nb_report_what_stays_queued(pair: Pair) -> None:
    shrink(pair)
    client, server = pair
    left = client.write_nb(DATA)
    assert BLOCK <= left < len(DATA)  # the kernel took some, not all
    assert left == client.queued
    assert client.flush_nb() == client.queued > 0  # still owed: the peer does not read
    received = bytearray()
    while left or len(received) < len(DATA):  # read some, continue the owed flush
        piece = server.read_nb()
        received += piece or b""
        now = client.flush_nb()
        assert now <= left  # without new data the queue only shrinks
        left = now
        if not piece:
            assert poll([server], [client] if left else [], TIMEOUT)
    assert received == DATA
    client.finish()
    assert server.read() == b""


def test_an_owed_flush_is_continued_by_write_nb(pair: Pair) -> None:
    shrink(pair)
    client, server = pair
    assert client.flush_nb(DATA[:300_001]) > 0
    received = bytearray()
    while (left := client.write_nb()) or len(received) < 300_001:
        # write_nb alone would keep a tail below one block; the owed flush sends it too
        if server.buffered or poll([server], [], 0):
            received += server.read_nb() or b""
        elif left:
            assert poll([server], [client], TIMEOUT)
        else:
            wait_readable(server)
    assert received == DATA[:300_001]
    assert client.queued == 0


def test_an_owed_flush_is_continued_by_read_nb(pair: Pair) -> None:
    shrink(pair)
    client, server = pair
    assert client.flush_nb(DATA) > 0
    before = client.queued
    taken = (len(DATA) - before) // 2  # surely readable (TLS: whole records only)
    assert read_until(server, taken) == DATA[:taken]  # room opens up ...
    wait_writable(client)  # ... at the peer and in our kernel's send buffer
    assert client.read_nb() is None  # nothing to read, but the flush went on
    assert client.queued < before


def test_write_call_and_flush_call_use_our_wait(pair: Pair) -> None:
    shrink(pair)
    client, server = pair
    calls: list[tuple[BufferedSocket, str]] = []
    received = bytearray()

    def wait(sock: BufferedSocket, mode: str) -> None:
        calls.append((sock, mode))
        received.extend(read_until(server, 1) + (server.read_nb() or b""))
        wait_ready(sock, mode)

    client.write_call(wait, DATA)
    assert client.queued < BLOCK  # write_call sends whole blocks only
    client.flush_call(wait)
    assert client.queued == 0
    assert calls and all(sock is client and mode == "w" for sock, mode in calls)
    received += read_until(server, len(DATA) - len(received))
    assert received == DATA


def test_read_call_and_drain_call_use_our_wait(pair: Pair) -> None:
    client, server = pair
    calls: list[str] = []

    def wait(sock: BufferedSocket, mode: str) -> None:
        assert sock is server
        calls.append(mode)
        client.flush(b"line\n" if len(calls) == 1 else b"0123456789")  # useful work
        wait_ready(sock, mode)

    assert server.read_call(wait, terminator=b"\n") == b"line\n"
    assert server.drain_call(wait, maxlen=10) == 10
    assert calls == ["r", "r"]


def test_a_blocked_writer_goes_on_when_the_peer_reads(pair: Pair) -> None:
    shrink(pair)
    client, server = pair
    writer = Background(lambda: client.flush(DATA))
    assert read_until(server, len(DATA)) == DATA
    assert writer.result() is client


@pytest.mark.parametrize("kind", TCP_KINDS)
def test_tcp_nodelay_is_on_and_no_call_leaves_the_socket_corked(pair: Pair) -> None:
    """TCP_CORK is only set while a call is sending whole blocks.

    A socket left corked while its peer's window is smaller than one segment
    would send nothing until the kernel's persist timer fires (the small
    buffer tests above would crawl); so after every call, returning or
    blocked, the cork is off.
    """
    shrink(pair)
    client, server = pair
    raw = socket.socket(fileno=client.fileno())

    def corked() -> int:
        return raw.getsockopt(socket.IPPROTO_TCP, socket.TCP_CORK)

    try:
        assert raw.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
        assert client.write_nb(DATA) > 0  # blocked: the peer does not read yet
        assert corked() == 0
        assert client.flush_nb() > 0
        assert corked() == 0
        received = bytearray()
        while client.flush_nb():  # the owed flush goes on as the peer reads
            assert corked() == 0
            assert poll([server], [client], TIMEOUT)
            received += server.read_nb() or b""
        client.flush(b"small")
        assert corked() == 0
    finally:
        raw.detach()
    received += read_until(server, len(DATA) + 5 - len(received))
    assert received == DATA + b"small"


def test_a_blocking_read_carries_an_owed_flush_on(pair: Pair) -> None:
    """flush_nb(request) then read(): the request must not stay stuck in our queue.

    The peer answers only after it has the whole request; if the blocking
    read only waited for input, both sides would wait for ever.
    """
    shrink(pair)
    client, server = pair

    def answer() -> None:
        assert read_until(server, len(DATA)) == DATA
        server.flush(b"done")

    peer = Background(answer)
    assert client.flush_nb(DATA) > 0  # most of it is still queued here
    assert client.read(maxlen=4) == b"done"
    assert client.queued == 0
    peer.result()
