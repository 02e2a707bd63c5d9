"""Helpers for the hidden grading tests (copied next to them into tests/hidden/).

The hidden tests check what each exercise's page asks for, by other
inputs than the visible tests use. Like every test here they use real
sockets and processes, wait on events, and stop what they start.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from support import EXAMPLES, Program, running

TIMEOUT = 20.0


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)


def receive_until_eof(sock: socket.socket) -> bytes:
    parts = []
    while chunk := sock.recv(65536):
        parts.append(chunk)
    return b"".join(parts)


def receive_exactly(sock: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(min(65536, size - len(data)))
        assert chunk, f"EOF after {len(data)} of {size} bytes: {bytes(data)!r}"
        data += chunk
    return bytes(data)


def read_line(sock: socket.socket) -> bytes:
    data = bytearray()
    while not data.endswith(b"\n"):
        chunk = sock.recv(1)
        assert chunk, f"EOF after {bytes(data)!r}"
        data += chunk
    return bytes(data)


def converse(port: int, *pieces: bytes) -> bytes:
    """Send the pieces, half-close, return everything the server answered."""
    with connect(port) as sock:
        for piece in pieces:
            sock.sendall(piece)
        sock.shutdown(socket.SHUT_WR)
        return receive_until_eof(sock)


@contextmanager
def serve_app(relative: str, *args: str) -> Iterator[tuple[Program, int]]:
    """``python -m layer3_http docs/examples/RELATIVE --listen 127.0.0.1:0 ARGS``."""
    argv = [sys.executable, "-m", "layer3_http", str(EXAMPLES / relative),
            "--listen", "127.0.0.1:0", *args]
    with running(argv) as program:
        yield program, program.wait_for_port()


def stops_cleanly(program: Program) -> None:
    assert program.stop() == 0, program.output()
