"""The response writer: handler calls in, bytes for the wire out, no sockets.

`ResponseWriter` turns the calls a handler makes (`status`, `header`,
`finish_headers`, `data`, `flush`, `finish`) into the bytes of one HTTP/1.1
response. Each call returns the list of byte strings that may go out now;
the socket side (`Request`) writes them. The writer decides the framing, so
the handler never has to:

* a status that carries no body (1xx, 204, 304) gets none, a HEAD response
  none either (the data is only counted), 205 gets `Content-Length: 0`;
* a `Content-Length` the handler sent is used and enforced;
* otherwise data is held back until `minimum_output_chunk_size` bytes are
  pending. A response that finishes before that point goes out as one
  write, head and body together, with a `Content-Length`;
* a longer one is sent chunked to HTTP/1.1 clients and close-delimited to
  HTTP/1.0 clients (no `Content-Length`, the connection closes after it).

It also adds `Date`, the static headers, and `Connection: close` (or, to an
HTTP/1.0 client that asked for it, `Connection: keep-alive`).

The state machine, as the handler sees it::

    NO_STATUS --status(1xx)--> INFORMATIONAL --finish_headers--> NO_STATUS
    NO_STATUS --status(final)--> HEADERS --finish_headers / data--> BODY
    HEADERS or BODY --finish--> FINISHED   (a bodyless status: finish_headers too)

Headers may be added in INFORMATIONAL and HEADERS only; data in HEADERS and
BODY. Separately from the phase, the head is *committed* once its bytes
have been handed out; before that, nothing of the final response is on the
wire, so a failing handler can still be answered with a 500.

Invariants: every misuse raises `RequestAPIError` (out of order) or
`ValueError` (a bad header or status) and changes nothing; the bytes
handed out always form a valid response prefix; `close` is final once the
head is committed.

Moonbridge: the response half of ``generate_handler``'s request object
(``send_status``, ``send_header``, ``finish_headers``, ``send_data``,
``flush``, ``finish``), which sent the head at once and always chunked.
"""

from __future__ import annotations

import enum
import re
import time
from email.utils import formatdate

from ._abnf import FIELD_VALUE_RULE, split_list
from ._errors import RequestAPIError, reason_phrase
from ._options import check_header

__all__ = [
    "Framing",
    "Phase",
    "ResponseWriter",
    "as_bytes",
    "has_content",
    "http_date",
    "parse_status",
]

# status-code, then a reason-phrase of a field value's characters (RFC 9112 section 4)
_STATUS = re.compile(rf"([1-5][0-9][0-9])(?: ({FIELD_VALUE_RULE}))?")
_NO_CONTENT = frozenset({101, 204, 205, 304})
_CRLF = b"\r\n"


def has_content(code: int) -> bool:
    """Tell whether a final response with this status may carry content.

    Not 204 and 304 (RFC 9110 section 6.4.1), not 205 (section 15.3.6: the
    server must not generate content; the writer sends
    ``Content-Length: 0``), and not 101, after which the connection
    speaks another protocol. Whatever an application gives as the body
    of such a response is dropped (WSGI) or refused (`send_data`).

    Examples:
        >>> [code for code in (101, 200, 204, 205, 304, 404) if not has_content(code)]
        [101, 204, 205, 304]
    """
    return code not in _NO_CONTENT


def as_bytes(value: object) -> bytes:
    """Body data as bytes: `bytes` as they are, `str` as UTF-8, anything else via `str`.

    Examples:
        >>> as_bytes("é"), as_bytes(42), as_bytes(bytearray(b"x"))
        (b'\\xc3\\xa9', b'42', b'x')
    """
    if isinstance(value, bytes):
        return value
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    return (value if isinstance(value, str) else str(value)).encode("utf-8")


def parse_status(status: str | int) -> tuple[int, bytes]:
    """Check a status and return its code and its status line.

    Args:
        status: ``"404 Not Found"``, ``"404"`` or ``404``; a missing reason
            phrase is filled in.

    Returns:
        The code, and the status line as sent (version, code, phrase, CRLF).

    Raises:
        ValueError: Not a 3-digit code from 100 to 599, or the phrase holds
            CR, LF, NUL or another control character.
        TypeError: Neither `str` nor `int`.

    Examples:
        >>> parse_status(404)
        (404, b'HTTP/1.1 404 Not Found\\r\\n')
        >>> parse_status("299 Fine")
        (299, b'HTTP/1.1 299 Fine\\r\\n')
    """
    if type(status) is str or type(status) is int:  # exact types: a subclass may lie in ==
        cached = _status_cache.get(status)
        if cached is not None:
            return cached  # fast path: handlers send the same few statuses again and again
    elif isinstance(status, bool) or not isinstance(status, str | int):
        raise TypeError(f"status must be a str such as '200 OK' or an int, not {status!r}")
    result = _parse_status(str(status))
    if len(_status_cache) < _STATUS_CACHE_SIZE and type(status) in (str, int):
        _status_cache[status] = result
    return result


_status_cache: dict[str | int, tuple[int, bytes]] = {}
_STATUS_CACHE_SIZE = 256  # a handler inventing phrases cannot grow it without end


def _parse_status(text: str) -> tuple[int, bytes]:
    match = _STATUS.fullmatch(text)
    if match is None:
        raise ValueError(f"status must be a code 100-599 and a phrase, as '200 OK': {text!r}")
    code = int(match[1])
    phrase = match[2] if match[2] else reason_phrase(code)
    try:
        return code, f"HTTP/1.1 {code} {phrase}\r\n".encode("iso-8859-1")
    except UnicodeEncodeError:
        raise ValueError(f"status phrase is not ISO-8859-1 text: {text!r}") from None


_date_cache: tuple[int, str] = (0, "")


def http_date(now: float | None = None) -> str:
    """Return the `Date` value for `now` (default: the current time), cached per second.

    Examples:
        >>> http_date(0)
        'Thu, 01 Jan 1970 00:00:00 GMT'
    """
    global _date_cache
    second = int(time.time() if now is None else now)
    if _date_cache[0] != second or not _date_cache[1]:
        _date_cache = (second, formatdate(second, usegmt=True))
    return _date_cache[1]


_field_line_cache: dict[tuple[str, str | int], bytes] = {}
_FIELD_LINE_CACHE_SIZE = 256  # as for the statuses: bounded, whatever the handler sends
# Fields the writer acts on (besides Content-Length and Transfer-Encoding, which
# never become lines): they always take the slow way, which notes what they say.
_STATEFUL_FIELDS = frozenset({"connection", "date"})


def _known_field_line(name: object, value: object) -> bytes | None:
    """The encoded line of an ordinary field sent before with exactly this name and value.

    Handlers send the same few fields again and again (``Content-Type:
    text/html``); the checks of `check_header` and the encoding are done
    the first time only. Exact types only: ``True == 1``, and a subclass
    may lie in ``==``.
    """
    if type(name) is str and (type(value) is str or type(value) is int):
        return _field_line_cache.get((name, value))
    return None


def _remember_field_line(name: str, value: str | int, line: bytes) -> None:
    if len(_field_line_cache) < _FIELD_LINE_CACHE_SIZE and (
            type(value) is str or type(value) is int):
        _field_line_cache[(name, value)] = line


_date_field_cache: tuple[int, bytes] = (0, b"")


def _date_field() -> bytes:
    """The whole ``Date`` field line for now, encoded, cached per second like `http_date`."""
    global _date_field_cache
    second = int(time.time())
    if _date_field_cache[0] != second or not _date_field_cache[1]:
        _date_field_cache = (second, f"Date: {http_date(second)}\r\n".encode("ascii"))
    return _date_field_cache[1]


class Phase(enum.Enum):
    """Where a response is, as the handler sees it."""

    NO_STATUS = "no status"
    INFORMATIONAL = "informational"
    HEADERS = "headers"
    BODY = "body"
    FINISHED = "finished"


class Framing(enum.Enum):
    """How the body of a committed response is delimited."""

    NONE = "none"
    """No body at all (HEAD, 1xx, 204, 205, 304)."""
    LENGTH = "length"
    """`Content-Length` bytes."""
    CHUNKED = "chunked"
    """Chunked transfer coding (HTTP/1.1 only)."""
    CLOSE = "close"
    """The body ends when the connection closes (HTTP/1.0 clients)."""


class ResponseWriter:
    """Builds one response; every method returns the bytes that may go out now.

    Args:
        version: The request's HTTP version, `(1, 1)` or `(1, 0)`.
        head_request: The request method is HEAD (no body is ever sent).
        keep_alive: The client lets the connection stay open.
        static_fields: Encoded static header lines (`Options.static_fields`).
        minimum_chunk_size: Pending data that makes the writer send (and,
            without a `Content-Length`, commit to chunked or close-delimited).

    Examples:
        >>> writer = ResponseWriter()
        >>> writer.status("200 OK"), writer.header("Content-Type", "text/plain")
        ([], None)
        >>> writer.data(b"hello")
        []
        >>> wire = b"".join(writer.finish())
        >>> wire.startswith(b"HTTP/1.1 200 OK\\r\\nDate: "), wire.endswith(b"\\r\\n\\r\\nhello")
        (True, True)
        >>> b"Content-Length: 5\\r\\n" in wire
        True
    """

    def __init__(self, *, version: tuple[int, int] = (1, 1), head_request: bool = False,
                 keep_alive: bool = True, static_fields: bytes = b"",
                 minimum_chunk_size: int = 1024) -> None:
        self._version = version
        self._head_request = head_request
        self._static = static_fields
        self._threshold = minimum_chunk_size
        self._phase = Phase.NO_STATUS
        self._close = not keep_alive
        self._info: list[bytes] = []
        self._lines: list[bytes] = []
        self._code = 0
        self._length: int | None = None  # a Content-Length the handler declared
        self._date_given = self._close_sent = False
        self._committed = False
        self._framing = Framing.NONE
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._counted = 0  # body bytes accepted (sent, pending, or counted for HEAD)

    # -- what the socket side asks --------------------------------------------

    @property
    def phase(self) -> Phase:
        """The handler-visible state."""
        return self._phase

    @property
    def status_code(self) -> int:
        """The final status code, 0 before one was given."""
        return self._code

    @property
    def final_status_given(self) -> bool:
        """A final (non-1xx) status was given."""
        return self._code != 0  # set by the first final status, and only by it

    @property
    def headers_finished(self) -> bool:
        """No more headers may be added (the body has begun or the response ended)."""
        return self._phase in (Phase.BODY, Phase.FINISHED)

    @property
    def committed(self) -> bool:
        """The final head has been handed out (part of the response may be on the wire)."""
        return self._committed

    @property
    def finished(self) -> bool:
        """The response is complete."""
        return self._phase is Phase.FINISHED

    @property
    def close(self) -> bool:
        """The connection must close after this response."""
        return self._close

    @property
    def framing(self) -> Framing:
        """How the body is delimited (meaningful once committed)."""
        return self._framing

    @property
    def body_bytes(self) -> int:
        """Body bytes handed out so far (0 for HEAD and for statuses without a body)."""
        return 0 if self.bodyless else self._counted

    @property
    def bodyless(self) -> bool:
        """The response carries no body (HEAD, or a status without one)."""
        return self._head_request or not has_content(self._code)

    def close_after_finish(self) -> None:
        """Close the connection after the response (adds `Connection: close`).

        Raises:
            RequestAPIError: The headers are already finished.
        """
        if self.headers_finished:
            raise RequestAPIError("close_after_finish() after the headers were finished")
        self._close = True

    # -- the handler's calls -----------------------------------------------------

    def status(self, status: str | int) -> list[bytes]:
        """Begin a response (or an informational 1xx response) with `status`.

        Returns:
            The bytes of an informational response still open (it ends here).

        Raises:
            ValueError: See `parse_status`.
            RequestAPIError: A final status was already given.
        """
        code, line = parse_status(status)
        if self.final_status_given:
            raise RequestAPIError("a status was already sent for this response")
        out = self._end_informational()
        if 100 <= code < 200 and code != 101:
            self._phase = Phase.INFORMATIONAL
            self._info = [line]
            return out
        self._phase, self._code, self._lines = Phase.HEADERS, code, [line]
        if code == 101:
            self._close = True  # the connection now speaks another protocol
        return out

    def header(self, name: str, value: str | int) -> None:
        """Add a header field to the status given last.

        `Content-Length` is remembered and enforced (given twice it must
        agree); `Connection: close` makes the connection close after the
        response; a `Date` replaces the automatic one.

        Raises:
            TypeError, ValueError: See `check_header`.
            RequestAPIError: No status given, headers finished, a
                `Transfer-Encoding` (the writer frames the body), or a
                `Content-Length` or `Connection: close` on a 1xx response.
        """
        line = _known_field_line(name, value)
        if line is not None and self._phase is Phase.HEADERS:
            self._lines.append(line)  # fast path: checked and encoded when first sent
            return
        name, text = check_header(name, value)
        if self._phase not in (Phase.INFORMATIONAL, Phase.HEADERS):
            what = "no status was sent" if self._phase is Phase.NO_STATUS else "headers finished"
            raise RequestAPIError(f"send_header({name!r}) but {what}")
        lower = name.lower()
        closes = lower == "connection" and "close" in (i.lower() for i in split_list(text))
        if lower == "transfer-encoding":
            raise RequestAPIError("Transfer-Encoding is chosen by the server; send Content-Length")
        if self._phase is Phase.INFORMATIONAL:
            if lower == "content-length" or closes:
                raise RequestAPIError(f"{name} is not allowed on an informational response")
            self._info.append(f"{name}: {text}\r\n".encode("iso-8859-1"))
            return
        if lower == "content-length":
            self._declare_length(text)
            return
        self._close = self._close or closes
        self._close_sent = self._close_sent or closes
        self._date_given = self._date_given or lower == "date"
        line = f"{name}: {text}\r\n".encode("iso-8859-1")
        self._lines.append(line)
        if lower not in _STATEFUL_FIELDS:
            _remember_field_line(name, value, line)

    def _declare_length(self, text: str) -> None:
        if not text.isdigit() or not text.isascii():
            raise ValueError(f"Content-Length must be decimal digits, not {text!r}")
        length = int(text)
        if self._length is not None and self._length != length:
            raise RequestAPIError(f"Content-Length {length} contradicts {self._length}")
        if self._counted > length:
            raise RequestAPIError(f"Content-Length {length} but {self._counted} bytes were sent")
        self._length = length

    def finish_headers(self) -> list[bytes]:
        """End the header section and commit the head.

        For a 1xx response this sends it; for a bodyless status it ends the
        whole response. In the body it hands out pending data, as `flush`.

        Raises:
            RequestAPIError: No status given, or the response is finished.
        """
        if self._phase is Phase.INFORMATIONAL:
            return self._end_informational()
        if self._phase is Phase.NO_STATUS:
            raise RequestAPIError("finish_headers() but no status was sent")
        if self._phase is Phase.FINISHED:
            raise RequestAPIError("finish_headers() after finish()")
        self._phase = Phase.BODY
        if not has_content(self._code):
            return self.finish()
        return self._send_pending(final=False)

    # --8<-- [start:data]
    def data(self, data: bytes) -> list[bytes]:
        """Add body data (ignored but counted for HEAD).

        Raises:
            RequestAPIError: No final status, a status without a body,
                more data than the declared `Content-Length`, or finished.
        """
        if self._phase is not Phase.HEADERS and self._phase is not Phase.BODY:
            what = {Phase.NO_STATUS: "no status was sent",
                    Phase.INFORMATIONAL: "only an informational status was sent",
                    Phase.FINISHED: "the response is finished"}[self._phase]
            raise RequestAPIError(f"send_data() but {what}")
        if not has_content(self._code):
            if data:
                raise RequestAPIError(f"a {self._code} response has no body")
            return []
        self._phase = Phase.BODY
        if not data:
            return []
        if self._length is not None and self._counted + len(data) > self._length:
            raise RequestAPIError(f"more data than the Content-Length of {self._length}")
        self._counted += len(data)
        if self._head_request:
            return []
        self._pending.append(data)
        self._pending_size += len(data)
        if self._pending_size >= self._threshold:
            return self._send_pending(final=False)
        return []
    # --8<-- [end:data]

    def flush(self) -> list[bytes]:
        """Hand out all pending data, committing the head if the body has begun."""
        if self._phase is Phase.BODY:
            return self._send_pending(final=False)
        return []

    def raw_body(self, size: int) -> list[bytes] | None:
        """Prepare `size` body bytes that the caller sends itself (``sendfile``).

        Returns:
            The bytes to send first (head and pending data), after which the
            caller sends exactly `size` raw bytes; `None` if the body is
            chunked (the caller must use `data`); `[]` for a HEAD request
            (the bytes are only counted).

        Raises:
            RequestAPIError: As `data` does.
        """
        self.data(b"")
        if size <= 0:
            return []
        if not has_content(self._code):
            raise RequestAPIError(f"a {self._code} response has no body")
        if self._length is not None and self._counted + size > self._length:
            raise RequestAPIError(f"more data than the Content-Length of {self._length}")
        if self._head_request:
            self._counted += size
            return []
        if self._length is None and (self._framing is Framing.CHUNKED or (
                not self._committed and self._version >= (1, 1))):
            return None
        out = self._send_pending(final=False)
        self._counted += size
        return out

    # --8<-- [start:finish]
    def finish(self) -> list[bytes]:
        """End the response; return its last bytes, joined. Finishing again does nothing.

        Raises:
            RequestAPIError: No final status, an informational response still
                open, or fewer bytes than the declared `Content-Length`.
        """
        if self._phase is Phase.FINISHED:
            return []
        if self._phase is Phase.NO_STATUS:
            raise RequestAPIError("finish() but no status was sent")
        if self._phase is Phase.INFORMATIONAL:
            raise RequestAPIError("end an informational response with finish_headers()")
        sent_all = self.bodyless or self._length is None or self._counted == self._length
        if not sent_all and not self._head_request:
            raise RequestAPIError(f"Content-Length {self._length} but {self._counted} bytes sent")
        out = self._send_pending(final=True)
        if self._framing is Framing.CHUNKED:
            out.append(b"0\r\n\r\n")
        self._phase = Phase.FINISHED
        # One string: the socket then sends it straight from here, in one call.
        # What is pending is less than `minimum_chunk_size`, so the copy is small.
        return [b"".join(out)] if len(out) > 1 else out
    # --8<-- [end:finish]

    # -- framing -------------------------------------------------------------------

    def _end_informational(self) -> list[bytes]:
        if self._phase is not Phase.INFORMATIONAL:
            return []
        self._phase = Phase.NO_STATUS
        head, self._info = b"".join([*self._info, _CRLF]), []
        return [head] if self._version >= (1, 1) else []  # no 1xx to HTTP/1.0 clients

    # --8<-- [start:framing]
    def _send_pending(self, final: bool) -> list[bytes]:
        out = [] if self._committed else [self._commit(final)]
        if self._pending:
            if self._framing is Framing.CHUNKED:
                out.append(b"%x\r\n" % self._pending_size)
                out.extend(self._pending)
                out.append(_CRLF)
            elif self._framing is not Framing.NONE:
                out.extend(self._pending)
            self._pending, self._pending_size = [], 0
        return out

    def _commit(self, final: bool) -> bytes:
        """Choose the framing and return the complete head."""
        lines = [self._lines[0]]
        if not self._date_given:
            lines.append(_date_field())
        lines.append(self._static)
        lines.extend(self._lines[1:])
        lines.extend(self._framing_fields(final))
        if self._close and not self._close_sent and self._code != 101:
            lines.append(b"Connection: close\r\n")
        elif not self._close and self._version == (1, 0):
            lines.append(b"Connection: keep-alive\r\n")
        lines.append(_CRLF)
        self._committed = True
        return b"".join(lines)

    def _framing_fields(self, final: bool) -> list[bytes]:
        code, length = self._code, self._length
        if code in (101, 204) or 100 <= code < 200:
            self._framing = Framing.NONE
            return []
        if code in (205, 304) or self._head_request:
            self._framing = Framing.NONE
            if code == 205:
                return [b"Content-Length: 0\r\n"]
            if length is None and final and code != 304:
                length = self._counted  # HEAD: the length GET would have had
            if length is not None:
                return [b"Content-Length: %d\r\n" % length]
            if code == 304 or self._version < (1, 1):
                return []
            return [b"Transfer-Encoding: chunked\r\n"]
        if length is None and final:
            length = self._pending_size
        if length is not None:
            self._framing = Framing.LENGTH
            return [b"Content-Length: %d\r\n" % length]
        if self._version >= (1, 1):
            self._framing = Framing.CHUNKED
            return [b"Transfer-Encoding: chunked\r\n"]
        self._framing, self._close = Framing.CLOSE, True
        return []
    # --8<-- [end:framing]
