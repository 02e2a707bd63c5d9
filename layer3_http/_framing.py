"""Request body framing: Content-Length and chunked bodies, bytes in, pieces out.

The socket side never needs to know how a body is framed. It asks
`body_decoder` for a decoder matching the head, then loops::

    decoder = body_decoder(head, body_size_limit=..., piece_size=...)
    while not decoder.done:
        data = receive(decoder.wanted)       # bytes, or a memoryview of a reused buffer
        if not data:
            raise ClientError(400, "connection closed inside the body")
        for piece in decoder.feed(data):
            ...  # hand the piece to the handler, the form parser, or drop it
    give_back(decoder.leftover)              # the next pipelined request

`LengthDecoder` counts off a `Content-Length` body. `ChunkedDecoder` is a
small state machine over RFC 9112 section 7.1::

    chunk-size [ chunk-ext ] CRLF  chunk-data CRLF   (repeated)
    0 [ chunk-ext ] CRLF  *( trailer-field CRLF )  CRLF

SIZE (a size line) -> DATA (that many bytes) -> DATA_END (exactly CRLF) ->
SIZE ... until a size of zero, then TRAILER (field lines until an empty
line) -> DONE.

Both take any bytes-like input, such as a `memoryview` of the buffer a
socket was read into, and copy out of it only the pieces they return (one
copy per body byte): chunk data never passes through a line buffer. Only
an unfinished size or trailer line is kept between calls.

Invariants shared by both decoders (`BodyDecoder`): `feed` returns
non-empty `bytes` pieces of at most `piece_size` bytes and keeps no
reference to its input; bytes after the end of the body are not consumed,
they wait in `leftover`; the body never passes `body_size_limit` (413,
raised before any byte of an oversized body is returned, as soon as its
size is announced); bad input raises `ClientError` and nothing else, the
same error for any split of the input, and the error is sticky. The
chunked decoder buffers at most one unfinished line (a bounded number of
bytes); extensions are checked and ignored, trailers are checked and
discarded.

Moonbridge: the body reading inside `generate_handler`
(`request_body_size_limit`, `maximum_input_chunk_size`); its chunked branch
rejected the final `0` chunk, so every chunked request failed.
"""

from __future__ import annotations

import enum
from typing import Protocol, TypeAlias

from ._abnf import CHUNK_EXTENSIONS, HEX_BYTES
from ._errors import ClientError
from ._head import BodyKind, RequestHead
from ._lines import InputBuffer, Limit, ReadHint, parse_field_line

__all__ = [
    "FREE_CHUNKS",
    "SMALLEST_AVERAGE",
    "BodyDecoder",
    "ChunkedDecoder",
    "LengthDecoder",
    "body_decoder",
]

Data: TypeAlias = "bytes | bytearray | memoryview"
"""What the decoders accept: any flat bytes-like object."""

_LOOK = 64
"""Bytes searched first for the end of a line (chunk-size lines are short)."""


class BodyDecoder(Protocol):
    """What `LengthDecoder` and `ChunkedDecoder` both offer."""

    @property
    def done(self) -> bool:
        """True once the whole body arrived."""
        ...

    @property
    def received(self) -> int:
        """Body bytes decoded so far."""
        ...

    @property
    def leftover(self) -> bytes:
        """Bytes fed after the end of the body."""
        ...

    @property
    def remaining(self) -> int | None:
        """Body bytes still to come, when the framing tells (`Content-Length`); else `None`."""
        ...

    def next_read(self) -> ReadHint:
        """The largest read that stays inside the body."""
        ...

    def feed(self, data: Data) -> list[bytes]:
        """Add received bytes; return the body pieces they complete."""
        ...


# --8<-- [start:length]
class LengthDecoder:
    """Counts off a body of known length (`Content-Length`).

    Args:
        length: The announced body length.
        body_size_limit: Most body bytes allowed.
        piece_size: Most bytes in one returned piece.

    Raises:
        ClientError: 413 when `length` is past `body_size_limit`.

    Examples:
        >>> decoder = LengthDecoder(5, piece_size=3)
        >>> decoder.feed(b"hel"), decoder.done
        ([b'hel'], False)
        >>> decoder.feed(b"lo GET"), decoder.done, decoder.leftover
        ([b'lo'], True, b' GET')
        >>> LengthDecoder(0).done
        True
    """

    def __init__(
        self, length: int, *, body_size_limit: int = 64 * 1024 * 1024, piece_size: int = 16384
    ) -> None:
        if length < 0 or piece_size < 1:
            raise ValueError("length must not be negative and piece_size must be positive")
        if length > body_size_limit:
            raise ClientError(413, f"body of {length} bytes, limit {body_size_limit}")
        self._remaining = length
        self._piece_size = piece_size
        self._received = 0
        self._leftover = b""

    @property
    def done(self) -> bool:
        """True once `length` bytes arrived."""
        return self._remaining == 0

    @property
    def received(self) -> int:
        """Body bytes counted so far."""
        return self._received

    @property
    def leftover(self) -> bytes:
        """Bytes fed after the end of the body."""
        return self._leftover

    @property
    def remaining(self) -> int:
        """Body bytes still to come."""
        return self._remaining

    def next_read(self) -> ReadHint:
        """Return a read of at most the rest of the body and one piece."""
        return ReadHint(min(self._remaining, self._piece_size), None)

    def feed(self, data: Data) -> list[bytes]:
        """Add received bytes; return the body pieces among them.

        Raises:
            ValueError: The body was already complete.
        """
        if self.done:
            raise ValueError("the body is complete; the caller owns later bytes")
        view = memoryview(data)
        end = min(len(view), self._remaining)
        if end < len(view):
            self._leftover = bytes(view[end:])
        self._remaining -= end
        self._received += end
        size = self._piece_size
        return [bytes(view[start : min(start + size, end)]) for start in range(0, end, size)]
# --8<-- [end:length]


_NO_CONTENT = Limit(0, 400, "chunk data (no CRLF after it)")


class _State(enum.Enum):
    SIZE = enum.auto()
    DATA = enum.auto()
    DATA_END = enum.auto()
    TRAILER = enum.auto()
    DONE = enum.auto()


FREE_CHUNKS = 16384
"""Chunks a body may have of any size; past them, they must average `SMALLEST_AVERAGE` bytes."""
SMALLEST_AVERAGE = 64
"""The smallest average chunk size past `FREE_CHUNKS` chunks (else 400).

Decoding costs time per chunk, not per byte: a body of a million 1-byte
chunks (6 MB on the wire, far within the body limit) took a worker some
16 seconds and 130 MiB. No client needs that: browsers, curl and proxies
send chunks of kilobytes. So the first 16,384 chunks may be of any size
(a stream of small messages is fine), and after them the chunks so far
must average 64 bytes; a body of tiny chunks is refused within about 0.3 s
of a worker's time. nginx and Apache have no such rule, but their cost per
chunk is a few instructions; Go's server accepts any chunk size.
"""


class ChunkedDecoder:
    """Incremental decoder of one chunked request body.

    Args:
        body_size_limit: Most body bytes (chunk data) allowed (413 past it).
        piece_size: Most bytes in one returned piece.
        size_digit_limit: Most hex digits in a chunk size, leading zeros
            included (400 past it).
        extension_limit: Most bytes of chunk extensions on one size line
            (400 past it).
        trailer_count_limit: Most trailer fields (431 past it).
        trailer_size_limit: Most bytes of the trailer section (431 past it).

    Examples:
        >>> decoder = ChunkedDecoder()
        >>> decoder.feed(b"5\\r\\nhello\\r\\n0\\r\\n")
        [b'hello']
        >>> decoder.done
        False
        >>> decoder.feed(b"\\r\\nGET / HTTP/1.1\\r\\n"), decoder.done, decoder.leftover
        ([], True, b'GET / HTTP/1.1\\r\\n')

    Moonbridge: the chunked part of the body reader behind
    `stream_request_body`; `body_size_limit` is `request_body_size_limit`
    and `piece_size` is `maximum_input_chunk_size`.
    """

    def __init__(
        self,
        *,
        body_size_limit: int = 64 * 1024 * 1024,
        piece_size: int = 16384,
        size_digit_limit: int = 16,
        extension_limit: int = 1024,
        trailer_count_limit: int = 100,
        trailer_size_limit: int = 65536,
    ) -> None:
        if piece_size < 1 or size_digit_limit < 1:
            raise ValueError("piece_size and size_digit_limit must be at least 1")
        if min(body_size_limit, extension_limit, trailer_count_limit, trailer_size_limit) < 0:
            raise ValueError("limits must not be negative")
        self._body_size_limit = body_size_limit
        self._piece_size = piece_size
        self._digit_limit = size_digit_limit
        self._extension_limit = extension_limit
        self._size_line = Limit(size_digit_limit + extension_limit, 400, "chunk size line")
        self._trailer_total = Limit(trailer_size_limit, 431, "trailer section")
        self._trailer_count_limit = trailer_count_limit
        self._buffer = InputBuffer()
        self._state = _State.SIZE
        self._remaining = 0  # bytes of the current chunk still to come
        self._received = 0
        self._chunks = 0
        self._trailer_used = 0
        self._trailer_count = 0
        self._error: ClientError | None = None
        self._leftover = b""

    @property
    def done(self) -> bool:
        """True once the final CRLF arrived (the body is complete)."""
        return self._state is _State.DONE

    @property
    def received(self) -> int:
        """Body bytes decoded so far."""
        return self._received

    @property
    def leftover(self) -> bytes:
        """Bytes fed after the end of the body (empty until `done`)."""
        return self._leftover

    @property
    def remaining(self) -> None:
        """Always `None`, since a chunked body tells its end only when it arrives."""
        return None

    def next_read(self) -> ReadHint:
        """Return a read that cannot pass the end of the current element."""
        if self._state is _State.DATA:
            return ReadHint(min(self._remaining, self._piece_size), None)
        if self._state is _State.DONE:
            return ReadHint(0, None)
        return ReadHint(self._piece_size, b"\n")

    # --8<-- [start:feed]
    def feed(self, data: Data) -> list[bytes]:
        """Add received bytes; return the body data they complete.

        Args:
            data: The next bytes of the connection, any amount, any
                bytes-like object (it is not kept).

        Returns:
            Body pieces in order (possibly none); check `done` afterwards.

        Raises:
            ClientError: The body breaks the chunked syntax or a limit.
            ValueError: The body was already complete.
        """
        if self._error is not None:
            raise self._error
        if self._state is _State.DONE:
            raise ValueError("the chunked body is complete; the caller owns later bytes")
        view = memoryview(data)
        pieces: list[bytes] = []
        position, end = 0, len(view)
        try:
            while position < end:
                if self._state is _State.DATA:
                    size = min(self._remaining, self._piece_size, end - position)
                    pieces.append(bytes(view[position : position + size]))
                    position += size
                    self._remaining -= size
                    self._received += size
                    if not self._remaining:
                        self._state = _State.DATA_END
                elif (self._state is _State.DATA_END and not self._buffer
                      and view[position : position + 2].tobytes() == b"\r\n"):
                    position += 2  # the usual case, without the line buffer
                    self._state = _State.SIZE
                else:
                    position = self._line(view, position)
                    if self._state is _State.DONE:
                        self._leftover = self._buffer.take_all() + bytes(view[position:])
                        break
        except ClientError as error:
            self._error = error
            raise
        return pieces

    def _line(self, view: memoryview, position: int) -> int:
        """Buffer the input up to the next LF and handle the line if it is complete.

        Returns:
            Where the bytes taken end, after the LF or at the end of `view`.
        """
        window = bytes(view[position : position + _LOOK])
        newline = window.find(b"\n")
        if newline < 0 and len(view) - position > _LOOK:
            window = bytes(view[position:])  # a long line: look at everything
            newline = window.find(b"\n")
        taken = len(window) if newline < 0 else newline + 1
        self._buffer.append(window[:taken] if taken < len(window) else window)
        buffer = self._buffer
        if self._state is _State.SIZE:
            line = buffer.take_line(self._size_line)
            if line is not None:
                self._size_line_done(line)
        elif self._state is _State.DATA_END:
            line = buffer.take_line(_NO_CONTENT)
            if line is not None:
                self._state = _State.SIZE
        else:
            line = buffer.take_line(None, self._trailer_total, self._trailer_used)
            if line is not None:
                self._trailer_line_done(line)
        return position + taken
    # --8<-- [end:feed]

    # --8<-- [start:lines]
    def _size_line_done(self, line: bytes) -> None:
        match = HEX_BYTES.match(line)
        if match is None:
            raise ClientError(400, "chunk size is not hexadecimal")
        if match.end() > self._digit_limit:
            raise ClientError(400, f"chunk size longer than {self._digit_limit} hex digits")
        extensions = line[match.end() :]
        if len(extensions) > self._extension_limit:
            raise ClientError(400, f"chunk extensions longer than {self._extension_limit} bytes")
        if CHUNK_EXTENSIONS.fullmatch(extensions) is None:
            raise ClientError(400, "malformed chunk extension")
        size = int(match[0], 16)
        if self._received + size > self._body_size_limit:
            raise ClientError(413, f"body larger than {self._body_size_limit} bytes")
        self._chunks += bool(size)  # the last chunk (size 0) is free
        if self._chunks > FREE_CHUNKS and self._received < (self._chunks - 1) * SMALLEST_AVERAGE:
            raise ClientError(400, f"more than {FREE_CHUNKS} chunks averaging fewer than "
                                   f"{SMALLEST_AVERAGE} bytes")
        self._remaining = size
        self._state = _State.DATA if size else _State.TRAILER

    def _trailer_line_done(self, line: bytes) -> None:
        self._trailer_used += len(line) + 2
        if not line:
            self._state = _State.DONE
            return
        self._trailer_count += 1
        if self._trailer_count > self._trailer_count_limit:
            raise ClientError(431, f"more than {self._trailer_count_limit} trailer fields")
        parse_field_line(line)  # checked, then discarded
    # --8<-- [end:lines]


# --8<-- [start:body-decoder]
def body_decoder(
    head: RequestHead, *, body_size_limit: int = 64 * 1024 * 1024, piece_size: int = 16384
) -> BodyDecoder:
    """Return the decoder for the body `head` announces.

    A head without a body gets a `LengthDecoder` of length 0, which is
    `done` from the start (one shared instance: it never changes).

    Args:
        head: The parsed request head.
        body_size_limit: Most body bytes allowed (413 past it).
        piece_size: Most bytes in one returned piece.

    Raises:
        ClientError: 413 when a `Content-Length` is past the limit.

    Examples:
        >>> from layer3_http._head import HeadParser
        >>> head = HeadParser().feed(b"POST / HTTP/1.1\\r\\nHost: x\\r\\n"
        ...                          b"Transfer-Encoding: chunked\\r\\n\\r\\n")
        >>> type(body_decoder(head)).__name__
        'ChunkedDecoder'
    """
    if head.body_kind is BodyKind.NONE:
        return _NO_BODY
    if head.body_kind is BodyKind.CHUNKED:
        return ChunkedDecoder(body_size_limit=body_size_limit, piece_size=piece_size)
    assert head.content_length is not None
    return LengthDecoder(head.content_length, body_size_limit=body_size_limit,
                         piece_size=piece_size)


# Most requests have no body: they share one decoder, done from the start. It
# cannot change (`feed` refuses, `next_read` asks for nothing), so sharing is safe.
_NO_BODY = LengthDecoder(0)
# --8<-- [end:body-decoder]
