"""The handler's ways to read a request body, and the rules between them.

`BodyReader` is the body half of a `Request`. A handler reads a body in
one of four ways, and the first one it uses decides (`RequestInput`
attaches the matching sink, see `_input`):

* ``request.body``: the whole body as bytes, kept (reading it again is
  free, and form fields can still be parsed from it afterwards);
* ``stream_request_body(callback)``: each piece to the callback, now;
* ``post_params`` and its three siblings, or ``process_request_body()``:
  the body parsed as a form, with the form-field stream handlers
  registered before (``stream_post_param``, ``stream_post_params``);
* ``open_body()``: a file object (`BodyFile` in an `io.BufferedReader`)
  that reads the body as the handler reads it, piece by piece; this is
  WSGI's ``wsgi.input``;
* nothing: when the response starts, `Request` takes the form in
  automatically (`adopt_form`), or discards a body of another type; after
  the response, what has not arrived is drained under the drain limits,
  never waited for at `stall_timeout` per byte.

What is refused, with `RequestAPIError`: registering a form-field stream
handler once the body is being processed; streaming or keeping the raw
body once it went elsewhere (or while stream handlers wait for form
fields); form fields from a body that was abandoned (``monologue``).

Invariants: the form sink is made at most once per request; the fields a
handler reads are always complete (every read blocks until the body
ended); nothing here writes to the connection except through the
``100 Continue`` that `RequestInput` sends before the first body byte.

Moonbridge: ``request.body``, ``stream_request_body``,
``stream_post_param(s)``, ``process_request_body`` and the
``post_params`` tables.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable

from ._errors import RequestAPIError
from ._forms import FormSink, PostStream, compile_pattern
from ._head import RequestHead
from ._input import Collect, Discard, Pull, RequestInput, Stream

__all__ = ["BodyFile", "BodyReader"]


class BodyFile(io.RawIOBase):
    """The raw side of `Request.open_body`: each read returns what has arrived.

    A read blocks only while nothing of the body is there (each wait
    bounded by `stall_timeout`) and returns ``b""`` at the body's end.
    `Request.open_body` wraps it in an `io.BufferedReader`, which adds
    `readline`, iteration and reads of an exact size.

    Args:
        body: The request's input, with a `Pull` sink attached.
        sink: That sink.
        guard: Runs each body read (it marks the request faulty when the
            connection fails).
    """

    def __init__(self, body: RequestInput, sink: Pull,
                 guard: Callable[[Callable[[], bool]], bool]) -> None:
        super().__init__()
        self._input = body
        self._sink = sink
        self._guard = guard

    def readable(self) -> bool:
        """Always `True`."""
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        """Read what has arrived (at least one byte, unless at the end) into `buffer`."""
        while self._sink.empty and not self._sink.ended:
            self._guard(self._input.read_step)
        data = self._sink.take(len(buffer))
        buffer[:len(data)] = data
        return len(data)


class BodyReader:
    """The body reading state of one request.

    Args:
        body: The request's input (decoder, sink, reading rules).
        head: The request head (its `Content-Type` says whether a form may be wanted).
        piece_size: The most bytes per piece given to stream handlers.
    """

    def __init__(self, body: RequestInput, head: RequestHead, piece_size: int) -> None:
        self._input = body
        self._head = head
        self._piece_size = piece_size
        self._streams: dict[str, PostStream] = {}
        self._patterns: list[tuple[re.Pattern[str], PostStream]] = []
        self._form: FormSink | None = None
        self._form_parsed = False
        self._collect: Collect | None = None
        self._body: bytes | None = None

    @property
    def content_type(self) -> str | bool | None:
        """The request's `Content-Type`, as `headers_value` gives it."""
        return self._head.content_type

    @property
    def registered(self) -> bool:
        """Form-field stream handlers are registered."""
        return bool(self._streams or self._patterns)

    def body(self) -> bytes:
        """Return the whole body, reading it on the first call (see `Request.body`)."""
        if self._body is None:
            sink = self._input.sink
            if sink is None:
                if self.registered:
                    raise RequestAPIError("request.body would bypass stream_post_param handlers")
                self._collect = Collect()
                self._input.attach(self._collect)
            elif sink is not self._collect:
                raise RequestAPIError("the request body is already being processed otherwise")
            self._input.read_all()
            assert self._collect is not None
            self._body = self._collect.value
        return self._body

    def stream(self, callback: Callable[[bytes], object] | None) -> None:
        """Stream the body to `callback`, or discard it (see `Request.stream_request_body`)."""
        sink = self._input.sink
        if callback is None:
            if sink is None:
                self._input.attach(Discard())
            elif self._input.abandoned or self._input.complete:
                return
            self._input.read_all()
            return
        if sink is not None or self.registered:
            raise RequestAPIError("stream_request_body() after the body processing was chosen")
        self._input.attach(Stream(callback))
        self._input.read_all()

    def open(self, guard: Callable[[Callable[[], bool]], bool]) -> io.BufferedReader:
        """A file over the body (see `Request.open_body`); `guard` runs each read."""
        if self._body is not None:
            return io.BufferedReader(io.BytesIO(self._body))
        sink = self._input.sink
        if not isinstance(sink, Pull):
            if sink is not None or self.registered:
                raise RequestAPIError("open_body() after the body processing was chosen")
            sink = Pull()
            self._input.attach(sink)
        return io.BufferedReader(BodyFile(self._input, sink, guard))

    def register(self, name: str | None, pattern: str | re.Pattern[str] | None,
                 callback: PostStream) -> None:
        """Register a form-field stream handler for `name`, or for `pattern`."""
        if not callable(callback):
            raise TypeError(f"the stream callback must be callable, not {callback!r}")
        if self._input.sink is not None or self._body is not None:
            raise RequestAPIError("stream handlers must be registered before the body is processed")
        if name is not None:
            self._streams[name] = callback
        else:
            assert pattern is not None
            self._patterns.append((compile_pattern(pattern), callback))

    def process(self) -> None:
        """Read the whole body now (see `Request.process_request_body`)."""
        if isinstance(self._input.sink, Stream | Discard):
            if not self._input.complete and not self._input.abandoned:
                self._input.read_all()
            return
        self.form()

    def new_form(self) -> FormSink:
        """A form sink for this request's content type and stream handlers."""
        return FormSink(self.content_type, self._streams, self._patterns, self._piece_size)

    def adopt_form(self, form: FormSink) -> None:
        """Use `form`, already attached to the input by the automatic start."""
        self._form = form

    def start(self, close: Callable[[], None]) -> None:
        """The response starts and nobody chose what to do with the body.

        A form goes to the form parser, as far as it arrives while the
        response is written (a handler may still read `post_params` after
        `send_status`); any other body is discarded. A body the client
        holds back until ``100 Continue`` is never invited: no
        ``100 Continue`` goes out unless the handler reads the body, and
        `close` makes the connection close after the response. What is
        left of the body after the response is drained within
        `drain_size_limit` and `drain_timeout`, or the connection closes.
        """
        form = None if self.content_type is None else self.new_form()  # None: not a form
        if form is not None and form.wanted:
            self.adopt_form(form)
            self._input.attach(form, quiet=True)
            if self._input.continue_pending:
                close()  # not invited: the client may never send it
        elif self._input.continue_pending:
            self._input.abandon()  # never invite a body nobody wants
            close()
        else:
            self._input.attach(Discard(), quiet=True)

    def form(self) -> FormSink:
        """Return the form sink once the whole body went through it."""
        if self._form is None:
            sink = self._input.sink
            if sink is None:
                self._form = self.new_form()
                self._input.attach(self._form)
            elif sink is self._collect:
                form = self.new_form()
                body = self.body()
                if body:
                    form.feed(body)
                form.end()
                self._form, self._form_parsed = form, True
                return form
            else:
                raise RequestAPIError("the request body went to a stream or was discarded")
        if not self._form_parsed:
            if self._input.sink is not self._form:
                raise RequestAPIError("the request body was abandoned (monologue)")
            self._input.read_all()
            self._form_parsed = True
        return self._form
