"""Attributes, arguments and small promises of `BufferedSocket`.

Addresses come as packed bytes of length 4 or 16 (the reference's form),
ports as ints, `None` where they do not apply; they survive `close`.
Arguments are checked before anything happens: a `str` to write is a
`TypeError` and queues nothing, a terminator must be one byte, `maxlen`
positive.
"""

from __future__ import annotations

import array
import ipaddress
import socket

import pytest
from sockets_support import ipv6_available, wait_readable

from layer1_sockets import BufferedSocket, tcpconnect, tcplisten

Pair = tuple[BufferedSocket, BufferedSocket]
LOOPBACK4 = ipaddress.ip_address("127.0.0.1").packed
LOOPBACK6 = ipaddress.ip_address("::1").packed


def test_address_attributes(pair: Pair, kind: str) -> None:
    client, server = pair
    for sock in (client, server):
        assert sock.interval is None
        if kind == "unix":
            assert (sock.local_ip4, sock.local_ip6, sock.remote_ip4, sock.remote_ip6) == (
                None, None, None, None)
            assert sock.local_tcpport is None and sock.remote_tcpport is None
        elif kind == "tcp6":
            assert sock.local_ip6 == sock.remote_ip6 == LOOPBACK6
            assert sock.local_ip4 is None and sock.remote_ip4 is None
        else:
            assert sock.local_ip4 == sock.remote_ip4 == LOOPBACK4
            assert sock.local_ip6 is None and sock.remote_ip6 is None
    if kind != "unix":
        assert client.local_tcpport == server.remote_tcpport
        assert client.remote_tcpport == server.local_tcpport
    remembered = (client.local_ip4, client.local_ip6, client.local_tcpport, client.remote_tcpport)
    client.close()
    assert (client.local_ip4, client.local_ip6, client.local_tcpport,
            client.remote_tcpport) == remembered  # still known after close


def test_an_ipv4_peer_on_an_ipv6_socket_has_both_forms() -> None:
    if not ipv6_available():
        pytest.skip("no IPv6")
    listening = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    listening.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    listening.bind(("::", 0))
    listening.listen()
    with listening, tcpconnect("127.0.0.1", listening.getsockname()[1]), \
            BufferedSocket(listening.accept()[0]) as server:
        assert server.remote_ip6 == ipaddress.ip_address("::ffff:127.0.0.1").packed
        assert server.remote_ip4 == LOOPBACK4
        assert server.local_ip4 == LOOPBACK4


def test_buffer_sizes_can_be_read_and_set(pair: Pair) -> None:
    client, _ = pair
    client.set_rcvbuf(32768)
    client.set_sndbuf(32768)
    assert client.get_rcvbuf() >= 32768  # Linux doubles the value for its bookkeeping
    assert client.get_sndbuf() >= 32768
    client.set_sndbuf(65536)
    assert client.get_sndbuf() >= 65536


def test_text_is_refused_and_nothing_is_queued(pair: Pair) -> None:
    client, _ = pair
    for call in (client.write, client.write_nb, client.flush, client.flush_nb):
        with pytest.raises(TypeError, match="encode"):
            call(b"fine", "not bytes")  # type: ignore[arg-type]
        assert client.queued == 0
    with pytest.raises(TypeError):
        client.write(42)  # type: ignore[arg-type]


@pytest.mark.parametrize("terminator", [b"", b"\r\n", "\n", 10, bytearray(b"ab")])
def test_a_terminator_must_be_one_byte(pair: Pair, terminator: object) -> None:
    _, server = pair
    for call in (server.read, server.read_nb, server.drain, server.drain_nb):
        with pytest.raises(ValueError, match="terminator"):
            call(None, terminator)  # type: ignore[arg-type]


@pytest.mark.parametrize("maxlen", [0, -1, 1.5, "10"])
def test_maxlen_must_be_positive(pair: Pair, maxlen: object) -> None:
    _, server = pair
    for call in (server.read, server.read_nb, server.drain, server.drain_nb):
        with pytest.raises(ValueError, match="maxlen"):
            call(maxlen)  # type: ignore[arg-type]


def test_any_bytes_like_object_is_sent_as_it_was_at_write_time(pair: Pair) -> None:
    client, server = pair
    mutable = bytearray(b"before")
    numbers = array.array("H", [0x4141, 0x4242])  # any flat buffer, sent byte for byte
    client.write(mutable, memoryview(b"|view|"), memoryview(numbers))
    mutable[:] = b"AFTER!"  # the queue kept a copy
    client.flush()
    assert server.read(16) == b"before|view|" + numbers.tobytes()


def test_chained_calls(pair: Pair) -> None:
    client, server = pair
    assert client.write(b"a;").write(b"b;").flush(b"c;") is client
    assert server.read(terminator=b";") == b"a;"
    assert server.read(maxlen=4) == b"b;c;"


def test_the_context_manager_closes(pair: Pair) -> None:
    client, server = pair
    with client as same:
        assert same is client
        client.write(b"queued")
    assert client.closed
    assert server.read() == b"queued"  # close() flushed it
    with pytest.raises(RuntimeError), server:
        raise RuntimeError("a failing handler")
    assert server.closed
    assert "closed" in repr(server)


def test_buffered_and_queued_report_sizes(pair: Pair) -> None:
    client, server = pair
    assert client.queued == 0 and server.buffered == 0
    client.write(b"12345\n67")
    assert client.queued == 8
    client.flush()
    assert client.queued == 0
    wait_readable(server)
    assert server.read(terminator=b"\n") == b"12345\n"
    assert server.buffered == 2


def test_a_socket_that_is_not_connected_yet_has_no_remote_address() -> None:
    with tcplisten("127.0.0.1", 0) as listener:
        raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock = BufferedSocket(raw)  # not connected: only what the kernel knows
        assert sock.remote_ip4 is None and sock.remote_tcpport is None
        sock.close()
        assert listener.accept_nb() is None
