"""The raw byte sink: the upper bound for receiving a request body in Python here.

A pre-forked stdlib server whose workers block in ``accept`` on the shared
listener and then, per request, read the head up to ``\\r\\n\\r\\n``, find
``Content-Length`` or ``Transfer-Encoding: chunked`` by a raw byte search,
and pull the body into one reused 64 KiB buffer with ``recv_into`` (chunk
sizes are read, chunk data is skipped unseen, trailers are skipped). The
answer is the number of body bytes, as text; a request without a body gets
``Hello, World!``. Connections stay open (keep-alive).

This is the yardstick for the upload workloads: no server that looks at the
bytes it receives can be faster. ``bench/run.py`` reports upload speeds as
ratios to it.

Usage::

    python bench/servers/sink.py --listen 127.0.0.1:8081 --workers 2

Invariants: memory stays at one buffer and one head per worker whatever the
body size; the master (shared with ``limit.py``) kills and reaps its workers
by PID on SIGTERM or SIGINT.
"""

from __future__ import annotations

import re
import socket
import sys

from limit import main

LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*([0-9]+)")
CHUNKED = b"\r\ntransfer-encoding: chunked"


def read_until(conn: socket.socket, pending: bytes, mark: bytes,
               size: int = 65536) -> tuple[bytes, bytes]:
    """Read until `mark`, `size` bytes at a time; return what came before it and the rest.

    Raises:
        EOFError: The peer closed first.
    """
    while True:
        at = pending.find(mark)
        if at >= 0:
            return pending[:at], pending[at + len(mark):]
        data = conn.recv(size)
        if not data:
            raise EOFError
        pending += data


def skip(conn: socket.socket, pending: bytes, count: int, view: memoryview) -> bytes:
    """Discard `count` bytes (buffered first, then straight from the socket); return the rest."""
    if len(pending) >= count:
        return pending[count:]
    left = count - len(pending)
    while left:
        got = conn.recv_into(view, min(left, len(view)))
        if not got:
            raise EOFError
        left -= got
    return b""


def skip_chunked(conn: socket.socket, pending: bytes, view: memoryview) -> tuple[int, bytes]:
    """Discard a chunked body; return its decoded length and the rest."""
    total = 0
    while True:  # small reads for the size line: the chunk data goes by recv_into
        line, pending = read_until(conn, pending, b"\r\n", 64)
        size = int(line.split(b";", 1)[0], 16)
        if size == 0:
            while True:  # trailers, up to the empty line
                line, pending = read_until(conn, pending, b"\r\n", 64)
                if not line:
                    return total, pending
        total += size
        pending = skip(conn, pending, size + 2, view)


def handle(conn: socket.socket, view: memoryview) -> None:
    """Serve one connection until the peer closes it."""
    pending = b""
    while True:
        head, pending = read_until(conn, pending, b"\r\n\r\n")
        lower = head.lower()
        if CHUNKED in lower:
            count, pending = skip_chunked(conn, pending, view)
            body = str(count).encode()
        elif (match := LENGTH.search(lower)) is not None:
            count = int(match.group(1))
            pending = skip(conn, pending, count, view)
            body = str(count).encode()
        else:
            body = b"Hello, World!"
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s"
                     % (len(body), body))


def sink(listener: socket.socket) -> None:
    """A worker's loop: accept one connection at a time and drain it."""
    listener.setblocking(True)
    view = memoryview(bytearray(64 * 1024))
    while True:
        conn, _address = listener.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            handle(conn, view)
        except (EOFError, OSError, ValueError):
            pass
        finally:
            conn.close()


if __name__ == "__main__":
    sys.exit(main(sink))
