"""`poll` and `timeref`: readiness from the kernel and from our own buffers.

`poll` must see a descriptor numbered above 1024 (the original's
``select()`` could not), count input that already sits in a socket's buffer
(or in its TLS layer) as readable without asking the kernel, *not* count a
partial result that a read is still waiting to complete, and honour its
timeout.
"""

from __future__ import annotations

import fcntl
import resource
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from sockets_support import TIMEOUT, connected, wait_readable

from layer1_sockets import BufferedSocket, poll, tcpconnect, tcplisten, timeref

Pair = tuple[BufferedSocket, BufferedSocket]
HIGH_FD = 1500


@pytest.fixture
def high_limit() -> Iterator[None]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = HIGH_FD + 100
    if hard != resource.RLIM_INFINITY and hard < wanted:
        pytest.skip(f"the hard descriptor limit {hard} is below {wanted}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, wanted), hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_poll_sees_a_descriptor_above_1024(high_limit: None) -> None:
    left, right = socket.socketpair()
    high = fcntl.fcntl(left.fileno(), fcntl.F_DUPFD, HIGH_FD)
    left.close()
    sock = BufferedSocket(socket.socket(fileno=high))
    try:
        assert sock.fileno() >= HIGH_FD > 1024
        assert not poll([sock], [], 0)
        assert poll([], [sock], TIMEOUT)
        right.sendall(b"x")
        assert poll([sock], [], TIMEOUT)
        assert sock.read_nb() == b"x"
    finally:
        sock.close()
        right.close()


def test_buffered_input_counts_as_readable(pair: Pair) -> None:
    client, server = pair
    client.flush(b"one\ntwo\n")
    assert server.read(terminator=b"\n") == b"one\n"
    assert server.buffered == 4  # "two\n" came with the first line
    assert not poll([server.fileno()], [], 0)  # the kernel has nothing more ...
    assert poll([server], [], 0)  # ... but the socket is ready to read
    assert server.read_nb(terminator=b"\n") == b"two\n"
    assert not poll([server], [], 0)


def test_data_decrypted_from_several_tls_records_counts_as_readable(tmp_path: Path) -> None:
    with connected("tls", tmp_path) as (client, server):
        for line in (b"one\n", b"two\n", b"three\n"):
            client.flush(line)  # one TLS record each
        assert server.read(maxlen=14) == b"one\ntwo\nthree\n"
        client.flush(b"four\n", b"five\n")
        wait_readable(server.fileno())
        assert server.read(terminator=b"\n") == b"four\n"
        assert server.buffered == 5 and poll([server], [], 0)
        assert not poll([server.fileno()], [], 0)


class Interrupted(Exception):
    pass


def test_a_partial_result_waiting_for_more_is_not_readable(pair: Pair) -> None:
    """A read that waits for its terminator leaves a partial line in the buffer.

    If poll counted that as readable it would return at once, again and
    again, and a loop around it would spin without ever blocking.
    """
    client, server = pair
    client.flush(b"partial")

    def interrupt(sock: BufferedSocket, mode: str) -> None:
        raise Interrupted

    wait_readable(server)
    with pytest.raises(Interrupted):
        server.read_call(interrupt, terminator=b"\n")
    assert server.buffered == 7
    assert not poll([server], [], 0)
    client.flush(b" line\n")
    assert poll([server], [], TIMEOUT)
    assert server.read(terminator=b"\n") == b"partial line\n"


def test_eof_counts_as_readable(pair: Pair) -> None:
    client, server = pair
    client.finish()
    assert poll([server], [], TIMEOUT)
    assert server.read() == b""
    assert poll([server], [], 0)  # reading again returns at once, too


def test_timeout_is_honoured() -> None:
    with tcplisten("127.0.0.1", 0) as listener:
        start = timeref()
        assert poll([listener], [], 0.05) is False
        assert 0.05 <= timeref(start) < TIMEOUT
        assert poll([], [], 0.01) is False  # nothing to watch: just the timeout
        with pytest.raises(ValueError, match="forever"):
            poll([], [])


def test_listeners_writers_and_plain_descriptors(pair: Pair) -> None:
    client, server = pair
    assert poll([], [client], 0)  # a fresh connection can be written at once
    assert poll([], [client.fileno()], 0)
    assert poll([server, server.fileno()], [server], 0)  # the same one twice is fine
    with tcplisten("127.0.0.1", 0) as listener:
        assert not poll([listener], [], 0)
        with tcpconnect("127.0.0.1", listener.port or 0):
            assert poll([listener], [], TIMEOUT)
            accepted = listener.accept_nb()
            assert accepted is not None
            accepted.close()


def test_a_closed_socket_cannot_be_polled(pair: Pair) -> None:
    client, _ = pair
    client.close()
    with pytest.raises(ValueError):
        poll([client], [], 0)


def test_timeref_measures_monotonic_seconds() -> None:
    first = timeref()
    second = timeref()
    assert second >= first
    elapsed = timeref(first)
    assert 0.0 <= elapsed < TIMEOUT
    assert timeref(first + 1000.0) < 0  # a reference in the future: negative
