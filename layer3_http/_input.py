"""The request body on the socket side: when it is read, and where it goes.

`RequestInput` owns the body decoder of one request (`body_decoder`) and
hands the decoded pieces to one *sink*, chosen by what the handler does
first:

| the handler | sink |
| --- | --- |
| reads `request.body` | `Collect` (the bytes, kept) |
| calls `stream_request_body(callback)` | `Stream` (each piece to the callback) |
| reads `post_params` & co., `process_request_body()` | the form parser (`_post.FormSink`) |
| starts the response before any of these | the form parser; `Discard` for other types |
| calls `stream_request_body(None)`, `monologue()` | `Discard` |
| calls `open_body()` (WSGI's ``wsgi.input``) | `Pull` (pieces kept until read) |

Once a sink is attached it stays; the body is read into it either *now*
(`read_all`, which blocks, each wait bounded by `stall_timeout`) or *when
possible* (`read_available`, called by a blocked response write, see
`_wire`), or, once the response is done, drained (`drain`): read within
`drain_size_limit` and `drain_timeout` into the sink (a `Pull` sink's
pieces are dropped), whatever the sink, or the connection closes.

A `Pull` sink is filled one read at a time (`read_step`) as the handler
reads its file object; after the response the rest of such a body is
drained like a discarded one.

`Expect: 100-continue` is honoured lazily: the interim ``100 Continue``
goes out just before the handler reads the first body byte (`read_all`,
`read_step`), never for a blocked write or a drain. A body nobody asked
for is never invited: if the response starts first, the client is told
nothing and the connection closes after the response.

Invariants: the decoder never reads past the body, so the next pipelined
request stays in the socket's buffer; a `ClientError` in the body is
sticky (every later read raises it again); a sink sees `feed` only
before its single `end`.

Moonbridge: the body half of ``generate_handler`` (``read_body``,
``consume``, ``drain``, ``process_body_chunk``).
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

from ._errors import ClientError, RequestAPIError
from ._framing import Data, body_decoder
from ._head import RequestHead
from ._options import Options
from ._wire import Wire

__all__ = ["Collect", "Discard", "Pull", "RequestInput", "Sink", "Stream"]

_AVAILABLE_READS = 16  # receives one non-blocking read_available makes at most
_BLOCK_SIZE = 256 * 1024
_BLOCK = memoryview(bytearray(_BLOCK_SIZE))
"""The buffer a plain socket's body is received into, reused for every read.

One per process: a worker reads one request at a time, and the decoders
copy out of it only the pieces they return, before the next receive."""


class Sink(Protocol):
    """Where decoded body pieces go."""

    def feed(self, piece: bytes) -> None:
        """Take one piece (never empty)."""
        ...

    def end(self) -> None:
        """The body is complete."""
        ...


class Discard:
    """A sink that drops everything."""

    def feed(self, piece: bytes) -> None:
        """Drop the piece."""

    def end(self) -> None:
        """Nothing to do."""


class Collect:
    """A sink that keeps the whole body (bounded by `request_body_size_limit`)."""

    def __init__(self) -> None:
        self._pieces: list[bytes] = []

    def feed(self, piece: bytes) -> None:
        """Keep the piece."""
        self._pieces.append(piece)

    def end(self) -> None:
        """Join the pieces."""
        self._pieces = [b"".join(self._pieces)]

    @property
    def value(self) -> bytes:
        """The body received so far."""
        return b"".join(self._pieces)


class Stream:
    """A sink that passes each piece to a callback (`stream_request_body`)."""

    def __init__(self, callback: Callable[[bytes], object]) -> None:
        self._callback = callback

    def feed(self, piece: bytes) -> None:
        """Call the callback with the piece."""
        self._callback(piece)

    def end(self) -> None:
        """The end is told by `stream_request_body` returning, not by a call."""


class Pull:
    """A sink that keeps pieces until the handler takes them (`Request.open_body`)."""

    def __init__(self) -> None:
        self._pieces: deque[bytes] = deque()
        self.ended = False

    def feed(self, piece: bytes) -> None:
        """Keep the piece for a later `take`."""
        self._pieces.append(piece)

    def end(self) -> None:
        """The body is complete: once the kept pieces are taken, reads return ``b""``."""
        self.ended = True

    @property
    def empty(self) -> bool:
        """No piece is kept."""
        return not self._pieces

    def take(self, maxlen: int) -> bytes:
        """Return up to `maxlen` kept bytes (``b""`` when none is kept)."""
        if not self._pieces:
            return b""
        piece = self._pieces.popleft()
        if len(piece) > maxlen:
            self._pieces.appendleft(piece[maxlen:])
            piece = piece[:maxlen]
        return piece


class RequestInput:
    """The body of one request: decoder, sink and the rules for reading it.

    Args:
        wire: The connection.
        head: The request head (its framing and `Expect`).
        options: Limits and timeouts.
        send_continue: Writes the interim ``100 Continue`` response.

    Raises:
        ClientError: 413 when a `Content-Length` is past the body limit.
    """

    def __init__(self, wire: Wire, head: RequestHead, options: Options,
                 send_continue: Callable[[], None]) -> None:
        self._wire = wire
        self._options = options
        self._decoder = body_decoder(head, body_size_limit=options.request_body_size_limit,
                                     piece_size=options.input_chunk_size)
        self._send_continue = send_continue
        self._continue_pending = head.expect_continue and not self._decoder.done
        self._sink: Sink | None = None
        self._ended = False
        self._error: ClientError | None = None
        self._abandoned = False
        self._deferred = False

    # -- state -----------------------------------------------------------------

    @property
    def complete(self) -> bool:
        """The whole body has been received (and given to the sink, if any)."""
        return self._decoder.done and (self._sink is None or self._ended)

    @property
    def received(self) -> int:
        """Body bytes received so far, as decoded (chunk framing not counted)."""
        return self._decoder.received

    @property
    def sink(self) -> Sink | None:
        """The attached sink, or `None` while the handler has not chosen one."""
        return self._sink

    @property
    def error(self) -> ClientError | None:
        """The client error met while reading the body, if any."""
        return self._error

    @property
    def abandoned(self) -> bool:
        """The body will not be read; the connection closes after the response."""
        return self._abandoned

    @property
    def continue_pending(self) -> bool:
        """The client waits for ``100 Continue`` before it sends the body."""
        return self._continue_pending

    def defer(self) -> None:
        """Stop reading the body while the response is written (`defer_reading`)."""
        self._deferred = True

    def note_continue_sent(self) -> None:
        """The handler sent ``100 Continue`` itself."""
        self._continue_pending = False

    def abandon(self) -> None:
        """Give up on the body: no more reading, no ``100 Continue``, close afterwards."""
        if not self.complete:
            self._abandoned = True
            self._continue_pending = False
            self._sink = Discard()

    # -- choosing the sink -----------------------------------------------------

    def attach(self, sink: Sink, *, quiet: bool = False) -> None:
        """Send the body to `sink` from now on.

        Args:
            sink: The sink.
            quiet: Keep a `ClientError` of the sink's end (an empty body it
                rejects) instead of raising it; for the automatic start.

        Raises:
            RequestAPIError: A sink is already attached.
            ClientError: See `quiet`.
        """
        if self._sink is not None:
            raise RequestAPIError("the request body is already being processed")
        self._sink = sink
        if self._decoder.done:
            self._end(quiet)

    def _end(self, quiet: bool) -> None:
        assert self._sink is not None
        if self._ended:
            return
        self._ended = True
        try:
            self._sink.end()
        except ClientError as error:
            self._error = error
            if not quiet:
                raise

    # -- reading -----------------------------------------------------------------

    def _check(self) -> None:
        if self._error is not None:
            raise self._error
        if self._abandoned:
            raise RequestAPIError("the request body was abandoned (monologue, or answered first)")

    def _before_read(self) -> None:
        if self._continue_pending:
            self._continue_pending = False
            self._send_continue()

    def read_all(self) -> None:
        """Read the rest of the body into the sink now, blocking as needed.

        Raises:
            ClientError: The body is malformed, too large, cut short, or
                late (408 after `stall_timeout`); also every later call.
            RequestAPIError: No sink is attached, or the body was abandoned.
            OSError: The connection failed.
        """
        self._check()
        if self._sink is None:
            raise RequestAPIError("no sink attached to the request body")
        try:
            while not self._decoder.done:
                self._before_read()
                data = self._receive(wait=True)
                if not data:
                    raise ClientError(400, "connection closed inside the request body")
                self._feed(data, self._sink)
        except ClientError as error:
            self._error = error
            raise
        self._end(quiet=False)

    def read_step(self) -> bool:
        """Read once (blocking, up to `stall_timeout`) and feed the sink what arrived.

        Returns:
            `False` once the whole body has been received, else `True`.

        Raises:
            ClientError, RequestAPIError, OSError: As `read_all`.
        """
        self._check()
        if self._sink is None:
            raise RequestAPIError("no sink attached to the request body")
        try:
            if not self._decoder.done:
                self._before_read()
                data = self._receive(wait=True)
                if not data:
                    raise ClientError(400, "connection closed inside the request body")
                self._feed(data, self._sink)
        except ClientError as error:
            self._error = error
            raise
        if self._decoder.done:
            self._end(quiet=False)
            return False
        return True

    # --8<-- [start:receive]
    def _receive(self, wait: bool, limit: int = _BLOCK_SIZE) -> Data | None:
        """Receive the next bytes of the body: `b""` at EOF, `None` if none came (`wait` off).

        At most `limit` bytes are taken from the connection.

        A plain socket's bytes go straight from the kernel into `_BLOCK`
        (``readv`` into a reused buffer: no new object, no copy), after the
        bytes its buffer already holds; a chunked body may be read past its
        end, and `_feed` gives those bytes back. A TLS socket decrypts
        into its own buffer; it is read element by element (`next_read`).

        Raises:
            ClientError: 408 when a wait passes `stall_timeout` or the
                minimum rate.
            OSError: The connection failed.
        """
        wire, decoder = self._wire, self._decoder
        sock = wire.sock
        if sock.tls:
            maxlen, terminator = decoder.next_read()
            maxlen = min(maxlen, limit)
            return wire.read(maxlen, terminator) if wait else wire.read_nb(maxlen, terminator)
        remaining = decoder.remaining
        size = min(limit, _BLOCK_SIZE) if remaining is None else min(remaining, limit, _BLOCK_SIZE)
        if sock.buffered:
            return wire.read_nb(min(size, sock.buffered))  # only what is there: no receive
        view = _BLOCK[:size]
        while True:
            try:
                count = os.readv(sock.fileno(), [view])
            except (BlockingIOError, InterruptedError):
                if not wait:
                    return None
                wire.wait_readable()
                continue
            wire.moved += count
            return view[:count]

    def _feed(self, data: Data, sink: Sink | None) -> None:
        """Decode `data` into `sink`; at the body's end, give back the bytes after it."""
        decoder = self._decoder
        for piece in decoder.feed(data):
            if sink is not None:
                sink.feed(piece)
        if decoder.done and decoder.leftover:
            self._wire.sock.unread(decoder.leftover)  # the next pipelined request
    # --8<-- [end:receive]

    def wants_input(self) -> bool:
        """Whether a blocked response write should read body now (see `_wire`)."""
        return (self._sink is not None and not self._decoder.done and not self._deferred
                and self._error is None and not self._abandoned and not self._continue_pending)

    def read_available(self) -> None:
        """Read and process body bytes that have arrived, without blocking.

        A client error is kept (`error`), not raised: the response being
        written goes on, the connection closes after it.
        """
        sink = self._sink
        assert sink is not None
        try:
            for _ in range(_AVAILABLE_READS):
                data = self._receive(wait=False)
                if data is None:
                    return
                if not data:
                    raise ClientError(400, "connection closed inside the request body")
                self._feed(data, sink)
                if self._decoder.done:
                    self._end(quiet=True)
                    return
        except ClientError as error:
            self._error = error

    def drain(self) -> bool:
        """After the response: read the rest of the body, within limits.

        Bounded by `drain_timeout` and `drain_size_limit`. The pieces go to
        the sink (a form's stream handlers get the rest of their fields),
        except to a `Pull` sink, whose reader is gone: they are dropped.

        Returns:
            `True` if the body ended in time (the connection may be reused).

        Raises:
            OSError: The connection failed.
        """
        if self._abandoned or self._error is not None or self._continue_pending:
            return False
        sink = None if isinstance(self._sink, Pull) else self._sink
        options = self._options
        deadline = None if options.drain_timeout is None else (
            time.monotonic() + options.drain_timeout)
        budget = options.drain_size_limit
        try:
            while not self._decoder.done:
                if budget <= 0:
                    return False
                data = self._receive(wait=False, limit=budget)
                if data is None:
                    if not self._wire.wait_input(deadline):
                        return False
                    continue
                if not data:
                    return False
                self._feed(data, sink)
                budget -= len(data) - len(self._decoder.leftover)
            if self._sink is not None:
                self._end(quiet=True)
        except ClientError as error:
            self._error = error
            return False
        return self._error is None
