"""POST forms: the body sink behind `post_params` and `stream_post_param`.

`FormSink` is the sink (see `_input`) that turns a form body into fields.
It knows the two form encodings browsers send:

* ``application/x-www-form-urlencoded``: the body goes through the
  streaming `UrlencodedParser` piece by piece, which decodes each field
  as it ends and refuses the field past the limit at once (413), so a
  flood of tiny fields costs no more memory than the fields allowed;
* ``multipart/form-data``: the body goes through the streaming
  `MultipartParser` piece by piece; each part is either collected into
  memory (a field value) or, when a stream handler was registered for its
  name, passed on as it arrives, so a file of any size costs no memory.

Any other content type (or none) is not an error: the sink then keeps
nothing and `post_params` is empty.

A stream handler is called as the reference prescribes::

    callback(first_chunk, metadata)   # b"" for an empty part
    callback(chunk)                   # zero or more times, never empty
    callback()                        # the end of the part

Invariants: memory holds at most one piece, the parser's small window (or
the urlencoded field not yet ended) and the fields that are collected
(never a streamed part); exact name
registrations win over patterns, patterns are tried in registration order;
the multipart parser is made at the first byte, so a bad `Content-Type`
shows only when the body is read.

Moonbridge: ``default_request_body_handling`` in ``generate_handler``;
the original answered unknown content types with 415 and killed the worker.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

from ._forms import UrlencodedParser
from ._multipart import (
    MultipartEnd,
    MultipartParser,
    PartData,
    PartEnd,
    PartStart,
    parse_content_type,
)

__all__ = ["FormSink", "PostMetadata", "PostStream", "compile_pattern", "form_kind"]

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

