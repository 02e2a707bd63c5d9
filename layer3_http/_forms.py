"""Form fields and cookies: query strings, urlencoded bodies, `Cookie` lines.

Parsing gives ordered `(name, value)` pairs; `_tables`' `FirstValues` and
`ValueLists` turn them into what a handler reads.

Decoding (WHATWG application/x-www-form-urlencoded, which GET forms use in
the query too; `UrlencodedParser` decodes a body as it arrives, one field
at a time, checking the field limit at each): fields split on `&` (not
`;`), empty fields are skipped, a field without `=` has the value `""`,
`+` is a space, `%XX` escapes are decoded to bytes (a `%` not followed by
two hex digits stays as is), and the bytes are decoded as UTF-8 with
`errors="replace"`.

Cookies (RFC 6265 section 5.4 as a server sees it): pairs split on `;`,
whitespace around names and values dropped, one pair of surrounding double
quotes removed, nothing else decoded (a cookie value is opaque). When a
name repeats, the first pair wins: browsers send the most specific cookie
first.

`FormSink` is the body sink (see `_input`) behind `post_params` and
`stream_post_param`: it feeds a ``application/x-www-form-urlencoded`` body
through `UrlencodedParser` and a ``multipart/form-data`` one through
`MultipartParser`, piece by piece. Each part is either collected (a field
value) or, when a stream handler was registered for its name, passed on as
it arrives, so a file of any size costs no memory; memory holds at most
one piece, the parser's small window and the collected fields. Any other
content type (or none) is not an error: the sink keeps nothing and
`post_params` is empty. A stream handler is called as the reference
prescribes::

    callback(first_chunk, metadata)   # b"" for an empty part
    callback(chunk)                   # zero or more times, never empty
    callback()                        # the end of the part

Exact name registrations win over patterns, patterns are tried in
registration order; the multipart parser is made at the first byte, so a
bad `Content-Type` shows only when the body is read.

Moonbridge: `get_params`, `get_params_list`, `post_params`,
`post_params_list` and `cookies`; the original also percent-decoded
cookie values, which RFC 6265 does not define. `FormSink` is
``default_request_body_handling`` in ``generate_handler``; the original
answered unknown content types with 415 and killed the worker.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

from ._errors import ClientError
from ._multipart import (
    MultipartEnd,
    MultipartParser,
    PartData,
    PartEnd,
    PartStart,
    parse_content_type,
)

__all__ = [
        "FormSink",
    "PostMetadata",
    "PostStream",
    "UrlencodedParser",
    "compile_pattern",
    "form_kind",
    "parse_cookies",
    "parse_query",
    "parse_urlencoded",
]

_PERCENT = re.compile(rb"%([0-9A-Fa-f]{2})")


def _unescape(field: bytes) -> str:
    field = _PERCENT.sub(lambda match: bytes([int(match[1], 16)]), field.replace(b"+", b" "))
    return field.decode("utf-8", "replace")


class UrlencodedParser:
    """An application/x-www-form-urlencoded body parsed as it arrives.

    Each complete field (up to its ``&``) is decoded at once, so what is
    kept is the pairs so far and the one field not yet ended. The field
    limit is checked at every field: a body of a million ``&a`` is refused
    at field `field_limit` + 1, after reading that little of it, and
    memory stays within a small multiple of what the limits allow.

    The size of a field is bounded by the body's limit
    (`request_body_size_limit`, checked by the body decoder before the
    bytes get here); a field is decoded in a few copies of its size.

    Args:
        field_limit: Most fields accepted (`None`: no limit).

    Raises:
        ClientError: 413 from `feed` or `end` at the first field past the limit.

    Examples:
        >>> parser = UrlencodedParser()
        >>> parser.feed(b"a=1&b=x+")
        >>> parser.feed(b"y%2")
        >>> parser.feed(b"1&&c")
        >>> parser.end()
        [('a', '1'), ('b', 'x y!'), ('c', '')]
        >>> UrlencodedParser(field_limit=2).feed(b"a&b&c&")
        Traceback (most recent call last):
        ...
        layer3_http._errors.ClientError: 413 Content Too Large: more than 2 form fields
    """

    __slots__ = ("_field_limit", "_pending", "pairs")

    def __init__(self, *, field_limit: int | None = 10000) -> None:
        self._field_limit = field_limit
        self._pending: list[bytes] = []
        self.pairs: list[tuple[str, str]] = []
        """The fields decoded so far, in order."""

    def feed(self, data: bytes) -> None:
        """Take the next bytes of the body; decode every field they end."""
        start = 0
        while True:
            end = data.find(b"&", start)
            if end < 0:
                break
            if self._pending:
                self._pending.append(data[start:end])
                field = b"".join(self._pending)
                self._pending = []
            else:
                field = data[start:end]
            self._field(field)
            start = end + 1
        if start < len(data):
            self._pending.append(data[start:] if start else data)

    def end(self) -> list[tuple[str, str]]:
        """The body is complete: decode the last field; return all pairs."""
        if self._pending:
            field = b"".join(self._pending)
            self._pending = []
            self._field(field)
        return self.pairs

    def _field(self, field: bytes) -> None:
        if not field:
            return  # empty fields are skipped
        if self._field_limit is not None and len(self.pairs) >= self._field_limit:
            raise ClientError(413, f"more than {self._field_limit} form fields")
        name, _, value = field.partition(b"=")
        self.pairs.append((_unescape(name), _unescape(value)))


def parse_urlencoded(body: bytes, *, field_limit: int | None = 10000) -> list[tuple[str, str]]:
    """Parse an application/x-www-form-urlencoded body into pairs (`UrlencodedParser`).

    Args:
        body: The request body.
        field_limit: Most fields accepted (`None`: no limit).

    Returns:
        `(name, value)` pairs in the order sent.

    Raises:
        ClientError: 413 when there are more than `field_limit` fields,
            raised at the first field past it.

    Examples:
        >>> parse_urlencoded(b"a=1&b=x+y%21&&c&a=%E2%82%AC")
        [('a', '1'), ('b', 'x y!'), ('c', ''), ('a', '€')]
    """
    parser = UrlencodedParser(field_limit=field_limit)
    parser.feed(body)
    return parser.end()


def parse_query(query: str | None, *, field_limit: int | None = 10000) -> list[tuple[str, str]]:
    """Parse a request's query (`RequestHead.query`) into pairs.

    Args:
        query: The query with or without its leading `?`; `None` (the
            `OPTIONS *` request) gives no pairs.
        field_limit: Most fields accepted (`None`: no limit).

    Raises:
        ClientError: 413 when there are more than `field_limit` fields.

    Examples:
        >>> parse_query("?q=caf%C3%A9+au+lait&page=2")
        [('q', 'café au lait'), ('page', '2')]
    """
    if not query:
        return []
    return parse_urlencoded(query.removeprefix("?").encode("iso-8859-1"), field_limit=field_limit)


COOKIE_LIMIT = 1000
"""The most cookies a request may send (RFC 6265 §6.1 asks browsers to keep 50 per domain,
3,000 in all); past it, 431. The pairs are cut one at a time, so a cookie header of a
mebibyte is not split into a hundred thousand strings before the limit is seen."""


def _pairs(line: str) -> Iterator[str]:
    start = 0
    while True:
        end = line.find(";", start)
        if end < 0:
            yield line[start:]
            return
        yield line[start:end]
        start = end + 1


def parse_cookies(values: Iterable[str]) -> dict[str, str]:
    """Parse the values of the `Cookie` header lines into a dictionary.

    Raises:
        ClientError: 431 past `COOKIE_LIMIT` cookies.

    Examples:
        >>> parse_cookies(['sid=abc; theme="dark"; sid=old', "lang=en"])
        {'sid': 'abc', 'theme': 'dark', 'lang': 'en'}
    """
    cookies: dict[str, str] = {}
    pairs = 0
    for line in values:
        for pair in _pairs(line):
            pairs += 1
            if pairs > COOKIE_LIMIT:
                raise ClientError(431, f"more than {COOKIE_LIMIT} cookies")
            name, equals, value = pair.partition("=")
            name, value = name.strip(" \t"), value.strip(" \t")
            if not equals or not name:
                continue
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            cookies.setdefault(name, value)
    return cookies


# -- the form sink -------------------------------------------------------------

URLENCODED = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"


@dataclass(frozen=True, slots=True)
class PostMetadata:
    """What a multipart part says about itself.

    Attributes:
        field_name: The form field's name.
        file_name: The uploaded file's name, or `None` for a plain field.
        content_type: The part's `Content-Type`, or `None` when absent.
        headers: All the part's header lines as `(name, value)` pairs.

    Moonbridge: the metadata table (``field_name``, ``file_name``,
    ``content_type``) of ``post_metadata`` and of stream callbacks.
    """

    field_name: str
    file_name: str | None = None
    content_type: str | None = None
    headers: tuple[tuple[str, str], ...] = ()


class PostStream(Protocol):
    """A `stream_post_param` callback: ``(chunk, metadata)``, ``(chunk)``, then ``()``."""

    def __call__(self, chunk: bytes = ..., metadata: PostMetadata = ..., /) -> object: ...


def form_kind(content_type: str | bool | None) -> str | None:
    """Return `URLENCODED`, `MULTIPART` or `None` for a `Content-Type` value.

    Examples:
        >>> form_kind("Multipart/Form-Data; boundary=x"), form_kind("text/plain")
        ('multipart/form-data', None)
    """
    if not isinstance(content_type, str):
        return None
    parsed = parse_content_type(content_type)
    if parsed is None or parsed.media_type not in (URLENCODED, MULTIPART):
        return None
    return parsed.media_type


class _Part:
    """The multipart part being received: collected or streamed."""

    def __init__(self, metadata: PostMetadata, callback: PostStream | None) -> None:
        self.metadata = metadata
        self.callback = callback
        self.pieces: list[bytes] = []
        self.started = False

    def data(self, data: bytes) -> None:
        if self.callback is None:
            self.pieces.append(data)
        elif self.started:
            self.callback(data)
        else:
            self.started = True
            self.callback(data, self.metadata)


class FormSink:
    """The sink that parses a form body into fields and stream calls.

    Args:
        content_type: The request's `Content-Type` value (`headers_value`).
        streams: Stream callbacks by exact field name.
        patterns: `(compiled pattern, callback)` pairs, tried with `search`.
        piece_size: The most bytes per multipart piece.

    Examples:
        >>> sink = FormSink("application/x-www-form-urlencoded")
        >>> sink.feed(b"a=1&b=2&a=3")
        >>> sink.end()
        >>> sink.params
        [('a', '1'), ('b', '2'), ('a', '3')]
    """

    def __init__(self, content_type: str | bool | None,
                 streams: dict[str, PostStream] | None = None,
                 patterns: list[tuple[re.Pattern[str], PostStream]] | None = None,
                 piece_size: int = 16384) -> None:
        self.kind = form_kind(content_type)
        self._content_type = content_type if isinstance(content_type, str) else ""
        self._streams = streams or {}
        self._patterns = patterns or []
        self._piece_size = piece_size
        self._urlencoded = UrlencodedParser() if self.kind == URLENCODED else None
        self._parser: MultipartParser | None = None
        self._part: _Part | None = None
        self._received = 0
        self.params: list[tuple[str, str]] = []
        """The collected fields, in order."""
        self.metadata: list[tuple[str, PostMetadata]] = []
        """The metadata of the collected multipart fields, in order."""

    @property
    def wanted(self) -> bool:
        """Whether the body is a form (otherwise this sink keeps nothing)."""
        return self.kind is not None

    def feed(self, piece: bytes) -> None:
        """Take the next piece of the body.

        Raises:
            ClientError: The multipart body or its `Content-Type` is malformed,
                or the form has too many fields (413).
        """
        self._received += len(piece)
        if self._urlencoded is not None:
            self._urlencoded.feed(piece)
        elif self.kind == MULTIPART:
            if self._parser is None:
                self._parser = MultipartParser.from_content_type(
                    self._content_type, piece_size=self._piece_size)
            for event in self._parser.feed(piece):
                self._event(event)

    def end(self) -> None:
        """The body is complete: parse or check what is left.

        Raises:
            ClientError: The multipart body ended before its final delimiter.
        """
        if self._urlencoded is not None:
            self.params = self._urlencoded.end()
            self._urlencoded = None
            self._route_urlencoded()
        elif self.kind == MULTIPART and self._received:
            assert self._parser is not None
            self._parser.feed_eof()

    def _callback_for(self, name: str) -> PostStream | None:
        if name in self._streams:
            return self._streams[name]
        for pattern, callback in self._patterns:
            if pattern.search(name):
                return callback
        return None

    def _route_urlencoded(self) -> None:
        """Give urlencoded fields with a stream handler to it, in one chunk each."""
        if not self._streams and not self._patterns:
            return
        kept = []
        for name, value in self.params:
            callback = self._callback_for(name)
            if callback is None:
                kept.append((name, value))
                continue
            callback(value.encode("utf-8"), PostMetadata(name))
            callback()
        self.params = kept

    def _event(self, event: object) -> None:
        if isinstance(event, PartStart):
            metadata = PostMetadata(event.field_name, event.file_name, event.content_type,
                                    event.headers)
            self._part = _Part(metadata, self._callback_for(event.field_name))
        elif isinstance(event, PartData):
            assert self._part is not None
            self._part.data(event.data)
        elif isinstance(event, PartEnd):
            assert self._part is not None
            self._end_part(self._part)
            self._part = None
        else:
            assert isinstance(event, MultipartEnd)

    def _end_part(self, part: _Part) -> None:
        name = part.metadata.field_name
        if part.callback is None:
            value = b"".join(part.pieces).decode("utf-8", "replace")
            self.params.append((name, value))
            self.metadata.append((name, part.metadata))
            return
        if not part.started:
            part.callback(b"", part.metadata)
        part.callback()


def compile_pattern(pattern: str | re.Pattern[str]) -> re.Pattern[str]:
    """Compile a `stream_post_params` pattern (a Python regular expression)."""
    return pattern if isinstance(pattern, re.Pattern) else re.compile(pattern)

