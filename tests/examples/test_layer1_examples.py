"""Drive every part 1 step program and exercise solution with a real client.

Each test starts the program exactly as a reader would (``python
docs/examples/layer1/...``), talks to it over loopback, asserts what the
client receives, and checks that SIGTERM stops it with exit code 0.
"""

from __future__ import annotations

import os
import re
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from support import Program, example

TIMEOUT = 20.0


@contextmanager
def connect(port: int) -> Iterator[socket.socket]:
    sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    with sock:
        yield sock


def receive_until_eof(sock: socket.socket) -> bytes:
    parts = []
    while chunk := sock.recv(65536):
        parts.append(chunk)
    return b"".join(parts)


def receive_exactly(sock: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(min(65536, size - len(data)))
        assert chunk, f"EOF after {len(data)} of {size} bytes"
        data += chunk
    return bytes(data)


def send_in_background(sock: socket.socket, data: bytes) -> threading.Thread:
    """Send data from a thread, so the test can read the echo meanwhile."""
    thread = threading.Thread(target=sock.sendall, args=(data,), daemon=True)
    thread.start()
    return thread


def assert_stops_on_sigterm(program: Program) -> None:
    assert program.stop() == 0, program.output()


# --- step 1: raw socket echo -------------------------------------------------


def test_step01_echo() -> None:
    payload = os.urandom(256 * 1024)
    with example("layer1/step01_echo.py") as (program, port):
        with connect(port) as sock:
            sender = send_in_background(sock, payload)
            echoed = receive_exactly(sock, len(payload))
            sender.join(TIMEOUT)
            sock.shutdown(socket.SHUT_WR)
            assert receive_until_eof(sock) == b""
        program.wait_for_line(rb"client gone")
        sizes = [int(m.group(1)) for m in
                 (re.match(rb"recv returned (\d+) bytes", line) for line in program.lines) if m]
        assert_stops_on_sigterm(program)
    assert echoed == payload
    # One sendall on the client became many recv calls on the server:
    # the byte stream has no message boundaries.
    assert sum(sizes) == len(payload)
    assert len(sizes) >= len(payload) // 4096
    assert max(sizes) <= 4096


def test_step01_echo_serves_clients_one_after_another() -> None:
    with example("layer1/step01_echo.py") as (program, port):
        for word in (b"first", b"second"):
            with connect(port) as sock:
                sock.sendall(word)
                assert receive_exactly(sock, len(word)) == word
        program.wait_for_line(rb"client gone", start=0)
        assert_stops_on_sigterm(program)
    assert sum(b"connected" in line for line in program.lines) == 2


# --- step 2: lines, by hand and with BufferedSocket ---------------------------

LINE_SERVERS = ["layer1/step02_line_reader.py"]


def converse(port: int, *pieces: bytes) -> bytes:
    """Send pieces, half-close, return everything the server answered."""
    with connect(port) as sock:
        for piece in pieces:
            sock.sendall(piece)
        sock.shutdown(socket.SHUT_WR)
        return receive_until_eof(sock)


@pytest.mark.parametrize("program_path", LINE_SERVERS)
def test_step02_lines(program_path: str) -> None:
    with example(program_path) as (program, port):
        assert converse(port, b"hello\n", b"world\n") == b"HELLO\nWORLD\n"
        # Three lines in one segment: the reader must keep what follows a newline.
        assert converse(port, b"a\nb\nc\n") == b"A\nB\nC\n"
        # Byte by byte, and a clean end without any line at all.
        assert converse(port, *(bytes([b]) for b in b"one\ntwo\n")) == b"ONE\nTWO\n"
        assert converse(port) == b""
        assert_stops_on_sigterm(program)


@pytest.mark.parametrize("program_path", LINE_SERVERS)
def test_step02_a_line_split_across_reads(program_path: str) -> None:
    with example(program_path) as (program, port):
        with connect(port) as sock:
            sock.sendall(b"hello\nwor")
            # The answer to the first line proves the server has read "wor" or
            # not yet; either way "ld\n" arrives in a later read.
            assert receive_exactly(sock, 6) == b"HELLO\n"
            sock.sendall(b"ld\n")
            assert receive_exactly(sock, 6) == b"WORLD\n"
        assert_stops_on_sigterm(program)


@pytest.mark.parametrize("program_path", LINE_SERVERS)
def test_step02_limits_and_eof(program_path: str) -> None:
    longest = b"y" * 63 + b"\n"  # exactly MAXLEN bytes, newline included
    with example(program_path) as (program, port):
        assert converse(port, longest) == longest.upper()
        assert converse(port, b"z" * 64 + b"\nok\n") == b"ERROR line too long\nOK\n"
        assert converse(port, b"x" * 100_000 + b"\nstill here\n") == (
            b"ERROR line too long\nSTILL HERE\n")
        assert converse(port, b"first\n", b"tail") == (
            b"FIRST\nERROR no newline at end of input\n")
        # A long line cut off by EOF: refused, and the connection ends cleanly.
        assert converse(port, b"w" * 200) == b"ERROR line too long\n"
        assert_stops_on_sigterm(program)
