"""What layer 3 tells layer 2 about HTTP: when a held connection's request has arrived.

With a dispatch filter (`layer2_prefork.DispatchFilter`) a new connection
whose request head has not arrived within a moment of its accept, and
each keep-alive connection a worker parked, is held by the master until
the filter says a complete request is there (the head, and a short body
too: `Options.held_body_limit`); a worker then gets the connection
together with the bytes the master read. So a client that
connects and waits, or sends its head one byte at a time (slowloris),
costs the master a descriptor, not a worker. `http_filter` builds the
filter from the handler's options:

* complete: the bytes hold an empty line after the request line
  (``\\r\\n\\r\\n``), or something the head parser refuses anyway (a bare
  LF), so the worker answers it with the right status at once;
* idle_timeout: `Options.idle_timeout` (silent connections are closed
  quietly, as a worker would);
* request_timeout: `Options.request_header_timeout`, past which the
  master sends the same 408 response a worker would send;
* max_bytes: one byte more than `Options.request_header_size_limit`
  (capped by layer 2's `MAX_BYTES`), so a head that is too large reaches a
  worker, which answers 431, and no head reaches a worker before it is
  complete or over the limit, whatever its size.

Invariants: the filter never reads more than a head's worth of bytes; a
head the filter calls complete is one the worker can parse without waiting
for more input (or refuse without waiting).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from layer2_prefork import MAX_BYTES, DispatchFilter

from ._head import EMPTY_LINE_LIMIT
from ._options import Options
from ._response import ResponseWriter

__all__ = ["head_arrived", "http_filter", "refusal", "request_arrived"]



def head_arrived(data: bytes, start: int = 0) -> bool:
    """Whether `data` holds a complete request head, or enough to refuse it.

    Args:
        data: Every byte of the connection so far.
        start: Where the bytes new since the last call begin: only they
            (and the three before them) are searched, so a head that
            arrives a byte at a time is scanned once in all.

    Examples:
        >>> head_arrived(b"GET / HTTP/1.1\\r\\nHost: a\\r\\n")
        False
        >>> head_arrived(b"GET / HTTP/1.1\\r\\nHost: a\\r\\n\\r\\n")
        True
        >>> head_arrived(b"\\r\\n\\r\\nGET / HTTP/1.1\\r\\n")  # empty lines first: not yet
        False
        >>> head_arrived(b"GET / HTTP/1.1\\nHost: a\\n")  # bare LF: the parser refuses it
        True
        >>> head_arrived(b"GET / HTTP/1.1\\r\\nHost: a\\r\\n\\r\\n", 30)  # the end is new
        True
    """
    skip = _leading_empty_lines(data)
    if data.find(b"\r\n\r\n", max(skip, start - 3)) >= 0:
        return True
    begin = max(start - 1, 0)
    bare = data.count(b"\n", begin) - data.count(b"\r\n", begin)
    if begin and data[begin] == 10 and data[begin - 1] == 13:  # a CRLF cut by the window
        bare -= 1
    return bare > 0


def refusal(status_line: str, options: Options, *, version: tuple[int, int] = (1, 1),
            head_request: bool = False) -> tuple[ResponseWriter, bytes]:
    """A short plain-text response of the server's own that closes the connection.

    Returns:
        The writer (for the access log) and the bytes to send.
    """
    writer = ResponseWriter(version=version, head_request=head_request, keep_alive=False,
                            static_fields=options.static_fields, minimum_chunk_size=1 << 20)
    writer.status(status_line)
    writer.header("Content-Type", "text/plain; charset=utf-8")
    parts = writer.data(f"{status_line}\n".encode())
    parts += writer.finish()
    return writer, b"".join(parts)


HEAD_SCAN = 65536
"""A body is waited for in the master only behind a head that ended within this many bytes."""
_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*([0-9]{1,15})[ \t]*\r\n", re.IGNORECASE)
_OTHER_FRAMING = re.compile(rb"\r\n(?:transfer-encoding|expect):", re.IGNORECASE)


def request_arrived(body_limit: int) -> Callable[[bytes, int], bool]:
    """A predicate like `head_arrived` that also waits for a short body.

    With a complete head that announces a ``Content-Length`` of at most
    `body_limit` bytes (and no ``Transfer-Encoding`` or ``Expect``: a
    chunked body, or a client that waits for ``100 Continue``, goes to the
    worker with its head), the request is complete only once its body is
    there too. So a client that uploads a small body slowly is held by the
    master, not by a worker, like a buffering proxy's ``client_body_buffer``.

    Examples:
        >>> arrived = request_arrived(10)
        >>> head = b"POST / HTTP/1.1\\r\\nHost: a\\r\\nContent-Length: 5\\r\\n\\r\\n"
        >>> arrived(head, 0), arrived(head + b"12345", len(head))
        (False, True)
        >>> arrived(b"GET / HTTP/1.1\\r\\nHost: a\\r\\n\\r\\n", 0)
        True
    """

    def arrived(data: bytes, start: int) -> bool:
        if not head_arrived(data, start):
            skip = _leading_empty_lines(data)
            if start <= skip or data.find(b"\r\n\r\n", skip, min(start + 3, HEAD_SCAN)) < 0:
                return False  # the head is not complete (or ended past HEAD_SCAN: no body wait)
        end = data.find(b"\r\n\r\n", _leading_empty_lines(data), HEAD_SCAN)
        if end < 0:
            return True  # a bare LF, or a long head: the worker answers or reads on
        head = data[:end + 2]
        length = _LENGTH.search(head)
        if length is None or _OTHER_FRAMING.search(head) or int(length[1]) > body_limit:
            return True
        return len(data) - (end + 4) >= int(length[1])

    return arrived


def _leading_empty_lines(data: bytes) -> int:
    skip = 0
    while skip < 2 * EMPTY_LINE_LIMIT and data.startswith(b"\r\n", skip):
        skip += 2
    return skip


def http_filter(options: Options) -> DispatchFilter | None:
    """The dispatch filter for a handler with these options (`None` with TLS).

    A TLS connection's first bytes are a handshake, not a head, and its
    session cannot move between processes, so HTTPS connections go to a
    worker at once and stay there.
    """
    if options.tls is not None:
        return None
    body = min(options.held_body_limit, options.request_body_size_limit)  # past it: 413 at once
    return DispatchFilter(
        complete=request_arrived(body) if body else head_arrived,
        idle_timeout=options.idle_timeout,
        request_timeout=options.request_header_timeout,
        timeout_response=refusal("408 Request Timeout", options)[1],
        max_bytes=min(options.request_header_size_limit + 1 + body, MAX_BYTES),
        overload_response=refusal("503 Service Unavailable", options)[1])
