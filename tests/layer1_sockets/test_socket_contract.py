"""One contract, every kind of connection, both styles of call.

Each test here runs over TCP/IPv4, TCP/IPv6, a Unix socket and TLS over TCP
(the ``kind`` fixture), most of them once with the blocking calls and once
with the ``*_nb`` calls and `poll` (the ``style`` fixture). The behaviour
they pin down is the table in the design: what a read returns for a given
``maxlen`` and ``terminator``, what EOF, a reset and a closed socket look
like, and that errors are sticky per direction.
"""

from __future__ import annotations

import itertools
import select
import socket
import ssl
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sockets_support import (
    KINDS,
    TCP_KINDS,
    TIMEOUT,
    Background,
    Blocking,
    NonBlocking,
    connected,
    expected_read,
    wait_readable,
)

from layer1_sockets import BufferedSocket, SocketClosedError, SocketFinishedError, wait_ready

Pair = tuple[BufferedSocket, BufferedSocket]
Style = Blocking | NonBlocking


def wait_hangup(sock: BufferedSocket) -> None:
    """Wait until the kernel reports the connection gone (POLLHUP or POLLERR)."""
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLHUP | select.POLLERR)
    assert poller.poll(TIMEOUT * 1000), "the peer's reset did not arrive in time"


class TestContract:
    def test_round_trip(self, pair: Pair, style: Style) -> None:
        client, server = pair
        style.send(client, b"hello\n")
        assert style.recv(server, terminator=b"\n") == b"hello\n"
        style.send(server, b"HELLO\n")
        assert style.recv(client, terminator=b"\n") == b"HELLO\n"

    def test_reads_follow_the_table(self, pair: Pair, style: Style) -> None:
        client, server = pair
        style.send(client, b"abc\ndefgh", b"ijklmn\nop")
        assert style.recv(server, terminator=b"\n") == b"abc\n"  # terminator included
        assert style.recv(server, maxlen=3) == b"def"  # maxlen bytes
        assert style.recv(server, 4, b"\n") == b"ghij"  # maxlen before the terminator
        assert style.recv(server, 10, b"\n") == b"klmn\n"  # terminator before maxlen
        client.finish()
        assert style.recv(server, 10, b"\n") == b"op"  # short, no terminator: EOF came
        assert style.recv(server) == b""  # b"" only at EOF ...
        assert style.recv(server, terminator=b"\n") == b""  # ... and again
        assert style.drain(server) == 0

    def test_eof_in_the_middle_of_a_terminator_search(self, pair: Pair, style: Style) -> None:
        client, server = pair
        reader = Background(lambda: (style.recv(server, terminator=b"\n"), style.recv(server)))
        style.send(client, b"no newline")
        client.finish()
        assert reader.result() == (b"no newline", b"")

    def test_drain_counts_what_it_discards(self, pair: Pair, style: Style) -> None:
        client, server = pair
        style.send(client, b"abc\ndefgh")
        assert server.drain(terminator=b"\n") == 4
        assert style.drain(server, maxlen=2) == 2
        client.finish()
        assert style.drain(server) == 3
        assert style.drain(server) == 0

    def test_nothing_available_is_none(self, pair: Pair) -> None:
        client, server = pair
        assert server.read_nb() is None
        assert server.read_nb(5, b"\n") is None
        assert server.drain_nb() is None
        assert client.write_nb(b"x") == 0  # a small tail stays queued: still 0
        assert client.flush_nb() == 0
        wait_readable(server)
        assert server.read_nb() == b"x"
        assert server.read_nb() is None

    def test_peer_reset_raises_connection_reset(self, pair: Pair, style: Style) -> None:
        """The peer's reset() reaches us as ConnectionResetError, and keeps doing so.

        The peer resets with unread input in its buffer: on TCP that does not
        matter (SO_LINGER 0 always sends RST), on Unix sockets it is the only
        way the kernel reports a reset at all.
        """
        client, server = pair
        style.send(client, b"never read")
        wait_readable(server.fileno())
        server.reset()
        with pytest.raises(ConnectionResetError) as first:
            style.recv(client, maxlen=1)
        # Sticky: the kernel reports the reset once and then says EOF; we keep saying reset.
        for again in (client.read_nb, client.read, client.drain_nb, client.drain):
            with pytest.raises(ConnectionResetError) as later:
                again()
            assert later.value is first.value

    def test_errors_are_sticky_per_direction(self, pair: Pair, style: Style) -> None:
        """A failed write does not spoil reading what the peer sent before it left."""
        client, server = pair
        style.send(server, b"last words\n")
        server.close()  # nothing unread there: a clean FIN (TLS: close_notify first)
        wait_readable(client)
        with pytest.raises(OSError) as first:
            client.flush(b"into the void")
            wait_hangup(client)  # the peer's kernel answered with RST (Unix: at once)
            client.flush(b"and again")
        for again in (client.flush, client.write, client.flush_nb, client.write_nb):
            with pytest.raises(OSError) as later:
                again(b"more")
            assert later.value is first.value
        assert style.recv(client, terminator=b"\n") == b"last words\n"
        assert style.recv(client) == b""

    def test_finish_lets_the_peer_see_eof_while_we_still_read(self, pair: Pair,
                                                              style: Style) -> None:
        client, server = pair
        client.write(b"request")
        client.finish()
        assert style.recv(server) == b"request"  # read until EOF
        assert style.recv(server) == b""
        style.send(server, b"response")
        server.finish()
        assert style.recv(client) == b"response"
        with pytest.raises(SocketFinishedError):
            client.write(b"more")
        with pytest.raises(ValueError, match="finish"):
            client.flush_nb(b"more")
        client.finish()  # a second finish does nothing

    def test_close_flushes_the_queued_tail(self, pair: Pair, style: Style) -> None:
        client, server = pair
        assert client.write_nb(b"tail") == 0  # queued, not sent
        client.close()
        assert client.closed
        assert style.recv(server) == b"tail"
        assert style.recv(server) == b""

    @pytest.mark.parametrize("kind", TCP_KINDS)
    def test_reset_sends_rst(self, pair: Pair, style: Style) -> None:
        client, server = pair
        server.write(b"dropped, never sent")  # queued output is dropped
        server.reset()
        with pytest.raises(ConnectionResetError):
            style.recv(client)

    @pytest.mark.parametrize("kind", TCP_KINDS)
    def test_close_with_unread_input_sends_rst(self, pair: Pair, style: Style,
                                               kind: str) -> None:
        """close() with unread input makes the kernel send RST, not FIN.

        When an application closes a TCP socket while received data is still
        waiting in the kernel, that data can never be delivered, so the
        kernel aborts the connection with a reset (RFC 2525 section 2.17;
        Linux does so in ``tcp_close``). The peer gets ConnectionResetError
        instead of EOF, and may lose data it has not read yet. That is why a
        careful server reads or drains the input, or uses finish() first.

        With TLS the close_notify alert leaves before the reset, so the peer
        reads a clean end of data first; the reset then shows on its next
        write.
        """
        client, server = pair
        style.send(client, b"the server never reads this")
        wait_readable(server.fileno())
        server.close()
        if kind == "tls":
            assert style.recv(client) == b""
            wait_hangup(client)
            with pytest.raises(ConnectionResetError):
                client.flush(b"anyone there?")
        else:
            with pytest.raises(ConnectionResetError):
                style.recv(client)

    def test_use_after_close_raises_value_error(self, pair: Pair) -> None:
        client, _ = pair
        client.close()
        calls: list[Callable[[], object]] = [
            client.read, client.read_nb, client.drain, client.drain_nb, client.fileno,
            client.flush, client.flush_nb, client.write, client.finish, client.get_rcvbuf,
            client.get_sndbuf, lambda: client.write_nb(b"x"), lambda: client.set_sndbuf(4096),
            lambda: client.read_call(wait_ready), lambda: client.drain_call(wait_ready),
            lambda: client.write_call(wait_ready, b"x"), lambda: client.flush_call(wait_ready),
            lambda: client.starttls(ssl.create_default_context()),
        ]
        for call in calls:
            with pytest.raises(SocketClosedError):
                call()
        assert issubclass(SocketClosedError, ValueError)
        client.close()  # repeating close or reset does nothing
        client.reset()
        assert client.buffered == 0 and client.queued == 0


# -- any mix of calls, any split: every byte arrives, in order --------------------

_PATTERN = bytes(range(256)) * 800  # 200 KiB: more than a block, kept by reference
_WRITES = ["write", "write_nb", "flush", "flush_nb", "write_call", "flush_call"]
_READS = ["read", "read_nb", "read_call", "drain", "drain_nb", "drain_call"]

small_pieces = st.lists(st.one_of(st.binary(max_size=40), st.sampled_from([b"\n", b"x\n\n"])),
                        max_size=30).map(b"".join)
payloads = st.tuples(small_pieces, st.booleans(), small_pieces).map(
    lambda parts: parts[0] + (_PATTERN if parts[1] else b"") + parts[2])
splits = st.one_of(st.just("whole"), st.just("bytes"),
                   st.lists(st.integers(1, 3000), min_size=1, max_size=20))
read_ops = st.lists(st.tuples(st.sampled_from(_READS),
                              st.sampled_from([None, 1, 2, 7, 100, 70_000]),
                              st.sampled_from([None, b"\n", b"x"])), min_size=1, max_size=12)


def cut(data: bytes, split: str | list[int]) -> list[bytes]:
    """Cut data whole, byte by byte (the first 512 bytes), or at random lengths."""
    if split == "whole":
        return [data]
    if split == "bytes":
        return [data[i:i + 1] for i in range(min(512, len(data)))] + [data[512:]]
    assert isinstance(split, list)
    pieces: list[bytes] = []
    position = 0
    for length in itertools.cycle(split):
        if position >= len(data):
            return pieces
        pieces.append(data[position:position + length])
        position += length
    raise AssertionError  # pragma: no cover


def write_all(sock: BufferedSocket, pieces: list[bytes], ops: list[str]) -> None:
    for number, (piece, op) in enumerate(zip(pieces, itertools.cycle(ops), strict=False)):
        argument: bytes | bytearray | memoryview = (
            piece, bytearray(piece), memoryview(piece))[number % 3]
        if op.endswith("_call"):
            getattr(sock, op)(wait_ready, argument)
        else:
            getattr(sock, op)(argument)
    sock.finish()


def read_all(sock: BufferedSocket, data: bytes, ops: list[tuple[str, int | None, bytes | None]]
             ) -> int:
    """Read with the given calls in turn; check each result; return the final position."""
    position = 0
    for method, maxlen, terminator in itertools.cycle(ops):
        want = expected_read(data, position, maxlen, terminator)
        if method in ("read", "read_call", "read_nb"):
            args = (wait_ready, maxlen, terminator) if method == "read_call" else (
                maxlen, terminator)
            got = getattr(sock, method)(*args)
            if got is None:
                wait_readable(sock)
                continue
            assert got == want if method != "read_nb" else want.startswith(got)
            count = len(got)
        else:
            args = (wait_ready, maxlen, terminator) if method == "drain_call" else (
                maxlen, terminator)
            count = getattr(sock, method)(*args)
            if count is None:
                wait_readable(sock)
                continue
            assert count == len(want) if method != "drain_nb" else count <= len(want)
        if count == 0:
            return position
        position += count
    raise AssertionError  # pragma: no cover


@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=50, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=payloads, split=splits, writes=st.lists(st.sampled_from(_WRITES), min_size=1,
                                                    max_size=6), reads=read_ops)
def test_any_mix_of_calls_keeps_every_byte_in_order(
        kind: str, tmp_path_factory: pytest.TempPathFactory, data: bytes,
        split: str | list[int], writes: list[str],
        reads: list[tuple[str, int | None, bytes | None]]) -> None:
    """Blocking, non-blocking and _call forms in any order, on both sides, any split.

    A blocking read must return exactly what the table says (it does not
    depend on how the bytes were cut), a non-blocking one a non-empty prefix
    of it; the positions must add up to the whole payload.
    """
    directory: Path = tmp_path_factory.mktemp("mix")
    with connected(kind, directory) as (client, server):
        writer = Background(lambda: write_all(client, cut(data, split), writes))
        assert read_all(server, data, reads) == len(data)
        writer.result()


def test_the_cutter_keeps_every_byte() -> None:
    data = bytes(range(256)) * 5
    for split in ("whole", "bytes", [1, 7, 300]):
        assert b"".join(cut(data, split)) == data
    assert len(cut(data, "bytes")) == 513


def test_socket_type_is_checked() -> None:
    datagram = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with pytest.raises(ValueError, match="stream"):
        BufferedSocket(datagram)
    assert datagram.fileno() == -1  # closed: taking ownership means closing on failure too
    left, right = socket.socketpair()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    wrapped = context.wrap_socket(left, do_handshake_on_connect=False, server_hostname="x")
    with pytest.raises(ValueError, match="starttls"):
        BufferedSocket(wrapped)
    right.close()
