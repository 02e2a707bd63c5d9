"""A streaming multipart/form-data parser with bounded memory.

`MultipartParser` is fed the decoded request body in pieces of any size and
returns events (RFC 7578, framing from RFC 2046 section 5.1.1)::

    PartStart(field_name, file_name, content_type, headers)
    PartData(data)            # zero or more, each 1..piece_size bytes
    PartEnd()
    ...                       # one group per part
    MultipartEnd()            # the final delimiter was seen

Theory of operation. Every delimiter is CRLF, `--`, the boundary; the
parser acts as if the body began with CRLF, so the first delimiter needs no
special case. In the preamble and in part data it searches for the
delimiter; what lies before it is emitted (data) or dropped (preamble).
When no delimiter is in the buffer, everything is released except the
shortest tail that could still be the start of one. That tail starts at the
last CR (the delimiter holds only one CR, its first byte), so at most
`len(boundary) + 3` bytes are held back. After a delimiter comes `--` (the
end: anything after it, the epilogue, is ignored, with or without CRLF) or
optional padding and CRLF, then the part's header lines (strict CRLF,
limited in total size) and an empty line.

Invariants: memory stays within one fed piece plus the boundary length, a
part header section and a padded delimiter line, whatever the size of the
parts; any split of the body gives the same events once consecutive
`PartData` are joined; bad input raises `ClientError` and nothing else.

Choices: a part header section past `part_header_size_limit` and a part
past `part_count_limit` are 413 (the body is too large to accept), other
faults are 400. Part header values are decoded as UTF-8 (what browsers
send), with `errors="replace"`. A delimiter that appears where part data
is expected and is not followed by `--` or padding and CRLF is a 400, as
RFC 2046 forbids the delimiter inside a part.

Moonbridge: the multipart branch of `process_request_body`, which dropped
an unquoted `filename` and rejected a final delimiter without CRLF.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass

from ._abnf import PARAMETER, TOKEN, TOKEN_RULE
from ._errors import ClientError
from ._lines import InputBuffer, Limit, parse_field_line

__all__ = [
    "ContentType",
    "MultipartEnd",
    "MultipartEvent",
    "MultipartParser",
    "PartData",
    "PartEnd",
    "PartStart",
    "parse_content_type",
    "parse_parameters",
]

_MEDIA_TYPE = re.compile(rf"({TOKEN_RULE})/({TOKEN_RULE})")
_BOUNDARY = re.compile(r"[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]")
_ESCAPE = re.compile(r'\\(["\\])')
_PADDING = b" \t"


@dataclass(frozen=True, slots=True)
class ContentType:
    """A parsed `Content-Type` value.

    Attributes:
        media_type: `type/subtype`, lower-cased.
        parameters: Parameter values by lower-cased name, quotes removed.
    """

    media_type: str
    parameters: Mapping[str, str]


def parse_parameters(text: str) -> dict[str, str] | None:
    """Parse `*( OWS ";" OWS name=value )` (RFC 9110 section 5.6.6).

    Args:
        text: The parameters, starting at the first `;` (or empty).

    Returns:
        Values (token or quoted string, unquoted) by lower-cased name, or
        `None` when the text is malformed or repeats a name.

    Examples:
        >>> parse_parameters('; name="a \\\\"b\\\\""; filename=c.txt')
        {'name': 'a "b"', 'filename': 'c.txt'}
    """
    text = text.rstrip(" \t")
    parameters: dict[str, str] = {}
    position = 0
    while position < len(text):
        match = PARAMETER.match(text, position)
        if match is None:
            return None
        position = match.end()
        if match[1] is None:
            continue
        name, value = match[1].lower(), match[2]
        if name in parameters:
            return None
        if value.startswith('"'):
            value = _ESCAPE.sub(r"\1", value[1:-1])
        parameters[name] = value
    return parameters


def parse_content_type(value: str) -> ContentType | None:
    """Parse a `Content-Type` value, or return `None` if it is malformed.

    Examples:
        >>> parse_content_type('Multipart/Form-Data; boundary="x y"')
        ContentType(media_type='multipart/form-data', parameters={'boundary': 'x y'})
        >>> parse_content_type("text") is None
        True
    """
    value = value.strip(" \t")
    match = _MEDIA_TYPE.match(value)
    if match is None:
        return None
    parameters = parse_parameters(value[match.end() :])
    if parameters is None:
        return None
    return ContentType(match[0].lower(), parameters)


@dataclass(frozen=True, slots=True)
class PartStart:
    """A part begins; its headers are complete.

    Attributes:
        field_name: The `name` parameter of `Content-Disposition`.
        file_name: The `filename` parameter, or `None` when absent.
        content_type: The part's `Content-Type` value, or `None` when absent.
        headers: All the part's header lines as `(name, value)` pairs.
    """

    field_name: str
    file_name: str | None
    content_type: str | None
    headers: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class PartData:
    """A piece of the current part's content (never empty)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class PartEnd:
    """The current part's content is complete."""


@dataclass(frozen=True, slots=True)
class MultipartEnd:
    """The final delimiter was seen; later bytes are ignored."""


MultipartEvent = PartStart | PartData | PartEnd | MultipartEnd


class _State(enum.Enum):
    PREAMBLE = enum.auto()
    DELIMITER_LINE = enum.auto()
    PART_HEADERS = enum.auto()
    PART_DATA = enum.auto()
    EPILOGUE = enum.auto()


class MultipartParser:
    """Incremental parser of one multipart/form-data body.

    Args:
        boundary: The boundary parameter of the body's `Content-Type`.
        piece_size: Most bytes in one `PartData`.
        part_count_limit: Most parts (413 past it).
        part_header_size_limit: Most bytes of one part's header section,
            CRLFs included (413 past it).
        padding_limit: Most padding bytes after a delimiter (400 past it).

    Raises:
        ClientError: 400 when `boundary` is not 1 to 70 RFC 2046 characters.

    Examples:
        >>> parser = MultipartParser("xyz")
        >>> events = parser.feed(b"--xyz\\r\\nContent-Disposition: form-data; name=a\\r\\n"
        ...                      b"\\r\\nhello\\r\\n--xyz--")
        >>> for event in events:  # doctest: +ELLIPSIS
        ...     print(event)
        PartStart(field_name='a', file_name=None, content_type=None, headers=(...))
        PartData(data=b'hello')
        PartEnd()
        MultipartEnd()

    Moonbridge: the multipart/form-data parsing inside
    `process_request_body` that feeds `post_params`, `post_metadata` and
    the `stream_post_param` callbacks.
    """

    def __init__(
        self,
        boundary: str,
        *,
        piece_size: int = 16384,
        part_count_limit: int = 1000,
        part_header_size_limit: int = 16384,
        padding_limit: int = 256,
    ) -> None:
        if _BOUNDARY.fullmatch(boundary) is None:
            raise ClientError(400, "multipart boundary is not 1 to 70 valid characters")
        if piece_size < 1:
            raise ValueError(f"piece_size must be at least 1, not {piece_size}")
        self._delimiter = b"\r\n--" + boundary.encode("ascii")
        self._piece_size = piece_size
        self._part_count_limit = part_count_limit
        self._headers_total = Limit(part_header_size_limit, 413, "part header section")
        self._padding = Limit(padding_limit, 400, "padding after a multipart delimiter")
        self._buffer = InputBuffer()
        self._buffer.append(b"\r\n")  # the first delimiter needs no preceding line
        self._state = _State.PREAMBLE
        self._parts = 0
        self._headers: list[tuple[str, str]] = []
        self._headers_used = 0
        self._error: ClientError | None = None

    @classmethod
    def from_content_type(cls, value: str, **limits: int) -> MultipartParser:
        """Build a parser from a `multipart/form-data` `Content-Type` value.

        Args:
            value: The request's `Content-Type` value.
            **limits: Keyword arguments for the constructor.

        Raises:
            ClientError: 400 when the value is malformed or has no valid
                boundary.
        """
        content_type = parse_content_type(value)
        if content_type is None or "boundary" not in content_type.parameters:
            raise ClientError(400, "multipart Content-Type without a valid boundary")
        return cls(content_type.parameters["boundary"], **limits)

    @property
    def finished(self) -> bool:
        """True once the final delimiter was seen."""
        return self._state is _State.EPILOGUE

    @property
    def buffered(self) -> int:
        """Bytes held back (a possible delimiter start or an unfinished line).

        Bounded by the boundary length and the header and padding limits,
        whatever the part sizes (before the first delimiter it counts the
        CRLF the parser puts in front of the body).
        """
        return len(self._buffer)

    def feed(self, data: bytes) -> list[MultipartEvent]:
        """Add body bytes; return the events they complete.

        Args:
            data: The next bytes of the decoded body, any amount.

        Returns:
            Events in order, possibly none. After `MultipartEnd`, fed bytes
            are the epilogue and give no events.

        Raises:
            ClientError: The body is not valid multipart/form-data.
        """
        if self._error is not None:
            raise self._error
        if self._state is _State.EPILOGUE:
            return []
        self._buffer.append(data)
        events: list[MultipartEvent] = []
        try:
            while self._step(events):
                pass
        except ClientError as error:
            self._error = error
            raise
        return events

    def feed_eof(self) -> None:
        """Say the body ended.

        Raises:
            ClientError: 400 when the final delimiter did not arrive.
        """
        if self._error is not None:
            raise self._error
        if self._state is not _State.EPILOGUE:
            self._error = ClientError(400, "multipart body ended before its final delimiter")
            raise self._error

    def _step(self, events: list[MultipartEvent]) -> bool:
        """Advance by one element; return False when more input is needed."""
        if self._state is _State.PREAMBLE or self._state is _State.PART_DATA:
            return self._scan(events)
        if self._state is _State.DELIMITER_LINE:
            return self._delimiter_line(events)
        if self._state is _State.PART_HEADERS:
            return self._header_line(events)
        self._buffer.take_all()  # epilogue
        return False

    def _scan(self, events: list[MultipartEvent]) -> bool:
        """Release content up to the next delimiter, or up to a possible one."""
        buffer, delimiter = self._buffer, self._delimiter
        found = buffer.find(delimiter)
        if found >= 0:
            cut = found
        else:
            tail = buffer.tail(len(delimiter) - 1)
            carriage_return = tail.rfind(b"\r")
            held = len(tail) - carriage_return
            if carriage_return < 0 or not delimiter.startswith(tail[carriage_return:]):
                held = 0
            cut = len(buffer) - held
        in_part = self._state is _State.PART_DATA
        while cut:
            piece = buffer.take(min(cut, self._piece_size))
            cut -= len(piece)
            if in_part:
                events.append(PartData(piece))
        if found < 0:
            return False
        buffer.take(len(delimiter))
        if in_part:
            events.append(PartEnd())
        self._state = _State.DELIMITER_LINE
        return True

    def _delimiter_line(self, events: list[MultipartEvent]) -> bool:
        """After a delimiter: `--` ends the body, padding and CRLF start a part."""
        start = self._buffer.peek(2)
        if start == b"--":
            self._state = _State.EPILOGUE
            events.append(MultipartEnd())
            return True
        if start in (b"", b"-"):
            return False
        line = self._buffer.take_line(self._padding)
        if line is None:
            return False
        if line.strip(_PADDING):
            raise ClientError(400, "multipart delimiter followed by other text")
        self._parts += 1
        if self._parts > self._part_count_limit:
            raise ClientError(413, f"more than {self._part_count_limit} multipart parts")
        self._state = _State.PART_HEADERS
        self._headers, self._headers_used = [], 0
        return True

    def _header_line(self, events: list[MultipartEvent]) -> bool:
        """Collect one part header line; at the empty line, start the part."""
        line = self._buffer.take_line(None, self._headers_total, self._headers_used)
        if line is None:
            return False
        self._headers_used += len(line) + 2
        if line:
            name, value = parse_field_line(line)
            self._headers.append((name, value.encode("iso-8859-1").decode("utf-8", "replace")))
            return True
        events.append(_part_start(tuple(self._headers)))
        self._state = _State.PART_DATA
        return True


def _part_start(headers: tuple[tuple[str, str], ...]) -> PartStart:
    """Read field name, file name and content type from a part's headers."""
    dispositions = [value for name, value in headers if name.lower() == "content-disposition"]
    types = [value for name, value in headers if name.lower() == "content-type"]
    if len(dispositions) != 1 or len(types) > 1:
        raise ClientError(400, "part needs one Content-Disposition and at most one Content-Type")
    match = TOKEN.match(dispositions[0])
    parameters = parse_parameters(dispositions[0][match.end() :]) if match else None
    if match is None or match[0].lower() != "form-data" or parameters is None:
        raise ClientError(400, "part Content-Disposition is not a valid form-data value")
    if "name" not in parameters:
        raise ClientError(400, "part Content-Disposition has no name")
    return PartStart(
        field_name=parameters["name"],
        file_name=parameters.get("filename"),
        content_type=types[0] if types else None,
        headers=headers,
    )
