"""The entry point: `generate_handler` turns an HTTP callback into a layer 2 handler.

Layer 2 calls a ``connect`` handler with each connection a worker is
given; layer 3's handler, a `Handler`, serves that connection's HTTP
requests with a `Connection` (see `_connection`) and returns, so the worker
is free for the next connection. A typical script::

    from layer2_prefork import TCP, listen, run
    from layer3_http import generate_handler

    def app(request):
        request.send_status("200 OK")
        request.send_data("hello\\n")

    listen(TCP("127.0.0.1", 8080), connect=generate_handler(app, idle_timeout=10))
    run()

A `Handler` carries a `dispatch_filter` (`layer2_prefork.DispatchFilter`),
which `layer2_prefork.listen` picks up: what layer 3 tells layer 2 about
HTTP, namely when a held connection's request has arrived. A new
connection whose request head has not arrived within a moment of its
accept, and each keep-alive connection a worker parked, is held by the
master until the filter says a complete request is there (the head, and a
short body too: `Options.held_body_limit`); a worker then gets the
connection together with the bytes the master read. So a client that
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

With the `tls` option each connection first runs the TLS handshake
(layer 1's `starttls`, bounded by `request_header_timeout`); a failed
handshake is logged in one line and the connection reset. With
`max_requests` the handler counts the requests its worker answered with
layer 2 (`requests_left`, `count_requests`: each forked worker has its
own count and its own jitter) and retires the worker when they are used
up.

Invariants: the filter never reads more than a head's worth of bytes; a
head the filter calls complete is one the worker can parse without waiting
for more input (or refuse without waiting); the options are validated
when `generate_handler` is called (in the master, before any fork); a
`Handler` never raises out of a connection except `MemoryError` (layer 2
then replaces the worker) and returns `False` only when the callback asked
the worker to retire or the worker answered `max_requests` requests.

Moonbridge: ``http.generate_handler``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from layer1_sockets import BufferedSocket
from layer2_prefork import MAX_BYTES, DispatchFilter, count_requests, requests_left

from ._connection import Connection, refusal
from ._counting import enabled as counting
from ._errors import log
from ._head import EMPTY_LINE_LIMIT
from ._options import Options, resolve_arguments
from ._proxy import describe_peer
from ._request import Request

__all__ = [
    "HEAD_SCAN",
    "Handler",
    "generate_handler",
    "head_arrived",
    "http_filter",
    "request_arrived",
]


class Handler:
    """A layer 2 ``connect`` handler that speaks HTTP (what `generate_handler` returns).

    Calling it with a connection serves that connection's requests. It
    returns `False` (the worker retires) only when the callback returned
    `False`; anything else the callback does never ends the worker.

    Attributes:
        callback: The HTTP callback.
        options: The validated options.
        dispatch_filter: When the master hands a connection to a worker: once
            a complete request head has arrived (`None` with TLS, whose
            connections go to a worker at once and stay there).
        counted: Whether its requests are counted for the metrics endpoint
            once metrics are on (`serve_metrics`); the endpoint's own are not.
    """

    def __init__(self, callback: Callable[[Request], object], options: Options) -> None:
        self.callback = callback
        self.options = options
        self.dispatch_filter: DispatchFilter | None = http_filter(options)
        # whether its requests count for the metrics endpoint (not the endpoint's own)
        self.counted = True

    def __call__(self, conn: object) -> bool:
        if not isinstance(conn, BufferedSocket):
            log(f"the HTTP handler was given {conn!r}, not a connection; ignored")
            return True
        if self.options.tls is not None and not self._handshake(conn):
            return True
        options = self.options
        budget = requests_left(options.max_requests, options.max_requests_jitter)
        connection = Connection(conn, self.callback, options, budget=budget,
                                count=self.counted and counting())
        connection.serve()
        if budget is not None:
            count_requests(connection.served)
        return not connection.retire

    def _handshake(self, conn: BufferedSocket) -> bool:
        """Run the TLS handshake; `False` (logged, connection reset) if it failed."""
        assert self.options.tls is not None
        try:
            conn.starttls(self.options.tls, server_side=True,
                          timeout=self.options.request_header_timeout)
        except OSError as error:  # ssl.SSLError, TimeoutError, resets
            log(f"{describe_peer(conn)}: TLS handshake failed: {error}")
            conn.reset()
            return False
        return True

    def __repr__(self) -> str:
        return f"<Handler {self.callback!r}>"


def generate_handler(callback: Any, options: Any = None, /, **overrides: Any) -> Handler:
    """Turn an HTTP callback into a ``connect`` handler for `layer2_prefork.listen`.

    The callback receives one `Request` per request. Options are checked
    here, before any fork: pass an `Options`, a mapping, keyword arguments,
    or several of them (later ones win). The callback and the options may
    come in either order, as in the original.

    Args:
        callback: ``callback(request)``; returning `False` retires the worker
            after this connection.
        options: An `Options`, a mapping of option names, or `None`.
        **overrides: Option names and values.

    Returns:
        The handler, to pass as ``connect=`` to `layer2_prefork.listen`.

    Raises:
        TypeError: No callable callback, or options of the wrong kind.
        ValueError: An unknown option or a wrong value (the message names it).

    Examples:
        >>> def app(request):
        ...     request.send_status("200 OK")
        ...     request.send_data("hello\\n")
        >>> handler = generate_handler(app, idle_timeout=10)
        >>> handler.options.idle_timeout
        10.0
        >>> generate_handler({"stall_timeout": 5}, app).options.stall_timeout
        5.0

    Moonbridge: ``http.generate_handler(callback, options)``.
    """
    resolved_callback, resolved = resolve_arguments(callback, options, overrides)
    return Handler(resolved_callback, resolved)


# -- the dispatch filter: when a held connection's request has arrived -------

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
        >>> head_arrived(b"GET / HTTP/1.1\\r\\nHost: a\\r\\n\\r\\n", 24)  # the end is new
        True
    """
    skip = _leading_empty_lines(data)
    if data.find(b"\r\n\r\n", max(skip, start - 3)) >= 0:
        return True
    begin = max(start - 1, 0)
    bare = data.count(b"\n", begin) - data.count(b"\r\n", begin)
    if 0 < begin < len(data) and data[begin] == 10 and data[begin - 1] == 13:  # a cut CRLF
        bare -= 1
    return bare > 0


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
