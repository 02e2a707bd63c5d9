"""`unread`: bytes pushed back to the front of the input come out first.

A parser that reads a whole chunk and finds its message ended inside it
gives the rest back; the next read of any kind must return those bytes
before anything newer, `poll` must count them as ready, and a closed
socket refuses them like any other call.
"""

from __future__ import annotations

import pytest
from sockets_support import wait_readable

from layer1_sockets import BufferedSocket, SocketClosedError, poll

Pair = tuple[BufferedSocket, BufferedSocket]


def test_unread_bytes_come_before_newer_input(pair: Pair) -> None:
    client, server = pair
    client.flush(b"HEAD\r\n\r\nBODY")
    wait_readable(server)
    chunk = b""
    while b"\r\n\r\n" not in chunk:
        piece = server.read_nb()
        if piece is None:
            wait_readable(server)
            continue
        chunk += piece
    head, _, rest = chunk.partition(b"\r\n\r\n")
    assert head == b"HEAD"
    server.unread(rest)
    client.flush(b" MORE\n")
    assert server.read(terminator=b"\n") == b"BODY MORE\n"


def test_unread_input_counts_as_ready_for_poll_and_read_nb(pair: Pair) -> None:
    _, server = pair
    assert server.read_nb() is None
    assert poll([server], [], timeout=0) is False
    server.unread(b"again")
    assert server.buffered == 5
    assert poll([server], [], timeout=0) is True
    assert server.read_nb(maxlen=3) == b"aga"
    assert server.read_nb() == b"in"
    assert server.read_nb() is None


def test_unread_then_eof(pair: Pair) -> None:
    client, server = pair
    client.finish()
    assert server.read() == b""
    server.unread(b"late")
    assert server.read() == b"late"
    assert server.read() == b""


def test_unread_on_a_closed_socket_is_refused(pair: Pair) -> None:
    _, server = pair
    server.close()
    with pytest.raises(SocketClosedError):
        server.unread(b"x")


def test_unread_goes_in_front_of_input_already_buffered(pair: Pair) -> None:
    client, server = pair
    client.flush(b"abcdef")
    assert server.read(2) == b"ab"
    while server.buffered < 4:  # the rest may still be on its way into the buffer
        wait_readable(server)
        server.unread(server.read_nb() or b"")
    assert server.buffered == 4
    server.unread(b"XY")
    assert server.read(6) == b"XYcdef"
