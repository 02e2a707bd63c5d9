"""WSGI (PEP 3333) on the HTTP layer: any WSGI application as an HTTP callback.

`wsgi_callback(application)` returns a callback for `generate_handler`
(``python -m layer3_http --wsgi module:app`` does this for you). For each
request it builds the ``environ`` from the `Request`, calls the
application, and sends what it returns:

* ``wsgi.input`` is `Request.open_body`: the body streams in as the
  application reads it (chunked bodies too, ``wsgi.input_terminated``);
* ``REMOTE_ADDR``, ``REMOTE_PORT`` and ``wsgi.url_scheme`` come from
  `Request.client_address` and `Request.scheme`, so trusted proxy headers
  count; ``SERVER_NAME``/``SERVER_PORT`` from ``Host``; header fields whose
  name holds ``_`` are dropped (so ``X_Forwarded_For`` cannot pose as
  ``X-Forwarded-For``); the `Request` itself is ``environ["layer3_http.request"]``;
* ``start_response`` checks its arguments and honours ``exc_info`` (the
  status and headers may be replaced until the head is on the wire; after
  that the exception is raised again, and the connection is reset);
* the head goes out with the first non-empty piece of body (or at the
  end); every piece is sent before the next one is asked for, as PEP 3333
  requires, so streamed responses stream. A list or tuple is sent at once,
  with a ``Content-Length`` computed when the application gave none;
* ``write()`` (the return value of ``start_response``) sends at once;
* ``wsgi.file_wrapper`` wraps a file; a `FileWrapper` over a regular file
  is sent with ``os.sendfile`` (see `Request.send_file`);
* the iterable's ``close()`` is called whatever happens;
* bytes beyond a declared ``Content-Length`` are cut off (and logged); a
  response shorter than it ends with a reset, so the client notices.

Errors follow the HTTP layer's rules: an application that raises before
any byte of the head went out is answered with 500; later, the connection
is reset. Either way the traceback is logged.

Moonbridge: none; the original had its own callback API only.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Callable
from types import TracebackType
from typing import IO, Any
from urllib.parse import unquote_to_bytes

from ._errors import log
from ._head import BodyKind
from ._proxy import socket_address
from ._request import Request
from ._response import has_content

__all__ = ["FileWrapper", "wsgi_callback", "wsgi_environ"]

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]

_HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate",
                         "proxy-authorization", "te", "trailer", "trailers",
                         "transfer-encoding", "upgrade"})

class FileWrapper:
    """``wsgi.file_wrapper``: a file to send as the response body.

    Iterating gives blocks of `block_size` bytes (any server can send it
    that way); this server sends a regular file with ``os.sendfile``
    instead, from the file's current position to its end.

    Args:
        filelike: A file object opened for reading in binary mode.
        block_size: The size of each block when iterated.
    """

    def __init__(self, filelike: IO[bytes], block_size: int = 65536) -> None:
        self.filelike = filelike
        self.block_size = block_size

    def __iter__(self) -> FileWrapper:
        return self

    def __next__(self) -> bytes:
        block = self.filelike.read(self.block_size)
        if not block:
            raise StopIteration
        return block

    def close(self) -> None:
        """Close the file."""
        close = getattr(self.filelike, "close", None)
        if callable(close):
            close()

    def span(self) -> tuple[int, int, int] | None:
        """`(fd, offset, count)` to `sendfile` from, or `None` if not a regular file."""
        try:
            fd = self.filelike.fileno()
            info = os.fstat(fd)
            offset = self.filelike.tell()
        except (AttributeError, OSError, ValueError):
            return None
        if not stat.S_ISREG(info.st_mode):
            return None
        return fd, offset, max(info.st_size - offset, 0)


def _server_address(request: Request) -> tuple[str, str]:
    """``SERVER_NAME`` and ``SERVER_PORT`` from ``Host``, else the local socket."""
    default = "443" if request.scheme == "https" else "80"
    authority = request.head.authority
    if authority:
        if authority.startswith("["):
            host, _, rest = authority[1:].partition("]")
            port = rest[1:] if rest.startswith(":") else ""
        else:
            host, _, port = authority.partition(":")
        return host, port or default
    sock = request.socket
    address = socket_address(sock, local=True)
    if address is None or sock.local_tcpport is None:
        return "localhost", default
    return address, str(sock.local_tcpport)


def wsgi_environ(request: Request, script_name: str = "") -> dict[str, Any]:
    """Build the WSGI ``environ`` of a request (PEP 3333).

    Args:
        request: The request.
        script_name: Where the application is mounted (``SCRIPT_NAME``,
            without a trailing slash); a path below it loses that prefix
            in ``PATH_INFO``.

    Returns:
        The environ; ``wsgi.input`` reads the body as it arrives.
    """
    path = request.path
    path_info = "" if path is None else unquote_to_bytes("/" + path).decode("latin-1")
    if script_name and (path_info == script_name or path_info.startswith(script_name + "/")):
        path_info = path_info[len(script_name):]
    name, port = _server_address(request)
    head = request.head
    environ: dict[str, Any] = {
        "REQUEST_METHOD": request.method, "SCRIPT_NAME": script_name, "PATH_INFO": path_info,
        "QUERY_STRING": (request.query or "")[1:], "RAW_URI": head.target,
        "REQUEST_URI": head.target, "SERVER_NAME": name, "SERVER_PORT": port,
        "SERVER_PROTOCOL": f"HTTP/{head.version[0]}.{head.version[1]}",
        "SERVER_SOFTWARE": "layer3_http",
        "wsgi.version": (1, 0), "wsgi.url_scheme": request.scheme,
        "wsgi.input": request.open_body(), "wsgi.errors": sys.stderr,
        "wsgi.multithread": False, "wsgi.multiprocess": True, "wsgi.run_once": False,
        "wsgi.file_wrapper": FileWrapper, "wsgi.input_terminated": True,
        "layer3_http.request": request,
    }
    if request.client_address is not None:
        environ["REMOTE_ADDR"] = request.client_address
    if request.origin.port is not None:
        environ["REMOTE_PORT"] = str(request.origin.port)
    if head.body_kind is BodyKind.LENGTH:
        environ["CONTENT_LENGTH"] = str(head.content_length)
    for field, value in head.headers:
        if "_" in field:
            continue  # X_Forwarded_For must not pose as X-Forwarded-For
        key = field.upper().replace("-", "_")
        if key == "CONTENT_LENGTH":
            continue
        if key != "CONTENT_TYPE":
            key = "HTTP_" + key
        if key in environ:
            environ[key] += ("; " if key == "HTTP_COOKIE" else ", ") + value
        else:
            environ[key] = value
    return environ


class _Response:
    """The ``start_response`` and ``write`` of one request, and what they sent."""

    def __init__(self, request: Request) -> None:
        self.request = request
        self.status: str | None = None
        self.headers: list[tuple[str, str]] = []
        self.head_sent = False
        self.length: int | None = None  # a Content-Length the application declared
        self.sent = 0
        self.cut = False

    def start_response(self, status: str, headers: list[tuple[str, str]],
                       exc_info: ExcInfo | None = None) -> Callable[[bytes], None]:
        if exc_info is not None:
            try:
                if self.head_sent:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None  # no reference cycle through the traceback
        elif self.status is not None:
            raise RuntimeError("start_response() called a second time without exc_info")
        if not isinstance(status, str):
            raise TypeError(f"the WSGI status must be a str, not {status!r}")
        if not isinstance(headers, list) or not all(
                isinstance(item, tuple) and len(item) == 2
                and isinstance(item[0], str) and isinstance(item[1], str) for item in headers):
            raise TypeError("the WSGI headers must be a list of (str, str) tuples")
        for name, _ in headers:
            if name.lower() in _HOP_BY_HOP:
                raise ValueError(f"a WSGI application must not send the header {name!r}")
        self.status, self.headers = status, headers
        self.length = next((int(value) for name, value in headers
                            if name.lower() == "content-length" and value.strip().isdigit()),
                           None)
        return self.write

    def send_head(self, length: int | None = None) -> None:
        """Send the status and headers (adding `Content-Length` if given and none was)."""
        if self.head_sent:
            return
        if self.status is None:
            raise RuntimeError("the WSGI application did not call start_response()")
        request = self.request
        request.send_status(self.status)
        for name, value in self.headers:
            request.send_header(name, value)
        if self.length is None and length is not None and (
                has_content(request.writer.status_code)) and (
                length or request.method != "HEAD"):
            request.send_header("Content-Length", length)
            self.length = length
        self.head_sent = True

    def write(self, data: bytes, flush: bool = True) -> None:
        """Send a piece of body now (the ``write`` callable; also each yielded piece)."""
        if not isinstance(data, bytes | bytearray):
            raise TypeError(f"a WSGI application must send bytes, not {type(data).__name__}")
        if not data:
            return
        self.send_head()
        if not has_content(self.request.writer.status_code):
            return  # 204, 205, 304: what the application gives as a body is dropped
        if self.length is not None and self.sent + len(data) > self.length:
            data = data[:self.length - self.sent]
            if not self.cut:
                self.cut = True
                log(f"the WSGI application sent more than its Content-Length "
                    f"of {self.length}; the rest is cut off")
        self.sent += len(data)
        if data:
            self.request.send_data(bytes(data))
        if flush:
            self.request.flush()

    def send_all(self, pieces: list[bytes] | tuple[bytes, ...]) -> None:
        """Send a list or tuple of pieces with a known length, in as few writes as possible."""
        if not all(isinstance(piece, bytes | bytearray) for piece in pieces):
            raise TypeError("a WSGI application must send bytes")
        self.send_head(sum(len(piece) for piece in pieces))
        for piece in pieces:
            self.write(piece, flush=False)

    def send_file(self, wrapper: FileWrapper) -> bool:
        """Send a wrapped regular file with `sendfile`; `False` if it is not one."""
        span = wrapper.span()
        if span is None:
            return False
        fd, offset, count = span
        self.send_head(count)
        if not has_content(self.request.writer.status_code):
            return True  # nothing to send: the file is dropped like any other body
        if self.length is not None:
            count = min(count, self.length - self.sent)
        self.sent += count
        self.request.send_file(fd, offset, count)
        return True


def wsgi_callback(application: Callable[..., Any], *,
                  script_name: str = "") -> Callable[[Request], None]:
    """Turn a WSGI application into an HTTP callback for `generate_handler`.

    Args:
        application: ``application(environ, start_response)``, PEP 3333.
        script_name: The mount point (``SCRIPT_NAME``), e.g. ``"/app"``.

    Returns:
        The callback.

    Raises:
        TypeError: `application` is not callable.

    Examples:
        >>> def application(environ, start_response):
        ...     start_response("200 OK", [("Content-Type", "text/plain")])
        ...     return [b"hello\\n"]
        >>> callback = wsgi_callback(application)  # for generate_handler(callback)
        >>> callable(callback)
        True
    """
    if not callable(application):
        raise TypeError(f"a WSGI application must be callable, not {application!r}")
    script_name = script_name.rstrip("/")

    def serve_wsgi(request: Request) -> None:
        response = _Response(request)
        result = application(wsgi_environ(request, script_name), response.start_response)
        try:
            if isinstance(result, FileWrapper) and response.send_file(result):
                pass
            elif isinstance(result, list | tuple):
                response.send_all(result)
            else:
                for piece in result:
                    response.write(piece)
            response.send_head(0 if not response.head_sent else None)
            request.finish()
        finally:
            close = getattr(result, "close", None)
            if callable(close):
                close()

    serve_wsgi.__qualname__ = f"wsgi_callback({getattr(application, '__name__', application)})"
    return serve_wsgi
