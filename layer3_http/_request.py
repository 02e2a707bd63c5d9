"""The request object a handler receives: what was asked, and how to answer.

One `Request` exists per request on a connection. It joins three parts:

* the parsed head (`RequestHead`) and the read-only views built from it:
  `method`, `path`, `query`, the five header tables, `cookies`,
  `get_params` and `get_params_list`;
* the body side, `RequestInput`, with the sink the handler's first use of
  the body chooses (`body`, `stream_request_body`, `post_params`, ...);
* the response side, `ResponseWriter`, whose bytes it writes through the
  connection's `Wire`.

Theory of operation, the request's life in words. A handler first reads
what it needs; reading the body or the form fields blocks until they have
arrived. Stream handlers for form fields must be registered before the
body is processed. Then it answers: `send_status`, any `send_header`,
`send_data` as often as it likes, and `finish` (called for it when it
returns). Starting the response starts body processing too, unless
`defer_reading` was called: form bodies then go to the form parser, any
other body is discarded, and while the response is written the body is
read whenever a write would block, so a client that sends everything
before it reads cannot deadlock the server. After the response, what is
left of the body is drained within `drain_size_limit` and `drain_timeout`
(fed to the form parser, so its stream handlers see it), or the connection
closes (see `_connection`); a handler that needs the form reads it before
it answers. ``100 Continue`` goes out only when the handler reads the body.

Invariants: a failed read or write on the connection sets `faulty` and
raises the `OSError`; every later use of the object raises
`RequestAPIError`; `finish` may be called any number of times.

Moonbridge: the request object of ``http.generate_handler``.
"""

from __future__ import annotations

import io
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import IO, TypeVar

from layer1_sockets import BufferedSocket

from ._errors import RequestAPIError
from ._forms import PostMetadata, PostStream
from ._head import RequestHead
from ._input import RequestInput
from ._options import Options
from ._proxy import Origin
from ._reading import BodyReader
from ._response import ResponseWriter, as_bytes, parse_status
from ._tables import FirstValues, HeadViews, ValueLists
from ._wire import Wire

__all__ = ["Request"]

_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_FILE_BLOCK = 65536
T = TypeVar("T")


class Request(HeadViews):
    """One HTTP request and its response.

    Created by the connection for each request; handlers receive it and
    never construct it.

    Attributes:
        method: The request method, e.g. ``"GET"`` (case-sensitive).
        path: The path without its leading ``/`` and without the query, not
            percent-decoded (``"index.html"``); `None` only for ``OPTIONS *``.
        query: The query with its leading ``?`` (``"?a=b"``), or ``""``;
            `None` only for ``OPTIONS *``.
        headers: Field name (any case) -> list of raw values, one per line.
        headers_csv_table: Field name -> the comma-separated items of all lines.
        headers_csv_string: Field name -> all lines joined by ``", "``.
        headers_value: Field name -> the value if sent on one line, `False`
            if on several, `None` if absent.
        headers_flags: Field name -> item -> `bool`, case-insensitive
            (``request.headers_flags["Connection"]["close"]``).
        cookies: Cookie name -> value.
        get_params: Query field -> its first value.
        get_params_list: Query field -> all its values (``[]`` when absent).
        socket: The connection's buffered socket (to reset it, for instance).
        head: The parsed head (version, raw target, authority, ...).
        started: When the head had arrived (`time.time()`).

    Moonbridge: the request object passed to the callback of
    ``http.generate_handler``.
    """

    def __init__(self, wire: Wire, head: RequestHead, options: Options) -> None:
        self.head = head
        self.method: str = head.method
        self.path: str | None = head.path
        self.query: str | None = head.query
        # The header tables, cookies and get_params are built on first use (HeadViews).
        if head.query is not None and len(head.query) > 20000:
            _ = self.get_params  # a query this long may hold too many fields: 413 now
        self.socket: BufferedSocket = wire.sock
        self._wire = wire
        self._options = options
        self._writer = ResponseWriter(
            version=head.version, head_request=head.method == "HEAD",
            keep_alive=head.keep_alive, static_fields=options.static_fields,
            minimum_chunk_size=options.output_chunk_size)
        self._input = RequestInput(wire, head, options, self._send_continue)
        self._reader = BodyReader(self._input, head, options.input_chunk_size)
        self._faulty = False
        self._deferred = False
        self._origin: Origin | None = None
        self.started = time.time()

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.head.target}>"

    # -- state -----------------------------------------------------------------

    @property
    def faulty(self) -> bool:
        """`True` once a read or write on the connection failed.

        The `OSError` that caused it was raised; any further use of the
        request raises `RequestAPIError`.

        Moonbridge: ``request.faulty``.
        """
        return self._faulty

    @property
    def writer(self) -> ResponseWriter:
        """The response state (for the connection; handlers need not look)."""
        return self._writer

    @property
    def input(self) -> RequestInput:
        """The body state (for the connection; handlers need not look)."""
        return self._input

    def _check_usable(self) -> None:
        if self._faulty:
            raise RequestAPIError("the connection failed earlier; this request is faulty")

    def _send(self, parts: Sequence[bytes], flush: bool) -> None:
        try:
            self._wire.write(parts, flush)
        except OSError:
            self._faulty = True
            raise

    def _reading(self, action: Callable[[], T]) -> T:
        """Run a body read; a failure of the connection makes the request faulty."""
        self._check_usable()
        try:
            return action()
        except OSError:
            self._faulty = True
            raise

    def _send_continue(self) -> None:
        if not self._writer.committed:
            self._send([_CONTINUE], flush=True)

    # -- who is asking ------------------------------------------------------------

    @property
    def origin(self) -> Origin:
        """Who sent the request, an `Origin` (trusted proxy headers applied).

        Its `peer` is the socket's peer (the proxy, behind one); `address`,
        `port` and `scheme` are the client's, as the trusted proxies tell
        (see `TrustedProxies` and the `forwarded_allow_ips` option).
        """
        if self._origin is None:
            self._origin = self._options.trusted_proxies.resolve(
                self._wire.peer_address, self.socket.remote_tcpport, self.socket.tls,
                self.head.headers)
        return self._origin

    @property
    def client_address(self) -> str | None:
        """The client's IP address (`origin.address`); `None` for a Unix socket peer."""
        return self.origin.address

    @property
    def scheme(self) -> str:
        """``"https"`` on TLS or when a trusted proxy says so, else ``"http"`` (`origin.scheme`)."""
        return self.origin.scheme

    # -- the body ----------------------------------------------------------------

    @property
    def body(self) -> bytes:
        """The whole request body (``b""`` when there is none); read on first access.

        Raises:
            RequestAPIError: The body already went elsewhere (a stream, the
                form parser, discarded), or form-field stream handlers are
                registered.
            ClientError: The body is malformed, too large or cut short.

        Moonbridge: ``request.body``.
        """
        return self._reading(self._reader.body)

    def stream_request_body(self, callback: Callable[[bytes], object] | None) -> None:
        """Read the body now, passing each piece to `callback`; return at its end.

        Pieces are at most `maximum_input_chunk_size` bytes and never empty.
        With `None` the body is read and discarded; that is also allowed
        (and does nothing more) once the body was processed otherwise.

        Raises:
            RequestAPIError: With a callback, when the body is already being
                processed or form-field stream handlers are registered.
            ClientError: The body is malformed, too large, cut short or late.

        Moonbridge: ``request:stream_request_body(callback)``.
        """
        self._reading(lambda: self._reader.stream(callback))

    def open_body(self) -> io.BufferedReader:
        """A binary file object that reads the body as it arrives (WSGI's ``wsgi.input``).

        Reads block until the bytes are there (each wait bounded by
        `stall_timeout`) and give ``b""`` at the end, chunked bodies included;
        ``100 Continue`` goes out before the first read. What the handler does
        not read is discarded after the response. After `body`, it reads that.

        Raises:
            RequestAPIError: The body already went elsewhere (a stream, the form parser).
        """
        self._check_usable()
        return self._reader.open(self._reading)

    def stream_post_param(self, field_name: str, callback: PostStream) -> None:
        """Stream the form field `field_name` to `callback` instead of collecting it.

        For each such field the callback is called with ``(first_chunk,
        metadata)`` (``b""`` for an empty field), then ``(chunk)`` for each
        further piece, then with no arguments at its end. The metadata is a
        `PostMetadata`. Memory use stays flat whatever the field's size.
        An urlencoded field goes to its handler in one chunk.

        Raises:
            RequestAPIError: The body processing has already begun.
            TypeError: `callback` is not callable.

        Moonbridge: ``request:stream_post_param(field_name, callback)``.
        """
        self._check_usable()
        self._reader.register(field_name, None, callback)

    def stream_post_params(self, pattern: str | re.Pattern[str], callback: PostStream) -> None:
        """Like `stream_post_param`, for every field whose name `pattern` matches.

        `pattern` is a Python regular expression, matched with `re.search`
        (anchor it: ``r"^file_[0-9]+$"``). Exact names registered with
        `stream_post_param` win; patterns are tried in registration order.

        Moonbridge: ``request:stream_post_params(pattern, callback)``
        (a Lua pattern there).
        """
        self._check_usable()
        self._reader.register(None, pattern, callback)

    def process_request_body(self) -> None:
        """Read the whole body now and parse it as a form.

        Afterwards `post_params` and friends are set and every registered
        stream handler has received all its data. Does nothing more when
        the body was already processed.

        Moonbridge: ``request:process_request_body()``.
        """
        self._reading(self._reader.process)

    @property
    def post_params(self) -> Mapping[str, str]:
        """Form field -> its first value; reading it processes the body.

        Filled for ``application/x-www-form-urlencoded`` and
        ``multipart/form-data`` bodies (values decoded as UTF-8, so stream
        binary files with `stream_post_param` instead); empty for any other
        content type. Fields given to a stream handler are not here.

        Moonbridge: ``request.post_params``.
        """
        return FirstValues(self._reading(self._reader.form).params)

    @property
    def post_params_list(self) -> Mapping[str, list[str]]:
        """Form field -> all its values (``[]`` when absent).

        Moonbridge: ``request.post_params_list``.
        """
        return ValueLists(self._reading(self._reader.form).params)

    @property
    def post_metadata(self) -> Mapping[str, PostMetadata]:
        """Multipart field -> the `PostMetadata` of its first part (file name, type).

        Moonbridge: ``request.post_metadata``.
        """
        return FirstValues(self._reading(self._reader.form).metadata)

    @property
    def post_metadata_list(self) -> Mapping[str, list[PostMetadata]]:
        """Multipart field -> the `PostMetadata` of all its parts.

        Moonbridge: ``request.post_metadata_list``.
        """
        return ValueLists(self._reading(self._reader.form).metadata)

    def defer_reading(self) -> None:
        """Do not read the body automatically when the response starts or blocks.

        Lets a handler answer before the body has arrived (and read it
        later, or never). Beware: a client that sends its whole body before
        reading can then deadlock with a large response; only stall
        timeouts end that. And a client waiting for ``100 Continue`` gets
        none once the response head went out: it sends the body after a
        wait of its own (curl waits one second), or not at all.

        Moonbridge: ``request:defer_reading()``.
        """
        self._deferred = True
        self._input.defer()

    # -- the response ------------------------------------------------------------

    def send_status(self, status: str | int) -> None:
        """Begin the response with a status such as ``"200 OK"`` (or ``200``).

        Must come before any header or data. A 1xx status sends an
        interim response (end it with `finish_headers`); then a final
        status may follow. The first final status starts body processing
        (see the module docs) unless `defer_reading` was called.

        Raises:
            ValueError: Not a status line (or a phrase with CR/LF).
            RequestAPIError: A final status was already sent.

        Moonbridge: ``request:send_status(status_string)``.
        """
        self._check_usable()
        code = parse_status(status)[0]
        parts = self._writer.status(status)
        if code == 100:
            self._input.note_continue_sent()
        if parts:
            self._send(parts, flush=False)
        if self._writer.final_status_given and not self._deferred and self._input.sink is None:
            self._reader.start(self._writer.close_after_finish)

    def send_header(self, name: str, value: str | int) -> None:
        """Add a response header field (after `send_status`, before any data).

        Raises:
            ValueError: The name is not a token, or the value holds CR, LF
                or NUL (no header injection).
            RequestAPIError: No status yet, or the headers are finished.

        Moonbridge: ``request:send_header(key, value)``.
        """
        self._check_usable()
        self._writer.header(name, value)

    def finish_headers(self) -> None:
        """End the header section and send (flush) the head.

        Not needed normally: the first `send_data` or `finish` ends it.
        Without a `Content-Length` the body is then chunked (or, to an
        HTTP/1.0 client, close-delimited).

        Moonbridge: ``request:finish_headers()``.
        """
        self._check_usable()
        self._send(self._writer.finish_headers(), flush=True)

    def send_data(self, *data: object) -> None:
        """Send response body data: `bytes` as they are, `str` as UTF-8, anything else via `str`.

        Data is collected until `minimum_output_chunk_size` bytes are
        pending. For a HEAD request it is counted (for `Content-Length`) but
        not sent.

        Raises:
            RequestAPIError: No final status, a status without a body, or
                more data than a declared `Content-Length`.

        Moonbridge: ``request:send_data(...)``.
        """
        self._check_usable()
        for item in data:
            parts = self._writer.data(as_bytes(item))
            if parts:
                self._send(parts, flush=False)

    def send_file(self, file: IO[bytes] | int, offset: int = 0, count: int | None = None) -> None:
        """Send `count` bytes (default: to its end) of an open file from `offset` as body data.

        When the body is not chunked (a `Content-Length` was sent) and the
        connection is not TLS, the kernel copies the bytes (``os.sendfile``).

        Args:
            file: A binary file object or a file descriptor.
            offset: Where to start in the file.
            count: How many bytes; `None` for the rest of the file.

        Raises:
            OSError: The file ends before `count` bytes, or the connection failed.

        Moonbridge: none; the static file handler sends its files with it.
        """
        self._check_usable()
        fd = file if isinstance(file, int) else file.fileno()
        if count is None:
            count = max(os.fstat(fd).st_size - offset, 0)
        parts = self._writer.raw_body(count)
        if parts is None:
            self._send_blocks(fd, offset, count)
            return
        self._send(parts, flush=False)
        if count and not self._writer.bodyless:
            try:
                self._wire.sendfile(fd, offset, count)
            except OSError:
                self._faulty = True
                raise

    def _send_blocks(self, fd: int, offset: int, count: int) -> None:
        while count > 0:
            block = os.pread(fd, min(count, _FILE_BLOCK), offset)
            if not block:
                raise OSError(f"the file ended {count} bytes early")
            self.send_data(block)
            offset += len(block)
            count -= len(block)

    def flush(self) -> None:
        """Send all pending response data now (the head too, once the body began).

        Moonbridge: ``request:flush()``.
        """
        self._check_usable()
        self._send(self._writer.flush(), flush=True)

    def finish(self) -> None:
        """Complete and flush the response; called for the handler when it returns.

        May be called several times.

        Raises:
            RequestAPIError: No final status was sent, or fewer bytes than
                the declared `Content-Length`.

        Moonbridge: ``request:finish()``.
        """
        if self._writer.finished:
            return
        self._check_usable()
        self._send(self._writer.finish(), flush=True)

    def close_after_finish(self) -> None:
        """Close the connection after this response (sends `Connection: close`).

        Raises:
            RequestAPIError: The headers are already finished.

        Moonbridge: ``request:close_after_finish()``.
        """
        self._check_usable()
        self._writer.close_after_finish()

    def monologue(self) -> None:
        """Answer without reading the body: it is ignored and the connection closes after.

        For responses that do not depend on the body (an error page, a
        redirect). No ``100 Continue`` is sent; what the client sends is
        discarded while the connection closes.

        Raises:
            RequestAPIError: The headers are already finished.

        Moonbridge: ``request:monologue()`` (from the original's later releases).
        """
        self._check_usable()
        self._writer.close_after_finish()
        self._input.abandon()

