"""The request-head parser: bytes in, a `RequestHead` or a `ClientError` out.

`HeadParser` is fed the bytes of one request head in pieces of any size.
It answers `None` ("need more") until the blank line that ends the head,
then returns a frozen `RequestHead`. Bytes fed after the blank line (the
body, or the next pipelined request) are not consumed: they are left in
`HeadParser.leftover` for the caller.

Theory of operation:

1. Lines are cut by `InputBuffer.take_line` (strict CRLF, limits checked at
   the byte that breaks them), so any split of the input gives the same
   result or the same error.
2. Up to `empty_line_limit` empty lines before the request line are skipped
   (RFC 9112 section 2.2); the request line is then checked on its own
   (method, target form, version) as soon as it is complete.
3. Each field line is checked when complete (syntax, count limit).
4. At the blank line the head as a whole is checked: `Host`, the body
   framing (`Transfer-Encoding`, `Content-Length`) and `Expect`.

The fast path: a head that arrives whole in the first piece fed (what
nearly every client sends) is first offered to `_whole_head`, which checks
it in a few passes of precompiled patterns over the whole text instead of
line by line. It only ever *accepts*: a head it is not sure of (an
absolute target, leading empty lines, a malformed or oversized line) goes
the careful way above, which then finds and explains the error, so both
ways give the same result for every input.

Invariants: the parser never raises anything but `ClientError` for any
input; it never holds more than `size_limit` bytes of head plus one fed
piece; garbage that never ends stops at `size_limit` (431) or, in the
request line, at `request_line_limit` (414). An error is sticky: feeding
again raises it again.

Moonbridge: the original read the head line by line inside
`generate_handler`; it rejected HTTP/1.0 and crashed when a head arrived
in several pieces (1.1.1).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Literal, NamedTuple

from ._abnf import FIELD_VALUE_RULE, TOKEN_RULE, is_token, split_list
from ._errors import ClientError
from ._lines import InputBuffer, Limit, ReadHint, parse_field_line
from ._tables import single_value

__all__ = ["BodyKind", "HeadParser", "RequestHead"]

EMPTY_LINE_LIMIT = 4
"""Empty lines skipped before a request line, by default (RFC 9112 §2.2 allows some)."""

_VERSION = re.compile(r"HTTP/([0-9])\.([0-9])")
_TARGET_BYTE = re.compile(r"[\x21-\x7e]+")  # visible ASCII, no space or controls
_ABSOLUTE = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*)://([^/?#]*)(.*)", re.S)
_HOST = re.compile(
    r"(?:\[[0-9A-Za-z:.]+\]|[A-Za-z0-9\-._~!$&'()*+,;=%]*)(?::[0-9]*)?"
)
_LENGTH = re.compile(r"[0-9]{1,18}")

# The fast path's patterns (see `_whole_head`), on the head decoded as ISO-8859-1.
# method SP origin-form target (visible ASCII but "#") SP HTTP/1.0 or HTTP/1.1
_ORIGIN_REQUEST_LINE = re.compile(
    rf"({TOKEN_RULE}) (/[\x21\x22\x24-\x7e]*) HTTP/1\.([01])")
# field lines, each with its CRLF: a token, a colon, a value without controls but HTAB
_FIELD_LINES = re.compile(rf"(?:{TOKEN_RULE}:{FIELD_VALUE_RULE}\r\n)*")
_FIELD_PAIRS = re.compile(rf"({TOKEN_RULE}):[ \t]*({FIELD_VALUE_RULE})\r\n")


class BodyKind(enum.Enum):
    """How the request body is framed (RFC 9112 section 6.3)."""

    NONE = "none"
    """No body (neither `Content-Length` nor `Transfer-Encoding` was sent)."""
    LENGTH = "length"
    """`Content-Length` bytes follow the head."""
    CHUNKED = "chunked"
    """A chunked body follows the head."""


@dataclass(frozen=True, slots=True)
class RequestHead:
    """One parsed and validated request head.

    Attributes:
        method: The method as sent (case-sensitive), e.g. `"GET"`.
        target: The request-target as sent.
        version: `(1, 1)` or `(1, 0)`.
        path: The path without its leading `/`, without the query, not
            percent-decoded; `None` only for `OPTIONS *`.
        query: The query with its leading `?`, or `""`; `None` only for
            `OPTIONS *`.
        authority: The target's authority for an absolute-form target,
            otherwise the `Host` value (`None` for HTTP/1.0 without `Host`).
        headers: The field lines as `(name, value)` pairs in order, names
            as sent, values without surrounding whitespace, ISO-8859-1.
        body_kind: How the body is framed.
        content_length: The body length for `BodyKind.LENGTH`, else `None`.
        expect_continue: The client sent `Expect: 100-continue` (HTTP/1.1).
        connection: The `Connection` options, lower-cased.
        keep_alive: The client lets the connection stay open: HTTP/1.1
            without `close`, HTTP/1.0 only with `keep-alive`.
        size: Bytes the head took, leading empty lines and blank line included.
        content_type: The `Content-Type` value if sent on one line, `False`
            if on several, `None` if absent (the `headers_value` rule).

    Moonbridge: the fields of the original's request object that come
    from the head (`method`, `path`, `query`, `headers`).
    """

    method: str
    target: str
    version: tuple[int, int]
    path: str | None
    query: str | None
    authority: str | None
    headers: tuple[tuple[str, str], ...]
    body_kind: BodyKind
    content_length: int | None
    expect_continue: bool
    connection: frozenset[str]
    keep_alive: bool
    size: int
    content_type: str | Literal[False] | None

    def values(self, name: str) -> list[str]:
        """Return the values of the field lines called `name` (any case)."""
        name = name.lower()
        return [value for key, value in self.headers if key.lower() == name]


class _RequestLine(NamedTuple):
    method: str
    target: str
    version: tuple[int, int]
    path: str | None
    query: str | None
    authority: str | None


class HeadParser:
    """Incremental parser of one request head.

    Args:
        size_limit: Most bytes the head may take (431 past it).
        request_line_limit: Most bytes of the request line before its
            CRLF (414 past it).
        header_count_limit: Most field lines (431 past it).
        empty_line_limit: Most empty lines skipped before the request line
            (400 past it).

    Examples:
        >>> parser = HeadParser()
        >>> parser.feed(b"GET /a?b=1 HTTP/1.1\\r\\nHost: x\\r\\n") is None
        True
        >>> head = parser.feed(b"\\r\\nnext")
        >>> head.path, head.query, head.keep_alive, parser.leftover
        ('a', '?b=1', True, b'next')

    Moonbridge: the head reading part of `generate_handler`; `size_limit`
    is the `request_header_size_limit` option.
    """

    _total: Limit  # the limits of the careful way, made with its buffer
    _line: Limit

    def __init__(
        self,
        *,
        size_limit: int = 1024 * 1024,
        request_line_limit: int = 8192,
        header_count_limit: int = 100,
        empty_line_limit: int = EMPTY_LINE_LIMIT,
    ) -> None:
        if min(size_limit, request_line_limit, header_count_limit) < 1 or empty_line_limit < 0:
            _at_least(1, size_limit=size_limit, request_line_limit=request_line_limit,
                      header_count_limit=header_count_limit)
            _at_least(0, empty_line_limit=empty_line_limit)
        self._size_limit = size_limit
        self._request_line_limit = request_line_limit
        self._header_count_limit = header_count_limit
        self._empty_line_limit = empty_line_limit
        self._buffer: InputBuffer | None = None  # made when the careful way is needed
        self._used = 0
        self._empty_lines = 0
        self._started = False
        self._request_line: _RequestLine | None = None
        self._fields: list[tuple[str, str]] = []
        self._head: RequestHead | None = None
        self._error: ClientError | None = None
        self._leftover = b""

    @property
    def started(self) -> bool:
        """True once any byte was fed (decides between idle and head timeout)."""
        return self._started

    @property
    def head(self) -> RequestHead | None:
        """The parsed head once complete, else `None`."""
        return self._head

    @property
    def leftover(self) -> bytes:
        """Bytes fed after the end of the head (body or next request)."""
        return self._leftover

    def next_read(self) -> ReadHint:
        """Return a read that stops at the end of the current line."""
        return ReadHint(16384, b"\n")

    # --8<-- [start:feed]
    def feed(self, data: bytes) -> RequestHead | None:
        """Add received bytes and parse as far as they go.

        Args:
            data: The next bytes of the connection, any amount.

        Returns:
            The head once its blank line arrived, else `None`.

        Raises:
            ClientError: The head breaks the protocol or a limit.
            ValueError: The head was already complete.
        """
        if self._error is not None:
            raise self._error
        if self._head is not None:
            raise ValueError("the head is complete; the caller owns later bytes")
        if not self._started and data:
            self._started = True
            whole = _whole_head(data, self._size_limit, self._request_line_limit,
                                self._header_count_limit)
            if whole is not None:  # the fast path: the whole head in the first piece
                self._head, self._leftover = whole
                return self._head
        try:
            return self._parse(data)
        except ClientError as error:
            self._error = error
            raise
    # --8<-- [end:feed]

    # --8<-- [start:parse]
    def _parse(self, data: bytes) -> RequestHead | None:
        """The careful way: cut and check line by line, keeping what is incomplete."""
        if self._buffer is None:
            self._buffer = InputBuffer()
            self._total = Limit(self._size_limit, 431, "request head")
            self._line = Limit(self._request_line_limit, 414, "request line")
        buffer = self._buffer
        buffer.append(data)
        while True:
            if self._request_line is None:
                line = buffer.take_line(self._line, self._total, self._used)
            else:
                line = buffer.take_line(None, self._total, self._used)
            if line is None:
                return None
            self._used += len(line) + 2
            if self._request_line is None:
                self._start_line(line)
            elif line:
                self._field_line(line)
            else:
                self._head = _finish(self._request_line, self._fields, self._used)
                self._leftover = buffer.take_all()
                return self._head

    def _start_line(self, line: bytes) -> None:
        if not line:
            self._empty_lines += 1
            if self._empty_lines > self._empty_line_limit:
                raise ClientError(400, "too many empty lines before the request line")
            return
        self._request_line = _parse_request_line(line)

    def _field_line(self, line: bytes) -> None:
        if len(self._fields) >= self._header_count_limit:
            raise ClientError(431, f"more than {self._header_count_limit} header fields")
        self._fields.append(parse_field_line(line))
    # --8<-- [end:parse]


def _at_least(minimum: int, **values: int) -> None:
    """Raise `ValueError` for a limit below `minimum` (configuration error)."""
    for name, value in values.items():
        if value < minimum:
            raise ValueError(f"{name} must be at least {minimum}, not {value}")


# --8<-- [start:whole-head]
def _whole_head(data: bytes, size_limit: int, request_line_limit: int,
                header_count_limit: int) -> tuple[RequestHead, bytes] | None:
    """Parse a head that `data` holds whole, if it is plainly well formed.

    Three scans of compiled patterns check what the careful way checks line
    by line: an origin-form request line (no leading empty line, no
    fragment, not CONNECT), and field lines that are a token, a colon and
    a value without controls. Within the limits, such a head gives exactly
    the careful way's result.

    Returns:
        The head and the bytes after it; `None` when the head is incomplete
        or anything about it needs the careful way (which accepts it too, or
        explains what is wrong).
    """
    end = data.find(b"\r\n\r\n")
    if end < 0 or end + 4 > size_limit:
        return None
    text = data[:end + 2].decode("iso-8859-1")  # the last field line keeps its CRLF
    line_end = text.find("\r\n")
    request_line = _ORIGIN_REQUEST_LINE.fullmatch(text, 0, line_end)
    if request_line is None or line_end > request_line_limit:
        return None
    method, target, minor = request_line.groups()
    if method == "CONNECT" or _FIELD_LINES.fullmatch(text, line_end + 2) is None:
        return None
    pairs = _FIELD_PAIRS.findall(text, line_end + 2)
    if len(pairs) > header_count_limit:
        return None
    path, mark, query = target.partition("?")
    line = _RequestLine(method, target, (1, int(minor)), path[1:], mark + query, None)
    fields = [(name, value.rstrip(" \t")) for name, value in pairs]
    return _finish(line, fields, end + 4), data[end + 4:]
# --8<-- [end:whole-head]


# --8<-- [start:request-line]
def _parse_request_line(line: bytes) -> _RequestLine:
    """Check `method SP request-target SP HTTP-version` (RFC 9112 section 3)."""
    text = line.decode("iso-8859-1")
    parts = text.split(" ")
    if len(parts) != 3:
        raise ClientError(400, "request line is not: method, target, version, one space apart")
    method, target, version_text = parts
    version_match = _VERSION.fullmatch(version_text)
    if version_match is None:
        raise ClientError(400, "malformed HTTP version")
    version = (int(version_match[1]), int(version_match[2]))
    if version not in ((1, 0), (1, 1)):
        raise ClientError(505, f"HTTP/{version[0]}.{version[1]} is not supported")
    if not is_token(method):
        raise ClientError(400, "method is not a token")
    if method == "CONNECT":
        raise ClientError(501, "CONNECT is for proxies; this server is not one")
    if _TARGET_BYTE.fullmatch(target) is None:
        raise ClientError(400, "request target holds a control, space or non-ASCII byte")
    path, query, authority = _split_target(method, target)
    return _RequestLine(method, target, version, path, query, authority)
# --8<-- [end:request-line]


def _split_target(method: str, target: str) -> tuple[str | None, str | None, str | None]:
    """Return path, query and authority of an origin, absolute or `*` target."""
    if "#" in target:
        raise ClientError(400, "request target holds a fragment")
    if target == "*":
        if method != "OPTIONS":
            raise ClientError(400, "the * target is only for OPTIONS")
        return None, None, None
    authority = None
    if not target.startswith("/"):
        match = _ABSOLUTE.fullmatch(target)
        if match is None:
            raise ClientError(400, "request target is neither origin-form nor absolute-form")
        scheme, authority, rest = match.groups()
        if scheme.lower() not in ("http", "https"):
            raise ClientError(400, f"absolute-form target with scheme {scheme!r}")
        if not authority or "@" in authority or _HOST.fullmatch(authority) is None:
            raise ClientError(400, "absolute-form target with a bad authority")
        target = rest if rest.startswith("/") else "/" + rest
    path, mark, query = target.partition("?")
    return path[1:], mark + query, authority


# --8<-- [start:finish]
def _finish(line: _RequestLine, fields: list[tuple[str, str]], size: int) -> RequestHead:
    """Check the head as a whole and build the `RequestHead`."""
    values: dict[str, list[str]] = {}
    for name, value in fields:
        values.setdefault(name.lower(), []).append(value)
    host = _check_host(line.version, values.get("host", []))
    kind, length = _body_framing(line.version, values)
    connection = _connection_options(values.get("connection"))
    if line.version == (1, 1):
        keep_alive = "close" not in connection
    else:
        keep_alive = "keep-alive" in connection and "close" not in connection
    expects = values.get("expect")
    return RequestHead(
        method=line.method,
        target=line.target,
        version=line.version,
        path=line.path,
        query=line.query,
        authority=line.authority if line.authority is not None else host,
        headers=tuple(fields),
        body_kind=kind,
        content_length=length,
        expect_continue=expects is not None and _expect_continue(line.version, expects),
        connection=connection,
        keep_alive=keep_alive,
        size=size,
        content_type=single_value(values.get("content-type", [])),
    )
# --8<-- [end:finish]


_NO_OPTIONS: frozenset[str] = frozenset()


def _connection_options(values: list[str] | None) -> frozenset[str]:
    """The `Connection` items, lower-cased (the shared empty set when none was sent)."""
    if values is None:
        return _NO_OPTIONS
    return frozenset(item.lower() for value in values for item in split_list(value))


def _check_host(version: tuple[int, int], hosts: list[str]) -> str | None:
    """Exactly one valid `Host` in HTTP/1.1, at most one in 1.0 (RFC 9112 3.2)."""
    if len(hosts) > 1:
        raise ClientError(400, "more than one Host header field")
    if not hosts:
        if version == (1, 1):
            raise ClientError(400, "HTTP/1.1 request without Host")
        return None
    if _HOST.fullmatch(hosts[0]) is None:
        raise ClientError(400, "Host is not a valid host and port")
    return hosts[0]


# --8<-- [start:framing]
def _body_framing(
    version: tuple[int, int], values: dict[str, list[str]]
) -> tuple[BodyKind, int | None]:
    """Decide the body framing (RFC 9112 section 6), refusing anything ambiguous."""
    encodings = values.get("transfer-encoding")
    lengths = values.get("content-length")
    if encodings is not None:
        if version == (1, 0):
            # RFC 9112 6.1: such a message's framing is faulty, even with
            # a Content-Length; a 1.0 peer cannot be trusted to chunk.
            raise ClientError(400, "Transfer-Encoding in an HTTP/1.0 request")
        if lengths is not None:
            raise ClientError(400, "both Transfer-Encoding and Content-Length")
        _check_encodings([item for value in encodings for item in split_list(value)])
        return BodyKind.CHUNKED, None
    if lengths is None:
        return BodyKind.NONE, None
    if len(lengths) > 1 or "," in lengths[0]:
        # RFC 9110 8.6 lets a recipient merge identical copies or reject them;
        # rejecting leaves nothing for a peer in front to read differently.
        raise ClientError(400, "Content-Length repeated or a list")
    value = lengths[0].strip(" \t")
    if not _LENGTH.fullmatch(value):
        raise ClientError(400, "Content-Length is not 1 to 18 decimal digits")
    return BodyKind.LENGTH, int(value)


def _check_encodings(codings: list[str]) -> None:
    """Accept exactly `chunked`; 400 if chunked is absent, repeated or not last."""
    lowered = [coding.lower() for coding in codings]
    if not lowered or not all(is_token(coding) for coding in lowered):
        raise ClientError(400, "Transfer-Encoding is not a list of codings")
    if lowered.count("chunked") != 1 or lowered[-1] != "chunked":
        raise ClientError(400, "chunked is not the final coding, exactly once")
    if len(lowered) > 1:
        raise ClientError(501, f"transfer coding {codings[0]!r} is not implemented")
# --8<-- [end:framing]


def _expect_continue(version: tuple[int, int], expects: list[str]) -> bool:
    """`100-continue` is the only expectation (RFC 9110 10.1.1); 1.0 ignores it.

    An empty `Expect` (or one of commas only) is an empty list (RFC 9110
    5.6.1): it expects nothing, so there is nothing to refuse.
    """
    items = [item.lower() for value in expects for item in split_list(value)]
    if any(item != "100-continue" for item in items):
        raise ClientError(417, "expectation other than 100-continue")
    return bool(items) and version == (1, 1)
