"""Closing after ``Connection: close``: at once when the client is done, gently otherwise.

A lingering close (half-close, then wait for the client's end) protects the
last response from a reset when the client may still send; it costs the
worker a round trip, and up to ``--drain-timeout`` with a client that keeps
its socket open. When the client asked to close and sent nothing more,
there is nothing to protect against, so the worker closes at once. With one
worker and a long drain timeout, a second client is then served while the
first still holds its socket open.
"""

from __future__ import annotations

import socket
import time

from http_support import Server, http_server

DRAIN = 8.0
REQUEST = b"GET /hello HTTP/1.1\r\nHost: x\r\n"


def read_to_end(sock: socket.socket) -> bytes:
    received = bytearray()
    while chunk := sock.recv(65536):
        received += chunk
    return bytes(received)


def answered_while_first_stays_open(server: Server, first_request: bytes) -> float:
    """Send `first_request`, keep that socket open; return seconds until a second is answered."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=3 * DRAIN) as first:
        first.sendall(first_request)
        first.settimeout(3 * DRAIN)
        head = first.recv(65536)
        assert head.startswith(b"HTTP/1.1 "), head
        started = time.monotonic()
        with socket.create_connection(("127.0.0.1", server.port), timeout=3 * DRAIN) as second:
            second.sendall(REQUEST + b"Connection: close\r\n\r\n")
            assert read_to_end(second).startswith(b"HTTP/1.1 200 ")
        return time.monotonic() - started


def test_a_client_that_asked_to_close_does_not_hold_the_worker() -> None:
    with http_server("--workers", "1", "--drain-timeout", str(DRAIN)) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=3 * DRAIN) as sock:
            sock.sendall(REQUEST + b"Connection: close\r\n\r\n")
            answer = read_to_end(sock)  # the server's FIN ends the answer
        assert answer.startswith(b"HTTP/1.1 200 ") and b"Connection: close" in answer
        assert answered_while_first_stays_open(
            server, REQUEST + b"Connection: close\r\n\r\n") < DRAIN / 2


def test_a_close_the_server_decides_still_lingers() -> None:
    # The server refuses the body (413), so the client may still be sending
    # it: the worker waits for the client's end, up to the drain timeout.
    with http_server("--workers", "1", "--drain-timeout", str(DRAIN),
                     "--request-body-size-limit", "10") as server:
        refused = REQUEST + b"Content-Length: 1000\r\n\r\n" + b"x" * 100
        assert answered_while_first_stays_open(server, refused) >= DRAIN * 0.8
