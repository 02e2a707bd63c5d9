"""The entry point: `generate_handler` turns an HTTP callback into a layer 2 handler.

Layer 2 calls a ``connect`` handler with each connection a worker is
given; layer 3's handler, a `Handler`, serves that connection's HTTP
requests with a `Connection` (see `_connection`) and returns, so the worker
is free for the next connection. A typical script::

    from layer2_prefork import TCP, listen, run
    from layer3_http import generate_handler

    def app(request):
        request.send_status("200 OK")
        request.send_data("hello\n")

    listen(TCP("127.0.0.1", 8080), connect=generate_handler(app, idle_timeout=10))
    run()

A `Handler` carries a `dispatch_filter` (see `_dispatch`), which
`layer2_prefork.listen` picks up: the master then holds new and parked
connections until their request head has arrived, so idle and slow
clients do not pin workers.

With the `tls` option each connection first runs the TLS handshake
(layer 1's `starttls`, bounded by `request_header_timeout`); a failed
handshake is logged in one line and the connection reset. With
`max_requests` the handler counts the requests its worker answered (each
forked worker has its own count) and retires the worker when they are
used up.

Invariants: the options are validated when `generate_handler` is called
(in the master, before any fork); a `Handler` never raises out of a
connection except `MemoryError` (layer 2 then replaces the worker) and
returns `False` only when the callback asked the worker to retire or the
worker answered `max_requests` requests.

Moonbridge: ``http.generate_handler``.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from typing import Any

from layer1_sockets import BufferedSocket
from layer2_prefork import DispatchFilter

from ._connection import Connection
from ._dispatch import http_filter
from ._errors import log
from ._options import Options, resolve_arguments
from ._proxy import describe_peer
from ._request import Request

__all__ = ["Handler", "generate_handler"]


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
    """

    def __init__(self, callback: Callable[[Request], object], options: Options) -> None:
        self.callback = callback
        self.options = options
        self.dispatch_filter: DispatchFilter | None = http_filter(options)
        self._process = 0
        self._limit = 0
        self._answered = 0

    def __call__(self, conn: object) -> bool:
        if not isinstance(conn, BufferedSocket):
            log(f"the HTTP handler was given {conn!r}, not a connection; ignored")
            return True
        if self.options.tls is not None and not self._handshake(conn):
            return True
        connection = Connection(conn, self.callback, self.options, budget=self._budget())
        connection.serve()
        self._answered += connection.served
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

    def _budget(self) -> int | None:
        """Requests this worker may still answer (`max_requests`), `None` for no limit."""
        limit = self.options.max_requests
        if limit is None:
            return None
        if self._process != os.getpid():  # the first connection in this worker
            self._process, self._answered = os.getpid(), 0
            jitter = self.options.max_requests_jitter
            self._limit = limit + (random.randint(0, jitter) if jitter else 0)
        return max(self._limit - self._answered, 1)

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
