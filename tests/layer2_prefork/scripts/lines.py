"""Reading a test client's lines in a handler that must notice a graceful stop."""

from __future__ import annotations

import select

from layer1_sockets import BufferedSocket
from layer2_prefork import stop_fd, stopping


def next_line(conn: BufferedSocket) -> bytes:
    """The next line (or what came before the client's end); b"" at the end or a stop."""
    while not conn.buffered:
        if stopping():
            return b""
        control = stop_fd()
        watched = [conn.fileno()] + ([control] if control is not None else [])
        if conn.fileno() in select.select(watched, [], [])[0]:
            break
    return conn.read(terminator=b"\n")
