"""The HTTP layer's errors: the client's fault apart from the handler's.

Two kinds of failure meet in an HTTP server and they need different answers:

* `ClientError`: the bytes the client sent break the protocol or a limit.
  It carries the status to answer with (400, 413, 414, 431, 505, ...); the
  server sends that status, closes the connection and the worker lives on.
  Every parser in this package raises `ClientError` and nothing else on bad
  input, whatever the input.
* `RequestAPIError`: the handler used the request object the wrong way
  (a header after the body started, a second status line, ...). That is a
  programming error, so it is a `RuntimeError`, and the traceback is logged.

Both derive from `HTTPError`, so `except HTTPError` catches everything this
package raises on purpose. Bad argument values (a header value holding CR
or LF) stay plain `ValueError`, as in the rest of Python.

A worker reports what went wrong in one way, `log`: a line on its stderr,
which layer 2 turns into a line of the server's log with the pool and the
worker's PID in front. (The access log is a channel of its own, see
`_accesslog`.)

Moonbridge: the original raised Lua errors with a message string and
answered most framing problems with a bare "400 Bad Request".
"""

from __future__ import annotations

import sys
import traceback
from http import HTTPStatus

__all__ = ["ClientError", "HTTPError", "RequestAPIError", "log", "reason_phrase"]

# Phrases as RFC 9110 names them (Python 3.11's HTTPStatus still has the
# RFC 7231 names for 413 and 414).
_PHRASES = {
    400: "Bad Request",
    408: "Request Timeout",
    411: "Length Required",
    413: "Content Too Large",
    414: "URI Too Long",
    417: "Expectation Failed",
    431: "Request Header Fields Too Large",
    501: "Not Implemented",
    505: "HTTP Version Not Supported",
}


def reason_phrase(status: int) -> str:
    """Return the standard reason phrase for a status code.

    Args:
        status: A three-digit HTTP status code.

    Returns:
        The phrase RFC 9110 gives the code, or `""` for an unknown code.

    Examples:
        >>> reason_phrase(431)
        'Request Header Fields Too Large'
        >>> reason_phrase(299)
        ''
    """
    if status in _PHRASES:
        return _PHRASES[status]
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


class HTTPError(Exception):
    """Base class of the errors the HTTP layer raises on purpose."""


class ClientError(HTTPError):
    """The client sent something the server will not accept.

    The server answers with `status_line` (for example `"400 Bad Request"`)
    and closes the connection.

    Args:
        status: The status code to answer with (4xx or 5xx).
        detail: What exactly was wrong, for the log (never sent as is).

    Attributes:
        status: The status code to answer with.
        reason: The standard reason phrase of `status`.
        detail: The explanation given when the error was raised.

    Examples:
        >>> error = ClientError(414, "request line longer than 8192 bytes")
        >>> error.status_line
        '414 URI Too Long'
        >>> str(error)
        '414 URI Too Long: request line longer than 8192 bytes'
    """

    def __init__(self, status: int, detail: str) -> None:
        if not 400 <= status <= 599:
            raise ValueError(f"a client error needs a 4xx or 5xx status, not {status}")
        self.status = status
        self.reason = reason_phrase(status)
        self.detail = detail
        super().__init__(status, detail)

    @property
    def status_line(self) -> str:
        """The status and reason phrase, as `send_status` takes them."""
        return f"{self.status} {self.reason}"

    def __str__(self) -> str:
        return f"{self.status_line}: {self.detail}"


class RequestAPIError(HTTPError, RuntimeError):
    """The handler called the request API out of order or after the end.

    This is a bug in the handler, not in the client's request, so it is a
    `RuntimeError`: the worker logs the traceback and, if nothing was sent
    yet, answers 500.

    Moonbridge: the original raised a Lua error such as "Attempt to send
    header after status was sent".
    """


def log(message: str, error: BaseException | None = None) -> None:
    """Write a line (and a traceback, if `error` is given) to stderr, the worker's log."""
    text = f"layer3_http: {message}\n"
    if error is not None:
        text += "".join(traceback.format_exception(error))
    try:
        sys.stderr.write(text)
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
