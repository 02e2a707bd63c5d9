"""A small streaming multipart/form-data reader for the peers' benchmark apps.

The WSGI servers and ``http.server`` offer no streaming form parser (the
stdlib's ``cgi`` module is deprecated), so their apps share this one: it
reads the body piece by piece through a ``read(size)`` function, writes
the part named ``file`` to an open file and discards every other part.
Memory holds one piece and a window of one delimiter, whatever the size.

It is a benchmark helper, not a validating parser: it trusts the client to
send a well-formed body (the harness's client does).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import BinaryIO

PIECE = 256 * 1024
BOUNDARY = re.compile(r'boundary="?([^";]+)"?')
NAME = re.compile(rb'\bname="([^"]*)"')


def boundary_of(content_type: str) -> bytes:
    """The boundary parameter of a ``multipart/form-data`` content type.

    Raises:
        ValueError: There is none.
    """
    match = BOUNDARY.search(content_type)
    if match is None:
        raise ValueError(f"no boundary in {content_type!r}")
    return match.group(1).encode("latin-1")


def save_file_part(read: Callable[[int], bytes], boundary: bytes, out: BinaryIO) -> int:
    """Stream the part named ``file`` to `out`; return how many bytes it had.

    Args:
        read: Returns up to n body bytes, ``b""`` at the end of the body.
        boundary: The multipart boundary (without the leading dashes).
        out: Where the file's bytes go.

    Raises:
        ValueError: The body ended before the final delimiter.
    """
    delimiter = b"\r\n--" + boundary
    buffer = b"\r\n"  # so that the first delimiter looks like every other one
    written = 0
    buffer = _skip_past(read, buffer, delimiter)
    while True:
        buffer = _fill(read, buffer, 2)
        if buffer.startswith(b"--"):
            return written
        buffer = _fill_until(read, buffer, b"\r\n\r\n")
        headers, _, buffer = buffer.partition(b"\r\n\r\n")
        name = NAME.search(headers)
        sink = out if name is not None and name.group(1) == b"file" else None
        while True:
            at = buffer.find(delimiter)
            if at >= 0:
                if sink is not None:
                    sink.write(buffer[:at])
                    written += at
                buffer = buffer[at + len(delimiter):]
                break
            keep = len(delimiter) - 1
            if len(buffer) > keep:
                if sink is not None:
                    sink.write(buffer[:-keep])
                    written += len(buffer) - keep
                buffer = buffer[-keep:]
            buffer = _more(read, buffer)


def _more(read: Callable[[int], bytes], buffer: bytes) -> bytes:
    piece = read(PIECE)
    if not piece:
        raise ValueError("the multipart body ended early")
    return buffer + piece


def _fill(read: Callable[[int], bytes], buffer: bytes, count: int) -> bytes:
    while len(buffer) < count:
        buffer = _more(read, buffer)
    return buffer


def _fill_until(read: Callable[[int], bytes], buffer: bytes, mark: bytes) -> bytes:
    while mark not in buffer:
        buffer = _more(read, buffer)
    return buffer


def _skip_past(read: Callable[[int], bytes], buffer: bytes, mark: bytes) -> bytes:
    buffer = _fill_until(read, buffer, mark)
    return buffer[buffer.find(mark) + len(mark):]
